/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * cef_report_read: the lines of one log file, `-` (standard input) or a
 * gzip'd file (zlib reads plain and gzip'd input alike, so a rotated
 * `access.log.2.gz` needs no flag).  Lines are returned in place, without
 * their newline; a last line without one is returned too.
 */

#ifndef CEF_REPORT_READ_H
#define CEF_REPORT_READ_H

#include <stddef.h>
#include <stdint.h>


/* the longest line read; longer ones are skipped as malformed */
#define CEF_REPORT_LINE_MAX  (16 * 1024 * 1024)


/* the error of an overlong line (compare pointers) */
extern const char  cef_report_read_too_long[];


typedef struct cef_report_reader_s  cef_report_reader_t;


/* NULL and *err (a static string or errno's) when it cannot be opened */
cef_report_reader_t *cef_report_read_open(const char *path,
    const char **err);

/*
 * The next line: 1 (and *line, *len, valid until the next call), 0 at the
 * end, -1 when the line cannot be read: *err says why (a line longer than
 * CEF_REPORT_LINE_MAX, skipped: reading can go on; a read or gzip error,
 * e.g. a truncated .gz: the file ends there).
 */
int cef_report_read_line(cef_report_reader_t *r, const char **line,
    size_t *len, const char **err);

/* the number of the line last returned (1 for the first) */
uint64_t cef_report_read_lineno(const cef_report_reader_t *r);

/* the bytes of the file read so far (compressed bytes for .gz) and the
   file's size (0 when unknown: a pipe) */
uint64_t cef_report_read_offset(cef_report_reader_t *r);
uint64_t cef_report_read_size(const cef_report_reader_t *r);

void cef_report_read_close(cef_report_reader_t *r);


#endif /* CEF_REPORT_READ_H */
