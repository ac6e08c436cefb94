/*
 * Copyright (C) ngx_cef_module developers
 *
 * libFuzzer target: a whole cef-sync load or apply (cef_store_writer.h)
 * of an arbitrary snapshot or delta stream, into a store on tmpfs.
 *
 * Byte 0, bit 0 picks load (0) or apply (1); the rest is the stream.
 * Apply runs against a fresh store holding two known profiles.
 * Invariants: the result is OK or bad input, never a store error (the
 * streams are small, the map is large); after OK the store verifies
 * (cef_store_verify) and its counts equal the writer's; after bad input
 * the store is unchanged (same profiles, keys and last seq); the message
 * names a record.
 */

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cef_store.h"
#include "cef_store_writer.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  base_snapshot[] =
    "{\"cef\":\"snapshot\",\"version\":1,\"id\":\"s1\",\"created_at\":1}\n"
    "{\"id\":\"c-1001\",\"keys\":[[\"email\",\"ann@example.com\"],"
    "[\"crm\",\"1001\"]],\"attrs\":{\"first_name\":\"Ann\","
    "\"segments\":[\"vip\",\"newsletter\"],\"clv\":1234.5,\"nps\":9,"
    "\"interests\":{\"shoes\":0.8},\"vip\":true}}\n"
    "{\"id\":\"c-1002\",\"keys\":[[\"email\",\"bob@example.com\"]],"
    "\"attrs\":{\"first_name\":\"Bob\",\"lifecycle\":\"new\"}}\n"
    "{\"end\":true,\"count\":2}\n";


static char             dir[256];
static cef_identity_t  *ident;


static void
init(void)
{
    const char  *base;
    char         err[256];

    base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/cef-fuzz-store-XXXXXX",
             base ? base : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    strcat(dir, "/store");

    ident = cef_identity_create((const uint8_t *) "fuzz-secret", 11, err,
                                sizeof(err));
    CHECK(ident != NULL);
}


static void
conf_init(cef_writer_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->dir = dir;
    conf->ident = ident;
    conf->map_size = 64 << 20;
    conf->batch = 2;
}


static void
verify(cef_verify_result_t *v, uint64_t *last_seq)
{
    char                err[512];
    cef_store_t        *s;
    cef_store_info_t    info;

    memset(v, 0, sizeof(*v));
    CHECK(cef_store_verify(dir, ident, NULL, NULL, v, err, sizeof(err))
          == CEF_WRITER_OK);
    CHECK(v->problems == 0);

    CHECK(cef_store_open(&s, dir, err, sizeof(err)) == CEF_STORE_OK);
    CHECK(cef_store_begin(s) == CEF_STORE_OK);
    CHECK(cef_store_info(s, &info) == CEF_STORE_OK);
    CHECK(info.profiles == v->profiles);
    *last_seq = info.last_seq;
    cef_store_end(s);
    cef_store_close(s);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   rc, apply;
    uint64_t              seq0, seq1;
    cef_input_t          *in;
    cef_writer_conf_t     conf;
    cef_writer_result_t   res;
    cef_verify_result_t   v0, v1;
    char                  err[1024];

    if (dir[0] == '\0') {
        init();
    }

    if (size < 1 || size > 128 * 1024) {
        return 0;
    }

    apply = data[0] & 1;
    conf_init(&conf);

    memset(&v0, 0, sizeof(v0));
    seq0 = 0;

    if (apply) {
        in = cef_input_open_mem(base_snapshot, sizeof(base_snapshot) - 1);
        CHECK(in != NULL);
        rc = cef_store_load(&conf, in, &res, err, sizeof(err));
        cef_input_close(in);
        CHECK(rc == CEF_WRITER_OK);
        verify(&v0, &seq0);
        CHECK(v0.profiles == 2);
    }

    in = cef_input_open_mem(data + 1, size - 1);
    CHECK(in != NULL);

    memset(&res, 0, sizeof(res));
    err[0] = '\0';
    rc = apply ? cef_store_apply(&conf, in, &res, err, sizeof(err))
               : cef_store_load(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);

    if (rc == CEF_WRITER_OK) {
        verify(&v1, &seq1);
        CHECK(v1.profiles == res.profiles);
        CHECK(v1.keys == res.keys);
        if (apply) {
            CHECK(seq1 >= seq0);
        }

    } else {
        if (rc != CEF_WRITER_EINPUT) {
            fprintf(stderr, "store error: %s\n", err);
        }
        CHECK(rc == CEF_WRITER_EINPUT);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');

        if (apply) {
            verify(&v1, &seq1);
            CHECK(v1.profiles == v0.profiles && v1.keys == v0.keys);
            CHECK(seq1 == seq0);
        }
    }

    return 0;
}
