/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report: experiment results (docs/report.md).
 *
 *   cef-report [options] LOG...     read the logs, report every experiment
 *                                   (cef_report_logs_cli.c)
 *   cef-report stats [--json] [--alpha A] [--sequential [--tau N]] FILE|-
 *   cef-report bandit --experiment NAME ... (--stats FILE | LOG...)
 *   cef-report --help | --version
 *
 * Exit codes: 0 results printed (a sample ratio mismatch is a result), 1
 * the input could not be read or analysed, 2 usage.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cef_report.h"
#include "cef_report_bandit.h"
#include "cef_version.h"


/* what every command takes besides its operands */
typedef struct {
    cef_report_opts_t  opts;
    int                json;
    int                tau_given;
} cef_report_cli_t;


enum {
    CEF_REPORT_OPT_JSON = 256,
    CEF_REPORT_OPT_ALPHA,
    CEF_REPORT_OPT_SEQUENTIAL,
    CEF_REPORT_OPT_TAU,
    CEF_REPORT_OPT_HELP
};


static const struct option  cef_report_main_options[] = {
    { "json",       no_argument,       NULL, CEF_REPORT_OPT_JSON },
    { "alpha",      required_argument, NULL, CEF_REPORT_OPT_ALPHA },
    { "sequential", no_argument,       NULL, CEF_REPORT_OPT_SEQUENTIAL },
    { "tau",        required_argument, NULL, CEF_REPORT_OPT_TAU },
    { "help",       no_argument,       NULL, CEF_REPORT_OPT_HELP },
    { NULL, 0, NULL, 0 }
};


static int cef_report_main_stats(int argc, char **argv);
static int cef_report_main_option(int c, const char *arg,
    cef_report_cli_t *cli);
static int cef_report_main_output(const cef_report_cli_t *cli,
    const cef_report_out_t *outs, size_t n);
static void cef_report_main_usage(FILE *f);
static void cef_report_main_stats_usage(FILE *f);


int
main(int argc, char **argv)
{
    if (argc < 2) {
        cef_report_main_usage(stderr);
        return CEF_REPORT_EXIT_USAGE;
    }

    if (strcmp(argv[1], "--version") == 0) {
        printf("cef-report %s\n", CEF_VERSION);
        return CEF_REPORT_EXIT_OK;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cef_report_main_usage(stdout);
        return CEF_REPORT_EXIT_OK;
    }

    if (strcmp(argv[1], "stats") == 0) {
        return cef_report_main_stats(argc - 1, argv + 1);
    }

    if (strcmp(argv[1], "bandit") == 0) {
        return cef_report_bandit_cli(argc - 1, argv + 1);
    }

    return cef_report_logs_cli(argc, argv);
}


/* cef-report stats [options] FILE|-: argv[0] is "stats" */
static int
cef_report_main_stats(int argc, char **argv)
{
    int                  c, rc;
    FILE                *f;
    double               srm_p;
    const char          *path, *name;
    struct stat          sb;
    cef_report_cli_t     cli;
    cef_report_out_t     out;
    cef_report_test_t    t;
    cef_report_result_t *res;
    char                 err[1024];

    memset(&cli, 0, sizeof(cli));
    cli.opts.alpha = 0.05;
    cli.opts.tau = 5000;

    opterr = 0;
    optind = 1;

    while ((c = getopt_long(argc, argv, ":h", cef_report_main_options, NULL))
           != -1)
    {
        if (c == 'h' || c == CEF_REPORT_OPT_HELP) {
            cef_report_main_stats_usage(stdout);
            return CEF_REPORT_EXIT_OK;
        }

        if (c == '?' || c == ':') {
            fprintf(stderr, "cef-report: %s '%s'\n",
                    c == '?' ? "unknown option" : "no value for",
                    argv[optind - 1]);
            cef_report_main_stats_usage(stderr);
            return CEF_REPORT_EXIT_USAGE;
        }

        if (cef_report_main_option(c, optarg, &cli) != 0) {
            return CEF_REPORT_EXIT_USAGE;
        }
    }

    if (cli.tau_given && !cli.opts.sequential) {
        fprintf(stderr, "cef-report: --tau applies only with --sequential\n");
        return CEF_REPORT_EXIT_USAGE;
    }

    if (optind != argc - 1) {
        fprintf(stderr, "cef-report: stats reads one FILE (or - for standard "
                "input)\n");
        cef_report_main_stats_usage(stderr);
        return CEF_REPORT_EXIT_USAGE;
    }

    path = argv[optind];

    if (strcmp(path, "-") == 0) {
        f = stdin;
        name = "<stdin>";

    } else {
        f = fopen(path, "rb");
        name = path;

        if (f == NULL) {
            fprintf(stderr, "cef-report: %s: cannot open: %s\n", path,
                    strerror(errno));
            return CEF_REPORT_EXIT_PROBLEM;
        }

        if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "cef-report: %s: is a directory\n", path);
            fclose(f);
            return CEF_REPORT_EXIT_PROBLEM;
        }
    }

    rc = cef_report_suff_read(f, name, &t, stderr, err, sizeof(err));

    if (f != stdin) {
        fclose(f);
    }

    if (rc != 0) {
        fprintf(stderr, "cef-report: %s\n", err);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    res = calloc(t.narms, sizeof(cef_report_result_t));
    if (res == NULL) {
        fprintf(stderr, "cef-report: out of memory\n");
        cef_report_suff_free(&t);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    rc = CEF_REPORT_EXIT_OK;

    if (cef_report_stats_analyse(&t, &cli.opts, res, &srm_p) != 0) {
        fprintf(stderr, "cef-report: %s: cannot be analysed (it needs a "
                "control and at least one other arm)\n", name);
        rc = CEF_REPORT_EXIT_PROBLEM;

    } else {
        out.test = &t;
        out.res = res;
        out.srm_p = srm_p;
        out.period_srm_p = NULL;
        rc = cef_report_main_output(&cli, &out, 1);
    }

    free(res);
    cef_report_suff_free(&t);

    return rc;
}


/* one of the options every command shares; 0, or -1 after a message */
static int
cef_report_main_option(int c, const char *arg, cef_report_cli_t *cli)
{
    char    *end;
    double   v;

    switch (c) {

    case CEF_REPORT_OPT_JSON:
        cli->json = 1;
        return 0;

    case CEF_REPORT_OPT_SEQUENTIAL:
        cli->opts.sequential = 1;
        return 0;

    case CEF_REPORT_OPT_ALPHA:
    case CEF_REPORT_OPT_TAU:
        errno = 0;
        v = strtod(arg, &end);

        if (end == arg || *end != '\0' || errno != 0 || !isfinite(v)) {
            fprintf(stderr, "cef-report: --%s: \"%s\" is not a number\n",
                    c == CEF_REPORT_OPT_ALPHA ? "alpha" : "tau", arg);
            return -1;
        }

        if (c == CEF_REPORT_OPT_ALPHA) {
            if (!(v > 0 && v < 1)) {
                fprintf(stderr, "cef-report: --alpha: %s is not between 0 "
                        "and 1 (0.05 gives 95%% intervals)\n", arg);
                return -1;
            }

            cli->opts.alpha = v;
            return 0;
        }

        if (!(v > 0)) {
            fprintf(stderr, "cef-report: --tau: %s is not a positive number "
                    "of visitors\n", arg);
            return -1;
        }

        cli->opts.tau = v;
        cli->tau_given = 1;
        return 0;

    default:
        return -1;
    }
}


static int
cef_report_main_output(const cef_report_cli_t *cli,
    const cef_report_out_t *outs, size_t n)
{
    int  rc;

    if (cli->json) {
        rc = cef_report_json_write(stdout, outs, n, &cli->opts);
    } else {
        rc = cef_report_table_write(stdout, outs, n, &cli->opts);
    }

    if (rc != 0 || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cef-report: cannot write the results: %s\n",
                strerror(errno));
        return CEF_REPORT_EXIT_PROBLEM;
    }

    return CEF_REPORT_EXIT_OK;
}


static void
cef_report_main_usage(FILE *f)
{
    cef_report_logs_cli_usage(f);
    fprintf(f,
        "cef-report stats [options] FILE|-: results from per-arm sufficient "
        "statistics\n"
        "(JSON, - for stdin); options --json, --alpha, --sequential, --tau "
        "as above.\n"
        "cef-report bandit: new weights for a bandit slot (cef-report bandit "
        "--help).\n");
}


/* cef-report stats --help, and its usage errors */
static void
cef_report_main_stats_usage(FILE *f)
{
    fprintf(f,
        "usage: cef-report stats [--json] [--alpha A] [--sequential "
        "[--tau N]] FILE|-\n"
        "       cef-report bandit --experiment NAME [options] "
        "(--stats FILE | LOG...)\n"
        "       cef-report --help | --version\n"
        "\n"
        "  stats FILE    results from per-arm sufficient statistics (JSON, "
        "- for stdin)\n"
        "  --json        one JSON object per test and line instead of a "
        "table\n"
        "  --alpha A     1 - A intervals and the p-value threshold "
        "(default 0.05)\n"
        "  --sequential  always-valid confidence sequences (peeking "
        "allowed)\n"
        "  --tau N       visitors at which the sequence is tightest "
        "(default 5000)\n"
        "  bandit        new weights for a bandit slot (cef-report bandit "
        "--help)\n"
        "\n"
        "exit: 0 results printed, 1 bad input, 2 usage; see "
        "docs/report.md\n");
}
