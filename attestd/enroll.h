/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * attestd's half of enrollment (docs/protocol.md "Enrollment"): EnrollRequest
 * is answered with EnrollInfo{EK public, EK certificate, AK public}; Activate
 * with TPM2_ActivateCredential's result in Activated. The TPM work runs as a
 * tpmq work job (alone, between quote batches) on the TPM thread.
 *
 * The EK: the TCG default template (RSA-2048 L-1 or ECC P-256 L-2) of the
 * type whose certificate is in NV (the AK's type first, then the other);
 * without any certificate, the AK's type and an empty certificate. Found by
 * the first enrollment job and kept.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cscp.pb-c.h"
#include "tpm.h"
#include "tpmq.h"

typedef struct attestd_enroll {
        cscp_key_alg_t ak_alg; /* the EK type tried first, and the one used without any EK certificate */
        const uint8_t *ak_public;
        size_t ak_public_len;
        /* Written only on the TPM thread by enrollment jobs; read in their done callbacks (after them). */
        bool have_ek;
        cscp_key_alg_t ek_alg;
        uint8_t ek_public[sizeof(TPMT_PUBLIC)];
        size_t ek_public_len;
        uint8_t *ek_cert;
        size_t ek_cert_len;
} attestd_enroll_t;

void attestd_enroll_init(attestd_enroll_t *e, cscp_key_alg_t ak_alg, const uint8_t *ak_public, size_t ak_public_len);
void attestd_enroll_clear(attestd_enroll_t *e);

/*
 * The answer: frame (packed, with its length prefix; ownership passes) or,
 * when frame is NULL, an Error to send with code and msg.
 */
typedef void (*attestd_enroll_reply_cb)(void *ctx, uint8_t *frame, size_t len, Cscp__ErrorCode code, const char *msg);

/*
 * Answers f, an EnrollRequest or an Activate. reply runs exactly once on the
 * loop thread: before this returns for a request refused outright, else when
 * the TPM work is done.
 */
void attestd_enroll_handle(attestd_enroll_t *e, tpmq_t *q, const Cscp__Frame *f, attestd_enroll_reply_cb reply,
                           void *ctx);
