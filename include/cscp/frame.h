/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Wire framing: a 4-byte big-endian length, then one protobuf `Frame`
 * (proto/cscp.proto). The length is checked against the caller's limit
 * before any allocation; a zero length is malformed.
 */

#include <stddef.h>
#include <stdint.h>

#include "cscp.pb-c.h"

#define CSCP_PROTOCOL_VERSION  1
#define CSCP_FRAME_HEADER      4
#define CSCP_FRAME_MAX_DEFAULT (4u * 1024 * 1024)
#define CSCP_FRAME_MAX_LIMIT   (256u * 1024 * 1024)

/* Incremental decoder for a byte stream (a socket, a TLS record stream). */
typedef struct cscp_frame_reader {
        size_t max; /* largest payload accepted */
        uint8_t hdr[CSCP_FRAME_HEADER];
        size_t hdr_got;
        uint8_t *buf; /* payload being filled, NULL until the header is complete */
        size_t len;   /* payload length from the header */
        size_t got;
} cscp_frame_reader_t;

void cscp_frame_reader_init(cscp_frame_reader_t *r, size_t max);
/* Frees a partial payload; the reader can be reused afterwards. */
void cscp_frame_reader_reset(cscp_frame_reader_t *r);
/* True while a frame has been started and not completed. */
int cscp_frame_reader_pending(const cscp_frame_reader_t *r);
/*
 * Consumes bytes from data. Stops after one complete frame: then
 * *ret_frame and *ret_len hold the payload (caller frees). *ret_consumed says how
 * many bytes were used; call again with the rest. Returns 0, or
 * CSCP_E_TOO_BIG / CSCP_E_PROTO (zero length) / -ENOMEM; after an error the
 * stream is unusable and the connection should be closed.
 */
int cscp_frame_reader_feed(cscp_frame_reader_t *r, const uint8_t *data, size_t len, size_t *ret_consumed,
                           uint8_t **ret_frame, size_t *ret_len);

/* Serializes a Frame message with its length prefix; refuses > max. */
int cscp_frame_pack(const Cscp__Frame *msg, size_t max, uint8_t **ret, size_t *ret_len);
/* The same framing for any protobuf-c message (vtpmd's control API); max must be given (> 0). */
int cscp_frame_pack_message(const ProtobufCMessage *m, size_t max, uint8_t **ret, size_t *ret_len);
/*
 * Parses one payload (without the length prefix) and checks it: exactly one
 * body, and that body's version is CSCP_PROTOCOL_VERSION. Free with
 * cscp__frame__free_unpacked(m, NULL).
 */
int cscp_frame_unpack(const uint8_t *payload, size_t len, Cscp__Frame **ret);

/* Builds and packs an Error frame. */
int cscp_frame_pack_error(Cscp__ErrorCode code, const char *message, size_t max, uint8_t **ret, size_t *ret_len);
