/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quote verification: conformance with real quotes from public projects
 * (../shared/fixtures/quote, via CSCP_FIXTURES) and fresh quotes from a real
 * swtpm driven with tpm2-tools, each field tampered with one at a time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "error.h"
#include "harness.h"
#include "pcr.h"
#include "quote.h"
#include "verdict.h"

static const char *const claim_names[] = {
        "ak-public",  "ak-attributes", "signature",  "magic",      "type",
        "extra-data", "pcr-selection", "pcr-values", "pcr-digest",
};
#define N_CLAIMS (sizeof(claim_names) / sizeof(claim_names[0]))

static const char *const fact_names[] = {
        "ak-name", "clock", "reset-count", "restart-count", "safe", "firmware-version",
};
#define N_FACTS (sizeof(fact_names) / sizeof(fact_names[0]))

/* Everything a quote check needs, in fixed buffers so a test can copy and tamper. */
typedef struct qdata {
        uint8_t attest[4096];
        size_t attest_len;
        uint8_t sig[1024];
        size_t sig_len;
        uint8_t pub[1024];
        size_t pub_len;
        cscp_pcr_value_t pcrs[64];
        size_t n_pcrs;
        uint8_t nonce[64];
        size_t nonce_len;
        TPML_PCR_SELECTION required;
        bool has_required;
        bool allow_sha1;
        uint8_t ak_name[68]; /* from tpm2_createak -n (swtpm quotes only) */
        size_t ak_name_len;
} qdata_t;

/* ------------------------------------------------------------------ helpers */

static uint8_t *read_all(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t cap = 0, len = 0;

        cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
        for (;;) {
                size_t n;
                if (len == cap) {
                        cap = cap ? 2 * cap : 4096;
                        buf = realloc(buf, cap);
                        cr_assert_not_null(buf);
                }
                n = fread(buf + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        cr_assert(!ferror(f), "reading %s failed", path);
        fclose(f);
        *ret_len = len;
        return buf;
}

static void read_into(const char *path, uint8_t *buf, size_t max, size_t *ret_len)
{
        size_t len;
        uint8_t *data = read_all(path, &len);

        cr_assert_leq(len, max, "%s is %zu bytes, more than %zu", path, len, max);
        memcpy(buf, data, len);
        free(data);
        *ret_len = len;
}

static void write_all(const char *path, const void *data, size_t len)
{
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
        cr_assert_eq(fwrite(data, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
}

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
        size_t n = strlen(s);

        cr_assert_eq(n % 2, 0, "odd hex length: %s", s);
        cr_assert_leq(n / 2, max, "hex too long: %s", s);
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1, "bad hex: %s", s);
                out[i] = (uint8_t)v;
        }
        return n / 2;
}

static char *tohex(const uint8_t *b, size_t n)
{
        char *s = malloc(2 * n + 1);

        cr_assert_not_null(s);
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", b[i]);
        s[2 * n] = '\0';
        return s;
}

/* $CSCP_FIXTURES/quote/<name>, or skip the test with the reason. */
static char *fixture_dir(const char *name)
{
        const char *root = harness_fixtures_dir();
        struct stat st;
        char *dir;

        if (!root)
                cr_skip_test("no fixtures: CSCP_FIXTURES / ../shared/fixtures is absent");
        cr_assert_geq(asprintf(&dir, "%s/quote/%s", root, name), 0);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                cr_skip_test("fixture directory %s is absent", dir);
        return dir;
}

static json_object *load_json(const char *dir, const char *name)
{
        char *p = harness_path(dir, name);
        json_object *j = json_object_from_file(p);

        cr_assert_not_null(j, "cannot parse %s", p);
        return j;
}

static json_object *jget(json_object *o, const char *key)
{
        json_object *v = NULL;

        cr_assert(json_object_object_get_ex(o, key, &v), "expected.json lacks \"%s\"", key);
        return v;
}

/* pcrs.<bank>.json: {"bank": "sha256", "pcrs": {"17": "hex", ...}} */
static void load_pcrs(const char *dir, const char *name, qdata_t *d)
{
        json_object *j = load_json(dir, name);
        uint16_t alg = cscp_hash_alg_from_name(json_object_get_string(jget(j, "bank")));

        cr_assert_neq(alg, 0);
        json_object_object_foreach(jget(j, "pcrs"), k, val)
        {
                cscp_pcr_value_t *pv = &d->pcrs[d->n_pcrs++];

                cr_assert_leq(d->n_pcrs, sizeof(d->pcrs) / sizeof(d->pcrs[0]));
                memset(pv, 0, sizeof(*pv));
                pv->hash_alg = alg;
                pv->index = (uint16_t)atoi(k);
                pv->size = (uint16_t)unhex(json_object_get_string(val), pv->value, sizeof(pv->value));
        }
        json_object_put(j);
}

/* expected.json "pcrSelect": [["0xb", [17, 18]], ...] */
static void selection_from_json(json_object *arr, TPML_PCR_SELECTION *ret)
{
        memset(ret, 0, sizeof(*ret));
        for (size_t b = 0; b < json_object_array_length(arr); b++) {
                json_object *bank = json_object_array_get_idx(arr, b);
                json_object *idx = json_object_array_get_idx(bank, 1);
                TPMS_PCR_SELECTION *s = &ret->pcrSelections[ret->count++];

                s->hash = (uint16_t)strtoul(json_object_get_string(json_object_array_get_idx(bank, 0)), NULL, 0);
                s->sizeofSelect = 3;
                for (size_t i = 0; i < json_object_array_length(idx); i++) {
                        int pcr = json_object_get_int(json_object_array_get_idx(idx, i));
                        s->pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
                }
        }
}

/* tss2-mu logs every refused structure to stderr; keep the test output readable. */
__attribute__((constructor)) static void quiet_tss2(void)
{
        setenv("TSS2_LOG", "all+none", 0);
}

/* Verifies d, with attest taken from (attest, attest_len) instead of d when given. */
static void verify_attest(const qdata_t *d, const uint8_t *attest, size_t attest_len, const char *prefix,
                          cscp_verdict_t *v)
{
        cscp_quote_t q = {
                .attest = attest,
                .attest_len = attest_len,
                .sig = d->sig,
                .sig_len = d->sig_len,
                .ak_public = d->pub,
                .ak_public_len = d->pub_len,
                .pcrs = d->pcrs,
                .n_pcrs = d->n_pcrs,
        };
        cscp_quote_opts_t opts = {
                .nonce = d->nonce,
                .nonce_len = d->nonce_len,
                .required = d->has_required ? &d->required : NULL,
                .allow_sha1 = d->allow_sha1,
                .prefix = prefix,
        };
        char name[64];

        cscp_verdict_init(v);
        cr_assert_eq(cscp_quote_verify(&q, &opts, v), 0);
        cr_assert_null(v->error, "verdict error: %s", v->error);
        /* Every claim is named exactly once, whatever failed. */
        cr_assert_eq(v->n_claims, N_CLAIMS, "%zu claims recorded", v->n_claims);
        for (size_t i = 0; i < N_CLAIMS; i++) {
                snprintf(name, sizeof(name), "%s%s", prefix ? prefix : "", claim_names[i]);
                cr_assert_not_null(cscp_verdict_find(v, name), "claim %s missing", name);
                cr_assert_not_null(cscp_verdict_find(v, name)->detail);
                cr_assert_gt(strlen(cscp_verdict_find(v, name)->detail), 0, "claim %s has no detail", name);
        }
}

static void verify(const qdata_t *d, const char *prefix, cscp_verdict_t *v)
{
        verify_attest(d, d->attest, d->attest_len, prefix, v);
}

static void dump(const cscp_verdict_t *v)
{
        cscp_verdict_print(v, stderr);
}

static void expect_claim(const cscp_verdict_t *v, const char *name, bool pass)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);

        cr_assert_not_null(c, "claim %s missing", name);
        if (c->pass != pass)
                dump(v);
        cr_assert_eq(c->pass, pass, "claim %s: expected %s, got %s (%s)", name, pass ? "pass" : "fail",
                     c->pass ? "pass" : "fail", c->detail);
}

static void expect_detail(const cscp_verdict_t *v, const char *name, const char *needle)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);

        cr_assert_not_null(c, "claim %s missing", name);
        cr_assert_not_null(strstr(c->detail, needle), "claim %s detail \"%s\" lacks \"%s\"", name, c->detail, needle);
}

static void expect_trusted(const cscp_verdict_t *v)
{
        for (size_t i = 0; i < N_CLAIMS; i++)
                expect_claim(v, claim_names[i], true);
        cr_assert_eq(cscp_verdict_result(v), CSCP_VERDICT_TRUSTED);
}

/* Exactly the named claims fail (NULL-terminated list); the rest pass. */
static void expect_only_failed(const cscp_verdict_t *v, const char *const *failed)
{
        for (size_t i = 0; i < N_CLAIMS; i++) {
                bool fail = false;
                for (const char *const *f = failed; *f; f++)
                        fail = fail || strcmp(*f, claim_names[i]) == 0;
                expect_claim(v, claim_names[i], !fail);
        }
        cr_assert_eq(cscp_verdict_result(v), CSCP_VERDICT_UNTRUSTED);
}

static const char *fact(const cscp_verdict_t *v, const char *key)
{
        for (size_t i = 0; i < v->n_facts; i++)
                if (strcmp(v->facts[i].key, key) == 0)
                        return v->facts[i].value;
        cr_assert_fail("fact %s missing", key);
        return NULL;
}

static void set_pcr(TPML_PCR_SELECTION *sel, uint16_t alg, unsigned pcr)
{
        TPMS_PCR_SELECTION *s = NULL;

        for (uint32_t i = 0; i < sel->count; i++)
                if (sel->pcrSelections[i].hash == alg)
                        s = &sel->pcrSelections[i];
        if (!s) {
                s = &sel->pcrSelections[sel->count++];
                memset(s, 0, sizeof(*s));
                s->hash = alg;
                s->sizeofSelect = 3;
        }
        s->pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
}

static size_t marshal_public(const TPMT_PUBLIC *pub, uint8_t *buf, size_t max)
{
        size_t off = 0;

        cr_assert_eq(Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, max, &off), TSS2_RC_SUCCESS);
        return off;
}

static void parse_public(const qdata_t *d, TPMT_PUBLIC *pub)
{
        size_t off = 0;

        memset(pub, 0, sizeof(*pub));
        cr_assert_eq(Tss2_MU_TPMT_PUBLIC_Unmarshal(d->pub, d->pub_len, &off, pub), TSS2_RC_SUCCESS);
        cr_assert_eq(off, d->pub_len);
}

/* Offsets inside a TPMS_ATTEST quote, found by walking its fields. */
typedef struct attest_layout {
        size_t extra_data; /* first byte of extraData.buffer */
        size_t extra_len;
        size_t pcr_digest; /* first byte of pcrDigest.buffer */
        size_t pcr_digest_len;
} attest_layout_t;

static attest_layout_t layout(const qdata_t *d)
{
        TPMS_ATTEST a;
        attest_layout_t l;
        size_t signer;

        cr_assert_eq(cscp_attest_parse(d->attest, d->attest_len, &a), 0);
        cr_assert_eq(a.type, TPM2_ST_ATTEST_QUOTE);
        signer = (size_t)d->attest[6] << 8 | d->attest[7];
        l.extra_len = a.extraData.size;
        l.extra_data = 4 + 2 + 2 + signer + 2;
        l.pcr_digest_len = a.attested.quote.pcrDigest.size;
        l.pcr_digest = d->attest_len - l.pcr_digest_len;
        cr_assert_eq(memcmp(d->attest + l.extra_data, a.extraData.buffer, l.extra_len), 0);
        cr_assert_eq(memcmp(d->attest + l.pcr_digest, a.attested.quote.pcrDigest.buffer, l.pcr_digest_len), 0);
        return l;
}

/*
 * Seeds for tests/fuzz/fuzz-quote.c, in its input format: a flags byte
 * (1 allow_sha1, 2 required, 4 prefix) then u16-BE-length-prefixed attest,
 * sig, pub, nonce, pcrs (records u16 alg, u8 index, u8 size, value) and the
 * required TPML_PCR_SELECTION (tss2 marshalled). Written to
 * $CSCP_BUILD_DIR/fuzz-seeds/quote/, where scripts/test finds them.
 */
static void write_seed(const qdata_t *d, const char *name)
{
        uint8_t buf[16384], pcrs[64 * 68], req[sizeof(TPML_PCR_SELECTION)];
        size_t off = 0, plen = 0, rlen = 0;
        char *dir, *path;

        for (size_t i = 0; i < d->n_pcrs; i++) {
                const cscp_pcr_value_t *pv = &d->pcrs[i];
                pcrs[plen++] = (uint8_t)(pv->hash_alg >> 8);
                pcrs[plen++] = (uint8_t)pv->hash_alg;
                pcrs[plen++] = (uint8_t)pv->index;
                pcrs[plen++] = (uint8_t)pv->size;
                memcpy(pcrs + plen, pv->value, pv->size);
                plen += pv->size;
        }
        if (d->has_required)
                cr_assert_eq(Tss2_MU_TPML_PCR_SELECTION_Marshal(&d->required, req, sizeof(req), &rlen), 0);

        buf[off++] = (uint8_t)((d->allow_sha1 ? 1 : 0) | (d->has_required ? 2 : 0));
#define CHUNK(p, n)                               \
        do {                                      \
                buf[off++] = (uint8_t)((n) >> 8); \
                buf[off++] = (uint8_t)(n);        \
                memcpy(buf + off, (p), (n));      \
                off += (n);                       \
        } while (0)
        CHUNK(d->attest, d->attest_len);
        CHUNK(d->sig, d->sig_len);
        CHUNK(d->pub, d->pub_len);
        CHUNK(d->nonce, d->nonce_len);
        CHUNK(pcrs, plen);
        CHUNK(req, rlen);
#undef CHUNK
        /* scripts/test feeds <build>/fuzz-seeds/quote/ to fuzz-quote. */
        dir = harness_path(harness_build_dir(), "fuzz-seeds");
        mkdir(dir, 0755);
        dir = harness_path(dir, "quote");
        mkdir(dir, 0755);
        path = harness_path(dir, name);
        /* Written once: a fresh swtpm quote differs every run, the seed need not. */
        if (access(dir, W_OK) == 0 && access(path, F_OK) < 0)
                write_all(path, buf, off);
}

/* ----------------------------------------------------------- fixture quotes */

static void load_cmc(qdata_t *d, json_object **ret_expected)
{
        char *dir = fixture_dir("cmc-txt-rsa"), *p;
        json_object *exp = load_json(dir, "expected.json"), *att = jget(exp, "tpms_attest");
        EVP_PKEY *pk;
        BIGNUM *n = NULL, *e = NULL;
        TPMT_PUBLIC pub;
        X509 *cert;
        FILE *f;

        memset(d, 0, sizeof(*d));
        p = harness_path(dir, "quote.attest.bin");
        read_into(p, d->attest, sizeof(d->attest), &d->attest_len);
        p = harness_path(dir, "quote.sig.bin");
        read_into(p, d->sig, sizeof(d->sig), &d->sig_len);
        load_pcrs(dir, "pcrs.sha256.json", d);
        d->nonce_len = unhex(json_object_get_string(jget(att, "extraData")), d->nonce, sizeof(d->nonce));
        selection_from_json(jget(att, "pcrSelect"), &d->required);
        d->has_required = true;

        /* The AK is only given as a certificate: wrap its RSA key in an AK TPMT_PUBLIC. */
        p = harness_path(dir, "ak_cert.pem");
        f = fopen(p, "r");
        cr_assert_not_null(f);
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        cr_assert_not_null(cert);
        pk = X509_get0_pubkey(cert);
        cr_assert_not_null(pk);
        cr_assert_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        cr_assert_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        memset(&pub, 0, sizeof(pub));
        pub.type = TPM2_ALG_RSA;
        pub.nameAlg = TPM2_ALG_SHA256;
        pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                               TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
        pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        pub.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        pub.parameters.rsaDetail.keyBits = (uint16_t)BN_num_bits(n);
        pub.parameters.rsaDetail.exponent = BN_get_word(e) == 65537 ? 0 : (uint32_t)BN_get_word(e);
        pub.unique.rsa.size = (uint16_t)BN_num_bytes(n);
        cr_assert_eq(BN_bn2binpad(n, pub.unique.rsa.buffer, pub.unique.rsa.size), pub.unique.rsa.size);
        d->pub_len = marshal_public(&pub, d->pub, sizeof(d->pub));
        BN_free(n);
        BN_free(e);
        X509_free(cert);
        free(dir);
        *ret_expected = exp;
}

static void load_windows(qdata_t *d, json_object **ret_expected)
{
        char *dir = fixture_dir("go-attestation-windows-gcp"), *p;
        json_object *exp = load_json(dir, "expected.json"), *att = jget(exp, "tpms_attest");

        memset(d, 0, sizeof(*d));
        p = harness_path(dir, "quote.attest.bin");
        read_into(p, d->attest, sizeof(d->attest), &d->attest_len);
        p = harness_path(dir, "quote.sig.bin");
        read_into(p, d->sig, sizeof(d->sig), &d->sig_len);
        p = harness_path(dir, "ak.tpmt_public.bin");
        read_into(p, d->pub, sizeof(d->pub), &d->pub_len);
        load_pcrs(dir, "pcrs.sha1.json", d);
        d->nonce_len = unhex(json_object_get_string(jget(att, "extraData")), d->nonce, sizeof(d->nonce));
        selection_from_json(jget(att, "pcrSelect"), &d->required);
        d->has_required = true;
        free(dir);
        *ret_expected = exp;
}

/* The parsed TPMS_ATTEST and the facts match expected.json's tpms_attest. */
static void check_expected_attest(const qdata_t *d, json_object *exp, const cscp_verdict_t *v)
{
        json_object *att = jget(exp, "tpms_attest");
        uint8_t buf[128];
        TPML_PCR_SELECTION sel;
        TPMS_ATTEST a;
        char num[32];
        size_t n;

        cr_assert_eq(cscp_attest_parse(d->attest, d->attest_len, &a), 0);
        cr_assert_eq(a.magic, strtoul(json_object_get_string(jget(att, "magic")), NULL, 16));
        cr_assert_eq(a.type, strtoul(json_object_get_string(jget(att, "type")), NULL, 16));
        n = unhex(json_object_get_string(jget(att, "signer")), buf, sizeof(buf));
        cr_assert_eq(a.qualifiedSigner.size, n);
        cr_assert_eq(memcmp(a.qualifiedSigner.name, buf, n), 0);
        n = unhex(json_object_get_string(jget(att, "extraData")), buf, sizeof(buf));
        cr_assert_eq(a.extraData.size, n);
        cr_assert_eq(memcmp(a.extraData.buffer, buf, n), 0);
        cr_assert_eq(a.clockInfo.clock, (uint64_t)json_object_get_int64(jget(att, "clock")));
        cr_assert_eq(a.clockInfo.resetCount, (uint32_t)json_object_get_int64(jget(att, "resetCount")));
        cr_assert_eq(a.clockInfo.restartCount, (uint32_t)json_object_get_int64(jget(att, "restartCount")));
        cr_assert_eq(a.clockInfo.safe, json_object_get_int(jget(att, "safe")));
        cr_assert_eq(a.firmwareVersion, strtoull(json_object_get_string(jget(att, "firmwareVersion")), NULL, 16));
        n = unhex(json_object_get_string(jget(att, "pcrDigest")), buf, sizeof(buf));
        cr_assert_eq(a.attested.quote.pcrDigest.size, n);
        cr_assert_eq(memcmp(a.attested.quote.pcrDigest.buffer, buf, n), 0);
        selection_from_json(jget(att, "pcrSelect"), &sel);
        cr_assert_eq(a.attested.quote.pcrSelect.count, sel.count);
        cr_assert(cscp_pcrsel_covers(&a.attested.quote.pcrSelect, &sel));
        cr_assert(cscp_pcrsel_covers(&sel, &a.attested.quote.pcrSelect));
        cr_assert_eq(json_object_get_int(jget(att, "trailing")), 0);

        /* The facts say the same. */
        snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(jget(att, "clock")));
        cr_assert_str_eq(fact(v, "clock"), num);
        snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(jget(att, "resetCount")));
        cr_assert_str_eq(fact(v, "reset-count"), num);
        snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(jget(att, "restartCount")));
        cr_assert_str_eq(fact(v, "restart-count"), num);
        cr_assert_str_eq(fact(v, "safe"), json_object_get_int(jget(att, "safe")) ? "yes" : "no");
        cr_assert_eq(strtoull(fact(v, "firmware-version"), NULL, 16),
                     strtoull(json_object_get_string(jget(att, "firmwareVersion")), NULL, 16));
}

static void check_expected_digest(const qdata_t *d, json_object *exp, uint16_t hash)
{
        json_object *att = jget(exp, "tpms_attest");
        uint8_t want[64], got[64];
        size_t wlen, glen = 0;
        TPMS_ATTEST a;

        cr_assert_eq(cscp_attest_parse(d->attest, d->attest_len, &a), 0);
        wlen = unhex(json_object_get_string(jget(att, "pcrDigest")), want, sizeof(want));
        cr_assert_eq(cscp_pcr_digest(hash, &a.attested.quote.pcrSelect, d->pcrs, d->n_pcrs, got, &glen), 0);
        cr_assert_eq(glen, wlen);
        cr_assert_eq(memcmp(got, want, wlen), 0, "pcr digest differs from the stated pcrDigest");
}

Test(quote_fixture, cmc_valid_quote_verifies)
{
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        load_cmc(&d, &exp);
        cr_assert_str_eq(json_object_get_string(jget(jget(exp, "signature"), "scheme")), "rsassa");
        cr_assert_str_eq(json_object_get_string(jget(jget(exp, "signature"), "hash")), "sha256");
        verify(&d, NULL, &v);
        expect_trusted(&v);
        check_expected_attest(&d, exp, &v);
        check_expected_digest(&d, exp, TPM2_ALG_SHA256);
        expect_detail(&v, "extra-data", "5db48f3e33c9792a");
        expect_detail(&v, "signature", "rsassa-sha256");
        write_seed(&d, "cmc-txt-rsa");
        cscp_verdict_clear(&v);
        json_object_put(exp);
}

Test(quote_fixture, cmc_invalid_signature_rejected)
{
        char *dir = fixture_dir("cmc-txt-rsa"), *p = harness_path(dir, "quote.sig.invalid.bin");
        static const char *const failed[] = {"signature", NULL};
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        load_cmc(&d, &exp);
        read_into(p, d.sig, sizeof(d.sig), &d.sig_len);
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "does not verify");
        cscp_verdict_clear(&v);
        json_object_put(exp);
        free(dir);
}

Test(quote_fixture, cmc_wrong_nonce_rejected)
{
        static const char *const failed[] = {"extra-data", NULL};
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        load_cmc(&d, &exp);
        /* expected.json: "nonce 6db48f3e33c9792a must be rejected" */
        d.nonce_len = unhex("6db48f3e33c9792a", d.nonce, sizeof(d.nonce));
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "extra-data", "5db48f3e33c9792a");
        expect_detail(&v, "extra-data", "6db48f3e33c9792a");
        cscp_verdict_clear(&v);

        /* A prefix of the nonce is not the nonce either. */
        json_object_put(exp);
        load_cmc(&d, &exp);
        d.nonce_len--;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
        json_object_put(exp);
}

Test(quote_fixture, cmc_bad_magic_rejected)
{
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        /* tss2-mu 3.2.1 does not check magic: the verifier must. */
        load_cmc(&d, &exp);
        d.attest[3] ^= 0x01;
        verify(&d, "host-", &v);
        cr_assert_null(cscp_verdict_find(&v, "magic"));
        cr_assert_not_null(cscp_verdict_find(&v, "host-magic"));
        cr_assert_eq(cscp_verdict_find(&v, "host-magic")->pass, false);
        cr_assert_eq(cscp_verdict_find(&v, "host-signature")->pass, false);
        cr_assert_eq(cscp_verdict_find(&v, "host-extra-data")->pass, true);
        cr_assert_eq(cscp_verdict_find(&v, "host-pcr-digest")->pass, true);
        cr_assert_not_null(strstr(cscp_verdict_find(&v, "host-magic")->detail, "0xff544346"));
        cscp_verdict_clear(&v);
        json_object_put(exp);
}

Test(quote_fixture, cmc_pcr_value_changed_rejected)
{
        static const char *const failed[] = {"pcr-digest", NULL};
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        load_cmc(&d, &exp);
        d.pcrs[0].value[31] ^= 0x80;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "pcr-digest", "a27bd934bc103d872e21df8329ef76a9cb7050b59c8762395de1f0a0385bfd79");
        cscp_verdict_clear(&v);
        json_object_put(exp);
}

Test(quote_fixture, windows_sha1_quote_needs_allow_sha1)
{
        static const char *const failed[] = {"signature", "pcr-digest", NULL};
        uint8_t digest[32], pem_name[34];
        char *dir, *p, *name_hex;
        unsigned dlen = 0;
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        load_windows(&d, &exp);
        cr_assert_str_eq(json_object_get_string(jget(jget(exp, "signature"), "hash")), "sha1");
        cr_assert_eq(d.nonce_len, 0, "expected.json states an empty nonce");

        d.allow_sha1 = true;
        verify(&d, NULL, &v);
        expect_trusted(&v);
        check_expected_attest(&d, exp, &v);
        check_expected_digest(&d, exp, TPM2_ALG_SHA1);
        expect_detail(&v, "signature", "rsassa-sha1");

        /* ak-name = nameAlg || SHA-256(TPMT_PUBLIC), computed here independently. */
        cr_assert_eq(EVP_Digest(d.pub, d.pub_len, digest, &dlen, EVP_sha256(), NULL), 1);
        pem_name[0] = 0x00;
        pem_name[1] = 0x0b;
        memcpy(pem_name + 2, digest, 32);
        name_hex = tohex(pem_name, sizeof(pem_name));
        cr_assert_str_eq(fact(&v, "ak-name"), name_hex);
        free(name_hex);
        write_seed(&d, "windows-gcp-sha1");
        cscp_verdict_clear(&v);

        /* Without allow_sha1 the SHA-1 signature (and its SHA-1 digest) are refused. */
        d.allow_sha1 = false;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "sha1");
        cscp_verdict_clear(&v);

        /* ak.tpm2b_public.bin is the same key with a size prefix. */
        dir = fixture_dir("go-attestation-windows-gcp");
        p = harness_path(dir, "ak.tpm2b_public.bin");
        {
                size_t len;
                uint8_t *b = read_all(p, &len);
                cr_assert_eq(len, d.pub_len + 2);
                cr_assert_eq(((size_t)b[0] << 8 | b[1]), d.pub_len);
                cr_assert_eq(memcmp(b + 2, d.pub, d.pub_len), 0);
                free(b);
        }
        free(dir);
        json_object_put(exp);
}

Test(quote_fixture, windows_ak_matches_pem_and_expected)
{
        char *dir = fixture_dir("go-attestation-windows-gcp"), *p = harness_path(dir, "ak.pub.pem");
        EVP_PKEY *pem, *ours = NULL;
        TPMT_PUBLIC pub;
        json_object *exp, *akj;
        qdata_t d;
        FILE *f;

        load_windows(&d, &exp);
        akj = jget(exp, "ak_public");
        f = fopen(p, "r");
        cr_assert_not_null(f);
        pem = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        cr_assert_not_null(pem);
        cr_assert_eq(cscp_tpm_public_to_pkey(d.pub, d.pub_len, &ours), 0);
        cr_assert_eq(EVP_PKEY_eq(pem, ours), 1, "TPMT_PUBLIC key differs from ak.pub.pem");
        cr_assert_eq(EVP_PKEY_get_bits(ours), json_object_get_int(jget(akj, "bits")));
        parse_public(&d, &pub);
        cr_assert_eq(pub.objectAttributes, strtoul(json_object_get_string(jget(akj, "objectAttributes")), NULL, 16));

        /* Trailing bytes after the TPMT_PUBLIC are refused. */
        d.pub[d.pub_len++] = 0;
        EVP_PKEY_free(ours);
        ours = NULL;
        cr_assert_lt(cscp_tpm_public_to_pkey(d.pub, d.pub_len, &ours), 0);
        cr_assert_null(ours);
        EVP_PKEY_free(pem);
        json_object_put(exp);
        free(dir);
}

Test(quote_fixture, windows_creation_attest_is_not_a_quote)
{
        char *dir = fixture_dir("go-attestation-windows-gcp"), *p;
        cscp_verdict_t v;
        json_object *exp;
        qdata_t d;

        /* The AK signed this TPMS_ATTEST too (CertifyCreation): the signature is good, the type is not. */
        load_windows(&d, &exp);
        d.allow_sha1 = true;
        p = harness_path(dir, "ak_creation_attest.bin");
        read_into(p, d.attest, sizeof(d.attest), &d.attest_len);
        p = harness_path(dir, "ak_creation_sig.bin");
        read_into(p, d.sig, sizeof(d.sig), &d.sig_len);
        {
                TPMS_ATTEST a;
                cr_assert_eq(cscp_attest_parse(d.attest, d.attest_len, &a), 0);
                d.nonce_len = a.extraData.size;
                memcpy(d.nonce, a.extraData.buffer, a.extraData.size);
                cr_assert_eq(a.type, TPM2_ST_ATTEST_CREATION);
        }
        verify(&d, NULL, &v);
        expect_claim(&v, "signature", true);
        expect_claim(&v, "magic", true);
        expect_claim(&v, "extra-data", true);
        expect_claim(&v, "type", false);
        expect_claim(&v, "pcr-selection", false);
        expect_claim(&v, "pcr-values", false);
        expect_claim(&v, "pcr-digest", false);
        expect_detail(&v, "pcr-digest", "not checked");
        cscp_verdict_clear(&v);
        json_object_put(exp);
        free(dir);
}

Test(quote_fixture, cross_key_rejected)
{
        static const char *const failed[] = {"signature", NULL};
        json_object *e1, *e2;
        cscp_verdict_t v;
        qdata_t cmc, win;

        /* The Windows AK did not sign the cmc quote. */
        load_cmc(&cmc, &e1);
        load_windows(&win, &e2);
        memcpy(cmc.pub, win.pub, win.pub_len);
        cmc.pub_len = win.pub_len;
        /* The Windows AK's scheme is RSASSA-SHA1: make it NULL so the key check alone decides. */
        {
                TPMT_PUBLIC pub;
                parse_public(&cmc, &pub);
                pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                cmc.pub_len = marshal_public(&pub, cmc.pub, sizeof(cmc.pub));
        }
        verify(&cmc, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "does not verify");
        cscp_verdict_clear(&v);

        /* Key scheme RSASSA-SHA1 vs an RSASSA-SHA256 signature: refused before any crypto. */
        memcpy(cmc.pub, win.pub, win.pub_len);
        cmc.pub_len = win.pub_len;
        verify(&cmc, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "disagrees");
        cscp_verdict_clear(&v);
        json_object_put(e1);
        json_object_put(e2);
}

/* --------------------------------------------------------- no-input checks */

Test(quote, empty_input_names_every_claim)
{
        cscp_quote_t q = {0};
        cscp_quote_opts_t opts = {.prefix = "c1-"};
        cscp_verdict_t v;
        char name[64];

        cscp_verdict_init(&v);
        cr_assert_eq(cscp_quote_verify(&q, &opts, &v), 0);
        cr_assert_eq(v.n_claims, N_CLAIMS);
        for (size_t i = 0; i < N_CLAIMS; i++) {
                snprintf(name, sizeof(name), "c1-%s", claim_names[i]);
                cr_assert_not_null(cscp_verdict_find(&v, name), "%s missing", name);
                cr_assert_eq(cscp_verdict_find(&v, name)->pass, false, "%s passed on empty input", name);
        }
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);

        cr_assert_eq(cscp_quote_verify(NULL, &opts, &v), -EINVAL);
        q.attest_len = 5; /* NULL with a length */
        cr_assert_eq(cscp_quote_verify(&q, &opts, &v), -EINVAL);
}

Test(quote, pcr_digest_rules)
{
        cscp_pcr_value_t pcrs[3];
        TPML_PCR_SELECTION sel = {0};
        uint8_t out[64], want[32], cat[96];
        unsigned wlen = 0;
        size_t len = 0;

        /* sha1 bank 7 and sha256 banks 1, 0 (list order, then ascending index), digested with SHA-256. */
        memset(pcrs, 0, sizeof(pcrs));
        for (int i = 0; i < 3; i++)
                memset(pcrs[i].value, 0x11 * (i + 1), 32);
        pcrs[0] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA256, .index = 1, .size = 32};
        memset(pcrs[0].value, 0xaa, 32);
        pcrs[1] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA256, .index = 0, .size = 32};
        memset(pcrs[1].value, 0xbb, 32);
        pcrs[2] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA1, .index = 7, .size = 20};
        memset(pcrs[2].value, 0xcc, 20);
        set_pcr(&sel, TPM2_ALG_SHA1, 7);
        set_pcr(&sel, TPM2_ALG_SHA256, 1);
        set_pcr(&sel, TPM2_ALG_SHA256, 0);
        memcpy(cat, pcrs[2].value, 20);
        memcpy(cat + 20, pcrs[1].value, 32);
        memcpy(cat + 52, pcrs[0].value, 32);
        cr_assert_eq(EVP_Digest(cat, 84, want, &wlen, EVP_sha256(), NULL), 1);
        cr_assert_eq(cscp_pcr_digest(TPM2_ALG_SHA256, &sel, pcrs, 3, out, &len), 0);
        cr_assert_eq(len, 32);
        cr_assert_eq(memcmp(out, want, 32), 0);

        /* Missing value, wrong size, unknown hash. */
        len = 0;
        cr_assert_eq(cscp_pcr_digest(TPM2_ALG_SHA256, &sel, pcrs, 2, out, &len), -ENOENT);
        cr_assert_eq(len, 0, "ret_len written on failure");
        pcrs[2].size = 32;
        cr_assert_lt(cscp_pcr_digest(TPM2_ALG_SHA256, &sel, pcrs, 3, out, &len), 0);
        pcrs[2].size = 20;
        cr_assert_eq(cscp_pcr_digest(0x0099, &sel, pcrs, 3, out, &len), CSCP_E_UNSUPPORTED);
        sel.count = TPM2_NUM_PCR_BANKS + 1;
        cr_assert_lt(cscp_pcr_digest(TPM2_ALG_SHA256, &sel, pcrs, 3, out, &len), 0);
}

/* TPMT_PUBLIC for an OpenSSL EC key, coordinates left as given (may be short). */
static void ec_public(EVP_PKEY *pk, uint16_t curve, bool strip, TPMT_PUBLIC *pub)
{
        BIGNUM *x = NULL, *y = NULL;

        cr_assert_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        cr_assert_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        memset(pub, 0, sizeof(*pub));
        pub->type = TPM2_ALG_ECC;
        pub->nameAlg = TPM2_ALG_SHA256;
        pub->objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
        pub->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        pub->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        pub->parameters.eccDetail.curveID = curve;
        pub->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        {
                int flen = curve == TPM2_ECC_NIST_P256 ? 32 : curve == TPM2_ECC_NIST_P384 ? 48 : 66;
                int xl = strip ? BN_num_bytes(x) : flen, yl = strip ? BN_num_bytes(y) : flen;
                pub->unique.ecc.x.size = (uint16_t)xl;
                pub->unique.ecc.y.size = (uint16_t)yl;
                cr_assert_eq(BN_bn2binpad(x, pub->unique.ecc.x.buffer, xl), xl);
                cr_assert_eq(BN_bn2binpad(y, pub->unique.ecc.y.buffer, yl), yl);
        }
        BN_free(x);
        BN_free(y);
}

Test(quote, pubkey_ecc_curves_and_rsa)
{
        static const struct {
                const char *group;
                uint16_t curve;
        } curves[] = {
                {"P-256", TPM2_ECC_NIST_P256},
                {"P-384", TPM2_ECC_NIST_P384},
                {"P-521", TPM2_ECC_NIST_P521},
        };
        uint8_t buf[1024];
        TPMT_PUBLIC pub;
        TPM2B_NAME name;
        size_t len;

        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
                for (int strip = 0; strip < 2; strip++) {
                        EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i].group), *ours = NULL;

                        cr_assert_not_null(pk);
                        ec_public(pk, curves[i].curve, strip, &pub);
                        cr_assert_eq(cscp_tpmt_public_to_pkey(&pub, &ours), 0, "%s", curves[i].group);
                        cr_assert_eq(EVP_PKEY_eq(pk, ours), 1, "%s key differs", curves[i].group);
                        EVP_PKEY_free(ours);
                        ours = NULL;

                        /* A point off the curve is refused. */
                        pub.unique.ecc.y.buffer[pub.unique.ecc.y.size - 1] ^= 1;
                        cr_assert_lt(cscp_tpmt_public_to_pkey(&pub, &ours), 0);
                        cr_assert_null(ours);
                        EVP_PKEY_free(pk);
                }
        }

        /* RSA with exponent 0 = 65537; Name = 000b || SHA-256(TPMT_PUBLIC). */
        {
                EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), *ours = NULL;
                uint8_t want[34];
                unsigned dlen = 0;
                BIGNUM *n = NULL;

                cr_assert_not_null(pk);
                cr_assert_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
                memset(&pub, 0, sizeof(pub));
                pub.type = TPM2_ALG_RSA;
                pub.nameAlg = TPM2_ALG_SHA256;
                pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
                pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                pub.parameters.rsaDetail.keyBits = 2048;
                pub.parameters.rsaDetail.exponent = 0;
                pub.unique.rsa.size = 256;
                BN_bn2binpad(n, pub.unique.rsa.buffer, 256);
                len = marshal_public(&pub, buf, sizeof(buf));
                cr_assert_eq(cscp_tpm_public_to_pkey(buf, len, &ours), 0);
                cr_assert_eq(EVP_PKEY_eq(pk, ours), 1);
                cr_assert_eq(cscp_tpm_public_name(buf, len, &name), 0);
                want[0] = 0;
                want[1] = 0x0b;
                cr_assert_eq(EVP_Digest(buf, len, want + 2, &dlen, EVP_sha256(), NULL), 1);
                cr_assert_eq(name.size, 34);
                cr_assert_eq(memcmp(name.name, want, 34), 0);
                EVP_PKEY_free(ours);
                ours = NULL;

                /* Truncated anywhere: refused, never read past the end. */
                for (size_t l = 0; l < len; l++) {
                        cr_assert_lt(cscp_tpm_public_to_pkey(buf, l, &ours), 0, "accepted %zu of %zu bytes", l, len);
                        cr_assert_lt(cscp_tpm_public_name(buf, l, &name), 0);
                }
                /* Modulus size disagreeing with keyBits. */
                pub.unique.rsa.size = 255;
                cr_assert_lt(cscp_tpmt_public_to_pkey(&pub, &ours), 0);
                /* Keyed-hash objects are not keys we verify with. */
                pub.type = TPM2_ALG_KEYEDHASH;
                cr_assert_eq(cscp_tpmt_public_to_pkey(&pub, &ours), CSCP_E_UNSUPPORTED);
                cr_assert_null(ours);
                BN_free(n);
                EVP_PKEY_free(pk);
        }
}

/* ------------------------------------------------------- swtpm-made quotes */

/* The swtpm of the running test (Criterion runs each test in its own process). */
static struct {
        char *dir;
        harness_swtpm_t swtpm;
        bool started;
} tpm;

static bool in_path(const char *prog)
{
        const char *path = getenv("PATH");
        char *copy, *save = NULL, *p;
        bool found = false;

        copy = strdup(path ? path : "/usr/bin:/bin");
        cr_assert_not_null(copy);
        for (p = strtok_r(copy, ":", &save); p && !found; p = strtok_r(NULL, ":", &save)) {
                char *f = harness_path(p, prog);
                found = access(f, X_OK) == 0;
        }
        free(copy);
        return found;
}

/* Runs a tpm2-tools command against the test's swtpm; fails the test (showing its output) if it fails. */
static void tool(const char *first, ...)
{
        char *argv[32], *out = NULL, *err = NULL;
        int rc = -1, r;
        size_t n = 0;
        va_list ap;

        argv[n++] = (char *)first;
        va_start(ap, first);
        while (n < 31 && (argv[n] = va_arg(ap, char *)))
                n++;
        va_end(ap);
        argv[n] = NULL;

        r = harness_run(argv, 30000, &rc, &out, &err);
        if (r < 0 || rc != 0) {
                fprintf(stderr, "%s: %s\n%s%s", first, r < 0 ? strerror(-r) : "failed", out ? out : "", err ? err : "");
                harness_dump_log(&tpm.swtpm.proc);
        }
        free(out);
        free(err);
        cr_assert_eq(r, 0, "%s could not run: %s", first, strerror(-r));
        cr_assert_eq(rc, 0, "%s exited with %d, see the output above", first, rc);
}

static char *tpm_file(const char *name)
{
        return harness_path(tpm.dir, name);
}

static void tpm_setup(void)
{
        memset(&tpm, 0, sizeof(tpm));
}

/* Runs even when the test failed an assertion; a crash is covered by the harness's PDEATHSIG. */
static void tpm_teardown(void)
{
        if (tpm.started)
                harness_swtpm_stop(&tpm.swtpm);
        tpm.started = false;
        free(tpm.dir);
        tpm.dir = NULL;
}

static void tpm_start(void)
{
        int r;

        if (!in_path("swtpm") || !in_path("tpm2_quote") || !in_path("tpm2_createak"))
                cr_skip_test("swtpm or tpm2-tools not installed");
        tpm.dir = harness_tmpdir();
        r = harness_swtpm_start(tpm.dir, &tpm.swtpm);
        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
        tpm.started = true;
        cr_assert_eq(setenv("TPM2TOOLS_TCTI", tpm.swtpm.tcti, 1), 0);
}

typedef enum {
        AK_ECDSA_P256,
        AK_ECDSA_P384,
        AK_RSASSA,
        AK_RSAPSS,
} ak_kind_t;

static const uint8_t extend0[32] = {0xa0, 0xa1, 0xa2, 0xa3}; /* sha256 extended into PCR 0 */
static const uint8_t extend16[32] = {0x16, 0x16, 0x16, 0x16};

/* sha256:0,1,2,16 quote by a fresh AK of the given kind, PCR 0 and 16 extended. */
static void make_quote(ak_kind_t kind, qdata_t *d)
{
        static const unsigned pcr_idx[] = {0, 1, 2, 16};
        const char *ek_alg, *ak_alg, *hash, *scheme;
        char *ek, *ak, *akpub, *akname, *msg, *sig, *pcrs, *nonce_hex, *e0, *e16, *h0, *h16;
        uint8_t raw[4 * 32];
        size_t rawlen, len;

        switch (kind) {
        case AK_ECDSA_P256:
                ek_alg = "ecc", ak_alg = "ecc", hash = "sha256", scheme = "ecdsa";
                break;
        case AK_ECDSA_P384:
                ek_alg = "ecc", ak_alg = "ecc384", hash = "sha384", scheme = "ecdsa";
                break;
        case AK_RSASSA:
                ek_alg = "rsa", ak_alg = "rsa", hash = "sha256", scheme = "rsassa";
                break;
        case AK_RSAPSS:
        default:
                ek_alg = "rsa", ak_alg = "rsa", hash = "sha256", scheme = "rsapss";
                break;
        }

        tpm_start();
        ek = tpm_file("ek.ctx");
        ak = tpm_file("ak.ctx");
        akpub = tpm_file("ak.pub");
        akname = tpm_file("ak.name");
        msg = tpm_file("quote.msg");
        sig = tpm_file("quote.sig");
        pcrs = tpm_file("quote.pcrs");

        /* swtpm has no resource manager: flush transient objects and sessions between tools. */
        tool("tpm2_createek", "-G", ek_alg, "-c", ek, NULL);
        tool("tpm2_flushcontext", "-t", NULL);
        tool("tpm2_createak", "-C", ek, "-c", ak, "-G", ak_alg, "-g", hash, "-s", scheme, "-u", akpub, "-n", akname,
             NULL);
        tool("tpm2_flushcontext", "-t", NULL);
        tool("tpm2_flushcontext", "-s", NULL);

        h0 = tohex(extend0, 32);
        h16 = tohex(extend16, 32);
        cr_assert_geq(asprintf(&e0, "0:sha256=%s", h0), 0);
        cr_assert_geq(asprintf(&e16, "16:sha256=%s", h16), 0);
        tool("tpm2_pcrextend", e0, NULL);
        tool("tpm2_pcrextend", e16, NULL);

        memset(d, 0, sizeof(*d));
        d->nonce_len = 32;
        cr_assert_eq(RAND_bytes(d->nonce, (int)d->nonce_len), 1);
        nonce_hex = tohex(d->nonce, d->nonce_len);
        tool("tpm2_quote", "-c", ak, "-l", "sha256:0,1,2,16", "-q", nonce_hex, "-m", msg, "-s", sig, "-o", pcrs, "-F",
             "values", "-g", hash, "--scheme", scheme, NULL);

        read_into(msg, d->attest, sizeof(d->attest), &d->attest_len);
        read_into(sig, d->sig, sizeof(d->sig), &d->sig_len);
        /* ak.pub is a TPM2B_PUBLIC: strip its size. */
        read_into(akpub, d->pub, sizeof(d->pub), &len);
        cr_assert_geq(len, 2);
        cr_assert_eq(((size_t)d->pub[0] << 8 | d->pub[1]), len - 2, "ak.pub is not a TPM2B_PUBLIC");
        memmove(d->pub, d->pub + 2, len - 2);
        d->pub_len = len - 2;
        read_into(akname, d->ak_name, sizeof(d->ak_name), &d->ak_name_len);
        read_into(pcrs, raw, sizeof(raw), &rawlen);
        cr_assert_eq(rawlen, sizeof(raw), "tpm2_quote -o gave %zu bytes", rawlen);
        for (size_t i = 0; i < 4; i++) {
                cscp_pcr_value_t *pv = &d->pcrs[d->n_pcrs++];
                pv->hash_alg = TPM2_ALG_SHA256;
                pv->index = (uint16_t)pcr_idx[i];
                pv->size = 32;
                memcpy(pv->value, raw + 32 * i, 32);
        }
        /* The values are what the extends made: PCR16 = SHA-256(0^32 || extend16). */
        {
                uint8_t cat[64] = {0}, want[32];
                unsigned wl = 0;

                memcpy(cat + 32, extend16, 32);
                cr_assert_eq(EVP_Digest(cat, 64, want, &wl, EVP_sha256(), NULL), 1);
                cr_assert_eq(memcmp(d->pcrs[3].value, want, 32), 0, "PCR16 value is not the extended one");
                memset(cat, 0, 32);
                cr_assert_neq(memcmp(d->pcrs[0].value, cat, 32), 0, "PCR0 still zero");
        }
        memset(&d->required, 0, sizeof(d->required));
        set_pcr(&d->required, TPM2_ALG_SHA256, 0);
        set_pcr(&d->required, TPM2_ALG_SHA256, 16);
        d->has_required = true;

        free(nonce_hex);
        free(e0);
        free(e16);
        free(h0);
        free(h16);
}

static void good_quote(ak_kind_t kind, const char *scheme, const char *seed)
{
        cscp_verdict_t v;
        char *name_hex;
        qdata_t d;

        make_quote(kind, &d);
        verify(&d, NULL, &v);
        expect_trusted(&v);
        expect_detail(&v, "signature", scheme);
        for (size_t i = 0; i < N_FACTS; i++)
                (void)fact(&v, fact_names[i]);
        name_hex = tohex(d.ak_name, d.ak_name_len);
        cr_assert_str_eq(fact(&v, "ak-name"), name_hex, "ak-name differs from tpm2_createak -n");
        free(name_hex);
        write_seed(&d, seed);
        cscp_verdict_clear(&v);

        /* No required selection at all is fine too. */
        d.has_required = false;
        verify(&d, "x-", &v);
        for (size_t i = 0; i < N_CLAIMS; i++) {
                char n[64];
                snprintf(n, sizeof(n), "x-%s", claim_names[i]);
                cr_assert(cscp_verdict_find(&v, n)->pass, "%s failed: %s", n, cscp_verdict_find(&v, n)->detail);
        }
        (void)fact(&v, "x-ak-name");
        cscp_verdict_clear(&v);

        /* Every single-byte change of the signature is refused. */
        for (size_t i = 0; i < d.sig_len; i++) {
                qdata_t t = d;
                t.sig[i] ^= 0x01;
                verify(&t, NULL, &v);
                if (cscp_verdict_find(&v, "signature")->pass)
                        dump(&v);
                cr_assert_not(cscp_verdict_find(&v, "signature")->pass, "sig byte %zu flipped, still verifies", i);
                cscp_verdict_clear(&v);
        }
        /* ... and so is every single-byte change of the attest. */
        for (size_t i = 0; i < d.attest_len; i++) {
                qdata_t t = d;
                t.attest[i] ^= 0x40;
                verify(&t, NULL, &v);
                cr_assert_not(cscp_verdict_find(&v, "signature")->pass, "attest byte %zu flipped, verifies", i);
                cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
                cscp_verdict_clear(&v);
        }
}

#define TPM_TEST(name) Test(quote_tpm, name, .init = tpm_setup, .fini = tpm_teardown, .timeout = 90)

TPM_TEST(good_ecdsa_p256)
{
        good_quote(AK_ECDSA_P256, "ecdsa-sha256", "swtpm-ecdsa-p256");
}

TPM_TEST(good_ecdsa_p384_sha384)
{
        /* sha256 bank, digested with the signature's SHA-384. */
        good_quote(AK_ECDSA_P384, "ecdsa-sha384", "swtpm-ecdsa-p384");
}

TPM_TEST(good_rsassa)
{
        good_quote(AK_RSASSA, "rsassa-sha256", "swtpm-rsassa");
}

TPM_TEST(good_rsapss)
{
        good_quote(AK_RSAPSS, "rsapss-sha256", "swtpm-rsapss");
}

TPM_TEST(tamper_magic)
{
        static const char *const failed[] = {"signature", "magic", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.attest[0] ^= 0x01;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(tamper_type)
{
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.attest[5] = 0x19; /* TPM2_ST_ATTEST_TIME */
        verify(&d, NULL, &v);
        expect_claim(&v, "type", false);
        expect_detail(&v, "type", "0x8019");
        expect_claim(&v, "signature", false);
        expect_claim(&v, "magic", true);
        expect_claim(&v, "pcr-digest", false);
        cscp_verdict_clear(&v);
}

TPM_TEST(tamper_extra_data)
{
        static const char *const failed[] = {"signature", "extra-data", NULL};
        attest_layout_t l;
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        l = layout(&d);
        cr_assert_eq(l.extra_len, d.nonce_len);
        d.attest[l.extra_data + l.extra_len - 1] ^= 0x01;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(tamper_pcr_digest_in_attest)
{
        static const char *const failed[] = {"signature", "pcr-digest", NULL};
        attest_layout_t l;
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        l = layout(&d);
        d.attest[l.pcr_digest] ^= 0x01;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "pcr-digest", "!=");
        cscp_verdict_clear(&v);
}

TPM_TEST(tamper_pcr_value)
{
        static const char *const failed[] = {"pcr-digest", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.pcrs[2].value[7] ^= 0x01;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(missing_pcr_value)
{
        static const char *const failed[] = {"pcr-values", "pcr-digest", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.n_pcrs--; /* drop PCR 16 */
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "pcr-values", "sha256:16");
        cscp_verdict_clear(&v);
}

TPM_TEST(extra_pcr_value)
{
        static const char *const failed[] = {"pcr-values", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.pcrs[d.n_pcrs] = d.pcrs[0];
        d.pcrs[d.n_pcrs++].index = 5;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "pcr-values", "sha256:5");
        cscp_verdict_clear(&v);

        /* A second value for a selected PCR is extra too. */
        d.n_pcrs--;
        d.pcrs[d.n_pcrs++] = d.pcrs[1];
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);

        /* And a value from a bank the quote did not select. */
        d.n_pcrs--;
        d.pcrs[d.n_pcrs] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA1, .index = 0, .size = 20};
        d.n_pcrs++;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(wrong_size_pcr_value)
{
        static const char *const failed[] = {"pcr-values", "pcr-digest", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.pcrs[1].size = 20;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(wrong_nonce)
{
        static const char *const failed[] = {"extra-data", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.nonce[0] ^= 0x01;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);

        /* extraData is a prefix of the nonce: still not the nonce. */
        d.nonce[0] ^= 0x01;
        d.nonce[d.nonce_len++] = 0x00;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);

        d.nonce_len = 0;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(required_not_covered)
{
        static const char *const failed[] = {"pcr-selection", NULL};
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        set_pcr(&d.required, TPM2_ALG_SHA256, 7);
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "pcr-selection", "sha256:7");
        cscp_verdict_clear(&v);

        /* The right PCRs in another bank are not the same PCRs. */
        memset(&d.required, 0, sizeof(d.required));
        set_pcr(&d.required, TPM2_ALG_SHA1, 0);
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(trailing_garbage_after_attest)
{
        cscp_verdict_t v;
        TPMS_ATTEST a;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        d.attest[d.attest_len++] = 0x00;
        cr_assert_lt(cscp_attest_parse(d.attest, d.attest_len, &a), 0);
        verify(&d, NULL, &v);
        expect_claim(&v, "signature", false);
        expect_claim(&v, "extra-data", false);
        expect_claim(&v, "pcr-digest", false);
        expect_detail(&v, "extra-data", "trailing");
        cscp_verdict_clear(&v);
}

TPM_TEST(truncated_attest_every_length)
{
        cscp_verdict_t v;
        TPMS_ATTEST a;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        for (size_t l = 0; l < d.attest_len; l++) {
                qdata_t t = d;
                uint8_t *heap = malloc(l ? l : 1);

                cr_assert_not_null(heap);
                memcpy(heap, d.attest, l);
                /* exactly l bytes on the heap: ASan catches any read past them */
                cr_assert_lt(cscp_attest_parse(heap, l, &a), 0, "parsed %zu of %zu bytes", l, d.attest_len);
                t.attest_len = l;
                verify_attest(&t, l ? heap : NULL, l, NULL, &v);
                cr_assert_not(cscp_verdict_find(&v, "signature")->pass, "truncated to %zu verifies", l);
                cr_assert_not(cscp_verdict_find(&v, "pcr-digest")->pass);
                cr_assert_not(cscp_verdict_find(&v, "extra-data")->pass);
                cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
                cscp_verdict_clear(&v);
                free(heap);
        }
}

TPM_TEST(truncated_sig_and_public)
{
        cscp_verdict_t v;
        qdata_t d;

        make_quote(AK_RSASSA, &d);
        for (size_t l = 0; l < d.sig_len; l++) {
                qdata_t t = d;
                t.sig_len = l;
                verify(&t, NULL, &v);
                cr_assert_not(cscp_verdict_find(&v, "signature")->pass, "sig truncated to %zu verifies", l);
                cscp_verdict_clear(&v);
        }
        for (size_t l = 0; l < d.pub_len; l++) {
                qdata_t t = d;
                t.pub_len = l;
                verify(&t, NULL, &v);
                cr_assert_not(cscp_verdict_find(&v, "ak-public")->pass, "public truncated to %zu accepted", l);
                cr_assert_not(cscp_verdict_find(&v, "signature")->pass);
                cscp_verdict_clear(&v);
        }
        /* A byte after the TPMT_PUBLIC or the signature is refused. */
        {
                qdata_t t = d;
                t.pub[t.pub_len++] = 0;
                verify(&t, NULL, &v);
                expect_claim(&v, "ak-public", false);
                expect_detail(&v, "ak-public", "trailing");
                expect_claim(&v, "ak-attributes", false);
                expect_claim(&v, "signature", false);
                cscp_verdict_clear(&v);
        }
        d.sig[d.sig_len++] = 0;
        verify(&d, NULL, &v);
        expect_claim(&v, "signature", false);
        expect_detail(&v, "signature", "trailing");
        cscp_verdict_clear(&v);
}

TPM_TEST(non_restricted_key)
{
        static const char *const failed[] = {"ak-attributes", NULL};
        cscp_verdict_t v;
        TPMT_PUBLIC pub;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        parse_public(&d, &pub);
        pub.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
        d.pub_len = marshal_public(&pub, d.pub, sizeof(d.pub));
        verify(&d, NULL, &v);
        /* Same key material, so the signature still verifies: only the attributes fail. */
        expect_only_failed(&v, failed);
        expect_detail(&v, "ak-attributes", "restricted");
        cscp_verdict_clear(&v);

        parse_public(&d, &pub);
        pub.objectAttributes = (pub.objectAttributes | TPMA_OBJECT_RESTRICTED) & ~TPMA_OBJECT_FIXEDTPM;
        d.pub_len = marshal_public(&pub, d.pub, sizeof(d.pub));
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "ak-attributes", "fixedTPM");
        cscp_verdict_clear(&v);
}

TPM_TEST(key_scheme_disagrees)
{
        static const char *const failed[] = {"signature", NULL};
        cscp_verdict_t v;
        TPMT_PUBLIC pub;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        parse_public(&d, &pub);
        cr_assert_eq(pub.parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
        pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384;
        d.pub_len = marshal_public(&pub, d.pub, sizeof(d.pub));
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "disagrees");
        cscp_verdict_clear(&v);
}

TPM_TEST(other_ak_rejected)
{
        static const char *const failed[] = {"signature", NULL};
        char *ek = NULL, *ak2 = NULL, *pub2 = NULL;
        cscp_verdict_t v;
        size_t len;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        ek = tpm_file("ek.ctx");
        ak2 = tpm_file("ak2.ctx");
        pub2 = tpm_file("ak2.pub");
        tool("tpm2_createak", "-C", ek, "-c", ak2, "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u", pub2, NULL);
        read_into(pub2, d.pub, sizeof(d.pub), &len);
        memmove(d.pub, d.pub + 2, len - 2);
        d.pub_len = len - 2;
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        cscp_verdict_clear(&v);
}

TPM_TEST(off_curve_key_rejected)
{
        static const char *const failed[] = {"ak-public", "signature", NULL};
        cscp_verdict_t v;
        TPMT_PUBLIC pub;
        qdata_t d;

        make_quote(AK_ECDSA_P256, &d);
        parse_public(&d, &pub);
        pub.unique.ecc.x.buffer[0] ^= 0x01;
        d.pub_len = marshal_public(&pub, d.pub, sizeof(d.pub));
        verify(&d, NULL, &v);
        expect_only_failed(&v, failed);
        expect_detail(&v, "signature", "not checked");
        cscp_verdict_clear(&v);
}
