/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store in nginx: cef_store and cef_store_secret, one reader
 * handle per worker process (opened after fork), lookups that fail open.
 */


#include "ngx_http_cef_module.h"

#include <pthread.h>
#include <setjmp.h>

#include "cef_store.h"
#include "cef_store_weights.h"


#define NGX_HTTP_CEF_STORE_RETRY  1      /* seconds between open attempts */


/* the faults logged once per generation and worker */
typedef enum {
    NGX_HTTP_CEF_FAULT_DAMAGED = 0,
    NGX_HTTP_CEF_FAULT_SESSION,
    NGX_HTTP_CEF_FAULT_LOOKUP,
    NGX_HTTP_CEF_FAULT_PROFILE,
    NGX_HTTP_CEF_FAULT_MALFORMED,
    NGX_HTTP_CEF_FAULT_MAX
} ngx_http_cef_fault_e;


typedef struct {
    ngx_str_t    name;
    ngx_str_t    value;
} ngx_http_cef_attr_t;


static ngx_int_t ngx_http_cef_store_ready(ngx_log_t *log,
    ngx_http_cef_main_conf_t *cmcf);
static ngx_int_t ngx_http_cef_store_session(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_render_attrs(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, cef_profile_t *p);
static u_char *ngx_http_cef_render_value(ngx_pool_t *pool,
    const cef_value_t *v, size_t *len);
static void ngx_http_cef_identity_cleanup(void *data);
static void *ngx_http_cef_store_ready_read(void *data);
static void *ngx_http_cef_store_info_read(void *data);
static void *ngx_http_cef_store_attr_read(void *data);
static void ngx_http_cef_store_signal(int signo, siginfo_t *si, void *uc);
static void ngx_http_cef_store_fault(ngx_http_request_t *r, ngx_log_t *log,
    int signo);
static uint64_t ngx_http_cef_store_gen(void);
static void ngx_http_cef_store_log_fault(ngx_log_t *log,
    ngx_http_cef_fault_e fault, uint64_t gen, const char *fmt, ...);
static void ngx_http_cef_store_check_switch(ngx_log_t *log,
    ngx_http_cef_main_conf_t *cmcf);


/* per worker process */
static cef_store_t  *ngx_http_cef_store_handle;
static ngx_uint_t    ngx_http_cef_store_open;   /* a session is open */
static time_t        ngx_http_cef_store_next_try;
static ngx_uint_t    ngx_http_cef_store_failing;
static uint64_t      ngx_http_cef_store_bad_gen;    /* faulted unopened */
static uint64_t      ngx_http_cef_store_logged[NGX_HTTP_CEF_FAULT_MAX];
static uint64_t      ngx_http_cef_store_switch_logged;

/*
 * LMDB maps data.mdb and trusts what it finds there: a page past the end
 * of a file cut short under the worker raises SIGBUS on first touch, and
 * garbage written over pages in use can send LMDB's page walk (node
 * offsets and sizes are not checked) outside the map: SIGSEGV.  No check
 * made before a read can exclude that, since the file can change under a
 * live mapping at any moment.  So store reads run armed
 * (ngx_http_cef_store_guard()): a SIGBUS there, or a SIGSEGV while a call
 * into cef_store (and so LMDB) is running, jumps back out of the read, the
 * generation is given up and the request goes on without personalisation.
 * A SIGSEGV anywhere else is left alone: that is a bug to crash on.
 */
static sigjmp_buf       *ngx_http_cef_store_jmp;
static ngx_uint_t        ngx_http_cef_store_in_lib;
ngx_uint_t               ngx_http_cef_store_faults;
static struct sigaction  ngx_http_cef_store_sigbus_prev;
static struct sigaction  ngx_http_cef_store_sigsegv_prev;
static ngx_uint_t        ngx_http_cef_store_signals_set;
static pthread_t         ngx_http_cef_store_thread;

#define ngx_http_cef_store_call(rc, call)                                   \
    do {                                                                     \
        ngx_http_cef_store_in_lib++;                                         \
        rc = call;                                                           \
        ngx_http_cef_store_in_lib--;                                         \
    } while (0)


char *
ngx_http_cef_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    ngx_str_t  *value;

    if (cmcf->store_dir.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->store_dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &cmcf->store_dir, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_cef_store_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    char                 err[256];
    ngx_str_t           *value;
    ngx_pool_cleanup_t  *cln;

    if (cmcf->store_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->store_secret = value[1];

    if (ngx_conf_full_name(cf->cycle, &cmcf->store_secret, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cef_check_secret_file(cf, &cmcf->store_secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cmcf->store_hash = cef_identity_create_from_file(
                                   (char *) cmcf->store_secret.data,
                                   err, sizeof(err));
    if (cmcf->store_hash == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_cef_identity_cleanup;
    cln->data = cmcf->store_hash;

    return NGX_CONF_OK;
}


static void
ngx_http_cef_identity_cleanup(void *data)
{
    cef_identity_free(data);
}


char *
ngx_http_cef_init_store_conf(ngx_conf_t *cf, ngx_http_cef_main_conf_t *cmcf)
{
    if (cmcf->store_dir.data && cmcf->store_hash == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_store\" requires \"cef_store_secret\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->store_hash && cmcf->store_dir.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_store_secret\" requires \"cef_store\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_cef_store_init_process(ngx_cycle_t *cycle)
{
    struct sigaction           sa;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, NGX_HTTP_CEF);

    if (cmcf == NULL || cmcf->store_dir.data == NULL) {
        return NGX_OK;
    }

    ngx_http_cef_store_handle = NULL;
    ngx_http_cef_store_open = 0;
    ngx_http_cef_store_next_try = 0;
    ngx_http_cef_store_failing = 0;
    ngx_http_cef_store_bad_gen = 0;
    ngx_http_cef_store_switch_logged = 0;
    ngx_memzero(ngx_http_cef_store_logged, sizeof(ngx_http_cef_store_logged));

    ngx_memzero(&sa, sizeof(struct sigaction));
    sa.sa_sigaction = ngx_http_cef_store_signal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGBUS, &sa, &ngx_http_cef_store_sigbus_prev) == -1
        || sigaction(SIGSEGV, &sa, &ngx_http_cef_store_sigsegv_prev) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "cef: sigaction() failed");
        return NGX_ERROR;
    }

    ngx_http_cef_store_signals_set = 1;
    ngx_http_cef_store_thread = pthread_self();

    /* a store that cannot be opened now is retried on later requests */
    (void) ngx_http_cef_store_guard(NULL, cycle->log,
                                    ngx_http_cef_store_ready_read, cmcf,
                                    NULL);

    return NGX_OK;
}


static void *
ngx_http_cef_store_ready_read(void *data)
{
    ngx_http_cef_main_conf_t *cmcf = data;

    (void) ngx_http_cef_store_ready(ngx_cycle->log, cmcf);

    return NULL;
}


/*
 * Runs read(data) with store faults caught: returns what read returned,
 * or failed if the store's file faulted under it (the handle is dropped
 * then and reopened later, see ngx_http_cef_store_ready()).  Nests.
 */

void *
ngx_http_cef_store_guard(ngx_http_request_t *r, ngx_log_t *log,
    ngx_http_cef_store_read_pt read, void *data, void *failed)
{
    int          signo;
    void        *result;
    sigjmp_buf   jb, *prev;
    ngx_uint_t   in_lib;

    prev = ngx_http_cef_store_jmp;
    in_lib = ngx_http_cef_store_in_lib;
    ngx_http_cef_store_jmp = &jb;

    /* no signal mask to save: the handler runs with SA_NODEFER */

    signo = sigsetjmp(jb, 0);

    if (signo == 0) {
        result = read(data);

    } else {
        ngx_http_cef_store_jmp = prev;
        ngx_http_cef_store_in_lib = in_lib;
        ngx_http_cef_store_faults++;
        ngx_http_cef_store_fault(r, log, signo);
        result = failed;
    }

    ngx_http_cef_store_jmp = prev;

    return result;
}


static void
ngx_http_cef_store_signal(int signo, siginfo_t *si, void *uc)
{
    /* a fault in a thread pool's thread is none of ours */

    if (ngx_http_cef_store_jmp
        && (signo == SIGBUS || ngx_http_cef_store_in_lib)
        && pthread_equal(pthread_self(), ngx_http_cef_store_thread))
    {
        siglongjmp(*ngx_http_cef_store_jmp, signo);
    }

    /* not during a store read: fault again, as if we were not here */

    sigaction(signo, signo == SIGBUS ? &ngx_http_cef_store_sigbus_prev
                                     : &ngx_http_cef_store_sigsegv_prev,
              NULL);
}


/*
 * The generation the fault was in is given up: the handle stays, and
 * switches when a new generation appears.  A fault while no handle was
 * open yet (in cef_store_open()) leaves no handle to keep that in: that
 * generation is then not opened again.
 */

static void
ngx_http_cef_store_fault(ngx_http_request_t *r, ngx_log_t *log, int signo)
{
    char                       path[PATH_MAX];
    uint64_t                   gen;
    const char                *why;
    sigjmp_buf                 jb, *prev;
    cef_store_t               *s;
    ngx_http_cef_ctx_t        *ctx;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, NGX_HTTP_CEF);

    why = (signo == SIGBUS)
          ? "faulted (SIGBUS: its data file is shorter than the database, "
            "cut short under nginx?)"
          : "faulted (SIGSEGV: its data file is damaged)";

    ctx = r ? ngx_http_cef_get_ctx(r->main) : NULL;

    if (ctx && ctx->identity) {
        ctx->identity->store = 0;
        ctx->identity->view_valid = 0;
    }

    s = ngx_http_cef_store_handle;
    gen = 0;

    if (s) {
        /* releasing reads no data page; should it fault, drop the handle */

        prev = ngx_http_cef_store_jmp;
        ngx_http_cef_store_jmp = &jb;

        if (sigsetjmp(jb, 0) == 0) {
            ngx_http_cef_store_call(gen, cef_store_fault(s, why));

        } else {
            ngx_http_cef_store_in_lib = 0;
            ngx_http_cef_store_handle = NULL;
            ngx_http_cef_store_open = 0;
            ngx_http_cef_store_next_try = ngx_time()
                                          + NGX_HTTP_CEF_STORE_RETRY;
        }

        ngx_http_cef_store_jmp = prev;
    }

    if (ngx_http_cef_store_handle == NULL) {
        if (cef_store_current((char *) cmcf->store_dir.data, path,
                              sizeof(path), &gen) != 0)
        {
            gen = 0;
        }
        ngx_http_cef_store_bad_gen = gen;
        ngx_http_cef_store_failing = 1;
    }

    ngx_http_cef_store_log_fault(log, NGX_HTTP_CEF_FAULT_DAMAGED, gen,
                                 "cef: store \"%V\": generation %uL %s: "
                                 "serving without personalisation until a "
                                 "new generation is loaded",
                                 &cmcf->store_dir, gen, why);
}


/* the generation the handle serves, or 0 */

static uint64_t
ngx_http_cef_store_gen(void)
{
    cef_store_gens_t  gens;

    if (ngx_http_cef_store_handle == NULL) {
        return 0;
    }

    cef_store_generations(ngx_http_cef_store_handle, &gens);

    return gens.serving;
}


/*
 * A fault is logged once per kind, generation and worker: a damaged
 * generation would otherwise log a line per request.  The metric counts
 * both.
 */

static void
ngx_http_cef_store_log_fault(ngx_log_t *log, ngx_http_cef_fault_e fault,
    uint64_t gen, const char *fmt, ...)
{
    u_char   *p, buf[NGX_MAX_ERROR_STR];
    va_list   args;

    if (ngx_http_cef_store_logged[fault] == gen + 1) {
        ngx_http_cef_metric(NGX_HTTP_CEF_M_STORE_FAULT_SUPPRESSED);
        return;
    }

    ngx_http_cef_store_logged[fault] = gen + 1;
    ngx_http_cef_metric(NGX_HTTP_CEF_M_STORE_FAULT_LOGGED);

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_ERR, log, 0, "%*s", p - buf, buf);
}


/* a newer generation that cannot be opened: said once per generation */

static void
ngx_http_cef_store_check_switch(ngx_log_t *log,
    ngx_http_cef_main_conf_t *cmcf)
{
    cef_store_gens_t  gens;

    cef_store_generations(ngx_http_cef_store_handle, &gens);

    if (gens.failed == 0 || gens.failed == ngx_http_cef_store_switch_logged) {
        return;
    }

    ngx_http_cef_store_switch_logged = gens.failed;

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "cef: store \"%V\": cannot switch to generation %uL, "
                  "still serving generation %uL: %s",
                  &cmcf->store_dir, gens.failed, gens.serving, gens.error);
}


/*
 * The generation this worker serves and the newest on disk (0: none), for
 * the metrics.
 */

void
ngx_http_cef_store_generations(ngx_http_cef_main_conf_t *cmcf,
    uint64_t *serving, uint64_t *newest)
{
    char              path[PATH_MAX];
    cef_store_gens_t  gens;

    *serving = 0;
    *newest = 0;

    if (ngx_http_cef_store_handle) {
        cef_store_generations(ngx_http_cef_store_handle, &gens);
        *serving = gens.damaged ? 0 : gens.serving;
        *newest = gens.newest;
        return;
    }

    if (cmcf->store_dir.data
        && cef_store_current((char *) cmcf->store_dir.data, path,
                             sizeof(path), newest) != 0)
    {
        *newest = 0;
    }
}


void
ngx_http_cef_store_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_cef_store_signals_set) {
        sigaction(SIGBUS, &ngx_http_cef_store_sigbus_prev, NULL);
        sigaction(SIGSEGV, &ngx_http_cef_store_sigsegv_prev, NULL);
        ngx_http_cef_store_signals_set = 0;
    }

    if (ngx_http_cef_store_handle) {
        cef_store_close(ngx_http_cef_store_handle);
        ngx_http_cef_store_handle = NULL;
        ngx_http_cef_store_open = 0;
    }
}


/*
 * Open the store if it is not open yet, at most once a second, logging
 * only when it goes from good to bad and back.
 */

static ngx_int_t
ngx_http_cef_store_ready(ngx_log_t *log, ngx_http_cef_main_conf_t *cmcf)
{
    int           rc;
    char          err[512], path[PATH_MAX];
    uint64_t      gen;
    cef_store_t  *s;

    if (ngx_http_cef_store_handle) {
        return NGX_OK;
    }

    if (ngx_time() < ngx_http_cef_store_next_try) {
        return NGX_DECLINED;
    }

    ngx_http_cef_store_next_try = ngx_time() + NGX_HTTP_CEF_STORE_RETRY;

    if (ngx_http_cef_store_bad_gen
        && cef_store_current((char *) cmcf->store_dir.data, path,
                             sizeof(path), &gen) == 0
        && gen == ngx_http_cef_store_bad_gen)
    {
        return NGX_DECLINED;
    }

    ngx_http_cef_store_call(rc, cef_store_open(&s,
                                               (char *) cmcf->store_dir.data,
                                               err, sizeof(err)));

    if (rc != CEF_STORE_OK) {
        if (!ngx_http_cef_store_failing) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "cef: store \"%V\" is not available, serving "
                          "without personalisation: %s",
                          &cmcf->store_dir, err);
            ngx_http_cef_store_failing = 1;
        }
        return NGX_DECLINED;
    }

    ngx_http_cef_store_bad_gen = 0;
    ngx_http_cef_store_handle = s;

    ngx_http_cef_store_call(rc, cef_store_begin(s));

    if (rc == CEF_STORE_OK) {
        if (cef_store_check_secret(s, cmcf->store_hash) == CEF_STORE_NOTFOUND)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cef: store \"%V\" was loaded with another secret "
                          "than \"%V\": no key will be found",
                          &cmcf->store_dir, &cmcf->store_secret);
        }
        cef_store_end(s);
    }

    if (ngx_http_cef_store_failing) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "cef: store \"%V\" is available again",
                      &cmcf->store_dir);
        ngx_http_cef_store_failing = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_store_session(ngx_http_request_t *r)
{
    int                        rc;
    cef_store_gens_t           gens;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    if (cmcf->store_dir.data == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_cef_store_ready(r->connection->log, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_cef_store_call(rc, cef_store_begin(ngx_http_cef_store_handle));

    ngx_http_cef_store_check_switch(r->connection->log, cmcf);

    if (rc == CEF_STORE_OK) {
        ngx_http_cef_store_open = 1;
        return NGX_OK;
    }

    cef_store_generations(ngx_http_cef_store_handle, &gens);

    if (gens.damaged) {
        ngx_http_cef_store_log_fault(r->connection->log,
                                     NGX_HTTP_CEF_FAULT_DAMAGED, gens.serving,
                                     "cef: store \"%V\": %s: serving without "
                                     "personalisation until a new generation "
                                     "is loaded", &cmcf->store_dir,
                                     gens.damaged);
        return NGX_ERROR;
    }

    ngx_http_cef_store_log_fault(r->connection->log,
                             NGX_HTTP_CEF_FAULT_SESSION, gens.serving,
                             "cef: store \"%V\": %s", &cmcf->store_dir,
                             cef_store_strerror(ngx_http_cef_store_handle));
    return NGX_ERROR;

    return NGX_OK;
}


typedef struct {
    ngx_http_request_t         *r;
    ngx_http_cef_identity_t    *id;
    ngx_str_t                  *name;
    ngx_str_t                  *out;
    cef_store_info_t           *info;
    ngx_int_t                   rc;
} ngx_http_cef_store_read_t;


ngx_int_t
ngx_http_cef_store_info(ngx_http_request_t *r, cef_store_info_t *info)
{
    ngx_http_cef_store_read_t  rd;

    rd.r = r;
    rd.info = info;
    rd.rc = NGX_DECLINED;

    (void) ngx_http_cef_store_guard(r, r->connection->log,
                                    ngx_http_cef_store_info_read, &rd, NULL);

    return rd.rc;
}


static void *
ngx_http_cef_store_info_read(void *data)
{
    ngx_http_cef_store_read_t *rd = data;

    if (ngx_http_cef_store_session(rd->r) != NGX_OK) {
        return NULL;
    }

    if (cef_store_info(ngx_http_cef_store_handle, rd->info) == CEF_STORE_OK) {
        rd->rc = NGX_OK;
    }

    ngx_http_cef_store_end();

    return NULL;
}


/*
 * NGX_OK: a session is open; NGX_DECLINED: no store is configured;
 * NGX_ERROR: one is, but it cannot be used now (logged).
 *
 * A store session spans one visitor's recognition: every key is looked up
 * in the same read transaction, and what the request keeps is copied out.
 */

ngx_int_t
ngx_http_cef_store_begin(ngx_http_request_t *r)
{
    return ngx_http_cef_store_session(r);
}


void
ngx_http_cef_store_end(void)
{
    ngx_http_cef_store_open = 0;

    if (ngx_http_cef_store_handle) {
        cef_store_end(ngx_http_cef_store_handle);
    }
}


/*
 * The published weights of (experiment, salt) for adaptive strategies
 * (cef_decision_weights_pt; data is the request): the store's weights
 * record (cef_store_weights.h), read in the request's store session.
 * Without a store, or outside a session, nothing is published (a bandit
 * stays uniform).
 *
 * A worker keeps what it decoded -- per (experiment, salt): the version,
 * the arm names and basis points, or "none published" -- and asks
 * cef_store_published_changed() on each call whether anything published
 * changed since (a comparison while no write committed); only then is the
 * cache dropped and the records read again.  So a new version is used at
 * the next request without a reload, and a request costs no mdb_get.
 */

#define NGX_HTTP_CEF_WEIGHTS_CACHE  64

typedef struct {
    char        *experiment;
    char        *salt;
    uint64_t     version;           /* 0: none published */
    int64_t      created_at;
    uint32_t     narms;
    cef_span_t  *arms;
    uint32_t    *bp;
    void        *mem;               /* one allocation holds it all */
} ngx_http_cef_weights_t;

static ngx_http_cef_weights_t  ngx_http_cef_weights[NGX_HTTP_CEF_WEIGHTS_CACHE];
static ngx_uint_t              ngx_http_cef_nweights;
static cef_store_pub_stamp_t   ngx_http_cef_weights_stamp;
static cef_store_t            *ngx_http_cef_weights_of;


static int ngx_http_cef_weights_get(ngx_http_request_t *r,
    const char *experiment, const char *salt, cef_plugin_weights_t *out);


static void
ngx_http_cef_weights_flush(void)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_cef_nweights; i++) {
        ngx_free(ngx_http_cef_weights[i].mem);
    }

    ngx_http_cef_nweights = 0;
}


/* e from one allocation: the arms' spans and basis points (if w), the
   experiment, the salt, the arm names; -1 when out of memory */
static int
ngx_http_cef_weights_keep(ngx_http_cef_weights_t *e, const char *experiment,
    const char *salt, const cef_store_weights_t *w)
{
    u_char           *p;
    size_t            elen, slen, size, pos;
    uint32_t          i, narms;
    cef_store_arm_t   arm;

    elen = ngx_strlen(experiment) + 1;
    slen = ngx_strlen(salt) + 1;
    narms = w ? w->narms : 0;
    size = elen + slen + narms * (sizeof(cef_span_t) + sizeof(uint32_t))
           + (w ? w->arms_len : 0) + sizeof(cef_span_t);

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return -1;
    }

    e->mem = p;
    e->arms = (cef_span_t *) p;                 /* spans first: aligned */
    e->bp = (uint32_t *) (p + narms * sizeof(cef_span_t));
    p = (u_char *) (e->bp + narms);
    e->experiment = (char *) p;
    p = ngx_cpymem(p, experiment, elen);
    e->salt = (char *) p;
    p = ngx_cpymem(p, salt, slen);

    e->version = 0;
    e->created_at = 0;
    e->narms = 0;

    if (w == NULL) {
        return 0;
    }

    for (pos = 0, i = 0; i < narms && cef_store_weights_arm(w, &pos, &arm);
         i++)
    {
        e->arms[i].data = (const char *) p;
        e->arms[i].len = arm.name.len;
        p = ngx_cpymem(p, arm.name.data, arm.name.len);
        e->bp[i] = arm.bp;
    }

    e->narms = i;
    e->version = w->version;
    e->created_at = w->created_at;

    return 0;
}


int
ngx_http_cef_store_weights(void *data, const char *experiment,
    const char *salt, cef_plugin_weights_t *out)
{
    int                  rc;
    ngx_uint_t           own;
    ngx_http_request_t  *r = data;

    if (ngx_http_cef_store_handle == NULL || r == NULL) {
        return 0;
    }

    /* the request's session when it has one (a recognised visitor), else
       one of our own, for this look-up only */

    own = !ngx_http_cef_store_open;

    if (own && ngx_http_cef_store_begin(r) != NGX_OK) {
        return 0;
    }

    rc = ngx_http_cef_weights_get(r, experiment, salt, out);

    if (own) {
        ngx_http_cef_store_end();
    }

    return rc;
}


static int
ngx_http_cef_weights_get(ngx_http_request_t *r, const char *experiment,
    const char *salt, cef_plugin_weights_t *out)
{
    int                      rc;
    ngx_uint_t               i;
    cef_store_t             *s;
    cef_store_weights_t      w;
    ngx_http_cef_weights_t  *e;

    s = ngx_http_cef_store_handle;

    if (s != ngx_http_cef_weights_of) {
        ngx_http_cef_weights_flush();
        ngx_memzero(&ngx_http_cef_weights_stamp, sizeof(cef_store_pub_stamp_t));
        ngx_http_cef_weights_of = s;
    }

    ngx_http_cef_store_call(rc, cef_store_published_changed(s,
                                    &ngx_http_cef_weights_stamp));

    if (rc == CEF_STORE_ERROR) {
        return 0;
    }

    if (rc == 1) {
        ngx_http_cef_weights_flush();
    }

    for (i = 0; i < ngx_http_cef_nweights; i++) {
        e = &ngx_http_cef_weights[i];

        if (ngx_strcmp(e->experiment, experiment) == 0
            && ngx_strcmp(e->salt, salt) == 0)
        {
            goto found;
        }
    }

    /* not asked since the last change: read it */

    ngx_http_cef_store_call(rc, cef_store_weights_get(s, experiment,
                                    ngx_strlen(experiment), salt,
                                    ngx_strlen(salt), &w));

    if (rc == CEF_STORE_ERROR) {
        ngx_http_cef_store_log_fault(r->connection->log,
                                     NGX_HTTP_CEF_FAULT_LOOKUP,
                                     ngx_http_cef_store_gen(),
                                     "cef: reading the weights of \"%s\" "
                                     "failed: %s: uniform", experiment,
                                     cef_store_strerror(s));
        return 0;
    }

    if (ngx_http_cef_nweights == NGX_HTTP_CEF_WEIGHTS_CACHE) {
        ngx_http_cef_weights_flush();
    }

    e = &ngx_http_cef_weights[ngx_http_cef_nweights];

    ngx_http_cef_store_in_lib++;
    rc = ngx_http_cef_weights_keep(e, experiment, salt,
                                   rc == CEF_STORE_OK ? &w : NULL);
    ngx_http_cef_store_in_lib--;

    if (rc != 0) {
        return 0;
    }

    ngx_http_cef_nweights++;

found:

    if (e->version == 0) {
        return 0;
    }

    out->version = e->version;
    out->created_at = e->created_at;
    out->narms = e->narms;
    out->arms = e->arms;
    out->bp = e->bp;

    return 1;
}


/*
 * The metrics of published weights: per record in the store, its version
 * and age (now - created_at), for the metrics page.
 */

typedef struct {
    ngx_http_request_t  *r;
    u_char              *p;
    u_char              *last;
    ngx_uint_t           n;
} ngx_http_cef_weights_print_t;


static u_char *
ngx_http_cef_weights_labels(u_char *p, u_char *last, cef_span_t experiment,
    cef_span_t salt)
{
    char  buf[CEF_STORE_WEIGHTS_NAME_MAX + 1];

    p = ngx_slprintf(p, last, "{experiment=\"");
    ngx_memcpy(buf, experiment.data, ngx_min(experiment.len,
                                             CEF_STORE_WEIGHTS_NAME_MAX));
    buf[ngx_min(experiment.len, CEF_STORE_WEIGHTS_NAME_MAX)] = '\0';
    p = ngx_http_cef_counters_label(p, last, buf);
    p = ngx_slprintf(p, last, "\",salt=\"");
    ngx_memcpy(buf, salt.data, ngx_min(salt.len, CEF_STORE_WEIGHTS_NAME_MAX));
    buf[ngx_min(salt.len, CEF_STORE_WEIGHTS_NAME_MAX)] = '\0';
    p = ngx_http_cef_counters_label(p, last, buf);

    return ngx_slprintf(p, last, "\"}");
}


static int
ngx_http_cef_weights_print_one(void *data, const cef_store_weights_t *w)
{
    ngx_http_cef_weights_print_t  *pr = data;

    if (pr->last - pr->p < 2048) {
        return 1;                       /* no room for a whole entry */
    }

    if (pr->n++ == 0) {
        pr->p = ngx_slprintf(pr->p, pr->last,
                             "# TYPE cef_bandit_weights_version gauge\n"
                             "# TYPE cef_bandit_weights_age_seconds gauge\n");
    }

    pr->p = ngx_slprintf(pr->p, pr->last, "cef_bandit_weights_version");
    pr->p = ngx_http_cef_weights_labels(pr->p, pr->last, w->experiment,
                                        w->salt);
    pr->p = ngx_slprintf(pr->p, pr->last, " %uL\ncef_bandit_weights_age_"
                         "seconds", w->version);
    pr->p = ngx_http_cef_weights_labels(pr->p, pr->last, w->experiment,
                                        w->salt);
    pr->p = ngx_slprintf(pr->p, pr->last, " %L\n",
                         (int64_t) ngx_time() - w->created_at);

    return 0;
}


static void *
ngx_http_cef_weights_print_read(void *data)
{
    ngx_http_cef_weights_print_t  *pr = data;

    if (ngx_http_cef_store_session(pr->r) != NGX_OK) {
        return NULL;
    }

    (void) cef_store_weights_each(ngx_http_cef_store_handle,
                                  ngx_http_cef_weights_print_one, pr);

    ngx_http_cef_store_end();

    return NULL;
}


u_char *
ngx_http_cef_store_weights_print(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_http_cef_weights_print_t  pr;

    pr.r = r;
    pr.p = p;
    pr.last = last;
    pr.n = 0;

    (void) ngx_http_cef_store_guard(r, r->connection->log,
                                    ngx_http_cef_weights_print_read, &pr,
                                    NULL);

    return pr.p;
}


ngx_int_t
ngx_http_cef_store_find(ngx_http_request_t *r, ngx_str_t *type,
    ngx_str_t *value, ngx_http_cef_identity_t *id)
{
    uint8_t                    key[CEF_IDENTITY_HASH_LEN];
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    if (type->len == 0
        || cef_identity_hash(cmcf->store_hash, (char *) type->data, type->len,
                             (char *) value->data, value->len, key)
           != 0)
    {
        return NGX_DECLINED;
    }

    return ngx_http_cef_store_find_key(r, key, id);
}


/* by the store key itself, as a link token carries it */

ngx_int_t
ngx_http_cef_store_find_key(ngx_http_request_t *r, const uint8_t *key,
    ngx_http_cef_identity_t *id)
{
    int             rc;
    cef_profile_t  *p;

    p = &id->view;

    ngx_http_cef_store_call(rc,
        cef_store_lookup_hash(ngx_http_cef_store_handle, key, p));

    if (rc == CEF_STORE_ERROR) {
        ngx_http_cef_store_log_fault(r->connection->log,
                             NGX_HTTP_CEF_FAULT_LOOKUP,
                             ngx_http_cef_store_gen(),
                             "cef: store lookup failed: %s",
                             cef_store_strerror(ngx_http_cef_store_handle));
        return NGX_DECLINED;
    }

    if (rc != CEF_STORE_OK) {
        ngx_http_cef_metric(NGX_HTTP_CEF_M_LOOKUP_MISS);
        return NGX_DECLINED;
    }

    ngx_http_cef_metric(NGX_HTTP_CEF_M_LOOKUP_HIT);

    id->profile_id.data = ngx_pnalloc(r->main->pool, p->id.len);
    if (id->profile_id.data == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(id->profile_id.data, p->id.data, p->id.len);
    id->profile_id.len = p->id.len;
    id->view_valid = 1;

    return NGX_OK;
}


/* The visitor's profile, read in place: valid until the session ends. */

ngx_int_t
ngx_http_cef_store_profile(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    cef_profile_t *p)
{
    int                        rc;
    ngx_http_cef_main_conf_t  *cmcf;

    if (id->profile_id.len == 0) {
        return NGX_DECLINED;
    }

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    ngx_http_cef_store_call(rc,
        cef_store_lookup_id(ngx_http_cef_store_handle, cmcf->store_hash,
                            (char *) id->profile_id.data,
                            id->profile_id.len, p));

    if (rc == CEF_STORE_ERROR) {
        ngx_http_cef_store_log_fault(r->connection->log,
                             NGX_HTTP_CEF_FAULT_PROFILE,
                             ngx_http_cef_store_gen(),
                             "cef: store lookup of profile \"%V\" failed: "
                             "%s", &id->profile_id,
                             cef_store_strerror(ngx_http_cef_store_handle));
    }

    return rc == CEF_STORE_OK ? NGX_OK : NGX_DECLINED;
}


/*
 * The profile's attributes, rendered as text into the request pool on
 * first use: LMDB views die with the session, a request outlives it.
 */

ngx_int_t
ngx_http_cef_store_attr(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    ngx_str_t *name, ngx_str_t *out)
{
    ngx_uint_t                 i;
    ngx_http_cef_attr_t       *attr;
    ngx_http_cef_store_read_t  rd;

    if (id->profile_id.len == 0) {
        return NGX_DECLINED;
    }

    if (id->attrs == NULL) {
        rd.r = r;
        rd.id = id;
        rd.rc = NGX_DECLINED;

        (void) ngx_http_cef_store_guard(r, r->connection->log,
                                        ngx_http_cef_store_attr_read, &rd,
                                        NULL);

        if (rd.rc != NGX_OK) {
            id->attrs = NULL;
            return NGX_DECLINED;
        }
    }

    attr = id->attrs->elts;

    for (i = 0; i < id->attrs->nelts; i++) {
        if (attr[i].name.len == name->len
            && ngx_strncmp(attr[i].name.data, name->data, name->len) == 0)
        {
            *out = attr[i].value;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void *
ngx_http_cef_store_attr_read(void *data)
{
    ngx_http_cef_store_read_t *rd = data;

    int                        rc;
    cef_profile_t              p;
    ngx_http_cef_main_conf_t  *cmcf;

    if (ngx_http_cef_store_session(rd->r) != NGX_OK) {
        return NULL;
    }

    cmcf = ngx_http_get_module_main_conf(rd->r, NGX_HTTP_CEF);

    ngx_http_cef_store_call(rc,
        cef_store_lookup_id(ngx_http_cef_store_handle, cmcf->store_hash,
                            (char *) rd->id->profile_id.data,
                            rd->id->profile_id.len, &p));

    rd->rc = (rc == CEF_STORE_OK)
             ? ngx_http_cef_render_attrs(rd->r, rd->id, &p) : NGX_DECLINED;

    ngx_http_cef_store_end();

    return NULL;
}


static ngx_int_t
ngx_http_cef_render_attrs(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    cef_profile_t *p)
{
    int                   rc;
    size_t                pos, len;
    cef_span_t            name;
    cef_value_t           v;
    ngx_pool_t           *pool;
    ngx_http_cef_attr_t  *attr;

    pool = r->main->pool;

    id->attrs = ngx_array_create(pool, p->nattrs ? p->nattrs : 1,
                                 sizeof(ngx_http_cef_attr_t));
    if (id->attrs == NULL) {
        return NGX_ERROR;
    }

    pos = 0;

    while ((rc = cef_profile_next(p, &pos, &name, &v)) == 1) {
        attr = ngx_array_push(id->attrs);
        if (attr == NULL) {
            return NGX_ERROR;
        }

        attr->name.data = ngx_pnalloc(pool, name.len);
        attr->value.data = ngx_http_cef_render_value(pool, &v, &len);
        if (attr->name.data == NULL || attr->value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(attr->name.data, name.data, name.len);
        attr->name.len = name.len;
        attr->value.len = len;
    }

    if (rc < 0) {
        ngx_http_cef_store_log_fault(r->connection->log,
                                     NGX_HTTP_CEF_FAULT_MALFORMED,
                                     ngx_http_cef_store_gen(),
                                     "cef: profile \"%V\" is malformed in "
                                     "the store", &id->profile_id);
        id->attrs->nelts = 0;
    }

    return NGX_OK;
}


/* numbers as written, strings raw, arrays and maps comma-joined */

static u_char *
ngx_http_cef_render_value(ngx_pool_t *pool, const cef_value_t *v, size_t *len)
{
    u_char      *buf, *p, *last;
    size_t       size, pos;
    double       num;
    cef_span_t   s;

    switch (v->type) {

    case CEF_VAL_STR:
        buf = ngx_pnalloc(pool, v->u.s.len + 1);
        if (buf == NULL) {
            return NULL;
        }
        ngx_memcpy(buf, v->u.s.data, v->u.s.len);
        *len = v->u.s.len;
        return buf;

    case CEF_VAL_STR_ARRAY:
    case CEF_VAL_NUM_MAP:
        size = 1;
        pos = 0;

        if (v->type == CEF_VAL_STR_ARRAY) {
            while (cef_value_array_next(v, &pos, &s) == 1) {
                size += s.len + 1;
            }

        } else {
            while (cef_value_map_next(v, &pos, &s, &num) == 1) {
                size += s.len + 1 + NGX_INT64_LEN + 24;
            }
        }

        buf = ngx_pnalloc(pool, size);
        if (buf == NULL) {
            return NULL;
        }

        p = buf;
        last = buf + size;
        pos = 0;

        if (v->type == CEF_VAL_STR_ARRAY) {
            while (cef_value_array_next(v, &pos, &s) == 1) {
                p = ngx_slprintf(p, last, "%s%*s", p == buf ? "" : ",",
                                 s.len, s.data);
            }

        } else {
            while (cef_value_map_next(v, &pos, &s, &num) == 1) {
                p = ngx_slprintf(p, last, "%s%*s:", p == buf ? "" : ",",
                                 s.len, s.data);
                p += snprintf((char *) p, last - p, "%.15g", num);
            }
        }

        *len = p - buf;
        return buf;

    default:
        buf = ngx_pnalloc(pool, NGX_INT64_LEN + 32);
        if (buf == NULL) {
            return NULL;
        }

        switch (v->type) {
        case CEF_VAL_BOOL:
            p = ngx_sprintf(buf, "%s", v->u.b ? "true" : "false");
            break;
        case CEF_VAL_INT:
            p = ngx_sprintf(buf, "%L", v->u.i);
            break;
        case CEF_VAL_FLOAT:
            p = buf + snprintf((char *) buf, NGX_INT64_LEN + 32, "%.15g",
                               v->u.f);
            break;
        default:
            p = buf;
        }

        *len = p - buf;
        return buf;
    }
}


/* seconds since the store's last load or applied delta batch */

time_t
ngx_http_cef_store_age(cef_store_info_t *info)
{
    time_t  age;

    age = ngx_time() - (time_t) info->updated_at;

    return age > 0 ? age : 0;
}
