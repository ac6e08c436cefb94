/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The nginx glue: it translates between nginx and lib/ (which knows
 * nothing of nginx), and may include every lib/ folder but writer.  Its
 * files, bottom up; each calls only the files above it in this list
 * (make check-layers checks it from the built objects):
 *
 *   ngx_http_cef_http.c         request ctx, cookies in and out,
 *                               Cache-Control, text/JSON responses
 *   ngx_http_cef_counters.c     counters in shared memory (cef_metrics_zone)
 *   ngx_http_cef_store.c        the store: directives, sessions, faults
 *   ngx_http_cef_identity.c     who the visitor is: keys, cookies, tokens
 *   ngx_http_cef_plugin.c       external rule plugins (cef_plugin)
 *   ngx_http_cef_rules.c        rule sets, request inputs, plugin states
 *   ngx_http_cef_record.c       the decision record ($cef_decision)
 *   ngx_http_cef_fleet.c        rule sets served from the store: switch,
 *                               canary, shadow
 *   ngx_http_cef_decision.c     the request's decision
 *   ngx_http_cef_goal.c         cef_goal, the goal record ($cef_goal)
 *   ngx_http_cef_conditional.c  validators, conditionals, Cache-Control merge
 *   ngx_http_cef_filter.c       the header and body filters
 *   ngx_http_cef_variables.c    the $cef_* variables
 *   ngx_http_cef_explain.c      cef_explain
 *   ngx_http_cef_decide_api.c   cef_decide, the JSON decision API
 *   ngx_http_cef_metrics.c      cef_metrics, the Prometheus page
 *   ngx_http_cef_module.c       directives, confs, the module itself
 */

#ifndef NGX_HTTP_CEF_MODULE_H_INCLUDED_
#define NGX_HTTP_CEF_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cef_rules.h"
#include "cef_decision.h"
#include "cef_identity.h"
#include "cef_digest.h"
#include "cef_sign.h"
#include "cef_slot_scanner.h"
#include "cef_profile.h"
#include "cef_store.h"
#include "cef_record.h"
#include "cef_goal.h"


#define NGX_HTTP_CEF_CACHE_PRIVATE   0
#define NGX_HTTP_CEF_CACHE_NO_STORE  1
#define NGX_HTTP_CEF_CACHE_OFF       2


/* A cookie the module sets: its name and pre-rendered attributes. */
typedef struct {
    ngx_str_t                   name;       /* empty: "off" */
    ngx_str_t                   attrs;      /* "; Max-Age=..; Path=/; ..." */
    time_t                      max_age;
} ngx_http_cef_cookie_t;


/* cef_key TYPE VALUE [signed] */
typedef struct {
    ngx_str_t                   type;
    ngx_http_complex_value_t    value;
    ngx_flag_t                  is_signed;
} ngx_http_cef_key_t;


/* A secret file loaded at configuration time. */
typedef struct {
    ngx_str_t                   path;
    cef_signer_t               *signer;
    time_t                      legacy_until;   /* legacy_keys_until=;
                                                   0: none */
} ngx_http_cef_signing_t;


typedef enum {
    NGX_HTTP_CEF_M_PERSONALISED = 0,
    NGX_HTTP_CEF_M_DEFAULT,
    NGX_HTTP_CEF_M_CONTROL,
    NGX_HTTP_CEF_M_SKIP_HEAD,
    NGX_HTTP_CEF_M_SKIP_STATUS,
    NGX_HTTP_CEF_M_SKIP_ENCODING,
    NGX_HTTP_CEF_M_SKIP_TYPE,
    NGX_HTTP_CEF_M_FAIL_STORE,
    NGX_HTTP_CEF_M_FAIL_BUDGET,
    NGX_HTTP_CEF_M_FAIL_ERROR,
    NGX_HTTP_CEF_M_LOOKUP_HIT,
    NGX_HTTP_CEF_M_LOOKUP_MISS,
    NGX_HTTP_CEF_M_SLOT_FILLED,
    NGX_HTTP_CEF_M_SLOT_DEFAULT,
    NGX_HTTP_CEF_M_SLOT_UNCHANGED,
    NGX_HTTP_CEF_M_STORE_FAULT_LOGGED,
    NGX_HTTP_CEF_M_STORE_FAULT_SUPPRESSED,
    NGX_HTTP_CEF_M_MAX
} ngx_http_cef_metric_e;


typedef struct {
    ngx_shm_zone_t             *metrics_zone;
    time_t                      loaded_at;
    ngx_str_t                   store_dir;
    ngx_str_t                   store_secret;
    cef_identity_t             *store_hash;     /* keyed with store_secret */
    cef_plugins_t              *plugins;        /* cef_plugin; NULL: the
                                                   built-in ones */
    ngx_flag_t                  record;         /* $cef_decision is used:
                                                   capture at decision time */
    cef_digest_t               *etag_digest;    /* the ETag's label and key
                                                   absorbed */
} ngx_http_cef_main_conf_t;


typedef struct ngx_http_cef_rules_s  ngx_http_cef_rules_t;
typedef struct ngx_http_cef_fleet_s  ngx_http_cef_fleet_t;


/*
 * What a rule set needs to be recorded ($cef_decision) or explained
 * (cef_explain), worked out at configuration time: an nginx variable index
 * per var.* reference, and the rule plugins that keep per-visitor state.
 */
typedef struct {
    const cef_rules_t          *rs;
    ngx_int_t                  *var_index;      /* per reference id */
    ngx_str_t                  *plugins;        /* stateful plugin names */
    ngx_uint_t                  nplugins;
} ngx_http_cef_record_conf_t;


/* cef_goal NAME [value=$VAR] [once] [pass_header] */
typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t   *value;          /* NULL: no value= */
    ngx_str_t                   header;         /* the upstream header
                                                   value= reads, in its
                                                   variable spelling
                                                   (x_order_total), removed
                                                   from the response; empty:
                                                   none, or pass_header */
    ngx_flag_t                  once;
    const cef_rules_goal_t     *decl;           /* in the location's rule
                                                   set, found at merge */
    cef_goal_fmt_t             *fmt;            /* its record's format */
    ngx_str_t                   file;           /* where the directive is: */
    ngx_uint_t                  line;           /* merge reports it there */
    ngx_http_cef_fleet_t       *fleet;          /* store:NAME: checked per */
    ngx_uint_t                  index;          /* version, its entry in
                                                   each set's goals */
} ngx_http_cef_goal_t;


/* a goal as one rule set declares it: the declaration and record format */
typedef struct {
    const cef_rules_goal_t     *decl;
    cef_goal_fmt_t             *fmt;
} ngx_http_cef_set_goal_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_hash_t                  types;
    ngx_array_t                *types_keys;
    ngx_http_cef_rules_t       *rules;         /* cef_rules */
    ngx_http_cef_fleet_t       *fleet;         /* cef_rules store:NAME */
    size_t                      slot_max_size;
    ngx_array_t                *statuses;       /* cef_statuses: ngx_uint_t */
    ngx_uint_t                  budget;         /* cef_budget, microseconds */
    ngx_uint_t                  cache_control;

    ngx_http_cef_cookie_t      *visitor_cookie;
    ngx_array_t                *keys;           /* ngx_http_cef_key_t */
    ngx_http_cef_signing_t     *signing;
    ngx_http_complex_value_t   *link_token;
    ngx_http_cef_cookie_t      *link_cookie;
    ngx_http_complex_value_t   *consent;

    ngx_http_cef_record_conf_t *record;         /* with rules */
    ngx_http_cef_goal_t        *goal;           /* cef_goal: this location
                                                   only, not inherited */
} ngx_http_cef_loc_conf_t;


/* What is known of the visitor of a (main) request. */
typedef struct {
    ngx_str_t                   visitor;        /* visitor id, if any */
    ngx_str_t                   key_type;       /* the key that matched */
    ngx_str_t                   profile_id;
    ngx_str_t                   link_cookie;    /* a cookie value to set */
    ngx_array_t                *attrs;          /* rendered, on first use */
    cef_profile_t               view;           /* valid while store is */

    unsigned                    consent:1;
    unsigned                    store:1;        /* a store session is open */
    unsigned                    store_failed:1; /* configured, not usable */
    unsigned                    view_valid:1;
    unsigned                    visitor_new:1;
    unsigned                    cookies_set:1;
} ngx_http_cef_identity_t;


/* The offer chosen for a slot, rendered. */
typedef struct {
    ngx_str_t                   slot;
    ngx_str_t                   name;           /* the offer's name */
    ngx_str_t                   html;
    ngx_str_t                   variant;
} ngx_http_cef_offer_t;


typedef struct {
    ngx_http_cef_rules_t       *rules;
    cef_rules_choice_t         *choices;        /* per slot of the rule set */
    ngx_http_cef_offer_t       *offers;         /* the slots with an offer */
    ngx_uint_t                  noffers;
    cef_decision_slot_t        *slots;          /* per slot: plugin, variant,
                                                   bucket, would-have */
    ngx_str_t                   log;            /* cef_decision_format(),
                                                   made when read */

    /* for the record ($cef_decision) */
    ngx_http_cef_record_conf_t *record_conf;
    time_t                      now;            /* the rules' time.now */
    ngx_int_t                   utc_offset;     /* seconds */
    uint64_t                    digest;         /* of the profile */
    ngx_str_t                   record;         /* made, or empty */
    void                       *shadow;         /* the shadow's decision
                                                   (ngx_http_cef_decision_t),
                                                   or NULL */

    unsigned                    over_budget:1;
    unsigned                    failed:1;
    unsigned                    has_digest:1;
    unsigned                    recorded:1;     /* record is made */
} ngx_http_cef_decision_t;


typedef struct {
    ngx_http_cef_identity_t    *identity;       /* main request only */
    ngx_http_cef_decision_t    *decision;       /* main request only */
    ngx_table_elt_t            *cache_control;  /* ours, for the merge */
    ngx_str_t                   cache_policy;   /* its value as we set it */

    cef_slot_scanner_t         *scanner;
    ngx_http_cef_decision_t    *filling;        /* the decision being applied */
    ngx_chain_t                *out;
    ngx_chain_t               **last_out;
    ngx_chain_t                *busy;
    ngx_chain_t                *free;
    ngx_http_request_t         *request;
    ngx_buf_t                  *in;             /* the buffer being scanned */

    ngx_str_t                   goal;           /* $cef_goal, or empty */

    uint64_t                    decision_ns;    /* identity + rules */
    size_t                      unchanged;      /* slots counted unchanged */
    off_t                       bytes_seen;
    unsigned                    filtering:1;
    unsigned                    slice:1;        /* a page in slices: the
                                                   scanner is the main
                                                   request's */
} ngx_http_cef_ctx_t;


/*
 * The module as the files below ngx_http_cef_module.c reach it (that file
 * defines ngx_http_cef_module and sets this before any handler runs):
 * ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF) and the like.
 */
extern ngx_module_t  *ngx_http_cef_self;

#define NGX_HTTP_CEF  (*ngx_http_cef_self)


/* what each file exports, in the order of the map above */

/* the HTTP helpers, which call nothing of ours: ngx_http_cef_http.c */
ngx_http_cef_ctx_t *ngx_http_cef_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_cef_get_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);
ngx_int_t ngx_http_cef_set_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value, ngx_str_t *attrs);
ngx_int_t ngx_http_cef_set_cache_control(ngx_http_request_t *r,
    ngx_uint_t value);
ngx_int_t ngx_http_cef_send(ngx_http_request_t *r, ngx_buf_t *b, char *type);
ngx_int_t ngx_http_cef_send_json(ngx_http_request_t *r, char *text);
ngx_int_t ngx_http_cef_check_secret_file(ngx_conf_t *cf, ngx_str_t *path);

/* counters in shared memory (cef_metrics_zone): ngx_http_cef_counters.c */
char *ngx_http_cef_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_cef_metric(ngx_uint_t which);
void ngx_http_cef_metric_decision(uint64_t ns);
void ngx_http_cef_metric_impression(ngx_str_t *offer, ngx_str_t *variant);
/* goal outcomes: cef_goals_total (recorded), cef_goals_suppressed_total
   and cef_goal_values_rejected_total, by goal */
typedef enum {
    NGX_HTTP_CEF_GOAL_RECORDED = 0,
    NGX_HTTP_CEF_GOAL_ONCE,
    NGX_HTTP_CEF_GOAL_NO_CONSENT,
    NGX_HTTP_CEF_GOAL_NO_VISITOR,
    NGX_HTTP_CEF_GOAL_STATUS,
    NGX_HTTP_CEF_GOAL_METHOD,
    NGX_HTTP_CEF_GOAL_VALUE_ABSENT,
    NGX_HTTP_CEF_GOAL_VALUE_INVALID,
    NGX_HTTP_CEF_GOAL_MAX
} ngx_http_cef_goal_e;
void ngx_http_cef_metric_goal(ngx_str_t *goal, ngx_http_cef_goal_e what);
size_t ngx_http_cef_counters_size(void);
u_char *ngx_http_cef_counters_print(u_char *p, u_char *last);
u_char *ngx_http_cef_counters_label(u_char *p, u_char *last, const char *s);

/* the store, sessions and faults: ngx_http_cef_store.c */
char *ngx_http_cef_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_cef_store_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cef_init_store_conf(ngx_conf_t *cf,
    ngx_http_cef_main_conf_t *cmcf);
ngx_int_t ngx_http_cef_store_init_process(ngx_cycle_t *cycle);
void ngx_http_cef_store_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_cef_store_begin(ngx_http_request_t *r);
void ngx_http_cef_store_end(void);
int ngx_http_cef_store_weights(void *r, const char *experiment,
    const char *salt, cef_plugin_weights_t *out);
u_char *ngx_http_cef_store_weights_print(ngx_http_request_t *r, u_char *p,
    u_char *last);
ngx_int_t ngx_http_cef_store_find(ngx_http_request_t *r, ngx_str_t *type,
    ngx_str_t *value, ngx_http_cef_identity_t *id);
ngx_int_t ngx_http_cef_store_find_key(ngx_http_request_t *r,
    const uint8_t *key, ngx_http_cef_identity_t *id);
ngx_int_t ngx_http_cef_store_profile(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, cef_profile_t *p);
ngx_int_t ngx_http_cef_store_attr(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, ngx_str_t *name, ngx_str_t *out);
/* faults ngx_http_cef_store_guard() caught in this worker: code that a
   fault may jump out of compares it to tell a stale flag of its own */
extern ngx_uint_t  ngx_http_cef_store_faults;
typedef void *(*ngx_http_cef_store_read_pt)(void *data);
void *ngx_http_cef_store_guard(ngx_http_request_t *r, ngx_log_t *log,
    ngx_http_cef_store_read_pt read, void *data, void *failed);
ngx_int_t ngx_http_cef_store_info(ngx_http_request_t *r,
    cef_store_info_t *info);
typedef ngx_int_t (*ngx_http_cef_store_published_pt)(cef_store_t *s,
    void *data);
ngx_int_t ngx_http_cef_store_published(ngx_log_t *log,
    ngx_http_cef_main_conf_t *cmcf, ngx_http_cef_store_published_pt read,
    void *data);
void ngx_http_cef_store_generations(ngx_http_cef_main_conf_t *cmcf,
    uint64_t *serving, uint64_t *newest);
time_t ngx_http_cef_store_age(cef_store_info_t *info);

/* the visitor: keys, cookies, link tokens, consent: ngx_http_cef_identity.c */
/*
 * One step of recognising the visitor, as ngx_http_cef_recognise() takes
 * it, for a tracer (cef_explain formats them).  Fields that do not apply
 * are NULL or 0.
 */
typedef struct {
    const char                 *source;     /* "consent", "store",
                                               "link_token", "cef_key",
                                               "link_cookie",
                                               "visitor_cookie" */
    ngx_int_t                   rc;         /* store: of the session */
    ngx_str_t                  *value;      /* consent: what it evaluated
                                               to (NULL: no cef_consent);
                                               else the value looked up */
    ngx_str_t                  *key_type;   /* the key type tried */
    ngx_str_t                  *cookie;     /* the cookie read */
    ngx_str_t                  *sent;       /* a signed key that failed */
    ngx_str_t                  *visitor;    /* a visitor id not looked up:
                                               a profile was found before */
    const char                 *signature;  /* "ok", "legacy", "bad",
                                               "expired" */
    const char                 *result;     /* "absent", "overlong",
                                               "ignored", "invalid",
                                               "found", "not found",
                                               "no store" */
    ngx_str_t                   link_type;  /* key_type of a link */
    unsigned                    is_signed:1;    /* cef_key ... signed */
    unsigned                    lookup:1;       /* the store was asked */
    unsigned                    issued:1;       /* a new visitor id */
} ngx_http_cef_step_t;

typedef void (*ngx_http_cef_trace_pt)(void *data, ngx_http_cef_step_t *st,
    ngx_http_cef_identity_t *id);

typedef struct {
    ngx_http_cef_trace_pt       step;
    void                       *data;
} ngx_http_cef_tracer_t;

char *ngx_http_cef_visitor_cookie(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cef_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_cef_signing_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
cef_sign_rc_t ngx_http_cef_verify_key(ngx_http_cef_signing_t *signing,
    ngx_str_t *type, ngx_str_t *value, ngx_str_t *plain, ngx_uint_t *legacy);
char *ngx_http_cef_link_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cef_merge_identity(ngx_conf_t *cf,
    ngx_http_cef_loc_conf_t *prev, ngx_http_cef_loc_conf_t *conf);
ngx_uint_t ngx_http_cef_consent(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_str_t *value);
void ngx_http_cef_recognise(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, ngx_uint_t keep_open,
    ngx_http_cef_tracer_t *tr);
ngx_http_cef_identity_t *ngx_http_cef_identify(ngx_http_request_t *r);
ngx_http_cef_identity_t *ngx_http_cef_identify_open(ngx_http_request_t *r);
ngx_http_cef_identity_t *ngx_http_cef_identify_guarded(ngx_http_request_t *r);
ngx_int_t ngx_http_cef_set_cookies(ngx_http_request_t *r);

/* external rule plugins (cef_plugin): ngx_http_cef_plugin.c */
char *ngx_http_cef_plugin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
cef_plugins_t *ngx_http_cef_plugins(ngx_conf_t *cf);

/* rule sets, request inputs, plugin states: ngx_http_cef_rules.c */
/*
 * Looks up what the rules glue cannot know itself (profile.*, visitor.*):
 * the contract of cef_expr_ctx_t's lookup.
 */
typedef int (*ngx_http_cef_rules_lookup_pt)(void *data, const cef_ref_t *ref,
    cef_value_t *out);

/* A decision with its plugins, in r->pool; arrays indexed by slot id. */
typedef struct {
    cef_rules_choice_t         *choices;        /* the offers shown */
    cef_decision_slot_t        *slots;
    ngx_str_t                  *html;           /* when asked for */
} ngx_http_cef_rules_result_t;

extern ngx_http_get_variable_pt  ngx_http_cef_rules_decision_get;
typedef ngx_http_cef_rules_t *(*ngx_http_cef_rules_pinned_pt)(
    ngx_http_request_t *r);
extern ngx_http_cef_rules_pinned_pt  ngx_http_cef_rules_pinned;

/*
 * Shown a decision as it is made, before anything else can use ev and dec
 * (cef_explain formats it there).
 */
typedef struct {
    void                      (*decided)(void *data, const cef_rules_t *rs,
                                         cef_expr_eval_t *ev,
                                         const cef_expr_ctx_t *ctx,
                                         cef_decision_t *dec);
    void                       *data;
} ngx_http_cef_rules_tracer_t;

char *ngx_http_cef_rules(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_cef_rules_add_variables(ngx_conf_t *cf);
ngx_http_cef_rules_t *ngx_http_cef_rules_file(ngx_conf_t *cf,
    ngx_str_t *path);
ngx_int_t ngx_http_cef_rules_adopt(cef_rules_t *rs, ngx_str_t *label,
    ngx_log_t *log, ngx_http_cef_rules_t **out, u_char *unknown, size_t size);
ngx_pool_t *ngx_http_cef_rules_pool(ngx_http_cef_rules_t *rules);
void ngx_http_cef_rules_release(ngx_http_cef_rules_t *rules);
ngx_int_t ngx_http_cef_rules_check_variables(ngx_conf_t *cf);
int ngx_http_cef_request_value(ngx_http_request_t *r, ngx_int_t *var_index,
    const cef_ref_t *ref, cef_value_t *out);
const cef_rules_t *ngx_http_cef_rules_set(ngx_http_cef_rules_t *rules);
ngx_str_t *ngx_http_cef_rules_path(ngx_http_cef_rules_t *rules);
ngx_int_t *ngx_http_cef_rules_var_indexes(ngx_http_cef_rules_t *rules);
ngx_int_t ngx_http_cef_rules_decide(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules, ngx_http_cef_rules_lookup_pt lookup,
    void *data, cef_rules_choice_t **choices, ngx_str_t **html);
ngx_int_t ngx_http_cef_rules_decision(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules, ngx_http_cef_rules_lookup_pt lookup,
    void *data, ngx_str_t *visitor, ngx_uint_t record, ngx_uint_t render,
    ngx_http_cef_rules_result_t *res, ngx_http_cef_rules_tracer_t *tr);
ngx_int_t ngx_http_cef_rules_send_states(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules);
ngx_int_t ngx_http_cef_read_state(ngx_http_request_t *r, cef_signer_t *signer,
    const char *plugin, ngx_uint_t log, cef_span_t *out);
ngx_int_t ngx_http_cef_write_state(ngx_http_request_t *r,
    cef_signer_t *signer, const char *plugin, const char *state,
    size_t state_len, int64_t max_age);

/* rule sets served from the store: ngx_http_cef_fleet.c */
typedef struct {
    ngx_http_cef_rules_t       *rules;          /* NULL: none */
    ngx_http_cef_record_conf_t *record;
    ngx_http_cef_set_goal_t    *goals;          /* by ngx_http_cef_goal_t
                                                   index */
} ngx_http_cef_fleet_use_t;

char *ngx_http_cef_fleet_rules(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_cef_fleet_check_conf(ngx_conf_t *cf);
ngx_int_t ngx_http_cef_fleet_bind_goal(ngx_http_cef_goal_t *g,
    ngx_http_cef_rules_t *rules, ngx_pool_t *pool,
    ngx_http_cef_set_goal_t *out, u_char *why, size_t size);
ngx_int_t ngx_http_cef_fleet_add_goal(ngx_conf_t *cf, ngx_http_cef_fleet_t *f,
    ngx_http_cef_goal_t *g);
ngx_int_t ngx_http_cef_fleet_init_process(ngx_cycle_t *cycle);
void ngx_http_cef_fleet_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_cef_fleet_pick(ngx_http_request_t *r,
    ngx_http_cef_fleet_t *f, ngx_str_t *visitor,
    ngx_http_cef_fleet_use_t *use, ngx_http_cef_fleet_use_t *shadow);
u_char *ngx_http_cef_fleet_metrics(u_char *p, u_char *last);


/* the decision record ($cef_decision): ngx_http_cef_record.c */
ngx_int_t ngx_http_cef_record_used(ngx_conf_t *cf);
ngx_http_cef_record_conf_t *ngx_http_cef_record_conf_make(ngx_pool_t *pool,
    ngx_http_cef_rules_t *rules);
char *ngx_http_cef_merge_record(ngx_conf_t *cf,
    ngx_http_cef_loc_conf_t *prev, ngx_http_cef_loc_conf_t *conf);
int ngx_http_cef_request_input(ngx_http_request_t *r,
    ngx_http_cef_record_conf_t *rc, const cef_ref_t *ref, cef_value_t *out);
ngx_uint_t ngx_http_cef_read_states(ngx_http_request_t *r,
    ngx_http_cef_record_conf_t *rc, cef_signer_t *signer,
    cef_record_state_t *out);
ngx_int_t ngx_http_cef_record_make(ngx_http_request_t *r,
    ngx_http_cef_decision_t *d);

/* the request's decision: ngx_http_cef_decision.c */
ngx_http_cef_decision_t *ngx_http_cef_decide(ngx_http_request_t *r);
ngx_http_cef_offer_t *ngx_http_cef_decision_offer(ngx_http_cef_decision_t *d,
    u_char *slot, size_t len);
const char *ngx_http_cef_variant(ngx_http_cef_decision_t *d, ngx_uint_t i);
ngx_str_t *ngx_http_cef_bucket_by(ngx_http_cef_identity_t *id);

/* cef_goal, the goal record ($cef_goal): ngx_http_cef_goal.c */
char *ngx_http_cef_goal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_cef_merge_goal(ngx_conf_t *cf, ngx_http_cef_loc_conf_t *prev,
    ngx_http_cef_loc_conf_t *conf);
ngx_int_t ngx_http_cef_goal_reached(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf);

/* validators, conditionals, Cache-Control merge: ngx_http_cef_conditional.c */
ngx_int_t ngx_http_cef_conditional_init(ngx_conf_t *cf);
void ngx_http_cef_own_conditionals(ngx_http_request_t *r);
ngx_int_t ngx_http_cef_set_validators(ngx_http_request_t *r,
    ngx_http_cef_decision_t *d);

/* the header and body filters: ngx_http_cef_filter.c */
ngx_int_t ngx_http_cef_filter_init(ngx_conf_t *cf);

/* the $cef_* variables: ngx_http_cef_variables.c */
ngx_int_t ngx_http_cef_add_variables(ngx_conf_t *cf);

/* cef_explain: ngx_http_cef_explain.c */
char *ngx_http_cef_explain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* the JSON decision API (cef_decide): ngx_http_cef_decide_api.c */
char *ngx_http_cef_decide_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* cef_metrics, the Prometheus page: ngx_http_cef_metrics.c */
char *ngx_http_cef_metrics_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_cef_module.c, the top, exports only the module to nginx */


#endif /* NGX_HTTP_CEF_MODULE_H_INCLUDED_ */
