/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules loader: a YAML rule file (parsed by libyaml's document API) to
 * a compiled rule set, with every problem reported at its line and column.
 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "cef_rules_int.h"


static const char  *cef_top_keys[] = {
    "version", "offers", "rules", "slots", "plugins", "goals", NULL
};
static const char  *cef_rule_keys[] = {
    "name", "when", "show", "priority", "description", NULL
};


/* --- errors --------------------------------------------------------------- */

void
cef_rules_load_error_at(cef_loader_t *ld, size_t line, size_t col,
    const char *fmt, ...)
{
    cef_rules_errors_t  *errs = ld->errs;
    cef_rules_error_t   *e;
    va_list              args;

    if (ld->full) {
        return;
    }

    if (errs->n % 16 == 0) {
        e = realloc(errs->v, (errs->n + 16) * sizeof(cef_rules_error_t));
        if (e == NULL) {
            ld->full = 1;
            return;
        }
        errs->v = e;
    }

    e = &errs->v[errs->n++];
    e->line = (uint32_t) line;
    e->col = (uint32_t) col;

    if (errs->n == CEF_RULES_MAX_ERRORS) {
        snprintf(e->msg, sizeof(e->msg), "too many errors, giving up");
        ld->full = 1;
        return;
    }

    va_start(args, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, args);
    va_end(args);
}


void
cef_rules_error_format(const cef_rules_errors_t *errs, size_t i, char *buf,
    size_t size)
{
    const cef_rules_error_t  *e = &errs->v[i];
    const char               *file = errs->file ? errs->file : "-";

    if (e->line) {
        snprintf(buf, size, "%s:%u:%u: %s", file, e->line, e->col, e->msg);
    } else {
        snprintf(buf, size, "%s: %s", file, e->msg);
    }
}


void
cef_rules_errors_free(cef_rules_errors_t *errs)
{
    free(errs->file);
    free(errs->v);
    errs->file = NULL;
    errs->v = NULL;
    errs->n = 0;
}


/*
 * v with room for element n, for an array that grows by doubling (16, 32,
 * 64...): growing by a constant step copied the array over and over.  NULL
 * when out of memory (v is still valid).
 */
void *
cef_rules_load_grow(void *v, size_t n, size_t size)
{
    if (n != 0 && (n < 16 || (n & (n - 1)) != 0)) {
        return v;
    }

    return realloc(v, (n ? 2 * n : 16) * size);
}


char *
cef_rules_load_strdup(const char *s)
{
    size_t  n = strlen(s) + 1;
    char   *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }

    return p;
}


/* --- a small string -> index table ---------------------------------------- */

int
cef_rules_load_names_find(const cef_names_t *t, const char *key, uint32_t *val)
{
    uint32_t  h;

    if (t->cap == 0) {
        return 0;
    }

    h = cef_expr_hash(key, strlen(key)) & (t->cap - 1);

    while (t->keys[h]) {
        if (strcmp(t->keys[h], key) == 0) {
            if (val) {
                *val = t->vals[h];
            }
            return 1;
        }
        h = (h + 1) & (t->cap - 1);
    }

    return 0;
}


int
cef_rules_load_names_add(cef_names_t *t, const char *key, uint32_t val)
{
    cef_names_t  n;
    uint32_t     i, h;

    if ((t->n + 1) * 2 > t->cap) {
        n.cap = t->cap ? t->cap * 2 : 64;
        n.n = 0;
        n.keys = calloc(n.cap, sizeof(char *));
        n.vals = calloc(n.cap, sizeof(uint32_t));
        if (n.keys == NULL || n.vals == NULL) {
            free(n.keys);
            free(n.vals);
            return -1;
        }

        for (i = 0; i < t->cap; i++) {
            if (t->keys[i]) {
                h = cef_expr_hash(t->keys[i], strlen(t->keys[i]))
                    & (n.cap - 1);
                while (n.keys[h]) {
                    h = (h + 1) & (n.cap - 1);
                }
                n.keys[h] = t->keys[i];
                n.vals[h] = t->vals[i];
                n.n++;
            }
        }

        free(t->keys);
        free(t->vals);
        *t = n;
    }

    h = cef_expr_hash(key, strlen(key)) & (t->cap - 1);
    while (t->keys[h]) {
        h = (h + 1) & (t->cap - 1);
    }

    t->keys[h] = key;
    t->vals[h] = val;
    t->n++;

    return 0;
}


void
cef_rules_load_names_free(cef_names_t *t)
{
    free(t->keys);
    free(t->vals);
}


/* --- rules ---------------------------------------------------------------- */

static void
cef_rule_show(cef_loader_t *ld, cef_rule_t *r, yaml_node_t *item,
    uint32_t *offers)
{
    const char  *name, *near;
    uint32_t     idx, rule, other;
    cef_offer_t  *o;

    if (item->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, item, "show: lists offer names, not %s",
                             cef_rules_yaml_kind(item));
        return;
    }

    name = cef_rules_yaml_scalar(item);

    if (!cef_rules_load_names_find(&ld->offer_names, name, &idx)) {
        /* a hint costs a pass over every offer: only while errors count */
        near = ld->offer_list && !ld->full
               ? cef_expr_nearest(name, item->data.scalar.length,
                                  ld->offer_list)
               : NULL;

        if (near) {
            cef_rules_load_error(ld, item,
                                 "rule '%s' shows unknown offer '%s' (did you "
                    "mean '%s'?)", r->name ? r->name : "", name, near);
        } else {
            cef_rules_load_error(ld, item,
                                 "rule '%s' shows unknown offer '%s'",
                                 r->name ? r->name : "", name);
        }
        return;
    }

    o = &ld->rs->offers[idx];

    /* per slot, the rule (its number) that last showed an offer for it */

    if (o->slot_id != CEF_RULES_NONE && ld->slot_rule) {
        rule = ld->rs->nrules;

        if (ld->slot_rule[o->slot_id] == rule) {
            other = ld->slot_offer[o->slot_id];

            if (other == idx) {
                cef_rules_load_error(ld, item,
                                     "rule '%s' shows offer '%s' twice",
                                     r->name ? r->name : "", name);
            } else {
                cef_rules_load_error(ld, item,
                                     "rule '%s' shows two offers for slot "
                                     "'%s' ('%s' and '%s'); write two rules",
                                     r->name ? r->name : "", o->slot,
                                     ld->rs->offers[other].name, name);
            }
            return;
        }

        ld->slot_rule[o->slot_id] = rule;
        ld->slot_offer[o->slot_id] = idx;
    }

    offers[r->noffers++] = idx;
}


static uint32_t *
cef_load_rule(cef_loader_t *ld, yaml_node_t *node, uint32_t *offers)
{
    cef_rules_t       *rs = ld->rs;
    cef_rule_t        *r;
    yaml_node_pair_t  *pair;
    yaml_node_item_t  *it;
    yaml_node_t       *k, *v, *show = NULL;
    const char        *kw, *s;
    unsigned           seen = 0;
    double             prio;
    cef_expr_error_t   err;
    cef_ref_site_t     site;
    char               where[64];

    r = &rs->rules[rs->nrules];
    memset(r, 0, sizeof(cef_rule_t));
    r->line = node->start_mark.line + 1;
    r->col = node->start_mark.column + 1;
    r->offers = offers;

    snprintf(where, sizeof(where), "rule #%u", rs->nrules + 1);
    rs->nrules++;

    if (node->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, node,
                             "a rule must be a mapping with name:, when: and "
                             "show:, not %s", cef_rules_yaml_kind(node));
        return offers;
    }

    for (pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++)
    {
        k = cef_rules_yaml_node(ld, pair->key);
        v = cef_rules_yaml_node(ld, pair->value);

        kw = cef_rules_yaml_key(ld, k, cef_rule_keys, where);

        if (kw == NULL || cef_rules_yaml_dup_key(ld, k, cef_rule_keys, kw,
                                                 &seen)) {
            continue;
        }

        if (strcmp(kw, "name") == 0) {
            s = cef_rules_yaml_want_string(ld, v, "name");
            if (s == NULL) {
                continue;
            }

            if (*s == '\0') {
                cef_rules_load_error(ld, v, "empty rule name");
                continue;
            }

            if (cef_rules_load_names_find(&ld->rule_names, s, NULL)) {
                cef_rules_load_error(ld, v, "duplicate rule name '%s'", s);
                continue;
            }

            if (cef_rules_load_names_add(&ld->rule_names, s,
                                         rs->nrules - 1) != 0) {
                cef_rules_load_error(ld, v, "out of memory");
                continue;
            }

            r->name = s;

        } else if (strcmp(kw, "when") == 0) {
            s = cef_rules_yaml_want_string(ld, v, "when");
            if (s == NULL) {
                continue;
            }

            r->when = cef_expr_compile_condition(rs->st, s,
                                                 v->data.scalar.length, &err);
            if (r->when == NULL) {
                cef_rules_yaml_value_err(ld, v, err.offset, "in when",
                                         err.msg);

            } else {
                site.ld = ld;
                site.n = v;
                cef_expr_refs(r->when, cef_rules_yaml_ref_site, &site);
            }

        } else if (strcmp(kw, "show") == 0) {
            show = v;

        } else if (strcmp(kw, "priority") == 0) {
            if (cef_rules_yaml_want_number(ld, v, "priority", &prio) == 0) {
                if (prio != floor(prio) || fabs(prio) > 1e12) {
                    cef_rules_load_error(ld, v, "priority must be a whole "
                                         "number, not '%s'",
                                         cef_rules_yaml_scalar(v));
                } else {
                    r->priority = (int64_t) prio;
                }
            }

        } else {
            (void) cef_rules_yaml_want_string(ld, v, "description");
        }
    }

    if (!(seen & 1)) {
        cef_rules_load_error(ld, node, "%s has no name", where);
    }

    if (show == NULL) {
        cef_rules_load_error(ld, node,
                             "rule '%s' has no show: (the offers it shows)",
                             r->name ? r->name : where);
        return offers;
    }

    if (show->type == YAML_SEQUENCE_NODE) {
        if (show->data.sequence.items.top == show->data.sequence.items.start)
        {
            cef_rules_load_error(ld, show, "rule '%s' shows no offers",
                                 r->name ? r->name : where);
        }

        for (it = show->data.sequence.items.start;
             it < show->data.sequence.items.top; it++)
        {
            cef_rule_show(ld, r, cef_rules_yaml_node(ld, *it), offers);
        }

    } else {
        cef_rule_show(ld, r, show, offers);
    }

    return offers + r->noffers;
}


static void
cef_load_rules(cef_loader_t *ld, yaml_node_t *rules)
{
    cef_rules_t       *rs = ld->rs;
    yaml_node_item_t  *it;
    yaml_node_t       *n, *show;
    yaml_node_pair_t  *pair;
    size_t             count, noffers = 0;
    uint32_t          *next;

    if (rules->type != YAML_SEQUENCE_NODE) {
        cef_rules_load_error(ld, rules,
                             "rules must be a list of rules, not %s",
                             cef_rules_yaml_kind(rules));
        return;
    }

    count = (size_t) (rules->data.sequence.items.top
                      - rules->data.sequence.items.start);

    /* room for every offer a rule names */

    for (it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++)
    {
        n = cef_rules_yaml_node(ld, *it);
        if (n->type != YAML_MAPPING_NODE) {
            continue;
        }

        for (pair = n->data.mapping.pairs.start;
             pair < n->data.mapping.pairs.top; pair++)
        {
            show = cef_rules_yaml_node(ld, pair->value);
            if (show->type == YAML_SEQUENCE_NODE) {
                noffers += (size_t) (show->data.sequence.items.top
                                     - show->data.sequence.items.start);
            } else {
                noffers++;
            }
        }
    }

    rs->rules = calloc(count ? count : 1, sizeof(cef_rule_t));
    rs->rule_offers = calloc(noffers ? noffers : 1, sizeof(uint32_t));
    ld->slot_rule = calloc(rs->nslots + 1, sizeof(uint32_t));
    ld->slot_offer = calloc(rs->nslots + 1, sizeof(uint32_t));
    if (rs->rules == NULL || rs->rule_offers == NULL || ld->slot_rule == NULL
        || ld->slot_offer == NULL)
    {
        cef_rules_load_error(ld, rules, "out of memory");
        return;
    }

    next = rs->rule_offers;

    for (it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++)
    {
        next = cef_load_rule(ld, cef_rules_yaml_node(ld, *it), next);
    }
}


/* --- the file ------------------------------------------------------------- */

static int
cef_rule_order(const void *pa, const void *pb, void *data)
{
    const cef_rules_t  *rs = data;
    uint32_t            a = *(const uint32_t *) pa, b = *(const uint32_t *) pb;

    if (rs->rules[a].priority != rs->rules[b].priority) {
        return rs->rules[a].priority > rs->rules[b].priority ? -1 : 1;
    }

    return a < b ? -1 : a > b;
}


/* insertion-free stable order: a merge sort, qsort_r is not portable C11 */
static void
cef_sort_rules(cef_rules_t *rs, uint32_t *v, uint32_t *tmp, uint32_t n)
{
    uint32_t  mid, i, j, k;

    if (n < 2) {
        return;
    }

    mid = n / 2;
    cef_sort_rules(rs, v, tmp, mid);
    cef_sort_rules(rs, v + mid, tmp, n - mid);

    for (i = 0, j = mid, k = 0; k < n; k++) {
        if (j >= n || (i < mid && cef_rule_order(&v[i], &v[j], rs) <= 0)) {
            tmp[k] = v[i++];
        } else {
            tmp[k] = v[j++];
        }
    }

    memcpy(v, tmp, n * sizeof(uint32_t));
}


static void
cef_load_document(cef_loader_t *ld)
{
    yaml_node_t       *root, *k, *v, *offers = NULL, *rules = NULL;
    yaml_node_pair_t  *pair;
    const char        *kw;
    unsigned           seen = 0;

    root = yaml_document_get_root_node(&ld->doc);

    if (root == NULL) {
        cef_rules_load_error_at(ld, 1, 1,
                                "empty rule file (expected version:, offers: "
                                "and rules:)");
        return;
    }

    if (root->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, root,
                             "a rule file is a mapping with version:, offers: "
                             "and rules:, not %s", cef_rules_yaml_kind(root));
        return;
    }

    ld->doc_ok = 1;

    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++)
    {
        k = cef_rules_yaml_node(ld, pair->key);
        v = cef_rules_yaml_node(ld, pair->value);

        kw = cef_rules_yaml_key(ld, k, cef_top_keys, "the rule file");

        if (kw == NULL || cef_rules_yaml_dup_key(ld, k, cef_top_keys, kw,
                                                 &seen)) {
            continue;
        }

        if (strcmp(kw, "version") == 0) {
            if (v->type != YAML_SCALAR_NODE || strcmp(cef_rules_yaml_scalar(v),
                                                      "1") != 0)
            {
                cef_rules_load_error(ld, v, "unsupported version (this is "
                                     "version 1)");
            }

        } else if (strcmp(kw, "offers") == 0) {
            offers = v;

        } else if (strcmp(kw, "slots") == 0) {
            ld->slots = v;

        } else if (strcmp(kw, "plugins") == 0) {
            ld->plugins = v;

        } else if (strcmp(kw, "goals") == 0) {
            ld->goals = v;

        } else {
            rules = v;
        }
    }

    if (!(seen & 1)) {
        cef_rules_load_error(ld, root, "missing 'version: 1'");
    }

    if (offers) {
        cef_rules_offers_load(ld, offers);
    }

    if (rules) {
        cef_load_rules(ld, rules);
    }
}


static void
cef_rules_sha256(const char *buf, size_t len, char *hex)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   n = 0, i;

    if (EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) != 1) {
        n = 0;
    }

    for (i = 0; i < n && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }

    hex[2 * i] = '\0';
}


static const struct cef_plugin_func_s *
cef_plugin_func_lookup(void *data, const char *name, size_t len)
{
    return cef_plugins_func(data, name, len);
}


int
cef_rules_load_buffer(const char *name, const char *buf, size_t len,
    cef_rules_t **out, cef_rules_errors_t *errs)
{
    return cef_rules_load_buffer_with(name, buf, len, NULL, out, errs);
}


int
cef_rules_load_buffer_with(const char *name, const char *buf, size_t len,
    const cef_plugins_t *ps, cef_rules_t **out, cef_rules_errors_t *errs)
{
    cef_loader_t    ld;
    cef_rules_t    *rs;
    cef_offer_t    *o;
    yaml_parser_t   parser;
    uint32_t        i, j, k, *tmp;

    *out = NULL;
    memset(errs, 0, sizeof(*errs));
    errs->file = cef_rules_load_strdup(name ? name : "-");

    memset(&ld, 0, sizeof(ld));
    ld.buf = buf;
    ld.len = len;
    ld.errs = errs;
    ld.ps = ps ? ps : cef_plugins_builtin();

    /* offer keys: ours, then those plugins declare */

    for (k = 0; cef_rules_offers_keys[k]; k++) {
        ld.offer_keys[k] = cef_rules_offers_keys[k];
    }

    for (i = 0; i < cef_plugins_count(ld.ps); i++) {
        const cef_plugin_t  *p = cef_plugins_get(ld.ps, i);

        for (j = 0; p->offer_keys && p->offer_keys[j]; j++) {
            if (k < 31) {
                ld.offer_keys[k++] = p->offer_keys[j];
            }
        }
    }

    ld.offer_keys[k] = NULL;

    if (len > CEF_RULES_MAX_FILE) {
        cef_rules_load_error_at(&ld, 1, 1,
                                "file is larger than 16 MiB (%zu bytes)", len);
        return -1;
    }

    rs = calloc(1, sizeof(cef_rules_t));
    if (rs == NULL || (rs->st = cef_expr_symtab_create()) == NULL) {
        free(rs);
        cef_rules_load_error_at(&ld, 0, 0, "out of memory");
        return -1;
    }

    ld.rs = rs;
    cef_expr_symtab_set_funcs(rs->st, cef_plugin_func_lookup,
                              (void *) ld.ps);

    if (!yaml_parser_initialize(&parser)) {
        cef_rules_free(rs);
        cef_rules_load_error_at(&ld, 0, 0, "out of memory");
        return -1;
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);

    if (cef_rules_yaml_load(&ld, &parser) != 0) {
        yaml_document_delete(&ld.doc);
        yaml_parser_delete(&parser);
        cef_rules_free(rs);
        return -1;
    }

    cef_load_document(&ld);

    /* strings point into the document: keep it until the rule set dies */

    for (i = 0; i < rs->noffers; i++) {
        o = &rs->offers[i];
        o->name = cef_rules_load_strdup(o->name);
        if (o->slot_id != CEF_RULES_NONE) {
            o->slot = rs->slots[o->slot_id];
        }
        if (o->campaign) {
            o->campaign = cef_rules_load_strdup(o->campaign);
        }
    }

    for (i = 0; i < rs->nrules; i++) {
        if (rs->rules[i].name) {
            rs->rules[i].name = cef_rules_load_strdup(rs->rules[i].name);
        }
    }

    /*
     * slots: and plugins: are configured even when offers or rules have
     * problems, so that one run reports all of them; the document is still
     * alive for the plugins' configuration.
     */

    if (ld.doc_ok) {
        cef_rules_goals_load(&ld);      /* first: strategies ask for goals */
        cef_rules_plugins_load(&ld);
        cef_rules_goals_experiments(&ld);
    }

    if (errs->n == 0) {
        rs->order = malloc((rs->nrules + 1) * sizeof(uint32_t));
        tmp = malloc((rs->nrules + 1) * sizeof(uint32_t));

        if (rs->order && tmp) {
            for (i = 0; i < rs->nrules; i++) {
                rs->order[i] = i;
            }
            cef_sort_rules(rs, rs->order, tmp, rs->nrules);

            if (cef_rules_plan(rs) != 0) {
                cef_rules_load_error_at(&ld, 0, 0, "out of memory");
            }

        } else {
            cef_rules_load_error_at(&ld, 0, 0, "out of memory");
        }

        free(tmp);
        cef_rules_sha256(buf, len, rs->hash);
    }

    yaml_document_delete(&ld.doc);
    yaml_parser_delete(&parser);
    cef_rules_load_names_free(&ld.offer_names);
    cef_rules_load_names_free(&ld.rule_names);
    cef_rules_load_names_free(&ld.slot_names);
    free(ld.offer_list);
    free(ld.extra);
    free(ld.pos.nl);
    free(ld.slot_rule);
    free(ld.slot_offer);

    for (i = 0; i < ld.nallocs; i++) {
        free(ld.allocs[i]);
    }

    free(ld.allocs);

    if (errs->n) {
        cef_rules_free(rs);
        return -1;
    }

    *out = rs;
    return 0;
}


int
cef_rules_load_file(const char *path, cef_rules_t **out,
    cef_rules_errors_t *errs)
{
    return cef_rules_load_file_with(path, NULL, out, errs);
}


int
cef_rules_load_file_with(const char *path, const cef_plugins_t *ps,
    cef_rules_t **out, cef_rules_errors_t *errs)
{
    cef_loader_t  ld;
    struct stat   sb;
    char         *buf;
    size_t        got;
    ssize_t       n;
    int           fd, rc;

    *out = NULL;
    memset(errs, 0, sizeof(*errs));
    errs->file = cef_rules_load_strdup(path);

    memset(&ld, 0, sizeof(ld));
    ld.errs = errs;

    /* O_NONBLOCK: opening a FIFO would wait for a writer, hanging nginx -t
       and a reloading master; it is refused by the check below instead */

    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        cef_rules_load_error_at(&ld, 0, 0, "cannot open: %s", strerror(errno));
        return -1;
    }

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || fcntl(fd, F_SETFL, 0) != 0)
    {
        cef_rules_load_error_at(&ld, 0, 0, "not a regular file");
        close(fd);
        return -1;
    }

    if (sb.st_size > CEF_RULES_MAX_FILE) {
        cef_rules_load_error_at(&ld, 1, 1,
                                "file is larger than 16 MiB (%lld bytes)",
                                (long long) sb.st_size);
        close(fd);
        return -1;
    }

    buf = malloc((size_t) sb.st_size + 1);
    if (buf == NULL) {
        cef_rules_load_error_at(&ld, 0, 0, "out of memory");
        close(fd);
        return -1;
    }

    for (got = 0; got < (size_t) sb.st_size; got += (size_t) n) {
        n = read(fd, buf + got, (size_t) sb.st_size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                n = 0;
                continue;
            }
            break;
        }
    }

    close(fd);

    if (got != (size_t) sb.st_size) {
        cef_rules_load_error_at(&ld, 0, 0, "read error: %s", strerror(errno));
        free(buf);
        return -1;
    }

    cef_rules_errors_free(errs);
    rc = cef_rules_load_buffer_with(path, buf, got, ps, out, errs);
    free(buf);

    return rc;
}
