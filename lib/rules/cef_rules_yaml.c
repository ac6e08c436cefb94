/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules YAML: the rule file's document built from libyaml's events
 * (anchors, aliases, the nesting cap), typed reads of its nodes with
 * "did you mean" hints, and where an offset inside a scalar stands in the
 * file (line and column of an expression's reference or error).
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_int.h"


/* --- YAML helpers --------------------------------------------------------- */

yaml_node_t *
cef_rules_yaml_node(cef_loader_t *ld, int id)
{
    return yaml_document_get_node(&ld->doc, id);
}


const char *
cef_rules_yaml_scalar(yaml_node_t *n)
{
    return (const char *) n->data.scalar.value;
}


const char *
cef_rules_yaml_kind(yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:  return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default:                 return "a scalar";
    }
}


/*
 * A key of a mapping, checked against the valid keys; reports unknown keys
 * with the nearest valid one.  Returns the key or NULL.
 */
const char *
cef_rules_yaml_key(cef_loader_t *ld, yaml_node_t *key,
    const char *const *valid,
    const char *where)
{
    const char  *k, *near;
    size_t       i;

    if (key->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, key, "keys in %s must be plain names, not %s",
                             where,
                             cef_rules_yaml_kind(key));
        return NULL;
    }

    k = cef_rules_yaml_scalar(key);

    for (i = 0; valid[i]; i++) {
        if (strcmp(k, valid[i]) == 0) {
            return valid[i];
        }
    }

    near = cef_expr_nearest(k, key->data.scalar.length, valid);

    if (near) {
        cef_rules_load_error(ld, key,
                             "unknown key '%s' in %s (did you mean '%s'?)", k,
                             where, near);
    } else {
        cef_rules_load_error(ld, key, "unknown key '%s' in %s", k, where);
    }

    return NULL;
}


/* Key seen twice in one mapping?  `seen` is a bit per valid key. */
int
cef_rules_yaml_dup_key(cef_loader_t *ld, yaml_node_t *key,
    const char *const *valid,
    const char *k, unsigned *seen)
{
    unsigned  i;

    for (i = 0; valid[i] != k; i++) { /* void */ }

    if (*seen & (1u << i)) {
        cef_rules_load_error(ld, key, "duplicate key '%s'", k);
        return 1;
    }

    *seen |= 1u << i;
    return 0;
}


const char *
cef_rules_yaml_want_string(cef_loader_t *ld, yaml_node_t *v, const char *what)
{
    if (v->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, v, "%s must be a string, not %s", what,
                             cef_rules_yaml_kind(v));
        return NULL;
    }

    return cef_rules_yaml_scalar(v);
}


int
cef_rules_yaml_want_number(cef_loader_t *ld, yaml_node_t *v, const char *what,
    double *out)
{
    const char  *s;
    char        *end;

    if (v->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, v, "%s must be a number, not %s", what,
                             cef_rules_yaml_kind(v));
        return -1;
    }

    s = cef_rules_yaml_scalar(v);
    errno = 0;
    *out = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || errno || !isfinite(*out)
        || (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
    {
        cef_rules_load_error(ld, v, "%s must be a number, not '%s'", what, s);
        return -1;
    }

    return 0;
}


/*
 * What cef_value_pos() needs of a scalar, computed once per scalar: a
 * template with 400 000 placeholders asks 400 000 times, and comparing the
 * value with the file from its start each time was quadratic (85 s).
 */
static int
cef_value_index(cef_loader_t *ld, yaml_node_t *n)
{
    const char  *val = cef_rules_yaml_scalar(n), *raw = ld->buf;
    size_t       len = n->data.scalar.length, start = n->start_mark.index;
    size_t       q, i, k, *nl;

    if (ld->pos.node == n) {
        return 0;
    }

    free(ld->pos.nl);
    memset(&ld->pos, 0, sizeof(ld->pos));

    switch (n->data.scalar.style) {

    case YAML_PLAIN_SCALAR_STYLE:
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        q = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? 0 : 1;

        for (i = 0; i < len && start + q + i < ld->len
                    && raw[start + q + i] == val[i] && val[i] != '\n'; i++)
        {
            /* void */
        }

        ld->pos.verbatim = i;
        break;

    case YAML_LITERAL_SCALAR_STYLE:
        /* the content starts on the line after the indicator */
        i = start;
        while (i < ld->len && raw[i] != '\n') {
            i++;
        }
        i++;
        while (i + ld->pos.indent < ld->len
               && raw[i + ld->pos.indent] == ' ')
        {
            ld->pos.indent++;
        }

        for (i = 0, k = 0; i < len; i++) {
            k += val[i] == '\n';
        }

        nl = malloc((k + 1) * sizeof(size_t));
        if (nl == NULL) {
            return -1;
        }

        for (i = 0, k = 0; i < len; i++) {
            if (val[i] == '\n') {
                nl[k++] = i;
            }
        }

        ld->pos.nl = nl;
        ld->pos.nnl = k;
        break;

    default:
        break;
    }

    ld->pos.node = n;

    return 0;
}


/*
 * Map a byte offset inside a scalar's value to a line and column of the
 * file.  Exact when the value appears verbatim in the file up to the
 * offset (plain and quoted scalars without escapes on one line) and for
 * literal block scalars (|); otherwise the scalar's start.
 */
static void
cef_value_pos(cef_loader_t *ld, yaml_node_t *n, size_t off, size_t *line,
    size_t *col)
{
    size_t  lo, hi, mid;

    *line = n->start_mark.line + 1;
    *col = n->start_mark.column + 1;

    if (off > n->data.scalar.length || cef_value_index(ld, n) != 0) {
        return;
    }

    switch (n->data.scalar.style) {

    case YAML_PLAIN_SCALAR_STYLE:
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        if (off <= ld->pos.verbatim) {
            *col += (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) + off;
        }
        return;

    case YAML_LITERAL_SCALAR_STYLE:
        /* lo: the number of newlines before off */
        lo = 0;
        hi = ld->pos.nnl;
        while (lo < hi) {
            mid = lo + (hi - lo) / 2;
            if (ld->pos.nl[mid] < off) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }

        *line += 1 + lo;
        *col = ld->pos.indent + (lo ? off - ld->pos.nl[lo - 1] - 1 : off) + 1;
        return;

    default:
        return;
    }
}


/* Remember where each reference of an expression is first written. */
void
cef_rules_yaml_ref_site(void *data, uint32_t ref, size_t offset)
{
    cef_ref_site_t  *rsite = data;
    cef_rules_t     *rs = rsite->ld->rs;
    uint32_t        *pos, n;
    size_t           line, col;

    if (ref >= rs->nref_pos) {
        n = rs->nref_pos ? rs->nref_pos : 16;
        while (n <= ref) {
            n *= 2;
        }

        pos = realloc(rs->ref_pos, 2 * (size_t) n * sizeof(uint32_t));
        if (pos == NULL) {
            return;                     /* positions are a courtesy */
        }

        memset(pos + 2 * rs->nref_pos, 0,
               2 * (size_t) (n - rs->nref_pos) * sizeof(uint32_t));
        rs->ref_pos = pos;
        rs->nref_pos = n;
    }

    cef_value_pos(rsite->ld, rsite->n, offset, &line, &col);

    pos = &rs->ref_pos[2 * ref];

    if (pos[0] == 0 || line < pos[0] || (line == pos[0] && col < pos[1])) {
        pos[0] = (uint32_t) line;
        pos[1] = (uint32_t) col;
    }
}


void
cef_rules_yaml_value_err(cef_loader_t *ld, yaml_node_t *n, size_t off,
    const char *what, const char *msg)
{
    size_t  line, col;

    cef_value_pos(ld, n, off, &line, &col);
    cef_rules_load_error_at(ld, line, col, "%s: %s", what, msg);
}


/* --- the document, built from libyaml's events --------------------------- */

/*
 * yaml_parser_load() cannot be stopped early: it reads every level of a
 * `[[[[...` before we see the first, and libyaml's scanner spends time
 * proportional to the open flow levels on every token (100 000 levels took
 * 19 s).  The document is built here from the event stream instead, which
 * stops at the first level too deep and at a second document; an alias may
 * only stand for a scalar, so no walk of the tree can loop or grow
 * exponentially.
 */

typedef struct {
    char      *name;
    int        node;
} cef_anchor_t;


typedef struct {
    int        node;
    int        key;           /* mappings: the pending key, 0 if none */
} cef_open_t;


typedef struct {
    cef_loader_t   *ld;
    cef_open_t      open[CEF_RULES_MAX_DEPTH];
    int             depth;
    int             docs;
    cef_anchor_t   *anchors;
    size_t          nanchors;
    size_t          cap;
} cef_yaml_t;


static void
cef_yaml_err(cef_yaml_t *y, yaml_mark_t *m, const char *msg, const char *arg)
{
    cef_rules_load_error_at(y->ld, m->line + 1, m->column + 1, msg, arg);
}


static int
cef_yaml_anchor(cef_yaml_t *y, yaml_char_t *anchor, int node)
{
    cef_anchor_t  *a;

    if (anchor == NULL) {
        return 0;
    }

    if (y->nanchors == y->cap) {
        y->cap = y->cap ? 2 * y->cap : 16;
        a = realloc(y->anchors, y->cap * sizeof(cef_anchor_t));
        if (a == NULL) {
            return -1;
        }
        y->anchors = a;
    }

    /* a later anchor of the same name hides the earlier one */
    y->anchors[y->nanchors].name = (char *) anchor;
    y->anchors[y->nanchors].node = node;
    y->nanchors++;

    return 0;
}


static int
cef_yaml_alias(cef_yaml_t *y, yaml_event_t *ev)
{
    const char   *name = (const char *) ev->data.alias.anchor;
    yaml_node_t  *n;
    size_t        i;

    for (i = y->nanchors; i > 0; i--) {
        if (strcmp(y->anchors[i - 1].name, name) == 0) {
            n = cef_rules_yaml_node(y->ld, y->anchors[i - 1].node);
            if (n->type != YAML_SCALAR_NODE) {
                cef_yaml_err(y, &ev->start_mark, "an alias may only stand "
                             "for a scalar, not %s", cef_rules_yaml_kind(n));
                return 0;
            }
            return y->anchors[i - 1].node;
        }
    }

    cef_yaml_err(y, &ev->start_mark, "undefined alias '%s'", name);
    return 0;
}


/* Hang node under the innermost open collection. */
static int
cef_yaml_attach(cef_yaml_t *y, int node)
{
    cef_open_t   *o;
    yaml_node_t  *parent;
    int           ok;

    if (y->depth == 0) {
        return 1;                       /* the root */
    }

    o = &y->open[y->depth - 1];
    parent = cef_rules_yaml_node(y->ld, o->node);

    if (parent->type == YAML_SEQUENCE_NODE) {
        return yaml_document_append_sequence_item(&y->ld->doc, o->node, node);
    }

    if (o->key == 0) {
        o->key = node;
        return 1;
    }

    ok = yaml_document_append_mapping_pair(&y->ld->doc, o->node, o->key,
                                           node);
    o->key = 0;

    return ok;
}


static int
cef_yaml_node(cef_yaml_t *y, yaml_event_t *ev)
{
    yaml_node_t  *n;
    yaml_char_t  *anchor;
    int           id;

    switch (ev->type) {

    case YAML_SCALAR_EVENT:
        id = yaml_document_add_scalar(&y->ld->doc, ev->data.scalar.tag,
                                      ev->data.scalar.value,
                                      (int) ev->data.scalar.length,
                                      ev->data.scalar.style);
        anchor = ev->data.scalar.anchor;
        break;

    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (y->depth == CEF_RULES_MAX_DEPTH) {
            cef_rules_load_error_at(y->ld, ev->start_mark.line + 1,
                                    ev->start_mark.column + 1,
                                    "nested deeper than %d levels",
                                    CEF_RULES_MAX_DEPTH);
            return 0;
        }

        if (ev->type == YAML_SEQUENCE_START_EVENT) {
            id = yaml_document_add_sequence(&y->ld->doc,
                                            ev->data.sequence_start.tag,
                                            ev->data.sequence_start.style);
            anchor = ev->data.sequence_start.anchor;
        } else {
            id = yaml_document_add_mapping(&y->ld->doc,
                                           ev->data.mapping_start.tag,
                                           ev->data.mapping_start.style);
            anchor = ev->data.mapping_start.anchor;
        }
        break;

    default:
        id = cef_yaml_alias(y, ev);
        if (id == 0) {
            return 0;
        }
        if (!cef_yaml_attach(y, id)) {
            cef_yaml_err(y, &ev->start_mark, "out of memory%s", "");
            return 0;
        }
        return 1;
    }

    if (id == 0) {
        cef_yaml_err(y, &ev->start_mark, "out of memory%s", "");
        return 0;
    }

    n = cef_rules_yaml_node(y->ld, id);
    n->start_mark = ev->start_mark;
    n->end_mark = ev->end_mark;

    if (cef_yaml_anchor(y, anchor, id) != 0 || !cef_yaml_attach(y, id)) {
        cef_yaml_err(y, &ev->start_mark, "out of memory%s", "");
        return 0;
    }

    if (ev->type != YAML_SCALAR_EVENT) {
        y->open[y->depth].node = id;
        y->open[y->depth].key = 0;
        y->depth++;
    }

    return 1;
}


/*
 * Parse the whole stream into ld->doc: 0, or -1 with the problem reported.
 * Anchor names point into the events, which are kept until the end.
 */
int
cef_rules_yaml_load(cef_loader_t *ld, yaml_parser_t *parser)
{
    cef_yaml_t     y;
    yaml_event_t   ev, *kept = NULL, *grown;
    size_t         nkept = 0, i;
    const char    *ctx;
    int            rc = -1, done = 0, keep;

    memset(&y, 0, sizeof(y));
    y.ld = ld;

    if (!yaml_document_initialize(&ld->doc, NULL, NULL, NULL, 1, 1)) {
        cef_rules_load_error_at(ld, 0, 0, "out of memory");
        return -1;
    }

    while (!done) {
        if (!yaml_parser_parse(parser, &ev)) {
            ctx = parser->context ? parser->context : "";
            cef_rules_load_error_at(ld, parser->problem_mark.line + 1,
                       parser->problem_mark.column + 1, "invalid YAML: %s%s%s",
                       parser->problem ? parser->problem : "syntax error",
                       *ctx ? " " : "", ctx);
            goto out;
        }

        keep = 0;

        switch (ev.type) {

        case YAML_STREAM_END_EVENT:
            done = 1;
            break;

        case YAML_DOCUMENT_START_EVENT:
            if (++y.docs > 1) {
                cef_yaml_err(&y, &ev.start_mark, "a rule file holds one YAML "
                             "document; a second one starts here%s", "");
                yaml_event_delete(&ev);
                goto out;
            }
            break;

        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            y.depth--;
            cef_rules_yaml_node(ld, y.open[y.depth].node)->end_mark =
                                                                  ev.end_mark;
            break;

        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_ALIAS_EVENT:
            if (!cef_yaml_node(&y, &ev)) {
                yaml_event_delete(&ev);
                goto out;
            }
            keep = ev.type != YAML_ALIAS_EVENT;
            break;

        default:
            break;
        }

        if (!keep) {
            yaml_event_delete(&ev);
            continue;
        }

        /* anchors live in their events; most events have none */

        if ((ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor == NULL)
            || (ev.type == YAML_SEQUENCE_START_EVENT
                && ev.data.sequence_start.anchor == NULL)
            || (ev.type == YAML_MAPPING_START_EVENT
                && ev.data.mapping_start.anchor == NULL))
        {
            yaml_event_delete(&ev);
            continue;
        }

        grown = cef_rules_load_grow(kept, nkept, sizeof(yaml_event_t));
        if (grown == NULL) {
            yaml_event_delete(&ev);
            cef_rules_load_error_at(ld, 0, 0, "out of memory");
            goto out;
        }
        kept = grown;

        kept[nkept++] = ev;
    }

    rc = 0;

out:

    for (i = 0; i < nkept; i++) {
        yaml_event_delete(&kept[i]);
    }

    free(kept);
    free(y.anchors);

    return rc;
}
