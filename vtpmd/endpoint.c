/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mediated container endpoint (endpoint.h).
 *
 * Data socket: a client sends whole TPM commands (tag, size, code, ...); the
 * size is checked against RM_MAX_COMMAND before the body is read. A bad tag
 * or size gets a TPM error response and the connection is closed after it
 * (the framing is lost); everything else goes through rm_execute on the
 * libuv threadpool, holding the instance lock for the whole transaction
 * (acquire the TPM for the client, load contexts, the command) and one
 * connection to swtpm's private socket. The last client's contexts stay
 * loaded until someone else needs the TPM (rm.h, lazy eviction): another
 * client's command evicts them in rm_execute, and vtpmd's own conversations
 * (manufacture, measure, quote, re-extend, platform auth) take the same lock
 * and call endpoint_tpm_acquire first, so they see a TPM with nothing of any
 * client loaded and the two interleave safely.
 *
 * Clients: tpm2-tss's swtpm TCTI opens a new connection for every command,
 * so a client is a peer process (SO_PEERCRED pid), watched through a pidfd:
 * when it exits its space is dropped and its sessions flushed (as closing
 * /dev/tpmrm0 does). A peer whose pidfd cannot be opened gets a space per
 * connection. At most MAX_CLIENTS spaces and MAX_CONNS connections per vTPM.
 *
 * Control socket: CMD_GET_CAPABILITY (answers with only SET_LOCALITY and
 * GET_TPMESTABLISHED), CMD_SET_LOCALITY(0) (what the TCTI sends at init; any
 * other locality is TPM_BAD_LOCALITY), CMD_GET_TPMESTABLISHED (always 0);
 * every other command (INIT, SHUTDOWN, STOP, state blobs, SET_DATAFD, hash
 * sequences, buffer size, ...) is answered TPM_BAD_ORDINAL and the connection
 * closed. Nothing of it reaches swtpm.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <tss2/tss2_tpm2_types.h>

#define LOGMODULE endpoint
#include "core.h"
#include "endpoint.h"
#include "error.h"
#include "log.h"
#include "rm.h"

#define MAX_CLIENTS     32
#define MAX_CONNS       64
#define BACKEND_TIMEOUT 120 /* seconds: RSA key generation in libtpms can take a while */

/* swtpm control channel (tpm_ioctl.h) */
#define CMD_GET_CAPABILITY          1
#define CMD_GET_TPMESTABLISHED      4
#define CMD_SET_LOCALITY            5
#define PTM_CAP_GET_TPMESTABLISHED  0x4
#define PTM_CAP_SET_LOCALITY        0x8
#define TPM_BAD_ORDINAL             0x0a
#define TPM_BAD_LOCALITY            0x3d
#define TPM2_CC_SET_LOCALITY_VENDOR 0x20001000u /* vtpm_proxy: the kernel asks for a locality */

typedef struct endpoint endpoint_t;
typedef struct client client_t;

typedef enum conn_kind {
        CONN_DATA,
        CONN_CTRL,
        CONN_PROXY,
} conn_kind_t;

typedef struct conn {
        uv_pipe_t pipe; /* first member */
        endpoint_t *ep;
        client_t *cl;
        conn_kind_t kind;
        struct conn *prev, *next;
        uint8_t in[RM_MAX_COMMAND];
        size_t in_len;
        bool busy, closing, close_after_write;
        unsigned refs;
        /* the command in flight */
        uv_work_t work;
        uv_write_t wreq;
        uint64_t epoch;
        size_t cmd_len;
        uint8_t resp[RM_MAX_RESPONSE];
        size_t resp_len;
        int r;
} conn_t;

struct client {
        endpoint_t *ep;
        client_t *next;
        pid_t pid; /* 0: bound to one connection */
        int pidfd;
        uv_poll_t poll;
        bool poll_open, gone;
        unsigned refs;
        rm_space_t *space;
        uint64_t epoch; /* workers only (under the instance lock) */
        uv_work_t work;
};

struct endpoint {
        instance_t *inst;
        uv_pipe_t data, ctrl;
        bool data_open, ctrl_open, closing;
        unsigned refs;
        conn_t *conns;
        unsigned n_conns;
        client_t *clients;
        unsigned n_clients;
        uint64_t epoch;
        rm_policy_t policy;
};

static void ep_unref(endpoint_t *ep)
{
        if (--ep->refs > 0)
                return;
        instance_unref(ep->inst);
        free(ep);
}

/*
 * ---- the backend: swtpm's private data socket (worker, instance lock) ----
 * The connection is kept between client commands in inst->swtpm_fd (a connect
 * and accept less per command). swtpm serves one data connection at a time, so
 * endpoint_tpm_acquire closes it before vtpmd's own conversation (tpm2-tss
 * connects anew). A kept connection found dead when the command is sent
 * (swtpm restarted) is replaced once; a swtpm dying during a command fails it.
 */

typedef struct backend {
        const char *path;
        int fd;
} backend_t;

static int full_io(int fd, void *buf, size_t len, bool wr)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = wr ? send(fd, (uint8_t *)buf + done, len - done, MSG_NOSIGNAL)
                               : recv(fd, (uint8_t *)buf + done, len - done, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ECONNRESET;
                done += (size_t)n;
        }
        return 0;
}

static void backend_close(backend_t *b)
{
        if (b->fd >= 0)
                close(b->fd);
        b->fd = -1;
}

static int backend_connect(backend_t *b)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = BACKEND_TIMEOUT};

        if (strlen(b->path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, b->path);
        b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (b->fd < 0)
                return -errno;
        (void)setsockopt(b->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(b->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(b->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                backend_close(b);
                return r;
        }
        return 0;
}

static int backend_io(void *ctx, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap, size_t *ret_len)
{
        backend_t *b = ctx;
        bool reused = b->fd >= 0;
        uint32_t size;
        int r;

        for (;;) {
                if (b->fd < 0) {
                        r = backend_connect(b);
                        if (r < 0)
                                return r;
                }
                r = full_io(b->fd, (void *)cmd, len, true);
                if (r < 0 && reused && (r == -EPIPE || r == -ECONNRESET)) {
                        /* The kept connection was to a swtpm that is gone (nothing was read): once more on a new one.
                         */
                        backend_close(b);
                        reused = false;
                        continue;
                }
                break;
        }
        if (r == 0)
                r = full_io(b->fd, resp, 10, false);
        if (r < 0)
                goto fail;
        size = (uint32_t)resp[2] << 24 | (uint32_t)resp[3] << 16 | (uint32_t)resp[4] << 8 | resp[5];
        if (size < 10 || size > cap) {
                r = -EPROTO;
                goto fail;
        }
        r = full_io(b->fd, resp + 10, size - 10, false);
        if (r < 0)
                goto fail;
        *ret_len = size;
        return 0;
fail:
        backend_close(b); /* the framing is lost */
        return r;
}

/* ---- clients ------------------------------------------------------------------------------ */

static void client_flush_work(uv_work_t *w)
{
        client_t *cl = w->data;
        instance_t *inst = cl->ep->inst;
        backend_t b = {.path = inst->swtpm_sock, .fd = -1};

        uv_mutex_lock(&inst->lock);
        b.fd = inst->swtpm_fd;
        rm_space_flush(&inst->tpm, cl->space, backend_io, &b);
        inst->swtpm_fd = b.fd;
        uv_mutex_unlock(&inst->lock);
}

int endpoint_tpm_acquire(instance_t *inst)
{
        backend_t b = {.path = inst->swtpm_sock, .fd = inst->swtpm_fd};
        int r = rm_tpm_acquire(&inst->tpm, NULL, backend_io, &b);

        backend_close(&b); /* swtpm serves one connection at a time: vtpmd's own (tpm2-tss) comes next */
        inst->swtpm_fd = -1;
        if (r < 0)
                log_warn("%s: cannot evict the clients' contexts before vtpmd's own TPM work: %s", inst->uid,
                         strerror(-r));
        return r;
}

static void client_free(client_t *cl)
{
        endpoint_t *ep = cl->ep;

        rm_space_free(cl->space);
        free(cl);
        ep_unref(ep);
}

static void client_flush_after(uv_work_t *w, int status)
{
        client_t *cl = w->data;
        vtpmd_t *d = cl->ep->inst->d;

        (void)status;
        client_free(cl);
        control_job_done(d);
}

static void client_unref(client_t *cl)
{
        vtpmd_t *d;

        if (--cl->refs > 0)
                return;
        d = cl->ep->inst->d;
        /*
         * Its sessions hold TPM slots, and its objects too while it is the TPM's owner (lazy eviction); only a
         * worker under the instance lock may look. Without one (stopping) the owner reference keeps the space
         * and the next acquire flushes it.
         */
        if (!d->stopping) {
                cl->work.data = cl;
                if (control_queue(d, &cl->work, client_flush_work, client_flush_after) == 0)
                        return;
        }
        client_free(cl);
}

static void client_unlink(client_t *cl)
{
        endpoint_t *ep = cl->ep;

        for (client_t **p = &ep->clients; *p; p = &(*p)->next) {
                if (*p == cl) {
                        *p = cl->next;
                        ep->n_clients--;
                        break;
                }
        }
        cl->next = NULL;
}

static void client_poll_closed(uv_handle_t *h)
{
        client_t *cl = h->data;

        if (cl->pidfd >= 0)
                close(cl->pidfd);
        cl->pidfd = -1;
        cl->poll_open = false;
        client_unref(cl);
}

/* The client process is gone (or the endpoint closes): no new connection finds it. */
static void client_gone(client_t *cl)
{
        if (cl->gone)
                return;
        cl->gone = true;
        client_unlink(cl);
        if (cl->poll_open && !uv_is_closing((uv_handle_t *)&cl->poll)) {
                uv_poll_stop(&cl->poll);
                uv_close((uv_handle_t *)&cl->poll, client_poll_closed);
        } else if (!cl->poll_open) {
                client_unref(cl); /* the reference of a connection-bound client's "alive" state */
        }
}

static void client_poll_cb(uv_poll_t *p, int status, int events)
{
        client_t *cl = p->data;

        (void)status;
        (void)events;
        log_debug("%s: client pid %d exited; dropping its handles", cl->ep->inst->uid, (int)cl->pid);
        client_gone(cl);
}

static bool pidfd_dead(int fd)
{
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        return poll(&pfd, 1, 0) > 0;
}

/* The client for peer pid (a new one if needed); NULL when the limit is reached. Takes a reference. */
static client_t *client_get(endpoint_t *ep, pid_t pid)
{
        client_t *cl;
        int fd = -1;

        for (cl = ep->clients; cl && pid > 0; cl = cl->next) {
                if (cl->pid != pid)
                        continue;
                if (cl->pidfd >= 0 && pidfd_dead(cl->pidfd)) {
                        client_gone(cl); /* pid reused before we saw the exit */
                        break;
                }
                cl->refs++;
                return cl;
        }
        if (ep->n_clients >= MAX_CLIENTS)
                return NULL;
        cl = calloc(1, sizeof(*cl));
        if (!cl)
                return NULL;
        cl->space = rm_space_new();
        if (!cl->space) {
                free(cl);
                return NULL;
        }
        cl->ep = ep;
        cl->pidfd = -1;
        cl->epoch = ep->epoch;
        cl->refs = 2; /* alive (pidfd watch or connection binding) + the caller */
        ep->refs++;
        if (pid > 0)
                fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0 && uv_poll_init(ep->inst->d->loop, &cl->poll, fd) == 0) {
                cl->pid = pid;
                cl->pidfd = fd;
                cl->poll.data = cl;
                cl->poll_open = true;
                if (uv_poll_start(&cl->poll, UV_READABLE, client_poll_cb) < 0) {
                        cl->pid = 0;
                        uv_close((uv_handle_t *)&cl->poll, client_poll_closed);
                        cl->refs++; /* client_poll_closed drops one; the connection binding keeps its own */
                }
        } else if (fd >= 0) {
                close(fd);
        }
        cl->next = ep->clients;
        ep->clients = cl;
        ep->n_clients++;
        return cl;
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_unref(conn_t *c)
{
        endpoint_t *ep = c->ep;

        if (--c->refs > 0)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                ep->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        ep->n_conns--;
        if (c->cl) {
                if (c->cl->pid == 0)
                        client_gone(c->cl);
                client_unref(c->cl);
        }
        free(c);
        ep_unref(ep);
}

static void conn_closed_cb(uv_handle_t *h)
{
        conn_unref(h->data);
}

static void conn_close(conn_t *c)
{
        if (c->closing)
                return;
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

static void conn_pump(conn_t *c);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        conn_t *c = h->data;

        (void)suggested;
        buf->base = (char *)c->in + c->in_len;
        buf->len = sizeof(c->in) - c->in_len;
}

static void resume_reading(conn_t *c)
{
        if (!c->closing && !c->busy && c->in_len < sizeof(c->in))
                (void)uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static void write_cb(uv_write_t *req, int status)
{
        conn_t *c = req->data;

        c->busy = false;
        if (status < 0 || c->close_after_write) {
                conn_close(c);
        } else {
                conn_pump(c);
        }
        conn_unref(c);
}

static void conn_send(conn_t *c, const uint8_t *data, size_t len, bool close_after)
{
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

        if (data != c->resp) {
                memcpy(c->resp, data, len);
                b.base = (char *)c->resp;
        }
        c->busy = true;
        c->close_after_write = close_after;
        c->wreq.data = c;
        uv_read_stop((uv_stream_t *)&c->pipe);
        if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0) {
                c->busy = false;
                conn_close(c);
                return;
        }
        c->refs++;
}

static void send_rc(conn_t *c, uint32_t rc, bool close_after)
{
        uint8_t buf[16];
        size_t n = rm_error_response(rc, buf);

        conn_send(c, buf, n, close_after);
}

static void cmd_work(uv_work_t *w)
{
        conn_t *c = w->data;
        instance_t *inst = c->ep->inst;
        client_t *cl = c->cl;
        backend_t b = {.path = inst->swtpm_sock, .fd = -1};

        uv_mutex_lock(&inst->lock);
        b.fd = inst->swtpm_fd;
        if (cl->epoch != c->epoch) {
                if (inst->tpm.owner == cl->space)
                        (void)rm_tpm_acquire(&inst->tpm, NULL, backend_io, &b); /* what it loaded since */
                rm_space_reset(cl->space);
                cl->epoch = c->epoch;
        }
        c->r = rm_execute(&inst->tpm, cl->space, &c->ep->policy, backend_io, &b, c->in, c->cmd_len, c->resp,
                          &c->resp_len);
        inst->swtpm_fd = b.fd; /* kept for the next command (backend_io closed it on an error) */
        uv_mutex_unlock(&inst->lock);
}

static void cmd_after(uv_work_t *w, int status)
{
        conn_t *c = w->data;
        vtpmd_t *d = c->ep->inst->d;

        if (status < 0) {
                c->resp_len = rm_error_response(TPM2_RC_FAILURE, c->resp);
        } else if (c->r < 0) {
                log_warn("%s: swtpm unreachable for a client command: %s", c->ep->inst->uid, strerror(-c->r));
        }
        memmove(c->in, c->in + c->cmd_len, c->in_len - c->cmd_len);
        c->in_len -= c->cmd_len;
        c->busy = false;
        if (!c->closing)
                conn_send(c, c->resp, c->resp_len, false);
        conn_unref(c);
        control_job_done(d);
}

static void ctrl_answer(conn_t *c)
{
        uint8_t out[8] = {0};
        uint32_t code;

        if (c->in_len < 4)
                return;
        code = (uint32_t)c->in[0] << 24 | (uint32_t)c->in[1] << 16 | (uint32_t)c->in[2] << 8 | c->in[3];
        switch (code) {
        case CMD_GET_CAPABILITY:
                out[7] = PTM_CAP_GET_TPMESTABLISHED | PTM_CAP_SET_LOCALITY;
                c->in_len -= 4;
                memmove(c->in, c->in + 4, c->in_len);
                conn_send(c, out, 8, false);
                return;
        case CMD_GET_TPMESTABLISHED:
                c->in_len -= 4;
                memmove(c->in, c->in + 4, c->in_len);
                conn_send(c, out, 8, false);
                return;
        case CMD_SET_LOCALITY:
                if (c->in_len < 5)
                        return;
                if (c->in[4] != 0) {
                        out[3] = TPM_BAD_LOCALITY;
                        conn_send(c, out, 4, true);
                        return;
                }
                c->in_len -= 5;
                memmove(c->in, c->in + 5, c->in_len);
                conn_send(c, out, 4, false);
                return;
        default:
                log_info("%s: swtpm control command %u refused on %s", c->ep->inst->uid, code, c->ep->inst->ctrl);
                out[3] = TPM_BAD_ORDINAL;
                conn_send(c, out, 4, true);
                return;
        }
}

static void conn_pump(conn_t *c)
{
        vtpmd_t *d = c->ep->inst->d;
        uint32_t size;

        if (c->busy || c->closing)
                return;
        if (c->kind == CONN_CTRL) {
                ctrl_answer(c);
                if (!c->busy)
                        resume_reading(c);
                return;
        }
        if (c->in_len < 10) {
                resume_reading(c);
                return;
        }
        size = (uint32_t)c->in[2] << 24 | (uint32_t)c->in[3] << 16 | (uint32_t)c->in[4] << 8 | c->in[5];
        if (c->in[0] != 0x80 || (c->in[1] != 0x01 && c->in[1] != 0x02)) {
                send_rc(c, TPM2_RC_BAD_TAG, c->kind == CONN_DATA);
                c->in_len = 0;
                return;
        }
        if (size < 10 || size > RM_MAX_COMMAND) {
                /* Refused before reading it: the framing is lost, so the connection ends after the answer. */
                send_rc(c, TPM2_RC_COMMAND_SIZE, c->kind == CONN_DATA);
                c->in_len = 0;
                return;
        }
        if (c->in_len < size) {
                resume_reading(c);
                return;
        }
        c->cmd_len = size;
        if (c->kind == CONN_PROXY && size >= 10 &&
            ((uint32_t)c->in[6] << 24 | (uint32_t)c->in[7] << 16 | (uint32_t)c->in[8] << 8 | c->in[9]) ==
                    TPM2_CC_SET_LOCALITY_VENDOR) {
                /* The kernel asking for locality 0..4: swtpm is not told (locality is not used by vtpmd). */
                c->in_len -= size;
                memmove(c->in, c->in + size, c->in_len);
                send_rc(c, TPM2_RC_SUCCESS, false);
                return;
        }
        if (d->stopping || c->ep->closing) {
                send_rc(c, TPM2_RC_RETRY, true);
                c->in_len = 0;
                return;
        }
        c->busy = true;
        c->epoch = c->ep->epoch;
        c->work.data = c;
        uv_read_stop((uv_stream_t *)&c->pipe);
        if (control_queue(d, &c->work, cmd_work, cmd_after) < 0) {
                c->busy = false;
                send_rc(c, TPM2_RC_MEMORY, true);
                c->in_len = 0;
                return;
        }
        c->refs++;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
        conn_t *c = s->data;

        (void)buf;
        if (nread == 0)
                return;
        if (nread < 0) {
                conn_close(c);
                return;
        }
        c->in_len += (size_t)nread;
        uv_read_stop(s);
        conn_pump(c);
}

static conn_t *conn_new(endpoint_t *ep, conn_kind_t kind)
{
        conn_t *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->ep = ep;
        c->kind = kind;
        c->refs = 1;
        uv_pipe_init(ep->inst->d->loop, &c->pipe, 0);
        c->pipe.data = c;
        c->next = ep->conns;
        if (ep->conns)
                ep->conns->prev = c;
        ep->conns = c;
        ep->n_conns++;
        ep->refs++;
        return c;
}

static void on_connection(uv_stream_t *listener, int status)
{
        endpoint_t *ep = listener->data;
        conn_kind_t kind = listener == (uv_stream_t *)&ep->ctrl ? CONN_CTRL : CONN_DATA;
        struct ucred cr;
        socklen_t crlen = sizeof(cr);
        uv_os_fd_t fd;
        conn_t *c;

        if (status < 0)
                return;
        c = conn_new(ep, kind);
        if (!c)
                return;
        if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
                conn_close(c);
                return;
        }
        if (ep->n_conns > MAX_CONNS) {
                log_warn("%s: more than %d connections on the endpoint; refusing one", ep->inst->uid, MAX_CONNS);
                conn_close(c);
                return;
        }
        if (kind == CONN_DATA) {
                if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
                    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0)
                        cr.pid = 0;
                c->cl = client_get(ep, cr.pid);
                if (!c->cl) {
                        log_warn("%s: more than %d client processes on the endpoint; refusing one", ep->inst->uid,
                                 MAX_CLIENTS);
                        send_rc(c, TPM2_RC_MEMORY, true);
                        return;
                }
        }
        resume_reading(c);
}

/* ---- the endpoint --------------------------------------------------------------------------- */

static int listen_on(endpoint_t *ep, uv_pipe_t *p, const char *path)
{
        mode_t old;
        int r;

        (void)unlink(path); /* a socket of a previous vtpmd (or of swtpm, before item 6) */
        uv_pipe_init(ep->inst->d->loop, p, 0);
        p->data = ep;
        old = umask(0117);
        r = uv_pipe_bind(p, path);
        umask(old);
        if (r == 0)
                r = uv_listen((uv_stream_t *)p, 32, on_connection);
        if (r < 0) {
                log_error("%s: cannot listen on %s: %s", ep->inst->uid, path, uv_strerror(r));
                uv_close((uv_handle_t *)p, NULL);
                return r;
        }
        return 0;
}

static void listener_closed_cb(uv_handle_t *h)
{
        ep_unref(h->data);
}

int endpoint_open(instance_t *inst)
{
        endpoint_t *ep;
        int r;

        if (inst->ep)
                return 0;
        if (mkdir(inst->endpoint, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                log_error("%s: cannot create %s: %s", inst->uid, inst->endpoint, strerror(errno));
                return r;
        }
        ep = calloc(1, sizeof(*ep));
        if (!ep)
                return -ENOMEM;
        ep->inst = inst;
        instance_ref(inst);
        ep->refs = 1; /* the instance's pointer */
        ep->policy.ak_handle = inst->have_ident ? inst->ident.ak_handle : VTPM_AK_HANDLE;
        r = listen_on(ep, &ep->data, inst->sock);
        if (r < 0)
                goto fail;
        ep->data_open = true;
        ep->refs++;
        r = listen_on(ep, &ep->ctrl, inst->ctrl);
        if (r < 0) {
                uv_close((uv_handle_t *)&ep->data, listener_closed_cb);
                ep->data_open = false;
                goto fail;
        }
        ep->ctrl_open = true;
        ep->refs++;
        inst->ep = ep;
        log_debug("%s: endpoint %s (swtpm behind it: %s)", inst->uid, inst->sock, inst->swtpm_sock);
        return 0;
fail:
        ep->closing = true;
        ep_unref(ep);
        return r;
}

void endpoint_close(instance_t *inst)
{
        endpoint_t *ep = inst ? inst->ep : NULL;

        if (!ep)
                return;
        inst->ep = NULL;
        ep->closing = true;
        if (ep->data_open)
                uv_close((uv_handle_t *)&ep->data, listener_closed_cb);
        if (ep->ctrl_open)
                uv_close((uv_handle_t *)&ep->ctrl, listener_closed_cb);
        ep->data_open = ep->ctrl_open = false;
        for (conn_t *c = ep->conns; c; c = c->next)
                conn_close(c);
        while (ep->clients)
                client_gone(ep->clients);
        ep_unref(ep);
}

void endpoint_reset(instance_t *inst)
{
        if (inst && inst->ep)
                inst->ep->epoch++;
}

int endpoint_attach_fd(instance_t *inst, int fd, const char *name)
{
        endpoint_t *ep = inst->ep;
        conn_t *c;
        int r;

        if (!ep) {
                close(fd);
                return -ENOTCONN;
        }
        c = conn_new(ep, CONN_PROXY);
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        r = uv_pipe_open(&c->pipe, fd);
        if (r < 0) {
                close(fd);
                conn_close(c);
                return r;
        }
        c->cl = client_get(ep, 0);
        if (!c->cl) {
                conn_close(c);
                return -ENOMEM;
        }
        log_info("%s: serving %s through the resource manager", inst->uid, name);
        resume_reading(c);
        return 0;
}
