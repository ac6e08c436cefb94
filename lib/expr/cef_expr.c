/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr compiler: allocates an expression, has cef_expr_parse.c parse
 * it and cef_expr_symtab.c memoise it; the small utilities the folder
 * shares (hash, nearest name).  See cef_expr_eval.c for the evaluation.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


/* --- utilities ------------------------------------------------------------ */

uint32_t
cef_expr_hash(const char *p, size_t len)
{
    uint32_t  h = 2166136261u;
    size_t    i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) p[i];
        h *= 16777619u;
    }

    return h;
}


static size_t
cef_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t  row[64], i, j, prev, cur;

    if (la >= 63 || lb >= 63) {
        return (size_t) -1;
    }

    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }

    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;

        for (j = 1; j <= lb; j++) {
            cur = row[j];
            row[j] = prev + (a[i - 1] != b[j - 1]);

            if (row[j - 1] + 1 < row[j]) {
                row[j] = row[j - 1] + 1;
            }

            if (cur + 1 < row[j]) {
                row[j] = cur + 1;
            }

            prev = cur;
        }
    }

    return row[lb];
}


const char *
cef_expr_nearest(const char *word, size_t len, const char *const *cands)
{
    const char  *best = NULL;
    size_t       d, bestd = (size_t) -1, limit;

    limit = len / 3 > 2 ? len / 3 : 2;

    for ( ; *cands; cands++) {
        d = cef_edit_distance(word, len, *cands, strlen(*cands));

        if (d < bestd) {
            bestd = d;
            best = *cands;
        }
    }

    return bestd <= limit ? best : NULL;
}


static cef_expr_t *
cef_compile(cef_expr_symtab_t *st, const char *src, size_t len,
    cef_expr_error_t *err, int what)
{
    cef_expr_t  *e;

    if (len > UINT32_MAX / 2) {
        if (err) {
            err->offset = 0;
            snprintf(err->msg, sizeof(err->msg), "expression too long");
        }
        return NULL;
    }

    e = calloc(1, sizeof(cef_expr_t));
    if (e == NULL) {
        goto nomem;
    }

    e->src = malloc(len + 1);
    e->strbuf = malloc(len + 1);
    if (e->src == NULL || e->strbuf == NULL) {
        cef_expr_free(e);
        goto nomem;
    }

    memcpy(e->src, src, len);
    e->src[len] = '\0';

    if (cef_expr_parse(st, e, len, err, what) != 0) {
        cef_expr_free(e);
        return NULL;
    }

    if (cef_expr_symtab_memoise(st, e) != 0) {
        cef_expr_free(e);
        goto nomem;
    }

    return e;

nomem:
    if (err) {
        err->offset = 0;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    }
    return NULL;
}


cef_expr_t *
cef_expr_compile(cef_expr_symtab_t *st, const char *src, size_t len,
    cef_expr_error_t *err)
{
    return cef_compile(st, src, len, err, CEF_COMPILE_EXPR);
}


cef_expr_t *
cef_expr_compile_condition(cef_expr_symtab_t *st, const char *src,
    size_t len, cef_expr_error_t *err)
{
    return cef_compile(st, src, len, err, CEF_COMPILE_COND);
}


cef_expr_t *
cef_expr_compile_path(cef_expr_symtab_t *st, const char *src, size_t len,
    cef_expr_error_t *err)
{
    return cef_compile(st, src, len, err, CEF_COMPILE_PATH);
}


void
cef_expr_free(cef_expr_t *e)
{
    uint32_t  i;

    if (e == NULL) {
        return;
    }

    for (i = 0; i < e->nnodes; i++) {
        if (e->nodes[i].op == CEF_OP_MATCHES && e->nodes[i].u.re) {
            pcre2_code_free(e->nodes[i].u.re);
        }
    }

    free(e->nodes);
    free(e->src);
    free(e->strbuf);
    free(e);
}


void
cef_expr_refs(const cef_expr_t *e, cef_expr_ref_pt fn, void *data)
{
    uint32_t  i;

    for (i = 0; i < e->nnodes; i++) {
        if (e->nodes[i].op == CEF_OP_REF || e->nodes[i].op == CEF_OP_REF_KEY) {
            fn(data, e->nodes[i].u.ref.ref, e->nodes[i].start);
        }
    }
}


const char *
cef_expr_source(const cef_expr_t *e)
{
    return e->src;
}
