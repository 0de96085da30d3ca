/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The warm pool (--pool N): N vTPMs manufactured ahead of time (key,
 * swtpm, EK, EK certificate, AK) so that Create only measures and binds.
 * A pool instance lives in <state>/instances/<uid> with meta state "pool"
 * and serves on <run>/vtpm-pool/<uid>/tpm.sock; Create moves its sockets
 * to <run>/vtpm/<id>/ and records the binding. Taking one starts a refill
 * in the background once that Create has settled and a little later
 * (pool_refill_soon): manufacturing (swtpm start, key generation, EK
 * certificate) is CPU work that would otherwise compete with the container
 * that is starting right then. A failed manufacture is retried after a pause.
 */
#include <stdio.h>

#define LOGMODULE pool
#include "core.h"
#include "error.h"
#include "log.h"

#define RETRY_MS  5000
#define REFILL_MS 100 /* after a Create settled: past the container's start */

static uv_timer_t retry_timer, refill_timer;
static bool retry_timer_open, refill_timer_open;

static void retry_cb(uv_timer_t *t)
{
        pool_refill(t->data);
}

void pool_init(vtpmd_t *d)
{
        uv_timer_init(d->loop, &retry_timer);
        retry_timer.data = d;
        retry_timer_open = true;
        uv_unref((uv_handle_t *)&retry_timer); /* never keeps the loop alive on its own */
        uv_timer_init(d->loop, &refill_timer);
        refill_timer.data = d;
        refill_timer_open = true;
        uv_unref((uv_handle_t *)&refill_timer);
}

void pool_refill_soon(vtpmd_t *d)
{
        if (!refill_timer_open || d->stopping) {
                pool_refill(d);
                return;
        }
        if (!uv_is_active((uv_handle_t *)&refill_timer))
                uv_timer_start(&refill_timer, retry_cb, REFILL_MS, 0);
}

void pool_close(vtpmd_t *d)
{
        (void)d;
        if (retry_timer_open) {
                uv_close((uv_handle_t *)&retry_timer, NULL);
                retry_timer_open = false;
        }
        if (refill_timer_open) {
                uv_close((uv_handle_t *)&refill_timer, NULL);
                refill_timer_open = false;
        }
}

instance_t *pool_take(vtpmd_t *d)
{
        for (instance_t *i = d->instances; i; i = i->next) {
                if (i->state == INST_POOL && !i->id[0]) {
                        d->pool_ready--;
                        return i;
                }
        }
        return NULL;
}

static void provisioned(instance_t *inst, int r)
{
        vtpmd_t *d = inst->d;

        d->pool_pending--;
        if (r < 0) {
                log_warn("pool: manufacturing a vTPM failed: %s; retrying in %d s", inst->err, RETRY_MS / 1000);
                control_discard(inst);
                if (retry_timer_open && !d->stopping)
                        uv_timer_start(&retry_timer, retry_cb, RETRY_MS, 0);
                return;
        }
        inst->state = INST_POOL;
        d->pool_ready++;
        log_info("pool: %s ready (%u/%u)", inst->uid, d->pool_ready, d->cfg->pool);
}

void pool_refill(vtpmd_t *d)
{
        while (!d->stopping && d->pool_ready + d->pool_pending < d->cfg->pool) {
                instance_t *inst = instance_new(d, NULL);
                char ep[PATH_MAX];

                if (!inst) {
                        log_error("pool: out of memory");
                        return;
                }
                vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->pool_run, inst->uid);
                instance_set_endpoint(inst, ep);
                registry_add(d, inst);
                d->pool_pending++;
                control_provision(inst, true, provisioned);
        }
}
