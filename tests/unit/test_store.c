/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store end to end in a temporary directory: loads, deltas,
 * every bad input (and that it changes nothing), the reader API, a store
 * replaced under an open reader, a map grown under it, two writers.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "cef_identity.h"
#include "cef_input.h"
#include "cef_store.h"
#include "cef_writer.h"


static char             tmpdir[512];
static char             store[600];
static cef_identity_t  *ident;
static char             err[2048];


#define SNAP_HEAD(id) \
    "{\"cef\":\"snapshot\",\"version\":1,\"id\":\"" id "\"," \
    "\"created_at\":1700000000}\n"

#define P1 \
    "{\"id\":\"p1\",\"keys\":[[\"email\",\"ann@example.com\"]," \
    "[\"crm\",\"C-1\"]],\"attrs\":{\"segments\":[\"vip\",\"newsletter\"," \
    "\"x\"],\"clv\":1234.56,\"churn_risk\":0.23,\"nps\":9," \
    "\"lifecycle\":\"active\",\"first_name\":\"Ann\",\"gone\":null," \
    "\"consent_email\":true,\"consent_sms\":false,\"big\":-9007199254740993," \
    "\"pi\":3.141592653589793,\"interests\":{\"sports\":0.8,\"books\":2}}}\n"

#define P2 \
    "{\"id\":\"p2\",\"keys\":[[\"email\",\"bob@example.com\"]]," \
    "\"attrs\":{\"lifecycle\":\"active\",\"segments\":[\"vip\"]}}\n"

#define P3 \
    "{\"id\":\"p3\",\"keys\":[],\"attrs\":{}}\n"

#define SNAP_A  SNAP_HEAD("A") P1 P2 P3 "{\"end\":true,\"count\":3}\n"


static int
setup(void **state)
{
    const char  *base;

    (void) state;

    base = getenv("CEF_TEST_TMP");
    if (base) {
        mkdir(base, 0755);
    }

    snprintf(tmpdir, sizeof(tmpdir), "%s/cef-test-store-XXXXXX",
             base ? base : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(store, sizeof(store), "%s/store", tmpdir);

    ident = cef_identity_create((const uint8_t *) "unit-secret", 11, err,
                                sizeof(err));
    assert_non_null(ident);

    return 0;
}


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
teardown(void **state)
{
    (void) state;

    rm_rf(tmpdir);
    cef_identity_free(ident);
    return 0;
}


static int
fresh(void **state)
{
    (void) state;
    rm_rf(store);
    return 0;
}


static int
run(int load, const char *data, size_t map_size)
{
    int                  rc;
    cef_input_t         *in;
    cef_writer_conf_t    conf;
    cef_writer_result_t  res;

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = ident;
    conf.map_size = map_size;
    conf.batch = 2;

    in = cef_input_open_mem(data, strlen(data));
    assert_non_null(in);

    err[0] = '\0';
    rc = load ? cef_writer_load(&conf, in, &res, err, sizeof(err))
              : cef_writer_apply(&conf, in, &res, err, sizeof(err));

    cef_input_close(in);
    return rc;
}


static cef_store_t *
reader(void)
{
    cef_store_t  *s;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_OK);
    cef_store_set_check_interval(s, 0);
    return s;
}


static int
lookup(cef_store_t *s, const char *type, const char *value, cef_profile_t *p)
{
    return cef_store_lookup_key(s, ident, type, strlen(type), value,
                                strlen(value), p);
}


static int
get(const cef_profile_t *p, const char *name, cef_value_t *v)
{
    cef_span_t  n = { name, strlen(name) };

    return cef_profile_get(p, n, v);
}


static void
info(cef_store_info_t *i)
{
    cef_store_t  *s = reader();

    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_info(s, i);
    cef_store_end(s);
    cef_store_close(s);
}


static void
verify_ok(void)
{
    cef_writer_verify_result_t  vr;

    assert_int_equal(cef_writer_verify(store, ident, NULL, NULL, &vr, err,
                                      sizeof(err)), CEF_WRITER_OK);
}


static void
test_load_and_read(void **state)
{
    int               n;
    size_t            pos;
    double            d;
    cef_span_t        name;
    cef_value_t       v;
    cef_profile_t     p;
    cef_store_t      *s;
    cef_store_info_t  i;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);
    verify_ok();

    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);

    cef_store_info(s, &i);
    assert_string_equal(i.snapshot_id, "A");
    assert_int_equal(i.created_at, 1700000000);
    assert_int_equal(i.profiles, 3);
    assert_int_equal(i.keys, 3);
    assert_int_equal(i.last_seq, 0);
    assert_int_equal(i.generation, 1);
    assert_int_equal(cef_store_check_secret(s, ident), CEF_STORE_OK);

    assert_int_equal(lookup(s, "email", "ann@example.com", &p), CEF_STORE_OK);
    assert_int_equal(p.id.len, 2);
    assert_memory_equal(p.id.data, "p1", 2);

    assert_int_equal(get(&p, "clv", &v), 1);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 1234.56);
    assert_int_equal(get(&p, "churn_risk", &v), 1);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 0.23);
    assert_int_equal(get(&p, "pi", &v), 1);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 3.141592653589793);
    assert_int_equal(get(&p, "nps", &v), 1);
    assert_true(v.type == CEF_VAL_INT && v.u.i == 9);
    assert_int_equal(get(&p, "big", &v), 1);
    assert_true(v.type == CEF_VAL_INT && v.u.i == -9007199254740993LL);
    assert_int_equal(get(&p, "lifecycle", &v), 1);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 6
                && memcmp(v.u.s.data, "active", 6) == 0);
    assert_int_equal(get(&p, "first_name", &v), 1);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 3);
    assert_int_equal(get(&p, "gone", &v), 1);
    assert_int_equal(v.type, CEF_VAL_NIL);
    assert_int_equal(get(&p, "consent_sms", &v), 1);
    assert_true(v.type == CEF_VAL_BOOL && v.u.b == 0);
    assert_int_equal(get(&p, "segments", &v), 1);
    assert_int_equal(v.type, CEF_VAL_STR_ARRAY);
    assert_true(cef_value_array_contains(&v, cef_span_lit("newsletter")));
    assert_true(cef_value_array_contains(&v, cef_span_lit("x")));
    assert_int_equal(get(&p, "interests", &v), 1);
    assert_true(cef_value_map_get(&v, cef_span_lit("sports"), &d) && d == 0.8);
    assert_true(cef_value_map_get(&v, cef_span_lit("books"), &d) && d == 2);
    assert_int_equal(get(&p, "nope", &v), 0);
    assert_int_equal(cef_profile_validate(&p), 0);

    pos = 0;
    n = 0;
    while (cef_profile_next(&p, &pos, &name, &v) == 1) {
        n++;
    }
    assert_int_equal(n, 12);

    /* the same without the pointer cache, and again with it (cached) */
    cef_store_set_caching(s, 0);
    assert_int_equal(lookup(s, "crm", "C-1", &p), CEF_STORE_OK);
    assert_memory_equal(p.id.data, "p1", 2);
    cef_store_set_caching(s, 1);
    assert_int_equal(lookup(s, "email", "ann@example.com", &p), CEF_STORE_OK);
    assert_int_equal(get(&p, "nps", &v), 1);
    assert_int_equal(v.u.i, 9);

    /* the other key, the id, misses */
    assert_int_equal(lookup(s, "crm", "C-1", &p), CEF_STORE_OK);
    assert_memory_equal(p.id.data, "p1", 2);
    assert_int_equal(cef_store_lookup_id(s, ident, "p2", 2, &p), CEF_STORE_OK);
    assert_int_equal(get(&p, "clv", &v), 0);
    assert_int_equal(cef_store_lookup_id(s, ident, "p3", 2, &p), CEF_STORE_OK);
    assert_int_equal(p.nattrs, 0);
    assert_int_equal(lookup(s, "email", "nobody@example.com", &p),
                     CEF_STORE_NOTFOUND);
    assert_int_equal(lookup(s, "EMAIL", "ann@example.com", &p),
                     CEF_STORE_NOTFOUND);
    assert_int_equal(cef_store_lookup_id(s, ident, "p4", 2, &p),
                     CEF_STORE_NOTFOUND);

    cef_store_end(s);

    /* no session: an error, not a crash */
    assert_int_equal(lookup(s, "email", "ann@example.com", &p),
                     CEF_STORE_ERROR);
    assert_non_null(strstr(cef_store_strerror(s), "session"));

    cef_store_close(s);
}


static void
assert_unchanged(const char *snapshot_id, uint64_t gen, uint64_t last_seq)
{
    DIR               *d;
    struct dirent     *de;
    cef_store_info_t   i;

    info(&i);
    assert_string_equal(i.snapshot_id, snapshot_id);
    assert_int_equal(i.generation, gen);
    assert_int_equal(i.last_seq, last_seq);

    /* no temporary directory left behind */
    d = opendir(store);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        assert_true(strncmp(de->d_name, "tmp-", 4) != 0);
    }
    closedir(d);
}


static void
test_bad_snapshots(void **state)
{
    size_t   i;
    char    *big;

    static const struct {
        const char  *data;
        const char  *msg;
    } bad[] = {
        { SNAP_HEAD("B") P1 P2, "no trailer" },
        { SNAP_HEAD("B") P1 P2 "{\"end\":true,\"count\":3}\n", "count" },
        { SNAP_HEAD("B") "{\"id\":5,\"keys\":[],\"attrs\":{}}\n"
          "{\"end\":true,\"count\":1}\n", "record 2 (byte 64)" },
        { SNAP_HEAD("B") "{\"id\":\"x\",\"keys\":[],\"attrs\":{\"a\":[1]}}\n"
          "{\"end\":true,\"count\":1}\n", "attrs.a" },
        { SNAP_HEAD("B") "{\"id\":\"x\",\"keys\":[[\"email\"]],\"attrs\":{}}\n"
          "{\"end\":true,\"count\":1}\n", "keys[0]" },
        { SNAP_HEAD("B") "{\"id\":\"x\",\"keys\":[],\"attrs\":{}\n"
          "{\"end\":true,\"count\":1}\n", "malformed JSON" },
        { SNAP_HEAD("B") "{\"id\":\"x\",\"keys\":[],\"attrs\":{},\"y\":1}\n"
          "{\"end\":true,\"count\":1}\n", "unknown field \"y\"" },
        { "{\"cef\":\"delta\",\"version\":1}\n", "snapshot header" },
        { SNAP_HEAD("B") P1 P1 "{\"end\":true,\"count\":2}\n",
          "also belongs to the profile of record 2" },
        { SNAP_HEAD("B") P1
          "{\"id\":\"q\",\"keys\":[[\"crm\",\"C-1\"]],\"attrs\":{}}\n"
          "{\"end\":true,\"count\":2}\n", "a key also belongs" },
        { SNAP_HEAD("B") "{\"end\":true,\"count\":0}\n" P1, "after the trailer" },
        { "", "empty input" },
        { "[1,2]\n", "not a JSON object" },
    };

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run(1, bad[i].data, 0), CEF_WRITER_EINPUT);
        if (strstr(err, bad[i].msg) == NULL) {
            fail_msg("case %zu: \"%s\" not in \"%s\"", i, bad[i].msg, err);
        }
        if (bad[i].data[0] && strstr(err, "record ") == NULL) {
            fail_msg("case %zu: no record number in \"%s\"", i, err);
        }
        assert_unchanged("A", 1, 0);
    }

    /* a record over 64 KiB */
    big = malloc(70000 + 200);
    assert_non_null(big);
    strcpy(big, SNAP_HEAD("B") "{\"id\":\"x\",\"keys\":[],\"attrs\":{\"s\":\"");
    memset(big + strlen(big), 'a', 70000);
    big[strlen(SNAP_HEAD("B")) + 35 + 70000] = '\0';
    strcat(big, "\"}}\n{\"end\":true,\"count\":1}\n");
    assert_int_equal(run(1, big, 0), CEF_WRITER_EINPUT);
    assert_non_null(strstr(err, "larger than 65536"));
    assert_non_null(strstr(err, "record 2"));
    assert_unchanged("A", 1, 0);
    free(big);

    verify_ok();
}


static void
test_map_full(void **state)
{
    int    i;
    char  *data, *p;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    data = malloc(20000 * 120 + 200);
    assert_non_null(data);
    p = data + sprintf(data, SNAP_HEAD("C"));
    for (i = 0; i < 20000; i++) {
        p += sprintf(p, "{\"id\":\"id%d\",\"keys\":[[\"e\",\"%d\"]],"
                     "\"attrs\":{\"n\":\"%d-%d\"}}\n", i, i, i, i * 7);
    }
    sprintf(p, "{\"end\":true,\"count\":20000}\n");

    assert_int_equal(run(1, data, 256 * 1024), CEF_WRITER_ESTORE);
    assert_non_null(strstr(err, "map is full"));
    assert_non_null(strstr(err, "record "));
    assert_unchanged("A", 1, 0);

    /* and with room it loads */
    assert_int_equal(run(1, data, 0), CEF_WRITER_OK);
    assert_unchanged("C", 2, 0);
    verify_ok();
    free(data);
}


#define DELTA_HEAD  "{\"cef\":\"delta\",\"version\":1}\n"

static void
test_deltas(void **state)
{
    cef_value_t       v;
    cef_profile_t     p;
    cef_store_t      *s;
    cef_store_info_t  i;

    static const char  deltas[] =
        DELTA_HEAD
        "{\"seq\":1,\"op\":\"upsert\",\"id\":\"p4\","
        "\"keys\":[[\"email\",\"dan@example.com\"]],"
        "\"attrs\":{\"lifecycle\":\"new\",\"clv\":10.5}}\n"
        "{\"seq\":2,\"op\":\"upsert\",\"id\":\"p2\","
        "\"keys\":[[\"email\",\"bob2@example.com\"]],"
        "\"attrs\":{\"lifecycle\":\"lapsed\"}}\n"
        "{\"seq\":5,\"op\":\"patch\",\"id\":\"p1\",\"set\":{\"nps\":3,"
        "\"newattr\":\"hello world\"},\"unset\":[\"clv\",\"never\"]}\n"
        "{\"seq\":6,\"op\":\"keys\",\"id\":\"p3\","
        "\"add\":[[\"device\",\"d-1\"],[\"device\",\"d-2\"]],"
        "\"remove\":[[\"device\",\"zzz\"]]}\n"
        "{\"seq\":7,\"op\":\"keys\",\"id\":\"p3\",\"remove\":[[\"device\","
        "\"d-1\"]]}\n"
        "{\"seq\":8,\"op\":\"merge\",\"from\":\"p4\",\"into\":\"p3\"}\n"
        "{\"seq\":9,\"op\":\"delete\",\"id\":\"p2\"}\n"
        "{\"seq\":10,\"op\":\"patch\",\"id\":\"nobody\",\"set\":{}}\n";

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);
    assert_int_equal(run(0, deltas, 0), CEF_WRITER_OK);
    verify_ok();

    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_info(s, &i);
    assert_int_equal(i.last_seq, 10);
    assert_int_equal(i.profiles, 2);     /* p1, p3 (p2 deleted, p4 merged) */
    assert_int_equal(i.keys, 4);         /* ann, C-1, d-2, dan */
    assert_string_equal(i.snapshot_id, "A");

    /* patch */
    assert_int_equal(lookup(s, "email", "ann@example.com", &p), CEF_STORE_OK);
    assert_int_equal(get(&p, "nps", &v), 1);
    assert_int_equal(v.u.i, 3);
    assert_int_equal(get(&p, "clv", &v), 0);
    assert_int_equal(get(&p, "newattr", &v), 1);
    assert_int_equal(v.u.s.len, 11);
    assert_int_equal(get(&p, "segments", &v), 1);

    /* upsert replaced p2's key set, then delete erased it all */
    assert_int_equal(lookup(s, "email", "bob@example.com", &p),
                     CEF_STORE_NOTFOUND);
    assert_int_equal(lookup(s, "email", "bob2@example.com", &p),
                     CEF_STORE_NOTFOUND);
    assert_int_equal(cef_store_lookup_id(s, ident, "p2", 2, &p),
                     CEF_STORE_NOTFOUND);

    /* keys and merge: p4's key now finds p3; p4 is gone */
    assert_int_equal(lookup(s, "device", "d-1", &p), CEF_STORE_NOTFOUND);
    assert_int_equal(lookup(s, "device", "d-2", &p), CEF_STORE_OK);
    assert_memory_equal(p.id.data, "p3", 2);
    assert_int_equal(lookup(s, "email", "dan@example.com", &p), CEF_STORE_OK);
    assert_memory_equal(p.id.data, "p3", 2);
    assert_int_equal(cef_store_lookup_id(s, ident, "p4", 2, &p),
                     CEF_STORE_NOTFOUND);
    cef_store_end(s);
    cef_store_close(s);

    /* replaying is harmless: everything is skipped */
    assert_int_equal(run(0, deltas, 0), CEF_WRITER_OK);
    info(&i);
    assert_int_equal(i.last_seq, 10);
    assert_int_equal(i.profiles, 2);
    assert_int_equal(i.keys, 4);
    verify_ok();
}


static void
test_bad_deltas(void **state)
{
    size_t            k;
    cef_store_info_t  i;

    static const struct {
        const char  *data;
        const char  *msg;
    } bad[] = {
        { DELTA_HEAD "{\"seq\":3,\"op\":\"delete\",\"id\":\"p1\"}\n"
          "{\"seq\":2,\"op\":\"delete\",\"id\":\"p2\"}\n",
          "record 3 (byte 62): seq 2 is not greater" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"delete\",\"id\":\"p1\"}\n"
          "{\"seq\":4,\"op\":\"rename\",\"id\":\"p2\"}\n", "unknown op" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"delete\",\"id\":\"p1\"}\n"
          "{\"seq\":\"4\",\"op\":\"delete\",\"id\":\"p2\"}\n",
          "\"seq\" must be an integer" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"delete\",\"id\":\"p1\"}\n"
          "{\"seq\":4,\"op\":\"patch\",\"id\":\"p2\",\"set\":[]}\n",
          "\"set\" must be a map" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"merge\",\"from\":\"p1\","
          "\"into\":\"p1\"}\n", "the same profile" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"upsert\",\"id\":\"p1\","
          "\"keys\":[]}\n", "\"attrs\" is missing" },
        { DELTA_HEAD "{\"seq\":3,\"op\":\"delete\",\"id\":\"p1\"}\n"
          "{\"seq\":4,\"op\":\"delete\"", "malformed JSON" },
        { SNAP_HEAD("X"), "delta header" },
    };

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(run(0, bad[k].data, 0), CEF_WRITER_EINPUT);
        if (strstr(err, bad[k].msg) == NULL) {
            fail_msg("case %zu: \"%s\" not in \"%s\"", k, bad[k].msg, err);
        }
        info(&i);
        assert_int_equal(i.last_seq, 0);
        assert_int_equal(i.profiles, 3);
        assert_int_equal(i.keys, 3);
    }

    /* a wrong secret is refused */
    {
        cef_identity_t  *saved = ident;

        ident = cef_identity_create((const uint8_t *) "other", 5, err,
                                    sizeof(err));
        assert_int_equal(run(0, DELTA_HEAD, 0), CEF_WRITER_EINPUT);
        assert_non_null(strstr(err, "secret"));
        cef_identity_free(ident);
        ident = saved;
    }

    verify_ok();
}


static void
test_reader_follows_replacement(void **state)
{
    cef_profile_t     p;
    cef_store_t      *s;
    cef_store_info_t  i;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(lookup(s, "email", "bob@example.com", &p), CEF_STORE_OK);
    cef_store_end(s);

    assert_int_equal(run(1, SNAP_HEAD("B") P1 "{\"end\":true,\"count\":1}\n",
                         0), CEF_WRITER_OK);

    /* the old generation is gone from the directory */
    {
        struct stat  st;
        char         path[700];

        snprintf(path, sizeof(path), "%s/gen-1", store);
        assert_int_not_equal(stat(path, &st), 0);
    }

    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_info(s, &i);
    assert_string_equal(i.snapshot_id, "B");
    assert_int_equal(i.generation, 2);
    assert_int_equal(lookup(s, "email", "bob@example.com", &p),
                     CEF_STORE_NOTFOUND);
    assert_int_equal(lookup(s, "email", "ann@example.com", &p), CEF_STORE_OK);
    cef_store_end(s);

    /* deltas into the current generation are seen by the next session */
    assert_int_equal(run(0, DELTA_HEAD "{\"seq\":1,\"op\":\"delete\","
                         "\"id\":\"p1\"}\n", 0), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(lookup(s, "email", "ann@example.com", &p),
                     CEF_STORE_NOTFOUND);
    cef_store_end(s);
    cef_store_close(s);
}


static void
test_reader_sees_new_dictionary_entries(void **state)
{
    int               i;
    char              data[4096], *p;
    size_t            pos;
    cef_span_t        e;
    cef_value_t       v;
    cef_profile_t     prof;
    cef_store_t      *s;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(lookup(s, "email", "ann@example.com", &prof),
                     CEF_STORE_OK);
    cef_store_end(s);

    /* new attribute names and new interned strings, while s stays open */
    p = data + sprintf(data, DELTA_HEAD);
    for (i = 1; i <= 20; i++) {
        p += sprintf(p, "{\"seq\":%d,\"op\":\"patch\",\"id\":\"p1\","
                     "\"set\":{\"attr_%d\":\"string-value-%d\","
                     "\"tags\":[\"tag-%d\",\"tag-x\"],"
                     "\"scores\":{\"cat-%d\":0.5}}}\n", i, i, i, i, i);
    }
    assert_int_equal(run(0, data, 0), CEF_WRITER_OK);

    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(lookup(s, "email", "ann@example.com", &prof),
                     CEF_STORE_OK);
    assert_int_equal(cef_profile_validate(&prof), 0);
    assert_int_equal(get(&prof, "attr_17", &v), 1);
    assert_int_equal(v.type, CEF_VAL_STR);
    assert_int_equal(v.u.s.len, strlen("string-value-17"));
    assert_memory_equal(v.u.s.data, "string-value-17", v.u.s.len);
    assert_int_equal(get(&prof, "tags", &v), 1);
    pos = 0;
    assert_int_equal(cef_value_array_next(&v, &pos, &e), 1);
    assert_int_equal(e.len, 6);
    assert_memory_equal(e.data, "tag-20", 6);
    assert_int_equal(get(&prof, "scores", &v), 1);
    {
        double  d;

        assert_true(cef_value_map_get(&v, cef_span_lit("cat-20"), &d)
                    && d == 0.5);
        assert_false(cef_value_map_get(&v, cef_span_lit("cat-19"), &d));
    }
    assert_int_equal(get(&prof, "clv", &v), 1);
    cef_store_end(s);
    cef_store_close(s);
    verify_ok();
}


static void
test_map_resized(void **state)
{
    int               n;
    char             *data, *p;
    cef_profile_t     prof;
    cef_store_t      *s;
    cef_store_info_t  i;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 512 * 1024), CEF_WRITER_OK);

    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_end(s);

    /* grow the data well past the reader's 512 KiB map */
    data = malloc(5000 * 200);
    assert_non_null(data);
    p = data + sprintf(data, DELTA_HEAD);
    for (n = 1; n <= 5000; n++) {
        p += sprintf(p, "{\"seq\":%d,\"op\":\"upsert\",\"id\":\"n%d\","
                     "\"keys\":[[\"e\",\"k%d\"]],\"attrs\":{\"v\":"
                     "\"value-%d-abcdefghijklmnopqrstuvwxyz\"}}\n", n, n, n,
                     n);
    }

    assert_int_equal(run(0, data, 16 * 1024 * 1024), CEF_WRITER_OK);
    free(data);

    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_info(s, &i);
    assert_int_equal(i.profiles, 5003);
    assert_int_equal(lookup(s, "e", "k4999", &prof), CEF_STORE_OK);
    cef_store_end(s);
    cef_store_close(s);
    verify_ok();
}


/* Overwrite len bytes at off of generation gen's data.mdb, in place. */

static void
scribble(int gen, off_t off, size_t len, unsigned seed, int random)
{
    int       fd;
    char      path[700];
    size_t    i;
    uint8_t  *buf;

    buf = malloc(len);
    assert_non_null(buf);
    srand(seed);
    for (i = 0; i < len; i++) {
        buf[i] = random ? (uint8_t) rand() : 0xff;
    }

    snprintf(path, sizeof(path), "%s/gen-%d/data.mdb", store, gen);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, off), (ssize_t) len);
    close(fd);
    free(buf);
}


static void
test_meta_pages_overwritten_under_reader(void **state)
{
    unsigned          seed;
    cef_profile_t     p;
    cef_store_t      *s;
    cef_store_gens_t  g;

    (void) state;

    for (seed = 1; seed <= 5; seed++) {
        rm_rf(store);
        assert_int_equal(run(1, SNAP_A, 512 * 1024), CEF_WRITER_OK);

        s = reader();
        assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
        assert_int_equal(lookup(s, "email", "bob@example.com", &p),
                         CEF_STORE_OK);
        cef_store_end(s);

        /* both meta pages: the remap it asked for used to crash */
        scribble(1, 0, 8192, seed, 1);

        assert_int_equal(cef_store_begin(s), CEF_STORE_ERROR);
        assert_int_equal(cef_store_begin(s), CEF_STORE_ERROR);
        assert_non_null(strstr(cef_store_strerror(s),
                               "generation 1 is damaged"));
        cef_store_generations(s, &g);
        assert_int_equal(g.serving, 1);
        assert_non_null(g.damaged);
        assert_int_equal(lookup(s, "email", "bob@example.com", &p),
                         CEF_STORE_ERROR);

        /* a good load is picked up */
        assert_int_equal(run(1, SNAP_HEAD("B") P2 "{\"end\":true,"
                             "\"count\":1}\n", 0), CEF_WRITER_OK);
        assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
        assert_int_equal(lookup(s, "email", "bob@example.com", &p),
                         CEF_STORE_OK);
        cef_store_end(s);
        cef_store_generations(s, &g);
        assert_int_equal(g.serving, 2);
        assert_null(g.damaged);
        cef_store_close(s);
    }
}


static void
test_new_generation_that_cannot_be_opened(void **state)
{
    cef_profile_t     p;
    cef_store_t      *s;
    cef_store_gens_t  g;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);
    s = reader();
    cef_store_generations(s, &g);
    assert_int_equal(g.serving, 1);
    assert_int_equal(g.newest, 1);
    assert_int_equal(g.failed, 0);

    assert_int_equal(run(1, SNAP_HEAD("B") P1 "{\"end\":true,\"count\":1}\n",
                         0), CEF_WRITER_OK);
    scribble(2, 0, 8192, 0, 0);

    /* the old generation goes on serving; why not the new one is kept */
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    assert_int_equal(lookup(s, "email", "bob@example.com", &p), CEF_STORE_OK);
    cef_store_end(s);
    cef_store_generations(s, &g);
    assert_int_equal(g.serving, 1);
    assert_int_equal(g.newest, 2);
    assert_int_equal(g.failed, 2);
    assert_non_null(strstr(g.error, "gen-2"));
    assert_null(g.damaged);

    assert_int_equal(run(1, SNAP_HEAD("C") P1 "{\"end\":true,\"count\":1}\n",
                         0), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_end(s);
    cef_store_generations(s, &g);
    assert_int_equal(g.serving, 3);
    assert_int_equal(g.newest, 3);
    assert_int_equal(g.failed, 0);
    assert_string_equal(g.error, "");
    cef_store_close(s);
}


static void
test_fault_gives_up_the_generation(void **state)
{
    cef_store_t      *s;
    cef_store_gens_t  g;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);
    s = reader();
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);

    /* as the module does after a SIGBUS inside a session */
    assert_int_equal(cef_store_fault(s, "faulted (SIGBUS)"), 1);
    cef_store_end(s);
    assert_int_equal(cef_store_begin(s), CEF_STORE_ERROR);
    assert_string_equal(cef_store_strerror(s), "faulted (SIGBUS)");
    cef_store_generations(s, &g);
    assert_string_equal(g.damaged, "faulted (SIGBUS)");

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);
    assert_int_equal(cef_store_begin(s), CEF_STORE_OK);
    cef_store_end(s);
    cef_store_generations(s, &g);
    assert_int_equal(g.serving, 2);
    assert_null(g.damaged);
    cef_store_close(s);
}


static void
test_two_writers(void **state)
{
    int                  fd, rc;
    char                 path[700];
    cef_input_t         *in;
    cef_writer_conf_t    conf;
    cef_writer_result_t  res;

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    snprintf(path, sizeof(path), "%s/write.lock", store);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = ident;
    conf.wait = 0;

    in = cef_input_open_mem(SNAP_A, strlen(SNAP_A));
    rc = cef_writer_load(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);
    assert_int_equal(rc, CEF_WRITER_ESTORE);
    assert_non_null(strstr(err, "another cef-sync"));

    in = cef_input_open_mem(DELTA_HEAD, strlen(DELTA_HEAD));
    rc = cef_writer_apply(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);
    assert_int_equal(rc, CEF_WRITER_ESTORE);

    close(fd);
    assert_unchanged("A", 1, 0);
}


/* Mutated snapshots and deltas: never a crash, never a broken store. */

static void
test_mutations(void **state)
{
    int                  i, rc, n, j;
    char                *buf;
    size_t               len, pos;
    uint64_t             r = 42;
    msgpack_sbuffer      mp;
    cef_input_t         *in;
    cef_writer_conf_t    conf;
    cef_writer_result_t  res;

    static const char    deltas[] =
        DELTA_HEAD
        "{\"seq\":1,\"op\":\"upsert\",\"id\":\"p9\",\"keys\":[[\"e\","
        "\"x\"]],\"attrs\":{\"a\":[\"s1\",\"s2\"],\"m\":{\"k\":1.5}}}\n"
        "{\"seq\":2,\"op\":\"merge\",\"from\":\"p2\",\"into\":\"p9\"}\n"
        "{\"seq\":3,\"op\":\"keys\",\"id\":\"p1\",\"add\":[[\"d\",\"1\"]]}\n";

    (void) state;

    assert_int_equal(run(1, SNAP_A, 0), CEF_WRITER_OK);

    memset(&conf, 0, sizeof(conf));
    conf.dir = store;
    conf.ident = ident;

    /* the snapshot as msgpack too, packed from the parsed NDJSON */
    {
        msgpack_packer         pk;
        const msgpack_object  *o;

        msgpack_sbuffer_init(&mp);
        msgpack_packer_init(&pk, &mp, msgpack_sbuffer_write);
        in = cef_input_open_mem(SNAP_A, strlen(SNAP_A));
        while (cef_input_next(in, &o, err, sizeof(err)) == 1) {
            msgpack_pack_object(&pk, *o);
        }
        cef_input_close(in);
    }

    buf = malloc(sizeof(SNAP_A) + sizeof(deltas) + mp.size);
    assert_non_null(buf);

    for (i = 0; i < 600; i++) {
        const char  *src = (i & 1) ? deltas : (i % 4 == 2) ? mp.data : SNAP_A;

        len = (i % 4 == 2) ? mp.size : strlen(src);
        memcpy(buf, src, len);

        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        n = 1 + (int) ((r >> 60) & 3);

        for (j = 0; j < n && len > 0; j++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            pos = (size_t) ((r >> 33) % len);
            switch ((r >> 20) & 3) {
            case 0: buf[pos] = (char) (r >> 8); break;          /* any byte */
            case 1: buf[pos] = "{}[]\":,0-.e\\ "[(r >> 8) % 13]; break;
            case 2: len = pos; break;                           /* truncate */
            default: memmove(buf + pos, buf + pos + 1, len - pos - 1);
                     len--; break;                              /* delete */
            }
        }

        in = cef_input_open_mem(buf, len);
        rc = (i & 1) ? cef_writer_apply(&conf, in, &res, err, sizeof(err))
                     : cef_writer_load(&conf, in, &res, err, sizeof(err));
        cef_input_close(in);

        if (rc != CEF_WRITER_OK && rc != CEF_WRITER_EINPUT) {
            fail_msg("mutation %d: rc %d: %s", i, rc, err);
        }

        if (rc == CEF_WRITER_EINPUT && strstr(err, "record ") == NULL
            && strstr(err, "empty input") == NULL)
        {
            fail_msg("mutation %d: no record in \"%s\"", i, err);
        }

        verify_ok();
    }

    free(buf);
    msgpack_sbuffer_destroy(&mp);
}


static void
test_open_errors(void **state)
{
    cef_store_t  *s;

    (void) state;

    assert_int_equal(cef_store_open(&s, store, err, sizeof(err)),
                     CEF_STORE_ERROR);
    assert_null(s);
    assert_non_null(strstr(err, "no profile store"));
    assert_int_equal(run(0, DELTA_HEAD, 0), CEF_WRITER_ESTORE);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_open_errors, fresh),
        cmocka_unit_test_setup(test_load_and_read, fresh),
        cmocka_unit_test_setup(test_bad_snapshots, fresh),
        cmocka_unit_test_setup(test_map_full, fresh),
        cmocka_unit_test_setup(test_deltas, fresh),
        cmocka_unit_test_setup(test_bad_deltas, fresh),
        cmocka_unit_test_setup(test_reader_follows_replacement, fresh),
        cmocka_unit_test_setup(test_reader_sees_new_dictionary_entries,
                               fresh),
        cmocka_unit_test_setup(test_map_resized, fresh),
        cmocka_unit_test_setup(test_meta_pages_overwritten_under_reader,
                               fresh),
        cmocka_unit_test_setup(test_new_generation_that_cannot_be_opened,
                               fresh),
        cmocka_unit_test_setup(test_fault_gives_up_the_generation, fresh),
        cmocka_unit_test_setup(test_two_writers, fresh),
        cmocka_unit_test_setup(test_mutations, fresh),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
