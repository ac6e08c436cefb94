/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/store: the profile store as nginx reads it (docs/store.md), part of
 * libcef: the reader (cef_store.h, its public header), a stored profile
 * (cef_profile.h), and the on-disk layout the writer shares with the reader
 * (cef_store_bucket.h, cef_store_group.h; cef_store_meta.c decodes the
 * metadata records).  It may include lib/core and lib/identity, nothing
 * else of ours; lib/rules, lib/decision, lib/writer, the glue and the tools
 * include it.  It has no internal header.
 *
 * cef_store: the profile store, reader side.  Plain C11, no nginx types.
 *
 * The store is a directory (see docs/store.md):
 *
 *   DIR/current -> gen-N     symlink, swapped with rename(2) by full loads
 *   DIR/gen-N/data.mdb       the LMDB environment of generation N
 *   DIR/write.lock           flock(2)ed by the one writer (cef-sync)
 *
 * A reader opens DIR/current once per process (after fork()), and then, for
 * each request, opens a session (cef_store_begin()), looks profiles up and
 * ends the session (cef_store_end()).  One LMDB read transaction is kept
 * per handle and renewed/reset per session, so a session costs no
 * allocation and no system call (but a stat(2) of DIR/current once per
 * check interval).
 *
 * Views returned by lookups point into the LMDB map (and into the handle's
 * dictionary): they are valid until cef_store_end().  Copy what must
 * outlive the session.
 *
 * A handle is not thread-safe.  Open one handle per process: LMDB must not
 * open the same environment twice in one process (closing one drops the
 * other's locks).  Never use a handle across fork().
 *
 * Errors are return codes; cef_store_strerror() has the message.  Nothing
 * here aborts.
 */

#ifndef CEF_STORE_H
#define CEF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cef_identity.h"
#include "cef_profile.h"
#include "cef_store_bucket.h"


#define CEF_STORE_FORMAT     1

/*
 * LMDB reader slots of a generation: its lock.mdb is sized for them when
 * the writer creates it (and allocated in full, so that taking a slot on a
 * full disk is no SIGBUS); every opener must ask for the same number, or
 * the first to open would size the file differently.
 */
#define CEF_STORE_MAX_READERS  1022

/* Return codes. */
#define CEF_STORE_OK          0
#define CEF_STORE_NOTFOUND    1
#define CEF_STORE_ERROR     (-1)

/* Layout: file names and LMDB database names. */
#define CEF_STORE_CURRENT    "current"
#define CEF_STORE_LOCK       "write.lock"
#define CEF_STORE_DB_META    "meta"
#define CEF_STORE_DB_PROF    "profiles"
#define CEF_STORE_DB_INDEX   "index"
#define CEF_STORE_DB_IDS     "ids"
#define CEF_STORE_DB_NAMES   "names"
#define CEF_STORE_DB_STRS    "strs"

/* Keys of the "meta" database. */
#define CEF_STORE_META       "meta"
#define CEF_STORE_META_KAFKA "kafka"
/*
 * Published records (docs/store.md, "Published records"): a change counter
 * (u64 little-endian, bumped by every write transaction that changes a
 * weights or rules record), and key prefixes of the records themselves:
 * "w/" EXPERIMENT "\0" SALT (cef_store_weights.h), "r/" NAME (a rule set's
 * versions and rollout) and "s/" NAME "\0" SHA-256 (a version's source;
 * cef_store_rules.h).  LMDB keys are at most CEF_STORE_META_KEY_MAX bytes.
 */
#define CEF_STORE_META_PUBLISHED  "pub"
#define CEF_STORE_META_WEIGHTS    "w/"
#define CEF_STORE_META_RULES      "r/"
#define CEF_STORE_META_SOURCE     "s/"
#define CEF_STORE_META_KEY_MAX    511

/*
 * The "profiles" database maps groups of four profile numbers
 * (cef_store_group.h) to stored profiles (cef_profile.h); "index" maps
 * identity key hashes and "ids" profile id hashes to profile numbers
 * (cef_store_bucket.h).
 */


/* What the store's metadata says (cef_store_info()). */
typedef struct {
    uint32_t  format;
    char      snapshot_id[128];
    int64_t   created_at;       /* snapshot's own time, unix seconds */
    int64_t   loaded_at;        /* when cef-sync loaded it */
    int64_t   updated_at;       /* last load or delta batch */
    uint64_t  last_seq;         /* last applied delta sequence, 0 if none */
    uint64_t  profiles;
    uint64_t  keys;             /* identity keys, profile ids not counted */
    uint32_t  next_number;      /* next unused profile number */
    uint32_t  names;            /* attribute names in the dictionary */
    uint32_t  strs;             /* interned strings in the dictionary */
    uint8_t   secret_check[8];  /* cef_identity_fingerprint() of the secret */
    uint32_t  key_bits;         /* bucket bits of "index" */
    uint32_t  id_bits;          /* bucket bits of "ids" */
    uint64_t  generation;       /* N of DIR/gen-N */
} cef_store_info_t;


/* Limits of the stream offsets (cef_store_offsets_t). */
#define CEF_STORE_TOPIC_MAX       249     /* Kafka's own limit */
#define CEF_STORE_PARTITIONS_MAX  1024

/*
 * Where the store stands in a Kafka topic: for each partition, the offset
 * of the next record to read.  cef-sync consume stores it in the same
 * write transaction as the changes those records produced; a snapshot may
 * carry it in its header, and cef-sync load stores it with the snapshot
 * (docs/sync.md).
 */
typedef struct {
    char      topic[CEF_STORE_TOPIC_MAX + 1];
    uint32_t  partitions;     /* next[0 .. partitions - 1] are meaningful */
    int64_t   next[CEF_STORE_PARTITIONS_MAX];   /* -1: none stored */
} cef_store_offsets_t;


typedef struct cef_store_s  cef_store_t;


/*
 * Open a store.  Clears stale reader slots (mdb_reader_check).  Call once
 * per process, after fork().
 *
 * @param[out] sp      the handle
 * @param[in]  dir     the store directory (containing "current")
 * @param[out] err     a message on failure
 * @param[in]  errlen  bytes at err
 * @return CEF_STORE_OK, or CEF_STORE_ERROR (no store at dir, unreadable,
 *         not a store of this format, LMDB or memory error).
 */
int cef_store_open(cef_store_t **sp, const char *dir, char *err,
    size_t errlen);

/*
 * Close a handle.  No session may be open.
 */
void cef_store_close(cef_store_t *s);

/*
 * How often cef_store_begin() checks whether DIR/current was replaced by a
 * full load (a stat(2)); default 1000 ms, 0 = at every session.
 */
void cef_store_set_check_interval(cef_store_t *s, unsigned ms);

/*
 * Turn the pointer cache on (the default) or off.  While no write has
 * committed, a handle remembers where each index bucket and profile group
 * it has read lies in the map, and skips the B-tree descent the next time;
 * the first session on a newer snapshot drops it.  It costs up to 24 bytes
 * per bucket and per group of four profiles, allocated at open (about 7 MB
 * per handle at 1M profiles, at most 24 MB per cache).
 */
void cef_store_set_caching(cef_store_t *s, int on);

/*
 * Open a session: renew the read transaction on the newest committed state.
 *
 * Also, at most once per check interval, detects that a full load replaced
 * the store (the inode behind DIR/current changed) and switches to the new
 * generation: the new one is opened first; if that fails the handle keeps
 * the old one, records why (cef_store_generations()) and the next check
 * retries.  Adopts a map grown by the writer (MDB_MAP_RESIZED) and, on
 * MDB_READERS_FULL, clears stale reader slots and retries once.
 *
 * A generation whose meta page names more pages than its data file holds
 * (the file was damaged or cut short) is given up for good: every session
 * on it fails, without calling LMDB, until a newer generation is opened.
 *
 * @return CEF_STORE_OK, or CEF_STORE_ERROR (no session is open then).
 */
int cef_store_begin(cef_store_t *s);

/*
 * End a session.  Every view obtained in it becomes invalid.
 */
void cef_store_end(cef_store_t *s);

/*
 * Look up a profile by the hash of one of its keys (cef_identity_hash()).
 * Requires an open session.
 *
 * @param[in]  s     the handle
 * @param[in]  hash  CEF_IDENTITY_HASH_LEN bytes
 * @param[out] p     the profile view, valid until cef_store_end()
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND, or CEF_STORE_ERROR (no session,
 *         LMDB error, a malformed profile).
 */
int cef_store_lookup_hash(cef_store_t *s, const uint8_t *hash,
    cef_profile_t *p);

/*
 * Look up a profile by identity key: hashes TYPE ":" VALUE with ident and
 * calls cef_store_lookup_hash().
 *
 * @return as cef_store_lookup_hash().
 */
int cef_store_lookup_key(cef_store_t *s, cef_identity_t *ident,
    const char *type, size_t tlen, const char *value, size_t vlen,
    cef_profile_t *p);

/*
 * Look up a profile by its id (hashed with an empty type); the stored id is
 * compared with the one asked for.
 *
 * @return as cef_store_lookup_hash().
 */
int cef_store_lookup_id(cef_store_t *s, cef_identity_t *ident,
    const char *id, size_t len, cef_profile_t *p);

/*
 * Look up a profile by its profile number (internal, see docs/store.md).
 *
 * @return as cef_store_lookup_hash().
 */
int cef_store_lookup_number(cef_store_t *s, uint32_t number,
    cef_profile_t *p);

/*
 * The store's metadata as of the open session.
 *
 * @return CEF_STORE_OK, or CEF_STORE_ERROR if no session is open.
 */
int cef_store_info(cef_store_t *s, cef_store_info_t *info);

/*
 * The stream offsets stored with the open session's state (see
 * cef_store_offsets_t).
 *
 * @param[in]  s  the handle, with an open session
 * @param[out] o  the offsets; o->partitions is 0 when none are stored
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND if the store holds no offsets,
 *         or CEF_STORE_ERROR (no session, LMDB error, malformed record).
 */
int cef_store_offsets(cef_store_t *s, cef_store_offsets_t *o);

/*
 * The dictionary of the open session's store (for cef_dict_name_id()).
 *
 * @return the dictionary; valid until the handle switches generation (at a
 *         later cef_store_begin()) or closes.
 */
const cef_dict_t *cef_store_dict(cef_store_t *s);

/*
 * Check that ident was made from the secret the store was loaded with.
 * Requires an open session.
 *
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND if it does not match, or
 *         CEF_STORE_ERROR.
 */
int cef_store_check_secret(cef_store_t *s, cef_identity_t *ident);

/* Which generation a handle serves, and whether it is behind. */
typedef struct {
    uint64_t     serving;   /* N of the generation sessions read */
    uint64_t     newest;    /* N that DIR/current named at the last check */
    uint64_t     failed;    /* newest, if it could not be opened; else 0 */
    const char  *error;     /* why failed could not be opened, or "" */
    const char  *damaged;   /* why serving is given up, or NULL */
} cef_store_gens_t;

/*
 * What the handle serves and what the last check found on disk.  Makes no
 * system call and touches no page of the store.  The strings are valid
 * until the next call on the handle.
 */
void cef_store_generations(const cef_store_t *s, cef_store_gens_t *gens);

/*
 * Report that reading the store faulted (SIGBUS or SIGSEGV caught by the
 * caller while it was inside a call on this handle; the call was left with
 * siglongjmp()).  If a newer generation was being opened, that generation
 * is given up (it is not tried again; cef_store_generations() reports it
 * as failed); otherwise the serving one is (see cef_store_begin()).  Its
 * LMDB environment is released without reading a data page.
 *
 * @param[in] s    the handle
 * @param[in] why  the message to record
 * @return the generation given up.
 */
uint64_t cef_store_fault(cef_store_t *s, const char *why);

/*
 * Published records (weights, rule sets): did any change?  Inside a
 * session.  A worker keeps one stamp (zeroed at first) and rebuilds what it
 * derived from published records (cut-offs, compiled rule sets) only when
 * this says 1.  Cost: a comparison while no write transaction has
 * committed since the last call; one mdb_get of the change counter after
 * one has (a profile delta batch, say) -- never a scan.
 *
 * @param[in]     s   the handle, in a session
 * @param[in,out] st  the caller's stamp, updated
 * @return 1 changed (or the generation is new, or st was zero), 0 not,
 *         CEF_STORE_ERROR outside a session or on a read error.
 */
typedef struct {
    uint64_t  generation;     /* N of gen-N the stamp was taken on */
    uint64_t  txn;            /* the LMDB snapshot (txn id) last checked */
    uint64_t  counter;        /* the store's change counter then */
} cef_store_pub_stamp_t;

int cef_store_published_changed(cef_store_t *s, cef_store_pub_stamp_t *st);

/*
 * One record of the "meta" database, in place (valid until
 * cef_store_end()); the building block of cef_store_weights.h and
 * cef_store_rules.h.
 *
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND, CEF_STORE_ERROR.
 */
int cef_store_meta_get(cef_store_t *s, const void *key, size_t klen,
    const void **val, size_t *vlen);

/*
 * Every "meta" record whose key starts with prefix, in key order, until fn
 * returns nonzero.  Opens an LMDB cursor (an allocation): for tools and
 * refreshes, not for every request.
 *
 * @return CEF_STORE_OK or CEF_STORE_ERROR.
 */
int cef_store_meta_scan(cef_store_t *s, const void *prefix, size_t plen,
    int (*fn)(void *data, const void *key, size_t klen, const void *val,
              size_t vlen),
    void *data);

/* little-endian u64 at p, read or written bytewise (any alignment) */
uint64_t cef_store_le64(const void *p);
void cef_store_put_le64(void *p, uint64_t v);

/* The message of the last CEF_STORE_ERROR. */
const char *cef_store_strerror(const cef_store_t *s);


/* Helpers shared with the writer (cef_store_meta.c). */

/*
 * Decode a metadata record (msgpack map) into info.
 *
 * @return 0, or -1 if malformed.
 */
int cef_store_meta_decode(const void *data, size_t len,
    cef_store_info_t *info);

/*
 * Decode a stream offsets record (msgpack map {"topic": STR, "offsets":
 * {PARTITION: NEXT, ...}}, partitions and offsets non-negative integers)
 * into o.  Partitions not in the record get -1.
 *
 * @return 0, or -1 if malformed, or a partition is not below
 *         CEF_STORE_PARTITIONS_MAX.
 */
int cef_store_meta_offsets_decode(const void *data, size_t len,
    cef_store_offsets_t *o);

/*
 * Resolve DIR/current to the generation directory path and number.
 *
 * @param[in]  dir     the store directory
 * @param[out] path    receives DIR "/" gen-N
 * @param[in]  size    bytes at path
 * @param[out] gen     N
 * @return 0, or -1 (no current link, or not a gen-N target).
 */
int cef_store_current(const char *dir, char *path, size_t size,
    uint64_t *gen);


#endif /* CEF_STORE_H */
