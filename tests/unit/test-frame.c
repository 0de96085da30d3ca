/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frame reader, pack and unpack (include/cscp/frame.h). Also writes the seed
 * corpus of the frame fuzzer into $CSCP_BUILD_DIR/fuzz-seeds/frame/.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cscp/error.h"
#include "cscp/frame.h"

/* ---- helpers ---------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Length prefix + payload in a malloc'd buffer. */
static uint8_t *framed(const uint8_t *payload, size_t len, size_t *ret_len)
{
        uint8_t *b = malloc(len + CSCP_FRAME_HEADER);

        cr_assert_not_null(b);
        put_be32(b, (uint32_t)len);
        if (len > 0)
                memcpy(b + CSCP_FRAME_HEADER, payload, len);
        *ret_len = len + CSCP_FRAME_HEADER;
        return b;
}

/* Serializes with protobuf-c directly (no checks of ours), without prefix. */
static uint8_t *raw_pack(const Cscp__Frame *f, size_t *ret_len)
{
        size_t n = cscp__frame__get_packed_size(f);
        uint8_t *b = malloc(n > 0 ? n : 1);

        cr_assert_not_null(b);
        cr_assert_eq(cscp__frame__pack(f, b), n);
        *ret_len = n;
        return b;
}

static const uint8_t test_nonce[32] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0xff,
};
static uint32_t test_pcrs_256[] = {0, 1, 2, 3, 4, 5, 6, 7, 10};
static uint32_t test_pcrs_1[] = {0};

/* A Challenge frame living in static storage; version is a parameter. */
static Cscp__Frame *challenge_frame(uint32_t version)
{
        static Cscp__PcrSelection ps[2];
        static Cscp__PcrSelection *psv[2];
        static Cscp__Challenge ch;
        static Cscp__Frame f;

        cscp__pcr_selection__init(&ps[0]);
        ps[0].hash_alg = 0x000B;
        ps[0].pcrs = test_pcrs_256;
        ps[0].n_pcrs = sizeof(test_pcrs_256) / sizeof(test_pcrs_256[0]);
        cscp__pcr_selection__init(&ps[1]);
        ps[1].hash_alg = 0x0004;
        ps[1].pcrs = test_pcrs_1;
        ps[1].n_pcrs = 1;
        psv[0] = &ps[0];
        psv[1] = &ps[1];

        cscp__challenge__init(&ch);
        ch.version = version;
        ch.nonce.data = (uint8_t *)test_nonce;
        ch.nonce.len = sizeof(test_nonce);
        ch.container_id = (char *)"web-1";
        ch.host_pcrs = psv;
        ch.n_host_pcrs = 2;

        cscp__frame__init(&f);
        f.body_case = CSCP__FRAME__BODY_CHALLENGE;
        f.challenge = &ch;
        return &f;
}

static uint8_t ev_attest[] = {0xff, 'T', 'C', 'G', 0x80, 0x18, 0x00, 0x22};
static uint8_t ev_sig[] = {0x00, 0x14, 0x00, 0x0b, 0x01, 0x02, 0x03};
static uint8_t ev_pub[] = {0x00, 0x23, 0x00, 0x0b, 0xaa, 0xbb};
static uint8_t ev_pcr0[32] = {0x11, 0x22, 0x33};
static uint8_t ev_log[] = {'l', 'o', 'g', 0x00, 0x01};

static Cscp__Frame *evidence_frame(uint32_t version)
{
        static Cscp__PcrValue pv;
        static Cscp__PcrValue *pvv[1];
        static Cscp__Quote q;
        static Cscp__Log log;
        static Cscp__Log *logv[1];
        static Cscp__Evidence ev;
        static Cscp__Frame f;

        cscp__pcr_value__init(&pv);
        pv.hash_alg = 0x000B;
        pv.index = 0;
        pv.value.data = ev_pcr0;
        pv.value.len = sizeof(ev_pcr0);
        pvv[0] = &pv;

        cscp__quote__init(&q);
        q.attest.data = ev_attest;
        q.attest.len = sizeof(ev_attest);
        q.signature.data = ev_sig;
        q.signature.len = sizeof(ev_sig);
        q.ak_public.data = ev_pub;
        q.ak_public.len = sizeof(ev_pub);
        q.pcrs = pvv;
        q.n_pcrs = 1;

        cscp__log__init(&log);
        log.kind = CSCP__LOG_KIND__LOG_IMA;
        log.offset = 7;
        log.data.data = ev_log;
        log.data.len = sizeof(ev_log);
        logv[0] = &log;

        cscp__evidence__init(&ev);
        ev.version = version;
        ev.nonce.data = (uint8_t *)test_nonce;
        ev.nonce.len = sizeof(test_nonce);
        ev.host_quote = &q;
        ev.logs = logv;
        ev.n_logs = 1;

        cscp__frame__init(&f);
        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = &ev;
        return &f;
}

static Cscp__Frame *error_frame(uint32_t version)
{
        static Cscp__Error e;
        static Cscp__Frame f;

        cscp__error__init(&e);
        e.version = version;
        e.code = CSCP__ERROR_CODE__ERR_BUSY;
        e.message = (char *)"try again";

        cscp__frame__init(&f);
        f.body_case = CSCP__FRAME__BODY_ERROR;
        f.error = &e;
        return &f;
}

/* Feeds a whole buffer expected to hold exactly one frame; returns its payload. */
static uint8_t *read_one(const uint8_t *buf, size_t len, size_t max, size_t *ret_len)
{
        cscp_frame_reader_t r;
        size_t consumed = 0, plen = 0;
        uint8_t *payload = NULL;
        int k;

        cscp_frame_reader_init(&r, max);
        k = cscp_frame_reader_feed(&r, buf, len, &consumed, &payload, &plen);
        cr_assert_eq(k, 0, "feed: %d", k);
        cr_assert_eq(consumed, len);
        cr_assert_not_null(payload);
        cr_assert_eq(plen, len - CSCP_FRAME_HEADER);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        *ret_len = plen;
        return payload;
}

/* pack -> reader -> unpack */
static Cscp__Frame *round_trip(const Cscp__Frame *in)
{
        uint8_t *wire = NULL, *payload;
        size_t wire_len = 0, plen;
        Cscp__Frame *out = NULL;
        int r;

        r = cscp_frame_pack(in, CSCP_FRAME_MAX_DEFAULT, &wire, &wire_len);
        cr_assert_eq(r, 0, "pack: %d", r);
        cr_assert_not_null(wire);
        cr_assert_gt(wire_len, CSCP_FRAME_HEADER);
        cr_assert_eq(get_be32(wire), wire_len - CSCP_FRAME_HEADER, "length prefix is big-endian payload size");
        cr_assert_eq(wire_len - CSCP_FRAME_HEADER, cscp__frame__get_packed_size(in));

        payload = read_one(wire, wire_len, CSCP_FRAME_MAX_DEFAULT, &plen);
        r = cscp_frame_unpack(payload, plen, &out);
        cr_assert_eq(r, 0, "unpack: %d", r);
        cr_assert_not_null(out);
        free(payload);
        free(wire);
        return out;
}

/* A small valid payload (an Error frame), packed without prefix. */
static uint8_t *small_payload(size_t *ret_len)
{
        return raw_pack(error_frame(CSCP_PROTOCOL_VERSION), ret_len);
}

/* ---- reader ----------------------------------------------------------- */

Test(frame_reader, init_state)
{
        cscp_frame_reader_t r;

        cscp_frame_reader_init(&r, 1000);
        cr_assert_eq(r.max, 1000);
        cr_assert_null(r.buf);
        cr_assert_eq(r.hdr_got, 0);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        cr_assert_not(cscp_frame_reader_pending(&r));
}

Test(frame_reader, exact_frame_one_feed)
{
        uint8_t *p, *wire, *payload;
        size_t plen, wlen, got;

        p = small_payload(&plen);
        wire = framed(p, plen, &wlen);
        payload = read_one(wire, wlen, 4096, &got);
        cr_assert_eq(got, plen);
        cr_assert_arr_eq(payload, p, plen);
        free(payload);
        free(wire);
        free(p);
}

Test(frame_reader, empty_feed)
{
        cscp_frame_reader_t r;
        uint8_t dummy = 0, *payload = NULL;
        size_t consumed = 99, plen = 0;

        cscp_frame_reader_init(&r, 4096);
        cr_assert_eq(cscp_frame_reader_feed(&r, &dummy, 0, &consumed, &payload, &plen), 0);
        cr_assert_eq(consumed, 0);
        cr_assert_null(payload);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
}

Test(frame_reader, byte_by_byte)
{
        cscp_frame_reader_t r;
        uint8_t *p, *wire, *payload = NULL;
        size_t plen, wlen, i;

        p = small_payload(&plen);
        wire = framed(p, plen, &wlen);
        cscp_frame_reader_init(&r, 4096);
        for (i = 0; i < wlen; i++) {
                size_t consumed = 0, got = 0;
                uint8_t *out = NULL;

                cr_assert_eq(cscp_frame_reader_feed(&r, wire + i, 1, &consumed, &out, &got), 0, "byte %zu", i);
                cr_assert_eq(consumed, 1, "byte %zu", i);
                if (i + 1 < wlen) {
                        cr_assert_null(out, "frame reported early at byte %zu", i);
                        cr_assert(cscp_frame_reader_pending(&r), "not pending at byte %zu", i);
                        if (i + 1 < CSCP_FRAME_HEADER)
                                cr_assert_null(r.buf, "allocated before the header was complete");
                } else {
                        cr_assert_not_null(out);
                        cr_assert_eq(got, plen);
                        payload = out;
                }
        }
        cr_assert_arr_eq(payload, p, plen);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        free(payload);
        free(wire);
        free(p);
}

Test(frame_reader, two_frames_one_buffer)
{
        cscp_frame_reader_t r;
        uint8_t *p1, *p2, *w1, *w2, *both, *out = NULL;
        size_t l1, l2, wl1, wl2, consumed = 0, got = 0;
        Cscp__Frame *f = NULL;

        p1 = raw_pack(challenge_frame(CSCP_PROTOCOL_VERSION), &l1);
        p2 = raw_pack(error_frame(CSCP_PROTOCOL_VERSION), &l2);
        w1 = framed(p1, l1, &wl1);
        w2 = framed(p2, l2, &wl2);
        both = malloc(wl1 + wl2);
        cr_assert_not_null(both);
        memcpy(both, w1, wl1);
        memcpy(both + wl1, w2, wl2);

        cscp_frame_reader_init(&r, 4096);
        cr_assert_eq(cscp_frame_reader_feed(&r, both, wl1 + wl2, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, wl1, "must stop after the first frame");
        cr_assert_not_null(out);
        cr_assert_eq(got, l1);
        cr_assert_arr_eq(out, p1, l1);
        cr_assert_eq(cscp_frame_unpack(out, got, &f), 0);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_CHALLENGE);
        cscp__frame__free_unpacked(f, NULL);
        free(out);

        out = NULL;
        got = 0;
        consumed = 0;
        cr_assert_eq(cscp_frame_reader_feed(&r, both + wl1, wl2, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, wl2);
        cr_assert_not_null(out);
        cr_assert_eq(got, l2);
        cr_assert_arr_eq(out, p2, l2);
        cr_assert_eq(cscp_frame_unpack(out, got, &f), 0);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cscp__frame__free_unpacked(f, NULL);
        free(out);

        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        free(both);
        free(w1);
        free(w2);
        free(p1);
        free(p2);
}

Test(frame_reader, short_header_then_rest)
{
        cscp_frame_reader_t r;
        uint8_t *p, *wire, *out = NULL;
        size_t plen, wlen, consumed = 0, got = 0;

        p = small_payload(&plen);
        wire = framed(p, plen, &wlen);
        cscp_frame_reader_init(&r, 4096);

        cr_assert_eq(cscp_frame_reader_feed(&r, wire, 2, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, 2);
        cr_assert_null(out);
        cr_assert(cscp_frame_reader_pending(&r));
        cr_assert_null(r.buf);

        cr_assert_eq(cscp_frame_reader_feed(&r, wire + 2, wlen - 2, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, wlen - 2);
        cr_assert_not_null(out);
        cr_assert_eq(got, plen);
        cr_assert_arr_eq(out, p, plen);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        free(out);
        free(wire);
        free(p);
}

Test(frame_reader, header_then_partial_payload_then_rest)
{
        cscp_frame_reader_t r;
        uint8_t *p, *wire, *out = NULL;
        size_t plen, wlen, consumed = 0, got = 0;

        p = raw_pack(evidence_frame(CSCP_PROTOCOL_VERSION), &plen);
        cr_assert_gt(plen, 10);
        wire = framed(p, plen, &wlen);
        cscp_frame_reader_init(&r, 4096);

        cr_assert_eq(cscp_frame_reader_feed(&r, wire, CSCP_FRAME_HEADER + 5, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, CSCP_FRAME_HEADER + 5);
        cr_assert_null(out);
        cr_assert(cscp_frame_reader_pending(&r));

        cr_assert_eq(cscp_frame_reader_feed(&r, wire + consumed, wlen - consumed, &consumed, &out, &got), 0);
        cr_assert_not_null(out);
        cr_assert_eq(got, plen);
        cr_assert_arr_eq(out, p, plen);
        cscp_frame_reader_reset(&r);
        free(out);
        free(wire);
        free(p);
}

Test(frame_reader, reset_discards_partial)
{
        cscp_frame_reader_t r;
        uint8_t *p, *wire, *out = NULL;
        size_t plen, wlen, consumed = 0, got = 0;

        p = small_payload(&plen);
        wire = framed(p, plen, &wlen);
        cscp_frame_reader_init(&r, 4096);

        cr_assert_eq(cscp_frame_reader_feed(&r, wire, wlen - 1, &consumed, &out, &got), 0);
        cr_assert_null(out);
        cr_assert(cscp_frame_reader_pending(&r));
        cscp_frame_reader_reset(&r);
        cr_assert_not(cscp_frame_reader_pending(&r));
        cr_assert_null(r.buf);
        cr_assert_eq(r.max, 4096, "reset keeps the limit");

        /* Reusable: a whole frame now reads normally. */
        cr_assert_eq(cscp_frame_reader_feed(&r, wire, wlen, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, wlen);
        cr_assert_not_null(out);
        cr_assert_arr_eq(out, p, plen);
        cscp_frame_reader_reset(&r);
        free(out);
        free(wire);
        free(p);
}

static void expect_header_refused(size_t max, uint32_t len, int want)
{
        cscp_frame_reader_t r;
        uint8_t hdr[CSCP_FRAME_HEADER], *out = NULL;
        size_t consumed = 0, got = 0;
        int k;

        put_be32(hdr, len);
        cscp_frame_reader_init(&r, max);
        k = cscp_frame_reader_feed(&r, hdr, sizeof(hdr), &consumed, &out, &got);
        cr_assert_eq(k, want, "max=%zu len=%" PRIu32 ": got %d, want %d", max, len, k, want);
        cr_assert_null(out);
        cr_assert_null(r.buf, "payload buffer allocated for a refused length");
        cscp_frame_reader_reset(&r);
}

Test(frame_reader, oversize_refused_before_allocation)
{
        expect_header_refused(16, 17, CSCP_E_TOO_BIG);
        expect_header_refused(CSCP_FRAME_MAX_DEFAULT, CSCP_FRAME_MAX_DEFAULT + 1, CSCP_E_TOO_BIG);
        expect_header_refused(CSCP_FRAME_MAX_LIMIT, CSCP_FRAME_MAX_LIMIT + 1, CSCP_E_TOO_BIG);
}

Test(frame_reader, oversize_refused_byte_by_byte)
{
        cscp_frame_reader_t r;
        uint8_t hdr[CSCP_FRAME_HEADER], *out = NULL;
        size_t consumed = 0, got = 0, i;
        int k = 0;

        put_be32(hdr, 1000);
        cscp_frame_reader_init(&r, 999);
        for (i = 0; i < sizeof(hdr); i++) {
                k = cscp_frame_reader_feed(&r, hdr + i, 1, &consumed, &out, &got);
                if (i + 1 < sizeof(hdr))
                        cr_assert_eq(k, 0);
        }
        cr_assert_eq(k, CSCP_E_TOO_BIG);
        cr_assert_null(r.buf);
        cr_assert_null(out);
        cscp_frame_reader_reset(&r);
}

Test(frame_reader, huge_length)
{
        expect_header_refused(CSCP_FRAME_MAX_DEFAULT, 0xFFFFFFFFu, CSCP_E_TOO_BIG);
        expect_header_refused(CSCP_FRAME_MAX_LIMIT, 0xFFFFFFFFu, CSCP_E_TOO_BIG);
        expect_header_refused(CSCP_FRAME_MAX_DEFAULT, 0x80000000u, CSCP_E_TOO_BIG);
}

Test(frame_reader, zero_length)
{
        expect_header_refused(4096, 0, CSCP_E_PROTO);
}

Test(frame_reader, length_exactly_max)
{
        cscp_frame_reader_t r;
        uint8_t payload[16], *wire, *out = NULL;
        size_t wlen, consumed = 0, got = 0;

        memset(payload, 0x5a, sizeof(payload));
        wire = framed(payload, sizeof(payload), &wlen);
        cscp_frame_reader_init(&r, sizeof(payload));
        cr_assert_eq(cscp_frame_reader_feed(&r, wire, wlen, &consumed, &out, &got), 0);
        cr_assert_eq(consumed, wlen);
        cr_assert_not_null(out);
        cr_assert_eq(got, sizeof(payload));
        cr_assert_arr_eq(out, payload, sizeof(payload));
        cscp_frame_reader_reset(&r);
        free(out);
        free(wire);
}

/* ---- unpack ----------------------------------------------------------- */

static void expect_unpack(const uint8_t *p, size_t len, int want)
{
        Cscp__Frame *f = NULL;
        int k = cscp_frame_unpack(p, len, &f);

        cr_assert_eq(k, want, "unpack of %zu bytes: got %d, want %d", len, k, want);
        cr_assert_null(f, "ret written on failure");
}

Test(frame_unpack, garbage)
{
        /* field 1, length 80, 1 byte present */
        static const uint8_t truncated[] = {0x0a, 0x50, 0x01};
        /* unterminated varint tag */
        static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        /* wire type 7 does not exist */
        static const uint8_t bad_wiretype[] = {0x0f, 0x00};
        /* Challenge whose nonce length runs past the end */
        static const uint8_t inner_trunc[] = {0x0a, 0x04, 0x08, 0x01, 0x12, 0x20};
        static const uint8_t text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

        expect_unpack(truncated, sizeof(truncated), CSCP_E_PROTO);
        expect_unpack(bad_varint, sizeof(bad_varint), CSCP_E_PROTO);
        expect_unpack(bad_wiretype, sizeof(bad_wiretype), CSCP_E_PROTO);
        expect_unpack(inner_trunc, sizeof(inner_trunc), CSCP_E_PROTO);
        expect_unpack(text, sizeof(text) - 1, CSCP_E_PROTO);
}

Test(frame_unpack, no_body)
{
        Cscp__Frame empty = CSCP__FRAME__INIT;
        /* only an unknown field 15 (varint 1): a valid Frame without a body */
        static const uint8_t unknown_only[] = {0x78, 0x01};
        uint8_t *p;
        size_t len;

        p = raw_pack(&empty, &len);
        cr_assert_eq(len, 0);
        expect_unpack(p, len, CSCP_E_PROTO);
        free(p);
        expect_unpack(unknown_only, sizeof(unknown_only), CSCP_E_PROTO);
}

Test(frame_unpack, wrong_version)
{
        uint8_t *p;
        size_t len;

        p = raw_pack(challenge_frame(CSCP_PROTOCOL_VERSION + 1), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
        p = raw_pack(challenge_frame(0), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
        p = raw_pack(challenge_frame(0xFFFFFFFFu), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
        p = raw_pack(evidence_frame(CSCP_PROTOCOL_VERSION + 1), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
        p = raw_pack(evidence_frame(0), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
        p = raw_pack(error_frame(CSCP_PROTOCOL_VERSION + 1), &len);
        expect_unpack(p, len, CSCP_E_VERSION);
        free(p);
}

Test(frame_unpack, right_version_accepted)
{
        Cscp__Frame *f = NULL;
        uint8_t *p;
        size_t len;

        p = raw_pack(challenge_frame(CSCP_PROTOCOL_VERSION), &len);
        cr_assert_eq(cscp_frame_unpack(p, len, &f), 0);
        cr_assert_not_null(f);
        cscp__frame__free_unpacked(f, NULL);
        free(p);
}

Test(frame_unpack, non_canonical_encoding_refused)
{
        /* Frame{error{version=1, code=1}}: 1a 04 08 01 10 01 is canonical; the same
         * with version as the over-long varint 81 00 parses in protobuf-c but
         * re-encodes shorter, so saved evidence would differ from what was checked. */
        static const uint8_t ok[] = {0x1a, 0x04, 0x08, 0x01, 0x10, 0x01};
        static const uint8_t longer[] = {0x1a, 0x05, 0x08, 0x81, 0x00, 0x10, 0x01};
        static const uint8_t twice[] = {0x1a, 0x06, 0x08, 0x01, 0x08, 0x01, 0x10, 0x01};
        Cscp__Frame *f = NULL;

        cr_assert_eq(cscp_frame_unpack(ok, sizeof(ok), &f), 0);
        cscp__frame__free_unpacked(f, NULL);
        expect_unpack(longer, sizeof(longer), CSCP_E_PROTO);
        expect_unpack(twice, sizeof(twice), CSCP_E_PROTO);
}

/* ---- pack ------------------------------------------------------------- */

Test(frame_pack, challenge_round_trip)
{
        Cscp__Frame *f = round_trip(challenge_frame(CSCP_PROTOCOL_VERSION));
        Cscp__Challenge *c;

        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_CHALLENGE);
        c = f->challenge;
        cr_assert_not_null(c);
        cr_assert_eq(c->version, CSCP_PROTOCOL_VERSION);
        cr_assert_eq(c->nonce.len, sizeof(test_nonce));
        cr_assert_arr_eq(c->nonce.data, test_nonce, sizeof(test_nonce));
        cr_assert_str_eq(c->container_id, "web-1");
        cr_assert_eq(c->n_host_pcrs, 2);
        cr_assert_eq(c->host_pcrs[0]->hash_alg, 0x000B);
        cr_assert_eq(c->host_pcrs[0]->n_pcrs, sizeof(test_pcrs_256) / sizeof(test_pcrs_256[0]));
        cr_assert_arr_eq(c->host_pcrs[0]->pcrs, test_pcrs_256, sizeof(test_pcrs_256));
        cr_assert_eq(c->host_pcrs[1]->hash_alg, 0x0004);
        cr_assert_eq(c->host_pcrs[1]->n_pcrs, 1);
        cr_assert_eq(c->host_pcrs[1]->pcrs[0], 0);
        cr_assert_eq(c->n_container_pcrs, 0);
        cscp__frame__free_unpacked(f, NULL);
}

Test(frame_pack, evidence_round_trip)
{
        Cscp__Frame *f = round_trip(evidence_frame(CSCP_PROTOCOL_VERSION));
        Cscp__Evidence *e;
        Cscp__Quote *q;

        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_EVIDENCE);
        e = f->evidence;
        cr_assert_not_null(e);
        cr_assert_eq(e->version, CSCP_PROTOCOL_VERSION);
        cr_assert_eq(e->nonce.len, sizeof(test_nonce));
        cr_assert_arr_eq(e->nonce.data, test_nonce, sizeof(test_nonce));
        q = e->host_quote;
        cr_assert_not_null(q);
        cr_assert_null(e->container_quote);
        cr_assert_eq(q->attest.len, sizeof(ev_attest));
        cr_assert_arr_eq(q->attest.data, ev_attest, sizeof(ev_attest));
        cr_assert_eq(q->signature.len, sizeof(ev_sig));
        cr_assert_arr_eq(q->signature.data, ev_sig, sizeof(ev_sig));
        cr_assert_eq(q->ak_public.len, sizeof(ev_pub));
        cr_assert_arr_eq(q->ak_public.data, ev_pub, sizeof(ev_pub));
        cr_assert_eq(q->n_pcrs, 1);
        cr_assert_eq(q->pcrs[0]->hash_alg, 0x000B);
        cr_assert_eq(q->pcrs[0]->index, 0);
        cr_assert_eq(q->pcrs[0]->value.len, sizeof(ev_pcr0));
        cr_assert_arr_eq(q->pcrs[0]->value.data, ev_pcr0, sizeof(ev_pcr0));
        cr_assert_eq(e->n_logs, 1);
        cr_assert_eq(e->logs[0]->kind, CSCP__LOG_KIND__LOG_IMA);
        cr_assert_eq(e->logs[0]->offset, 7);
        cr_assert_eq(e->logs[0]->data.len, sizeof(ev_log));
        cr_assert_arr_eq(e->logs[0]->data.data, ev_log, sizeof(ev_log));
        cscp__frame__free_unpacked(f, NULL);
}

Test(frame_pack, error_round_trip)
{
        Cscp__Frame *f = round_trip(error_frame(CSCP_PROTOCOL_VERSION));

        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_not_null(f->error);
        cr_assert_eq(f->error->version, CSCP_PROTOCOL_VERSION);
        cr_assert_eq(f->error->code, CSCP__ERROR_CODE__ERR_BUSY);
        cr_assert_str_eq(f->error->message, "try again");
        cscp__frame__free_unpacked(f, NULL);
}

Test(frame_pack, refuses_over_max)
{
        const Cscp__Frame *in = evidence_frame(CSCP_PROTOCOL_VERSION);
        size_t plen = cscp__frame__get_packed_size(in);
        uint8_t *wire = (uint8_t *)0x1, *payload;
        size_t wlen = 12345, got;
        cscp_frame_reader_t r;
        size_t consumed = 0;
        uint8_t *out = NULL;
        int k;

        k = cscp_frame_pack(in, plen - 1, &wire, &wlen);
        cr_assert_eq(k, CSCP_E_TOO_BIG, "pack with max below the payload size: %d", k);
        cr_assert_eq(wire, (uint8_t *)0x1, "ret written on failure");
        cr_assert_eq(wlen, 12345, "ret_len written on failure");

        k = cscp_frame_pack(in, 1, &wire, &wlen);
        cr_assert_eq(k, CSCP_E_TOO_BIG);

        /* Generous max: accepted. */
        wire = NULL;
        cr_assert_eq(cscp_frame_pack(in, plen + CSCP_FRAME_HEADER, &wire, &wlen), 0);
        cr_assert_eq(wlen, plen + CSCP_FRAME_HEADER);
        payload = read_one(wire, wlen, plen, &got);
        free(payload);
        free(wire);

        /*
         * Whatever pack accepts under max, a reader with the same max must
         * accept too (both sides of a connection share one limit).
         */
        wire = NULL;
        k = cscp_frame_pack(in, plen, &wire, &wlen);
        if (k == 0) {
                cscp_frame_reader_init(&r, plen);
                cr_assert_eq(cscp_frame_reader_feed(&r, wire, wlen, &consumed, &out, &got), 0,
                             "pack(max=%zu) produced a frame a reader with the same max refuses", plen);
                cr_assert_not_null(out);
                cscp_frame_reader_reset(&r);
                free(out);
                free(wire);
        } else
                cr_assert_eq(k, CSCP_E_TOO_BIG);
}

Test(frame_pack, pack_error_round_trip)
{
        uint8_t *wire = NULL, *payload;
        size_t wlen = 0, plen;
        Cscp__Frame *f = NULL;

        cr_assert_eq(cscp_frame_pack_error(CSCP__ERROR_CODE__ERR_VERSION, "version 9 not spoken", 4096, &wire, &wlen),
                     0);
        cr_assert_not_null(wire);
        cr_assert_eq(get_be32(wire), wlen - CSCP_FRAME_HEADER);
        payload = read_one(wire, wlen, 4096, &plen);
        cr_assert_eq(cscp_frame_unpack(payload, plen, &f), 0);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_eq(f->error->version, CSCP_PROTOCOL_VERSION);
        cr_assert_eq(f->error->code, CSCP__ERROR_CODE__ERR_VERSION);
        cr_assert_str_eq(f->error->message, "version 9 not spoken");
        cscp__frame__free_unpacked(f, NULL);
        free(payload);
        free(wire);
}

Test(frame_pack, pack_error_over_max)
{
        char msg[200];
        uint8_t *wire = NULL;
        size_t wlen = 0;

        memset(msg, 'x', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        cr_assert_eq(cscp_frame_pack_error(CSCP__ERROR_CODE__ERR_INTERNAL, msg, 64, &wire, &wlen), CSCP_E_TOO_BIG);
        cr_assert_null(wire);
}

/* ---- fuzz seeds ------------------------------------------------------- */

/*
 * tests/fuzz/fuzz-frame.c reads its first input byte as the chunking control
 * and the rest as the byte stream; each seed is control byte + frames.
 */
static void write_seed(const char *dir, const char *name, uint8_t control, const uint8_t *a, size_t alen,
                       const uint8_t *b, size_t blen)
{
        char path[4096];
        FILE *f;

        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name), sizeof(path));
        f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        cr_assert_eq(fwrite(&control, 1, 1, f), 1);
        if (alen > 0)
                cr_assert_eq(fwrite(a, 1, alen, f), alen);
        if (blen > 0)
                cr_assert_eq(fwrite(b, 1, blen, f), blen);
        cr_assert_eq(fclose(f), 0);
}

static void mkdir_p(const char *path)
{
        char tmp[4096];
        size_t i, n = strlen(path);

        cr_assert_lt(n, sizeof(tmp));
        memcpy(tmp, path, n + 1);
        for (i = 1; i <= n; i++) {
                if (tmp[i] != '/' && tmp[i] != '\0')
                        continue;
                tmp[i] = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        cr_assert_fail("mkdir %s: %s", tmp, strerror(errno));
                tmp[i] = path[i];
        }
}

Test(frame_seeds, write_fuzz_corpus)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096];
        uint8_t *ch, *ev, *er, *er2 = NULL;
        size_t lch, lev, ler, ler2 = 0;

        if (!build || !*build)
                cr_skip_test("CSCP_BUILD_DIR not set (run through meson test)");
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds/frame", build), sizeof(dir));
        mkdir_p(dir);

        cr_assert_eq(cscp_frame_pack(challenge_frame(CSCP_PROTOCOL_VERSION), 65536, &ch, &lch), 0);
        cr_assert_eq(cscp_frame_pack(evidence_frame(CSCP_PROTOCOL_VERSION), 65536, &ev, &lev), 0);
        cr_assert_eq(cscp_frame_pack(error_frame(CSCP_PROTOCOL_VERSION), 65536, &er, &ler), 0);
        cr_assert_eq(cscp_frame_pack_error(CSCP__ERROR_CODE__ERR_TOO_LARGE, "frame over the limit", 65536, &er2, &ler2),
                     0);

        write_seed(dir, "challenge-whole", 0xff, ch, lch, NULL, 0);
        write_seed(dir, "challenge-bytewise", 0x00, ch, lch, NULL, 0);
        write_seed(dir, "evidence-whole", 0xff, ev, lev, NULL, 0);
        write_seed(dir, "evidence-chunks", 0x05, ev, lev, NULL, 0);
        write_seed(dir, "error", 0x03, er, ler, NULL, 0);
        write_seed(dir, "pack-error", 0xff, er2, ler2, NULL, 0);
        write_seed(dir, "two-frames", 0x07, ch, lch, ev, lev);
        write_seed(dir, "frame-and-partial", 0xff, er, ler, ch, lch / 2);

        free(ch);
        free(ev);
        free(er);
        free(er2);
}
