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
#include <stddef.h>
#include <stdint.h>
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


/* The entry of valid that key is, or NULL (no error reported). */
const char *
cef_rules_yaml_known(yaml_node_t *key, const char *const *valid)
{
    const char  *k;
    size_t       i;

    if (key->type != YAML_SCALAR_NODE) {
        return NULL;
    }

    k = cef_rules_yaml_scalar(key);

    for (i = 0; valid[i]; i++) {
        if (strcmp(k, valid[i]) == 0) {
            return valid[i];
        }
    }

    return NULL;
}


/*
 * A key of a mapping, checked against the valid keys; reports unknown keys
 * with the nearest valid one.  Returns the key or NULL.  (Callers that
 * format `where` for every key first ask cef_rules_yaml_known(): the
 * snprintf() was 3 % of compiling 10 000 rules.)
 */
const char *
cef_rules_yaml_key(cef_loader_t *ld, yaml_node_t *key,
    const char *const *valid,
    const char *where)
{
    const char  *k, *near;

    if (key->type != YAML_SCALAR_NODE) {
        cef_rules_load_error(ld, key, "keys in %s must be plain names, not %s",
                             where,
                             cef_rules_yaml_kind(key));
        return NULL;
    }

    k = cef_rules_yaml_known(key, valid);
    if (k != NULL) {
        return k;
    }

    k = cef_rules_yaml_scalar(key);
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
 *
 * The nodes are libyaml's yaml_node_t in ld->doc.nodes (so every reader
 * uses libyaml's accessors), but their memory is ours: yaml_document_add_*
 * copies each value and each tag once more, checks both for UTF-8 again
 * (the parser already did) and gives every collection its own growing
 * array, which was a sixth of compiling 10 000 rules.  Here values and
 * the finished item and pair arrays go to a block arena; a collection's
 * children collect on one stack while it is open (the open ones are nested,
 * so theirs are on top) and move to the arena when it ends.  Tags are not
 * kept (nothing reads them).  cef_rules_yaml_free() releases it all.
 */

#define CEF_YAML_BLOCK  65536


typedef struct {
    char      *name;
    int        node;
} cef_anchor_t;


typedef struct {
    int        node;
    int        key;           /* mappings: the pending key, 0 if none */
    size_t     base;          /* its children from kids[base] */
} cef_open_t;


typedef struct {
    cef_loader_t   *ld;
    cef_open_t      open[CEF_RULES_MAX_DEPTH];
    int             depth;
    int             docs;
    cef_anchor_t   *anchors;
    size_t          nanchors;
    size_t          cap;
    int            *kids;         /* children of the open collections */
    size_t          nkids;
    size_t          kidcap;
} cef_yaml_t;


/* size bytes of the document's arena, aligned for any node data */
static void *
cef_yaml_alloc(cef_loader_t *ld, size_t size)
{
    size_t   hdr = sizeof(max_align_t), bsize;
    char    *b, *p;

    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

    if (size > ld->mem.left) {
        bsize = size + hdr > CEF_YAML_BLOCK ? size + hdr : CEF_YAML_BLOCK;
        b = malloc(bsize);
        if (b == NULL) {
            return NULL;
        }
        *(void **) b = ld->mem.blocks;
        ld->mem.blocks = b;
        ld->mem.next = b + hdr;
        ld->mem.left = bsize - hdr;
    }

    p = ld->mem.next;
    ld->mem.next += size;
    ld->mem.left -= size;

    return p;
}


void
cef_rules_yaml_free(cef_loader_t *ld)
{
    void  *b, *prev;

    for (b = ld->mem.blocks; b; b = prev) {
        prev = *(void **) b;
        free(b);
    }

    free(ld->doc.nodes.start);
    memset(&ld->doc, 0, sizeof(ld->doc));
    memset(&ld->mem, 0, sizeof(ld->mem));
}


/* Append a node: its id (1-based, as libyaml counts), 0 out of memory. */
static int
cef_yaml_push(cef_loader_t *ld, const yaml_node_t *n)
{
    yaml_document_t  *d = &ld->doc;
    yaml_node_t      *grown;
    size_t            used = d->nodes.top - d->nodes.start, cap;

    if (d->nodes.top == d->nodes.end) {
        cap = used ? 2 * used : 256;
        if (cap > INT32_MAX) {
            return 0;
        }
        grown = realloc(d->nodes.start, cap * sizeof(yaml_node_t));
        if (grown == NULL) {
            return 0;
        }
        d->nodes.start = grown;
        d->nodes.top = grown + used;
        d->nodes.end = grown + cap;
    }

    *d->nodes.top++ = *n;

    return (int) (used + 1);
}


static int
cef_yaml_kid(cef_yaml_t *y, int id)
{
    int  *grown;

    if (y->nkids == y->kidcap) {
        y->kidcap = y->kidcap ? 2 * y->kidcap : 256;
        grown = realloc(y->kids, y->kidcap * sizeof(int));
        if (grown == NULL) {
            return 0;
        }
        y->kids = grown;
    }

    y->kids[y->nkids++] = id;

    return 1;
}


/* The innermost open collection ends: its children move to the arena. */
static int
cef_yaml_close(cef_yaml_t *y, yaml_mark_t end)
{
    cef_open_t        *o = &y->open[--y->depth];
    yaml_node_t       *n = cef_rules_yaml_node(y->ld, o->node);
    size_t             nkids = y->nkids - o->base, i;
    yaml_node_pair_t  *pairs;
    yaml_node_item_t  *items;

    n->end_mark = end;
    y->nkids = o->base;

    if (nkids == 0) {
        return 1;
    }

    if (n->type == YAML_SEQUENCE_NODE) {
        items = cef_yaml_alloc(y->ld, nkids * sizeof(yaml_node_item_t));
        if (items == NULL) {
            return 0;
        }
        memcpy(items, y->kids + o->base, nkids * sizeof(int));
        n->data.sequence.items.start = items;
        n->data.sequence.items.top = items + nkids;
        n->data.sequence.items.end = items + nkids;
        return 1;
    }

    pairs = cef_yaml_alloc(y->ld, nkids / 2 * sizeof(yaml_node_pair_t));
    if (pairs == NULL) {
        return 0;
    }

    for (i = 0; i < nkids / 2; i++) {
        pairs[i].key = y->kids[o->base + 2 * i];
        pairs[i].value = y->kids[o->base + 2 * i + 1];
    }

    n->data.mapping.pairs.start = pairs;
    n->data.mapping.pairs.top = pairs + nkids / 2;
    n->data.mapping.pairs.end = pairs + nkids / 2;

    return 1;
}


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

    if (y->depth == 0) {
        return 1;                       /* the root */
    }

    o = &y->open[y->depth - 1];

    if (cef_rules_yaml_node(y->ld, o->node)->type == YAML_SEQUENCE_NODE) {
        return cef_yaml_kid(y, node);
    }

    if (o->key == 0) {
        o->key = node;
        return 1;
    }

    if (!cef_yaml_kid(y, o->key) || !cef_yaml_kid(y, node)) {
        return 0;
    }

    o->key = 0;

    return 1;
}


static int
cef_yaml_node(cef_yaml_t *y, yaml_event_t *ev)
{
    yaml_node_t   n;
    yaml_char_t  *anchor, *value;
    int           id;

    memset(&n, 0, sizeof(n));
    n.start_mark = ev->start_mark;
    n.end_mark = ev->end_mark;

    switch (ev->type) {

    case YAML_SCALAR_EVENT:
        value = cef_yaml_alloc(y->ld, ev->data.scalar.length + 1);
        if (value == NULL) {
            id = 0;
            break;
        }
        memcpy(value, ev->data.scalar.value, ev->data.scalar.length);
        value[ev->data.scalar.length] = '\0';

        n.type = YAML_SCALAR_NODE;
        n.data.scalar.value = value;
        n.data.scalar.length = ev->data.scalar.length;
        n.data.scalar.style = ev->data.scalar.style;
        id = cef_yaml_push(y->ld, &n);
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
            n.type = YAML_SEQUENCE_NODE;
            n.data.sequence.style = ev->data.sequence_start.style;
            anchor = ev->data.sequence_start.anchor;
        } else {
            n.type = YAML_MAPPING_NODE;
            n.data.mapping.style = ev->data.mapping_start.style;
            anchor = ev->data.mapping_start.anchor;
        }
        id = cef_yaml_push(y->ld, &n);
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

    if (cef_yaml_anchor(y, anchor, id) != 0 || !cef_yaml_attach(y, id)) {
        cef_yaml_err(y, &ev->start_mark, "out of memory%s", "");
        return 0;
    }

    if (ev->type != YAML_SCALAR_EVENT) {
        y->open[y->depth].node = id;
        y->open[y->depth].key = 0;
        y->open[y->depth].base = y->nkids;
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
            if (!cef_yaml_close(&y, ev.end_mark)) {
                cef_yaml_err(&y, &ev.start_mark, "out of memory%s", "");
                yaml_event_delete(&ev);
                goto out;
            }
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
    free(y.kids);

    return rc;
}
