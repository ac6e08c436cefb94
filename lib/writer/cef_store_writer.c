/*
 * Copyright (C) ngx_cef_module developers
 *
 * The profile store's writer: full loads into a new generation switched
 * in atomically, and delta streams applied in batches (docs/store.md).
 */

/* fallocate(2), also when nginx's build compiles this file */
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
    cef_store_bucket_cfg_t          kcfg, icfg;

    cef_encode_t             enc;
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


static void
cef_w_err(cef_writer_t *w, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
}


/* "record N (byte O): ..." for the record being processed */

static int
cef_w_bad(cef_writer_t *w, const char *fmt, ...)
{
    int      n = 0;
    va_list  ap;

    /* stream records are named by their caller (topic, partition, offset) */
    if (w->rec_no > 0) {
        n = snprintf(w->err, w->errlen, "record %llu (byte %llu): ",
                     (unsigned long long) w->rec_no,
                     (unsigned long long) w->rec_off);
    }

    if (n >= 0 && (size_t) n < w->errlen) {
        va_start(ap, fmt);
        vsnprintf(w->err + n, w->errlen - n, fmt, ap);
        va_end(ap);
    }

    return CEF_WRITER_EINPUT;
}


/*
 * LMDB reports a short write as EIO ("short write, filesystem full?" in
 * mdb.c), and a filesystem near full cuts writes short while it still has
 * a little room (ext4 with 1 KB blocks, measured: 62 KB of 16 MB free).
 * A short write while the filesystem has less room than one of LMDB's
 * writes (MDB_COMMIT_PAGES, 64 pages) is a full disk.
 */

#define CEF_W_LMDB_WRITE_PAGES  64

static int
cef_w_write_errno(cef_writer_t *w, int rc)
{
    const char      *dir;
    MDB_stat         ms;
    struct statvfs   sv;

    if (rc != EIO || w->env == NULL || mdb_env_get_path(w->env, &dir) != 0
        || mdb_env_stat(w->env, &ms) != 0 || statvfs(dir, &sv) != 0)
    {
        return rc;
    }

    return (uint64_t) sv.f_bavail * sv.f_frsize
           < (uint64_t) CEF_W_LMDB_WRITE_PAGES * ms.ms_psize ? ENOSPC : rc;
}


/* What an operator can do about a write that failed with rc, or "". */

static const char *
cef_w_write_hint(int rc)
{
    return rc == ENOSPC || rc == EIO || rc == EFBIG || rc == EDQUOT
           ? " (disk full, or over a file size or quota limit?)" : "";
}


static int
cef_w_lmdb(cef_writer_t *w, const char *what, int rc)
{
    char  where[64] = "";

    rc = cef_w_write_errno(w, rc);

    if (w->rec_no > 0) {
        snprintf(where, sizeof(where), "record %llu (byte %llu): ",
                 (unsigned long long) w->rec_no,
                 (unsigned long long) w->rec_off);
    }

    if (rc == MDB_MAP_FULL) {
        cef_w_err(w, "%s%s: the store's map is full (LMDB map size); run "
                  "again with a larger --map-size", where, what);

    } else {
        cef_w_err(w, "%s%s: %s%s", where, what, mdb_strerror(rc),
                  cef_w_write_hint(rc));
    }

    return CEF_WRITER_ESTORE;
}


/* --- the directory, the lock, generations -------------------------------- */


static int
cef_w_path(cef_writer_t *w, char *buf, const char *name)
{
    if ((size_t) snprintf(buf, PATH_MAX, "%s/%s", w->conf->dir, name)
        >= PATH_MAX)
    {
        cef_w_err(w, "path too long: \"%s/%s\"", w->conf->dir, name);
        return -1;
    }

    return 0;
}


static int
cef_w_fsync_dir(const char *path)
{
    int  fd, rc;

    fd = open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }

    rc = fsync(fd);
    close(fd);

    return rc;
}


/* Remove a generation or temporary directory (files only inside). */

static int
cef_w_rmtree(const char *path)
{
    DIR            *d;
    struct dirent  *de;
    int             fd;

    d = opendir(path);
    if (d == NULL) {
        return errno == ENOENT ? 0 : -1;
    }

    fd = dirfd(d);

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        unlinkat(fd, de->d_name, 0);
    }

    closedir(d);

    return rmdir(path);
}


/*
 * LMDB's lock.mdb holds the reader table, which every reader (each nginx
 * worker, cef-sync get) writes through a shared map.  LMDB makes it with
 * ftruncate(), so its pages are holes, and touching a hole through a map
 * on a full disk is SIGBUS: at once for the writer's first page, later
 * for the worker that takes the 62nd slot.  Allocate the whole file, so
 * that a full disk is an error here and never a signal there.
 *
 * size > 0: a new generation that nobody else has open: grow the file to
 * size (LMDB 0.9: 128 bytes of header and 64 per reader; a larger file
 * only gives more slots).  posix_fallocate() may fall back to writing
 * zeros, which only the file's sole user may do.  size 0: the file in use
 * by readers: fill its holes with fallocate(2), which never writes.
 */

#define CEF_W_LOCK_SIZE  ((off_t) CEF_WRITER_MAX_READERS * 64 + 128)

static int
cef_w_reserve_lock(cef_writer_t *w, const char *dir, off_t size, mode_t mode)
{
    int          fd, rc;
    char         path[PATH_MAX];
    struct stat  st;

    if ((size_t) snprintf(path, sizeof(path), "%s/lock.mdb", dir)
        >= sizeof(path))
    {
        cef_w_err(w, "path too long: \"%s/lock.mdb\"", dir);
        return CEF_WRITER_ESTORE;
    }

    fd = open(path, O_RDWR|O_CREAT|O_CLOEXEC, mode);

    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = errno;

    } else if (size > 0) {
        rc = posix_fallocate(fd, 0, size > st.st_size ? size : st.st_size);

    } else if (st.st_size > 0 && fallocate(fd, 0, 0, st.st_size) != 0) {
        rc = errno == EOPNOTSUPP ? 0 : errno;

    } else {
        rc = 0;
    }

    if (fd >= 0) {
        close(fd);
    }

    if (rc != 0) {
        snprintf(path + strlen(path), sizeof(path) - strlen(path),
                 ": allocating the reader table");
        return cef_w_lmdb(w, path, rc);
    }

    return CEF_WRITER_OK;
}


/*
 * Group sharing (conf->set_group): give DIR to the group and make it setgid
 * when asked, then note whether DIR is setgid.  Entries made in a setgid
 * directory inherit its group from the kernel; cef_w_share() adds the
 * group write bit the umask took away.
 */

static int
cef_w_share_dir(cef_writer_t *w)
{
    struct stat  st;

    if (w->conf->set_group
        && (chown(w->conf->dir, (uid_t) -1, w->conf->group) != 0
            || chmod(w->conf->dir, 02775) != 0))
    {
        cef_w_err(w, "cannot give store directory \"%s\" to group %lu: %s",
                  w->conf->dir, (unsigned long) w->conf->group,
                  strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    if (stat(w->conf->dir, &st) != 0) {
        cef_w_err(w, "cannot stat store directory \"%s\": %s",
                  w->conf->dir, strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    w->shared = (st.st_mode & S_ISGID) != 0;

    return CEF_WRITER_OK;
}


/*
 * Add the bits of mode that path lacks.  Only when some are missing: a
 * writer running as another member of the group (consume as user cef) may
 * not chmod root's files, and need not.
 */

static int
cef_w_share_path(cef_writer_t *w, const char *path, mode_t mode)
{
    struct stat  st;

    if (stat(path, &st) != 0
        || ((st.st_mode & mode) != mode
            && chmod(path, (st.st_mode & 07777) | mode) != 0))
    {
        cef_w_err(w, "cannot make \"%s\" group-writable: %s", path,
                  strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    return CEF_WRITER_OK;
}


/* A generation directory and its LMDB files, group-writable if shared. */

static int
cef_w_share(cef_writer_t *w, const char *gen)
{
    static const char  *files[] = { "data.mdb", "lock.mdb" };
    char                path[PATH_MAX];
    size_t              i;

    if (!w->shared) {
        return CEF_WRITER_OK;
    }

    if (cef_w_share_path(w, gen, 02775) != CEF_WRITER_OK) {
        return CEF_WRITER_ESTORE;
    }

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", gen, files[i])
            >= sizeof(path))
        {
            cef_w_err(w, "path too long: \"%s\"", gen);
            return CEF_WRITER_ESTORE;
        }

        if (cef_w_share_path(w, path, 0664) != CEF_WRITER_OK) {
            return CEF_WRITER_ESTORE;
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_lock(cef_writer_t *w, int create)
{
    char     path[PATH_MAX], msg[PATH_MAX + 128], holder[32];
    ssize_t  n;

    if (create && mkdir(w->conf->dir, 0755) != 0 && errno != EEXIST) {
        cef_w_err(w, "cannot create store directory \"%s\": %s%s",
                  w->conf->dir, strerror(errno), cef_w_write_hint(errno));
        return CEF_WRITER_ESTORE;
    }

    if (cef_w_share_dir(w) != CEF_WRITER_OK) {
        return CEF_WRITER_ESTORE;
    }

    if (cef_w_path(w, path, CEF_STORE_LOCK) != 0) {
        return CEF_WRITER_ESTORE;
    }

    w->lockfd = open(path, O_RDWR|O_CREAT|O_CLOEXEC, 0644);
    if (w->lockfd < 0) {
        cef_w_err(w, "cannot open lock file \"%s\": %s%s", path,
                  strerror(errno), cef_w_write_hint(errno));
        return CEF_WRITER_ESTORE;
    }

    if (w->shared && cef_w_share_path(w, path, 0664) != CEF_WRITER_OK) {
        return CEF_WRITER_ESTORE;
    }

    if (flock(w->lockfd, LOCK_EX|LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            cef_w_err(w, "cannot lock \"%s\": %s", path, strerror(errno));
            return CEF_WRITER_ESTORE;
        }

        n = pread(w->lockfd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';

        if (!w->conf->wait) {
            cef_w_err(w, "another cef-sync (pid %s) is writing to \"%s\"; "
                      "try again later", holder[0] ? holder : "?",
                      w->conf->dir);
            return CEF_WRITER_ESTORE;
        }

        if (w->conf->notice) {
            snprintf(msg, sizeof(msg), "waiting for another cef-sync (pid %s)"
                     " writing to \"%s\"", holder[0] ? holder : "?",
                     w->conf->dir);
            w->conf->notice(w->conf->data, msg);
        }

        while (flock(w->lockfd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                cef_w_err(w, "cannot lock \"%s\": %s", path, strerror(errno));
                return CEF_WRITER_ESTORE;
            }

            if (w->conf->cancel && *w->conf->cancel) {
                cef_w_err(w, "stopped while waiting for the write lock");
                return CEF_WRITER_ESTORE;
            }
        }
    }

    n = snprintf(holder, sizeof(holder), "%ld\n", (long) getpid());
    if (ftruncate(w->lockfd, 0) != 0 || pwrite(w->lockfd, holder, n, 0) != n)
    {
        /* the pid is only informative */
    }

    return CEF_WRITER_OK;
}


/* Remove what crashed writers left: temporary and non-current gens. */

static void
cef_w_cleanup(cef_writer_t *w)
{
    DIR            *d;
    struct dirent  *de;
    char            cur[PATH_MAX], path[PATH_MAX];
    const char     *curname;
    uint64_t        gen;

    curname = NULL;
    if (cef_store_current(w->conf->dir, cur, sizeof(cur), &gen) == 0) {
        curname = strrchr(cur, '/') + 1;
    }

    d = opendir(w->conf->dir);
    if (d == NULL) {
        return;
    }

    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "tmp-", 4) != 0
            && (strncmp(de->d_name, "gen-", 4) != 0
                || (curname && strcmp(de->d_name, curname) == 0)))
        {
            continue;
        }

        if (cef_w_path(w, path, de->d_name) == 0) {
            cef_w_rmtree(path);
        }
    }

    closedir(d);

    if (cef_w_path(w, path, CEF_STORE_CURRENT ".tmp") == 0) {
        unlink(path);
    }
}


static void
cef_w_close(cef_writer_t *w)
{
    if (w->txn) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }

    if (w->env) {
        mdb_env_close(w->env);
        w->env = NULL;
    }

    if (w->enc_init) {
        cef_encode_free(&w->enc);
        w->enc_init = 0;
    }

    if (w->lockfd > 0) {
        close(w->lockfd);   /* releases the flock */
        w->lockfd = -1;
    }

    free(w->ents);
    free(w->idents);
    free(w->offsets);
    free(w->scratch);
    free(w->bval);
    free(w->gbuf);
    free(w->lg);
    free(w->koffs);
    w->koffs = NULL;
    w->gbuf = NULL;
    w->lg = NULL;
    w->ents = NULL;
    w->idents = NULL;
    w->bval = NULL;
    w->offsets = NULL;
    w->scratch = NULL;
}


static int
cef_w_txn_begin(cef_writer_t *w, unsigned dbflags)
{
    int  rc;

    rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    if (rc != 0) {
        w->txn = NULL;
        return cef_w_lmdb(w, "mdb_txn_begin", rc);
    }

    if ((rc = mdb_dbi_open(w->txn, CEF_STORE_DB_META, dbflags, &w->meta))
        || (rc = mdb_dbi_open(w->txn, CEF_STORE_DB_PROF,
                              dbflags|MDB_INTEGERKEY, &w->prof))
        || (rc = mdb_dbi_open(w->txn, CEF_STORE_DB_INDEX, dbflags,
                              &w->index))
        || (rc = mdb_dbi_open(w->txn, CEF_STORE_DB_IDS, dbflags, &w->ids))
        || (rc = mdb_dbi_open(w->txn, CEF_STORE_DB_NAMES,
                              dbflags|MDB_INTEGERKEY, &w->names))
        || (rc = mdb_dbi_open(w->txn, CEF_STORE_DB_STRS,
                              dbflags|MDB_INTEGERKEY, &w->strs)))
    {
        return cef_w_lmdb(w, "opening the store's databases", rc);
    }

    return CEF_WRITER_OK;
}


static int
cef_w_txn_commit(cef_writer_t *w)
{
    int  rc;

    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;

    if (rc != 0) {
        return cef_w_lmdb(w, "commit", rc);
    }

    return CEF_WRITER_OK;
}


/* Store the dictionary entries added since the last call. */

static int
cef_w_put_dict(cef_writer_t *w, MDB_dbi dbi, cef_encode_intern_t *t)
{
    int       rc;
    uint32_t  id;
    MDB_val   k, v;

    for (id = t->written; id < t->n; id++) {
        k.mv_data = &id;
        k.mv_size = sizeof(id);
        v.mv_data = (void *) t->spans[id].data;
        v.mv_size = t->spans[id].len;

        rc = mdb_put(w->txn, dbi, &k, &v, MDB_APPEND);
        if (rc != 0) {
            return cef_w_lmdb(w, "writing the dictionary", rc);
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_put_meta(cef_writer_t *w)
{
    int               rc;
    size_t            n;
    MDB_val           k, v;
    msgpack_sbuffer   sb;
    msgpack_packer    pk;
    cef_store_info_t *i = &w->info;

    if ((rc = cef_w_put_dict(w, w->names, &w->enc.names)) != 0
        || (rc = cef_w_put_dict(w, w->strs, &w->enc.strs)) != 0)
    {
        return rc;
    }

    i->names = w->enc.names.n;
    i->strs = w->enc.strs.n;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

#define CEF_PACK_KEY(s)                                                      \
    msgpack_pack_str(&pk, sizeof(s) - 1);                                    \
    msgpack_pack_str_body(&pk, s, sizeof(s) - 1)

    msgpack_pack_map(&pk, 14);
    CEF_PACK_KEY("format");       msgpack_pack_uint32(&pk, i->format);
    n = strlen(i->snapshot_id);
    CEF_PACK_KEY("snapshot_id");  msgpack_pack_str(&pk, n);
                                  msgpack_pack_str_body(&pk, i->snapshot_id, n);
    CEF_PACK_KEY("created_at");   msgpack_pack_int64(&pk, i->created_at);
    CEF_PACK_KEY("loaded_at");    msgpack_pack_int64(&pk, i->loaded_at);
    CEF_PACK_KEY("updated_at");   msgpack_pack_int64(&pk, i->updated_at);
    CEF_PACK_KEY("last_seq");     msgpack_pack_uint64(&pk, i->last_seq);
    CEF_PACK_KEY("profiles");     msgpack_pack_uint64(&pk, i->profiles);
    CEF_PACK_KEY("keys");         msgpack_pack_uint64(&pk, i->keys);
    CEF_PACK_KEY("next_number");  msgpack_pack_uint32(&pk, i->next_number);
    CEF_PACK_KEY("names");        msgpack_pack_uint32(&pk, i->names);
    CEF_PACK_KEY("strs");         msgpack_pack_uint32(&pk, i->strs);
    CEF_PACK_KEY("secret_check"); msgpack_pack_bin(&pk, 8);
                                  msgpack_pack_bin_body(&pk, i->secret_check, 8);
    CEF_PACK_KEY("key_bits");     msgpack_pack_uint32(&pk, i->key_bits);
    CEF_PACK_KEY("id_bits");      msgpack_pack_uint32(&pk, i->id_bits);
#undef CEF_PACK_KEY

    k.mv_data = (void *) "meta";
    k.mv_size = 4;
    v.mv_data = sb.data;
    v.mv_size = sb.size;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);

    if (rc != 0) {
        return cef_w_lmdb(w, "writing the metadata", rc);
    }

    w->enc.names.written = w->enc.names.n;
    w->enc.strs.written = w->enc.strs.n;

    return CEF_WRITER_OK;
}


/* --- record validation --------------------------------------------------- */


static int
cef_w_key_is(const msgpack_object *k, const char *name)
{
    size_t  n = strlen(name);

    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n
           && memcmp(k->via.str.ptr, name, n) == 0;
}


static const msgpack_object *
cef_w_field(const msgpack_object *rec, const char *name)
{
    uint32_t  i;

    for (i = 0; i < rec->via.map.size; i++) {
        if (cef_w_key_is(&rec->via.map.ptr[i].key, name)) {
            return &rec->via.map.ptr[i].val;
        }
    }

    return NULL;
}


/* Every field must be one of the names in the NULL-terminated list. */

static int
cef_w_check_fields(cef_writer_t *w, const msgpack_object *rec,
    const char *const *allowed)
{
    uint32_t                 i, j;
    const char *const       *a;
    const msgpack_object    *k;

    for (i = 0; i < rec->via.map.size; i++) {
        k = &rec->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR) {
            return cef_w_bad(w, "field names must be strings");
        }

        for (a = allowed; *a; a++) {
            if (cef_w_key_is(k, *a)) {
                break;
            }
        }

        if (*a == NULL) {
            return cef_w_bad(w, "unknown field \"%.*s\"",
                             (int) k->via.str.size, k->via.str.ptr);
        }

        for (j = 0; j < i; j++) {
            if (cef_w_key_is(&rec->via.map.ptr[j].key, *a)) {
                return cef_w_bad(w, "field \"%s\" appears twice", *a);
            }
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_check_id(cef_writer_t *w, const msgpack_object *rec, const char *name,
    const msgpack_object **out)
{
    const msgpack_object  *v;

    v = cef_w_field(rec, name);

    if (v == NULL) {
        return cef_w_bad(w, "field \"%s\" is missing", name);
    }

    if (v->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"%s\" must be a string", name);
    }

    if (v->via.str.size == 0 || v->via.str.size > CEF_PROFILE_ID_MAX) {
        return cef_w_bad(w, "field \"%s\" must be 1 to %d bytes long", name,
                         CEF_PROFILE_ID_MAX);
    }

    *out = v;
    return CEF_WRITER_OK;
}


static int
cef_w_check_keys(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out)
{
    uint32_t               i;
    const msgpack_object  *v, *k;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return required ? cef_w_bad(w, "field \"%s\" is missing", name)
                        : CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return cef_w_bad(w, "field \"%s\" must be an array of [TYPE, VALUE]",
                         name);
    }

    if (v->via.array.size > CEF_WRITER_KEYS_MAX) {
        return cef_w_bad(w, "field \"%s\" has %u keys, more than %d", name,
                         v->via.array.size, CEF_WRITER_KEYS_MAX);
    }

    for (i = 0; i < v->via.array.size; i++) {
        k = &v->via.array.ptr[i];

        if (k->type != MSGPACK_OBJECT_ARRAY || k->via.array.size != 2
            || k->via.array.ptr[0].type != MSGPACK_OBJECT_STR
            || k->via.array.ptr[1].type != MSGPACK_OBJECT_STR)
        {
            return cef_w_bad(w, "%s[%u] must be an array of two strings "
                             "[TYPE, VALUE]", name, i);
        }

        if (k->via.array.ptr[0].via.str.size == 0
            || memchr(k->via.array.ptr[0].via.str.ptr, ':',
                      k->via.array.ptr[0].via.str.size))
        {
            return cef_w_bad(w, "%s[%u]: the key type must be non-empty and "
                             "without ':'", name, i);
        }

        if (k->via.array.ptr[1].via.str.size == 0) {
            return cef_w_bad(w, "%s[%u]: the key value is empty", name, i);
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_check_attrs(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out)
{
    uint32_t               i, j;
    const char            *why;
    const msgpack_object  *v, *k;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return required ? cef_w_bad(w, "field \"%s\" is missing", name)
                        : CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "field \"%s\" must be a map", name);
    }

    for (i = 0; i < v->via.map.size; i++) {
        k = &v->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0
            || k->via.str.size > 255)
        {
            return cef_w_bad(w, "%s: attribute names must be strings of 1 to "
                             "255 bytes", name);
        }

        if (cef_encode_check_value(&v->via.map.ptr[i].val, &why) != 0) {
            return cef_w_bad(w, "%s.%.*s: %s", name, (int) k->via.str.size,
                             k->via.str.ptr, why);
        }

        for (j = 0; j < i; j++) {
            if (v->via.map.ptr[j].key.via.str.size == k->via.str.size
                && memcmp(v->via.map.ptr[j].key.via.str.ptr, k->via.str.ptr,
                          k->via.str.size) == 0)
            {
                return cef_w_bad(w, "%s.%.*s appears twice", name,
                                 (int) k->via.str.size, k->via.str.ptr);
            }
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_check_names(cef_writer_t *w, const msgpack_object *rec,
    const char *name, const msgpack_object **out)
{
    uint32_t               i;
    const msgpack_object  *v;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return cef_w_bad(w, "field \"%s\" must be an array of strings", name);
    }

    for (i = 0; i < v->via.array.size; i++) {
        if (v->via.array.ptr[i].type != MSGPACK_OBJECT_STR) {
            return cef_w_bad(w, "%s[%u] must be a string", name, i);
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_int_field(cef_writer_t *w, const msgpack_object *rec, const char *name,
    int64_t *out)
{
    const msgpack_object  *v;

    v = cef_w_field(rec, name);

    if (v == NULL) {
        return cef_w_bad(w, "field \"%s\" is missing", name);
    }

    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
    {
        *out = (int64_t) v->via.u64;
        return CEF_WRITER_OK;
    }

    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return CEF_WRITER_OK;
    }

    return cef_w_bad(w, "field \"%s\" must be an integer", name);
}


/*
 * A snapshot header's "kafka": {"topic": T, "offsets": {"0": N, ...}}: the
 * next offset to read in each partition once the snapshot is loaded.
 */

static int
cef_w_check_kafka(cef_writer_t *w, const msgpack_object *k)
{
    static const char *const  fields[] = { "topic", "offsets", NULL };

    int                    rc;
    char                   num[16], *end;
    uint32_t               i;
    unsigned long          p;
    const msgpack_object  *t, *offs, *pk, *pv;
    cef_store_offsets_t   *o;

    if (k->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "field \"kafka\" must be a map {\"topic\": T, "
                         "\"offsets\": {PARTITION: OFFSET, ...}}");
    }

    if ((rc = cef_w_check_fields(w, k, fields)) != 0) {
        return rc;
    }

    t = cef_w_field(k, "topic");
    offs = cef_w_field(k, "offsets");

    if (t == NULL || t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0
        || t->via.str.size > CEF_STORE_TOPIC_MAX)
    {
        return cef_w_bad(w, "kafka.topic must be a string of 1 to %d bytes",
                         CEF_STORE_TOPIC_MAX);
    }

    if (offs == NULL || offs->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "kafka.offsets must be a map {PARTITION: "
                         "OFFSET, ...}");
    }

    o = malloc(sizeof(cef_store_offsets_t));
    if (o == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    free(w->koffs);
    w->koffs = o;
    memset(o, 0, sizeof(cef_store_offsets_t));
    memcpy(o->topic, t->via.str.ptr, t->via.str.size);

    for (i = 0; i < CEF_STORE_PARTITIONS_MAX; i++) {
        o->next[i] = -1;
    }

    for (i = 0; i < offs->via.map.size; i++) {
        pk = &offs->via.map.ptr[i].key;
        pv = &offs->via.map.ptr[i].val;

        /* partitions are JSON object keys: decimal strings */

        if (pk->type == MSGPACK_OBJECT_STR && pk->via.str.size > 0
            && pk->via.str.size < sizeof(num)
            && pk->via.str.ptr[0] >= '0' && pk->via.str.ptr[0] <= '9')
        {
            memcpy(num, pk->via.str.ptr, pk->via.str.size);
            num[pk->via.str.size] = '\0';
            p = strtoul(num, &end, 10);
            if (*end != '\0') {
                p = ULONG_MAX;
            }

        } else if (pk->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            p = pk->via.u64 < ULONG_MAX ? (unsigned long) pk->via.u64
                                        : ULONG_MAX;

        } else {
            p = ULONG_MAX;
        }

        if (p >= CEF_STORE_PARTITIONS_MAX) {
            return cef_w_bad(w, "kafka.offsets: a partition must be a number "
                             "from 0 to %d", CEF_STORE_PARTITIONS_MAX - 1);
        }

        if (pv->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || pv->via.u64 > INT64_MAX)
        {
            return cef_w_bad(w, "kafka.offsets.%lu must be a non-negative "
                             "integer", p);
        }

        if (o->next[p] != -1) {
            return cef_w_bad(w, "kafka.offsets.%lu appears twice", p);
        }

        o->next[p] = (int64_t) pv->via.u64;
        if (p >= o->partitions) {
            o->partitions = (uint32_t) p + 1;
        }
    }

    return CEF_WRITER_OK;
}


/* Store stream offsets in the open transaction ("meta" key "kafka"). */

static int
cef_w_put_offsets(cef_writer_t *w, const cef_store_offsets_t *o)
{
    int              rc;
    size_t           n;
    uint32_t         i, count = 0;
    MDB_val          k, v;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    for (i = 0; i < o->partitions; i++) {
        count += o->next[i] >= 0;
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    n = strlen(o->topic);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "topic", 5);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, o->topic, n);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "offsets", 7);
    msgpack_pack_map(&pk, count);

    for (i = 0; i < o->partitions; i++) {
        if (o->next[i] >= 0) {
            msgpack_pack_uint32(&pk, i);
            msgpack_pack_uint64(&pk, (uint64_t) o->next[i]);
        }
    }

    if (sb.data == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;
    v.mv_data = sb.data;
    v.mv_size = sb.size;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);

    if (rc != 0) {
        return cef_w_lmdb(w, "writing the stream offsets", rc);
    }

    return CEF_WRITER_OK;
}


static int
cef_w_check_header(cef_writer_t *w, const msgpack_object *rec,
    const char *kind)
{
    static const char *const  snap[] = { "cef", "version", "id",
                                         "created_at", "kafka", NULL };
    static const char *const  delta[] = { "cef", "version", NULL };

    int                    rc;
    int64_t                version, created;
    const msgpack_object  *v;

    v = cef_w_field(rec, "cef");

    if (v == NULL || !cef_w_key_is(v, kind)) {
        return cef_w_bad(w, "expected a %s header {\"cef\":\"%s\", ...}", kind,
                         kind);
    }

    rc = cef_w_check_fields(w, rec, kind[0] == 's' ? snap : delta);
    if (rc != 0) {
        return rc;
    }

    rc = cef_w_int_field(w, rec, "version", &version);
    if (rc != 0) {
        return rc;
    }

    if (version != 1) {
        return cef_w_bad(w, "unsupported %s version %lld", kind,
                         (long long) version);
    }

    if (kind[0] != 's') {
        return CEF_WRITER_OK;
    }

    v = cef_w_field(rec, "id");
    if (v == NULL || v->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"id\" must be a string");
    }

    if (v->via.str.size >= sizeof(w->info.snapshot_id)) {
        return cef_w_bad(w, "snapshot id longer than %zu bytes",
                         sizeof(w->info.snapshot_id) - 1);
    }

    rc = cef_w_int_field(w, rec, "created_at", &created);
    if (rc != 0) {
        return rc;
    }

    memcpy(w->info.snapshot_id, v->via.str.ptr, v->via.str.size);
    w->info.snapshot_id[v->via.str.size] = '\0';
    w->info.created_at = created;

    v = cef_w_field(rec, "kafka");

    return v ? cef_w_check_kafka(w, v) : CEF_WRITER_OK;
}


static int
cef_w_hash(cef_writer_t *w, const char *type, size_t tlen, const char *value,
    size_t vlen, uint8_t *out)
{
    if (cef_identity_hash(w->conf->ident, type, tlen, value, vlen, out) != 0)
    {
        cef_w_err(w, "HMAC-SHA256 failed (OpenSSL)");
        return CEF_WRITER_ESTORE;
    }

    return CEF_WRITER_OK;
}


/* A profile's hint for a key: the first 16 bits of its hash. */

static uint16_t
cef_w_bucket(const uint8_t *h)
{
    return (uint16_t) ((h[0] << 8) | h[1]);
}


static void
cef_w_add_hint(uint16_t *hints, uint32_t *n, uint16_t b)
{
    uint32_t  i;

    for (i = 0; i < *n; i++) {
        if (hints[i] == b) {
            return;
        }
    }

    hints[(*n)++] = b;
}


/* The hash of a [TYPE, VALUE] key the record check has passed. */

static int
cef_w_hash_pair(cef_writer_t *w, const msgpack_object *pair, uint8_t *h)
{
    const msgpack_object  *t, *v;

    t = &pair->via.array.ptr[0];
    v = &pair->via.array.ptr[1];

    return cef_w_hash(w, t->via.str.ptr, t->via.str.size, v->via.str.ptr,
                      v->via.str.size, h);
}


/*
 * The profile just encoded (w->enc.blob, with nhints hints) must leave room
 * for CEF_PROFILE_HINTS_MAX hints, so that no later keys or merge op can
 * take it past CEF_STORE_GROUP_MAX.  Returns CEF_WRITER_EINPUT with the
 * message.
 */

static int
cef_w_check_room(cef_writer_t *w, uint32_t nhints)
{
    size_t  n;

    n = w->enc.blob.size - 2 * (size_t) nhints + 2 * CEF_PROFILE_HINTS_MAX;

    if (n > CEF_STORE_GROUP_MAX) {
        return cef_w_bad(w, "the profile would take %zu bytes encoded, "
                         "more than %d", w->enc.blob.size,
                         CEF_STORE_GROUP_MAX - 2 * CEF_PROFILE_HINTS_MAX);
    }

    return CEF_WRITER_OK;
}


static int
cef_w_encode_attrs(cef_writer_t *w, const msgpack_object *attrs)
{
    uint32_t               i;
    const msgpack_object  *k;

    if (attrs == NULL) {
        return CEF_WRITER_OK;
    }

    for (i = 0; i < attrs->via.map.size; i++) {
        k = &attrs->via.map.ptr[i].key;

        if (cef_encode_attr(&w->enc, k->via.str.ptr, k->via.str.size,
                            &attrs->via.map.ptr[i].val) != 0)
        {
            return cef_w_bad(w, "cannot encode attribute \"%.*s\" (out of "
                             "memory, or more than %d attribute names)",
                             (int) k->via.str.size, k->via.str.ptr,
                             CEF_ENCODE_NAMES_MAX);
        }
    }

    return CEF_WRITER_OK;
}


/* --- full load ----------------------------------------------------------- */


static int
cef_w_load_entry(cef_writer_t *w, const uint8_t *h, uint32_t number,
    int is_id)
{
    size_t          ncap, *n, *cap;
    cef_ientry_t  **a, *e;

    a = is_id ? &w->idents : &w->ents;
    n = is_id ? &w->nidents : &w->nents;
    cap = is_id ? &w->icap : &w->cap;

    if (*n == *cap) {
        ncap = *cap ? *cap * 2 : 65536;
        e = realloc(*a, ncap * sizeof(cef_ientry_t));
        if (e == NULL) {
            cef_w_err(w, "out of memory");
            return CEF_WRITER_ESTORE;
        }
        *a = e;
        *cap = ncap;
    }

    e = &(*a)[(*n)++];
    memcpy(e->h, h, CEF_HASH_LEN);
    e->number = number;

    return CEF_WRITER_OK;
}


static int
cef_w_grow(cef_writer_t *w, uint8_t **buf, size_t *cap, size_t need)
{
    uint8_t  *p;

    if (need <= *cap) {
        return 0;
    }

    p = realloc(*buf, need);
    if (p == NULL) {
        cef_w_err(w, "out of memory");
        return -1;
    }

    *buf = p;
    *cap = need;
    return 0;
}


/* Write the group being filled by a load (MDB_APPEND). */

static int
cef_w_load_group_flush(cef_writer_t *w, uint32_t group)
{
    int             rc;
    size_t          i, off;
    MDB_val         k, v;
    const uint8_t  *p[CEF_STORE_GROUP_SLOTS];

    for (i = 0, off = 0; i < CEF_STORE_GROUP_SLOTS; i++) {
        p[i] = w->lg + off;
        off += w->lg_lens[i];
    }

    if (cef_w_grow(w, &w->gbuf, &w->gbuf_cap, CEF_STORE_GROUP_HEAD + off)
        != 0)
    {
        return CEF_WRITER_ESTORE;
    }

    k.mv_data = &group;
    k.mv_size = sizeof(group);
    v.mv_data = w->gbuf;
    v.mv_size = cef_store_group_build(w->gbuf, p, w->lg_lens);

    rc = mdb_put(w->txn, w->prof, &k, &v, MDB_APPEND);
    if (rc != 0) {
        return cef_w_lmdb(w, "writing profiles", rc);
    }

    w->lg_len = 0;
    memset(w->lg_lens, 0, sizeof(w->lg_lens));

    return CEF_WRITER_OK;
}


static int
cef_w_load_group_add(cef_writer_t *w, uint32_t number, const uint8_t *blob,
    size_t len)
{
    if (len > CEF_STORE_GROUP_MAX) {
        return cef_w_bad(w, "the profile takes more than %d bytes encoded",
                         CEF_STORE_GROUP_MAX);
    }

    if (cef_w_grow(w, &w->lg, &w->lg_cap, w->lg_len + len) != 0) {
        return CEF_WRITER_ESTORE;
    }

    memcpy(w->lg + w->lg_len, blob, len);
    w->lg_len += len;
    w->lg_lens[number & (CEF_STORE_GROUP_SLOTS - 1)] = len;

    if ((number & (CEF_STORE_GROUP_SLOTS - 1)) == CEF_STORE_GROUP_SLOTS - 1) {
        return cef_w_load_group_flush(w, cef_store_group_of(number));
    }

    return CEF_WRITER_OK;
}


/* A stored profile: 0 found, 1 absent, -1 error. */

static int
cef_w_prof_get(cef_writer_t *w, uint32_t number, const uint8_t **p,
    size_t *len)
{
    int       rc;
    uint32_t  group;
    MDB_val   k, v;

    group = cef_store_group_of(number);
    k.mv_data = &group;
    k.mv_size = sizeof(group);

    rc = mdb_get(w->txn, w->prof, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return 1;
    }

    if (rc != 0) {
        cef_w_lmdb(w, "reading a profile", rc);
        return -1;
    }

    if (cef_store_group_slot(v.mv_data, v.mv_size, number, p, len) != 0) {
        cef_w_err(w, "stored profile group %u is malformed", group);
        return -1;
    }

    return *len ? 0 : 1;
}


/* Replace a profile (blob) or remove it (blob NULL). */

static int
cef_w_prof_put(cef_writer_t *w, uint32_t number, const uint8_t *blob,
    size_t blen)
{
    int             rc;
    size_t          i, total;
    uint32_t        group;
    MDB_val         k, v;
    const uint8_t  *p[CEF_STORE_GROUP_SLOTS];
    size_t          lens[CEF_STORE_GROUP_SLOTS];

    if (blen > CEF_STORE_GROUP_MAX) {
        cef_w_err(w, "the profile takes more than %d bytes encoded",
                  CEF_STORE_GROUP_MAX);
        return -1;
    }

    group = cef_store_group_of(number);
    k.mv_data = &group;
    k.mv_size = sizeof(group);

    rc = mdb_get(w->txn, w->prof, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        cef_w_lmdb(w, "reading a profile", rc);
        return -1;
    }

    total = 0;

    for (i = 0; i < CEF_STORE_GROUP_SLOTS; i++) {
        if ((number & (CEF_STORE_GROUP_SLOTS - 1)) == i) {
            p[i] = blob;
            lens[i] = blob ? blen : 0;

        } else if (rc == MDB_NOTFOUND) {
            p[i] = NULL;
            lens[i] = 0;

        } else if (cef_store_group_slot(v.mv_data, v.mv_size,
                                  (group << CEF_STORE_GROUP_SHIFT) + i, &p[i],
                                  &lens[i]) != 0)
        {
            cef_w_err(w, "stored profile group %u is malformed", group);
            return -1;
        }

        total += lens[i];
    }

    if (total == 0) {
        if (rc == MDB_NOTFOUND) {
            return 0;
        }

        rc = mdb_del(w->txn, w->prof, &k, NULL);
        if (rc != 0) {
            cef_w_lmdb(w, "deleting a profile", rc);
            return -1;
        }

        return 0;
    }

    /* the slots point into the map: build a copy before writing */
    if (cef_w_grow(w, &w->gbuf, &w->gbuf_cap, CEF_STORE_GROUP_HEAD + total)
        != 0)
    {
        return -1;
    }

    v.mv_data = w->gbuf;
    v.mv_size = cef_store_group_build(w->gbuf, p, lens);

    rc = mdb_put(w->txn, w->prof, &k, &v, 0);
    if (rc != 0) {
        cef_w_lmdb(w, "writing a profile", rc);
        return -1;
    }

    return 0;
}


/*
 * In the reading thread: validate a profile record and hash its id and keys
 * into scratch, so that the writing thread only encodes and writes.
 */

typedef struct {
    int                    profile;   /* 1: a validated profile record */
    const msgpack_object  *id, *keys, *attrs;
    uint8_t                idh[CEF_HASH_LEN];
    uint8_t                keyh[CEF_WRITER_KEYS_MAX][CEF_HASH_LEN];
} cef_w_pre_t;

typedef struct {
    cef_writer_t       w;
    cef_writer_conf_t  conf;
} cef_w_hook_t;


static int
cef_w_load_hook(void *data, const msgpack_object *rec, uint64_t record,
    uint64_t offset, void *scratch, char *err, size_t errlen)
{
    static const char *const  fields[] = { "id", "keys", "attrs", NULL };

    uint32_t               i;
    cef_w_pre_t           *pre = scratch;
    cef_w_hook_t          *hk = data;
    cef_writer_t          *w = &hk->w;
    const msgpack_object  *id, *keys, *attrs, *t, *v;

    pre->profile = 0;

    if (record == 1 || cef_w_field(rec, "end") != NULL) {
        return 0;       /* the header and the trailer: the writer's job */
    }

    w->err = err;
    w->errlen = errlen;
    w->rec_no = record;
    w->rec_off = offset;

    if (cef_w_check_fields(w, rec, fields) != 0
        || cef_w_check_id(w, rec, "id", &id) != 0
        || cef_w_check_keys(w, rec, "keys", 1, &keys) != 0
        || cef_w_check_attrs(w, rec, "attrs", 1, &attrs) != 0
        || cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size,
                      pre->idh) != 0)
    {
        return -1;
    }

    for (i = 0; i < keys->via.array.size; i++) {
        t = &keys->via.array.ptr[i].via.array.ptr[0];
        v = &keys->via.array.ptr[i].via.array.ptr[1];

        if (cef_w_hash(w, t->via.str.ptr, t->via.str.size, v->via.str.ptr,
                       v->via.str.size, pre->keyh[i]) != 0)
        {
            return -1;
        }
    }

    pre->id = id;
    pre->keys = keys;
    pre->attrs = attrs;
    pre->profile = 1;

    return 0;
}


static int
cef_w_load_profile(cef_writer_t *w, const msgpack_object *rec,
    const cef_w_pre_t *pre)
{
    static const char *const  fields[] = { "id", "keys", "attrs", NULL };

    int                    rc;
    uint8_t                h[CEF_HASH_LEN];
    uint16_t               hints[CEF_WRITER_KEYS_MAX];
    uint32_t               i, nhints, number;
    uint64_t              *o;
    const msgpack_object  *id, *keys, *attrs, *t, *val;

    /* the reading thread may have validated and hashed it already */

    if (pre) {
        id = pre->id;
        keys = pre->keys;
        attrs = pre->attrs;

    } else if ((rc = cef_w_check_fields(w, rec, fields)) != 0
               || (rc = cef_w_check_id(w, rec, "id", &id)) != 0
               || (rc = cef_w_check_keys(w, rec, "keys", 1, &keys)) != 0
               || (rc = cef_w_check_attrs(w, rec, "attrs", 1, &attrs)) != 0)
    {
        return rc;
    }

    if (w->info.next_number == UINT32_MAX) {
        return cef_w_bad(w, "too many profiles");
    }

    number = w->info.next_number++;

    if (number >= w->noffsets) {
        w->noffsets = w->noffsets ? w->noffsets * 2 : 65536;
        o = realloc(w->offsets, w->noffsets * sizeof(uint64_t));
        if (o == NULL) {
            cef_w_err(w, "out of memory");
            return CEF_WRITER_ESTORE;
        }
        w->offsets = o;
    }

    w->offsets[number] = w->rec_off;

    if (pre) {
        memcpy(h, pre->idh, CEF_HASH_LEN);
    } else if ((rc = cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size,
                                h)) != 0)
    {
        return rc;
    }

    if ((rc = cef_w_load_entry(w, h, number, 1)) != 0) {
        return rc;
    }

    nhints = 0;

    for (i = 0; i < keys->via.array.size; i++) {
        t = &keys->via.array.ptr[i].via.array.ptr[0];
        val = &keys->via.array.ptr[i].via.array.ptr[1];

        if (pre) {
            memcpy(h, pre->keyh[i], CEF_HASH_LEN);
        } else if ((rc = cef_w_hash(w, t->via.str.ptr, t->via.str.size,
                                    val->via.str.ptr, val->via.str.size, h))
                   != 0)
        {
            return rc;
        }

        if ((rc = cef_w_load_entry(w, h, number, 0)) != 0) {
            return rc;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    cef_encode_begin(&w->enc);

    rc = cef_w_encode_attrs(w, attrs);
    if (rc != 0) {
        return rc;
    }

    if (cef_encode_profile(&w->enc, hints, nhints, id->via.str.ptr,
                           id->via.str.size) != 0)
    {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    if ((rc = cef_w_check_room(w, nhints)) != 0) {
        return rc;
    }

    rc = cef_w_load_group_add(w, number, (uint8_t *) w->enc.blob.data,
                              w->enc.blob.size);
    if (rc != 0) {
        return rc;
    }

    w->info.profiles++;

    if (w->info.profiles % CEF_LOAD_TXN_PROFILES == 0) {
        if ((rc = cef_w_txn_commit(w)) != 0
            || (rc = cef_w_txn_begin(w, 0)) != 0)
        {
            return rc;
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_ientry_cmp(const void *a, const void *b)
{
    int                  c;
    const cef_ientry_t  *x = a, *y = b;

    c = memcmp(x->h, y->h, CEF_HASH_LEN);
    if (c) {
        return c;
    }

    return x->number < y->number ? -1 : x->number > y->number;
}


static uint32_t
cef_w_prefix(const uint8_t *h, unsigned bits)
{
    uint32_t  v;

    v = ((uint32_t) h[0] << 24) | ((uint32_t) h[1] << 16)
        | ((uint32_t) h[2] << 8) | h[3];

    return v >> (32 - bits);
}


/*
 * Counting sort on the first bits of the hash (about one entry per group
 * for uniformly random hashes), then an insertion sort inside each group.
 */

static int
cef_w_sort_entries(cef_writer_t *w, cef_ientry_t **ents, size_t nents)
{
    size_t         i, j, b, nb, *start;
    unsigned       bits;
    cef_ientry_t  *out, *in = *ents, t;

    for (bits = 8; bits < 22 && ((size_t) 1 << bits) < nents; bits++) {
        /* void */
    }

    nb = (size_t) 1 << bits;
    start = calloc(nb + 1, sizeof(size_t));
    out = malloc((nents ? nents : 1) * sizeof(cef_ientry_t));

    if (start == NULL || out == NULL) {
        free(start);
        free(out);
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    for (i = 0; i < nents; i++) {
        start[cef_w_prefix(in[i].h, bits) + 1]++;
    }

    for (b = 1; b <= nb; b++) {
        start[b] += start[b - 1];
    }

    for (i = 0; i < nents; i++) {
        out[start[cef_w_prefix(in[i].h, bits)]++] = in[i];
    }

    /* start[b] is now the end of group b */

    for (b = 0; b < nb; b++) {
        for (i = (b ? start[b - 1] : 0) + 1; i < start[b]; i++) {
            t = out[i];
            for (j = i; j > (b ? start[b - 1] : 0)
                        && cef_w_ientry_cmp(&out[j - 1], &t) > 0; j--)
            {
                out[j] = out[j - 1];
            }
            out[j] = t;
        }
    }

    free(start);
    free(in);
    *ents = out;

    return CEF_WRITER_OK;
}


/* Sorted entries in, one LMDB record per bucket out (MDB_APPEND). */

static int
cef_w_write_buckets(cef_writer_t *w, MDB_dbi dbi,
    const cef_store_bucket_cfg_t *c, const cef_ientry_t *ents, size_t nents)
{
    int        rc;
    size_t     i, j, il, len, written = 0;
    uint8_t    key[CEF_STORE_BUCKET_KEY_LEN], *p;
    uint32_t   b;
    MDB_val    k, v;

    il = cef_store_bucket_item_len(c);

    for (i = 0; i < nents; i = j) {
        b = cef_store_bucket_of(c, ents[i].h);

        for (j = i; j < nents && cef_store_bucket_of(c, ents[j].h) == b; j++) {
            /* void */
        }

        len = (j - i) * il;

        if (len > w->bval_cap) {
            p = realloc(w->bval, len);
            if (p == NULL) {
                cef_w_err(w, "out of memory");
                return CEF_WRITER_ESTORE;
            }
            w->bval = p;
            w->bval_cap = len;
        }

        for (p = w->bval; i < j; i++, p += il) {
            memcpy(p, ents[i].h + 2, c->rest);
            memcpy(p + c->rest, &ents[i].number, sizeof(uint32_t));
        }

        cef_store_bucket_key(b, key);
        k.mv_data = key;
        k.mv_size = CEF_STORE_BUCKET_KEY_LEN;
        v.mv_data = w->bval;
        v.mv_size = len;

        rc = mdb_put(w->txn, dbi, &k, &v, MDB_APPEND);
        if (rc != 0) {
            return cef_w_lmdb(w, "writing an index", rc);
        }

        written += j - i;
        if (written >= CEF_LOAD_TXN_ENTRIES) {
            written = 0;
            if ((rc = cef_w_txn_commit(w)) != 0
                || (rc = cef_w_txn_begin(w, 0)) != 0)
            {
                return rc;
            }
        }
    }

    return CEF_WRITER_OK;
}


/* Remove duplicates inside one profile; report them across profiles. */

static int
cef_w_dedupe(cef_writer_t *w, cef_ientry_t *ents, size_t *nents,
    const char *what)
{
    size_t         i, m;
    cef_ientry_t  *first;

    for (i = 0, m = 0; i < *nents; i++) {
        if (m > 0 && memcmp(ents[i].h, ents[m - 1].h, CEF_HASH_LEN) == 0) {
            if (ents[i].number == ents[m - 1].number) {
                continue;
            }

            first = &ents[m - 1];
            while (first > ents
                   && memcmp(first[-1].h, ents[i].h, CEF_HASH_LEN) == 0)
            {
                first--;
            }

            cef_w_err(w, "record %llu (byte %llu): %s also belongs to the "
                      "profile of record %llu (byte %llu)",
                      (unsigned long long) ents[i].number + 2,
                      (unsigned long long) w->offsets[ents[i].number], what,
                      (unsigned long long) first->number + 2,
                      (unsigned long long) w->offsets[first->number]);
            return CEF_WRITER_EINPUT;
        }

        ents[m++] = ents[i];
    }

    *nents = m;
    return CEF_WRITER_OK;
}


static int
cef_w_load_index(cef_writer_t *w)
{
    int  rc;

    if ((rc = cef_w_sort_entries(w, &w->ents, w->nents)) != 0
        || (rc = cef_w_sort_entries(w, &w->idents, w->nidents)) != 0
        || (rc = cef_w_dedupe(w, w->ents, &w->nents, "a key")) != 0
        || (rc = cef_w_dedupe(w, w->idents, &w->nidents, "the profile id"))
           != 0)
    {
        return rc;
    }

    w->info.keys = w->nents;
    w->info.key_bits = cef_store_bucket_bits_for(w->nents, 32);
    w->info.id_bits = cef_store_bucket_bits_for(w->nidents, 48);
    w->kcfg.bits = w->info.key_bits;
    w->kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    w->icfg.bits = w->info.id_bits;
    w->icfg.rest = CEF_STORE_BUCKET_REST_IDS;

    if ((rc = cef_w_write_buckets(w, w->index, &w->kcfg, w->ents, w->nents))
        != 0
        || (rc = cef_w_write_buckets(w, w->ids, &w->icfg, w->idents,
                                     w->nidents)) != 0)
    {
        return rc;
    }

    return CEF_WRITER_OK;
}


/* CEF_STORE_TIMING=1 in the environment: phase times on stderr. */

static void
cef_w_phase(const char *what)
{
    static struct timespec  t0;
    struct timespec         now;

    if (getenv("CEF_STORE_TIMING") == NULL) {
        return;
    }

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (what) {
        fprintf(stderr, "cef-store: %-8s %.3fs\n", what,
                (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9);
    }

    t0 = now;
}


static void
cef_w_progress(cef_writer_t *w, uint64_t records, int done)
{
    if (w->conf->progress && (done || records % 4096 == 0)) {
        w->conf->progress(w->conf->data, w->in, records, done);
    }
}


static int
cef_w_load_stream(cef_writer_t *w, cef_writer_result_t *res)
{
    int                    rc, trailer = 0;
    int64_t                count;
    uint64_t               records = 0;
    const msgpack_object  *rec, *end;
    const cef_w_pre_t     *pre;
    static const char *const  tfields[] = { "end", "count", NULL };

    for ( ;; ) {
        rc = cef_input_next(w->in, &rec, w->err, w->errlen);

        if (rc < 0) {
            return CEF_WRITER_EINPUT;
        }

        if (rc == 0) {
            break;
        }

        records++;
        w->rec_no = cef_input_record(w->in);
        w->rec_off = cef_input_offset(w->in);
        cef_w_progress(w, records, 0);

        if (records == 1) {
            rc = cef_w_check_header(w, rec, "snapshot");
            if (rc != 0) {
                return rc;
            }
            continue;
        }

        if (trailer) {
            return cef_w_bad(w, "data after the trailer");
        }

        pre = cef_input_scratch(w->in);

        if (pre && pre->profile) {
            rc = cef_w_load_profile(w, rec, pre);
            if (rc != 0) {
                return rc;
            }
            continue;
        }

        end = cef_w_field(rec, "end");

        if (end != NULL) {
            if ((rc = cef_w_check_fields(w, rec, tfields)) != 0) {
                return rc;
            }

            if (end->type != MSGPACK_OBJECT_BOOLEAN || !end->via.boolean) {
                return cef_w_bad(w, "field \"end\" must be true");
            }

            if ((rc = cef_w_int_field(w, rec, "count", &count)) != 0) {
                return rc;
            }

            if (count < 0 || (uint64_t) count != w->info.profiles) {
                return cef_w_bad(w, "count mismatch: the trailer says %lld "
                                 "profiles, the stream has %llu",
                                 (long long) count,
                                 (unsigned long long) w->info.profiles);
            }

            trailer = 1;
            continue;
        }

        rc = cef_w_load_profile(w, rec, NULL);
        if (rc != 0) {
            return rc;
        }
    }

    res->records = records;
    cef_w_progress(w, records, 1);

    if (records == 0) {
        cef_w_err(w, "empty input: expected a snapshot header");
        return CEF_WRITER_EINPUT;
    }

    if (w->lg_len > 0) {
        rc = cef_w_load_group_flush(w,
                 cef_store_group_of(w->info.next_number - 1));
        if (rc != 0) {
            return rc;
        }
    }

    if (!trailer) {
        cef_w_err(w, "truncated snapshot: no trailer {\"end\":true,...} after "
                  "record %llu (byte %llu)",
                  (unsigned long long) records,
                  (unsigned long long) w->rec_off);
        return CEF_WRITER_EINPUT;
    }

    return CEF_WRITER_OK;
}


static int
cef_w_switch(cef_writer_t *w, uint64_t gen, const char *oldpath)
{
    int   e;
    char  name[64], path[PATH_MAX], link[PATH_MAX], tmplink[PATH_MAX];

    snprintf(name, sizeof(name), "gen-%llu", (unsigned long long) gen);

    if (cef_w_path(w, path, name) != 0
        || cef_w_path(w, link, CEF_STORE_CURRENT) != 0
        || cef_w_path(w, tmplink, CEF_STORE_CURRENT ".tmp") != 0)
    {
        return CEF_WRITER_ESTORE;
    }

    if (cef_w_fsync_dir(w->tmp) != 0 || rename(w->tmp, path) != 0) {
        e = errno;
        cef_w_err(w, "cannot move \"%s\" to \"%s\": %s%s", w->tmp, path,
                  strerror(e), cef_w_write_hint(e));
        return CEF_WRITER_ESTORE;
    }

    w->tmp[0] = '\0';
    unlink(tmplink);

    if (symlink(name, tmplink) != 0
        || cef_w_fsync_dir(w->conf->dir) != 0
        || rename(tmplink, link) != 0)
    {
        e = errno;
        cef_w_err(w, "cannot switch \"%s\" to \"%s\": %s%s", link, name,
                  strerror(e), cef_w_write_hint(e));
        unlink(tmplink);
        cef_w_rmtree(path);
        return CEF_WRITER_ESTORE;
    }

    /*
     * Switched: readers may be on the new generation already, so it
     * stays; so does the old one, which a crash could bring back.
     */

    if (cef_w_fsync_dir(w->conf->dir) != 0) {
        cef_w_err(w, "switched \"%s\" to \"%s\", but cannot sync \"%s\": "
                  "%s", link, name, w->conf->dir, strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    /* readers still using the old generation keep their open files */

    if (oldpath[0]) {
        cef_w_rmtree(oldpath);
    }

    return CEF_WRITER_OK;
}


int
cef_writer_load(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int           rc;
    char          old[PATH_MAX], name[64];
    uint64_t      gen;
    struct stat   st;
    cef_w_hook_t  hook;
    cef_writer_t  w;

    memset(&w, 0, sizeof(w));
    memset(res, 0, sizeof(cef_writer_result_t));
    hook.conf.ident = NULL;
    w.conf = conf;
    w.in = in;
    w.err = err;
    w.errlen = errlen;
    w.lockfd = -1;
    err[0] = '\0';

    rc = cef_w_lock(&w, 1);
    if (rc != 0) {
        goto failed;
    }

    cef_w_cleanup(&w);

    old[0] = '\0';
    gen = 0;
    if (cef_store_current(conf->dir, old, sizeof(old), &gen) != 0) {
        old[0] = '\0';
        gen = 0;
    }

    gen++;
    snprintf(name, sizeof(name), "tmp-%llu-%ld", (unsigned long long) gen,
             (long) getpid());

    if (cef_w_path(&w, w.tmp, name) != 0) {
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    if (mkdir(w.tmp, 0755) != 0) {
        cef_w_err(&w, "cannot create \"%s\": %s%s", w.tmp, strerror(errno),
                  cef_w_write_hint(errno));
        w.tmp[0] = '\0';
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    if (cef_encode_init(&w.enc) != 0) {
        cef_w_err(&w, "out of memory");
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    w.enc_init = 1;

    /*
     * The lock file, created here, fixes the reader table's size for the
     * generation's life: room for many nginx workers and tools.
     */

    rc = cef_w_reserve_lock(&w, w.tmp, CEF_W_LOCK_SIZE, 0664);
    if (rc != 0) {
        goto failed;
    }

    if ((rc = mdb_env_create(&w.env)) != 0
        || (rc = mdb_env_set_maxdbs(w.env, 8)) != 0
        || (rc = mdb_env_set_maxreaders(w.env, CEF_WRITER_MAX_READERS)) != 0
        || (rc = mdb_env_set_mapsize(w.env, conf->map_size
                                     ? conf->map_size
                                     : CEF_WRITER_MAP_SIZE_DEFAULT)) != 0
        || (rc = mdb_env_open(w.env, w.tmp, MDB_NOSYNC, 0664)) != 0)
    {
        rc = cef_w_lmdb(&w, rc == ENOMEM ? "creating the new generation "
                        "(a --map-size larger than the address space?)"
                        : "creating the new generation", rc);
        goto failed;
    }

    /* in case this LMDB's reader table is larger than CEF_W_LOCK_SIZE */

    rc = cef_w_reserve_lock(&w, w.tmp, 0, 0664);
    if (rc != 0) {
        goto failed;
    }

    rc = cef_w_share(&w, w.tmp);
    if (rc != CEF_WRITER_OK) {
        goto failed;
    }

    rc = cef_w_txn_begin(&w, MDB_CREATE);
    if (rc != 0) {
        goto failed;
    }

    w.info.format = CEF_STORE_FORMAT;
    w.info.next_number = 0;

    /*
     * Parse, validate and hash ahead in a second thread (with its own
     * keyed context); unthreaded if that cannot be set up.
     */

    hook.conf = *conf;
    hook.conf.ident = cef_identity_dup(conf->ident);
    memset(&hook.w, 0, sizeof(hook.w));
    hook.w.conf = &hook.conf;
    hook.w.lockfd = -1;

    if (hook.conf.ident == NULL
        || cef_input_start_thread(in, cef_w_load_hook, &hook,
                                  sizeof(cef_w_pre_t))
           != 0)
    {
        (void) cef_input_start_thread(in, NULL, NULL, 0);
    }

    if (cef_identity_fingerprint(conf->ident, w.info.secret_check) != 0) {
        cef_w_err(&w, "HMAC-SHA256 failed (OpenSSL)");
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    cef_w_phase(NULL);

    rc = cef_w_load_stream(&w, res);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("stream");

    rc = cef_w_load_index(&w);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("index");

    w.info.loaded_at = time(NULL);
    w.info.updated_at = w.info.loaded_at;

    if (w.koffs && (rc = cef_w_put_offsets(&w, w.koffs)) != 0) {
        goto failed;
    }

    if ((rc = cef_w_put_meta(&w)) != 0 || (rc = cef_w_txn_commit(&w)) != 0) {
        goto failed;
    }

    cef_w_phase("commit");

    rc = mdb_env_sync(w.env, 1);
    if (rc != 0) {
        rc = cef_w_lmdb(&w, "syncing the new generation", rc);
        goto failed;
    }

    cef_w_phase("sync");

    mdb_env_close(w.env);
    w.env = NULL;

    rc = cef_w_switch(&w, gen, old);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("switch");

    res->profiles = w.info.profiles;
    res->keys = w.info.keys;
    res->generation = gen;

    snprintf(name, sizeof(name), "gen-%llu/data.mdb",
             (unsigned long long) gen);
    if (cef_w_path(&w, old, name) == 0 && stat(old, &st) == 0) {
        res->data_bytes = (uint64_t) st.st_size;
    }

    cef_input_stop_thread(in);
    cef_identity_free(hook.conf.ident);
    cef_w_close(&w);
    return CEF_WRITER_OK;

failed:

    /* the reading thread uses hook: stop it before leaving */
    cef_input_stop_thread(in);
    cef_identity_free(hook.conf.ident);

    if (w.txn) {
        mdb_txn_abort(w.txn);
        w.txn = NULL;
    }

    if (w.env) {
        mdb_env_close(w.env);
        w.env = NULL;
    }

    if (w.tmp[0]) {
        cef_w_rmtree(w.tmp);
    }

    cef_w_close(&w);
    return rc;
}


/* --- deltas ------------------------------------------------------------ */


/* Copy a bucket's value into w->bval; *len = 0 if the bucket is absent. */

static int
cef_w_bucket_get(cef_writer_t *w, MDB_dbi dbi, uint32_t b, size_t extra,
    size_t *len)
{
    int       rc;
    uint8_t   key[CEF_STORE_BUCKET_KEY_LEN], *p;
    MDB_val   k, v;

    cef_store_bucket_key(b, key);
    k.mv_data = key;
    k.mv_size = CEF_STORE_BUCKET_KEY_LEN;

    rc = mdb_get(w->txn, dbi, &k, &v);

    if (rc == MDB_NOTFOUND) {
        v.mv_size = 0;

    } else if (rc != 0) {
        cef_w_lmdb(w, "reading an index", rc);
        return -1;
    }

    if (v.mv_size + extra > w->bval_cap) {
        p = realloc(w->bval, v.mv_size + extra);
        if (p == NULL) {
            cef_w_err(w, "out of memory");
            return -1;
        }
        w->bval = p;
        w->bval_cap = v.mv_size + extra;
    }

    if (v.mv_size) {
        memcpy(w->bval, v.mv_data, v.mv_size);
    }

    *len = v.mv_size;
    return 0;
}


static int
cef_w_bucket_put(cef_writer_t *w, MDB_dbi dbi, uint32_t b, size_t len)
{
    int      rc;
    uint8_t  key[CEF_STORE_BUCKET_KEY_LEN];
    MDB_val  k, v;

    cef_store_bucket_key(b, key);
    k.mv_data = key;
    k.mv_size = CEF_STORE_BUCKET_KEY_LEN;
    v.mv_data = w->bval;
    v.mv_size = len;

    rc = len ? mdb_put(w->txn, dbi, &k, &v, 0) : mdb_del(w->txn, dbi, &k, NULL);

    if (rc != 0) {
        cef_w_lmdb(w, "writing an index", rc);
        return -1;
    }

    return 0;
}


/* Remove a key if it points at number: 0 removed, 1 not there, -1 error. */

static int
cef_w_index_del(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos, il;
    uint32_t  b;

    b = cef_store_bucket_of(&w->kcfg, h);
    il = cef_store_bucket_item_len(&w->kcfg);

    if (cef_w_bucket_get(w, w->index, b, 0, &len) != 0) {
        return -1;
    }

    if (!cef_store_bucket_search(&w->kcfg, w->bval, len, h, &pos)
        || cef_store_bucket_number(&w->kcfg, w->bval, pos) != number)
    {
        return 1;
    }

    memmove(w->bval + pos * il, w->bval + (pos + 1) * il,
            len - (pos + 1) * il);

    return cef_w_bucket_put(w, w->index, b, len - il) == 0 ? 0 : -1;
}


/*
 * Point a key at a profile.  Returns 0 if the key is new, 1 if it already
 * pointed at this profile, 2 if it was moved from another one, -1 on error.
 */

static int
cef_w_index_put(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    int       moved = 0;
    size_t    len, pos, il;
    uint8_t  *item;
    uint32_t  b;

    b = cef_store_bucket_of(&w->kcfg, h);
    il = cef_store_bucket_item_len(&w->kcfg);

    if (cef_w_bucket_get(w, w->index, b, il, &len) != 0) {
        return -1;
    }

    if (cef_store_bucket_search(&w->kcfg, w->bval, len, h, &pos)) {
        if (cef_store_bucket_number(&w->kcfg, w->bval, pos) == number) {
            return 1;
        }
        moved = 1;

    } else {
        memmove(w->bval + (pos + 1) * il, w->bval + pos * il,
                len - pos * il);
        len += il;
    }

    item = w->bval + pos * il;
    memcpy(item, h + 2, w->kcfg.rest);
    memcpy(item + w->kcfg.rest, &number, sizeof(uint32_t));

    if (cef_w_bucket_put(w, w->index, b, len) != 0) {
        return -1;
    }

    return moved ? 2 : 0;
}


static int
cef_w_ids_put(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos, il;
    uint8_t  *item;
    uint32_t  b;

    b = cef_store_bucket_of(&w->icfg, h);
    il = cef_store_bucket_item_len(&w->icfg);

    if (cef_w_bucket_get(w, w->ids, b, il, &len) != 0) {
        return -1;
    }

    cef_store_bucket_search(&w->icfg, w->bval, len, h, &pos);

    memmove(w->bval + (pos + 1) * il, w->bval + pos * il, len - pos * il);
    item = w->bval + pos * il;
    memcpy(item, h + 2, w->icfg.rest);
    memcpy(item + w->icfg.rest, &number, sizeof(uint32_t));

    return cef_w_bucket_put(w, w->ids, b, len + il);
}


static int
cef_w_ids_del(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos, il;
    uint32_t  b;

    b = cef_store_bucket_of(&w->icfg, h);
    il = cef_store_bucket_item_len(&w->icfg);

    if (cef_w_bucket_get(w, w->ids, b, 0, &len) != 0) {
        return -1;
    }

    cef_store_bucket_search(&w->icfg, w->bval, len, h, &pos);

    for ( ; pos < len / il && cef_store_bucket_match(&w->icfg, w->bval, pos, h);
         pos++)
    {
        if (cef_store_bucket_number(&w->icfg, w->bval, pos) == number) {
            memmove(w->bval + pos * il, w->bval + (pos + 1) * il,
                    len - (pos + 1) * il);
            return cef_w_bucket_put(w, w->ids, b, len - il);
        }
    }

    return 0;
}


typedef struct {
    uint8_t   *h;          /* n hashes of CEF_HASH_LEN */
    uint32_t   n;
    uint32_t   cap;
} cef_hashes_t;


static int
cef_w_hashes_add(cef_hashes_t *hs, const uint8_t *h)
{
    uint32_t   ncap;
    uint8_t   *p;

    if (hs->n == hs->cap) {
        ncap = hs->cap ? hs->cap * 2 : 16;
        p = realloc(hs->h, (size_t) ncap * CEF_HASH_LEN);
        if (p == NULL) {
            return -1;
        }
        hs->h = p;
        hs->cap = ncap;
    }

    memcpy(hs->h + (size_t) hs->n * CEF_HASH_LEN, h, CEF_HASH_LEN);
    hs->n++;

    return 0;
}


/* Append to hs the keys under a hint (16 bits) that point at number. */

static int
cef_w_index_collect(cef_writer_t *w, uint16_t hint, uint32_t number,
    cef_hashes_t *hs)
{
    size_t    len, i, il;
    uint8_t   h[CEF_HASH_LEN];
    uint32_t  b, first, last;

    il = cef_store_bucket_item_len(&w->kcfg);
    first = (uint32_t) hint << (w->kcfg.bits - 16);
    last = first + ((uint32_t) 1 << (w->kcfg.bits - 16));

    for (b = first; b < last; b++) {
        if (cef_w_bucket_get(w, w->index, b, 0, &len) != 0) {
            return -1;
        }

        for (i = 0; i < len / il; i++) {
            if (cef_store_bucket_number(&w->kcfg, w->bval, i) != number) {
                continue;
            }

            h[0] = (uint8_t) (hint >> 8);
            h[1] = (uint8_t) hint;
            memcpy(h + 2, w->bval + i * il, w->kcfg.rest);

            if (cef_w_hashes_add(hs, h) != 0) {
                cef_w_err(w, "out of memory");
                return -1;
            }
        }
    }

    return 0;
}


/* All the keys of a profile, found through its hints. */

static int
cef_w_profile_keys(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    cef_hashes_t *hs)
{
    uint32_t  i;

    hs->n = 0;

    for (i = 0; i < st->nhints; i++) {
        if (cef_w_index_collect(w, st->hints[i], number, hs) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
cef_w_load_stored(cef_writer_t *w, uint32_t number, cef_stored_t *st)
{
    int             rc;
    size_t          len;
    uint32_t        i;
    const uint8_t  *blob;
    cef_dict_t      dict;
    cef_profile_t   prof;

    rc = cef_w_prof_get(w, number, &blob, &len);
    if (rc != 0) {
        if (rc > 0) {
            cef_w_err(w, "profile %u is missing", number);
        }
        return -1;
    }

    if (cef_w_grow(w, &w->scratch, &w->scratch_cap, len) != 0) {
        return -1;
    }

    memcpy(w->scratch, blob, len);

    memset(&dict, 0, sizeof(dict));
    dict.names = w->enc.names.tab;
    dict.strs = w->enc.strs.tab;

    if (cef_profile_parse(w->scratch, len, &dict, &prof) != 0) {
        cef_w_err(w, "stored profile %u is malformed", number);
        return -1;
    }

    st->nhints = prof.nhints;
    for (i = 0; i < prof.nhints; i++) {
        st->hints[i] = (uint16_t) ((prof.hints[2 * i] << 8)
                                   | prof.hints[2 * i + 1]);
    }

    memcpy(st->id, prof.id.data, prof.id.len);
    st->idlen = prof.id.len;
    st->attrs = (uint8_t *) prof.attrs;
    st->attrs_len = prof.attrs_len;

    return 0;
}


/* Start encoding a profile from its stored attributes. */

static int
cef_w_begin_stored(cef_writer_t *w, const cef_stored_t *st, uint32_t number)
{
    size_t       pos = 0, start;
    uint64_t     attr;
    cef_value_t  v;

    cef_encode_begin(&w->enc);

    while (pos < st->attrs_len) {
        if (cef_value_decode_uint(st->attrs, st->attrs_len, &pos, &attr) != 0)
        {
            goto malformed;
        }

        start = pos;

        if (cef_value_decode(st->attrs, st->attrs_len, &pos,
                             &w->enc.strs.tab, &v) != 0)
        {
            goto malformed;
        }

        if (cef_encode_attr_raw(&w->enc, (uint32_t) attr, st->attrs + start,
                                pos - start) != 0)
        {
            cef_w_err(w, "out of memory");
            return -1;
        }
    }

    return 0;

malformed:

    cef_w_err(w, "stored profile %u is malformed", number);
    return -1;
}


static int
cef_w_encode(cef_writer_t *w, const uint16_t *hints, uint32_t nhints,
    const char *id, size_t idlen)
{
    if (cef_encode_profile(&w->enc, hints, nhints, id, idlen) != 0) {
        cef_w_err(w, "out of memory");
        return -1;
    }

    return 0;
}


static int
cef_w_put_profile(cef_writer_t *w, uint32_t number, const uint16_t *hints,
    uint32_t nhints, const char *id, size_t idlen)
{
    if (cef_w_encode(w, hints, nhints, id, idlen) != 0) {
        return -1;
    }

    return cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                          w->enc.blob.size);
}


/* Find a profile by id: 0 found, 1 not found, -1 error. */

static int
cef_w_find(cef_writer_t *w, const msgpack_object *id, uint8_t *idh,
    uint32_t *number, cef_stored_t *st)
{
    size_t    len, pos, il, n, i;
    uint32_t  cand[16];

    if (cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size, idh) != 0) {
        return -1;
    }

    if (cef_w_bucket_get(w, w->ids, cef_store_bucket_of(&w->icfg, idh), 0, &len)
        != 0)
    {
        return -1;
    }

    il = cef_store_bucket_item_len(&w->icfg);
    cef_store_bucket_search(&w->icfg, w->bval, len, idh, &pos);

    /* candidates first: loading a profile does not touch w->bval, but be
       independent of that */

    for (n = 0; pos < len / il && n < 16
                && cef_store_bucket_match(&w->icfg, w->bval, pos, idh); pos++)
    {
        cand[n++] = cef_store_bucket_number(&w->icfg, w->bval, pos);
    }

    for (i = 0; i < n; i++) {
        if (cef_w_load_stored(w, cand[i], st) != 0) {
            return -1;
        }

        if (st->idlen == id->via.str.size
            && memcmp(st->id, id->via.str.ptr, st->idlen) == 0)
        {
            *number = cand[i];
            return 0;
        }
    }

    return 1;
}


/* Keep at most CEF_PROFILE_HINTS_MAX hints: drop the stale ones. */

static int
cef_w_prune_hints(cef_writer_t *w, uint16_t *hints, uint32_t *n,
    uint32_t number)
{
    uint32_t      i, m = 0;
    cef_hashes_t  hs = { NULL, 0, 0 };

    for (i = 0; i < *n; i++) {
        hs.n = 0;
        if (cef_w_index_collect(w, hints[i], number, &hs) != 0) {
            free(hs.h);
            return -1;
        }
        if (hs.n) {
            hints[m++] = hints[i];
        }
    }

    free(hs.h);
    *n = m;

    if (m > CEF_PROFILE_HINTS_MAX) {
        cef_w_err(w, "a profile has keys in more than %d index buckets",
                  CEF_PROFILE_HINTS_MAX);
        return -1;
    }

    return 0;
}


/*
 * Limits a delta record can reach only against the stored state, checked
 * before the record writes anything so that a stream can refuse it alone
 * (cef_writer_stream_record()): a profile's room (cef_w_check_room()) and
 * the hint buckets its keys fill, at most CEF_PROFILE_HINTS_MAX.  They
 * return CEF_WRITER_EINPUT with the message set.
 */

/* The hint buckets the keys in hs fill, at most limit + 1. */

static uint32_t
cef_w_count_buckets(const cef_hashes_t *hs, uint32_t limit)
{
    uint16_t  seen[CEF_PROFILE_HINTS_MAX + 1];
    uint32_t  i, n = 0;

    for (i = 0; i < hs->n && n <= limit; i++) {
        cef_w_add_hint(seen, &n, cef_w_bucket(hs->h + (size_t) i
                                                      * CEF_HASH_LEN));
    }

    return n;
}


/* Remove from hs the keys equal to h (as the index stores them). */

static void
cef_w_hashes_remove(cef_writer_t *w, cef_hashes_t *hs, const uint8_t *h)
{
    size_t    len = 2 + w->kcfg.rest;
    uint32_t  i;

    for (i = 0; i < hs->n; i++) {
        if (memcmp(hs->h + (size_t) i * CEF_HASH_LEN, h, len) == 0) {
            memmove(hs->h + (size_t) i * CEF_HASH_LEN,
                    hs->h + (size_t) (i + 1) * CEF_HASH_LEN,
                    (size_t) (hs->n - i - 1) * CEF_HASH_LEN);
            hs->n--;
            i--;
        }
    }
}


/*
 * An op that may take a profile past CEF_PROFILE_HINTS_MAX buckets (keys,
 * merge): count the buckets its keys fill afterwards, before anything is
 * written.  Its keys now, less the remove list, plus the add list and the
 * keys in more (a merged profile's).
 */

static int
cef_w_keys_fit(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    const msgpack_object *remove, const msgpack_object *add,
    const cef_hashes_t *more)
{
    int           rc = CEF_WRITER_OK;
    uint8_t       h[CEF_HASH_LEN];
    uint32_t      i;
    cef_hashes_t  hs = { NULL, 0, 0 };

    if (cef_w_profile_keys(w, st, number, &hs) != 0) {
        rc = -1;
        goto done;
    }

    for (i = 0; remove && i < remove->via.array.size; i++) {
        if (cef_w_hash_pair(w, &remove->via.array.ptr[i], h) != 0) {
            rc = -1;
            goto done;
        }
        cef_w_hashes_remove(w, &hs, h);
    }

    for (i = 0; add && i < add->via.array.size; i++) {
        if (cef_w_hash_pair(w, &add->via.array.ptr[i], h) != 0) {
            rc = -1;
            goto done;
        }
        if (cef_w_hashes_add(&hs, h) != 0) {
            goto oom;
        }
    }

    for (i = 0; more && i < more->n; i++) {
        if (cef_w_hashes_add(&hs, more->h + (size_t) i * CEF_HASH_LEN) != 0) {
            goto oom;
        }
    }

    if (cef_w_count_buckets(&hs, CEF_PROFILE_HINTS_MAX)
        > CEF_PROFILE_HINTS_MAX)
    {
        rc = cef_w_bad(w, "the profile's keys would fill more than %d "
                       "index buckets (too many keys)",
                       CEF_PROFILE_HINTS_MAX);
    }

done:

    free(hs.h);
    return rc;

oom:

    free(hs.h);
    cef_w_err(w, "out of memory");
    return -1;
}


typedef struct {
    const msgpack_object  *id, *from, *into, *keys, *attrs, *set, *unset,
                          *add, *remove;
} cef_delta_t;


static int
cef_w_op_upsert(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        idh[CEF_HASH_LEN], h[CEF_WRITER_KEYS_MAX][CEF_HASH_LEN];
    uint16_t       hints[CEF_WRITER_KEYS_MAX];
    uint32_t       i, nkeys, nhints, number;
    cef_stored_t   st;
    cef_hashes_t   hs = { NULL, 0, 0 };

    (void) res;

    rc = cef_w_find(w, d->id, idh, &number, &st);
    if (rc < 0) {
        return -1;
    }

    /* the new profile first: nothing is written if it is too large */

    nkeys = d->keys->via.array.size;
    nhints = 0;

    for (i = 0; i < nkeys; i++) {
        if (cef_w_hash_pair(w, &d->keys->via.array.ptr[i], h[i]) != 0) {
            return -1;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h[i]));
    }

    cef_encode_begin(&w->enc);

    if (cef_w_encode_attrs(w, d->attrs) != 0
        || cef_w_encode(w, hints, nhints, d->id->via.str.ptr,
                        d->id->via.str.size) != 0)
    {
        return -1;
    }

    if (cef_w_check_room(w, nhints) != CEF_WRITER_OK) {
        return CEF_WRITER_EINPUT;
    }

    if (rc == 0) {
        if (cef_w_profile_keys(w, &st, number, &hs) != 0) {
            goto failed;
        }

        for (i = 0; i < hs.n; i++) {
            if (cef_w_index_del(w, hs.h + (size_t) i * CEF_HASH_LEN, number)
                < 0)
            {
                goto failed;
            }
            w->info.keys--;
        }

    } else {
        if (w->info.next_number == UINT32_MAX) {
            cef_w_err(w, "too many profiles");
            return -1;
        }

        number = w->info.next_number++;

        if (cef_w_ids_put(w, idh, number) != 0) {
            goto failed;
        }

        w->info.profiles++;
    }

    for (i = 0; i < nkeys; i++) {
        rc = cef_w_index_put(w, h[i], number);
        if (rc < 0) {
            goto failed;
        }

        if (rc == 0) {
            w->info.keys++;
        }
    }

    if (cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                       w->enc.blob.size) != 0)
    {
        goto failed;
    }

    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


static int
cef_w_op_patch(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int                    rc;
    int64_t                attr;
    uint8_t                idh[CEF_HASH_LEN];
    uint32_t               i, number;
    cef_stored_t           st;
    const msgpack_object  *n;

    rc = cef_w_find(w, d->id, idh, &number, &st);
    if (rc != 0) {
        if (rc > 0) {
            res->missing++;
        }
        return rc < 0 ? -1 : 0;
    }

    if (cef_w_begin_stored(w, &st, number) != 0
        || cef_w_encode_attrs(w, d->set) != 0)
    {
        return -1;
    }

    for (i = 0; d->unset && i < d->unset->via.array.size; i++) {
        n = &d->unset->via.array.ptr[i];
        attr = cef_encode_intern_find(&w->enc.names, n->via.str.ptr,
                                      n->via.str.size);
        if (attr >= 0) {
            cef_encode_unset(&w->enc, (uint32_t) attr);
        }
    }

    if (cef_w_encode(w, st.hints, st.nhints, st.id, st.idlen) != 0) {
        return -1;
    }

    if (cef_w_check_room(w, st.nhints) != CEF_WRITER_OK) {
        return CEF_WRITER_EINPUT;
    }

    return cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                          w->enc.blob.size);
}


static int
cef_w_op_delete(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        idh[CEF_HASH_LEN];
    uint32_t       i, number;
    cef_stored_t   st;
    cef_hashes_t   hs = { NULL, 0, 0 };

    rc = cef_w_find(w, d->id, idh, &number, &st);
    if (rc != 0) {
        if (rc > 0) {
            res->missing++;
        }
        return rc < 0 ? -1 : 0;
    }

    if (cef_w_profile_keys(w, &st, number, &hs) != 0) {
        goto failed;
    }

    for (i = 0; i < hs.n; i++) {
        if (cef_w_index_del(w, hs.h + (size_t) i * CEF_HASH_LEN, number) < 0) {
            goto failed;
        }
        w->info.keys--;
    }

    if (cef_w_ids_del(w, idh, number) != 0) {
        goto failed;
    }

    if (cef_w_prof_put(w, number, NULL, 0) != 0) {
        goto failed;
    }

    w->info.profiles--;
    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


static int
cef_w_op_keys(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int                    rc;
    uint8_t                idh[CEF_HASH_LEN], h[CEF_HASH_LEN];
    uint16_t               hints[CEF_PROFILE_HINTS_MAX + CEF_WRITER_KEYS_MAX];
    uint32_t               i, nhints, nadd, number;
    cef_stored_t           st;

    rc = cef_w_find(w, d->id, idh, &number, &st);
    if (rc != 0) {
        if (rc > 0) {
            res->missing++;
        }
        return rc < 0 ? -1 : 0;
    }

    nhints = st.nhints;
    memcpy(hints, st.hints, nhints * sizeof(uint16_t));

    nadd = d->add ? d->add->via.array.size : 0;

    if (nhints + nadd > CEF_PROFILE_HINTS_MAX) {
        rc = cef_w_keys_fit(w, &st, number, d->remove, d->add, NULL);
        if (rc != CEF_WRITER_OK) {
            return rc;
        }
    }

    for (i = 0; d->remove && i < d->remove->via.array.size; i++) {
        if (cef_w_hash_pair(w, &d->remove->via.array.ptr[i], h) != 0) {
            return -1;
        }

        rc = cef_w_index_del(w, h, number);
        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            w->info.keys--;
        }
    }

    for (i = 0; d->add && i < d->add->via.array.size; i++) {
        if (cef_w_hash_pair(w, &d->add->via.array.ptr[i], h) != 0) {
            return -1;
        }

        rc = cef_w_index_put(w, h, number);
        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            w->info.keys++;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    if (nhints > CEF_PROFILE_HINTS_MAX
        && cef_w_prune_hints(w, hints, &nhints, number) != 0)
    {
        return -1;
    }

    if (cef_w_begin_stored(w, &st, number) != 0) {
        return -1;
    }

    return cef_w_put_profile(w, number, hints, nhints, st.id, st.idlen);
}


static int
cef_w_op_merge(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        fidh[CEF_HASH_LEN], iidh[CEF_HASH_LEN], *h;
    uint16_t       hints[CEF_PROFILE_HINTS_MAX * 2];
    uint32_t       i, nhints, from, into;
    cef_stored_t   fst, ist;
    cef_hashes_t   hs = { NULL, 0, 0 };

    rc = cef_w_find(w, d->from, fidh, &from, &fst);
    if (rc < 0) {
        return -1;
    }

    if (rc > 0) {
        res->missing++;
        return 0;
    }

    if (cef_w_profile_keys(w, &fst, from, &hs) != 0) {
        goto failed;
    }

    /* loading "into" reuses the scratch buffer: fst.attrs is gone */

    rc = cef_w_find(w, d->into, iidh, &into, &ist);
    if (rc != 0) {
        if (rc > 0) {
            res->missing++;
        }
        free(hs.h);
        return rc < 0 ? -1 : 0;
    }

    nhints = ist.nhints;
    memcpy(hints, ist.hints, nhints * sizeof(uint16_t));

    if (nhints + hs.n > CEF_PROFILE_HINTS_MAX) {
        rc = cef_w_keys_fit(w, &ist, into, NULL, NULL, &hs);
        if (rc != CEF_WRITER_OK) {
            free(hs.h);
            return rc;
        }
    }

    for (i = 0; i < hs.n; i++) {
        h = hs.h + (size_t) i * CEF_HASH_LEN;

        if (cef_w_index_del(w, h, from) < 0 || cef_w_index_put(w, h, into) < 0)
        {
            goto failed;
        }

        if (nhints == CEF_PROFILE_HINTS_MAX * 2
            && cef_w_prune_hints(w, hints, &nhints, into) != 0)
        {
            goto failed;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    if (cef_w_ids_del(w, fidh, from) != 0) {
        goto failed;
    }

    if (cef_w_prof_put(w, from, NULL, 0) != 0) {
        goto failed;
    }

    w->info.profiles--;

    if (nhints > CEF_PROFILE_HINTS_MAX
        && cef_w_prune_hints(w, hints, &nhints, into) != 0)
    {
        goto failed;
    }

    if (cef_w_begin_stored(w, &ist, into) != 0
        || cef_w_put_profile(w, into, hints, nhints, ist.id, ist.idlen) != 0)
    {
        goto failed;
    }

    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


static int
cef_w_delta_record(cef_writer_t *w, const msgpack_object *rec, int dry,
    cef_writer_result_t *res)
{
    static const char *const  f_upsert[] = { "seq", "op", "id", "keys",
                                             "attrs", NULL };
    static const char *const  f_patch[] = { "seq", "op", "id", "set",
                                            "unset", NULL };
    static const char *const  f_delete[] = { "seq", "op", "id", NULL };
    static const char *const  f_keys[] = { "seq", "op", "id", "add",
                                           "remove", NULL };
    static const char *const  f_merge[] = { "seq", "op", "from", "into",
                                            NULL };

    int                    rc;
    int64_t                seq;
    cef_delta_t            d;
    const msgpack_object  *op;

    memset(&d, 0, sizeof(d));

    /* in a stream, seq is optional and only checked: offsets order records */

    if (w->stream && cef_w_field(rec, "seq") == NULL) {
        seq = 0;

    } else {
        rc = cef_w_int_field(w, rec, "seq", &seq);
        if (rc != 0) {
            return rc;
        }

        if (seq <= 0) {
            return cef_w_bad(w, "seq must be a positive integer");
        }
    }

    if (w->stream) {
        /* void */

    } else if ((uint64_t) seq <= w->stream_seq) {
        return cef_w_bad(w, "seq %lld is not greater than the previous "
                         "record's seq %llu (sequences must increase)",
                         (long long) seq, (unsigned long long) w->stream_seq);
    }

    if (!w->stream) {
        w->stream_seq = (uint64_t) seq;
    }

    op = cef_w_field(rec, "op");
    if (op == NULL || op->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"op\" must be a string");
    }

    if (cef_w_key_is(op, "upsert")) {
        if ((rc = cef_w_check_fields(w, rec, f_upsert)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_keys(w, rec, "keys", 1, &d.keys)) != 0
            || (rc = cef_w_check_attrs(w, rec, "attrs", 1, &d.attrs)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "patch")) {
        if ((rc = cef_w_check_fields(w, rec, f_patch)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_attrs(w, rec, "set", 0, &d.set)) != 0
            || (rc = cef_w_check_names(w, rec, "unset", &d.unset)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "delete")) {
        if ((rc = cef_w_check_fields(w, rec, f_delete)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "keys")) {
        if ((rc = cef_w_check_fields(w, rec, f_keys)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_keys(w, rec, "add", 0, &d.add)) != 0
            || (rc = cef_w_check_keys(w, rec, "remove", 0, &d.remove)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "merge")) {
        if ((rc = cef_w_check_fields(w, rec, f_merge)) != 0
            || (rc = cef_w_check_id(w, rec, "from", &d.from)) != 0
            || (rc = cef_w_check_id(w, rec, "into", &d.into)) != 0)
        {
            return rc;
        }

        if (d.from->via.str.size == d.into->via.str.size
            && memcmp(d.from->via.str.ptr, d.into->via.str.ptr,
                      d.from->via.str.size) == 0)
        {
            return cef_w_bad(w, "merge: \"from\" and \"into\" are the same "
                             "profile");
        }

    } else {
        return cef_w_bad(w, "unknown op \"%.*s\"", (int) op->via.str.size,
                         op->via.str.ptr);
    }

    if (dry) {
        return CEF_WRITER_OK;
    }

    if (!w->stream && (uint64_t) seq <= w->info.last_seq) {
        res->skipped++;
        return CEF_WRITER_OK;
    }

    if (w->txn == NULL) {
        rc = cef_w_txn_begin(w, 0);
        if (rc != 0) {
            return rc;
        }
    }

    switch (op->via.str.ptr[0]) {
    case 'u': rc = cef_w_op_upsert(w, &d, res); break;
    case 'p': rc = cef_w_op_patch(w, &d, res); break;
    case 'd': rc = cef_w_op_delete(w, &d, res); break;
    case 'k': rc = cef_w_op_keys(w, &d, res); break;
    default:  rc = cef_w_op_merge(w, &d, res); break;
    }

    if (rc == CEF_WRITER_EINPUT) {
        /*
         * Over a limit of the stored state, found before the record wrote
         * anything: a stream refuses it alone; an apply stops (its earlier
         * batches are committed, so that is not "nothing changed").
         */
        return w->stream ? CEF_WRITER_EINPUT : CEF_WRITER_ESTORE;
    }

    if (rc != 0) {
        /* the message is set; name the record if it does not */
        if (strncmp(w->err, "record ", 7) != 0) {
            char  msg[512];

            snprintf(msg, sizeof(msg), "%s", w->err);
            cef_w_bad(w, "%s", msg);
        }
        return CEF_WRITER_ESTORE;
    }

    res->applied++;
    w->in_batch++;

    if (!w->stream) {
        w->batch_seq = (uint64_t) seq;
    }

    return CEF_WRITER_OK;
}


static int
cef_w_batch_commit(cef_writer_t *w, cef_writer_result_t *res)
{
    int  rc;

    if (w->txn == NULL) {
        return CEF_WRITER_OK;
    }

    w->info.last_seq = w->batch_seq;
    w->info.updated_at = time(NULL);

    if ((rc = cef_w_put_meta(w)) != 0 || (rc = cef_w_txn_commit(w)) != 0) {
        return rc;
    }

    w->in_batch = 0;
    res->batches++;

    return CEF_WRITER_OK;
}


static int
cef_w_apply_pass(cef_writer_t *w, int dry, cef_writer_result_t *res)
{
    int                    rc;
    uint64_t               records = 0;
    uint32_t               batch;
    const msgpack_object  *rec;

    batch = w->conf->batch ? w->conf->batch : 10000;
    w->stream_seq = 0;

    for ( ;; ) {
        if (!dry && w->in_batch > 0 && w->conf->idle_ms > 0
            && cef_input_wait(w->in, w->conf->idle_ms) == 0)
        {
            rc = cef_w_batch_commit(w, res);
            if (rc != 0) {
                return rc;
            }
        }

        rc = cef_input_next(w->in, &rec, w->err, w->errlen);

        if (rc < 0) {
            return CEF_WRITER_EINPUT;
        }

        if (rc == 0) {
            break;
        }

        records++;
        w->rec_no = cef_input_record(w->in);
        w->rec_off = cef_input_offset(w->in);

        if (!dry) {
            cef_w_progress(w, records, 0);
        }

        if (records == 1) {
            rc = cef_w_check_header(w, rec, "delta");
        } else {
            rc = cef_w_delta_record(w, rec, dry, res);
        }

        if (rc != 0) {
            return rc;
        }

        if (!dry && w->in_batch >= batch) {
            rc = cef_w_batch_commit(w, res);
            if (rc != 0) {
                return rc;
            }
        }
    }

    if (records == 0) {
        cef_w_err(w, "empty input: expected a delta header");
        return CEF_WRITER_EINPUT;
    }

    if (!dry) {
        res->records = records;
        cef_w_progress(w, records, 1);
        return cef_w_batch_commit(w, res);
    }

    return CEF_WRITER_OK;
}


static int
cef_w_load_dict(cef_writer_t *w, MDB_dbi dbi, cef_encode_intern_t *t)
{
    int          rc;
    uint32_t     id;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(w->txn, dbi, &cur);
    if (rc != 0) {
        return cef_w_lmdb(w, "reading the dictionary", rc);
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

    while (rc == 0) {
        memcpy(&id, k.mv_data, sizeof(id));

        if (k.mv_size != sizeof(id) || id != t->n
            || cef_encode_intern_add(t, v.mv_data, v.mv_size) != id)
        {
            mdb_cursor_close(cur);
            cef_w_err(w, "the store's dictionary is corrupt (entry %u)", id);
            return CEF_WRITER_ESTORE;
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return cef_w_lmdb(w, "reading the dictionary", rc);
    }

    t->written = t->n;
    return CEF_WRITER_OK;
}


/*
 * Take the write lock and open the current generation for deltas: the
 * metadata, the secret check, the dictionaries.  Leaves w->txn open.
 */

static int
cef_w_open_current(cef_writer_t *w, char *path, size_t size, uint64_t *gen)
{
    int           rc;
    uint8_t       fp[8];
    MDB_val       k, v;
    MDB_envinfo   ei;

    if (cef_store_current(w->conf->dir, path, size, gen) != 0) {
        cef_w_err(w, "no profile store in \"%s\" (create one with "
                  "cef-sync load)", w->conf->dir);
        return CEF_WRITER_ESTORE;
    }

    rc = cef_w_lock(w, 0);
    if (rc != 0) {
        return rc;
    }

    cef_w_cleanup(w);

    /* a load may have switched generations while we waited for the lock */

    if (cef_store_current(w->conf->dir, path, size, gen) != 0) {
        cef_w_err(w, "no profile store in \"%s\"", w->conf->dir);
        return CEF_WRITER_ESTORE;
    }

    if (cef_encode_init(&w->enc) != 0) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    w->enc_init = 1;

    if ((rc = mdb_env_create(&w->env)) != 0
        || (rc = mdb_env_set_maxdbs(w->env, 8)) != 0
        || (rc = mdb_env_open(w->env, path, 0, 0644)) != 0)
    {
        return cef_w_lmdb(w, "opening the store", rc);
    }

    /* generations made before lock.mdb was allocated in full */

    rc = cef_w_reserve_lock(w, path, 0, 0644);
    if (rc != 0) {
        return rc;
    }

    if (cef_w_share(w, path) != CEF_WRITER_OK) {
        return CEF_WRITER_ESTORE;
    }

    mdb_env_info(w->env, &ei);

    if (w->conf->map_size > ei.me_mapsize) {
        rc = mdb_env_set_mapsize(w->env, w->conf->map_size);
        if (rc != 0) {
            return cef_w_lmdb(w, rc == ENOMEM ? "growing the map (a --map-size "
                              "larger than the address space?)"
                              : "growing the map", rc);
        }
    }

    rc = cef_w_txn_begin(w, 0);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = (void *) "meta";
    k.mv_size = 4;

    rc = mdb_get(w->txn, w->meta, &k, &v);
    if (rc != 0) {
        return cef_w_lmdb(w, "reading the metadata", rc);
    }

    if (cef_store_meta_decode(v.mv_data, v.mv_size, &w->info) != 0
        || w->info.format != CEF_STORE_FORMAT)
    {
        cef_w_err(w, "\"%s\": unsupported or malformed store metadata", path);
        return CEF_WRITER_ESTORE;
    }

    if (cef_identity_fingerprint(w->conf->ident, fp) != 0
        || memcmp(fp, w->info.secret_check, 8) != 0)
    {
        cef_w_err(w, "the secret is not the one the store was loaded with");
        return CEF_WRITER_EINPUT;
    }

    if ((rc = cef_w_load_dict(w, w->names, &w->enc.names)) != 0
        || (rc = cef_w_load_dict(w, w->strs, &w->enc.strs)) != 0)
    {
        return rc;
    }

    w->kcfg.bits = w->info.key_bits;
    w->kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    w->icfg.bits = w->info.id_bits;
    w->icfg.rest = CEF_STORE_BUCKET_REST_IDS;

    if (w->info.key_bits < CEF_STORE_BUCKET_BITS_MIN
        || w->info.key_bits > CEF_STORE_BUCKET_BITS_MAX
        || w->info.id_bits < CEF_STORE_BUCKET_BITS_MIN
        || w->info.id_bits > CEF_STORE_BUCKET_BITS_MAX)
    {
        cef_w_err(w, "the store's metadata has a bad index layout");
        return CEF_WRITER_ESTORE;
    }

    if (w->enc.names.n != w->info.names || w->enc.strs.n != w->info.strs) {
        cef_w_err(w, "the store's dictionary does not match its metadata");
        return CEF_WRITER_ESTORE;
    }

    return CEF_WRITER_OK;
}


int
cef_writer_apply(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int           rc;
    char          path[PATH_MAX];
    uint64_t      gen = 0;
    struct stat   st;
    cef_writer_t  w;

    memset(&w, 0, sizeof(w));
    memset(res, 0, sizeof(cef_writer_result_t));
    path[0] = '\0';
    w.conf = conf;
    w.in = in;
    w.err = err;
    w.errlen = errlen;
    w.lockfd = -1;
    err[0] = '\0';

    rc = cef_w_open_current(&w, path, sizeof(path), &gen);
    if (rc != 0) {
        goto done;
    }

    mdb_txn_abort(w.txn);
    w.txn = NULL;

    if (cef_input_seekable(in)) {
        rc = cef_w_apply_pass(&w, 1, res);
        if (rc != 0) {
            goto done;
        }

        if (cef_input_rewind(in) != 0) {
            cef_w_err(&w, "cannot rewind the input: %s", strerror(errno));
            rc = CEF_WRITER_ESTORE;
            goto done;
        }
    }

    rc = cef_w_apply_pass(&w, 0, res);

done:

    res->profiles = w.info.profiles;
    res->keys = w.info.keys;
    res->last_seq = w.info.last_seq;
    res->generation = gen;

    if (rc == 0 && (size_t) snprintf(path + strlen(path),
                                     sizeof(path) - strlen(path),
                                     "/data.mdb") < sizeof(path)
        && stat(path, &st) == 0)
    {
        res->data_bytes = (uint64_t) st.st_size;
    }

    cef_w_close(&w);
    return rc;
}


/* --- streams (cef-sync consume) ------------------------------------------ */


struct cef_writer_stream_s {
    cef_writer_t       w;
    cef_writer_conf_t  conf;
    char               path[PATH_MAX];
    char               err[1024];
    int                broken;
};


int
cef_writer_stream_open(cef_writer_stream_t **sp, const cef_writer_conf_t *conf,
    cef_store_offsets_t *offs, char *err, size_t errlen)
{
    int                  rc;
    uint32_t             i;
    uint64_t             gen;
    MDB_val              k, v;
    cef_writer_stream_t  *s;

    *sp = NULL;
    err[0] = '\0';

    memset(offs, 0, sizeof(cef_store_offsets_t));
    for (i = 0; i < CEF_STORE_PARTITIONS_MAX; i++) {
        offs->next[i] = -1;
    }

    s = calloc(1, sizeof(cef_writer_stream_t));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    s->conf = *conf;
    s->w.conf = &s->conf;
    s->w.err = err;
    s->w.errlen = errlen;
    s->w.lockfd = -1;
    s->w.stream = 1;

    rc = cef_w_open_current(&s->w, s->path, sizeof(s->path), &gen);
    if (rc != 0) {
        goto failed;
    }

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;

    rc = mdb_get(s->w.txn, s->w.meta, &k, &v);

    if (rc == 0) {
        if (cef_store_offsets_decode(v.mv_data, v.mv_size, offs) != 0) {
            cef_w_err(&s->w, "the store's stream offsets are malformed");
            rc = CEF_WRITER_ESTORE;
            goto failed;
        }

    } else if (rc != MDB_NOTFOUND) {
        rc = cef_w_lmdb(&s->w, "reading the stream offsets", rc);
        goto failed;
    }

    mdb_txn_abort(s->w.txn);
    s->w.txn = NULL;
    s->w.err = s->err;
    s->w.errlen = sizeof(s->err);

    *sp = s;
    return CEF_WRITER_OK;

failed:

    cef_w_close(&s->w);
    free(s);
    return rc;
}


static void
cef_stream_use_err(cef_writer_stream_t *s, char *err, size_t errlen)
{
    err[0] = '\0';
    s->w.err = err;
    s->w.errlen = errlen;
    s->w.rec_no = 0;
    s->w.rec_off = 0;
}


int
cef_writer_stream_record(cef_writer_stream_t *s, const msgpack_object *rec,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int  rc;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (rec->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "a record must be a map");
        return CEF_WRITER_EINPUT;
    }

    rc = cef_w_delta_record(&s->w, rec, 0, res);

    if (rc == CEF_WRITER_ESTORE) {
        s->broken = 1;
    }

    return rc;
}


int
cef_writer_stream_erase(cef_writer_stream_t *s, const char *id, size_t len,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int             rc;
    cef_delta_t     d;
    msgpack_object  o;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (len == 0 || len > CEF_PROFILE_ID_MAX) {
        snprintf(err, errlen, "a tombstone's key (the profile id) must be 1 "
                 "to %d bytes long", CEF_PROFILE_ID_MAX);
        return CEF_WRITER_EINPUT;
    }

    if (s->w.txn == NULL && (rc = cef_w_txn_begin(&s->w, 0)) != 0) {
        s->broken = 1;
        return rc;
    }

    memset(&d, 0, sizeof(d));
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = id;
    o.via.str.size = (uint32_t) len;
    d.id = &o;

    if (cef_w_op_delete(&s->w, &d, res) != 0) {
        s->broken = 1;
        return CEF_WRITER_ESTORE;
    }

    res->applied++;
    s->w.in_batch++;

    return CEF_WRITER_OK;
}


int
cef_writer_stream_commit(cef_writer_stream_t *s,
    const cef_store_offsets_t *offs, cef_writer_result_t *res, char *err,
    size_t errlen)
{
    int  rc;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (s->w.txn == NULL && (rc = cef_w_txn_begin(&s->w, 0)) != 0) {
        s->broken = 1;
        return rc;
    }

    /* the age readers report ($cef_store_age, metrics) starts again here */
    s->w.info.updated_at = time(NULL);

    /* offsets as a session without any opens them: none to store */
    if (offs && offs->topic[0] == '\0') {
        offs = NULL;
    }

    if ((offs && (rc = cef_w_put_offsets(&s->w, offs)) != 0)
        || (rc = cef_w_put_meta(&s->w)) != 0
        || (rc = cef_w_txn_commit(&s->w)) != 0)
    {
        s->broken = 1;
        return rc;
    }

    s->w.in_batch = 0;
    res->batches++;
    res->profiles = s->w.info.profiles;
    res->keys = s->w.info.keys;

    return CEF_WRITER_OK;
}


void
cef_writer_stream_close(cef_writer_stream_t *s)
{
    if (s == NULL) {
        return;
    }

    s->w.err = s->err;
    s->w.errlen = sizeof(s->err);
    cef_w_close(&s->w);
    free(s);
}
