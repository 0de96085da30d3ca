/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the frame reader and cscp_frame_unpack.
 *
 * Input: byte 0 chooses how the rest is cut into feeds (0xff: one feed;
 * otherwise chunks of 1 .. 2^(byte0 % 12) bytes, sizes from a PRNG seeded
 * with byte0); bytes 1.. are the stream. Every complete frame is unpacked;
 * a frame that unpacks is packed again and must read and unpack again
 * (see repack() for the one protobuf-c quirk tolerated).
 * Seeds: the unit test frame_seeds writes them to $BUILD/fuzz-seeds/frame/.
 */

#include <stdint.h>
#include <stdlib.h>

#include "cscp/error.h"
#include "cscp/frame.h"

#define FUZZ_MAX (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t next(uint32_t *s)
{
        /* xorshift32 */
        uint32_t x = *s;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s = x;
        return x;
}

/* pack(unpack(x)) must read and unpack again. */
static void repack(const Cscp__Frame *f)
{
        cscp_frame_reader_t r;
        uint8_t *wire = NULL, *out = NULL;
        size_t wlen = 0, consumed = 0, olen = 0;
        Cscp__Frame *g = NULL;

        if (cscp_frame_pack(f, FUZZ_MAX, &wire, &wlen) < 0)
                return;
        cscp_frame_reader_init(&r, FUZZ_MAX);
        if (cscp_frame_reader_feed(&r, wire, wlen, &consumed, &out, &olen) < 0 || !out || consumed != wlen)
                abort();
        if (cscp_frame_unpack(out, olen, &g) < 0) {
                /*
                 * Known protobuf-c asymmetry: it accepts an over-long tag 0
                 * ("80 00") as an unknown field but refuses the "00" it packs
                 * for it. Only when protobuf-c itself still parses the
                 * re-packed bytes is a refusal ours.
                 */
                Cscp__Frame *raw = cscp__frame__unpack(NULL, olen, out);

                if (raw)
                        abort();
        } else {
                if (!g || g->body_case != f->body_case)
                        abort();
                cscp__frame__free_unpacked(g, NULL);
        }
        cscp_frame_reader_reset(&r);
        free(out);
        free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_frame_reader_t r;
        uint32_t seed, maxchunk;
        size_t pos;

        if (size < 1)
                return 0;
        maxchunk = data[0] == 0xff ? UINT32_MAX : 1u << (data[0] % 12);
        seed = 0x9e3779b9u ^ data[0];
        data++;
        size--;

        cscp_frame_reader_init(&r, FUZZ_MAX);
        pos = 0;
        while (pos < size) {
                size_t chunk = size - pos, off = 0;

                if (maxchunk != UINT32_MAX) {
                        size_t c = 1 + next(&seed) % maxchunk;

                        if (c < chunk)
                                chunk = c;
                }
                /* A feed stops after each frame: call again with the rest of the chunk. */
                while (off < chunk) {
                        size_t consumed = 0, len = 0;
                        uint8_t *payload = NULL;
                        Cscp__Frame *f = NULL;
                        int k;

                        k = cscp_frame_reader_feed(&r, data + pos + off, chunk - off, &consumed, &payload, &len);
                        if (k < 0) {
                                if (payload || r.buf)
                                        abort(); /* errors allocate nothing */
                                goto done;
                        }
                        if (consumed > chunk - off || (consumed == 0 && !payload))
                                abort(); /* no progress: the caller would spin */
                        off += consumed;
                        if (!payload)
                                continue;
                        if (len == 0 || len > FUZZ_MAX)
                                abort();
                        if (cscp_frame_unpack(payload, len, &f) == 0) {
                                if (!f || f->body_case == CSCP__FRAME__BODY__NOT_SET)
                                        abort();
                                repack(f);
                                cscp__frame__free_unpacked(f, NULL);
                        } else if (f)
                                abort(); /* ret written on failure */
                        free(payload);
                }
                pos += chunk;
        }
done:
        cscp_frame_reader_reset(&r);
        return 0;
}
