/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/identity: who a visitor is (the store's keyed hash of an
 * identity, signed values, visitor ids, cookies).  It includes only
 * lib/core; lib/store, lib/decision, lib/writer, the glue and the tools
 * include it.
 *
 * cef_visitor: anonymous visitor ids — 128 random bits, base64url, always
 * CEF_VISITOR_ID_LEN characters.
 */

#ifndef CEF_VISITOR_H
#define CEF_VISITOR_H

#include <stddef.h>


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

#endif /* CEF_VISITOR_H */
