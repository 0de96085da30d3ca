/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The host's measurement logs attestd puts into Evidence (docs/protocol.md
 * "Logs and offsets"): read after the host quote, cut into whole events from
 * the requested event index (lib: cscp_eventlog_slice). Blocking file reads:
 * call from the threadpool, never on the loop thread.
 */

#include <stddef.h>
#include <stdint.h>

#include "cscp.pb-c.h"

#define ATTESTD_LOG_FILE_MAX (64u * 1024 * 1024) /* bytes of one log file read for a challenge */

typedef struct attestd_log {
        uint8_t *buf;      /* the file as read (free with attestd_log_clear) */
        size_t start, len; /* the whole events sent: buf[start, start + len) */
        uint64_t offset;   /* index of the first event sent */
        uint64_t count;    /* events sent */
} attestd_log_t;

/* The event-log format of a host log kind (LOG_CONTAINER_CEL too); CSCP_EVENTLOG_AUTO for LOG_IMA (ascii or binary). */
int attestd_log_format(Cscp__LogKind kind);
/* "boot", "IMA", "host CEL", ... for messages. */
const char *attestd_log_name(Cscp__LogKind kind);
/*
 * Reads log `kind` from path and cuts whole events from event `offset` on
 * (LOG_BOOT: always from 0, the whole log). Returns 0 and *ret; -ENOENT when
 * the file does not exist (the log is left out of Evidence); CSCP_E_TOO_BIG
 * when the file is over ATTESTD_LOG_FILE_MAX or the events from `offset` are
 * over max_bytes; -ERANGE when offset is past the last event; CSCP_E_PROTO when
 * the log does not parse; another negative errno when it cannot be read.
 * msg (always set on failure) names the log and the file.
 */
int attestd_log_read(const char *path, Cscp__LogKind kind, uint64_t offset, size_t max_bytes, attestd_log_t *ret,
                     char *msg, size_t msg_len);
void attestd_log_clear(attestd_log_t *l);
