/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The command line of `cef-report bandit` (docs/report.md):
 *
 *   cef-report bandit --experiment NAME [--goal G] [--metric conversion|value]
 *       [--salt S] [--seed N] [--floor P] [--draws N] [--top-two|--thompson]
 *       [--previous RECORD] [--now T] [--verbose] (--stats FILE | LOG...)
 *
 * stdout: one weights record (docs/formats.md); stderr: what a person
 * must know (an SRM alarm, why the weights did not move) and, with
 * --verbose, the arms' figures.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cef_report_bandit.h"


typedef struct {
    cef_report_bandit_opts_t  opts;
    const char               *experiment;
    const char               *goal;
    const char               *salt;
    const char               *stats;
    const char               *previous;
    char *const              *logs;
    size_t                    nlogs;
    int                       metric;       /* -1: as the input says */
    int                       seed_given;
    int                       verbose;
    int64_t                   now;          /* -1: the clock */
} cef_report_bandit_cli_t;


enum {
    CEF_REPORT_BANDIT_OPT_EXPERIMENT = 256,
    CEF_REPORT_BANDIT_OPT_GOAL,
    CEF_REPORT_BANDIT_OPT_METRIC,
    CEF_REPORT_BANDIT_OPT_SALT,
    CEF_REPORT_BANDIT_OPT_SEED,
    CEF_REPORT_BANDIT_OPT_FLOOR,
    CEF_REPORT_BANDIT_OPT_DRAWS,
    CEF_REPORT_BANDIT_OPT_TOP_TWO,
    CEF_REPORT_BANDIT_OPT_THOMPSON,
    CEF_REPORT_BANDIT_OPT_STATS,
    CEF_REPORT_BANDIT_OPT_PREVIOUS,
    CEF_REPORT_BANDIT_OPT_NOW,
    CEF_REPORT_BANDIT_OPT_VERBOSE,
    CEF_REPORT_BANDIT_OPT_HELP
};


static const struct option  cef_report_bandit_cli_options[] = {
    { "experiment", required_argument, NULL,
      CEF_REPORT_BANDIT_OPT_EXPERIMENT },
    { "goal",       required_argument, NULL, CEF_REPORT_BANDIT_OPT_GOAL },
    { "metric",     required_argument, NULL, CEF_REPORT_BANDIT_OPT_METRIC },
    { "salt",       required_argument, NULL, CEF_REPORT_BANDIT_OPT_SALT },
    { "seed",       required_argument, NULL, CEF_REPORT_BANDIT_OPT_SEED },
    { "floor",      required_argument, NULL, CEF_REPORT_BANDIT_OPT_FLOOR },
    { "draws",      required_argument, NULL, CEF_REPORT_BANDIT_OPT_DRAWS },
    { "top-two",    no_argument,       NULL, CEF_REPORT_BANDIT_OPT_TOP_TWO },
    { "thompson",   no_argument,       NULL, CEF_REPORT_BANDIT_OPT_THOMPSON },
    { "stats",      required_argument, NULL, CEF_REPORT_BANDIT_OPT_STATS },
    { "previous",   required_argument, NULL, CEF_REPORT_BANDIT_OPT_PREVIOUS },
    { "now",        required_argument, NULL, CEF_REPORT_BANDIT_OPT_NOW },
    { "verbose",    no_argument,       NULL, CEF_REPORT_BANDIT_OPT_VERBOSE },
    { "help",       no_argument,       NULL, CEF_REPORT_BANDIT_OPT_HELP },
    { NULL, 0, NULL, 0 }
};


static int cef_report_bandit_cli_option(int c, const char *arg,
    cef_report_bandit_cli_t *cli);
static int cef_report_bandit_cli_whole(const char *opt, const char *arg,
    double max, double *out);
static int cef_report_bandit_cli_input(const cef_report_bandit_cli_t *cli,
    cef_report_bandit_input_t *in, uint64_t *previous);
static int cef_report_bandit_cli_same(const char *what, const char *input,
    const char *given);
static void cef_report_bandit_cli_summary(FILE *f,
    const cef_report_bandit_cli_t *cli, const cef_report_bandit_input_t *in,
    const cef_report_bandit_result_t *res, int verbose);
static void cef_report_bandit_cli_usage(FILE *f);


/* argv[0] is "bandit" */
int
cef_report_bandit_cli(int argc, char **argv)
{
    int                          c, rc;
    uint32_t                     seed;
    uint64_t                     previous;
    cef_report_bandit_cli_t      cli;
    cef_report_bandit_input_t    in;
    cef_report_bandit_result_t   res;
    cef_report_bandit_record_t   rec;

    memset(&cli, 0, sizeof(cli));
    cli.opts.method = CEF_REPORT_BANDIT_TOP_TWO;
    cli.opts.draws = CEF_REPORT_BANDIT_DRAWS;
    cli.opts.floor = CEF_REPORT_BANDIT_FLOOR;
    cli.opts.min_exposures = CEF_REPORT_BANDIT_MIN_EXPOSURES;
    cli.metric = -1;
    cli.now = -1;

    opterr = 0;
    optind = 1;

    while ((c = getopt_long(argc, argv, ":hv", cef_report_bandit_cli_options,
                            NULL))
           != -1)
    {
        if (c == 'h' || c == CEF_REPORT_BANDIT_OPT_HELP) {
            cef_report_bandit_cli_usage(stdout);
            return CEF_REPORT_EXIT_OK;
        }

        if (c == '?' || c == ':') {
            fprintf(stderr, "cef-report bandit: %s '%s'\n",
                    c == '?' ? "unknown option" : "no value for",
                    argv[optind - 1]);
            cef_report_bandit_cli_usage(stderr);
            return CEF_REPORT_EXIT_USAGE;
        }

        if (c == 'v') {
            c = CEF_REPORT_BANDIT_OPT_VERBOSE;
        }

        if (cef_report_bandit_cli_option(c, optarg, &cli) != 0) {
            return CEF_REPORT_EXIT_USAGE;
        }
    }

    if (cli.experiment == NULL) {
        fprintf(stderr, "cef-report bandit: --experiment NAME is required\n");
        return CEF_REPORT_EXIT_USAGE;
    }

    if (cli.stats == NULL && optind == argc) {
        fprintf(stderr, "cef-report bandit: give the logs to read, or "
                "--stats FILE (- for standard input)\n");
        return CEF_REPORT_EXIT_USAGE;
    }

    if (cli.stats != NULL && optind != argc) {
        fprintf(stderr, "cef-report bandit: --stats FILE and log files "
                "exclude each other\n");
        return CEF_REPORT_EXIT_USAGE;
    }

    cli.logs = argv + optind;
    cli.nlogs = (size_t) (argc - optind);

    rc = cef_report_bandit_cli_input(&cli, &in, &previous);
    if (rc != CEF_REPORT_EXIT_OK) {
        return rc;
    }

    if (cli.opts.floor * in.narms >= 1) {
        fprintf(stderr, "cef-report bandit: --floor %g with %zu arms leaves "
                "nothing to learn (it must be below 1/%zu)\n",
                cli.opts.floor, in.narms, in.narms);
        cef_report_bandit_input_free(&in);
        return CEF_REPORT_EXIT_USAGE;
    }

    if (!cli.seed_given) {
        /* recorded in the record, so the run can be repeated */
        if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
            seed = (uint32_t) time(NULL) ^ (uint32_t) getpid();
        }

        cli.opts.seed = seed;
    }

    if (cef_report_bandit_compute(&in, &cli.opts, &res) != 0) {
        fprintf(stderr, "cef-report bandit: out of memory\n");
        cef_report_bandit_input_free(&in);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    rec.experiment = cli.experiment;
    rec.salt = in.salt != NULL ? in.salt
               : cli.salt != NULL ? cli.salt : cli.experiment;
    rec.goal = in.goal != NULL ? in.goal : cli.goal;
    rec.created_at = cli.now >= 0 ? cli.now : (int64_t) time(NULL);
    rec.version = cef_report_bandit_record_version(previous, rec.created_at);
    rec.in = &in;
    rec.res = &res;
    rec.opts = &cli.opts;

    cef_report_bandit_cli_summary(stderr, &cli, &in, &res, cli.verbose);

    rc = CEF_REPORT_EXIT_OK;

    if (cef_report_bandit_record_write(stdout, &rec) != 0
        || fflush(stdout) != 0 || ferror(stdout))
    {
        fprintf(stderr, "cef-report bandit: cannot write the weights record: "
                "%s\n", strerror(errno));
        rc = CEF_REPORT_EXIT_PROBLEM;
    }

    cef_report_bandit_result_free(&res);
    cef_report_bandit_input_free(&in);

    return rc;
}


static int
cef_report_bandit_cli_option(int c, const char *arg,
    cef_report_bandit_cli_t *cli)
{
    char    *end;
    double   v;
    size_t   len;

    switch (c) {

    case CEF_REPORT_BANDIT_OPT_EXPERIMENT:
    case CEF_REPORT_BANDIT_OPT_GOAL:
    case CEF_REPORT_BANDIT_OPT_SALT:
        if (arg[0] == '\0') {
            fprintf(stderr, "cef-report bandit: an empty name\n");
            return -1;
        }

        *(c == CEF_REPORT_BANDIT_OPT_EXPERIMENT ? &cli->experiment
          : c == CEF_REPORT_BANDIT_OPT_GOAL ? &cli->goal : &cli->salt) = arg;
        return 0;

    case CEF_REPORT_BANDIT_OPT_STATS:
        cli->stats = arg;
        return 0;

    case CEF_REPORT_BANDIT_OPT_PREVIOUS:
        cli->previous = arg;
        return 0;

    case CEF_REPORT_BANDIT_OPT_VERBOSE:
        cli->verbose = 1;
        return 0;

    case CEF_REPORT_BANDIT_OPT_TOP_TWO:
    case CEF_REPORT_BANDIT_OPT_THOMPSON:
        cli->opts.method = c == CEF_REPORT_BANDIT_OPT_TOP_TWO
                           ? CEF_REPORT_BANDIT_TOP_TWO
                           : CEF_REPORT_BANDIT_THOMPSON;
        return 0;

    case CEF_REPORT_BANDIT_OPT_METRIC:
        if (strcmp(arg, "conversion") == 0) {
            cli->metric = CEF_REPORT_BINOMIAL;
            return 0;
        }

        if (strcmp(arg, "value") == 0) {
            cli->metric = CEF_REPORT_MEAN;
            return 0;
        }

        fprintf(stderr, "cef-report bandit: --metric: \"%s\" is neither "
                "conversion nor value\n", arg);
        return -1;

    case CEF_REPORT_BANDIT_OPT_SEED:
        /* GSL's MT19937 takes 32 bits of its seed */
        if (cef_report_bandit_cli_whole("seed", arg, 4294967295.0, &v) != 0) {
            return -1;
        }

        cli->opts.seed = (unsigned long) v;
        cli->seed_given = 1;
        return 0;

    case CEF_REPORT_BANDIT_OPT_DRAWS:
        if (cef_report_bandit_cli_whole("draws", arg, 1e8, &v) != 0) {
            return -1;
        }

        if (v < 1) {
            fprintf(stderr, "cef-report bandit: --draws: at least 1\n");
            return -1;
        }

        cli->opts.draws = (size_t) v;
        return 0;

    case CEF_REPORT_BANDIT_OPT_NOW:
        if (cef_report_bandit_cli_whole("now", arg, 9007199254740992.0, &v)
            != 0)
        {
            return -1;
        }

        cli->now = (int64_t) v;
        return 0;

    case CEF_REPORT_BANDIT_OPT_FLOOR:
        errno = 0;
        v = strtod(arg, &end);
        len = strlen(arg);

        if (end != arg && len > 0 && arg[len - 1] == '%'
            && end == arg + len - 1)
        {
            v /= 100;           /* "1%" */

        } else if (end == arg || *end != '\0') {
            v = NAN;
        }

        if (errno != 0 || !(v >= 0 && v < 1)) {
            fprintf(stderr, "cef-report bandit: --floor: \"%s\" is not a "
                    "share between 0 and 1 (0.01 or 1%%)\n", arg);
            return -1;
        }

        cli->opts.floor = v;
        return 0;

    default:
        return -1;
    }
}


static int
cef_report_bandit_cli_whole(const char *opt, const char *arg, double max,
    double *out)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(arg, &end);

    if (end == arg || *end != '\0' || errno != 0 || !(v >= 0 && v <= max)
        || v != floor(v))
    {
        fprintf(stderr, "cef-report bandit: --%s: \"%s\" is not a whole "
                "number from 0 to %.0f\n", opt, arg, max);
        return -1;
    }

    *out = v;
    return 0;
}


/* read --stats and --previous into in and previous; an exit code */
static int
cef_report_bandit_cli_input(const cef_report_bandit_cli_t *cli,
    cef_report_bandit_input_t *in, uint64_t *previous)
{
    int          rc;
    FILE        *f;
    size_t       i, p;
    double      *w, *last, sum;
    uint64_t     v;
    const char  *name;
    struct stat  sb;
    char         err[1024];

    if (cli->stats == NULL) {
        /* the logs: a period per weights version (cef_report_bandit_logs) */
        rc = cef_report_bandit_logs(cli->experiment, cli->salt, cli->goal,
                                    cli->metric, cli->logs, cli->nlogs, in);
        if (rc != CEF_REPORT_EXIT_OK) {
            return rc;
        }

        if (in->narms < 2) {
            fprintf(stderr, "cef-report bandit: %s has %zu arm%s in the "
                    "logs: nothing to weigh\n", cli->experiment, in->narms,
                    in->narms == 1 ? "" : "s");
            cef_report_bandit_input_free(in);
            return CEF_REPORT_EXIT_PROBLEM;
        }

        goto read;
    }

    name = strcmp(cli->stats, "-") == 0 ? "<stdin>" : cli->stats;
    f = strcmp(cli->stats, "-") == 0 ? stdin : fopen(cli->stats, "rb");

    if (f == NULL) {
        fprintf(stderr, "cef-report bandit: %s: cannot open: %s\n", name,
                strerror(errno));
        return CEF_REPORT_EXIT_PROBLEM;
    }

    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "cef-report bandit: %s: is a directory\n", name);
        fclose(f);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    rc = cef_report_bandit_input_read(f, name, in, err, sizeof(err));

    if (f != stdin) {
        fclose(f);
    }

    if (rc != 0) {
        fprintf(stderr, "cef-report bandit: %s\n", err);
        return CEF_REPORT_EXIT_PROBLEM;
    }

read:

    if (cef_report_bandit_cli_same("experiment", in->experiment,
                                   cli->experiment) != 0
        || cef_report_bandit_cli_same("goal", in->goal, cli->goal) != 0
        || cef_report_bandit_cli_same("salt", in->salt, cli->salt) != 0
        || (cli->metric >= 0
            && cef_report_bandit_cli_same("metric",
                   in->metric == CEF_REPORT_BINOMIAL ? "conversion" : "value",
                   cli->metric == CEF_REPORT_BINOMIAL ? "conversion"
                                                      : "value")
               != 0))
    {
        cef_report_bandit_input_free(in);
        return CEF_REPORT_EXIT_PROBLEM;
    }

    *previous = 0;

    for (p = 0; p < in->nperiods; p++) {
        if (in->version[p] > *previous) {
            *previous = in->version[p];
        }
    }

    if (cli->previous == NULL) {
        return CEF_REPORT_EXIT_OK;
    }

    f = fopen(cli->previous, "rb");
    w = calloc(in->narms, sizeof(double));

    if (f == NULL || w == NULL) {
        fprintf(stderr, "cef-report bandit: %s: cannot open: %s\n",
                cli->previous, strerror(errno));
        goto failed;
    }

    rc = cef_report_bandit_record_read(f, cli->previous, cli->experiment, &v,
                                       in->names, in->narms, w, err,
                                       sizeof(err));
    fclose(f);
    f = NULL;

    if (rc != 0) {
        fprintf(stderr, "cef-report bandit: %s\n", err);
        goto failed;
    }

    if (v > *previous) {
        *previous = v;
    }

    /* the live weights: the input's last period's, else the record's */
    last = &in->weights[(in->nperiods - 1) * in->narms];
    sum = 0;

    for (i = 0; i < in->narms; i++) {
        sum += last[i];
    }

    for (i = 0; sum == 0 && i < in->narms; i++) {
        last[i] = w[i] > 0 ? w[i] : 0;
    }

    free(w);
    return CEF_REPORT_EXIT_OK;

failed:

    if (f != NULL) {
        fclose(f);
    }

    free(w);
    cef_report_bandit_input_free(in);
    return CEF_REPORT_EXIT_PROBLEM;
}


static int
cef_report_bandit_cli_same(const char *what, const char *input,
    const char *given)
{
    if (input == NULL || given == NULL || strcmp(input, given) == 0) {
        return 0;
    }

    fprintf(stderr, "cef-report bandit: the input's %s is \"%.64s\", the "
            "command line says \"%.64s\"\n", what, input, given);
    return -1;
}


static void
cef_report_bandit_cli_summary(FILE *f, const cef_report_bandit_cli_t *cli,
    const cef_report_bandit_input_t *in,
    const cef_report_bandit_result_t *res, int verbose)
{
    size_t  i;

    if (!isnan(res->srm_p) && res->srm_p < CEF_REPORT_SRM_ALPHA) {
        fprintf(f, "cef-report bandit: %s: SAMPLE RATIO MISMATCH (p = %.2g): "
                "the arms did not get the traffic their weights gave them; "
                "these weights come from suspect data\n",
                cli->experiment, res->srm_p);
    }

    if (!res->updated) {
        for (i = 0; i < in->narms; i++) {
            if (res->exposures[i] < cli->opts.min_exposures) {
                fprintf(f, "cef-report bandit: %s: arm \"%s\" has %.0f "
                        "exposures, fewer than %.0f: the live weights "
                        "stay\n", cli->experiment, in->names[i],
                        res->exposures[i], cli->opts.min_exposures);
            }
        }
    }

    if (!verbose) {
        return;
    }

    fprintf(f, "%s: %zu period%s, %s, %s, %zu draws, seed %lu, SRM p %s%.3g\n",
            cli->experiment, in->nperiods, in->nperiods == 1 ? "" : "s",
            in->metric == CEF_REPORT_BINOMIAL ? "conversion" : "value",
            cli->opts.method == CEF_REPORT_BANDIT_TOP_TWO
            ? "top-two" : "thompson", cli->opts.draws, cli->opts.seed,
            isnan(res->srm_p) ? "n/a " : "", isnan(res->srm_p) ? 0
                                                 : res->srm_p);
    fprintf(f, "  %-16s %10s %12s %12s %8s %8s\n", "arm", "exposures",
            "mean", "sd of mean", "P(best)", "weight");

    for (i = 0; i < in->narms; i++) {
        fprintf(f, "  %-16.16s %10.0f %12.6g %12.6g %7.2f%% %7.2f%%\n",
                in->names[i], res->exposures[i], res->mean[i],
                sqrt(res->variance[i]), 100 * res->best[i],
                res->bp[i] / 100.0);
    }
}


static void
cef_report_bandit_cli_usage(FILE *f)
{
    fprintf(f,
        "usage: cef-report bandit --experiment NAME [--goal G] "
        "[--metric conversion|value]\n"
        "           [--salt S] [--seed N] [--floor P] [--draws N] "
        "[--top-two|--thompson]\n"
        "           [--previous RECORD] [--now T] [--verbose] "
        "(--stats FILE | LOG...)\n"
        "\n"
        "  new arm weights for a bandit by Gaussian Thompson sampling "
        "(GrowthBook's bandits),\n"
        "  written as one weights record (JSON) on stdout\n"
        "\n"
        "  --stats FILE    per-period sufficient statistics (- for stdin)\n"
        "  --top-two       weight = P(best or second best) (default)\n"
        "  --thompson      weight = P(best)\n"
        "  --floor P       every arm keeps at least about P (default 1%%)\n"
        "  --draws N       posterior draws (default 10000)\n"
        "  --seed N        0 to 4294967295, for reproducible weights "
        "(default: random, recorded)\n"
        "  --previous REC  the last weights record published (its version, "
        "its weights)\n"
        "  --now T         created_at in unix seconds (default: the clock)\n"
        "  --verbose       the arms' figures on stderr\n"
        "\n"
        "exit: 0 record written, 1 bad input, 2 usage; see docs/report.md\n");
}
