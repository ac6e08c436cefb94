/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules check: which var.NAMEs nginx would know (docs/cef-rules.md).
 *
 * nginx -t rejects a var.NAME that no nginx variable answers.  Without an
 * nginx in sight, check knows nginx's own variables (1.22 with the modules
 * Debian builds in, and this module's), the prefix variables, the names
 * given with --vars, and those an nginx configuration defines, read from
 * its text (--nginx-conf): nginx variables are global to http{}, so a
 * definition anywhere counts.
 *
 * Read from a configuration: the variable of set, *_set and set_*
 * directives (perl_set, js_set, auth_request_set, set_by_lua...), of map,
 * geo and split_clients, directives named $NAME (geoip2 blocks), named
 * captures of regexes ((?<NAME>...)), and the geoip module's variables
 * when geoip_country/geoip_city/geoip_org are used.  Includes are
 * followed (globs, relative to the main file's directory).  Variables a
 * third-party module registers by itself are not known: give them with
 * --vars.
 */

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_tool.h"


#define CEF_VARS_MAX_INCLUDE  16      /* include depth: loops end here */


struct cef_tool_vars_s {
    char      **names;
    size_t      n;
    size_t      cap;
    int         sorted;
    char       *prefix;              /* directory of the main file */
};


/* nginx 1.22.1: ngx_http_variables.c and the modules of Debian's nginx */
static const char  *cef_nginx_builtin[] = {
    "args", "binary_remote_addr", "body_bytes_sent", "bytes_sent",
    "connection", "connection_requests", "connection_time",
    "content_length", "content_type", "document_root", "document_uri",
    "host", "hostname", "https", "is_args", "limit_rate", "msec",
    "nginx_version", "pid", "pipe", "proxy_protocol_addr",
    "proxy_protocol_port", "proxy_protocol_server_addr",
    "proxy_protocol_server_port", "query_string", "realpath_root",
    "remote_addr", "remote_port", "remote_user", "request",
    "request_body", "request_body_file", "request_completion",
    "request_filename", "request_id", "request_length", "request_method",
    "request_time", "request_uri", "scheme", "server_addr", "server_name",
    "server_port", "server_protocol", "status", "tcpinfo_rtt",
    "tcpinfo_rttvar", "tcpinfo_snd_cwnd", "tcpinfo_rcv_space",
    "time_iso8601", "time_local", "uri",
    /* upstream, proxy, fastcgi */
    "upstream_addr", "upstream_bytes_received", "upstream_bytes_sent",
    "upstream_cache_status", "upstream_connect_time", "upstream_header_time",
    "upstream_response_length", "upstream_response_time", "upstream_status",
    "proxy_add_x_forwarded_for", "proxy_host", "proxy_internal_body_length",
    "proxy_internal_chunked", "proxy_port", "fastcgi_path_info",
    "fastcgi_script_name", "memcached_key",
    /* ssl, http2, realip, stub_status, secure_link, slice */
    "ssl_alpn_protocol", "ssl_cipher", "ssl_ciphers", "ssl_client_cert",
    "ssl_client_escaped_cert", "ssl_client_fingerprint", "ssl_client_i_dn",
    "ssl_client_i_dn_legacy", "ssl_client_raw_cert", "ssl_client_s_dn",
    "ssl_client_s_dn_legacy", "ssl_client_serial", "ssl_client_v_end",
    "ssl_client_v_remain", "ssl_client_v_start", "ssl_client_verify",
    "ssl_curve", "ssl_curves", "ssl_early_data", "ssl_protocol",
    "ssl_server_name", "ssl_session_id", "ssl_session_reused", "http2",
    "realip_remote_addr", "realip_remote_port", "connections_active",
    "connections_reading", "connections_waiting", "connections_writing",
    "secure_link", "secure_link_expires", "slice_range",
    /* userid, referer, browser, gzip, ssi, limit_req, limit_conn */
    "uid_got", "uid_reset", "uid_set", "invalid_referer", "ancient_browser",
    "modern_browser", "msie", "gzip_ratio", "date_gmt", "date_local",
    "limit_conn_status", "limit_req_status",
    /* this module (ngx_cef_module/ngx_http_cef_variables.c, _rules.c) */
    "cef_consent", "cef_decision", "cef_decision_us", "cef_key_type",
    "cef_offers", "cef_profile", "cef_rules_decision", "cef_rules_hash",
    "cef_rules_html", "cef_rules_offers", "cef_store_age", "cef_variant",
    "cef_visitor", "cef_visitor_new",
    NULL
};


static const char  *cef_nginx_prefixes[] = {
    "arg_", "cookie_", "http_", "sent_http_", "sent_trailer_",
    "upstream_cookie_", "upstream_http_", "upstream_trailer_", "cef_attr_",
    NULL
};


static const char  *cef_geoip_country[] = {
    "geoip_country_code", "geoip_country_code3", "geoip_country_name", NULL
};

static const char  *cef_geoip_city[] = {
    "geoip_area_code", "geoip_city", "geoip_city_continent_code",
    "geoip_city_country_code", "geoip_city_country_code3",
    "geoip_city_country_name", "geoip_dma_code", "geoip_latitude",
    "geoip_longitude", "geoip_postal_code", "geoip_region",
    "geoip_region_name", NULL
};

static const char  *cef_geoip_org[] = { "geoip_org", NULL };


cef_tool_vars_t *
cef_tool_vars_create(void)
{
    return calloc(1, sizeof(cef_tool_vars_t));
}


void
cef_tool_vars_free(cef_tool_vars_t *vs)
{
    size_t  i;

    if (vs == NULL) {
        return;
    }

    for (i = 0; i < vs->n; i++) {
        free(vs->names[i]);
    }

    free(vs->names);
    free(vs->prefix);
    free(vs);
}


/* Add NAME (len bytes, an optional leading '$' or ${...}), lower-cased. */
static int
cef_vars_add(cef_tool_vars_t *vs, const char *name, size_t len)
{
    char   **v, *s;
    size_t   i;

    if (len && name[0] == '$') {
        name++;
        len--;
    }

    if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
        name++;
        len -= 2;
    }

    if (len == 0) {
        return 0;
    }

    if (vs->n == vs->cap) {
        vs->cap = vs->cap ? 2 * vs->cap : 64;
        v = realloc(vs->names, vs->cap * sizeof(char *));
        if (v == NULL) {
            return -1;
        }
        vs->names = v;
    }

    s = malloc(len + 1);
    if (s == NULL) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        s[i] = (char) tolower((unsigned char) name[i]);
    }

    s[len] = '\0';
    vs->names[vs->n++] = s;
    vs->sorted = 0;

    return 0;
}


int
cef_tool_vars_add_list(cef_tool_vars_t *vs, const char *list)
{
    const char  *p, *e;

    for (p = list; *p; p = *e ? e + 1 : e) {
        e = strchr(p, ',');
        if (e == NULL) {
            e = p + strlen(p);
        }

        while (p < e && *p == ' ') {
            p++;
        }

        if (cef_vars_add(vs, p, (size_t) (e - p)) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
cef_vars_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


int
cef_tool_vars_known(cef_tool_vars_t *vs, const char *name)
{
    size_t  i;

    for (i = 0; cef_nginx_builtin[i]; i++) {
        if (strcmp(cef_nginx_builtin[i], name) == 0) {
            return 1;
        }
    }

    for (i = 0; cef_nginx_prefixes[i]; i++) {
        if (strncmp(cef_nginx_prefixes[i], name, strlen(cef_nginx_prefixes[i]))
            == 0)
        {
            return 1;
        }
    }

    if (vs == NULL || vs->n == 0) {
        return 0;
    }

    if (!vs->sorted) {
        qsort(vs->names, vs->n, sizeof(char *), cef_vars_cmp);
        vs->sorted = 1;
    }

    return bsearch(&name, vs->names, vs->n, sizeof(char *), cef_vars_cmp)
           != NULL;
}


/* --- reading an nginx configuration --------------------------------------- */

typedef struct {
    cef_tool_vars_t  *vs;
    char             *err;
    size_t            size;
    int               depth;
} cef_conf_read_t;


typedef struct {
    const char  *p;
    size_t       len;
} cef_word_t;


static int cef_vars_read_file(cef_conf_read_t *cr, const char *path);


/* The next word of a configuration: 1, 0 at the end, or the byte ';', '{'
   or '}' as a token of its own (returned as -c). */
static int
cef_conf_token(const char **pp, const char *end, cef_word_t *w)
{
    const char  *p = *pp;
    char         q;

    for ( ;; ) {
        while (p < end && isspace((unsigned char) *p)) {
            p++;
        }

        if (p < end && *p == '#') {
            while (p < end && *p != '\n') {
                p++;
            }
            continue;
        }

        break;
    }

    if (p == end) {
        *pp = p;
        return 0;
    }

    if (*p == ';' || *p == '{' || *p == '}') {
        *pp = p + 1;
        return -*p;
    }

    if (*p == '"' || *p == '\'') {
        q = *p++;
        w->p = p;
        while (p < end && *p != q) {
            p += (*p == '\\' && p + 1 < end) ? 2 : 1;
        }
        w->len = (size_t) (p - w->p);
        *pp = p < end ? p + 1 : p;
        return 1;
    }

    w->p = p;
    while (p < end && !isspace((unsigned char) *p) && *p != ';' && *p != '{'
           && *p != '}')
    {
        p += (*p == '\\' && p + 1 < end) ? 2 : 1;
    }
    w->len = (size_t) (p - w->p);
    *pp = p;

    return 1;
}


static int
cef_word_is(const cef_word_t *w, const char *s)
{
    return w->len == strlen(s) && memcmp(w->p, s, w->len) == 0;
}


static int
cef_vars_add_all(cef_tool_vars_t *vs, const char *const *names)
{
    for ( ; *names; names++) {
        if (cef_vars_add(vs, *names, strlen(*names)) != 0) {
            return -1;
        }
    }

    return 0;
}


/* (?<NAME>, (?P<NAME> and (?'NAME' in a word define $NAME */
static int
cef_vars_captures(cef_tool_vars_t *vs, const cef_word_t *w)
{
    const char  *p = w->p, *end = w->p + w->len, *n;
    char         close;

    for ( ; p + 3 < end; p++) {
        if (p[0] != '(' || p[1] != '?') {
            continue;
        }

        n = p + 2;
        if (*n == 'P') {
            n++;
        }

        if (n >= end || (*n != '<' && *n != '\'')) {
            continue;
        }

        close = *n == '<' ? '>' : '\'';
        n++;

        p = n;
        while (p < end && (isalnum((unsigned char) *p) || *p == '_')) {
            p++;
        }

        if (p < end && *p == close && p > n
            && cef_vars_add(vs, n, (size_t) (p - n)) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
cef_vars_include(cef_conf_read_t *cr, const cef_word_t *w)
{
    glob_t   g;
    size_t   i;
    char     pattern[4096];
    int      rc = 0;

    if (w->p[0] == '/') {
        snprintf(pattern, sizeof(pattern), "%.*s", (int) w->len, w->p);
    } else {
        snprintf(pattern, sizeof(pattern), "%s/%.*s", cr->vs->prefix,
                 (int) w->len, w->p);
    }

    if (glob(pattern, 0, NULL, &g) != 0) {
        /* nginx fails on a missing file, but accepts an empty glob */
        if (strpbrk(pattern, "*?[") == NULL) {
            snprintf(cr->err, cr->size, "%s: cannot open: %s", pattern,
                     strerror(ENOENT));
            return -1;
        }
        return 0;
    }

    for (i = 0; i < g.gl_pathc && rc == 0; i++) {
        rc = cef_vars_read_file(cr, g.gl_pathv[i]);
    }

    globfree(&g);

    return rc;
}


/* One directive: words[0] is its name. */
static int
cef_vars_directive(cef_conf_read_t *cr, cef_word_t *words, size_t n)
{
    cef_tool_vars_t  *vs = cr->vs;
    cef_word_t       *name = &words[0];
    size_t            i;

    for (i = 0; i < n; i++) {
        if (cef_vars_captures(vs, &words[i]) != 0) {
            return -1;
        }
    }

    if (name->len > 1 && name->p[0] == '$') {
        return cef_vars_add(vs, name->p, name->len);
    }

    if (cef_word_is(name, "include") && n == 2) {
        return cef_vars_include(cr, &words[1]);
    }

    if ((cef_word_is(name, "set")
         || (name->len > 4 && memcmp(name->p, "set_", 4) == 0)
         || (name->len > 4 && memcmp(name->p + name->len - 4, "_set", 4) == 0))
        && n >= 2 && words[1].p[0] == '$')
    {
        return cef_vars_add(vs, words[1].p, words[1].len);
    }

    if ((cef_word_is(name, "map") || cef_word_is(name, "split_clients"))
        && n >= 3 && words[2].p[0] == '$')
    {
        return cef_vars_add(vs, words[2].p, words[2].len);
    }

    if (cef_word_is(name, "geo") && n >= 2 && words[n - 1].p[0] == '$') {
        return cef_vars_add(vs, words[n - 1].p, words[n - 1].len);
    }

    if (cef_word_is(name, "geoip_country")) {
        return cef_vars_add_all(vs, cef_geoip_country);
    }

    if (cef_word_is(name, "geoip_city")) {
        return cef_vars_add_all(vs, cef_geoip_city);
    }

    if (cef_word_is(name, "geoip_org")) {
        return cef_vars_add_all(vs, cef_geoip_org);
    }

    return 0;
}


static int
cef_vars_parse(cef_conf_read_t *cr, const char *text, size_t len)
{
    const char  *p = text, *end = text + len;
    cef_word_t   words[64];
    size_t       n = 0;
    int          t;

    while ((t = cef_conf_token(&p, end, &words[n < 63 ? n : 63])) != 0) {
        if (t == 1) {
            if (n < 63) {
                n++;
            }
            continue;
        }

        if ((t == -';' || t == -'{') && n > 0
            && cef_vars_directive(cr, words, n) != 0)
        {
            return -1;
        }

        n = 0;
    }

    return 0;
}


static int
cef_vars_read_file(cef_conf_read_t *cr, const char *path)
{
    FILE    *fp;
    char    *buf;
    long     size;
    size_t   got;
    int      rc;

    if (cr->depth == CEF_VARS_MAX_INCLUDE) {
        snprintf(cr->err, cr->size, "%s: includes nested deeper than %d "
                 "levels", path, CEF_VARS_MAX_INCLUDE);
        return -1;
    }

    fp = cef_tool_fopen(path);
    if (fp == NULL) {
        snprintf(cr->err, cr->size, "%s: cannot open: %s", path,
                 errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }

    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0
        || fseek(fp, 0, SEEK_SET) != 0)
    {
        snprintf(cr->err, cr->size, "%s: cannot read", path);
        fclose(fp);
        return -1;
    }

    buf = malloc((size_t) size + 1);
    if (buf == NULL) {
        snprintf(cr->err, cr->size, "out of memory");
        fclose(fp);
        return -1;
    }

    got = fread(buf, 1, (size_t) size, fp);
    fclose(fp);

    cr->depth++;
    rc = cef_vars_parse(cr, buf, got);
    cr->depth--;

    free(buf);

    return rc;
}


int
cef_tool_vars_read_conf(cef_tool_vars_t *vs, const char *path, char *err,
    size_t size)
{
    cef_conf_read_t   cr;
    const char       *slash;

    free(vs->prefix);

    slash = strrchr(path, '/');
    vs->prefix = slash ? strndup(path, (size_t) (slash - path + (slash == path)))
                       : strdup(".");
    if (vs->prefix == NULL) {
        snprintf(err, size, "out of memory");
        return -1;
    }

    cr.vs = vs;
    cr.err = err;
    cr.size = size;
    cr.depth = 0;

    return cef_vars_read_file(&cr, path);
}
