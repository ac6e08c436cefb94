/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync: what load, apply and consume did with published records
 * (weights, rule sets), and what `cef-sync stat` shows of them: each
 * bandit's weights version and age, each rule set's live version and
 * candidate (docs/cef-sync.md).
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cef_store_rules.h"
#include "cef_store_weights.h"
#include "cef_sync.h"


void
cef_sync_print_published(const cef_writer_result_t *res)
{
    if (res->published + res->stale + res->ignored + res->carried == 0) {
        return;
    }

    printf("published records: %llu stored, %llu unchanged (version not "
           "newer; %llu of them conflicting), %llu with nothing to do",
           (unsigned long long) res->published,
           (unsigned long long) res->stale,
           (unsigned long long) res->conflicts,
           (unsigned long long) res->ignored);

    if (res->carried) {
        printf(", %llu kept from the previous generation",
               (unsigned long long) res->carried);
    }

    printf("\n");
}


typedef struct {
    json_t   *arr;       /* --json, else print */
    int64_t   now;
    int       n;
} cef_sync_pub_t;


static int
cef_sync_weights_one(void *data, const cef_store_weights_t *w)
{
    size_t           pos = 0;
    json_t          *o, *arms;
    cef_sync_pub_t  *p = data;
    cef_store_arm_t  arm;

    {
        arms = json_object();
        while (cef_store_weights_arm(w, &pos, &arm)) {
            json_object_setn_new(arms, arm.name.data, arm.name.len,
                                 json_integer(arm.bp));
        }

        o = json_pack("{s:s%, s:s%, s:I, s:I, s:I, s:I, s:b, s:o}",
                      "experiment", w->experiment.data, w->experiment.len,
                      "salt", w->salt.data, w->salt.len,
                      "version", (json_int_t) w->version,
                      "created_at", (json_int_t) w->created_at,
                      "stored_at", (json_int_t) w->stored_at,
                      "age", (json_int_t) (p->now - w->created_at),
                      "updated", w->updated,
                      "weights", arms);
        json_array_append_new(p->arr, o);
        return 0;
    }

    return 0;
}


static json_t *
cef_sync_rules_version_json(const cef_store_rules_version_t *v)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s%, s:s%}",
                     "hash", v->hex,
                     "version", (json_int_t) v->version,
                     "created_at", (json_int_t) v->created_at,
                     "state", cef_store_rules_state_name(v->state),
                     "label", v->label.data, v->label.len,
                     "author", v->author.data, v->author.len);
}


static int
cef_sync_rules_one(void *data, const cef_store_rules_t *r)
{
    json_t                     *o;
    cef_sync_pub_t             *p = data;
    cef_store_rules_version_t   live, cand;
    int                         has_live, has_cand;

    has_live = r->live >= 0
               && cef_store_rules_at(r, (uint32_t) r->live, &live) == 0;
    has_cand = r->candidate >= 0
               && cef_store_rules_at(r, (uint32_t) r->candidate, &cand) == 0;

    {
        o = json_pack("{s:s%, s:I, s:I, s:I, s:o, s:o}",
                      "name", r->name.data, r->name.len,
                      "version", (json_int_t) r->version,
                      "changed_at", (json_int_t) r->changed_at,
                      "versions", (json_int_t) r->nhistory,
                      "live", has_live ? cef_sync_rules_version_json(&live)
                                       : json_null(),
                      "candidate", has_cand
                                   ? cef_sync_rules_version_json(&cand)
                                   : json_null());
        if (has_cand) {
            json_object_set_new(json_object_get(o, "candidate"), "mode",
                                json_string(cef_store_rules_mode_name(
                                    r->mode)));
            json_object_set_new(json_object_get(o, "candidate"), "share",
                                json_real(r->share / 100.0));
        }
        json_array_append_new(p->arr, o);
        return 0;
    }

    return 0;
}


int
cef_sync_stat_published(cef_store_t *store, json_t *j)
{
    cef_sync_pub_t  p;

    memset(&p, 0, sizeof(p));
    p.now = (int64_t) time(NULL);

    p.arr = json_array();
    json_object_set_new(j, "weights", p.arr);
    if (cef_store_weights_each(store, cef_sync_weights_one, &p)
        != CEF_STORE_OK)
    {
        return -1;
    }

    p.arr = json_array();
    json_object_set_new(j, "rules", p.arr);

    return cef_store_rules_each(store, cef_sync_rules_one, &p)
           == CEF_STORE_OK ? 0 : -1;
}


void
cef_sync_print_published_stat(json_t *pub)
{
    size_t       i;
    json_t      *o, *c, *l;
    const char  *arm;
    json_t      *bp;

    json_array_foreach(json_object_get(pub, "weights"), i, o) {
        if (i == 0) {
            printf("weights      EXPERIMENT [SALT]  VERSION  AGE  ARM=BASIS "
                   "POINTS...\n");
        }

        printf("  %s", json_string_value(json_object_get(o, "experiment")));
        if (!json_equal(json_object_get(o, "experiment"),
                        json_object_get(o, "salt")))
        {
            printf(" [%s]", json_string_value(json_object_get(o, "salt")));
        }
        printf("  v%lld  %llds ",
               (long long) json_integer_value(json_object_get(o, "version")),
               (long long) json_integer_value(json_object_get(o, "age")));
        json_object_foreach(json_object_get(o, "weights"), arm, bp) {
            printf(" %s=%lld", arm, (long long) json_integer_value(bp));
        }
        printf("%s\n", json_is_true(json_object_get(o, "updated"))
                       ? "" : "  (not updated: too few exposures)");
    }

    json_array_foreach(json_object_get(pub, "rules"), i, o) {
        if (i == 0) {
            printf("rules        NAME  LIVE  CANDIDATE  VERSIONS KEPT\n");
        }

        l = json_object_get(o, "live");
        c = json_object_get(o, "candidate");
        l = json_is_object(l) ? l : NULL;
        c = json_is_object(c) ? c : NULL;

        printf("  %s  live %.12s", json_string_value(json_object_get(o, "name")),
               l ? json_string_value(json_object_get(l, "hash")) : "-");
        if (l && json_string_length(json_object_get(l, "label"))) {
            printf(" (%s)", json_string_value(json_object_get(l, "label")));
        }
        if (c) {
            printf("  %s %.12s at %g%%",
                   json_string_value(json_object_get(c, "mode")),
                   json_string_value(json_object_get(c, "hash")),
                   json_real_value(json_object_get(c, "share")));
        }
        printf("  %lld kept\n",
               (long long) json_integer_value(json_object_get(o,
                                                              "versions")));
    }
}
