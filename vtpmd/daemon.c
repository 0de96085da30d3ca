/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vtpmd's loop: the Unix control socket, peer credentials, frame limits,
 * timeouts, one request at a time per connection, clean SIGTERM/SIGINT.
 *
 * Connection lifetime (as attestd's server.c): a conn_t owns its pipe and
 * timer handles and may have one request in flight; it is freed when both
 * handles are closed and no answer is pending (refs == 0). Reading stops
 * while a request is being answered and resumes after the answer was handed
 * to the kernel, so a client that pipelines cannot grow our buffers.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <tss2/tss2_tpm2_types.h>

#define LOGMODULE daemon
#include "core.h"
#include "error.h"
#include "frame.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK (16 * 1024)

typedef struct server server_t;

typedef struct conn {
        uv_pipe_t pipe; /* first member */
        uv_timer_t timer;
        uv_shutdown_t shutdown_req;
        server_t *srv;
        cscp_frame_reader_t reader;
        uint8_t in[READ_CHUNK];
        size_t in_len;
        char peer[64];
        unsigned refs;
        bool busy, closing, close_after_write, draining;
        struct conn *prev, *next;
} conn_t;

struct server {
        vtpmd_t d;
        const vtpmd_config_t *cfg;
        uv_pipe_t listener;
        bool listening;
        uv_signal_t sigint, sigterm;
        conn_t *conns;
        unsigned n_conns;
        char socket_path[PATH_MAX];
};

typedef struct write_req {
        uv_write_t req;
        conn_t *conn;
        uv_buf_t buf;
} write_req_t;

void vtpmd_config_defaults(vtpmd_config_t *c)
{
        memset(c, 0, sizeof(*c));
        c->rot = CSCP_ROT_TPM;
        c->state_dir = "/var/lib/cscp/vtpmd";
        c->run_dir = "/run/cscp";
        c->swtpm = "swtpm";
        c->ek_alg = CSCP_KEY_ECC_P256;
        c->host_pcr = 15;
        c->pool = 0;
        c->max_instances = 256;
        c->max_frame = VTPMD_FRAME_MAX_DEFAULT;
        c->max_connections = 128;
        c->idle_timeout_ms = 60 * 1000;
        c->read_timeout_ms = 10 * 1000;
        c->swtpm_start_timeout_ms = 10 * 1000;
        c->host_process_pcr = 11;
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
        uv_read_stop((uv_stream_t *)&c->pipe);
        uv_close((uv_handle_t *)&c->timer, handle_closed_cb);
        uv_close((uv_handle_t *)&c->pipe, handle_closed_cb);
}

static void timer_cb(uv_timer_t *t)
{
        conn_t *c = t->data;

        if (c->draining) {
                conn_close(c, "lingering close done");
                return;
        }
        log_info("%s: %s timeout, disconnecting", c->peer, cscp_frame_reader_pending(&c->reader) ? "read" : "idle");
        conn_close(c, "timeout");
}

static void conn_arm_timer(conn_t *c)
{
        const vtpmd_config_t *cfg = c->srv->cfg;

        if (c->closing || c->draining)
                return;
        if (c->busy) {
                uv_timer_stop(&c->timer);
                return;
        }
        uv_timer_start(&c->timer, timer_cb,
                       cscp_frame_reader_pending(&c->reader) ? cfg->read_timeout_ms : cfg->idle_timeout_ms, 0);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
        conn_t *c = req->data;

        if (status < 0)
                conn_close(c, "shutdown failed");
        conn_unref(c);
}

/* Shut our direction, discard input until the peer closes or the read timeout passes (see attestd). */
static void conn_linger(conn_t *c)
{
        if (c->closing || c->draining)
                return;
        c->draining = true;
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->pipe, shutdown_cb) < 0) {
                conn_close(c, "cannot shut down");
                return;
        }
        c->refs++;
        uv_timer_start(&c->timer, timer_cb, c->srv->cfg->read_timeout_ms, 0);
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
                c->busy = false;
                conn_pump(c);
        }
        conn_unref(c);
}

/* Queues a packed frame; takes ownership. */
static int conn_send(conn_t *c, uint8_t *data, size_t len)
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
        r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &w->buf, 1, write_cb);
        if (r < 0) {
                free(data);
                free(w);
                return r;
        }
        c->refs++;
        return 0;
}

static void conn_send_error(conn_t *c, Vtpmd__ErrorCode code, bool fatal, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void conn_send_error(conn_t *c, Vtpmd__ErrorCode code, bool fatal, const char *fmt, ...)
{
        char msg[256];
        uint8_t *buf;
        size_t len;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_info("%s: refusing: %s", c->peer, msg);
        c->busy = true;
        c->close_after_write = fatal;
        if (vtpmd_error_pack(code, msg, &buf, &len) < 0 || conn_send(c, buf, len) < 0)
                conn_close(c, "cannot send error");
}

/* The answer to the request in flight (control.c); the conn is kept alive by the ref taken below. */
static void reply_cb(void *conn, uint8_t *frame, size_t len)
{
        conn_t *c = conn;

        if (!frame) {
                conn_close(c, "no answer could be encoded");
        } else if (conn_send(c, frame, len) < 0) {
                conn_close(c, "cannot send the answer");
        }
        conn_unref(c);
}

static void handle_frame(conn_t *c, uint8_t *payload, size_t len)
{
        Vtpmd__VtpmRequest *req = NULL;
        int r = vtpmd_request_unpack(payload, len, &req);

        free(payload);
        if (r == CSCP_E_VERSION) {
                conn_send_error(c, VTPMD__ERROR_CODE__ERR_VERSION, true, "unsupported protocol version (this is %d)",
                                VTPMD_PROTOCOL_VERSION);
                return;
        }
        if (r == CSCP_E_TOO_BIG) {
                conn_send_error(c, VTPMD__ERROR_CODE__ERR_TOO_LARGE, true,
                                "a count or string in the request is over its limit");
                return;
        }
        if (r < 0) {
                conn_send_error(c, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, true, "malformed request: %s", cscp_strerror(r));
                return;
        }
        c->busy = true;
        c->refs++;
        control_handle(&c->srv->d, req, reply_cb, c);
}

static void conn_pump(conn_t *c)
{
        while (!c->busy && !c->closing && !c->draining && c->in_len > 0) {
                uint8_t *frame = NULL;
                size_t used = 0, flen = 0;
                int r = cscp_frame_reader_feed(&c->reader, c->in, c->in_len, &used, &frame, &flen);

                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
                if (r == CSCP_E_TOO_BIG) {
                        conn_send_error(c, VTPMD__ERROR_CODE__ERR_TOO_LARGE, true, "frame over the limit of %zu bytes",
                                        c->reader.max);
                        return;
                }
                if (r < 0) {
                        conn_send_error(c, VTPMD__ERROR_CODE__ERR_BAD_REQUEST, true, "malformed frame: %s",
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
        conn_t *c = h->data;

        (void)suggested;
        if (c->draining) {
                static char sink[READ_CHUNK]; /* discarded input; the loop thread is the only reader */
                buf->base = sink;
                buf->len = sizeof(sink);
                return;
        }
        buf->base = (char *)c->in + c->in_len;
        buf->len = sizeof(c->in) - c->in_len;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        conn_t *c = stream->data;

        (void)buf;
        if (nread == 0)
                return;
        if (nread < 0) {
                conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
                return;
        }
        if (c->draining)
                return;
        c->in_len += (size_t)nread;
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
        if (c->closing)
                return;
        if ((!c->busy && c->in_len < sizeof(c->in)) || c->draining)
                (void)uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static bool peer_allowed(const server_t *s, const struct ucred *cr)
{
        if (cr->uid == 0)
                return true;
        return s->cfg->have_control_group && cr->gid == s->cfg->control_gid;
}

static void on_connection(uv_stream_t *listener, int status)
{
        server_t *s = listener->data;
        struct ucred cr;
        socklen_t crlen = sizeof(cr);
        uv_os_fd_t fd;
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
        uv_pipe_init(s->d.loop, &c->pipe, 0);
        uv_timer_init(s->d.loop, &c->timer);
        c->pipe.data = c->timer.data = c;
        c->refs = 2;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        cscp_frame_reader_init(&c->reader, s->cfg->max_frame);
        strcpy(c->peer, "?");
        if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
                conn_close(c, "accept failed");
                return;
        }
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
                conn_close(c, "no peer credentials");
                return;
        }
        vtpmd_fmt(c->peer, sizeof(c->peer), "pid %d uid %u", (int)cr.pid, (unsigned)cr.uid);
        if (s->n_conns > s->cfg->max_connections) {
                log_warn("%s: refused: %u connections is the limit", c->peer, s->cfg->max_connections);
                conn_send_error(c, VTPMD__ERROR_CODE__ERR_BUSY, true, "too many connections (limit %u)",
                                s->cfg->max_connections);
                return;
        }
        if (!peer_allowed(s, &cr)) {
                log_warn("%s: refused: not root%s", c->peer,
                         s->cfg->have_control_group ? " nor in the control group" : "");
                conn_send_error(c, VTPMD__ERROR_CODE__ERR_PERMISSION_DENIED, true,
                                "permission denied: uid %u gid %u is not root%s", (unsigned)cr.uid, (unsigned)cr.gid,
                                s->cfg->have_control_group ? " and not in vtpmd's --control-group" : "");
                return;
        }
        log_debug("%s: connected (%u open)", c->peer, s->n_conns);
        resume_reading(c);
        conn_arm_timer(c);
}

static void finish_stop(vtpmd_t *d)
{
        (void)d;
        log_info("all work finished");
}

static void signal_cb(uv_signal_t *sig, int signum)
{
        server_t *s = sig->data;

        if (s->d.stopping)
                return;
        s->d.stopping = true;
        log_info("signal %d: shutting down (%s)", signum,
                 s->cfg->stop_instances ? "stopping every vTPM"
                                        : "vTPMs keep running and are re-adopted at next start");
        if (s->listening)
                uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = false;
        (void)unlink(s->socket_path);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
        pool_close(&s->d);
        for (conn_t *c = s->conns; c; c = c->next)
                conn_close(c, "shutdown");
        if (s->d.jobs == 0)
                control_stop_instances(&s->d);
}

static int mkdir_mode(const char *path, mode_t mode)
{
        struct stat st;

        if (mkdir(path, mode) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        if (lstat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int mkdir_p(const char *path, mode_t mode)
{
        char tmp[PATH_MAX];

        if (strlen(path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        strcpy(tmp, path);
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        return mkdir_mode(tmp, mode);
}

/* A live socket at path means another vtpmd; a dead one is removed. */
static int claim_socket_path(const char *path)
{
        vtpmd_client_t *c = NULL;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        if (vtpmd_client_connect(path, 1000, &c) == 0) {
                vtpmd_client_free(c);
                return -EADDRINUSE;
        }
        return unlink(path) < 0 ? -errno : 0;
}

static int listen_control(server_t *s)
{
        const vtpmd_config_t *cfg = s->cfg;
        mode_t old;
        int r;

        r = claim_socket_path(s->socket_path);
        if (r < 0) {
                log_error("control socket %s: %s", s->socket_path,
                          r == -EADDRINUSE ? "another vtpmd is answering there" : strerror(-r));
                return r;
        }
        uv_pipe_init(s->d.loop, &s->listener, 0);
        s->listener.data = s;
        old = umask(0177); /* the socket is created 0600, widened below only for the control group */
        r = uv_pipe_bind(&s->listener, s->socket_path);
        umask(old);
        if (r == 0 && cfg->have_control_group) {
                if (chown(s->socket_path, 0, cfg->control_gid) < 0 || chmod(s->socket_path, 0660) < 0)
                        r = -errno;
        }
        if (r == 0)
                r = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
        if (r < 0) {
                log_error("cannot listen on %s: %s", s->socket_path, uv_strerror(r));
                uv_close((uv_handle_t *)&s->listener, NULL);
                return r;
        }
        s->listening = true;
        return 0;
}

static int setup_dirs(server_t *s)
{
        vtpmd_t *d = &s->d;
        const vtpmd_config_t *cfg = s->cfg;
        struct sockaddr_un sa;
        size_t fixed;
        int r;

        if ((size_t)snprintf(d->inst_root, sizeof(d->inst_root), "%s/instances", cfg->state_dir) >=
                    sizeof(d->inst_root) ||
            (size_t)snprintf(d->kept_root, sizeof(d->kept_root), "%s/kept", cfg->state_dir) >= sizeof(d->kept_root) ||
            (size_t)snprintf(d->hostlog_path, sizeof(d->hostlog_path), "%s/host.log", cfg->state_dir) >=
                    sizeof(d->hostlog_path) ||
            (size_t)snprintf(d->vtpm_run, sizeof(d->vtpm_run), "%s/vtpm", cfg->run_dir) >= sizeof(d->vtpm_run) ||
            (size_t)snprintf(d->pool_run, sizeof(d->pool_run), "%s/vtpm-pool", cfg->run_dir) >= sizeof(d->pool_run))
                return -ENAMETOOLONG;
        if (strlen(d->inst_root) + 1 + VTPMD_UID_LEN + 32 >= PATH_MAX)
                return -ENAMETOOLONG;
        if (cfg->socket)
                vtpmd_fmt(s->socket_path, sizeof(s->socket_path), "%s", cfg->socket);
        else
                vtpmd_fmt(s->socket_path, sizeof(s->socket_path), "%s/vtpmd.sock", cfg->run_dir);
        if (strlen(s->socket_path) >= sizeof(sa.sun_path)) {
                log_error("control socket path %s is longer than %zu bytes", s->socket_path, sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        /* <run>/vtpm/<id>/tpm.sock.ctrl must fit a sockaddr_un: that bounds the container id. */
        fixed = strlen(d->vtpm_run) + strlen("/") + strlen("/tpm.sock.ctrl");
        d->id_max = fixed + 1 < sizeof(sa.sun_path) ? sizeof(sa.sun_path) - 1 - fixed : 0;
        if (d->id_max > VTPMD_ID_MAX)
                d->id_max = VTPMD_ID_MAX;
        /* swtpm's private sockets: <state>/instances/<uid>/swtpm.sock.ctrl (instance.c). */
        if (strlen(d->inst_root) + 1 + VTPMD_UID_LEN + strlen("/swtpm.sock.ctrl") >= sizeof(sa.sun_path)) {
                log_error("--state-dir %s is too long: swtpm's socket paths would not fit in %zu bytes", cfg->state_dir,
                          sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        if (d->id_max < 16 ||
            strlen(d->pool_run) + 1 + VTPMD_UID_LEN + strlen("/tpm.sock.ctrl") >= sizeof(sa.sun_path)) {
                log_error("--run-dir %s is too long: container socket paths would not fit in %zu bytes", cfg->run_dir,
                          sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        if ((r = mkdir_p(cfg->state_dir, 0700)) < 0 || (r = mkdir_mode(d->inst_root, 0700)) < 0 ||
            (r = mkdir_p(cfg->run_dir, 0755)) < 0 || (r = mkdir_mode(d->vtpm_run, 0755)) < 0 ||
            (r = mkdir_mode(d->pool_run, 0700)) < 0) {
                log_error("cannot create the state or run directories under %s, %s: %s", cfg->state_dir, cfg->run_dir,
                          strerror(-r));
                return r;
        }
        return 0;
}

static int write_ready_file(server_t *s)
{
        char line[PATH_MAX + 2];

        if (!s->cfg->ready_file)
                return 0;
        vtpmd_fmt(line, sizeof(line), "%s\n", s->socket_path);
        return cscp_file_write_atomic(s->cfg->ready_file, line, strlen(line), 0644);
}

int vtpmd_run(const vtpmd_config_t *cfg)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA256, 0};
        const cscp_rot_config_t rot = {.kind = cfg->rot, .tcti = cfg->tcti, .paths = cfg->tdx};
        server_t *s;
        uv_loop_t loop;
        char msg[512] = "";
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cfg = cfg;
        s->d.cfg = cfg;
        s->d.stopped_cb = finish_stop;
        uv_mutex_init(&s->d.hostlog_lock);
        r = setup_dirs(s);
        if (r < 0)
                goto out;
        if (vtpmd_find_swtpm(cfg->swtpm, s->d.swtpm_path, sizeof(s->d.swtpm_path)) < 0) {
                s->d.swtpm_path[0] = '\0';
                log_warn("swtpm binary '%s' not found: every Create will fail until it is installed", cfg->swtpm);
        }
        if (cfg->rot == CSCP_ROT_TDX && !cfg->tcti) {
                /* keys.c seals the master key to a TPM; a TD has none of its own, and vtpmd has no unsealed mode. */
                log_error("--rot tdx: the master key is sealed to a TPM and this TDX host names none: give --tcti of "
                          "the TPM to seal it to (e.g. the TD's vTPM); vtpmd has no unsealed master key");
                r = CSCP_E_UNSUPPORTED;
                goto out;
        }
        r = keys_master_load_or_create(cfg->state_dir, cfg->tcti, s->d.master, msg, sizeof(msg));
        if (r < 0) {
                log_error("master key: %s", msg[0] ? msg : cscp_strerror(r));
                goto out;
        }
        if (r == KEYS_MASTER_CREATED)
                log_info("created the master key, sealed to the host TPM in %s/master.sealed", cfg->state_dir);
        else if (r == KEYS_MASTER_MIGRATED)
                log_info("sealed the master key to the host TPM in %s/master.sealed, removed the plain master.key",
                         cfg->state_dir);
        else if (r == KEYS_MASTER_PLAIN_REMOVED)
                log_info("removed %s/master.key left by an interrupted migration (master.sealed holds the same key)",
                         cfg->state_dir);
        msg[0] = '\0';
        /* TPM: the SHA-256 bank, as always; TDX: the root's banks, {SHA-384} (RTMRs). */
        r = hostlog_open_rot(s->d.hostlog_path, &rot, cfg->host_pcr, cfg->rot == CSCP_ROT_TDX ? NULL : banks,
                             &s->d.hostlog, msg, sizeof(msg));
        if (r < 0) {
                log_error("host log %s (host PCR %u, %s %s): %s%s%s", s->d.hostlog_path, cfg->host_pcr,
                          cfg->rot == CSCP_ROT_TDX ? "rot" : "tcti",
                          cfg->rot == CSCP_ROT_TDX ? "tdx"
                          : cfg->tcti              ? cfg->tcti
                                                   : "default",
                          cscp_strerror(r), msg[0] ? ": " : "", msg);
                goto out;
        }
        r = hostmeasure_start(&s->d, msg, sizeof(msg));
        if (r < 0) {
                log_error("measurement policy: %s", msg);
                goto out_hostlog;
        }
        r = uv_loop_init(&loop);
        if (r < 0)
                goto out_hostlog;
        s->d.loop = &loop;
        pool_init(&s->d);
        r = registry_recover(&s->d);
        if (r < 0) {
                log_error("cannot read the registry %s: %s", s->d.inst_root, strerror(-r));
                s->d.stopping = true;
                pool_close(&s->d);
                goto run;
        }
        r = listen_control(s);
        if (r < 0) {
                s->d.stopping = true;
                pool_close(&s->d);
                goto run;
        }
        uv_signal_init(&loop, &s->sigint);
        uv_signal_init(&loop, &s->sigterm);
        s->sigint.data = s->sigterm.data = s;
        uv_signal_start(&s->sigint, signal_cb, SIGINT);
        uv_signal_start(&s->sigterm, signal_cb, SIGTERM);
        log_info("listening on %s (host PCR %u, pool %u, at most %u vTPMs, swtpm %s)", s->socket_path, cfg->host_pcr,
                 cfg->pool, cfg->max_instances, s->d.swtpm_path[0] ? s->d.swtpm_path : cfg->swtpm);
        pool_refill(&s->d);
        r = write_ready_file(s);
        if (r < 0) {
                log_error("cannot write %s: %s", cfg->ready_file, cscp_strerror(r));
                signal_cb(&s->sigterm, SIGTERM);
        }
run:
        if (s->d.stopping && s->d.jobs == 0)
                control_stop_instances(&s->d);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) < 0)
                log_warn("event loop closed with handles still open");
        log_info("stopped");
out_hostlog:
        hostlog_close(s->d.proclog);
        hostlog_close(s->d.hostlog);
out:
        OPENSSL_cleanse(s->d.master, sizeof(s->d.master));
        uv_mutex_destroy(&s->d.hostlog_lock);
        free(s);
        return r;
}
