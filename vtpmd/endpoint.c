/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mediated container endpoint (endpoint.h).
 *
 * One thread per vTPM (the endpoint thread) serves it: it accepts on the data
 * and control sockets, reads commands, runs each through the resource manager
 * (rm_execute) holding the instance lock, and writes the answer; the libuv
 * loop and its threadpool take no part in a client command. The thread keeps
 * one connection to swtpm's private socket (inst->swtpm_fd, under the lock)
 * and reads each answer from it whole (usually one recv). The last client's
 * contexts stay loaded until someone else needs the TPM (rm.h, lazy
 * eviction): another client's command evicts them in rm_execute, and vtpmd's
 * own conversations (manufacture, measure, quote, re-extend, platform auth)
 * take the same lock and call endpoint_tpm_acquire first, so they see a TPM
 * with nothing of any client loaded and the two interleave safely.
 *
 * Data socket: a client sends whole TPM commands (tag, size, code, ...); the
 * size is checked against RM_MAX_COMMAND before the body is read. A bad tag
 * or size gets a TPM error response and the connection is closed after it
 * (the framing is lost). An answer the client does not read (socket buffer
 * full) stops reading from that connection until it is written.
 *
 * Clients: tpm2-tss's swtpm TCTI opens a new connection for every command,
 * so a client is a peer process (SO_PEERCRED pid), watched through a pidfd
 * polled by the endpoint thread: when it exits its space is dropped and its
 * sessions flushed (as closing /dev/tpmrm0 does). A peer whose pidfd cannot
 * be opened gets a space per connection. At most MAX_CLIENTS spaces and
 * MAX_CONNS connections per vTPM.
 *
 * Control socket: CMD_GET_CAPABILITY (answers with only SET_LOCALITY and
 * GET_TPMESTABLISHED), CMD_SET_LOCALITY(0) (what the TCTI sends at init; any
 * other locality is TPM_BAD_LOCALITY), CMD_GET_TPMESTABLISHED (always 0);
 * every other command (INIT, SHUTDOWN, STOP, state blobs, SET_DATAFD, hash
 * sequences, buffer size, ...) is answered TPM_BAD_ORDINAL and the connection
 * closed. Nothing of it reaches swtpm.
 *
 * Lifetime: endpoint_open binds the sockets and starts the thread;
 * endpoint_close (loop) asks it to stop through an eventfd; the thread closes
 * every connection and socket, drops its clients (vtpmd stopping or the
 * instance going away: their contexts are not flushed, the next acquire
 * does) and signals the loop (uv_async), which joins it and frees the
 * endpoint. A command in flight is finished first.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
#define BACKEND_TIMEOUT 120         /* seconds: RSA key generation in libtpms can take a while */
#define THREAD_STACK    (512 << 10) /* rm_execute keeps a few 4 KiB buffers on the stack */
#define ACCEPT_PAUSE_MS 100         /* out of descriptors: the listeners are left alone this long */

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

/* Endpoint thread only. */
typedef struct conn {
        int fd;
        conn_kind_t kind;
        client_t *cl;
        bool dead, close_after_write;
        size_t in_len;
        size_t out_len, out_off; /* an answer not yet written (out_off < out_len) */
        uint8_t in[RM_MAX_COMMAND];
        uint8_t out[RM_MAX_RESPONSE];
} conn_t;

/* Endpoint thread only. */
struct client {
        client_t *next;
        pid_t pid; /* 0: bound to one connection */
        int pidfd;
        unsigned refs; /* alive (pidfd watch or connection binding) + one per connection */
        bool gone;
        rm_space_t *space;
        uint64_t epoch; /* the vTPM incarnation its space belongs to */
};

struct endpoint {
        instance_t *inst;
        rm_policy_t policy;
        int data_fd, ctrl_fd, wake_fd;
        uv_thread_t thread;
        uv_async_t done; /* the thread is finishing: the loop joins it and frees the endpoint */
        atomic_bool stop;
        _Atomic uint64_t epoch; /* endpoint_reset */
        uv_mutex_t lock;        /* pending_fd */
        int pending_fd;         /* endpoint_attach_fd: a descriptor for the thread to serve */
        /* endpoint thread only */
        conn_t *conns[MAX_CONNS];
        unsigned n_conns;
        client_t *clients;
        unsigned n_clients;
};

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * ---- the backend: swtpm's private data socket (endpoint thread or worker, instance lock) ----
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

static int send_all(int fd, const uint8_t *buf, size_t len)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
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
        size_t got = 0, size = 0;
        int r;

        for (;;) {
                if (b->fd < 0) {
                        r = backend_connect(b);
                        if (r < 0)
                                return r;
                }
                r = send_all(b->fd, cmd, len);
                if (r < 0 && reused && (r == -EPIPE || r == -ECONNRESET)) {
                        /* The kept connection was to a swtpm that is gone (nothing was read): once more on a new one.
                         */
                        backend_close(b);
                        reused = false;
                        continue;
                }
                break;
        }
        if (r < 0)
                goto fail;
        /* swtpm writes an answer in one piece: one recv, as many as it takes otherwise; never past its size. */
        while (got < 10 || got < size) {
                ssize_t n = recv(b->fd, resp + got, (size ? size : cap) - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -ECONNRESET;
                        goto fail;
                }
                got += (size_t)n;
                if (size == 0 && got >= 10) {
                        size = get32(resp + 2);
                        if (size < 10 || size > cap || got > size) {
                                r = -EPROTO;
                                goto fail;
                        }
                }
        }
        *ret_len = size;
        return 0;
fail:
        backend_close(b); /* the framing is lost */
        return r;
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

/* ---- clients (endpoint thread) ------------------------------------------------------------ */

static bool ep_stopping(endpoint_t *ep)
{
        /* d->stopping is the loop's plain bool; a stale false only lets one more command through. */
        return atomic_load(&ep->stop) || __atomic_load_n(&ep->inst->d->stopping, __ATOMIC_RELAXED);
}

static void client_unref(endpoint_t *ep, client_t *cl)
{
        instance_t *inst = ep->inst;

        if (--cl->refs > 0)
                return;
        /*
         * Its sessions hold TPM slots, and its objects too while it is the TPM's owner (lazy eviction). Stopping:
         * the owner reference keeps the space and the next acquire flushes it.
         */
        if (!ep_stopping(ep)) {
                backend_t b = {.path = inst->swtpm_sock};
                uv_mutex_lock(&inst->lock);
                b.fd = inst->swtpm_fd;
                rm_space_flush(&inst->tpm, cl->space, backend_io, &b);
                inst->swtpm_fd = b.fd;
                uv_mutex_unlock(&inst->lock);
        }
        rm_space_free(cl->space);
        free(cl);
}

/* The client process is gone (or the endpoint closes): no new connection finds it. */
static void client_gone(endpoint_t *ep, client_t *cl)
{
        if (cl->gone)
                return;
        cl->gone = true;
        for (client_t **p = &ep->clients; *p; p = &(*p)->next) {
                if (*p == cl) {
                        *p = cl->next;
                        ep->n_clients--;
                        break;
                }
        }
        cl->next = NULL;
        if (cl->pidfd >= 0)
                close(cl->pidfd);
        cl->pidfd = -1;
        client_unref(ep, cl); /* the "alive" reference */
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

        for (cl = ep->clients; cl && pid > 0; cl = cl->next) {
                if (cl->pid != pid)
                        continue;
                if (pidfd_dead(cl->pidfd)) {
                        client_gone(ep, cl); /* pid reused before we saw the exit */
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
        cl->pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1; /* pidfds are close-on-exec */
        cl->pid = cl->pidfd >= 0 ? pid : 0;
        cl->epoch = atomic_load(&ep->epoch);
        cl->refs = 2; /* alive + the caller */
        cl->next = ep->clients;
        ep->clients = cl;
        ep->n_clients++;
        return cl;
}

/* ---- connections (endpoint thread) ---------------------------------------------------------- */

/* Writes what is left of the answer; the connection waits for POLLOUT when the client does not read. */
static void conn_flush(conn_t *c)
{
        while (!c->dead && c->out_off < c->out_len) {
                ssize_t n = c->kind == CONN_PROXY
                                    ? write(c->fd, c->out + c->out_off, c->out_len - c->out_off)
                                    : send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0) {
                        c->dead = true;
                        return;
                }
                c->out_off += (size_t)n;
        }
        c->out_len = c->out_off = 0;
        if (c->close_after_write)
                c->dead = true;
}

static void conn_send(conn_t *c, const uint8_t *data, size_t len, bool close_after)
{
        if (data != c->out)
                memcpy(c->out, data, len);
        c->out_len = len;
        c->out_off = 0;
        c->close_after_write = close_after;
        conn_flush(c);
}

static void send_rc(conn_t *c, uint32_t rc, bool close_after)
{
        uint8_t buf[16];
        size_t n = rm_error_response(rc, buf);

        conn_send(c, buf, n, close_after);
}

static void consume(conn_t *c, size_t n)
{
        c->in_len -= n;
        if (c->in_len > 0)
                memmove(c->in, c->in + n, c->in_len);
}

/* One control command if a whole one is buffered; false when more bytes are needed. */
static bool ctrl_answer(endpoint_t *ep, conn_t *c)
{
        uint8_t out[8] = {0};
        uint32_t code;

        if (c->in_len < 4)
                return false;
        code = get32(c->in);
        switch (code) {
        case CMD_GET_CAPABILITY:
                out[7] = PTM_CAP_GET_TPMESTABLISHED | PTM_CAP_SET_LOCALITY;
                consume(c, 4);
                conn_send(c, out, 8, false);
                return true;
        case CMD_GET_TPMESTABLISHED:
                consume(c, 4);
                conn_send(c, out, 8, false);
                return true;
        case CMD_SET_LOCALITY:
                if (c->in_len < 5)
                        return false;
                if (c->in[4] != 0) {
                        out[3] = TPM_BAD_LOCALITY;
                        conn_send(c, out, 4, true);
                        return true;
                }
                consume(c, 5);
                conn_send(c, out, 4, false);
                return true;
        default:
                log_info("%s: swtpm control command %u refused on %s", ep->inst->uid, code, ep->inst->ctrl);
                out[3] = TPM_BAD_ORDINAL;
                conn_send(c, out, 4, true);
                return true;
        }
}

/* One client command through the RM, the answer written straight from where rm_execute put it. */
static void conn_execute(endpoint_t *ep, conn_t *c, size_t len)
{
        instance_t *inst = ep->inst;
        client_t *cl = c->cl;
        backend_t b = {.path = inst->swtpm_sock};
        uint64_t epoch = atomic_load(&ep->epoch);
        size_t out_len = 0;
        int r;

        uv_mutex_lock(&inst->lock);
        b.fd = inst->swtpm_fd;
        if (cl->epoch != epoch) {
                if (inst->tpm.owner == cl->space)
                        (void)rm_tpm_acquire(&inst->tpm, NULL, backend_io, &b); /* what it loaded since */
                rm_space_reset(cl->space);
                cl->epoch = epoch;
        }
        r = rm_execute(&inst->tpm, cl->space, &ep->policy, backend_io, &b, c->in, len, c->out, &out_len);
        inst->swtpm_fd = b.fd; /* kept for the next command (backend_io closed it on an error) */
        uv_mutex_unlock(&inst->lock);
        if (r < 0)
                log_warn("%s: swtpm unreachable for a client command: %s", inst->uid, strerror(-r));
        consume(c, len);
        conn_send(c, c->out, out_len, false);
}

/* Answers every whole command buffered, until an answer waits to be written or the connection ends. */
static void conn_pump(endpoint_t *ep, conn_t *c)
{
        uint32_t size;

        while (!c->dead && c->out_len == 0) {
                if (c->kind == CONN_CTRL) {
                        if (!ctrl_answer(ep, c))
                                return;
                        continue;
                }
                if (c->in_len < 10)
                        return;
                size = get32(c->in + 2);
                if (c->in[0] != 0x80 || (c->in[1] != 0x01 && c->in[1] != 0x02)) {
                        c->in_len = 0;
                        send_rc(c, TPM2_RC_BAD_TAG, c->kind == CONN_DATA);
                        continue;
                }
                if (size < 10 || size > RM_MAX_COMMAND) {
                        /* Refused before reading it: the framing is lost, so the connection ends after the answer. */
                        c->in_len = 0;
                        send_rc(c, TPM2_RC_COMMAND_SIZE, c->kind == CONN_DATA);
                        continue;
                }
                if (c->in_len < size)
                        return;
                if (c->kind == CONN_PROXY && get32(c->in + 6) == TPM2_CC_SET_LOCALITY_VENDOR) {
                        /* The kernel asking for locality 0..4: swtpm is not told (locality is not used by vtpmd). */
                        consume(c, size);
                        send_rc(c, TPM2_RC_SUCCESS, false);
                        continue;
                }
                if (ep_stopping(ep)) {
                        c->in_len = 0;
                        send_rc(c, TPM2_RC_RETRY, true);
                        continue;
                }
                conn_execute(ep, c, size);
        }
}

/* Reads what the client sent (false: nothing more for now) and answers what is whole. */
static void conn_read(endpoint_t *ep, conn_t *c)
{
        ssize_t n;

        if (c->dead || c->out_len > 0 || c->in_len >= sizeof(c->in))
                return;
        n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
        if (n <= 0) {
                c->dead = true; /* end of file, or an error */
                return;
        }
        c->in_len += (size_t)n;
        conn_pump(ep, c);
}

static void conn_free(endpoint_t *ep, conn_t *c)
{
        close(c->fd);
        if (c->cl) {
                if (c->cl->pid == 0)
                        client_gone(ep, c->cl);
                client_unref(ep, c->cl);
        }
        free(c);
}

/* A new connection (fd: non-blocking, close-on-exec); its first bytes are read at once. Takes ownership of fd. */
static void conn_add(endpoint_t *ep, int fd, conn_kind_t kind)
{
        struct ucred cr;
        socklen_t crlen = sizeof(cr);
        conn_t *c;

        if (ep->n_conns >= MAX_CONNS) {
                log_warn("%s: more than %d connections on the endpoint; refusing one", ep->inst->uid, MAX_CONNS);
                close(fd);
                return;
        }
        c = malloc(sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        *c = (conn_t){.fd = fd, .kind = kind};
        ep->conns[ep->n_conns++] = c;
        if (kind == CONN_CTRL) {
                conn_read(ep, c);
                return;
        }
        if (kind == CONN_DATA && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0)
                cr.pid = 0;
        c->cl = client_get(ep, kind == CONN_DATA ? cr.pid : 0);
        if (!c->cl) {
                log_warn("%s: more than %d client processes on the endpoint; refusing one", ep->inst->uid, MAX_CLIENTS);
                send_rc(c, TPM2_RC_MEMORY, true);
                return;
        }
        conn_read(ep, c); /* the TCTI writes its command right after connecting: usually there already */
}

/* ---- the endpoint thread -------------------------------------------------------------------- */

/* false: the listener is out of descriptors (or memory) for now. */
static bool ep_accept(endpoint_t *ep, int lfd, conn_kind_t kind)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd >= 0) {
                conn_add(ep, fd, kind);
                return true;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("%s: cannot accept on the endpoint: %s", ep->inst->uid, strerror(errno));
                return false;
        }
        return true; /* EAGAIN, a connection aborted before it was taken, EINTR */
}

static void ep_take_pending(endpoint_t *ep)
{
        uint64_t v;
        int fd, fl;

        (void)!read(ep->wake_fd, &v, sizeof(v));
        uv_mutex_lock(&ep->lock);
        fd = ep->pending_fd;
        ep->pending_fd = -1;
        uv_mutex_unlock(&ep->lock);
        if (fd < 0)
                return;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                log_warn("%s: cannot serve the vtpm_proxy device: %s", ep->inst->uid, strerror(errno));
                close(fd);
                return;
        }
        conn_add(ep, fd, CONN_PROXY);
}

static void ep_sweep(endpoint_t *ep)
{
        for (unsigned i = 0; i < ep->n_conns;) {
                conn_t *c = ep->conns[i];
                if (!c->dead) {
                        i++;
                        continue;
                }
                ep->conns[i] = ep->conns[--ep->n_conns];
                conn_free(ep, c);
        }
}

static void ep_thread(void *arg)
{
        enum { FIXED = 3 };
        endpoint_t *ep = arg;
        struct pollfd pfd[FIXED + MAX_CONNS + MAX_CLIENTS];
        client_t *pcl[MAX_CLIENTS];
        conn_t *pconn[MAX_CONNS];
        bool paused = false;

        while (!atomic_load(&ep->stop)) {
                unsigned n = 0, nconn = 0, ncl = 0;
                int k;

                pfd[n++] = (struct pollfd){.fd = ep->wake_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = paused ? -1 : ep->data_fd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = paused ? -1 : ep->ctrl_fd, .events = POLLIN};
                for (unsigned i = 0; i < ep->n_conns; i++) {
                        conn_t *c = ep->conns[i];
                        pconn[nconn++] = c;
                        pfd[n++] = (struct pollfd){.fd = c->fd, .events = c->out_len > 0 ? POLLOUT : POLLIN};
                }
                for (client_t *cl = ep->clients; cl && ncl < MAX_CLIENTS; cl = cl->next) {
                        if (cl->pidfd < 0)
                                continue;
                        pcl[ncl++] = cl;
                        pfd[n++] = (struct pollfd){.fd = cl->pidfd, .events = POLLIN};
                }
                k = poll(pfd, n, paused ? ACCEPT_PAUSE_MS : -1);
                paused = false;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("%s: endpoint poll: %s", ep->inst->uid, strerror(errno));
                        break;
                }
                /* Exits first: a client found by pid below is a live one (client_get checks again). */
                for (unsigned i = 0; i < ncl; i++)
                        if (pfd[FIXED + nconn + i].revents) {
                                log_debug("%s: client pid %d exited; dropping its handles", ep->inst->uid,
                                          (int)pcl[i]->pid);
                                client_gone(ep, pcl[i]);
                        }
                if (pfd[0].revents)
                        ep_take_pending(ep);
                for (unsigned i = 0; i < nconn; i++) {
                        conn_t *c = pconn[i];
                        short ev = pfd[FIXED + i].revents;
                        if (!ev || c->dead)
                                continue;
                        if (c->out_len > 0) {
                                conn_flush(c);
                                conn_pump(ep, c); /* what the client sent meanwhile */
                        } else {
                                conn_read(ep, c);
                        }
                }
                if (pfd[1].revents && !ep_accept(ep, ep->data_fd, CONN_DATA))
                        paused = true;
                if (pfd[2].revents && !ep_accept(ep, ep->ctrl_fd, CONN_CTRL))
                        paused = true;
                ep_sweep(ep);
        }
        /* Closing: every connection, then every client (stopping: their contexts are not flushed). */
        for (unsigned i = 0; i < ep->n_conns; i++)
                ep->conns[i]->dead = true;
        ep_sweep(ep);
        while (ep->clients)
                client_gone(ep, ep->clients);
        close(ep->data_fd);
        close(ep->ctrl_fd);
        ep->data_fd = ep->ctrl_fd = -1;
        uv_async_send(&ep->done);
}

/* ---- the endpoint (loop thread) -------------------------------------------------------------- */

static int listen_on(endpoint_t *ep, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        mode_t old;
        int fd, r = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path); /* a socket of a previous vtpmd (or of swtpm, before item 6) */
        old = umask(0117);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 32) < 0)
                r = -errno;
        umask(old);
        if (r < 0) {
                log_error("%s: cannot listen on %s: %s", ep->inst->uid, path, strerror(-r));
                close(fd);
                return r;
        }
        return fd;
}

static void ep_free(endpoint_t *ep)
{
        if (ep->data_fd >= 0)
                close(ep->data_fd);
        if (ep->ctrl_fd >= 0)
                close(ep->ctrl_fd);
        if (ep->wake_fd >= 0)
                close(ep->wake_fd);
        if (ep->pending_fd >= 0)
                close(ep->pending_fd);
        uv_mutex_destroy(&ep->lock);
        instance_unref(ep->inst);
        free(ep);
}

static void ep_closed_cb(uv_handle_t *h)
{
        ep_free(h->data);
}

static void ep_done_cb(uv_async_t *a)
{
        endpoint_t *ep = a->data;

        uv_thread_join(&ep->thread);
        uv_close((uv_handle_t *)&ep->done, ep_closed_cb);
}

int endpoint_open(instance_t *inst)
{
        uv_thread_options_t opt = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = THREAD_STACK};
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
        ep->data_fd = ep->ctrl_fd = ep->wake_fd = ep->pending_fd = -1;
        uv_mutex_init(&ep->lock);
        atomic_init(&ep->stop, false);
        atomic_init(&ep->epoch, 0);
        ep->policy.ak_handle = inst->have_ident ? inst->ident.ak_handle : VTPM_AK_HANDLE;
        r = listen_on(ep, inst->sock);
        if (r < 0)
                goto fail;
        ep->data_fd = r;
        r = listen_on(ep, inst->ctrl);
        if (r < 0)
                goto fail;
        ep->ctrl_fd = r;
        ep->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ep->wake_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = uv_async_init(inst->d->loop, &ep->done, ep_done_cb);
        if (r < 0)
                goto fail;
        ep->done.data = ep;
        r = uv_thread_create_ex(&ep->thread, &opt, ep_thread, ep);
        if (r < 0) {
                log_error("%s: cannot start the endpoint thread: %s", inst->uid, uv_strerror(r));
                uv_close((uv_handle_t *)&ep->done, ep_closed_cb);
                return r;
        }
        inst->ep = ep;
        log_debug("%s: endpoint %s (swtpm behind it: %s)", inst->uid, inst->sock, inst->swtpm_sock);
        return 0;
fail:
        ep_free(ep);
        return r;
}

static void ep_wake(endpoint_t *ep)
{
        uint64_t one = 1;

        (void)!write(ep->wake_fd, &one, sizeof(one));
}

void endpoint_close(instance_t *inst)
{
        endpoint_t *ep = inst ? inst->ep : NULL;

        if (!ep)
                return;
        inst->ep = NULL;
        atomic_store(&ep->stop, true);
        ep_wake(ep); /* the thread finishes a command in flight, closes everything and signals ep->done */
}

void endpoint_reset(instance_t *inst)
{
        if (inst && inst->ep)
                atomic_fetch_add(&inst->ep->epoch, 1);
}

int endpoint_attach_fd(instance_t *inst, int fd, const char *name)
{
        endpoint_t *ep = inst->ep;
        int r = 0;

        if (!ep) {
                close(fd);
                return -ENOTCONN;
        }
        uv_mutex_lock(&ep->lock);
        if (ep->pending_fd >= 0)
                r = -EBUSY;
        else
                ep->pending_fd = fd;
        uv_mutex_unlock(&ep->lock);
        if (r < 0) {
                close(fd);
                return r;
        }
        ep_wake(ep);
        log_info("%s: serving %s through the resource manager", inst->uid, name);
        return 0;
}
