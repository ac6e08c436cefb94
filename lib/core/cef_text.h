/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/core: the vocabulary every other folder speaks (values and
 * spans, base64url, experiment bucketing, text checks, the version).  It
 * includes nothing of ours; every folder, the glue and the tools may
 * include it.
 *
 * cef_text: judgements on bytes that come from outside (profile values
 * written by the CDP, keys and headers sent by the client) before they are
 * placed into HTML, JSON or a header line.  Plain C11, no nginx types.
 */

#ifndef CEF_TEXT_H
#define CEF_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


/*
 * The length of the valid UTF-8 sequence at p: 1 to 4, or 0 if p does not
 * start one (a stray continuation byte, an overlong form, a surrogate, a
 * code point above U+10FFFF, or a sequence cut short by n).
 *
 * @param[in]  p   the bytes; p[0] must exist (n >= 1)
 * @param[in]  n   bytes available at p
 */
size_t cef_text_utf8_len(const uint8_t *p, size_t n);

/*
 * Escape a value for a header line or a log: every C0 control byte
 * (0x00-0x1F, CR, LF and NUL among them), DEL (0x7F) and the backslash
 * are written as "\xHH" (upper-case hex), so the result never breaks a
 * header line and the original can be recovered.  Every other byte,
 * including UTF-8 sequences, is copied.
 *
 * @param[in]  src   the value
 * @param[in]  len   its length (src may be NULL when len is 0)
 * @param[out] buf   receives at most size bytes (not NUL-terminated); may
 *                   be NULL when size is 0
 * @return the full escaped length; it equals len exactly when nothing
 *         needed escaping, and when it is larger than size the output was
 *         truncated (retry with a buffer of that length).
 */
size_t cef_text_escape_ctl(const char *src, size_t len, char *buf,
    size_t size);

/*
 * Append n bytes of s at offset at of buf (size bytes), copying what fits,
 * and return at + n: the length the whole output would have.  A writer
 * that calls it for every piece returns its full length whatever size was,
 * so callers can size a buffer with a first call (the contract of
 * cef_text_escape_ctl() and the template renderer).  Inline: it runs for
 * every piece of every rendered offer.
 */
static inline size_t
cef_text_put(char *buf, size_t size, size_t at, const char *s, size_t n)
{
    if (n && at < size) {
        memcpy(buf + at, s, n <= size - at ? n : size - at);
    }

    return at + n;
}


#endif /* CEF_TEXT_H */
