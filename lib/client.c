/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client.h"
#include "error.h"
#include "frame.h"
#include "tls.h"

struct cscp_conn {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl; /* NULL in plaintext mode */
        size_t max_frame;
};

/*
 * A peer that hung up must not kill the caller with SIGPIPE: OpenSSL writes
 * with write(2) (in SSL_connect, SSL_read and SSL_shutdown too), so every
 * public function blocks SIGPIPE for the calling thread, and one raised
 * meanwhile is consumed before the mask is restored.
 */
typedef struct sigpipe_guard {
        sigset_t old;
        bool was_pending;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g)
{
        sigset_t set, pending;

        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigemptyset(&pending);
        (void)sigpending(&pending);
        g->was_pending = sigismember(&pending, SIGPIPE);
        (void)pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(sigpipe_guard_t *g)
{
        sigset_t set, pending;
        struct timespec zero = {0, 0};

        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigemptyset(&pending);
        if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
                while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                        ;
        (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* "host:port", "[v6]:port" -> host, port (host without brackets). */
static int split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
        const char *colon, *h = s, *hend;

        if (*s == '[') {
                hend = strchr(s, ']');
                if (!hend || hend[1] != ':')
                        return -EINVAL;
                h = s + 1;
                colon = hend + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                hend = colon;
        }
        if (hend == h || (size_t)(hend - h) >= hostlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
                return -EINVAL;
        memcpy(host, h, (size_t)(hend - h));
        host[hend - h] = '\0';
        strcpy(port, colon + 1);
        for (const char *p = port; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;
        return 0;
}

static int connect_timeout(const char *host, const char *port, int timeout_ms, char *err, size_t errlen)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL, *ai;
        int fd = -1, r, last = -ECONNREFUSED;

        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0) {
                snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (ai = res; ai; ai = ai->ai_next) {
                struct pollfd pfd;
                int soerr = 0;
                socklen_t sl = sizeof(soerr);

                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
                if (fd < 0) {
                        last = -errno;
                        continue;
                }
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        last = -errno;
                        goto next;
                }
                pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
                do
                        r = poll(&pfd, 1, timeout_ms);
                while (r < 0 && errno == EINTR);
                if (r == 0) {
                        last = CSCP_E_TIMEOUT;
                        goto next;
                }
                if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
                        last = -errno;
                        goto next;
                }
                if (soerr) {
                        last = -soerr;
                        goto next;
                }
                /* Connected: back to blocking with per-call timeouts. */
                struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
                int one = 1;
                (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                freeaddrinfo(res);
                return fd;
        next:
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        snprintf(err, errlen, "cannot connect to %s port %s: %s", host, port, cscp_strerror(last));
        return last;
}

void cscp_conn_free(cscp_conn_t *c)
{
        if (!c)
                return;
        if (c->ssl) {
                sigpipe_guard_t g;
                sigpipe_block(&g);
                (void)SSL_shutdown(c->ssl);
                sigpipe_restore(&g);
                SSL_free(c->ssl);
        }
        SSL_CTX_free(c->ctx);
        if (c->fd >= 0)
                close(c->fd);
        free(c);
}

static bool is_ip_literal(const char *host)
{
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int conn_open(const cscp_client_opts_t *o, cscp_conn_t **ret, char *err, size_t errlen)
{
        char host[256], port[16];
        int timeout = o->timeout_ms > 0 ? o->timeout_ms : 30000;
        cscp_conn_t *c;
        int r;

        err[0] = '\0';
        if (!o->server || split_hostport(o->server, host, sizeof(host), port, sizeof(port)) < 0) {
                snprintf(err, errlen, "server must be HOST:PORT or [IPv6]:PORT, got '%s'", o->server ? o->server : "");
                return -EINVAL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->max_frame = o->max_frame ? o->max_frame : CSCP_FRAME_MAX_DEFAULT;
        if (!o->insecure_plaintext) {
                r = cscp_tls_client_ctx(o->ca, o->cert, o->key, &c->ctx, err, errlen);
                if (r < 0)
                        goto fail;
        }
        r = connect_timeout(host, port, timeout, err, errlen);
        if (r < 0)
                goto fail;
        c->fd = r;
        if (o->insecure_plaintext) {
                *ret = c;
                return 0;
        }
        c->ssl = SSL_new(c->ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
                r = CSCP_E_TLS;
                snprintf(err, errlen, "cannot set up TLS");
                goto fail;
        }
        if (is_ip_literal(host)) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
                        r = CSCP_E_TLS;
                        goto fail;
                }
        } else if (SSL_set1_host(c->ssl, host) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1) {
                r = CSCP_E_TLS;
                goto fail;
        }
        if (SSL_connect(c->ssl) != 1) {
                long vr = SSL_get_verify_result(c->ssl);
                if (vr != X509_V_OK) {
                        snprintf(err, errlen, "server certificate rejected: %s", X509_verify_cert_error_string(vr));
                        r = CSCP_E_TLS_PEER;
                } else {
                        snprintf(err, errlen, "TLS handshake with %s failed: ", o->server);
                        cscp_tls_errors(err, errlen);
                        if (strlen(err) == strlen("TLS handshake with  failed: ") + strlen(o->server))
                                snprintf(err, errlen, "TLS handshake with %s failed: connection closed", o->server);
                        r = CSCP_E_TLS;
                }
                ERR_clear_error();
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        ERR_clear_error();
        cscp_conn_free(c);
        return r;
}

static int io_error(cscp_conn_t *c, int n, const char *what, char *err, size_t errlen)
{
        if (c->ssl) {
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && n == 0)) {
                        snprintf(err, errlen, "%s: connection closed by server", what);
                        return CSCP_E_CLOSED;
                }
                if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        snprintf(err, errlen, "%s: timed out", what);
                        return CSCP_E_TIMEOUT;
                }
                snprintf(err, errlen, "%s: TLS error: ", what);
                cscp_tls_errors(err, errlen);
                if (e == SSL_ERROR_SYSCALL && errno)
                        snprintf(err + strlen(err), errlen - strlen(err), "%s", strerror(errno));
                return CSCP_E_TLS;
        }
        if (n == 0) {
                snprintf(err, errlen, "%s: connection closed by server", what);
                return CSCP_E_CLOSED;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                snprintf(err, errlen, "%s: timed out", what);
                return CSCP_E_TIMEOUT;
        }
        snprintf(err, errlen, "%s: %s", what, strerror(errno));
        return -errno;
}

static int write_all(cscp_conn_t *c, const uint8_t *p, size_t len, char *err, size_t errlen)
{
        while (len > 0) {
                int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
                int n = c->ssl ? SSL_write(c->ssl, p, chunk) : (int)send(c->fd, p, (size_t)chunk, MSG_NOSIGNAL);
                if (n <= 0) {
                        if (!c->ssl && n < 0 && errno == EINTR)
                                continue;
                        return io_error(c, n, "sending", err, errlen);
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int read_exact(cscp_conn_t *c, uint8_t *p, size_t len, char *err, size_t errlen)
{
        while (len > 0) {
                int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
                int n = c->ssl ? SSL_read(c->ssl, p, chunk) : (int)recv(c->fd, p, (size_t)chunk, 0);
                if (n <= 0) {
                        if (!c->ssl && n < 0 && errno == EINTR)
                                continue;
                        return io_error(c, n, "receiving", err, errlen);
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int cscp_conn_write_raw(cscp_conn_t *c, const void *buf, size_t len)
{
        sigpipe_guard_t g;
        char err[256];
        int r;

        sigpipe_block(&g);
        r = write_all(c, buf, len, err, sizeof(err));
        sigpipe_restore(&g);
        return r;
}

static int conn_roundtrip(cscp_conn_t *c, const Cscp__Frame *req, Cscp__Frame **ret_resp, char *err, size_t errlen)
{
        uint8_t *out = NULL, hdr[CSCP_FRAME_HEADER], *payload = NULL;
        size_t out_len;
        uint32_t n;
        int r;

        err[0] = '\0';
        r = cscp_frame_pack(req, c->max_frame, &out, &out_len);
        if (r < 0) {
                snprintf(err, errlen, "cannot encode request: %s", cscp_strerror(r));
                return r;
        }
        r = write_all(c, out, out_len, err, errlen);
        free(out);
        if (r < 0) {
                /* The server may have refused early and said why: read its answer if there is one. */
                char rerr[64];
                int wr = r;
                if (read_exact(c, hdr, sizeof(hdr), rerr, sizeof(rerr)) < 0)
                        return wr;
        } else {
                r = read_exact(c, hdr, sizeof(hdr), err, errlen);
                if (r < 0)
                        return r;
        }
        n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (n == 0 || n > c->max_frame) {
                snprintf(err, errlen, "answer frame of %u bytes refused (limit %zu)", n, c->max_frame);
                return n == 0 ? CSCP_E_PROTO : CSCP_E_TOO_BIG;
        }
        payload = malloc(n);
        if (!payload)
                return -ENOMEM;
        r = read_exact(c, payload, n, err, errlen);
        if (r == 0) {
                r = cscp_frame_unpack(payload, n, ret_resp);
                if (r < 0)
                        snprintf(err, errlen, "answer is not a valid message: %s", cscp_strerror(r));
        }
        free(payload);
        return r;
}

int cscp_conn_open(const cscp_client_opts_t *o, cscp_conn_t **ret, char *err, size_t errlen)
{
        sigpipe_guard_t g;
        int r;

        sigpipe_block(&g);
        r = conn_open(o, ret, err, errlen);
        sigpipe_restore(&g);
        return r;
}

int cscp_conn_roundtrip(cscp_conn_t *c, const Cscp__Frame *req, Cscp__Frame **ret_resp, char *err, size_t errlen)
{
        sigpipe_guard_t g;
        int r;

        sigpipe_block(&g);
        r = conn_roundtrip(c, req, ret_resp, err, errlen);
        sigpipe_restore(&g);
        return r;
}
