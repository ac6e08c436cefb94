/*
 * Copyright (C) ngx_cef_module developers
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
