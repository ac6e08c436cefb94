/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules plugins: the slots: and plugins: sections of a rule file
 * (which strategy and filters decide each slot, and their configuration),
 * compiled through the plugin host.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_int.h"
#include "cef_rules_goals.h"


/* --- plugins: slots: and plugins: sections --------------------------------- */

static cef_conf_t *
cef_conf_alloc(cef_loader_t *ld, size_t n)
{
    cef_conf_t  *c;
    void        *p;

    p = cef_rules_load_grow(ld->allocs, ld->nallocs, sizeof(void *));
    if (p == NULL) {
        return NULL;
    }
    ld->allocs = p;

    c = calloc(n ? n : 1, sizeof(cef_conf_t));
    if (c) {
        ld->allocs[ld->nallocs++] = c;
    }

    return c;
}


/* A YAML node as a plugin's cef_conf_t; strings point into the document. */
static int
cef_conf_build(cef_loader_t *ld, yaml_node_t *n, const char *key,
    cef_conf_t *out)
{
    yaml_node_pair_t  *pair;
    yaml_node_item_t  *it;
    yaml_node_t       *k;
    cef_conf_t        *items;
    uint32_t           i = 0;

    out->key = key;
    out->line = n->start_mark.line + 1;
    out->col = n->start_mark.column + 1;

    switch (n->type) {

    case YAML_MAPPING_NODE:
        out->type = CEF_CONF_MAP;
        out->n = (uint32_t) (n->data.mapping.pairs.top
                             - n->data.mapping.pairs.start);
        items = cef_conf_alloc(ld, out->n);
        if (items == NULL) {
            return -1;
        }
        out->items = items;

        for (pair = n->data.mapping.pairs.start;
             pair < n->data.mapping.pairs.top; pair++, i++)
        {
            k = cef_rules_yaml_node(ld, pair->key);
            if (k->type != YAML_SCALAR_NODE) {
                cef_rules_load_error(ld, k, "keys must be plain names, not %s",
                                     cef_rules_yaml_kind(k));
                return -1;
            }

            if (cef_conf_build(ld, cef_rules_yaml_node(ld, pair->value),
                               cef_rules_yaml_scalar(k),
                               &items[i])
                != 0)
            {
                return -1;
            }
        }
        return 0;

    case YAML_SEQUENCE_NODE:
        out->type = CEF_CONF_LIST;
        out->n = (uint32_t) (n->data.sequence.items.top
                             - n->data.sequence.items.start);
        items = cef_conf_alloc(ld, out->n);
        if (items == NULL) {
            return -1;
        }
        out->items = items;

        for (it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++, i++)
        {
            if (cef_conf_build(ld, cef_rules_yaml_node(ld, *it), NULL,
                               &items[i]) != 0) {
                return -1;
            }
        }
        return 0;

    default:
        out->type = CEF_CONF_SCALAR;
        out->value = cef_rules_yaml_scalar(n);
        return 0;
    }
}


typedef struct {
    cef_loader_t  *ld;
} cef_host_t;


static int
cef_host_goal(const cef_plugin_rules_t *pr, const char *name, int *has_value)
{
    cef_loader_t            *ld = pr->host;
    const cef_rules_goal_t  *g;

    g = name ? cef_rules_goals_find(ld->rs, name, strlen(name)) : NULL;

    if (has_value) {
        *has_value = g && g->has_value;
    }

    return g != NULL;
}


static int
cef_host_compile(const cef_plugin_rules_t *pr, const char *src, uint32_t *id,
    char *err, size_t errlen)
{
    cef_loader_t      *ld = pr->host;
    cef_rules_t       *rs = ld->rs;
    cef_expr_t        *e, **v;
    cef_expr_error_t   ee;

    e = cef_expr_compile(rs->st, src, strlen(src), &ee);
    if (e == NULL) {
        snprintf(err, errlen, "in expression '%s' at offset %zu: %s", src,
                 ee.offset, ee.msg);
        return CEF_PLUGIN_ERROR;
    }

    v = cef_rules_load_grow(rs->pexprs, rs->npexprs, sizeof(cef_expr_t *));
    if (v == NULL) {
        cef_expr_free(e);
        snprintf(err, errlen, "out of memory");
        return CEF_PLUGIN_ERROR;
    }
    rs->pexprs = v;

    rs->pexprs[rs->npexprs] = e;
    *id = rs->npexprs++;

    return CEF_PLUGIN_OK;
}


static void
cef_plugin_err(cef_loader_t *ld, yaml_node_t *section, const char *plugin,
    cef_plugin_error_t *pe)
{
    const char  *msg = pe->msg[0] ? pe->msg : "invalid configuration";

    if (pe->at) {
        cef_rules_load_error_at(ld, pe->at->line, pe->at->col, "%s: %s",
                                plugin, msg);
    } else {
        cef_rules_load_error(ld, section, "%s: %s", plugin, msg);
    }
}


static const char *
cef_plugin_nearest(cef_loader_t *ld, const char *name, int strategies)
{
    const char           *cands[CEF_PLUGINS_MAX + 1];
    const cef_plugin_t   *p;
    uint32_t              i, n = 0;

    for (i = 0; i < cef_plugins_count(ld->ps); i++) {
        p = cef_plugins_get(ld->ps, i);
        if (!strategies || p->select) {
            cands[n++] = p->name;
        }
    }

    cands[n] = NULL;

    return cef_expr_nearest(name, strlen(name), (const char *const *) cands);
}


static void
cef_plugin_names(cef_loader_t *ld, int strategies, char *buf, size_t size)
{
    const cef_plugin_t  *p;
    uint32_t             i;
    size_t               len = 0;

    buf[0] = '\0';

    for (i = 0; i < cef_plugins_count(ld->ps); i++) {
        p = cef_plugins_get(ld->ps, i);
        if ((!strategies || p->select) && len < size) {
            len += (size_t) snprintf(buf + len, size - len, "%s%s",
                                     len ? ", " : "", p->name);
        }
    }
}


/* The offers as plugins see them, and their plugin keys. */
static int
cef_plugin_offers(cef_loader_t *ld)
{
    cef_rules_t         *rs = ld->rs;
    cef_plugin_offer_t  *po;
    cef_conf_t          *extra;
    uint32_t             i, j, e, n;

    rs->poffers = calloc(rs->noffers + 1, sizeof(cef_plugin_offer_t));
    if (rs->poffers == NULL) {
        return -1;
    }

    /* ld->extra is in offer order: cef_load_offer() appends */

    for (i = 0, e = 0; i < rs->noffers; i++) {
        po = &rs->poffers[i];
        po->name = rs->offers[i].name;
        po->slot = rs->offers[i].slot ? rs->offers[i].slot : "";
        po->campaign = rs->offers[i].campaign;
        po->index = i;
        po->slot_id = rs->offers[i].slot_id;
        po->value = rs->offers[i].value;
        po->cost = rs->offers[i].cost;
        po->starts = rs->offers[i].starts;
        po->ends = rs->offers[i].ends;

        for (n = 0; e + n < ld->nextra && ld->extra[e + n].offer == i; n++) {
            /* void */
        }

        if (n == 0) {
            continue;
        }

        extra = cef_conf_alloc(ld, 1);
        if (extra == NULL) {
            return -1;
        }

        extra->type = CEF_CONF_MAP;
        extra->items = cef_conf_alloc(ld, n);
        if (extra->items == NULL) {
            return -1;
        }

        for (j = e; j < e + n; j++) {
            if (cef_conf_build(ld, ld->extra[j].val,
                               cef_rules_yaml_scalar(ld->extra[j].key),
                               (cef_conf_t *) &extra->items[extra->n++])
                != 0)
            {
                return -1;
            }
        }

        e += n;
        po->extra = extra;
    }

    return 0;
}


static void
cef_load_slots(cef_loader_t *ld, cef_plugin_rules_t *pr)
{
    cef_rules_t         *rs = ld->rs;
    yaml_node_pair_t    *pair, *p2;
    yaml_node_t         *k, *v, *k2, *strat;
    const cef_plugin_t  *p;
    const char          *name, *near;
    cef_conf_t           conf, *items;
    cef_plugin_error_t   pe;
    uint32_t             sid, n;
    int                  implied, bad, rc;
    char               **list;
    char                 names[512];

    if (ld->slots->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, ld->slots,
                             "slots must be a mapping of slot names to "
                "their strategy, not %s", cef_rules_yaml_kind(ld->slots));
        return;
    }

    for (pair = ld->slots->data.mapping.pairs.start;
         pair < ld->slots->data.mapping.pairs.top; pair++)
    {
        k = cef_rules_yaml_node(ld, pair->key);
        v = cef_rules_yaml_node(ld, pair->value);

        if (k->type != YAML_SCALAR_NODE) {
            cef_rules_load_error(ld, k,
                                 "slot names must be plain names, not %s",
                                 cef_rules_yaml_kind(k));
            continue;
        }

        name = cef_rules_yaml_scalar(k);

        if (!cef_rules_load_names_find(&ld->slot_names, name, &sid)) {
            near = NULL;
            list = ld->full ? NULL : calloc(rs->nslots + 1, sizeof(char *));
            if (list && rs->nslots) {
                memcpy(list, rs->slots, rs->nslots * sizeof(char *));
                near = cef_expr_nearest(name, k->data.scalar.length,
                                        (const char *const *) list);
            }
            free(list);

            if (near) {
                cef_rules_load_error(ld, k,
                                     "no offer uses slot '%s' (did you mean "
                                     "'%s'?)", name, near);
            } else {
                cef_rules_load_error(ld, k, "no offer uses slot '%s'", name);
            }
            continue;
        }

        if (rs->strategy[sid].set) {
            cef_rules_load_error(ld, k, "duplicate slot '%s'", name);
            continue;
        }

        rs->strategy[sid].set = 1;

        if (v->type != YAML_MAPPING_NODE) {
            cef_rules_load_error(ld, v, "slot '%s' must be a mapping with "
                                 "strategy:, not %s", name,
                                 cef_rules_yaml_kind(v));
            continue;
        }

        strat = NULL;
        implied = 0;
        n = 0;

        for (p2 = v->data.mapping.pairs.start;
             p2 < v->data.mapping.pairs.top; p2++)
        {
            k2 = cef_rules_yaml_node(ld, p2->key);
            if (k2->type == YAML_SCALAR_NODE
                && strcmp(cef_rules_yaml_scalar(k2), "strategy") == 0)
            {
                strat = cef_rules_yaml_node(ld, p2->value);

            } else {
                n++;
                if (k2->type == YAML_SCALAR_NODE
                    && (strcmp(cef_rules_yaml_scalar(k2), "holdout") == 0
                        || strcmp(cef_rules_yaml_scalar(k2),
                                  "experiment") == 0))
                {
                    implied = 1;
                }
            }
        }

        if (strat && strat->type != YAML_SCALAR_NODE) {
            cef_rules_load_error(ld, strat,
                                 "strategy must be a plugin name, not %s",
                                 cef_rules_yaml_kind(strat));
            continue;
        }

        p = cef_plugins_find(ld->ps, strat ? cef_rules_yaml_scalar(strat)
                                           : implied ? "experiment"
                                                     : "priority");

        if (strat == NULL && p == NULL) {
            cef_rules_load_error(ld, v, "no default strategy is loaded");
            continue;
        }

        if (p == NULL || p->select == NULL) {
            near = cef_plugin_nearest(ld, cef_rules_yaml_scalar(strat), 1);
            cef_plugin_names(ld, 1, names, sizeof(names));

            if (near && strcmp(near, cef_rules_yaml_scalar(strat)) != 0) {
                cef_rules_load_error(ld, strat,
                                     "unknown strategy '%s' (did you mean "
                        "'%s'?)", cef_rules_yaml_scalar(strat), near);
            } else {
                cef_rules_load_error(ld, strat,
                                     "unknown strategy '%s' (strategies: %s)",
                                     cef_rules_yaml_scalar(strat), names);
            }
            continue;
        }

        rs->strategy[sid].p = p;
        rs->strategy[sid].all = (p->flags & CEF_PLUGIN_ALL_CANDIDATES) != 0;

        /* the slot's mapping less strategy: */

        memset(&conf, 0, sizeof(conf));
        conf.type = CEF_CONF_MAP;
        conf.line = v->start_mark.line + 1;
        conf.col = v->start_mark.column + 1;
        items = cef_conf_alloc(ld, n);
        if (items == NULL) {
            cef_rules_load_error(ld, v, "out of memory");
            return;
        }
        conf.items = items;

        bad = 0;

        for (p2 = v->data.mapping.pairs.start;
             p2 < v->data.mapping.pairs.top; p2++)
        {
            k2 = cef_rules_yaml_node(ld, p2->key);

            if (k2->type != YAML_SCALAR_NODE) {
                cef_rules_load_error(ld, k2,
                                     "keys must be plain names, not %s",
                                     cef_rules_yaml_kind(k2));
                bad = 1;
                break;
            }

            if (strcmp(cef_rules_yaml_scalar(k2), "strategy") == 0) {
                continue;
            }

            if (cef_conf_build(ld, cef_rules_yaml_node(ld, p2->value),
                               cef_rules_yaml_scalar(k2),
                               &items[conf.n++])
                != 0)
            {
                bad = 1;
                break;
            }
        }

        if (bad) {
            continue;
        }

        if (p->slot_configure == NULL) {
            if (conf.n) {
                cef_rules_load_error_at(ld, items[0].line, items[0].col,
                           "%s: strategy '%s' takes no configuration "
                           "('%s')", p->name, p->name, items[0].key);
            }
            continue;
        }

        memset(&pe, 0, sizeof(pe));

        rc = p->slot_configure(pr, sid, &conf, &rs->strategy[sid].state,
                               &pe);

        if (rc == CEF_PLUGIN_FIRST_ONLY) {
            rs->strategy[sid].all = 0;

        } else if (rc != CEF_PLUGIN_OK) {
            cef_plugin_err(ld, v, p->name, &pe);
        }
    }
}


void
cef_rules_plugins_load(cef_loader_t *ld)
{
    cef_rules_t         *rs = ld->rs;
    yaml_node_pair_t    *pair;
    yaml_node_t         *k;
    const cef_plugin_t  *p;
    const char          *near;
    cef_conf_t           conf, *cp;
    cef_plugin_error_t   pe;
    cef_plugin_rules_t   pr;
    uint32_t             i;
    void                *state;
    size_t               nerrs = ld->errs->n;
    char                 names[512];
    yaml_node_t         *confs[CEF_PLUGINS_MAX];

    memset(confs, 0, sizeof(confs));

    if (ld->plugins) {
        if (ld->plugins->type != YAML_MAPPING_NODE) {
            cef_rules_load_error(ld, ld->plugins,
                                 "plugins must be a mapping of plugin "
                                 "names to their configuration, not %s",
                                 cef_rules_yaml_kind(ld->plugins));
            return;
        }

        for (pair = ld->plugins->data.mapping.pairs.start;
             pair < ld->plugins->data.mapping.pairs.top; pair++)
        {
            k = cef_rules_yaml_node(ld, pair->key);

            if (k->type != YAML_SCALAR_NODE) {
                cef_rules_load_error(ld, k, "plugin names must be plain "
                                     "names, not %s", cef_rules_yaml_kind(k));
                continue;
            }

            for (i = 0; i < cef_plugins_count(ld->ps); i++) {
                if (strcmp(cef_plugins_get(ld->ps, i)->name,
                           cef_rules_yaml_scalar(k))
                    == 0)
                {
                    break;
                }
            }

            if (i == cef_plugins_count(ld->ps)) {
                near = cef_plugin_nearest(ld, cef_rules_yaml_scalar(k), 0);
                cef_plugin_names(ld, 0, names, sizeof(names));
                if (near) {
                    cef_rules_load_error(ld, k,
                                         "unknown plugin '%s' (did you mean "
                            "'%s'?)", cef_rules_yaml_scalar(k), near);
                } else {
                    cef_rules_load_error(ld, k,
                                         "unknown plugin '%s' (plugins: %s)",
                                         cef_rules_yaml_scalar(k), names);
                }
                continue;
            }

            if (confs[i]) {
                cef_rules_load_error(ld, k, "duplicate plugin '%s'",
                                     cef_rules_yaml_scalar(k));
                continue;
            }

            confs[i] = cef_rules_yaml_node(ld, pair->value);
        }
    }

    if (ld->errs->n > nerrs) {
        return;
    }

    if (cef_plugin_offers(ld) != 0) {
        cef_rules_load_error_at(ld, 0, 0, "out of memory");
        return;
    }

    memset(&pr, 0, sizeof(pr));
    pr.file = ld->errs->file;
    pr.noffers = rs->noffers;
    pr.offers = rs->poffers;
    pr.nslots = rs->nslots;
    pr.slots = (const char *const *) rs->slots;
    pr.compile = cef_host_compile;
    pr.goal = cef_host_goal;
    pr.host = ld;

    rs->strategy = calloc(rs->nslots + 1, sizeof(*rs->strategy));
    rs->active = calloc(cef_plugins_count(ld->ps) + 1, sizeof(*rs->active));
    if (rs->strategy == NULL || rs->active == NULL) {
        cef_rules_load_error_at(ld, 0, 0, "out of memory");
        return;
    }

    if (ld->slots) {
        cef_load_slots(ld, &pr);
    }

    for (i = 0; i < rs->nslots; i++) {
        if (rs->strategy[i].p == NULL) {
            rs->strategy[i].p = cef_plugins_find(ld->ps, "priority");
        } else {
            rs->plugged = 1;
        }
    }

    for (i = 0; i < cef_plugins_count(ld->ps); i++) {
        p = cef_plugins_get(ld->ps, i);
        cp = NULL;

        if (confs[i]) {
            if (cef_conf_build(ld, confs[i], p->name, &conf) != 0) {
                continue;
            }
            cp = &conf;
        }

        if (p->configure == NULL) {
            if (cp) {
                cef_rules_load_error(ld, confs[i],
                                     "plugin '%s' takes no configuration "
                                     "under plugins:", p->name);
            }
            continue;
        }

        state = NULL;
        memset(&pe, 0, sizeof(pe));

        if (p->configure(&pr, cp, &state, &pe) != CEF_PLUGIN_OK) {
            if (state && p->free) {
                p->free(state);
            }

            cef_plugin_err(ld, confs[i] ? confs[i] : ld->plugins
                               ? ld->plugins
                               : yaml_document_get_root_node(&ld->doc),
                           p->name, &pe);
            continue;
        }

        if (state) {
            rs->active[rs->nactive].p = p;
            rs->active[rs->nactive].state = state;
            rs->nactive++;
            rs->plugged = 1;
        }
    }

    for (i = 0; i < rs->noffers; i++) {
        rs->poffers[i].extra = NULL;
    }
}
