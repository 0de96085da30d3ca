/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestd's server: libuv TCP, TLS 1.3 through OpenSSL memory BIOs, one
 * request at a time per connection, TPM work on the threadpool (tpmq).
 *
 * Connection lifetime: a conn_t owns its tcp and timer handles and may have
 * one TPM job in flight. It is freed when both handles are closed and no job
 * is pending (refs == 0). Reading stops while a request is being answered,
 * and resumes only after the answer was handed to the kernel, so a client
 * that pipelines without reading cannot grow our buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#define LOGMODULE server
#include "acl.h"
#include "core.h"
#include "enroll.h"
#include "error.h"
#include "frame.h"
#include "log.h"
#include "logs.h"
#include "pcr.h"
#include "server.h"
#include "tls.h"
#include "tpmq.h"
#include "util.h"
#include "vtpmc.h"

#define READ_CHUNK (16 * 1024)
#define MAX_LOGS   16 /* LogRequests in one Challenge */

typedef struct server server_t;
typedef struct challenge challenge_t;

typedef struct conn {
        uv_tcp_t tcp; /* first member: the handle's address is the conn's */
        uv_timer_t timer;
        uv_shutdown_t shutdown_req;
        server_t *srv;
        SSL *ssl; /* NULL in plaintext mode */
        BIO *in;  /* ciphertext from the network (TLS) or plaintext (no TLS) */
        BIO *out; /* ciphertext to the network (TLS only) */
        cscp_frame_reader_t reader;
        tpmq_job_t job;
        challenge_t *ch; /* the challenge being answered */
        char peer[64];
        unsigned refs;
        bool handshake_done;
        bool busy; /* a request is being answered */
        bool closing;
        bool close_after_write;
        bool draining; /* lingering close: our side is shut, input is discarded */
        struct conn *prev, *next;
} conn_t;

struct server {
        const attestd_config_t *cfg;
        uv_loop_t *loop;
        uv_tcp_t listener;
        uv_signal_t sigint, sigterm;
        SSL_CTX *ssl_ctx;
        cscp_rot_t *rot;     /* the host root of trust (include/cscp/rot.h) */
        cscp_tpm_t *tpm;     /* its TPM (tpm backend), NULL on TDX */
        uint16_t merkle_alg; /* the batch tree's hash: SHA-256 (TPM) or SHA-512 (TDX) */
        size_t merkle_len;   /* its size: the quote's caller data, and each proof sibling */
        uint8_t *ccel;       /* TDX: the CCEL's events (read once at start: it is fixed after boot), or NULL */
        size_t ccel_len;
        tpmq_t tpmq;
        attestd_enroll_t enroll; /* enroll.c */
        const uint8_t *ak_public;
        size_t ak_public_len;
        acl_t *acl;
        conn_t *conns;
        unsigned n_conns;
        bool stopping;
};

typedef struct write_req {
        uv_write_t req;
        conn_t *conn;
        uv_buf_t buf;
} write_req_t;

void attestd_config_defaults(attestd_config_t *c)
{
        memset(c, 0, sizeof(*c));
        c->listen = "127.0.0.1:7420";
        c->rot = CSCP_ROT_TPM;
        c->state_dir = "/var/lib/cscp/attestd";
        c->ak_alg = CSCP_KEY_ECC_P256;
        c->max_frame = 64 * 1024;
        c->max_connections = 256;
        c->idle_timeout_ms = 60 * 1000;
        c->read_timeout_ms = 10 * 1000;
        c->vtpmd_socket = "/run/cscp/vtpmd.sock";
        c->vtpmd_timeout_ms = VTPMC_TIMEOUT_DEFAULT_MS;
        c->host_log = "/var/lib/cscp/vtpmd/host.log";
        c->host_proc_log = "/var/lib/cscp/vtpmd/host-pcr11.cel";
        c->boot_log = "/sys/kernel/security/tpm0/binary_bios_measurements";
        c->ima_log = "/sys/kernel/security/ima/binary_runtime_measurements";
        c->systemd_log = "/run/log/systemd/tpm2-measure.log";
        c->max_batch = TPMQ_MAX_BATCH;
        c->max_evidence = CSCP_FRAME_MAX_DEFAULT;
}

static void conn_close(conn_t *c, const char *why);
static void conn_pump(conn_t *c);
static void resume_reading(conn_t *c);

static void conn_unref(conn_t *c)
{
        if (--c->refs > 0)
                return;
        server_t *s = c->srv;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        cscp_frame_reader_reset(&c->reader);
        SSL_free(c->ssl); /* frees both BIOs */
        if (!c->ssl) {
                BIO_free(c->in);
                BIO_free(c->out);
        }
        log_debug("%s: connection freed", c->peer);
        free(c);
}

static void handle_closed_cb(uv_handle_t *h)
{
        conn_unref(h->data);
}

static void conn_close(conn_t *c, const char *why)
{
        if (c->closing)
                return;
        c->closing = true;
        log_debug("%s: closing: %s", c->peer, why);
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->timer, handle_closed_cb);
        uv_close((uv_handle_t *)&c->tcp, handle_closed_cb);
}

static void timer_cb(uv_timer_t *t)
{
        conn_t *c = t->data;

        if (c->draining) {
                conn_close(c, "lingering close done");
                return;
        }
        log_info("%s: %s timeout, disconnecting", c->peer,
                 cscp_frame_reader_pending(&c->reader) || !c->handshake_done ? "read" : "idle");
        conn_close(c, "timeout");
}

/* Idle while waiting for a new request, read timeout while one is half received. */
static void conn_arm_timer(conn_t *c)
{
        const attestd_config_t *cfg = c->srv->cfg;
        unsigned ms;

        if (c->closing || c->draining)
                return;
        if (c->busy) {
                uv_timer_stop(&c->timer);
                return;
        }
        ms = (!c->handshake_done || cscp_frame_reader_pending(&c->reader)) ? cfg->read_timeout_ms
                                                                           : cfg->idle_timeout_ms;
        uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
        conn_t *c = req->data;

        if (status < 0)
                conn_close(c, "shutdown failed");
        conn_unref(c);
}

/*
 * Closing right after a fatal error would make the kernel answer the
 * client's unread bytes with a reset, which can destroy the error frame in
 * flight. So: shut down our direction, discard input until the client closes
 * or the read timeout passes, then close.
 */
static void conn_linger(conn_t *c)
{
        const attestd_config_t *cfg = c->srv->cfg;

        if (c->closing || c->draining)
                return;
        c->draining = true;
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
                conn_close(c, "cannot shut down");
                return;
        }
        c->refs++;
        uv_timer_start(&c->timer, timer_cb, cfg->read_timeout_ms, 0);
        resume_reading(c);
}

static void write_cb(uv_write_t *req, int status)
{
        write_req_t *w = (write_req_t *)req;
        conn_t *c = w->conn;

        free(w->buf.base);
        free(w);
        if (status < 0) {
                if (!c->closing)
                        log_debug("%s: write failed: %s", c->peer, uv_strerror(status));
                conn_close(c, "write failed");
        } else if (c->close_after_write) {
                conn_linger(c);
        } else if (!c->closing && c->busy) {
                /* The answer is with the kernel: take the next request. */
                c->busy = false;
                conn_pump(c);
        }
        conn_unref(c);
}

/* Queues bytes for the network; takes ownership of data. */
static int conn_write_raw(conn_t *c, uint8_t *data, size_t len)
{
        write_req_t *w;
        int r;

        if (c->closing) {
                free(data);
                return -ECANCELED;
        }
        w = calloc(1, sizeof(*w));
        if (!w) {
                free(data);
                return -ENOMEM;
        }
        w->conn = c;
        w->buf = uv_buf_init((char *)data, (unsigned)len);
        r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, write_cb);
        if (r < 0) {
                free(data);
                free(w);
                return r;
        }
        c->refs++;
        return 0;
}

/* Moves pending TLS output (handshake records, alerts, application data) to the network. */
static int conn_flush_tls(conn_t *c)
{
        size_t pending;

        if (!c->ssl)
                return 0;
        while ((pending = BIO_ctrl_pending(c->out)) > 0) {
                uint8_t *buf = malloc(pending);
                int n;
                if (!buf)
                        return -ENOMEM;
                n = BIO_read(c->out, buf, (int)pending);
                if (n <= 0) {
                        free(buf);
                        return CSCP_E_TLS;
                }
                int r = conn_write_raw(c, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Sends one frame (already packed, with its length prefix); takes ownership. */
static int conn_send(conn_t *c, uint8_t *frame, size_t len)
{
        int r;

        if (!c->ssl)
                return conn_write_raw(c, frame, len);
        r = SSL_write(c->ssl, frame, (int)len);
        OPENSSL_cleanse(frame, len);
        free(frame);
        if (r <= 0) {
                ERR_clear_error();
                return CSCP_E_TLS;
        }
        return conn_flush_tls(c);
}

static void conn_send_error(conn_t *c, Cscp__ErrorCode code, bool fatal, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void conn_send_error(conn_t *c, Cscp__ErrorCode code, bool fatal, const char *fmt, ...)
{
        char msg[256];
        uint8_t *buf;
        size_t len;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_info("%s: refusing request: %s", c->peer, msg);
        c->busy = true; /* read nothing more until the error is out */
        c->close_after_write = fatal;
        if (cscp_frame_pack_error(code, msg, 0, &buf, &len) < 0 || conn_send(c, buf, len) < 0)
                conn_close(c, "cannot send error");
}

/* ---- challenges (docs/protocol.md "Container challenges") ---------------------------------------------------- */

/*
 * One challenge in flight on a connection (conn->ch). Host only:
 *   handle_challenge -> tpmq (host quote) -> quote_done -> [evidence_work: logs] -> challenge_finish
 * Container:
 *   handle_challenge -> vquote_work (vtpmd Quote, leaf) -> vquote_after -> tpmq with that leaf -> quote_done -> ...
 * The connection holds one reference for the whole chain; challenge_finish drops it.
 */
struct challenge {
        uv_work_t work;
        conn_t *conn;
        Cscp__Challenge *req;         /* our own copy of the request */
        vtpmc_result_t vq;            /* container challenges: vtpmd's answer */
        attestd_log_t logs[MAX_LOGS]; /* host logs, by request index */
        bool present[MAX_LOGS];
        int ccel_at; /* TDX: the log request (LOG_CCEL or LOG_BOOT) answered with the CCEL; -1 none */
        /* the answer: a packed frame, or an error */
        uint8_t *frame;
        size_t frame_len;
        int r;
        Cscp__ErrorCode code;
        char msg[256];
};

static void ch_fail(challenge_t *ch, Cscp__ErrorCode code, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void ch_fail(challenge_t *ch, Cscp__ErrorCode code, int r, const char *fmt, ...)
{
        va_list ap;

        ch->code = code;
        ch->r = r < 0 ? r : -EIO;
        va_start(ap, fmt);
        vsnprintf(ch->msg, sizeof(ch->msg), fmt, ap);
        va_end(ap);
}

static void challenge_free(challenge_t *ch)
{
        if (!ch)
                return;
        if (ch->req)
                cscp__challenge__free_unpacked(ch->req, NULL);
        vtpmc_result_clear(&ch->vq);
        for (size_t i = 0; i < MAX_LOGS; i++)
                attestd_log_clear(&ch->logs[i]);
        free(ch->frame);
        free(ch);
}

/* Sends the challenge's evidence or error, frees it and drops the connection reference it held. */
static void challenge_finish(conn_t *c)
{
        challenge_t *ch = c->ch;

        c->ch = NULL;
        if (!c->closing) {
                if (ch->frame) {
                        uint8_t *frame = ch->frame;
                        ch->frame = NULL;
                        if (conn_send(c, frame, ch->frame_len) < 0)
                                conn_close(c, "cannot send evidence");
                        else
                                log_debug("%s: evidence sent (%zu bytes)", c->peer, ch->frame_len);
                } else
                        conn_send_error(c, ch->code ? ch->code : CSCP__ERROR_CODE__ERR_INTERNAL, false, "%s",
                                        ch->msg[0] ? ch->msg : "internal error");
        }
        cscp_rot_quote_clear(&c->job.quote);
        challenge_free(ch);
        conn_unref(c);
}

static const char *host_log_path(const attestd_config_t *cfg, Cscp__LogKind k)
{
        switch (k) {
        case CSCP__LOG_KIND__LOG_BOOT:
                return cfg->boot_log;
        case CSCP__LOG_KIND__LOG_IMA:
                return cfg->ima_log;
        case CSCP__LOG_KIND__LOG_HOST_CEL:
                return cfg->host_log;
        case CSCP__LOG_KIND__LOG_SYSTEMD_CEL:
                return cfg->systemd_log;
        case CSCP__LOG_KIND__LOG_HOST_PROC_CEL:
                return cfg->host_proc_log;
        case CSCP__LOG_KIND__LOG_CONTAINER_CEL:
        case CSCP__LOG_KIND__LOG_CCEL: /* from the root of trust (TDX), not a file */
        case CSCP__LOG_KIND__LOG_UNSPECIFIED:
        case _CSCP__LOG_KIND_IS_INT_SIZE:
        default:
                return NULL;
        }
}

/*
 * Packs the Evidence frame: host quote (host_quote on a TPM, host_tdx_quote on TDX) and proof from c->job,
 * container parts from ch->vq, logs in request order.
 */
static void pack_evidence(challenge_t *ch)
{
        conn_t *c = ch->conn;
        server_t *s = c->srv;
        tpmq_job_t *job = &c->job;
        const cscp_tpm_quote_t *tq = &job->quote.tpm; /* empty on TDX */
        const Cscp__Challenge *req = ch->req;
        const Vtpmd__QuoteReply *qr = ch->vq.resp ? ch->vq.resp->quote : NULL;
        Cscp__Frame f = CSCP__FRAME__INIT;
        Cscp__Evidence ev = CSCP__EVIDENCE__INIT;
        Cscp__Quote q = CSCP__QUOTE__INIT;
        Cscp__BatchProof bp = CSCP__BATCH_PROOF__INIT;
        ProtobufCBinaryData sib[CSCP_MERKLE_MAX_DEPTH];
        Cscp__Log logv[MAX_LOGS], *logp[MAX_LOGS];
        Cscp__PcrValue *vals = NULL, **pvals = NULL;
        size_t n_logs = 0, size;
        int r;

        vals = calloc(tq->n_pcrs ? tq->n_pcrs : 1, sizeof(*vals));
        pvals = calloc(tq->n_pcrs ? tq->n_pcrs : 1, sizeof(*pvals));
        if (!vals || !pvals) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, -ENOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < tq->n_pcrs; i++) {
                cscp__pcr_value__init(&vals[i]);
                vals[i].hash_alg = tq->pcrs[i].hash_alg;
                vals[i].index = tq->pcrs[i].index;
                vals[i].value.data = (uint8_t *)tq->pcrs[i].value;
                vals[i].value.len = tq->pcrs[i].size;
                pvals[i] = &vals[i];
        }
        ev.version = CSCP_PROTOCOL_VERSION;
        ev.nonce = (ProtobufCBinaryData){.data = job->nonce, .len = job->nonce_len};
        if (job->quote.kind == CSCP_ROT_TDX) {
                /* The TD quote as configfs-tsm gave it; REPORTDATA is the batch root (SHA-512). */
                ev.host_tdx_quote = (ProtobufCBinaryData){.data = job->quote.tdx, .len = job->quote.tdx_len};
        } else {
                q.attest = (ProtobufCBinaryData){.data = tq->attest, .len = tq->attest_len};
                q.signature = (ProtobufCBinaryData){.data = tq->sig, .len = tq->sig_len};
                q.ak_public = (ProtobufCBinaryData){.data = (uint8_t *)s->ak_public, .len = s->ak_public_len};
                q.pcrs = pvals;
                q.n_pcrs = tq->n_pcrs;
                ev.host_quote = &q;
        }
        /* Where this challenge's leaf sits under the quote's caller data (the batch root), nodes in the rot's hash. */
        for (size_t i = 0; i < job->path_len; i++)
                sib[i] = (ProtobufCBinaryData){.data = job->path[i], .len = s->merkle_len};
        bp.leaf_index = job->batch_index;
        bp.leaf_count = job->batch_count;
        bp.siblings = sib;
        bp.n_siblings = job->path_len;
        ev.host_batch = &bp;
        if (qr) {
                ev.container_id = req->container_id;
                ev.container_quote = qr->quote;
                ev.vtpm_ek_certificate = qr->ek_certificate;
                ev.vtpm_ek_public = qr->ek_public;
        }
        for (size_t i = 0; i < req->n_logs && i < MAX_LOGS; i++) {
                Cscp__LogKind k = req->logs[i]->kind;
                Cscp__Log *l = &logv[n_logs];

                cscp__log__init(l);
                l->kind = k;
                if (k == CSCP__LOG_KIND__LOG_CONTAINER_CEL) {
                        if (!qr)
                                continue;
                        l->offset = qr->log_offset;
                        l->data = qr->log;
                } else if ((int)i == ch->ccel_at) {
                        /* TDX: the firmware's CC event log, whole, whatever offset was asked. */
                        l->kind = CSCP__LOG_KIND__LOG_CCEL;
                        l->offset = 0;
                        l->data = (ProtobufCBinaryData){.data = s->ccel, .len = s->ccel_len};
                } else if (ch->present[i]) {
                        l->offset = ch->logs[i].offset;
                        l->data = (ProtobufCBinaryData){.data = ch->logs[i].buf + ch->logs[i].start,
                                                        .len = ch->logs[i].len};
                } else
                        continue;
                logp[n_logs++] = l;
        }
        ev.logs = logp;
        ev.n_logs = n_logs;
        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = &ev;
        size = cscp__frame__get_packed_size(&f) + CSCP_FRAME_HEADER;
        if (size > c->srv->cfg->max_evidence) {
                char sizes[160] = "";
                size_t used = 0;
                for (size_t i = 0; i < n_logs && used < sizeof(sizes); i++) {
                        int n = snprintf(sizes + used, sizeof(sizes) - used, "%s%s %zu B from event %llu",
                                         i ? ", " : "", attestd_log_name(logp[i]->kind), logp[i]->data.len,
                                         (unsigned long long)logp[i]->offset);
                        if (n < 0)
                                break;
                        used += (size_t)n;
                }
                ch_fail(ch, CSCP__ERROR_CODE__ERR_TOO_LARGE, CSCP_E_TOO_BIG,
                        "the evidence would be %zu bytes, over the %zu-byte frame limit (%s): ask for the logs from "
                        "later offsets",
                        size, c->srv->cfg->max_evidence, n_logs ? sizes : "no logs");
                goto out;
        }
        r = cscp_frame_pack(&f, c->srv->cfg->max_evidence, &ch->frame, &ch->frame_len);
        if (r < 0)
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, r, "cannot encode evidence: %s", cscp_strerror(r));
out:
        free(vals);
        free(pvals);
}

/* Threadpool: the requested host logs, read after the host quote (they may run ahead of it, never behind). */
static void evidence_work(uv_work_t *w)
{
        challenge_t *ch = w->data;
        const server_t *s = ch->conn->srv;
        const attestd_config_t *cfg = s->cfg;
        const Cscp__Challenge *req = ch->req;

        for (size_t i = 0; i < req->n_logs && i < MAX_LOGS; i++) {
                Cscp__LogKind k = req->logs[i]->kind;
                char msg[sizeof(ch->msg)] = "";
                int r;

                if (k == CSCP__LOG_KIND__LOG_CONTAINER_CEL)
                        continue;
                /* Mainline IMA extends PCR 10 of a TPM: a TD quote holds no register to verify the list with. */
                if (k == CSCP__LOG_KIND__LOG_IMA && cscp_rot_kind(s->rot) == CSCP_ROT_TDX)
                        continue;
                /*
                 * The firmware log of a TDX host is the CCEL: a request for it, or for the boot log (a TD has
                 * no TPM boot log), is answered with LOG_CCEL, once. A TPM host has no CCEL: left out.
                 */
                if (k == CSCP__LOG_KIND__LOG_CCEL ||
                    (k == CSCP__LOG_KIND__LOG_BOOT && cscp_rot_kind(s->rot) == CSCP_ROT_TDX)) {
                        if (s->ccel && ch->ccel_at < 0)
                                ch->ccel_at = (int)i;
                        continue;
                }
                r = attestd_log_read(host_log_path(cfg, k), k, req->logs[i]->offset, cfg->max_evidence, &ch->logs[i],
                                     msg, sizeof(msg));
                if (r == -ENOENT)
                        continue; /* not on this host: left out */
                if (r < 0) {
                        ch_fail(ch,
                                r == CSCP_E_TOO_BIG ? CSCP__ERROR_CODE__ERR_TOO_LARGE
                                : r == -ERANGE      ? CSCP__ERROR_CODE__ERR_BAD_REQUEST
                                                    : CSCP__ERROR_CODE__ERR_INTERNAL,
                                r, "%s", msg);
                        return;
                }
                ch->present[i] = true;
        }
        pack_evidence(ch);
}

static void evidence_after(uv_work_t *w, int status)
{
        challenge_t *ch = w->data;

        if (status < 0 && !ch->frame && !ch->code)
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, status, "evidence work cancelled");
        challenge_finish(ch->conn);
}

static bool wants_host_logs(const Cscp__Challenge *req)
{
        for (size_t i = 0; i < req->n_logs; i++)
                if (req->logs[i]->kind != CSCP__LOG_KIND__LOG_CONTAINER_CEL)
                        return true;
        return false;
}

static void quote_done(tpmq_job_t *job)
{
        conn_t *c = job->data;
        challenge_t *ch = c->ch;
        int r;

        if (c->closing) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, -ECANCELED, "connection closed");
                challenge_finish(c);
                return;
        }
        if (job->r < 0) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_TPM, job->r, "host %s quote failed: %s",
                        cscp_rot_kind(c->srv->rot) == CSCP_ROT_TDX ? "TDX" : "TPM", cscp_strerror(job->r));
                challenge_finish(c);
                return;
        }
        if (!wants_host_logs(ch->req)) {
                pack_evidence(ch); /* nothing to read: no threadpool round trip */
                challenge_finish(c);
                return;
        }
        ch->work.data = ch;
        r = uv_queue_work(c->srv->loop, &ch->work, evidence_work, evidence_after);
        if (r < 0) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, r, "cannot queue log reading: %s", uv_strerror(r));
                challenge_finish(c);
        }
}

/* Threadpool: the container quote from vtpmd, then this challenge's leaf over it. */
static void vquote_work(uv_work_t *w)
{
        challenge_t *ch = w->data;
        conn_t *c = ch->conn;
        const attestd_config_t *cfg = c->srv->cfg;
        const Cscp__Challenge *req = ch->req;
        const Cscp__Quote *cq;
        bool want_log = false;
        uint64_t log_offset = 0;
        int r;

        for (size_t i = 0; i < req->n_logs; i++)
                if (req->logs[i]->kind == CSCP__LOG_KIND__LOG_CONTAINER_CEL) {
                        want_log = true;
                        log_offset = req->logs[i]->offset;
                }
        r = vtpmc_quote(cfg->vtpmd_socket, (int)cfg->vtpmd_timeout_ms, req->container_id, req->nonce.data,
                        req->nonce.len, req->container_pcrs, req->n_container_pcrs, want_log, log_offset, &ch->vq);
        if (r < 0) {
                ch_fail(ch, ch->vq.code, r, "%s", ch->vq.msg);
                return;
        }
        cq = ch->vq.resp->quote->quote;
        /* leaf = H("cscp-leaf-v1" || nonce || container_id || H(container TPMS_ATTEST) || vAK Name),
         * H the rot's hash (SHA-256 on a TPM, SHA-512 on TDX) */
        r = cscp_merkle_leaf(c->srv->merkle_alg, req->nonce.data, req->nonce.len, req->container_id, cq->attest.data,
                             cq->attest.len, ch->vq.vak_name, ch->vq.vak_name_len, c->job.leaf);
        if (r < 0) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, r, "cannot compute the challenge's leaf: %s",
                        cscp_strerror(r));
                return;
        }
        c->job.have_leaf = true;
}

static void vquote_after(uv_work_t *w, int status)
{
        challenge_t *ch = w->data;
        conn_t *c = ch->conn;

        if (status < 0 && !ch->code)
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, status, "container quote cancelled");
        if (ch->code || c->closing) {
                if (ch->code)
                        log_info("%s: container %s: %s", c->peer, ch->req->container_id, ch->msg);
                challenge_finish(c);
                return;
        }
        tpmq_submit(&c->srv->tpmq, &c->job);
}

/* SHA-256 of the client's certificate (DER): the identity --acl names. */
static int peer_fingerprint(conn_t *c, uint8_t fp[32])
{
        X509 *cert;
        unsigned char *der = NULL;
        unsigned int md_len = 0;
        int n, r;

        if (!c->ssl || !(cert = SSL_get0_peer_certificate(c->ssl)))
                return -ENOENT;
        n = i2d_X509(cert, &der);
        if (n <= 0)
                return CSCP_E_CRYPTO;
        r = EVP_Digest(der, (size_t)n, fp, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32 ? 0 : CSCP_E_CRYPTO;
        OPENSSL_free(der);
        return r;
}

/* Checks a Challenge's logs: known kinds, each at most once, the container log only for a container. */
static bool logs_valid(conn_t *c, const Cscp__Challenge *req, bool container)
{
        uint32_t seen = 0;

        if (req->n_logs > MAX_LOGS) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false, "%zu log requests; at most %d",
                                req->n_logs, MAX_LOGS);
                return false;
        }
        for (size_t i = 0; i < req->n_logs; i++) {
                int k = (int)req->logs[i]->kind;
                if (k == CSCP__LOG_KIND__LOG_UNSPECIFIED) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false, "log request without a kind");
                        return false;
                }
                if (k < 0 || k > CSCP__LOG_KIND__LOG_CCEL) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_UNSUPPORTED, false, "log kind %d is unknown here", k);
                        return false;
                }
                if (seen & (1u << k)) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false, "the %s log is requested twice",
                                        attestd_log_name((Cscp__LogKind)k));
                        return false;
                }
                seen |= 1u << k;
                if (k == CSCP__LOG_KIND__LOG_CONTAINER_CEL && !container) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                        "the container log needs a container_id");
                        return false;
                }
        }
        return true;
}

static void handle_challenge(conn_t *c, const Cscp__Challenge *req)
{
        server_t *s = c->srv;
        tpmq_job_t *job = &c->job;
        bool container = req->container_id && req->container_id[0];
        TPML_PCR_SELECTION csel;
        challenge_t *ch = NULL;
        uint8_t *copy = NULL;
        size_t copy_len;
        int r;

        if (cscp_nonce_check_len(req->nonce.len) < 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                "nonce of %zu bytes refused: it must be %d..%d bytes (never shortened or hashed)",
                                req->nonce.len, CSCP_NONCE_MIN, CSCP_NONCE_MAX);
                return;
        }
        if (container && vtpmd_container_id_check(req->container_id, VTPMD_ID_MAX) < 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                "invalid container id (OCI rules: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most %d bytes)",
                                VTPMD_ID_MAX);
                return;
        }
        /* TDX: the selection is checked but ignored (a TD quote always holds MRTD and RTMR0..3), and may be empty. */
        if (req->n_host_pcrs == 0 && cscp_rot_kind(s->rot) == CSCP_ROT_TPM) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false, "no host PCRs selected");
                return;
        }
        memset(&job->sel, 0, sizeof(job->sel));
        r = req->n_host_pcrs ? cscp_pcrsel_from_wire(req->host_pcrs, req->n_host_pcrs, &job->sel) : 0;
        if (r < 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                "invalid host PCR selection (known banks sha1/256/384/512, PCRs 0-23, no duplicates)");
                return;
        }
        if (container && req->n_container_pcrs == 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                "a container challenge needs container_pcrs");
                return;
        }
        if (!container && req->n_container_pcrs > 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false, "container_pcrs without a container_id");
                return;
        }
        memset(&csel, 0, sizeof(csel));
        if (container && cscp_pcrsel_from_wire(req->container_pcrs, req->n_container_pcrs, &csel) < 0) {
                conn_send_error(
                        c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                        "invalid container PCR selection (known banks sha1/256/384/512, PCRs 0-23, no duplicates)");
                return;
        }
        if (!logs_valid(c, req, container))
                return;
        if (s->acl) {
                uint8_t fp[32];
                /* Same answer whether or not the container exists: nothing leaks to a client outside the ACL. */
                if (peer_fingerprint(c, fp) < 0 || !acl_allows(s->acl, fp, req->container_id)) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_PERMISSION_DENIED, false,
                                        "this client certificate is not allowed to challenge %s",
                                        container ? "this container" : "the host");
                        return;
                }
        }
        /* Our own copy: the frame is freed when this returns, the challenge lives on. */
        ch = calloc(1, sizeof(*ch));
        copy_len = cscp__challenge__get_packed_size(req);
        copy = malloc(copy_len ? copy_len : 1);
        if (!ch || !copy) {
                free(ch);
                free(copy);
                conn_send_error(c, CSCP__ERROR_CODE__ERR_INTERNAL, false, "out of memory");
                return;
        }
        cscp__challenge__pack(req, copy);
        ch->req = cscp__challenge__unpack(NULL, copy_len, copy);
        free(copy);
        if (!ch->req) {
                free(ch);
                conn_send_error(c, CSCP__ERROR_CODE__ERR_INTERNAL, false, "out of memory");
                return;
        }
        ch->conn = c;
        ch->ccel_at = -1;
        memcpy(job->nonce, req->nonce.data, req->nonce.len);
        job->nonce_len = req->nonce.len;
        job->have_leaf = false;
        job->done = quote_done;
        job->data = c;
        c->ch = ch;
        c->busy = true;
        c->refs++;
        if (!container) {
                tpmq_submit(&s->tpmq, job);
                return;
        }
        ch->work.data = ch;
        r = uv_queue_work(s->loop, &ch->work, vquote_work, vquote_after);
        if (r < 0) {
                ch_fail(ch, CSCP__ERROR_CODE__ERR_INTERNAL, r, "cannot queue the container quote: %s", uv_strerror(r));
                challenge_finish(c);
        }
}

/* An enrollment answer (attestd/enroll.c), on the loop thread. */
static void enroll_reply(void *ctx, uint8_t *frame, size_t len, Cscp__ErrorCode code, const char *msg)
{
        conn_t *c = ctx;

        if (c->closing)
                free(frame);
        else if (!frame)
                conn_send_error(c, code, false, "%s", msg);
        else if (conn_send(c, frame, len) < 0)
                conn_close(c, "cannot send enrollment answer");
        conn_unref(c);
}

static void handle_frame(conn_t *c, uint8_t *payload, size_t len)
{
        Cscp__Frame *f = NULL;
        int r = cscp_frame_unpack(payload, len, &f);

        free(payload);
        if (r == CSCP_E_VERSION) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_VERSION, true, "unsupported protocol version (this is %d)",
                                CSCP_PROTOCOL_VERSION);
                return;
        }
        if (r < 0) {
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, true, "malformed frame: %s", cscp_strerror(r));
                return;
        }
        if (f->body_case == CSCP__FRAME__BODY_CHALLENGE)
                handle_challenge(c, f->challenge);
        else if (f->body_case == CSCP__FRAME__BODY_ENROLL_REQUEST || f->body_case == CSCP__FRAME__BODY_ACTIVATE) {
                uint8_t fp[32];
                /* Enrollment uses the host TPM (ActivateCredential): with --acl, only clients allowed the host. */
                if (c->srv->acl && (peer_fingerprint(c, fp) < 0 || !acl_allows(c->srv->acl, fp, NULL))) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_PERMISSION_DENIED, false,
                                        "this client certificate is not allowed to enroll the host");
                        cscp__frame__free_unpacked(f, NULL);
                        return;
                }
                if (!c->srv->tpm) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_UNSUPPORTED, false,
                                        "TDX host: no AK to enroll; the quote is certified by its PCK chain");
                        cscp__frame__free_unpacked(f, NULL);
                        return;
                }
                c->busy = true;
                c->refs++;
                attestd_enroll_handle(&c->srv->enroll, &c->srv->tpmq, f, enroll_reply, c);
        } else
                conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, false,
                                "attestd answers Challenge, EnrollRequest and Activate messages");
        cscp__frame__free_unpacked(f, NULL);
}

/* Reads decrypted bytes, never past the end of the frame being received. */
static int conn_read_plain(conn_t *c, uint8_t *buf, size_t want)
{
        int n;

        if (!c->ssl) {
                n = BIO_read(c->in, buf, (int)want);
                return n > 0 ? n : 0;
        }
        n = SSL_read(c->ssl, buf, (int)want);
        if (n > 0)
                return n;
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
                (void)conn_flush_tls(c); /* e.g. a KeyUpdate answer */
                return 0;
        case SSL_ERROR_ZERO_RETURN:
                return CSCP_E_CLOSED;
        default:
                ERR_clear_error();
                return CSCP_E_TLS;
        }
}

/* Drives the connection as far as buffered input allows. */
static void conn_pump(conn_t *c)
{
        uint8_t buf[READ_CHUNK];

        if (c->ssl && !c->handshake_done && !c->closing) {
                int r = SSL_do_handshake(c->ssl);
                if (r == 1) {
                        c->handshake_done = true;
                        log_debug("%s: TLS handshake done (%s)", c->peer, SSL_get_cipher_name(c->ssl));
                } else {
                        int e = SSL_get_error(c->ssl, r);
                        if (e != SSL_ERROR_WANT_READ) {
                                char why[256] = "";
                                long vr = SSL_get_verify_result(c->ssl);
                                cscp_tls_errors(why, sizeof(why));
                                log_info("%s: TLS handshake refused: %s%s%s", c->peer, why,
                                         vr != X509_V_OK ? "; client certificate: " : "",
                                         vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
                                c->busy = true;
                                c->close_after_write = true;
                                if (BIO_ctrl_pending(c->out) == 0 || conn_flush_tls(c) < 0)
                                        conn_close(c, "handshake failed");
                                return;
                        }
                }
                if (conn_flush_tls(c) < 0) {
                        conn_close(c, "cannot send handshake");
                        return;
                }
                if (!c->handshake_done) {
                        conn_arm_timer(c);
                        return;
                }
        }
        while (!c->busy && !c->closing) {
                cscp_frame_reader_t *rd = &c->reader;
                size_t want = rd->hdr_got < CSCP_FRAME_HEADER ? CSCP_FRAME_HEADER - rd->hdr_got : rd->len - rd->got;
                uint8_t *frame;
                size_t used, flen;
                int n, r;

                if (want > sizeof(buf))
                        want = sizeof(buf);
                n = conn_read_plain(c, buf, want);
                if (n < 0) {
                        conn_close(c, n == CSCP_E_CLOSED ? "peer closed TLS" : "TLS error");
                        return;
                }
                if (n == 0)
                        break;
                r = cscp_frame_reader_feed(rd, buf, (size_t)n, &used, &frame, &flen);
                if (r == CSCP_E_TOO_BIG) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_TOO_LARGE, true, "frame over the limit of %zu bytes",
                                        rd->max);
                        return;
                }
                if (r < 0) {
                        conn_send_error(c, CSCP__ERROR_CODE__ERR_BAD_REQUEST, true, "malformed frame: %s",
                                        cscp_strerror(r));
                        return;
                }
                if (frame)
                        handle_frame(c, frame, flen);
        }
        resume_reading(c);
        conn_arm_timer(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        static char slab[READ_CHUNK]; /* the loop thread is the only reader */
        buf->base = slab;
        buf->len = sizeof(slab);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        conn_t *c = stream->data;

        if (nread == 0)
                return;
        if (nread < 0) {
                conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
                return;
        }
        if (c->draining)
                return; /* discarded: see conn_linger */
        if (BIO_write(c->in, buf->base, (int)nread) != nread) {
                conn_close(c, "out of memory buffering input");
                return;
        }
        /* While a request is answered, the socket is not read: nothing accumulates here. */
        if (c->busy) {
                uv_read_stop(stream);
                return;
        }
        conn_pump(c);
        if (c->busy && !c->closing)
                uv_read_stop(stream);
}

static void resume_reading(conn_t *c)
{
        if (!c->closing && (!c->busy || c->draining))
                (void)uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void on_connection(uv_stream_t *listener, int status)
{
        server_t *s = listener->data;
        struct sockaddr_storage ss;
        int sslen = sizeof(ss);
        conn_t *c;

        if (status < 0) {
                log_warn("accept: %s", uv_strerror(status));
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                log_error("out of memory accepting a connection");
                return;
        }
        c->srv = s;
        uv_tcp_init(s->loop, &c->tcp);
        uv_timer_init(s->loop, &c->timer);
        c->tcp.data = c->timer.data = c;
        c->refs = 2;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        cscp_frame_reader_init(&c->reader, s->cfg->max_frame);
        strcpy(c->peer, "?");
        if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
                conn_close(c, "accept failed");
                return;
        }
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
                char ip[INET6_ADDRSTRLEN] = "?";
                int port = 0;
                if (ss.ss_family == AF_INET) {
                        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
                        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
                        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                }
                snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
        }
        if (s->n_conns > s->cfg->max_connections) {
                log_warn("%s: refused: %u connections is the limit", c->peer, s->cfg->max_connections);
                conn_close(c, "connection limit");
                return;
        }
        uv_tcp_nodelay(&c->tcp, 1);
        c->in = BIO_new(BIO_s_mem());
        if (!c->in) {
                conn_close(c, "out of memory");
                return;
        }
        BIO_set_mem_eof_return(c->in, -1);
        if (s->ssl_ctx) {
                c->out = BIO_new(BIO_s_mem());
                c->ssl = SSL_new(s->ssl_ctx);
                if (!c->out || !c->ssl) {
                        SSL_free(c->ssl);
                        c->ssl = NULL;
                        conn_close(c, "out of memory");
                        return;
                }
                SSL_set_bio(c->ssl, c->in, c->out);
                SSL_set_accept_state(c->ssl);
        } else
                c->handshake_done = true;
        log_debug("%s: connected (%u open)", c->peer, s->n_conns);
        resume_reading(c);
        conn_arm_timer(c);
}

static void signal_cb(uv_signal_t *sig, int signum)
{
        server_t *s = sig->data;

        if (s->stopping)
                return;
        s->stopping = true;
        log_info("signal %d: shutting down", signum);
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
        for (conn_t *c = s->conns; c; c = c->next)
                conn_close(c, "shutdown");
}

static int parse_listen(const char *spec, struct sockaddr_storage *ret)
{
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon;
        char *end;
        unsigned long port;

        if (spec[0] == '[') {
                const char *rb = strchr(spec, ']');
                if (!rb || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, spec + 1, (size_t)(rb - spec - 1));
                host[rb - spec - 1] = '\0';
                colon = rb + 1;
        } else {
                colon = strrchr(spec, ':');
                if (!colon || (size_t)(colon - spec) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, spec, (size_t)(colon - spec));
                host[colon - spec] = '\0';
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port > 65535)
                return -EINVAL;
        if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ret) == 0)
                return 0;
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ret) == 0)
                return 0;
        return -EINVAL;
}

static int write_ready_file(server_t *s)
{
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        char ip[INET6_ADDRSTRLEN], line[INET6_ADDRSTRLEN + 16];
        int port;

        if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) < 0)
                return -EIO;
        if (ss.ss_family == AF_INET6) {
                uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
                port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                snprintf(line, sizeof(line), "[%s]:%d\n", ip, port);
        } else {
                uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
                port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                snprintf(line, sizeof(line), "%s:%d\n", ip, port);
        }
        log_info("listening on %.*s (%s)", (int)strlen(line) - 1, line,
                 s->ssl_ctx ? (s->cfg->client_ca ? "TLS 1.3, client certificates required" : "TLS 1.3") : "PLAINTEXT");
        if (!s->cfg->ready_file)
                return 0;
        return cscp_file_write_atomic(s->cfg->ready_file, line, strlen(line), 0644);
}

/* TDX: the CCEL's whole events (the 0xFF padding of its ACPI area cut off), kept for every challenge's LOG_CCEL. */
static void load_ccel(server_t *s)
{
        uint8_t *area = NULL;
        size_t area_len = 0, start = 0, len = 0;
        uint64_t count = 0;
        int r;

        r = cscp_rot_firmware_log(s->rot, &area, &area_len);
        if (r < 0) {
                log_warn("no CCEL (%s): LOG_CCEL and LOG_BOOT requests are left out of the evidence", cscp_strerror(r));
                return;
        }
        r = cscp_eventlog_slice(area, area_len, CSCP_EVENTLOG_TCG, 0, 0, &start, &len, &count);
        if (r < 0) {
                log_warn("the CCEL does not parse as a TCG log (%s): left out of the evidence", cscp_strerror(r));
                free(area);
                return;
        }
        s->ccel = malloc(len ? len : 1);
        if (!s->ccel) {
                log_warn("out of memory keeping the CCEL: left out of the evidence");
                free(area);
                return;
        }
        memcpy(s->ccel, area + start, len);
        s->ccel_len = len;
        free(area);
        log_info("CCEL: %llu events, %zu bytes", (unsigned long long)count, len);
}

/* Opens the host root of trust: tpm loads or creates the AK in the state directory, tdx reads the CCEL. */
static int open_rot(server_t *s)
{
        const attestd_config_t *cfg = s->cfg;
        cscp_rot_config_t rc = {.kind = cfg->rot, .tcti = cfg->tcti, .paths = cfg->tdx};
        char desc[512] = "";
        bool created = false;
        int r;

        if (cfg->rot == CSCP_ROT_TPM && mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                log_error("cannot create state directory %s: %s", cfg->state_dir, strerror(errno));
                return r;
        }
        r = cscp_rot_open(&rc, &s->rot);
        if (r < 0) {
                if (cfg->rot == CSCP_ROT_TPM)
                        log_error("cannot open the host TPM (tcti %s): %s", cfg->tcti ? cfg->tcti : "default",
                                  cscp_strerror(r));
                else
                        log_error("cannot open the TDX root of trust (--rot tdx): %s", cscp_strerror(r));
                return r;
        }
        s->tpm = cscp_rot_tpm(s->rot);
        s->merkle_alg = cscp_rot_merkle_alg(s->rot);
        s->merkle_len = cscp_rot_data_len(s->rot);
        if (cscp_rot_describe(s->rot, desc, sizeof(desc)) == 0)
                log_info("host root of trust: %s", desc);
        if (!s->tpm) {
                load_ccel(s);
                return 0;
        }
        r = cscp_tpm_ak_load_or_create(s->tpm, cfg->state_dir, cfg->ak_alg, &created);
        if (r < 0) {
                log_error("cannot %s the host AK in %s: %s", "load or create", cfg->state_dir, cscp_strerror(r));
                return r;
        }
        r = cscp_tpm_ak_public(s->tpm, &s->ak_public, &s->ak_public_len);
        if (r < 0)
                return r;
        log_info("host AK %s (%s) in %s", created ? "created" : "loaded",
                 cfg->ak_alg == CSCP_KEY_RSA_2048 ? "RSA-2048" : "ECC P-256", cfg->state_dir);
        return 0;
}

int attestd_run(const attestd_config_t *cfg)
{
        server_t s = {.cfg = cfg};
        struct sockaddr_storage addr;
        uv_loop_t loop;
        char err[512] = "";
        int r;

        if (parse_listen(cfg->listen, &addr) < 0) {
                log_error("--listen: '%s' is not ADDR:PORT", cfg->listen);
                return -EINVAL;
        }
        if (cfg->acl && (cfg->insecure_plaintext || cfg->no_client_auth)) {
                log_error("--acl names client certificates: it cannot work with %s",
                          cfg->insecure_plaintext ? "--insecure-plaintext" : "--no-client-auth");
                return -EINVAL;
        }
        if (cfg->acl) {
                r = acl_load(cfg->acl, &s.acl, err, sizeof(err));
                if (r < 0) {
                        log_error("--acl %s: %s", cfg->acl, err);
                        return r;
                }
                log_info("access control: %zu client certificates in %s", acl_rules(s.acl), cfg->acl);
        } else if (!cfg->insecure_plaintext)
                log_info("no --acl: every authenticated client may challenge the host and every container");
        if (!cfg->insecure_plaintext) {
                if (!cfg->client_ca && !cfg->no_client_auth) {
                        log_error("mutual TLS is the default: give --client-ca FILE (or --no-client-auth)");
                        acl_free(s.acl);
                        return -EINVAL;
                }
                r = cscp_tls_server_ctx(cfg->cert, cfg->key, cfg->no_client_auth ? NULL : cfg->client_ca, &s.ssl_ctx,
                                        err, sizeof(err));
                if (r < 0) {
                        log_error("TLS: %s", err);
                        acl_free(s.acl);
                        return r;
                }
        } else
                log_warn("--insecure-plaintext: challenges and evidence travel unauthenticated");

        r = open_rot(&s);
        if (r < 0)
                goto out_tpm;

        r = uv_loop_init(&loop);
        if (r < 0)
                goto out_tpm;
        s.loop = &loop;
        tpmq_init(&s.tpmq, &loop, s.rot);
        s.tpmq.max_batch = cfg->max_batch;
        attestd_enroll_init(&s.enroll, cfg->ak_alg, s.ak_public, s.ak_public_len);
        uv_tcp_init(&loop, &s.listener);
        s.listener.data = &s;
        r = uv_tcp_bind(&s.listener, (struct sockaddr *)&addr, 0);
        if (r == 0)
                r = uv_listen((uv_stream_t *)&s.listener, 128, on_connection);
        if (r < 0) {
                log_error("cannot listen on %s: %s", cfg->listen, uv_strerror(r));
                uv_close((uv_handle_t *)&s.listener, NULL);
                uv_run(&loop, UV_RUN_DEFAULT);
                goto out_loop;
        }
        uv_signal_init(&loop, &s.sigint);
        uv_signal_init(&loop, &s.sigterm);
        s.sigint.data = s.sigterm.data = &s;
        uv_signal_start(&s.sigint, signal_cb, SIGINT);
        uv_signal_start(&s.sigterm, signal_cb, SIGTERM);
        r = write_ready_file(&s);
        if (r < 0) {
                log_error("cannot write %s: %s", cfg->ready_file, cscp_strerror(r));
                signal_cb(&s.sigterm, SIGTERM);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        log_info("stopped");
out_loop:
        (void)uv_loop_close(&loop);
out_tpm:
        attestd_enroll_clear(&s.enroll);
        cscp_rot_free(s.rot);
        free(s.ccel);
        SSL_CTX_free(s.ssl_ctx);
        acl_free(s.acl);
        return r;
}
