/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#define LOGMODULE tpmq
#include "error.h"
#include "log.h"
#include "tpmq.h"

static void start_next(tpmq_t *q);

static void work_cb(uv_work_t *w)
{
        tpmq_job_t *job = w->data;

        job->r = cscp_tpm_quote(job->q->tpm, job->nonce, job->nonce_len, &job->sel, &job->quote);
}

static void after_work_cb(uv_work_t *w, int status)
{
        tpmq_job_t *job = w->data;
        tpmq_t *q = job->q;

        q->running = NULL;
        if (status < 0 && job->r == 0)
                job->r = status; /* cancelled: cannot happen for a running job, but never report success */
        if (job->r < 0)
                log_debug("quote failed: %s", cscp_strerror(job->r));
        job->done(job);
        start_next(q);
}

static void start_next(tpmq_t *q)
{
        tpmq_job_t *job;
        int r;

        while (!q->running && q->head) {
                job = q->head;
                q->head = job->next;
                if (!q->head)
                        q->tail = NULL;
                q->waiting--;
                job->next = NULL;
                job->work.data = job;
                r = uv_queue_work(q->loop, &job->work, work_cb, after_work_cb);
                if (r < 0) {
                        job->r = r;
                        job->done(job);
                        continue;
                }
                q->running = job;
        }
}

void tpmq_init(tpmq_t *q, uv_loop_t *loop, cscp_tpm_t *tpm)
{
        memset(q, 0, sizeof(*q));
        q->loop = loop;
        q->tpm = tpm;
}

void tpmq_submit(tpmq_t *q, tpmq_job_t *job)
{
        job->q = q;
        job->next = NULL;
        job->r = 0;
        memset(&job->quote, 0, sizeof(job->quote));
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
