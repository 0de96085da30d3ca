/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host root-of-trust interface (lib/rot.c, include/cscp/rot.h):
 *  - tpm backend against a real swtpm: a quote over 32 bytes of caller data
 *    verifies (extraData = the data) with the AK, other lengths refused;
 *    extend of every bank in one call agrees with a replay and with
 *    cscp_tpm_pcr_read; log index = the PCR; the TPM's banks; no firmware log;
 *  - tdx backend against tests/helpers/tdx-emu (a FUSE emulator of the Linux
 *    TDX files, signing with a TEST CA: NOT TDX, it exercises the file
 *    protocol): a quote over 64 bytes verifies with the emulator's root and
 *    carries them as REPORTDATA; extend of PCR 15 moves RTMR2 to
 *    SHA-384(old || d) and the next quote holds it; PCR 1..7 refused (RTMR0/1),
 *    PCR 0 and 16.. have no register; log index 15 -> 3 (the CCEL's
 *    numbering); banks {SHA-384}; the firmware log is the fixture CCEL, which
 *    replays to the COS quote's RTMR0..2;
 *  - a TDX backend where there is none: CSCP_E_UNSUPPORTED.
 * TDX tests skip (77, with the reason) when the emulator cannot run; the CCEL
 * checks skip without ../shared/fixtures.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "error.h"
#include "eventlog.h"
#include "harness.h"
#include "pcr.h"
#include "quote.h"
#include "rot.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

/* ------------------------------------------------------------ helpers */

static void hash_cat(uint16_t alg, const uint8_t *a, const uint8_t *b, size_t size, uint8_t *out)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_MD *m = EVP_MD_fetch(NULL, cscp_hash_alg_evp(alg), NULL);

        cr_assert(md && m && EVP_DigestInit_ex(md, m, NULL) == 1 && EVP_DigestUpdate(md, a, size) == 1 &&
                  EVP_DigestUpdate(md, b, size) == 1 && EVP_DigestFinal_ex(md, out, NULL) == 1);
        EVP_MD_free(m);
        EVP_MD_CTX_free(md);
}

static void random_digest(uint16_t alg, cscp_event_digest_t *d)
{
        d->alg = alg;
        d->size = (uint16_t)cscp_hash_alg_size(alg);
        cr_assert(d->size > 0);
        cr_assert_eq(RAND_bytes(d->digest, d->size), 1);
}

Test(rot, kind_strings)
{
        cscp_rot_kind_t k = 0;

        cr_assert_eq(cscp_rot_kind_from_string("tpm", &k), 0);
        cr_assert_eq(k, CSCP_ROT_TPM);
        cr_assert_eq(cscp_rot_kind_from_string("tdx", &k), 0);
        cr_assert_eq(k, CSCP_ROT_TDX);
        cr_assert_eq(cscp_rot_kind_from_string("sev", &k), -EINVAL);
        cr_assert_eq(cscp_rot_kind_from_string("TPM", &k), -EINVAL);
        cr_assert_eq(cscp_rot_kind_from_string("", &k), -EINVAL);
        cr_assert_str_eq(cscp_rot_kind_to_string(CSCP_ROT_TPM), "tpm");
        cr_assert_str_eq(cscp_rot_kind_to_string(CSCP_ROT_TDX), "tdx");
}

Test(rot, log_index_by_kind)
{
        uint32_t ix = 99;

        for (unsigned p = 0; p < 24; p++) {
                cr_assert_eq(cscp_rot_kind_log_index(CSCP_ROT_TPM, p, &ix), 0);
                cr_assert_eq(ix, p);
        }
        cr_assert_eq(cscp_rot_kind_log_index(CSCP_ROT_TPM, 24, &ix), -EINVAL);
        /* TDVF: PCR 1, 7 -> RTMR0 (1); 2..6 -> RTMR1 (2); 8..15 -> RTMR2 (3); PCR 0 is MRTD; 16.. nothing */
        for (unsigned p = 0; p < 30; p++) {
                int want = p == 1 || p == 7 ? 1 : p >= 2 && p <= 6 ? 2 : p >= 8 && p <= 15 ? 3 : -1;
                int r = cscp_rot_kind_log_index(CSCP_ROT_TDX, p, &ix);

                if (want < 0)
                        cr_assert_eq(r, -EINVAL, "PCR %u", p);
                else {
                        cr_assert_eq(r, 0, "PCR %u", p);
                        cr_assert_eq(ix, (uint32_t)want, "PCR %u -> %u, wanted %d", p, ix, want);
                }
        }
}

/* ------------------------------------------------------------ tpm backend (real swtpm) */

static char *tdir;
static harness_swtpm_t sw;
static cscp_rot_t *trot;

static void tpm_setup(void)
{
        cscp_rot_config_t cfg = {.kind = CSCP_ROT_TPM};
        int r;

        tdir = harness_tmpdir();
        r = harness_swtpm_start(harness_path(tdir, "swtpm"), &sw);
        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
        cfg.tcti = sw.tcti;
        r = cscp_rot_open(&cfg, &trot);
        cr_assert_eq(r, 0, "cscp_rot_open(tpm): %s", cscp_strerror(r));
}

static void tpm_teardown(void)
{
        cscp_rot_free(trot);
        trot = NULL;
        harness_swtpm_stop(&sw);
}

TestSuite(rot_tpm, .init = tpm_setup, .fini = tpm_teardown, .timeout = 120);

Test(rot_tpm, properties_and_banks)
{
        uint16_t banks[8], tbanks[8];
        size_t n = 0, tn = 0;
        uint32_t ix = 0;
        uint8_t *log = NULL;
        size_t log_len = 0;
        char desc[256];

        cr_assert_eq(cscp_rot_kind(trot), CSCP_ROT_TPM);
        cr_assert_not_null(cscp_rot_tpm(trot));
        cr_assert_eq(cscp_rot_merkle_alg(trot), TPM2_ALG_SHA256);
        cr_assert_eq(cscp_rot_data_len(trot), 32);
        cr_assert_eq(cscp_rot_banks(trot, banks, 8, &n), 0);
        cr_assert_eq(cscp_tpm_pcr_banks(cscp_rot_tpm(trot), tbanks, 8, &tn), 0);
        cr_assert_eq(n, tn);
        cr_assert(n > 0);
        cr_assert_arr_eq(banks, tbanks, n * sizeof(*banks), "the TPM's banks, in its order");
        for (unsigned p = 0; p < 24; p++) {
                cr_assert_eq(cscp_rot_log_index(trot, p, &ix), 0);
                cr_assert_eq(ix, p, "log index of PCR %u is the PCR", p);
        }
        cr_assert_eq(cscp_rot_log_index(trot, 24, &ix), -EINVAL);
        cr_assert_eq(cscp_rot_firmware_log(trot, &log, &log_len), -ENOENT, "a TPM's boot log is --boot-log's");
        cr_assert_null(log);
        cr_assert_eq(cscp_rot_describe(trot, desc, sizeof(desc)), 0);
        cr_log_info("%s", desc);
        cr_assert(strncmp(desc, "tpm: ", 5) == 0, "%s", desc);
        cr_assert_not_null(strstr(desc, sw.tcti), "%s names the TCTI", desc);
        cr_assert_not_null(strstr(desc, "sha256"), "%s names the banks", desc);
}

Test(rot_tpm, quote_over_32_bytes_verifies)
{
        TPML_PCR_SELECTION sel = {.count = 1};
        cscp_rot_quote_t q = {0}, copy = {0};
        const uint8_t *ak = NULL;
        size_t ak_len = 0;
        uint8_t data[64];
        cscp_verdict_t v;
        int r;

        r = cscp_tpm_ak_load_or_create(cscp_rot_tpm(trot), harness_path(tdir, "ak"), CSCP_KEY_ECC_P256, NULL);
        cr_assert_eq(r, 0, "AK: %s", cscp_strerror(r));
        cr_assert_eq(cscp_tpm_ak_public(cscp_rot_tpm(trot), &ak, &ak_len), 0);
        sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel.pcrSelections[0].sizeofSelect = 3;
        sel.pcrSelections[0].pcrSelect[1] = 0x80; /* PCR 15 */
        cr_assert_eq(RAND_bytes(data, sizeof(data)), 1);

        /* exactly 32 bytes: anything else is refused, nothing quoted */
        cr_assert_eq(cscp_rot_quote(trot, data, 31, &sel, &q), -EINVAL);
        cr_assert_eq(cscp_rot_quote(trot, data, 64, &sel, &q), -EINVAL);
        cr_assert_null(q.tpm.attest);

        r = cscp_rot_quote(trot, data, 32, &sel, &q);
        cr_assert_eq(r, 0, "quote: %s", cscp_strerror(r));
        cr_assert_eq(q.kind, CSCP_ROT_TPM);
        cr_assert_null(q.tdx);
        cr_assert_eq(q.tpm.n_pcrs, 1);
        cr_assert_eq(cscp_rot_quote_dup(&q, &copy), 0);
        cscp_rot_quote_clear(&q);

        cscp_verdict_init(&v);
        {
                cscp_quote_t vq = {.attest = copy.tpm.attest,
                                   .attest_len = copy.tpm.attest_len,
                                   .sig = copy.tpm.sig,
                                   .sig_len = copy.tpm.sig_len,
                                   .ak_public = ak,
                                   .ak_public_len = ak_len,
                                   .pcrs = copy.tpm.pcrs,
                                   .n_pcrs = copy.tpm.n_pcrs};
                cscp_quote_opts_t o = {.nonce = data, .nonce_len = 32, .required = &sel};

                cr_assert_eq(cscp_quote_verify(&vq, &o, &v), 0);
        }
        for (size_t i = 0; i < v.n_claims; i++)
                if (!v.claims[i].pass)
                        cr_log_error("claim %s failed: %s", v.claims[i].name, v.claims[i].detail);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED, "the copy verifies, extraData = the 32 bytes");
        cscp_verdict_clear(&v);

        /* other 32 bytes: the extra-data claim fails */
        cscp_verdict_init(&v);
        {
                cscp_quote_t vq = {.attest = copy.tpm.attest,
                                   .attest_len = copy.tpm.attest_len,
                                   .sig = copy.tpm.sig,
                                   .sig_len = copy.tpm.sig_len,
                                   .ak_public = ak,
                                   .ak_public_len = ak_len,
                                   .pcrs = copy.tpm.pcrs,
                                   .n_pcrs = copy.tpm.n_pcrs};
                cscp_quote_opts_t o = {.nonce = data + 32, .nonce_len = 32};

                cr_assert_eq(cscp_quote_verify(&vq, &o, &v), 0);
        }
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cr_assert_not(cscp_verdict_find(&v, "extra-data")->pass);
        cscp_verdict_clear(&v);
        cscp_rot_quote_clear(&copy);
}

Test(rot_tpm, extend_and_read_agree_with_a_replay)
{
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS + 1];
        uint8_t before[CSCP_EVENT_MAX_DIGESTS][CSCP_EVENT_MAX_DIGEST], want[CSCP_EVENT_MAX_DIGEST],
                got[CSCP_EVENT_MAX_DIGEST];
        uint16_t banks[8];
        size_t n = 0, len = 0;
        cscp_replay_t rp;
        cscp_event_t ev = {.reg = CSCP_EVENT_PCR, .pcr = 16, .extend = true, .startup_locality = -1};

        cr_assert_eq(cscp_rot_banks(trot, banks, 8, &n), 0);
        cr_assert(n <= CSCP_EVENT_MAX_DIGESTS);
        for (size_t b = 0; b < n; b++) {
                cr_assert_eq(cscp_rot_read(trot, 16, banks[b], before[b], &len), 0);
                cr_assert_eq(len, cscp_hash_alg_size(banks[b]));
                for (size_t k = 0; k < len; k++)
                        cr_assert_eq(before[b][k], 0, "PCR 16 starts at zero");
                random_digest(banks[b], &d[b]);
        }
        /* every bank in one call; a digest of a bank the TPM lacks would be ignored */
        cr_assert_eq(cscp_rot_extend(trot, 16, d, n), 0);
        cscp_replay_init(&rp);
        ev.n_digests = n;
        memcpy(ev.digests, d, n * sizeof(*d));
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        for (size_t b = 0; b < n; b++) {
                size_t size = cscp_hash_alg_size(banks[b]);
                size_t rl = 0;
                uint8_t replayed[CSCP_EVENT_MAX_DIGEST];

                hash_cat(banks[b], before[b], d[b].digest, size, want);
                cr_assert_eq(cscp_rot_read(trot, 16, banks[b], got, &len), 0);
                cr_assert_eq(len, size);
                cr_assert_arr_eq(got, want, size, "bank %s: PCR 16 = H(old || d)", cscp_hash_alg_name(banks[b]));
                cr_assert_eq(cscp_replay_pcr(&rp, banks[b], 16, replayed, &rl), 0);
                cr_assert_arr_eq(got, replayed, size, "bank %s: read = replay", cscp_hash_alg_name(banks[b]));
        }
        /* the same value through cscp_tpm_pcr_read */
        {
                TPML_PCR_SELECTION sel = {.count = 1};
                cscp_pcr_value_t *vals = NULL;
                size_t nv = 0;

                sel.pcrSelections[0].hash = banks[0];
                sel.pcrSelections[0].sizeofSelect = 3;
                sel.pcrSelections[0].pcrSelect[2] = 0x01;
                cr_assert_eq(cscp_tpm_pcr_read(cscp_rot_tpm(trot), &sel, &vals, &nv), 0);
                cr_assert_eq(nv, 1);
                cr_assert_eq(cscp_rot_read(trot, 16, banks[0], got, &len), 0);
                cr_assert_arr_eq(vals[0].value, got, len);
                free(vals);
        }
        /* bad input: nothing extended */
        cr_assert_eq(cscp_rot_extend(trot, 24, d, n), -EINVAL);
        cr_assert_eq(cscp_rot_extend(trot, 16, d, 0), -EINVAL);
        d[0].size = 3;
        cr_assert_eq(cscp_rot_extend(trot, 16, d, 1), -EINVAL, "a digest of the wrong size");
        cr_assert_eq(cscp_rot_read(trot, 16, banks[0], got, &len), 0);
        cr_assert_eq(cscp_replay_pcr(&rp, banks[0], 16, want, &len), 0);
        cr_assert_arr_eq(got, want, len, "refused extends changed nothing");
        cr_assert_eq(cscp_rot_read(trot, 24, banks[0], got, &len), -EINVAL);
}

/* ------------------------------------------------------------ tdx backend (emulator) */

static char *edir;
static pid_t epid;
static cscp_rot_t *xrot;

static const char *fx_ccel(const char *name)
{
        const char *fx = harness_fixtures_dir();

        return fx ? harness_path(fx, harness_path("tdx/go-tdx-guest", name)) : NULL;
}

static void tdx_up(void)
{
        cscp_rot_config_t cfg = {.kind = CSCP_ROT_TDX};
        int r;

        edir = harness_tmpdir();
        harness_tdx_emu_start(edir, NULL, &epid); /* skips (77) when FUSE or the emulator is missing */
        cfg.paths.tsm_root = harness_path(edir, "mnt/tsm");
        cfg.paths.mr_root = harness_path(edir, "mnt/measurements");
        cfg.paths.ccel_table = fx_ccel("ccel_ccel_table.dat");
        cfg.paths.ccel_data = fx_ccel("ccel_ccel_data.dat");
        if (!cfg.paths.ccel_table) {
                /* no fixtures: a CCEL path that does not exist (firmware_log tests skip) */
                cfg.paths.ccel_table = harness_path(edir, "no-ccel-table");
                cfg.paths.ccel_data = harness_path(edir, "no-ccel-data");
        }
        r = cscp_rot_open(&cfg, &xrot);
        cr_assert_eq(r, 0, "cscp_rot_open(tdx) against the emulator: %s", cscp_strerror(r));
}

static void tdx_down(void)
{
        cscp_rot_free(xrot);
        xrot = NULL;
        if (epid > 0)
                harness_tdx_emu_stop(edir, epid);
        epid = 0;
}

TestSuite(rot_tdx, .init = tdx_up, .fini = tdx_down, .timeout = 120);

Test(rot_tdx, properties)
{
        uint16_t banks[8];
        size_t n = 0;
        uint32_t ix = 0;
        char desc[512];

        cr_assert_eq(cscp_rot_kind(xrot), CSCP_ROT_TDX);
        cr_assert_null(cscp_rot_tpm(xrot), "no TPM behind a TDX root");
        cr_assert_eq(cscp_rot_merkle_alg(xrot), TPM2_ALG_SHA512);
        cr_assert_eq(cscp_rot_data_len(xrot), 64);
        cr_assert_eq(cscp_rot_banks(xrot, banks, 8, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(banks[0], TPM2_ALG_SHA384);
        cr_assert_eq(cscp_rot_banks(xrot, banks, 0, &n), CSCP_E_TOO_BIG);
        cr_assert_eq(cscp_rot_log_index(xrot, 15, &ix), 0);
        cr_assert_eq(ix, 3, "PCR 15 -> RTMR2 -> CC register index 3");
        cr_assert_eq(cscp_rot_log_index(xrot, 1, &ix), 0);
        cr_assert_eq(ix, 1);
        cr_assert_eq(cscp_rot_log_index(xrot, 0, &ix), -EINVAL, "PCR 0 is MRTD: no register");
        cr_assert_eq(cscp_rot_log_index(xrot, 16, &ix), -EINVAL);
        cr_assert_eq(cscp_rot_describe(xrot, desc, sizeof(desc)), 0);
        cr_log_info("%s", desc);
        cr_assert(strncmp(desc, "tdx: ", 5) == 0, "%s", desc);
        cr_assert_not_null(strstr(desc, "mnt/tsm"), "%s names the configfs-tsm root", desc);
}

/* A TD quote over data: parsed, verified with the emulator's TEST root, REPORTDATA = data. */
static void quote_verifies(const uint8_t data[64], cscp_tdx_quote_t *ret_q, cscp_rot_quote_t *ret)
{
        cscp_tdx_verify_opts_t o = {.root_file = harness_path(edir, "state/root.pem"), .report_data = data};
        cscp_verdict_t v;
        char err[256];
        int r;

        r = cscp_rot_quote(xrot, data, 64, NULL, ret);
        cr_assert_eq(r, 0, "TDX quote: %s", cscp_strerror(r));
        cr_assert_eq(ret->kind, CSCP_ROT_TDX);
        cr_assert_not_null(ret->tdx);
        cr_assert_null(ret->tpm.attest);
        cr_assert_eq(cscp_tdx_quote_parse(ret->tdx, ret->tdx_len, ret_q, err, sizeof(err)), 0, "%s", err);
        cr_assert_arr_eq(ret_q->report_data, data, 64, "REPORTDATA = the caller's 64 bytes");
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_tdx_quote_verify(ret->tdx, ret->tdx_len, &o, &v), 0, "%s", v.error ? v.error : "");
        for (size_t i = 0; i < v.n_claims; i++)
                if (!v.claims[i].pass)
                        cr_log_error("claim %s failed: %s", v.claims[i].name, v.claims[i].detail);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cr_assert(cscp_verdict_find(&v, "tdx-report-data") && cscp_verdict_find(&v, "tdx-report-data")->pass);
        cscp_verdict_clear(&v);
}

Test(rot_tdx, quote_over_64_bytes_verifies)
{
        TPML_PCR_SELECTION sel = {.count = 1};
        cscp_rot_quote_t q = {0}, copy = {0};
        cscp_tdx_quote_t tq;
        uint8_t data[64];

        cr_assert_eq(RAND_bytes(data, sizeof(data)), 1);
        cr_assert_eq(cscp_rot_quote(xrot, data, 32, NULL, &q), -EINVAL, "a TD quote carries 64 bytes");
        cr_assert_null(q.tdx);
        quote_verifies(data, &tq, &q);
        /* a PCR selection is ignored: the same kind of quote */
        sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
        sel.pcrSelections[0].sizeofSelect = 3;
        sel.pcrSelections[0].pcrSelect[0] = 0x01;
        cr_assert_eq(cscp_rot_quote_dup(&q, &copy), 0);
        cr_assert_eq(copy.tdx_len, q.tdx_len);
        cr_assert_arr_eq(copy.tdx, q.tdx, q.tdx_len);
        cscp_rot_quote_clear(&q);
        cr_assert_null(q.tdx);
        cscp_rot_quote_clear(&copy);
        cr_assert_eq(cscp_rot_quote(xrot, data, 64, &sel, &q), 0);
        cr_assert_eq(q.kind, CSCP_ROT_TDX);
        cscp_rot_quote_clear(&q);
}

Test(rot_tdx, extend_pcr15_moves_rtmr2)
{
        cscp_event_digest_t d[2];
        uint8_t before[48], after[48], want[48], r0[48], r0b[48], data[64];
        size_t len = 0;
        cscp_rot_quote_t q = {0};
        cscp_tdx_quote_t tq;

        cr_assert_eq(cscp_rot_read(xrot, 15, TPM2_ALG_SHA384, before, &len), 0);
        cr_assert_eq(len, 48);
        cr_assert_eq(cscp_rot_read(xrot, 1, TPM2_ALG_SHA384, r0, &len), 0, "RTMR0 can be read");
        cr_assert_eq(cscp_rot_read(xrot, 15, TPM2_ALG_SHA256, after, &len), CSCP_E_UNSUPPORTED, "RTMRs are SHA-384");
        /* a SHA-256 digest beside the SHA-384 one is ignored */
        random_digest(TPM2_ALG_SHA256, &d[0]);
        random_digest(TPM2_ALG_SHA384, &d[1]);
        cr_assert_eq(cscp_rot_extend(xrot, 15, d, 2), 0);
        hash_cat(TPM2_ALG_SHA384, before, d[1].digest, 48, want);
        cr_assert_eq(cscp_rot_read(xrot, 15, TPM2_ALG_SHA384, after, &len), 0);
        cr_assert_arr_eq(after, want, 48, "RTMR2 = SHA-384(old || d)");
        {
                uint8_t direct[48];
                cr_assert_eq(cscp_tdx_guest_rtmr_read(
                                     &(cscp_tdx_guest_paths_t){.mr_root = harness_path(edir, "mnt/measurements")}, 2,
                                     direct),
                             0);
                cr_assert_arr_eq(direct, want, 48, "PCR 15 is RTMR2");
        }
        /* PCR 8 is RTMR2 too */
        cr_assert_eq(cscp_rot_read(xrot, 8, TPM2_ALG_SHA384, before, &len), 0);
        cr_assert_arr_eq(before, want, 48);
        /* the next quote holds it */
        cr_assert_eq(RAND_bytes(data, sizeof(data)), 1);
        quote_verifies(data, &tq, &q);
        cr_assert_arr_eq(tq.rtmr[2], want, 48, "the quote's RTMR2");
        cscp_rot_quote_clear(&q);

        /* refused: RTMR0/1 (PCR 1..7), registerless PCRs, no SHA-384 digest; nothing moves */
        cr_assert_eq(cscp_rot_extend(xrot, 1, &d[1], 1), -EPERM);
        cr_assert_eq(cscp_rot_extend(xrot, 7, &d[1], 1), -EPERM);
        cr_assert_eq(cscp_rot_extend(xrot, 4, &d[1], 1), -EPERM);
        cr_assert_eq(cscp_rot_extend(xrot, 0, &d[1], 1), -EINVAL);
        cr_assert_eq(cscp_rot_extend(xrot, 16, &d[1], 1), -EINVAL);
        cr_assert_eq(cscp_rot_extend(xrot, 15, &d[0], 1), -EINVAL, "no SHA-384 digest");
        cr_assert_eq(cscp_rot_read(xrot, 15, TPM2_ALG_SHA384, after, &len), 0);
        cr_assert_arr_eq(after, want, 48, "refused extends changed nothing");
        cr_assert_eq(cscp_rot_read(xrot, 1, TPM2_ALG_SHA384, r0b, &len), 0);
        cr_assert_arr_eq(r0, r0b, 48, "RTMR0 unchanged");
}

Test(rot_tdx, firmware_log_is_the_ccel)
{
        static const char *const stated[3] = {
                "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
                "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
                "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"};
        uint8_t *log = NULL;
        size_t len = 0;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t rp;
        int r;

        if (!harness_fixtures_dir())
                cr_skip_test("../shared/fixtures not found: no CCEL to read");
        r = cscp_rot_firmware_log(xrot, &log, &len);
        cr_assert_eq(r, 0, "CCEL: %s", cscp_strerror(r));
        cr_assert(len >= 18101, "the log area (%zu bytes)", len);
        cscp_replay_init(&rp);
        cr_assert_eq(cscp_eventlog_open_mem(log, len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0)
                cr_assert_eq(cscp_replay_extend(&rp, ev), 0);
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        for (unsigned i = 0; i < 3; i++) {
                uint8_t v[CSCP_EVENT_MAX_DIGEST];
                char hex[2 * 48 + 1];
                size_t vl = 0;

                cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA384, i + 1, v, &vl), 0);
                cscp_hex_encode(v, 48, hex);
                cr_assert_str_eq(hex, stated[i], "RTMR%u replayed from the CCEL", i);
        }
        free(log);
}

/* vtpmd's host log opens the registers only: no configfs-tsm needed, no quote. */
Test(rot_tdx, registers_only)
{
        cscp_rot_config_t cfg = {
                .kind = CSCP_ROT_TDX,
                .registers_only = true,
                .paths = {.tsm_root = harness_path(edir, "no-tsm"), .mr_root = harness_path(edir, "mnt/measurements")}};
        cscp_rot_t *rot = NULL;
        cscp_rot_quote_t q = {0};
        cscp_event_digest_t d;
        uint8_t data[64] = {0}, before[48], after[48], want[48];
        size_t len = 0;

        cr_assert_eq(cscp_rot_open(&cfg, &rot), 0, "the registers are enough");
        cr_assert_eq(cscp_rot_quote(rot, data, 64, NULL, &q), CSCP_E_UNSUPPORTED);
        cr_assert_null(q.tdx);
        cr_assert_eq(cscp_rot_read(rot, 15, TPM2_ALG_SHA384, before, &len), 0);
        random_digest(TPM2_ALG_SHA384, &d);
        cr_assert_eq(cscp_rot_extend(rot, 15, &d, 1), 0);
        hash_cat(TPM2_ALG_SHA384, before, d.digest, 48, want);
        cr_assert_eq(cscp_rot_read(xrot, 15, TPM2_ALG_SHA384, after, &len), 0);
        cr_assert_arr_eq(after, want, 48);
        cscp_rot_free(rot);
        /* the full backend still needs configfs-tsm */
        cfg.registers_only = false;
        cr_assert_eq(cscp_rot_open(&cfg, &rot), CSCP_E_UNSUPPORTED);
        /* and registers_only needs the registers */
        cfg.registers_only = true;
        cfg.paths.mr_root = harness_path(edir, "no-measurements");
        rot = NULL;
        cr_assert_eq(cscp_rot_open(&cfg, &rot), CSCP_E_UNSUPPORTED);
        cr_assert_null(rot);
}

Test(rot_tdx_absent, open_where_there_is_none)
{
        char *d = harness_keep(harness_tmpdir());
        cscp_rot_config_t cfg = {
                .kind = CSCP_ROT_TDX,
                .paths = {.tsm_root = harness_path(d, "no-tsm"), .mr_root = harness_path(d, "no-measurements")}};
        cscp_rot_t *rot = NULL;

        cr_assert_eq(cscp_rot_open(&cfg, &rot), CSCP_E_UNSUPPORTED);
        cr_assert_null(rot);
        cfg.kind = 0;
        cr_assert_eq(cscp_rot_open(&cfg, &rot), -EINVAL);
}
