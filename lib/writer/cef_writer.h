/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/writer: everything that writes the profile store, built as
 * libcef_writer for cef-sync and the tests and never linked into nginx
 * (docs/building.md, "Two libraries"): the writer (cef_writer.h, its
 * public header; cef_writer_*.c share cef_writer_int.h), the encoder of
 * stored profiles (cef_encode.h) and the input streams (cef_input.h).  It
 * may include lib/core, lib/identity and lib/store; only cef-sync and tests
 * include it: no lib/ folder and not the glue (config does not even put it
 * on the module's include path).
 *
 * cef_writer: the writer side of the profile store, used by cef-sync.
 * Plain C11, no nginx types.  See docs/store.md for the layout and
 * docs/formats.md for the input formats.
 *
 * Only one writer works on a store at a time: each call below holds an
 * exclusive flock(2) on DIR/write.lock for its whole duration.
 */

#ifndef CEF_WRITER_H
#define CEF_WRITER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cef_identity.h"
#include "cef_input.h"
#include "cef_store.h"

#include <msgpack.h>


/* Return codes, equal to cef-sync's exit codes. */
#define CEF_WRITER_OK       0
#define CEF_WRITER_EINPUT   1     /* bad input; the store is unchanged */
#define CEF_WRITER_ESTORE   3     /* store, lock, disk or map error */

#define CEF_WRITER_MAP_SIZE_DEFAULT  ((size_t) 16 << 30)
#define CEF_WRITER_KEYS_MAX          64


typedef struct {
    const char      *dir;
    cef_identity_t  *ident;

    /*
     * LMDB map size.  load: 0 = CEF_WRITER_MAP_SIZE_DEFAULT.  apply: 0 =
     * keep the store's, larger = grow it (readers adopt the new size).
     */
    size_t           map_size;

    /* 1: wait for another writer to finish; 0: fail at once */
    int              wait;

    /*
     * Group sharing with the nginx workers.  set_group: make DIR owned by
     * group and setgid (mode 2775) before writing.  Whenever DIR is setgid
     * (set so here, or by the operator), everything the writer creates is
     * group-readable and -writable (directories 2775, files 0664, whatever
     * the umask), so workers in that group can map the store and write its
     * lock.mdb.  0: leave DIR's group and mode as they are.
     */
    int              set_group;
    gid_t            group;

    /*
     * While waiting: give up (CEF_WRITER_ESTORE) when a signal interrupts
     * the wait and *cancel is then nonzero (a handler installed without
     * SA_RESTART sets it).  NULL: wait through signals.
     */
    volatile sig_atomic_t  *cancel;

    /* apply: records per transaction (0 = 10000) */
    uint32_t         batch;

    /* apply: commit a partial batch when the input is idle this long */
    int              idle_ms;

    /* called every few thousand records, and once at the end */
    void           (*progress)(void *data, const cef_input_t *in,
                               uint64_t records, int done);
    /* called with one-line notices, e.g. "waiting for the write lock" */
    void           (*notice)(void *data, const char *msg);
    void            *data;
} cef_writer_conf_t;


typedef struct {
    uint64_t  records;     /* records read, header and trailer included */
    uint64_t  profiles;    /* load: loaded; apply: in the store after */
    uint64_t  keys;        /* identity keys in the store after */
    uint64_t  applied;     /* apply: delta records applied */
    uint64_t  skipped;     /* apply: records with seq <= the stored one */
    uint64_t  missing;     /* apply: records naming an unknown profile */
    uint64_t  batches;     /* apply: transactions committed */
    uint64_t  last_seq;
    uint64_t  generation;
    uint64_t  data_bytes;  /* size of data.mdb after */

    /* published records (weights, rule sets; docs/formats.md) */
    uint64_t  published;   /* stored: they changed the store */
    uint64_t  stale;       /* version not above the stored one: unchanged */
    uint64_t  conflicts;   /* of those, weights: same version, other
                              weights (kept the stored; warned) */
    uint64_t  ignored;     /* rules: a promote or rollback that found
                              nothing to do (warned; its version counts) */
    uint64_t  carried;     /* load: published records kept from the
                              previous generation */
} cef_writer_result_t;


/*
 * Full load: build a new generation from a snapshot stream and switch
 * DIR/current to it atomically; then delete the old generation.  Creates
 * DIR if missing.  Readers are never blocked and see either the old or
 * the new snapshot.  On any failure nothing visible changes, and a crash
 * at any point leaves the previous generation current; leftovers are
 * removed by the next writer.
 *
 * @param[in]  conf    configuration
 * @param[in]  in      the snapshot stream
 * @param[out] res     counts
 * @param[out] err     the message on failure, naming the record number and
 *                     byte offset for bad input
 * @param[in]  errlen  bytes at err
 * @return CEF_WRITER_OK, CEF_WRITER_EINPUT or CEF_WRITER_ESTORE.
 */
int cef_writer_load(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen);

/*
 * Apply a delta stream to the current generation.  Records whose seq is
 * not above the stored last sequence are skipped.  Records are applied in
 * transactions of conf->batch records, each committed together with its
 * last seq.  A seekable input is validated completely first, so bad input
 * changes nothing; from a pipe, the batches committed before the bad
 * record stay (replaying the stream is harmless).
 *
 * @return CEF_WRITER_OK, CEF_WRITER_EINPUT or CEF_WRITER_ESTORE.
 */
int cef_writer_apply(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen);


/*
 * Streams: records applied one at a time as they arrive (cef-sync consume),
 * each batch committed with the stream offsets it reached, in the same
 * transaction.  A stream session holds the write lock until it is closed.
 * Records are delta records (docs/formats.md) whose "seq" is optional and
 * not compared with the stored sequence: the stream's offsets order them.
 */

typedef struct cef_writer_stream_s  cef_writer_stream_t;

/*
 * Open the current generation for a stream: waits for (or, with
 * conf->wait == 0, fails on) another writer, checks the secret, reads the
 * stored offsets.
 *
 * @param[out] sp      the session
 * @param[in]  conf    dir, ident, map_size (grow the map), wait, notice
 * @param[out] offs    the stored offsets; offs->partitions is 0 and
 *                     offs->topic empty when the store holds none
 * @param[out] err     the message on failure
 * @return CEF_WRITER_OK, CEF_WRITER_EINPUT (the secret does not match) or
 *         CEF_WRITER_ESTORE.
 */
int cef_writer_stream_open(cef_writer_stream_t **sp,
    const cef_writer_conf_t *conf, cef_store_offsets_t *offs, char *err,
    size_t errlen);

/*
 * Validate one delta record and apply it in the open batch (a write
 * transaction begun on demand).
 *
 * @return CEF_WRITER_OK; CEF_WRITER_EINPUT if the record is malformed or
 *         over a limit of the stored state (a profile too large to store,
 *         keys in too many index buckets; err says why, without naming the
 *         record): nothing was changed and the batch goes on; CEF_WRITER_ESTORE on a store error (map full,
 *         a profile too large to store, LMDB): the batch is lost and every
 *         later call fails; close the session.
 */
int cef_writer_stream_record(cef_writer_stream_t *s, const msgpack_object *rec,
    cef_writer_result_t *res, char *err, size_t errlen);

/*
 * A tombstone: erase the profile with this id and all its keys (counted in
 * res->missing if there is none).
 *
 * @return as cef_writer_stream_record().
 */
int cef_writer_stream_erase(cef_writer_stream_t *s, const char *id,
    size_t len, cef_writer_result_t *res, char *err, size_t errlen);

/*
 * Commit the batch together with offs (NULL, or an empty topic: the
 * stored offsets stay) and the metadata, whose updated_at becomes now
 * (what readers report as the store's age).  With no batch open, commits
 * just the offsets.
 *
 * @return CEF_WRITER_OK, or CEF_WRITER_ESTORE (nothing of the batch was
 *         committed; close the session).
 */
int cef_writer_stream_commit(cef_writer_stream_t *s,
    const cef_store_offsets_t *offs, cef_writer_result_t *res, char *err,
    size_t errlen);

/*
 * Close a session: an uncommitted batch is abandoned (as if the process
 * had died), the write lock released.
 */
void cef_writer_stream_close(cef_writer_stream_t *s);


typedef struct {
    uint64_t  profiles;
    uint64_t  index_entries;
    uint64_t  keys;
    uint64_t  problems;
} cef_writer_verify_result_t;

/*
 * Check a store: every profile decodes, every index entry points to an
 * existing profile, every profile's id entry exists (when ident is given),
 * the counts agree with the metadata.
 *
 * @param[in]  dir     the store
 * @param[in]  ident   the keyed hash, or NULL to skip the id checks
 * @param[in]  report  called once per problem found (may be NULL)
 * @param[out] res     counts
 * @return CEF_WRITER_OK if the store is sound, CEF_WRITER_ESTORE if not or
 *         if it cannot be read (err says why).
 */
int cef_writer_verify(const char *dir, cef_identity_t *ident,
    void (*report)(void *data, const char *msg), void *data,
    cef_writer_verify_result_t *res, char *err, size_t errlen);


#endif /* CEF_WRITER_H */
