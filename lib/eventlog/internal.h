/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Shared by the event-log parsers (lib/eventlog/<format>.c): a bounded,
 * buffered input over an fd or a memory buffer, and the per-format
 * operations table that eventlog.c dispatches to.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cscp/eventlog.h"

/* Buffered input. Bytes before `pos` are consumed; the buffer keeps at most
 * max_record bytes of the current record. */
typedef struct evlog_in {
        int fd;             /* -1 for memory input */
        const uint8_t *mem; /* memory input: the whole log */
        size_t mem_len;
        uint8_t *buf; /* fd input: window [buf, buf + fill) */
        size_t cap, fill, pos;
        uint64_t base;     /* log offset of buf[0] (fd) */
        uint64_t consumed; /* log offset of the next unconsumed byte */
        size_t max;        /* largest window (opts.max_record) */
        bool eof;
} evlog_in_t;

/*
 * Makes n bytes from the current position available in *ret (no copy for
 * memory input). Returns 0, -ENODATA when the log ends first (a truncated
 * record; evlog_in_avail tells how many bytes there were), CSCP_E_TOO_BIG when
 * n exceeds max, or -errno from read().
 */
int evlog_in_need(evlog_in_t *in, size_t n, const uint8_t **ret);
/* Bytes available without reading more (memory: all remaining). */
size_t evlog_in_avail(const evlog_in_t *in);
/* True when no byte remains (reads to find out). */
bool evlog_in_at_end(evlog_in_t *in);
/* Consumes n bytes (n <= what evlog_in_need made available). */
void evlog_in_consume(evlog_in_t *in, size_t n);
/*
 * A line ending in '\n' (or at EOF), without the '\n', at most max bytes:
 * 1 and the line, 0 at EOF with nothing left, CSCP_E_TOO_BIG, -errno.
 * The line is not consumed: call evlog_in_consume(in, *ret_len + newline).
 */
int evlog_in_line(evlog_in_t *in, size_t max, const uint8_t **ret, size_t *ret_len, size_t *ret_newline);
/* Copies the n bytes before absolute offset end (memory, the current window, or pread on a regular
 * file); -ESPIPE when they cannot be had (a pipe whose bytes are gone). */
int evlog_in_tail(const evlog_in_t *in, uint64_t end, uint8_t *out, size_t n);
/* Skips forward to absolute offset off (for resume). */
int evlog_in_seek(evlog_in_t *in, uint64_t off);

typedef struct evlog_ops {
        cscp_eventlog_format_t format;
        /* Called once before the first next(); may read headers (they are events too). */
        int (*init)(cscp_eventlog_t *l);
        /* Fills *ev (l->ev, zeroed by the caller except index/offset): 1 event, 0 end, < 0 error via evlog_fail. */
        int (*next)(cscp_eventlog_t *l, cscp_event_t *ev);
        /* One line for show output (no newline), malloc'd. NULL: a generic line is used. */
        int (*describe)(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret);
        /* Parser state for resume: save into buf (<= CSCP_REPLAY_STATE_MAX), restore. May be NULL. */
        int (*save)(const cscp_eventlog_t *l, uint8_t *buf, size_t *len);
        int (*restore)(cscp_eventlog_t *l, const uint8_t *buf, size_t len);
        void (*free)(cscp_eventlog_t *l);
} evlog_ops_t;

struct cscp_eventlog {
        evlog_in_t in;
        cscp_eventlog_opts_t opts;
        const evlog_ops_t *ops;
        void *priv; /* the parser's own state */
        cscp_event_t ev;
        uint64_t next_index;
        bool started, failed, ended;
        char err[512];
};

extern const evlog_ops_t evlog_tcg_ops;
extern const evlog_ops_t evlog_ima_ops;
extern const evlog_ops_t evlog_ima_binary_ops;
extern const evlog_ops_t evlog_cel_tlv_ops;
extern const evlog_ops_t evlog_cel_json_ops;

/*
 * Records an error "event N at byte OFF: <message>" (N, OFF of the record
 * being parsed) and returns code (CSCP_E_PROTO for malformed input,
 * CSCP_E_UNSUPPORTED for an unknown algorithm or template, CSCP_E_TOO_BIG for
 * a limit).
 */
int evlog_fail(cscp_eventlog_t *l, int code, uint64_t offset, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Hash helpers: H_alg(data) into out (size = cscp_hash_alg_size(alg)); 0 or CSCP_E_UNSUPPORTED/CRYPTO. */
int evlog_hash(uint16_t alg, const void *data, size_t len, uint8_t *out);
/* H_alg(a || b) (b may be NULL with blen 0). */
int evlog_hash2(uint16_t alg, const void *a, size_t alen, const void *b, size_t blen, uint8_t *out);
/* Adds a digest to ev (fails past CSCP_EVENT_MAX_DIGESTS or on a duplicate/unknown bank). */
int evlog_add_digest(cscp_event_t *ev, uint16_t alg, const uint8_t *digest, size_t size);
