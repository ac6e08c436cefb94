/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cef_input.h"


#define CEF_INPUT_CHUNK  65536
#define CEF_INPUT_QUEUE  1024
#define CEF_INPUT_WAKE   64      /* wake the other side in batches */

/* how deep msgpack-c reads containers (MSGPACK_EMBED_STACK_SIZE) */
#define CEF_INPUT_DEPTH_MAX  32
#define CEF_INPUT_TOO_DEEP   -2


/*
 * msgpack-c allocates an array's or a map's elements when it reads the
 * header, before they arrive: a corrupt header claiming 2^32 elements asks
 * for ~100 GB.  This guard walks the msgpack structure as bytes are read
 * (resumably, one byte at a time through headers) and rejects a container
 * claiming more elements than a record of CEF_INPUT_RECORD_MAX bytes can
 * hold, before msgpack-c sees it.  It only checks; msgpack-c parses.
 */

#define CEF_GUARD_DEPTH  CEF_INPUT_DEPTH_MAX

typedef struct {
    uint8_t    hdr[9];         /* a header being read */
    size_t     hlen;           /* bytes of it read */
    size_t     hneed;          /* bytes it has in all (0: not started) */
    uint64_t   skip;           /* payload bytes to pass over */
    uint32_t   stack[CEF_GUARD_DEPTH];  /* items left per open container */
    int        depth;
    uint64_t   records;        /* top-level objects started */
    uint64_t   start;          /* offset of the current top-level object */
    uint64_t   pos;            /* bytes fed */
    uint64_t   max_items;      /* 0: CEF_INPUT_RECORD_MAX */
} cef_guard_t;


/* A record parsed ahead by the reading thread; it owns its memory. */
typedef struct {
    msgpack_unpacked     u;
    char                *buf;         /* NDJSON: the bytes u points into */
    uint64_t             record;
    uint64_t             offset;
    uint64_t             consumed;
    void                *scratch;     /* the hook's results */
} cef_input_item_t;


struct cef_input_s {
    int                  fd;
    const uint8_t       *mem;
    size_t               mem_len;
    size_t               mem_pos;
    int64_t              size;
    cef_input_format_t   format;
    int                  eof;

    uint64_t             record;
    uint64_t             offset;      /* of the last record */
    uint64_t             next;        /* offset of the next record */
    uint64_t             fed;         /* bytes read from the source */

    /* msgpack */
    msgpack_unpacker     unp;
    int                  unp_init;
    msgpack_unpacked     result;

    cef_guard_t          guard;

    /* NDJSON: a line buffer; [lpos, llen) not yet consumed */
    char                *line;
    size_t               lcap, lpos, llen;
    uint64_t             lineno;
    msgpack_sbuffer      sbuf;

    /* read-ahead thread (cef_input_start_thread()) */
    int                  threaded;
    pthread_t            tid;
    pthread_mutex_t      mu;
    pthread_cond_t       not_empty;
    pthread_cond_t       not_full;
    cef_input_item_t    *q;
    size_t               qhead, qlen;
    int                  qdone, qrc, qstop;
    int                  cwait, pwait;    /* consumer, producer asleep */
    char                 qerr[1024];
    cef_input_item_t    *cur;          /* the record last returned */
    cef_input_item_t     none;

    cef_input_hook_pt    hook;
    void                *hook_data;
    size_t               scratch_size;
};


static int cef_input_next_sync(cef_input_t *in, const msgpack_object **obj,
    char *err, size_t errlen);


/* Header length for a first byte: 0 = invalid. */

static size_t
cef_guard_hlen(uint8_t c)
{
    if (c <= 0xbf || c >= 0xe0) {
        return 1;   /* fixint, fixmap, fixarray, fixstr, negative fixint */
    }

    switch (c) {
    case 0xc0: case 0xc2: case 0xc3:
        return 1;
    case 0xc4: case 0xd9:
        return 2;
    case 0xc5: case 0xda: case 0xdc: case 0xde:
        return 3;
    case 0xc6: case 0xdb: case 0xdd: case 0xdf:
        return 5;
    case 0xc7:
        return 3;
    case 0xc8:
        return 4;
    case 0xc9:
        return 6;
    case 0xca: case 0xcc: case 0xcd: case 0xce: case 0xcf:
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return 1;   /* their value bytes are passed over as payload */
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return 2;
    case 0xcb:
        return 1;
    default:
        return 0;   /* 0xc1 */
    }
}


static uint64_t
cef_guard_be(const uint8_t *p, size_t n)
{
    uint64_t  v = 0;

    while (n--) {
        v = (v << 8) | *p++;
    }

    return v;
}


/* An item is complete: count it against the open containers. */

static void
cef_guard_done(cef_guard_t *g)
{
    while (g->depth > 0 && --g->stack[g->depth - 1] == 0) {
        g->depth--;
    }
}


/*
 * Feed bytes.  Returns 0, or -1 with *bad_record and *bad_offset set to the
 * top-level object holding an impossible container.
 */

static int
cef_guard_feed(cef_guard_t *g, const uint8_t *p, size_t n,
    uint64_t *bad_record, uint64_t *bad_offset)
{
    size_t    i = 0, take;
    uint8_t   c;
    uint64_t  items;

    while (i < n) {

        if (g->skip) {
            take = g->skip < n - i ? (size_t) g->skip : n - i;
            g->skip -= take;
            i += take;
            g->pos += take;
            if (g->skip == 0) {
                cef_guard_done(g);
            }
            continue;
        }

        c = p[i++];

        if (g->hneed == 0) {
            if (g->depth == 0) {
                g->records++;
                g->start = g->pos;
            }

            g->hneed = cef_guard_hlen(c);
            g->hlen = 0;

            if (g->hneed == 0) {
                return 0;   /* invalid byte: msgpack-c reports it */
            }
        }

        g->pos++;
        g->hdr[g->hlen++] = c;

        if (g->hlen < g->hneed) {
            continue;
        }

        /* a whole header */

        c = g->hdr[0];
        g->hneed = 0;
        items = 0;

        if (c >= 0x90 && c <= 0x9f) {
            items = c & 0x0f;
        } else if (c >= 0x80 && c <= 0x8f) {
            items = 2 * (uint64_t) (c & 0x0f);
        } else if (c == 0xdc || c == 0xdd) {
            items = cef_guard_be(g->hdr + 1, g->hlen - 1);
        } else if (c == 0xde || c == 0xdf) {
            items = 2 * cef_guard_be(g->hdr + 1, g->hlen - 1);

        } else {
            /* a scalar: its payload, if any */
            if (c >= 0xa0 && c <= 0xbf) {
                g->skip = c & 0x1f;
            } else if (c == 0xd9 || c == 0xda || c == 0xdb
                       || c == 0xc4 || c == 0xc5 || c == 0xc6)
            {
                g->skip = cef_guard_be(g->hdr + 1, g->hlen - 1);
            } else if (c == 0xc7 || c == 0xc8 || c == 0xc9) {
                g->skip = cef_guard_be(g->hdr + 1, g->hlen - 2);
            } else if (c >= 0xd4 && c <= 0xd8) {
                g->skip = (uint64_t) 1 << (c - 0xd4);
            } else if (c == 0xca) {
                g->skip = 4;
            } else if (c == 0xcb) {
                g->skip = 8;
            } else if (c >= 0xcc && c <= 0xcf) {
                g->skip = (uint64_t) 1 << (c - 0xcc);
            } else if (c >= 0xd0 && c <= 0xd3) {
                g->skip = (uint64_t) 1 << (c - 0xd0);
            }

            if (g->skip == 0) {
                cef_guard_done(g);
            }
            continue;
        }

        if (items > (g->max_items ? g->max_items : CEF_INPUT_RECORD_MAX)
            || g->depth == CEF_GUARD_DEPTH)
        {
            *bad_record = g->records;
            *bad_offset = g->start;
            return -1;
        }

        if (items == 0) {
            cef_guard_done(g);
        } else {
            g->stack[g->depth++] = (uint32_t) items;
        }
    }

    return 0;
}


static int
cef_input_guard(cef_input_t *in, const uint8_t *p, size_t n, char *err,
    size_t errlen)
{
    uint64_t  rec, off;

    if (cef_guard_feed(&in->guard, p, n, &rec, &off) == 0) {
        return 0;
    }

    snprintf(err, errlen, "record %llu (byte %llu): malformed msgpack (an "
             "array or map claims more elements than a record can hold, or "
             "nests deeper than %d)", (unsigned long long) rec,
             (unsigned long long) off, CEF_GUARD_DEPTH);
    return -1;
}


int
cef_input_msgpack_check(const void *data, size_t len)
{
    uint64_t     rec, off;
    cef_guard_t  g;

    memset(&g, 0, sizeof(cef_guard_t));

    /* every element takes at least one byte */
    g.max_items = len ? len : 1;

    return cef_guard_feed(&g, data, len, &rec, &off);
}


static ssize_t
cef_input_read(cef_input_t *in, void *buf, size_t size)
{
    ssize_t  n;
    size_t   left;

    if (in->mem) {
        left = in->mem_len - in->mem_pos;
        if (size > left) {
            size = left;
        }
        memcpy(buf, in->mem + in->mem_pos, size);
        in->mem_pos += size;
        in->fed += size;
        return (ssize_t) size;
    }

    if (in->threaded) {
        /* the reading thread must notice cef_input_close() on a quiet pipe */
        struct pollfd  pfd;

        pfd.fd = in->fd;
        pfd.events = POLLIN;

        while (!__atomic_load_n(&in->qstop, __ATOMIC_ACQUIRE)) {
            pfd.revents = 0;
            if (poll(&pfd, 1, 100) != 0) {
                break;
            }
        }

        if (__atomic_load_n(&in->qstop, __ATOMIC_ACQUIRE)) {
            errno = ECANCELED;
            return -1;
        }
    }

    do {
        n = read(in->fd, buf, size);
    } while (n < 0 && errno == EINTR);

    if (n > 0) {
        in->fed += n;
    }

    return n;
}


/*
 * Read into buf for a parser: the bytes read, 0 at the end of the input
 * (in->eof is set), or -1 with the message in err.
 */

static ssize_t
cef_input_read_checked(cef_input_t *in, void *buf, size_t size,
    char *err, size_t errlen)
{
    ssize_t  n;

    n = cef_input_read(in, buf, size);

    if (n < 0) {
        snprintf(err, errlen, "read error at byte %llu: %s",
                 (unsigned long long) in->fed, strerror(errno));
        return -1;
    }

    if (n == 0) {
        in->eof = 1;
    }

    return n;
}


static cef_input_t *
cef_input_alloc(void)
{
    cef_input_t  *in;

    in = calloc(1, sizeof(cef_input_t));
    if (in == NULL) {
        return NULL;
    }

    in->fd = -1;
    in->size = -1;
    msgpack_unpacked_init(&in->result);
    msgpack_sbuffer_init(&in->sbuf);

    return in;
}


cef_input_t *
cef_input_open_fd(int fd)
{
    struct stat   st;
    cef_input_t  *in;

    in = cef_input_alloc();
    if (in == NULL) {
        return NULL;
    }

    in->fd = fd;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        in->size = st.st_size;
    }

    return in;
}


cef_input_t *
cef_input_open_mem(const void *data, size_t len)
{
    cef_input_t  *in;

    in = cef_input_alloc();
    if (in == NULL) {
        return NULL;
    }

    in->mem = data ? data : (const void *) "";
    in->mem_len = len;
    in->size = (int64_t) len;

    return in;
}


static void
cef_input_reset(cef_input_t *in)
{
    if (in->unp_init) {
        msgpack_unpacker_destroy(&in->unp);
        in->unp_init = 0;
    }

    msgpack_unpacked_destroy(&in->result);
    msgpack_unpacked_init(&in->result);

    free(in->line);
    in->line = NULL;
    in->lcap = in->lpos = in->llen = 0;
    in->lineno = 0;

    memset(&in->guard, 0, sizeof(in->guard));
    in->format = CEF_INPUT_UNKNOWN;
    in->eof = 0;
    in->record = in->offset = in->next = in->fed = 0;
}


static void
cef_input_item_free(cef_input_item_t *it)
{
    msgpack_unpacked_destroy(&it->u);
    msgpack_unpacked_init(&it->u);
    free(it->buf);
    it->buf = NULL;
}


void
cef_input_stop_thread(cef_input_t *in)
{
    size_t  i;

    if (!in->threaded) {
        return;
    }

    pthread_mutex_lock(&in->mu);
    __atomic_store_n(&in->qstop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&in->not_full);
    pthread_mutex_unlock(&in->mu);

    pthread_join(in->tid, NULL);

    /* consumed slots keep their memory until reused: free them all */
    for (i = 0; i < CEF_INPUT_QUEUE; i++) {
        cef_input_item_free(&in->q[i]);
        free(in->q[i].scratch);
    }

    free(in->q);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->not_empty);
    pthread_cond_destroy(&in->not_full);
    in->threaded = 0;
}


void
cef_input_close(cef_input_t *in)
{
    if (in == NULL) {
        return;
    }

    cef_input_stop_thread(in);

    cef_input_reset(in);
    msgpack_unpacked_destroy(&in->result);
    msgpack_sbuffer_destroy(&in->sbuf);
    free(in);
}


int
cef_input_seekable(const cef_input_t *in)
{
    return in->mem != NULL || in->size >= 0;
}


int
cef_input_rewind(cef_input_t *in)
{
    if (in->threaded) {
        return -1;
    }

    if (in->mem) {
        in->mem_pos = 0;

    } else if (in->size < 0 || lseek(in->fd, 0, SEEK_SET) != 0) {
        return -1;
    }

    cef_input_reset(in);
    return 0;
}


uint64_t
cef_input_record(const cef_input_t *in)
{
    return in->threaded ? in->cur->record : in->record;
}


uint64_t
cef_input_offset(const cef_input_t *in)
{
    return in->threaded ? in->cur->offset : in->offset;
}


uint64_t
cef_input_consumed(const cef_input_t *in)
{
    return in->threaded ? in->cur->consumed : in->fed;
}


int64_t
cef_input_size(const cef_input_t *in)
{
    return in->size;
}


cef_input_format_t
cef_input_format(const cef_input_t *in)
{
    return in->format;
}


int
cef_input_wait(cef_input_t *in, int timeout_ms)
{
    int              rc;
    struct pollfd    pfd;
    struct timespec  ts;

    if (in->threaded) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }

        pthread_mutex_lock(&in->mu);
        while (in->qlen == 0 && !in->qdone) {
            in->cwait = 2;      /* any record will do */
            rc = pthread_cond_timedwait(&in->not_empty, &in->mu, &ts);
            in->cwait = 0;
            if (rc != 0) {
                break;
            }
        }
        rc = in->qlen > 0 || in->qdone;
        pthread_mutex_unlock(&in->mu);
        return rc;
    }

    if (in->mem || in->size >= 0 || in->eof) {
        return 1;
    }

    if (in->format == CEF_INPUT_NDJSON && memchr(in->line + in->lpos, '\n',
                                                 in->llen - in->lpos))
    {
        return 1;
    }

    /*
     * Buffered msgpack bytes are usually whole records (writers flush per
     * record); if they are only part of one, the next read blocks.
     */

    if (in->format == CEF_INPUT_MSGPACK && in->fed > in->next) {
        return 1;
    }

    pfd.fd = in->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    return poll(&pfd, 1, timeout_ms) != 0;
}


/* Fill the line buffer with at least one more chunk. */

static int
cef_input_fill(cef_input_t *in, char *err, size_t errlen)
{
    ssize_t  n;
    size_t   ncap;
    char    *p;

    if (in->lpos > 0) {
        memmove(in->line, in->line + in->lpos, in->llen - in->lpos);
        in->llen -= in->lpos;
        in->lpos = 0;
    }

    if (in->lcap - in->llen < CEF_INPUT_CHUNK) {
        ncap = in->llen + CEF_INPUT_CHUNK;
        p = realloc(in->line, ncap);
        if (p == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        in->line = p;
        in->lcap = ncap;
    }

    n = cef_input_read_checked(in, in->line + in->llen,
                               in->lcap - in->llen, err, errlen);
    if (n < 0) {
        return -1;
    }

    in->llen += n;
    return 0;
}


static int
cef_input_detect(cef_input_t *in, char *err, size_t errlen)
{
    size_t  i;

    /* peek through the line buffer, then hand it to the right parser */

    for ( ;; ) {
        for (i = in->lpos; i < in->llen; i++) {
            if (in->line[i] != ' ' && in->line[i] != '\t'
                && in->line[i] != '\r' && in->line[i] != '\n')
            {
                break;
            }
        }

        if (i < in->llen || in->eof) {
            break;
        }

        if (cef_input_fill(in, err, errlen) != 0) {
            return -1;
        }
    }

    if (i < in->llen && (in->line[i] == '{' || in->line[i] == '[')) {
        in->format = CEF_INPUT_NDJSON;
        return 0;
    }

    in->format = CEF_INPUT_MSGPACK;

    if (!msgpack_unpacker_init(&in->unp, CEF_INPUT_CHUNK * 2)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    in->unp_init = 1;

    if (in->llen > 0) {
        if (cef_input_guard(in, (uint8_t *) in->line, in->llen, err, errlen)
            != 0)
        {
            return -1;
        }

        if (!msgpack_unpacker_reserve_buffer(&in->unp, in->llen)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(msgpack_unpacker_buffer(&in->unp), in->line, in->llen);
        msgpack_unpacker_buffer_consumed(&in->unp, in->llen);
    }

    in->llen = in->lpos = 0;

    return 0;
}


/*
 * Returns 0, -1 when the packer fails, or CEF_INPUT_TOO_DEEP: msgpack-c
 * would refuse to read the result back.
 */

static int
cef_input_json_pack(msgpack_packer *pk, json_t *j, int depth)
{
    int          rc;
    size_t       i, n;
    const char  *key;
    json_t      *v;

    if ((json_is_object(j) || json_is_array(j))
        && depth == CEF_INPUT_DEPTH_MAX)
    {
        return CEF_INPUT_TOO_DEEP;
    }

    switch (json_typeof(j)) {

    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, key, v) {
            n = strlen(key);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, key, n);
            if ((rc = cef_input_json_pack(pk, v, depth + 1)) != 0) {
                return rc;
            }
        }
        return 0;

    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v) {
            if ((rc = cef_input_json_pack(pk, v, depth + 1)) != 0) {
                return rc;
            }
        }
        return 0;

    case JSON_STRING:
        n = json_string_length(j);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, json_string_value(j), n);
        return 0;

    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(j));

    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));

    case JSON_TRUE:
        return msgpack_pack_true(pk);

    case JSON_FALSE:
        return msgpack_pack_false(pk);

    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }

    return -1;
}


int
cef_input_json_record(const char *s, size_t len, msgpack_sbuffer *sb,
    char *err, size_t errlen)
{
    int             rc;
    json_t         *j;
    json_error_t    jerr;
    msgpack_packer  pk;

    j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        snprintf(err, errlen, "malformed JSON at column %d: %s", jerr.column,
                 jerr.text);
        return -1;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }

    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);

    rc = cef_input_json_pack(&pk, j, 0);
    json_decref(j);

    if (rc == CEF_INPUT_TOO_DEEP) {
        snprintf(err, errlen, "arrays and objects nest deeper than %d",
                 CEF_INPUT_DEPTH_MAX);
        return -1;
    }

    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


static int
cef_input_next_json(cef_input_t *in, const msgpack_object **obj, char *err,
    size_t errlen)
{
    char            *nl, *s;
    char             msg[512];
    size_t           len, i, off;

    for ( ;; ) {
        nl = memchr(in->line + in->lpos, '\n', in->llen - in->lpos);

        if (nl == NULL) {
            if (in->llen - in->lpos > CEF_INPUT_RULES_MAX) {
                snprintf(err, errlen, "record %llu (line %llu, byte %llu): "
                         "record is larger than %d bytes",
                         (unsigned long long) in->record + 1,
                         (unsigned long long) in->lineno + 1,
                         (unsigned long long) in->next, CEF_INPUT_RULES_MAX);
                return -1;
            }

            if (!in->eof) {
                if (cef_input_fill(in, err, errlen) != 0) {
                    return -1;
                }
                continue;
            }

            if (in->lpos == in->llen) {
                return 0;
            }

            /* a last line without "\n" */
            nl = in->line + in->llen;
        }

        s = in->line + in->lpos;
        len = nl - s;

        in->lineno++;
        off = in->next;
        in->next += len + (nl < in->line + in->llen ? 1 : 0);
        in->lpos += len + (nl < in->line + in->llen ? 1 : 0);

        for (i = 0; i < len; i++) {
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
                break;
            }
        }

        if (i == len) {
            continue;   /* blank line */
        }

        in->record++;
        in->offset = off;

        if (len > CEF_INPUT_RULES_MAX) {
            snprintf(err, errlen, "record %llu (line %llu, byte %llu): "
                     "record is larger than %d bytes",
                     (unsigned long long) in->record,
                     (unsigned long long) in->lineno,
                     (unsigned long long) off, CEF_INPUT_RULES_MAX);
            return -1;
        }

        if (cef_input_json_record(s, len, &in->sbuf, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "record %llu (line %llu, byte %llu): %s",
                     (unsigned long long) in->record,
                     (unsigned long long) in->lineno,
                     (unsigned long long) off, msg);
            return -1;
        }

        off = 0;
        if (msgpack_unpack_next(&in->result, in->sbuf.data, in->sbuf.size,
                                &off) != MSGPACK_UNPACK_SUCCESS)
        {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        if (!cef_input_size_ok(&in->result.data, len)) {
            snprintf(err, errlen, "record %llu (line %llu, byte %llu): "
                     "record is larger than %d bytes",
                     (unsigned long long) in->record,
                     (unsigned long long) in->lineno,
                     (unsigned long long) (in->offset),
                     CEF_INPUT_RECORD_MAX);
            return -1;
        }

        *obj = &in->result.data;
        return 1;
    }
}


static int
cef_input_next_msgpack(cef_input_t *in, const msgpack_object **obj,
    char *err, size_t errlen)
{
    ssize_t                 n;
    uint64_t                end;
    msgpack_unpack_return   rc;

    for ( ;; ) {
        rc = msgpack_unpacker_next(&in->unp, &in->result);

        if (rc == MSGPACK_UNPACK_SUCCESS) {
            in->record++;
            in->offset = in->next;
            /* parsed_size() restarts per message: count from the end */
            end = in->fed - (in->unp.used - in->unp.off);
            in->next = end;

            if (!cef_input_size_ok(&in->result.data, end - in->offset)) {
                snprintf(err, errlen, "record %llu (byte %llu): record is "
                         "larger than %d bytes",
                         (unsigned long long) in->record,
                         (unsigned long long) in->offset,
                         CEF_INPUT_RECORD_MAX);
                return -1;
            }

            if (in->result.data.type != MSGPACK_OBJECT_MAP) {
                snprintf(err, errlen, "record %llu (byte %llu): not a "
                         "msgpack map", (unsigned long long) in->record,
                         (unsigned long long) in->offset);
                return -1;
            }

            *obj = &in->result.data;
            return 1;
        }

        if (rc != MSGPACK_UNPACK_CONTINUE) {
            snprintf(err, errlen, "record %llu (byte %llu): %s",
                     (unsigned long long) in->record + 1,
                     (unsigned long long) in->next,
                     rc == MSGPACK_UNPACK_NOMEM_ERROR
                     ? "malformed msgpack (impossible sizes)"
                     : "malformed msgpack");
            return -1;
        }

        if (in->fed - in->next > CEF_INPUT_RULES_MAX) {
            snprintf(err, errlen, "record %llu (byte %llu): record is larger "
                     "than %d bytes", (unsigned long long) in->record + 1,
                     (unsigned long long) in->next, CEF_INPUT_RULES_MAX);
            return -1;
        }

        if (in->eof) {
            if (in->fed > in->next) {
                snprintf(err, errlen, "record %llu (byte %llu): truncated "
                         "record (the stream ends inside it)",
                         (unsigned long long) in->record + 1,
                         (unsigned long long) in->next);
                return -1;
            }
            return 0;
        }

        if (!msgpack_unpacker_reserve_buffer(&in->unp, CEF_INPUT_CHUNK)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        n = cef_input_read_checked(in, msgpack_unpacker_buffer(&in->unp),
                                   msgpack_unpacker_buffer_capacity(&in->unp),
                                   err, errlen);
        if (n < 0) {
            return -1;
        }

        if (n == 0) {
            continue;
        }

        if (cef_input_guard(in, (uint8_t *) msgpack_unpacker_buffer(&in->unp),
                            (size_t) n, err, errlen) != 0)
        {
            return -1;
        }

        msgpack_unpacker_buffer_consumed(&in->unp, n);
    }
}


static void *
cef_input_producer(void *arg)
{
    int                    rc;
    char                   err[1024];
    cef_input_t           *in = arg;
    cef_input_item_t      *it;
    const msgpack_object  *obj;

    for ( ;; ) {
        err[0] = '\0';
        rc = cef_input_next_sync(in, &obj, err, sizeof(err));

        /* the hook writes into the slot's scratch: find the slot first */
        if (rc == 1 && in->hook) {
            pthread_mutex_lock(&in->mu);
            while (in->qlen >= CEF_INPUT_QUEUE - 1 && !in->qstop) {
                in->pwait = 1;
                pthread_cond_wait(&in->not_full, &in->mu);
                in->pwait = 0;
            }
            it = &in->q[(in->qhead + in->qlen) % CEF_INPUT_QUEUE];
            pthread_mutex_unlock(&in->mu);

            /* only this thread fills slots at and after qhead + qlen */
            if (!in->qstop
                && in->hook(in->hook_data, obj, in->record, in->offset,
                            it->scratch, err, sizeof(err)) != 0)
            {
                rc = -1;
            }
        }

        pthread_mutex_lock(&in->mu);

        if (rc <= 0) {
            in->qrc = rc;
            memcpy(in->qerr, err, sizeof(in->qerr));
            in->qdone = 1;
            pthread_cond_signal(&in->not_empty);
            pthread_mutex_unlock(&in->mu);
            return NULL;
        }

        /* one slot stays with the consumer: the record it holds */
        while (in->qlen >= CEF_INPUT_QUEUE - 1 && !in->qstop) {
            in->pwait = 1;
            pthread_cond_wait(&in->not_full, &in->mu);
            in->pwait = 0;
        }

        if (in->qstop) {
            pthread_mutex_unlock(&in->mu);
            return NULL;
        }

        /*
         * Hand the record over.  The slot's previous record was consumed
         * long ago; it is freed here, in the thread that allocated it, so
         * that malloc arenas are not shared between the threads.
         */
        it = &in->q[(in->qhead + in->qlen) % CEF_INPUT_QUEUE];
        cef_input_item_free(it);
        it->u = in->result;
        msgpack_unpacked_init(&in->result);
        it->buf = in->format == CEF_INPUT_NDJSON
                  ? msgpack_sbuffer_release(&in->sbuf) : NULL;
        it->record = in->record;
        it->offset = in->offset;
        it->consumed = in->fed;
        in->qlen++;

        if ((in->cwait == 1 && in->qlen >= CEF_INPUT_WAKE)
            || in->cwait == 2)
        {
            pthread_cond_signal(&in->not_empty);
        }

        pthread_mutex_unlock(&in->mu);
    }
}


int
cef_input_start_thread(cef_input_t *in, cef_input_hook_pt hook, void *data,
    size_t scratch_size)
{
    size_t  i;

    if (in->threaded) {
        return 0;
    }

    in->q = calloc(CEF_INPUT_QUEUE, sizeof(cef_input_item_t));
    if (in->q == NULL) {
        return -1;
    }

    in->hook = hook;
    in->hook_data = data;
    in->scratch_size = scratch_size;

    for (i = 0; i < CEF_INPUT_QUEUE; i++) {
        msgpack_unpacked_init(&in->q[i].u);

        if (hook && scratch_size) {
            in->q[i].scratch = malloc(scratch_size);
            if (in->q[i].scratch == NULL) {
                while (i--) {
                    free(in->q[i].scratch);
                }
                free(in->q);
                in->q = NULL;
                return -1;
            }
        }
    }

    memset(&in->none, 0, sizeof(in->none));
    msgpack_unpacked_init(&in->none.u);
    in->cur = &in->none;
    in->qhead = in->qlen = 0;
    in->qdone = in->qstop = in->qrc = 0;

    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->not_empty, NULL);
    pthread_cond_init(&in->not_full, NULL);

    in->threaded = 1;

    if (pthread_create(&in->tid, NULL, cef_input_producer, in) != 0) {
        in->threaded = 0;
        pthread_mutex_destroy(&in->mu);
        pthread_cond_destroy(&in->not_empty);
        pthread_cond_destroy(&in->not_full);
        for (i = 0; i < CEF_INPUT_QUEUE; i++) {
            free(in->q[i].scratch);
        }
        free(in->q);
        in->q = NULL;
        return -1;
    }

    return 0;
}


const void *
cef_input_scratch(const cef_input_t *in)
{
    return in->threaded && in->hook ? in->cur->scratch : NULL;
}


int
cef_input_next(cef_input_t *in, const msgpack_object **obj, char *err,
    size_t errlen)
{
    int  rc;

    if (!in->threaded) {
        return cef_input_next_sync(in, obj, err, errlen);
    }

    pthread_mutex_lock(&in->mu);

    if (in->qlen == 0) {
        /* sleep until a batch is ready, not for every record */
        while (in->qlen < CEF_INPUT_WAKE && !in->qdone) {
            in->cwait = 1;
            pthread_cond_wait(&in->not_empty, &in->mu);
            in->cwait = 0;
        }
    }

    if (in->qlen == 0) {
        rc = in->qrc;
        snprintf(err, errlen, "%s", in->qerr);
        pthread_mutex_unlock(&in->mu);
        return rc;
    }

    in->cur = &in->q[in->qhead];
    in->qhead = (in->qhead + 1) % CEF_INPUT_QUEUE;
    in->qlen--;

    if (in->pwait && in->qlen + CEF_INPUT_WAKE <= CEF_INPUT_QUEUE) {
        pthread_cond_signal(&in->not_full);
    }

    pthread_mutex_unlock(&in->mu);

    *obj = &in->cur->u.data;
    return 1;
}


static int
cef_input_next_sync(cef_input_t *in, const msgpack_object **obj, char *err,
    size_t errlen)
{
    if (in->format == CEF_INPUT_UNKNOWN) {
        if (cef_input_detect(in, err, errlen) != 0) {
            return -1;
        }
    }

    if (in->format == CEF_INPUT_NDJSON) {
        return cef_input_next_json(in, obj, err, errlen);
    }

    return cef_input_next_msgpack(in, obj, err, errlen);
}


int
cef_input_size_ok(const msgpack_object *rec, size_t len)
{
    uint32_t               i;
    const msgpack_object  *k, *v;

    if (len <= CEF_INPUT_RECORD_MAX) {
        return 1;
    }

    if (len > CEF_INPUT_RULES_MAX || rec->type != MSGPACK_OBJECT_MAP) {
        return 0;
    }

    for (i = 0; i < rec->via.map.size; i++) {
        k = &rec->via.map.ptr[i].key;
        v = &rec->via.map.ptr[i].val;

        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2
            && memcmp(k->via.str.ptr, "op", 2) == 0)
        {
            return v->type == MSGPACK_OBJECT_STR && v->via.str.size == 5
                   && memcmp(v->via.str.ptr, "rules", 5) == 0;
        }
    }

    return 0;
}
