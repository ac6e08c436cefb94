/*
 * Copyright (C) ngx_cef_module developers
 */

#include <stdio.h>
#include <string.h>

#include "cef_version.h"


int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("cef-sync %s\n", cef_version());
        return 0;
    }

    fprintf(stderr, "cef-sync: not implemented yet\n");
    return 2;
}
