/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The challenger's store (SQLite, WAL, synchronous=FULL): enrolled hosts and
 * their AKs, the last TPM clock seen per AK (host and each vTPM), replay
 * checkpoints for incremental logs, and the verdict history. Every change is
 * one transaction: a crash loses nothing committed, and two cscp processes on
 * one store wait for each other (busy timeout) instead of corrupting it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSCP_STORE_MAX_BLOB (1u << 20)

typedef struct cscp_store cscp_store_t;

/*
 * The default store path: $XDG_STATE_HOME/cscp/store.db (an absolute
 * XDG_STATE_HOME), else ~/.local/state/cscp/store.db. Missing directories
 * on the way are created 0700. *ret is malloc'd.
 */
int cscp_store_default_path(char **ret);
/* Opens (creating it and its schema if needed) the store at path; CSCP_E_STATE for a file that is not ours. */
int cscp_store_open(const char *path, cscp_store_t **ret);
void cscp_store_close(cscp_store_t *s);
/* Message of the last failure (SQLite's), "" if none. */
const char *cscp_store_error(const cscp_store_t *s);

/* Enrollment: host (e.g. "host:port" or a name) -> AK Name and public. method: "credential" or "tofu". */
int cscp_store_enroll(cscp_store_t *s, const char *host, const uint8_t *ak_name, size_t ak_name_len,
                      const uint8_t *ak_public, size_t ak_public_len, const char *method);
/* The enrolled AK Name of host into ret (>= 66 bytes); -ENOENT when the host is not enrolled. */
int cscp_store_enrolled_ak(cscp_store_t *s, const char *host, uint8_t *ret, size_t *ret_len);

/* TPMS_CLOCK_INFO as last seen for one AK. */
typedef struct cscp_clock {
        uint64_t clock;
        uint32_t reset_count;
        uint32_t restart_count;
        bool safe;
} cscp_clock_t;

/*
 * Records `now` for the AK (by Name) and returns what was seen before in
 * *ret_last (ret_had_last false on the first sight). Read and write happen in
 * one transaction, so two challengers cannot both see the same "last".
 * The caller judges rollback/reset from the pair (design.md §3.5); the store
 * only keeps the newest (resetCount, restartCount, clock) it was given and
 * never moves backwards.
 */
int cscp_store_clock_swap(cscp_store_t *s, const uint8_t *ak_name, size_t ak_name_len, const cscp_clock_t *now,
                          cscp_clock_t *ret_last, bool *ret_had_last);

/* Replay checkpoint per (host, log): opaque bytes (cscp_replay_save). get: -ENOENT when there is none. */
int cscp_store_checkpoint_put(cscp_store_t *s, const char *host, const char *log, const uint8_t *buf, size_t len);
int cscp_store_checkpoint_get(cscp_store_t *s, const char *host, const char *log, uint8_t **ret, size_t *ret_len);

/* Verdict history: one row per challenge (result 0 trusted, 1 untrusted, 2 error; json = the verdict). */
int cscp_store_verdict_add(cscp_store_t *s, const char *host, const char *container, int result, const char *json);
/* Number of verdicts recorded for host (NULL: all). */
int cscp_store_verdict_count(cscp_store_t *s, const char *host, uint64_t *ret);
