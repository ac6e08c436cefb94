/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The lines of one log file (cef_report_read.h): zlib's gz* functions read
 * plain and gzip'd input alike, in large blocks split at newlines here.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "cef_report_read.h"


#define CHUNK  (1024 * 1024)


const char  cef_report_read_too_long[] = "line longer than 16 MiB: skipped";


struct cef_report_reader_s {
    gzFile      gz;
    char       *buf;
    size_t      cap;
    size_t      pos, end;        /* unread bytes: buf[pos, end) */
    uint64_t    lineno;
    uint64_t    size;
    int         eof;
    int         skipping;        /* the rest of an overlong line */
    char        err[160];
};


cef_report_reader_t *
cef_report_read_open(const char *path, const char **err)
{
    cef_report_reader_t  *r;
    struct stat           st;
    int                   fd;

    if (strcmp(path, "-") == 0) {
        fd = dup(STDIN_FILENO);
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        *err = strerror(errno);
        return NULL;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        *err = "is a directory";
        return NULL;
    }

    r = calloc(1, sizeof(cef_report_reader_t));
    if (r == NULL || (r->buf = malloc(CHUNK)) == NULL) {
        free(r);
        close(fd);
        *err = "out of memory";
        return NULL;
    }
    r->cap = CHUNK;
    r->size = S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;

    r->gz = gzdopen(fd, "rb");
    if (r->gz == NULL) {
        close(fd);
        free(r->buf);
        free(r);
        *err = "out of memory";
        return NULL;
    }
    gzbuffer(r->gz, 256 * 1024);
    return r;
}


/* more bytes into buf[end, cap): 1, 0 at the end, -1 (err) */
static int
fill(cef_report_reader_t *r, const char **err)
{
    int  n, errnum;

    if (r->eof) {
        return 0;
    }
    n = gzread(r->gz, r->buf + r->end, (unsigned) (r->cap - r->end));
    if (n > 0) {
        r->end += (size_t) n;
        return 1;
    }
    r->eof = 1;
    *err = gzerror(r->gz, &errnum);
    if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        if (strncmp(*err, "<fd:", 4) == 0 && strstr(*err, ": ") != NULL) {
            *err = strstr(*err, ": ") + 2;      /* zlib names the fd */
        }
        snprintf(r->err, sizeof(r->err), "read error: %s",
                 errnum == Z_ERRNO ? strerror(errno) : *err);
        *err = r->err;
        return -1;
    }
    return 0;
}


int
cef_report_read_line(cef_report_reader_t *r, const char **line, size_t *len,
    const char **err)
{
    char    *nl, *b;
    size_t   scanned = 0;
    int      rc;

    for ( ;; ) {
        nl = memchr(r->buf + r->pos + scanned, '\n',
                    r->end - r->pos - scanned);
        if (nl != NULL) {
            r->lineno++;
            *line = r->buf + r->pos;
            *len = (size_t) (nl - *line);
            r->pos = (size_t) (nl - r->buf) + 1;
            if (r->skipping) {
                r->skipping = 0;
                *err = cef_report_read_too_long;
                return -1;
            }
            return 1;
        }
        scanned = r->end - r->pos;

        /* no newline in buf[pos, end): make room and read more */
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->end - r->pos);
            r->end -= r->pos;
            r->pos = 0;
        }
        if (r->end == r->cap) {
            if (r->cap >= CEF_REPORT_LINE_MAX) {
                r->skipping = 1;       /* drop what we have, keep on */
                r->end = 0;
                scanned = 0;
            } else {
                b = realloc(r->buf, r->cap * 2);
                if (b == NULL) {
                    *err = "out of memory";
                    return -1;
                }
                r->buf = b;
                r->cap *= 2;
            }
        }

        rc = fill(r, err);
        if (rc > 0) {
            continue;
        }
        if (r->end > r->pos || r->skipping) {
            /* the last line, without a newline */
            r->lineno++;
            *line = r->buf + r->pos;
            *len = r->end - r->pos;
            r->pos = r->end;
            if (r->skipping) {
                r->skipping = 0;
                *err = cef_report_read_too_long;
                return -1;
            }
            if (rc < 0) {
                /* hand out the line; the error comes with the next call */
                r->eof = 0;
                r->end = r->pos = 0;
                return 1;
            }
            return 1;
        }
        return rc;
    }
}


uint64_t
cef_report_read_lineno(const cef_report_reader_t *r)
{
    return r->lineno;
}


uint64_t
cef_report_read_offset(cef_report_reader_t *r)
{
    z_off_t  off = gzoffset(r->gz);

    return off > 0 ? (uint64_t) off : 0;
}


uint64_t
cef_report_read_size(const cef_report_reader_t *r)
{
    return r->size;
}


void
cef_report_read_close(cef_report_reader_t *r)
{
    if (r != NULL) {
        gzclose(r->gz);
        free(r->buf);
        free(r);
    }
}
