/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: vtpmd's control-request decoder (vtpmd/wire.c), the code
 * that sees every byte a control client sends.
 *
 * Input: byte 0 chooses how the rest is cut into feeds of the generic frame
 * reader (0xff: one feed; otherwise chunks of 1 .. 2^(byte0 % 12) bytes from a
 * PRNG seeded with byte0); bytes 1.. are the stream. Each complete frame goes
 * through vtpmd_request_unpack; an accepted request must pass the container-id
 * check consistently, pack again, and unpack again to the same size.
 * Also the whole input is tried as one unframed payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "cscp/error.h"
#include "cscp/frame.h"

#define FUZZ_MAX (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t next(uint32_t *s)
{
        uint32_t x = *s;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s = x;
        return x;
}

static const char *request_id(const Vtpmd__VtpmRequest *m)
{
        switch (m->body_case) {
        case VTPMD__VTPM_REQUEST__BODY_CREATE:
                return m->create->container_id;
        case VTPMD__VTPM_REQUEST__BODY_DESTROY:
                return m->destroy->container_id;
        case VTPMD__VTPM_REQUEST__BODY_STATUS:
                return m->status->container_id;
        case VTPMD__VTPM_REQUEST__BODY_QUOTE:
                return m->quote->container_id;
        case VTPMD__VTPM_REQUEST__BODY_MEASURE:
                return m->measure->container_id;
        case VTPMD__VTPM_REQUEST__BODY_LIST:
        case VTPMD__VTPM_REQUEST__BODY__NOT_SET:
        case _VTPMD__VTPM_REQUEST__BODY__CASE_IS_INT_SIZE:
        default:
                return NULL;
        }
}

static void check(const uint8_t *payload, size_t len)
{
        Vtpmd__VtpmRequest *m = NULL, *again = NULL;
        uint8_t *wire = NULL;
        size_t wlen = 0;
        const char *id;

        if (vtpmd_request_unpack(payload, len, &m) < 0)
                return;
        if (m->version != VTPMD_PROTOCOL_VERSION || m->body_case == VTPMD__VTPM_REQUEST__BODY__NOT_SET)
                abort();
        id = request_id(m);
        if (id && vtpmd_container_id_check(id, VTPMD_ID_MAX) == 0) {
                /* An accepted id is short and path-safe. */
                if (strlen(id) > VTPMD_ID_MAX || strchr(id, '/') || id[0] == '.' || id[0] == '-')
                        abort();
        }
        if (vtpmd_request_pack(m, FUZZ_MAX * 2, &wire, &wlen) < 0)
                abort(); /* what we accepted is within every limit, so it packs */
        if (wlen != len + CSCP_FRAME_HEADER)
                abort(); /* canonical encodings only: the same size again */
        if (vtpmd_request_unpack(wire + CSCP_FRAME_HEADER, wlen - CSCP_FRAME_HEADER, &again) < 0)
                abort();
        vtpmd__vtpm_request__free_unpacked(again, NULL);
        free(wire);
        vtpmd__vtpm_request__free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_frame_reader_t r;
        uint32_t seed;
        size_t pos = 1;

        if (size < 1)
                return 0;
        check(data + 1, size - 1);
        seed = data[0] | 0x100u;
        cscp_frame_reader_init(&r, FUZZ_MAX);
        while (pos < size) {
                size_t chunk = data[0] == 0xff ? size - pos : 1 + next(&seed) % (1u << (data[0] % 12));
                if (chunk > size - pos)
                        chunk = size - pos;
                size_t off = 0;
                while (off < chunk) {
                        uint8_t *frame = NULL;
                        size_t used = 0, flen = 0;
                        if (cscp_frame_reader_feed(&r, data + pos + off, chunk - off, &used, &frame, &flen) < 0)
                                goto out;
                        off += used;
                        if (frame) {
                                check(frame, flen);
                                free(frame);
                        }
                }
                pos += chunk;
        }
out:
        cscp_frame_reader_reset(&r);
        return 0;
}
