/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The host quote queue with group commit (design.md §3): root-of-trust round
 * trips (include/cscp/rot.h: a TPM or a TDX guest) run on the libuv
 * threadpool, one at a time (a TPM context is not thread-safe, and the TPM
 * itself is serial). While a quote is in flight, new challenges wait; when
 * it returns, every waiting challenge with the same PCR selection becomes the
 * next batch: one quote whose caller data (TPM extraData, TDX REPORTDATA) is
 * the Merkle root over the batch's leaves (include/cscp/merkle.h, in the
 * rot's hash: SHA-256 on a TPM, SHA-512 on TDX), and each job gets that quote
 * and its leaf's inclusion proof. On TDX the selection is ignored (a TD quote
 * always holds MRTD and RTMR0..3): every waiting challenge joins the batch.
 * No timer: an idle server quotes a single challenge at once (its root is
 * its leaf). `done` runs on the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "merkle.h"
#include "rot.h"
#include "tpm.h"

#define TPMQ_MAX_BATCH 1024

typedef struct tpmq_job tpmq_job_t;
typedef void (*tpmq_done_cb)(tpmq_job_t *job);

struct tpmq_job {
        struct tpmq *q;   /* private */
        tpmq_job_t *next; /* private */
        /* in */
        uint8_t nonce[64];
        size_t nonce_len;
        TPML_PCR_SELECTION sel;
        /* Set: `leaf` is this challenge's Merkle leaf in the rot's hash (a container challenge,
         * attestd/server.c); clear: the leaf is tpmq_host_leaf(nonce). */
        bool have_leaf;
        uint8_t leaf[CSCP_MERKLE_MAX_HASH];
        tpmq_done_cb done;
        void *data;
        /*
         * Set: not a challenge but a function to run on the TPM thread, alone,
         * between batches (enrollment; tpm backend only: its tpm argument is
         * cscp_rot_tpm, NULL on TDX). Its return value becomes r; nonce and
         * sel are unused; the quote and proof outputs stay empty.
         */
        int (*work)(tpmq_job_t *job, cscp_tpm_t *tpm);
        /* out (valid in done) */
        int r;
        cscp_rot_quote_t quote; /* the batch's quote (each job owns a copy) */
        uint32_t batch_index, batch_count;
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
        size_t path_len;
};

typedef struct tpmq_batch tpmq_batch_t;

typedef struct tpmq {
        uv_loop_t *loop;
        cscp_rot_t *rot;
        tpmq_job_t *head, *tail; /* waiting */
        tpmq_batch_t *running;
        size_t waiting;
        size_t max_batch; /* challenges per quote, 1..TPMQ_MAX_BATCH (tpmq_init: TPMQ_MAX_BATCH; 1 = no batching) */
        /* statistics (loop thread) */
        uint64_t batches, batched_jobs, largest_batch;
} tpmq_t;

void tpmq_init(tpmq_t *q, uv_loop_t *loop, cscp_rot_t *rot);
/* Queues a challenge; its done callback always runs exactly once. */
void tpmq_submit(tpmq_t *q, tpmq_job_t *job);
bool tpmq_idle(const tpmq_t *q);
/* The leaf of a host-only challenge (no container quote): merkle leaf over the nonce alone, hash alg. */
int tpmq_host_leaf(uint16_t alg, const uint8_t *nonce, size_t nonce_len, uint8_t *ret);
