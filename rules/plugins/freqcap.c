/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * freqcap: frequency caps per campaign.
 *
 *     plugins:
 *       freqcap:
 *         caps:
 *           - {campaign: winback, max: 3, per: 7d}   # s, m, h, d, w
 *
 * After max impressions of a campaign within its window the visitor stops
 * seeing its offers until the window ends.  A window starts with the first
 * impression counted in it (a fixed window, not a sliding one).  One
 * response showing the campaign (in any number of slots) is one
 * impression; a holdout visitor is shown nothing, so counts nothing.
 *
 * The counts live with the visitor, in the plugin's signed state (a
 * cookie "cef_freqcap" in nginx, signed with the signing secret; see
 * cef_plugin_req_t.state_get), so no shared database is written:
 *
 *     CAMPAIGN ":" COUNT ":" WINDOW_START ("~" CAMPAIGN ":" ...)*
 *
 * A tampered state reads as no state, i.e. no impressions: it can never
 * unlock an offer that a genuine state would cap, only forget counts.
 */

#include <stdio.h>

#include "cef_plugin.h"


#define FC_MAX_CAPS  32


typedef struct {
    char      *campaign;
    size_t     len;
    uint32_t   max;
    int64_t    per;           /* seconds */
    uint32_t   count;         /* this decision's, from the state */
    int64_t    start;
    uint32_t  *offers;        /* the campaign's offer indexes */
    uint32_t   noffers;
} fc_cap_t;


typedef struct {
    uint32_t   ncaps;
    fc_cap_t   caps[FC_MAX_CAPS];
    int64_t    max_per;
    uint32_t   noffers;
    uint32_t   cap_of[];      /* per offer: cap index, or CEF_PLUGIN_NONE */
} fc_t;


static int
fc_fail(cef_plugin_error_t *err, const cef_conf_t *at, const char *msg,
    const char *arg)
{
    err->at = at;
    snprintf(err->msg, sizeof(err->msg), msg, arg);
    return CEF_PLUGIN_ERROR;
}


/* "7d", "12h", "30m", "45s", "2w", or plain seconds */
static int
fc_duration(const char *s, int64_t *out)
{
    int64_t  n = 0, unit = 1;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    for ( /* void */ ; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (*s - '0');
        if (n > 100000000) {
            return -1;
        }
    }

    switch (*s) {
    case '\0': unit = 1; s--; break;
    case 's':  unit = 1; break;
    case 'm':  unit = 60; break;
    case 'h':  unit = 3600; break;
    case 'd':  unit = 86400; break;
    case 'w':  unit = 7 * 86400; break;
    default:   return -1;
    }

    if (s[1] != '\0' || n == 0) {
        return -1;
    }

    *out = n * unit;
    return 0;
}


static int
fc_configure(const cef_plugin_rules_t *rules, const cef_conf_t *conf,
    void **state, cef_plugin_error_t *err)
{
    uint32_t           i, j;
    fc_t              *fc;
    fc_cap_t          *cap;
    double             max;
    const cef_conf_t  *caps, *c, *k;

    if (conf == NULL) {
        return CEF_PLUGIN_OK;           /* not used by this rule file */
    }

    if (conf->type != CEF_CONF_MAP) {
        return fc_fail(err, conf, "freqcap must be a mapping with caps:%s",
                       "");
    }

    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->items[i].key, "caps") != 0) {
            return fc_fail(err, &conf->items[i], "unknown key '%s' (freqcap "
                           "takes caps:)", conf->items[i].key);
        }
    }

    caps = cef_conf_get(conf, "caps");
    if (caps == NULL || caps->type != CEF_CONF_LIST) {
        return fc_fail(err, caps ? caps : conf, "caps: must be a list of "
                       "{campaign: NAME, max: N, per: 7d}%s", "");
    }

    if (caps->n > FC_MAX_CAPS) {
        return fc_fail(err, caps, "at most 32 caps%s", "");
    }

    fc = calloc(1, sizeof(fc_t) + (rules->noffers + 1) * sizeof(uint32_t));
    if (fc == NULL) {
        return fc_fail(err, NULL, "out of memory%s", "");
    }

    *state = fc;
    fc->noffers = rules->noffers;

    for (i = 0; i < rules->noffers; i++) {
        fc->cap_of[i] = CEF_PLUGIN_NONE;
    }

    for (i = 0; i < caps->n; i++) {
        c = &caps->items[i];
        cap = &fc->caps[i];

        if (c->type != CEF_CONF_MAP) {
            return fc_fail(err, c, "a cap is a mapping {campaign: NAME, max: "
                           "N, per: 7d}%s", "");
        }

        for (j = 0; j < c->n; j++) {
            if (strcmp(c->items[j].key, "campaign") != 0
                && strcmp(c->items[j].key, "max") != 0
                && strcmp(c->items[j].key, "per") != 0)
            {
                return fc_fail(err, &c->items[j], "unknown key '%s' in a cap "
                               "(campaign:, max:, per:)", c->items[j].key);
            }
        }

        k = cef_conf_get(c, "campaign");
        if (k == NULL || k->type != CEF_CONF_SCALAR || k->value[0] == '\0'
            || strpbrk(k->value, ":~") != NULL)
        {
            return fc_fail(err, k ? k : c, "a cap needs campaign: NAME%s",
                           "");
        }

        for (j = 0; j < i; j++) {
            if (strcmp(fc->caps[j].campaign, k->value) == 0) {
                return fc_fail(err, k, "campaign '%s' is capped twice",
                               k->value);
            }
        }

        cap->len = strlen(k->value);
        cap->campaign = malloc(cap->len + 1);
        if (cap->campaign == NULL) {
            return fc_fail(err, NULL, "out of memory%s", "");
        }
        memcpy(cap->campaign, k->value, cap->len + 1);
        fc->ncaps++;

        for (j = 0; j < rules->noffers; j++) {
            if (rules->offers[j].campaign
                && strcmp(rules->offers[j].campaign, cap->campaign) == 0)
            {
                fc->cap_of[j] = i;
            }
        }

        for (j = 0; j < rules->noffers; j++) {
            cap->noffers += fc->cap_of[j] == i;
        }

        if (cap->noffers == 0) {
            return fc_fail(err, k, "no offer has campaign '%s'", k->value);
        }

        cap->offers = malloc(cap->noffers * sizeof(uint32_t));
        if (cap->offers == NULL) {
            return fc_fail(err, NULL, "out of memory%s", "");
        }

        for (j = 0, cap->noffers = 0; j < rules->noffers; j++) {
            if (fc->cap_of[j] == i) {
                cap->offers[cap->noffers++] = j;
            }
        }

        k = cef_conf_get(c, "max");
        if (k == NULL || cef_conf_number(k, &max) != 0 || max < 1
            || max > 1000000 || max != (double) (uint32_t) max)
        {
            return fc_fail(err, k ? k : c, "max: must be a whole number of "
                           "impressions from 1 to 1000000%s", "");
        }
        cap->max = (uint32_t) max;

        k = cef_conf_get(c, "per");
        if (k == NULL || k->type != CEF_CONF_SCALAR
            || fc_duration(k->value, &cap->per) != 0)
        {
            return fc_fail(err, k ? k : c, "per: must be a duration such as "
                           "30m, 12h, 7d or 2w%s", "");
        }

        if (cap->per > fc->max_per) {
            fc->max_per = cap->per;
        }
    }

    return CEF_PLUGIN_OK;
}


static void
fc_free(void *state)
{
    fc_t      *fc = state;
    uint32_t   i;

    for (i = 0; i < fc->ncaps; i++) {
        free(fc->caps[i].campaign);
        free(fc->caps[i].offers);
    }

    free(fc);
}


static int64_t
fc_number(const char **p, const char *end)
{
    int64_t  n = 0;

    if (*p == end || **p < '0' || **p > '9') {
        return -1;
    }

    while (*p < end && **p >= '0' && **p <= '9') {
        n = n * 10 + (**p - '0');
        if (n > ((int64_t) 1 << 40)) {
            return -1;
        }
        (*p)++;
    }

    return n;
}


/* Read the counts; anything malformed reads as no impressions. */
static void
fc_parse(fc_t *fc, cef_span_t s, int64_t now)
{
    const char  *p = s.data, *end = s.data + s.len, *name;
    size_t       len;
    int64_t      count, start;
    uint32_t     i;

    while (p < end) {
        name = p;
        while (p < end && *p != ':') {
            p++;
        }
        len = (size_t) (p - name);

        if (p++ == end) {
            return;
        }

        count = fc_number(&p, end);
        if (count < 0 || p == end || *p++ != ':') {
            return;
        }

        start = fc_number(&p, end);
        if (start < 0 || (p < end && *p++ != '~')) {
            return;
        }

        for (i = 0; i < fc->ncaps; i++) {
            if (fc->caps[i].len == len
                && memcmp(fc->caps[i].campaign, name, len) == 0)
            {
                /* a window in the future is forged or from a skewed
                 * clock: ignore it */
                if (start <= now && now < start + fc->caps[i].per) {
                    fc->caps[i].count = (uint32_t) (count > 1000000 ? 1000000
                                                                   : count);
                    fc->caps[i].start = start;
                }
                break;
            }
        }
    }
}


static int
fc_begin(void *state, const cef_plugin_req_t *req, uint8_t *blocked)
{
    fc_t        *fc = state;
    fc_cap_t    *cap;
    uint32_t     i, j;
    cef_span_t   s;

    for (i = 0; i < fc->ncaps; i++) {
        fc->caps[i].count = 0;
        fc->caps[i].start = 0;
    }

    if (!req->state_get(req, &s)) {
        return CEF_PLUGIN_OK;            /* no impressions: nothing capped */
    }

    fc_parse(fc, s, req->now);

    for (i = 0; i < fc->ncaps; i++) {
        cap = &fc->caps[i];

        if (cap->count >= cap->max) {
            for (j = 0; j < cap->noffers; j++) {
                blocked[cap->offers[j]] = 1;
            }
        }
    }

    return CEF_PLUGIN_OK;
}


/* v in decimal at p (room for 20 bytes); the length written */
static size_t
fc_format_int(char *p, int64_t v)
{
    char      tmp[20];
    size_t    n = 0, k = 0;
    uint64_t  u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        tmp[n++] = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        p[k++] = '-';
    }

    while (n) {
        p[k++] = tmp[--n];
    }

    return k;
}


static void
fc_end(void *state, const cef_plugin_req_t *req, const uint32_t *shown,
    uint32_t nslots)
{
    fc_t       *fc = state;
    fc_cap_t   *cap;
    uint32_t    s, i, seen = 0;
    size_t      len = 0, nc, ns, n;
    char        buf[400], count[20], start[20];

    for (s = 0; s < nslots; s++) {
        if (shown[s] != CEF_PLUGIN_NONE && shown[s] < fc->noffers
            && fc->cap_of[shown[s]] != CEF_PLUGIN_NONE)
        {
            seen |= 1u << fc->cap_of[shown[s]];
        }
    }

    if (seen == 0) {
        return;                      /* nothing to count: keep the cookie */
    }

    for (i = 0; i < fc->ncaps; i++) {
        cap = &fc->caps[i];

        if (seen & (1u << i)) {
            if (cap->count == 0) {
                cap->start = req->now;
            }
            cap->count++;
        }

        if (cap->count == 0) {
            continue;
        }

        /* [~]CAMPAIGN:COUNT:START, by hand: snprintf() was a tenth of
           the decision */

        nc = fc_format_int(count, cap->count);
        ns = fc_format_int(start, cap->start);
        n = (len ? 1 : 0) + cap->len + 1 + nc + 1 + ns;

        if (n >= sizeof(buf) - len) {
            break;                   /* full: drop the rest */
        }

        if (len) {
            buf[len++] = '~';
        }

        memcpy(buf + len, cap->campaign, cap->len);
        len += cap->len;
        buf[len++] = ':';
        memcpy(buf + len, count, nc);
        len += nc;
        buf[len++] = ':';
        memcpy(buf + len, start, ns);
        len += ns;
    }

    (void) req->state_set(req, buf, len, fc->max_per);
}


const cef_plugin_t  cef_plugin_freqcap = {
    CEF_PLUGIN_ABI_VERSION,
    "freqcap",
    "frequency caps per campaign, counted in a signed cookie",
    0,
    NULL,
    NULL, 0,
    NULL, NULL,
    NULL,
    fc_configure, fc_free,
    fc_begin, fc_end,
    NULL, NULL
};
