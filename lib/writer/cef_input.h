/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/writer (see cef_writer.h for what the folder may include).
 *
 * cef_input: reads a snapshot or delta stream record by record, as msgpack
 * objects, whether the stream is msgpack or NDJSON (docs/formats.md).
 * Plain C11, no nginx types.
 *
 * The format is detected from the first non-blank byte: '{' or '[' is
 * NDJSON (both are positive fixints in msgpack, which no valid stream
 * starts with), anything else msgpack.  NDJSON lines are parsed with jansson and converted to
 * msgpack, so that one validator serves both formats.
 *
 * Records are numbered from 1 (the header is record 1); offsets are byte
 * offsets of a record's first byte in the stream.  Every error message
 * names both.
 */

#ifndef CEF_INPUT_H
#define CEF_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>


#define CEF_INPUT_RECORD_MAX  65536

/*
 * A rules record ({"op":"rules",...}: a whole rule file as its "source")
 * may be larger: up to CEF_INPUT_RULES_MAX (docs/formats.md, "Record
 * size").  Every other record stays within CEF_INPUT_RECORD_MAX.
 */
#define CEF_INPUT_RULES_MAX   (16 * 1024 * 1024)

typedef struct cef_input_s  cef_input_t;

typedef enum {
    CEF_INPUT_UNKNOWN = 0,
    CEF_INPUT_MSGPACK,
    CEF_INPUT_NDJSON
} cef_input_format_t;


/*
 * Read from a file descriptor (not closed by cef_input_close()).
 *
 * @param[in] fd  an open descriptor
 * @return the reader, or NULL when out of memory.
 */
cef_input_t *cef_input_open_fd(int fd);

/*
 * Read from memory (used by tests).  The bytes must outlive the reader.
 */
cef_input_t *cef_input_open_mem(const void *data, size_t len);

void cef_input_close(cef_input_t *in);

/*
 * The next record.
 *
 * @param[in]  in      the reader
 * @param[out] obj     the record, valid until the next call
 * @param[out] err     the message on -1: "record N (byte O): ..."
 * @param[in]  errlen  bytes at err
 * @return 1 if a record was read, 0 at a clean end of the stream, -1 on an
 *         I/O error, malformed msgpack or JSON, a record that is not a map
 *         or object, a record over CEF_INPUT_RECORD_MAX bytes, or a stream
 *         that ends inside a record.
 */
int cef_input_next(cef_input_t *in, const msgpack_object **obj, char *err,
    size_t errlen);

/*
 * Work done on each record in the reading thread, before the record is
 * handed over: it may fill scratch (scratch_size bytes, returned later by
 * cef_input_scratch() with the record).
 *
 * @return 0, or -1 with a message in err: the stream then ends with that
 *         error at this record.
 */
typedef int (*cef_input_hook_pt)(void *data, const msgpack_object *rec,
    uint64_t record, uint64_t offset, void *scratch, char *err,
    size_t errlen);

/*
 * Read and parse ahead in a thread of its own (up to 1024 records), so
 * that parsing overlaps the caller's work.  Call before the first
 * cef_input_next(); afterwards a reader is used from one thread only, as
 * before, and cannot be rewound.  cef_input_close() stops the thread.
 *
 * @param[in] in            the reader
 * @param[in] hook          run on each record in the reading thread, or NULL
 * @param[in] data          passed to hook
 * @param[in] scratch_size  bytes of scratch per record for hook
 * @return 0, or -1 if the thread cannot be started (the reader stays
 *         usable, unthreaded).
 */
int cef_input_start_thread(cef_input_t *in, cef_input_hook_pt hook,
    void *data, size_t scratch_size);

/*
 * Stop the reading thread (cef_input_close() does it too).  Records it
 * had read ahead are dropped: use it when done with the stream.
 */
void cef_input_stop_thread(cef_input_t *in);

/* The hook's scratch of the record last returned, or NULL. */
const void *cef_input_scratch(const cef_input_t *in);

/*
 * Start again from the beginning (only for seekable descriptors and
 * memory).
 *
 * @return 0, or -1 if the input is not seekable.
 */
int cef_input_rewind(cef_input_t *in);

/* 1 if cef_input_rewind() can work. */
int cef_input_seekable(const cef_input_t *in);

/* Number of the last record returned (1-based). */
uint64_t cef_input_record(const cef_input_t *in);

/* Byte offset of the last record returned. */
uint64_t cef_input_offset(const cef_input_t *in);

/* Bytes read from the stream so far. */
uint64_t cef_input_consumed(const cef_input_t *in);

/* Size of the stream if known (a regular file or memory), else -1. */
int64_t cef_input_size(const cef_input_t *in);

/* The detected format (CEF_INPUT_UNKNOWN before the first record). */
cef_input_format_t cef_input_format(const cef_input_t *in);

/*
 * Wait until the input has data to read or timeout_ms passes (used to
 * commit a batch while a pipe is idle).
 *
 * @return 1 if data (or EOF) is available or already buffered, 0 on
 *         timeout.
 */
int cef_input_wait(cef_input_t *in, int timeout_ms);

/*
 * Check one whole msgpack value (a message, not a stream) before msgpack-c
 * reads it, as the reader checks its streams: msgpack-c allocates a
 * container's elements when it reads the header, so a header claiming
 * 2^32 elements would ask for ~100 GB.  A container may claim at most len
 * elements; 32 containers may nest (as deep as msgpack-c reads).  Bytes that are not msgpack at all are left
 * for msgpack-c to report.
 *
 * @return 0, or -1 if a container claims too much.
 */
int cef_input_msgpack_check(const void *data, size_t len);

/*
 * One JSON object as a record, packed as NDJSON records are read: integers
 * stay integers, reals become doubles; a repeated key is malformed.
 *
 * @param[in]  s       the JSON text
 * @param[in]  len     its length
 * @param[out] sb      the record as msgpack (cleared first)
 * @param[out] err     on -1: "malformed JSON at column C: ...", "not a
 *                     JSON object", "arrays and objects nest deeper than
 *                     32" (msgpack-c reads no deeper) or "out of memory"
 * @return 0 or -1.
 */
int cef_input_json_record(const char *s, size_t len, msgpack_sbuffer *sb,
    char *err, size_t errlen);


/*
 * 1 if a record of len bytes may be that large: len <= CEF_INPUT_RECORD_MAX,
 * or a rules record of len <= CEF_INPUT_RULES_MAX; 0 if not.
 */
int cef_input_size_ok(const msgpack_object *rec, size_t len);


#endif /* CEF_INPUT_H */
