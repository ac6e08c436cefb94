/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules publish, promote, rollback: rules records for the store's road
 * (cef-sync load, apply, consume; docs/cef-rules.md, docs/formats.md "Rules
 * records"); cef-rules history: a rule set's versions as a store holds
 * them.
 *
 * publish checks the file as nginx -t does (the same loader, the same
 * plugins, --nginx-conf/--vars for var.NAMEs) and prints one record: a
 * JSON object on one line (a Kafka message value as it is), or with --seq
 * N a delta stream of it (header and record) for cef-sync apply.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cef_rules_tool.h"
#include "cef_store_rules.h"


typedef struct {
    const char  *name;
    const char  *label;
    const char  *author;
    const char  *hash;         /* promote --hash, rollback --to */
    const char  *store;
    const char  *output;
    long long    seq;
    int          mode;         /* CEF_STORE_RULES_* */
    double       share;
} cef_tool_pub_t;


/* "10%", "10", "2.5%": a percentage in (0, 100]; -1 if not */
static double
cef_tool_percent(const char *s)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(s, &end);

    if (end == s || errno != 0) {
        return -1;
    }

    if (*end == '%') {
        end++;
    }

    if (*end != '\0' || !(v >= 0.01 && v <= 100)) {
        return -1;
    }

    return v;
}


/*
 * The record's version: the time in milliseconds, and with --store above
 * the stored one (a clock behind the last publisher's still orders).
 */
static long long
cef_tool_version(const cef_tool_pub_t *o)
{
    char               err[512];
    long long          v;
    struct timespec    ts;
    cef_store_t       *s;
    cef_store_rules_t  r;

    clock_gettime(CLOCK_REALTIME, &ts);
    v = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    if (o->store == NULL) {
        return v;
    }

    if (cef_store_open(&s, o->store, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: --store: %s\n", err);
        return -1;
    }

    if (cef_store_begin(s) == CEF_STORE_OK) {
        if (cef_store_rules_get(s, o->name, strlen(o->name), &r)
            == CEF_STORE_OK
            && (long long) r.version >= v)
        {
            v = (long long) r.version + 1;
        }
        cef_store_end(s);
    }

    cef_store_close(s);
    return v;
}


static int
cef_tool_emit(const cef_tool_pub_t *o, json_t *rec)
{
    FILE  *out = stdout;
    char  *line;
    int    rc = CEF_EXIT_OK;

    if (o->seq > 0) {
        json_object_set_new(rec, "seq", json_integer(o->seq));
    }

    line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        return CEF_EXIT_PROBLEM;
    }

    if (o->output && (out = fopen(o->output, "w")) == NULL) {
        fprintf(stderr, "cef-rules: cannot write \"%s\": %s\n", o->output,
                strerror(errno));
        free(line);
        return CEF_EXIT_PROBLEM;
    }

    if (o->seq > 0) {
        fprintf(out, "{\"cef\":\"delta\",\"version\":1}\n");
    }

    fprintf(out, "%s\n", line);

    if ((o->output ? fclose(out) : fflush(out)) != 0) {
        fprintf(stderr, "cef-rules: writing the record: %s\n",
                strerror(errno));
        rc = CEF_EXIT_PROBLEM;
    }

    free(line);
    return rc;
}


/* the whole file, NUL-terminated; NULL with a message */
static char *
cef_tool_slurp(const char *path, size_t *len)
{
    FILE    *fp;
    char    *buf;
    long     n;

    fp = cef_tool_fopen(path);
    if (fp == NULL) {
        fprintf(stderr, "cef-rules: cannot open \"%s\": %s\n", path,
                errno == EINVAL ? "not a regular file" : strerror(errno));
        return NULL;
    }

    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0
        || fseek(fp, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "cef-rules: cannot read \"%s\"\n", path);
        fclose(fp);
        return NULL;
    }

    buf = malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, fp) != (size_t) n) {
        fprintf(stderr, "cef-rules: cannot read \"%s\"\n", path);
        free(buf);
        fclose(fp);
        return NULL;
    }

    fclose(fp);
    buf[n] = '\0';
    *len = (size_t) n;

    return buf;
}


static int
cef_tool_publish_file(const cef_tool_pub_t *o, const char *path,
    cef_tool_vars_t *vs, int verify)
{
    int                  rc;
    char                 line[1024];
    char                *buf;
    size_t               len, i;
    json_t              *rec, *ro;
    long long            version;
    cef_rules_t         *rs = NULL;
    cef_rules_errors_t   errs;

    buf = cef_tool_slurp(path, &len);
    if (buf == NULL) {
        return CEF_EXIT_PROBLEM;
    }

    /* as nginx -t compiles it: the same loader, the same plugins */

    if (cef_rules_load_buffer_with(path, buf, len, cef_tool_plugin_set(),
                                   &rs, &errs)
        != 0)
    {
        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, line, sizeof(line));
            fprintf(stderr, "%s\n", line);
        }
    }

    cef_rules_errors_free(&errs);

    if (rs == NULL || cef_tool_check_vars_to(path, rs, vs, verify, stderr)) {
        fprintf(stderr, "cef-rules: \"%s\" not published: it would fail "
                "nginx -t\n", path);
        cef_rules_free(rs);
        free(buf);
        return CEF_EXIT_PROBLEM;
    }

    if (len > (size_t) 15 * 1024 * 1024) {
        fprintf(stderr, "cef-rules: \"%s\" is %zu bytes: a rules record "
                "holds at most 15 MiB of source\n", path, len);
        cef_rules_free(rs);
        free(buf);
        return CEF_EXIT_PROBLEM;
    }

    version = cef_tool_version(o);
    if (version < 0) {
        cef_rules_free(rs);
        free(buf);
        return CEF_EXIT_PROBLEM;
    }

    if (o->mode == CEF_STORE_RULES_NONE) {
        ro = json_pack("{s:s}", "mode", "live");
    } else {
        ro = json_pack("{s:s, s:f}", "mode",
                       cef_store_rules_mode_name(o->mode), "share",
                       o->share);
    }

    rec = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s%, s:o}",
                    "op", "rules", "name", o->name, "action", "publish",
                    "version", (json_int_t) version,
                    "created_at", (json_int_t) time(NULL),
                    "hash", cef_rules_hash(rs),
                    "source", buf, len,
                    "rollout", ro);

    cef_rules_free(rs);
    free(buf);

    if (ro == NULL || rec == NULL) {
        fprintf(stderr, "cef-rules: \"%s\" is not UTF-8 text\n", path);
        return CEF_EXIT_PROBLEM;
    }

    if (o->label) {
        json_object_set_new(rec, "label", json_string(o->label));
    }
    if (o->author) {
        json_object_set_new(rec, "author", json_string(o->author));
    }

    rc = cef_tool_emit(o, rec);
    json_decref(rec);

    return rc;
}


static int
cef_tool_text_ok(const char *what, const char *s)
{
    if (s && strlen(s) > CEF_STORE_RULES_TEXT_MAX) {
        fprintf(stderr, "cef-rules: %s is longer than %d bytes\n", what,
                CEF_STORE_RULES_TEXT_MAX);
        return 0;
    }

    return 1;
}


static int
cef_tool_hash_ok(const char *h)
{
    size_t  i;

    if (strlen(h) != 64) {
        return 0;
    }

    for (i = 0; i < 64; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


int
cef_tool_publish(const char *cmd, int argc, char **argv)
{
    int              i, nargs = 0, verify = 0, rc;
    char            *end, err[512];
    const char      *arg = NULL, *opt;
    json_t          *rec;
    long long        version;
    cef_tool_pub_t   o;
    cef_tool_vars_t *vs;

    memset(&o, 0, sizeof(o));
    o.author = getenv("USER");

    vs = cef_tool_vars_create();
    if (vs == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        return CEF_EXIT_PROBLEM;
    }

    rc = CEF_EXIT_USAGE;

    for (i = 0; i < argc; i++) {
        opt = argv[i];

        if (strncmp(opt, "--", 2) != 0) {
            arg = opt;
            nargs++;
            continue;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "cef-rules: %s needs an argument\n", opt);
            goto done;
        }

        i++;

        if (strcmp(opt, "--name") == 0 && cmd[1] == 'u') {
            o.name = argv[i];
        } else if (strcmp(opt, "--label") == 0 && cmd[1] == 'u') {
            o.label = argv[i];
        } else if (strcmp(opt, "--author") == 0) {
            o.author = argv[i];
        } else if (strcmp(opt, "--store") == 0) {
            o.store = argv[i];
        } else if (strcmp(opt, "--output") == 0) {
            o.output = argv[i];
        } else if (strcmp(opt, "--seq") == 0) {
            errno = 0;
            o.seq = strtoll(argv[i], &end, 10);
            if (*end || errno || o.seq < 1) {
                fprintf(stderr, "cef-rules: --seq needs a positive "
                        "integer\n");
                goto done;
            }
        } else if ((strcmp(opt, "--canary") == 0
                    || strcmp(opt, "--shadow") == 0) && cmd[1] == 'u')
        {
            if (o.mode != CEF_STORE_RULES_NONE) {
                fprintf(stderr, "cef-rules: --canary and --shadow exclude "
                        "each other\n");
                goto done;
            }
            o.mode = opt[2] == 'c' ? CEF_STORE_RULES_CANARY
                                   : CEF_STORE_RULES_SHADOW;
            o.share = cef_tool_percent(argv[i]);
            if (o.share < 0) {
                fprintf(stderr, "cef-rules: %s needs a percentage from "
                        "0.01%% to 100%% (e.g. 10%%)\n", opt);
                goto done;
            }
        } else if ((strcmp(opt, "--hash") == 0 && cmd[1] == 'r'
                    && cmd[2] == 'o' && cmd[3] == 'm')
                   || (strcmp(opt, "--to") == 0 && cmd[1] == 'o'))
        {
            o.hash = argv[i];
            if (!cef_tool_hash_ok(o.hash)) {
                fprintf(stderr, "cef-rules: %s needs a rule set's SHA-256 "
                        "(64 lower-case hex digits, as $cef_rules_hash)\n",
                        opt);
                goto done;
            }
        } else if ((strcmp(opt, "--nginx-conf") == 0
                    || strcmp(opt, "--vars") == 0) && cmd[1] == 'u')
        {
            if (opt[2] == 'v') {
                if (cef_tool_vars_add_list(vs, argv[i]) != 0) {
                    fprintf(stderr, "cef-rules: out of memory\n");
                    rc = CEF_EXIT_PROBLEM;
                    goto done;
                }
            } else if (cef_tool_vars_read_conf(vs, argv[i], err, sizeof(err))
                       != 0)
            {
                fprintf(stderr, "cef-rules: --nginx-conf: %s\n", err);
                goto done;
            }
            verify = 1;
        } else {
            fprintf(stderr, "cef-rules: %s: unknown option '%s'\n", cmd, opt);
            cef_tool_usage();
            goto done;
        }
    }

    if (nargs != 1) {
        fprintf(stderr, "cef-rules: %s takes one %s\n", cmd,
                cmd[1] == 'u' ? "FILE" : "NAME");
        cef_tool_usage();
        goto done;
    }

    if (cmd[1] != 'u') {
        o.name = arg;
    }

    if (o.name == NULL) {
        fprintf(stderr, "cef-rules: publish needs --name NAME\n");
        goto done;
    }

    if (!cef_store_rules_name_ok(o.name, strlen(o.name))) {
        fprintf(stderr, "cef-rules: a rule set's name is 1 to %d letters, "
                "digits, '.', '_' or '-'\n", CEF_STORE_RULES_NAME_MAX);
        goto done;
    }

    if (!cef_tool_text_ok("--label", o.label)
        || !cef_tool_text_ok("--author", o.author))
    {
        goto done;
    }

    if (cmd[1] == 'u') {
        rc = cef_tool_publish_file(&o, arg, vs, verify);
        goto done;
    }

    version = cef_tool_version(&o);
    if (version < 0) {
        rc = CEF_EXIT_PROBLEM;
        goto done;
    }

    rec = json_pack("{s:s, s:s, s:s, s:I, s:I}",
                    "op", "rules", "name", o.name,
                    "action", cmd[1] == 'r' ? "promote" : "rollback",
                    "version", (json_int_t) version,
                    "created_at", (json_int_t) time(NULL));
    if (rec == NULL) {
        rc = CEF_EXIT_PROBLEM;
        goto done;
    }

    if (o.hash) {
        json_object_set_new(rec, cmd[1] == 'r' ? "hash" : "to",
                            json_string(o.hash));
    }
    if (o.author) {
        json_object_set_new(rec, "author", json_string(o.author));
    }

    rc = cef_tool_emit(&o, rec);
    json_decref(rec);

done:

    cef_tool_vars_free(vs);
    return rc;
}


/* --- history -------------------------------------------------------------- */


static void
cef_tool_utc(char *buf, size_t size, int64_t t)
{
    time_t     tt = (time_t) t;
    struct tm  tm;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, size, "-");
        return;
    }

    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


int
cef_tool_history(int argc, char **argv)
{
    int                         i, json = 0, rc;
    char                        err[512], when[32], state[48];
    uint32_t                    k;
    json_t                     *root = NULL, *arr = NULL, *e;
    const char                 *name = NULL, *store = NULL;
    cef_store_t                *s;
    cef_store_rules_t           r;
    cef_store_rules_version_t   v;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            store = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strncmp(argv[i], "--", 2) != 0 && name == NULL) {
            name = argv[i];
        } else {
            cef_tool_usage();
            return CEF_EXIT_USAGE;
        }
    }

    if (name == NULL || store == NULL) {
        fprintf(stderr, "cef-rules: history needs NAME and --store DIR\n");
        return CEF_EXIT_USAGE;
    }

    if (cef_store_open(&s, store, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", err);
        return CEF_EXIT_PROBLEM;
    }

    if (cef_store_begin(s) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", cef_store_strerror(s));
        cef_store_close(s);
        return CEF_EXIT_PROBLEM;
    }

    rc = cef_store_rules_get(s, name, strlen(name), &r);

    if (rc != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", rc == CEF_STORE_NOTFOUND
                ? "no rule set of that name in the store"
                : cef_store_strerror(s));
        cef_store_end(s);
        cef_store_close(s);
        return CEF_EXIT_PROBLEM;
    }

    if (json) {
        arr = json_array();
        root = json_pack("{s:s, s:I, s:o}", "name", name,
                         "version", (json_int_t) r.version, "versions", arr);
    } else {
        printf("%-12s  %-12s  %-20s  %-16s  %s\n", "STATE", "HASH",
               "PUBLISHED", "AUTHOR", "LABEL");
    }

    /* newest first */
    for (k = r.nhistory; k-- > 0; ) {
        (void) cef_store_rules_at(&r, k, &v);

        if (json) {
            e = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s%, s:s%}",
                          "hash", v.hex,
                          "state", cef_store_rules_state_name(v.state),
                          "version", (json_int_t) v.version,
                          "created_at", (json_int_t) v.created_at,
                          "live_at", (json_int_t) v.live_at,
                          "author", v.author.data, v.author.len,
                          "label", v.label.data, v.label.len);
            if ((int) k == r.candidate) {
                json_object_set_new(e, "share", json_real(r.share / 100.0));
            }
            json_array_append_new(arr, e);
            continue;
        }

        if ((int) k == r.candidate) {
            snprintf(state, sizeof(state), "%s %g%%",
                     cef_store_rules_state_name(v.state), r.share / 100.0);
        } else {
            snprintf(state, sizeof(state), "%s",
                     cef_store_rules_state_name(v.state));
        }

        cef_tool_utc(when, sizeof(when), v.created_at);
        printf("%-12s  %.12s  %-20s  %-16.*s  %.*s\n", state, v.hex, when,
               (int) v.author.len, v.author.data, (int) v.label.len,
               v.label.data);
    }

    cef_store_end(s);
    cef_store_close(s);

    if (json) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(root);
    }

    return CEF_EXIT_OK;
}
