/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_persona: inputs for rule evaluation outside nginx.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cef_persona.h"


typedef struct {
    char         *path;
    cef_value_t   v;
    void         *mem;       /* what v points to */
} cef_persona_entry_t;


struct cef_persona_s {
    cef_persona_entry_t  *v;
    size_t                n;
    size_t                cap;
};


cef_persona_t *
cef_persona_create(void)
{
    return calloc(1, sizeof(cef_persona_t));
}


void
cef_persona_free(cef_persona_t *p)
{
    size_t  i;

    if (p == NULL) {
        return;
    }

    for (i = 0; i < p->n; i++) {
        free(p->v[i].path);
        free(p->v[i].mem);
    }

    free(p->v);
    free(p);
}


static char *
cef_persona_norm(const char *path)
{
    size_t  n = strlen(path), i;
    char   *s = malloc(n + 1);

    if (s == NULL) {
        return NULL;
    }

    memcpy(s, path, n + 1);

    if (strncmp(s, "request.header.", 15) == 0) {
        for (i = 15; i < n; i++) {
            if (s[i] >= 'A' && s[i] <= 'Z') {
                s[i] |= 0x20;
            }
        }
    }

    return s;
}


/* Takes ownership of mem (which v points into). */
static int
cef_persona_put(cef_persona_t *p, const char *path, const cef_value_t *v,
    void *mem)
{
    cef_persona_entry_t  *e;
    char                 *norm;
    size_t                i;

    norm = cef_persona_norm(path);
    if (norm == NULL) {
        free(mem);
        return -1;
    }

    for (i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].path, norm) == 0) {
            free(norm);
            free(p->v[i].mem);
            p->v[i].v = *v;
            p->v[i].mem = mem;
            return 0;
        }
    }

    if (p->n == p->cap) {
        e = realloc(p->v, (p->cap ? p->cap * 2 : 16) * sizeof(*e));
        if (e == NULL) {
            free(norm);
            free(mem);
            return -1;
        }
        p->v = e;
        p->cap = p->cap ? p->cap * 2 : 16;
    }

    e = &p->v[p->n++];
    e->path = norm;
    e->v = *v;
    e->mem = mem;

    return 0;
}


int
cef_persona_set(cef_persona_t *p, const char *path, const cef_value_t *v)
{
    cef_value_t  c = *v;
    void        *mem = NULL;

    if (v->type == CEF_VAL_STR) {
        mem = malloc(v->u.s.len + 1);
        if (mem == NULL) {
            return -1;
        }
        if (v->u.s.len) {
            memcpy(mem, v->u.s.data, v->u.s.len);
        }
        c.u.s.data = mem;

    } else if (v->type == CEF_VAL_STR_ARRAY || v->type == CEF_VAL_NUM_MAP) {
        mem = malloc(v->u.seq.len + 1);
        if (mem == NULL) {
            return -1;
        }
        if (v->u.seq.len) {
            memcpy(mem, v->u.seq.raw, v->u.seq.len);
        }
        c.u.seq.raw = mem;
    }

    return cef_persona_put(p, path, &c, mem);
}


int
cef_persona_set_str(cef_persona_t *p, const char *path, const char *s,
    size_t len)
{
    cef_value_t  v;

    v.type = CEF_VAL_STR;
    v.u.s.data = s;
    v.u.s.len = len;

    return cef_persona_set(p, path, &v);
}


int
cef_persona_set_num(cef_persona_t *p, const char *path, double num)
{
    cef_value_t  v;

    if (num == floor(num) && fabs(num) < 9007199254740992.0) {
        v.type = CEF_VAL_INT;
        v.u.i = (int64_t) num;
    } else {
        v.type = CEF_VAL_FLOAT;
        v.u.f = num;
    }

    return cef_persona_set(p, path, &v);
}


int
cef_persona_set_bool(cef_persona_t *p, const char *path, int b)
{
    cef_value_t  v;

    v.type = CEF_VAL_BOOL;
    v.u.b = b != 0;

    return cef_persona_set(p, path, &v);
}


/*
 * An array (nums NULL) or a map (a number after each key) of n strings,
 * encoded as the store encodes it.
 */
static int
cef_persona_set_seq(cef_persona_t *p, const char *path, cef_value_type_t type,
    const cef_span_t *strs, const double *nums, size_t n)
{
    msgpack_sbuffer  sb;
    msgpack_packer   pk;
    cef_value_t      v;
    size_t           i;
    int              rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    for (i = 0; i < n; i++) {
        msgpack_pack_str(&pk, strs[i].len);
        msgpack_pack_str_body(&pk, strs[i].data, strs[i].len);

        if (nums == NULL) {
            continue;
        }

        if (nums[i] == floor(nums[i]) && fabs(nums[i]) < 1e15) {
            msgpack_pack_int64(&pk, (int64_t) nums[i]);
        } else {
            msgpack_pack_double(&pk, nums[i]);
        }
    }

    memset(&v, 0, sizeof(v));
    v.type = type;
    v.u.seq.raw = (const uint8_t *) sb.data;
    v.u.seq.len = sb.size;
    v.u.seq.n = (uint32_t) n;

    rc = cef_persona_set(p, path, &v);
    msgpack_sbuffer_destroy(&sb);

    return rc;
}


int
cef_persona_set_array(cef_persona_t *p, const char *path,
    const cef_span_t *items, size_t n)
{
    return cef_persona_set_seq(p, path, CEF_VAL_STR_ARRAY, items, NULL, n);
}


int
cef_persona_set_map(cef_persona_t *p, const char *path,
    const cef_span_t *keys, const double *nums, size_t n)
{
    return cef_persona_set_seq(p, path, CEF_VAL_NUM_MAP, keys, nums, n);
}


int
cef_persona_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    cef_persona_t  *p = data;
    size_t          i;

    for (i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].path, ref->path.data) == 0) {
            *out = p->v[i].v;
            return 1;
        }
    }

    return 0;
}


size_t
cef_persona_count(const cef_persona_t *p)
{
    return p->n;
}


const char *
cef_persona_path(const cef_persona_t *p, size_t i, cef_value_t *v)
{
    if (v) {
        *v = p->v[i].v;
    }

    return p->v[i].path;
}
