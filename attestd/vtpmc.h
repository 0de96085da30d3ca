/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * attestd's client of vtpmd (proto/vtpmd.proto): the container quote of a
 * challenge. Blocking (one Unix-socket connection per call, vtpmd/wire.c's
 * client): call it from the threadpool, never on the loop thread nor the TPM
 * queue's thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cscp.pb-c.h"
#include "vtpmd.pb-c.h"

#define VTPMC_TIMEOUT_DEFAULT_MS 30000

typedef struct vtpmc_result {
        Vtpmd__VtpmResponse *resp; /* on success: body QuoteReply, checked complete; free with vtpmc_result_clear */
        Cscp__ErrorCode code;      /* on failure: what to answer the challenger */
        char msg[256];             /* on failure: why */
        uint8_t vak_name[66];      /* on success: the Name of the quote's ak_public (alg id || digest) */
        size_t vak_name_len;
} vtpmc_result_t;

/*
 * Quote{container_id, nonce, pcrs, want_log, log_offset} to vtpmd at socket.
 * Returns 0 with res->resp, or < 0 with res->code and res->msg (vtpmd's own
 * errors mapped: ERR_NOT_FOUND for an unknown container, ERR_BUSY while its
 * vTPM is being created/restarted, ERR_TPM for a failed vTPM, ERR_TOO_LARGE
 * for a container log over vtpmd's limit; vtpmd unreachable or silent is
 * ERR_INTERNAL / ERR_BUSY with the socket named).
 */
int vtpmc_quote(const char *socket, int timeout_ms, const char *container_id, const uint8_t *nonce, size_t nonce_len,
                Cscp__PcrSelection **pcrs, size_t n_pcrs, bool want_log, uint64_t log_offset, vtpmc_result_t *res);
void vtpmc_result_clear(vtpmc_result_t *res);
