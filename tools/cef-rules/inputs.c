/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules: personas (profile attributes, request fields, variables) from
 * YAML cases, JSON (--attrs) and --set PATH=VALUE.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_tool.h"


int
cef_tool_parse_now(const char *s, int64_t *now)
{
    char       *end;
    long long   v;

    if (cef_expr_parse_time(s, strlen(s), now) == 0) {
        return 0;
    }

    errno = 0;
    v = strtoll(s, &end, 10);

    if (*s && *end == '\0' && errno == 0) {
        *now = v;
        return 0;
    }

    return -1;
}


/* --- YAML ----------------------------------------------------------------- */

static int
cef_yaml_number(const char *s, double *d)
{
    char  *end;

    if (*s == '\0' || (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))) {
        return 0;
    }

    errno = 0;
    *d = strtod(s, &end);

    return *end == '\0' && errno == 0 && isfinite(*d);
}


static int
cef_yaml_value(cef_persona_t *p, yaml_document_t *doc, const char *path,
    yaml_node_t *v, const char *file, char *err, size_t size)
{
    const char        *s;
    double             d;
    size_t             n, i;
    cef_span_t        *items;
    double            *nums;
    yaml_node_t       *k, *x;
    yaml_node_item_t  *it;
    yaml_node_pair_t  *pair;
    int                rc;

    switch (v->type) {

    case YAML_SCALAR_NODE:
        s = (const char *) v->data.scalar.value;

        if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
            return cef_persona_set_str(p, path, s, v->data.scalar.length);
        }

        if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || *s == '\0') {
            return 0;
        }

        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
            return cef_persona_set_bool(p, path, s[0] == 't');
        }

        if (cef_yaml_number(s, &d)) {
            return cef_persona_set_num(p, path, d);
        }

        return cef_persona_set_str(p, path, s, v->data.scalar.length);

    case YAML_SEQUENCE_NODE:
        n = (size_t) (v->data.sequence.items.top
                      - v->data.sequence.items.start);
        items = calloc(n + 1, sizeof(cef_span_t));
        if (items == NULL) {
            return -1;
        }

        for (i = 0, it = v->data.sequence.items.start;
             it < v->data.sequence.items.top; it++, i++)
        {
            x = yaml_document_get_node(doc, *it);
            if (x->type != YAML_SCALAR_NODE) {
                snprintf(err, size, "%s:%zu:%zu: %s: lists hold strings",
                         file, x->start_mark.line + 1,
                         x->start_mark.column + 1, path);
                free(items);
                return -2;
            }
            items[i].data = (const char *) x->data.scalar.value;
            items[i].len = x->data.scalar.length;
        }

        rc = cef_persona_set_array(p, path, items, n);
        free(items);
        return rc;

    case YAML_MAPPING_NODE:
        n = (size_t) (v->data.mapping.pairs.top
                      - v->data.mapping.pairs.start);
        items = calloc(n + 1, sizeof(cef_span_t));
        nums = calloc(n + 1, sizeof(double));
        if (items == NULL || nums == NULL) {
            free(items);
            free(nums);
            return -1;
        }

        for (i = 0, pair = v->data.mapping.pairs.start;
             pair < v->data.mapping.pairs.top; pair++, i++)
        {
            k = yaml_document_get_node(doc, pair->key);
            x = yaml_document_get_node(doc, pair->value);

            if (k->type != YAML_SCALAR_NODE || x->type != YAML_SCALAR_NODE
                || !cef_yaml_number((const char *) x->data.scalar.value,
                                    &nums[i]))
            {
                snprintf(err, size, "%s:%zu:%zu: %s: maps hold numbers",
                         file, x->start_mark.line + 1,
                         x->start_mark.column + 1, path);
                free(items);
                free(nums);
                return -2;
            }

            items[i].data = (const char *) k->data.scalar.value;
            items[i].len = k->data.scalar.length;
        }

        rc = cef_persona_set_map(p, path, items, nums, n);
        free(items);
        free(nums);
        return rc;

    default:
        return 0;
    }
}


/*
 * A case's inputs: the mappings profile:, request:, var: and visitor:.
 * request.arg, request.cookie and request.header are mappings of names.
 */
int
cef_tool_persona_yaml(cef_persona_t *p, yaml_document_t *doc,
    yaml_node_t *node, const char *file, char *err, size_t size)
{
    static const char  *sections[] = { "profile", "request", "var",
                                       "visitor", NULL };
    yaml_node_pair_t   *pair, *sub;
    yaml_node_t        *k, *v, *k2, *v2;
    const char         *sec, *name;
    char                path[512];
    size_t              i;
    int                 rc, nested;

    for (pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(doc, pair->key);
        v = yaml_document_get_node(doc, pair->value);

        if (k->type != YAML_SCALAR_NODE) {
            continue;
        }

        sec = NULL;
        for (i = 0; sections[i]; i++) {
            if (strcmp((const char *) k->data.scalar.value, sections[i]) == 0)
            {
                sec = sections[i];
            }
        }

        if (sec == NULL) {
            continue;
        }

        if (v->type != YAML_MAPPING_NODE) {
            snprintf(err, size, "%s:%zu:%zu: %s: must be a mapping", file,
                     v->start_mark.line + 1, v->start_mark.column + 1, sec);
            return -1;
        }

        for (sub = v->data.mapping.pairs.start;
             sub < v->data.mapping.pairs.top; sub++)
        {
            k2 = yaml_document_get_node(doc, sub->key);
            v2 = yaml_document_get_node(doc, sub->value);

            if (k2->type != YAML_SCALAR_NODE) {
                continue;
            }

            name = (const char *) k2->data.scalar.value;
            nested = strcmp(sec, "request") == 0
                     && (strcmp(name, "arg") == 0
                         || strcmp(name, "cookie") == 0
                         || strcmp(name, "header") == 0);

            if (nested && v2->type == YAML_MAPPING_NODE) {
                yaml_node_pair_t  *q;
                yaml_node_t       *k3, *v3;

                for (q = v2->data.mapping.pairs.start;
                     q < v2->data.mapping.pairs.top; q++)
                {
                    k3 = yaml_document_get_node(doc, q->key);
                    v3 = yaml_document_get_node(doc, q->value);

                    if (k3->type != YAML_SCALAR_NODE) {
                        continue;
                    }

                    snprintf(path, sizeof(path), "request.%s.%s", name,
                             (const char *) k3->data.scalar.value);

                    if (v3->type != YAML_SCALAR_NODE) {
                        snprintf(err, size, "%s:%zu:%zu: %s: must be a "
                                 "string", file, v3->start_mark.line + 1,
                                 v3->start_mark.column + 1, path);
                        return -1;
                    }

                    if (cef_persona_set_str(p, path,
                                            (const char *)
                                            v3->data.scalar.value,
                                            v3->data.scalar.length) != 0)
                    {
                        snprintf(err, size, "out of memory");
                        return -1;
                    }
                }

                continue;
            }

            snprintf(path, sizeof(path), "%s.%s", sec, name);
            rc = cef_yaml_value(p, doc, path, v2, file, err, size);

            if (rc == -1) {
                snprintf(err, size, "out of memory");
            }

            if (rc != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/* --- JSON ----------------------------------------------------------------- */

static int
cef_json_value(cef_persona_t *p, const char *path, json_t *v, char *err,
    size_t size)
{
    size_t        n, i;
    cef_span_t   *items;
    double       *nums;
    const char   *key;
    json_t       *x;
    int           rc;

    switch (json_typeof(v)) {
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        return cef_persona_set_bool(p, path, json_is_true(v));
    case JSON_INTEGER:
    case JSON_REAL:
        return cef_persona_set_num(p, path, json_number_value(v));
    case JSON_STRING:
        return cef_persona_set_str(p, path, json_string_value(v),
                                   json_string_length(v));
    case JSON_ARRAY:
        n = json_array_size(v);
        items = calloc(n + 1, sizeof(cef_span_t));
        if (items == NULL) {
            return -1;
        }
        json_array_foreach(v, i, x) {
            if (!json_is_string(x)) {
                snprintf(err, size, "%s: arrays hold strings", path);
                free(items);
                return -1;
            }
            items[i].data = json_string_value(x);
            items[i].len = json_string_length(x);
        }
        rc = cef_persona_set_array(p, path, items, n);
        free(items);
        return rc;
    case JSON_OBJECT:
        n = json_object_size(v);
        items = calloc(n + 1, sizeof(cef_span_t));
        nums = calloc(n + 1, sizeof(double));
        if (items == NULL || nums == NULL) {
            free(items);
            free(nums);
            return -1;
        }
        i = 0;
        json_object_foreach(v, key, x) {
            if (!json_is_number(x)) {
                snprintf(err, size, "%s: maps hold numbers", path);
                free(items);
                free(nums);
                return -1;
            }
            items[i].data = key;
            items[i].len = strlen(key);
            nums[i++] = json_number_value(x);
        }
        rc = cef_persona_set_map(p, path, items, nums, n);
        free(items);
        free(nums);
        return rc;
    }

    return 0;
}


int
cef_tool_persona_json(cef_persona_t *p, const char *prefix, json_t *obj,
    char *err, size_t size)
{
    const char  *key;
    json_t      *v;
    char         path[512];

    if (!json_is_object(obj)) {
        snprintf(err, size, "--attrs: expected a JSON object of attributes");
        return -1;
    }

    json_object_foreach(obj, key, v) {
        snprintf(path, sizeof(path), "%s.%s", prefix, key);

        if (cef_json_value(p, path, v, err, size) != 0) {
            return -1;
        }
    }

    return 0;
}


int
cef_tool_persona_assign(cef_persona_t *p, const char *assignment, char *err,
    size_t size)
{
    const char    *eq = strchr(assignment, '=');
    char           path[512];
    json_t        *v;
    json_error_t   jerr;
    size_t         n;
    int            rc;

    if (eq == NULL || eq == assignment
        || (size_t) (eq - assignment) >= sizeof(path))
    {
        snprintf(err, size, "--set needs PATH=VALUE, not '%s'", assignment);
        return -1;
    }

    n = (size_t) (eq - assignment);
    memcpy(path, assignment, n);
    path[n] = '\0';

    if (strncmp(path, "profile.", 8) != 0 && strncmp(path, "request.", 8) != 0
        && strncmp(path, "var.", 4) != 0 && strncmp(path, "visitor.", 8) != 0)
    {
        snprintf(err, size, "--set %s: paths start with profile., request., "
                 "var. or visitor.", path);
        return -1;
    }

    /*
     * request fields and nginx variables are always strings; profile and
     * visitor values are JSON if they parse (800, true, ["a"], {"k": 1}),
     * else strings
     */

    v = NULL;

    if (path[0] == 'p' || path[1] == 'i') {
        v = json_loads(eq + 1, JSON_DECODE_ANY, &jerr);
    }

    if (v == NULL) {
        return cef_persona_set_str(p, path, eq + 1, strlen(eq + 1));
    }

    rc = cef_json_value(p, path, v, err, size);
    json_decref(v);

    return rc;
}


int
cef_tool_yaml_load(yaml_parser_t *parser, yaml_document_t *doc, char *err,
    size_t size)
{
    yaml_document_t   next;
    yaml_node_t      *root;

    if (!yaml_parser_load(parser, doc)) {
        snprintf(err, size, "%zu:%zu: invalid YAML: %s",
                 parser->problem_mark.line + 1,
                 parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "syntax error");
        return -1;
    }

    /* a second document would be ignored, and its cases never run */

    if (!yaml_parser_load(parser, &next)) {
        snprintf(err, size, "%zu:%zu: invalid YAML: %s",
                 parser->problem_mark.line + 1,
                 parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "syntax error");
        yaml_document_delete(doc);
        return -1;
    }

    root = yaml_document_get_root_node(&next);

    if (root != NULL) {
        snprintf(err, size, "%zu:%zu: a cases file holds one YAML document; "
                 "a second one starts here", next.start_mark.line + 1,
                 next.start_mark.column + 1);
        yaml_document_delete(&next);
        yaml_document_delete(doc);
        return -1;
    }

    yaml_document_delete(&next);

    return 0;
}
