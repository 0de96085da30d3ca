/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The TPM queue: every TPM round trip runs on the libuv threadpool, one at a
 * time (a TPM context is not thread-safe, and the TPM itself is serial).
 * Jobs wait in FIFO order; `done` runs on the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tpm.h"

typedef struct tpmq_job tpmq_job_t;
typedef void (*tpmq_done_cb)(tpmq_job_t *job);

struct tpmq_job {
        uv_work_t work;   /* private */
        struct tpmq *q;   /* private */
        tpmq_job_t *next; /* private */
        /* in */
        uint8_t nonce[64];
        size_t nonce_len;
        TPML_PCR_SELECTION sel;
        tpmq_done_cb done;
        void *data;
        /* out (valid in done) */
        int r;
        cscp_tpm_quote_t quote;
};

typedef struct tpmq {
        uv_loop_t *loop;
        cscp_tpm_t *tpm;
        tpmq_job_t *head, *tail; /* waiting */
        tpmq_job_t *running;
        size_t waiting;
} tpmq_t;

void tpmq_init(tpmq_t *q, uv_loop_t *loop, cscp_tpm_t *tpm);
/* Queues a quote job; its done callback always runs exactly once. */
void tpmq_submit(tpmq_t *q, tpmq_job_t *job);
bool tpmq_idle(const tpmq_t *q);
