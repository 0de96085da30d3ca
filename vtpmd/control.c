/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request handlers and the supervisor. Checks that need only the registry
 * run on the loop thread; every TPM round trip and every fsync runs on the
 * libuv threadpool (uv_queue_work). Two locks order the workers: the host
 * log lock (one host TPM operation at a time) and each instance's lock (one
 * conversation with a vTPM at a time, so a Measure never interleaves with a
 * re-extension).
 *
 * Instance life cycle (loop thread):
 *   Create:  pool_take -> BINDING, or new -> NEW -> provision -> BINDING;
 *            bind work (endpoint, container log + vtpm-bind durable) -> answer, READY -> extends, meta ready
 *   Destroy: READY/FAILED -> DESTROYING -> stop swtpm -> vtpm-destroy, wipe/keep -> gone -> answer
 *   Death:   READY/POOL -> RESTARTING -> spawn -> wait, re-extend the log -> READY/POOL
 *            (more than RESTART_BURST deaths in RESTART_WINDOW_MS -> FAILED)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define LOGMODULE control
#include "core.h"
#include "endpoint.h"
#include "error.h"
#include "eventlog.h"
#include "log.h"
#include "pcr.h"
#include "util.h"

#define RESTART_BURST     5
#define RESTART_WINDOW_MS 60000

typedef struct job {
        uv_work_t w;
        vtpmd_t *d;
        instance_t *inst;
        Vtpmd__VtpmRequest *req;
        control_reply_cb reply;
        void *conn;
        int r;
        Vtpmd__ErrorCode code;
        char msg[384];
        uint64_t t0;
        /* Create */
        char endpoint[PATH_MAX], sock[PATH_MAX], ctrl[PATH_MAX], tcti[PATH_MAX + 16];
        bool bind_logged;
        uv_async_t ack;           /* the worker: "durable, acknowledge now" (the extends follow) */
        bool ack_open, acked;     /* loop thread */
        bool durable;             /* worker, read by the loop after the async */
        int settle_r;             /* worker: the extends after the acknowledgement */
        char settle_msg[256];     /* worker */
        unsigned settle_delay_ms; /* CSCP_VTPMD_TEST_SETTLE_DELAY_MS (tests only) */
        const char *crash_at;     /* CSCP_VTPMD_TEST_CRASH_AT (tests only): see crash_point() */
        uint64_t us_start, us_log, us_bind, us_acked, us_host, us_vtpm, us_meta; /* µs since t0_us */
        uint64_t t0_us;
        struct job *next; /* parked on a settling instance (inst->waiters) */
        /* Quote */
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t quote;
        uint8_t *qlog; /* with want_log: the container log as read after the quote (freed by quote_after) */
        size_t qlog_start, qlog_len;
        /* Destroy */
        bool keep;
        char kept[PATH_MAX];
        /* provisioning */
        bool for_pool;
        instance_cb cb;
        /* supervision: a re-adopted swtpm that was not restarted by us */
        bool adopted;
} job_t;

static uint64_t realtime_s(void)
{
        return (uint64_t)time(NULL);
}

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- jobs ----------------------------------------------------------------- */

int control_queue(vtpmd_t *d, uv_work_t *w, uv_work_cb work, uv_after_work_cb after)
{
        int r = uv_queue_work(d->loop, w, work, after);
        if (r == 0)
                d->jobs++;
        return r;
}

void control_job_done(vtpmd_t *d)
{
        d->jobs--;
        if (d->stopping && d->jobs == 0)
                control_stop_instances(d);
}

static job_t *job_new(vtpmd_t *d, Vtpmd__VtpmRequest *req, control_reply_cb reply, void *conn)
{
        job_t *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->d = d;
        j->req = req;
        j->reply = reply;
        j->conn = conn;
        j->w.data = j;
        j->t0 = instance_now_ms();
        j->t0_us = mono_us();
        return j;
}

static void job_free(job_t *j)
{
        if (!j)
                return;
        if (j->req)
                vtpmd__vtpm_request__free_unpacked(j->req, NULL);
        cscp_tpm_quote_clear(&j->quote);
        if (j->inst)
                instance_unref(j->inst);
        free(j);
}

Vtpmd__ErrorCode control_error_code(int r)
{
        switch (r) {
        case -ENOSPC:
        case -EDQUOT:
                return VTPMD__ERROR_CODE__ERR_NO_SPACE;
        case CSCP_E_TPM:
                return VTPMD__ERROR_CODE__ERR_TPM;
        case CSCP_E_TIMEOUT:
        case CSCP_E_UNSUPPORTED:
                return VTPMD__ERROR_CODE__ERR_SWTPM;
        case CSCP_E_TOO_BIG:
                return VTPMD__ERROR_CODE__ERR_TOO_LARGE;
        case -EINVAL:
        case CSCP_E_PROTO:
        case CSCP_E_PCRSEL:
        case CSCP_E_NONCE:
                return VTPMD__ERROR_CODE__ERR_BAD_REQUEST;
        default:
                return VTPMD__ERROR_CODE__ERR_INTERNAL;
        }
}

static void reply_error(control_reply_cb reply, void *conn, Vtpmd__ErrorCode code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void reply_error(control_reply_cb reply, void *conn, Vtpmd__ErrorCode code, const char *fmt, ...)
{
        char msg[512];
        uint8_t *buf = NULL;
        size_t len = 0;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_info("request refused (%s): %s", vtpmd_error_code_name(code), msg);
        if (vtpmd_error_pack(code, msg, &buf, &len) < 0)
                buf = NULL;
        reply(conn, buf, len);
}

static void reply_msg(control_reply_cb reply, void *conn, Vtpmd__VtpmResponse *resp)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int r = vtpmd_response_pack(resp, 64u * 1024 * 1024, &buf, &len);

        if (r < 0) {
                reply_error(reply, conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot encode the answer: %s",
                            cscp_strerror(r));
                return;
        }
        reply(conn, buf, len);
}

static void fill_info(const instance_t *inst, Vtpmd__Instance *info)
{
        vtpmd__instance__init(info);
        info->container_id = (char *)inst->id;
        info->uid = (char *)inst->uid;
        info->state = (char *)instance_state_name(inst->state);
        info->pid = inst->pid > 0 ? (uint32_t)inst->pid : 0;
        info->socket = (char *)inst->sock;
        info->state_dir = (char *)inst->dir;
        info->log = (char *)inst->log;
        info->restarts = inst->restarts;
        if (inst->have_ident) {
                info->ek_sha256 = (ProtobufCBinaryData){.data = (uint8_t *)inst->ident.ek_sha256, .len = 32};
                info->ak_name =
                        (ProtobufCBinaryData){.data = (uint8_t *)inst->ident.ak_name, .len = inst->ident.ak_name_len};
        }
        info->from_pool = inst->from_pool;
        info->created = inst->created;
        if (inst->have_proxy && inst->ep) {
                info->proxy_device = (char *)inst->proxy_dev;
                info->proxy_major = inst->proxy_major;
                info->proxy_minor = inst->proxy_minor;
                info->proxy_rm_device = (char *)inst->proxy_rm_dev;
                info->proxy_rm_major = inst->proxy_rm_major;
                info->proxy_rm_minor = inst->proxy_rm_minor;
        }
}

/* ---- host log ------------------------------------------------------------ */

/* With pending: append and fsync only, and keep d->hostlog_lock (hostlog_extend_pending + unlock follow). */
static int host_event(vtpmd_t *d, const char *event, const instance_t *inst, hostlog_pending_t *pending)
{
        uint8_t t[8];
        uint64_t now = realtime_s();
        cscp_cm_field_value_t f[5];
        size_t n = 0;
        int r;

        for (int i = 0; i < 8; i++)
                t[i] = (uint8_t)(now >> (56 - 8 * i));
        f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_EVENT, event, strlen(event)};
        f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_CONTAINER_ID, inst->id, strlen(inst->id)};
        if (inst->have_ident) {
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_VEK_SHA256, inst->ident.ek_sha256, 32};
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_VAK_NAME, inst->ident.ak_name, inst->ident.ak_name_len};
        }
        f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_TIME, t, sizeof(t)};
        uv_mutex_lock(&d->hostlog_lock);
        if (pending) {
                r = hostlog_append_deferred(d->hostlog, CSCP_CM_CONTAINER, f, n, pending);
                if (r == 0)
                        return 0; /* still locked */
        } else {
                r = hostlog_append(d->hostlog, CSCP_CM_CONTAINER, f, n);
        }
        uv_mutex_unlock(&d->hostlog_lock);
        return r;
}

int control_host_event(vtpmd_t *d, const char *event, const instance_t *inst)
{
        return host_event(d, event, inst, NULL);
}

/* The extend of a record host_event(..., pending) wrote; drops d->hostlog_lock. */
static int host_event_extend(vtpmd_t *d, const hostlog_pending_t *pending)
{
        int r = hostlog_extend_pending(d->hostlog, pending);

        uv_mutex_unlock(&d->hostlog_lock);
        return r;
}

/* ---- discard (never acknowledged instances) ------------------------------ */

static void discard_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;

        (void)unlink(inst->meta);
        (void)instance_rm_rf(inst->dir);
        (void)instance_rm_rf(inst->endpoint);
}

static void discard_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;

        (void)status;
        registry_remove(d, j->inst);
        instance_release(j->inst);
        job_free(j);
        control_job_done(d);
}

static void discard_stopped(instance_t *inst, int r)
{
        vtpmd_t *d = inst->d;
        job_t *j = job_new(d, NULL, NULL, NULL);

        (void)r;
        if (j) {
                instance_ref(inst);
                j->inst = inst; /* before queueing: the worker may run at once */
                if (control_queue(d, &j->w, discard_work, discard_after) == 0)
                        return;
                job_free(j);
        }
        log_error("%s: cannot queue the wipe; its directory stays (wiped at next start)", inst->uid);
        registry_remove(d, inst);
        instance_release(inst);
}

void control_discard(instance_t *inst)
{
        inst->state = INST_DESTROYING;
        instance_stop(inst, discard_stopped);
}

/* ---- provisioning ----------------------------------------------------------- */

static void prov_prepare_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        uint8_t secret[VTPMD_SECRET_LEN];

        if (mkdir(inst->dir, 0700) < 0) {
                j->r = -errno;
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot create %s: %s", inst->dir, strerror(errno));
                return;
        }
        j->r = registry_save(inst, INST_NEW);
        if (j->r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot write %s: %s", inst->meta, cscp_strerror(j->r));
                return;
        }
        if (RAND_priv_bytes(secret, sizeof(secret)) != 1) {
                j->r = CSCP_E_CRYPTO;
                vtpmd_fmt(j->msg, sizeof(j->msg), "no random bytes for the state key");
                return;
        }
        j->r = keys_secret_save(j->d->master, inst->uid, secret, inst->keyfile);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (j->r < 0)
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot store the wrapped state key: %s", cscp_strerror(j->r));
}

static void prov_manufacture_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        const vtpmd_config_t *cfg = j->d->cfg;
        uint8_t secret[VTPMD_SECRET_LEN];
        vtpm_identity_t id = {0};

        j->r = instance_wait_ready(inst, cfg->swtpm_start_timeout_ms);
        if (j->r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "swtpm did not come up on %s within %u ms (see %s)", inst->sock,
                          cfg->swtpm_start_timeout_ms, inst->swtpm_log);
                return;
        }
        j->r = keys_secret_load(j->d->master, inst->uid, inst->keyfile, secret);
        if (j->r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot unwrap the instance secret: %s", cscp_strerror(j->r));
                return;
        }
        vtpm_manufacture_opts_t o = {
                .ek_alg = cfg->ek_alg,
                .ca_cert = cfg->vtpm_ca,
                .ca_key = cfg->vtpm_ca_key,
                .serial_label = inst->uid,
                .platform_auth = secret + VTPMD_STATE_KEY_LEN,
        };
        uv_mutex_lock(&inst->lock);
        (void)endpoint_tpm_acquire(inst); /* nothing of a client loaded while vtpmd talks to swtpm */
        j->r = vtpm_manufacture(inst->tcti, &o, &id);
        uv_mutex_unlock(&inst->lock);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (j->r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "manufacture failed: %s", cscp_strerror(j->r));
                return;
        }
        j->r = vtpm_identity_save(&id, inst->identity);
        if (j->r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot save the identity: %s", cscp_strerror(j->r));
                vtpm_identity_clear(&id);
                return;
        }
        if (j->for_pool) {
                j->r = registry_save(inst, INST_POOL);
                if (j->r < 0) {
                        vtpmd_fmt(j->msg, sizeof(j->msg), "cannot write %s: %s", inst->meta, cscp_strerror(j->r));
                        vtpm_identity_clear(&id);
                        return;
                }
        }
        /* The loop thread does not look at ident while the instance is NEW. */
        inst->ident = id;
        inst->have_ident = true;
}

static void prov_finish(job_t *j, int r)
{
        instance_t *inst = j->inst;
        instance_cb cb = j->cb;
        vtpmd_t *d = j->d;

        if (r < 0)
                vtpmd_fmt(inst->err, sizeof(inst->err), "%s", j->msg[0] ? j->msg : cscp_strerror(r));
        j->inst = NULL;
        job_free(j);
        cb(inst, r);
        instance_unref(inst);
        control_job_done(d);
}

static void prov_manufacture_after(uv_work_t *w, int status)
{
        job_t *j = w->data;

        prov_finish(j, status < 0 ? status : j->r);
}

static void prov_prepare_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        vtpmd_t *d = j->d;
        int r = status < 0 ? status : j->r;

        if (r == 0 && d->stopping) {
                r = -ECANCELED;
                vtpmd_fmt(j->msg, sizeof(j->msg), "vtpmd is stopping");
        }
        if (r == 0) {
                r = instance_spawn(inst, j->msg, sizeof(j->msg));
                if (r == 0) {
                        j->r = 0;
                        if (control_queue(d, &j->w, prov_manufacture_work, prov_manufacture_after) == 0) {
                                control_job_done(d); /* this stage's count; the new one counts itself */
                                return;
                        }
                        r = -ENOMEM;
                }
        }
        prov_finish(j, r);
}

void control_provision(instance_t *inst, bool for_pool, instance_cb cb)
{
        vtpmd_t *d = inst->d;
        job_t *j = job_new(d, NULL, NULL, NULL);

        inst->state = INST_NEW;
        inst->created = realtime_s();
        if (!j) {
                vtpmd_fmt(inst->err, sizeof(inst->err), "out of memory");
                cb(inst, -ENOMEM);
                return;
        }
        instance_ref(inst);
        j->inst = inst;
        j->for_pool = for_pool;
        j->cb = cb;
        if (control_queue(d, &j->w, prov_prepare_work, prov_prepare_after) < 0) {
                j->inst = NULL;
                job_free(j);
                vtpmd_fmt(inst->err, sizeof(inst->err), "cannot queue work");
                cb(inst, -ENOMEM);
                instance_unref(inst);
        }
}

/* ---- Create ---------------------------------------------------------------- */

static void create_fail(job_t *j, Vtpmd__ErrorCode code, const char *msg)
{
        vtpmd_t *d = j->d;
        instance_t *inst = j->inst;

        reply_error(j->reply, j->conn, code, "Create %s: %s", j->req->create->container_id, msg);
        d->n_bound--;
        inst->id[0] = '\0';
        control_discard(inst);
        if (inst->from_pool)
                pool_refill_soon(d);
}

typedef struct log_sync {
        vtpm_pending_t *vp;
        int r;
} log_sync_t;

static void log_sync_thread(void *arg)
{
        log_sync_t *s = arg;

        s->r = vtpm_pending_sync(s->vp);
}

/*
 * Tests only (CSCP_VTPMD_TEST_CRASH_AT, read at Create): vtpmd kills itself
 * at a named point of a Create (or Destroy), so the crash tests hit each
 * window exactly. "torn-log-after-bind" also cuts the container log in half
 * first: what a machine crash does to a log whose fsync had not returned.
 */
static void crash_point(const char *crash_at, const char *point, const char *log_path)
{
        if (!crash_at || strcmp(crash_at, point) != 0)
                return;
        if (log_path) {
                struct stat st;
                if (stat(log_path, &st) == 0 && truncate(log_path, st.st_size / 2) < 0)
                        log_warn("test hook: cannot cut %s: %s", log_path, strerror(errno));
        }
        log_warn("test hook %s: killing vtpmd at %s", "CSCP_VTPMD_TEST_CRASH_AT", point);
        raise(SIGKILL);
}

/*
 * Create, on a worker, holding the instance lock (so the endpoint, Quote,
 * Measure and restarts wait for all of it):
 *   1. the container records (annotations included) appended to its log, one
 *      write; its fsync and the vtpm-bind record's append + fsync to the host
 *      log at once (the host log lock stays held)  -- durable: acknowledged
 *   2. the host PCR extend of vtpm-bind (host log lock released), then the
 *      container records into the vTPM's PCRs  -- settled
 *   3. (lock released) the instance record: meta "ready"
 * The commit point is the vtpm-bind record in the host log together with a
 * complete container log (whole up to its "create" record): the instance record is
 * no longer on the acknowledged path. A stop after 1 and before 3 leaves meta
 * "pool" (or "new") with a bind record: registry_recover finds the record
 * (host log, by the vTPM's EK) and the complete log and binds the instance
 * again; a bind record with an incomplete log (never acknowledged) gets a
 * vtpm-destroy and the instance is wiped; no bind record, no binding.
 * Write-ahead holds at every point: a stop after 1 leaves logs ahead of PCRs,
 * which hostlog_open (one record) and vtpm_log_reextend (any suffix, at the
 * instance's re-adoption) extend. Between 1 and 2 the instance is READY but
 * settling: requests that observe it are parked (control_handle).
 */
static void bind_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        const Vtpmd__Create *c = j->req->create;
        const Vtpmd__Measurements *ms = c->measurements;
        vtpm_create_measurements_t m = {.container_id = c->container_id};
        vtpm_pending_t *vp = NULL;
        hostlog_pending_t hp;
        log_sync_t ls;
        uv_thread_t th;
        bool th_started = false, locked;
        const char **ann = NULL;
        int r;

        j->us_start = mono_us() - j->t0_us;
        uv_mutex_lock(&inst->lock);
        locked = true;
        (void)endpoint_tpm_acquire(inst); /* nothing of a client loaded while vtpmd talks to swtpm */
        /* swtpm's sockets are private and stay put; the container's endpoint was opened by create_bind. */
        if (ms) {
                m.runtime_name = ms->runtime_name && ms->runtime_name[0] ? ms->runtime_name : NULL;
                m.runtime_version = ms->runtime_version && ms->runtime_version[0] ? ms->runtime_version : NULL;
                m.config_digest = ms->config_digest && ms->config_digest[0] ? ms->config_digest : NULL;
                m.args = (const char *const *)ms->args;
                m.n_args = ms->n_args;
                m.env = (const char *const *)ms->env;
                m.n_env = ms->n_env;
                m.layers = (const char *const *)ms->layers;
                m.n_layers = ms->n_layers;
                m.image_name = ms->image_name && ms->image_name[0] ? ms->image_name : NULL;
                if (ms->n_annotations) {
                        ann = calloc(2 * ms->n_annotations, sizeof(*ann));
                        if (!ann) {
                                r = -ENOMEM;
                                vtpmd_fmt(j->msg, sizeof(j->msg), "out of memory");
                                goto out;
                        }
                        for (size_t i = 0; i < ms->n_annotations; i++) {
                                ann[i] = ms->annotations[i]->key;
                                ann[ms->n_annotations + i] = ms->annotations[i]->value;
                        }
                        m.ann_keys = ann;
                        m.ann_values = ann + ms->n_annotations;
                        m.n_ann = ms->n_annotations;
                }
        }
        if (!inst->banks[0]) { /* once per instance: the allocation does not change */
                r = vtpm_pcr_banks(j->tcti, inst->banks);
                if (r < 0) {
                        inst->banks[0] = 0;
                        vtpmd_fmt(j->msg, sizeof(j->msg), "cannot read the vTPM's PCR banks: %s", cscp_strerror(r));
                        goto out;
                }
        }
        r = vtpm_measure_create_log(inst->log, inst->banks, &m, &vp);
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "writing the container log failed: %s", cscp_strerror(r));
                goto out;
        }
        j->us_log = mono_us() - j->t0_us;
        crash_point(j->crash_at, "before-bind", NULL);
        /* The container log's fsync and the host record's append + fsync at once: each file gets its own fsync,
         * and the filesystem can serve both with one journal commit and one device flush. */
        ls = (log_sync_t){.vp = vp};
        if (uv_thread_create(&th, log_sync_thread, &ls) == 0)
                th_started = true;
        else
                ls.r = vtpm_pending_sync(vp);
        r = host_event(j->d, "vtpm-bind", inst, &hp);
        if (th_started)
                uv_thread_join(&th);
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "appending vtpm-bind to the host log failed: %s", cscp_strerror(r));
                goto out;
        }
        j->bind_logged = true;
        j->us_bind = mono_us() - j->t0_us;
        r = ls.r;
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot fsync the container log %s: %s", inst->log, cscp_strerror(r));
                /* Never acknowledged: undo the binding in the host log too (after its extend: in log order). */
                if (host_event_extend(j->d, &hp) < 0 || control_host_event(j->d, "vtpm-destroy", inst) < 0)
                        log_error("%s: vtpm-bind logged but vtpm-destroy could not be", inst->uid);
                goto out;
        }
        crash_point(j->crash_at, "torn-log-after-bind", inst->log);
        crash_point(j->crash_at, "before-ack", NULL);
        /* Durable: acknowledge now (the loop answers), extend right after, still holding the lock. */
        j->durable = true;
        uv_async_send(&j->ack);
        if (j->settle_delay_ms)
                nanosleep(&(struct timespec){.tv_sec = j->settle_delay_ms / 1000,
                                             .tv_nsec = (long)(j->settle_delay_ms % 1000) * 1000000},
                          NULL);
        j->settle_r = host_event_extend(j->d, &hp);
        if (j->settle_r < 0)
                vtpmd_fmt(j->settle_msg, sizeof(j->settle_msg),
                          "extending vtpm-bind into the host PCR failed: %s (reconciled at the next start)",
                          cscp_strerror(j->settle_r));
        j->us_host = mono_us() - j->t0_us;
        r = vtpm_pending_extend(j->tcti, vp);
        if (r < 0 && j->settle_r == 0) {
                j->settle_r = r;
                vtpmd_fmt(j->settle_msg, sizeof(j->settle_msg),
                          "extending the container records into the vTPM failed: %s", cscp_strerror(r));
        }
        j->us_vtpm = mono_us() - j->t0_us;
        vtpm_pending_free(vp);
        vp = NULL;
        uv_mutex_unlock(&inst->lock);
        locked = false;
        if (j->crash_at && strcmp(j->crash_at, "before-meta") == 0) {
                /* The point is after the answer: let the loop send it first (tests only). */
                for (int i = 0; i < 500 && !__atomic_load_n(&j->acked, __ATOMIC_ACQUIRE); i++)
                        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
                nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
                crash_point(j->crash_at, "before-meta", NULL);
        }
        /* The instance record, off the acknowledged path: recovery rebuilds it from the host log if this is lost. */
        /* Tests only: "skip-meta" leaves the record unwritten, as a failed write would. */
        r = j->crash_at && strcmp(j->crash_at, "skip-meta") == 0 ? -EIO : registry_save(inst, INST_READY);
        if (r < 0)
                log_warn("%s: cannot write %s: %s (the vtpm-bind record binds %s; the next start recovers it)",
                         inst->uid, inst->meta, cscp_strerror(r), inst->id);
        j->us_meta = mono_us() - j->t0_us;
        r = 0;
out:
        vtpm_pending_free(vp);
        if (locked)
                uv_mutex_unlock(&inst->lock);
        free(ann);
        j->r = r;
}

static void job_closed(uv_handle_t *h)
{
        job_free(h->data);
}

/* Frees a job whose ack handle may be open (closed first). */
static void job_close(job_t *j)
{
        if (j->ack_open) {
                j->ack_open = false;
                j->ack.data = j;
                uv_close((uv_handle_t *)&j->ack, job_closed);
                return;
        }
        job_free(j);
}

static void dispatch(job_t *j);

/* Loop: the instance settled; the requests parked on it run now, in arrival order. */
static void waiters_release(instance_t *inst)
{
        job_t *w = inst->waiters;

        inst->waiters = NULL;
        while (w) {
                job_t *next = w->next;

                w->next = NULL;
                dispatch(w);
                w = next;
        }
}

/* Loop: the Create's records are durable: answer it. */
static void create_ack(job_t *j)
{
        instance_t *inst = j->inst;
        Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
        Vtpmd__Created cr = VTPMD__CREATED__INIT;
        Vtpmd__Instance info;

        if (j->acked)
                return;
        __atomic_store_n(&j->acked, true, __ATOMIC_RELEASE); /* read by a crash test hook on the worker */
        j->us_acked = mono_us() - j->t0_us;
        inst->state = INST_READY;
        inst->settling = true;
        fill_info(inst, &info);
        cr.instance = &info;
        cr.ek_certificate = (ProtobufCBinaryData){.data = inst->ident.ek_cert, .len = inst->ident.ek_cert_len};
        cr.ak_public = (ProtobufCBinaryData){.data = inst->ident.ak_public, .len = inst->ident.ak_public_len};
        cr.elapsed_us = j->us_acked;
        cr.annotations_measured =
                j->req->create->measurements ? (uint32_t)j->req->create->measurements->n_annotations : 0;
        resp.body_case = VTPMD__VTPM_RESPONSE__BODY_CREATED;
        resp.created = &cr;
        reply_msg(j->reply, j->conn, &resp);
}

static void ack_cb(uv_async_t *a)
{
        job_t *j = a->data;

        if (j->durable)
                create_ack(j);
}

static void bind_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;
        instance_t *inst = j->inst;
        int r = status < 0 ? status : j->r;

        if (!j->acked && (r < 0 || !j->durable)) {
                create_fail(j, control_error_code(r < 0 ? r : -EIO), j->msg);
                goto out;
        }
        create_ack(j); /* when the async has not been seen yet */
        inst->settling = false;
        if (j->settle_r < 0) {
                /* Acknowledged, logged, not (all) extended: the PCRs lag the logs until a restart re-extends. */
                log_error("%s: vTPM for %s: %s", inst->uid, inst->id, j->settle_msg);
                if (inst->state == INST_READY)
                        inst->state = INST_FAILED;
        }
        log_info("%s: vTPM for %s ready (%s, swtpm %d): acknowledged after %.1f ms (worker start %.1f, container log "
                 "write %.1f, vtpm-bind + container log fsyncs %.1f), settled after %.1f ms (host PCR %.1f, vTPM "
                 "PCRs %.1f), instance record after %.1f ms",
                 inst->uid, inst->id, inst->from_pool ? "from the pool" : "manufactured now", (int)inst->pid,
                 j->us_acked / 1e3, j->us_start / 1e3, (j->us_log - j->us_start) / 1e3, (j->us_bind - j->us_log) / 1e3,
                 j->us_vtpm / 1e3, (j->us_host - j->us_bind) / 1e3, (j->us_vtpm - j->us_host) / 1e3, j->us_meta / 1e3);
        waiters_release(inst);
        if (inst->from_pool)
                pool_refill_soon(d);
out:
        job_close(j);
        control_job_done(d);
}

static void create_bind(job_t *j)
{
        instance_t *inst = j->inst;
        vtpmd_t *d = j->d;
        const char *id = j->req->create->container_id;
        const char *delay = getenv("CSCP_VTPMD_TEST_SETTLE_DELAY_MS");
        const char *crash_at = getenv("CSCP_VTPMD_TEST_CRASH_AT");

        inst->state = INST_BINDING;
        vtpmd_fmt(j->endpoint, sizeof(j->endpoint), "%s/%s", d->vtpm_run, id);
        vtpmd_fmt(j->sock, sizeof(j->sock), "%s/tpm.sock", j->endpoint);
        vtpmd_fmt(j->ctrl, sizeof(j->ctrl), "%s/tpm.sock.ctrl", j->endpoint);
        vtpmd_fmt(j->tcti, sizeof(j->tcti), "%s", inst->tcti); /* vtpmd's own: swtpm's private socket */
        /* Tests only: widen the window between the acknowledgement and the extends (a crash test aims at it). */
        if (delay && *delay) {
                unsigned long ms = strtoul(delay, NULL, 10);
                j->settle_delay_ms = ms > 60000 ? 60000 : (unsigned)ms;
        }
        j->crash_at = crash_at && *crash_at ? crash_at : NULL;
        /* The container's endpoint (endpoint.c) in front of the vTPM, before the binding is recorded. */
        instance_set_endpoint(inst, j->endpoint);
        if (endpoint_open(inst) < 0) {
                create_fail(j, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot listen on the container's endpoint");
                job_free(j);
                return;
        }
        if (d->cfg->frontend_proxy) {
                char dev[64];
                int r = proxy_open(inst, dev, sizeof(dev));
                if (r < 0) {
                        create_fail(j, VTPMD__ERROR_CODE__ERR_INTERNAL, "--frontend vtpm-proxy: no /dev/tpmN");
                        job_free(j);
                        return;
                }
        }
        if (uv_async_init(d->loop, &j->ack, ack_cb) < 0) {
                create_fail(j, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
                job_free(j);
                return;
        }
        j->ack.data = j;
        j->ack_open = true;
        if (control_queue(d, &j->w, bind_work, bind_after) < 0) {
                create_fail(j, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
                job_close(j);
        }
}

static void create_provisioned(instance_t *inst, int r)
{
        job_t *j = inst->pending;

        inst->pending = NULL;
        if (r < 0) {
                Vtpmd__ErrorCode code = control_error_code(r);
                if (r == CSCP_E_UNSUPPORTED || r == CSCP_E_TIMEOUT || r == -ECANCELED)
                        code = VTPMD__ERROR_CODE__ERR_SWTPM;
                create_fail(j, code, inst->err);
                job_free(j);
                return;
        }
        create_bind(j);
}

static void handle_create(job_t *j)
{
        vtpmd_t *d = j->d;
        const char *id = j->req->create->container_id;
        instance_t *inst;

        if (vtpmd_container_id_check(id, d->id_max) < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST,
                            "invalid container id '%.80s': 1..%zu characters [A-Za-z0-9_.+-], starting with a "
                            "letter or digit",
                            id, d->id_max);
                job_free(j);
                return;
        }
        inst = registry_find(d, id);
        if (inst) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_EXISTS, "container %s already has a vTPM (%s)",
                            id, instance_state_name(inst->state));
                job_free(j);
                return;
        }
        if (d->n_bound >= d->cfg->max_instances) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_LIMIT,
                            "instance limit reached (%u vTPMs; --max-instances)", d->cfg->max_instances);
                job_free(j);
                return;
        }
        inst = pool_take(d);
        if (inst) {
                inst->from_pool = true;
                vtpmd_fmt(inst->id, sizeof(inst->id), "%s", id);
                instance_ref(inst);
                j->inst = inst;
                d->n_bound++;
                create_bind(j); /* the refill follows when it settled (bind_after) */
                return;
        }
        inst = instance_new(d, NULL);
        if (!inst) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "out of memory");
                job_free(j);
                return;
        }
        vtpmd_fmt(inst->id, sizeof(inst->id), "%s", id);
        {
                char ep[PATH_MAX];
                vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->vtpm_run, id);
                instance_set_endpoint(inst, ep);
        }
        registry_add(d, inst);
        d->n_bound++;
        instance_ref(inst);
        j->inst = inst;
        inst->pending = j;
        control_provision(inst, false, create_provisioned);
}

/* ---- Destroy --------------------------------------------------------------- */

static void destroy_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        int r;

        r = control_host_event(j->d, "vtpm-destroy", inst);
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg),
                          "the vTPM is stopped but vtpm-destroy could not be recorded in the host log (%s); its "
                          "state is kept; retry Destroy",
                          cscp_strerror(r));
                j->r = r;
                return;
        }
        crash_point(getenv("CSCP_VTPMD_TEST_CRASH_AT"), "destroy-after-record", NULL);
        /* From here on the instance is gone for the registry: meta first, so a crash cannot resurrect it. */
        if (j->keep) {
                if (mkdir(j->d->kept_root, 0700) < 0 && errno != EEXIST) {
                        j->r = -errno;
                        vtpmd_fmt(j->msg, sizeof(j->msg), "cannot create %s: %s", j->d->kept_root, strerror(errno));
                        return;
                }
                vtpmd_fmt(j->kept, sizeof(j->kept), "%s/%s.%s", j->d->kept_root, inst->id, inst->uid);
                (void)unlink(inst->meta);
                if (rename(inst->dir, j->kept) < 0) {
                        j->r = -errno;
                        vtpmd_fmt(j->msg, sizeof(j->msg), "cannot move the state to %s: %s", j->kept, strerror(errno));
                        return;
                }
        } else {
                (void)unlink(inst->meta);
                r = instance_rm_rf(inst->dir);
                if (r < 0)
                        log_warn("%s: wiping %s: %s", inst->uid, inst->dir, strerror(-r));
        }
        (void)instance_rm_rf(inst->endpoint);
        j->r = 0;
}

static void destroy_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;
        instance_t *inst = j->inst;
        int r = status < 0 ? status : j->r;

        if (r < 0) {
                inst->state = INST_FAILED;
                reply_error(j->reply, j->conn, control_error_code(r), "Destroy %s: %s", inst->id, j->msg);
        } else {
                Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
                Vtpmd__Destroyed de = VTPMD__DESTROYED__INIT;

                log_info("%s: vTPM of %s destroyed (%s)", inst->uid, inst->id, j->keep ? j->kept : "state wiped");
                de.container_id = inst->id;
                de.kept_state_dir = j->keep ? j->kept : "";
                resp.body_case = VTPMD__VTPM_RESPONSE__BODY_DESTROYED;
                resp.destroyed = &de;
                reply_msg(j->reply, j->conn, &resp);
                registry_remove(d, inst);
                d->n_bound--;
                instance_release(inst);
        }
        job_free(j);
        control_job_done(d);
}

static void destroy_stopped(instance_t *inst, int r)
{
        job_t *j = inst->pending;

        (void)r;
        inst->pending = NULL;
        if (control_queue(j->d, &j->w, destroy_work, destroy_after) < 0) {
                inst->state = INST_FAILED;
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
                job_free(j);
        }
}

static void handle_destroy(job_t *j)
{
        vtpmd_t *d = j->d;
        const char *id = j->req->destroy->container_id;
        instance_t *inst = registry_find(d, id);

        if (!inst) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_NOT_FOUND, "no vTPM for container '%.80s'", id);
                job_free(j);
                return;
        }
        if (inst->state != INST_READY && inst->state != INST_FAILED) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BUSY, "the vTPM of %s is %s; retry", id,
                            instance_state_name(inst->state));
                job_free(j);
                return;
        }
        inst->state = INST_DESTROYING;
        endpoint_close(inst);
        instance_ref(inst);
        j->inst = inst;
        j->keep = j->req->destroy->keep_state;
        inst->pending = j;
        instance_stop(inst, destroy_stopped);
}

/* ---- List, Status -------------------------------------------------------------- */

static void handle_list(job_t *j)
{
        vtpmd_t *d = j->d;
        Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
        Vtpmd__Listed li = VTPMD__LISTED__INIT;
        Vtpmd__Instance *infos = NULL, **pinfos = NULL;
        size_t n = 0;

        for (instance_t *i = d->instances; i; i = i->next)
                if (i->id[0])
                        n++;
        infos = calloc(n ? n : 1, sizeof(*infos));
        pinfos = calloc(n ? n : 1, sizeof(*pinfos));
        if (!infos || !pinfos) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "out of memory");
                goto out;
        }
        n = 0;
        for (instance_t *i = d->instances; i; i = i->next) {
                if (!i->id[0])
                        continue;
                fill_info(i, &infos[n]);
                pinfos[n] = &infos[n];
                n++;
        }
        li.instances = pinfos;
        li.n_instances = n;
        li.max_instances = d->cfg->max_instances;
        li.pool_ready = d->pool_ready;
        li.pool_target = d->cfg->pool;
        resp.body_case = VTPMD__VTPM_RESPONSE__BODY_LISTED;
        resp.listed = &li;
        reply_msg(j->reply, j->conn, &resp);
out:
        free(infos);
        free(pinfos);
        job_free(j);
}

static instance_t *find_ready(job_t *j, const char *id)
{
        instance_t *inst;

        if (vtpmd_container_id_check(id, j->d->id_max) < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "invalid container id '%.80s'", id);
                return NULL;
        }
        inst = registry_find(j->d, id);
        if (!inst) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_NOT_FOUND, "no vTPM for container '%s'", id);
                return NULL;
        }
        if (inst->state != INST_READY) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BUSY, "the vTPM of %s is %s; retry", id,
                            instance_state_name(inst->state));
                return NULL;
        }
        return inst;
}

static void handle_status(job_t *j)
{
        const char *id = j->req->status->container_id;
        Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
        Vtpmd__StatusReply st = VTPMD__STATUS_REPLY__INIT;
        Vtpmd__Instance info;
        instance_t *inst;

        if (vtpmd_container_id_check(id, j->d->id_max) < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "invalid container id '%.80s'", id);
                goto out;
        }
        inst = registry_find(j->d, id);
        if (!inst) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_NOT_FOUND, "no vTPM for container '%s'", id);
                goto out;
        }
        fill_info(inst, &info);
        st.instance = &info;
        resp.body_case = VTPMD__VTPM_RESPONSE__BODY_STATUS;
        resp.status = &st;
        reply_msg(j->reply, j->conn, &resp);
out:
        job_free(j);
}

/* ---- Quote -------------------------------------------------------------------- */

/*
 * Limits on the container log a QuoteReply carries: vtpmd reads at most
 * QUOTE_LOG_FILE_MAX bytes of log file, and sends at most QUOTE_LOG_MAX bytes
 * of records from log_offset on (the rest is asked for from a later offset).
 */
#define QUOTE_LOG_FILE_MAX (64u * 1024 * 1024)
#define QUOTE_LOG_MAX      (16u * 1024 * 1024)

/* Under inst->lock, after the quote: whole CEL-TLV records from record index `from` on. */
static int quote_read_log(job_t *j, const char *path, uint64_t from)
{
        uint8_t *buf = NULL;
        size_t len = 0, start = 0, n = 0;
        uint64_t count = 0;
        int r;

        r = cscp_file_read(path, QUOTE_LOG_FILE_MAX, &buf, &len);
        if (r == -ENOENT) { /* nothing measured yet */
                buf = NULL;
                len = 0;
                r = 0;
        }
        if (r == -EFBIG) {
                j->code = VTPMD__ERROR_CODE__ERR_TOO_LARGE;
                vtpmd_fmt(j->msg, sizeof(j->msg), "the container log is over the %u bytes vtpmd reads",
                          QUOTE_LOG_FILE_MAX);
                return CSCP_E_TOO_BIG;
        }
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot read the container log: %s", cscp_strerror(r));
                return r;
        }
        r = cscp_eventlog_slice(buf, len, CSCP_EVENTLOG_CEL_TLV, from, QUOTE_LOG_MAX, &start, &n, &count);
        if (r == -ERANGE) {
                j->code = VTPMD__ERROR_CODE__ERR_BAD_REQUEST;
                vtpmd_fmt(j->msg, sizeof(j->msg), "log_offset %llu is past the end of the container log",
                          (unsigned long long)from);
        } else if (r == 1) {
                j->code = VTPMD__ERROR_CODE__ERR_TOO_LARGE;
                vtpmd_fmt(j->msg, sizeof(j->msg),
                          "the container log from record %llu is over %u bytes: ask from a later offset",
                          (unsigned long long)from, QUOTE_LOG_MAX);
                r = CSCP_E_TOO_BIG;
        } else if (r < 0) {
                j->code = VTPMD__ERROR_CODE__ERR_INTERNAL;
                vtpmd_fmt(j->msg, sizeof(j->msg), "the container log does not parse: %s", cscp_strerror(r));
        }
        if (r < 0) {
                free(buf);
                return r;
        }
        j->qlog = buf;
        j->qlog_start = start;
        j->qlog_len = n;
        return 0;
}

static void quote_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        const Vtpmd__Quote *q = j->req->quote;

        uv_mutex_lock(&inst->lock);
        (void)endpoint_tpm_acquire(inst); /* nothing of a client loaded while vtpmd talks to swtpm */
        j->r = vtpm_quote(inst->tcti, &inst->ident, q->nonce.data, q->nonce.len, &j->sel, &j->quote);
        if (j->r < 0)
                vtpmd_fmt(j->msg, sizeof(j->msg), "vTPM quote failed: %s", cscp_strerror(j->r));
        /* The log after the quote, still under the lock: it may run ahead of the quote, never behind. */
        else if (q->want_log)
                j->r = quote_read_log(j, inst->log, q->log_offset);
        uv_mutex_unlock(&inst->lock);
}

static void quote_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;
        instance_t *inst = j->inst;
        Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
        Vtpmd__QuoteReply qr = VTPMD__QUOTE_REPLY__INIT;
        Cscp__Quote q = CSCP__QUOTE__INIT;
        Cscp__PcrValue *vals = NULL, **pvals = NULL;
        int r = status < 0 ? status : j->r;

        if (r < 0) {
                reply_error(j->reply, j->conn, j->code ? j->code : control_error_code(r), "Quote %s: %s", inst->id,
                            j->msg);
                goto out;
        }
        vals = calloc(j->quote.n_pcrs ? j->quote.n_pcrs : 1, sizeof(*vals));
        pvals = calloc(j->quote.n_pcrs ? j->quote.n_pcrs : 1, sizeof(*pvals));
        if (!vals || !pvals) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < j->quote.n_pcrs; i++) {
                cscp__pcr_value__init(&vals[i]);
                vals[i].hash_alg = j->quote.pcrs[i].hash_alg;
                vals[i].index = j->quote.pcrs[i].index;
                vals[i].value.data = j->quote.pcrs[i].value;
                vals[i].value.len = j->quote.pcrs[i].size;
                pvals[i] = &vals[i];
        }
        q.attest = (ProtobufCBinaryData){.data = j->quote.attest, .len = j->quote.attest_len};
        q.signature = (ProtobufCBinaryData){.data = j->quote.sig, .len = j->quote.sig_len};
        q.ak_public = (ProtobufCBinaryData){.data = inst->ident.ak_public, .len = inst->ident.ak_public_len};
        q.pcrs = pvals;
        q.n_pcrs = j->quote.n_pcrs;
        qr.quote = &q;
        qr.ek_certificate = (ProtobufCBinaryData){.data = inst->ident.ek_cert, .len = inst->ident.ek_cert_len};
        qr.ek_public = (ProtobufCBinaryData){.data = inst->ident.ek_public, .len = inst->ident.ek_public_len};
        if (j->req->quote->want_log) {
                qr.log = (ProtobufCBinaryData){.data = j->qlog ? j->qlog + j->qlog_start : NULL, .len = j->qlog_len};
                qr.log_offset = j->req->quote->log_offset;
        }
        resp.body_case = VTPMD__VTPM_RESPONSE__BODY_QUOTE;
        resp.quote = &qr;
        reply_msg(j->reply, j->conn, &resp);
out:
        free(vals);
        free(pvals);
        free(j->qlog);
        job_free(j);
        control_job_done(d);
}

static void handle_quote(job_t *j)
{
        const Vtpmd__Quote *q = j->req->quote;
        instance_t *inst = find_ready(j, q->container_id);
        int r;

        if (!inst)
                goto fail;
        if (q->nonce.len < 1 || q->nonce.len > CSCP_NONCE_MAX) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST,
                            "nonce of %zu bytes refused: 1..%d bytes (never shortened or hashed)", q->nonce.len,
                            CSCP_NONCE_MAX);
                goto fail;
        }
        if (q->n_pcrs == 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "no PCRs selected");
                goto fail;
        }
        r = cscp_pcrsel_from_wire(q->pcrs, q->n_pcrs, &j->sel);
        if (r < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST,
                            "invalid PCR selection (known banks sha1/256/384/512, PCRs 0-23, no duplicates)");
                goto fail;
        }
        instance_ref(inst);
        j->inst = inst;
        if (control_queue(j->d, &j->w, quote_work, quote_after) < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
                goto fail;
        }
        return;
fail:
        job_free(j);
}

/* ---- Measure -------------------------------------------------------------------- */

static void measure_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        const Vtpmd__Measure *m = j->req->measure;
        cscp_cm_field_value_t f[CSCP_CM_MAX_FIELDS];

        for (size_t i = 0; i < m->n_fields; i++)
                f[i] = (cscp_cm_field_value_t){(cscp_cm_field_t)m->fields[i]->type, m->fields[i]->value.data,
                                               m->fields[i]->value.len};
        uv_mutex_lock(&inst->lock);
        (void)endpoint_tpm_acquire(inst); /* nothing of a client loaded while vtpmd talks to swtpm */
        j->r = vtpm_measure(inst->tcti, inst->log, m->pcr, (cscp_cm_kind_t)m->kind, f, m->n_fields);
        uv_mutex_unlock(&inst->lock);
        if (j->r < 0)
                vtpmd_fmt(j->msg, sizeof(j->msg), "measurement failed: %s", cscp_strerror(j->r));
}

static void measure_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;
        int r = status < 0 ? status : j->r;

        if (r < 0) {
                reply_error(j->reply, j->conn, control_error_code(r), "Measure %s: %s", j->inst->id, j->msg);
        } else {
                Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
                Vtpmd__Measured me = VTPMD__MEASURED__INIT;
                resp.body_case = VTPMD__VTPM_RESPONSE__BODY_MEASURED;
                resp.measured = &me;
                reply_msg(j->reply, j->conn, &resp);
        }
        job_free(j);
        control_job_done(d);
}

static void handle_measure(job_t *j)
{
        const Vtpmd__Measure *m = j->req->measure;
        instance_t *inst = find_ready(j, m->container_id);
        uint32_t seen = 0;

        if (!inst)
                goto fail;
        if (m->pcr > VTPMD_CONTAINER_PCR_MAX || m->kind > CSCP_CM_CLUSTER || m->n_fields == 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST,
                            "Measure needs a PCR 0..%d, a kind 0..%d and at least one field", VTPMD_CONTAINER_PCR_MAX,
                            CSCP_CM_CLUSTER);
                goto fail;
        }
        for (size_t i = 0; i < m->n_fields; i++) {
                uint32_t t = m->fields[i]->type;
                if (t >= CSCP_CM_MAX_FIELDS || (seen & (1u << t))) {
                        reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST,
                                    "field type %u unknown or repeated (0..%d, each at most once)", t,
                                    CSCP_CM_MAX_FIELDS - 1);
                        goto fail;
                }
                seen |= 1u << t;
        }
        instance_ref(inst);
        j->inst = inst;
        if (control_queue(j->d, &j->w, measure_work, measure_after) < 0) {
                reply_error(j->reply, j->conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
                goto fail;
        }
        return;
fail:
        job_free(j);
}

/*
 * A request that observes one vTPM (Status, Quote, Measure, Destroy) of an
 * instance whose Create was acknowledged but whose extends are still running:
 * it waits (parked on the instance) so nobody sees PCRs that lag the logs.
 */
static instance_t *settling_target(vtpmd_t *d, const Vtpmd__VtpmRequest *req)
{
        const char *id = NULL;
        instance_t *inst;

        switch (req->body_case) {
        case VTPMD__VTPM_REQUEST__BODY_STATUS:
                id = req->status->container_id;
                break;
        case VTPMD__VTPM_REQUEST__BODY_QUOTE:
                id = req->quote->container_id;
                break;
        case VTPMD__VTPM_REQUEST__BODY_MEASURE:
                id = req->measure->container_id;
                break;
        case VTPMD__VTPM_REQUEST__BODY_DESTROY:
                id = req->destroy->container_id;
                break;
        case VTPMD__VTPM_REQUEST__BODY_CREATE:
        case VTPMD__VTPM_REQUEST__BODY_LIST:
        case VTPMD__VTPM_REQUEST__BODY__NOT_SET:
        case _VTPMD__VTPM_REQUEST__BODY__CASE_IS_INT_SIZE:
        default:
                return NULL;
        }
        inst = id ? registry_find(d, id) : NULL;
        return inst && inst->settling ? inst : NULL;
}

void control_handle(vtpmd_t *d, Vtpmd__VtpmRequest *req, control_reply_cb reply, void *conn)
{
        instance_t *settling;
        job_t *j;

        if (d->stopping) {
                vtpmd__vtpm_request__free_unpacked(req, NULL);
                reply_error(reply, conn, VTPMD__ERROR_CODE__ERR_BUSY, "vtpmd is stopping");
                return;
        }
        j = job_new(d, req, reply, conn);
        if (!j) {
                vtpmd__vtpm_request__free_unpacked(req, NULL);
                reply_error(reply, conn, VTPMD__ERROR_CODE__ERR_INTERNAL, "out of memory");
                return;
        }
        settling = settling_target(d, req);
        if (settling) {
                job_t **tail = (job_t **)&settling->waiters;

                while (*tail)
                        tail = &(*tail)->next;
                *tail = j;
                return;
        }
        dispatch(j);
}

static void dispatch(job_t *j)
{
        vtpmd_t *d = j->d;
        Vtpmd__VtpmRequest *req = j->req;
        control_reply_cb reply = j->reply;
        void *conn = j->conn;

        if (d->stopping) {
                reply_error(reply, conn, VTPMD__ERROR_CODE__ERR_BUSY, "vtpmd is stopping");
                job_free(j);
                return;
        }
        switch (req->body_case) {
        case VTPMD__VTPM_REQUEST__BODY_CREATE:
                handle_create(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY_DESTROY:
                handle_destroy(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY_LIST:
                handle_list(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY_STATUS:
                handle_status(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY_QUOTE:
                handle_quote(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY_MEASURE:
                handle_measure(j);
                return;
        case VTPMD__VTPM_REQUEST__BODY__NOT_SET:
        case _VTPMD__VTPM_REQUEST__BODY__CASE_IS_INT_SIZE:
        default:
                reply_error(reply, conn, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "request without a body");
                job_free(j);
                return;
        }
}

/* ---- supervision ------------------------------------------------------------------ */

static void restart_work(uv_work_t *w)
{
        job_t *j = w->data;
        instance_t *inst = j->inst;
        uint8_t secret[VTPMD_SECRET_LEN];
        bool reset;
        int r;

        r = instance_wait_ready(inst, j->d->cfg->swtpm_start_timeout_ms);
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "swtpm did not come back on %s", inst->sock);
                j->r = r;
                return;
        }
        r = keys_secret_load(j->d->master, inst->uid, inst->keyfile, secret);
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot unwrap the instance secret: %s", cscp_strerror(r));
                j->r = r;
                return;
        }
        uv_mutex_lock(&inst->lock);
        (void)endpoint_tpm_acquire(inst); /* nothing of a client loaded while vtpmd talks to swtpm */
        /* Startup(CLEAR) emptied the platform auth: ours again before anything else (vtpm.h). */
        r = vtpm_platform_auth_set(inst->tcti, secret + VTPMD_STATE_KEY_LEN);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (r < 0) {
                vtpmd_fmt(j->msg, sizeof(j->msg), "cannot set the platform auth again: %s%s", cscp_strerror(r),
                          r == CSCP_E_STATE ? " (the platform hierarchy was taken while it was open)" : "");
                uv_mutex_unlock(&inst->lock);
                j->r = r;
                return;
        }
        /* A re-adopted swtpm whose platform auth was empty was reset behind our back: its PCRs too. */
        reset = !j->adopted || r == 1;
        if (j->adopted && reset)
                log_warn("%s: the re-adopted vTPM had been reset (empty platform auth); re-extending its log",
                         inst->uid);
        r = 0;
        /*
         * Reset: the whole log again. Not reset (a re-adopted swtpm): vtpmd may have stopped between a Create's
         * acknowledgement and its extends; vtpm_log_reextend extends what the PCRs lack (nothing when they match).
         */
        if (access(inst->log, F_OK) == 0) {
                r = vtpm_log_reextend(inst->tcti, inst->log);
                if (r < 0)
                        vtpmd_fmt(j->msg, sizeof(j->msg), "re-extending %s failed: %s", inst->log, cscp_strerror(r));
        }
        uv_mutex_unlock(&inst->lock);
        if (r == 0) {
                r = registry_save(inst, inst->resume_state);
                if (r < 0)
                        vtpmd_fmt(j->msg, sizeof(j->msg), "cannot write %s: %s", inst->meta, cscp_strerror(r));
        }
        j->r = r;
}

static void restart_after(uv_work_t *w, int status)
{
        job_t *j = w->data;
        vtpmd_t *d = j->d;
        instance_t *inst = j->inst;
        int r = status < 0 ? status : j->r;

        inst->restart_busy = false;
        /* A re-adopted pool instance was counted as pending while it was checked (registry.c). */
        if (j->adopted && inst->resume_state == INST_POOL && d->pool_pending > 0)
                d->pool_pending--;
        if (inst->died_again) {
                inst->died_again = false;
                if (!d->stopping)
                        control_instance_restart(inst);
        } else if (r < 0) {
                inst->state = INST_FAILED;
                log_error("%s: %s of the vTPM of %s failed: %s", inst->uid, j->adopted ? "the check" : "restart",
                          inst->id[0] ? inst->id : "(pool)", j->msg);
        } else {
                inst->state = inst->resume_state;
                if (inst->state == INST_POOL)
                        d->pool_ready++;
                if (j->adopted)
                        log_info("%s: re-adopted vTPM %s checked (swtpm %d, platform auth ours)", inst->uid,
                                 inst->id[0] ? inst->id : "(pool)", (int)inst->pid);
                else
                        log_warn("%s: vTPM %s restarted from its state (swtpm %d, restart #%u); platform auth set "
                                 "again, container log re-extended",
                                 inst->uid, inst->id[0] ? inst->id : "(pool)", (int)inst->pid, inst->restarts);
        }
        job_free(j);
        control_job_done(d);
}

void control_instance_restart(instance_t *inst)
{
        vtpmd_t *d = inst->d;
        char err[256];
        job_t *j;
        int r;

        if (inst->state != INST_RESTARTING)
                inst->resume_state = inst->state == INST_POOL ? INST_POOL : INST_READY;
        inst->state = INST_RESTARTING;
        if (inst->restart_busy) {
                inst->died_again = true;
                return;
        }
        r = instance_spawn(inst, err, sizeof(err));
        if (r < 0) {
                inst->state = INST_FAILED;
                log_error("%s: cannot restart the vTPM of %s: %s", inst->uid, inst->id[0] ? inst->id : "(pool)", err);
                return;
        }
        inst->restarts++;
        endpoint_reset(inst); /* the clients' saved contexts died with the old swtpm */
        j = job_new(d, NULL, NULL, NULL);
        if (!j)
                goto fail;
        instance_ref(inst);
        j->inst = inst;
        inst->restart_busy = true;
        if (control_queue(d, &j->w, restart_work, restart_after) < 0) {
                inst->restart_busy = false;
                job_free(j);
                goto fail;
        }
        return;
fail:
        inst->state = INST_FAILED;
        log_error("%s: out of memory restarting the vTPM", inst->uid);
}

void control_instance_verify(instance_t *inst)
{
        vtpmd_t *d = inst->d;
        job_t *j = job_new(d, NULL, NULL, NULL);

        inst->resume_state = inst->state == INST_POOL ? INST_POOL : INST_READY;
        inst->state = INST_RESTARTING; /* pool_take and the handlers leave it alone; pool_ready still counts it */
        if (!j)
                goto fail;
        instance_ref(inst);
        j->inst = inst;
        j->adopted = true;
        inst->restart_busy = true;
        if (control_queue(d, &j->w, restart_work, restart_after) < 0) {
                inst->restart_busy = false;
                job_free(j);
                goto fail;
        }
        return;
fail:
        if (inst->resume_state == INST_POOL)
                d->pool_ready--;
        inst->state = INST_FAILED;
        log_error("%s: out of memory checking the re-adopted vTPM", inst->uid);
}

void control_instance_died(instance_t *inst, int64_t status, int sig)
{
        vtpmd_t *d = inst->d;
        uint64_t now = instance_now_ms();

        switch (inst->state) {
        case INST_NEW:
        case INST_BINDING:
                log_warn("%s: swtpm died (status %lld, signal %d) while being %s; that operation fails", inst->uid,
                         (long long)status, sig, instance_state_name(inst->state));
                return;
        case INST_DESTROYING:
        case INST_FAILED:
                return;
        case INST_RESTARTING:
                if (inst->restart_busy) {
                        inst->died_again = true;
                        return;
                }
                break;
        case INST_POOL:
                d->pool_ready--;
                break;
        case INST_READY:
                break;
        }
        log_warn("%s: swtpm of %s died (status %lld, signal %d); restarting it from its state", inst->uid,
                 inst->id[0] ? inst->id : "(pool)", (long long)status, sig);
        if (now - inst->death_window_ms > RESTART_WINDOW_MS) {
                inst->death_window_ms = now;
                inst->deaths_in_window = 0;
        }
        if (++inst->deaths_in_window > RESTART_BURST) {
                inst->state = INST_FAILED;
                log_error("%s: swtpm died %u times within %d s; not restarting it again (Destroy still works)",
                          inst->uid, inst->deaths_in_window, RESTART_WINDOW_MS / 1000);
                return;
        }
        control_instance_restart(inst);
}

/* ---- stop ---------------------------------------------------------------------------- */

static unsigned stopping_instances;

static void stop_one_done(instance_t *inst, int r)
{
        (void)r;
        registry_remove(inst->d, inst);
        instance_release(inst);
        stopping_instances--;
}

void control_stop_instances(vtpmd_t *d)
{
        instance_t *next;

        for (instance_t *i = d->instances; i; i = next) {
                next = i->next;
                if (d->cfg->stop_instances && i->pid > 0) {
                        stopping_instances++;
                        instance_stop(i, stop_one_done);
                } else {
                        registry_remove(d, i);
                        instance_release(i);
                }
        }
        if (d->stopped_cb)
                d->stopped_cb(d);
}
