/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report [options] LOG...: read impression and goal logs, report every
 * experiment (docs/report.md "Reading logs").  main() in
 * cef_report_main.c hands every command line that is not a subcommand
 * here.
 *
 * Exit status: 0 a report was written, 1 the input could not be read (or
 * held no exposure), 2 usage.
 */

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cef_report.h"
#include "cef_report_logs.h"


static const char  usage_text[] =
"usage: cef-report [--json | --counts] [--html FILE] [--window D]\n"
"                  [--alpha A] [--sequential [--tau N]]\n"
"                  [--experiment NAME] [--goal G] [--strict] [--jobs N]\n"
"                  LOG...\n"
"       cef-report stats [options] FILE|-\n"
"       cef-report bandit --experiment NAME [options] (--stats FILE | LOG...)\n"
"       cef-report --help | --version\n"
"\n"
"Reads impression logs (cef_impressions) and goal logs (cef_goals): files,\n"
"- for standard input, .gz files; many edges' logs at once.  Per\n"
"experiment x goal x arm: exposed visitors (first exposure), converting\n"
"visitors, value per visitor, lift against the control, SRM.\n"
"\n"
"  --json              one JSON object per test and line\n"
"  --counts            the counts only (sufficient statistics and time\n"
"                      series per test, JSON lines), no statistics\n"
"  --html FILE         also write a self-contained HTML page\n"
"  --window D          count a conversion only within D of the first\n"
"                      exposure (7d, 24h, 90m, 3600s; default: to the end\n"
"                      of the data)\n"
"  --alpha A           significance level (default 0.05)\n"
"  --sequential        always-valid confidence sequences\n"
"  --tau N             their tuning parameter (default 5000)\n"
"  --experiment NAME   only experiments of this name\n"
"  --goal G            only this goal\n"
"  --strict            a malformed line is fatal (exit 1)\n"
"  --jobs N            files read in parallel (default: one per core)\n"
"\n"
"Exit status: 0 report written, 1 input unreadable or without exposures,\n"
"2 usage.  docs/report.md has the details.\n"
"\n";


void
cef_report_logs_cli_usage(FILE *f)
{
    fputs(usage_text, f);
}


static int
usage_error(const char *fmt, const char *arg)
{
    fputs("cef-report: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(cef-report --help for the usage)\n", stderr);
    return CEF_REPORT_EXIT_USAGE;
}


static int
parse_double(const char *s, double *d)
{
    char  *end;

    *d = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*d) ? 0 : -1;
}


/* a file named twice (or through a link) would count its goals twice */
static int
same_files(char **paths, int n)
{
    struct stat  *st;
    int           i, k, rc = 0;

    st = calloc((size_t) n + 1, sizeof(struct stat));
    if (st == NULL) {
        return 0;
    }
    for (i = 0; i < n && rc == 0; i++) {
        if (strcmp(paths[i], "-") == 0 || stat(paths[i], &st[i]) != 0) {
            st[i].st_ino = 0;
            continue;
        }
        for (k = 0; k < i; k++) {
            if (st[k].st_ino != 0 && st[k].st_dev == st[i].st_dev
                && st[k].st_ino == st[i].st_ino)
            {
                fprintf(stderr, "cef-report: %s and %s are the same file "
                        "(its lines would count twice)\n", paths[k],
                        paths[i]);
                rc = 1;
                break;
            }
        }
    }
    free(st);
    return rc;
}


/* the tests through the statistics to the outputs chosen */
static int
write_report(cef_report_test_t *tests, size_t n,
    const cef_report_opts_t *opts, int json, const char *html)
{
    cef_report_out_t   *outs;
    size_t              i, k;
    FILE               *f;
    int                 rc = CEF_REPORT_EXIT_OK;

    outs = calloc(n + 1, sizeof(cef_report_out_t));
    if (outs == NULL) {
        fputs("cef-report: out of memory\n", stderr);
        return CEF_REPORT_EXIT_PROBLEM;
    }
    for (i = 0; i < n; i++) {
        outs[i].test = &tests[i];
        outs[i].res = calloc(tests[i].narms + 1, sizeof(cef_report_result_t));
        outs[i].srm_p = NAN;
        outs[i].period_srm_p = calloc(tests[i].periods.nperiods + 1,
                                      sizeof(double));
        if (outs[i].res == NULL || outs[i].period_srm_p == NULL) {
            fputs("cef-report: out of memory\n", stderr);
            rc = CEF_REPORT_EXIT_PROBLEM;
            goto done;
        }
        if (cef_report_periods_analyse(&tests[i], opts, outs[i].res,
                                       &outs[i].srm_p, outs[i].period_srm_p)
            != 0)
        {
            for (k = 0; k < tests[i].narms; k++) {
                outs[i].res[k].valid = 0;
                if (outs[i].res[k].note == NULL) {
                    outs[i].res[k].note = "fewer than two arms";
                }
            }
        }
    }

    if ((json ? cef_report_json_write(stdout, outs, n, opts)
              : cef_report_table_write(stdout, outs, n, opts)) != 0
        || fflush(stdout) != 0)
    {
        fputs("cef-report: cannot write the report\n", stderr);
        rc = CEF_REPORT_EXIT_PROBLEM;
        goto done;
    }

    if (html != NULL) {
        f = fopen(html, "w");
        if (f == NULL || cef_report_html_write(f, outs, n, opts) != 0
            || fclose(f) != 0)
        {
            fprintf(stderr, "cef-report: %s: cannot write the page\n", html);
            rc = CEF_REPORT_EXIT_PROBLEM;
        }
    }

done:
    for (i = 0; i < n; i++) {
        free(outs[i].res);
        free(outs[i].period_srm_p);
    }
    free(outs);
    return rc;
}


/* cef-report [options] LOG...: argv[0] is the program */
int
cef_report_logs_cli(int argc, char **argv)
{
    static const struct option  longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"counts", no_argument, NULL, 'c'},
        {"html", required_argument, NULL, 'H'},
        {"window", required_argument, NULL, 'w'},
        {"alpha", required_argument, NULL, 'a'},
        {"sequential", no_argument, NULL, 's'},
        {"tau", required_argument, NULL, 't'},
        {"experiment", required_argument, NULL, 'e'},
        {"goal", required_argument, NULL, 'g'},
        {"strict", no_argument, NULL, 'S'},
        {"jobs", required_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    cef_report_logs_opts_t      lo;
    cef_report_logs_summary_t   sum;
    cef_report_opts_t           opts = {0.05, 0, 5000};
    cef_report_test_t          *tests;
    size_t                      ntests;
    const char                 *html = NULL;
    int                         c, json = 0, counts = 0, tau = 0, i, k;
    int                         rc;
    double                      d;

    memset(&lo, 0, sizeof(lo));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'c': counts = 1; break;
        case 'H': html = optarg; break;
        case 'w':
            if (cef_report_logs_window(optarg, &lo.window) != 0) {
                return usage_error("--window must be a duration such as "
                                   "7d, 24h, 90m or 3600s, not '%s'", optarg);
            }
            break;
        case 'a':
            if (parse_double(optarg, &opts.alpha) != 0 || opts.alpha <= 0
                || opts.alpha >= 1)
            {
                return usage_error("--alpha must be a number between 0 and "
                                   "1, not '%s'", optarg);
            }
            break;
        case 's': opts.sequential = 1; break;
        case 't':
            if (parse_double(optarg, &opts.tau) != 0 || opts.tau <= 0) {
                return usage_error("--tau must be a positive number, not "
                                   "'%s'", optarg);
            }
            tau = 1;
            break;
        case 'e': lo.experiment = optarg; break;
        case 'g': lo.goal = optarg; break;
        case 'S': lo.strict = 1; break;
        case 'J':
            if (parse_double(optarg, &d) != 0 || d < 1 || d > 64
                || d != floor(d))
            {
                return usage_error("--jobs must be 1 to 64, not '%s'",
                                   optarg);
            }
            lo.jobs = (int) d;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CEF_REPORT_EXIT_OK;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }

    if (tau && !opts.sequential) {
        return usage_error("--tau%s goes with --sequential", "");
    }
    if (json && counts) {
        return usage_error("--json and --counts%s: choose one", "");
    }
    if (optind >= argc) {
        return usage_error("no log to read%s", "");
    }
    for (i = optind, k = 0; i < argc; i++) {
        k += strcmp(argv[i], "-") == 0;
    }
    if (k > 1) {
        return usage_error("standard input (%s) given twice", "-");
    }
    if (same_files(argv + optind, argc - optind)) {
        return CEF_REPORT_EXIT_USAGE;
    }

    lo.progress = isatty(STDERR_FILENO);
    if (cef_report_logs_read(&lo, argv + optind, (size_t) (argc - optind),
                             &tests, &ntests, &sum) != 0)
    {
        return CEF_REPORT_EXIT_PROBLEM;
    }
    if (ntests == 0) {
        fprintf(stderr, "cef-report: no exposure%s%s in %llu lines (%llu "
                "impression records, %llu goal records)\n",
                lo.experiment ? " to experiment " : "",
                lo.experiment ? lo.experiment : "",
                (unsigned long long) sum.lines,
                (unsigned long long) sum.impressions,
                (unsigned long long) sum.goals);
        cef_report_logs_free(tests, ntests);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    if (counts) {
        rc = cef_report_logs_counts_write(stdout, tests, ntests) == 0
             && fflush(stdout) == 0 ? CEF_REPORT_EXIT_OK
                                    : CEF_REPORT_EXIT_PROBLEM;
    } else {
        rc = write_report(tests, ntests, &opts, json, html);
    }
    cef_report_logs_free(tests, ntests);
    return rc;
}

