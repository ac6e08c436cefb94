/*
 * Copyright (C) ngx_cef_module developers
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


typedef struct {
    const char  **keys;
    uint32_t     *vals;
    uint32_t      n;
    uint32_t      cap;      /* power of two */
} cef_names_t;


typedef struct {
    const char          *buf;
    size_t               len;
    yaml_document_t      doc;
    cef_rules_errors_t  *errs;
    cef_rules_t         *rs;
    cef_names_t          offer_names;
    cef_names_t          rule_names;
    cef_names_t          slot_names;
    const char         **offer_list;   /* NULL-terminated, for hints */
    int                  full;
    int                  doc_ok;       /* the root is a mapping */

    const cef_plugins_t *ps;
    const char          *offer_keys[32];  /* base keys + plugins' keys */
    yaml_node_t         *slots;
    yaml_node_t         *plugins;
    struct {
        uint32_t         offer;
        yaml_node_t     *key;
        yaml_node_t     *val;
    }                   *extra;          /* plugin keys of offers */
    uint32_t             nextra;
    uint32_t            *slot_rule;      /* cef_rule_show() */
    uint32_t            *slot_offer;
    void               **allocs;         /* cef_conf_t arrays */
    uint32_t             nallocs;

    struct {                             /* cef_value_index() */
        yaml_node_t     *node;
        size_t           verbatim;       /* quoted, plain: bytes of the
                                            value written as is */
        size_t           indent;         /* literal: the content's indent */
        size_t          *nl;             /* literal: offsets of newlines */
        size_t           nnl;
    }                    pos;
} cef_loader_t;


static const char  *cef_top_keys[] = {
    "version", "offers", "rules", "slots", "plugins", NULL
};
static const char  *cef_offer_keys[] = {
    "slot", "html", "value", "cost", "campaign", "starts", "ends",
    "description", NULL
};
static const char  *cef_rule_keys[] = {
    "name", "when", "show", "priority", "description", NULL
};


/* --- errors --------------------------------------------------------------- */

static void
cef_err_at(cef_loader_t *ld, size_t line, size_t col, const char *fmt, ...)
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


#define cef_err(ld, node, ...)                                               \
    cef_err_at(ld, (node)->start_mark.line + 1, (node)->start_mark.column + 1, \
               __VA_ARGS__)


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
static void *
cef_grow(void *v, size_t n, size_t size)
{
    if (n != 0 && (n < 16 || (n & (n - 1)) != 0)) {
        return v;
    }

    return realloc(v, (n ? 2 * n : 16) * size);
}


/* --- a small string -> index table ---------------------------------------- */

static int
cef_names_find(const cef_names_t *t, const char *key, uint32_t *val)
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


static int
cef_names_add(cef_names_t *t, const char *key, uint32_t val)
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


static void
cef_names_free(cef_names_t *t)
{
    free(t->keys);
    free(t->vals);
}


/* --- YAML helpers --------------------------------------------------------- */

static yaml_node_t *
cef_node(cef_loader_t *ld, int id)
{
    return yaml_document_get_node(&ld->doc, id);
}


static const char *
cef_scalar(yaml_node_t *n)
{
    return (const char *) n->data.scalar.value;
}


static const char *
cef_kind(yaml_node_t *n)
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
static const char *
cef_key(cef_loader_t *ld, yaml_node_t *key, const char *const *valid,
    const char *where)
{
    const char  *k, *near;
    size_t       i;

    if (key->type != YAML_SCALAR_NODE) {
        cef_err(ld, key, "keys in %s must be plain names, not %s", where,
                cef_kind(key));
        return NULL;
    }

    k = cef_scalar(key);

    for (i = 0; valid[i]; i++) {
        if (strcmp(k, valid[i]) == 0) {
            return valid[i];
        }
    }

    near = cef_expr_nearest(k, key->data.scalar.length, valid);

    if (near) {
        cef_err(ld, key, "unknown key '%s' in %s (did you mean '%s'?)", k,
                where, near);
    } else {
        cef_err(ld, key, "unknown key '%s' in %s", k, where);
    }

    return NULL;
}


/* Key seen twice in one mapping?  `seen` is a bit per valid key. */
static int
cef_dup_key(cef_loader_t *ld, yaml_node_t *key, const char *const *valid,
    const char *k, unsigned *seen)
{
    unsigned  i;

    for (i = 0; valid[i] != k; i++) { /* void */ }

    if (*seen & (1u << i)) {
        cef_err(ld, key, "duplicate key '%s'", k);
        return 1;
    }

    *seen |= 1u << i;
    return 0;
}


static const char *
cef_want_string(cef_loader_t *ld, yaml_node_t *v, const char *what)
{
    if (v->type != YAML_SCALAR_NODE) {
        cef_err(ld, v, "%s must be a string, not %s", what, cef_kind(v));
        return NULL;
    }

    return cef_scalar(v);
}


static int
cef_want_number(cef_loader_t *ld, yaml_node_t *v, const char *what,
    double *out)
{
    const char  *s;
    char        *end;

    if (v->type != YAML_SCALAR_NODE) {
        cef_err(ld, v, "%s must be a number, not %s", what, cef_kind(v));
        return -1;
    }

    s = cef_scalar(v);
    errno = 0;
    *out = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || errno || !isfinite(*out)
        || (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
    {
        cef_err(ld, v, "%s must be a number, not '%s'", what, s);
        return -1;
    }

    return 0;
}


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


/*
 * What cef_value_pos() needs of a scalar, computed once per scalar: a
 * template with 400 000 placeholders asks 400 000 times, and comparing the
 * value with the file from its start each time was quadratic (85 s).
 */
static int
cef_value_index(cef_loader_t *ld, yaml_node_t *n)
{
    const char  *val = cef_scalar(n), *raw = ld->buf;
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

typedef struct {
    cef_loader_t  *ld;
    yaml_node_t   *n;
} cef_ref_site_t;


static void
cef_ref_site(void *data, uint32_t ref, size_t offset)
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


static void
cef_value_err(cef_loader_t *ld, yaml_node_t *n, size_t off,
    const char *what, const char *msg)
{
    size_t  line, col;

    cef_value_pos(ld, n, off, &line, &col);
    cef_err_at(ld, line, col, "%s: %s", what, msg);
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
    cef_err_at(y->ld, m->line + 1, m->column + 1, msg, arg);
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
            n = cef_node(y->ld, y->anchors[i - 1].node);
            if (n->type != YAML_SCALAR_NODE) {
                cef_yaml_err(y, &ev->start_mark, "an alias may only stand "
                             "for a scalar, not %s", cef_kind(n));
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
    parent = cef_node(y->ld, o->node);

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
            cef_err_at(y->ld, ev->start_mark.line + 1,
                       ev->start_mark.column + 1, "nested deeper than %d levels",
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

    n = cef_node(y->ld, id);
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
static int
cef_yaml_load(cef_loader_t *ld, yaml_parser_t *parser)
{
    cef_yaml_t     y;
    yaml_event_t   ev, *kept = NULL, *grown;
    size_t         nkept = 0, i;
    const char    *ctx;
    int            rc = -1, done = 0, keep;

    memset(&y, 0, sizeof(y));
    y.ld = ld;

    if (!yaml_document_initialize(&ld->doc, NULL, NULL, NULL, 1, 1)) {
        cef_err_at(ld, 0, 0, "out of memory");
        return -1;
    }

    while (!done) {
        if (!yaml_parser_parse(parser, &ev)) {
            ctx = parser->context ? parser->context : "";
            cef_err_at(ld, parser->problem_mark.line + 1,
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
            cef_node(ld, y.open[--y.depth].node)->end_mark = ev.end_mark;
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

        grown = cef_grow(kept, nkept, sizeof(yaml_event_t));
        if (grown == NULL) {
            yaml_event_delete(&ev);
            cef_err_at(ld, 0, 0, "out of memory");
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


/* --- offers --------------------------------------------------------------- */

static int
cef_offer_time(cef_loader_t *ld, yaml_node_t *v, const char *what,
    int is_end, int64_t *out)
{
    const char  *s;
    size_t       len;

    s = cef_want_string(ld, v, what);
    if (s == NULL) {
        return -1;
    }

    len = v->data.scalar.length;

    if (cef_expr_parse_time(s, len, out) != 0) {
        cef_err(ld, v, "bad date '%s' in %s (use YYYY-MM-DD or "
                "YYYY-MM-DDTHH:MM:SSZ)", s, what);
        return -1;
    }

    /* a bare date ends at the end of that day */

    if (is_end && len == 10) {
        *out += 86400;
    }

    return 0;
}


static char *
cef_strdup(const char *s)
{
    size_t  n = strlen(s) + 1;
    char   *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }

    return p;
}


static int
cef_slot_id(cef_loader_t *ld, yaml_node_t *v, const char *slot,
    uint32_t *id)
{
    cef_rules_t  *rs = ld->rs;
    char        **slots;

    if (cef_names_find(&ld->slot_names, slot, id)) {
        return 0;
    }

    slots = cef_grow(rs->slots, rs->nslots, sizeof(char *));
    if (slots == NULL) {
        goto nomem;
    }
    rs->slots = slots;

    rs->slots[rs->nslots] = cef_strdup(slot);
    if (rs->slots[rs->nslots] == NULL
        || cef_names_add(&ld->slot_names, rs->slots[rs->nslots], rs->nslots)
           != 0)
    {
        free(rs->slots[rs->nslots]);
        goto nomem;
    }

    *id = rs->nslots++;
    return 0;

nomem:
    cef_err(ld, v, "out of memory");
    return -1;
}


/* a key some plugin declared in offer_keys? */
static int
cef_offer_extra(cef_loader_t *ld, const char *kw)
{
    size_t  i;

    (void) ld;

    for (i = 0; cef_offer_keys[i]; i++) {
        if (cef_offer_keys[i] == kw) {
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

    p = cef_grow(ld->extra, ld->nextra, sizeof(*ld->extra));
    if (p == NULL) {
        cef_err(ld, k, "out of memory");
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
        cef_err(ld, key, "offer names must be plain names, not %s",
                cef_kind(key));
        return;
    }

    name = cef_scalar(key);

    if (!cef_valid_name(name)) {
        cef_err(ld, key, "invalid offer name '%s' (letters, digits, '_', "
                "'-' and '.')", name);
        return;
    }

    if (cef_names_find(&ld->offer_names, name, NULL)) {
        cef_err(ld, key, "duplicate offer name '%s'", name);
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

    if (cef_names_add(&ld->offer_names, name, rs->noffers) != 0) {
        cef_err(ld, key, "out of memory");
        return;
    }

    rs->noffers++;

    if (val->type != YAML_MAPPING_NODE) {
        cef_err(ld, val, "offer '%s' must be a mapping with slot: and html:, "
                "not %s", name, cef_kind(val));
        return;
    }

    for (pair = val->data.mapping.pairs.start;
         pair < val->data.mapping.pairs.top; pair++)
    {
        k = cef_node(ld, pair->key);
        v = cef_node(ld, pair->value);

        snprintf(what, sizeof(what), "offer '%s'", name);
        kw = cef_key(ld, k, ld->offer_keys, what);

        if (kw == NULL || cef_dup_key(ld, k, ld->offer_keys, kw, &seen)) {
            continue;
        }

        if (cef_offer_extra(ld, kw)) {
            cef_add_extra(ld, rs->noffers - 1, k, v);
            continue;
        }

        if (strcmp(kw, "slot") == 0) {
            s = cef_want_string(ld, v, "slot");
            if (s == NULL) {
                continue;
            }

            if (!cef_valid_name(s)) {
                cef_err(ld, v, "invalid slot name '%s' (letters, digits, "
                        "'_', '-' and '.')", s);
                continue;
            }

            slot = v;
            o->slot = s;
            (void) cef_slot_id(ld, v, s, &o->slot_id);

        } else if (strcmp(kw, "html") == 0) {
            s = cef_want_string(ld, v, "html");
            if (s == NULL) {
                continue;
            }

            html = v;
            o->html = cef_template_compile(rs->st, s, v->data.scalar.length,
                                           &err);
            if (o->html == NULL) {
                cef_value_err(ld, v, err.offset, "in html", err.msg);

            } else {
                site.ld = ld;
                site.n = v;
                cef_template_refs(o->html, cef_ref_site, &site);
            }

        } else if (strcmp(kw, "value") == 0) {
            (void) cef_want_number(ld, v, "value", &o->value);

        } else if (strcmp(kw, "cost") == 0) {
            (void) cef_want_number(ld, v, "cost", &o->cost);

        } else if (strcmp(kw, "campaign") == 0) {
            o->campaign = cef_want_string(ld, v, "campaign");

        } else if (strcmp(kw, "starts") == 0) {
            if (cef_offer_time(ld, v, "starts", 0, &o->starts) == 0) {
                starts = v;
            }

        } else if (strcmp(kw, "ends") == 0) {
            if (cef_offer_time(ld, v, "ends", 1, &o->ends) == 0
                && starts && o->ends <= o->starts)
            {
                cef_err(ld, v, "offer '%s' ends before it starts", name);
            }

        } else {
            (void) cef_want_string(ld, v, "description");
        }
    }

    if (slot == NULL) {
        cef_err(ld, key, "offer '%s' has no slot (add slot: NAME)", name);
    }

    if (html == NULL && !(seen & 2)) {
        cef_err(ld, key, "offer '%s' has no html", name);
    }
}


static void
cef_load_offers(cef_loader_t *ld, yaml_node_t *offers)
{
    yaml_node_pair_t  *pair;
    size_t             n, i;

    if (offers->type != YAML_MAPPING_NODE) {
        cef_err(ld, offers, "offers must be a mapping of offer names to "
                "offers, not %s", cef_kind(offers));
        return;
    }

    n = (size_t) (offers->data.mapping.pairs.top
                  - offers->data.mapping.pairs.start);

    ld->rs->offers = calloc(n ? n : 1, sizeof(cef_offer_t));
    ld->offer_list = calloc(n + 1, sizeof(char *));
    if (ld->rs->offers == NULL || ld->offer_list == NULL) {
        cef_err(ld, offers, "out of memory");
        return;
    }

    for (pair = offers->data.mapping.pairs.start;
         pair < offers->data.mapping.pairs.top; pair++)
    {
        cef_load_offer(ld, cef_node(ld, pair->key), cef_node(ld, pair->value));
    }

    for (i = 0; i < ld->rs->noffers; i++) {
        ld->offer_list[i] = ld->rs->offers[i].name;
    }
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
        cef_err(ld, item, "show: lists offer names, not %s", cef_kind(item));
        return;
    }

    name = cef_scalar(item);

    if (!cef_names_find(&ld->offer_names, name, &idx)) {
        /* a hint costs a pass over every offer: only while errors count */
        near = ld->offer_list && !ld->full
               ? cef_expr_nearest(name, item->data.scalar.length,
                                  ld->offer_list)
               : NULL;

        if (near) {
            cef_err(ld, item, "rule '%s' shows unknown offer '%s' (did you "
                    "mean '%s'?)", r->name ? r->name : "", name, near);
        } else {
            cef_err(ld, item, "rule '%s' shows unknown offer '%s'",
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
                cef_err(ld, item, "rule '%s' shows offer '%s' twice",
                        r->name ? r->name : "", name);
            } else {
                cef_err(ld, item, "rule '%s' shows two offers for slot '%s' "
                        "('%s' and '%s'); write two rules",
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
        cef_err(ld, node, "a rule must be a mapping with name:, when: and "
                "show:, not %s", cef_kind(node));
        return offers;
    }

    for (pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++)
    {
        k = cef_node(ld, pair->key);
        v = cef_node(ld, pair->value);

        kw = cef_key(ld, k, cef_rule_keys, where);

        if (kw == NULL || cef_dup_key(ld, k, cef_rule_keys, kw, &seen)) {
            continue;
        }

        if (strcmp(kw, "name") == 0) {
            s = cef_want_string(ld, v, "name");
            if (s == NULL) {
                continue;
            }

            if (*s == '\0') {
                cef_err(ld, v, "empty rule name");
                continue;
            }

            if (cef_names_find(&ld->rule_names, s, NULL)) {
                cef_err(ld, v, "duplicate rule name '%s'", s);
                continue;
            }

            if (cef_names_add(&ld->rule_names, s, rs->nrules - 1) != 0) {
                cef_err(ld, v, "out of memory");
                continue;
            }

            r->name = s;

        } else if (strcmp(kw, "when") == 0) {
            s = cef_want_string(ld, v, "when");
            if (s == NULL) {
                continue;
            }

            r->when = cef_expr_compile_condition(rs->st, s,
                                                 v->data.scalar.length, &err);
            if (r->when == NULL) {
                cef_value_err(ld, v, err.offset, "in when", err.msg);

            } else {
                site.ld = ld;
                site.n = v;
                cef_expr_refs(r->when, cef_ref_site, &site);
            }

        } else if (strcmp(kw, "show") == 0) {
            show = v;

        } else if (strcmp(kw, "priority") == 0) {
            if (cef_want_number(ld, v, "priority", &prio) == 0) {
                if (prio != floor(prio) || fabs(prio) > 1e12) {
                    cef_err(ld, v, "priority must be a whole number, not "
                            "'%s'", cef_scalar(v));
                } else {
                    r->priority = (int64_t) prio;
                }
            }

        } else {
            (void) cef_want_string(ld, v, "description");
        }
    }

    if (!(seen & 1)) {
        cef_err(ld, node, "%s has no name", where);
    }

    if (show == NULL) {
        cef_err(ld, node, "rule '%s' has no show: (the offers it shows)",
                r->name ? r->name : where);
        return offers;
    }

    if (show->type == YAML_SEQUENCE_NODE) {
        if (show->data.sequence.items.top == show->data.sequence.items.start)
        {
            cef_err(ld, show, "rule '%s' shows no offers",
                    r->name ? r->name : where);
        }

        for (it = show->data.sequence.items.start;
             it < show->data.sequence.items.top; it++)
        {
            cef_rule_show(ld, r, cef_node(ld, *it), offers);
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
        cef_err(ld, rules, "rules must be a list of rules, not %s",
                cef_kind(rules));
        return;
    }

    count = (size_t) (rules->data.sequence.items.top
                      - rules->data.sequence.items.start);

    /* room for every offer a rule names */

    for (it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++)
    {
        n = cef_node(ld, *it);
        if (n->type != YAML_MAPPING_NODE) {
            continue;
        }

        for (pair = n->data.mapping.pairs.start;
             pair < n->data.mapping.pairs.top; pair++)
        {
            show = cef_node(ld, pair->value);
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
        cef_err(ld, rules, "out of memory");
        return;
    }

    next = rs->rule_offers;

    for (it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++)
    {
        next = cef_load_rule(ld, cef_node(ld, *it), next);
    }
}


/* --- plugins: slots: and plugins: sections --------------------------------- */

static cef_conf_t *
cef_conf_alloc(cef_loader_t *ld, size_t n)
{
    cef_conf_t  *c;
    void        *p;

    p = cef_grow(ld->allocs, ld->nallocs, sizeof(void *));
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
            k = cef_node(ld, pair->key);
            if (k->type != YAML_SCALAR_NODE) {
                cef_err(ld, k, "keys must be plain names, not %s",
                        cef_kind(k));
                return -1;
            }

            if (cef_conf_build(ld, cef_node(ld, pair->value), cef_scalar(k),
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
            if (cef_conf_build(ld, cef_node(ld, *it), NULL, &items[i]) != 0) {
                return -1;
            }
        }
        return 0;

    default:
        out->type = CEF_CONF_SCALAR;
        out->value = cef_scalar(n);
        return 0;
    }
}


typedef struct {
    cef_loader_t  *ld;
} cef_host_t;


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

    v = cef_grow(rs->pexprs, rs->npexprs, sizeof(cef_expr_t *));
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
        cef_err_at(ld, pe->at->line, pe->at->col, "%s: %s", plugin, msg);
    } else {
        cef_err(ld, section, "%s: %s", plugin, msg);
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
                               cef_scalar(ld->extra[j].key),
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
        cef_err(ld, ld->slots, "slots must be a mapping of slot names to "
                "their strategy, not %s", cef_kind(ld->slots));
        return;
    }

    for (pair = ld->slots->data.mapping.pairs.start;
         pair < ld->slots->data.mapping.pairs.top; pair++)
    {
        k = cef_node(ld, pair->key);
        v = cef_node(ld, pair->value);

        if (k->type != YAML_SCALAR_NODE) {
            cef_err(ld, k, "slot names must be plain names, not %s",
                    cef_kind(k));
            continue;
        }

        name = cef_scalar(k);

        if (!cef_names_find(&ld->slot_names, name, &sid)) {
            near = NULL;
            list = ld->full ? NULL : calloc(rs->nslots + 1, sizeof(char *));
            if (list && rs->nslots) {
                memcpy(list, rs->slots, rs->nslots * sizeof(char *));
                near = cef_expr_nearest(name, k->data.scalar.length,
                                        (const char *const *) list);
            }
            free(list);

            if (near) {
                cef_err(ld, k, "no offer uses slot '%s' (did you mean "
                        "'%s'?)", name, near);
            } else {
                cef_err(ld, k, "no offer uses slot '%s'", name);
            }
            continue;
        }

        if (rs->strategy[sid].set) {
            cef_err(ld, k, "duplicate slot '%s'", name);
            continue;
        }

        rs->strategy[sid].set = 1;

        if (v->type != YAML_MAPPING_NODE) {
            cef_err(ld, v, "slot '%s' must be a mapping with strategy:, not "
                    "%s", name, cef_kind(v));
            continue;
        }

        strat = NULL;
        implied = 0;
        n = 0;

        for (p2 = v->data.mapping.pairs.start;
             p2 < v->data.mapping.pairs.top; p2++)
        {
            k2 = cef_node(ld, p2->key);
            if (k2->type == YAML_SCALAR_NODE
                && strcmp(cef_scalar(k2), "strategy") == 0)
            {
                strat = cef_node(ld, p2->value);

            } else {
                n++;
                if (k2->type == YAML_SCALAR_NODE
                    && (strcmp(cef_scalar(k2), "holdout") == 0
                        || strcmp(cef_scalar(k2), "experiment") == 0))
                {
                    implied = 1;
                }
            }
        }

        if (strat && strat->type != YAML_SCALAR_NODE) {
            cef_err(ld, strat, "strategy must be a plugin name, not %s",
                    cef_kind(strat));
            continue;
        }

        p = cef_plugins_find(ld->ps, strat ? cef_scalar(strat)
                                           : implied ? "experiment"
                                                     : "priority");

        if (strat == NULL && p == NULL) {
            cef_err(ld, v, "no default strategy is loaded");
            continue;
        }

        if (p == NULL || p->select == NULL) {
            near = cef_plugin_nearest(ld, cef_scalar(strat), 1);
            cef_plugin_names(ld, 1, names, sizeof(names));

            if (near && strcmp(near, cef_scalar(strat)) != 0) {
                cef_err(ld, strat, "unknown strategy '%s' (did you mean "
                        "'%s'?)", cef_scalar(strat), near);
            } else {
                cef_err(ld, strat, "unknown strategy '%s' (strategies: %s)",
                        cef_scalar(strat), names);
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
            cef_err(ld, v, "out of memory");
            return;
        }
        conf.items = items;

        bad = 0;

        for (p2 = v->data.mapping.pairs.start;
             p2 < v->data.mapping.pairs.top; p2++)
        {
            k2 = cef_node(ld, p2->key);

            if (k2->type != YAML_SCALAR_NODE) {
                cef_err(ld, k2, "keys must be plain names, not %s",
                        cef_kind(k2));
                bad = 1;
                break;
            }

            if (strcmp(cef_scalar(k2), "strategy") == 0) {
                continue;
            }

            if (cef_conf_build(ld, cef_node(ld, p2->value), cef_scalar(k2),
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
                cef_err_at(ld, items[0].line, items[0].col,
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


static void
cef_load_plugins(cef_loader_t *ld)
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
            cef_err(ld, ld->plugins, "plugins must be a mapping of plugin "
                    "names to their configuration, not %s",
                    cef_kind(ld->plugins));
            return;
        }

        for (pair = ld->plugins->data.mapping.pairs.start;
             pair < ld->plugins->data.mapping.pairs.top; pair++)
        {
            k = cef_node(ld, pair->key);

            if (k->type != YAML_SCALAR_NODE) {
                cef_err(ld, k, "plugin names must be plain names, not %s",
                        cef_kind(k));
                continue;
            }

            for (i = 0; i < cef_plugins_count(ld->ps); i++) {
                if (strcmp(cef_plugins_get(ld->ps, i)->name, cef_scalar(k))
                    == 0)
                {
                    break;
                }
            }

            if (i == cef_plugins_count(ld->ps)) {
                near = cef_plugin_nearest(ld, cef_scalar(k), 0);
                cef_plugin_names(ld, 0, names, sizeof(names));
                if (near) {
                    cef_err(ld, k, "unknown plugin '%s' (did you mean "
                            "'%s'?)", cef_scalar(k), near);
                } else {
                    cef_err(ld, k, "unknown plugin '%s' (plugins: %s)",
                            cef_scalar(k), names);
                }
                continue;
            }

            if (confs[i]) {
                cef_err(ld, k, "duplicate plugin '%s'", cef_scalar(k));
                continue;
            }

            confs[i] = cef_node(ld, pair->value);
        }
    }

    if (ld->errs->n > nerrs) {
        return;
    }

    if (cef_plugin_offers(ld) != 0) {
        cef_err_at(ld, 0, 0, "out of memory");
        return;
    }

    memset(&pr, 0, sizeof(pr));
    pr.file = ld->errs->file;
    pr.noffers = rs->noffers;
    pr.offers = rs->poffers;
    pr.nslots = rs->nslots;
    pr.slots = (const char *const *) rs->slots;
    pr.compile = cef_host_compile;
    pr.host = ld;

    rs->strategy = calloc(rs->nslots + 1, sizeof(*rs->strategy));
    rs->active = calloc(cef_plugins_count(ld->ps) + 1, sizeof(*rs->active));
    if (rs->strategy == NULL || rs->active == NULL) {
        cef_err_at(ld, 0, 0, "out of memory");
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
                cef_err(ld, confs[i], "plugin '%s' takes no configuration "
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
        cef_err_at(ld, 1, 1, "empty rule file (expected version:, offers: "
                   "and rules:)");
        return;
    }

    if (root->type != YAML_MAPPING_NODE) {
        cef_err(ld, root, "a rule file is a mapping with version:, offers: "
                "and rules:, not %s", cef_kind(root));
        return;
    }

    ld->doc_ok = 1;

    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++)
    {
        k = cef_node(ld, pair->key);
        v = cef_node(ld, pair->value);

        kw = cef_key(ld, k, cef_top_keys, "the rule file");

        if (kw == NULL || cef_dup_key(ld, k, cef_top_keys, kw, &seen)) {
            continue;
        }

        if (strcmp(kw, "version") == 0) {
            if (v->type != YAML_SCALAR_NODE || strcmp(cef_scalar(v), "1") != 0)
            {
                cef_err(ld, v, "unsupported version (this is version 1)");
            }

        } else if (strcmp(kw, "offers") == 0) {
            offers = v;

        } else if (strcmp(kw, "slots") == 0) {
            ld->slots = v;

        } else if (strcmp(kw, "plugins") == 0) {
            ld->plugins = v;

        } else {
            rules = v;
        }
    }

    if (!(seen & 1)) {
        cef_err(ld, root, "missing 'version: 1'");
    }

    if (offers) {
        cef_load_offers(ld, offers);
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
    yaml_parser_t   parser;
    uint32_t        i, j, k, *tmp;

    *out = NULL;
    memset(errs, 0, sizeof(*errs));
    errs->file = cef_strdup(name ? name : "-");

    memset(&ld, 0, sizeof(ld));
    ld.buf = buf;
    ld.len = len;
    ld.errs = errs;
    ld.ps = ps ? ps : cef_plugins_builtin();

    /* offer keys: ours, then those plugins declare */

    for (k = 0; cef_offer_keys[k]; k++) {
        ld.offer_keys[k] = cef_offer_keys[k];
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
        cef_err_at(&ld, 1, 1, "file is larger than 16 MiB (%zu bytes)", len);
        return -1;
    }

    rs = calloc(1, sizeof(cef_rules_t));
    if (rs == NULL || (rs->st = cef_expr_symtab_create()) == NULL) {
        free(rs);
        cef_err_at(&ld, 0, 0, "out of memory");
        return -1;
    }

    ld.rs = rs;
    cef_expr_symtab_set_funcs(rs->st, cef_plugin_func_lookup,
                              (void *) ld.ps);

    if (!yaml_parser_initialize(&parser)) {
        cef_rules_free(rs);
        cef_err_at(&ld, 0, 0, "out of memory");
        return -1;
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);

    if (cef_yaml_load(&ld, &parser) != 0) {
        yaml_document_delete(&ld.doc);
        yaml_parser_delete(&parser);
        cef_rules_free(rs);
        return -1;
    }

    cef_load_document(&ld);

    /* strings point into the document: keep it until the rule set dies */

    for (i = 0; i < rs->noffers; i++) {
        rs->offers[i].name = cef_strdup(rs->offers[i].name);
        if (rs->offers[i].slot_id != CEF_RULES_NONE) {
            rs->offers[i].slot = rs->slots[rs->offers[i].slot_id];
        }
        if (rs->offers[i].campaign) {
            rs->offers[i].campaign = cef_strdup(rs->offers[i].campaign);
        }
    }

    for (i = 0; i < rs->nrules; i++) {
        if (rs->rules[i].name) {
            rs->rules[i].name = cef_strdup(rs->rules[i].name);
        }
    }

    /*
     * slots: and plugins: are configured even when offers or rules have
     * problems, so that one run reports all of them; the document is still
     * alive for the plugins' configuration.
     */

    if (ld.doc_ok) {
        cef_load_plugins(&ld);
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
                cef_err_at(&ld, 0, 0, "out of memory");
            }

        } else {
            cef_err_at(&ld, 0, 0, "out of memory");
        }

        free(tmp);
        cef_rules_sha256(buf, len, rs->hash);
    }

    yaml_document_delete(&ld.doc);
    yaml_parser_delete(&parser);
    cef_names_free(&ld.offer_names);
    cef_names_free(&ld.rule_names);
    cef_names_free(&ld.slot_names);
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
    errs->file = cef_strdup(path);

    memset(&ld, 0, sizeof(ld));
    ld.errs = errs;

    /* O_NONBLOCK: opening a FIFO would wait for a writer, hanging nginx -t
       and a reloading master; it is refused by the check below instead */

    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        cef_err_at(&ld, 0, 0, "cannot open: %s", strerror(errno));
        return -1;
    }

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || fcntl(fd, F_SETFL, 0) != 0)
    {
        cef_err_at(&ld, 0, 0, "not a regular file");
        close(fd);
        return -1;
    }

    if (sb.st_size > CEF_RULES_MAX_FILE) {
        cef_err_at(&ld, 1, 1, "file is larger than 16 MiB (%lld bytes)",
                   (long long) sb.st_size);
        close(fd);
        return -1;
    }

    buf = malloc((size_t) sb.st_size + 1);
    if (buf == NULL) {
        cef_err_at(&ld, 0, 0, "out of memory");
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
        cef_err_at(&ld, 0, 0, "read error: %s", strerror(errno));
        free(buf);
        return -1;
    }

    cef_rules_errors_free(errs);
    rc = cef_rules_load_buffer_with(path, buf, got, ps, out, errs);
    free(buf);

    return rc;
}
