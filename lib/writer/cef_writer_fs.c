/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: errors, the store directory, the write lock,
 * generations, LMDB transactions and the metadata record (docs/store.md).
 */

#include "cef_writer_int.h"


void
cef_w_err(cef_writer_t *w, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
}


/* "record N (byte O): ..." for the record being processed */

int
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

const char *
cef_w_write_hint(int rc)
{
    return rc == ENOSPC || rc == EIO || rc == EFBIG || rc == EDQUOT
           ? " (disk full, or over a file size or quota limit?)" : "";
}


int
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


int
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


int
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

int
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


int
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

int
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


int
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

/* A writer for one run: nothing open yet, the lock file not taken. */

void
cef_w_init(cef_writer_t *w, const cef_writer_conf_t *conf, cef_input_t *in,
    char *err, size_t errlen)
{
    memset(w, 0, sizeof(cef_writer_t));
    w->conf = conf;
    w->in = in;
    w->err = err;
    w->errlen = errlen;
    w->lockfd = -1;
}


void
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


void
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


int
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


int
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


int
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
