/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quote parser and verifier (lib/tdx/) against the real quotes of
 * ../shared/fixtures/tdx/go-tdx-guest (SOURCES.md §5):
 *  - every field value expected.json states, reproduced for each quote;
 *  - each quote verifies at its stated time against trusted_root.pem (with and
 *    without the CRLs), and not in 2053 (expired chain);
 *  - one byte flipped in the body, the quote signature, the attestation key,
 *    the QE report, the QE auth data, the PCK leaf and the intermediate
 *    certificate: verification fails naming the failing claim;
 *  - truncated (every length), oversize, wrong version, unknown TEE type, bad
 *    body/certification types and sizes: clear errors naming the field;
 *  - `cscp tdx inspect|verify` exit codes;
 *  - seeds for the fuzzer in $CSCP_BUILD_DIR/fuzz-seeds/tdx-quote/.
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
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "error.h"
#include "eventlog.h"
#include "harness.h"
#include "le.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

#define FX_SUB "tdx/go-tdx-guest"

/* Verification times stated by the sources (go-tdx-guest verify_test.go; the
 * COS quote's PCK leaf is valid 2024-07-02 .. 2031-07-02, expected.json). */
#define T_V4   1688173200 /* 2023-07-01T01:00:00Z */
#define T_V5   1770080400 /* 2026-02-03T01:00:00Z */
#define T_COS  1735689600 /* 2025-01-01T00:00:00Z */
#define T_2053 2635117200 /* 2053-07-01T01:00:00Z */

typedef harness_blob_t blob_t;

/* The fixtures of FX_SUB (tests/helpers/tools.c: the test skips when they are absent). */
#define fx_dir()      harness_fixture_dir(FX_SUB)
#define fx_path(name) harness_fixture_path(FX_SUB, name)
#define load(name)    harness_load(fx_path(name))

static blob_t dup_blob(blob_t b)
{
        blob_t c = {.p = malloc(b.len ? b.len : 1), .len = b.len};

        cr_assert_not_null(c.p);
        memcpy(c.p, b.p, b.len);
        harness_keep(c.p);
        return c;
}

static json_object *expected(void)
{
        json_object *j = json_object_from_file(fx_path("expected.json"));

        cr_assert_not_null(j, "expected.json does not parse");
        return j;
}

static void hex_eq(const char *what, const uint8_t *b, size_t n, const char *want)
{
        char hex[2 * 64 + 1];

        cr_assert_leq(n, 64);
        cscp_hex_encode(b, n, hex);
        cr_assert_str_eq(hex, want, "%s: got %s, stated %s", what, hex, want);
}

/* The struct field a name in expected.json stands for; NULL when none. */
static const uint8_t *field_of(const cscp_tdx_quote_t *q, const char *name, size_t *n)
{
        static const struct {
                const char *name;
                size_t off, n;
        } map[] = {
#define M(nm, f) {nm, offsetof(cscp_tdx_quote_t, f), sizeof(((cscp_tdx_quote_t *)0)->f)}
                M("qe_vendor_id", qe_vendor_id),
                M("tee_tcb_svn", tee_tcb_svn),
                M("tee_tcb_svn2", tee_tcb_svn2),
                M("mrseam", mrseam),
                M("td_attributes", td_attributes),
                M("xfam", xfam),
                M("mrtd", mrtd),
                M("mrconfigid", mrconfigid),
                M("mrowner", mrowner),
                M("mrownerconfig", mrownerconfig),
                M("rtmr0", rtmr[0]),
                M("rtmr1", rtmr[1]),
                M("rtmr2", rtmr[2]),
                M("rtmr3", rtmr[3]),
                M("report_data", report_data),
#undef M
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(map[i].name, name) == 0) {
                        *n = map[i].n;
                        return (const uint8_t *)q + map[i].off;
                }
        return NULL;
}

/* Checks every stated hex field of obj against q; returns how many. */
static int check_fields(const char *file, const cscp_tdx_quote_t *q, json_object *obj)
{
        int n = 0;

        json_object_object_foreach(obj, key, val)
        {
                const uint8_t *f;
                size_t len;
                char what[256];

                snprintf(what, sizeof(what), "%s %s", file, key);
                if (json_object_is_type(val, json_type_int)) {
                        if (strcmp(key, "qe_svn") == 0)
                                cr_assert_eq(q->qe_svn, json_object_get_int(val), "%s", what);
                        else if (strcmp(key, "pce_svn") == 0)
                                cr_assert_eq(q->pce_svn, json_object_get_int(val), "%s", what);
                        else
                                cr_assert_fail("%s: stated integer field not known to the test", what);
                        n++;
                        continue;
                }
                f = field_of(q, key, &len);
                cr_assert_not_null(f, "%s: stated field not known to the test", what);
                hex_eq(what, f, len, json_object_get_string(val));
                n++;
        }
        return n;
}

static cscp_tdx_quote_t parse_ok(blob_t b, const char *name)
{
        cscp_tdx_quote_t q;
        char err[256];
        int k = cscp_tdx_quote_parse(b.p, b.len, &q, err, sizeof(err));

        cr_assert_eq(k, 0, "%s: %s (%s)", name, err, cscp_strerror(k));
        return q;
}

Test(tdx, fields_spr_e4)
{
        json_object *j = expected(), *e, *f;
        blob_t b = load("tdx_prod_quote_SPR_E4.dat");
        cscp_tdx_quote_t q = parse_ok(b, "SPR_E4");

        cr_assert(json_object_object_get_ex(j, "tdx_prod_quote_SPR_E4.dat", &e));
        cr_assert(json_object_object_get_ex(e, "expected_fields_stated_by_source", &f));
        cr_assert_eq(check_fields("SPR_E4", &q, f), 16, "every stated field checked");
        cr_assert_eq(q.version, 4);
        cr_assert_eq(q.tee_type, 0x81);
        cr_assert_eq(q.ak_type, 2);
        cr_assert_not(q.tdx15);
        cr_assert_eq(q.signed_len, 632, "stated signed region: 48 + 584 bytes");
        cr_assert_eq(q.td_attributes[0] & 1, 0, "stated: TD debug bit clear");
        cr_assert_eq(q.cert_type, 6);
        cr_assert_eq(q.pck_cert_type, 5);
        cr_assert_eq(q.qe_auth_len, 32);
        cr_assert_eq(q.trailing_len, 39, "the fixture ends in 39 bytes of test text after the signature data");
        json_object_put(j);
}

Test(tdx, fields_cos_ccel)
{
        json_object *j = expected(), *e, *mv;
        blob_t b = load("ccel_cos-113-tdx-quote.dat"), nonce = load("ccel_nonce.dat");
        cscp_tdx_quote_t q = parse_ok(b, "cos-113");
        int n = 0;

        cr_assert(json_object_object_get_ex(j,
                                            "ccel_cos-113-tdx-quote.dat + ccel_ccel_data.dat + ccel_ccel_table.dat "
                                            "+ ccel_nonce.dat",
                                            &e));
        cr_assert(json_object_object_get_ex(e, "must_verify", &mv));
        for (size_t i = 0; i < json_object_array_length(mv); i++) {
                json_object *it = json_object_array_get_idx(mv, i);
                const char *s;

                if (json_object_is_type(it, json_type_object))
                        n += check_fields("cos-113", &q, it); /* rtmr0..3 */
                else if ((s = json_object_get_string(it)) && strncmp(s, "MRTD = ", 7) == 0) {
                        hex_eq("cos-113 mrtd", q.mrtd, 48, s + 7);
                        n++;
                }
        }
        cr_assert_eq(n, 5);
        cr_assert_eq(nonce.len, 64);
        cr_assert_eq(memcmp(q.report_data, nonce.p, 64), 0, "stated: REPORTDATA == ccel_nonce.dat");
        cr_assert_eq(q.version, 4);
        json_object_put(j);
}

Test(tdx, fields_v5)
{
        json_object *j = expected(), *e, *f;
        blob_t b = load("quote_v5_sample.dat");
        cscp_tdx_quote_t q = parse_ok(b, "v5");

        cr_assert(json_object_object_get_ex(j, "quote_v5_sample.dat", &e));
        cr_assert(json_object_object_get_ex(e, "fields", &f));
        cr_assert_eq(check_fields("v5", &q, f), 9, "every stated field checked");
        cr_assert_eq(q.version, 5);
        cr_assert_eq(q.body_type, 3, "stated: body type 3 = TD report 1.5");
        cr_assert_eq(q.body_size, 648);
        cr_assert(q.tdx15);
        cr_assert_eq(q.signed_len, 702, "stated: signed region 702 bytes");
        cr_assert_eq(q.trailing_len, 0);
        json_object_put(j);
}

/* ------------------------------------------------------------ verification */

static const char *const CLAIMS[] = {"tdx-quote-format", "tdx-quote-signature", "tdx-qe-report-signature",
                                     "tdx-qe-binding", "tdx-pck-chain"};

/* Verifies b at time at; asserts that exactly the claims in `failing` (NULL-terminated) fail. */
static void verify_expect(blob_t b, time_t at, const char *const *crls, size_t n_crls, const uint8_t *rd,
                          const char *const *failing, const char *what)
{
        cscp_tdx_verify_opts_t o = {
                .root_file = fx_path("trusted_root.pem"),
                .at = at,
                .crl_files = crls,
                .n_crl_files = n_crls,
                .report_data = rd,
        };
        cscp_verdict_t v;
        bool any_fail = false;
        int k;

        cscp_verdict_init(&v);
        k = cscp_tdx_quote_verify(b.p, b.len, &o, &v);
        cr_assert_eq(k, 0, "%s: %s", what, v.error ? v.error : cscp_strerror(k));
        cr_assert_null(v.error, "%s: %s", what, v.error);
        cr_assert_eq(v.n_claims, 5 + (rd ? 1 : 0), "%s: %zu claims", what, v.n_claims);
        for (size_t i = 0; i < v.n_claims; i++) {
                bool should_fail = false;

                for (size_t f = 0; failing && failing[f]; f++)
                        should_fail |= strcmp(failing[f], v.claims[i].name) == 0;
                cr_assert_eq(v.claims[i].pass, !should_fail, "%s: claim %s %s (%s)", what, v.claims[i].name,
                             v.claims[i].pass ? "passed" : "failed", v.claims[i].detail);
                any_fail |= !v.claims[i].pass;
        }
        for (size_t i = 0; i < sizeof(CLAIMS) / sizeof(CLAIMS[0]); i++)
                cr_assert_not_null(cscp_verdict_find(&v, CLAIMS[i]), "%s: claim %s missing", what, CLAIMS[i]);
        cr_assert_eq(cscp_verdict_result(&v), any_fail ? CSCP_VERDICT_UNTRUSTED : CSCP_VERDICT_TRUSTED, "%s", what);
        {
                bool tcb = false;

                for (size_t i = 0; i < v.n_facts; i++)
                        if (strcmp(v.facts[i].key, "tdx-tcb-status") == 0)
                                tcb = strstr(v.facts[i].value, "not evaluated") != NULL;
                cr_assert(tcb, "%s: TCB status must be reported as not evaluated", what);
        }
        cscp_verdict_clear(&v);
}

Test(tdx, verify_at_stated_times)
{
        blob_t spr = load("tdx_prod_quote_SPR_E4.dat"), cos = load("ccel_cos-113-tdx-quote.dat");
        blob_t v5 = load("quote_v5_sample.dat"), nonce = load("ccel_nonce.dat");
        const char *chain_fail[] = {"tdx-pck-chain", NULL};

        verify_expect(spr, T_V4, NULL, 0, NULL, NULL, "SPR_E4 at 2023-07-01");
        verify_expect(cos, T_COS, NULL, 0, nonce.p, NULL, "cos-113 at 2025-01-01 with the nonce");
        verify_expect(v5, T_V5, NULL, 0, NULL, NULL, "v5 at 2026-02-03");
        /* go-tdx-guest verify_test: Now = 2053-07-01 fails (expired chain) */
        verify_expect(spr, T_2053, NULL, 0, NULL, chain_fail, "SPR_E4 at 2053-07-01");
        /* the v5 PCK leaf is not yet valid in 2023 */
        verify_expect(v5, T_V4, NULL, 0, NULL, chain_fail, "v5 at 2023-07-01");
}

Test(tdx, verify_with_crls)
{
        blob_t spr = load("tdx_prod_quote_SPR_E4.dat");
        const char *crls[] = {fx_path("pckcrl"), fx_path("rootcrl.der")};
        const char *chain_fail[] = {"tdx-pck-chain", NULL};

        /* both CRLs current on 2023-07-01 (pckcrl 2023-06-08 .. 07-08) and the chain is not revoked */
        verify_expect(spr, T_V4, crls, 2, NULL, NULL, "SPR_E4 with CRLs");
        /* the PCK CRL has expired by 2023-08-01: refused */
        verify_expect(spr, 1690851600, crls, 2, NULL, chain_fail, "SPR_E4 with an expired CRL");
        /* CRL checking asked for but no CRL for the PCK CA: refused */
        verify_expect(spr, T_V4, crls + 1, 1, NULL, chain_fail, "SPR_E4 missing the PCK CRL");
}

Test(tdx, report_data_mismatch)
{
        blob_t cos = load("ccel_cos-113-tdx-quote.dat");
        uint8_t rd[64] = {0};
        const char *fail[] = {"tdx-report-data", NULL};

        rd[63] = 1;
        verify_expect(cos, T_COS, NULL, 0, rd, fail, "cos-113 with another nonce");
}

/* Offset of the n-th (0-based) PEM certificate's last base64 character before "-----END", in q's buffer. */
static size_t pem_sig_char(const blob_t b, const cscp_tdx_quote_t *q, int n)
{
        const char *s = (const char *)q->pck_chain, *end = s;
        size_t at;

        for (int i = 0; i <= n; i++) {
                end = strstr(end, "-----END CERTIFICATE-----");
                cr_assert_not_null(end);
                if (i < n)
                        end++;
        }
        at = (size_t)(end - s);
        /* back over the newline and '=' padding, then a few characters into the ECDSA s value */
        while (s[at - 1] == '\n' || s[at - 1] == '=' || s[at - 1] == '\r')
                at--;
        at -= 4;
        cr_assert(s[at] != '\n');
        return (size_t)((const uint8_t *)s + at - b.p);
}

static void flip_base64(uint8_t *c)
{
        *c = *c == 'A' ? 'B' : 'A';
}

Test(tdx, one_byte_flipped)
{
        static const char *files[] = {"tdx_prod_quote_SPR_E4.dat", "ccel_cos-113-tdx-quote.dat", "quote_v5_sample.dat"};
        static const time_t times[] = {T_V4, T_COS, T_V5};

        for (size_t i = 0; i < 3; i++) {
                blob_t orig = load(files[i]);
                cscp_tdx_quote_t q = parse_ok(orig, files[i]);
                size_t body = q.signed_len - (q.tdx15 ? CSCP_TDX_BODY15_SIZE : CSCP_TDX_BODY10_SIZE);
                size_t sig = q.signed_len + 4, ak = sig + 64, qe = ak + 64 + 6;
                size_t auth = (size_t)(q.qe_auth - orig.p);
                const struct {
                        const char *what;
                        size_t off;
                        bool base64;
                        const char *fails[3];
                } cases[] = {
                        {"body (MRTD)", body + 136, false, {"tdx-quote-signature"}},
                        {"body (REPORTDATA)", body + 520 + 63, false, {"tdx-quote-signature"}},
                        {"header (user data)", 28, false, {"tdx-quote-signature"}},
                        {"quote signature", sig + 10, false, {"tdx-quote-signature"}},
                        {"attestation key", ak + 5, false, {"tdx-quote-signature", "tdx-qe-binding"}},
                        {"QE report (CPUSVN)", qe, false, {"tdx-qe-report-signature"}},
                        {"QE report (REPORTDATA)", qe + 320, false, {"tdx-qe-report-signature", "tdx-qe-binding"}},
                        {"QE report signature", qe + 384 + 40, false, {"tdx-qe-report-signature"}},
                        {"QE auth data", auth, false, {"tdx-qe-binding"}},
                        {"PCK leaf certificate", pem_sig_char(orig, &q, 0), true, {"tdx-pck-chain"}},
                        {"PCK platform CA certificate", pem_sig_char(orig, &q, 1), true, {"tdx-pck-chain"}},
                };

                for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                        blob_t b = dup_blob(orig);
                        char what[256];

                        if (cases[c].base64)
                                flip_base64(&b.p[cases[c].off]);
                        else
                                b.p[cases[c].off] ^= 0x01;
                        snprintf(what, sizeof(what), "%s, byte %zu flipped in the %s", files[i], cases[c].off,
                                 cases[c].what);
                        verify_expect(b, times[i], NULL, 0, NULL, cases[c].fails, what);
                }
        }
}

/* ------------------------------------------------------------ bad input */

static void parse_fails(const uint8_t *p, size_t len, int code, const char *needle, const char *what)
{
        cscp_tdx_quote_t q;
        char err[256];
        int k = cscp_tdx_quote_parse(p, len, &q, err, sizeof(err));

        cr_assert_eq(k, code, "%s: got %d (%s), want %d; %s", what, k, cscp_err_name(k), code, err);
        cr_assert_neq(err[0], '\0', "%s: no error text", what);
        if (needle)
                cr_assert_not_null(strstr(err, needle), "%s: '%s' does not name %s", what, err, needle);
}

Test(tdx, truncated_every_length)
{
        static const char *files[] = {"tdx_prod_quote_SPR_E4.dat", "quote_v5_sample.dat"};

        for (size_t i = 0; i < 2; i++) {
                blob_t orig = load(files[i]);
                cscp_tdx_quote_t q = parse_ok(orig, files[i]);
                size_t end = orig.len - q.trailing_len;

                for (size_t n = 0; n < end; n++) {
                        /* an exact-size copy, so ASan catches any read past the end */
                        uint8_t *c = malloc(n ? n : 1);
                        char what[128];

                        cr_assert_not_null(c);
                        memcpy(c, orig.p, n);
                        snprintf(what, sizeof(what), "%s cut to %zu bytes", files[i], n);
                        parse_fails(c, n, CSCP_E_PROTO, NULL, what);
                        free(c);
                }
        }
        {
                blob_t b = load("quote_v5_sample.dat");

                parse_fails(b.p, 100, CSCP_E_PROTO, "body.mrseam: truncated at offset 70", "v5 cut to 100");
                parse_fails(b.p, 3, CSCP_E_PROTO, "header.attestation_key_type: truncated at offset 2", "v5 cut to 3");
        }
}

Test(tdx, bad_headers_and_sizes)
{
        blob_t spr = load("tdx_prod_quote_SPR_E4.dat"), v5 = load("quote_v5_sample.dat");
        cscp_tdx_quote_t q = parse_ok(spr, "SPR_E4");
        size_t sig = q.signed_len, cert = sig + 4 + 128, inner = (size_t)(q.qe_auth - spr.p) + q.qe_auth_len;
        blob_t b;

        b = dup_blob(spr);
        le16_put(b.p, 3);
        parse_fails(b.p, b.len, CSCP_E_VERSION, "header.version", "version 3");
        le16_put(b.p, 6);
        parse_fails(b.p, b.len, CSCP_E_VERSION, "header.version", "version 6");

        b = dup_blob(spr);
        le32_put(b.p + 4, 0); /* SGX */
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "header.tee_type at offset 4", "TEE type SGX");
        le32_put(b.p + 4, 0x82);
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "header.tee_type", "TEE type 0x82");

        b = dup_blob(spr);
        le16_put(b.p + 2, 3); /* ECDSA-384 */
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "header.attestation_key_type", "key type 3");

        b = dup_blob(spr);
        le32_put(b.p + sig, 0xffffffffu);
        parse_fails(b.p, b.len, CSCP_E_PROTO, "signature_data.size at offset 632", "signature data size huge");
        le32_put(b.p + sig, 300);
        parse_fails(b.p, b.len, CSCP_E_PROTO, "certification_data.size", "signature data size short");

        b = dup_blob(spr);
        le16_put(b.p + cert, 5);
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "certification_data.type", "outer certification type 5");
        b = dup_blob(spr);
        le32_put(b.p + cert + 2, 4166);
        parse_fails(b.p, b.len, CSCP_E_PROTO, "certification_data.size", "outer certification size");

        b = dup_blob(spr);
        le16_put(b.p + inner, 4);
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "pck_cert_data.type", "inner certification type 4");
        b = dup_blob(spr);
        le32_put(b.p + inner + 2, 40000);
        parse_fails(b.p, b.len, CSCP_E_TOO_BIG, "pck_cert_data.size", "inner certification size over the limit");
        le32_put(b.p + inner + 2, 3676);
        parse_fails(b.p, b.len, CSCP_E_PROTO, "pck_cert_data.size", "inner certification size short");

        b = dup_blob(spr);
        le16_put(b.p + inner - q.qe_auth_len - 2, 33);
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "pck_cert_data.type", "QE auth data size off by one");
        le16_put(b.p + inner - q.qe_auth_len - 2, 0xffff);
        parse_fails(b.p, b.len, CSCP_E_TOO_BIG, "qe_auth_data.size", "QE auth data size over the limit");

        /* v5 body descriptor */
        b = dup_blob(v5);
        le16_put(b.p + 48, 1); /* SGX enclave report */
        parse_fails(b.p, b.len, CSCP_E_UNSUPPORTED, "body_descriptor.type at offset 48", "v5 body type 1");
        b = dup_blob(v5);
        le32_put(b.p + 50, 584);
        parse_fails(b.p, b.len, CSCP_E_PROTO, "body_descriptor.size at offset 50", "v5 body size 584 for type 3");

        /* oversize: a valid quote followed by zeros past the limit */
        {
                uint8_t *big = calloc(1, CSCP_TDX_QUOTE_MAX + 1);

                cr_assert_not_null(big);
                memcpy(big, v5.p, v5.len);
                parse_fails(big, CSCP_TDX_QUOTE_MAX + 1, CSCP_E_TOO_BIG, "limit", "oversize quote");
                cr_assert_eq(cscp_tdx_quote_parse(big, CSCP_TDX_QUOTE_MAX, &q, NULL, 0), 0,
                             "zero padding up to the limit is outside the signature data and accepted");
                cr_assert_eq(q.trailing_len, CSCP_TDX_QUOTE_MAX - v5.len);
                free(big);
        }
}

Test(tdx, verify_refuses_bad_input)
{
        blob_t spr = load("tdx_prod_quote_SPR_E4.dat");
        cscp_tdx_verify_opts_t o = {.root_file = fx_path("trusted_root.pem"), .at = T_V4};
        const cscp_claim_t *c;
        cscp_verdict_t v;
        blob_t b = dup_blob(spr);

        /* a quote that does not parse: one failed tdx-quote-format claim naming the field */
        le16_put(b.p, 3);
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_tdx_quote_verify(b.p, b.len, &o, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        c = cscp_verdict_find(&v, "tdx-quote-format");
        cr_assert_not_null(c);
        cr_assert_not(c->pass);
        cr_assert_not_null(strstr(c->detail, "header.version"), "%s", c->detail);
        cscp_verdict_clear(&v);

        /* no trust anchor: the verifier cannot decide */
        o.root_file = fx_path("no-such-root.pem");
        cscp_verdict_init(&v);
        cr_assert_lt(cscp_tdx_quote_verify(spr.p, spr.len, &o, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR);
        cscp_verdict_clear(&v);

        /* a trust anchor file without a certificate */
        o.root_file = fx_path("ccel_nonce.dat");
        cscp_verdict_init(&v);
        cr_assert_lt(cscp_tdx_quote_verify(spr.p, spr.len, &o, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR);
        cscp_verdict_clear(&v);

        /* another project's CA as the anchor (a TPM fixture's root): the chain does not reach it */
        o.root_file = harness_path(harness_fixtures_dir(), "quote/cmc-txt-rsa/root_ca.pem");
        if (access(o.root_file, R_OK) != 0)
                return; /* that TPM fixture is absent: the rest was checked */
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_tdx_quote_verify(spr.p, spr.len, &o, &v), 0, "%s", v.error ? v.error : "");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        c = cscp_verdict_find(&v, "tdx-pck-chain");
        cr_assert_not_null(c);
        cr_assert_not(c->pass);
        cr_assert(cscp_verdict_find(&v, "tdx-quote-signature")->pass);
        cscp_verdict_clear(&v);
}

/* ------------------------------------------------------------ chain depth */

/*
 * A generated P-256 chain: root c0, CAs c1..c<n>, leaf; chain.pem = leaf, c<n> .. c1.
 * Returns the directory.
 */
static char *make_chain(int n_cas)
{
        char *dir = harness_keep(harness_tmpdir());
        char script[2048], *out = NULL, *err = NULL;
        int rc = -1;

        snprintf(script, sizeof(script),
                 "set -e; cd '%s'\n"
                 "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > ca.ext\n"
                 "printf 'basicConstraints=critical,CA:FALSE\\n' > leaf.ext\n"
                 "openssl ecparam -name prime256v1 -genkey -noout -out k0.pem\n"
                 "openssl req -x509 -new -key k0.pem -subj /CN=root -days 36500 -out c0.pem "
                 "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign\n"
                 "i=1; while [ $i -le %d ]; do p=$((i-1))\n"
                 "  openssl ecparam -name prime256v1 -genkey -noout -out k$i.pem\n"
                 "  openssl req -new -key k$i.pem -subj /CN=ca$i -out r$i.csr\n"
                 "  openssl x509 -req -in r$i.csr -CA c$p.pem -CAkey k$p.pem -days 36500 -extfile ca.ext "
                 "-out c$i.pem 2>/dev/null\n"
                 "  i=$((i+1)); done\n"
                 "p=$((i-1))\n"
                 "openssl ecparam -name prime256v1 -genkey -noout -out kl.pem\n"
                 "openssl req -new -key kl.pem -subj /CN=leaf -out rl.csr\n"
                 "openssl x509 -req -in rl.csr -CA c$p.pem -CAkey k$p.pem -days 36500 -extfile leaf.ext "
                 "-out leaf.pem 2>/dev/null\n"
                 "cat leaf.pem > chain.pem; j=$p; while [ $j -ge 1 ]; do cat c$j.pem >> chain.pem; j=$((j-1)); done\n",
                 dir, n_cas);
        {
                char *argv[] = {"sh", "-c", script, NULL};

                cr_assert_eq(harness_run(argv, 60000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 0, "openssl chain generation failed: %s", err);
                free(out);
                free(err);
        }
        return dir;
}

/* The SPR quote with its PEM chain replaced by the file's, every enclosing size adjusted. */
static blob_t with_chain(blob_t spr, const char *pem_path)
{
        cscp_tdx_quote_t q = parse_ok(spr, "SPR_E4");
        size_t head = (size_t)(q.pck_chain - spr.p), pem_len = 0;
        uint8_t *pem = NULL;
        blob_t b;

        cr_assert_eq(cscp_file_read(pem_path, 1 << 20, &pem, &pem_len), 0);
        b.len = head + pem_len;
        b.p = malloc(b.len);
        cr_assert_not_null(b.p);
        harness_keep(b.p);
        memcpy(b.p, spr.p, head);
        memcpy(b.p + head, pem, pem_len);
        le32_put(b.p + head - 4, (uint32_t)pem_len); /* pck_cert_data.size */
        le32_put(b.p + q.signed_len + 4 + 128 + 2, (uint32_t)(b.len - (q.signed_len + 4 + 128 + 6))); /* cert data */
        le32_put(b.p + q.signed_len, (uint32_t)(b.len - q.signed_len - 4)); /* signature_data.size */
        free(pem);
        return b;
}

static const cscp_claim_t *verify_with_root(blob_t b, const char *root, cscp_verdict_t *v)
{
        cscp_tdx_verify_opts_t o = {.root_file = root, .at = 0}; /* now: the chain was made just now */

        cscp_verdict_init(v);
        cr_assert_eq(cscp_tdx_quote_verify(b.p, b.len, &o, v), 0, "%s", v->error ? v->error : "");
        return cscp_verdict_find(v, "tdx-pck-chain");
}

Test(tdx, chain_depth_limit)
{
        blob_t spr = load("tdx_prod_quote_SPR_E4.dat");
        const cscp_claim_t *c;
        cscp_verdict_t v;
        char *ok = make_chain(2), *deep = make_chain(CSCP_TDX_CHAIN_DEPTH_MAX + 2);
        blob_t b_ok = with_chain(spr, harness_path(ok, "chain.pem"));
        blob_t b_deep = with_chain(spr, harness_path(deep, "chain.pem"));

        /* two CAs below the root: within the limit, the chain verifies (the QE report was not signed by it) */
        c = verify_with_root(b_ok, harness_path(ok, "c0.pem"), &v);
        cr_assert_not_null(c);
        cr_assert(c->pass, "%s", c->detail);
        cr_assert_not(cscp_verdict_find(&v, "tdx-qe-report-signature")->pass);
        cr_assert(cscp_verdict_find(&v, "tdx-quote-signature")->pass);
        cscp_verdict_clear(&v);

        /* six CAs below the root: over the depth limit */
        c = verify_with_root(b_deep, harness_path(deep, "c0.pem"), &v);
        cr_assert_not_null(c);
        cr_assert_not(c->pass);
        cr_assert_not_null(strstr(c->detail, "too long"), "%s", c->detail);
        cscp_verdict_clear(&v);
}

/* ------------------------------------------------------------ the command */

Test(tdx, cli)
{
        char *cscp = harness_path(harness_build_dir(), "cscp");
        char *quote = fx_path("tdx_prod_quote_SPR_E4.dat"), *root = fx_path("trusted_root.pem");
        char *out = NULL, *err = NULL;
        int rc = -1;

        {
                char *argv[] = {cscp, "tdx", "inspect", quote, NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 0, "%s", err);
                cr_assert_not_null(strstr(out, "mrtd                 6363b8043668a3ad"), "%s", out);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "inspect", quote, "--json", NULL};
                json_object *j, *m;

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 0, "%s", err);
                j = json_tokener_parse(out);
                cr_assert_not_null(j, "%s", out);
                cr_assert(json_object_object_get_ex(j, "rtmr2", &m));
                cr_assert_str_eq(json_object_get_string(m), "8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e"
                                                            "6466fe59c7368b3c2287fc7c3bf5c924eb4424e");
                json_object_put(j);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "verify", quote, "--tdx-root", root, "--at", "2023-07-01T01:00:00Z", NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 0, "%s%s", out, err);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "verify", quote, "--tdx-root", root, "--at", "2053-07-01", NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 1, "%s%s", out, err);
                cr_assert_not_null(strstr(out, "FAIL tdx-pck-chain"), "%s", out);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "inspect", root, NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 2);
                cr_assert_not_null(strstr(err, "header.version"), "%s", err);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "verify", quote, NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 2, "verify without --tdx-root");
                free(out);
                free(err);
        }
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

/* Seed format (tests/fuzz/fuzz-tdx-quote.c): the quote bytes. */
Test(tdx, fuzz_seeds)
{
        static const char *files[] = {"tdx_prod_quote_SPR_E4.dat", "ccel_cos-113-tdx-quote.dat", "quote_v5_sample.dat"};
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];

        fx_dir();
        if (!build)
                cr_skip_test("CSCP_BUILD_DIR not set");
        snprintf(dir, sizeof(dir), "%s/fuzz-seeds/tdx-quote", build);
        mkdir_p(dir);
        for (size_t i = 0; i < 3; i++) {
                blob_t b = load(files[i]);

                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                cr_assert_eq(cscp_file_write_atomic(path, b.p, b.len, 0644), 0, "%s", path);
        }
}

/*
 * RTMRs = replay of the CCEL (the firmware's TCG2 log, SHA-384, in the ACPI
 * CCEL area): its event "PCR index" is the CC measurement register index
 * (1 = RTMR0 .. 4 = RTMR3), extended like a PCR. The fixture states the
 * replayed RTMR0-2; the COS quote made on that boot must hold the same values.
 */
Test(tdx, ccel_replays_to_the_quoted_rtmrs)
{
        blob_t area = load("ccel_ccel_data.dat"), quote = load("ccel_cos-113-tdx-quote.dat");
        static const char *const stated[3] = {
                "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
                "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
                "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t rp;
        cscp_tdx_quote_t q;
        size_t len = area.len;
        char err[256];
        int r;

        /* The area is padded with 0xFF after the log. */
        while (len > 0 && area.p[len - 1] == 0xff)
                len--;
        cr_assert_eq(len, 18101, "CCEL log length");
        cscp_replay_init(&rp);
        cr_assert_eq(cscp_eventlog_open_mem(area.p, len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0)
                cr_assert_eq(cscp_replay_extend(&rp, ev), 0);
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        cr_assert_eq(cscp_tdx_quote_parse(quote.p, quote.len, &q, err, sizeof(err)), 0, "%s", err);
        for (unsigned i = 0; i < 3; i++) {
                uint8_t v[CSCP_EVENT_MAX_DIGEST];
                char hex[2 * 48 + 1];
                size_t vl = 0;

                cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA384, i + 1, v, &vl), 0);
                cr_assert_eq(vl, 48);
                cscp_hex_encode(v, 48, hex);
                cr_assert_str_eq(hex, stated[i], "RTMR%u replayed from the CCEL", i);
                cr_assert_arr_eq(q.rtmr[i], v, 48, "RTMR%u in the quote differs from the CCEL replay", i);
        }
}
