/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Published records in the store (issues 19 and 20): weights and rules
 * records through apply, load and stream sessions, read back with
 * cef_store_weights_* / cef_store_rules_*; the version rules (not newer:
 * unchanged and counted; same version, other weights: kept and counted as
 * a conflict), bad records leaving the store unchanged, the carry-over of a
 * full load, the history bound with its sources, the change stamp, and the
 * record size limits (only a rules record may pass 64 KiB).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <msgpack.h>
#include <openssl/evp.h>

#include "cef_identity.h"
#include "cef_input.h"
#include "cef_store.h"
#include "cef_store_rules.h"
#include "cef_store_weights.h"
#include "cef_writer.h"


static char             tmpdir[512];
static char             store[600];
static cef_identity_t  *ident;
static char             err[2048];
static int              notices;


#define SNAP_HEAD \
    "{\"cef\":\"snapshot\",\"version\":1,\"id\":\"S\"," \
    "\"created_at\":1700000000}\n" \
    "{\"id\":\"p1\",\"keys\":[[\"email\",\"ann@example.com\"]]," \
    "\"attrs\":{\"n\":1}}\n"
#define SNAP_END  "{\"end\":true,\"count\":1}\n"
#define DELTA     "{\"cef\":\"delta\",\"version\":1}\n"

#define W(seq, ver, a, b) \
    "{\"seq\":" #seq ",\"op\":\"weights\",\"experiment\":\"hero\"," \
    "\"salt\":\"hero\",\"version\":" #ver ",\"created_at\":1796600000," \
    "\"weights\":{\"spring\":" #a ",\"summer\":" #b "}}\n"


static void
rm_rf(const char *path)
{
    char            sub[1024];
    DIR            *d;
    struct dirent  *de;
    struct stat     st;

    if (lstat(path, &st) != 0) {
        return;
    }

    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }

    d = opendir(path);
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(path);
}


static int
setup(void **state)
{
    const char  *base;

    (void) state;

    base = getenv("CEF_TEST_TMP");
    if (base) {
        mkdir(base, 0755);
    }

    snprintf(tmpdir, sizeof(tmpdir), "%s/cef-test-publish-XXXXXX",
             base ? base : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(store, sizeof(store), "%s/store", tmpdir);

    ident = cef_identity_create((const uint8_t *) "unit-secret", 11, err,
                                sizeof(err));
    assert_non_null(ident);

    return 0;
}


static int
teardown(void **state)
{
    (void) state;

    rm_rf(tmpdir);
    cef_identity_free(ident);
    return 0;
}


static void
count_notice(void *data, const char *msg)
{
    (void) data;
    (void) msg;
    notices++;
}


static void
conf_init(cef_writer_conf_t *conf)
{
    memset(conf, 0, sizeof(cef_writer_conf_t));
    conf->dir = store;
    conf->ident = ident;
    conf->map_size = 64 << 20;
    conf->wait = 1;
    conf->notice = count_notice;
}


static int
load_keep(const char *text, cef_writer_result_t *res)
{
    int                  rc;
    cef_input_t         *in;
    cef_writer_conf_t    conf;

    conf_init(&conf);
    in = cef_input_open_mem(text, strlen(text));
    rc = cef_writer_load(&conf, in, res, err, sizeof(err));
    cef_input_close(in);

    return rc;
}


static int
load(const char *text)
{
    cef_writer_result_t  res;

    rm_rf(store);
    return load_keep(text, &res);
}


static int
apply(const char *text, cef_writer_result_t *res)
{
    int                  rc;
    cef_input_t         *in;
    cef_writer_conf_t    conf;

    conf_init(&conf);
    in = cef_input_open_mem(text, strlen(text));
    rc = cef_writer_apply(&conf, in, res, err, sizeof(err));
    cef_input_close(in);

    return rc;
}


/* the stored weights of hero as "spring=N summer=M vV", or "none" */
static void
weights(char *out, size_t size)
{
    size_t               pos = 0, n;
    cef_store_t         *s;
    cef_store_arm_t      arm;
    cef_store_weights_t  w;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);

    if (cef_store_weights_get(s, "hero", 4, "hero", 4, &w) != CEF_STORE_OK) {
        snprintf(out, size, "none");
    } else {
        n = 0;
        while (cef_store_weights_arm(&w, &pos, &arm)) {
            n += snprintf(out + n, size - n, "%.*s=%u ", (int) arm.name.len,
                          arm.name.data, arm.bp);
        }
        snprintf(out + n, size - n, "v%llu",
                 (unsigned long long) w.version);
    }

    cef_store_end(s);
    cef_store_close(s);
}


static void
test_weights_versions(void **state)
{
    char                 got[256];
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);
    weights(got, sizeof(got));
    assert_string_equal(got, "none");

    assert_int_equal(apply(DELTA W(1, 5, 4000, 6000), &res), CEF_WRITER_OK);
    assert_int_equal(res.published, 1);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=4000 summer=6000 v5");

    /* older: unchanged, counted; the same again: unchanged, no conflict */
    notices = 0;
    assert_int_equal(apply(DELTA W(2, 4, 1000, 9000) W(3, 5, 4000, 6000),
                           &res), CEF_WRITER_OK);
    assert_int_equal(res.published, 0);
    assert_int_equal(res.stale, 2);
    assert_int_equal(res.conflicts, 0);
    assert_int_equal(notices, 0);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=4000 summer=6000 v5");

    /* the same version with other weights: the stored stay, warned */
    assert_int_equal(apply(DELTA W(4, 5, 1000, 9000), &res), CEF_WRITER_OK);
    assert_int_equal(res.conflicts, 1);
    assert_int_equal(notices, 1);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=4000 summer=6000 v5");

    assert_int_equal(apply(DELTA W(5, 6, 1000, 9000), &res), CEF_WRITER_OK);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=1000 summer=9000 v6");
}


static void
test_weights_bad(void **state)
{
    size_t                    i;
    char                      got[256], text[1024];
    cef_writer_result_t       res;
    static const char *const  bad[] = {
        /* the arms add up to 9000 */
        "{\"seq\":9,\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":"
        "\"hero\",\"version\":9,\"created_at\":1,\"weights\":{\"a\":9000}}",
        /* an unknown field */
        "{\"seq\":9,\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":"
        "\"hero\",\"version\":9,\"created_at\":1,\"weights\":{\"a\":10000},"
        "\"colour\":1}",
        /* no experiment */
        "{\"seq\":9,\"op\":\"weights\",\"salt\":\"hero\",\"version\":9,"
        "\"created_at\":1,\"weights\":{\"a\":10000}}",
        /* version 0 */
        "{\"seq\":9,\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":"
        "\"hero\",\"version\":0,\"created_at\":1,\"weights\":{\"a\":10000}}",
        /* a weight that is not an integer */
        "{\"seq\":9,\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":"
        "\"hero\",\"version\":9,\"created_at\":1,\"weights\":{\"a\":0.5,"
        "\"b\":10000}}",
        /* a bad metric */
        "{\"seq\":9,\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":"
        "\"hero\",\"version\":9,\"created_at\":1,\"weights\":{\"a\":10000},"
        "\"metric\":\"clicks\"}",
    };

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);
    assert_int_equal(apply(DELTA W(1, 5, 4000, 6000), &res), CEF_WRITER_OK);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* a good record first: a bad one later leaves it unapplied too */
        snprintf(text, sizeof(text), "%s%s%s\n", DELTA, W(2, 7, 1, 9999),
                 bad[i]);
        assert_int_equal(apply(text, &res), CEF_WRITER_EINPUT);
        assert_non_null(strstr(err, "record 3 (byte"));
        weights(got, sizeof(got));
        assert_string_equal(got, "spring=4000 summer=6000 v5");
    }
}


static void
sha256_hex(const char *text, char *hex)
{
    unsigned char  md[32];
    unsigned int   n, i;

    assert_int_equal(EVP_Digest(text, strlen(text), md, &n, EVP_sha256(),
                                NULL), 1);
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}


/* a rules record; src NULL for promote/rollback; extra: more fields */
static char *
rules_rec(long seq, const char *action, long version, const char *src,
    const char *extra)
{
    static char  buf[70000 + 2048];
    char         hex[65];
    int          n;

    n = snprintf(buf, sizeof(buf), "{\"seq\":%ld,\"op\":\"rules\","
                 "\"name\":\"shop\",\"action\":\"%s\",\"version\":%ld,"
                 "\"created_at\":1796600000", seq, action, version);

    if (src) {
        sha256_hex(src, hex);
        n += snprintf(buf + n, sizeof(buf) - n, ",\"hash\":\"%s\","
                      "\"source\":\"%s\"", hex, src);
    }

    snprintf(buf + n, sizeof(buf) - n, "%s}\n", extra ? extra : "");
    return buf;
}


static int
apply_one(const char *record, cef_writer_result_t *res)
{
    char  text[80000];

    snprintf(text, sizeof(text), "%s%s", DELTA, record);
    return apply(text, res);
}


/* "STATE:first-4-of-source ..." newest first, and the live one */
static void
history(char *out, size_t size)
{
    size_t                      n = 0;
    uint32_t                    k;
    cef_store_t                *s;
    cef_store_rules_t           r;
    cef_store_rules_version_t   v;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);

    out[0] = '\0';

    if (cef_store_rules_get(s, "shop", 4, &r) == CEF_STORE_OK) {
        for (k = r.nhistory; k-- > 0; ) {
            assert_int_equal(cef_store_rules_at(&r, k, &v), 0);
            assert_int_equal(cef_store_rules_source(s, &r, &v),
                             CEF_STORE_OK);
            n += snprintf(out + n, size - n, "%s:%.*s ",
                          cef_store_rules_state_name(v.state),
                          (int) (v.source.len < 4 ? v.source.len : 4),
                          v.source.data);
        }
        if (r.candidate >= 0) {
            snprintf(out + n, size - n, "share=%u", r.share);
        }
    }

    cef_store_end(s);
    cef_store_close(s);
}


static void
test_rules_lifecycle(void **state)
{
    char                 got[512], rec2[4096];
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);

    assert_int_equal(apply_one(rules_rec(1, "publish", 10, "v1-a", NULL),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "live:v1-a ");

    assert_int_equal(apply_one(rules_rec(2, "publish", 20, "v2-b",
                     ",\"rollout\":{\"mode\":\"canary\",\"share\":10}"),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "canary:v2-b live:v1-a share=1000");

    /* a replay (version not newer) changes nothing */
    assert_int_equal(apply_one(rules_rec(3, "promote", 20, NULL, NULL),
                               &res), CEF_WRITER_OK);
    assert_int_equal(res.stale, 1);
    history(got, sizeof(got));
    assert_string_equal(got, "canary:v2-b live:v1-a share=1000");

    assert_int_equal(apply_one(rules_rec(4, "promote", 30, NULL, NULL),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "live:v2-b retired:v1-a ");

    /* nothing to promote: warned, counted, unchanged */
    notices = 0;
    assert_int_equal(apply_one(rules_rec(5, "promote", 31, NULL, NULL),
                               &res), CEF_WRITER_OK);
    assert_int_equal(res.ignored, 1);
    assert_int_equal(notices, 1);

    assert_int_equal(apply_one(rules_rec(6, "rollback", 40, NULL, NULL),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "rolled-back:v2-b live:v1-a ");

    /* shadow, then a rollback withdraws the candidate, live stays */
    assert_int_equal(apply_one(rules_rec(7, "publish", 50, "v3-c",
                     ",\"rollout\":{\"mode\":\"shadow\",\"share\":5}"),
                               &res), CEF_WRITER_OK);
    assert_int_equal(apply_one(rules_rec(8, "rollback", 60, NULL, NULL),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "rolled-back:v3-c rolled-back:v2-b live:v1-a ");

    /* rollback --to a named version */
    char hex[65];
    sha256_hex("v2-b", hex);
    snprintf(rec2, sizeof(rec2), ",\"to\":\"%s\"", hex);
    assert_int_equal(apply_one(rules_rec(9, "rollback", 70, NULL, rec2),
                               &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "rolled-back:v3-c live:v2-b rolled-back:v1-a ");
}


static void
test_rules_bad(void **state)
{
    char                 got[512], text[4096];
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);
    assert_int_equal(apply_one(rules_rec(1, "publish", 10, "v1-a", NULL),
                               &res), CEF_WRITER_OK);

    /* a hash that is not the source's */
    snprintf(text, sizeof(text), "%s", rules_rec(2, "publish", 20, "v2-b",
                                                 NULL));
    memcpy(strstr(text, "\"hash\":\"") + 8, "00", 2);
    assert_int_equal(apply_one(text, &res), CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "is not the SHA-256 of"));

    assert_int_equal(apply_one(rules_rec(2, "publish", 20, "v2-b",
                     ",\"rollout\":{\"mode\":\"canary\",\"share\":0}"),
                               &res), CEF_WRITER_EINPUT);
    assert_int_equal(apply_one(rules_rec(2, "deploy", 20, NULL, NULL),
                               &res), CEF_WRITER_EINPUT);
    assert_int_equal(apply_one(rules_rec(2, "publish", 20, NULL, NULL),
                               &res), CEF_WRITER_EINPUT);

    history(got, sizeof(got));
    assert_string_equal(got, "live:v1-a ");
}


static void
test_rules_history_bound(void **state)
{
    int                  i;
    char                 src[32], got[4096];
    char                 text[64 * 256 + 64];
    size_t               n;
    cef_store_t         *s;
    cef_store_rules_t    r;
    cef_store_rules_version_t  v;
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);

    /* one live version, then 60 canaries replacing each other */
    n = snprintf(text, sizeof(text), DELTA "%s",
                 rules_rec(1, "publish", 1, "live-0", NULL));
    for (i = 1; i <= 60; i++) {
        snprintf(src, sizeof(src), "c%03d", i);
        n += snprintf(text + n, sizeof(text) - n, "%s",
                      rules_rec(1 + i, "publish", 1 + i, src,
                      ",\"rollout\":{\"mode\":\"canary\",\"share\":1}"));
    }
    assert_int_equal(apply(text, &res), CEF_WRITER_OK);
    assert_int_equal(res.published, 61);

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(cef_store_rules_get(s, "shop", 4, &r), CEF_STORE_OK);
    assert_int_equal(r.nhistory, CEF_STORE_RULES_HISTORY);

    /* the live one is kept although oldest; the oldest canaries went */
    assert_int_equal(cef_store_rules_at(&r, (uint32_t) r.live, &v), 0);
    assert_int_equal(cef_store_rules_source(s, &r, &v), CEF_STORE_OK);
    assert_memory_equal(v.source.data, "live-0", 6);
    assert_int_equal(cef_store_rules_at(&r, 1, &v), 0);
    assert_int_equal(cef_store_rules_source(s, &r, &v), CEF_STORE_OK);
    assert_memory_equal(v.source.data, "c012", 4);

    /* c001's source is gone with it */
    {
        char         key[256];
        size_t       klen, vlen;
        const void  *val;
        uint8_t      sha[32];
        unsigned int mdn;

        EVP_Digest("c001", 4, sha, &mdn, EVP_sha256(), NULL);
        klen = cef_store_rules_source_key(key, "shop", 4, sha);
        assert_int_equal(cef_store_meta_get(s, key, klen, &val, &vlen),
                         CEF_STORE_NOTFOUND);
    }

    cef_store_end(s);
    cef_store_close(s);
    (void) got;
}


static void
test_load_carries(void **state)
{
    char                 got[512];
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD
        "{\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":\"hero\","
        "\"version\":3,\"created_at\":1,\"weights\":{\"spring\":10000}}\n"
        SNAP_END), CEF_WRITER_OK);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=10000 v3");

    assert_int_equal(apply_one(rules_rec(1, "publish", 10, "v1-a", NULL),
                               &res), CEF_WRITER_OK);

    /* a new snapshot without them keeps them */
    assert_int_equal(load_keep(SNAP_HEAD SNAP_END, &res), CEF_WRITER_OK);
    assert_true(res.carried >= 3);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=10000 v3");
    history(got, sizeof(got));
    assert_string_equal(got, "live:v1-a ");

    /* one with an older record keeps the newer stored one */
    assert_int_equal(load_keep(SNAP_HEAD
        "{\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":\"hero\","
        "\"version\":2,\"created_at\":1,\"weights\":{\"spring\":10000}}\n"
        SNAP_END, &res), CEF_WRITER_OK);
    assert_int_equal(res.stale, 1);

    /* a bad one fails the load; the store is as it was */
    assert_int_equal(load_keep(SNAP_HEAD
        "{\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":\"hero\","
        "\"version\":9,\"created_at\":1,\"weights\":{\"spring\":100}}\n"
        SNAP_END, &res), CEF_WRITER_EINPUT);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=10000 v3");

    /* a profile-delta op in a snapshot is refused */
    assert_int_equal(load_keep(SNAP_HEAD
        "{\"op\":\"delete\",\"id\":\"p1\"}\n" SNAP_END, &res),
        CEF_WRITER_EINPUT);
}


/*
 * A previous generation damaged in place (random data pages, the meta
 * pages intact: LMDB would walk garbage) must not stop the load that
 * replaces it: the carry-over is read in a child, which may crash.
 */
static void
test_load_over_a_damaged_generation(void **state)
{
    int                  fd, i;
    char                 path[700], got[256];
    uint8_t              junk[4096];
    struct stat          sb;
    off_t                off;
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD
        "{\"op\":\"weights\",\"experiment\":\"hero\",\"salt\":\"hero\","
        "\"version\":3,\"created_at\":1,\"weights\":{\"spring\":10000}}\n"
        SNAP_END), CEF_WRITER_OK);

    snprintf(path, sizeof(path), "%s/gen-1/data.mdb", store);
    assert_int_equal(stat(path, &sb), 0);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    srand(7);
    for (off = 2 * 4096; off < sb.st_size; off += sizeof(junk)) {
        for (i = 0; i < (int) sizeof(junk); i++) {
            junk[i] = (uint8_t) rand();
        }
        assert_int_equal(pwrite(fd, junk, sizeof(junk), off),
                         (ssize_t) sizeof(junk));
    }
    close(fd);

    notices = 0;
    assert_int_equal(load_keep(SNAP_HEAD SNAP_END, &res), CEF_WRITER_OK);
    assert_int_equal(res.carried, 0);
    assert_int_equal(notices, 1);
    weights(got, sizeof(got));
    assert_string_equal(got, "none");
}


static void
test_stamp(void **state)
{
    cef_store_t            *s;
    cef_store_pub_stamp_t   st;
    cef_writer_result_t     res;

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);

    memset(&st, 0, sizeof(st));
    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);

    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(cef_store_published_changed(s, &st), 1);
    assert_int_equal(cef_store_published_changed(s, &st), 0);
    cef_store_end(s);

    /* a profile delta: a new transaction, nothing published */
    assert_int_equal(apply(DELTA "{\"seq\":1,\"op\":\"patch\",\"id\":\"p1\","
                           "\"set\":{\"n\":2}}\n", &res), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(cef_store_published_changed(s, &st), 0);
    cef_store_end(s);

    assert_int_equal(apply(DELTA W(2, 5, 4000, 6000), &res), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(cef_store_published_changed(s, &st), 1);
    assert_int_equal(cef_store_published_changed(s, &st), 0);
    cef_store_end(s);

    /* a stale record: stored nothing, so no change */
    assert_int_equal(apply(DELTA W(3, 4, 4000, 6000), &res), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(cef_store_published_changed(s, &st), 0);
    cef_store_end(s);

    cef_store_close(s);
}


static void
test_stream(void **state)
{
    char                  got[256];
    size_t                off;
    cef_input_t          *in;
    msgpack_object        o;
    msgpack_zone          z;
    msgpack_sbuffer       sb;
    msgpack_packer        pk;
    cef_writer_conf_t     conf;
    cef_writer_stream_t  *s;
    cef_writer_result_t   res;
    cef_store_offsets_t   offs;
    const msgpack_object *r;
    const char           *json = "{\"op\":\"weights\",\"experiment\":\"hero\","
        "\"salt\":\"hero\",\"version\":8,\"created_at\":1,"
        "\"weights\":{\"spring\":2500,\"summer\":7500}}\n";

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);

    msgpack_zone_init(&z, 4096);
    msgpack_sbuffer_init(&sb);
    in = cef_input_open_mem(json, strlen(json));
    assert_int_equal(cef_input_next(in, &r, err, sizeof(err)), 1);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *r);
    cef_input_close(in);
    off = 0;
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);

    conf_init(&conf);
    memset(&res, 0, sizeof(res));

    /* an abandoned batch leaves nothing */
    assert_int_equal(cef_writer_stream_open(&s, &conf, &offs, err,
                                            sizeof(err)), CEF_WRITER_OK);
    assert_int_equal(cef_writer_stream_record(s, &o, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    cef_writer_stream_close(s);
    weights(got, sizeof(got));
    assert_string_equal(got, "none");

    /* committed with the offsets */
    assert_int_equal(cef_writer_stream_open(&s, &conf, &offs, err,
                                            sizeof(err)), CEF_WRITER_OK);
    assert_int_equal(cef_writer_stream_record(s, &o, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    snprintf(offs.topic, sizeof(offs.topic), "cef.profiles");
    offs.partitions = 1;
    offs.next[0] = 42;
    assert_int_equal(cef_writer_stream_commit(s, &offs, &res, err,
                                              sizeof(err)), CEF_WRITER_OK);
    cef_writer_stream_close(s);
    weights(got, sizeof(got));
    assert_string_equal(got, "spring=2500 summer=7500 v8");

    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&z);
}


static void
test_record_size(void **state)
{
    char                 *text, *src;
    size_t                n = 70000, len;
    cef_writer_result_t   res;
    char                  got[512];

    (void) state;

    assert_int_equal(load(SNAP_HEAD SNAP_END), CEF_WRITER_OK);

    src = malloc(n + 1);
    memset(src, 'x', n);
    src[n] = '\0';
    memcpy(src, "big-", 4);

    len = n + 4096;
    text = malloc(len);

    /* a 70 KB rules record passes */
    {
        char  hex[65];

        sha256_hex(src, hex);
        snprintf(text, len, DELTA "{\"seq\":1,\"op\":\"rules\",\"name\":"
                 "\"shop\",\"action\":\"publish\",\"version\":1,"
                 "\"created_at\":1,\"hash\":\"%s\",\"source\":\"%s\"}\n",
                 hex, src);
    }
    assert_int_equal(apply(text, &res), CEF_WRITER_OK);
    history(got, sizeof(got));
    assert_string_equal(got, "live:big- ");

    /* a 70 KB profile record does not */
    snprintf(text, len, DELTA "{\"seq\":2,\"op\":\"patch\",\"id\":\"p1\","
             "\"set\":{\"s\":\"%s\"}}\n", src);
    assert_int_equal(apply(text, &res), CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "record is larger than 65536 bytes"));

    free(text);
    free(src);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_weights_versions),
        cmocka_unit_test(test_weights_bad),
        cmocka_unit_test(test_rules_lifecycle),
        cmocka_unit_test(test_rules_bad),
        cmocka_unit_test(test_rules_history_bound),
        cmocka_unit_test(test_load_carries),
        cmocka_unit_test(test_load_over_a_damaged_generation),
        cmocka_unit_test(test_stamp),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_record_size),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
