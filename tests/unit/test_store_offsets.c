/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Stream offsets and stream sessions (cef-sync consume): a snapshot's
 * "kafka" header stored by a load, records applied one at a time and
 * committed with their offsets in one transaction, bad records leaving the
 * batch intact, an abandoned batch leaving nothing, the metadata's
 * updated_at advanced by each commit, malformed offset records rejected.
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
#include <unistd.h>
#include <cmocka.h>

#include <lmdb.h>
#include <msgpack.h>

#include "cef_identity.h"
#include "cef_input.h"
#include "cef_store.h"
#include "cef_writer.h"


static char             tmpdir[512];
static char             store[600];
static cef_identity_t  *ident;
static char             err[2048];


#define SNAP(kafka) \
    "{\"cef\":\"snapshot\",\"version\":1,\"id\":\"S\"," \
    "\"created_at\":1700000000" kafka "}\n" \
    "{\"id\":\"p1\",\"keys\":[[\"email\",\"ann@example.com\"]]," \
    "\"attrs\":{\"n\":1}}\n" \
    "{\"end\":true,\"count\":1}\n"


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

    snprintf(tmpdir, sizeof(tmpdir), "%s/cef-test-offsets-XXXXXX",
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


static int
load(const char *text)
{
    int                  rc;
    cef_input_t         *in;
    cef_writer_conf_t    conf;
    cef_writer_result_t  res;

    rm_rf(store);

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = ident;
    conf.map_size = 64 << 20;
    conf.wait = 1;

    in = cef_input_open_mem(text, strlen(text));
    rc = cef_writer_load(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);

    return rc;
}


static cef_writer_stream_t *
stream_open(cef_store_offsets_t *o)
{
    cef_writer_conf_t    conf;
    cef_writer_stream_t  *s;

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = ident;
    conf.wait = 1;

    assert_int_equal(cef_writer_stream_open(&s, &conf, o, err, sizeof(err)),
                     CEF_WRITER_OK);
    return s;
}


/* A record from JSON text, into a zone. */

static msgpack_object
rec(msgpack_zone *z, msgpack_sbuffer *sb, const char *json)
{
    size_t                  off = 0;
    cef_input_t            *in;
    msgpack_object          o;
    const msgpack_object   *r;

    in = cef_input_open_mem(json, strlen(json));
    assert_int_equal(cef_input_next(in, &r, err, sizeof(err)), 1);

    /* copy out of the reader: pack and unpack into the zone */
    msgpack_sbuffer_clear(sb);
    {
        msgpack_packer  pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *r);
    }
    cef_input_close(in);

    assert_int_equal(msgpack_unpack(sb->data, sb->size, &off, z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    return o;
}


typedef struct {
    int64_t           n;           /* attribute "n" of p, -1 if absent */
    int               found;
    cef_store_info_t  info;
    cef_store_offsets_t  o;
    int               orc;
} look_t;


static void
look(const char *id, look_t *l)
{
    cef_store_t    *s;
    cef_profile_t   p;
    cef_value_t     v;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);

    l->n = -1;
    l->found = cef_store_lookup_id(s, ident, id, strlen(id), &p)
               == CEF_STORE_OK;
    if (l->found && cef_profile_get(&p, cef_span_lit("n"), &v) == 1
        && v.type == CEF_VAL_INT)
    {
        l->n = v.u.i;
    }

    cef_store_info(s, &l->info);
    l->orc = cef_store_offsets(s, &l->o);

    cef_store_end(s);
    cef_store_close(s);
}


static void
test_snapshot_offsets(void **state)
{
    static look_t  l;

    (void) state;

    assert_int_equal(load(SNAP(",\"kafka\":{\"topic\":\"cef.p\","
                               "\"offsets\":{\"0\":17,\"2\":5}}")),
                     CEF_WRITER_OK);
    look("p1", &l);
    assert_int_equal(l.orc, CEF_STORE_OK);
    assert_string_equal(l.o.topic, "cef.p");
    assert_int_equal(l.o.partitions, 3);
    assert_int_equal(l.o.next[0], 17);
    assert_int_equal(l.o.next[1], -1);
    assert_int_equal(l.o.next[2], 5);

    /* no header field: no offsets */
    assert_int_equal(load(SNAP("")), CEF_WRITER_OK);
    look("p1", &l);
    assert_int_equal(l.orc, CEF_STORE_NOTFOUND);
    assert_int_equal(l.o.partitions, 0);

    /* bad ones are bad input */
    assert_int_equal(load(SNAP(",\"kafka\":{\"topic\":\"t\","
                               "\"offsets\":{\"1024\":1}}")),
                     CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "a partition must be a number from 0 to "
                                "1023"));
    assert_int_equal(load(SNAP(",\"kafka\":{\"topic\":\"t\","
                               "\"offsets\":{\"01x\":1}}")),
                     CEF_WRITER_EINPUT);
    assert_int_equal(load(SNAP(",\"kafka\":{\"topic\":\"t\"}")),
                     CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "record 1 (byte 0): kafka.offsets"));
}


static void
test_stream_batches(void **state)
{
    int                         rc;
    msgpack_zone                z;
    msgpack_sbuffer             sb;
    msgpack_object              r;
    cef_writer_result_t         res;
    cef_writer_stream_t         *s;
    static cef_store_offsets_t  o;
    static look_t               l, l0;

    (void) state;

    msgpack_zone_init(&z, 4096);
    msgpack_sbuffer_init(&sb);
    memset(&res, 0, sizeof(res));

    assert_int_equal(load(SNAP("")), CEF_WRITER_OK);
    look("p1", &l0);

    s = stream_open(&o);
    assert_int_equal(o.partitions, 0);
    assert_string_equal(o.topic, "");

    /* seq is optional in a stream */
    r = rec(&z, &sb, "{\"op\":\"patch\",\"id\":\"p1\",\"set\":{\"n\":2}}");
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_OK);

    /* a bad record: reported without a record number, the batch goes on */
    r = rec(&z, &sb, "{\"op\":\"rename\",\"id\":\"p1\"}");
    rc = cef_writer_stream_record(s, &r, &res, err, sizeof(err));
    assert_int_equal(rc, CEF_WRITER_EINPUT);
    assert_string_equal(err, "unknown op \"rename\"");
    r = rec(&z, &sb, "{\"seq\":0,\"op\":\"patch\",\"id\":\"p1\"}");
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_EINPUT);

    r = rec(&z, &sb, "{\"seq\":5,\"op\":\"upsert\",\"id\":\"p2\","
                     "\"keys\":[[\"email\",\"bob@example.com\"]],"
                     "\"attrs\":{\"n\":1}}");
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_OK);

    /* nothing is visible before the commit */
    look("p1", &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.orc, CEF_STORE_NOTFOUND);

    strcpy(o.topic, "cef.p");
    o.partitions = 2;
    o.next[0] = 3;
    o.next[1] = -1;
    sleep(1);
    assert_int_equal(cef_writer_stream_commit(s, &o, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    assert_int_equal(res.batches, 1);
    assert_int_equal(res.applied, 2);

    look("p1", &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.orc, CEF_STORE_OK);
    assert_string_equal(l.o.topic, "cef.p");
    assert_int_equal(l.o.partitions, 1);
    assert_int_equal(l.o.next[0], 3);
    assert_int_equal(l.info.last_seq, 0);        /* seq is not stored */
    assert_true(l.info.updated_at > l0.info.updated_at);
    assert_int_equal(l.info.profiles, 2);
    look("p2", &l);
    assert_int_equal(l.n, 1);

    /* a tombstone, then the session closes without a commit */
    assert_int_equal(cef_writer_stream_erase(s, "p2", 2, &res, err,
                                            sizeof(err)), CEF_WRITER_OK);
    assert_int_equal(cef_writer_stream_erase(s, "", 0, &res, err,
                                            sizeof(err)), CEF_WRITER_EINPUT);
    o.next[0] = 4;
    cef_writer_stream_close(s);

    look("p2", &l);
    assert_true(l.found);
    assert_int_equal(l.o.next[0], 3);

    /* a new session sees the committed offsets; erase for real */
    s = stream_open(&o);
    assert_string_equal(o.topic, "cef.p");
    assert_int_equal(o.next[0], 3);
    assert_int_equal(cef_writer_stream_erase(s, "p2", 2, &res, err,
                                            sizeof(err)), CEF_WRITER_OK);
    assert_int_equal(cef_writer_stream_erase(s, "nobody", 6, &res, err,
                                            sizeof(err)), CEF_WRITER_OK);
    o.next[0] = 5;
    assert_int_equal(cef_writer_stream_commit(s, &o, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    cef_writer_stream_close(s);

    look("p2", &l);
    assert_false(l.found);
    assert_int_equal(l.info.profiles, 1);
    assert_int_equal(l.info.keys, 1);
    assert_int_equal(l.o.next[0], 5);

    assert_int_equal(cef_writer_verify(store, ident, NULL, NULL,
                                      &(cef_writer_verify_result_t) { 0 }, err,
                                      sizeof(err)), CEF_WRITER_OK);

    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
}


/* a record of ops on p1 (and p3), with n distinct generated strings */
static const char *
big_record(char *buf, size_t size, const char *what, int round, int n)
{
    int     i;
    size_t  len;

    if (strcmp(what, "set") == 0) {
        len = (size_t) snprintf(buf, size, "{\"op\":\"patch\",\"id\":\"p1\","
                                "\"set\":{\"a%d\":[", round);
        for (i = 0; i < n; i++) {
            len += (size_t) snprintf(buf + len, size - len, "%s\"s%d-%d\"",
                                     i ? "," : "", round, i);
        }
        snprintf(buf + len, size - len, "]}}");

    } else {
        /* "add" keys to p1, or "upsert" p3 with them */
        len = (size_t) snprintf(buf, size, strcmp(what, "add") == 0
                                ? "{\"op\":\"keys\",\"id\":\"p1\",\"add\":["
                                : "{\"op\":\"upsert\",\"id\":\"p3\","
                                  "\"attrs\":{},\"keys\":[");
        for (i = 0; i < n; i++) {
            len += (size_t) snprintf(buf + len, size - len,
                                     "%s[\"device\",\"d%d-%d\"]",
                                     i ? "," : "", round, i);
        }
        snprintf(buf + len, size - len, "]}");
    }

    return buf;
}


/* Records of big_record() until one is refused: its round, or -1. */
static int
until_refused(cef_writer_stream_t *s, msgpack_zone *z, msgpack_sbuffer *sb,
    char *buf, const char *what, int n, int rounds)
{
    int                  rc, round;
    msgpack_object       r;
    cef_writer_result_t  res;

    memset(&res, 0, sizeof(res));

    for (round = 0; round < rounds; round++) {
        r = rec(z, sb, big_record(buf, 65536, what, round, n));
        rc = cef_writer_stream_record(s, &r, &res, err, sizeof(err));
        if (rc == CEF_WRITER_EINPUT) {
            return round;
        }
        assert_int_equal(rc, CEF_WRITER_OK);
    }

    return -1;
}


static int
has_key(const char *id, const char *value)
{
    int             found;
    cef_store_t    *s;
    cef_profile_t   p;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    found = cef_store_lookup_key(s, ident, "device", 6, value, strlen(value),
                                 &p) == CEF_STORE_OK
            && p.id.len == strlen(id) && memcmp(p.id.data, id, p.id.len) == 0;
    cef_store_end(s);
    cef_store_close(s);

    return found;
}


static void
print_problem(void *data, const char *msg)
{
    (void) data;
    fprintf(stderr, "problem: %s\n", msg);
}


/*
 * Records over a limit of the stored state (a profile too large to store,
 * keys in too many index buckets) are bad records in a stream: refused
 * alone, before they write anything, and the batch goes on.
 */
static void
test_stream_limits(void **state)
{
    int                         refused;
    char                       *buf;
    msgpack_zone                z;
    msgpack_sbuffer             sb;
    msgpack_object              r;
    cef_writer_result_t         res;
    cef_writer_stream_t         *s;
    cef_writer_verify_result_t         v;
    static cef_store_offsets_t  o;
    static look_t               l;

    (void) state;

    buf = malloc(65536);
    assert_non_null(buf);
    msgpack_zone_init(&z, 4096);
    msgpack_sbuffer_init(&sb);
    memset(&res, 0, sizeof(res));

    assert_int_equal(load(SNAP("")), CEF_WRITER_OK);
    s = stream_open(&o);

    /* patches growing p1 until one would not fit */
    refused = until_refused(s, &z, &sb, buf, "set", 1000, 100);
    assert_true(refused > 0);
    assert_non_null(strstr(err, "the profile would take"));

    /* the batch goes on */
    r = rec(&z, &sb, "{\"op\":\"patch\",\"id\":\"p1\",\"set\":{\"n\":7}}");
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_OK);

    /* keys added to p1 until they would fill too many buckets */
    refused = until_refused(s, &z, &sb, buf, "add", 64, 20);
    assert_true(refused >= 3);
    assert_non_null(strstr(err, "index buckets"));

    /* a merge of another 64 keys into p1 is refused the same way */
    r = rec(&z, &sb, big_record(buf, 65536, "upsert", 99, 64));
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    r = rec(&z, &sb, "{\"op\":\"merge\",\"from\":\"p3\",\"into\":\"p1\"}");
    assert_int_equal(cef_writer_stream_record(s, &r, &res, err, sizeof(err)),
                     CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "index buckets"));

    /* o is as the session opened it, without a topic: no offsets written */
    assert_int_equal(cef_writer_stream_commit(s, &o, &res, err, sizeof(err)),
                     CEF_WRITER_OK);
    cef_writer_stream_close(s);

    /* what was refused left nothing; the rest is there */
    assert_int_equal(cef_writer_verify(store, ident, print_problem, NULL, &v,
                                      err, sizeof(err)), CEF_WRITER_OK);
    assert_int_equal(v.problems, 0);
    look("p1", &l);
    assert_int_equal(l.n, 7);
    assert_int_equal(l.info.profiles, 2);
    assert_true(has_key("p1", "d0-0"));
    assert_true(has_key("p1", "d0-63"));
    snprintf(buf, 64, "d%d-0", refused);
    assert_false(has_key("p1", buf));
    assert_true(has_key("p3", "d99-0"));

    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
    free(buf);
}


static void
test_stream_wrong_secret(void **state)
{
    cef_writer_conf_t    conf;
    cef_writer_stream_t  *s;
    cef_identity_t      *other;
    static cef_store_offsets_t  o;

    (void) state;

    assert_int_equal(load(SNAP("")), CEF_WRITER_OK);
    other = cef_identity_create((const uint8_t *) "other", 5, err,
                                sizeof(err));

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = other;
    conf.wait = 1;

    assert_int_equal(cef_writer_stream_open(&s, &conf, &o, err, sizeof(err)),
                     CEF_WRITER_EINPUT);
    assert_null(s);

    conf.dir = tmpdir;      /* no store there */
    conf.ident = ident;
    assert_int_equal(cef_writer_stream_open(&s, &conf, &o, err, sizeof(err)),
                     CEF_WRITER_ESTORE);

    cef_identity_free(other);
}


static void
verify_msg(void *data, const char *msg)
{
    snprintf(data, 512, "%s", msg);
}


/* verify checks that stored offsets decode */

static void
test_verify_offsets(void **state)
{
    char                 path[1024], msg[512] = "";
    uint64_t             gen;
    MDB_env             *env;
    MDB_txn             *txn;
    MDB_dbi              meta;
    MDB_val              k, v;
    cef_writer_verify_result_t  res;

    (void) state;

    assert_int_equal(load(SNAP(",\"kafka\":{\"topic\":\"t\","
                               "\"offsets\":{\"0\":1}}")), CEF_WRITER_OK);
    assert_int_equal(cef_writer_verify(store, ident, verify_msg, msg, &res,
                                      err, sizeof(err)), CEF_WRITER_OK);

    assert_int_equal(cef_store_current(store, path, sizeof(path), &gen), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, CEF_STORE_DB_META, 0, &meta), 0);
    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = strlen(CEF_STORE_META_KAFKA);
    v.mv_data = (void *) "\x81\xa5topic\x01";
    v.mv_size = 8;
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(cef_writer_verify(store, ident, verify_msg, msg, &res,
                                      err, sizeof(err)), CEF_WRITER_ESTORE);
    assert_non_null(strstr(msg, "stream offsets"));
}


static void
test_offsets_decode(void **state)
{
    msgpack_sbuffer             sb;
    msgpack_packer              pk;
    static cef_store_offsets_t  o;

    (void) state;

    assert_int_equal(cef_store_meta_offsets_decode("\xc1", 1, &o), -1);
    assert_int_equal(cef_store_meta_offsets_decode("", 0, &o), -1);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

#define STR(s) msgpack_pack_str(&pk, strlen(s)); \
               msgpack_pack_str_body(&pk, s, strlen(s))

    /* good */
    msgpack_pack_map(&pk, 2);
    STR("topic"); STR("t");
    STR("offsets"); msgpack_pack_map(&pk, 2);
    msgpack_pack_uint32(&pk, 1); msgpack_pack_uint64(&pk, 9);
    msgpack_pack_uint32(&pk, 1023); msgpack_pack_uint64(&pk, 0);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), 0);
    assert_int_equal(o.partitions, 1024);
    assert_int_equal(o.next[0], -1);
    assert_int_equal(o.next[1], 9);
    assert_int_equal(o.next[1023], 0);

    /* trailing bytes */
    msgpack_pack_nil(&pk);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), -1);

    /* a partition out of range, twice, a negative offset, no topic */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    STR("topic"); STR("t");
    STR("offsets"); msgpack_pack_map(&pk, 1);
    msgpack_pack_uint32(&pk, 1024); msgpack_pack_uint64(&pk, 9);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), -1);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    STR("topic"); STR("t");
    STR("offsets"); msgpack_pack_map(&pk, 2);
    msgpack_pack_uint32(&pk, 1); msgpack_pack_uint64(&pk, 9);
    msgpack_pack_uint32(&pk, 1); msgpack_pack_uint64(&pk, 10);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), -1);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    STR("topic"); STR("t");
    STR("offsets"); msgpack_pack_map(&pk, 1);
    msgpack_pack_uint32(&pk, 1); msgpack_pack_int64(&pk, -1);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), -1);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    STR("offsets"); msgpack_pack_map(&pk, 0);
    assert_int_equal(cef_store_meta_offsets_decode(sb.data, sb.size, &o), -1);

#undef STR

    msgpack_sbuffer_destroy(&sb);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_snapshot_offsets),
        cmocka_unit_test(test_stream_batches),
        cmocka_unit_test(test_stream_limits),
        cmocka_unit_test(test_stream_wrong_secret),
        cmocka_unit_test(test_verify_offsets),
        cmocka_unit_test(test_offsets_decode),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
