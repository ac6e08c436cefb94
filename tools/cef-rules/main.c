/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef-rules: check, test and explain rule files (docs/cef-rules.md).
 *
 *   cef-rules check FILE...
 *   cef-rules test FILE CASES.yaml
 *   cef-rules explain FILE (--attrs JSON | --case CASES.yaml NAME |
 *                           --store DIR --secret FILE --key TYPE:VALUE)
 *                     [--set PATH=VALUE]... [--now TIME]
 *
 * Exit codes: 0 fine, 1 problems found (or a case mismatch), 2 usage.
 */

#include <stdio.h>
#include <string.h>

#include "cef_rules_tool.h"
#include "cef_version.h"


void
cef_tool_usage(void)
{
    fprintf(stderr,
        "usage: cef-rules check FILE...\n"
        "       cef-rules test FILE CASES.yaml\n"
        "       cef-rules explain FILE INPUT [--set PATH=VALUE]... "
        "[--now TIME] [--utc-offset SECONDS]\n"
        "         INPUT: --attrs JSON | --attrs @FILE | --case CASES.yaml NAME"
        "\n"
        "              | --store DIR --secret FILE --key TYPE:VALUE\n"
        "       cef-rules --version\n");
}


/* Load a rule file, printing its problems; NULL if it has any. */
cef_rules_t *
cef_tool_load(const char *path)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    size_t               i;
    char                 line[1024];

    if (cef_rules_load_file(path, &rs, &errs) != 0) {
        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, line, sizeof(line));
            printf("%s\n", line);
        }
    }

    cef_rules_errors_free(&errs);
    return rs;
}


static int
cef_tool_check(int argc, char **argv)
{
    int           i, rc = CEF_EXIT_OK;
    cef_rules_t  *rs;

    if (argc < 1) {
        cef_tool_usage();
        return CEF_EXIT_USAGE;
    }

    for (i = 0; i < argc; i++) {
        rs = cef_tool_load(argv[i]);

        if (rs == NULL) {
            rc = CEF_EXIT_PROBLEM;
        }

        cef_rules_free(rs);
    }

    return rc;
}


int
main(int argc, char **argv)
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

    fprintf(stderr, "cef-rules: unknown command '%s'\n", argv[1]);
    cef_tool_usage();
    return CEF_EXIT_USAGE;
}
