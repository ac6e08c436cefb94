/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/core: the vocabulary every other folder speaks (values and
 * spans, base64url, experiment bucketing, text checks, the version).  It
 * includes nothing of ours; every folder, the glue and the tools may
 * include it.
 */

#ifndef CEF_VERSION_H
#define CEF_VERSION_H

#define CEF_VERSION_MAJOR  0
#define CEF_VERSION_MINOR  1
#define CEF_VERSION_PATCH  0
#define CEF_VERSION        "0.1.0"

/* The version libcef was built as, for tools' --version. */
const char *cef_version(void);

#endif /* CEF_VERSION_H */
