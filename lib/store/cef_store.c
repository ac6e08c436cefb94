/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <msgpack.h>

#include "cef_store.h"
#include "cef_store_group.h"


typedef struct cef_store_block_s  cef_store_block_t;

struct cef_store_block_s {
    cef_store_block_t  *next;
    char                data[];
};


/*
 * The pointer cache.  LMDB never changes a page of the newest snapshot:
 * as long as no write transaction has committed since a value was read,
 * the pointer mdb_get() returned for it stays valid across sessions (the
 * read transaction is renewed on the very same snapshot).  So each handle
 * remembers, per bucket and per profile group, where the value is, and
 * skips the B-tree descent next time.  Entries are tagged with an epoch
 * that is bumped whenever a session starts on a newer snapshot, or the map
 * is remapped, which drops them all at once.
 */

#define CEF_STORE_HUGE  (2u << 20)

typedef struct {
    uint32_t        key;
    uint32_t        epoch;
    const uint8_t  *p;          /* NULL: known to be absent */
    size_t          len;
} cef_store_slot_t;

typedef struct {
    cef_store_slot_t  *slots;
    uint32_t           mask;
    size_t             mapped;      /* bytes mmap()ed; 0: calloc() */
} cef_store_cache_t;


typedef struct {
    MDB_env            *env;
    MDB_txn            *txn;
    MDB_dbi             meta, prof, index, ids, dnames, dstrs;
    cef_store_bucket_cfg_t    kcfg, icfg;
    int                 active;
    size_t              txnid;          /* of the last metadata refresh */
    char                damaged[256];   /* why this generation is unusable */
    dev_t               dev;
    ino_t               ino;
    cef_store_info_t    info;
    cef_dict_t          dict;
    cef_span_t         *names;          /* dict.names.s */
    cef_span_t         *strs;           /* dict.strs.s */
    cef_store_block_t  *blocks;

    int                 caching;
    uint32_t            epoch;
    size_t              cache_txnid;
    cef_store_cache_t   cindex, cids, cprof;
} cef_store_gen_t;


struct cef_store_s {
    char              *dir;
    cef_store_gen_t   *gen;
    cef_store_gen_t   *opening;        /* a newer generation being opened */
    uint64_t           newest;         /* N that DIR/current named */
    uint64_t           failed;         /* newest, if it could not be opened */
    dev_t              bad_dev;        /* a generation that faulted when */
    ino_t              bad_ino;        /*  opened: never opened again */
    dev_t              try_dev;        /* the one being opened */
    ino_t              try_ino;
    char               switch_err[256];
    int                caching;
    unsigned           check_ms;
    struct timespec    checked;
    char               err[512];
};


static void cef_store_seterr(cef_store_t *s, const char *fmt, ...);
static int cef_store_gen_open(cef_store_gen_t **gp, const char *dir,
    char *err, size_t errlen);
static void cef_store_gen_close(cef_store_gen_t *g);
static int cef_store_gen_begin(cef_store_gen_t *g, char *err, size_t errlen);
static int cef_store_gen_check_size(cef_store_gen_t *g, char *err,
    size_t errlen);
static void cef_store_gen_damage(cef_store_gen_t *g, const char *why);
static int cef_store_gen_refresh(cef_store_gen_t *g, char *err,
    size_t errlen);
static int cef_store_load_strs(cef_store_gen_t *g, MDB_dbi dbi,
    cef_strtab_t *tab, cef_span_t **spans, uint32_t want, char *err,
    size_t errlen);
static void cef_store_check_replaced(cef_store_t *s);
static void *cef_store_cache_map(size_t bytes);


static void
cef_store_seterr(cef_store_t *s, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}


static void
cef_store_cache_clear(cef_store_cache_t *c)
{
    if (c->slots) {
        memset(c->slots, 0, ((size_t) c->mask + 1) * sizeof(cef_store_slot_t));
    }
}


/*
 * Size a cache for n keys (a power of two, at most 2^20 slots).  The slots
 * are an anonymous mapping, zero-filled and faulted in lazily; from 1 MiB
 * on it is rounded up to whole 2 MiB pages, aligned to them and advised for
 * transparent huge pages (MADV_HUGEPAGE): a lookup reads one slot at
 * random, and with 4 KiB pages that is a TLB miss as often as a cache
 * miss.  calloc() if the mapping fails.
 */

static void
cef_store_cache_init(cef_store_cache_t *c, uint64_t n)
{
    size_t     bytes;
    uint32_t   size;

    for (size = 1024; size < n && size < (1u << 20); size *= 2) { }

    bytes = (size_t) size * sizeof(cef_store_slot_t);

    if (bytes >= CEF_STORE_HUGE / 2) {
        bytes = (bytes + CEF_STORE_HUGE - 1) & ~((size_t) CEF_STORE_HUGE - 1);
    }

    c->slots = cef_store_cache_map(bytes);
    c->mapped = c->slots ? bytes : 0;

    if (c->slots == NULL) {
        c->slots = calloc(size, sizeof(cef_store_slot_t));
    }

    c->mask = c->slots ? size - 1 : 0;
}


/* bytes of zeroed memory, on huge pages where it is a multiple of them */

static void *
cef_store_cache_map(size_t bytes)
{
    uint8_t  *m, *a;
    size_t    extra;

    extra = bytes % CEF_STORE_HUGE == 0 ? CEF_STORE_HUGE : 0;

    m = mmap(NULL, bytes + extra, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }

    a = m;

    if (extra) {
        /* keep the aligned part: what precedes and follows it goes back */
        a = (uint8_t *) (((uintptr_t) m + CEF_STORE_HUGE - 1)
                        & ~((uintptr_t) CEF_STORE_HUGE - 1));

        if (a > m) {
            munmap(m, a - m);
        }

        if (m + extra > a) {
            munmap(a + bytes, m + extra - a);
        }

#ifdef MADV_HUGEPAGE
        (void) madvise(a, bytes, MADV_HUGEPAGE);
#endif
    }

    return a;
}


static void
cef_store_cache_free(cef_store_cache_t *c)
{
    if (c->mapped) {
        munmap(c->slots, c->mapped);

    } else {
        free(c->slots);
    }

    c->slots = NULL;
    c->mapped = 0;
}


/* A lookup outside a session: 1 with the message set, else 0. */

static int
cef_store_no_session(cef_store_t *s)
{
    if (s->gen->active) {
        return 0;
    }

    cef_store_seterr(s, "no session is open");
    return 1;
}


/*
 * Ask for every cache line of a value at once (up to 1 KiB): a profile
 * group is read header first, then the profile at the offset the header
 * gives, attribute by attribute, and in a cold cache each line would wait
 * for the one before.  A group of four profiles is ~550 bytes at 1M
 * reference profiles: one prefetch of the group covers the profile; a
 * profile beyond its first KiB is asked for once the header says where.
 */

#define CEF_STORE_PREFETCH  1024

static inline void
cef_store_prefetch(const uint8_t *p, size_t len)
{
    size_t  o;

    if (len > CEF_STORE_PREFETCH) {
        len = CEF_STORE_PREFETCH;
    }

    for (o = 0; o < len; o += 64) {
        __builtin_prefetch(p + o);
    }
}


/*
 * mdb_get() through a cache.  Returns 0 with *p and *len, MDB_NOTFOUND, or an
 * LMDB error.
 */

static int
cef_store_get(cef_store_gen_t *g, cef_store_cache_t *c, MDB_dbi dbi,
    uint32_t key, void *kdata, size_t klen, const uint8_t **p, size_t *len)
{
    int                rc;
    MDB_val            k, v;
    cef_store_slot_t  *slot = NULL;

    if (g->caching && c->slots) {
        slot = &c->slots[key & c->mask];

        if (slot->epoch == g->epoch && slot->key == key) {
            *p = slot->p;
            *len = slot->len;
            return slot->p ? 0 : MDB_NOTFOUND;
        }
    }

    k.mv_data = kdata;
    k.mv_size = klen;

    rc = mdb_get(g->txn, dbi, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    if (rc == MDB_NOTFOUND) {
        v.mv_data = NULL;
        v.mv_size = 0;
    }

    if (slot) {
        slot->key = key;
        slot->epoch = g->epoch;
        slot->p = v.mv_data;
        slot->len = v.mv_size;
    }

    *p = v.mv_data;
    *len = v.mv_size;

    return rc;
}


/*
 * What a session's lookup answers when cef_store_get() did not find a
 * value: CEF_STORE_NOTFOUND, or CEF_STORE_ERROR with the message
 * "WHAT lookup: <LMDB's reason>".
 */

static int
cef_store_get_failed(cef_store_t *s, int rc, const char *what)
{
    if (rc == MDB_NOTFOUND) {
        return CEF_STORE_NOTFOUND;
    }

    cef_store_seterr(s, "%s lookup: %s", what, mdb_strerror(rc));
    return CEF_STORE_ERROR;
}


int
cef_store_current(const char *dir, char *path, size_t size, uint64_t *gen)
{
    char                link[PATH_MAX], target[64];
    ssize_t             n;
    unsigned long long  g;
    int                 end = 0;

    if ((size_t) snprintf(link, sizeof(link), "%s/%s", dir, CEF_STORE_CURRENT)
        >= sizeof(link))
    {
        errno = ENAMETOOLONG;
        return -1;
    }

    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        return -1;
    }

    target[n] = '\0';

    if (sscanf(target, "gen-%llu%n", &g, &end) != 1 || end != n) {
        errno = EINVAL;
        return -1;
    }

    if ((size_t) snprintf(path, size, "%s/%s", dir, target) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }

    *gen = g;
    return 0;
}


int
cef_store_open(cef_store_t **sp, const char *dir, char *err, size_t errlen)
{
    cef_store_t  *s;

    *sp = NULL;

    s = calloc(1, sizeof(cef_store_t));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CEF_STORE_ERROR;
    }

    s->dir = strdup(dir);
    s->check_ms = 1000;
    s->caching = 1;

    if (s->dir == NULL) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return CEF_STORE_ERROR;
    }

    if (cef_store_gen_open(&s->gen, dir, err, errlen) != 0) {
        free(s->dir);
        free(s);
        return CEF_STORE_ERROR;
    }

    clock_gettime(CLOCK_MONOTONIC_COARSE, &s->checked);
    s->newest = s->gen->info.generation;

    *sp = s;
    return CEF_STORE_OK;
}


void
cef_store_close(cef_store_t *s)
{
    if (s == NULL) {
        return;
    }

    cef_store_gen_close(s->gen);
    free(s->dir);
    free(s);
}


void
cef_store_set_check_interval(cef_store_t *s, unsigned ms)
{
    s->check_ms = ms;
}


void
cef_store_set_caching(cef_store_t *s, int on)
{
    s->caching = on;
    s->gen->caching = on;
}


static int
cef_store_gen_open(cef_store_gen_t **gp, const char *dir, char *err,
    size_t errlen)
{
    int               rc, dead, tries;
    char              path[PATH_MAX];
    uint64_t          gen;
    struct stat       st;
    MDB_txn          *txn;
    cef_store_gen_t  *g;

    *gp = NULL;

    g = calloc(1, sizeof(cef_store_gen_t));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    /* a fault in LMDB below must find what to release (cef_store_fault()) */
    *gp = g;

    /*
     * A writer may switch "current" and delete the old generation between
     * our readlink() and our open: retry on a vanished generation.
     */

    for (tries = 0; ; tries++) {

        if (cef_store_current(dir, path, sizeof(path), &gen) != 0) {
            snprintf(err, errlen, "no profile store in \"%s\": "
                     "cannot read \"%s/%s\": %s", dir, dir, CEF_STORE_CURRENT,
                     strerror(errno));
            goto failed;
        }

        if (stat(path, &st) == 0) {
            rc = mdb_env_create(&g->env);
            if (rc != 0) {
                snprintf(err, errlen, "mdb_env_create: %s", mdb_strerror(rc));
                goto failed;
            }

            mdb_env_set_maxdbs(g->env, 8);
            mdb_env_set_maxreaders(g->env, CEF_STORE_MAX_READERS);

            rc = mdb_env_open(g->env, path, MDB_RDONLY|MDB_NOTLS|MDB_NORDAHEAD,
                              0644);
            if (rc == 0) {
                break;
            }

            mdb_env_close(g->env);
            g->env = NULL;

            if (rc != ENOENT || tries >= 5) {
                snprintf(err, errlen, "cannot open profile store \"%s\": %s",
                         path, mdb_strerror(rc));
                goto failed;
            }

        } else if (errno != ENOENT || tries >= 5) {
            snprintf(err, errlen, "cannot open profile store \"%s\": %s",
                     path, strerror(errno));
            goto failed;
        }
    }

    g->dev = st.st_dev;
    g->ino = st.st_ino;
    g->info.generation = gen;

    if (cef_store_gen_check_size(g, err, errlen) != 0) {
        goto failed;
    }

    /* stale reader slots of crashed processes pin old pages */
    mdb_reader_check(g->env, &dead);

    rc = mdb_txn_begin(g->env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_READERS_FULL) {
        mdb_reader_check(g->env, &dead);
        rc = mdb_txn_begin(g->env, NULL, MDB_RDONLY, &txn);
    }

    if (rc != 0) {
        snprintf(err, errlen, "profile store \"%s\": mdb_txn_begin: %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    if ((rc = mdb_dbi_open(txn, CEF_STORE_DB_META, 0, &g->meta)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_PROF, MDB_INTEGERKEY,
                              &g->prof)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_INDEX, 0, &g->index)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_IDS, 0, &g->ids)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_NAMES, MDB_INTEGERKEY,
                              &g->dnames)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_STRS, MDB_INTEGERKEY,
                              &g->dstrs)) != 0)
    {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "\"%s\" is not a profile store: %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(err, errlen, "profile store \"%s\": %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    if (cef_store_gen_begin(g, err, errlen) != 0) {
        goto failed;
    }

    g->epoch = 1;
    g->caching = 1;
    cef_store_cache_init(&g->cindex, (uint64_t) 1 << g->info.key_bits);
    cef_store_cache_init(&g->cids, (uint64_t) 1 << g->info.id_bits);
    cef_store_cache_init(&g->cprof, (uint64_t) g->info.next_number
                                    >> CEF_STORE_GROUP_SHIFT);
    mdb_txn_reset(g->txn);
    g->active = 0;

    return 0;

failed:

    *gp = NULL;
    cef_store_gen_close(g);
    return -1;
}


static void
cef_store_gen_close(cef_store_gen_t *g)
{
    cef_store_block_t  *b, *next;

    if (g == NULL) {
        return;
    }

    if (g->txn) {
        mdb_txn_abort(g->txn);
    }

    if (g->env) {
        mdb_env_close(g->env);
    }

    for (b = g->blocks; b; b = next) {
        next = b->next;
        free(b);
    }

    free(g->names);
    free(g->strs);
    free(g->dict.names_hash);
    cef_store_cache_free(&g->cindex);
    cef_store_cache_free(&g->cids);
    cef_store_cache_free(&g->cprof);
    free(g);
}


/*
 * LMDB trusts its meta pages: a meta page naming pages the data file does
 * not have (a damaged or overwritten file) would have us map a size read
 * from the same garbage, and a failed remap leaves the environment
 * pointing into unmapped memory.  The writer only commits a meta page
 * after the pages it names are written, so the file always holds them.
 */

static int
cef_store_gen_check_size(cef_store_gen_t *g, char *err, size_t errlen)
{
    int           fd;
    MDB_stat      ms;
    struct stat   st;
    MDB_envinfo   ei;

    if (mdb_env_info(g->env, &ei) != 0
        || mdb_env_stat(g->env, &ms) != 0
        || mdb_env_get_fd(g->env, &fd) != 0
        || fstat(fd, &st) != 0)
    {
        snprintf(err, errlen, "generation %llu: cannot check its data file",
                 (unsigned long long) g->info.generation);
        return -1;
    }

    if (ei.me_last_pgno >= (size_t) st.st_size / ms.ms_psize) {
        snprintf(err, errlen, "generation %llu is damaged: its meta page "
                 "names page %zu, the data file has %zu",
                 (unsigned long long) g->info.generation, ei.me_last_pgno,
                 (size_t) st.st_size / ms.ms_psize);
        return -1;
    }

    return 0;
}


/*
 * Give up a generation for good: sessions on it fail (no LMDB call is made
 * on it again) until a newer generation is opened.  Releasing the
 * environment reads no data page.
 */

static void
cef_store_gen_damage(cef_store_gen_t *g, const char *why)
{
    if (g->damaged[0] == '\0') {
        snprintf(g->damaged, sizeof(g->damaged), "%s", why);
    }

    g->active = 0;

    if (g->txn) {
        mdb_txn_abort(g->txn);
        g->txn = NULL;
    }

    if (g->env) {
        mdb_env_close(g->env);
        g->env = NULL;
    }
}


static int
cef_store_gen_begin(cef_store_gen_t *g, char *err, size_t errlen)
{
    int  rc, dead, retried_full = 0, retried_size = 0;

    if (g->damaged[0]) {
        snprintf(err, errlen, "%s", g->damaged);
        return -1;
    }

again:

    if (g->txn) {
        rc = mdb_txn_renew(g->txn);

    } else {
        rc = mdb_txn_begin(g->env, NULL, MDB_RDONLY, &g->txn);
        if (rc != 0) {
            g->txn = NULL;
        }
    }

    if (rc == MDB_MAP_RESIZED && !retried_size) {
        /* the writer grew the map: adopt its size (no txn may be live) */
        retried_size = 1;
        if (g->txn) {
            mdb_txn_abort(g->txn);
            g->txn = NULL;
        }
        g->epoch++;      /* the map moves: cached pointers die */

        if (cef_store_gen_check_size(g, err, errlen) != 0) {
            cef_store_gen_damage(g, err);
            return -1;
        }

        rc = mdb_env_set_mapsize(g->env, 0);
        if (rc == 0) {
            goto again;
        }

        /* LMDB keeps no map then: the environment is unusable */
        snprintf(err, errlen, "generation %llu: cannot map its grown data "
                 "file: %s", (unsigned long long) g->info.generation,
                 mdb_strerror(rc));
        cef_store_gen_damage(g, err);
        return -1;
    }

    if (rc == MDB_READERS_FULL && !retried_full) {
        retried_full = 1;
        mdb_reader_check(g->env, &dead);
        goto again;
    }

    if (rc != 0) {
        snprintf(err, errlen, "cannot begin a read transaction: %s",
                 mdb_strerror(rc));
        return -1;
    }

    g->active = 1;

    if (mdb_txn_id(g->txn) != g->cache_txnid) {
        g->cache_txnid = mdb_txn_id(g->txn);
        if (++g->epoch == 0) {
            g->epoch = 1;
            cef_store_cache_clear(&g->cindex);
            cef_store_cache_clear(&g->cids);
            cef_store_cache_clear(&g->cprof);
        }
    }

    if (mdb_txn_id(g->txn) != g->txnid) {
        if (cef_store_gen_refresh(g, err, errlen) != 0) {
            mdb_txn_reset(g->txn);
            g->active = 0;
            return -1;
        }
    }

    return 0;
}


/* Re-read the metadata and the new tail of the dictionary. */

static int
cef_store_gen_refresh(cef_store_gen_t *g, char *err, size_t errlen)
{
    int               rc;
    uint64_t          gen;
    MDB_val           k, v;
    cef_store_info_t  info;

    k.mv_data = (void *) "meta";
    k.mv_size = 4;

    rc = mdb_get(g->txn, g->meta, &k, &v);
    if (rc != 0) {
        snprintf(err, errlen, "profile store metadata: %s", mdb_strerror(rc));
        return -1;
    }

    if (cef_store_meta_decode(v.mv_data, v.mv_size, &info) != 0) {
        snprintf(err, errlen, "profile store metadata is malformed");
        return -1;
    }

    if (info.format != CEF_STORE_FORMAT) {
        snprintf(err, errlen, "profile store format %u is not supported "
                 "(expected %u)", info.format, CEF_STORE_FORMAT);
        return -1;
    }

    if (info.key_bits < CEF_STORE_BUCKET_BITS_MIN
        || info.key_bits > CEF_STORE_BUCKET_BITS_MAX
        || info.id_bits < CEF_STORE_BUCKET_BITS_MIN
        || info.id_bits > CEF_STORE_BUCKET_BITS_MAX)
    {
        snprintf(err, errlen, "profile store metadata: bad index layout");
        return -1;
    }

    g->kcfg.bits = info.key_bits;
    g->kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    g->icfg.bits = info.id_bits;
    g->icfg.rest = CEF_STORE_BUCKET_REST_IDS;

    if (info.names > g->dict.names.n) {
        if (cef_store_load_strs(g, g->dnames, &g->dict.names, &g->names,
                                info.names, err, errlen) != 0
            || cef_dict_index(&g->dict) != 0)
        {
            if (err[0] == '\0') {
                snprintf(err, errlen, "out of memory");
            }
            return -1;
        }
    }

    if (info.strs > g->dict.strs.n) {
        if (cef_store_load_strs(g, g->dstrs, &g->dict.strs, &g->strs,
                                info.strs, err, errlen) != 0)
        {
            return -1;
        }
    }

    gen = g->info.generation;
    g->info = info;
    g->info.generation = gen;
    g->txnid = mdb_txn_id(g->txn);

    return 0;
}


static int
cef_store_dict_entry(MDB_cursor *cur, uint32_t id, MDB_val *v, char *err,
    size_t errlen)
{
    int      rc;
    MDB_val  k;

    k.mv_data = &id;
    k.mv_size = sizeof(id);

    rc = mdb_cursor_get(cur, &k, v, MDB_SET_KEY);
    if (rc != 0) {
        snprintf(err, errlen, "dictionary entry %u: %s", id,
                 mdb_strerror(rc));
        return -1;
    }

    return 0;
}


static int
cef_store_load_strs(cef_store_gen_t *g, MDB_dbi dbi, cef_strtab_t *tab,
    cef_span_t **spans, uint32_t want, char *err, size_t errlen)
{
    int                 rc;
    char               *p;
    size_t              total;
    uint32_t            i, have;
    MDB_val             v;
    MDB_cursor         *cur;
    cef_span_t         *ns;
    cef_store_block_t  *b;

    err[0] = '\0';
    have = tab->n;

    ns = realloc(*spans, (size_t) want * sizeof(cef_span_t));
    if (ns == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    *spans = ns;
    tab->s = ns;

    rc = mdb_cursor_open(g->txn, dbi, &cur);
    if (rc != 0) {
        snprintf(err, errlen, "dictionary: %s", mdb_strerror(rc));
        return -1;
    }

    /* two passes: size, then copy into one block */

    total = 0;

    for (i = have; i < want; i++) {
        if (cef_store_dict_entry(cur, i, &v, err, errlen) != 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        total += v.mv_size;
    }

    b = malloc(sizeof(cef_store_block_t) + total + 1);
    if (b == NULL) {
        mdb_cursor_close(cur);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    b->next = g->blocks;
    g->blocks = b;
    p = b->data;

    for (i = have; i < want; i++) {
        if (cef_store_dict_entry(cur, i, &v, err, errlen) != 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        if (v.mv_size) {
            memcpy(p, v.mv_data, v.mv_size);
        }
        ns[i].data = p;
        ns[i].len = v.mv_size;
        p += v.mv_size;
    }

    mdb_cursor_close(cur);
    tab->n = want;

    return 0;
}


static void
cef_store_check_replaced(cef_store_t *s)
{
    char              path[PATH_MAX], err[256];
    uint64_t          newest;
    struct stat       st;
    struct timespec   now;
    cef_store_gen_t  *g;

    if (s->check_ms) {
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now);

        if ((now.tv_sec - s->checked.tv_sec) * 1000
            + (now.tv_nsec - s->checked.tv_nsec) / 1000000
            < (long) s->check_ms)
        {
            return;
        }

        s->checked = now;
    }

    if ((size_t) snprintf(path, sizeof(path), "%s/%s", s->dir,
                          CEF_STORE_CURRENT) >= sizeof(path)
        || stat(path, &st) != 0)
    {
        return;
    }

    if (st.st_dev == s->gen->dev && st.st_ino == s->gen->ino) {
        s->newest = s->gen->info.generation;
        s->failed = 0;
        return;
    }

    if (cef_store_current(s->dir, path, sizeof(path), &newest) == 0) {
        s->newest = newest;
    }

    if (st.st_dev == s->bad_dev && st.st_ino == s->bad_ino) {
        return;
    }

    /* open the new generation first; keep the old one if that fails */

    s->try_dev = st.st_dev;
    s->try_ino = st.st_ino;

    if (cef_store_gen_open(&s->opening, s->dir, err, sizeof(err)) != 0) {
        s->failed = s->newest;
        snprintf(s->switch_err, sizeof(s->switch_err), "%s", err);
        return;
    }

    g = s->opening;
    s->opening = NULL;

    g->caching = s->caching;
    cef_store_gen_close(s->gen);
    s->gen = g;
    s->newest = g->info.generation;
    s->failed = 0;
}


uint64_t
cef_store_fault(cef_store_t *s, const char *why)
{
    cef_store_gen_t  *g;

    if (s->opening == NULL) {
        cef_store_gen_damage(s->gen, why);
        return s->gen->info.generation;
    }

    /* the newer generation faulted while being opened */

    g = s->opening;
    s->opening = NULL;
    s->failed = s->newest;
    s->bad_dev = s->try_dev;
    s->bad_ino = s->try_ino;
    snprintf(s->switch_err, sizeof(s->switch_err), "%s", why);

    cef_store_gen_damage(g, why);
    cef_store_gen_close(g);

    return s->failed;
}


void
cef_store_generations(const cef_store_t *s, cef_store_gens_t *gens)
{
    gens->serving = s->gen->info.generation;
    gens->newest = s->newest;
    gens->failed = s->failed;
    gens->error = s->failed ? s->switch_err : "";
    gens->damaged = s->gen->damaged[0] ? s->gen->damaged : NULL;
}


int
cef_store_begin(cef_store_t *s)
{
    if (s->gen->active) {
        cef_store_seterr(s, "a session is already open");
        return CEF_STORE_ERROR;
    }

    cef_store_check_replaced(s);

    if (cef_store_gen_begin(s->gen, s->err, sizeof(s->err)) != 0) {
        return CEF_STORE_ERROR;
    }

    return CEF_STORE_OK;
}


void
cef_store_end(cef_store_t *s)
{
    if (s->gen->active) {
        mdb_txn_reset(s->gen->txn);
        s->gen->active = 0;
    }
}


int
cef_store_lookup_number(cef_store_t *s, uint32_t number, cef_profile_t *p)
{
    int               rc;
    size_t            len, vlen;
    uint32_t          group;
    const uint8_t    *blob, *val;
    cef_store_gen_t  *g = s->gen;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    group = cef_store_group_of(number);

    rc = cef_store_get(g, &g->cprof, g->prof, group, &group, sizeof(group),
                       &val, &vlen);
    if (rc != 0) {
        return cef_store_get_failed(s, rc, "profile");
    }

    /* the header and, in a small group, the profile too, in one wait */
    cef_store_prefetch(val, vlen);

    if (cef_store_group_slot(val, vlen, number, &blob, &len) != 0) {
        cef_store_seterr(s, "profile group %u is malformed", group);
        return CEF_STORE_ERROR;
    }

    if (len == 0) {
        return CEF_STORE_NOTFOUND;
    }

    if (blob + len > val + CEF_STORE_PREFETCH) {
        cef_store_prefetch(blob, len);
    }

    if (cef_profile_parse(blob, len, &g->dict, p) != 0) {
        cef_store_seterr(s, "profile %u is malformed", number);
        return CEF_STORE_ERROR;
    }

    return CEF_STORE_OK;
}


/*
 * The bucket of hash in an index (dbi "index" with kcfg, or "ids" with
 * icfg), through the session's cache: CEF_STORE_OK with *val and *len,
 * CEF_STORE_NOTFOUND or CEF_STORE_ERROR (cef_store_get_failed()).
 */
static inline int
cef_store_get_bucket(cef_store_t *s, cef_store_cache_t *c, MDB_dbi dbi,
    const cef_store_bucket_cfg_t *cfg, const uint8_t *hash,
    const uint8_t **val, size_t *len, const char *what)
{
    int       rc;
    uint8_t   key[CEF_STORE_BUCKET_KEY_LEN];
    uint32_t  b;

    b = cef_store_bucket_of(cfg, hash);
    cef_store_bucket_key(b, key);

    rc = cef_store_get(s->gen, c, dbi, b, key, CEF_STORE_BUCKET_KEY_LEN, val,
                       len);
    if (rc != 0) {
        return cef_store_get_failed(s, rc, what);
    }

    return CEF_STORE_OK;
}


int
cef_store_lookup_hash(cef_store_t *s, const uint8_t *hash, cef_profile_t *p)
{
    int               rc;
    size_t            pos, len;
    const uint8_t    *val;
    cef_store_gen_t  *g = s->gen;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    rc = cef_store_get_bucket(s, &g->cindex, g->index, &g->kcfg, hash, &val,
                              &len, "key");
    if (rc != CEF_STORE_OK) {
        return rc;
    }

    if (!cef_store_bucket_search(&g->kcfg, val, len, hash, &pos)) {
        return CEF_STORE_NOTFOUND;
    }

    return cef_store_lookup_number(s,
               cef_store_bucket_number(&g->kcfg, val, pos), p);
}


int
cef_store_lookup_key(cef_store_t *s, cef_identity_t *ident, const char *type,
    size_t tlen, const char *value, size_t vlen, cef_profile_t *p)
{
    uint8_t  hash[CEF_IDENTITY_HASH_LEN];

    if (tlen == 0) {
        cef_store_seterr(s, "empty key type");
        return CEF_STORE_ERROR;
    }

    if (cef_identity_hash(ident, type, tlen, value, vlen, hash) != 0) {
        cef_store_seterr(s, "HMAC-SHA256 failed");
        return CEF_STORE_ERROR;
    }

    return cef_store_lookup_hash(s, hash, p);
}


int
cef_store_lookup_id(cef_store_t *s, cef_identity_t *ident, const char *id,
    size_t len, cef_profile_t *p)
{
    int               rc;
    size_t            pos, n, vlen;
    uint8_t           hash[CEF_IDENTITY_HASH_LEN];
    const uint8_t    *val;
    cef_store_gen_t  *g = s->gen;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    if (cef_identity_hash(ident, "", 0, id, len, hash) != 0) {
        cef_store_seterr(s, "HMAC-SHA256 failed");
        return CEF_STORE_ERROR;
    }

    rc = cef_store_get_bucket(s, &g->cids, g->ids, &g->icfg, hash, &val,
                              &vlen, "id");
    if (rc != CEF_STORE_OK) {
        return rc;
    }

    cef_store_bucket_search(&g->icfg, val, vlen, hash, &pos);
    n = vlen / cef_store_bucket_item_len(&g->icfg);

    /* ids keep 8 bytes of the hash: compare the stored id */

    for ( ; pos < n && cef_store_bucket_match(&g->icfg, val, pos, hash);
         pos++)
    {
        rc = cef_store_lookup_number(s,
                 cef_store_bucket_number(&g->icfg, val, pos), p);
        if (rc == CEF_STORE_ERROR) {
            return rc;
        }

        if (rc == CEF_STORE_OK && p->id.len == len
            && (len == 0 || memcmp(p->id.data, id, len) == 0))
        {
            return CEF_STORE_OK;
        }
    }

    return CEF_STORE_NOTFOUND;
}


int
cef_store_info(cef_store_t *s, cef_store_info_t *info)
{
    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    *info = s->gen->info;
    return CEF_STORE_OK;
}


int
cef_store_offsets(cef_store_t *s, cef_store_offsets_t *o)
{
    int      rc;
    MDB_val  k, v;

    memset(o, 0, sizeof(cef_store_offsets_t));

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;

    rc = mdb_get(s->gen->txn, s->gen->meta, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return CEF_STORE_NOTFOUND;
    }

    if (rc != 0) {
        cef_store_seterr(s, "reading the stream offsets: %s",
                         mdb_strerror(rc));
        return CEF_STORE_ERROR;
    }

    if (cef_store_meta_offsets_decode(v.mv_data, v.mv_size, o) != 0) {
        cef_store_seterr(s, "the stored stream offsets are malformed");
        return CEF_STORE_ERROR;
    }

    return CEF_STORE_OK;
}


const cef_dict_t *
cef_store_dict(cef_store_t *s)
{
    return &s->gen->dict;
}


int
cef_store_check_secret(cef_store_t *s, cef_identity_t *ident)
{
    uint8_t  fp[8];

    if (cef_identity_fingerprint(ident, fp) != 0) {
        cef_store_seterr(s, "HMAC-SHA256 failed");
        return CEF_STORE_ERROR;
    }

    return memcmp(fp, s->gen->info.secret_check, 8) == 0
           ? CEF_STORE_OK : CEF_STORE_NOTFOUND;
}


const char *
cef_store_strerror(const cef_store_t *s)
{
    return s->err;
}


int
cef_store_meta_get(cef_store_t *s, const void *key, size_t klen,
    const void **val, size_t *vlen)
{
    int      rc;
    MDB_val  k, v;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    if (klen == 0 || klen > CEF_STORE_META_KEY_MAX) {
        return CEF_STORE_NOTFOUND;
    }

    k.mv_data = (void *) key;
    k.mv_size = klen;

    rc = mdb_get(s->gen->txn, s->gen->meta, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return CEF_STORE_NOTFOUND;
    }

    if (rc != 0) {
        cef_store_seterr(s, "reading the metadata: %s", mdb_strerror(rc));
        return CEF_STORE_ERROR;
    }

    *val = v.mv_data;
    *vlen = v.mv_size;

    return CEF_STORE_OK;
}


int
cef_store_meta_scan(cef_store_t *s, const void *prefix, size_t plen,
    int (*fn)(void *data, const void *key, size_t klen, const void *val,
              size_t vlen),
    void *data)
{
    int          rc, stop = 0;
    MDB_val      k, v;
    MDB_cursor  *cur;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    rc = mdb_cursor_open(s->gen->txn, s->gen->meta, &cur);
    if (rc != 0) {
        cef_store_seterr(s, "reading the metadata: %s", mdb_strerror(rc));
        return CEF_STORE_ERROR;
    }

    k.mv_data = (void *) prefix;
    k.mv_size = plen;

    rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);

    while (rc == 0 && !stop) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0) {
            break;
        }

        stop = fn(data, k.mv_data, k.mv_size, v.mv_data, v.mv_size);

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        cef_store_seterr(s, "reading the metadata: %s", mdb_strerror(rc));
        return CEF_STORE_ERROR;
    }

    return CEF_STORE_OK;
}


int
cef_store_published_changed(cef_store_t *s, cef_store_pub_stamp_t *st)
{
    int          rc;
    size_t       txnid, vlen;
    uint64_t     counter = 0;
    const void  *val;

    if (cef_store_no_session(s)) {
        return CEF_STORE_ERROR;
    }

    txnid = mdb_txn_id(s->gen->txn);

    /* nothing committed since the last check: nothing to read */
    if (st->generation == s->gen->info.generation && st->txn == txnid
        && st->generation != 0)
    {
        return 0;
    }

    rc = cef_store_meta_get(s, CEF_STORE_META_PUBLISHED,
                            sizeof(CEF_STORE_META_PUBLISHED) - 1, &val,
                            &vlen);
    if (rc == CEF_STORE_ERROR) {
        return CEF_STORE_ERROR;
    }

    if (rc == CEF_STORE_OK && vlen == 8) {
        counter = cef_store_le64(val);
    }

    if (st->generation == s->gen->info.generation && st->counter == counter
        && st->generation != 0)
    {
        st->txn = txnid;
        return 0;
    }

    st->generation = s->gen->info.generation;
    st->txn = txnid;
    st->counter = counter;

    return 1;
}


uint64_t
cef_store_le64(const void *p)
{
    const uint8_t  *b = p;

    return (uint64_t) b[0] | (uint64_t) b[1] << 8 | (uint64_t) b[2] << 16
           | (uint64_t) b[3] << 24 | (uint64_t) b[4] << 32
           | (uint64_t) b[5] << 40 | (uint64_t) b[6] << 48
           | (uint64_t) b[7] << 56;
}


void
cef_store_put_le64(void *p, uint64_t v)
{
    uint8_t  *b = p;
    int       i;

    for (i = 0; i < 8; i++) {
        b[i] = (uint8_t) (v >> (8 * i));
    }
}
