/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: published records -- a bandit's weights
 * ("op":"weights", issue 19) and rule sets ("op":"rules", issue 20) --
 * validated and stored in the "meta" database of the transaction they
 * arrive in (delta batches, stream batches, loads), with the version rules
 * of docs/formats.md; and their carry-over from one generation to the next
 * on a full load (docs/store.md, "Published records").
 */

#include <signal.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "cef_store_rules.h"
#include "cef_store_weights.h"
#include "cef_writer_int.h"


/* one version of a rule set, decoded for editing */
typedef struct {
    uint8_t   sha[32];
    uint64_t  version;
    int64_t   created_at;
    uint64_t  live_at;
    int       state;
    char      label[CEF_STORE_RULES_TEXT_MAX];
    size_t    llen;
    char      author[CEF_STORE_RULES_TEXT_MAX];
    size_t    alen;
} cef_w_rv_t;

typedef struct {
    uint64_t    version;
    int64_t     changed_at;
    int         mode;
    uint32_t    share;
    int         live, cand;
    uint32_t    n;
    cef_w_rv_t  h[CEF_STORE_RULES_HISTORY + 1];
} cef_w_rs_t;


static void
cef_w_warn(cef_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cef_w_warn(cef_writer_t *w, const char *fmt, ...)
{
    int      n = 0;
    char     msg[768];
    va_list  ap;

    if (w->conf->notice == NULL) {
        return;
    }

    n = snprintf(msg, sizeof(msg), "warning: ");

    if (w->rec_no > 0) {
        n += snprintf(msg + n, sizeof(msg) - n, "record %llu (byte %llu): ",
                      (unsigned long long) w->rec_no,
                      (unsigned long long) w->rec_off);
    }

    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
    va_end(ap);

    w->conf->notice(w->conf->data, msg);
}


static int
cef_w_pub_str(cef_writer_t *w, const msgpack_object *rec, const char *name,
    int required, size_t min, size_t max, const msgpack_object **out)
{
    const msgpack_object  *v;

    v = cef_w_field(rec, name);
    *out = NULL;

    if (v == NULL) {
        return required ? cef_w_bad(w, "field \"%s\" is missing", name) : 0;
    }

    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size < min
        || v->via.str.size > max)
    {
        return cef_w_bad(w, "field \"%s\" must be a string of %zu to %zu "
                         "bytes", name, min, max);
    }

    if (memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL) {
        return cef_w_bad(w, "field \"%s\" must not contain NUL", name);
    }

    *out = v;
    return 0;
}


static int
cef_w_pub_version(cef_writer_t *w, const msgpack_object *rec, cef_pub_t *p)
{
    int      rc;
    int64_t  v;

    if ((rc = cef_w_int_field(w, rec, "version", &v)) != 0) {
        return rc;
    }

    if (v < 1) {
        return cef_w_bad(w, "field \"version\" must be a positive integer");
    }

    p->version = (uint64_t) v;

    if ((rc = cef_w_int_field(w, rec, "created_at", &p->created_at)) != 0) {
        return rc;
    }

    return 0;
}


static int
cef_w_is_number(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
           || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
           || v->type == MSGPACK_OBJECT_FLOAT32
           || v->type == MSGPACK_OBJECT_FLOAT64;
}


static double
cef_w_number(const msgpack_object *v)
{
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double) v->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double) v->via.i64;
    default: return v->via.f64;
    }
}


static int
cef_w_check_weights(cef_writer_t *w, const msgpack_object *rec, cef_pub_t *p)
{
    static const char *const  fields[] = { "seq", "op", "experiment", "salt",
        "version", "created_at", "weights", "updated", "exposures", "goal",
        "metric", "method", "draws", "floor", "seed", NULL };

    int                    rc;
    uint32_t               i, j, total = 0;
    const msgpack_object  *v, *a, *b;

    if ((rc = cef_w_check_fields(w, rec, fields)) != 0
        || (rc = cef_w_pub_str(w, rec, "experiment", 1, 1,
                               CEF_STORE_WEIGHTS_NAME_MAX, &p->experiment))
           != 0
        || (rc = cef_w_pub_str(w, rec, "salt", 1, 1,
                               CEF_STORE_WEIGHTS_NAME_MAX, &p->salt)) != 0
        || (rc = cef_w_pub_version(w, rec, p)) != 0)
    {
        return rc;
    }

    v = cef_w_field(rec, "weights");
    if (v == NULL) {
        return cef_w_bad(w, "field \"weights\" is missing");
    }

    if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size == 0
        || v->via.map.size > CEF_STORE_WEIGHTS_ARMS_MAX)
    {
        return cef_w_bad(w, "field \"weights\" must be an object of 1 to %d "
                         "arms", CEF_STORE_WEIGHTS_ARMS_MAX);
    }

    for (i = 0; i < v->via.map.size; i++) {
        a = &v->via.map.ptr[i].key;
        b = &v->via.map.ptr[i].val;

        if (a->type != MSGPACK_OBJECT_STR || a->via.str.size == 0
            || a->via.str.size > CEF_STORE_WEIGHTS_ARM_MAX)
        {
            return cef_w_bad(w, "weights: an arm name must be a string of 1 "
                             "to %d bytes", CEF_STORE_WEIGHTS_ARM_MAX);
        }

        if (b->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || b->via.u64 > CEF_STORE_WEIGHTS_TOTAL)
        {
            return cef_w_bad(w, "weights.%.*s must be an integer from 0 to "
                             "%d (basis points)", (int) a->via.str.size,
                             a->via.str.ptr, CEF_STORE_WEIGHTS_TOTAL);
        }

        for (j = 0; j < i; j++) {
            if (v->via.map.ptr[j].key.via.str.size == a->via.str.size
                && memcmp(v->via.map.ptr[j].key.via.str.ptr, a->via.str.ptr,
                          a->via.str.size) == 0)
            {
                return cef_w_bad(w, "weights: arm \"%.*s\" appears twice",
                                 (int) a->via.str.size, a->via.str.ptr);
            }
        }

        total += (uint32_t) b->via.u64;
    }

    if (total != CEF_STORE_WEIGHTS_TOTAL) {
        return cef_w_bad(w, "weights: the arms add up to %u basis points, "
                         "not %d", total, CEF_STORE_WEIGHTS_TOTAL);
    }

    p->weights = v;

    v = cef_w_field(rec, "updated");
    if (v && v->type != MSGPACK_OBJECT_BOOLEAN) {
        return cef_w_bad(w, "field \"updated\" must be true or false");
    }
    p->updated = v ? v->via.boolean : 1;

    v = cef_w_field(rec, "exposures");
    if (v) {
        if (v->type != MSGPACK_OBJECT_MAP) {
            return cef_w_bad(w, "field \"exposures\" must be an object arm "
                             "-> count");
        }
        for (i = 0; i < v->via.map.size; i++) {
            if (v->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR
                || v->via.map.ptr[i].val.type
                   != MSGPACK_OBJECT_POSITIVE_INTEGER)
            {
                return cef_w_bad(w, "exposures: each arm's count must be a "
                                 "non-negative integer");
            }
        }
    }

    v = cef_w_field(rec, "goal");
    if (v && v->type != MSGPACK_OBJECT_NIL && v->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"goal\" must be a string or null");
    }

    v = cef_w_field(rec, "metric");
    if (v && !cef_w_key_is(v, "conversion") && !cef_w_key_is(v, "value")) {
        return cef_w_bad(w, "field \"metric\" must be \"conversion\" or "
                         "\"value\"");
    }

    v = cef_w_field(rec, "method");
    if (v && !cef_w_key_is(v, "top-two") && !cef_w_key_is(v, "thompson")) {
        return cef_w_bad(w, "field \"method\" must be \"top-two\" or "
                         "\"thompson\"");
    }

    v = cef_w_field(rec, "draws");
    if (v && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return cef_w_bad(w, "field \"draws\" must be a non-negative integer");
    }

    v = cef_w_field(rec, "floor");
    if (v && (!cef_w_is_number(v) || cef_w_number(v) < 0
              || cef_w_number(v) > 1))
    {
        return cef_w_bad(w, "field \"floor\" must be a number from 0 to 1");
    }

    v = cef_w_field(rec, "seed");
    if (v && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER
        && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
    {
        return cef_w_bad(w, "field \"seed\" must be an integer");
    }

    return 0;
}


static int
cef_w_hex32(const msgpack_object *v, uint8_t *out)
{
    uint32_t  i;
    int       lo;
    char      c;

    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != 64) {
        return -1;
    }

    for (i = 0; i < 64; i++) {
        c = v->via.str.ptr[i];
        lo = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f'
             ? c - 'a' + 10 : -1;
        if (lo < 0) {
            return -1;
        }
        if (i % 2 == 0) {
            out[i / 2] = (uint8_t) (lo << 4);
        } else {
            out[i / 2] |= (uint8_t) lo;
        }
    }

    return 0;
}


static int
cef_w_check_rules(cef_writer_t *w, const msgpack_object *rec, cef_pub_t *p)
{
    static const char *const  f_publish[] = { "seq", "op", "name", "action",
        "version", "created_at", "hash", "source", "label", "author",
        "rollout", NULL };
    static const char *const  f_promote[] = { "seq", "op", "name", "action",
        "version", "created_at", "hash", "author", NULL };
    static const char *const  f_rollback[] = { "seq", "op", "name", "action",
        "version", "created_at", "to", "author", NULL };
    static const char *const  f_rollout[] = { "mode", "share", NULL };

    int                    rc;
    double                 share;
    uint8_t                md[EVP_MAX_MD_SIZE];
    unsigned int           mdlen = 0;
    const msgpack_object  *act, *ro, *mode, *sh, *h;

    if ((rc = cef_w_pub_str(w, rec, "name", 1, 1, CEF_STORE_RULES_NAME_MAX,
                            &p->name)) != 0)
    {
        return rc;
    }

    if (!cef_store_rules_name_ok(p->name->via.str.ptr, p->name->via.str.size))
    {
        return cef_w_bad(w, "field \"name\" may hold only letters, digits, "
                         "'.', '_' and '-'");
    }

    act = cef_w_field(rec, "action");
    if (act == NULL) {
        return cef_w_bad(w, "field \"action\" is missing");
    }

    if (cef_w_key_is(act, "publish")) {
        p->action = CEF_W_PUBLISH;
        rc = cef_w_check_fields(w, rec, f_publish);
    } else if (cef_w_key_is(act, "promote")) {
        p->action = CEF_W_PROMOTE;
        rc = cef_w_check_fields(w, rec, f_promote);
    } else if (cef_w_key_is(act, "rollback")) {
        p->action = CEF_W_ROLLBACK;
        rc = cef_w_check_fields(w, rec, f_rollback);
    } else {
        return cef_w_bad(w, "field \"action\" must be \"publish\", "
                         "\"promote\" or \"rollback\"");
    }

    if (rc != 0
        || (rc = cef_w_pub_version(w, rec, p)) != 0
        || (rc = cef_w_pub_str(w, rec, "author", 0, 0,
                               CEF_STORE_RULES_TEXT_MAX, &p->author)) != 0
        || (rc = cef_w_pub_str(w, rec, "label", 0, 0,
                               CEF_STORE_RULES_TEXT_MAX, &p->label)) != 0)
    {
        return rc;
    }

    h = cef_w_field(rec, p->action == CEF_W_ROLLBACK ? "to" : "hash");
    p->has_hash = h != NULL;

    if (h && cef_w_hex32(h, p->sha) != 0) {
        return cef_w_bad(w, "field \"%s\" must be a SHA-256 in 64 lower-case "
                         "hex digits", p->action == CEF_W_ROLLBACK
                                       ? "to" : "hash");
    }

    if (p->action != CEF_W_PUBLISH) {
        return 0;
    }

    if (h == NULL) {
        return cef_w_bad(w, "field \"hash\" is missing");
    }

    p->source = cef_w_field(rec, "source");
    if (p->source == NULL || p->source->type != MSGPACK_OBJECT_STR
        || p->source->via.str.size == 0)
    {
        return cef_w_bad(w, "field \"source\" must be the rule file's text");
    }

    if (EVP_Digest(p->source->via.str.ptr, p->source->via.str.size, md,
                   &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    {
        cef_w_err(w, "SHA-256 failed (OpenSSL)");
        return CEF_WRITER_ESTORE;
    }

    if (memcmp(md, p->sha, 32) != 0) {
        return cef_w_bad(w, "field \"hash\" is not the SHA-256 of \"source\" "
                         "(a damaged or edited record)");
    }

    ro = cef_w_field(rec, "rollout");
    p->mode = CEF_STORE_RULES_NONE;
    p->share = 0;

    if (ro == NULL) {
        return 0;               /* live */
    }

    if (ro->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "field \"rollout\" must be an object {\"mode\":"
                         "\"live\"|\"canary\"|\"shadow\",\"share\":PERCENT}");
    }

    if ((rc = cef_w_check_fields(w, ro, f_rollout)) != 0) {
        return rc;
    }

    mode = cef_w_field(ro, "mode");
    sh = cef_w_field(ro, "share");

    if (mode && cef_w_key_is(mode, "live")) {
        if (sh) {
            return cef_w_bad(w, "rollout: a live version has no share");
        }
        return 0;
    }

    if (mode && cef_w_key_is(mode, "canary")) {
        p->mode = CEF_STORE_RULES_CANARY;
    } else if (mode && cef_w_key_is(mode, "shadow")) {
        p->mode = CEF_STORE_RULES_SHADOW;
    } else {
        return cef_w_bad(w, "rollout.mode must be \"live\", \"canary\" or "
                         "\"shadow\"");
    }

    share = sh && cef_w_is_number(sh) ? cef_w_number(sh) : -1;

    if (!(share >= 0.01 && share <= 100)) {
        return cef_w_bad(w, "rollout.share must be a percentage from 0.01 to "
                         "100");
    }

    p->share = (uint32_t) (share * 100 + 0.5);

    return 0;
}


int
cef_w_publish_check(cef_writer_t *w, const msgpack_object *rec,
    const msgpack_object *op, cef_pub_t *p)
{
    memset(p, 0, sizeof(cef_pub_t));
    p->rec = rec;

    if (cef_w_key_is(op, "weights")) {
        p->kind = 'w';
        return cef_w_check_weights(w, rec, p);
    }

    p->kind = 'r';
    return cef_w_check_rules(w, rec, p);
}


/* the change counter readers poll (cef_store_published_changed) */

static int
cef_w_pub_bump(cef_writer_t *w)
{
    int       rc;
    uint8_t   buf[8];
    uint64_t  n = 0;
    MDB_val   k, v;

    k.mv_data = (void *) CEF_STORE_META_PUBLISHED;
    k.mv_size = sizeof(CEF_STORE_META_PUBLISHED) - 1;

    rc = mdb_get(w->txn, w->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        n = cef_store_le64(v.mv_data);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return cef_w_lmdb(w, "reading the published counter", rc);
    }

    cef_store_put_le64(buf, n + 1);
    v.mv_data = buf;
    v.mv_size = 8;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    return rc ? cef_w_lmdb(w, "writing the published counter", rc) : 0;
}


/* 1 if the stored arms are the record's (names and basis points) */
static int
cef_w_same_arms(const cef_store_weights_t *sw, const msgpack_object *m)
{
    size_t                 pos;
    uint32_t               i, found;
    cef_store_arm_t        arm;
    const msgpack_object  *k;

    if (sw->narms != m->via.map.size) {
        return 0;
    }

    for (i = 0; i < m->via.map.size; i++) {
        k = &m->via.map.ptr[i].key;
        pos = 0;
        found = 0;

        while (cef_store_weights_arm(sw, &pos, &arm)) {
            if (arm.name.len == k->via.str.size
                && memcmp(arm.name.data, k->via.str.ptr, arm.name.len) == 0)
            {
                found = arm.bp == m->via.map.ptr[i].val.via.u64;
                break;
            }
        }

        if (!found) {
            return 0;
        }
    }

    return 1;
}


static int
cef_w_apply_weights(cef_writer_t *w, const cef_pub_t *p,
    cef_writer_result_t *res)
{
    int                    rc;
    char                   key[CEF_STORE_WEIGHTS_KEY_MAX];
    size_t                 klen, alen = 0, off;
    uint32_t               i;
    uint8_t               *buf;
    MDB_val                k, v;
    msgpack_sbuffer        sb;
    msgpack_packer         pk;
    cef_store_arm_t        arm;
    cef_store_weights_t    sw;
    const msgpack_object  *m = p->weights;

    klen = cef_store_weights_key(key, p->experiment->via.str.ptr,
                                 p->experiment->via.str.size,
                                 p->salt->via.str.ptr, p->salt->via.str.size);
    if (klen == 0) {
        return cef_w_bad(w, "field \"experiment\" must not contain NUL");
    }

    k.mv_data = key;
    k.mv_size = klen;

    rc = mdb_get(w->txn, w->meta, &k, &v);

    if (rc == 0
        && cef_store_weights_decode(key, klen, v.mv_data, v.mv_size, &sw)
           == 0)
    {
        if (p->version < sw.version) {
            res->stale++;
            return 0;
        }

        if (p->version == sw.version) {
            res->stale++;
            if (!cef_w_same_arms(&sw, m)) {
                res->conflicts++;
                cef_w_warn(w, "weights of \"%.*s\" (salt \"%.*s\"): version "
                           "%llu again with different weights; the stored "
                           "ones stay (versions must increase with every "
                           "change)",
                           (int) p->experiment->via.str.size,
                           p->experiment->via.str.ptr,
                           (int) p->salt->via.str.size, p->salt->via.str.ptr,
                           (unsigned long long) p->version);
            }
            return 0;
        }

    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return cef_w_lmdb(w, "reading weights", rc);
    }

    for (i = 0; i < m->via.map.size; i++) {
        alen += 3 + m->via.map.ptr[i].key.via.str.size;
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    if (msgpack_pack_object(&pk, *p->rec) != 0) {
        msgpack_sbuffer_destroy(&sb);
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    buf = malloc(CEF_STORE_WEIGHTS_HEADER + alen + sb.size);
    if (buf == NULL) {
        msgpack_sbuffer_destroy(&sb);
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    memset(&sw, 0, sizeof(sw));
    sw.updated = p->updated;
    sw.narms = m->via.map.size;
    sw.arms_len = alen;
    sw.version = p->version;
    sw.created_at = p->created_at;
    sw.stored_at = time(NULL);
    cef_store_weights_put_header(buf, &sw);

    off = CEF_STORE_WEIGHTS_HEADER;
    for (i = 0; i < m->via.map.size; i++) {
        arm.name.data = m->via.map.ptr[i].key.via.str.ptr;
        arm.name.len = m->via.map.ptr[i].key.via.str.size;
        arm.bp = (uint32_t) m->via.map.ptr[i].val.via.u64;
        off += cef_store_weights_put_arm(buf + off, &arm);
    }

    memcpy(buf + off, sb.data, sb.size);
    v.mv_data = buf;
    v.mv_size = off + sb.size;
    msgpack_sbuffer_destroy(&sb);

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    free(buf);

    if (rc != 0) {
        return cef_w_lmdb(w, "storing weights", rc);
    }

    res->published++;
    return cef_w_pub_bump(w);
}


/* --- rule sets ------------------------------------------------------------ */


static int
cef_w_rs_load(cef_writer_t *w, const char *key, size_t klen, cef_w_rs_t *rs)
{
    int                        rc;
    uint32_t                   i;
    MDB_val                    k, v;
    cef_store_rules_t          r;
    cef_store_rules_version_t  sv;

    memset(rs, 0, sizeof(cef_w_rs_t));
    rs->live = -1;
    rs->cand = -1;

    k.mv_data = (void *) key;
    k.mv_size = klen;

    rc = mdb_get(w->txn, w->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return cef_w_lmdb(w, "reading a rule set's versions", rc);
    }

    if (cef_store_rules_decode(key, klen, v.mv_data, v.mv_size, &r) != 0
        || r.nhistory > CEF_STORE_RULES_HISTORY)
    {
        cef_w_err(w, "the store's record of rule set \"%.*s\" is malformed",
                  (int) klen - 2, key + 2);
        return CEF_WRITER_ESTORE;
    }

    rs->version = r.version;
    rs->changed_at = r.changed_at;
    rs->mode = r.mode;
    rs->share = r.share;
    rs->live = r.live;
    rs->cand = r.candidate;
    rs->n = r.nhistory;

    for (i = 0; i < r.nhistory; i++) {
        (void) cef_store_rules_at(&r, i, &sv);
        memcpy(rs->h[i].sha, sv.sha256, 32);
        rs->h[i].version = sv.version;
        rs->h[i].created_at = sv.created_at;
        rs->h[i].live_at = sv.live_at;
        rs->h[i].state = sv.state;
        rs->h[i].llen = sv.label.len;
        memcpy(rs->h[i].label, sv.label.data, sv.label.len);
        rs->h[i].alen = sv.author.len;
        memcpy(rs->h[i].author, sv.author.data, sv.author.len);
    }

    return 0;
}


static int
cef_w_rs_store(cef_writer_t *w, const char *key, size_t klen, cef_w_rs_t *rs)
{
    int        rc;
    size_t     len = CEF_STORE_RULES_HEADER, off;
    uint8_t   *buf, *e;
    uint32_t   i;
    MDB_val    k, v;

    for (i = 0; i < rs->n; i++) {
        len += CEF_STORE_RULES_ENTRY + rs->h[i].llen + rs->h[i].alen;
    }

    buf = calloc(1, len);
    if (buf == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    buf[0] = CEF_STORE_RULES_FORMAT;
    buf[1] = (uint8_t) rs->mode;
    buf[2] = (uint8_t) rs->share;
    buf[3] = (uint8_t) (rs->share >> 8);
    buf[4] = (uint8_t) rs->n;
    buf[5] = (uint8_t) (rs->n >> 8);
    buf[6] = (uint8_t) ((uint16_t) (int16_t) rs->live);
    buf[7] = (uint8_t) ((uint16_t) (int16_t) rs->live >> 8);
    buf[8] = (uint8_t) ((uint16_t) (int16_t) rs->cand);
    buf[9] = (uint8_t) ((uint16_t) (int16_t) rs->cand >> 8);
    cef_store_put_le64(buf + 16, rs->version);
    cef_store_put_le64(buf + 24, (uint64_t) rs->changed_at);

    off = CEF_STORE_RULES_HEADER;
    for (i = 0; i < rs->n; i++) {
        e = buf + off;
        memcpy(e, rs->h[i].sha, 32);
        cef_store_put_le64(e + 32, rs->h[i].version);
        cef_store_put_le64(e + 40, (uint64_t) rs->h[i].created_at);
        cef_store_put_le64(e + 48, rs->h[i].live_at);
        e[56] = (uint8_t) rs->h[i].state;
        e[57] = (uint8_t) rs->h[i].llen;
        e[58] = (uint8_t) rs->h[i].alen;
        memcpy(e + CEF_STORE_RULES_ENTRY, rs->h[i].label, rs->h[i].llen);
        memcpy(e + CEF_STORE_RULES_ENTRY + rs->h[i].llen, rs->h[i].author,
               rs->h[i].alen);
        off += CEF_STORE_RULES_ENTRY + rs->h[i].llen + rs->h[i].alen;
    }

    k.mv_data = (void *) key;
    k.mv_size = klen;
    v.mv_data = buf;
    v.mv_size = len;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    free(buf);

    return rc ? cef_w_lmdb(w, "storing a rule set's versions", rc) : 0;
}


static int
cef_w_rs_find(const cef_w_rs_t *rs, const uint8_t *sha)
{
    uint32_t  i;

    for (i = 0; i < rs->n; i++) {
        if (memcmp(rs->h[i].sha, sha, 32) == 0) {
            return (int) i;
        }
    }

    return -1;
}


static int
cef_w_rs_source(cef_writer_t *w, const cef_pub_t *p, const uint8_t *sha,
    const msgpack_object *src)
{
    int      rc;
    char     key[3 + CEF_STORE_RULES_NAME_MAX + 32];
    MDB_val  k, v;

    k.mv_data = key;
    k.mv_size = cef_store_rules_source_key(key, p->name->via.str.ptr,
                                           p->name->via.str.size, sha);

    if (src == NULL) {
        rc = mdb_del(w->txn, w->meta, &k, NULL);
        return rc && rc != MDB_NOTFOUND
               ? cef_w_lmdb(w, "removing a rule set's source", rc) : 0;
    }

    v.mv_data = (void *) src->via.str.ptr;
    v.mv_size = src->via.str.size;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    return rc ? cef_w_lmdb(w, "storing a rule set's source", rc) : 0;
}


/* the history bound: drop the oldest versions that are neither live nor
   the candidate, with their sources */
static int
cef_w_rs_trim(cef_writer_t *w, const cef_pub_t *p, cef_w_rs_t *rs)
{
    int       rc;
    uint32_t  i;

    while (rs->n > CEF_STORE_RULES_HISTORY) {
        for (i = 0; i < rs->n; i++) {
            if ((int) i != rs->live && (int) i != rs->cand) {
                break;
            }
        }

        if ((rc = cef_w_rs_source(w, p, rs->h[i].sha, NULL)) != 0) {
            return rc;
        }

        memmove(&rs->h[i], &rs->h[i + 1], (rs->n - i - 1) * sizeof(cef_w_rv_t));
        rs->n--;

        if (rs->live > (int) i) {
            rs->live--;
        }
        if (rs->cand > (int) i) {
            rs->cand--;
        }
    }

    return 0;
}


static void
cef_w_rs_drop_candidate(cef_w_rs_t *rs, int state)
{
    if (rs->cand >= 0) {
        rs->h[rs->cand].state = state;
    }

    rs->cand = -1;
    rs->mode = CEF_STORE_RULES_NONE;
    rs->share = 0;
}


static void
cef_w_rs_make_live(cef_w_rs_t *rs, int i, uint64_t version, int old_state)
{
    if (rs->live >= 0 && rs->live != i) {
        rs->h[rs->live].state = old_state;
    }

    if (rs->cand == i) {
        rs->cand = -1;
        rs->mode = CEF_STORE_RULES_NONE;
        rs->share = 0;
    }

    rs->live = i;
    rs->h[i].state = CEF_STORE_RULES_STATE_LIVE;
    rs->h[i].live_at = version;
}


/* publish: 0 applied, 1 nothing to do (warned) */
static int
cef_w_rs_publish(cef_writer_t *w, const cef_pub_t *p, cef_w_rs_t *rs)
{
    int          i, rc;
    cef_w_rv_t  *e;

    i = cef_w_rs_find(rs, p->sha);

    if (i < 0) {
        i = (int) rs->n++;
        e = &rs->h[i];
        memset(e, 0, sizeof(cef_w_rv_t));
        memcpy(e->sha, p->sha, 32);
        e->state = CEF_STORE_RULES_STATE_HELD;

        if ((rc = cef_w_rs_source(w, p, p->sha, p->source)) != 0) {
            return -rc;
        }

    } else if (i == rs->live && p->mode != CEF_STORE_RULES_NONE) {
        cef_w_warn(w, "rules \"%.*s\": this version is live already; not "
                   "made a %s candidate", (int) p->name->via.str.size,
                   p->name->via.str.ptr, cef_store_rules_mode_name(p->mode));
        return 1;
    }

    e = &rs->h[i];
    e->version = p->version;
    e->created_at = p->created_at;

    if (p->label) {
        e->llen = p->label->via.str.size;
        memcpy(e->label, p->label->via.str.ptr, e->llen);
    }

    if (p->author) {
        e->alen = p->author->via.str.size;
        memcpy(e->author, p->author->via.str.ptr, e->alen);
    }

    if (p->mode == CEF_STORE_RULES_NONE) {
        if (rs->cand >= 0 && rs->cand != i) {
            cef_w_rs_drop_candidate(rs, CEF_STORE_RULES_STATE_DROPPED);
        }
        cef_w_rs_make_live(rs, i, p->version, CEF_STORE_RULES_STATE_RETIRED);
        return 0;
    }

    if (rs->cand >= 0 && rs->cand != i) {
        cef_w_rs_drop_candidate(rs, CEF_STORE_RULES_STATE_DROPPED);
    }

    rs->cand = i;
    rs->mode = p->mode;
    rs->share = p->share;
    e->state = p->mode == CEF_STORE_RULES_CANARY
               ? CEF_STORE_RULES_STATE_CANARY : CEF_STORE_RULES_STATE_SHADOW;

    return 0;
}


static int
cef_w_rs_promote(cef_writer_t *w, const cef_pub_t *p, cef_w_rs_t *rs)
{
    if (rs->cand < 0) {
        cef_w_warn(w, "rules \"%.*s\": no candidate to promote",
                   (int) p->name->via.str.size, p->name->via.str.ptr);
        return 1;
    }

    if (p->has_hash && memcmp(rs->h[rs->cand].sha, p->sha, 32) != 0) {
        cef_w_warn(w, "rules \"%.*s\": the candidate is not the version the "
                   "promote names; nothing promoted",
                   (int) p->name->via.str.size, p->name->via.str.ptr);
        return 1;
    }

    cef_w_rs_make_live(rs, rs->cand, p->version,
                       CEF_STORE_RULES_STATE_RETIRED);
    return 0;
}


static int
cef_w_rs_rollback(cef_writer_t *w, const cef_pub_t *p, cef_w_rs_t *rs)
{
    int       i, best = -1;
    uint32_t  j;

    if (p->has_hash) {
        i = cef_w_rs_find(rs, p->sha);

        if (i < 0) {
            cef_w_warn(w, "rules \"%.*s\": rollback to a version the store "
                       "does not hold (the last %d are kept)",
                       (int) p->name->via.str.size, p->name->via.str.ptr,
                       CEF_STORE_RULES_HISTORY);
            return 1;
        }

        cef_w_rs_drop_candidate(rs, CEF_STORE_RULES_STATE_ROLLED_BACK);

        if (i == rs->live) {
            return 0;
        }

        cef_w_rs_make_live(rs, i, p->version,
                           CEF_STORE_RULES_STATE_ROLLED_BACK);
        return 0;
    }

    /* a candidate is withdrawn first; the live version stays */

    if (rs->cand >= 0) {
        cef_w_rs_drop_candidate(rs, CEF_STORE_RULES_STATE_ROLLED_BACK);
        return 0;
    }

    /* back to the version live most recently before this one */

    for (j = 0; j < rs->n; j++) {
        if ((int) j != rs->live && rs->h[j].live_at > 0
            && rs->h[j].state == CEF_STORE_RULES_STATE_RETIRED
            && (best < 0 || rs->h[j].live_at > rs->h[best].live_at))
        {
            best = (int) j;
        }
    }

    if (best < 0) {
        cef_w_warn(w, "rules \"%.*s\": no earlier live version to roll back "
                   "to", (int) p->name->via.str.size, p->name->via.str.ptr);
        return 1;
    }

    cef_w_rs_make_live(rs, best, p->version,
                       CEF_STORE_RULES_STATE_ROLLED_BACK);
    return 0;
}


static int
cef_w_apply_rules(cef_writer_t *w, const cef_pub_t *p,
    cef_writer_result_t *res)
{
    int          rc;
    char         key[2 + CEF_STORE_RULES_NAME_MAX];
    size_t       klen;
    cef_w_rs_t  *rs;

    klen = cef_store_rules_key(key, p->name->via.str.ptr,
                               p->name->via.str.size);

    rs = malloc(sizeof(cef_w_rs_t));
    if (rs == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    rc = cef_w_rs_load(w, key, klen, rs);
    if (rc != 0) {
        goto done;
    }

    if (p->version <= rs->version) {
        res->stale++;
        goto done;
    }

    switch (p->action) {
    case CEF_W_PUBLISH:  rc = cef_w_rs_publish(w, p, rs); break;
    case CEF_W_PROMOTE:  rc = cef_w_rs_promote(w, p, rs); break;
    default:             rc = cef_w_rs_rollback(w, p, rs); break;
    }

    if (rc < 0) {
        rc = -rc;
        goto done;
    }

    if (rc > 0) {
        res->ignored++;
    } else {
        res->published++;
    }

    /* the version advances either way: a replay finds nothing to do */

    rs->version = p->version;
    rs->changed_at = time(NULL);

    if ((rc = cef_w_rs_trim(w, p, rs)) != 0
        || (rc = cef_w_rs_store(w, key, klen, rs)) != 0)
    {
        goto done;
    }

    rc = cef_w_pub_bump(w);

done:

    free(rs);
    return rc;
}


int
cef_w_publish_apply(cef_writer_t *w, const cef_pub_t *p,
    cef_writer_result_t *res)
{
    return p->kind == 'w' ? cef_w_apply_weights(w, p, res)
                          : cef_w_apply_rules(w, p, res);
}


/* --- loads ---------------------------------------------------------------- */


static int
cef_w_is_published_key(const MDB_val *k)
{
    return (k->mv_size == sizeof(CEF_STORE_META_PUBLISHED) - 1
            && memcmp(k->mv_data, CEF_STORE_META_PUBLISHED, k->mv_size) == 0)
           || (k->mv_size > 2
               && (memcmp(k->mv_data, CEF_STORE_META_WEIGHTS, 2) == 0
                   || memcmp(k->mv_data, CEF_STORE_META_RULES, 2) == 0
                   || memcmp(k->mv_data, CEF_STORE_META_SOURCE, 2) == 0));
}


/*
 * The child's half of the carry-over: the previous generation's published
 * records, each as u32 key length, u32 value length, key, value, to fd.
 * Exits 0 when all were written, 1 when the generation cannot be read.
 */
static void
cef_w_carry_child(const char *oldpath, int fd)
{
    int          rc;
    FILE        *out;
    uint32_t     len[2];
    MDB_env     *env = NULL;
    MDB_txn     *txn = NULL;
    MDB_dbi      dbi;
    MDB_val      k, v;
    MDB_cursor  *cur = NULL;

    /* a fault must end the child, not run a handler of the parent's */
    signal(SIGBUS, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGFPE, SIG_DFL);
    signal(SIGILL, SIG_DFL);

    out = fdopen(fd, "wb");

    /*
     * MDB_NOLOCK: no reader slot, no handle on the old lock.mdb (closing
     * one would drop the fcntl locks of a reader of that generation in
     * the parent's process image).  Safe: the parent holds the write lock.
     */
    if (out == NULL
        || (rc = mdb_env_create(&env)) != 0
        || (rc = mdb_env_set_maxdbs(env, 8)) != 0
        || (rc = mdb_env_open(env, oldpath, MDB_RDONLY | MDB_NOLOCK, 0644))
           != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_META, 0, &dbi)) != 0
        || (rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
    {
        _exit(1);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (!cef_w_is_published_key(&k)) {
            continue;
        }

        len[0] = (uint32_t) k.mv_size;
        len[1] = (uint32_t) v.mv_size;

        if (fwrite(len, sizeof(len), 1, out) != 1
            || fwrite(k.mv_data, 1, k.mv_size, out) != k.mv_size
            || fwrite(v.mv_data, 1, v.mv_size, out) != v.mv_size)
        {
            _exit(1);
        }
    }

    _exit(rc == MDB_NOTFOUND && fflush(out) == 0 ? 0 : 1);
}


/*
 * A load keeps the previous generation's published records.  They are
 * read in a child process: LMDB trusts the file it maps, and a previous
 * generation damaged in place (the very case a load repairs) can SIGBUS
 * or SIGSEGV whoever walks it.  If the child fails, the load goes on
 * without them, and says so.
 */
int
cef_w_publish_carry(cef_writer_t *w, const char *oldpath, uint64_t *carried)
{
    int        fds[2], status, rc = 0, bad = 0;
    char      *buf = NULL;
    size_t     len = 0, cap = 0, off;
    pid_t      pid;
    ssize_t    n;
    uint32_t   kl, vl;
    MDB_val    k, v;

    *carried = 0;

    if (oldpath[0] == '\0') {
        return 0;
    }

    if (pipe(fds) != 0) {
        cef_w_err(w, "pipe: %s", strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    fflush(NULL);
    pid = fork();

    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        cef_w_err(w, "fork: %s", strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    if (pid == 0) {
        close(fds[0]);
        cef_w_carry_child(oldpath, fds[1]);
    }

    close(fds[1]);

    for ( ;; ) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                bad = -1;
                break;
            }
            buf = nb;
        }

        n = read(fds[0], buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
    }

    close(fds[0]);

    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        /* void */
    }

    if (bad < 0) {
        free(buf);
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cef_w_warn(w, "the previous generation \"%s\" cannot be read (%s): "
                   "its published weights and rule sets are not carried "
                   "over; publish them again", oldpath,
                   WIFSIGNALED(status) ? "it is damaged: reading it "
                   "crashed" : "not a readable LMDB environment");
        free(buf);
        return 0;
    }

    for (off = 0; off + 8 <= len; off += 8 + kl + vl) {
        memcpy(&kl, buf + off, 4);
        memcpy(&vl, buf + off + 4, 4);

        if (kl > len - off - 8 || vl > len - off - 8 - kl) {
            break;
        }

        k.mv_data = buf + off + 8;
        k.mv_size = kl;
        v.mv_data = buf + off + 8 + kl;
        v.mv_size = vl;

        rc = mdb_put(w->txn, w->meta, &k, &v, 0);
        if (rc != 0) {
            free(buf);
            return cef_w_lmdb(w, "carrying published records over", rc);
        }

        (*carried)++;
    }

    free(buf);
    return 0;
}
