/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_visitor: anonymous visitor ids — 128 random bits, base64url, always
 * CEF_VISITOR_ID_LEN characters — and reading a cookie from a Cookie
 * header.
 */

#ifndef CEF_VISITOR_H
#define CEF_VISITOR_H

#include <stddef.h>

#include "cef_value.h"


#define CEF_VISITOR_ID_LEN  22


/*
 * A new random visitor id from OpenSSL's CSPRNG.
 *
 * @param[out] out  CEF_VISITOR_ID_LEN characters, no NUL
 * @return 0, or -1 if the random generator failed.
 */
int cef_visitor_id_new(char out[CEF_VISITOR_ID_LEN]);

/*
 * 1 if p is a well-formed visitor id: exactly CEF_VISITOR_ID_LEN characters
 * of the base64url alphabet that decode canonically to 16 bytes; else 0.
 */
int cef_visitor_id_valid(const char *p, size_t len);

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


#endif /* CEF_VISITOR_H */
