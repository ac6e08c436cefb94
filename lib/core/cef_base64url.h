/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/core: the vocabulary every other folder speaks (values and
 * spans, base64url, experiment bucketing, text checks, the version).  It
 * includes nothing of ours; every folder, the glue and the tools may
 * include it.
 *
 * cef_base64url: RFC 4648 section 5 "base64url" without padding, as used in
 * signed keys, link tokens and visitor ids.
 */

#ifndef CEF_BASE64URL_H
#define CEF_BASE64URL_H

#include <stddef.h>
#include <stdint.h>


/* Characters needed to encode n bytes (no padding, no NUL). */
#define cef_base64url_encoded_len(n)  (((n) * 4 + 2) / 3)

/* Bytes needed to decode n characters (an upper bound). */
#define cef_base64url_decoded_max(n)  (((n) * 3) / 4 + 3)


/*
 * Encode.
 *
 * @param[in]  in    bytes
 * @param[in]  len   their count, at most 3 * 1024
 * @param[out] out   cef_base64url_encoded_len(len) characters; no NUL
 * @return the number of characters written.
 */
size_t cef_base64url_encode(const uint8_t *in, size_t len, char *out);

/*
 * Decode strictly: only the base64url alphabet, no padding, no white space,
 * and the unused low bits of the last character must be zero, so that every
 * byte string has exactly one accepted encoding.
 *
 * @param[in]  in      characters
 * @param[in]  len     their count, at most 4 * 1024
 * @param[out] out     at least cef_base64url_decoded_max(len) bytes
 * @param[out] outlen  bytes decoded
 * @return 0 on success, -1 if the input is not canonical base64url.
 */
int cef_base64url_decode(const char *in, size_t len, uint8_t *out,
    size_t *outlen);


#endif /* CEF_BASE64URL_H */
