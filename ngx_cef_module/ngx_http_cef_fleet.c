/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule sets served from the store (docs/deploying-rules.md):
 * "cef_rules store:NAME [fallback=FILE] [threads=POOL];" makes a location
 * use the version of NAME that cef-sync published as live, and its
 * candidate for a sticky share of visitors (canary) or, in addition and
 * unseen, for a sample of them (shadow, $cef_shadow_decision).
 *
 * Each worker polls the store's change stamp every
 * NGX_HTTP_CEF_FLEET_POLL ms (free until a write commits).  When NAME
 * changed, the sources of the versions it does not have compiled yet are
 * copied out of the store and compiled in an nginx thread pool; the old
 * sets serve meanwhile.  Back in the event loop the new sets are switched
 * in by assigning two pointers: a request pins the set it decided with
 * (a reference count, dropped by its pool's cleanup), so one request sees
 * exactly one set, and a set is freed when its last request ends.  A
 * version that does not compile here (an unknown var.*, a missing plugin)
 * is logged once and remembered; the previous set keeps serving; so is
 * a version that lacks a goal a cef_goal of its locations records.  At
 * worker start the live version is compiled before the worker takes
 * requests (its predecessor, on a reload, still serves); with no usable
 * version the fallback file serves, else the generic page (logged).
 */


#include "ngx_http_cef_module.h"

#include "cef_bucket.h"
#include "cef_plugins.h"
#include "cef_store_rules.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


#define NGX_HTTP_CEF_FLEET_POLL     250     /* ms */
#define NGX_HTTP_CEF_FLEET_FAILED   16      /* versions remembered as bad */


typedef struct {
    ngx_http_cef_rules_t       *rules;
    ngx_http_cef_record_conf_t *record;
    ngx_http_cef_set_goal_t    *goals;      /* the fleet's goals, bound */
    ngx_uint_t                  refs;       /* the fleet's + requests' */
    u_char                      hex[65];
} ngx_http_cef_fleet_set_t;


/* one version to compile: copied out of the store, compiled in a thread */
typedef struct {
    u_char                      hex[65];
    char                       *source;     /* malloc'ed */
    size_t                      len;
    cef_rules_t                *rs;         /* the result */
    char                        error[512];
} ngx_http_cef_fleet_src_t;


typedef struct {
#if (NGX_THREADS)
    ngx_thread_task_t           task;
#endif
    ngx_http_cef_fleet_t       *fleet;
    uint64_t                    version;
    ngx_int_t                   mode;
    ngx_uint_t                  share;      /* basis points */
    u_char                      live[65];   /* "" none */
    u_char                      cand[65];
    ngx_http_cef_fleet_src_t    src[2];
    ngx_uint_t                  nsrc;
} ngx_http_cef_fleet_job_t;


struct ngx_http_cef_fleet_s {
    ngx_str_t                   name;
    ngx_str_t                   fallback_path;
    ngx_http_cef_rules_t       *fallback;   /* compiled at configuration */
    cef_plugins_t              *plugins;
    ngx_array_t                *goals;      /* of ngx_http_cef_goal_t *: the
                                               cef_goal of its locations */
    ngx_array_t                *fallback_goals;  /* ngx_http_cef_set_goal_t */
#if (NGX_THREADS)
    ngx_thread_pool_t          *pool;
#endif

    /* per worker */
    ngx_http_cef_fleet_set_t   *live;
    ngx_http_cef_fleet_set_t   *cand;
    ngx_http_cef_fleet_set_t    fallback_set;
    ngx_int_t                   mode;       /* of cand */
    ngx_uint_t                  share;
    uint64_t                    version;    /* of NAME's state acted on */
    ngx_uint_t                  compiling;
    ngx_uint_t                  nfailed;
    u_char                      failed[NGX_HTTP_CEF_FLEET_FAILED][65];
    u_char                      live_failed[65];  /* for the metric */
    u_char                      cand_failed[65];
    ngx_uint_t                  none_logged;
};


static ngx_int_t ngx_http_cef_fleet_read(cef_store_t *s, void *data);
static void ngx_http_cef_fleet_compile(void *data, ngx_log_t *log);
static void ngx_http_cef_fleet_install(ngx_http_cef_fleet_job_t *job,
    ngx_log_t *log);
static void ngx_http_cef_fleet_job_free(ngx_http_cef_fleet_job_t *job);
static void ngx_http_cef_fleet_unref(ngx_http_cef_fleet_set_t *set);
static void ngx_http_cef_fleet_poll(ngx_event_t *ev);
static void ngx_http_cef_fleet_unpin(void *data);


static ngx_array_t  *ngx_http_cef_fleets;     /* of ngx_http_cef_fleet_t * */
static ngx_event_t   ngx_http_cef_fleet_timer;
static ngx_connection_t  ngx_http_cef_fleet_dummy;


static void
ngx_http_cef_fleet_forget(void *data)
{
    if (ngx_http_cef_fleets == data) {
        ngx_http_cef_fleets = NULL;
    }
}


/* "cef_rules FILE | off | store:NAME [fallback=FILE] [threads=POOL]" */

char *
ngx_http_cef_fleet_rules(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t  *clcf = conf;

    ngx_str_t              *value, pool, s;
    ngx_uint_t              i;
    ngx_pool_cleanup_t     *cln;
    ngx_http_cef_fleet_t   *f, **fp;

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "store:", 6) != 0) {
        if (cf->args->nelts != 2) {
            return "takes options only with store:NAME";
        }

        return ngx_http_cef_rules(cf, cmd, conf);
    }

    if (clcf->rules != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    s.data = value[1].data + 6;
    s.len = value[1].len - 6;

    if (!cef_store_rules_name_ok((char *) s.data, s.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cef_rules: invalid rule-set name \"%V\" (1 to %d "
                           "of A-Z a-z 0-9 . _ -)", &s,
                           CEF_STORE_RULES_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&pool, "default");

    if (ngx_http_cef_fleets == NULL
        || ngx_http_cef_fleets->pool != cf->pool)
    {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_http_cef_fleets = ngx_array_create(cf->pool, 2,
                                              sizeof(ngx_http_cef_fleet_t *));
        if (ngx_http_cef_fleets == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_cef_fleet_forget;
        cln->data = ngx_http_cef_fleets;
    }

    f = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_fleet_t));
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    f->name = s;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "fallback=", 9) == 0) {
            f->fallback_path.data = value[i].data + 9;
            f->fallback_path.len = value[i].len - 9;

                /* compiled and checked now, as a file-based set is */

            f->fallback = ngx_http_cef_rules_file(cf, &f->fallback_path);
            if (f->fallback == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "threads=", 8) == 0) {
            pool.data = value[i].data + 8;
            pool.len = value[i].len - 8;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cef_rules: invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    /* locations naming the same set (and fallback) share one compiled
       copy per worker */

    fp = ngx_http_cef_fleets->elts;

    for (i = 0; i < ngx_http_cef_fleets->nelts; i++) {
        if (fp[i]->name.len == f->name.len
            && ngx_strncmp(fp[i]->name.data, f->name.data, f->name.len) == 0
            && fp[i]->fallback == f->fallback)
        {
            clcf->rules = NULL;
            clcf->fleet = fp[i];
            return NGX_CONF_OK;
        }
    }

    f->plugins = ngx_http_cef_plugins(cf);

#if (NGX_THREADS)
    f->pool = ngx_thread_pool_add(cf, &pool);
    if (f->pool == NULL) {
        return NGX_CONF_ERROR;
    }
#endif

    fp = ngx_array_push(ngx_http_cef_fleets);
    if (fp == NULL) {
        return NGX_CONF_ERROR;
    }

    *fp = f;

    clcf->rules = NULL;
    clcf->fleet = f;

    return ngx_http_cef_rules_add_variables(cf);
}


/* Postconfiguration: store:NAME reads the store, so cef_store is needed. */

ngx_int_t
ngx_http_cef_fleet_check_conf(ngx_conf_t *cf)
{
    ngx_http_cef_fleet_t     **fp;
    ngx_http_cef_main_conf_t  *cmcf;

    if (ngx_http_cef_fleets == NULL || ngx_http_cef_fleets->nelts == 0
        || ngx_http_cef_fleets->pool != cf->pool)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, NGX_HTTP_CEF);

    if (cmcf->store_dir.data) {
        return NGX_OK;
    }

    fp = ngx_http_cef_fleets->elts;

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "cef_rules store:%V needs a store: add \"cef_store DIR;\" "
                  "to the http block", &fp[0]->name);

    return NGX_ERROR;
}


/*
 * The one judgement of a goal against a rule set: g must be declared in
 * its goals:, with bounds when g records a value.  NGX_OK: *out is the
 * declaration and the record's format (freed with pool); NGX_DECLINED:
 * why says what is missing, naming the goal and its directive's file:line.
 */
static void
ngx_http_cef_fleet_goal_cleanup(void *data)
{
    cef_goal_fmt_free(data);
}


ngx_int_t
ngx_http_cef_fleet_bind_goal(ngx_http_cef_goal_t *g,
    ngx_http_cef_rules_t *rules, ngx_pool_t *pool,
    ngx_http_cef_set_goal_t *out, u_char *why, size_t size)
{
    const cef_rules_t   *rs;
    ngx_pool_cleanup_t  *cln;

    rs = ngx_http_cef_rules_set(rules);

    out->fmt = NULL;
    out->decl = cef_rules_goals_find(rs, (const char *) g->name.data,
                                     g->name.len);

    if (out->decl == NULL) {
        ngx_snprintf(why, size - 1, "cef_goal: goal \"%V\" is not declared "
                     "in the goals: section of \"%V\" in %V:%ui%Z",
                     &g->name, ngx_http_cef_rules_path(rules), &g->file,
                     g->line);
        why[size - 1] = '\0';
        return NGX_DECLINED;
    }

    if (g->value && !out->decl->has_value) {
        ngx_snprintf(why, size - 1, "cef_goal: goal \"%V\" takes no value: "
                     "declare its bounds (min: and max:) in \"%V\" to "
                     "record one, in %V:%ui%Z", &g->name,
                     ngx_http_cef_rules_path(rules), &g->file, g->line);
        why[size - 1] = '\0';
        return NGX_DECLINED;
    }

    /* the record's fixed text, once: a request only copies it */

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    out->fmt = cef_goal_fmt_create(rs, out->decl->name);
    if (out->fmt == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_cef_fleet_goal_cleanup;
    cln->data = out->fmt;

    return NGX_OK;
}


/*
 * At merge: a cef_goal in a location serving store:NAME.  Every version
 * compiled later is checked against it (ngx_http_cef_fleet_adopt()); the
 * fallback file now, at g's file:line.
 */
ngx_int_t
ngx_http_cef_fleet_add_goal(ngx_conf_t *cf, ngx_http_cef_fleet_t *f,
    ngx_http_cef_goal_t *g)
{
    u_char                    why[512];
    ngx_int_t                 rc;
    ngx_http_cef_goal_t     **gp;
    ngx_http_cef_set_goal_t  *sg;

    if (f->goals == NULL) {
        f->goals = ngx_array_create(cf->pool, 2,
                                    sizeof(ngx_http_cef_goal_t *));
        f->fallback_goals = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_cef_set_goal_t));
        if (f->goals == NULL || f->fallback_goals == NULL) {
            return NGX_ERROR;
        }
    }

    gp = ngx_array_push(f->goals);
    sg = ngx_array_push(f->fallback_goals);
    if (gp == NULL || sg == NULL) {
        return NGX_ERROR;
    }

    *gp = g;
    g->fleet = f;
    g->index = f->goals->nelts - 1;
    ngx_memzero(sg, sizeof(ngx_http_cef_set_goal_t));

    if (f->fallback == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_cef_fleet_bind_goal(g, f->fallback, cf->pool, sg, why,
                                      sizeof(why));

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s (the fallback of "
                      "store:%V)", why, &f->name);
    }

    return rc == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* --- the worker's view ---------------------------------------------------- */


static ngx_uint_t
ngx_http_cef_fleet_is_failed(ngx_http_cef_fleet_t *f, u_char *hex)
{
    ngx_uint_t  i;

    for (i = 0; i < f->nfailed && i < NGX_HTTP_CEF_FLEET_FAILED; i++) {
        if (ngx_strcmp(f->failed[i], hex) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_http_cef_fleet_set_t *
ngx_http_cef_fleet_have(ngx_http_cef_fleet_t *f, u_char *hex)
{
    if (f->live && ngx_strcmp(f->live->hex, hex) == 0) {
        return f->live;
    }

    if (f->cand && ngx_strcmp(f->cand->hex, hex) == 0) {
        return f->cand;
    }

    return NULL;
}


typedef struct {
    ngx_http_cef_fleet_t       *fleet;
    ngx_http_cef_fleet_job_t   *job;        /* NULL: nothing changed */
    ngx_log_t                  *log;
} ngx_http_cef_fleet_read_t;


/* copy version i's source out, if this worker needs to compile it */

static ngx_int_t
ngx_http_cef_fleet_want(cef_store_t *s, cef_store_rules_t *r, int i,
    ngx_http_cef_fleet_job_t *job, u_char *hex)
{
    ngx_http_cef_fleet_src_t   *src;
    cef_store_rules_version_t   v;

    hex[0] = '\0';

    if (i < 0 || cef_store_rules_at(r, (uint32_t) i, &v) != 0) {
        return NGX_OK;
    }

    ngx_memcpy(hex, v.hex, 65);

    if (ngx_http_cef_fleet_have(job->fleet, hex)
        || ngx_http_cef_fleet_is_failed(job->fleet, hex))
    {
        return NGX_OK;
    }

    if (cef_store_rules_source(s, r, &v) != CEF_STORE_OK) {
        return NGX_ERROR;
    }

    src = &job->src[job->nsrc];
    src->source = malloc(v.source.len + 1);
    if (src->source == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(src->source, v.source.data, v.source.len);
    src->source[v.source.len] = '\0';
    src->len = v.source.len;
    ngx_memcpy(src->hex, hex, 65);
    job->nsrc++;

    return NGX_OK;
}


/* Inside the store session: has NAME changed since the worker looked? */

static ngx_int_t
ngx_http_cef_fleet_read(cef_store_t *s, void *data)
{
    ngx_http_cef_fleet_read_t *rd = data;

    cef_store_rules_t          r;
    ngx_http_cef_fleet_t      *f;
    ngx_http_cef_fleet_job_t  *job;

    f = rd->fleet;

    switch (cef_store_rules_get(s, (char *) f->name.data, f->name.len, &r)) {

    case CEF_STORE_OK:
        break;

    case CEF_STORE_NOTFOUND:
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }

    if (r.version == f->version) {
        return NGX_OK;
    }

    job = calloc(1, sizeof(ngx_http_cef_fleet_job_t));
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->fleet = f;
    job->version = r.version;
    job->mode = r.candidate >= 0 ? r.mode : CEF_STORE_RULES_NONE;
    job->share = r.share;

    if (ngx_http_cef_fleet_want(s, &r, r.live, job, job->live) != NGX_OK
        || ngx_http_cef_fleet_want(s, &r,
                                   job->mode == CEF_STORE_RULES_NONE
                                   ? -1 : r.candidate, job, job->cand)
           != NGX_OK)
    {
        ngx_http_cef_fleet_job_free(job);
        return NGX_ERROR;
    }

    rd->job = job;

    return NGX_OK;
}


static void
ngx_http_cef_fleet_job_free(ngx_http_cef_fleet_job_t *job)
{
    ngx_uint_t  i;

    for (i = 0; i < job->nsrc; i++) {
        free(job->src[i].source);

        if (job->src[i].rs) {
            cef_rules_free(job->src[i].rs);
        }
    }

    free(job);
}


/* In a thread (or inline): compile the sources.  Plain C, no nginx state. */

static void
ngx_http_cef_fleet_compile(void *data, ngx_log_t *log)
{
    ngx_http_cef_fleet_job_t *job = data;

    char                       name[CEF_STORE_RULES_NAME_MAX + 32];
    ngx_uint_t                 i;
    cef_rules_errors_t         errs;
    ngx_http_cef_fleet_src_t  *src;

    for (i = 0; i < job->nsrc; i++) {
        src = &job->src[i];

        ngx_snprintf((u_char *) name, sizeof(name) - 1, "store:%V@%.12s%Z",
                     &job->fleet->name, src->hex);

        if (cef_rules_load_buffer_with(name, src->source, src->len,
                                       job->fleet->plugins, &src->rs, &errs)
            != 0)
        {
            src->rs = NULL;

            if (errs.n) {
                cef_rules_error_format(&errs, 0, src->error,
                                       sizeof(src->error));
            } else {
                ngx_cpystrn((u_char *) src->error, (u_char *) "cannot compile",
                            sizeof(src->error));
            }
        }

        cef_rules_errors_free(&errs);
    }
}


static void
ngx_http_cef_fleet_failed(ngx_http_cef_fleet_t *f, u_char *hex,
    const char *why, ngx_log_t *log)
{
    ngx_memcpy(f->failed[f->nfailed % NGX_HTTP_CEF_FLEET_FAILED], hex, 65);
    f->nfailed++;

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "cef_rules store:%V: version %s cannot be served here: %s; "
                  "the previous set keeps serving", &f->name, hex, why);
}


/* A compiled source made servable, or NULL (logged once, remembered). */

static ngx_http_cef_fleet_set_t *
ngx_http_cef_fleet_adopt(ngx_http_cef_fleet_t *f,
    ngx_http_cef_fleet_src_t *src, ngx_log_t *log)
{
    u_char                     unknown[128], why[512];
    ngx_uint_t                 i;
    ngx_http_cef_goal_t      **gp;
    u_char                     buf[CEF_STORE_RULES_NAME_MAX + 32];
    ngx_str_t                  label;
    ngx_int_t                  rc;
    ngx_http_cef_rules_t      *rules;
    ngx_http_cef_fleet_set_t  *set;

    if (src->rs == NULL) {
        ngx_http_cef_fleet_failed(f, src->hex, src->error, log);
        return NULL;
    }

    label.data = buf;
    label.len = ngx_snprintf(buf, sizeof(buf), "store:%V@%.12s", &f->name,
                             src->hex) - buf;

    rc = ngx_http_cef_rules_adopt(src->rs, &label, log, &rules, unknown,
                                  sizeof(unknown));

    if (rc == NGX_DECLINED) {
        ngx_snprintf(why, sizeof(why), "unknown nginx variable \"%s\" "
                     "(var.%s)%Z", unknown, unknown);
        ngx_http_cef_fleet_failed(f, src->hex, (char *) why, log);
        return NULL;
    }

    if (rc != NGX_OK) {
        ngx_http_cef_fleet_failed(f, src->hex, "out of memory", log);
        return NULL;
    }

    src->rs = NULL;     /* the set's now */

    set = ngx_pcalloc(ngx_http_cef_rules_pool(rules),
                      sizeof(ngx_http_cef_fleet_set_t));
    if (set == NULL) {
        ngx_http_cef_rules_release(rules);
        return NULL;
    }

    set->rules = rules;
    set->refs = 1;
    ngx_memcpy(set->hex, src->hex, 65);

    set->record = ngx_http_cef_record_conf_make(
                                   ngx_http_cef_rules_pool(rules), rules);
    if (set->record == NULL) {
        ngx_http_cef_rules_release(rules);
        return NULL;
    }

    /* a version without a goal the locations record is not served */

    if (f->goals == NULL) {
        return set;
    }

    set->goals = ngx_pcalloc(ngx_http_cef_rules_pool(rules),
                             f->goals->nelts
                             * sizeof(ngx_http_cef_set_goal_t));
    if (set->goals == NULL) {
        ngx_http_cef_rules_release(rules);
        return NULL;
    }

    gp = f->goals->elts;

    for (i = 0; i < f->goals->nelts; i++) {
        rc = ngx_http_cef_fleet_bind_goal(gp[i], rules,
                                          ngx_http_cef_rules_pool(rules),
                                          &set->goals[i], why, sizeof(why));
        if (rc != NGX_OK) {
            ngx_http_cef_fleet_failed(f, src->hex,
                                      rc == NGX_DECLINED ? (char *) why
                                                         : "out of memory",
                                      log);
            ngx_http_cef_rules_release(rules);
            return NULL;
        }
    }

    return set;
}


/*
 * In the event loop: the switch.  The sets compiled now join those the
 * worker has; live and candidate are reassigned at once; a version that
 * failed leaves its slot as it was (the live one) or empty (a candidate).
 */
static void
ngx_http_cef_fleet_install(ngx_http_cef_fleet_job_t *job, ngx_log_t *log)
{
    ngx_uint_t                 i;
    ngx_http_cef_fleet_t      *f;
    ngx_http_cef_fleet_set_t  *made[2], *live, *cand, *set;

    f = job->fleet;

    for (i = 0; i < job->nsrc; i++) {
        made[i] = ngx_http_cef_fleet_adopt(f, &job->src[i], log);
    }

    /* the new live */

    live = f->live;
    f->live_failed[0] = '\0';

    if (job->live[0]) {
        set = ngx_http_cef_fleet_have(f, job->live);

        for (i = 0; set == NULL && i < job->nsrc; i++) {
            if (made[i] && ngx_strcmp(made[i]->hex, job->live) == 0) {
                set = made[i];
            }
        }

        if (set) {
            live = set;
        } else {
            ngx_memcpy(f->live_failed, job->live, 65);
        }
    }

    cand = NULL;
    f->cand_failed[0] = '\0';

    if (job->cand[0]) {
        cand = ngx_http_cef_fleet_have(f, job->cand);

        for (i = 0; cand == NULL && i < job->nsrc; i++) {
            if (made[i] && ngx_strcmp(made[i]->hex, job->cand) == 0) {
                cand = made[i];
            }
        }

        if (cand == NULL) {
            ngx_memcpy(f->cand_failed, job->cand, 65);
        }
    }

    /* references: the fleet holds one per slot */

    if (live) {
        live->refs++;
    }

    if (cand) {
        cand->refs++;
    }

    if (f->live) {
        ngx_http_cef_fleet_unref(f->live);
    }

    if (f->cand) {
        ngx_http_cef_fleet_unref(f->cand);
    }

    for (i = 0; i < job->nsrc; i++) {
        if (made[i]) {
            ngx_http_cef_fleet_unref(made[i]);  /* adopt's reference */
        }
    }

    if (live != f->live || cand != f->cand) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "cef_rules store:%V: serving %s%s%s%s",
                      &f->name, live ? (char *) live->hex : "nothing",
                      cand ? (job->mode == CEF_STORE_RULES_CANARY
                              ? ", canary " : ", shadow ") : "",
                      cand ? (char *) cand->hex : "", "");
    }

    f->live = live;
    f->cand = cand;
    f->mode = cand ? job->mode : CEF_STORE_RULES_NONE;
    f->share = job->share;
    f->version = job->version;
}


static void
ngx_http_cef_fleet_unref(ngx_http_cef_fleet_set_t *set)
{
    if (--set->refs == 0) {
        ngx_http_cef_rules_release(set->rules);
    }
}


#if (NGX_THREADS)

static void
ngx_http_cef_fleet_done(ngx_event_t *ev)
{
    ngx_http_cef_fleet_job_t  *job = ev->data;

    job->fleet->compiling = 0;

    ngx_http_cef_fleet_install(job, ngx_cycle->log);
    ngx_http_cef_fleet_job_free(job);
}

#endif


/*
 * Look at every fleet; sync: compile in this call (worker start), else in
 * the thread pool.
 */
static void
ngx_http_cef_fleet_check(ngx_log_t *log, ngx_uint_t sync)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_cef_fleet_t     **fp, *f;
    ngx_http_cef_main_conf_t  *cmcf;
    ngx_http_cef_fleet_read_t  rd;
#if (NGX_THREADS)
    ngx_thread_task_t         *task;
#endif

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, NGX_HTTP_CEF);
    fp = ngx_http_cef_fleets->elts;

    for (i = 0; i < ngx_http_cef_fleets->nelts; i++) {
        f = fp[i];

        if (f->compiling) {
            continue;
        }

        rd.fleet = f;
        rd.job = NULL;
        rd.log = log;

        rc = ngx_http_cef_store_published(log, cmcf, ngx_http_cef_fleet_read,
                                          &rd);

        if (rc == NGX_DECLINED && f->live == NULL && !f->none_logged) {
            f->none_logged = 1;
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cef_rules store:%V: nothing published under this "
                          "name yet: serving %s", &f->name,
                          f->fallback ? "the fallback file"
                                      : "the generic page");
        }

        if (rd.job == NULL) {
            continue;
        }

#if (NGX_THREADS)
        if (!sync && rd.job->nsrc) {
            task = &rd.job->task;
            task->ctx = rd.job;
            task->handler = ngx_http_cef_fleet_compile;
            task->event.handler = ngx_http_cef_fleet_done;
            task->event.data = rd.job;

            if (ngx_thread_task_post(f->pool, task) == NGX_OK) {
                f->compiling = 1;
                continue;
            }

            /* the queue is full: compile the next time round */
            ngx_http_cef_fleet_job_free(rd.job);
            continue;
        }
#endif

        ngx_http_cef_fleet_compile(rd.job, log);
        ngx_http_cef_fleet_install(rd.job, log);
        ngx_http_cef_fleet_job_free(rd.job);

        if (f->live == NULL && !f->none_logged) {
            f->none_logged = 1;
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cef_rules store:%V: no usable live version: "
                          "serving %s", &f->name,
                          f->fallback ? "the fallback file"
                                      : "the generic page");
        }
    }
}


static void
ngx_http_cef_fleet_poll(ngx_event_t *ev)
{
    ngx_http_cef_fleet_check(ev->log, 0);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, NGX_HTTP_CEF_FLEET_POLL);
    }
}


ngx_int_t
ngx_http_cef_fleet_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t              i;
    ngx_http_cef_fleet_t  **fp, *f;

    if (ngx_http_cef_fleets == NULL || ngx_http_cef_fleets->nelts == 0
        || ngx_http_cef_fleets->pool != cycle->pool)
    {
        return NGX_OK;
    }

    fp = ngx_http_cef_fleets->elts;

    for (i = 0; i < ngx_http_cef_fleets->nelts; i++) {
        f = fp[i];

        if (f->fallback) {
            f->fallback_set.rules = f->fallback;
            f->fallback_set.refs = 1;       /* never released */
            f->fallback_set.record = ngx_http_cef_record_conf_make(
                                                   cycle->pool, f->fallback);
            f->fallback_set.goals = f->fallback_goals
                                    ? f->fallback_goals->elts : NULL;
            ngx_cpystrn(f->fallback_set.hex,
                        (u_char *) cef_rules_hash(
                                       ngx_http_cef_rules_set(f->fallback)),
                        sizeof(f->fallback_set.hex));
        }
    }

    ngx_http_cef_fleet_check(cycle->log, 1);

    ngx_http_cef_fleet_dummy.fd = (ngx_socket_t) -1;
    ngx_http_cef_fleet_timer.handler = ngx_http_cef_fleet_poll;
    ngx_http_cef_fleet_timer.log = cycle->log;
    ngx_http_cef_fleet_timer.data = &ngx_http_cef_fleet_dummy;
    ngx_http_cef_fleet_timer.cancelable = 1;

    ngx_add_timer(&ngx_http_cef_fleet_timer, NGX_HTTP_CEF_FLEET_POLL);

    return NGX_OK;
}


/* The worker's sets released (no request is left to pin them). */

void
ngx_http_cef_fleet_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t              i;
    ngx_http_cef_fleet_t  **fp, *f;

    if (ngx_http_cef_fleets == NULL
        || ngx_http_cef_fleets->pool != cycle->pool)
    {
        return;
    }

    fp = ngx_http_cef_fleets->elts;

    for (i = 0; i < ngx_http_cef_fleets->nelts; i++) {
        f = fp[i];

        if (f->live) {
            ngx_http_cef_fleet_unref(f->live);
            f->live = NULL;
        }

        if (f->cand) {
            ngx_http_cef_fleet_unref(f->cand);
            f->cand = NULL;
        }
    }
}


/* --- requests ------------------------------------------------------------- */


static ngx_int_t
ngx_http_cef_fleet_pin(ngx_http_request_t *r, ngx_http_cef_fleet_set_t *set,
    ngx_http_cef_fleet_use_t *use)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->main->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    set->refs++;
    cln->handler = ngx_http_cef_fleet_unpin;
    cln->data = set;

    use->rules = set->rules;
    use->record = set->record;
    use->goals = set->goals;

    return NGX_OK;
}


static void
ngx_http_cef_fleet_unpin(void *data)
{
    ngx_http_cef_fleet_unref(data);
}


/*
 * The sets r decides with, pinned until r ends: use (the live version, or
 * the canary for a visitor in its share; rules NULL: none, the generic
 * page) and shadow (rules NULL unless the visitor is in the shadow's
 * sample).  visitor: what experiments bucket by (NULL: not bucketed, the
 * live version).
 */
ngx_int_t
ngx_http_cef_fleet_pick(ngx_http_request_t *r, ngx_http_cef_fleet_t *f,
    ngx_str_t *visitor, ngx_http_cef_fleet_use_t *use,
    ngx_http_cef_fleet_use_t *shadow)
{
    uint32_t                   bucket;
    ngx_uint_t                 in;
    ngx_http_cef_fleet_set_t  *set;

    ngx_memzero(use, sizeof(ngx_http_cef_fleet_use_t));
    ngx_memzero(shadow, sizeof(ngx_http_cef_fleet_use_t));

    in = 0;

    if (f->cand && visitor && visitor->len) {
        bucket = cef_bucket((char *) f->name.data, f->name.len,
                            (char *) visitor->data, visitor->len);
        in = (uint64_t) bucket * 10000 / CEF_BUCKETS < f->share;
    }

    set = f->live ? f->live
                  : f->fallback ? &f->fallback_set : NULL;

    if (in && f->mode == CEF_STORE_RULES_CANARY) {
        set = f->cand;
    }

    if (set && ngx_http_cef_fleet_pin(r, set, use) != NGX_OK) {
        return NGX_ERROR;
    }

    if (in && f->mode == CEF_STORE_RULES_SHADOW && set) {
        return ngx_http_cef_fleet_pin(r, f->cand, shadow);
    }

    return NGX_OK;
}


/* cef_rules_version{name,hash,state} lines for this worker */

u_char *
ngx_http_cef_fleet_metrics(u_char *p, u_char *last)
{
    ngx_uint_t              i;
    ngx_http_cef_fleet_t  **fp, *f;

    if (ngx_http_cef_fleets == NULL || ngx_http_cef_fleets->nelts == 0) {
        return p;
    }

    p = ngx_slprintf(p, last, "# TYPE cef_rules_version gauge\n");

    fp = ngx_http_cef_fleets->elts;

    for (i = 0; i < ngx_http_cef_fleets->nelts; i++) {
        f = fp[i];

        if (f->live) {
            p = ngx_slprintf(p, last, "cef_rules_version{name=\"%V\","
                             "hash=\"%s\",state=\"live\"} 1\n",
                             &f->name, f->live->hex);

        } else if (f->fallback) {
            p = ngx_slprintf(p, last, "cef_rules_version{name=\"%V\","
                             "hash=\"%s\",state=\"fallback\"} 1\n",
                             &f->name, f->fallback_set.hex);
        }

        if (f->cand) {
            p = ngx_slprintf(p, last, "cef_rules_version{name=\"%V\","
                             "hash=\"%s\",state=\"%s\"} 1\n", &f->name,
                             f->cand->hex,
                             f->mode == CEF_STORE_RULES_CANARY ? "canary"
                                                               : "shadow");
        }

        if (f->live_failed[0]) {
            p = ngx_slprintf(p, last, "cef_rules_version{name=\"%V\","
                             "hash=\"%s\",state=\"failed\"} 1\n",
                             &f->name, f->live_failed);
        }

        if (f->cand_failed[0]) {
            p = ngx_slprintf(p, last, "cef_rules_version{name=\"%V\","
                             "hash=\"%s\",state=\"failed\"} 1\n",
                             &f->name, f->cand_failed);
        }
    }

    return p;
}
