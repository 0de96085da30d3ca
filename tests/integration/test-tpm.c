/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpm/tpm.c against a real swtpm: one swtpm per test in a fresh temporary
 * directory, killed in the fini hook even when an assertion fails (and by the
 * harness at exit / through PDEATHSIG if the test process dies).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>

#include "cscp/error.h"
#include "cscp/pcr.h"
#include "cscp/quote.h"
#include "cscp/verdict.h"
#include "cscp/tpm.h"
#include "cscp/util.h"
#include "harness.h"

static char *dir;
static harness_swtpm_t sw;
static harness_swtpm_t sw2;
static cscp_tpm_t *tpm;

static void setup(void)
{
        char *swdir;
        int r;

        dir = harness_tmpdir();
        swdir = harness_path(dir, "swtpm");
        r = harness_swtpm_start(swdir, &sw);
        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
}

static void teardown(void)
{
        cscp_tpm_free(tpm);
        tpm = NULL;
        harness_swtpm_stop(&sw);
        harness_swtpm_stop(&sw2);
        free(dir);
        dir = NULL;
}

TestSuite(tpm, .init = setup, .fini = teardown, .timeout = 120);

#define assert_ok(expr, sw_)                                                       \
        do {                                                                       \
                int r_ = (expr);                                                   \
                if (r_ < 0)                                                        \
                        harness_dump_log(&(sw_)->proc);                            \
                cr_assert_geq(r_, 0, "%s: %s (%d)", #expr, cscp_strerror(r_), r_); \
        } while (0)

static double elapsed_ms(const struct timespec *a)
{
        struct timespec b;

        clock_gettime(CLOCK_MONOTONIC, &b);
        return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static char *state_dir(void)
{
        return harness_path(dir, "state");
}

static void open_tpm(harness_swtpm_t *s)
{
        cscp_tpm_free(tpm);
        tpm = NULL;
        assert_ok(cscp_tpm_open(s->tcti, &tpm), s);
}

/* Opens, loads or creates the AK, returns a copy of its TPMT_PUBLIC. */
static void load_ak(harness_swtpm_t *s, const char *sdir, cscp_key_alg_t alg, bool want_created, uint8_t **ret_pub,
                    size_t *ret_len)
{
        const uint8_t *pub;
        size_t len;
        bool created = !want_created;

        open_tpm(s);
        assert_ok(cscp_tpm_ak_load_or_create(tpm, sdir, alg, &created), s);
        cr_assert_eq(created, want_created);
        assert_ok(cscp_tpm_ak_public(tpm, &pub, &len), s);
        cr_assert_gt(len, 0);
        if (ret_pub) {
                *ret_pub = malloc(len);
                cr_assert_not_null(*ret_pub);
                memcpy(*ret_pub, pub, len);
                *ret_len = len;
        }
}

static void read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
        int r = cscp_file_read(path, 1 << 20, ret, ret_len);

        cr_assert_eq(r, 0, "read %s: %s", path, cscp_strerror(r));
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
        int r = cscp_file_write_atomic(path, data, len, 0600);

        cr_assert_eq(r, 0, "write %s: %s", path, cscp_strerror(r));
}

static void sel_parse(const char *text, TPML_PCR_SELECTION *sel)
{
        int r = cscp_pcrsel_parse(text, sel);

        cr_assert_eq(r, 0, "cscp_pcrsel_parse(%s): %s", text, cscp_strerror(r));
}

static void digest(uint16_t alg, const void *a, size_t alen, const void *b, size_t blen, uint8_t *out)
{
        EVP_MD *md = EVP_MD_fetch(NULL, cscp_hash_alg_evp(alg), NULL);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 0;

        cr_assert(md && ctx);
        cr_assert(EVP_DigestInit_ex(ctx, md, NULL) == 1);
        cr_assert(EVP_DigestUpdate(ctx, a, alen) == 1);
        if (blen)
                cr_assert(EVP_DigestUpdate(ctx, b, blen) == 1);
        cr_assert(EVP_DigestFinal_ex(ctx, out, &n) == 1);
        cr_assert_eq(n, cscp_hash_alg_size(alg));
        EVP_MD_CTX_free(ctx);
        EVP_MD_free(md);
}

/* ---- AK lifecycle ---------------------------------------------------------------------- */

static void ak_create_then_reload(cscp_key_alg_t alg, const char *file)
{
        char *sdir = state_dir(), *blob = harness_path(sdir, file);
        uint8_t *pub1, *pub2;
        size_t len1, len2;
        struct timespec t0;
        struct stat st;
        TPMT_PUBLIC p;
        size_t off = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        load_ak(&sw, sdir, alg, true, &pub1, &len1);
        cr_log_info("AK %s created in %.0f ms", file, elapsed_ms(&t0));
        cr_assert_eq(stat(sdir, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0700);
        cr_assert_eq(stat(blob, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600);

        cr_assert_eq(Tss2_MU_TPMT_PUBLIC_Unmarshal(pub1, len1, &off, &p), TSS2_RC_SUCCESS);
        cr_assert_eq(off, len1);
        cr_assert_eq(p.type, alg == CSCP_KEY_ECC_P256 ? TPM2_ALG_ECC : TPM2_ALG_RSA);
        cr_assert_eq(p.objectAttributes, TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                                 TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                                 TPMA_OBJECT_USERWITHAUTH);

        /* Second open, same state dir: loaded, not created. */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        load_ak(&sw, sdir, alg, false, &pub2, &len2);
        cr_log_info("AK %s reloaded in %.0f ms", file, elapsed_ms(&t0));
        cr_assert_eq(len1, len2);
        cr_assert_arr_eq(pub1, pub2, len1);

        free(pub1);
        free(pub2);
}

Test(tpm, ak_ecc_created_then_reloaded)
{
        ak_create_then_reload(CSCP_KEY_ECC_P256, "ak-ecc.blob");
}

Test(tpm, ak_rsa_created_then_reloaded)
{
        ak_create_then_reload(CSCP_KEY_RSA_2048, "ak-rsa.blob");
}

Test(tpm, ak_both_algorithms_side_by_side)
{
        char *sdir = state_dir();
        uint8_t *ecc, *rsa, *ecc2;
        size_t ecc_len, rsa_len, ecc2_len;

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, &ecc, &ecc_len);
        load_ak(&sw, sdir, CSCP_KEY_RSA_2048, true, &rsa, &rsa_len);
        cr_assert(ecc_len != rsa_len || memcmp(ecc, rsa, ecc_len) != 0);
        /* Reload on one context twice: the first AK is flushed, not leaked (3 slots only). */
        open_tpm(&sw);
        for (int i = 0; i < 4; i++) {
                const uint8_t *p;
                size_t n;

                assert_ok(cscp_tpm_ak_load_or_create(tpm, sdir, i % 2 ? CSCP_KEY_RSA_2048 : CSCP_KEY_ECC_P256, NULL),
                          &sw);
                assert_ok(cscp_tpm_ak_public(tpm, &p, &n), &sw);
        }
        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, false, &ecc2, &ecc2_len);
        cr_assert_eq(ecc_len, ecc2_len);
        cr_assert_arr_eq(ecc, ecc2, ecc_len);
        free(ecc);
        free(ecc2);
        free(rsa);
}

Test(tpm, ak_public_before_load)
{
        const uint8_t *p;
        size_t n;

        open_tpm(&sw);
        cr_assert_eq(cscp_tpm_ak_public(tpm, &p, &n), -ENOENT);
}

/* ---- quotes ---------------------------------------------------------------------------- */

/* cscp_quote_verify over a quote from the TPM; returns the verdict result. */
static cscp_verdict_result_t verify(const cscp_tpm_quote_t *tq, const uint8_t *nonce, size_t nonce_len,
                                    const char *fail_claim)
{
        cscp_quote_t q = {.attest = tq->attest,
                          .attest_len = tq->attest_len,
                          .sig = tq->sig,
                          .sig_len = tq->sig_len,
                          .pcrs = tq->pcrs,
                          .n_pcrs = tq->n_pcrs};
        cscp_quote_opts_t opts = {.nonce = nonce, .nonce_len = nonce_len};
        cscp_verdict_t v;
        cscp_verdict_result_t res;

        assert_ok(cscp_tpm_ak_public(tpm, &q.ak_public, &q.ak_public_len), &sw);
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_quote_verify(&q, &opts, &v), 0);
        res = cscp_verdict_result(&v);
        if (!fail_claim && res != CSCP_VERDICT_TRUSTED)
                cscp_verdict_print(&v, stderr);
        if (fail_claim) {
                const cscp_claim_t *c = cscp_verdict_find(&v, fail_claim);

                cr_assert_not_null(c, "no claim %s", fail_claim);
                cr_assert(!c->pass, "claim %s passed", fail_claim);
        }
        cscp_verdict_clear(&v);
        return res;
}

/*
 * Checks a quote three ways: cscp_quote_verify (lib/tpm/quote.c), the
 * structure and PCR digest here with tss2-mu and OpenSSL, and the signature
 * with tpm2_checkquote (tpm2-tools) as an independent implementation.
 */
static void check_quote(const cscp_tpm_quote_t *q, const uint8_t *nonce, size_t nonce_len)
{
        const uint8_t *pub;
        size_t pub_len, off = 0;
        TPMS_ATTEST a;
        TPMT_SIGNATURE sig;
        uint8_t *cat, d[64];
        size_t cat_len = 0;
        uint16_t halg;
        char *pub_path = harness_path(dir, "ak.pub"), *msg_path = harness_path(dir, "quote.msg");
        char *sig_path = harness_path(dir, "quote.sig");
        char nonce_hex[2 * 64 + 1];
        char *out = NULL, *err = NULL;
        int code = -1, r;

        assert_ok(cscp_tpm_ak_public(tpm, &pub, &pub_len), &sw);
        cr_assert_eq(verify(q, nonce, nonce_len, NULL), CSCP_VERDICT_TRUSTED);

        /* Structure. */
        memset(&a, 0, sizeof(a));
        cr_assert_eq(Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest, q->attest_len, &off, &a), TSS2_RC_SUCCESS);
        cr_assert_eq(off, q->attest_len);
        cr_assert_eq(a.magic, TPM2_GENERATED_VALUE);
        cr_assert_eq(a.type, TPM2_ST_ATTEST_QUOTE);
        cr_assert_eq(a.extraData.size, nonce_len);
        cr_assert_arr_eq(a.extraData.buffer, nonce, nonce_len);
        off = 0;
        cr_assert_eq(Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sig), TSS2_RC_SUCCESS);
        cr_assert_eq(off, q->sig_len);
        halg = sig.sigAlg == TPM2_ALG_ECDSA ? sig.signature.ecdsa.hash : sig.signature.rsassa.hash;
        cr_assert_eq(halg, TPM2_ALG_SHA256);

        /* PCR values: one per selected PCR of the quote's selection, in order, giving pcrDigest. */
        cr_assert_eq(q->n_pcrs, cscp_pcrsel_count(&a.attested.quote.pcrSelect));
        cat = malloc(q->n_pcrs * 64 + 1);
        cr_assert_not_null(cat);
        {
                size_t k = 0;
                const TPML_PCR_SELECTION *s = &a.attested.quote.pcrSelect;

                for (uint32_t i = 0; i < s->count; i++)
                        for (unsigned pcr = 0; pcr < CSCP_PCR_COUNT; pcr++) {
                                if (!cscp_pcrsel_is_set(&s->pcrSelections[i], pcr))
                                        continue;
                                cr_assert_lt(k, q->n_pcrs);
                                cr_assert_eq(q->pcrs[k].hash_alg, s->pcrSelections[i].hash);
                                cr_assert_eq(q->pcrs[k].index, pcr);
                                cr_assert_eq(q->pcrs[k].size, cscp_hash_alg_size(s->pcrSelections[i].hash));
                                memcpy(cat + cat_len, q->pcrs[k].value, q->pcrs[k].size);
                                cat_len += q->pcrs[k].size;
                                k++;
                        }
        }
        digest(halg, cat, cat_len, NULL, 0, d);
        cr_assert_eq(a.attested.quote.pcrDigest.size, cscp_hash_alg_size(halg));
        cr_assert_arr_eq(a.attested.quote.pcrDigest.buffer, d, cscp_hash_alg_size(halg));
        free(cat);

        /* Signature, by an independent implementation. */
        {
                uint8_t b2[2 + sizeof(TPMT_PUBLIC)];

                b2[0] = (uint8_t)(pub_len >> 8);
                b2[1] = (uint8_t)pub_len;
                memcpy(b2 + 2, pub, pub_len);
                write_file(pub_path, b2, pub_len + 2); /* TPM2B_PUBLIC */
        }
        write_file(msg_path, q->attest, q->attest_len);
        write_file(sig_path, q->sig, q->sig_len);
        cscp_hex_encode(nonce, nonce_len, nonce_hex);
        {
                char *argv[] = {"tpm2_checkquote", "-u", pub_path,  "-m", msg_path, "-s",
                                sig_path,          "-q", nonce_hex, "-g", "sha256", NULL};

                r = harness_run(argv, 30000, &code, &out, &err);
        }
        cr_assert_eq(r, 0, "tpm2_checkquote: %s", strerror(-r));
        cr_assert_eq(code, 0, "tpm2_checkquote failed (%d): %s%s", code, out, err);
        free(out);
        free(err);
}

static void quote_with(cscp_key_alg_t alg)
{
        char *sdir = state_dir();
        uint8_t nonce[32];
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t q = {0};
        struct timespec t0;

        load_ak(&sw, sdir, alg, true, NULL, NULL);
        cr_assert_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
        sel_parse("sha256:0-7,10+sha1:0,1", &sel);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q), &sw);
        cr_log_info("quote (%s, 11 PCRs) in %.1f ms", alg == CSCP_KEY_ECC_P256 ? "ecc" : "rsa", elapsed_ms(&t0));
        cr_assert_eq(q.n_pcrs, 11);
        check_quote(&q, nonce, sizeof(nonce));

        /* The same quote with another nonce, a changed PCR value, a changed byte: untrusted. */
        {
                uint8_t other[32];

                memcpy(other, nonce, sizeof(other));
                other[31] ^= 1;
                cr_assert_eq(verify(&q, other, sizeof(other), "extra-data"), CSCP_VERDICT_UNTRUSTED);
                q.pcrs[3].value[0] ^= 1;
                cr_assert_eq(verify(&q, nonce, sizeof(nonce), "pcr-digest"), CSCP_VERDICT_UNTRUSTED);
                q.pcrs[3].value[0] ^= 1;
                q.attest[q.attest_len - 1] ^= 1;
                cr_assert_eq(verify(&q, nonce, sizeof(nonce), "signature"), CSCP_VERDICT_UNTRUSTED);
                q.attest[q.attest_len - 1] ^= 1;
                cr_assert_eq(verify(&q, nonce, sizeof(nonce), NULL), CSCP_VERDICT_TRUSTED);
        }
        cscp_tpm_quote_clear(&q);
        cr_assert_null(q.attest);
        cscp_tpm_quote_clear(&q); /* twice is fine */
}

Test(tpm, quote_ecc_verifies)
{
        quote_with(CSCP_KEY_ECC_P256);
}

Test(tpm, quote_rsa_verifies)
{
        quote_with(CSCP_KEY_RSA_2048);
}

Test(tpm, quote_nonce_length)
{
        char *sdir = state_dir();
        uint8_t nonce[65] = {1};
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t q = {0};

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, NULL, NULL);
        sel_parse("sha256:0", &sel);
        cr_assert_eq(cscp_tpm_quote(tpm, nonce, 65, &sel, &q), CSCP_E_NONCE);
        cr_assert_null(q.attest);
        cr_assert_eq(cscp_tpm_quote(tpm, nonce, 0, &sel, &q), CSCP_E_NONCE);
        cr_assert_null(q.attest);
        /* The limits themselves are fine, used as given. */
        assert_ok(cscp_tpm_quote(tpm, nonce, 64, &sel, &q), &sw);
        check_quote(&q, nonce, 64);
        cscp_tpm_quote_clear(&q);
        assert_ok(cscp_tpm_quote(tpm, nonce, 1, &sel, &q), &sw);
        check_quote(&q, nonce, 1);
        cscp_tpm_quote_clear(&q);
}

Test(tpm, quote_without_ak)
{
        uint8_t nonce[32] = {0};
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t q = {0};

        open_tpm(&sw);
        sel_parse("sha256:0", &sel);
        cr_assert_lt(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q), 0);
}

/*
 * Another process extends PCR 16 all the time while we quote it: every quote
 * that comes back has values matching its pcrDigest (the library re-quotes
 * when a PCR moved between TPM2_Quote and TPM2_PCR_Read) or is CSCP_E_TPM
 * after too many attempts; never a mismatched answer.
 */
Test(tpm, quote_while_pcrs_move)
{
        char *sdir = state_dir();
        TPML_PCR_SELECTION sel;
        uint8_t nonce[32] = {9};
        int ok = 0, busy = 0, status;
        pid_t pid;

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, NULL, NULL);
        sel_parse("sha256:16,17", &sel);
        fflush(NULL);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                cscp_tpm_t *t2 = NULL;
                uint8_t d[32] = {0};
                struct timespec t0, nap = {.tv_nsec = 3000000};

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (cscp_tpm_open(sw.tcti, &t2) < 0)
                        _exit(2);
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (uint8_t i = 0; elapsed_ms(&t0) < 1500; i++) {
                        d[0] = i;
                        if (cscp_tpm_pcr_extend(t2, 16, TPM2_ALG_SHA256, d, sizeof(d)) < 0)
                                _exit(3);
                        nanosleep(&nap, NULL);
                }
                cscp_tpm_free(t2);
                _exit(0);
        }
        for (int i = 0; i < 40; i++) {
                cscp_tpm_quote_t q = {0};
                int r = cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q);

                if (r == CSCP_E_TPM) {
                        busy++;
                        continue;
                }
                assert_ok(r, &sw);
                check_quote(&q, nonce, sizeof(nonce));
                cscp_tpm_quote_clear(&q);
                ok++;
        }
        while (waitpid(pid, &status, 0) < 0)
                cr_assert_eq(errno, EINTR);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "extender failed: status 0x%x", status);
        cr_log_info("quotes while PCR 16 moves: %d ok, %d gave up", ok, busy);
        cr_assert_gt(ok, 0);
}

/* ---- PCRs ------------------------------------------------------------------------------ */

Test(tpm, pcr_extend_then_quote)
{
        static const struct {
                unsigned pcr;
                uint16_t alg;
                uint8_t fill;
        } ext[] = {
                {16, TPM2_ALG_SHA256, 0xa1}, {16, TPM2_ALG_SHA256, 0xa2}, {23, TPM2_ALG_SHA256, 0xb1},
                {16, TPM2_ALG_SHA1, 0xc1},   {9, TPM2_ALG_SHA384, 0xd1},
        };
        char *sdir = state_dir();
        TPML_PCR_SELECTION sel;
        cscp_pcr_value_t *before, *after;
        size_t n_before, n_after;
        uint8_t nonce[32];
        cscp_tpm_quote_t q = {0};
        /* Selection order: sha256 16, 23; sha1 16; sha384 9. */
        static const struct {
                uint16_t alg;
                unsigned pcr;
        } order[] = {{TPM2_ALG_SHA256, 16}, {TPM2_ALG_SHA256, 23}, {TPM2_ALG_SHA1, 16}, {TPM2_ALG_SHA384, 9}};
        uint8_t expect[4][64];

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, NULL, NULL);
        sel_parse("sha256:16,23+sha1:16+sha384:9", &sel);
        assert_ok(cscp_tpm_pcr_read(tpm, &sel, &before, &n_before), &sw);
        cr_assert_eq(n_before, 4);
        for (size_t i = 0; i < 4; i++) {
                cr_assert_eq(before[i].hash_alg, order[i].alg);
                cr_assert_eq(before[i].index, order[i].pcr);
                memcpy(expect[i], before[i].value, before[i].size);
        }

        for (size_t e = 0; e < sizeof(ext) / sizeof(ext[0]); e++) {
                size_t len = cscp_hash_alg_size(ext[e].alg);
                uint8_t d[64];

                memset(d, ext[e].fill, len);
                assert_ok(cscp_tpm_pcr_extend(tpm, ext[e].pcr, ext[e].alg, d, len), &sw);
                for (size_t i = 0; i < 4; i++)
                        if (order[i].alg == ext[e].alg && order[i].pcr == ext[e].pcr)
                                digest(ext[e].alg, expect[i], len, d, len, expect[i]);
        }

        assert_ok(cscp_tpm_pcr_read(tpm, &sel, &after, &n_after), &sw);
        cr_assert_eq(n_after, 4);
        for (size_t i = 0; i < 4; i++) {
                cr_assert_eq(after[i].size, cscp_hash_alg_size(order[i].alg));
                cr_assert_arr_eq(after[i].value, expect[i], after[i].size, "PCR %s:%u",
                                 cscp_hash_alg_name(order[i].alg), order[i].pcr);
        }

        cr_assert_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
        assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q), &sw);
        cr_assert_eq(q.n_pcrs, 4);
        for (size_t i = 0; i < 4; i++) {
                cr_assert_eq(q.pcrs[i].hash_alg, after[i].hash_alg);
                cr_assert_eq(q.pcrs[i].index, after[i].index);
                cr_assert_eq(q.pcrs[i].size, after[i].size);
                cr_assert_arr_eq(q.pcrs[i].value, after[i].value, after[i].size);
        }
        check_quote(&q, nonce, sizeof(nonce));

        /*
         * Quotes reuse the last PCR values when the TPM signed exactly them: a second quote with no change
         * in between gives the same values; after one more extend the values are read again, never stale.
         */
        {
                cscp_tpm_quote_t q2 = {0}, q3 = {0};
                uint8_t d[32];

                cr_assert_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
                assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q2), &sw);
                cr_assert_eq(q2.n_pcrs, 4);
                for (size_t i = 0; i < 4; i++)
                        cr_assert_arr_eq(q2.pcrs[i].value, expect[i], q2.pcrs[i].size);
                check_quote(&q2, nonce, sizeof(nonce));
                memset(d, 0xee, sizeof(d));
                assert_ok(cscp_tpm_pcr_extend(tpm, 16, TPM2_ALG_SHA256, d, sizeof(d)), &sw);
                digest(TPM2_ALG_SHA256, expect[0], 32, d, 32, expect[0]);
                cr_assert_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
                assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q3), &sw);
                for (size_t i = 0; i < 4; i++)
                        cr_assert_arr_eq(q3.pcrs[i].value, expect[i], q3.pcrs[i].size, "stale PCR value %zu", i);
                check_quote(&q3, nonce, sizeof(nonce));
                cscp_tpm_quote_clear(&q2);
                cscp_tpm_quote_clear(&q3);
        }

        /* Bad extend arguments. */
        {
                uint8_t d[32] = {0};

                cr_assert_lt(cscp_tpm_pcr_extend(tpm, 24, TPM2_ALG_SHA256, d, 32), 0);
                cr_assert_lt(cscp_tpm_pcr_extend(tpm, 16, TPM2_ALG_SHA256, d, 20), 0);
                cr_assert_lt(cscp_tpm_pcr_extend(tpm, 16, TPM2_ALG_NULL, d, 32), 0);
        }

        cscp_tpm_quote_clear(&q);
        free(before);
        free(after);
}

Test(tpm, pcr_read_many)
{
        TPML_PCR_SELECTION sel;
        cscp_pcr_value_t *v;
        size_t n, k = 0;

        open_tpm(&sw);
        /* 48 PCRs over two banks: six or more PCR_Read round trips. */
        sel_parse("sha256:all+sha1:all", &sel);
        assert_ok(cscp_tpm_pcr_read(tpm, &sel, &v, &n), &sw);
        cr_assert_eq(n, 48);
        for (unsigned b = 0; b < 2; b++)
                for (unsigned pcr = 0; pcr < 24; pcr++, k++) {
                        uint16_t alg = b == 0 ? TPM2_ALG_SHA256 : TPM2_ALG_SHA1;

                        cr_assert_eq(v[k].hash_alg, alg);
                        cr_assert_eq(v[k].index, pcr);
                        cr_assert_eq(v[k].size, cscp_hash_alg_size(alg));
                }
        free(v);

        /* Sparse, all four banks, over the 8-digest limit. */
        sel_parse("sha512:1,3,5,7,9,11,13,15,17+sha384:0-2+sha1:23+sha256:12-20", &sel);
        assert_ok(cscp_tpm_pcr_read(tpm, &sel, &v, &n), &sw);
        cr_assert_eq(n, 22);
        cr_assert_eq(v[0].hash_alg, TPM2_ALG_SHA512);
        cr_assert_eq(v[0].index, 1);
        cr_assert_eq(v[8].index, 17);
        cr_assert_eq(v[9].hash_alg, TPM2_ALG_SHA384);
        cr_assert_eq(v[12].hash_alg, TPM2_ALG_SHA1);
        cr_assert_eq(v[12].index, 23);
        cr_assert_eq(v[13].hash_alg, TPM2_ALG_SHA256);
        cr_assert_eq(v[21].index, 20);
        free(v);

        /* A quote over 48 PCRs carries all 48 values. */
        {
                char *sdir = state_dir();
                uint8_t nonce[32] = {7};
                cscp_tpm_quote_t q = {0};

                assert_ok(cscp_tpm_ak_load_or_create(tpm, sdir, CSCP_KEY_ECC_P256, NULL), &sw);
                sel_parse("sha256:all+sha1:all", &sel);
                assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q), &sw);
                cr_assert_eq(q.n_pcrs, 48);
                check_quote(&q, nonce, sizeof(nonce));
                cscp_tpm_quote_clear(&q);
        }
}

Test(tpm, pcr_read_bad_selection)
{
        TPML_PCR_SELECTION sel = {0};
        cscp_pcr_value_t *v = NULL;
        size_t n = 0;

        open_tpm(&sw);
        sel.count = 1;
        sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel.pcrSelections[0].sizeofSelect = 4;
        sel.pcrSelections[0].pcrSelect[3] = 1; /* PCR 24 */
        cr_assert_eq(cscp_tpm_pcr_read(tpm, &sel, &v, &n), CSCP_E_PCRSEL);
        sel.pcrSelections[0].sizeofSelect = 3;
        sel.pcrSelections[0].hash = TPM2_ALG_SM3_256;
        sel.pcrSelections[0].pcrSelect[0] = 1;
        cr_assert_eq(cscp_tpm_pcr_read(tpm, &sel, &v, &n), CSCP_E_PCRSEL);
        sel.count = 2;
        sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel.pcrSelections[1] = sel.pcrSelections[0]; /* bank twice */
        cr_assert_eq(cscp_tpm_pcr_read(tpm, &sel, &v, &n), CSCP_E_PCRSEL);
        cr_assert_null(v);
        cr_assert_eq(n, 0);
}

/* ---- state file ------------------------------------------------------------------------ */

static void expect_state_error(harness_swtpm_t *s, const char *sdir, const char *blob, const uint8_t *content,
                               size_t len, const char *what)
{
        uint8_t *after;
        size_t after_len;
        bool created = false;
        int r;

        write_file(blob, content, len);
        open_tpm(s);
        r = cscp_tpm_ak_load_or_create(tpm, sdir, CSCP_KEY_ECC_P256, &created);
        cr_assert_eq(r, CSCP_E_STATE, "%s: got %s (%d)", what, cscp_strerror(r), r);
        read_file(blob, &after, &after_len);
        cr_assert_eq(after_len, len, "%s: file changed", what);
        cr_assert_arr_eq(after, content, len, "%s: file changed", what);
        free(after);
}

Test(tpm, corrupted_blob_refused)
{
        char *sdir = state_dir(), *blob = harness_path(sdir, "ak-ecc.blob");
        uint8_t *orig, *bad;
        size_t len, pub_size, priv_off;

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, NULL, NULL);
        cscp_tpm_free(tpm);
        tpm = NULL;
        read_file(blob, &orig, &len);
        cr_assert_gt(len, 14);
        cr_assert_arr_eq(orig, "CSCPAK\0\1", 8);
        bad = malloc(len + 1);
        cr_assert_not_null(bad);

        /* Truncated: by one byte, to the header, to nothing. */
        expect_state_error(&sw, sdir, blob, orig, len - 1, "truncated by 1");
        expect_state_error(&sw, sdir, blob, orig, 10, "header only");
        expect_state_error(&sw, sdir, blob, orig, 0, "empty");
        /* One trailing byte. */
        memcpy(bad, orig, len);
        bad[len] = 0;
        expect_state_error(&sw, sdir, blob, bad, len + 1, "trailing byte");
        /* Bad magic, bad version. */
        memcpy(bad, orig, len);
        bad[0] ^= 0x20;
        expect_state_error(&sw, sdir, blob, bad, len, "bad magic");
        memcpy(bad, orig, len);
        bad[7] = 2;
        expect_state_error(&sw, sdir, blob, bad, len, "bad version");
        /* Algorithm that does not match the file name. */
        memcpy(bad, orig, len);
        bad[8] = 0x00;
        bad[9] = 0x01;
        expect_state_error(&sw, sdir, blob, bad, len, "rsa in ak-ecc.blob");
        /* A flipped byte inside the private area: the TPM's integrity check refuses it. */
        pub_size = (size_t)orig[10] << 8 | orig[11];
        priv_off = 12 + pub_size + 2;
        cr_assert_lt(priv_off + 40, len);
        memcpy(bad, orig, len);
        bad[priv_off + 40] ^= 0x01;
        expect_state_error(&sw, sdir, blob, bad, len, "flipped byte in private");
        /* A flipped byte in the public key point: integrity again (the Name changes). */
        memcpy(bad, orig, len);
        bad[12 + pub_size - 5] ^= 0x80;
        expect_state_error(&sw, sdir, blob, bad, len, "flipped byte in public");

        /* The original still loads. */
        write_file(blob, orig, len);
        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, false, NULL, NULL);

        free(bad);
        free(orig);
}

Test(tpm, blob_not_a_regular_file)
{
        char *sdir = state_dir(), *blob = harness_path(sdir, "ak-ecc.blob");

        cr_assert_eq(mkdir(sdir, 0700), 0);
        cr_assert_eq(mkdir(blob, 0700), 0);
        open_tpm(&sw);
        cr_assert_eq(cscp_tpm_ak_load_or_create(tpm, sdir, CSCP_KEY_ECC_P256, NULL), CSCP_E_STATE);
}

Test(tpm, blob_from_another_tpm)
{
        char *sdir = state_dir(), *blob = harness_path(sdir, "ak-ecc.blob");
        char *sw2dir = harness_path(dir, "swtpm2"), *sdir2 = harness_path(dir, "state2");
        char *blob2 = harness_path(sdir2, "ak-ecc.blob");
        uint8_t *orig;
        size_t len;

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, NULL, NULL);
        cscp_tpm_free(tpm);
        tpm = NULL;
        read_file(blob, &orig, &len);

        assert_ok(harness_swtpm_start(sw2dir, &sw2), &sw2);
        cr_assert_eq(mkdir(sdir2, 0700), 0);
        expect_state_error(&sw2, sdir2, blob2, orig, len, "blob from another TPM");

        free(orig);
}

Test(tpm, swtpm_restart_keeps_ak)
{
        char *sdir = state_dir();
        char *swdir = harness_keep(strdup(sw.dir));
        uint8_t *pub1, *pub2;
        size_t len1, len2;
        uint8_t nonce[32] = {3};
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t q = {0};

        cr_assert_not_null(swdir);
        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, true, &pub1, &len1);
        cscp_tpm_free(tpm);
        tpm = NULL;
        harness_swtpm_stop(&sw);
        assert_ok(harness_swtpm_start(swdir, &sw), &sw);

        load_ak(&sw, sdir, CSCP_KEY_ECC_P256, false, &pub2, &len2);
        cr_assert_eq(len1, len2);
        cr_assert_arr_eq(pub1, pub2, len1);
        sel_parse("sha256:0-7", &sel);
        assert_ok(cscp_tpm_quote(tpm, nonce, sizeof(nonce), &sel, &q), &sw);
        check_quote(&q, nonce, sizeof(nonce));
        cscp_tpm_quote_clear(&q);

        free(pub1);
        free(pub2);
}

Test(tpm, open_bad_tcti)
{
        cscp_tpm_t *t2 = NULL;
        char *conf = harness_path(dir, "nothing-here.sock"), *tcti = NULL;

        cr_assert(asprintf(&tcti, "swtpm:path=%s", conf) > 0);
        cr_assert_eq(cscp_tpm_open(tcti, &t2), CSCP_E_TPM);
        cr_assert_null(t2);
        cr_assert_eq(cscp_tpm_open("no-such-tcti-module", &t2), CSCP_E_TPM);
        cscp_tpm_free(NULL);
        free(tcti);
}
