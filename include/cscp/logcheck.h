/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Holding logs to quoted PCR values (design.md §3.5). Logs are read after the
 * quote, so a log may run ahead of it: each quoted PCR is replayed event by
 * event until its running value equals the quoted value, and the events of
 * that PCR after that point are "not yet attested". A PCR whose running value
 * never equals the quoted value fails. When several quoted banks of one PCR
 * reach their values, they must do so after the same event.
 *
 * Usage: new (with the quote's PCR values, already bound to the quote by its
 * pcr-digest claim), optionally seed PCRs from a checkpoint, feed every log in
 * the order its events reached the TPM (logs that share a PCR: the earlier
 * writer first), finish, then ask which events are attested.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"
#include "pcr.h"

/* Events over all logs of one check (bounds the per-event bookkeeping, 8 bytes each). */
#define CSCP_LOGCHECK_MAX_EVENTS (8u * 1024 * 1024)
#define CSCP_LOGCHECK_MAX_LOGS   8

typedef struct cscp_logcheck cscp_logcheck_t;

/* The outcome for one quoted PCR value. */
typedef struct cscp_logcheck_pcr {
        uint16_t alg;
        uint8_t pcr;
        bool matched;      /* the replay reached the quoted value */
        uint64_t events;   /* extending events on this PCR over all logs (this bank) */
        uint64_t attested; /* of which the first `attested` are covered by the quote */
} cscp_logcheck_pcr_t;

/*
 * Called for every event of a fed log, in order, before its attestation is
 * known. ev->index is the absolute event index (the slice starts at first_index).
 * seq numbers events over all logs of this check, for cscp_logcheck_attested.
 * A negative return stops the feed with that error.
 */
typedef int (*cscp_logcheck_event_cb)(void *userdata, unsigned log_no, const cscp_event_t *ev, uint64_t seq);

int cscp_logcheck_new(const cscp_pcr_value_t *quoted, size_t n_quoted, cscp_logcheck_t **ret);
void cscp_logcheck_free(cscp_logcheck_t *lc);

/* Starts the PCRs in pcr_mask (all banks) from a checkpoint's values instead of their reset values. */
int cscp_logcheck_seed(cscp_logcheck_t *lc, const cscp_replay_t *from, uint32_t pcr_mask);
/* Asks for a copy of the replay state at the moment `pcr` reaches its quoted value (cscp_logcheck_snapshot). */
int cscp_logcheck_want_snapshot(cscp_logcheck_t *lc, unsigned pcr);

/*
 * Replays one log (data: whole events in fmt, the first being event
 * first_index of the log) as log number log_no (0..CSCP_LOGCHECK_MAX_LOGS-1,
 * each at most once). IMA lists are hashed in the quoted banks only (a bank no
 * quoted value uses is not replayed for them). A log that does not parse is CSCP_E_PROTO with a message
 * in err naming the event and byte offset; nothing of it counts then.
 */
int cscp_logcheck_feed(cscp_logcheck_t *lc, unsigned log_no, const uint8_t *data, size_t len,
                       cscp_eventlog_format_t fmt, uint64_t first_index, cscp_logcheck_event_cb cb, void *userdata,
                       char *err, size_t err_len);

/* After the last feed: decides which events are attested. Returns the number of quoted values not matched. */
int cscp_logcheck_finish(cscp_logcheck_t *lc);

/* Per quoted value, in the order given to new (valid after finish). */
size_t cscp_logcheck_n_pcrs(const cscp_logcheck_t *lc);
const cscp_logcheck_pcr_t *cscp_logcheck_pcr(const cscp_logcheck_t *lc, size_t i);

/*
 * After finish: whether event seq is covered by the quote. An event that
 * extends a PCR the quote does not cover is not attested; a record that
 * extends nothing (EV_NO_ACTION, CEL management) is attested when the last
 * extending event before it in its log is (or it precedes them all).
 */
bool cscp_logcheck_attested(const cscp_logcheck_t *lc, uint64_t seq);
/* Events of log log_no: total, and how many of them from its start on are attested without a gap. */
int cscp_logcheck_log_counts(const cscp_logcheck_t *lc, unsigned log_no, uint64_t *ret_events,
                             uint64_t *ret_attested_prefix, uint64_t *ret_unattested, uint32_t *ret_pcrs);

/*
 * The state requested with want_snapshot; -ENOENT when that PCR never reached
 * its value. ret_seq: how many events (over all logs, in feed order) had been
 * replayed into it.
 */
int cscp_logcheck_snapshot(const cscp_logcheck_t *lc, unsigned pcr, cscp_replay_t *ret, uint64_t *ret_seq);
