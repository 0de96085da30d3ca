/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Evidence from a TDX host (lib/evidence.c, docs/tdx.md "TDX host evidence"),
 * built by hand from the real COS TD quote and its CCEL of
 * ../shared/fixtures/tdx/go-tdx-guest, verified at 2025-01-01 against
 * trusted_root.pem:
 *  - the quote's claims (host-tdx-*) pass, RTMR0..3 are the replay of the
 *    CCEL (+ an empty host CEL log), and host-batch-proof FAILS naming
 *    REPORTDATA: the fixture's REPORTDATA is a zero nonce, not our batch root
 *    (nobody can make a TD quote over our root without TDX);
 *  - one CCEL digest altered: the replay fails naming the RTMR; a truncated
 *    CCEL: host-logs fails; the SPR quote with the COS CCEL: the replay fails;
 *  - host CEL records after the quoted state run ahead (not attested);
 *    a vtpm-bind record that extends nothing is never attested;
 *  - both host quotes, neither, no --tdx-root, 32-byte siblings, a CCEL sent
 *    from an offset, an IMA list, a policy naming PCRs: each said clearly.
 * Tests skip (with the reason) when ../shared/fixtures is absent.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "cel.h"
#include "error.h"
#include "eventlog.h"
#include "evidence.h"
#include "frame.h"
#include "harness.h"
#include "policy.h"
#include "quote.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

#define FX_SUB   "tdx/go-tdx-guest"
#define T_COS    1735689600 /* 2025-01-01T00:00:00Z, inside the COS PCK leaf's validity */
#define COS_MRTD "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a"

typedef harness_blob_t blob_t;

/* The fixtures of FX_SUB (tests/helpers/tools.c: the test skips when they are absent). */
#define fx_dir()      harness_fixture_dir(FX_SUB)
#define fx_path(name) harness_fixture_path(FX_SUB, name)
#define load(name)    harness_load(fx_path(name))

static blob_t dup_blob(blob_t b, size_t len)
{
        blob_t d = {malloc(len ? len : 1), len};

        cr_assert_not_null(d.p);
        memcpy(d.p, b.p, len < b.len ? len : b.len);
        harness_keep(d.p);
        return d;
}

/* An Evidence under construction: the TD quote, a batch of one, and up to 6 logs. */
typedef struct evb {
        Cscp__Evidence ev;
        Cscp__BatchProof bp;
        Cscp__Log logs[6];
        Cscp__Log *plogs[6];
        uint8_t nonce[32];
        cscp_expect_t want;
        cscp_verdict_t v;
} evb_t;

static void evb_add_log(evb_t *e, Cscp__LogKind kind, blob_t b, uint64_t offset)
{
        size_t i = e->ev.n_logs;

        cr_assert_lt(i, 6);
        cscp__log__init(&e->logs[i]);
        e->logs[i].kind = kind;
        e->logs[i].offset = offset;
        e->logs[i].data = (ProtobufCBinaryData){.data = b.p, .len = b.len};
        e->plogs[i] = &e->logs[i];
        e->ev.logs = e->plogs;
        e->ev.n_logs = i + 1;
}

/* The COS quote (or another), the CCEL area as the ACPI table bounds it (0xFF padding included), an empty
 * host CEL log; expectation: trusted_root.pem at 2025-01-01. */
static void evb_init(evb_t *e, blob_t quote, blob_t ccel)
{
        static const blob_t empty = {(uint8_t *)"", 0};

        memset(e, 0, sizeof(*e));
        for (size_t i = 0; i < sizeof(e->nonce); i++)
                e->nonce[i] = (uint8_t)(0xa0 + i);
        cscp__evidence__init(&e->ev);
        cscp__batch_proof__init(&e->bp);
        e->ev.version = 1;
        e->ev.nonce = (ProtobufCBinaryData){.data = e->nonce, .len = sizeof(e->nonce)};
        e->ev.host_tdx_quote = (ProtobufCBinaryData){.data = quote.p, .len = quote.len};
        e->bp.leaf_index = 0;
        e->bp.leaf_count = 1;
        e->ev.host_batch = &e->bp;
        if (ccel.p)
                evb_add_log(e, CSCP__LOG_KIND__LOG_CCEL, ccel, 0);
        evb_add_log(e, CSCP__LOG_KIND__LOG_HOST_CEL, empty, 0);
        e->want = (cscp_expect_t){
                .nonce = e->nonce,
                .nonce_len = sizeof(e->nonce),
                .tdx_root = fx_path("trusted_root.pem"),
                .tdx_at = T_COS,
        };
        cscp_verdict_init(&e->v);
}

static void evb_run(evb_t *e)
{
        int r = cscp_evidence_verify(&e->ev, &e->want, &e->v);

        cr_assert_eq(r, 0, "cscp_evidence_verify: %s", cscp_strerror(r));
}

/* The evidence as a fuzz seed: <build>/fuzz-seeds/evidence-tdx/NAME (a Frame payload), when CSCP_BUILD_DIR is set. */
static void seed(const Cscp__Evidence *ev, const char *name)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        Cscp__Frame f = CSCP__FRAME__INIT;
        uint8_t *buf = NULL;
        size_t len = 0;
        char *d;

        if (!build)
                return;
        d = harness_path(harness_path(build, "fuzz-seeds"), "evidence-tdx");
        (void)mkdir(harness_path(build, "fuzz-seeds"), 0755);
        (void)mkdir(d, 0755);
        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = (Cscp__Evidence *)ev;
        cr_assert_eq(cscp_frame_pack(&f, CSCP_FRAME_MAX_LIMIT, &buf, &len), 0);
        cr_assert_eq(
                cscp_file_write_atomic(harness_path(d, name), buf + CSCP_FRAME_HEADER, len - CSCP_FRAME_HEADER, 0644),
                0);
        free(buf);
}

static void dump(const cscp_verdict_t *v)
{
        cscp_verdict_print(v, stderr);
}

static const cscp_claim_t *claim(const cscp_verdict_t *v, const char *name)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);

        if (!c)
                dump(v);
        cr_assert_not_null(c, "claim %s missing", name);
        return c;
}

static void expect_pass(const cscp_verdict_t *v, const char *name)
{
        const cscp_claim_t *c = claim(v, name);

        if (!c->pass)
                dump(v);
        cr_assert(c->pass, "%s failed: %s", name, c->detail);
}

static void expect_fail(const cscp_verdict_t *v, const char *name, const char *needle)
{
        const cscp_claim_t *c = claim(v, name);

        if (c->pass)
                dump(v);
        cr_assert(!c->pass, "%s passed: %s", name, c->detail);
        if (needle)
                cr_assert(strstr(c->detail, needle), "%s: '%s' does not name '%s'", name, c->detail, needle);
}

static const char *fact(const cscp_verdict_t *v, const char *key)
{
        for (size_t i = 0; i < v->n_facts; i++)
                if (strcmp(v->facts[i].key, key) == 0)
                        return v->facts[i].value;
        return NULL;
}

static const char *const quote_claims[] = {"host-tdx-quote-format", "host-tdx-quote-signature",
                                           "host-tdx-qe-report-signature", "host-tdx-qe-binding", "host-tdx-pck-chain"};

/* The honest conformance case: everything the fixture can prove passes; the batch root cannot. */
Test(evidence_tdx, cos_quote_and_ccel)
{
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        evb_run(&e);
        for (size_t i = 0; i < sizeof(quote_claims) / sizeof(quote_claims[0]); i++)
                expect_pass(&e.v, quote_claims[i]);
        expect_pass(&e.v, "nonce-echo");
        expect_pass(&e.v, "host-quote-present");
        expect_pass(&e.v, "host-logs");
        expect_pass(&e.v, "host-rtmrs-replay");
        expect_fail(&e.v, "host-batch-proof", "REPORTDATA");
        cr_assert_eq(cscp_verdict_result(&e.v), CSCP_VERDICT_UNTRUSTED);
        /* TPM-only claims do not appear; a fact says why */
        cr_assert_null(cscp_verdict_find(&e.v, "host-ak-enrolled"));
        cr_assert_null(cscp_verdict_find(&e.v, "host-ak-pinned"));
        cr_assert_null(cscp_verdict_find(&e.v, "host-clock"));
        cr_assert_null(cscp_verdict_find(&e.v, "host-signature"));
        cr_assert_null(cscp_verdict_find(&e.v, "host-pcrs-replay"));
        cr_assert_not_null(fact(&e.v, "host-root-of-trust"));
        cr_assert(strstr(fact(&e.v, "host-root-of-trust"), "PCK chain"));
        cr_assert_not_null(fact(&e.v, "host-tdx-mrtd"));
        cr_assert_str_eq(fact(&e.v, "host-tdx-mrtd"), COS_MRTD);
        /* the CCEL's header and 43 events (EV_NO_ACTION included) are all covered by the quote */
        cr_assert_not_null(fact(&e.v, "host-log-ccel"));
        cr_assert(strstr(fact(&e.v, "host-log-ccel"), "events 0..44 sent, 44 covered by the quote, 0 not"), "%s",
                  fact(&e.v, "host-log-ccel"));
        cscp_verdict_clear(&e.v);
        e.logs[0].data.len = 18101 + 64; /* the log and some of its 0xFF padding */
        seed(&e.ev, "cos-ccel");
}

/* The SHA-384 digest of the first event that extends `mr` (CC index), as offset into the area. */
static size_t digest_offset(blob_t area, uint32_t mr)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        size_t off = 0;
        int r;

        cr_assert_eq(cscp_eventlog_open_mem(area.p, area.len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0)
                if (ev->extend && ev->reg == CSCP_EVENT_PCR && ev->pcr == mr && ev->n_digests == 1 &&
                    ev->digests[0].alg == TPM2_ALG_SHA384) {
                        /* pcrIndex, eventType, digest count, algorithm id, digest */
                        off = (size_t)ev->offset + 4 + 4 + 4 + 2;
                        cr_assert_arr_eq(area.p + off, ev->digests[0].digest, 48);
                        break;
                }
        cscp_eventlog_free(l);
        cr_assert_gt(off, 0, "no event extends CC index %u", mr);
        return off;
}

Test(evidence_tdx, ccel_event_altered_fails_the_replay_naming_the_rtmr)
{
        blob_t area = load("ccel_ccel_data.dat");

        for (uint32_t mr = 1; mr <= 3; mr++) {
                blob_t bad = dup_blob(area, area.len);
                char want[16];
                evb_t e;

                bad.p[digest_offset(area, mr) + 7] ^= 0x01;
                evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), bad);
                evb_run(&e);
                expect_pass(&e.v, "host-tdx-quote-signature");
                expect_pass(&e.v, "host-logs");
                snprintf(want, sizeof(want), "RTMR%u", mr - 1);
                expect_fail(&e.v, "host-rtmrs-replay", want);
                /* only that RTMR */
                for (uint32_t o = 0; o < 4; o++) {
                        snprintf(want, sizeof(want), "RTMR%u (", o);
                        if (o != mr - 1)
                                cr_assert_null(strstr(claim(&e.v, "host-rtmrs-replay")->detail, want), "%s",
                                               claim(&e.v, "host-rtmrs-replay")->detail);
                }
                cscp_verdict_clear(&e.v);
        }
}

Test(evidence_tdx, truncated_ccel_fails_host_logs)
{
        blob_t area = load("ccel_ccel_data.dat");
        /* 18 101 bytes of log before the padding: cut inside the last events */
        static const size_t cuts[] = {18101 - 1, 18101 - 60, 9000, 100, 10};

        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
                evb_t e;

                evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), dup_blob(area, cuts[i]));
                evb_run(&e);
                expect_fail(&e.v, "host-logs", "ccel");
                /* a log that does not parse counts for nothing: RTMR0..2 are unexplained */
                expect_fail(&e.v, "host-rtmrs-replay", "RTMR0");
                cscp_verdict_clear(&e.v);
        }
}

Test(evidence_tdx, spr_quote_with_the_cos_ccel_fails_the_replay)
{
        evb_t e;

        evb_init(&e, load("tdx_prod_quote_SPR_E4.dat"), load("ccel_ccel_data.dat"));
        e.want.tdx_at = 1688173200; /* 2023-07-01T01:00Z */
        evb_run(&e);
        for (size_t i = 0; i < sizeof(quote_claims) / sizeof(quote_claims[0]); i++)
                expect_pass(&e.v, quote_claims[i]);
        expect_pass(&e.v, "host-logs");
        expect_fail(&e.v, "host-rtmrs-replay", "RTMR0");
        cr_assert(strstr(claim(&e.v, "host-rtmrs-replay")->detail, "RTMR1"));
        cr_assert(strstr(claim(&e.v, "host-rtmrs-replay")->detail, "RTMR2"));
        expect_fail(&e.v, "host-batch-proof", "REPORTDATA");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, no_ccel_fails_host_logs)
{
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), (blob_t){0});
        evb_run(&e);
        expect_fail(&e.v, "host-logs", "no CCEL");
        expect_fail(&e.v, "host-rtmrs-replay", "RTMR0");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, ccel_from_an_offset_or_twice_fails_host_logs)
{
        blob_t area = load("ccel_ccel_data.dat");
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), area);
        e.logs[0].offset = 3;
        evb_run(&e);
        expect_fail(&e.v, "host-logs", "replayed whole");
        cscp_verdict_clear(&e.v);

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), area);
        evb_add_log(&e, CSCP__LOG_KIND__LOG_CCEL, area, 0);
        evb_run(&e);
        expect_fail(&e.v, "host-logs", "sent twice");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, both_host_quotes_or_neither)
{
        Cscp__Quote tq = CSCP__QUOTE__INIT;
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        tq.attest = (ProtobufCBinaryData){.data = (uint8_t *)"x", .len = 1};
        e.ev.host_quote = &tq;
        evb_run(&e);
        expect_fail(&e.v, "host-quote-present", "host_tdx_quote");
        cr_assert(strstr(claim(&e.v, "host-quote-present")->detail, "host_quote"));
        cr_assert_eq(cscp_verdict_result(&e.v), CSCP_VERDICT_UNTRUSTED);
        cr_assert_null(cscp_verdict_find(&e.v, "host-tdx-quote-signature"), "nothing else is checked");
        cscp_verdict_clear(&e.v);

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.ev.host_tdx_quote = (ProtobufCBinaryData){0};
        evb_run(&e);
        expect_fail(&e.v, "host-quote-present", "host_tdx_quote");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, no_tdx_root_is_an_error)
{
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.want.tdx_root = NULL;
        evb_run(&e);
        cr_assert_eq(cscp_verdict_result(&e.v), CSCP_VERDICT_ERROR);
        cr_assert_not_null(e.v.error);
        cr_assert(strstr(e.v.error, "TDX host evidence needs --tdx-root"), "%s", e.v.error);
        cscp_verdict_clear(&e.v);

        /* an anchor file without a certificate: error too, not untrusted */
        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.want.tdx_root = fx_path("ccel_nonce.dat");
        evb_run(&e);
        cr_assert_eq(cscp_verdict_result(&e.v), CSCP_VERDICT_ERROR);
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, another_anchor_or_a_late_time_fails_the_pck_chain)
{
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.want.tdx_at = 2635117200; /* 2053 */
        evb_run(&e);
        expect_fail(&e.v, "host-tdx-pck-chain", NULL);
        expect_pass(&e.v, "host-rtmrs-replay");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, siblings_must_be_sha512_nodes)
{
        uint8_t s32[32] = {0}, s64[64] = {0};
        ProtobufCBinaryData sib;
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.bp.leaf_count = 2;
        sib = (ProtobufCBinaryData){.data = s32, .len = sizeof(s32)};
        e.bp.siblings = &sib;
        e.bp.n_siblings = 1;
        evb_run(&e);
        expect_fail(&e.v, "host-batch-proof", "64-byte siblings");
        cscp_verdict_clear(&e.v);

        /* a well-formed proof of a batch of two still does not lead to this REPORTDATA */
        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.bp.leaf_count = 2;
        sib = (ProtobufCBinaryData){.data = s64, .len = sizeof(s64)};
        e.bp.siblings = &sib;
        e.bp.n_siblings = 1;
        evb_run(&e);
        expect_fail(&e.v, "host-batch-proof", "REPORTDATA");
        cscp_verdict_clear(&e.v);

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.ev.host_batch = NULL;
        evb_run(&e);
        expect_fail(&e.v, "host-batch-proof", "no batch proof");
        cscp_verdict_clear(&e.v);
}

/* One CM_TLV container record on CC register `mr` (SHA-384), as vtpmd writes them on TDX. */
static blob_t cm_record(uint64_t recnum, uint32_t mr, bool nv_index, const char *event, const char *id,
                        const uint8_t *vak, size_t vak_len, const uint8_t *vek)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA384, 0};
        cscp_cm_field_value_t f[4] = {
                {CSCP_CM_F_EVENT, event, strlen(event)},
                {CSCP_CM_F_CONTAINER_ID, id, strlen(id)},
        };
        size_t nf = 2, nd = 0, clen = 0;
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        uint8_t *content = NULL;
        blob_t b = {0};

        if (vek)
                f[nf++] = (cscp_cm_field_value_t){CSCP_CM_F_VEK_SHA256, vek, 32};
        if (vak)
                f[nf++] = (cscp_cm_field_value_t){CSCP_CM_F_VAK_NAME, vak, vak_len};
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, f, nf, &content, &clen), 0);
        cr_assert_eq(cscp_cm_digests(content, clen, banks, d, &nd), 0);
        cr_assert_eq(cscp_cel_tlv_encode(recnum, mr, nv_index, d, nd, CSCP_CEL_CM_TLV, content, clen, &b.p, &b.len), 0);
        free(content);
        harness_keep(b.p);
        return b;
}

static blob_t concat(blob_t a, blob_t b)
{
        blob_t c = {malloc(a.len + b.len), a.len + b.len};

        cr_assert_not_null(c.p);
        memcpy(c.p, a.p, a.len);
        memcpy(c.p + a.len, b.p, b.len);
        harness_keep(c.p);
        return c;
}

Test(evidence_tdx, host_cel_records_after_the_quote_run_ahead)
{
        evb_t e;
        blob_t log = concat(cm_record(0, 3, false, "vtpm-bind", "web", NULL, 0, NULL),
                            cm_record(1, 4, false, "vtpm-bind", "db", NULL, 0, NULL));

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.logs[1].data = (ProtobufCBinaryData){.data = log.p, .len = log.len};
        evb_run(&e);
        expect_pass(&e.v, "host-logs");
        expect_pass(&e.v, "host-rtmrs-replay");
        cr_assert(strstr(claim(&e.v, "host-rtmrs-replay")->detail, "2 later event(s) not yet attested"), "%s",
                  claim(&e.v, "host-rtmrs-replay")->detail);
        cr_assert_not_null(fact(&e.v, "host-log-host"));
        cr_assert(strstr(fact(&e.v, "host-log-host"), "0 covered by the quote, 2 not"), "%s",
                  fact(&e.v, "host-log-host"));
        cscp_verdict_clear(&e.v);
        e.logs[0].data.len = 18101;
        seed(&e.ev, "cos-ccel-host-records");
}

/* A TPMT_PUBLIC (ECC P-256 signing key, SHA-256 Name) marshalled: a vAK / vEK public for the records. */
static blob_t ecc_public(uint8_t seed)
{
        TPMT_PUBLIC pub = {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH,
                .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_NULL},
                                         .scheme = {.scheme = TPM2_ALG_ECDSA, .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
                                         .curveID = TPM2_ECC_NIST_P256,
                                         .kdf = {.scheme = TPM2_ALG_NULL}},
        };
        blob_t b = {malloc(sizeof(TPMT_PUBLIC)), 0};

        cr_assert_not_null(b.p);
        pub.unique.ecc.x.size = pub.unique.ecc.y.size = 32;
        memset(pub.unique.ecc.x.buffer, seed, 32);
        memset(pub.unique.ecc.y.buffer, seed + 1, 32);
        cr_assert_eq(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, b.p, sizeof(TPMT_PUBLIC), &b.len), TSS2_RC_SUCCESS);
        harness_keep(b.p);
        return b;
}

/*
 * A vtpm-bind record that extends nothing the quote covers (an NV index register here) would, as a
 * record "that extends nothing", inherit the attestation of what precedes it: it must never bind.
 */
Test(evidence_tdx, a_bind_record_that_extends_no_register_never_binds)
{
        blob_t vak = ecc_public(0x11), vek = ecc_public(0x22);
        Cscp__Quote cq = CSCP__QUOTE__INIT;
        TPM2B_NAME name = {0};
        uint8_t vek_sha[32];
        evb_t e;

        cr_assert_eq(cscp_tpm_public_name(vak.p, vak.len, &name), 0);
        cr_assert_eq(EVP_Digest(vek.p, vek.len, vek_sha, NULL, EVP_sha256(), NULL), 1);
        for (int nv = 0; nv < 2; nv++) {
                /* nv = 0: on RTMR2 as vtpmd writes it (then after the quoted state: not attested either) */
                blob_t log = cm_record(0, 3, nv == 1, "vtpm-bind", "web", name.name, name.size, vek_sha);

                evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
                e.logs[1].data = (ProtobufCBinaryData){.data = log.p, .len = log.len};
                e.ev.container_id = (char *)"web";
                e.want.container_id = "web";
                cq.attest = (ProtobufCBinaryData){.data = (uint8_t *)"not an attest", .len = 13};
                cq.ak_public = (ProtobufCBinaryData){.data = vak.p, .len = vak.len};
                e.ev.container_quote = &cq;
                e.ev.vtpm_ek_public = (ProtobufCBinaryData){.data = vek.p, .len = vek.len};
                evb_run(&e);
                expect_pass(&e.v, "host-logs");
                expect_fail(&e.v, "vtpm-bind", "no vtpm-bind record for container 'web' is covered");
                cscp_verdict_clear(&e.v);
                e.logs[0].data.len = 18101;
                seed(&e.ev, nv ? "container-nv-bind" : "container-rtmr2-bind");
        }
}

Test(evidence_tdx, an_ima_list_is_reported_not_verifiable)
{
        static const char ima[] = "10 0000000000000000000000000000000000000000 ima-ng "
                                  "sha256:0000000000000000000000000000000000000000000000000000000000000000 "
                                  "boot_aggregate\n";
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        evb_add_log(&e, CSCP__LOG_KIND__LOG_IMA, (blob_t){(uint8_t *)ima, sizeof(ima) - 1}, 0);
        evb_run(&e);
        cr_assert_not_null(fact(&e.v, "host-log-ima"));
        cr_assert(strstr(fact(&e.v, "host-log-ima"), "not verifiable on a TDX host"));
        expect_pass(&e.v, "host-rtmrs-replay");
        cscp_verdict_clear(&e.v);
}

Test(evidence_tdx, a_policy_naming_host_pcrs_fails_on_a_tdx_host)
{
        static const char text[] = "boot:\n"
                                   "  pcrs:\n"
                                   "    sha256:\n"
                                   "      0: \"3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969\"\n";
        static const char ok_text[] = "resets:\n  allow_reboot: true\n";
        cscp_policy_t *p = NULL;
        char err[256];
        evb_t e;

        cr_assert_eq(cscp_policy_parse(text, sizeof(text) - 1, &p, err, sizeof(err)), 0, "%s", err);
        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.want.policy = p;
        evb_run(&e);
        expect_fail(&e.v, "policy", "a TDX host has none");
        cscp_verdict_clear(&e.v);
        cscp_policy_free(p);

        p = NULL;
        cr_assert_eq(cscp_policy_parse(ok_text, sizeof(ok_text) - 1, &p, err, sizeof(err)), 0, "%s", err);
        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.want.policy = p;
        evb_run(&e);
        expect_pass(&e.v, "policy");
        cscp_verdict_clear(&e.v);
        cscp_policy_free(p);
}

/* The TPM path names a CCEL sent with a TPM quote (it explains RTMRs, not PCRs). */
Test(evidence_tdx, a_ccel_with_a_tpm_quote_fails_host_logs)
{
        Cscp__Quote tq = CSCP__QUOTE__INIT;
        evb_t e;

        evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e.ev.host_tdx_quote = (ProtobufCBinaryData){0};
        tq.attest = (ProtobufCBinaryData){.data = (uint8_t *)"x", .len = 1};
        e.ev.host_quote = &tq;
        evb_run(&e);
        expect_fail(&e.v, "host-logs", "ccel: a TDX CC event log with a TPM host quote");
        cscp_verdict_clear(&e.v);
}

/* Parses text into a policy and verifies the COS quote + CCEL under it. */
static void run_with_policy(evb_t *e, const char *text)
{
        cscp_policy_t *p = NULL;
        char err[256];

        cr_assert_eq(cscp_policy_parse(text, strlen(text), &p, err, sizeof(err)), 0, "%s", err);
        evb_init(e, load("ccel_cos-113-tdx-quote.dat"), load("ccel_ccel_data.dat"));
        e->want.policy = p;
        evb_run(e);
        e->want.policy = NULL;
        cscp_policy_free(p);
}

/*
 * The policy's tdx section (docs/policy.md) is applied to TDX host evidence:
 * MRTD and the quoted RTMRs against the quote, ccel_rtmrs against the CCEL's
 * own replay. Values are the ones the fixtures' source states (expected.json).
 */
Test(evidence_tdx, the_policy_tdx_section_holds_the_td_to_reference_values)
{
        static const char mrtd[] =
                "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396"
                "c1d04231f94a";
        static const char rtmr1[] = "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86"
                                    "e8a878c2b122c1";
        static const char rtmr2[] = "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f"
                                    "11f381a6fbe7c1";
        char text[1024];
        evb_t e;

        /* Right MRTD, right RTMR1, right CCEL replay of RTMR2: the policy claim holds. */
        snprintf(text, sizeof(text), "tdx:\n  mrtd: \"%s\"\n  rtmrs:\n    1: \"%s\"\n  ccel_rtmrs:\n    2: \"%s\"\n",
                 mrtd, rtmr1, rtmr2);
        run_with_policy(&e, text);
        expect_pass(&e.v, "policy");
        expect_pass(&e.v, "host-rtmrs-replay");
        cscp_verdict_clear(&e.v);

        /* Another MRTD: the policy claim fails and names the rule. */
        snprintf(text, sizeof(text), "tdx:\n  mrtd: \"%.94s00\"\n", mrtd);
        run_with_policy(&e, text);
        expect_fail(&e.v, "policy", "tdx.mrtd");
        cscp_verdict_clear(&e.v);

        /* A CCEL reference for RTMR2 the firmware log does not replay to. */
        snprintf(text, sizeof(text), "tdx:\n  ccel_rtmrs:\n    2: \"%s\"\n", rtmr1);
        run_with_policy(&e, text);
        expect_fail(&e.v, "policy", "tdx.ccel_rtmrs");
        cscp_verdict_clear(&e.v);

        /* Without the CCEL, a policy naming CCEL values fails (and so does host-logs). */
        {
                cscp_policy_t *p = NULL;
                char err[256];

                snprintf(text, sizeof(text), "tdx:\n  ccel_rtmrs:\n    2: \"%s\"\n", rtmr2);
                cr_assert_eq(cscp_policy_parse(text, strlen(text), &p, err, sizeof(err)), 0, "%s", err);
                evb_init(&e, load("ccel_cos-113-tdx-quote.dat"), (blob_t){0});
                e.want.policy = p;
                evb_run(&e);
                expect_fail(&e.v, "policy", "tdx.ccel_rtmrs");
                expect_fail(&e.v, "host-logs", "no CCEL");
                cscp_verdict_clear(&e.v);
                cscp_policy_free(p);
        }
}
