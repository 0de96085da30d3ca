/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Measurement lists: streaming parsers and PCR replay (design.md §4).
 *
 * A log is read one event at a time (cscp_eventlog_next) from a file
 * descriptor or a memory buffer; memory stays flat in the log's length (one
 * record is buffered at a time, bounded by opts.max_record). Every event
 * carries the digests that were extended, one per bank, so replay is the same
 * for every format:
 *
 *     cscp_eventlog_t *l;  const cscp_event_t *ev;  cscp_replay_t rp;
 *     cscp_replay_init(&rp);
 *     cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_AUTO, NULL, NULL, &l);
 *     while ((r = cscp_eventlog_next(l, &ev)) > 0)
 *             cscp_replay_extend(&rp, ev);
 *     if (r < 0) fprintf(stderr, "%s\n", cscp_eventlog_error(l));
 *
 * Errors name the byte offset and the event number ("event 12 at byte 4711:
 * digest size 20 for sha256 disagrees with the Spec ID event (32)").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pcr.h"

typedef enum cscp_eventlog_format {
        CSCP_EVENTLOG_AUTO = 0,   /* detect from the first bytes */
        CSCP_EVENTLOG_TCG,        /* TCG PC Client crypto-agile (binary_bios_measurements) */
        CSCP_EVENTLOG_IMA,        /* IMA ascii_runtime_measurements */
        CSCP_EVENTLOG_IMA_BINARY, /* IMA binary_runtime_measurements (host-endian or canonical LE) */
        CSCP_EVENTLOG_CEL_TLV,    /* TCG Canonical Event Log, TLV encoding */
        CSCP_EVENTLOG_CEL_JSON,   /* CEL-JSON: a JSON array, JSON lines, or RFC 7464 JSON-SEQ (systemd) */
        _CSCP_EVENTLOG_FORMAT_MAX,
} cscp_eventlog_format_t;

/* "auto", "tcg", "ima", "ima-binary", "cel-tlv", "cel-json"; -1 when unknown. */
int cscp_eventlog_format_from_name(const char *name);
const char *cscp_eventlog_format_name(cscp_eventlog_format_t f);

/* Banks replay knows: sha1, sha256, sha384, sha512. */
#define CSCP_EVENT_MAX_DIGESTS 4
#define CSCP_EVENT_MAX_DIGEST  64

typedef struct cscp_event_digest {
        uint16_t alg; /* TPM2_ALG_SHA1/256/384/512 */
        uint16_t size;
        uint8_t digest[CSCP_EVENT_MAX_DIGEST];
} cscp_event_digest_t;

/* Which register a record extends. */
typedef enum cscp_event_register {
        CSCP_EVENT_PCR = 0,
        CSCP_EVENT_NV_INDEX, /* CEL nv_index records: never replayed into PCRs */
        CSCP_EVENT_RTMR,     /* TDX RTMR (CEL/CCEL); index 0..3 */
} cscp_event_register_t;

typedef struct cscp_event {
        uint64_t index;  /* 0-based number of the record in the log (the TCG header event is 0) */
        uint64_t offset; /* byte offset of the record's first byte */
        uint64_t length; /* record length in bytes */
        cscp_event_register_t reg;
        uint32_t pcr;  /* register index */
        uint32_t type; /* TCG: eventType; CEL: content type; IMA: 0 */
        /* False for records that are logged but not extended (EV_NO_ACTION, CEL management). */
        bool extend;
        /* >= 0 on a TCG StartupLocality event: PCR 0 starts with this locality in its last byte. */
        int startup_locality;
        size_t n_digests;
        cscp_event_digest_t digests[CSCP_EVENT_MAX_DIGESTS];
        /* Format-specific payload (TCG event data, IMA template data, CEL content value). */
        const uint8_t *data;
        size_t data_len;
        /* Short name for show output: TCG "EV_SEPARATOR", IMA template name, CEL content type. */
        const char *kind;
        /* Human description (file path, variable name, ...), valid UTF-8, may be "". */
        const char *text;
} cscp_event_t;

typedef struct cscp_eventlog_opts {
        /* Largest single record accepted (default 16 MiB); larger is an error, not an allocation. */
        size_t max_record;
        /* Largest number of records (default 10 000 000). */
        uint64_t max_events;
        /* IMA: banks to compute template digests for (0-terminated; default all four). */
        uint16_t ima_banks[CSCP_EVENT_MAX_DIGESTS + 1];
        /* IMA binary: 1 little-endian (canonical), 2 big-endian, 0 = host order, or detect. */
        int ima_endian;
        /* IMA: verify each entry's listed template hash against its template data (default on). */
        bool ima_no_template_check;
        /*
         * The input is a slice of a log starting at event first_index (e.g. an
         * Evidence log sent from an offset): numbering, and CEL recnums, start
         * there. TCG logs cannot be sliced (their first event defines the rest):
         * -EINVAL. Ignored when resuming from a checkpoint.
         */
        uint64_t first_index;
} cscp_eventlog_opts_t;

typedef struct cscp_eventlog cscp_eventlog_t;
typedef struct cscp_replay cscp_replay_t;

/*
 * Opens a log. fd is read from its current position and not closed; the
 * memory variant does not copy buf (it must outlive the log). resume (may be
 * NULL) continues a log from a checkpoint: the reader seeks (or skips) to the
 * checkpoint's offset and numbering continues from its event index.
 */
int cscp_eventlog_open_fd(int fd, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                          const cscp_replay_t *resume, cscp_eventlog_t **ret);
int cscp_eventlog_open_mem(const uint8_t *buf, size_t len, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                           const cscp_replay_t *resume, cscp_eventlog_t **ret);
/* The format of a log from its first bytes (what CSCP_EVENTLOG_AUTO does); CSCP_EVENTLOG_AUTO when unknown. */
cscp_eventlog_format_t cscp_eventlog_detect(const uint8_t *buf, size_t len);
/* 1 and *ret (valid until the next call) for an event, 0 at the end of the log, < 0 on error. */
int cscp_eventlog_next(cscp_eventlog_t *l, const cscp_event_t **ret);
/* The format in use (after detection). */
cscp_eventlog_format_t cscp_eventlog_format(const cscp_eventlog_t *l);
/* Message of the last error, naming event number and byte offset; "" if none. */
const char *cscp_eventlog_error(const cscp_eventlog_t *l);
/* Bytes consumed so far (the offset the next record starts at). */
uint64_t cscp_eventlog_offset(const cscp_eventlog_t *l);
void cscp_eventlog_free(cscp_eventlog_t *l);

/* One line for `cscp eventlog show` (no newline) into a malloc'd string. */
int cscp_event_describe(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret);

/*
 * PCR replay for all four banks at once. A bank's values are "present" once
 * an event carried a digest for it. Initial values follow the TCG PC Client
 * profile: PCR 17–22 all 0xFF, the rest zero, PCR 0's last byte = the
 * StartupLocality when one is logged.
 */
#define CSCP_REPLAY_STATE_MAX 256
struct cscp_replay {
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS]; /* TPM2_ALG_SHA1, SHA256, SHA384, SHA512 */
        uint8_t pcr[CSCP_EVENT_MAX_DIGESTS][CSCP_PCR_COUNT][CSCP_EVENT_MAX_DIGEST];
        uint32_t extended[CSCP_EVENT_MAX_DIGESTS]; /* bit i: PCR i was extended in this bank */
        bool bank_present[CSCP_EVENT_MAX_DIGESTS];
        /* Checkpoint: where the next event starts. */
        cscp_eventlog_format_t format;
        uint64_t next_index;
        uint64_t next_offset;
        /* Parser state a resumed reader needs (e.g. the TCG Spec ID digest sizes). */
        uint8_t parser_state[CSCP_REPLAY_STATE_MAX];
        size_t parser_state_len;
        /* SHA-256 of the (up to 256) bytes before next_offset: a resumed reader checks the log
         * still continues what was replayed (catches a rotated or replaced log). 0: not checked. */
        uint8_t tail_sha256[32];
        uint16_t tail_len;
};

void cscp_replay_init(cscp_replay_t *rp);
/* Extends ev's digests (if ev->extend and its register is a PCR 0..23); unknown banks are an error. */
int cscp_replay_extend(cscp_replay_t *rp, const cscp_event_t *ev);
/* Records where l stands (call after the last event you extended) so a later reader can resume. */
int cscp_replay_checkpoint(cscp_replay_t *rp, const cscp_eventlog_t *l);
/* The replayed value of one PCR; -ENOENT when the bank never appeared. */
int cscp_replay_pcr(const cscp_replay_t *rp, uint16_t alg, unsigned pcr, uint8_t *ret_value, size_t *ret_len);
/* Prints banks and PCRs exactly as `tpm2_pcrread` prints them (YAML). pcrs: bitmask, 0 = all extended. */
int cscp_replay_print(const cscp_replay_t *rp, uint16_t only_alg, uint32_t pcrs, FILE *out);
/* Serialises a replay (values + checkpoint) for incremental replay; versioned, checked on load. */
int cscp_replay_save(const cscp_replay_t *rp, uint8_t **ret, size_t *ret_len);
int cscp_replay_load(const uint8_t *buf, size_t len, cscp_replay_t *ret);

/*
 * Whole events of an in-memory log from event index `from` on (the index as
 * cscp_event_t.index counts them: the TCG header event is 0): *ret_start and
 * *ret_len give the bytes, *ret_count how many events they hold. A trailing
 * partial record (a writer in the middle of an append, or an IMA ascii line
 * without its newline) is left out, not an error; a malformed record before it
 * is (CSCP_E_PROTO and friends). max_bytes (0: no limit) caps the slice at
 * whole events: returns 1 when it stopped there with more events following
 * (possibly with *ret_count 0 when event `from` alone is larger), 0 when the
 * slice reaches the last whole event. from == the number of whole events gives
 * an empty slice at the end; from past it is -ERANGE. A CEL-JSON array is one
 * document: only from 0, and then the whole buffer, or nothing (returns 1,
 * *ret_count 0) when max_bytes cannot hold all of it (CSCP_E_UNSUPPORTED
 * from > 0). The TCG format needs its header event to parse the rest: a slice
 * from > 0 is not a log of its own.
 */
int cscp_eventlog_slice(const uint8_t *buf, size_t len, cscp_eventlog_format_t fmt, uint64_t from, size_t max_bytes,
                        size_t *ret_start, size_t *ret_len, uint64_t *ret_count);
