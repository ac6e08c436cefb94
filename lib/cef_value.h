/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_value: the one value type shared by the profile store, the rule
 * engine and rule plugins.  Plain C11, no nginx types.
 *
 * Values are views: strings, arrays and maps point into memory owned by
 * someone else (a profile in the LMDB map, a compiled rule set, a request's
 * pool).  A value is valid exactly as long as the memory it points into.
 */

#ifndef CEF_VALUE_H
#define CEF_VALUE_H

#include <stddef.h>
#include <stdint.h>


/* A byte span; not NUL-terminated. */
typedef struct {
    const char  *data;
    size_t       len;
} cef_span_t;

#define cef_span_lit(s)  ((cef_span_t) { (s), sizeof(s) - 1 })


typedef enum {
    CEF_VAL_NIL = 0,
    CEF_VAL_BOOL,
    CEF_VAL_INT,
    CEF_VAL_FLOAT,
    CEF_VAL_STR,
    CEF_VAL_STR_ARRAY,     /* array of strings, e.g. segments */
    CEF_VAL_NUM_MAP        /* map string -> number, e.g. interest scores */
} cef_value_type_t;


/*
 * Arrays and maps stay encoded (msgpack, as stored) and are read with the
 * iterators below, so that looking a profile up never allocates.
 */
typedef struct {
    const uint8_t  *raw;   /* msgpack bytes of the elements, after the header */
    size_t          len;   /* bytes at raw */
    uint32_t        n;     /* element (array) or pair (map) count */
} cef_value_seq_t;


typedef struct {
    cef_value_type_t  type;
    union {
        int              b;
        int64_t          i;
        double           f;
        cef_span_t       s;
        cef_value_seq_t  seq;   /* CEF_VAL_STR_ARRAY and CEF_VAL_NUM_MAP */
    } u;
} cef_value_t;


/*
 * Iterate over a CEF_VAL_STR_ARRAY.
 *
 * @param[in]     v     the array value
 * @param[in,out] pos   byte offset into v->u.seq.raw; start at 0
 * @param[out]    out   the next element
 * @return 1 if an element was produced, 0 at the end, -1 if the encoding
 *         is malformed (the caller treats the value as absent).
 */
int cef_value_array_next(const cef_value_t *v, size_t *pos, cef_span_t *out);

/*
 * Iterate over a CEF_VAL_NUM_MAP.  Same contract as cef_value_array_next;
 * integer map values are returned as doubles.
 */
int cef_value_map_next(const cef_value_t *v, size_t *pos, cef_span_t *key,
    double *num);

/* 1 if the string array contains s, else 0. */
int cef_value_array_contains(const cef_value_t *v, cef_span_t s);

/* 1 and *num set if the number map has key, else 0. */
int cef_value_map_get(const cef_value_t *v, cef_span_t key, double *num);


#endif /* CEF_VALUE_H */
