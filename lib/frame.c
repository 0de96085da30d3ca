/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"

void cscp_frame_reader_init(cscp_frame_reader_t *r, size_t max)
{
        memset(r, 0, sizeof(*r));
        r->max = max ? max : CSCP_FRAME_MAX_DEFAULT;
        if (r->max > CSCP_FRAME_MAX_LIMIT)
                r->max = CSCP_FRAME_MAX_LIMIT;
}

void cscp_frame_reader_reset(cscp_frame_reader_t *r)
{
        free(r->buf);
        r->buf = NULL;
        r->hdr_got = r->len = r->got = 0;
}

int cscp_frame_reader_pending(const cscp_frame_reader_t *r)
{
        return r->hdr_got > 0;
}

int cscp_frame_reader_feed(cscp_frame_reader_t *r, const uint8_t *data, size_t len, size_t *ret_consumed,
                           uint8_t **ret_frame, size_t *ret_len)
{
        size_t used = 0;

        *ret_frame = NULL;
        *ret_len = 0;
        while (r->hdr_got < CSCP_FRAME_HEADER && used < len)
                r->hdr[r->hdr_got++] = data[used++];
        if (r->hdr_got < CSCP_FRAME_HEADER) {
                *ret_consumed = used;
                return 0;
        }
        if (!r->buf) {
                uint32_t n =
                        (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 | (uint32_t)r->hdr[2] << 8 | r->hdr[3];
                /* Refuse before allocating anything. */
                if (n == 0) {
                        *ret_consumed = used;
                        return CSCP_E_PROTO;
                }
                if (n > r->max) {
                        *ret_consumed = used;
                        return CSCP_E_TOO_BIG;
                }
                r->buf = malloc(n);
                if (!r->buf) {
                        *ret_consumed = used;
                        return -ENOMEM;
                }
                r->len = n;
                r->got = 0;
        }
        size_t take = r->len - r->got;
        if (take > len - used)
                take = len - used;
        if (take > 0)
                memcpy(r->buf + r->got, data + used, take);
        r->got += take;
        used += take;
        *ret_consumed = used;
        if (r->got == r->len) {
                *ret_frame = r->buf;
                *ret_len = r->len;
                r->buf = NULL;
                r->hdr_got = r->len = r->got = 0;
        }
        return 0;
}

int cscp_frame_pack_message(const ProtobufCMessage *m, size_t max, uint8_t **ret, size_t *ret_len)
{
        size_t n;
        uint8_t *buf;

        if (!m || max == 0 || !ret || !ret_len)
                return -EINVAL;
        n = protobuf_c_message_get_packed_size(m);
        if (n == 0)
                return CSCP_E_PROTO;
        if (n > max || n > CSCP_FRAME_MAX_LIMIT)
                return CSCP_E_TOO_BIG;
        buf = malloc(CSCP_FRAME_HEADER + n);
        if (!buf)
                return -ENOMEM;
        buf[0] = (uint8_t)(n >> 24);
        buf[1] = (uint8_t)(n >> 16);
        buf[2] = (uint8_t)(n >> 8);
        buf[3] = (uint8_t)n;
        if (protobuf_c_message_pack(m, buf + CSCP_FRAME_HEADER) != n) {
                free(buf);
                return CSCP_E_PROTO;
        }
        *ret = buf;
        *ret_len = CSCP_FRAME_HEADER + n;
        return 0;
}

int cscp_frame_pack(const Cscp__Frame *msg, size_t max, uint8_t **ret, size_t *ret_len)
{
        return cscp_frame_pack_message(msg ? &msg->base : NULL, max ? max : CSCP_FRAME_MAX_DEFAULT, ret, ret_len);
}

int cscp_frame_unpack(const uint8_t *payload, size_t len, Cscp__Frame **ret)
{
        Cscp__Frame *m;
        uint32_t version;

        if (len == 0)
                return CSCP_E_PROTO;
        m = cscp__frame__unpack(NULL, len, payload);
        if (!m)
                return CSCP_E_PROTO;
        /* Only canonical encodings: what we accept re-encodes to the same size,
         * so evidence saved from a message verifies the same bytes we checked
         * (protobuf-c accepts, e.g., over-long varints it would not produce). */
        if (cscp__frame__get_packed_size(m) != len) {
                cscp__frame__free_unpacked(m, NULL);
                return CSCP_E_PROTO;
        }
        switch (m->body_case) {
        case CSCP__FRAME__BODY_CHALLENGE:
                version = m->challenge->version;
                break;
        case CSCP__FRAME__BODY_EVIDENCE:
                version = m->evidence->version;
                break;
        case CSCP__FRAME__BODY_ERROR:
                version = m->error->version;
                break;
        case CSCP__FRAME__BODY_ENROLL_REQUEST:
                version = m->enroll_request->version;
                break;
        case CSCP__FRAME__BODY_ENROLL_INFO:
                version = m->enroll_info->version;
                break;
        case CSCP__FRAME__BODY_ACTIVATE:
                version = m->activate->version;
                break;
        case CSCP__FRAME__BODY_ACTIVATED:
                version = m->activated->version;
                break;
        case CSCP__FRAME__BODY__NOT_SET:
        case _CSCP__FRAME__BODY__CASE_IS_INT_SIZE:
        default:
                cscp__frame__free_unpacked(m, NULL);
                return CSCP_E_PROTO;
        }
        if (version != CSCP_PROTOCOL_VERSION) {
                cscp__frame__free_unpacked(m, NULL);
                return CSCP_E_VERSION;
        }
        *ret = m;
        return 0;
}

int cscp_frame_pack_error(Cscp__ErrorCode code, const char *message, size_t max, uint8_t **ret, size_t *ret_len)
{
        Cscp__Frame f = CSCP__FRAME__INIT;
        Cscp__Error e = CSCP__ERROR__INIT;

        e.version = CSCP_PROTOCOL_VERSION;
        e.code = code;
        e.message = (char *)(message ? message : "");
        f.body_case = CSCP__FRAME__BODY_ERROR;
        f.error = &e;
        return cscp_frame_pack(&f, max, ret, ret_len);
}
