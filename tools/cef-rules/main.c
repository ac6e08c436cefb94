/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules: check, test and explain rule files (docs/cef-rules.md).
 *
 *   cef-rules check [--nginx-conf FILE] [--vars NAME,...] FILE...
 *   cef-rules test FILE CASES.yaml
 *   cef-rules explain FILE (--attrs JSON | --case CASES.yaml NAME |
 *                           --store DIR --secret FILE --key TYPE:VALUE)
 *                     [--set PATH=VALUE]... [--now TIME]
 *                     [--visitor ID] [--state PLUGIN=STATE]...
 *   cef-rules replay --rules FILE [--store DIR --secret FILE]
 *                    (--decision RECORD | --log FILE|-)
 *   cef-rules publish FILE --name NAME [--label L] [--author A]
 *                    [--canary P%|--shadow P%] [--store DIR] [--seq N]
 *   cef-rules promote NAME | rollback NAME [--to HASH]
 *   cef-rules history NAME --store DIR [--json]
 *
 *   --plugin NAME=PATH, anywhere after the command and repeatable, loads an
 *   external rule plugin as `cef_plugin NAME PATH;` does in nginx.
 *
 * Exit codes: 0 fine, 1 problems found (or a case mismatch, or a replay
 * that differs), 2 usage (or a record that cannot be replayed).
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cef_rules_tool.h"
#include "cef_version.h"


void
cef_tool_usage(void)
{
    fprintf(stderr,
        "usage: cef-rules check [--nginx-conf FILE] [--vars NAME,...] "
        "FILE...\n"
        "       cef-rules test FILE CASES.yaml\n"
        "       cef-rules explain FILE INPUT [--set PATH=VALUE]... "
        "[--now TIME] [--utc-offset SECONDS]\n"
        "         INPUT: --attrs JSON | --attrs @FILE | --case CASES.yaml NAME"
        "\n"
        "              | --store DIR --secret FILE --key TYPE:VALUE\n"
        "         [--visitor ID] [--state PLUGIN=STATE]...\n"
        "       cef-rules replay --rules FILE [--store DIR --secret FILE]\n"
        "         (--decision RECORD | --log FILE | --log -)\n"
        "       cef-rules publish FILE --name NAME [--label L] [--author A]\n"
        "         [--canary P%%|--shadow P%%] [--nginx-conf FILE] "
        "[--vars NAME,...]\n"
        "         [--store DIR] [--seq N] [--output FILE]\n"
        "       cef-rules promote NAME [--hash HASH] [--author A] "
        "[--store DIR] [--seq N]\n"
        "       cef-rules rollback NAME [--to HASH] [--author A] "
        "[--store DIR] [--seq N]\n"
        "       cef-rules history NAME --store DIR [--json]\n"
        "       cef-rules shadow (--log FILE | --log -) [--json]\n"
        "       cef-rules --version\n"
        "  any command: --plugin NAME=PATH loads an external rule plugin\n");
}


/* replay.c */
int cef_tool_replay(int argc, char **argv);


static cef_plugins_t  *cef_tool_plugins;


const cef_plugins_t *
cef_tool_plugin_set(void)
{
    return cef_tool_plugins;
}


/*
 * fopen(path, "rb") for a regular file only: a FIFO would block the open
 * until some writer came along.  NULL with errno set (EINVAL: not a
 * regular file).
 */
FILE *
cef_tool_fopen(const char *path)
{
    struct stat  sb;
    FILE        *fp;
    int          fd;

    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || fcntl(fd, F_SETFL, 0) != 0)
    {
        close(fd);
        errno = EINVAL;
        return NULL;
    }

    fp = fdopen(fd, "rb");
    if (fp == NULL) {
        close(fd);
    }

    return fp;
}


/* Load a rule file, printing its problems; NULL if it has any. */
cef_rules_t *
cef_tool_load(const char *path)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    size_t               i;
    char                 line[1024];

    if (cef_rules_load_file_with(path, cef_tool_plugins, &rs, &errs) != 0) {
        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, line, sizeof(line));
            printf("%s\n", line);
        }
    }

    cef_rules_errors_free(&errs);
    return rs;
}


/*
 * var.NAMEs of a compiled rule set nginx -t would reject: reported as
 * problems when vs holds what the configuration defines (1 if any), and
 * otherwise those check cannot verify as warnings on standard error.
 */
static int
cef_tool_check_vars(const char *path, const cef_rules_t *rs,
    cef_tool_vars_t *vs, int verify)
{
    return cef_tool_check_vars_to(path, rs, vs, verify, stdout);
}


int
cef_tool_check_vars_to(const char *path, const cef_rules_t *rs,
    cef_tool_vars_t *vs, int verify, FILE *out)
{
    const cef_expr_symtab_t  *st = cef_rules_symtab(rs);
    const cef_ref_t          *ref;
    uint32_t                  i, line, col;
    size_t                    k;
    int                       bad = 0;
    char                      name[256], where[64];

    for (i = 0; i < cef_expr_symtab_count(st); i++) {
        ref = cef_expr_symtab_ref(st, i);

        if (ref->kind != CEF_REF_VAR) {
            continue;
        }

        /* nginx variable names are case-insensitive */
        for (k = 0; k < ref->name.len && k + 1 < sizeof(name); k++) {
            name[k] = (char) tolower((unsigned char) ref->name.data[k]);
        }
        name[k] = '\0';

        if (cef_tool_vars_known(vs, name)) {
            continue;
        }

        where[0] = '\0';
        if (cef_rules_ref_position(rs, ref->id, &line, &col)) {
            snprintf(where, sizeof(where), ":%u:%u", line, col);
        }

        if (verify) {
            fprintf(out, "%s%s: unknown nginx variable \"%s\"\n", path,
                    where, name);
            bad = 1;

        } else {
            fprintf(stderr, "%s%s: warning: var.%s not verified: nginx -t "
                    "rejects it unless the configuration defines $%s "
                    "(check it with --nginx-conf FILE or --vars NAME,...)\n",
                    path, where, name, name);
        }
    }

    return bad;
}


static int
cef_tool_check(int argc, char **argv)
{
    int               i, nfiles = 0, verify = 0, rc = CEF_EXIT_OK;
    char              err[512];
    cef_rules_t      *rs;
    cef_tool_vars_t  *vs;

    vs = cef_tool_vars_create();
    if (vs == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        return CEF_EXIT_PROBLEM;
    }

    /* options first: the files are checked against all of them */

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--nginx-conf") == 0
            || strcmp(argv[i], "--vars") == 0)
        {
            if (i + 1 >= argc) {
                fprintf(stderr, "cef-rules: %s needs an argument\n", argv[i]);
                rc = CEF_EXIT_USAGE;
                goto done;
            }

            if (argv[i][2] == 'v') {
                if (cef_tool_vars_add_list(vs, argv[i + 1]) != 0) {
                    fprintf(stderr, "cef-rules: out of memory\n");
                    rc = CEF_EXIT_PROBLEM;
                    goto done;
                }

            } else if (cef_tool_vars_read_conf(vs, argv[i + 1], err,
                                               sizeof(err))
                       != 0)
            {
                fprintf(stderr, "cef-rules: --nginx-conf: %s\n", err);
                rc = CEF_EXIT_USAGE;
                goto done;
            }

            verify = 1;
            i++;
            continue;
        }

        if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "cef-rules: unknown option '%s'\n", argv[i]);
            cef_tool_usage();
            rc = CEF_EXIT_USAGE;
            goto done;
        }

        argv[nfiles++] = argv[i];
    }

    if (nfiles == 0) {
        cef_tool_usage();
        rc = CEF_EXIT_USAGE;
        goto done;
    }

    for (i = 0; i < nfiles; i++) {
        rs = cef_tool_load(argv[i]);

        if (rs == NULL || cef_tool_check_vars(argv[i], rs, vs, verify)) {
            rc = CEF_EXIT_PROBLEM;
        }

        cef_rules_free(rs);
    }

done:

    cef_tool_vars_free(vs);

    return rc;
}


void
cef_tool_print_plugins(const cef_rules_t *rs, const cef_decision_slot_t *ds,
    const char *sep)
{
    if (!cef_rules_plugged(rs)) {
        return;                 /* plain priority: nothing to add */
    }

    printf("%sstrategy %s", sep, ds->plugin);

    if (ds->variant) {
        printf(", variant %s", ds->variant);
    }

    if (ds->bucket != CEF_RULES_NONE) {
        printf(", bucket %u", ds->bucket);
    }

    if (ds->would_have != CEF_RULES_NONE) {
        printf(", would have shown '%s' (rule '%s')",
               cef_rules_offer(rs, ds->would_have)->name,
               cef_rules_rule(rs, ds->would_have_rule)->name);
    }

    if (ds->failed) {
        printf(", the strategy FAILED");
    }
}


/* take --plugin NAME=PATH out of argv, loading each */
static int
cef_tool_load_plugins(int *argc, char **argv)
{
    int    i, n = 0;
    char  *eq, err[512];

    for (i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--plugin") != 0) {
            argv[n++] = argv[i];
            continue;
        }

        if (i + 1 >= *argc || (eq = strchr(argv[i + 1], '=')) == NULL) {
            fprintf(stderr, "cef-rules: --plugin needs NAME=PATH\n");
            return CEF_EXIT_USAGE;
        }

        if (cef_tool_plugins == NULL) {
            cef_tool_plugins = cef_plugins_create();
            if (cef_tool_plugins == NULL) {
                fprintf(stderr, "cef-rules: out of memory\n");
                return CEF_EXIT_PROBLEM;
            }
        }

        *eq = '\0';

        if (cef_plugins_load(cef_tool_plugins, argv[i + 1], eq + 1, err,
                             sizeof(err))
            != 0)
        {
            fprintf(stderr, "cef-rules: --plugin: %s\n", err);
            return CEF_EXIT_PROBLEM;
        }

        i++;
    }

    *argc = n;
    argv[n] = NULL;

    return CEF_EXIT_OK;
}


static int
cef_tool_main(int argc, char **argv);


int
main(int argc, char **argv)
{
    int  rc;

    rc = cef_tool_load_plugins(&argc, argv);

    if (rc == CEF_EXIT_OK) {
        rc = cef_tool_main(argc, argv);
    }

    cef_plugins_free(cef_tool_plugins);

    return rc;
}


static int
cef_tool_main(int argc, char **argv)
{
    if (argc < 2) {
        cef_tool_usage();
        return CEF_EXIT_USAGE;
    }

    if (strcmp(argv[1], "--version") == 0) {
        printf("cef-rules %s\n", cef_version());
        return CEF_EXIT_OK;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cef_tool_usage();
        return CEF_EXIT_OK;
    }

    if (strcmp(argv[1], "check") == 0) {
        return cef_tool_check(argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "test") == 0) {
        return cef_tool_test(argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "explain") == 0) {
        return cef_tool_explain(argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "replay") == 0) {
        return cef_tool_replay(argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "publish") == 0 || strcmp(argv[1], "promote") == 0
        || strcmp(argv[1], "rollback") == 0)
    {
        return cef_tool_publish(argv[1], argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "history") == 0) {
        return cef_tool_history(argc - 2, argv + 2);
    }

    if (strcmp(argv[1], "shadow") == 0) {
        return cef_tool_shadow(argc - 2, argv + 2);
    }

    fprintf(stderr, "cef-rules: unknown command '%s'\n", argv[1]);
    cef_tool_usage();
    return CEF_EXIT_USAGE;
}
