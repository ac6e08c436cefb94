/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules shadow: what a shadow candidate would change, from the
 * impression log of edges serving a rule set from the store
 * (docs/deploying-rules.md): each line carries the live decision
 * ($cef_decision, member "decision") and, for visitors in the shadow's
 * sample, the candidate's ($cef_shadow_decision, member "shadow"), as
 * JSON strings (log_format escape=json) or objects.
 *
 *   cef-rules shadow (--log FILE | --log -) [--json]
 *
 * Per slot: how many sampled decisions, how many the candidate would
 * change, and to what ("from -> to", an offer or "-" for the slot's
 * default content), most frequent first.
 *
 * Exit codes: 0 the candidate would change nothing, 1 it would change
 * some decisions, 2 usage or input errors (a malformed line, no sample).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cef_record.h"
#include "cef_rules_tool.h"


typedef struct {
    char        *from;
    char        *to;
    uint64_t     count;
} cef_shadow_change_t;


typedef struct {
    char                 *slot;
    uint64_t              sampled;
    uint64_t              changed;
    cef_shadow_change_t  *changes;
    size_t                nchanges;
} cef_shadow_slot_t;


typedef struct {
    uint64_t              lines;
    uint64_t              sampled;
    cef_shadow_slot_t    *slots;
    size_t                nslots;
    char                  live[65];     /* the last seen */
    char                  shadow[65];
    unsigned              live_mixed;
    unsigned              shadow_mixed;
} cef_shadow_t;


static char *
cef_shadow_strdup(const char *s)
{
    return strdup(s ? s : "-");
}


static cef_shadow_slot_t *
cef_shadow_slot(cef_shadow_t *sh, const char *name)
{
    size_t              i;
    cef_shadow_slot_t  *s;

    for (i = 0; i < sh->nslots; i++) {
        if (strcmp(sh->slots[i].slot, name) == 0) {
            return &sh->slots[i];
        }
    }

    s = realloc(sh->slots, (sh->nslots + 1) * sizeof(cef_shadow_slot_t));
    if (s == NULL) {
        return NULL;
    }

    sh->slots = s;
    s = &sh->slots[sh->nslots];
    memset(s, 0, sizeof(cef_shadow_slot_t));
    s->slot = strdup(name);
    if (s->slot == NULL) {
        return NULL;
    }

    sh->nslots++;

    return s;
}


static int
cef_shadow_count(cef_shadow_slot_t *s, const char *from, const char *to)
{
    size_t                i;
    cef_shadow_change_t  *c;

    from = from ? from : "-";
    to = to ? to : "-";

    for (i = 0; i < s->nchanges; i++) {
        if (strcmp(s->changes[i].from, from) == 0
            && strcmp(s->changes[i].to, to) == 0)
        {
            s->changes[i].count++;
            return 0;
        }
    }

    c = realloc(s->changes, (s->nchanges + 1) * sizeof(cef_shadow_change_t));
    if (c == NULL) {
        return -1;
    }

    s->changes = c;
    c = &s->changes[s->nchanges++];
    c->from = cef_shadow_strdup(from);
    c->to = cef_shadow_strdup(to);
    c->count = 1;

    return (c->from && c->to) ? 0 : -1;
}


static const cef_record_slot_t *
cef_shadow_find(const cef_record_t *rec, const char *slot)
{
    size_t  i;

    for (i = 0; i < rec->nslots; i++) {
        if (strcmp(rec->slots[i].slot, slot) == 0) {
            return &rec->slots[i];
        }
    }

    return NULL;
}


static void
cef_shadow_hash(char *seen, unsigned *mixed, const char *hash)
{
    if (hash == NULL) {
        return;
    }

    if (seen[0] && strcmp(seen, hash) != 0) {
        *mixed = 1;
    }

    snprintf(seen, 65, "%s", hash);
}


/* The record in member name of a log line: 0, 1 (empty or absent), -1. */

static int
cef_shadow_member(json_t *root, const char *name, cef_record_t *rec,
    char *err, size_t errlen)
{
    char    *text;
    int      rc;
    json_t  *m;

    memset(rec, 0, sizeof(cef_record_t));

    m = json_object_get(root, name);

    if (m == NULL || json_is_null(m)
        || (json_is_string(m) && json_string_length(m) == 0))
    {
        return 1;
    }

    if (json_is_string(m)) {
        return cef_record_parse(json_string_value(m), json_string_length(m),
                                rec, err, errlen);
    }

    text = json_dumps(m, JSON_COMPACT);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    rc = cef_record_parse(text, strlen(text), rec, err, errlen);
    free(text);

    return rc;
}


static int
cef_shadow_line(cef_shadow_t *sh, const char *line, size_t len, char *err,
    size_t errlen)
{
    int                       rc, rs;
    size_t                    i;
    json_t                   *root;
    json_error_t              jerr;
    cef_record_t              live, shadow;
    cef_shadow_slot_t        *s;
    const cef_record_slot_t  *a, *b;

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        len--;
    }

    if (len == 0) {
        return 0;
    }

    sh->lines++;

    root = json_loadb(line, len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object: %s",
                 root ? "" : jerr.text);
        json_decref(root);
        return -1;
    }

    rs = cef_shadow_member(root, "shadow", &shadow, err, errlen);
    if (rs != 0) {
        cef_record_release(&shadow);
        json_decref(root);
        return rs < 0 ? -1 : 0;
    }

    rc = cef_shadow_member(root, "decision", &live, err, errlen);
    json_decref(root);

    if (rc != 0) {
        cef_record_release(&live);
        cef_record_release(&shadow);

        if (rc > 0) {
            snprintf(err, errlen, "a shadow decision without the live one");
        }

        return -1;
    }

    sh->sampled++;
    cef_shadow_hash(sh->live, &sh->live_mixed, live.rules);
    cef_shadow_hash(sh->shadow, &sh->shadow_mixed, shadow.rules);

    rc = 0;

    /* every slot either set names: a slot only one of them has counts as
       the default content ("-") in the other */

    for (i = 0; rc == 0 && i < live.nslots + shadow.nslots; i++) {
        a = i < live.nslots ? &live.slots[i] : NULL;
        b = i < live.nslots ? cef_shadow_find(&shadow, a->slot)
                            : &shadow.slots[i - live.nslots];

        if (a == NULL && cef_shadow_find(&live, b->slot)) {
            continue;               /* counted with the live slots */
        }

        s = cef_shadow_slot(sh, a ? a->slot : b->slot);
        if (s == NULL) {
            rc = -1;
            break;
        }

        s->sampled++;

        if ((a ? a->offer : NULL) == NULL && (b ? b->offer : NULL) == NULL) {
            continue;
        }

        if (a && b && a->offer && b->offer && strcmp(a->offer, b->offer) == 0)
        {
            continue;
        }

        s->changed++;
        rc = cef_shadow_count(s, a ? a->offer : NULL, b ? b->offer : NULL);
    }

    cef_record_release(&live);
    cef_record_release(&shadow);

    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
    }

    return rc;
}


static int
cef_shadow_by_count(const void *x, const void *y)
{
    const cef_shadow_change_t  *a = x, *b = y;

    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }

    return strcmp(a->to, b->to);
}


static void
cef_shadow_print(cef_shadow_t *sh, int as_json)
{
    size_t              i, k;
    json_t             *root, *slots, *slot, *changes;
    cef_shadow_slot_t  *s;

    for (i = 0; i < sh->nslots; i++) {
        qsort(sh->slots[i].changes, sh->slots[i].nchanges,
              sizeof(cef_shadow_change_t), cef_shadow_by_count);
    }

    if (as_json) {
        root = json_object();
        slots = json_object();
        json_object_set_new(root, "lines", json_integer(sh->lines));
        json_object_set_new(root, "sampled", json_integer(sh->sampled));
        json_object_set_new(root, "live", sh->live_mixed
                            ? json_string("mixed") : json_string(sh->live));
        json_object_set_new(root, "shadow", sh->shadow_mixed
                            ? json_string("mixed") : json_string(sh->shadow));

        for (i = 0; i < sh->nslots; i++) {
            s = &sh->slots[i];
            slot = json_object();
            changes = json_array();
            json_object_set_new(slot, "sampled", json_integer(s->sampled));
            json_object_set_new(slot, "changed", json_integer(s->changed));

            for (k = 0; k < s->nchanges; k++) {
                json_array_append_new(changes, json_pack("{s:s,s:s,s:I}",
                                      "from", s->changes[k].from,
                                      "to", s->changes[k].to,
                                      "count", (json_int_t)
                                               s->changes[k].count));
            }

            json_object_set_new(slot, "changes", changes);
            json_object_set_new(slots, s->slot, slot);
        }

        json_object_set_new(root, "slots", slots);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("\n");
        json_decref(root);
        return;
    }

    printf("shadow: %llu sampled decisions in %llu lines; live %.12s%s, "
           "shadow %.12s%s\n", (unsigned long long) sh->sampled,
           (unsigned long long) sh->lines, sh->live,
           sh->live_mixed ? " (and others)" : "", sh->shadow,
           sh->shadow_mixed ? " (and others)" : "");

    for (i = 0; i < sh->nslots; i++) {
        s = &sh->slots[i];
        printf("slot %s: %llu sampled, %llu would change (%.1f%%)\n",
               s->slot, (unsigned long long) s->sampled,
               (unsigned long long) s->changed,
               s->sampled ? 100.0 * s->changed / s->sampled : 0.0);

        for (k = 0; k < s->nchanges; k++) {
            printf("  %s -> %s  %llu\n", s->changes[k].from,
                   s->changes[k].to,
                   (unsigned long long) s->changes[k].count);
        }
    }
}


static void
cef_shadow_free(cef_shadow_t *sh)
{
    size_t  i, k;

    for (i = 0; i < sh->nslots; i++) {
        for (k = 0; k < sh->slots[i].nchanges; k++) {
            free(sh->slots[i].changes[k].from);
            free(sh->slots[i].changes[k].to);
        }

        free(sh->slots[i].changes);
        free(sh->slots[i].slot);
    }

    free(sh->slots);
}


int
cef_tool_shadow(int argc, char **argv)
{
    int            i, as_json, rc;
    FILE          *f;
    char          *line, err[256];
    size_t         cap, lineno;
    ssize_t        n;
    uint64_t       changed;
    const char    *log;
    cef_shadow_t   sh;

    log = NULL;
    as_json = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
            log = argv[++i];

        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;

        } else {
            fprintf(stderr, "cef-rules shadow: unknown option '%s'\n",
                    argv[i]);
            cef_tool_usage();
            return CEF_EXIT_USAGE;
        }
    }

    if (log == NULL) {
        cef_tool_usage();
        return CEF_EXIT_USAGE;
    }

    f = strcmp(log, "-") == 0 ? stdin : cef_tool_fopen(log);
    if (f == NULL) {
        return CEF_EXIT_USAGE;
    }

    memset(&sh, 0, sizeof(cef_shadow_t));
    line = NULL;
    cap = 0;
    lineno = 0;
    rc = CEF_EXIT_OK;

    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;

        if (cef_shadow_line(&sh, line, (size_t) n, err, sizeof(err)) != 0) {
            fprintf(stderr, "cef-rules shadow: %s:%zu: %s\n",
                    strcmp(log, "-") == 0 ? "stdin" : log, lineno, err);
            rc = CEF_EXIT_USAGE;
            break;
        }
    }

    free(line);

    if (f != stdin) {
        fclose(f);
    }

    if (rc == CEF_EXIT_OK && sh.sampled == 0) {
        fprintf(stderr, "cef-rules shadow: no shadow decision in %s "
                "(is $cef_shadow_decision logged as \"shadow\"?)\n", log);
        rc = CEF_EXIT_USAGE;
    }

    if (rc == CEF_EXIT_OK) {
        cef_shadow_print(&sh, as_json);

        changed = 0;
        for (i = 0; i < (int) sh.nslots; i++) {
            changed += sh.slots[i].changed;
        }

        rc = changed ? 1 : CEF_EXIT_OK;
    }

    cef_shadow_free(&sh);

    return rc;
}
