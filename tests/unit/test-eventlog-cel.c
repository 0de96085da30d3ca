/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CEL-TLV / CEL-JSON parsers (lib/eventlog/cel.c) and the CM_TLV encoding
 * (lib/eventlog/cm.c):
 *  - CM_TLV encode/decode for every kind, and what either refuses;
 *  - the worked vtpm-bind example of docs/measurements.md, byte for byte;
 *  - TLV -> JSON -> TLV round trips, byte for byte;
 *  - CEL-JSON in its three framings, a systemd-style JSON-SEQ log;
 *  - logs written while extending a real swtpm's PCRs (tpm2_pcrextend), replayed
 *    and compared with tpm2_pcrread, in TLV and in JSON;
 *  - every malformed case with its code, event number and byte offset;
 *  - checkpoint/resume against a full replay;
 *  - seeds for the fuzzers in $CSCP_BUILD_DIR/fuzz-seeds/{cel-tlv,cel-json,cm}/.
 * There are no public CEL fixtures (../shared/fixtures/SOURCES.md §4 is empty),
 * so the logs are made here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cel.h"
#include "error.h"
#include "eventlog.h"
#include "harness.h"
#include "pcr.h"
#include "util.h"

/* ------------------------------------------------------------------ helpers */

typedef struct buf {
        uint8_t *p;
        size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = realloc(b->p, b->cap);
                cr_assert_not_null(b->p);
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void puts_(buf_t *b, const char *s)
{
        put(b, s, strlen(s));
}

static void hex_of(const uint8_t *d, size_t n, char *out)
{
        cscp_hex_encode(d, n, out);
}

static void sha(uint16_t alg, const void *d, size_t n, uint8_t *out)
{
        unsigned ol = 0;
        cr_assert_eq(EVP_Digest(d, n, out, &ol, EVP_get_digestbyname(cscp_hash_alg_evp(alg)), NULL), 1);
}

static const uint8_t vek[32] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
                                0xab, 0xac, 0xad, 0xae, 0xaf, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
                                0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
static uint8_t vak[34];
static const uint8_t time_be[8] = {0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00}; /* 1700000000 */
static const uint8_t idx2[4] = {0, 0, 0, 2};

static void init_vak(void)
{
        vak[0] = 0x00;
        vak[1] = 0x0b;
        for (int i = 0; i < 32; i++)
                vak[2 + i] = (uint8_t)(0x10 + i);
}

#define F(t, s)                     \
        {                           \
                (t), (s), strlen(s) \
        }
#define FB(t, d, n)           \
        {                     \
                (t), (d), (n) \
        }

/* One CM_TLV record per kind (and the lifecycle events), as vtpmd writes them. */
typedef struct sample {
        cscp_cm_kind_t kind;
        uint32_t pcr;
        cscp_cm_field_value_t f[CSCP_CM_MAX_FIELDS];
        size_t n;
} sample_t;

static size_t samples(sample_t *s)
{
        size_t n = 0;

        init_vak();
        s[n++] = (sample_t){CSCP_CM_VERSION, 11, {F(CSCP_CM_F_NAME, "runc"), F(CSCP_CM_F_VALUE, "1.1.12")}, 2};
        s[n++] = (sample_t){
                CSCP_CM_CONFIG,
                11,
                {F(CSCP_CM_F_CONTAINER_ID, "web-1"),
                 F(CSCP_CM_F_DIGEST, "sha256:3333333333333333333333333333333333333333333333333333333333333333")},
                2};
        s[n++] = (sample_t){
                CSCP_CM_LAYER,
                12,
                {F(CSCP_CM_F_NAME, "docker.io/library/nginx:1.25"),
                 F(CSCP_CM_F_DIGEST, "sha256:1111111111111111111111111111111111111111111111111111111111111111"),
                 FB(CSCP_CM_F_INDEX, idx2, 4)},
                3};
        s[n++] = (sample_t){CSCP_CM_PROCESS,
                            11,
                            {F(CSCP_CM_F_EVENT, "arg"), F(CSCP_CM_F_VALUE, "-g"), FB(CSCP_CM_F_INDEX, idx2, 4)},
                            3};
        s[n++] = (sample_t){CSCP_CM_PROCESS,
                            11,
                            {F(CSCP_CM_F_EVENT, "env"), F(CSCP_CM_F_NAME, "PATH"), FB(CSCP_CM_F_VALUE, "\xff\x00z", 3),
                             FB(CSCP_CM_F_INDEX, idx2, 4)},
                            4};
        s[n++] = (sample_t){
                CSCP_CM_CONTAINER, 11, {F(CSCP_CM_F_EVENT, "create"), F(CSCP_CM_F_CONTAINER_ID, "web-1")}, 2};
        s[n++] = (sample_t){CSCP_CM_CONTAINER,
                            15,
                            {F(CSCP_CM_F_EVENT, "vtpm-bind"), F(CSCP_CM_F_CONTAINER_ID, "web-1"),
                             FB(CSCP_CM_F_VEK_SHA256, vek, 32), FB(CSCP_CM_F_VAK_NAME, vak, 34),
                             FB(CSCP_CM_F_TIME, time_be, 8)},
                            5};
        s[n++] = (sample_t){CSCP_CM_CONTAINER,
                            15,
                            {F(CSCP_CM_F_EVENT, "vtpm-destroy"), F(CSCP_CM_F_CONTAINER_ID, "web-1"),
                             FB(CSCP_CM_F_TIME, time_be, 8)},
                            3};
        s[n++] = (sample_t){
                CSCP_CM_POD,
                11,
                {F(CSCP_CM_F_EVENT, "sandbox"), F(CSCP_CM_F_CONTAINER_ID, "pause-7"), F(CSCP_CM_F_NAME, "default/web")},
                3};
        s[n++] = (sample_t){CSCP_CM_CLUSTER, 11, {F(CSCP_CM_F_NAME, "prod-eu"), F(CSCP_CM_F_VALUE, "uid-1234")}, 2};
        return n;
}

#define MAX_SAMPLES 16

static const uint16_t banks2[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, 0};

/* One CEL-TLV record of a CM_TLV sample; digests per banks. */
static void add_record(buf_t *log, uint64_t recnum, const sample_t *s, const uint16_t *banks, buf_t *ret_content)
{
        uint8_t *c, *rec;
        size_t cl, rl, nd;
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];

        cr_assert_eq(cscp_cm_encode(s->kind, s->f, s->n, &c, &cl), 0);
        cr_assert_eq(cscp_cm_digests(c, cl, banks, d, &nd), 0);
        cr_assert_eq(cscp_cel_tlv_encode(recnum, s->pcr, false, d, nd, CSCP_CEL_CM_TLV, c, cl, &rec, &rl), 0);
        put(log, rec, rl);
        if (ret_content)
                put(ret_content, c, cl);
        free(c);
        free(rec);
}

typedef struct run {
        int r;
        size_t count;
        char err[512];
        cscp_replay_t rp;
} run_t;

static run_t replay_mem(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts)
{
        run_t out = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;

        cscp_replay_init(&out.rp);
        out.r = cscp_eventlog_open_mem(p, n, fmt, opts, NULL, &l);
        if (out.r < 0)
                return out;
        while ((out.r = cscp_eventlog_next(l, &ev)) > 0) {
                char *d = NULL;
                cr_assert_eq(ev->index, out.count);
                cr_assert_eq(cscp_replay_extend(&out.rp, ev), 0);
                cr_assert_eq(cscp_event_describe(l, ev, &d), 0);
                free(d);
                out.count++;
        }
        snprintf(out.err, sizeof(out.err), "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        return out;
}

static char *print_replay(const cscp_replay_t *rp, uint32_t mask)
{
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        cr_assert_not_null(f);
        fputs("", f);
        cr_assert_eq(cscp_replay_print(rp, 0, mask, f), 0);
        fclose(f);
        return s;
}

/* Expects the log to fail with code, naming event `event` at byte `off`. */
static void expect_fail(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, int code, uint64_t event, uint64_t off,
                        const char *needle)
{
        run_t r = replay_mem(p, n, fmt, NULL);
        char want[96];

        cr_assert_eq(r.r, code, "want %s, got %s (%d): %s", cscp_err_name(code), cscp_err_name(r.r), r.r, r.err);
        snprintf(want, sizeof(want), "event %llu at byte %llu: ", (unsigned long long)event, (unsigned long long)off);
        cr_assert(strncmp(r.err, want, strlen(want)) == 0, "want prefix \"%s\", got \"%s\"", want, r.err);
        if (needle)
                cr_assert(strstr(r.err, needle), "\"%s\" not in \"%s\"", needle, r.err);
}

/* ---------------------------------------------------------------- CM_TLV */

Test(cm, encode_decode_every_kind)
{
        sample_t s[MAX_SAMPLES];
        size_t n = samples(s);
        bool kinds[7] = {0};

        for (size_t i = 0; i < n; i++) {
                uint8_t *c;
                size_t cl;
                cscp_cm_record_t rec;
                char *json = NULL;

                cr_assert_eq(cscp_cm_encode(s[i].kind, s[i].f, s[i].n, &c, &cl), 0, "sample %zu", i);
                cr_assert_eq(cscp_cm_decode(c, cl, &rec), 0);
                cr_assert_eq(rec.kind, s[i].kind);
                kinds[s[i].kind] = true;
                for (size_t k = 0; k < s[i].n; k++) {
                        const cscp_cm_field_value_t *f = &s[i].f[k];
                        cr_assert_not_null(rec.f[f->type].data);
                        cr_assert_eq(rec.f[f->type].len, f->len);
                        cr_assert_eq(memcmp(rec.f[f->type].data, f->data, f->len), 0);
                }
                /* Order of the given fields does not matter: reversed gives the same bytes. */
                {
                        cscp_cm_field_value_t rev[CSCP_CM_MAX_FIELDS];
                        uint8_t *c2;
                        size_t cl2;
                        for (size_t k = 0; k < s[i].n; k++)
                                rev[k] = s[i].f[s[i].n - 1 - k];
                        cr_assert_eq(cscp_cm_encode(s[i].kind, rev, s[i].n, &c2, &cl2), 0);
                        cr_assert_eq(cl2, cl);
                        cr_assert_eq(memcmp(c, c2, cl), 0);
                        free(c2);
                }
                cr_assert_eq(cscp_cm_to_json(c, cl, &json), 0);
                cr_assert(strstr(json, cscp_cm_kind_name(s[i].kind)));
                free(json);
                free(c);
        }
        for (int k = 0; k < 7; k++)
                cr_assert(kinds[k], "kind %d has no sample", k);
}

Test(cm, encode_refuses)
{
        uint8_t *c = NULL;
        size_t cl = 0;
        cscp_cm_field_value_t dup[] = {F(CSCP_CM_F_NAME, "a"), F(CSCP_CM_F_NAME, "b")};
        cscp_cm_field_value_t badidx[] = {FB(CSCP_CM_F_INDEX, "abc", 3)};
        cscp_cm_field_value_t badvek[] = {FB(CSCP_CM_F_VEK_SHA256, vek, 31)};
        cscp_cm_field_value_t badvak[] = {FB(CSCP_CM_F_VAK_NAME, "\x00\x0b\x01", 3)};
        cscp_cm_field_value_t badutf[] = {FB(CSCP_CM_F_NAME, "\xc0\x80", 2)};
        cscp_cm_field_value_t nul[] = {FB(CSCP_CM_F_CONTAINER_ID, "a\0b", 3)};
        cscp_cm_field_value_t baddig[] = {F(CSCP_CM_F_DIGEST, "sha256")};
        cscp_cm_field_value_t badtype[] = {{(cscp_cm_field_t)9, "x", 1}};

        cr_assert_eq(cscp_cm_encode(CSCP_CM_LAYER, dup, 2, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_LAYER, badidx, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, badvek, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, badvak, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_VERSION, badutf, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, nul, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONFIG, baddig, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONFIG, badtype, 1, &c, &cl), -EINVAL);
        cr_assert_eq(cscp_cm_encode((cscp_cm_kind_t)7, NULL, 0, &c, &cl), -EINVAL);
        cr_assert_null(c);
        /* No fields at all is a valid (empty) record. */
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CLUSTER, NULL, 0, &c, &cl), 0);
        cr_assert_eq(cl, 5);
        free(c);
}

Test(cm, decode_refuses)
{
        static const struct {
                const char *name;
                const char *hex;
        } bad[] = {
                {"empty", ""},
                {"short header", "04000000"},
                {"unknown kind", "0700000000"},
                {"length too long", "0400000001"},
                {"trailing byte", "040000000000"},
                {"truncated field header", "040000000300000000"},
                {"field overflows", "04000000050000000001"},
                {"unknown field", "04000000060900000001"},
                {"descending order", "0400000010"
                                     "0100000001"
                                     "61"
                                     "0000000001"
                                     "61"},
                {"duplicate", "0400000010"
                              "0100000001"
                              "61"
                              "0100000001"
                              "61"},
                {"index of 3 bytes", "0400000008"
                                     "0500000003"
                                     "000001"},
                {"invalid UTF-8 event", "0400000006"
                                        "0000000001"
                                        "ff"},
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t b[64];
                size_t n = 0;
                cscp_cm_record_t rec;

                cr_assert_eq(cscp_hex_decode(bad[i].hex, b, sizeof(b), &n), 0);
                cr_assert_eq(cscp_cm_decode(b, n, &rec), CSCP_E_PROTO, "%s", bad[i].name);
        }
}

/* docs/measurements.md §"Worked example": the same bytes, computed by the code. */
static const char bind_content_hex[] = "0400000071"
                                       "00000000097674706d2d62696e64"
                                       "01000000057765622d31"
                                       "0600000020a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                                       "0700000022000b101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
                                       "0800000008000000006553f100";
static const char bind_digest_hex[] = "ffe107e8ab970a37804cc3e3169958d1331254f16777a3f6124cedcac4fcff43";
static const char bind_record_prefix_hex[] =
        "00000000080000000000000000"
        "01000000040000000f"
        "0300000025"
        "0b00000020ffe107e8ab970a37804cc3e3169958d1331254f16777a3f6124cedcac4fcff43"
        "0900000076";
static const char bind_pcr15_hex[] = "6955C7C998AB6CEE53AE821AD2A5318C18B192AC2B15317E0CF926E487F59A8D";

Test(cm, worked_example_vtpm_bind)
{
        sample_t s[MAX_SAMPLES];
        uint8_t *c, *rec;
        size_t cl, rl, nd;
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        static const uint16_t sha256[] = {TPM2_ALG_SHA256, 0};
        char hex[1024], *want;
        sample_t *bind = NULL;
        run_t r;

        samples(s);
        for (size_t i = 0; i < MAX_SAMPLES && !bind; i++)
                if (s[i].kind == CSCP_CM_CONTAINER && s[i].pcr == 15)
                        bind = &s[i];
        cr_assert_not_null(bind);
        cr_assert_eq(cscp_cm_encode(bind->kind, bind->f, bind->n, &c, &cl), 0);
        hex_of(c, cl, hex);
        cr_assert_str_eq(hex, bind_content_hex);
        cr_assert_eq(cscp_cm_digests(c, cl, sha256, d, &nd), 0);
        cr_assert_eq(nd, 1);
        hex_of(d[0].digest, 32, hex);
        cr_assert_str_eq(hex, bind_digest_hex);
        cr_assert_eq(cscp_cel_tlv_encode(0, 15, false, d, nd, CSCP_CEL_CM_TLV, c, cl, &rec, &rl), 0);
        cr_assert_eq(rl, 187);
        hex_of(rec, rl, hex);
        cr_assert_eq(asprintf(&want, "%s%s", bind_record_prefix_hex, bind_content_hex) > 0, true);
        cr_assert_str_eq(hex, want);
        free(want);

        r = replay_mem(rec, rl, CSCP_EVENTLOG_AUTO, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 1);
        {
                char *mine = print_replay(&r.rp, 1u << 15), expect[256];
                snprintf(expect, sizeof(expect), "  sha256:\n    15: 0x%s\n", bind_pcr15_hex);
                cr_assert_str_eq(mine, expect);
                free(mine);
        }
        free(c);
        free(rec);
}

Test(cm, digests_refuse)
{
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        size_t nd;
        static const uint16_t dup[] = {TPM2_ALG_SHA256, TPM2_ALG_SHA256, 0};
        static const uint16_t sm3[] = {0x0012, 0};
        static const uint16_t none[] = {0};
        uint8_t ok[] = {6, 0, 0, 0, 0};

        cr_assert_eq(cscp_cm_digests(ok, sizeof(ok), dup, d, &nd), -EINVAL);
        cr_assert_eq(cscp_cm_digests(ok, sizeof(ok), sm3, d, &nd), CSCP_E_UNSUPPORTED);
        cr_assert_eq(cscp_cm_digests(ok, sizeof(ok), none, d, &nd), -EINVAL);
        cr_assert_eq(cscp_cm_digests((const uint8_t *)"x", 1, banks2, d, &nd), CSCP_E_PROTO);
}

/* ---------------------------------------------------------- TLV and JSON */

/* A CEL-TLV log of every sample, sha1+sha256. */
static void sample_log(buf_t *log)
{
        sample_t s[MAX_SAMPLES];
        size_t n = samples(s);

        for (size_t i = 0; i < n; i++)
                add_record(log, i, &s[i], banks2, NULL);
}

Test(cel, tlv_log_parses_and_describes)
{
        buf_t log = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        size_t i = 0;

        sample_log(&log);
        cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_format(l), CSCP_EVENTLOG_CEL_TLV);
        while (cscp_eventlog_next(l, &ev) > 0) {
                char *d = NULL;
                cr_assert_eq(ev->type, CSCP_CEL_CM_TLV);
                cr_assert_str_eq(ev->kind, "cm_tlv");
                cr_assert(ev->extend);
                cr_assert_eq(ev->n_digests, 2);
                cr_assert_eq(cscp_event_describe(l, ev, &d), 0);
                if (i == 6) {
                        cr_assert_str_eq(ev->text, "container vtpm-bind web-1");
                        cr_assert(strstr(d, "#6 PCR 15 cm_tlv sha256:ffe107e8"), "%s", d);
                }
                if (i == 4)
                        cr_assert_str_eq(ev->text, "process env PATH #2");
                free(d);
                i++;
        }
        cr_assert_str_eq(cscp_eventlog_error(l), "");
        cr_assert_eq(i, 10);
        cscp_eventlog_free(l);
        free(log.p);
}

/* TLV -> JSON -> TLV byte for byte; the JSON lines log replays the same. */
Test(cel, tlv_json_round_trip)
{
        buf_t log = {0}, json = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        run_t a, b;
        int r;

        sample_log(&log);
        /* Plus a record of a content type we do not interpret and an NV record (both kept as bytes). */
        {
                cscp_event_digest_t d = {.alg = TPM2_ALG_SHA256, .size = 32};
                uint8_t *rec;
                size_t rl;
                sha(TPM2_ALG_SHA256, "opaque", 6, d.digest);
                cr_assert_eq(cscp_cel_tlv_encode(10, 16, false, &d, 1, 200, (const uint8_t *)"opaque", 6, &rec, &rl),
                             0);
                put(&log, rec, rl);
                free(rec);
                cr_assert_eq(
                        cscp_cel_tlv_encode(11, 0x01500000, true, &d, 1, 200, (const uint8_t *)"opaque", 6, &rec, &rl),
                        0);
                put(&log, rec, rl);
                free(rec);
        }
        cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                char *j = NULL;
                uint8_t *back;
                size_t bl;

                cr_assert_eq(cscp_cel_event_to_json(ev, &j), 0);
                cr_assert_eq(cscp_cel_json_to_tlv(j, strlen(j), &back, &bl), 0, "%s", j);
                cr_assert_eq(bl, ev->length, "%s", j);
                cr_assert_eq(memcmp(back, log.p + ev->offset, bl), 0, "record %llu differs after JSON: %s",
                             (unsigned long long)ev->index, j);
                if (ev->index == 6)
                        cr_assert(strstr(j, "\"content_type\":\"cm_tlv\",\"content\":{\"kind\":\"container\","
                                            "\"event\":\"vtpm-bind\",\"container_id\":\"web-1\""),
                                  "%s", j);
                if (ev->index == 4)
                        cr_assert(strstr(j, "\"value_hex\":\"ff007a\""), "%s", j);
                if (ev->index == 11)
                        cr_assert(strstr(j, "\"nv_index\":22020096") && strstr(j, "\"content_type\":200"), "%s", j);
                puts_(&json, j);
                puts_(&json, "\n");
                free(back);
                free(j);
        }
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);

        a = replay_mem(log.p, log.len, CSCP_EVENTLOG_CEL_TLV, NULL);
        b = replay_mem(json.p, json.len, CSCP_EVENTLOG_AUTO, NULL);
        cr_assert_eq(a.r, 0, "%s", a.err);
        cr_assert_eq(b.r, 0, "%s", b.err);
        cr_assert_eq(a.count, 12);
        cr_assert_eq(b.count, 12);
        cr_assert_eq(memcmp(a.rp.pcr, b.rp.pcr, sizeof(a.rp.pcr)), 0);

        /* CM_TLV events from JSON carry the decoded content bytes, like TLV. */
        {
                cscp_eventlog_t *lj, *lt;
                const cscp_event_t *ej, *et;
                cr_assert_eq(cscp_eventlog_open_mem(json.p, json.len, CSCP_EVENTLOG_CEL_JSON, NULL, NULL, &lj), 0);
                cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &lt), 0);
                for (int i = 0; i < 10; i++) {
                        cr_assert_eq(cscp_eventlog_next(lj, &ej), 1);
                        cr_assert_eq(cscp_eventlog_next(lt, &et), 1);
                        cr_assert_eq(ej->data_len, et->data_len);
                        cr_assert_eq(memcmp(ej->data, et->data, et->data_len), 0);
                        cr_assert_str_eq(ej->text, et->text);
                        cr_assert_eq(ej->pcr, et->pcr);
                }
                cscp_eventlog_free(lj);
                cscp_eventlog_free(lt);
        }
        free(log.p);
        free(json.p);
}

Test(cel, json_to_tlv_refuses)
{
        uint8_t *b;
        size_t bl;
        char *j = NULL;
        buf_t log = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;

        sample_log(&log);
        cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        for (int i = 0; i <= 6; i++)
                cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_eq(cscp_cel_event_to_json(ev, &j), 0);
        cscp_eventlog_free(l);

        /* A named field that disagrees with raw. */
        {
                char *t = strdup(j), *p = strstr(t, "web-1");
                p[4] = '2';
                cr_assert_eq(cscp_cel_json_to_tlv(t, strlen(t), &b, &bl), CSCP_E_PROTO);
                free(t);
        }
        /* A digest that is not the hash of raw. */
        {
                char *t = strdup(j), *p = strstr(t, "ffe107e8");
                p[0] = '0';
                cr_assert_eq(cscp_cel_json_to_tlv(t, strlen(t), &b, &bl), CSCP_E_PROTO);
                free(t);
        }
        /* systemd content has no TLV form; a record without recnum neither. */
        {
                const char *sd = "{\"pcr\":11,\"digests\":[],\"content_type\":\"cel\",\"content\":{}}";
                const char *sd2 = "{\"recnum\":0,\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":"
                                  "\"0000000000000000000000000000000000000000\"}],\"content_type\":\"systemd\","
                                  "\"content\":{\"string\":\"x\",\"raw\":\"00\"}}";
                cr_assert_eq(cscp_cel_json_to_tlv(sd, strlen(sd), &b, &bl), CSCP_E_PROTO);
                cr_assert_eq(cscp_cel_json_to_tlv(sd2, strlen(sd2), &b, &bl), CSCP_E_UNSUPPORTED);
        }
        /* Two records. */
        {
                char *two = NULL;
                cr_assert(asprintf(&two, "%s\n%s", j, j) > 0);
                cr_assert_eq(cscp_cel_json_to_tlv(two, strlen(two), &b, &bl), CSCP_E_PROTO);
                free(two);
        }
        free(j);
        free(log.p);
}

/* A log like systemd's /run/log/systemd/tpm2-measure.log: JSON-SEQ, no recnum. */
static void systemd_log(buf_t *log, cscp_replay_t *expect)
{
        static const struct {
                uint32_t pcr;
                const char *string, *type;
        } recs[] = {
                {11, "enter-initrd", "phase"},
                {11, "leave-initrd", "phase"},
                {15, "machine-id:0123456789abcdef0123456789abcdef", "machine-id"},
                {15, "file-system:/dev/sda2 \xc3\xa9t\xc3\xa9", "filesystem"},
        };
        cscp_replay_init(expect);
        for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
                cscp_event_t ev = {.pcr = recs[i].pcr, .extend = true, .startup_locality = -1, .n_digests = 2};
                char h1[41], h2[65], line[1024];

                ev.digests[0] = (cscp_event_digest_t){.alg = TPM2_ALG_SHA256, .size = 32};
                ev.digests[1] = (cscp_event_digest_t){.alg = TPM2_ALG_SHA1, .size = 20};
                sha(TPM2_ALG_SHA256, recs[i].string, strlen(recs[i].string), ev.digests[0].digest);
                sha(TPM2_ALG_SHA1, recs[i].string, strlen(recs[i].string), ev.digests[1].digest);
                hex_of(ev.digests[0].digest, 32, h2);
                hex_of(ev.digests[1].digest, 20, h1);
                cr_assert_eq(cscp_replay_extend(expect, &ev), 0);
                snprintf(
                        line, sizeof(line),
                        "\x1e{\"pcr\":%u,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"%s\"},{\"hashAlg\":\"sha1\","
                        "\"digest\":\"%s\"}],\"content_type\":\"systemd\",\"content\":{\"string\":\"%s\",\"bootId\":"
                        "\"8a4e5bf0c1c94b2b9a4b3b0f8d6e2a11\",\"timestamp\":%zu,\"eventType\":\"%s\"}}\n",
                        recs[i].pcr, h2, h1, recs[i].string, 1000000 + i, recs[i].type);
                puts_(log, line);
        }
}

Test(cel, systemd_json_seq)
{
        buf_t log = {0};
        cscp_replay_t expect;
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        size_t i = 0;
        run_t r;

        systemd_log(&log, &expect);
        cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_format(l), CSCP_EVENTLOG_CEL_JSON);
        while (cscp_eventlog_next(l, &ev) > 0) {
                cr_assert_eq(ev->index, i);
                cr_assert_eq(ev->type, CSCP_CEL_CONTENT_SYSTEMD);
                cr_assert_str_eq(ev->kind, "systemd");
                cr_assert(ev->extend);
                if (i == 0)
                        cr_assert_str_eq(ev->text, "enter-initrd");
                if (i == 3)
                        cr_assert_str_eq(ev->text, "file-system:/dev/sda2 \xc3\xa9t\xc3\xa9");
                cr_assert_eq(ev->data[0], '{');
                cr_assert_eq(ev->data_len, strlen((const char *)ev->data));
                i++;
        }
        cr_assert_str_eq(cscp_eventlog_error(l), "");
        cr_assert_eq(i, 4);
        cscp_eventlog_free(l);

        r = replay_mem(log.p, log.len, CSCP_EVENTLOG_CEL_JSON, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(memcmp(r.rp.pcr, expect.pcr, sizeof(expect.pcr)), 0);

        /* nv_index instead of pcr: parsed, never replayed into PCRs. */
        {
                const char *nv = "\x1e{\"nv_index\":25165825,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":"
                                 "\"0000000000000000000000000000000000000000000000000000000000000000\"}],"
                                 "\"content_type\":\"systemd\",\"content\":{\"string\":\"nv\"}}\n";
                puts_(&log, nv);
                r = replay_mem(log.p, log.len, CSCP_EVENTLOG_CEL_JSON, NULL);
                cr_assert_eq(r.r, 0, "%s", r.err);
                cr_assert_eq(r.count, 5);
                cr_assert_eq(memcmp(r.rp.pcr, expect.pcr, sizeof(expect.pcr)), 0);
        }
        free(log.p);
}

/* The same records in all three framings give the same replay. */
Test(cel, json_framings)
{
        buf_t tlv = {0}, lines = {0}, arr = {0}, seq = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        run_t a, b, c, d;

        sample_log(&tlv);
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        puts_(&arr, " [\n");
        while (cscp_eventlog_next(l, &ev) > 0) {
                char *j;
                cr_assert_eq(cscp_cel_event_to_json(ev, &j), 0);
                puts_(&lines, j);
                puts_(&lines, "\r\n");
                puts_(&arr, ev->index ? " ,\t" : "  ");
                puts_(&arr, j);
                puts_(&seq, "\x1e");
                puts_(&seq, j);
                puts_(&seq, "\n");
                free(j);
        }
        puts_(&arr, "\n]\n");
        cscp_eventlog_free(l);

        a = replay_mem(tlv.p, tlv.len, CSCP_EVENTLOG_AUTO, NULL);
        b = replay_mem(lines.p, lines.len, CSCP_EVENTLOG_AUTO, NULL);
        c = replay_mem(arr.p, arr.len, CSCP_EVENTLOG_AUTO, NULL);
        d = replay_mem(seq.p, seq.len, CSCP_EVENTLOG_AUTO, NULL);
        cr_assert_eq(a.r, 0, "%s", a.err);
        cr_assert_eq(b.r, 0, "%s", b.err);
        cr_assert_eq(c.r, 0, "%s", c.err);
        cr_assert_eq(d.r, 0, "%s", d.err);
        cr_assert_eq(b.count, a.count);
        cr_assert_eq(c.count, a.count);
        cr_assert_eq(d.count, a.count);
        cr_assert_eq(memcmp(a.rp.pcr, b.rp.pcr, sizeof(a.rp.pcr)), 0);
        cr_assert_eq(memcmp(a.rp.pcr, c.rp.pcr, sizeof(a.rp.pcr)), 0);
        cr_assert_eq(memcmp(a.rp.pcr, d.rp.pcr, sizeof(a.rp.pcr)), 0);

        /* Empty array, empty log. */
        a = replay_mem((const uint8_t *)"[ ]", 3, CSCP_EVENTLOG_CEL_JSON, NULL);
        cr_assert_eq(a.r, 0, "%s", a.err);
        cr_assert_eq(a.count, 0);
        a = replay_mem((const uint8_t *)"", 0, CSCP_EVENTLOG_CEL_TLV, NULL);
        cr_assert_eq(a.r, 0);
        cr_assert_eq(a.count, 0);
        free(tlv.p);
        free(lines.p);
        free(arr.p);
        free(seq.p);
}

/* Other content types: CEL_MGT is not extended; PCCLIENT_STD / IMA_TEMPLATE nested TLVs give the text. */
Test(cel, other_content_types)
{
        buf_t log = {0};
        cscp_event_digest_t d = {.alg = TPM2_ALG_SHA256, .size = 32};
        static const uint8_t mgt[] = {1, 0, 0, 0, 12, 0, 0, 0, 0, 1, 0x01, 1, 0, 0, 0, 1, 0x00};
        static const uint8_t pcc[] = {0, 0, 0, 0, 4, 0x80, 0, 0, 0x07, 1, 0, 0, 0, 2, 'h', 'i'};
        static const uint8_t ima[] = {0, 0, 0, 0, 6, 'i', 'm', 'a', '-', 'n', 'g', 1, 0, 0, 0, 0};
        struct {
                uint8_t type;
                const uint8_t *c;
                size_t n;
                bool digest;
        } recs[] = {{CSCP_CEL_MGT, mgt, sizeof(mgt), false},
                    {CSCP_CEL_PCCLIENT_STD, pcc, sizeof(pcc), true},
                    {CSCP_CEL_IMA_TEMPLATE, ima, sizeof(ima), true}};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;

        memset(d.digest, 0x5a, 32);
        for (size_t i = 0; i < 3; i++) {
                uint8_t *rec;
                size_t rl;
                cr_assert_eq(cscp_cel_tlv_encode(i, 10, false, &d, recs[i].digest ? 1 : 0, recs[i].type, recs[i].c,
                                                 recs[i].n, &rec, &rl),
                             0);
                put(&log, rec, rl);
                free(rec);
        }
        cr_assert_eq(cscp_eventlog_open_mem(log.p, log.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_str_eq(ev->kind, "cel");
        cr_assert_not(ev->extend);
        cr_assert_str_eq(ev->text, "cel_version");
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_str_eq(ev->kind, "pcclient_std");
        cr_assert_str_eq(ev->text, "event_type 0x80000007");
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_str_eq(ev->kind, "ima_template");
        cr_assert_str_eq(ev->text, "ima-ng");
        cr_assert_eq(cscp_eventlog_next(l, &ev), 0);
        cscp_eventlog_free(l);
        free(log.p);
}

/* go-eventlog's widths: recnum 8 bytes, PCR 1 byte; minimal widths too. */
Test(cel, integer_widths)
{
        sample_t s[MAX_SAMPLES];
        buf_t c = {0}, log = {0};
        uint8_t dig[32];
        run_t r;

        samples(s);
        add_record(&log, 0, &s[6], (const uint16_t[]){TPM2_ALG_SHA256, 0}, &c);
        log.len = 0;
        sha(TPM2_ALG_SHA256, c.p, c.len, dig);
        for (int rec = 0; rec < 3; rec++) {
                uint8_t hdr[128];
                size_t k = 0;
                /* recnum in 1 byte (rec 0), 2 bytes (rec 1), 8 bytes (rec 2); pcr 15 in 1 byte */
                size_t rw = rec == 0 ? 1 : rec == 1 ? 2 : 8;
                hdr[k++] = 0;
                hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = (uint8_t)rw;
                for (size_t i = 0; i < rw; i++)
                        hdr[k++] = i == rw - 1 ? (uint8_t)rec : 0;
                hdr[k++] = 1, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 1, hdr[k++] = 15;
                hdr[k++] = 3, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 37;
                hdr[k++] = 0x0b, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 32;
                memcpy(hdr + k, dig, 32);
                k += 32;
                hdr[k++] = 9, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = 0, hdr[k++] = (uint8_t)c.len;
                put(&log, hdr, k);
                put(&log, c.p, c.len);
        }
        r = replay_mem(log.p, log.len, CSCP_EVENTLOG_AUTO, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 3);
        free(c.p);
        free(log.p);
}

/* ------------------------------------------------------------- malformed */

/* Builds a one-record TLV log from pieces so each can be broken. */
static size_t one_record(uint8_t *out, const sample_t *s)
{
        buf_t log = {0};
        size_t n;

        add_record(&log, 0, s, (const uint16_t[]){TPM2_ALG_SHA256, 0}, NULL);
        n = log.len;
        memcpy(out, log.p, n);
        free(log.p);
        return n;
}

Test(cel_bad, tlv_cases)
{
        sample_t s[MAX_SAMPLES];
        uint8_t good[512], b[600];
        size_t n, rl;
        buf_t two = {0};

        samples(s);
        n = one_record(good, &s[6]); /* 187 bytes: recnum 0..12, pcr 13..21, digests 22..63, content 64.. */
        cr_assert_eq(n, 187);
        /* Second record at offset 187 so errors name event 1. */
        put(&two, good, n);
        rl = one_record(b, &s[7]);
        b[12] = 1; /* recnum 1 */
        put(&two, b, rl);
        cr_assert_eq(replay_mem(two.p, two.len, CSCP_EVENTLOG_CEL_TLV, NULL).r, 0);

#define BREAK(off, val)                          \
        do {                                     \
                memcpy(b, two.p, two.len);       \
                b[187 + (off)] = (uint8_t)(val); \
        } while (0)
        /* truncated anywhere in the second record */
        expect_fail(two.p, 187 + 3, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187, "truncated record");
        expect_fail(two.p, 187 + 40, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187 + 22, "truncated record");
        expect_fail(two.p, two.len - 1, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187 + 64, "truncated record");
        /* recnum: wrong type, bad width, not counting up */
        BREAK(0, 7);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187, "expected the recnum TLV");
        BREAK(4, 9);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 188, "recnum of 9 bytes");
        BREAK(12, 5);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 192, "recnum 5, expected 1");
        BREAK(12, 0);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 192, "recnum 0, expected 1");
        /* register */
        BREAK(13, 3);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 200, "expected a pcr");
        BREAK(17, 5);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 201, "register index of 5 bytes");
        BREAK(21, 24);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187, "PCR index 24 out of range");
        /* digests: absurd size, nested overflow, unknown algorithm, wrong size */
        BREAK(23, 0x7f);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 210, "digests TLV of");
        BREAK(26, 36);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 214, "overflows the digests TLV");
        BREAK(27, 0x12);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_UNSUPPORTED, 1, 214, "unknown digest algorithm 0x12");
        BREAK(27, 0x04);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 214, "sha1 digest of 32 bytes (expected 20)");
        BREAK(31, 4); /* a nested sha256 digest TLV of 4 bytes */
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 214, "sha256 digest of 4 bytes");
        /* digest does not hash the content */
        BREAK(40, 0);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 209, "not the hash of the CM_TLV content");
        /* content: absurd length, missing type, broken CM_TLV */
        BREAK(65, 0x7f);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_TOO_BIG, 1, 187 + 65, "exceeds the record limit");
        BREAK(64, 2);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187 + 64, "expected a content TLV");
        BREAK(69, 9);
        expect_fail(b, two.len, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 1, 187 + 69, "CM_TLV content does not decode");
        /* A tiny record limit is refused as too big, not allocated. */
        {
                cscp_eventlog_opts_t o = {.max_record = 100};
                run_t r = replay_mem(two.p, two.len, CSCP_EVENTLOG_CEL_TLV, &o);
                cr_assert_eq(r.r, CSCP_E_TOO_BIG, "%s", r.err);
                cr_assert(strstr(r.err, "event 0 at byte 65"), "%s", r.err);
        }
#undef BREAK
        /* Nested TLV overflow in a PCCLIENT_STD content. */
        {
                cscp_event_digest_t d = {.alg = TPM2_ALG_SHA256, .size = 32};
                static const uint8_t pcc[] = {0, 0, 0, 0, 4, 0, 0, 0, 7, 1, 0, 0, 0, 9, 'h'};
                uint8_t *rec;
                cr_assert_eq(
                        cscp_cel_tlv_encode(0, 0, false, &d, 1, CSCP_CEL_PCCLIENT_STD, pcc, sizeof(pcc), &rec, &rl), 0);
                expect_fail(rec, rl, CSCP_EVENTLOG_CEL_TLV, CSCP_E_PROTO, 0, 69 + 9,
                            "overflows the pcclient_std content");
                free(rec);
        }
        free(two.p);
}

#define JSON_OK_REC                                                                 \
        "{\"recnum\":0,\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":" \
        "\"%s\"}],\"content_type\":\"pcclient_std\",\"content\":{\"event_type\":13}}"

Test(cel_bad, json_cases)
{
        static const struct {
                const char *name, *text;
                int code;
                uint64_t off;
                const char *needle;
        } bad[] = {
                {"invalid UTF-8", "{\"recnum\":0,\"x\":\"\xff\"}", CSCP_E_PROTO, 17, "invalid UTF-8"},
                {"overlong UTF-8", "{\"a\":\"\xc0\x80\"}", CSCP_E_PROTO, 6, "invalid UTF-8"},
                {"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", CSCP_E_PROTO, 6, "invalid UTF-8"},
                {"unpaired escape", "{\"a\":\"\\ud800\"}", CSCP_E_PROTO, 6, "unpaired surrogate"},
                {"NUL escape", "{\"a\":\"\\u0000\"}", CSCP_E_PROTO, 6, "NUL"},
                {"raw NUL", "{\"a\":\"\0\"}", CSCP_E_PROTO, 6, "NUL byte"},
                {"control char", "{\"a\":\"\t\"}", CSCP_E_PROTO, 6, "control character"},
                {"single quotes", "{'a':1}", CSCP_E_PROTO, 1, "unexpected character"},
                {"bad number", "{\"a\":1.}", CSCP_E_PROTO, 5, "malformed JSON number"},
                {"NaN", "{\"a\":NaN}", CSCP_E_PROTO, 5, "unexpected character"},
                {"duplicate key", "{\"pcr\":1,\"pcr\":2}", CSCP_E_PROTO, 0, "duplicate member"},
                {"nested duplicate", "{\"digests\":[{\"hashAlg\":\"sha1\",\"hashAlg\":\"sha1\"}]}", CSCP_E_PROTO, 0,
                 "duplicate member"},
                {"trailing comma", "{\"a\":1,}", CSCP_E_PROTO, 7, "invalid JSON"},
                {"truncated", "{\"recnum\":0,\"pcr\":", CSCP_E_PROTO, 18, "not closed"},
                {"too deep", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                 CSCP_E_PROTO, 36, "nested deeper"},
                {"unknown member", "{\"recnum\":0,\"pcr\":1,\"extra\":1}", CSCP_E_PROTO, 0, "unknown member"},
                {"no register", "{\"recnum\":0,\"digests\":[]}", CSCP_E_PROTO, 0, "exactly one of"},
                {"both registers", "{\"pcr\":1,\"nv_index\":1}", CSCP_E_PROTO, 0, "exactly one of"},
                {"recnum not 0", "{\"recnum\":1,\"pcr\":1,\"digests\":[],\"content_type\":\"cel\",\"content\":{}}",
                 CSCP_E_PROTO, 0, "recnum 1, expected 0"},
                {"negative pcr", "{\"pcr\":-1}", CSCP_E_PROTO, 0, "\"pcr\" is not"},
                {"unknown alg",
                 "{\"pcr\":1,\"digests\":[{\"hashAlg\":\"sm3_256\",\"digest\":\"00\"}],\"content_type\":\"cel\","
                 "\"content\":{}}",
                 CSCP_E_UNSUPPORTED, 0, "unknown digest algorithm"},
                {"short digest",
                 "{\"pcr\":1,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":\"00\"}],\"content_type\":\"cel\","
                 "\"content\":{}}",
                 CSCP_E_PROTO, 0, "sha1 digest of 2 hex digits (expected 40)"},
                {"no digest", "{\"pcr\":1,\"digests\":[],\"content_type\":\"systemd\",\"content\":{}}", CSCP_E_PROTO, 0,
                 "no digest"},
                {"pcr 24",
                 "{\"pcr\":24,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":"
                 "\"0000000000000000000000000000000000000000\"}],"
                 "\"content_type\":\"systemd\",\"content\":{}}",
                 CSCP_E_PROTO, 0, "PCR index 24"},
                {"cm_tlv without raw", "{\"pcr\":1,\"digests\":[],\"content_type\":\"cm_tlv\",\"content\":{}}",
                 CSCP_E_PROTO, 0, "has no \"raw\""},
                {"not an object", "[1]", CSCP_E_PROTO, 1, "expected a record object"},
                {"bad start", "x", CSCP_E_PROTO, 0, NULL},
                {"array not closed", "[", CSCP_E_PROTO, 1, "not closed"},
                {"data after array", "[]x", CSCP_E_PROTO, 2, "after the closing"},
                {"seq without RS", "\x1e{\"pcr\":1,\"digests\":[],\"content_type\":\"cel\",\"content\":{}}\n{}",
                 CSCP_E_PROTO, 58, "expected RS"},
                {"RS at end", "\x1e", CSCP_E_PROTO, 1, "RS at the end"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t n = strlen(bad[i].text);
                if (strcmp(bad[i].name, "raw NUL") == 0)
                        n = 9;
                if (strcmp(bad[i].name, "bad start") == 0) {
                        cscp_eventlog_t *l;
                        const cscp_event_t *ev;
                        cr_assert_eq(
                                cscp_eventlog_open_mem((const uint8_t *)"x", 1, CSCP_EVENTLOG_CEL_JSON, NULL, NULL, &l),
                                0);
                        cr_assert_eq(cscp_eventlog_next(l, &ev), CSCP_E_PROTO);
                        cscp_eventlog_free(l);
                        continue;
                }
                expect_fail((const uint8_t *)bad[i].text, n, CSCP_EVENTLOG_CEL_JSON, bad[i].code,
                            strcmp(bad[i].name, "seq without RS") == 0 ? 1 : 0, bad[i].off, bad[i].needle);
        }
        /* The second record of a JSON lines log fails at its own offset. */
        {
                char zero[65], line[512], *two = NULL;
                memset(zero, '0', 64);
                zero[64] = 0;
                snprintf(line, sizeof(line), JSON_OK_REC, zero);
                cr_assert(asprintf(&two, "%s\n  %s", line, line) > 0);
                expect_fail((const uint8_t *)two, strlen(two), CSCP_EVENTLOG_CEL_JSON, CSCP_E_PROTO, 1,
                            strlen(line) + 3, "recnum 0, expected 1");
                free(two);
        }
}

/* ------------------------------------------------------- checkpoint/resume */

static void resume_equals_full(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, size_t total)
{
        run_t full = replay_mem(p, n, fmt, NULL);

        cr_assert_eq(full.r, 0, "%s", full.err);
        cr_assert_eq(full.count, total);
        for (size_t k = 0; k <= total; k++) {
                cscp_replay_t rp, loaded;
                cscp_eventlog_t *l;
                const cscp_event_t *ev;
                uint8_t *saved;
                size_t sl, count = 0;
                int r;

                cscp_replay_init(&rp);
                cr_assert_eq(cscp_eventlog_open_mem(p, n, fmt, NULL, NULL, &l), 0);
                for (size_t i = 0; i < k; i++) {
                        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
                        cr_assert_eq(cscp_replay_extend(&rp, ev), 0);
                }
                cr_assert_eq(cscp_replay_checkpoint(&rp, l), 0);
                cscp_eventlog_free(l);
                cr_assert_eq(cscp_replay_save(&rp, &saved, &sl), 0);
                cr_assert_eq(cscp_replay_load(saved, sl, &loaded), 0);
                free(saved);

                /* Resume from an fd as well as from memory (alternately). */
                if (k % 2) {
                        char *dir = harness_keep(harness_tmpdir()), *path = harness_path(dir, "log");
                        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
                        cr_assert_geq(fd, 0);
                        cr_assert_eq(write(fd, p, n), (ssize_t)n);
                        close(fd);
                        fd = open(path, O_RDONLY | O_CLOEXEC);
                        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_AUTO, NULL, &loaded, &l), 0);
                        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                                cr_assert_eq(cscp_replay_extend(&loaded, ev), 0);
                                count++;
                        }
                        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
                        cscp_eventlog_free(l);
                        close(fd);
                } else {
                        cr_assert_eq(cscp_eventlog_open_mem(p, n, CSCP_EVENTLOG_AUTO, NULL, &loaded, &l), 0);
                        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                                cr_assert_eq(ev->index, k + count);
                                cr_assert_eq(cscp_replay_extend(&loaded, ev), 0);
                                count++;
                        }
                        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
                        cscp_eventlog_free(l);
                }
                cr_assert_eq(count, total - k);
                cr_assert_eq(memcmp(loaded.pcr, full.rp.pcr, sizeof(full.rp.pcr)), 0, "resume after %zu differs", k);
        }
}

Test(cel, checkpoint_resume)
{
        buf_t tlv = {0}, lines = {0}, arr = {0}, seq = {0};
        cscp_replay_t expect;
        cscp_eventlog_t *l;
        const cscp_event_t *ev;

        sample_log(&tlv);
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        puts_(&arr, "[");
        while (cscp_eventlog_next(l, &ev) > 0) {
                char *j;
                cr_assert_eq(cscp_cel_event_to_json(ev, &j), 0);
                puts_(&lines, j);
                puts_(&lines, "\n");
                puts_(&arr, ev->index ? ",\n" : "");
                puts_(&arr, j);
                free(j);
        }
        puts_(&arr, "]\n");
        cscp_eventlog_free(l);
        systemd_log(&seq, &expect);

        resume_equals_full(tlv.p, tlv.len, CSCP_EVENTLOG_CEL_TLV, 10);
        resume_equals_full(lines.p, lines.len, CSCP_EVENTLOG_CEL_JSON, 10);
        resume_equals_full(arr.p, arr.len, CSCP_EVENTLOG_CEL_JSON, 10);
        resume_equals_full(seq.p, seq.len, CSCP_EVENTLOG_CEL_JSON, 4);
        free(tlv.p);
        free(lines.p);
        free(arr.p);
        free(seq.p);
}

Test(cel, checkpoint_state_checked)
{
        buf_t tlv = {0};
        cscp_replay_t rp;
        cscp_eventlog_t *l;
        const cscp_event_t *ev;

        sample_log(&tlv);
        cscp_replay_init(&rp);
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_eq(cscp_replay_checkpoint(&rp, l), 0);
        cscp_eventlog_free(l);
        cr_assert_eq(rp.parser_state_len, 11);
        /* A broken state is refused at open. */
        rp.parser_state[0] = 9;
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_AUTO, NULL, &rp, &l), CSCP_E_STATE);
        rp.parser_state[0] = 1;
        /* A state whose recnum disagrees with the checkpoint's index fails on the first record. */
        rp.parser_state[10] = 5;
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_AUTO, NULL, &rp, &l), 0);
        cr_assert_eq(cscp_eventlog_next(l, &ev), CSCP_E_STATE);
        cscp_eventlog_free(l);
        free(tlv.p);
}

/* ------------------------------------------------- real swtpm + tpm2-tools */

static char *run_tool(char *const argv[])
{
        int status = -1;
        char *out = NULL, *err = NULL;

        cr_assert_eq(harness_run(argv, 30000, &status, &out, &err), 0, "%s did not run", argv[0]);
        cr_assert_eq(status, 0, "%s failed (%d): %s", argv[0], status, err ? err : "");
        free(err);
        return out;
}

/* Banks with a non-empty selection in `tpm2_getcap pcrs`. */
static size_t allocated_banks(const char *getcap, uint16_t *ret)
{
        static const char *const names[] = {"sha1", "sha256", "sha384", "sha512"};
        size_t n = 0;

        for (size_t i = 0; i < 4; i++) {
                char key[32];
                const char *p;
                snprintf(key, sizeof(key), "- %s: [", names[i]);
                p = strstr(getcap, key);
                if (!p)
                        continue;
                p += strlen(key);
                while (*p == ' ')
                        p++;
                if (*p != ']')
                        ret[n++] = cscp_hash_alg_from_name(names[i]);
        }
        ret[n] = 0;
        return n;
}

static void write_file(const char *path, const void *p, size_t n)
{
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);

        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, p, n), (ssize_t)n);
        close(fd);
}

static run_t replay_file(const char *path)
{
        run_t out = {0};
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        cr_assert_geq(fd, 0);
        cscp_replay_init(&out.rp);
        out.r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_AUTO, NULL, NULL, &l);
        if (out.r == 0) {
                while ((out.r = cscp_eventlog_next(l, &ev)) > 0) {
                        cr_assert_eq(cscp_replay_extend(&out.rp, ev), 0);
                        out.count++;
                }
                snprintf(out.err, sizeof(out.err), "%s", cscp_eventlog_error(l));
                cscp_eventlog_free(l);
        }
        close(fd);
        return out;
}

Test(cel_swtpm, log_replays_to_tpm2_pcrread, .timeout = 120)
{
        char *dir = harness_keep(harness_tmpdir()), *out, *tlv_path = harness_path(dir, "host.cel"),
             *json_path = harness_path(dir, "host.cel.json");
        harness_swtpm_t tpm;
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1];
        size_t nbanks;
        sample_t s[MAX_SAMPLES];
        size_t ns = samples(s);
        buf_t log = {0}, json = {0};
        uint32_t mask = 0;
        char sel[256] = "";
        run_t r;

        cr_assert_eq(harness_swtpm_start(dir, &tpm), 0, "swtpm did not start");
        setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);
        out = run_tool((char *[]){"tpm2_getcap", "pcrs", NULL});
        nbanks = allocated_banks(out, banks);
        cr_assert_geq(nbanks, 1, "no PCR bank allocated: %s", out);
        free(out);

        /* The host log's records (and the container kinds, all in PCRs 11/12/15 of this TPM). */
        for (size_t i = 0; i < ns; i++) {
                uint8_t *c, *rec;
                size_t cl, rl, nd, k;
                cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
                char arg[1024], *j;

                cr_assert_eq(cscp_cm_encode(s[i].kind, s[i].f, s[i].n, &c, &cl), 0);
                cr_assert_eq(cscp_cm_digests(c, cl, banks, d, &nd), 0);
                cr_assert_eq(nd, nbanks);
                cr_assert_eq(cscp_cel_tlv_encode(i, s[i].pcr, false, d, nd, CSCP_CEL_CM_TLV, c, cl, &rec, &rl), 0);
                put(&log, rec, rl);
                k = (size_t)snprintf(arg, sizeof(arg), "%u:", s[i].pcr);
                for (size_t b = 0; b < nd; b++) {
                        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1];
                        hex_of(d[b].digest, d[b].size, hex);
                        k += (size_t)snprintf(arg + k, sizeof(arg) - k, "%s%s=%s", b ? "," : "",
                                              cscp_hash_alg_name(d[b].alg), hex);
                }
                cr_assert_lt(k, sizeof(arg));
                free(run_tool((char *[]){"tpm2_pcrextend", arg, NULL}));
                mask |= 1u << s[i].pcr;
                /* The same record in JSON. */
                {
                        cscp_event_t ev = {.index = i,
                                           .reg = CSCP_EVENT_PCR,
                                           .pcr = s[i].pcr,
                                           .type = CSCP_CEL_CM_TLV,
                                           .extend = true,
                                           .n_digests = nd,
                                           .data = c,
                                           .data_len = cl};
                        memcpy(ev.digests, d, nd * sizeof(d[0]));
                        cr_assert_eq(cscp_cel_event_to_json(&ev, &j), 0);
                        puts_(&json, j);
                        puts_(&json, "\n");
                        free(j);
                }
                free(c);
                free(rec);
        }
        write_file(tlv_path, log.p, log.len);
        write_file(json_path, json.p, json.len);

        for (size_t b = 0; b < nbanks; b++) {
                size_t k = strlen(sel);
                snprintf(sel + k, sizeof(sel) - k, "%s%s:11,12,15", b ? "+" : "", cscp_hash_alg_name(banks[b]));
        }
        out = run_tool((char *[]){"tpm2_pcrread", sel, NULL});
        for (int pass = 0; pass < 2; pass++) {
                char *mine;
                r = replay_file(pass ? json_path : tlv_path);
                cr_assert_eq(r.r, 0, "%s", r.err);
                cr_assert_eq(r.count, ns);
                mine = print_replay(&r.rp, mask);
                cr_assert_str_eq(mine, out, "%s replay:\n%s\ntpm2_pcrread %s:\n%s", pass ? "JSON" : "TLV", mine, sel,
                                 out);
                free(mine);
        }
        free(out);
        free(log.p);
        free(json.p);
        harness_swtpm_stop(&tpm);
}

/* ------------------------------------------------------------ fuzz seeds */

static void mkdir_p(const char *path)
{
        char tmp[4096];
        size_t n = strlen(path);

        cr_assert_lt(n, sizeof(tmp));
        memcpy(tmp, path, n + 1);
        for (size_t i = 1; i <= n; i++) {
                if (tmp[i] != '/' && tmp[i] != '\0')
                        continue;
                tmp[i] = '\0';
                if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                        cr_assert_fail("mkdir %s: %s", tmp, strerror(errno));
                tmp[i] = path[i];
        }
}

static void seed(const char *sub, const char *name, const void *a, size_t alen, const void *b, size_t blen)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];
        FILE *f;

        if (!build)
                return;
        snprintf(dir, sizeof(dir), "%s/fuzz-seeds/%s", build, sub);
        mkdir_p(dir);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        if (alen)
                cr_assert_eq(fwrite(a, 1, alen, f), alen);
        if (blen)
                cr_assert_eq(fwrite(b, 1, blen, f), blen);
        fclose(f);
}

/*
 * Seed formats (see tests/fuzz/fuzz-cel-*.c, fuzz-cm.c):
 *   cel-tlv   the log bytes
 *   cel-json  one mode byte ('L' log, 'R' one record for cscp_cel_json_to_tlv), then the text
 *   cm        a CM_TLV content value
 */
Test(cel, fuzz_seeds)
{
        buf_t tlv = {0}, lines = {0}, seq = {0};
        cscp_replay_t expect;
        sample_t s[MAX_SAMPLES];
        size_t ns = samples(s);
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        char name[64];

        sample_log(&tlv);
        seed("cel-tlv", "samples", tlv.p, tlv.len, NULL, 0);
        seed("cel-tlv", "one", tlv.p, 187 > tlv.len ? tlv.len : 187, NULL, 0);
        cr_assert_eq(cscp_eventlog_open_mem(tlv.p, tlv.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while (cscp_eventlog_next(l, &ev) > 0) {
                char *j;
                cr_assert_eq(cscp_cel_event_to_json(ev, &j), 0);
                puts_(&lines, j);
                puts_(&lines, "\n");
                snprintf(name, sizeof(name), "record-%llu", (unsigned long long)ev->index);
                seed("cel-json", name, "R", 1, j, strlen(j));
                free(j);
        }
        cscp_eventlog_free(l);
        seed("cel-json", "lines", "L", 1, lines.p, lines.len);
        systemd_log(&seq, &expect);
        seed("cel-json", "systemd", "L", 1, seq.p, seq.len);
        {
                const char *arr = "L[{\"recnum\":0,\"pcr\":0,\"digests\":[],\"content_type\":\"cel\",\"content\":{}}]";
                seed("cel-json", "array", arr, strlen(arr), NULL, 0);
        }
        for (size_t i = 0; i < ns; i++) {
                uint8_t *c;
                size_t cl;
                cr_assert_eq(cscp_cm_encode(s[i].kind, s[i].f, s[i].n, &c, &cl), 0);
                snprintf(name, sizeof(name), "kind-%d-%zu", s[i].kind, i);
                seed("cm", name, c, cl, NULL, 0);
                free(c);
        }
        free(tlv.p);
        free(lines.p);
        free(seq.p);
}
