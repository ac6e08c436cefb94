/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/identity: who a visitor is (the store's keyed hash of an
 * identity, signed values, visitor ids, cookies).  It includes only
 * lib/core; lib/store, lib/decision, lib/writer, the glue and the tools
 * include it.
 *
 * cef_cookie: reading one cookie from a Cookie header, byte for byte as
 * nginx 1.22 reads $cookie_NAME.
 */

#ifndef CEF_COOKIE_H
#define CEF_COOKIE_H

#include <stddef.h>

#include "cef_value.h"


/*
 * Find the cookie called name in one Cookie header value, exactly as
 * nginx 1.22's ngx_http_parse_multi_header_lines() does for one header
 * line (so the module reads a cookie as $cookie_NAME does on that nginx):
 * the name is matched case-insensitively at the start of the value or
 * after a ';' or ',' and any spaces, then optional spaces, '=', optional
 * spaces; the value runs to the next ';' or the end.  A match of the name
 * that is not followed by '=' (the name is a prefix of another cookie's)
 * is skipped together with the byte after it, as nginx does.
 *
 * @param[in]  hdr, len    the header value
 * @param[in]  name, nlen  the cookie name
 * @param[out] value       on 1, the value (points into hdr; may be empty)
 * @return 1 if found, else 0.
 */
int cef_cookie_find(const char *hdr, size_t len, const char *name,
    size_t nlen, cef_span_t *value);


#endif /* CEF_COOKIE_H */
