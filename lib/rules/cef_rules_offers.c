/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules offers: the offers: section of a rule file (slot, html
 * template, value, cost, schedule, the plugins' own keys).
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_int.h"


const char  *cef_rules_offers_keys[] = {
    "slot", "html", "value", "cost", "campaign", "starts", "ends",
    "description", NULL
};


static int
cef_valid_name(const char *s)
{
    if (*s == '\0') {
        return 0;
    }

    for ( ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'
              || *s == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* --- offers --------------------------------------------------------------- */

static int
cef_offer_time(cef_loader_t *ld, yaml_node_t *v, const char *what,
    int is_end, int64_t *out)
{
    const char  *s;
    size_t       len;

    s = cef_rules_yaml_want_string(ld, v, what);
    if (s == NULL) {
        return -1;
    }

    len = v->data.scalar.length;

    if (cef_expr_parse_time(s, len, out) != 0) {
        cef_rules_load_error(ld, v, "bad date '%s' in %s (use YYYY-MM-DD or "
                             "YYYY-MM-DDTHH:MM:SSZ)", s, what);
        return -1;
    }

    /* a bare date ends at the end of that day */

    if (is_end && len == 10) {
        *out += 86400;
    }

    return 0;
}


static int
cef_slot_id(cef_loader_t *ld, yaml_node_t *v, const char *slot,
    uint32_t *id)
{
    cef_rules_t  *rs = ld->rs;
    char        **slots;

    if (cef_rules_load_names_find(&ld->slot_names, slot, id)) {
        return 0;
    }

    slots = cef_rules_load_grow(rs->slots, rs->nslots, sizeof(char *));
    if (slots == NULL) {
        goto nomem;
    }
    rs->slots = slots;

    rs->slots[rs->nslots] = cef_rules_load_strdup(slot);
    if (rs->slots[rs->nslots] == NULL
        || cef_rules_load_names_add(&ld->slot_names, rs->slots[rs->nslots],
                                    rs->nslots)
           != 0)
    {
        free(rs->slots[rs->nslots]);
        goto nomem;
    }

    *id = rs->nslots++;
    return 0;

nomem:
    cef_rules_load_error(ld, v, "out of memory");
    return -1;
}


/* a key some plugin declared in offer_keys? */
static int
cef_offer_extra(cef_loader_t *ld, const char *kw)
{
    size_t  i;

    (void) ld;

    for (i = 0; cef_rules_offers_keys[i]; i++) {
        if (cef_rules_offers_keys[i] == kw) {
            return 0;
        }
    }

    return 1;
}


static void
cef_add_extra(cef_loader_t *ld, uint32_t offer, yaml_node_t *k,
    yaml_node_t *v)
{
    void  *p;

    p = cef_rules_load_grow(ld->extra, ld->nextra, sizeof(*ld->extra));
    if (p == NULL) {
        cef_rules_load_error(ld, k, "out of memory");
        return;
    }
    ld->extra = p;

    ld->extra[ld->nextra].offer = offer;
    ld->extra[ld->nextra].key = k;
    ld->extra[ld->nextra].val = v;
    ld->nextra++;
}


static void
cef_load_offer(cef_loader_t *ld, yaml_node_t *key, yaml_node_t *val)
{
    cef_rules_t       *rs = ld->rs;
    cef_offer_t       *o;
    yaml_node_pair_t  *pair;
    yaml_node_t       *k, *v, *html = NULL, *slot = NULL, *starts = NULL;
    const char        *name, *kw, *s;
    unsigned           seen = 0;
    cef_expr_error_t   err;
    cef_ref_site_t     site;
    char               what[300];

    if (key->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, key,
                             "offer names must be plain names, not %s",
                             cef_rules_yaml_kind(key));
        return;
    }

    name = cef_rules_yaml_scalar(key);

    if (!cef_valid_name(name)) {
        cef_rules_load_error(ld, key,
                             "invalid offer name '%s' (letters, digits, '_', "
                             "'-' and '.')", name);
        return;
    }

    if (cef_rules_load_names_find(&ld->offer_names, name, NULL)) {
        cef_rules_load_error(ld, key, "duplicate offer name '%s'", name);
        return;
    }

    o = &rs->offers[rs->noffers];
    memset(o, 0, sizeof(cef_offer_t));
    o->name = name;
    o->line = key->start_mark.line + 1;
    o->col = key->start_mark.column + 1;
    o->starts = INT64_MIN;
    o->ends = INT64_MAX;
    o->slot_id = CEF_RULES_NONE;

    if (cef_rules_load_names_add(&ld->offer_names, name, rs->noffers) != 0) {
        cef_rules_load_error(ld, key, "out of memory");
        return;
    }

    rs->noffers++;

    if (val->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, val, "offer '%s' must be a mapping with "
                             "slot: and html:, not %s", name,
                             cef_rules_yaml_kind(val));
        return;
    }

    for (pair = val->data.mapping.pairs.start;
         pair < val->data.mapping.pairs.top; pair++)
    {
        k = cef_rules_yaml_node(ld, pair->key);
        v = cef_rules_yaml_node(ld, pair->value);

        kw = cef_rules_yaml_known(k, ld->offer_keys);

        if (kw == NULL) {
            snprintf(what, sizeof(what), "offer '%s'", name);
            kw = cef_rules_yaml_key(ld, k, ld->offer_keys, what);
        }

        if (kw == NULL || cef_rules_yaml_dup_key(ld, k, ld->offer_keys, kw,
                                                 &seen)) {
            continue;
        }

        if (cef_offer_extra(ld, kw)) {
            cef_add_extra(ld, rs->noffers - 1, k, v);
            continue;
        }

        if (strcmp(kw, "slot") == 0) {
            s = cef_rules_yaml_want_string(ld, v, "slot");
            if (s == NULL) {
                continue;
            }

            if (!cef_valid_name(s)) {
                cef_rules_load_error(ld, v, "invalid slot name '%s' "
                                     "(letters, digits, '_', '-' and '.')", s);
                continue;
            }

            slot = v;
            o->slot = s;
            (void) cef_slot_id(ld, v, s, &o->slot_id);

        } else if (strcmp(kw, "html") == 0) {
            s = cef_rules_yaml_want_string(ld, v, "html");
            if (s == NULL) {
                continue;
            }

            html = v;
            o->html = cef_template_compile(rs->st, s, v->data.scalar.length,
                                           &err);
            if (o->html == NULL) {
                cef_rules_yaml_value_err(ld, v, err.offset, "in html",
                                         err.msg);

            } else {
                site.ld = ld;
                site.n = v;
                cef_template_refs(o->html, cef_rules_yaml_ref_site, &site);
            }

        } else if (strcmp(kw, "value") == 0) {
            (void) cef_rules_yaml_want_number(ld, v, "value", &o->value);

        } else if (strcmp(kw, "cost") == 0) {
            (void) cef_rules_yaml_want_number(ld, v, "cost", &o->cost);

        } else if (strcmp(kw, "campaign") == 0) {
            o->campaign = cef_rules_yaml_want_string(ld, v, "campaign");

        } else if (strcmp(kw, "starts") == 0) {
            if (cef_offer_time(ld, v, "starts", 0, &o->starts) == 0) {
                starts = v;
            }

        } else if (strcmp(kw, "ends") == 0) {
            if (cef_offer_time(ld, v, "ends", 1, &o->ends) == 0
                && starts && o->ends <= o->starts)
            {
                cef_rules_load_error(ld, v, "offer '%s' ends before it starts",
                                     name);
            }

        } else {
            (void) cef_rules_yaml_want_string(ld, v, "description");
        }
    }

    if (slot == NULL) {
        cef_rules_load_error(ld, key,
                             "offer '%s' has no slot (add slot: NAME)", name);
    }

    if (html == NULL && !(seen & 2)) {
        cef_rules_load_error(ld, key, "offer '%s' has no html", name);
    }
}


void
cef_rules_offers_load(cef_loader_t *ld, yaml_node_t *offers)
{
    yaml_node_pair_t  *pair;
    size_t             n, i;

    if (offers->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, offers,
                             "offers must be a mapping of offer names to "
                             "offers, not %s", cef_rules_yaml_kind(offers));
        return;
    }

    n = (size_t) (offers->data.mapping.pairs.top
                  - offers->data.mapping.pairs.start);

    ld->rs->offers = calloc(n ? n : 1, sizeof(cef_offer_t));
    ld->offer_list = calloc(n + 1, sizeof(char *));
    if (ld->rs->offers == NULL || ld->offer_list == NULL) {
        cef_rules_load_error(ld, offers, "out of memory");
        return;
    }

    for (pair = offers->data.mapping.pairs.start;
         pair < offers->data.mapping.pairs.top; pair++)
    {
        cef_load_offer(ld, cef_rules_yaml_node(ld, pair->key),
                       cef_rules_yaml_node(ld, pair->value));
    }

    for (i = 0; i < ld->rs->noffers; i++) {
        ld->offer_list[i] = ld->rs->offers[i].name;
    }
}
