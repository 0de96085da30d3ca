/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX TCB collateral (lib/tdx/collateral.c + the claims of lib/tdx/verify.c)
 * against the real Intel PCS responses of ../shared/fixtures/tdx/go-tdx-guest
 * (SOURCES.md §5), copied into a temporary directory under the layout names:
 *  - SPR_E4 quote + sample TCB info / QE identity at 2023-07-01T01:00Z: both
 *    signatures verify, the QE identity matches, and (as the source says) no
 *    TCB level matches; with the levels' SVNs zeroed (go-tdx-guest
 *    TestVerifyUsingTcbInfoV4, on parsed structures) the first level's status;
 *  - v5 quote + the v5 TCB info at 2026-02-03T01:00Z: the signature verifies,
 *    the TCB signing certificate (2018..2025) and the QE identity (next update
 *    2023-07-08) have expired; the evaluated status is UpToDate;
 *  - byte flips inside / outside the signed spans, altered signatures, times
 *    outside issueDate..nextUpdate, wrong FMSPC / PCE-ID / TDX module / QE,
 *    statuses of every kind (identity levels, convergence, TD relaunch);
 *  - collateral signed by a generated "Intel SGX TCB Signing" certificate
 *    (second trust anchor) so that UpToDate, the allowed list and the signer
 *    checks are seen end to end;
 *  - malformed, truncated (every length), oversize input: errors naming the
 *    file and field; `cscp tdx verify --tdx-collateral`;
 *  - seeds for fuzz-tdx-collateral in $CSCP_BUILD_DIR/fuzz-seeds/tdx-collateral/.
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
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "harness.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

#define FX_SUB "tdx/go-tdx-guest"

#define T_V4 1688173200 /* 2023-07-01T01:00:00Z (go-tdx-guest verify_test.go) */
#define T_V5 1770080400 /* 2026-02-03T01:00:00Z */

typedef harness_blob_t blob_t;

/* The fixtures of FX_SUB (tests/helpers/tools.c: the test skips when they are absent). */
#define fx_dir()      harness_fixture_dir(FX_SUB)
#define fx_path(name) harness_fixture_path(FX_SUB, name)
#define load(name)    harness_load(fx_path(name))

static blob_t dup_str(const char *s)
{
        blob_t b = {.p = (uint8_t *)harness_keep(strdup(s)), .len = strlen(s)};

        cr_assert_not_null(b.p);
        return b;
}

static void write_file(const char *dir, const char *name, blob_t b)
{
        char *path = harness_path(dir, name);

        cr_assert_eq(cscp_file_write_atomic(path, b.p, b.len, 0644), 0, "%s", path);
}

/* A collateral directory: the named fixtures (or given contents) under the layout names. */
static char *collateral_dir(const char *tcb_fx, const char *qe_fx, const char *chain_fx)
{
        char *dir = harness_keep(harness_tmpdir());

        if (tcb_fx)
                write_file(dir, CSCP_TDX_COLLATERAL_TCB_INFO, load(tcb_fx));
        if (qe_fx)
                write_file(dir, CSCP_TDX_COLLATERAL_QE_IDENTITY, load(qe_fx));
        if (chain_fx)
                write_file(dir, CSCP_TDX_COLLATERAL_CHAIN, load(chain_fx));
        return dir;
}

static char *spr_dir(void)
{
        return collateral_dir("sample_tcbInfo_response", "sample_qeIdentity_response", "tcb_signing_issuer_chain.pem");
}

/* Replaces the first occurrence of from by to in b (a fresh copy). */
static blob_t replace(blob_t b, const char *from, const char *to)
{
        const char *s = (const char *)b.p;
        const char *at = strstr(s, from);
        size_t fl = strlen(from), tl = strlen(to);
        blob_t c;

        cr_assert_not_null(at, "'%s' not in the document", from);
        c.len = b.len - fl + tl;
        c.p = harness_keep(malloc(c.len + 1));
        cr_assert_not_null(c.p);
        memcpy(c.p, s, (size_t)(at - s));
        memcpy(c.p + (at - s), to, tl);
        memcpy(c.p + (at - s) + tl, at + fl, b.len - (size_t)(at - s) - fl);
        c.p[c.len] = '\0';
        return c;
}

static void verify_dir(blob_t quote, const char *root, const char *dir, time_t at, const char *const *allowed,
                       size_t n_allowed, cscp_verdict_t *v)
{
        cscp_tdx_verify_opts_t o = {
                .root_file = root,
                .at = at,
                .collateral_dir = dir,
                .tcb_allowed = allowed,
                .n_tcb_allowed = n_allowed,
        };

        cscp_verdict_init(v);
        cr_assert_eq(cscp_tdx_quote_verify(quote.p, quote.len, &o, v), 0, "%s", v->error ? v->error : "?");
        cr_assert_null(v->error, "%s", v->error);
        cr_assert_eq(v->n_claims, 8, "%zu claims", v->n_claims);
}

static const cscp_claim_t *claim(const cscp_verdict_t *v, const char *name)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);

        cr_assert_not_null(c, "claim %s missing", name);
        return c;
}

static void claim_is(const cscp_verdict_t *v, const char *name, bool pass, const char *needle)
{
        const cscp_claim_t *c = claim(v, name);

        cr_assert_eq(c->pass, pass, "%s %s: %s", name, c->pass ? "passed" : "failed", c->detail);
        if (needle)
                cr_assert_not_null(strstr(c->detail, needle), "%s: '%s' does not say '%s'", name, c->detail, needle);
}

static void lacks(const cscp_verdict_t *v, const char *name, const char *needle)
{
        const cscp_claim_t *c = claim(v, name);

        cr_assert_null(strstr(c->detail, needle), "%s: '%s' says '%s'", name, c->detail, needle);
}

static const char *fact(const cscp_verdict_t *v, const char *key)
{
        for (size_t i = 0; i < v->n_facts; i++)
                if (strcmp(v->facts[i].key, key) == 0)
                        return v->facts[i].value;
        return NULL;
}

static void quote_claims_pass(const cscp_verdict_t *v)
{
        static const char *const base[] = {"tdx-quote-format", "tdx-quote-signature", "tdx-qe-report-signature",
                                           "tdx-qe-binding", "tdx-pck-chain"};

        for (size_t i = 0; i < 5; i++)
                claim_is(v, base[i], true, NULL);
}

/* ------------------------------------------------------------ SPR_E4 (v4) */

Test(tdx_collateral, spr_e4_as_published)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        static const char *const all[] = {
                "SWHardeningNeeded", "ConfigurationNeeded",          "ConfigurationAndSWHardeningNeeded",
                "OutOfDate",         "OutOfDateConfigurationNeeded", "Revoked"};
        json_object *j = json_object_from_file(fx_path("expected.json")), *e, *f;
        cscp_verdict_t v;
        char *dir = spr_dir();

        verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V4, NULL, 0, &v);
        quote_claims_pass(&v);
        /* both signatures verify with tcb_signing_issuer_chain.pem, inside both validity windows */
        claim_is(&v, "tdx-collateral", true, "FMSPC 50806f000000");
        claim_is(&v, "tdx-collateral", true, "signed by CN=Intel SGX TCB Signing, 2 certificates");
        /* the QE report: MRSIGNER dc9e2a7c..., ISVPRODID 2, ATTRIBUTES 0x15 & 0xFB = 0x11, ISVSVN 4 -> UpToDate */
        claim_is(&v, "tdx-qe-identity", true, "QE ISVSVN 4: UpToDate");
        /* source: no TCB level matches as published (PCK SGX components 3,3,... < 5,5,...; TEE_TCB_SVN[2] 4 < 5) */
        claim_is(&v, "tdx-tcb-status", false, "no matching TCB level");
        claim_is(&v, "tdx-tcb-status", false, "03030202020100020000000000000000 / PCESVN 11");
        cr_assert_null(fact(&v, "tdx-tcb-status"), "with collateral the status is a claim, not a fact");
        cr_assert_not_null(j);
        cr_assert(json_object_object_get_ex(j, "tdx_prod_quote_SPR_E4.dat", &e));
        cr_assert(json_object_object_get_ex(e, "pck_fmspc", &f));
        cr_assert_str_eq(fact(&v, "tdx-fmspc"), json_object_get_string(f), "stated PCK FMSPC");
        json_object_put(j);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);

        /* "no matching TCB level" is never accepted, whatever the caller allows */
        verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V4, all, 6, &v);
        claim_is(&v, "tdx-tcb-status", false, "no matching TCB level");
        cscp_verdict_clear(&v);
}

static cscp_tdx_quote_t parse_quote(blob_t b)
{
        cscp_tdx_quote_t q;
        char err[256];

        cr_assert_eq(cscp_tdx_quote_parse(b.p, b.len, &q, err, sizeof(err)), 0, "%s", err);
        return q;
}

static void parse_tcb(blob_t b, cscp_tdx_tcb_info_t *ti)
{
        char err[384];
        int k = cscp_tdx_tcb_info_parse(b.p, b.len, ti, err, sizeof(err));

        cr_assert_eq(k, 0, "%s (%s)", err, cscp_strerror(k));
}

static void parse_qe(blob_t b, cscp_tdx_qe_identity_t *qe)
{
        char err[384];
        int k = cscp_tdx_qe_identity_parse(b.p, b.len, qe, err, sizeof(err));

        cr_assert_eq(k, 0, "%s (%s)", err, cscp_strerror(k));
}

static cscp_tdx_pck_ext_t pck_ext(const cscp_tdx_quote_t *q)
{
        cscp_tdx_pck_ext_t ext;
        char err[256];

        cr_assert_eq(cscp_tdx_pck_ext_from_pem(q->pck_chain, q->pck_chain_len, &ext, err, sizeof(err)), 0, "%s", err);
        return ext;
}

static void hex_is(const uint8_t *b, size_t n, const char *want)
{
        char hex[2 * 64 + 1];

        cscp_hex_encode(b, n, hex);
        cr_assert_str_eq(hex, want);
}

static void zero_level(cscp_tdx_tcb_level_t *l)
{
        memset(l->sgx_svn, 0, 16);
        memset(l->tdx_svn, 0, 16);
}

Test(tdx_collateral, spr_e4_parsed_and_evaluated)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        blob_t tcb = load("sample_tcbInfo_response"), qeb = load("sample_qeIdentity_response");
        cscp_tdx_quote_t q = parse_quote(quote);
        cscp_tdx_pck_ext_t ext = pck_ext(&q);
        cscp_tdx_tcb_info_t ti;
        cscp_tdx_qe_identity_t qe;
        cscp_tdx_tcb_eval_t r;

        /* the PCK leaf's SGX extension (openssl asn1parse of the fixture) */
        hex_is(ext.fmspc, 6, "50806f000000");
        hex_is(ext.pce_id, 2, "0000");
        hex_is(ext.sgx_svn, 16, "03030202020100020000000000000000");
        hex_is(ext.cpu_svn, 16, "03030202020100020000000000000000");
        cr_assert_eq(ext.pce_svn, 11);

        parse_tcb(tcb, &ti);
        cr_assert_eq(ti.version, 3);
        cr_assert_eq(ti.issue_date, 1687077778);  /* 2023-06-18T08:42:58Z */
        cr_assert_eq(ti.next_update, 1689669778); /* 2023-07-18T08:42:58Z */
        cr_assert_eq(ti.eval_number, 15);
        cr_assert_eq(ti.n_levels, 2);
        cr_assert_eq(ti.n_module_ids, 0);
        cr_assert_eq(ti.levels[0].status, CSCP_TDX_TCB_UP_TO_DATE);
        cr_assert_eq(ti.levels[1].status, CSCP_TDX_TCB_OUT_OF_DATE);
        cr_assert_eq(ti.levels[0].pce_svn, 11);
        cr_assert_eq(ti.levels[0].sgx_svn[0], 5);
        cr_assert_eq(ti.levels[0].tdx_svn[2], 5);
        cr_assert_null(ti.levels[0].advisories);
        cr_assert_str_eq(ti.levels[1].tcb_date, "2018-01-04T00:00:00Z");
        cr_assert_not_null(strstr(ti.levels[1].advisories, "INTEL-SA-00106,INTEL-SA-00115"));
        /* the signed span is the "tcbInfo" value as in the file */
        cr_assert_eq(ti.body, tcb.p + strlen("{\"tcbInfo\":"));
        cr_assert_eq(ti.body_len, 2245);
        parse_qe(qeb, &qe);
        cr_assert_eq(qe.isv_prod_id, 2);
        cr_assert_eq(qe.n_levels, 1);
        cr_assert_eq(qe.levels[0].isv_svn, 4);
        cr_assert_eq(qe.body_len, 461);

        /* as published: no level */
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_NO_MATCH, "%s", cscp_tdx_tcb_status_name(r.status));
        cr_assert_eq(r.level, -1);
        cr_assert_eq(r.sgx_level, -1);
        cr_assert(r.qe_identity_ok, "%s", r.qe_why);
        cr_assert_eq(r.qe_status, CSCP_TDX_TCB_UP_TO_DATE);

        /* TEE_TCB_SVN alone fails too: with the SGX components of level 0 zeroed, TDX component 2 (4 < 5) */
        memset(ti.levels[0].sgx_svn, 0, 16);
        memset(ti.levels[1].sgx_svn, 0, 16);
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_NO_MATCH);
        cr_assert_eq(r.sgx_level, 0);
        cr_assert_not_null(strstr(r.why, "TEE_TCB_SVN 03000400000000000000000000000000"), "%s", r.why);

        /* go-tdx-guest TestVerifyUsingTcbInfoV4: level 0's SVNs zeroed -> level 0, UpToDate */
        zero_level(&ti.levels[0]);
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_UP_TO_DATE, "%s: %s", cscp_tdx_tcb_status_name(r.status), r.why);
        cr_assert_eq(r.level, 0);
        cr_assert_eq(r.module_id, -1, "TEE_TCB_SVN[1] = 0: no versioned TDX module");
        cr_assert_eq(r.advisories[0], '\0');

        /* TestNegativeTcbInfoTcbStatusV4: PCESVN 20 > 11 -> level 0 out of reach; level 1 (OutOfDate, 13
         * advisories) is reached once its SVNs are zeroed too */
        ti.levels[0].pce_svn = 20;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_NO_MATCH);
        zero_level(&ti.levels[1]);
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_OUT_OF_DATE);
        cr_assert_eq(r.level, 1);
        cr_assert_str_eq(r.advisories, ti.levels[1].advisories);
        ti.levels[0].pce_svn = 11;

        /* every platform status passes through while the QE is UpToDate */
        for (int s = CSCP_TDX_TCB_UP_TO_DATE; s <= CSCP_TDX_TCB_REVOKED; s++) {
                ti.levels[0].status = (cscp_tdx_tcb_status_t)s;
                cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
                cr_assert_eq(r.status, s, "%s -> %s", cscp_tdx_tcb_status_name((cscp_tdx_tcb_status_t)s),
                             cscp_tdx_tcb_status_name(r.status));
        }

        /* the QE's level converges (QVL convergeTcbStatusWithQeTcbStatus) */
        {
                static const struct {
                        cscp_tdx_tcb_status_t platform, qe, want;
                } cv[] = {
                        {CSCP_TDX_TCB_UP_TO_DATE, CSCP_TDX_TCB_OUT_OF_DATE, CSCP_TDX_TCB_OUT_OF_DATE},
                        {CSCP_TDX_TCB_SW_HARDENING_NEEDED, CSCP_TDX_TCB_OUT_OF_DATE, CSCP_TDX_TCB_OUT_OF_DATE},
                        {CSCP_TDX_TCB_CONFIGURATION_NEEDED, CSCP_TDX_TCB_OUT_OF_DATE,
                         CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED},
                        {CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED, CSCP_TDX_TCB_OUT_OF_DATE,
                         CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED},
                        {CSCP_TDX_TCB_OUT_OF_DATE, CSCP_TDX_TCB_OUT_OF_DATE, CSCP_TDX_TCB_OUT_OF_DATE},
                        {CSCP_TDX_TCB_UP_TO_DATE, CSCP_TDX_TCB_REVOKED, CSCP_TDX_TCB_REVOKED},
                        {CSCP_TDX_TCB_CONFIGURATION_NEEDED, CSCP_TDX_TCB_REVOKED, CSCP_TDX_TCB_REVOKED},
                };

                for (size_t i = 0; i < sizeof(cv) / sizeof(cv[0]); i++) {
                        ti.levels[0].status = cv[i].platform;
                        qe.levels[0].status = cv[i].qe;
                        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
                        cr_assert_eq(r.status, cv[i].want, "platform %s + QE %s -> %s",
                                     cscp_tdx_tcb_status_name(cv[i].platform), cscp_tdx_tcb_status_name(cv[i].qe),
                                     cscp_tdx_tcb_status_name(r.status));
                }
                ti.levels[0].status = CSCP_TDX_TCB_UP_TO_DATE;
                qe.levels[0].status = CSCP_TDX_TCB_UP_TO_DATE;
        }

        /* TestNegativeCheckQeStatusV4: QE level ISVSVN 10 > 4 -> no QE level */
        qe.levels[0].isv_svn = 10;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_NO_MATCH);
        cr_assert(r.qe_identity_ok);
        cr_assert_not_null(strstr(r.why, "QE ISVSVN 4 is below every QE identity level"), "%s", r.why);
        qe.levels[0].isv_svn = 4;

        /* TestNegativeVerifyUsingTcbInfoV4: FMSPC, PCE-ID, TDX module signer and attributes */
        {
                cscp_tdx_tcb_info_t t2 = ti;

                t2.fmspc[0] = 0x11;
                cscp_tdx_tcb_evaluate(&q, &ext, &t2, &qe, &r);
                cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
                cr_assert_not_null(
                        strstr(r.why, "the TCB info is for FMSPC 11806f000000, the PCK certificate's is 50806f000000"),
                        "%s", r.why);
                t2 = ti;
                t2.pce_id[1] = 0x11;
                cscp_tdx_tcb_evaluate(&q, &ext, &t2, &qe, &r);
                cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
                cr_assert_not_null(strstr(r.why, "PCE-ID 0011"), "%s", r.why);
                t2 = ti;
                t2.module_mrsigner[0] = 1;
                cscp_tdx_tcb_evaluate(&q, &ext, &t2, &qe, &r);
                cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
                cr_assert_not_null(strstr(r.why, "MRSIGNERSEAM"), "%s", r.why);
                t2 = ti;
                t2.module_attributes[3] = 4;
                cscp_tdx_tcb_evaluate(&q, &ext, &t2, &qe, &r);
                cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
                cr_assert_not_null(strstr(r.why, "SEAMATTRIBUTES"), "%s", r.why);
        }

        /* TestNegativeVerifyUsingQeIdentityV4: MISCSELECT, ATTRIBUTES, MRSIGNER, ISVPRODID */
        {
                static const char *const why[] = {"MISCSELECT", "ATTRIBUTES", "MRSIGNER", "ISVPRODID 2"};

                for (int i = 0; i < 4; i++) {
                        cscp_tdx_qe_identity_t q2 = qe;

                        if (i == 0)
                                memcpy(q2.miscselect, "\x01\x02\x03\x04", 4);
                        else if (i == 1)
                                q2.attributes[0] = 0x15; /* the report's 0x15 under mask 0xFB is 0x11 */
                        else if (i == 2)
                                q2.mrsigner[31] ^= 1;
                        else
                                q2.isv_prod_id = 5;
                        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &q2, &r);
                        cr_assert_not(r.qe_identity_ok, "%s", why[i]);
                        cr_assert_not_null(strstr(r.qe_why, why[i]), "%s", r.qe_why);
                        cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
                }
        }
        cscp_tdx_tcb_info_free(&ti);
        cscp_tdx_qe_identity_free(&qe);
}

/* ------------------------------------------------------------ v5 (TDX 1.5) */

Test(tdx_collateral, v5_as_published)
{
        blob_t quote = load("quote_v5_sample.dat");
        char *dir = collateral_dir("sample_tcbinfo_response_v5", "sample_qeIdentity_response",
                                   "tcb_signing_issuer_chain.pem");
        cscp_verdict_t v;

        verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V5, NULL, 0, &v);
        quote_claims_pass(&v);
        /* the v5 TCB info (2026-02-01 .. 03-03) verifies with the TCB signing key, but that certificate was
         * valid 2018-05-21 .. 2025-05-21, and the only QE identity fixture is from 2023 */
        claim_is(&v, "tdx-collateral", false, "tcb_signing_chain.pem: certificate at depth 0: certificate has expired");
        claim_is(&v, "tdx-collateral", false,
                 "qe identity expired: nextUpdate 2023-07-08T07:24:59Z < at 2026-02-03T01:00:00Z");
        lacks(&v, "tdx-collateral", "signature does not verify");
        lacks(&v, "tdx-collateral", "tcb info expired");
        /* evaluated all the same, reported, refused */
        claim_is(&v, "tdx-tcb-status", false, "UpToDate at TCB level 1 of 3 (tcbDate 2024-11-13T00:00:00Z, UpToDate)");
        claim_is(&v, "tdx-tcb-status", false, "TDX module TDX_01 level 1: UpToDate");
        claim_is(&v, "tdx-tcb-status", false, "but the collateral did not verify");
        claim_is(&v, "tdx-qe-identity", false, "QE ISVSVN 7: UpToDate, but the collateral did not verify");
        cr_assert_str_eq(fact(&v, "tdx-fmspc"), "90c06f000000");
        cscp_verdict_clear(&v);

        /* one byte of the signed span changed: now the signature fails too */
        {
                blob_t t = load("sample_tcbinfo_response_v5");

                write_file(dir, CSCP_TDX_COLLATERAL_TCB_INFO,
                           replace(t, "\"tcbEvaluationDataNumber\":18", "\"tcbEvaluationDataNumber\":19"));
                verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V5, NULL, 0, &v);
                claim_is(&v, "tdx-collateral", false,
                         "tcb_info.json: the signature does not verify over the 4113-byte \"tcbInfo\" value");
                cscp_verdict_clear(&v);
        }
}

Test(tdx_collateral, v5_parsed_and_evaluated)
{
        blob_t quote = load("quote_v5_sample.dat");
        blob_t tcb = load("sample_tcbinfo_response_v5"), qeb = load("sample_qeIdentity_response");
        cscp_tdx_quote_t q = parse_quote(quote);
        cscp_tdx_pck_ext_t ext = pck_ext(&q);
        cscp_tdx_tcb_info_t ti;
        cscp_tdx_qe_identity_t qe;
        cscp_tdx_tcb_eval_t r;

        hex_is(ext.fmspc, 6, "90c06f000000");
        hex_is(ext.sgx_svn, 16, "04040202040100050000000000000000");
        cr_assert_eq(ext.pce_svn, 13);
        parse_tcb(tcb, &ti);
        parse_qe(qeb, &qe);
        cr_assert_eq(ti.n_levels, 3);
        cr_assert_eq(ti.n_module_ids, 2);
        cr_assert_str_eq(ti.module_ids[0].id, "TDX_03");
        cr_assert_str_eq(ti.module_ids[1].id, "TDX_01");
        cr_assert_eq(ti.module_ids[1].n_levels, 3);
        cr_assert_eq(ti.module_ids[1].levels[0].isv_svn, 6);

        /* TEE_TCB_SVN 0b 01 04: module TDX_01 at ISVSVN 11 (>= 6: UpToDate); TDX components from index 2
         * (4 >= 3); PCK SGX components 4,4,2,2,4,1,0,5 / PCESVN 13 reach level 1; QE ISVSVN 7 >= 4 */
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_UP_TO_DATE, "%s: %s", cscp_tdx_tcb_status_name(r.status), r.why);
        cr_assert_eq(r.level, 0);
        cr_assert_eq(r.module_id, 1);
        cr_assert_eq(r.module_level, 0);
        cr_assert_eq(r.qe_status, CSCP_TDX_TCB_UP_TO_DATE);

        /* TDX module identity checks (QVL TdxModuleCheck) */
        ti.module_ids[1].levels[0].isv_svn = 12;
        ti.module_ids[1].levels[1].isv_svn = 12;
        ti.module_ids[1].levels[2].isv_svn = 12;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_NO_MATCH);
        cr_assert_not_null(strstr(r.why, "TDX module ISVSVN 11 (TEE_TCB_SVN[0]) is below every level of TDX_01"), "%s",
                           r.why);
        ti.module_ids[1].levels[0].isv_svn = 6;
        ti.module_ids[1].levels[1].isv_svn = 4;
        ti.module_ids[1].levels[2].isv_svn = 2;
        memcpy(ti.module_ids[1].id, "TDX_02", 7);
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH);
        cr_assert_not_null(strstr(r.why, "TDX_01, which the TCB info has no identity for"), "%s", r.why);
        memcpy(ti.module_ids[1].id, "TDX_01", 7);
        ti.module_ids[1].mrsigner[0] = 1;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_MISMATCH, "the identity's signer, not tdxModule's, applies");
        ti.module_ids[1].mrsigner[0] = 0;

        /* module OutOfDate converges with the level (QVL convergeTcbStatusWithTdxModuleStatus) */
        ti.module_ids[1].levels[0].status = CSCP_TDX_TCB_OUT_OF_DATE;
        ti.levels[0].status = CSCP_TDX_TCB_CONFIGURATION_NEEDED;
        /* ... and then TEE_TCB_SVN2 (0d 01 04: TDX_01 at 13 >= 6, 4 >= level 1's component 2 = 3) advises a
         * TD relaunch (QVL TDRelaunchCheck) */
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.tdx_status, CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED, "%s",
                     cscp_tdx_tcb_status_name(r.tdx_status));
        cr_assert_eq(r.status, CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED);
        ti.levels[0].status = CSCP_TDX_TCB_UP_TO_DATE;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_TD_RELAUNCH_ADVISED);
        /* a relaunch module that is not newer: plain OutOfDate */
        q.tee_tcb_svn2[2] = 2;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_OUT_OF_DATE);
        /* the same on a TDX 1.0 body: no relaunch check */
        q.tee_tcb_svn2[2] = 4;
        q.tdx15 = false;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_OUT_OF_DATE);
        q.tdx15 = true;
        /* module Revoked wins */
        ti.module_ids[1].levels[0].status = CSCP_TDX_TCB_REVOKED;
        cscp_tdx_tcb_evaluate(&q, &ext, &ti, &qe, &r);
        cr_assert_eq(r.status, CSCP_TDX_TCB_REVOKED);
        cscp_tdx_tcb_info_free(&ti);
        cscp_tdx_qe_identity_free(&qe);
}

/* ------------------------------------------------------------ the signed span, the signature, the times */

Test(tdx_collateral, signed_span_exact)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        blob_t tcb = load("sample_tcbInfo_response"), qeb = load("sample_qeIdentity_response");
        const char *root = fx_path("trusted_root.pem");
        char *dir = spr_dir();
        cscp_verdict_t v;
        static const struct {
                bool qe;
                const char *from, *to, *fails;
        } cases[] = {
                /* inside the spans: any byte, even whitespace */
                {false, "\"tcbEvaluationDataNumber\":15", "\"tcbEvaluationDataNumber\":14",
                 "tcb_info.json: the signature"},
                {false, "\"issueDate\":\"2023-06-18", "\"issueDate\":\"2023-06-17", "tcb_info.json: the signature"},
                {false, "{\"tcbInfo\":{\"id\"", "{\"tcbInfo\":{ \"id\"", "tcb_info.json: the signature"},
                {true, "\"tcbEvaluationDataNumber\":15", "\"tcbEvaluationDataNumber\":14",
                 "qe_identity.json: the signature"},
                {true, "\"isvsvn\":4", "\"isvsvn\":3", "qe_identity.json: the signature"},
                /* the signature hex */
                {false, "\"signature\":\"f6502d6f", "\"signature\":\"f6502d6e", "tcb_info.json: the signature"},
                {true, "\"signature\":\"b6a601f0", "\"signature\":\"b6a601f1", "qe_identity.json: the signature"},
                /* outside the spans: whitespace, hex case: still verifies */
                {false, "},\"signature\":", "} ,\n \"signature\" : ", NULL},
                {false, "\"signature\":\"f6502d6f", "\"signature\":\"F6502D6F", NULL},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                blob_t b = replace(cases[i].qe ? qeb : tcb, cases[i].from, cases[i].to);

                write_file(dir, cases[i].qe ? CSCP_TDX_COLLATERAL_QE_IDENTITY : CSCP_TDX_COLLATERAL_TCB_INFO, b);
                verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
                if (cases[i].fails) {
                        claim_is(&v, "tdx-collateral", false, cases[i].fails);
                        claim_is(&v, "tdx-collateral", false, "does not verify");
                        claim_is(&v, "tdx-tcb-status", false, "but the collateral did not verify");
                } else
                        claim_is(&v, "tdx-collateral", true, NULL);
                cscp_verdict_clear(&v);
                /* restore */
                write_file(dir, cases[i].qe ? CSCP_TDX_COLLATERAL_QE_IDENTITY : CSCP_TDX_COLLATERAL_TCB_INFO,
                           cases[i].qe ? qeb : tcb);
        }
}

Test(tdx_collateral, validity_windows)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        const char *root = fx_path("trusted_root.pem");
        char *dir = spr_dir();
        cscp_verdict_t v;

        /* 2023-07-10: the QE identity's next update (07-08) has passed, the TCB info's (07-18) not */
        verify_dir(quote, root, dir, 1688950800, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false,
                 "qe identity expired: nextUpdate 2023-07-08T07:24:59Z < at 2023-07-10T01:00:00Z");
        lacks(&v, "tdx-collateral", "tcb info");
        cscp_verdict_clear(&v);
        /* 2023-07-20: both */
        verify_dir(quote, root, dir, 1689814800, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false,
                 "tcb info expired: nextUpdate 2023-07-18T08:42:58Z < at 2023-07-20T01:00:00Z");
        claim_is(&v, "tdx-collateral", false, "qe identity expired");
        cscp_verdict_clear(&v);
        /* 2023-06-10: the TCB info is not issued yet (06-18), the QE identity is (06-08) */
        verify_dir(quote, root, dir, 1686358800, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false,
                 "tcb info not yet valid: issueDate 2023-06-18T08:42:58Z > at 2023-06-10T01:00:00Z");
        lacks(&v, "tdx-collateral", "qe identity");
        cscp_verdict_clear(&v);
}

Test(tdx_collateral, crls_in_the_directory)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        const char *root = fx_path("trusted_root.pem");
        char *dir = spr_dir();
        cscp_verdict_t v;

        write_file(dir, CSCP_TDX_COLLATERAL_PCK_CRL, load("pckcrl"));
        write_file(dir, CSCP_TDX_COLLATERAL_ROOT_CRL, load("rootcrl.der"));
        verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-pck-chain", true, "CRLs checked");
        claim_is(&v, "tdx-collateral", true, "CRLs checked");
        cscp_verdict_clear(&v);
        /* without the Root CA's CRL neither chain can be checked (every certificate is) */
        cr_assert_eq(unlink(harness_path(dir, CSCP_TDX_COLLATERAL_ROOT_CRL)), 0);
        verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-pck-chain", false, "unable to get certificate CRL");
        claim_is(&v, "tdx-collateral", false,
                 "tcb_signing_chain.pem: certificate at depth 0: unable to get certificate CRL");
        cscp_verdict_clear(&v);
        /* a CRL file that is not one: the verifier cannot decide */
        write_file(dir, CSCP_TDX_COLLATERAL_ROOT_CRL, dup_str("not a CRL"));
        {
                cscp_tdx_verify_opts_t o = {.root_file = root, .at = T_V4, .collateral_dir = dir};

                cscp_verdict_init(&v);
                cr_assert_lt(cscp_tdx_quote_verify(quote.p, quote.len, &o, &v), 0);
                cr_assert_not_null(strstr(v.error, "root_crl.der: not a PEM or DER CRL"), "%s", v.error);
                cscp_verdict_clear(&v);
        }
}

Test(tdx_collateral, wrong_fmspc)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        char *dir = spr_dir();
        cscp_verdict_t v;

        write_file(
                dir, CSCP_TDX_COLLATERAL_TCB_INFO,
                replace(load("sample_tcbInfo_response"), "\"fmspc\":\"50806f000000\"", "\"fmspc\":\"11111f000000\""));
        verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false, "tcb_info.json: the signature does not verify");
        claim_is(&v, "tdx-tcb-status", false,
                 "collateral mismatch: the TCB info is for FMSPC 11111f000000, the PCK certificate's is 50806f000000");
        cscp_verdict_clear(&v);
        /* the v5 TCB info for the v4 quote: another platform */
        write_file(dir, CSCP_TDX_COLLATERAL_TCB_INFO, load("sample_tcbinfo_response_v5"));
        verify_dir(quote, fx_path("trusted_root.pem"), dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-tcb-status", false, "FMSPC 90c06f000000, the PCK certificate's is 50806f000000");
        claim_is(&v, "tdx-collateral", false, "tcb info not yet valid");
        lacks(&v, "tdx-collateral", "signature");
        cscp_verdict_clear(&v);
}

/* ------------------------------------------------------------ generated signer: the whole path, allowed list */

static EVP_PKEY *gen_key(void)
{
        EVP_PKEY *k = EVP_EC_gen("P-256");

        cr_assert_not_null(k);
        return k;
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        cr_assert(x && name);
        cr_assert_eq(X509_set_version(x, 2), 1);
        cr_assert_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2), 1);
        cr_assert_not_null(ASN1_TIME_set(X509_getm_notBefore(x), 1514764800)); /* 2018-01-01 */
        cr_assert_not_null(ASN1_TIME_set(X509_getm_notAfter(x), 2524608000));  /* 2050-01-01 */
        cr_assert_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
        cr_assert_eq(X509_set_subject_name(x, name), 1);
        cr_assert_eq(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
        cr_assert_eq(X509_set_pubkey(x, key), 1);
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        cr_assert_not_null(ext);
        cr_assert_eq(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                  ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation");
        cr_assert_not_null(ext);
        cr_assert_eq(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
        cr_assert_gt(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
        X509_NAME_free(name);
        return x;
}

static void append_pem(FILE *f, X509 *x)
{
        cr_assert_eq(PEM_write_X509(f, x), 1);
}

/* {"<key>":<body>,"signature":"<ECDSA-P256-SHA256 r||s of body>"} */
static blob_t sign_doc(EVP_PKEY *key, const char *member, const char *body)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[80];
        const unsigned char *p = der;
        size_t der_len = sizeof(der);
        ECDSA_SIG *es;
        uint8_t raw[64] = {0};
        char hex[129], *doc;
        size_t n;

        cr_assert_not_null(md);
        cr_assert_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
        cr_assert_eq(EVP_DigestSign(md, der, &der_len, (const unsigned char *)body, strlen(body)), 1);
        EVP_MD_CTX_free(md);
        es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        cr_assert_not_null(es);
        cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
        cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
        ECDSA_SIG_free(es);
        cscp_hex_encode(raw, 64, hex);
        n = strlen(body) + strlen(member) + 200;
        doc = harness_keep(malloc(n));
        cr_assert_not_null(doc);
        snprintf(doc, n, "{\"%s\":%s,\"signature\":\"%s\"}", member, body, hex);
        return (blob_t){.p = (uint8_t *)doc, .len = strlen(doc)};
}

/* The "tcbInfo" / "enclaveIdentity" object of a fixture, as json-c. */
static json_object *body_of(const char *fixture, const char *member)
{
        json_object *j = json_object_from_file(fx_path(fixture)), *b;

        cr_assert_not_null(j);
        cr_assert(json_object_object_get_ex(j, member, &b));
        json_object_get(b);
        json_object_put(j);
        return b;
}

static void set_svns(json_object *level, int value)
{
        static const char *const lists[] = {"sgxtcbcomponents", "tdxtcbcomponents"};
        json_object *tcb, *arr;

        cr_assert(json_object_object_get_ex(level, "tcb", &tcb));
        for (int l = 0; l < 2; l++) {
                cr_assert(json_object_object_get_ex(tcb, lists[l], &arr));
                for (size_t i = 0; i < json_object_array_length(arr); i++)
                        json_object_object_add(json_object_array_get_idx(arr, i), "svn", json_object_new_int(value));
        }
}

typedef struct signer {
        char *dir;
        char *anchors; /* Intel SGX Root CA + the test root */
        EVP_PKEY *key;
} signer_t;

static signer_t make_signer(const char *cn)
{
        signer_t s = {.dir = harness_keep(harness_tmpdir())};
        EVP_PKEY *root_key = gen_key();
        X509 *root = make_cert("CSCP test TCB root", root_key, NULL, NULL, true), *leaf;
        blob_t intel = load("trusted_root.pem");
        FILE *f;

        s.key = gen_key();
        leaf = make_cert(cn, s.key, root, root_key, false);
        f = fopen(harness_path(s.dir, CSCP_TDX_COLLATERAL_CHAIN), "w");
        cr_assert_not_null(f);
        append_pem(f, leaf);
        append_pem(f, root);
        cr_assert_eq(fclose(f), 0);
        s.anchors = harness_path(s.dir, "anchors.pem");
        f = fopen(s.anchors, "w");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(intel.p, 1, intel.len, f), intel.len);
        fputc('\n', f); /* trusted_root.pem ends without a newline */
        append_pem(f, root);
        cr_assert_eq(fclose(f), 0);
        X509_free(root);
        X509_free(leaf);
        EVP_PKEY_free(root_key);
        return s;
}

/* The SPR collateral re-signed by s, TCB level 0 reachable (SVNs zeroed) with the given status. */
static void write_resigned(const signer_t *s, const char *level0_status)
{
        json_object *ti = body_of("sample_tcbInfo_response", "tcbInfo"), *levels, *qe;

        cr_assert(json_object_object_get_ex(ti, "tcbLevels", &levels));
        set_svns(json_object_array_get_idx(levels, 0), 0);
        json_object_object_add(json_object_array_get_idx(levels, 0), "tcbStatus",
                               json_object_new_string(level0_status));
        write_file(s->dir, CSCP_TDX_COLLATERAL_TCB_INFO,
                   sign_doc(s->key, "tcbInfo", json_object_to_json_string_ext(ti, JSON_C_TO_STRING_PLAIN)));
        qe = body_of("sample_qeIdentity_response", "enclaveIdentity");
        write_file(s->dir, CSCP_TDX_COLLATERAL_QE_IDENTITY,
                   sign_doc(s->key, "enclaveIdentity", json_object_to_json_string_ext(qe, JSON_C_TO_STRING_PLAIN)));
        json_object_put(ti);
        json_object_put(qe);
}

Test(tdx_collateral, resigned_end_to_end)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        signer_t s = make_signer("Intel SGX TCB Signing");
        static const char *const sw[] = {"SWHardeningNeeded"}, *const ood[] = {"OutOfDate"};
        cscp_verdict_t v;

        /* level 0 reachable and UpToDate: every claim passes */
        write_resigned(&s, "UpToDate");
        verify_dir(quote, s.anchors, s.dir, T_V4, NULL, 0, &v);
        for (size_t i = 0; i < v.n_claims; i++)
                cr_assert(v.claims[i].pass, "%s: %s", v.claims[i].name, v.claims[i].detail);
        claim_is(&v, "tdx-collateral", true, "up to /CN=CSCP test TCB root");
        claim_is(&v, "tdx-tcb-status", true, "UpToDate at TCB level 1 of 2");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);

        /* SWHardeningNeeded: refused unless allowed */
        write_resigned(&s, "SWHardeningNeeded");
        verify_dir(quote, s.anchors, s.dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-tcb-status", false, "SWHardeningNeeded at TCB level 1 of 2");
        claim_is(&v, "tdx-tcb-status", false, "(not UpToDate, not allowed)");
        cscp_verdict_clear(&v);
        verify_dir(quote, s.anchors, s.dir, T_V4, ood, 1, &v);
        claim_is(&v, "tdx-tcb-status", false, "(not UpToDate, not allowed)");
        cscp_verdict_clear(&v);
        verify_dir(quote, s.anchors, s.dir, T_V4, sw, 1, &v);
        claim_is(&v, "tdx-tcb-status", true, "SWHardeningNeeded at TCB level 1 of 2");
        claim_is(&v, "tdx-tcb-status", true, "(allowed by the caller)");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);

        /* the collateral signer must chain to the same trust anchor as the PCK chain */
        verify_dir(quote, fx_path("trusted_root.pem"), s.dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false, "tcb_signing_chain.pem: certificate at depth");
        lacks(&v, "tdx-collateral", "signature does not verify");
        cscp_verdict_clear(&v);

        /* the fixture chain with documents signed by another key */
        write_file(s.dir, CSCP_TDX_COLLATERAL_CHAIN, load("tcb_signing_issuer_chain.pem"));
        verify_dir(quote, s.anchors, s.dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false, "tcb_info.json: the signature does not verify");
        claim_is(&v, "tdx-collateral", false, "qe_identity.json: the signature does not verify");
        cscp_verdict_clear(&v);
        EVP_PKEY_free(s.key);
}

Test(tdx_collateral, signer_must_be_tcb_signing)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        signer_t s = make_signer("Intel SGX PCK Certificate");
        cscp_verdict_t v;

        write_resigned(&s, "UpToDate");
        verify_dir(quote, s.anchors, s.dir, T_V4, NULL, 0, &v);
        claim_is(&v, "tdx-collateral", false,
                 "the first certificate's CN is \"Intel SGX PCK Certificate\", not \"Intel SGX TCB Signing\"");
        claim_is(&v, "tdx-tcb-status", false, "UpToDate");
        cscp_verdict_clear(&v);
        EVP_PKEY_free(s.key);
}

/* ------------------------------------------------------------ bad input */

static void tcb_fails(blob_t b, int code, const char *needle, const char *what)
{
        cscp_tdx_tcb_info_t ti;
        char err[384];
        int k = cscp_tdx_tcb_info_parse(b.p, b.len, &ti, err, sizeof(err));

        cr_assert_eq(k, code, "%s: got %d (%s), want %d; %s", what, k, cscp_err_name(k), code, err);
        cr_assert_neq(err[0], '\0', "%s: no error text", what);
        if (needle)
                cr_assert_not_null(strstr(err, needle), "%s: '%s' does not name '%s'", what, err, needle);
        cscp_tdx_tcb_info_free(&ti);
}

static void qe_fails(blob_t b, int code, const char *needle, const char *what)
{
        cscp_tdx_qe_identity_t qe;
        char err[384];
        int k = cscp_tdx_qe_identity_parse(b.p, b.len, &qe, err, sizeof(err));

        cr_assert_eq(k, code, "%s: got %d (%s), want %d; %s", what, k, cscp_err_name(k), code, err);
        cr_assert_neq(err[0], '\0', "%s: no error text", what);
        if (needle)
                cr_assert_not_null(strstr(err, needle), "%s: '%s' does not name '%s'", what, err, needle);
        cscp_tdx_qe_identity_free(&qe);
}

Test(tdx_collateral, truncated_every_length)
{
        static const char *const files[] = {"sample_tcbInfo_response", "sample_qeIdentity_response",
                                            "sample_tcbinfo_response_v5"};

        for (size_t f = 0; f < 3; f++) {
                blob_t b = load(files[f]);
                size_t end = b.len;

                while (end > 0 && b.p[end - 1] == '\n')
                        end--;
                for (size_t n = 0; n < end; n++) {
                        uint8_t *c = malloc(n ? n : 1); /* exact size: ASan sees any overread */
                        char what[128];

                        cr_assert_not_null(c);
                        memcpy(c, b.p, n);
                        snprintf(what, sizeof(what), "%s cut to %zu bytes", files[f], n);
                        if (f == 1)
                                qe_fails((blob_t){c, n}, CSCP_E_PROTO, NULL, what);
                        else
                                tcb_fails((blob_t){c, n}, CSCP_E_PROTO, NULL, what);
                        free(c);
                }
        }
}

Test(tdx_collateral, malformed_documents)
{
        blob_t t = load("sample_tcbInfo_response"), q = load("sample_qeIdentity_response");
        const struct {
                const char *from, *to, *needle;
                int code;
        } tcases[] = {
                {"{\"tcbInfo\":", "{\"tcbinfo\":", "unexpected member \"tcbinfo\"", CSCP_E_PROTO},
                {",\"signature\":\"", ",\"extra\":1,\"signature\":\"", "unexpected member \"extra\"", CSCP_E_PROTO},
                {",\"signature\":\"", ",\"tcbInfo\":{},\"signature\":\"", "given twice", CSCP_E_PROTO},
                {",\"signature\":\"f6502d6f", ",\"signature\":\"", "not 128 hex digits", CSCP_E_PROTO},
                {"\"signature\":\"f6502d6f", "\"signature\":\"x6502d6f", "not 128 hex digits", CSCP_E_PROTO},
                {"\"id\":\"TDX\"", "\"id\":\"SGX\"", "tcbInfo.id: \"SGX\" (only \"TDX\")", CSCP_E_UNSUPPORTED},
                {"\"version\":3", "\"version\":2", "tcbInfo.version: 2 (only 3)", CSCP_E_UNSUPPORTED},
                {"\"version\":3", "\"version\":3.0", "tcbInfo.version: double, not int", CSCP_E_PROTO},
                {"\"fmspc\":\"50806f000000\"", "\"fmspc\":\"50806f0000\"", "tcbInfo.fmspc", CSCP_E_PROTO},
                {"\"nextUpdate\":\"2023-07-18T08:42:58Z\"", "\"nextUpdate\":\"2023-07-18 08:42:58\"",
                 "tcbInfo.nextUpdate", CSCP_E_PROTO},
                {"\"nextUpdate\":\"2023-07-18T08:42:58Z\"", "\"nextUpdate\":\"2023-02-30T08:42:58Z\"",
                 "tcbInfo.nextUpdate", CSCP_E_PROTO},
                {"\"pcesvn\":11", "\"pcesvn\":\"11\"", "tcbInfo.tcbLevels[0].tcb.pcesvn: string, not int",
                 CSCP_E_PROTO},
                {"\"pcesvn\":11", "\"pcesvn\":65536", "tcbInfo.tcbLevels[0].tcb.pcesvn", CSCP_E_PROTO},
                {"{\"svn\":5,\"category\":\"BIOS\",\"type\":\"Early Microcode Update\"},", "",
                 "tcbInfo.tcbLevels[0].tcb.sgxtcbcomponents: 15 entries (needs 16)", CSCP_E_PROTO},
                {"{\"svn\":5,", "{\"svn\":256,", "tcbInfo.tcbLevels[0].tcb.sgxtcbcomponents[0].svn", CSCP_E_PROTO},
                {"\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"Fine\"", "tcbInfo.tcbLevels[0].tcbStatus: \"Fine\"",
                 CSCP_E_PROTO},
                {"\"tcbStatus\":\"UpToDate\"", "\"tcbstatus\":\"UpToDate\"",
                 "tcbInfo.tcbLevels[0]: missing member \"tcbStatus\"", CSCP_E_PROTO},
                {"\"tdxModule\":{", "\"tdxModul\":{", "tcbInfo: missing member \"tdxModule\"", CSCP_E_PROTO},
                {"\"advisoryIDs\":[\"INTEL-SA-00106\"", "\"advisoryIDs\":[\"INTEL SA\"",
                 "tcbInfo.tcbLevels[1].advisoryIDs[0]", CSCP_E_PROTO},
                {"\"tcbLevels\":[", "\"tcbLevels\":[],\"x\":[", "tcbInfo.tcbLevels: empty", CSCP_E_PROTO},
                {"\"id\":\"TDX\"", "\"id\":\"TDX\",\"id\":\"TDX\"", NULL, 0}, /* json-c: duplicates inside are parsed */
                {"\"id\":\"TDX\"", "\"id\":\"T\\u0000X\"", "tcbInfo.id", CSCP_E_UNSUPPORTED},
                {"\"id\":\"TDX\"", "\"id\":\"TDX\xff\"", "tcbInfo: invalid utf-8", CSCP_E_PROTO},
                {"\"id\":\"TDX\"", "\"id\":'TDX'", "tcbInfo:", CSCP_E_PROTO},
                {"\"id\":\"TDX\"", "\"id\":\"TDX\",", "tcbInfo:", CSCP_E_PROTO},
                {"\"signature\":"
                 "\"f6502d6fad1e3b7281df2b7eddc773d5b5281187346c12c5647b4f243cea49212be96a7a1a6b5d83e36323fe3fa9dacd61e"
                 "bfbc38e631ff0fe29ef14ae0db0b4\"}",
                 "\"signature\":"
                 "\"f6502d6fad1e3b7281df2b7eddc773d5b5281187346c12c5647b4f243cea49212be96a7a1a6b5d83e36323fe3fa9dacd61e"
                 "bfbc38e631ff0fe29ef14ae0db0b4\"}{}",
                 "trailing data", CSCP_E_PROTO},
        };

        for (size_t i = 0; i < sizeof(tcases) / sizeof(tcases[0]); i++) {
                blob_t b = replace(t, tcases[i].from, tcases[i].to);
                char what[64];

                snprintf(what, sizeof(what), "tcb info case %zu", i);
                if (tcases[i].code == 0) {
                        cscp_tdx_tcb_info_t ti;
                        char err[384];

                        cr_assert_eq(cscp_tdx_tcb_info_parse(b.p, b.len, &ti, err, sizeof(err)), 0, "%s: %s", what,
                                     err);
                        cscp_tdx_tcb_info_free(&ti);
                } else
                        tcb_fails(b, tcases[i].code, tcases[i].needle, what);
        }
        qe_fails(replace(q, "\"id\":\"TD_QE\"", "\"id\":\"QE\""), CSCP_E_UNSUPPORTED, "(only \"TD_QE\")", "qe id");
        qe_fails(replace(q, "\"version\":2", "\"version\":1"), CSCP_E_UNSUPPORTED, "enclaveIdentity.version: 1", "v1");
        qe_fails(replace(q, "\"isvprodid\":2", "\"isvprodid\":-2"), CSCP_E_PROTO, "enclaveIdentity.isvprodid",
                 "prodid");
        qe_fails(replace(q, "\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"SWHardeningNeeded\""), CSCP_E_PROTO,
                 "is not a QE / TDX module identity level status", "QE level status");
        qe_fails(replace(q, "\"mrsigner\":\"DC9E", "\"mrsigner\":\"GC9E"), CSCP_E_PROTO, "enclaveIdentity.mrsigner",
                 "mrsigner");
        qe_fails(replace(q, "{\"tcb\":{\"isvsvn\":4}",
                         "{\"tcb\":{\"isvsvn\":4,\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}"),
                 CSCP_E_PROTO, "nesting too deep", "depth");
        qe_fails(dup_str("[]"), CSCP_E_PROTO, "expected '{'", "array");
        qe_fails(dup_str(""), CSCP_E_PROTO, "empty", "empty");
        qe_fails(dup_str("{}"), CSCP_E_PROTO, "expected a member name", "{}");
        tcb_fails(q, CSCP_E_PROTO, "unexpected member \"enclaveIdentity\"", "QE identity as TCB info");
        {
                blob_t nul = replace(t, "\"id\":\"TDX\"", "\"id\":\"TDX\"");

                nul.p[20] = '\0';
                tcb_fails(nul, CSCP_E_PROTO, "NUL byte at offset 20", "NUL");
        }
        {
                size_t n = CSCP_TDX_COLLATERAL_JSON_MAX + 1;
                uint8_t *big = calloc(1, n);

                cr_assert_not_null(big);
                memset(big, ' ', n);
                memcpy(big, t.p, t.len);
                tcb_fails((blob_t){big, n}, CSCP_E_TOO_BIG, "over the 262144-byte limit", "oversize");
                {
                        cscp_tdx_tcb_info_t ti;
                        char err[384];

                        /* at the limit (trailing whitespace): accepted */
                        cr_assert_eq(cscp_tdx_tcb_info_parse(big, n - 1, &ti, err, sizeof(err)), 0, "%s", err);
                        cscp_tdx_tcb_info_free(&ti);
                }
                free(big);
        }
}

Test(tdx_collateral, directory_errors)
{
        blob_t quote = load("tdx_prod_quote_SPR_E4.dat");
        const char *root = fx_path("trusted_root.pem");
        cscp_verdict_t v;
        static const char *const names[] = {CSCP_TDX_COLLATERAL_TCB_INFO, CSCP_TDX_COLLATERAL_QE_IDENTITY,
                                            CSCP_TDX_COLLATERAL_CHAIN};

        /* a missing required file: the verifier cannot decide, and says which file */
        for (int i = 0; i < 3; i++) {
                char *dir = spr_dir();
                cscp_tdx_verify_opts_t o = {.root_file = root, .at = T_V4, .collateral_dir = dir};

                cr_assert_eq(unlink(harness_path(dir, names[i])), 0);
                cscp_verdict_init(&v);
                cr_assert_eq(cscp_tdx_quote_verify(quote.p, quote.len, &o, &v), -ENOENT);
                cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR);
                cr_assert_not_null(strstr(v.error, names[i]), "%s", v.error);
                cscp_verdict_clear(&v);
        }
        {
                cscp_tdx_verify_opts_t o = {.root_file = root, .at = T_V4, .collateral_dir = "/nonexistent/cscp"};

                cscp_verdict_init(&v);
                cr_assert_lt(cscp_tdx_quote_verify(quote.p, quote.len, &o, &v), 0);
                cr_assert_not_null(strstr(v.error, "/nonexistent/cscp/tcb_info.json"), "%s", v.error);
                cscp_verdict_clear(&v);
        }

        /* content problems: failed claims naming file and field */
        {
                char *dir = spr_dir();
                size_t n = CSCP_TDX_COLLATERAL_JSON_MAX + 1;
                blob_t big = {.p = harness_keep(malloc(n)), .len = n};

                cr_assert_not_null(big.p);
                memset(big.p, ' ', n);
                write_file(dir, CSCP_TDX_COLLATERAL_QE_IDENTITY, big);
                verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
                claim_is(&v, "tdx-collateral", false, "qe_identity.json: over the 262144-byte limit");
                claim_is(&v, "tdx-qe-identity", false, "not evaluated: qe_identity.json did not parse");
                claim_is(&v, "tdx-tcb-status", false, "not evaluated: qe_identity.json did not parse");
                cscp_verdict_clear(&v);

                write_file(dir, CSCP_TDX_COLLATERAL_QE_IDENTITY, load("sample_qeIdentity_response"));
                write_file(dir, CSCP_TDX_COLLATERAL_TCB_INFO,
                           replace(load("sample_tcbInfo_response"), "\"pcesvn\":5", "\"pcesvn\":true"));
                verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
                claim_is(&v, "tdx-collateral", false,
                         "tcb_info.json: tcbInfo.tcbLevels[1].tcb.pcesvn: boolean, not int");
                claim_is(&v, "tdx-qe-identity", false, "QE ISVSVN 4: UpToDate, but the collateral did not verify");
                claim_is(&v, "tdx-tcb-status", false, "not evaluated: tcb_info.json did not parse");
                cscp_verdict_clear(&v);

                write_file(dir, CSCP_TDX_COLLATERAL_TCB_INFO, load("sample_tcbInfo_response"));
                write_file(dir, CSCP_TDX_COLLATERAL_CHAIN, dup_str("-----BEGIN CERTIFICATE-----\nAAAA\n"));
                verify_dir(quote, root, dir, T_V4, NULL, 0, &v);
                claim_is(&v, "tdx-collateral", false, "tcb_signing_chain.pem is not a PEM certificate list");
                cscp_verdict_clear(&v);
        }
}

/* The DER value of the SGX extension of the quote's PCK leaf. */
static uint8_t *sgx_ext_der(blob_t quote, int *len)
{
        cscp_tdx_quote_t q = parse_quote(quote);
        BIO *bio = BIO_new_mem_buf(q.pck_chain, (int)q.pck_chain_len);
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        const ASN1_OCTET_STRING *d;
        uint8_t *der;

        cr_assert(bio && x && oid);
        d = X509_EXTENSION_get_data(X509_get_ext(x, X509_get_ext_by_OBJ(x, oid, -1)));
        *len = ASN1_STRING_length(d);
        der = harness_keep(malloc((size_t)*len));
        cr_assert_not_null(der);
        memcpy(der, ASN1_STRING_get0_data(d), (size_t)*len);
        ASN1_OBJECT_free(oid);
        X509_free(x);
        BIO_free(bio);
        return der;
}

Test(tdx_collateral, sgx_extension_bad_input)
{
        cscp_tdx_pck_ext_t ext;
        char err[256];
        int len;
        uint8_t *der = sgx_ext_der(load("tdx_prod_quote_SPR_E4.dat"), &len);

        cr_assert_eq(cscp_tdx_sgx_ext_parse(der, (size_t)len, &ext, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(ext.pce_svn, 11);
        cr_assert_eq(len, 554);
        for (int n = 0; n < len; n++) {
                uint8_t *c = malloc(n ? (size_t)n : 1);

                cr_assert_not_null(c);
                memcpy(c, der, (size_t)n);
                err[0] = '\0';
                cr_assert_lt(cscp_tdx_sgx_ext_parse(c, (size_t)n, &ext, err, sizeof(err)), 0, "cut to %d", n);
                cr_assert_neq(err[0], '\0');
                free(c);
        }
        /* FMSPC (…1.4, OCTET STRING of 6 at offset 427) one byte short in its length: not DER any more */
        {
                uint8_t *c = harness_keep(malloc((size_t)len));

                memcpy(c, der, (size_t)len);
                cr_assert_eq(c[428], 6);
                c[428] = 5;
                cr_assert_lt(cscp_tdx_sgx_ext_parse(c, (size_t)len, &ext, err, sizeof(err)), 0);
                /* PCESVN (…2.17) INTEGER 11 at offset 361 -> still parses with another value */
                memcpy(c, der, (size_t)len);
                cr_assert_eq(c[361], 0x0b);
                c[361] = 0x0c;
                cr_assert_eq(cscp_tdx_sgx_ext_parse(c, (size_t)len, &ext, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(ext.pce_svn, 12);
                /* the FMSPC OID's last arc 4 -> 9: unknown entries are skipped, FMSPC then missing */
                memcpy(c, der, (size_t)len);
                cr_assert_eq(c[426], 0x04);
                c[426] = 0x09;
                cr_assert_eq(cscp_tdx_sgx_ext_parse(c, (size_t)len, &ext, err, sizeof(err)), CSCP_E_PROTO);
                cr_assert_not_null(strstr(err, "FMSPC (1.2.840.113741.1.13.1.4) missing"), "%s", err);
        }
        cr_assert_eq(cscp_tdx_sgx_ext_parse(der, CSCP_TDX_SGX_EXT_MAX + 1, &ext, err, sizeof(err)), CSCP_E_TOO_BIG);
        /* a certificate without the extension */
        cr_assert_eq(cscp_tdx_pck_ext_from_pem(load("trusted_root.pem").p, load("trusted_root.pem").len, &ext, err,
                                               sizeof(err)),
                     CSCP_E_PROTO);
        cr_assert_not_null(strstr(err, "no SGX extension"), "%s", err);
}

/* ------------------------------------------------------------ the command */

Test(tdx_collateral, cli)
{
        char *cscp = harness_path(harness_build_dir(), "cscp");
        char *quote = fx_path("tdx_prod_quote_SPR_E4.dat"), *root = fx_path("trusted_root.pem");
        char *dir = spr_dir(), *out = NULL, *err = NULL;
        int rc = -1;

        {
                char *argv[] = {cscp,
                                "tdx",
                                "verify",
                                quote,
                                "--tdx-root",
                                root,
                                "--at",
                                "2023-07-01T01:00:00Z",
                                "--tdx-collateral",
                                dir,
                                NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 1, "%s%s", out, err);
                cr_assert_not_null(strstr(out, "ok   tdx-collateral"), "%s", out);
                cr_assert_not_null(strstr(out, "ok   tdx-qe-identity"), "%s", out);
                cr_assert_not_null(strstr(out, "FAIL tdx-tcb-status         no matching TCB level"), "%s", out);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp,
                                "tdx",
                                "verify",
                                quote,
                                "--tdx-root",
                                root,
                                "--at",
                                "2023-07-01T01:00:00Z",
                                "--tdx-collateral",
                                dir,
                                "--tdx-allow-tcb",
                                "OutOfDate",
                                "--json",
                                NULL};
                json_object *j, *m;

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 1, "%s%s", out, err);
                j = json_tokener_parse(out);
                cr_assert_not_null(j, "%s", out);
                cr_assert(json_object_object_get_ex(j, "verdict", &m));
                cr_assert_str_eq(json_object_get_string(m), "untrusted");
                json_object_put(j);
                free(out);
                free(err);
        }
        {
                char *argv[] = {
                        cscp,   "tdx", "verify", quote, "--tdx-root", root, "--tdx-collateral", dir, "--tdx-allow-tcb",
                        "Fine", NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 2);
                cr_assert_not_null(strstr(err, "--tdx-allow-tcb 'Fine': not a TCB status"), "%s", err);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "verify", quote, "--tdx-root", root, "--tdx-allow-tcb", "OutOfDate", NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 2, "--tdx-allow-tcb without --tdx-collateral");
                free(out);
                free(err);
        }
        {
                char *empty = harness_keep(harness_tmpdir());
                char *argv[] = {cscp, "tdx", "verify", quote, "--tdx-root", root, "--tdx-collateral", empty, NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 2, "%s%s", out, err);
                cr_assert_not_null(strstr(out, "tcb_info.json: No such file"), "%s / %s", out, err);
                free(out);
                free(err);
        }
        {
                char *argv[] = {cscp, "tdx", "--help", NULL};

                cr_assert_eq(harness_run(argv, 10000, &rc, &out, &err), 0);
                cr_assert_eq(rc, 0);
                cr_assert_not_null(strstr(out, "--tdx-collateral DIR"), "%s", out);
                cr_assert_not_null(strstr(out, "--tdx-allow-tcb STATUS"), "%s", out);
                free(out);
                free(err);
        }
}

/* ------------------------------------------------------------ fuzz seeds */

/* Seed format (tests/fuzz/fuzz-tdx-collateral.c): a TCB info or QE identity response, or a DER SGX extension. */
Test(tdx_collateral, fuzz_seeds)
{
        static const char *const files[] = {"sample_tcbInfo_response", "sample_qeIdentity_response",
                                            "sample_tcbinfo_response_v5"};
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];

        fx_dir();
        if (!build)
                cr_skip_test("CSCP_BUILD_DIR not set");
        snprintf(dir, sizeof(dir), "%s/fuzz-seeds", build);
        (void)mkdir(dir, 0755);
        snprintf(dir, sizeof(dir), "%s/fuzz-seeds/tdx-collateral", build);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                cr_assert_fail("mkdir %s: %s", dir, strerror(errno));
        for (size_t i = 0; i < 3; i++) {
                blob_t b = load(files[i]);

                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                cr_assert_eq(cscp_file_write_atomic(path, b.p, b.len, 0644), 0, "%s", path);
        }
        /* the SGX extensions of the two PCK certificates */
        for (int i = 0; i < 2; i++) {
                int len;
                uint8_t *der = sgx_ext_der(load(i ? "quote_v5_sample.dat" : "tdx_prod_quote_SPR_E4.dat"), &len);

                snprintf(path, sizeof(path), "%s/sgx-extension-%s.der", dir, i ? "v5" : "spr-e4");
                cr_assert_eq(cscp_file_write_atomic(path, der, (size_t)len, 0644), 0, "%s", path);
        }
}
