/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Shared by the libFuzzer targets that write a real store (fuzz_store.c,
 * fuzz_consume.c): a store on tmpfs (/dev/shm) holding two known profiles,
 * removed at exit, and the choice of which inputs go through it.
 */

#ifndef FUZZ_STORE_FIXTURE_H
#define FUZZ_STORE_FIXTURE_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cef_input.h"
#include "cef_writer.h"
#include "fuzz_common.h"


static const char  fuzz_base_snapshot[] =
    "{\"cef\":\"snapshot\",\"version\":1,\"id\":\"s1\",\"created_at\":1}\n"
    "{\"id\":\"c-1001\",\"keys\":[[\"email\",\"ann@example.com\"],"
    "[\"crm\",\"1001\"]],\"attrs\":{\"first_name\":\"Ann\","
    "\"segments\":[\"vip\",\"newsletter\"],\"clv\":1234.5,\"nps\":9,"
    "\"interests\":{\"shoes\":0.8},\"vip\":true}}\n"
    "{\"id\":\"c-1002\",\"keys\":[[\"email\",\"bob@example.com\"]],"
    "\"attrs\":{\"first_name\":\"Bob\",\"lifecycle\":\"new\"}}\n"
    "{\"end\":true,\"count\":2}\n";


static char             top[256], dir[300];
static cef_identity_t  *ident;

/* one input in CEF_FUZZ_STORE_EVERY goes through the store (1: all) */
static unsigned         every = 64;


static inline void
conf_init(cef_writer_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->dir = dir;
    conf->ident = ident;
    conf->map_size = 64 << 20;
    conf->batch = 2;
}


/* a full load of the two known profiles (and no stream offsets) */
static inline void
load_base(void)
{
    int                   rc;
    cef_input_t          *in;
    cef_writer_conf_t     conf;
    cef_writer_result_t   res;
    char                  err[512];

    conf_init(&conf);
    in = cef_input_open_mem(fuzz_base_snapshot,
                            sizeof(fuzz_base_snapshot) - 1);
    CHECK(in != NULL);
    rc = cef_writer_load(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);
    if (rc != CEF_WRITER_OK) {
        fprintf(stderr, "loading the fuzz targets' base store: %s\n", err);
        abort();
    }
}


static inline int
fuzz_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    (void) remove(path);

    return 0;
}


static inline void
fuzz_store_remove(void)
{
    if (top[0]) {
        (void) nftw(top, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}


/*
 * Reads CEF_FUZZ_STORE_EVERY, makes the store directory, calls report at
 * exit (it should call fuzz_store_remove()) and loads the base store.
 */
static inline void
fuzz_store_setup(const char *name, void (*report)(void))
{
    const char  *base, *e;
    char         err[256];

    e = getenv("CEF_FUZZ_STORE_EVERY");
    if (e != NULL && atoi(e) > 0) {
        every = (unsigned) atoi(e);
    }

    base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(top, sizeof(top), "%s/cef-fuzz-%s-XXXXXX",
             base ? base : "/tmp", name);
    CHECK(mkdtemp(top) != NULL);
    snprintf(dir, sizeof(dir), "%s/store", top);
    atexit(report);

    ident = cef_identity_create((const uint8_t *) "fuzz-secret", 11, err,
                                sizeof(err));
    CHECK(ident != NULL);

    load_base();
}


/* FNV-1a of the input: which inputs go through the store, replayably */
static inline int
fuzz_store_chosen(const uint8_t *p, size_t n)
{
    uint32_t  h = 2166136261u;

    while (n--) {
        h = (h ^ *p++) * 16777619u;
    }

    return h % every == 0;
}


#endif /* FUZZ_STORE_FIXTURE_H */
