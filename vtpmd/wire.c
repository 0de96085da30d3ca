/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vtpmd control frames: 4-byte big-endian length + one VtpmRequest or
 * VtpmResponse (proto/vtpmd.proto). The stream side uses libcscp's generic
 * cscp_frame_reader (limit checked before allocation); this file packs,
 * checks what it unpacks, and holds a small blocking client for vtpmctl and
 * the tests.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "error.h"
#include "frame.h"

int vtpmd_fmt(char *dst, size_t n, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vsnprintf(dst, n, fmt, ap);
        va_end(ap);
        return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int vtpmd_container_id_check(const char *id, size_t max_len)
{
        size_t n;

        if (!id || !id[0])
                return -EINVAL;
        n = strnlen(id, max_len + 1);
        if (n > max_len)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (alnum)
                        continue;
                if (i == 0 || (c != '_' && c != '.' && c != '+' && c != '-'))
                        return -EINVAL;
        }
        return 0;
}

static bool str_ok(const char *s)
{
        return !s || strnlen(s, VTPMD_MAX_STRING + 1) <= VTPMD_MAX_STRING;
}

static bool strv_ok(char *const *v, size_t n, size_t max)
{
        if (n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!str_ok(v[i]))
                        return false;
        return true;
}

/* Limits the decoder cannot express: counts and lengths inside a well-formed request. */
static int request_limits(const Vtpmd__VtpmRequest *m)
{
        switch (m->body_case) {
        case VTPMD__VTPM_REQUEST__BODY_CREATE: {
                const Vtpmd__Measurements *ms = m->create->measurements;
                if (!str_ok(m->create->container_id))
                        return CSCP_E_TOO_BIG;
                if (!ms)
                        return 0;
                if (!str_ok(ms->runtime_name) || !str_ok(ms->runtime_version) || !str_ok(ms->config_digest) ||
                    !str_ok(ms->image_name) || !strv_ok(ms->args, ms->n_args, VTPMD_MAX_ARGS) ||
                    !strv_ok(ms->env, ms->n_env, VTPMD_MAX_ENV) || !strv_ok(ms->layers, ms->n_layers, VTPMD_MAX_LAYERS))
                        return CSCP_E_TOO_BIG;
                if (ms->n_annotations > VTPMD_MAX_ANNOTATIONS)
                        return CSCP_E_TOO_BIG;
                for (size_t i = 0; i < ms->n_annotations; i++) {
                        if (!str_ok(ms->annotations[i]->key) || !str_ok(ms->annotations[i]->value))
                                return CSCP_E_TOO_BIG;
                        if (!ms->annotations[i]->key || !ms->annotations[i]->key[0])
                                return CSCP_E_PROTO;
                }
                return 0;
        }
        case VTPMD__VTPM_REQUEST__BODY_DESTROY:
                return str_ok(m->destroy->container_id) ? 0 : CSCP_E_TOO_BIG;
        case VTPMD__VTPM_REQUEST__BODY_LIST:
                return 0;
        case VTPMD__VTPM_REQUEST__BODY_STATUS:
                return str_ok(m->status->container_id) ? 0 : CSCP_E_TOO_BIG;
        case VTPMD__VTPM_REQUEST__BODY_QUOTE:
                if (!str_ok(m->quote->container_id) || m->quote->nonce.len > 64 || m->quote->n_pcrs > 16)
                        return CSCP_E_TOO_BIG;
                for (size_t i = 0; i < m->quote->n_pcrs; i++)
                        if (m->quote->pcrs[i]->n_pcrs > 24)
                                return CSCP_E_TOO_BIG;
                return 0;
        case VTPMD__VTPM_REQUEST__BODY_MEASURE:
                if (!str_ok(m->measure->container_id) || m->measure->n_fields > CSCP_CM_MAX_FIELDS)
                        return CSCP_E_TOO_BIG;
                for (size_t i = 0; i < m->measure->n_fields; i++)
                        if (m->measure->fields[i]->value.len > VTPMD_MAX_STRING)
                                return CSCP_E_TOO_BIG;
                return 0;
        case VTPMD__VTPM_REQUEST__BODY__NOT_SET:
        case _VTPMD__VTPM_REQUEST__BODY__CASE_IS_INT_SIZE:
        default:
                return CSCP_E_PROTO;
        }
}

int vtpmd_request_unpack(const uint8_t *payload, size_t len, Vtpmd__VtpmRequest **ret)
{
        Vtpmd__VtpmRequest *m;
        int r;

        if (!payload || len == 0)
                return CSCP_E_PROTO;
        m = vtpmd__vtpm_request__unpack(NULL, len, payload);
        if (!m)
                return CSCP_E_PROTO;
        /* Only canonical encodings (as cscp_frame_unpack): what we accept re-encodes to the same size. */
        if (vtpmd__vtpm_request__get_packed_size(m) != len) {
                r = CSCP_E_PROTO;
                goto fail;
        }
        if (m->version != VTPMD_PROTOCOL_VERSION) {
                r = CSCP_E_VERSION;
                goto fail;
        }
        r = request_limits(m);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        vtpmd__vtpm_request__free_unpacked(m, NULL);
        return r;
}

int vtpmd_response_unpack(const uint8_t *payload, size_t len, Vtpmd__VtpmResponse **ret)
{
        Vtpmd__VtpmResponse *m;

        if (!payload || len == 0)
                return CSCP_E_PROTO;
        m = vtpmd__vtpm_response__unpack(NULL, len, payload);
        if (!m)
                return CSCP_E_PROTO;
        if (m->version != VTPMD_PROTOCOL_VERSION) {
                vtpmd__vtpm_response__free_unpacked(m, NULL);
                return CSCP_E_VERSION;
        }
        if (m->body_case == VTPMD__VTPM_RESPONSE__BODY__NOT_SET) {
                vtpmd__vtpm_response__free_unpacked(m, NULL);
                return CSCP_E_PROTO;
        }
        *ret = m;
        return 0;
}

static int pack_prefixed(const ProtobufCMessage *m, size_t max, uint8_t **ret, size_t *ret_len)
{
        return cscp_frame_pack_message(m, max ? max : VTPMD_FRAME_MAX_DEFAULT, ret, ret_len);
}

int vtpmd_request_pack(Vtpmd__VtpmRequest *m, size_t max, uint8_t **ret, size_t *ret_len)
{
        m->version = VTPMD_PROTOCOL_VERSION;
        return pack_prefixed(&m->base, max, ret, ret_len);
}

int vtpmd_response_pack(Vtpmd__VtpmResponse *m, size_t max, uint8_t **ret, size_t *ret_len)
{
        m->version = VTPMD_PROTOCOL_VERSION;
        return pack_prefixed(&m->base, max, ret, ret_len);
}

int vtpmd_error_pack(Vtpmd__ErrorCode code, const char *message, uint8_t **ret, size_t *ret_len)
{
        Vtpmd__VtpmResponse resp = VTPMD__VTPM_RESPONSE__INIT;
        Vtpmd__Error e = VTPMD__ERROR__INIT;

        e.code = code;
        e.message = (char *)(message ? message : "");
        resp.body_case = VTPMD__VTPM_RESPONSE__BODY_ERROR;
        resp.error = &e;
        return vtpmd_response_pack(&resp, 0, ret, ret_len);
}

const char *vtpmd_error_code_name(Vtpmd__ErrorCode code)
{
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&vtpmd__error_code__descriptor, code);
        return v ? v->name : "ERR_UNKNOWN";
}

/* ---- client ------------------------------------------------------------ */

struct vtpmd_client {
        int fd;
        int timeout_ms;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vtpmd_client_connect(const char *path, int timeout_ms, vtpmd_client_t **ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        vtpmd_client_t *c;
        int fd;

        if (!path || strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
        *ret = c;
        return 0;
}

void vtpmd_client_free(vtpmd_client_t *c)
{
        if (!c)
                return;
        close(c->fd);
        free(c);
}

static int wait_fd(int fd, short events, int64_t deadline)
{
        struct pollfd p = {.fd = fd, .events = events};
        int64_t left = deadline - now_ms();
        int n;

        if (left <= 0)
                return CSCP_E_TIMEOUT;
        n = poll(&p, 1, (int)left);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        if (n == 0)
                return CSCP_E_TIMEOUT;
        return 0;
}

int vtpmd_client_call(vtpmd_client_t *c, Vtpmd__VtpmRequest *req, Vtpmd__VtpmResponse **ret)
{
        int64_t deadline = now_ms() + c->timeout_ms;
        cscp_frame_reader_t rd;
        uint8_t *out = NULL, *frame = NULL;
        size_t out_len, off = 0, flen = 0;
        int r;

        r = vtpmd_request_pack(req, 0, &out, &out_len);
        if (r < 0)
                return r;
        while (off < out_len) {
                ssize_t n = send(c->fd, out + off, out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        r = wait_fd(c->fd, POLLOUT, deadline);
                        if (r < 0)
                                goto out;
                        continue;
                }
                if (n < 0) {
                        r = errno == EPIPE || errno == ECONNRESET ? CSCP_E_CLOSED : -errno;
                        goto out;
                }
                off += (size_t)n;
        }
        cscp_frame_reader_init(&rd, 64u * 1024 * 1024);
        while (!frame) {
                uint8_t buf[16 * 1024];
                size_t used = 0, pos = 0;
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        r = wait_fd(c->fd, POLLIN, deadline);
                        if (r < 0)
                                break;
                        continue;
                }
                if (n < 0) {
                        r = errno == ECONNRESET ? CSCP_E_CLOSED : -errno;
                        break;
                }
                if (n == 0) {
                        r = CSCP_E_CLOSED;
                        break;
                }
                /* One answer per request: bytes after it would be a protocol error, but we stop at the frame. */
                while (pos < (size_t)n && !frame) {
                        r = cscp_frame_reader_feed(&rd, buf + pos, (size_t)n - pos, &used, &frame, &flen);
                        if (r < 0)
                                break;
                        pos += used;
                }
                if (r < 0)
                        break;
        }
        cscp_frame_reader_reset(&rd);
        if (frame) {
                r = vtpmd_response_unpack(frame, flen, ret);
                free(frame);
        }
out:
        free(out);
        return r;
}
