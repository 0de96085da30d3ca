/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE tpmq
#include "error.h"
#include "log.h"
#include "pcr.h"
#include "tpmq.h"

struct tpmq_batch {
        uv_work_t work;
        tpmq_t *q;
        tpmq_job_t **jobs;
        size_t n;
        TPML_PCR_SELECTION sel;
        bool call; /* one job with a work function, not a quote */
        /* filled on the threadpool */
        int r;
        cscp_rot_quote_t quote;
        cscp_merkle_tree_t *tree;
};

static void start_next(tpmq_t *q);

int tpmq_host_leaf(uint16_t alg, const uint8_t *nonce, size_t nonce_len, uint8_t *ret)
{
        return cscp_merkle_leaf(alg, nonce, nonce_len, "", NULL, 0, NULL, 0, ret);
}

static void work_cb(uv_work_t *w)
{
        tpmq_batch_t *b = w->data;
        cscp_rot_t *rot = b->q->rot;
        uint16_t alg = cscp_rot_merkle_alg(rot);
        cscp_merkle_hash_t *leaves;

        if (b->call) {
                b->r = b->jobs[0]->work(b->jobs[0], cscp_rot_tpm(rot));
                return;
        }
        leaves = calloc(b->n, sizeof(*leaves));
        b->r = leaves ? 0 : -ENOMEM;
        for (size_t i = 0; b->r == 0 && i < b->n; i++)
                if (b->jobs[i]->have_leaf)
                        memcpy(leaves[i], b->jobs[i]->leaf, sizeof(b->jobs[i]->leaf));
                else
                        b->r = tpmq_host_leaf(alg, b->jobs[i]->nonce, b->jobs[i]->nonce_len, leaves[i]);
        if (b->r == 0)
                b->r = cscp_merkle_tree_new(alg, leaves, b->n, &b->tree);
        /* The root is exactly as long as the quote's caller data: 32 (SHA-256) or 64 (SHA-512) bytes. */
        if (b->r == 0)
                b->r = cscp_rot_quote(rot, cscp_merkle_tree_root(b->tree), cscp_rot_data_len(rot), &b->sel, &b->quote);
        free(leaves);
}

static void after_work_cb(uv_work_t *w, int status)
{
        tpmq_batch_t *b = w->data;
        tpmq_t *q = b->q;

        q->running = NULL;
        if (status < 0 && b->r == 0)
                b->r = status; /* cancelled: cannot happen for running work, but never report success */
        if (b->call) {
                b->jobs[0]->r = b->r;
                b->jobs[0]->done(b->jobs[0]);
                free(b->jobs);
                free(b);
                start_next(q);
                return;
        }
        if (b->r < 0)
                log_debug("batch of %zu: quote failed: %s", b->n, cscp_strerror(b->r));
        else {
                q->batches++;
                q->batched_jobs += b->n;
                if (b->n > q->largest_batch)
                        q->largest_batch = b->n;
                log_debug("batch of %zu challenges answered by one quote", b->n);
        }
        for (size_t i = 0; i < b->n; i++) {
                tpmq_job_t *job = b->jobs[i];
                job->r = b->r;
                if (job->r == 0)
                        job->r = cscp_rot_quote_dup(&b->quote, &job->quote);
                if (job->r == 0) {
                        job->batch_index = (uint32_t)i;
                        job->batch_count = (uint32_t)b->n;
                        job->r = cscp_merkle_tree_proof(b->tree, i, job->path, &job->path_len);
                }
                job->done(job);
        }
        cscp_rot_quote_clear(&b->quote);
        cscp_merkle_tree_free(b->tree);
        free(b->jobs);
        free(b);
        start_next(q);
}

static void fail_job(tpmq_job_t *job, int r)
{
        job->r = r;
        job->done(job);
}

/* Takes every waiting job whose selection equals the first one's (up to q->max_batch), in order. */
static tpmq_batch_t *take_batch(tpmq_t *q)
{
        tpmq_batch_t *b = calloc(1, sizeof(*b));
        tpmq_job_t **link, *job;
        size_t cap;

        if (!b)
                return NULL;
        cap = q->max_batch >= 1 && q->max_batch < TPMQ_MAX_BATCH ? q->max_batch : TPMQ_MAX_BATCH;
        if (q->waiting < cap)
                cap = q->waiting;
        b->jobs = calloc(cap ? cap : 1, sizeof(*b->jobs));
        if (!b->jobs) {
                free(b);
                return NULL;
        }
        b->q = q;
        b->sel = q->head->sel;
        b->call = q->head->work != NULL;
        q->tail = NULL;
        for (link = &q->head; (job = *link) && b->n < cap;) {
                /* A work job runs alone; quotes batch with quotes of the same selection. */
                if ((b->call ? b->n == 0 : !job->work) && memcmp(&job->sel, &b->sel, sizeof(b->sel)) == 0) {
                        *link = job->next;
                        job->next = NULL;
                        b->jobs[b->n++] = job;
                        q->waiting--;
                } else {
                        q->tail = job;
                        link = &job->next;
                }
        }
        /* Re-find the tail if jobs remain after the cut. */
        for (job = q->head; job; job = job->next)
                q->tail = job;
        return b;
}

static void start_next(tpmq_t *q)
{
        while (!q->running && q->head) {
                tpmq_batch_t *b = take_batch(q);
                int r;

                if (!b) {
                        tpmq_job_t *job = q->head;
                        q->head = job->next;
                        if (!q->head)
                                q->tail = NULL;
                        q->waiting--;
                        fail_job(job, -ENOMEM);
                        continue;
                }
                b->work.data = b;
                r = uv_queue_work(q->loop, &b->work, work_cb, after_work_cb);
                if (r < 0) {
                        for (size_t i = 0; i < b->n; i++)
                                fail_job(b->jobs[i], r);
                        free(b->jobs);
                        free(b);
                        continue;
                }
                q->running = b;
        }
}

void tpmq_init(tpmq_t *q, uv_loop_t *loop, cscp_rot_t *rot)
{
        memset(q, 0, sizeof(*q));
        q->loop = loop;
        q->rot = rot;
        q->max_batch = TPMQ_MAX_BATCH;
}

void tpmq_submit(tpmq_t *q, tpmq_job_t *job)
{
        job->q = q;
        job->next = NULL;
        job->r = 0;
        job->batch_index = job->batch_count = 0;
        job->path_len = 0;
        memset(&job->quote, 0, sizeof(job->quote));
        if (!job->work && cscp_rot_kind(q->rot) == CSCP_ROT_TDX)
                memset(&job->sel, 0, sizeof(job->sel)); /* ignored by a TD quote: all batch together */
        if (q->tail)
                q->tail->next = job;
        else
                q->head = job;
        q->tail = job;
        q->waiting++;
        start_next(q);
}

bool tpmq_idle(const tpmq_t *q)
{
        return !q->running && !q->head;
}
