/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_writer_int.h: what the writer's files share, and nothing outside
 * lib/writer includes it (cef-sync and the tests include cef_writer.h):
 * the state of one writer call (cef_writer_t) and the cef_w_* functions one
 * file defines and another calls.  cef_w_ is the folder's internal prefix:
 * such a function is declared here only, under the file that defines it,
 * and nothing outside lib/writer calls it; the public names are
 * cef_writer_* (cef_writer.h).
 *
 *   cef_writer_fs.c        errors, the directory, the lock, generations,
 *                          transactions, the metadata record
 *   cef_writer_check.c     record validation, key hashing
 *   cef_writer_load.c      full loads (cef_writer_load)
 *   cef_writer_profile.c   one stored profile and its index entries,
 *                          rewritten in place (deltas and streams)
 *   cef_writer_delta.c     delta records, cef_writer_apply
 *   cef_writer_publish.c   published records (weights, rule sets) in any
 *                          of the three, and their carry-over on a load
 *   cef_writer_stream.c    stream sessions (cef_writer_stream_*)
 *   cef_writer_verify.c    cef_writer_verify (reads a store on its own)
 */

#ifndef CEF_WRITER_INT_H
#define CEF_WRITER_INT_H

/* fallocate(2) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <msgpack.h>

#include "cef_store_bucket.h"
#include "cef_encode.h"
#include "cef_store_group.h"
#include "cef_writer.h"


#define CEF_HASH_LEN   CEF_IDENTITY_HASH_LEN
#define CEF_ITEM_MAX   (CEF_STORE_BUCKET_REST_KEYS + 4)

#define CEF_LOAD_TXN_PROFILES  100000
#define CEF_LOAD_TXN_ENTRIES   1000000


typedef struct {
    uint8_t   h[CEF_HASH_LEN];
    uint32_t  number;
} cef_ientry_t;


typedef struct {
    const cef_writer_conf_t  *conf;
    cef_input_t              *in;
    char                     *err;
    size_t                    errlen;
    uint64_t                  rec_no;      /* the record being processed */
    uint64_t                  rec_off;

    int                       lockfd;
    int                       shared;      /* DIR is setgid: see group */
    char                      tmp[PATH_MAX];

    MDB_env                  *env;
    MDB_txn                  *txn;
    MDB_dbi                   meta, prof, index, ids, names, strs;
    cef_store_bucket_cfg_t    kcfg, icfg;

    cef_encode_t              enc;
    int                       enc_init;
    cef_store_info_t          info;

    /* load */
    cef_ientry_t             *ents;       /* keys */
    size_t                    nents, cap;
    cef_ientry_t             *idents;     /* profile ids */
    size_t                    nidents, icap;
    uint64_t                 *offsets;     /* by profile number */
    size_t                    noffsets;

    /* apply */
    uint8_t                  *scratch;     /* a copy of a stored profile */
    size_t                    scratch_cap;
    uint8_t                  *bval;        /* a copy of a bucket */
    size_t                    bval_cap;
    uint8_t                  *gbuf;        /* a group being built */
    size_t                    gbuf_cap;

    /* load: the profiles of the group being filled */
    uint8_t                  *lg;
    size_t                    lg_len, lg_cap;
    size_t                    lg_lens[CEF_STORE_GROUP_SLOTS];
    uint64_t                  stream_seq;
    uint64_t                  batch_seq;
    uint32_t                  in_batch;

    /* a snapshot header's stream offsets (load) */
    cef_store_offsets_t      *koffs;

    /* 1: records come one by one from a stream (cef_writer_stream_*) */
    int                       stream;
} cef_writer_t;


typedef struct {
    uint16_t  hints[CEF_PROFILE_HINTS_MAX];
    uint32_t  nhints;
    char      id[CEF_PROFILE_ID_MAX + 1];
    size_t    idlen;
    uint8_t  *attrs;       /* raw pairs, in w->scratch */
    size_t    attrs_len;
} cef_stored_t;


typedef struct {
    uint8_t   *h;          /* n hashes of CEF_HASH_LEN */
    uint32_t   n;
    uint32_t   cap;
} cef_hashes_t;


typedef struct {
    const msgpack_object  *id, *from, *into, *keys, *attrs, *set, *unset,
                          *add, *remove;
} cef_delta_t;


/* a published record, validated (cef_writer_publish.c) */
#define CEF_W_PUBLISH   1
#define CEF_W_PROMOTE   2
#define CEF_W_ROLLBACK  3

typedef struct {
    int                    kind;        /* 'w' weights, 'r' rules */
    const msgpack_object  *rec;
    uint64_t               version;
    int64_t                created_at;
    /* weights */
    const msgpack_object  *experiment, *salt, *weights;
    int                    updated;
    /* rules */
    const msgpack_object  *name, *source, *label, *author;
    int                    action;      /* CEF_W_PUBLISH, ... */
    int                    has_hash;    /* "hash" (publish, promote), "to" */
    uint8_t                sha[32];
    int                    mode;        /* CEF_STORE_RULES_NONE, ... */
    uint32_t               share;       /* basis points */
} cef_pub_t;


/* the lock file's size: room for LMDB's reader table (cef_w_reserve_lock) */
#define CEF_W_LOCK_SIZE  ((off_t) CEF_STORE_MAX_READERS * 64 + 128)


/* cef_writer_fs.c */

void cef_w_err(cef_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cef_w_bad(cef_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *cef_w_write_hint(int rc);
int cef_w_lmdb(cef_writer_t *w, const char *what, int rc);
int cef_w_path(cef_writer_t *w, char *buf, const char *name);
int cef_w_fsync_dir(const char *path);
int cef_w_rmtree(const char *path);
int cef_w_reserve_lock(cef_writer_t *w, const char *dir, off_t size,
    mode_t mode);
int cef_w_share(cef_writer_t *w, const char *gen);
int cef_w_lock(cef_writer_t *w, int create);
void cef_w_init(cef_writer_t *w, const cef_writer_conf_t *conf,
    cef_input_t *in, char *err, size_t errlen);
void cef_w_cleanup(cef_writer_t *w);
void cef_w_close(cef_writer_t *w);
int cef_w_txn_begin(cef_writer_t *w, unsigned dbflags);
int cef_w_txn_commit(cef_writer_t *w);
int cef_w_put_meta(cef_writer_t *w);

/* cef_writer_check.c */

int cef_w_key_is(const msgpack_object *k, const char *name);
const msgpack_object *cef_w_field(const msgpack_object *rec,
    const char *name);
int cef_w_check_fields(cef_writer_t *w, const msgpack_object *rec,
    const char *const *allowed);
int cef_w_check_id(cef_writer_t *w, const msgpack_object *rec,
    const char *name, const msgpack_object **out);
int cef_w_check_keys(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out);
int cef_w_check_attrs(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out);
int cef_w_check_names(cef_writer_t *w, const msgpack_object *rec,
    const char *name, const msgpack_object **out);
int cef_w_int_field(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int64_t *out);
int cef_w_put_offsets(cef_writer_t *w, const cef_store_offsets_t *o);
int cef_w_check_header(cef_writer_t *w, const msgpack_object *rec,
    const char *kind);
int cef_w_hash(cef_writer_t *w, const char *type, size_t tlen,
    const char *value, size_t vlen, uint8_t *out);
uint16_t cef_w_bucket(const uint8_t *h);
void cef_w_add_hint(uint16_t *hints, uint32_t *n, uint16_t b);
int cef_w_hash_pair(cef_writer_t *w, const msgpack_object *pair, uint8_t *h);
int cef_w_check_room(cef_writer_t *w, uint32_t nhints);
int cef_w_encode_attrs(cef_writer_t *w, const msgpack_object *attrs);

/* cef_writer_load.c */

int cef_w_grow(cef_writer_t *w, uint8_t **buf, size_t *cap, size_t need);
void cef_w_progress(cef_writer_t *w, uint64_t records, int done);
int cef_w_next_record(cef_writer_t *w, const msgpack_object **rec,
    uint64_t *records);

/* cef_writer_profile.c */

int cef_w_prof_put(cef_writer_t *w, uint32_t number, const uint8_t *blob,
    size_t blen);
int cef_w_index_del(cef_writer_t *w, const uint8_t *h, uint32_t number);
int cef_w_index_put(cef_writer_t *w, const uint8_t *h, uint32_t number);
int cef_w_ids_put(cef_writer_t *w, const uint8_t *h, uint32_t number);
int cef_w_ids_del(cef_writer_t *w, const uint8_t *h, uint32_t number);
int cef_w_profile_keys(cef_writer_t *w, const cef_stored_t *st,
    uint32_t number, cef_hashes_t *hs);
int cef_w_begin_stored(cef_writer_t *w, const cef_stored_t *st,
    uint32_t number);
int cef_w_encode(cef_writer_t *w, const uint16_t *hints, uint32_t nhints,
    const char *id, size_t idlen);
int cef_w_put_profile(cef_writer_t *w, uint32_t number, const uint16_t *hints,
    uint32_t nhints, const char *id, size_t idlen);
int cef_w_find(cef_writer_t *w, const msgpack_object *id, uint8_t *idh,
    uint32_t *number, cef_stored_t *st);
int cef_w_prune_hints(cef_writer_t *w, uint16_t *hints, uint32_t *n,
    uint32_t number);
int cef_w_keys_fit(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    const msgpack_object *remove, const msgpack_object *add,
    const cef_hashes_t *more);

/* cef_writer_delta.c */

int cef_w_op_delete(cef_writer_t *w, cef_delta_t *d,
    cef_writer_result_t *res);
int cef_w_delta_record(cef_writer_t *w, const msgpack_object *rec, int dry,
    cef_writer_result_t *res);
int cef_w_open_current(cef_writer_t *w, char *path, size_t size,
    uint64_t *gen);

/* cef_writer_publish.c */

int cef_w_publish_check(cef_writer_t *w, const msgpack_object *rec,
    const msgpack_object *op, cef_pub_t *p);
int cef_w_publish_apply(cef_writer_t *w, const cef_pub_t *p,
    cef_writer_result_t *res);
int cef_w_publish_carry(cef_writer_t *w, const char *oldpath,
    uint64_t *carried);


#endif /* CEF_WRITER_INT_H */
