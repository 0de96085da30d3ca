/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TPM half of vtpmd (vtpmd/manufacture.c, hostlog.c, measure.c) against
 * real swtpm processes -- one for the host TPM, one per vTPM -- each in a
 * fresh temporary directory, with tpm2-tools as the independent reader and
 * as "the container" (owner/endorsement auth empty, no platform secret).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "cscp/pcr.h"
#include "cscp/quote.h"
#include "cscp/tpm.h"
#include "cscp/util.h"
#include "cscp/verdict.h"
#include "harness.h"
#include "vctl.h"
#include "vtpm.h"

#define TOOL_TIMEOUT_MS 30000

static char *dir;
static char *certs;
static harness_swtpm_t host, vt;
static vtpm_identity_t id;
static uint8_t platform_auth[VTPM_PLATFORM_AUTH_LEN];

static void setup(void)
{
        int r;

        dir = harness_tmpdir();
        certs = harness_path(dir, "pki");
        r = harness_mkcerts(certs);
        cr_assert_eq(r, 0, "mkcerts: %s", strerror(-r));
        cr_assert_eq(access(harness_path(certs, "vtpm-ca.pem"), R_OK), 0, "mkcerts made no vtpm-ca.pem");
        cr_assert_eq(access(harness_path(certs, "vtpm-ca-key.pem"), R_OK), 0, "mkcerts made no vtpm-ca-key.pem");
        cr_assert_eq(RAND_bytes(platform_auth, sizeof(platform_auth)), 1);
}

static void teardown(void)
{
        vtpm_identity_clear(&id);
        harness_swtpm_stop(&vt);
        harness_swtpm_stop(&host);
}

TestSuite(vtpm, .init = setup, .fini = teardown, .timeout = 300);

#define assert_ok(expr)                                                            \
        do {                                                                       \
                int r_ = (expr);                                                   \
                cr_assert_geq(r_, 0, "%s: %s (%d)", #expr, cscp_strerror(r_), r_); \
        } while (0)

static double elapsed_ms(const struct timespec *a)
{
        struct timespec b;

        clock_gettime(CLOCK_MONOTONIC, &b);
        return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void start_swtpm(const char *name, harness_swtpm_t *s)
{
        int r = harness_swtpm_start(harness_path(dir, name), s);

        cr_assert_eq(r, 0, "swtpm %s did not start: %s", name, strerror(-r));
}

/* Runs a tpm2-tools command; returns its exit code (output kept in *ret_out when asked). */
static int tool(char *const argv[], char **ret_out)
{
        char *out = NULL, *err = NULL;
        int code = -1, r;

        r = harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err);
        cr_assert_eq(r, 0, "running %s: %s", argv[0], strerror(-r));
        if (ret_out)
                *ret_out = harness_keep(out);
        else
                free(out);
        if (code != 0)
                cr_log_info("%s %s -> %d: %s", argv[0], argv[1] ? argv[1] : "", code, err);
        free(err);
        return code;
}

static char *auth_hex(void)
{
        char hex[2 * VTPM_PLATFORM_AUTH_LEN + 1];
        char *s = NULL;

        cscp_hex_encode(platform_auth, sizeof(platform_auth), hex);
        cr_assert(asprintf(&s, "hex:%s", hex) > 0);
        return harness_keep(s);
}

static void manufacture(harness_swtpm_t *s, cscp_key_alg_t alg, const char *label, double *ret_ms)
{
        vtpm_manufacture_opts_t o = {
                .ek_alg = alg,
                .ca_cert = harness_path(certs, "vtpm-ca.pem"),
                .ca_key = harness_path(certs, "vtpm-ca-key.pem"),
                .serial_label = label,
                .platform_auth = platform_auth,
        };
        struct timespec t0;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = vtpm_manufacture(s->tcti, &o, &id);
        if (r < 0)
                harness_dump_log(&s->proc);
        cr_assert_eq(r, 0, "vtpm_manufacture: %s (%d)", cscp_strerror(r), r);
        *ret_ms = elapsed_ms(&t0);
        fprintf(stderr, "manufacture %s: %.1f ms\n", alg == CSCP_KEY_RSA_2048 ? "RSA-2048" : "ECC P-256", *ret_ms);
}

/* ---- manufacture --------------------------------------------------------------------------- */

static X509 *load_pem_cert(const char *path)
{
        FILE *f = fopen(path, "r");
        X509 *x;

        cr_assert_not_null(f, "%s", path);
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        cr_assert_not_null(x, "%s: not a PEM certificate", path);
        return x;
}

static void check_ek_cert(cscp_key_alg_t alg, const char *label)
{
        const uint8_t *p = id.ek_cert;
        X509 *cert = d2i_X509(NULL, &p, (long)id.ek_cert_len), *ca = load_pem_cert(harness_path(certs, "vtpm-ca.pem"));
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        EVP_PKEY *ek = NULL;
        GENERAL_NAMES *san;
        EXTENDED_KEY_USAGE *eku;
        BASIC_CONSTRAINTS *bc;
        char cn[128];
        uint32_t ku;
        bool tcg_eku = false;

        cr_assert_not_null(cert, "EK certificate does not parse");
        cr_assert_eq(p, id.ek_cert + id.ek_cert_len, "trailing bytes after the EK certificate");
        cr_assert(store && ctx);
        cr_assert_eq(X509_STORE_add_cert(store, ca), 1);
        cr_assert_eq(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
        cr_assert_eq(X509_verify_cert(ctx), 1, "EK certificate does not verify against vtpm-ca.pem: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));

        /* Its key is the EK's. */
        assert_ok(cscp_tpm_public_to_pkey(id.ek_public, id.ek_public_len, &ek));
        cr_assert_eq(EVP_PKEY_eq(X509_get0_pubkey(cert), ek), 1, "certificate key != EK public");
        cr_assert(EVP_PKEY_is_a(ek, alg == CSCP_KEY_RSA_2048 ? "RSA" : "EC"));

        /* Subject, key usage, basic constraints, EKU, SAN. */
        cr_assert_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)), 0);
        cr_assert_str_eq(cn, label);
        ku = X509_get_key_usage(cert);
        cr_assert(ku & (alg == CSCP_KEY_RSA_2048 ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT), "key usage 0x%x", ku);
        cr_assert_eq(ku & KU_KEY_CERT_SIGN, 0);
        bc = X509_get_ext_d2i(cert, NID_basic_constraints, NULL, NULL);
        cr_assert_not_null(bc);
        cr_assert_eq(bc->ca, 0);
        BASIC_CONSTRAINTS_free(bc);
        eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
        cr_assert_not_null(eku);
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
                char oid[64];

                OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
                tcg_eku |= strcmp(oid, "2.23.133.8.1") == 0;
        }
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        cr_assert(tcg_eku, "no tcg-kp-EKCertificate EKU");
        san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        cr_assert_not_null(san);
        cr_assert_eq(sk_GENERAL_NAME_num(san), 1);
        {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(san, 0);
                char oid[64];

                cr_assert_eq(g->type, GEN_DIRNAME);
                cr_assert_eq(X509_NAME_entry_count(g->d.directoryName), 3);
                OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(X509_NAME_get_entry(g->d.directoryName, 0)),
                            1);
                cr_assert_str_eq(oid, "2.23.133.2.1");
        }
        GENERAL_NAMES_free(san);

        EVP_PKEY_free(ek);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(ca);
        X509_free(cert);
}

/* tpm2_nvread of the EK certificate index (owner auth, empty, as the container would) gives the DER. */
static void check_nv_cert(harness_swtpm_t *s, uint32_t index)
{
        char idx[16], *out = harness_path(dir, "nv.der");
        uint8_t *data;
        size_t len;

        snprintf(idx, sizeof(idx), "0x%08x", (unsigned)index);
        {
                char *argv[] = {"tpm2_nvread", "-T", s->tcti, "-C", "o", "-o", out, idx, NULL};
                cr_assert_eq(tool(argv, NULL), 0, "tpm2_nvread %s failed", idx);
        }
        assert_ok(cscp_file_read(out, 1 << 16, &data, &len));
        cr_assert_eq(len, id.ek_cert_len);
        cr_assert_arr_eq(data, id.ek_cert, len);
        free(data);
        /* Not writable by the container, nor removable. */
        {
                char *argv[] = {"tpm2_nvwrite", "-T", s->tcti, "-C", "o", "-i", out, idx, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "the container rewrote the EK certificate");
        }
        {
                char *argv[] = {"tpm2_nvundefine", "-T", s->tcti, "-C", "o", idx, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "the container undefined the EK certificate index");
        }
}

/* The EK persisted at its TCG handle is the one in the identity. */
static void check_ek_persistent(harness_swtpm_t *s, uint32_t handle)
{
        char h[16], *out = harness_path(dir, "ek.pub");
        uint8_t *data;
        size_t len;

        snprintf(h, sizeof(h), "0x%08x", (unsigned)handle);
        {
                char *argv[] = {"tpm2_readpublic", "-T", s->tcti, "-c", h, "-o", out, NULL};
                cr_assert_eq(tool(argv, NULL), 0);
        }
        assert_ok(cscp_file_read(out, 1 << 16, &data, &len));
        cr_assert_eq(len, id.ek_public_len + 2, "TPM2B_PUBLIC of %zu bytes", len);
        cr_assert_arr_eq(data + 2, id.ek_public, id.ek_public_len);
        free(data);
}

static void check_quote(harness_swtpm_t *s)
{
        TPML_PCR_SELECTION sel;
        cscp_tpm_quote_t q = {0};
        cscp_verdict_t v;
        uint8_t nonce[32];
        cscp_quote_opts_t opts = {.nonce = nonce, .nonce_len = sizeof(nonce)};
        cscp_quote_t cq;
        const cscp_claim_t *c;

        cr_assert_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
        assert_ok(cscp_pcrsel_parse("sha256:0,11,12", &sel));
        assert_ok(vtpm_quote(s->tcti, &id, nonce, sizeof(nonce), &sel, &q));
        cq = (cscp_quote_t){.attest = q.attest,
                            .attest_len = q.attest_len,
                            .sig = q.sig,
                            .sig_len = q.sig_len,
                            .ak_public = id.ak_public,
                            .ak_public_len = id.ak_public_len,
                            .pcrs = q.pcrs,
                            .n_pcrs = q.n_pcrs};
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_quote_verify(&cq, &opts, &v), 0);
        if (cscp_verdict_result(&v) != CSCP_VERDICT_TRUSTED)
                cscp_verdict_print(&v, stderr);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        c = cscp_verdict_find(&v, "ak-attributes");
        cr_assert(c && c->pass);
        cscp_verdict_clear(&v);
        cscp_tpm_quote_clear(&q);
}

/* What the container (owner/endorsement/lockout auth empty, no platform secret) cannot do. */
static void check_container_powerless(harness_swtpm_t *s)
{
        char ak[16];

        snprintf(ak, sizeof(ak), "0x%08x", (unsigned)id.ak_handle);
        {
                char *argv[] = {"tpm2_evictcontrol", "-T", s->tcti, "-C", "o", "-c", ak, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "owner evicted the platform-persistent AK");
        }
        {
                char *argv[] = {"tpm2_evictcontrol", "-T", s->tcti, "-C", "p", "-c", ak, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "platform eviction without the platform secret");
        }
        {
                char *argv[] = {"tpm2_clear", "-T", s->tcti, "-c", "p", NULL};
                cr_assert_neq(tool(argv, NULL), 0, "TPM2_Clear with platform auth but no secret");
        }
        {
                char *argv[] = {"tpm2_clear", "-T", s->tcti, "-c", "l", NULL};
                cr_assert_neq(tool(argv, NULL), 0, "TPM2_Clear with lockout auth (disableClear is set)");
        }
        {
                char *argv[] = {"tpm2_changeauth", "-T", s->tcti, "-c", "p", "newsecret", NULL};
                cr_assert_neq(tool(argv, NULL), 0, "changed the platform auth without the secret");
        }
        /* The AK is still there and still quotes. */
        check_quote(s);
        /* Control: with the platform secret the same eviction works (the refusals were about auth). */
        {
                char *argv[] = {"tpm2_evictcontrol", "-T", s->tcti, "-C", "p", "-P", auth_hex(), "-c", ak, NULL};
                cr_assert_eq(tool(argv, NULL), 0, "platform could not evict the AK with its secret");
        }
}

static void manufacture_all(cscp_key_alg_t alg)
{
        const char *label = alg == CSCP_KEY_RSA_2048 ? "ctr-rsa-0001" : "ctr-ecc-0001";
        double ms;

        start_swtpm(alg == CSCP_KEY_RSA_2048 ? "vtpm-rsa" : "vtpm-ecc", &vt);
        manufacture(&vt, alg, label, &ms);
        cr_log_info("manufacture %s: %.1f ms", label, ms);
        cr_assert_eq(id.ek_alg, alg);
        cr_assert_eq(id.ak_handle, VTPM_AK_HANDLE);
        cr_assert_gt(id.ak_name_len, 2);
        check_ek_cert(alg, label);
        check_ek_persistent(&vt, alg == CSCP_KEY_RSA_2048 ? VTPM_EK_HANDLE_RSA : VTPM_EK_HANDLE_ECC);
        check_nv_cert(&vt, alg == CSCP_KEY_RSA_2048 ? VTPM_EK_CERT_NV_RSA : VTPM_EK_CERT_NV_ECC);
        check_quote(&vt);
        check_container_powerless(&vt);
}

Test(vtpm, manufacture_ecc)
{
        manufacture_all(CSCP_KEY_ECC_P256);
}

Test(vtpm, manufacture_rsa)
{
        manufacture_all(CSCP_KEY_RSA_2048);
}

Test(vtpm, manufacture_timing)
{
        /* Several fresh vTPMs per algorithm: what a warm pool pays per instance. */
        for (int a = 0; a < 2; a++) {
                cscp_key_alg_t alg = a ? CSCP_KEY_RSA_2048 : CSCP_KEY_ECC_P256;
                double sum = 0, ms, min = 1e9, max = 0;

                for (int i = 0; i < 3; i++) {
                        char name[32];

                        snprintf(name, sizeof(name), "vtpm-t%d-%d", a, i);
                        start_swtpm(name, &vt);
                        manufacture(&vt, alg, name, &ms);
                        vtpm_identity_clear(&id);
                        harness_swtpm_stop(&vt);
                        sum += ms;
                        min = ms < min ? ms : min;
                        max = ms > max ? ms : max;
                }
                fprintf(stderr, "manufacture %s: mean %.1f ms (min %.1f, max %.1f) over 3 vTPMs\n",
                        a ? "RSA-2048" : "ECC P-256", sum / 3, min, max);
        }
}

Test(vtpm, manufacture_twice_refused)
{
        vtpm_manufacture_opts_t o = {
                .ek_alg = CSCP_KEY_ECC_P256,
                .ca_cert = harness_path(certs, "vtpm-ca.pem"),
                .ca_key = harness_path(certs, "vtpm-ca-key.pem"),
                .serial_label = "again",
                .platform_auth = platform_auth,
        };
        vtpm_identity_t id2 = {0};
        double ms;

        start_swtpm("vtpm", &vt);
        manufacture(&vt, CSCP_KEY_ECC_P256, "first", &ms);
        cr_assert_eq(vtpm_manufacture(vt.tcti, &o, &id2), CSCP_E_STATE);
        /* A CA key that does not belong to the CA certificate is refused before the TPM is touched. */
        o.ca_key = harness_path(certs, "ca-key.pem");
        cr_assert_eq(vtpm_manufacture(vt.tcti, &o, &id2), -EINVAL);
}

/* Is the platform auth `auth` ("" = empty)? ClearControl(platform, set) is a no-op on a manufactured vTPM. */
static bool platform_auth_is(harness_swtpm_t *s, const char *auth)
{
        char *argv[] = {"tpm2_clearcontrol", "-T", s->tcti, "-C", "p", "-P", (char *)auth, "s", NULL};

        return tool(argv, NULL) == 0;
}

Test(vtpm, platform_auth_after_restart)
{
        char ak[16], nv[16];
        uint8_t wrong[VTPM_PLATFORM_AUTH_LEN];
        double ms;

        start_swtpm("vtpm", &vt);
        manufacture(&vt, CSCP_KEY_ECC_P256, "restarted", &ms);
        snprintf(ak, sizeof(ak), "0x%08x", (unsigned)id.ak_handle);
        snprintf(nv, sizeof(nv), "0x%08x", (unsigned)VTPM_EK_CERT_NV_ECC);
        /* Manufactured: ours already, nothing to do; any other auth is refused as a foreign state. */
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, platform_auth), 0);
        cr_assert_eq(RAND_bytes(wrong, sizeof(wrong)), 1);
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, wrong), CSCP_E_STATE);
        cr_assert(platform_auth_is(&vt, auth_hex()));

        /* swtpm dies (state on disk) and comes back with TPM2_Startup(CLEAR): the platform auth is empty. */
        cr_assert_eq(kill(vt.proc.pid, SIGKILL), 0);
        harness_swtpm_stop(&vt);
        start_swtpm("vtpm", &vt);
        cr_assert(platform_auth_is(&vt, ""), "expected an empty platform auth after Startup(CLEAR)");
        /* disableClear is NV state: it survived the restart, so the lockout hierarchy still cannot clear. */
        {
                char *argv[] = {"tpm2_clear", "-T", vt.tcti, "-c", "l", NULL};
                cr_assert_neq(tool(argv, NULL), 0, "TPM2_Clear worked after a restart: disableClear was lost");
        }

        /* The hole closed: set again, then the container (empty auth) cannot use the platform hierarchy. */
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, platform_auth), 1);
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, platform_auth), 0, "not idempotent");
        cr_assert_not(platform_auth_is(&vt, ""));
        cr_assert(platform_auth_is(&vt, auth_hex()));
        {
                char *argv[] = {"tpm2_evictcontrol", "-T", vt.tcti, "-C", "p", "-c", ak, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "the container evicted the AK after a restart");
        }
        {
                char *data = harness_path(dir, "junk.bin");
                FILE *f = fopen(data, "w");
                cr_assert(f && fputs("not a certificate", f) >= 0 && fclose(f) == 0);
                char *argv[] = {"tpm2_nvwrite", "-T", vt.tcti, "-C", "p", "-i", data, nv, NULL};
                cr_assert_neq(tool(argv, NULL), 0, "the container rewrote the EK certificate after a restart");
        }
        check_nv_cert(&vt, VTPM_EK_CERT_NV_ECC);
        check_quote(&vt);

        /* Someone took the platform hierarchy while it was open: refused, not papered over. */
        cr_assert_eq(kill(vt.proc.pid, SIGKILL), 0);
        harness_swtpm_stop(&vt);
        start_swtpm("vtpm", &vt);
        {
                char *argv[] = {"tpm2_changeauth", "-T", vt.tcti, "-c", "p", "stolen", NULL};
                cr_assert_eq(tool(argv, NULL), 0);
        }
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, platform_auth), CSCP_E_STATE);
        /* ...and so is a disabled platform hierarchy (HierarchyControl(phEnable=NO) with the empty auth). */
        cr_assert_eq(kill(vt.proc.pid, SIGKILL), 0);
        harness_swtpm_stop(&vt);
        start_swtpm("vtpm", &vt);
        {
                char *argv[] = {"tpm2_hierarchycontrol", "-T", vt.tcti, "-C", "p", "phEnable", "clear", NULL};
                cr_assert_eq(tool(argv, NULL), 0);
        }
        cr_assert_eq(vtpm_platform_auth_set(vt.tcti, platform_auth), CSCP_E_STATE);
}

/* ---- identity file -------------------------------------------------------------------------- */

Test(vtpm, identity_save_load)
{
        char *path = harness_path(dir, "identity");
        vtpm_identity_t back = {0};
        uint8_t *file;
        size_t len;
        struct stat st;
        double ms;

        start_swtpm("vtpm", &vt);
        manufacture(&vt, CSCP_KEY_ECC_P256, "idfile", &ms);
        assert_ok(vtpm_identity_save(&id, path));
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600);
        assert_ok(vtpm_identity_load(path, &back));
        cr_assert_eq(back.ek_alg, id.ek_alg);
        cr_assert_eq(back.ek_public_len, id.ek_public_len);
        cr_assert_arr_eq(back.ek_public, id.ek_public, id.ek_public_len);
        cr_assert_arr_eq(back.ek_sha256, id.ek_sha256, 32);
        cr_assert_eq(back.ek_cert_len, id.ek_cert_len);
        cr_assert_arr_eq(back.ek_cert, id.ek_cert, id.ek_cert_len);
        cr_assert_eq(back.ak_handle, id.ak_handle);
        cr_assert_eq(back.ak_public_len, id.ak_public_len);
        cr_assert_arr_eq(back.ak_public, id.ak_public, id.ak_public_len);
        cr_assert_eq(back.ak_name_len, id.ak_name_len);
        cr_assert_arr_eq(back.ak_name, id.ak_name, id.ak_name_len);
        vtpm_identity_clear(&back);

        /* A loaded identity quotes like the original. */
        assert_ok(cscp_file_read(path, 1 << 16, &file, &len));
        {
                vtpm_identity_t tmp = id;

                assert_ok(vtpm_identity_load(path, &id));
                check_quote(&vt);
                vtpm_identity_clear(&tmp);
        }

        /* Every single-byte change, truncation and extension is refused. */
        for (size_t off = 0; off < len; off += 7) {
                file[off] ^= 0x01;
                assert_ok(cscp_file_write_atomic(path, file, len, 0600));
                cr_assert_eq(vtpm_identity_load(path, &back), CSCP_E_STATE, "flip at byte %zu accepted", off);
                file[off] ^= 0x01;
        }
        assert_ok(cscp_file_write_atomic(path, file, len - 1, 0600));
        cr_assert_eq(vtpm_identity_load(path, &back), CSCP_E_STATE);
        file = realloc(file, len + 1);
        cr_assert_not_null(file);
        file[len] = 0;
        assert_ok(cscp_file_write_atomic(path, file, len + 1, 0600));
        cr_assert_eq(vtpm_identity_load(path, &back), CSCP_E_STATE);
        assert_ok(cscp_file_write_atomic(path, "", 0, 0600));
        cr_assert_eq(vtpm_identity_load(path, &back), CSCP_E_STATE);
        cr_assert_eq(vtpm_identity_load(harness_path(dir, "none"), &back), -ENOENT);
        free(file);
}

/* ---- logs and PCRs -------------------------------------------------------------------------- */

/* tpm2_pcrread of one PCR of one bank. */
static void pcrread(const char *tcti, const char *bank, unsigned pcr, uint8_t *out, size_t *ret_len)
{
        char sel[32], key[16], *text, *p;

        snprintf(sel, sizeof(sel), "%s:%u", bank, pcr);
        {
                char *argv[] = {"tpm2_pcrread", "-T", (char *)tcti, sel, NULL};
                cr_assert_eq(tool(argv, &text), 0);
        }
        snprintf(key, sizeof(key), "%u: 0x", pcr);
        p = strstr(text, key);
        cr_assert_not_null(p, "no PCR %u in: %s", pcr, text);
        p += strlen(key);
        *strchrnul(p, '\n') = '\0';
        for (char *c = p; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char)(*c - 'A' + 'a');
        assert_ok(cscp_hex_decode(p, out, 64, ret_len));
}

/* Replays a CEL-TLV log with libcscp's parser. */
static cscp_replay_t *replay_log(const char *path)
{
        cscp_replay_t *rp = harness_keep(malloc(sizeof(*rp)));
        cscp_eventlog_t *l;
        const cscp_event_t *ev;
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        cr_assert_geq(fd, 0, "%s", path);
        cscp_replay_init(rp);
        assert_ok(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l));
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cr_assert_eq(ev->type, CSCP_CEL_CM_TLV);
                assert_ok(cscp_replay_extend(rp, ev));
        }
        cr_assert_eq(r, 0, "%s: %s", path, cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        close(fd);
        return rp;
}

static void assert_pcr_is_replay(const char *tcti, const char *log, const char *bank, unsigned pcr)
{
        uint8_t tpm[64], want[64];
        size_t tlen = 0, wlen = 0;
        cscp_replay_t *rp = replay_log(log);

        pcrread(tcti, bank, pcr, tpm, &tlen);
        assert_ok(cscp_replay_pcr(rp, cscp_hash_alg_from_name(bank), pcr, want, &wlen));
        cr_assert_eq(tlen, wlen);
        cr_assert_arr_eq(tpm, want, tlen, "%s PCR %u differs from the replay of %s", bank, pcr, log);
}

static const uint16_t host_banks[] = {TPM2_ALG_SHA256, TPM2_ALG_SHA1, 0};

static void bind_record(hostlog_t *h, const char *event, const char *ctr, bool extend)
{
        uint8_t vek[32], vak[34];
        cscp_cm_field_value_t f[] = {
                {CSCP_CM_F_EVENT, event, strlen(event)},
                {CSCP_CM_F_CONTAINER_ID, ctr, strlen(ctr)},
                {CSCP_CM_F_VEK_SHA256, vek, sizeof(vek)},
                {CSCP_CM_F_VAK_NAME, vak, sizeof(vak)},
        };

        memset(vek, 0xab, sizeof(vek));
        memset(vak, 0xcd, sizeof(vak));
        vak[0] = 0x00, vak[1] = 0x0b;
        if (extend)
                assert_ok(hostlog_append(h, CSCP_CM_CONTAINER, f, 4));
        else
                assert_ok(hostlog_append_no_extend(h, CSCP_CM_CONTAINER, f, 4));
}

static hostlog_t *open_hostlog(const char *log)
{
        hostlog_t *h = NULL;
        char msg[1024] = "";
        int r = hostlog_open(log, host.tcti, 15, host_banks, &h, msg, sizeof(msg));

        cr_assert_eq(r, 0, "hostlog_open: %s: %s", cscp_strerror(r), msg);
        return h;
}

Test(vtpm, hostlog_append_matches_pcr)
{
        char *log = harness_path(dir, "host.cel");
        hostlog_t *h;

        start_swtpm("host", &host);
        h = open_hostlog(log);
        bind_record(h, "vtpm-bind", "ctr-a", true);
        bind_record(h, "vtpm-bind", "ctr-b", true);
        bind_record(h, "vtpm-destroy", "ctr-a", true);
        bind_record(h, "vtpm-bind", "ctr-c", true);
        hostlog_close(h);
        assert_pcr_is_replay(host.tcti, log, "sha256", 15);
        assert_pcr_is_replay(host.tcti, log, "sha1", 15);
        /* Reopen: consistent, appends continue. */
        h = open_hostlog(log);
        bind_record(h, "vtpm-destroy", "ctr-b", true);
        hostlog_close(h);
        assert_pcr_is_replay(host.tcti, log, "sha256", 15);
}

Test(vtpm, hostlog_crash_between_fsync_and_extend)
{
        char *log = harness_path(dir, "host.cel");
        uint8_t before[64], after[64];
        size_t lb = 0, la = 0;
        hostlog_t *h;

        start_swtpm("host", &host);
        h = open_hostlog(log);
        bind_record(h, "vtpm-bind", "ctr-a", true);
        bind_record(h, "vtpm-bind", "ctr-b", false); /* logged, then "crash" */
        cr_assert_eq(hostlog_append(h, CSCP_CM_CONTAINER, NULL, 0), CSCP_E_STATE, "appended after a crash");
        hostlog_close(h);
        pcrread(host.tcti, "sha256", 15, before, &lb);

        h = open_hostlog(log); /* reconciles: extends the last record */
        pcrread(host.tcti, "sha256", 15, after, &la);
        cr_assert(lb != la || memcmp(before, after, lb) != 0, "PCR did not move");
        assert_pcr_is_replay(host.tcti, log, "sha256", 15);
        assert_pcr_is_replay(host.tcti, log, "sha1", 15);
        bind_record(h, "vtpm-destroy", "ctr-a", true);
        hostlog_close(h);
        assert_pcr_is_replay(host.tcti, log, "sha256", 15);
}

Test(vtpm, hostlog_torn_tail_cut)
{
        char *log = harness_path(dir, "host.cel");
        uint8_t *data;
        size_t len, len2;
        hostlog_t *h;

        start_swtpm("host", &host);
        h = open_hostlog(log);
        bind_record(h, "vtpm-bind", "ctr-a", true);
        bind_record(h, "vtpm-bind", "ctr-b", true);
        hostlog_close(h);
        assert_ok(cscp_file_read(log, 1 << 20, &data, &len));
        /* A crash in the middle of writing a third record: its first 20 bytes (a copy of the first record's). */
        {
                uint8_t *torn = malloc(len + 20);

                cr_assert_not_null(torn);
                memcpy(torn, data, len);
                memcpy(torn + len, data, 20);
                assert_ok(cscp_file_write_atomic(log, torn, len + 20, 0600));
                free(torn);
        }
        h = open_hostlog(log);
        hostlog_close(h);
        free(data);
        assert_ok(cscp_file_read(log, 1 << 20, &data, &len2));
        cr_assert_eq(len2, len, "the torn tail was not cut");
        free(data);
        assert_pcr_is_replay(host.tcti, log, "sha256", 15);
}

static void expect_state(const char *log, const char *what)
{
        hostlog_t *h = NULL;
        char msg[1024] = "";
        int r = hostlog_open(log, host.tcti, 15, host_banks, &h, msg, sizeof(msg));

        cr_assert_eq(r, CSCP_E_STATE, "%s: hostlog_open gave %s", what, cscp_strerror(r));
        cr_assert_null(h);
        cr_log_info("%s: %s", what, msg);
        fprintf(stderr, "%s -> %s\n", what, msg);
        cr_assert_not_null(strstr(msg, "PCR 15"), "message does not name the PCR: %s", msg);
}

Test(vtpm, hostlog_edited_refused)
{
        char *log = harness_path(dir, "host.cel");
        uint8_t *data;
        size_t len;
        hostlog_t *h;

        start_swtpm("host", &host);
        h = open_hostlog(log);
        bind_record(h, "vtpm-bind", "ctr-a", true);
        bind_record(h, "vtpm-bind", "ctr-b", true);
        hostlog_close(h);
        assert_ok(cscp_file_read(log, 1 << 20, &data, &len));

        /* One digest byte of the first record changed. */
        data[40] ^= 0x5a;
        assert_ok(cscp_file_write_atomic(log, data, len, 0600));
        expect_state(log, "edited digest");
        data[40] ^= 0x5a;

        /* The original is fine again. */
        assert_ok(cscp_file_write_atomic(log, data, len, 0600));
        h = open_hostlog(log);
        hostlog_close(h);

        /* A log with nothing in it against a PCR that moved. */
        assert_ok(cscp_file_write_atomic(log, "", 0, 0600));
        expect_state(log, "emptied log");

        /* Host reboot: the PCR is reset, the log is from the earlier boot. */
        assert_ok(cscp_file_write_atomic(log, data, len, 0600));
        harness_swtpm_stop(&host);
        start_swtpm("host", &host);
        expect_state(log, "log from an earlier boot");
        free(data);
}

Test(vtpm, measure_create_and_reextend)
{
        char *log = harness_path(dir, "ctr.cel");
        const char *args[] = {"/bin/sh", "-c", "echo hello"};
        const char *env[] = {"PATH=/usr/bin:/bin", "SERVICE_PORT=8080", "EMPTY="};
        const char *layers[] = {"sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                "sha256:2222222222222222222222222222222222222222222222222222222222222222"};
        vtpm_create_measurements_t m = {
                .container_id = "ctr-measure",
                .runtime_name = "runc",
                .runtime_version = "1.1.12",
                .config_digest = "sha256:3333333333333333333333333333333333333333333333333333333333333333",
                .args = args,
                .n_args = 3,
                .env = env,
                .n_env = 3,
                .layers = layers,
                .n_layers = 2,
                .image_name = "docker.io/library/alpine:3.19",
        };
        cscp_cm_field_value_t start[] = {{CSCP_CM_F_EVENT, "start", 5}, {CSCP_CM_F_CONTAINER_ID, "ctr-measure", 11}};
        struct timespec t0;

        start_swtpm("vtpm", &vt);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_ok(vtpm_measure_create(vt.tcti, log, &m));
        fprintf(stderr, "vtpm_measure_create (%d records): %.1f ms\n", 3 + 3 + 2 + 2, elapsed_ms(&t0));
        assert_ok(vtpm_measure(vt.tcti, log, 11, CSCP_CM_CONTAINER, start, 2));
        assert_pcr_is_replay(vt.tcti, log, "sha256", 11);
        assert_pcr_is_replay(vt.tcti, log, "sha256", 12);

        /* vTPM restart: PCRs back to zero, then re-extended from the log. */
        {
                uint8_t v[64], zero[64] = {0};
                size_t len = 0;

                harness_swtpm_stop(&vt);
                start_swtpm("vtpm", &vt);
                pcrread(vt.tcti, "sha256", 11, v, &len);
                cr_assert_arr_eq(v, zero, len, "PCR 11 not reset by the restart");
        }
        assert_ok(vtpm_log_reextend(vt.tcti, log));
        assert_pcr_is_replay(vt.tcti, log, "sha256", 11);
        assert_pcr_is_replay(vt.tcti, log, "sha256", 12);
        /* Twice is harmless (already replayed), and a PCR moved by someone else is refused. */
        assert_ok(vtpm_log_reextend(vt.tcti, log));
        assert_pcr_is_replay(vt.tcti, log, "sha256", 11);
        {
                char *argv[] = {"tpm2_pcrextend", "-T", vt.tcti,
                                "11:sha256=0000000000000000000000000000000000000000000000000000000000000001", NULL};
                cr_assert_eq(tool(argv, NULL), 0);
        }
        cr_assert_eq(vtpm_log_reextend(vt.tcti, log), CSCP_E_STATE);
}

Test(vtpm, measure_limits)
{
        char *log = harness_path(dir, "ctr.cel");
        vtpm_create_measurements_t m = {.container_id = "c"};
        char *big = malloc(VTPM_LOG_MAX_CONTENT + 2);
        const char *args[1];

        cr_assert_not_null(big);
        memset(big, 'x', VTPM_LOG_MAX_CONTENT + 1);
        big[VTPM_LOG_MAX_CONTENT + 1] = '\0';
        args[0] = big;
        m.args = args;
        m.n_args = 1;
        start_swtpm("vtpm", &vt);
        cr_assert_eq(vtpm_measure_create(vt.tcti, log, &m), CSCP_E_TOO_BIG);
        m.n_args = 100000;
        cr_assert_eq(vtpm_measure_create(vt.tcti, log, &m), CSCP_E_TOO_BIG);
        cr_assert_eq(vtpm_measure(vt.tcti, log, 24, CSCP_CM_CONTAINER, NULL, 0), CSCP_E_PCRSEL);
        cr_assert_eq(access(log, F_OK), -1, "a refused measurement created the log");
        free(big);
}

/* ---- vtpmd: the container log a QuoteReply carries ----------------------------------------- */

/* vtpmd/control.c: at most QUOTE_LOG_MAX bytes of records per QuoteReply, at most QUOTE_LOG_FILE_MAX bytes of log file
 * read. */
#define QUOTE_LOG_MAX      (16u * 1024 * 1024)
#define QUOTE_LOG_FILE_MAX (64u * 1024 * 1024)
/* One bulk record's value: big (few records to write and parse), but a record vtpmd itself accepts. */
#define BULK_VALUE (VTPM_LOG_MAX_CONTENT - 1024)

static harness_proc_t qvd;
static char *qstate;

/* After a failed assertion: vtpmd and the vTPMs it started (--stop-instances stops them on a clean exit). */
static void vtpmd_down(void)
{
        if (qvd.pid > 0)
                (void)harness_stop(&qvd, SIGKILL, 5000);
        harness_kill_swtpms(qstate, NULL);
}

/* The container log's bytes, and its number of whole records, its last record's PCR and digest banks. */
static uint8_t *read_log(const char *path, size_t *ret_len, uint64_t *ret_count, uint32_t *ret_pcr, uint16_t *banks)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        assert_ok(cscp_file_read(path, 2u * QUOTE_LOG_FILE_MAX, &buf, &len));
        assert_ok(cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l));
        *ret_count = 0;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                *ret_count = ev->index + 1;
                if (ret_pcr)
                        *ret_pcr = ev->pcr;
                if (banks) {
                        for (size_t i = 0; i < ev->n_digests; i++)
                                banks[i] = ev->digests[i].alg;
                        banks[ev->n_digests] = 0;
                }
        }
        cr_assert_eq(r, 0, "%s: %s", path, cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        *ret_len = len;
        return buf;
}

/*
 * Appends n CM_TLV records of BULK_VALUE bytes to a container log, numbered on from its last record, for the PCR and
 * banks of that record, in one write per record under the flock vtpmd's own writers take (vtpmd/measure.c). Returns
 * the log's record count after.
 */
static uint64_t append_bulk(const char *path, size_t n)
{
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1] = {0};
        uint8_t *value = malloc(BULK_VALUE), *old;
        uint64_t count = 0;
        uint32_t pcr = 0;
        size_t len = 0;
        int fd;

        cr_assert_not_null(value);
        old = read_log(path, &len, &count, &pcr, banks);
        free(old);
        cr_assert_gt(count, 0, "%s: no record to continue from", path);
        memset(value, 'b', BULK_VALUE);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(flock(fd, LOCK_EX), 0, "flock %s: %s", path, strerror(errno));
        for (size_t i = 0; i < n; i++, count++) {
                cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, "bulk", 4}, {CSCP_CM_F_VALUE, value, BULK_VALUE}};
                cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
                uint8_t *content = NULL, *rec = NULL;
                size_t nd = 0, cl = 0, rl = 0, done = 0;

                memcpy(value, &count, sizeof(count)); /* every record differs */
                assert_ok(cscp_cm_encode(CSCP_CM_CONTAINER, f, 2, &content, &cl));
                assert_ok(cscp_cm_digests(content, cl, banks, d, &nd));
                assert_ok(cscp_cel_tlv_encode(count, pcr, false, d, nd, CSCP_CEL_CM_TLV, content, cl, &rec, &rl));
                while (done < rl) {
                        ssize_t w = write(fd, rec + done, rl - done);

                        cr_assert(w > 0 || errno == EINTR, "write %s: %s", path, strerror(errno));
                        if (w > 0)
                                done += (size_t)w;
                }
                free(content);
                free(rec);
        }
        close(fd);
        free(value);
        return count;
}

static Vtpmd__VtpmResponse *quote_log(const char *sock, const char *ctr, bool want_log, uint64_t from)
{
        static const uint8_t nonce[] = "quote-log-limits";
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Quote q = VTPMD__QUOTE__INIT;
        Cscp__PcrSelection sel = CSCP__PCR_SELECTION__INIT, *psel = &sel;
        uint32_t pcrs[1] = {11};

        sel.hash_alg = TPM2_ALG_SHA256;
        sel.pcrs = pcrs;
        sel.n_pcrs = 1;
        q.container_id = (char *)ctr;
        q.nonce = (ProtobufCBinaryData){.data = (uint8_t *)nonce, .len = sizeof(nonce) - 1};
        q.pcrs = &psel;
        q.n_pcrs = 1;
        q.want_log = want_log;
        q.log_offset = from;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
        req.quote = &q;
        return vctl_call(sock, &qvd, &req);
}

static void assert_quote_error(Vtpmd__VtpmResponse *resp, Vtpmd__ErrorCode code, const char *needle, const char *what)
{
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_ERROR, "%s: answered with a %s, not an error", what,
                     resp->body_case == VTPMD__VTPM_RESPONSE__BODY_QUOTE ? "QuoteReply" : "other body");
        cr_assert_eq(resp->error->code, code, "%s: %s (%s), not %s", what, vtpmd_error_code_name(resp->error->code),
                     resp->error->message, vtpmd_error_code_name(code));
        cr_assert_not_null(strstr(resp->error->message, needle), "%s: the message does not say \"%s\": %s", what,
                           needle, resp->error->message);
}

/*
 * Quote with want_log on a container log larger than a QuoteReply may carry (16 MiB): from record 0 ERR_TOO_LARGE
 * telling to ask from a later offset; from a later record the rest, whole records, with that log_offset; a log file
 * over what vtpmd reads (64 MiB): ERR_TOO_LARGE naming the limit; vtpmd keeps serving the instance.
 *
 * The log is grown by appending valid CEL-TLV records to the instance's log file while vtpmd runs, not by Measure
 * calls (hundreds of 256 KiB Measure requests would take far longer than this test may). vtpmd keeps no offset or
 * record count of a container log in memory: every Measure opens it, takes the flock (taken here too) and scans it
 * for the next record number (vtpmd/measure.c log_open_locked), and Quote reads the whole file afresh
 * (vtpmd/control.c quote_read_log). The appended records are not extended into the vTPM, so the log no longer
 * replays to the quoted PCRs: acceptable here, the test is about the size limits of the quote path, not PCR
 * consistency (which measure_create_and_reextend and test-vtpmd cover).
 */
Test(vtpm, quote_log_limits, .fini = vtpmd_down)
{
        char *run = harness_path(dir, "run"), *ready = harness_path(dir, "vtpmd.ready"),
             *sock = harness_path(run, "vtpmd.sock"), *path;
        Vtpmd__VtpmResponse *resp;
        uint64_t n0, n1, n2, from, count = 0;
        size_t len = 0, start = 0, slen = 0;
        uint8_t *file;
        struct stat st;
        int r, status;

        qstate = harness_path(dir, "state");
        start_swtpm("host", &host);
        r = vctl_vtpmd_spawn(vctl_vtpmd_argv(host.tcti, qstate, run, certs, ready, NULL),
                             harness_path(dir, "vtpmd.log"), ready, 30000, &qvd);
        cr_assert_eq(r, 0, "vtpmd did not start: %s", strerror(-r));
        resp = vctl_create_ok(sock, &qvd, "biglog", NULL);
        path = harness_keep(strdup(resp->created->instance->log));
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* Over 16 MiB from record 0, under it from record n0 + 16 on (56 records of about 255 KiB: 14 MiB). */
        file = read_log(path, &len, &n0, NULL, NULL);
        free(file);
        n1 = append_bulk(path, 72);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_gt(st.st_size, QUOTE_LOG_MAX);
        resp = quote_log(sock, "biglog", true, 0);
        assert_quote_error(resp, VTPMD__ERROR_CODE__ERR_TOO_LARGE, "ask from a later offset",
                           "Quote with the log from record 0 of a log over 16 MiB");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        from = n0 + 16;
        resp = quote_log(sock, "biglog", true, from);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_QUOTE, "Quote with the log from record %llu: %s",
                     (unsigned long long)from,
                     resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "not a QuoteReply");
        cr_assert_eq(resp->quote->log_offset, from);
        cr_assert_gt(resp->quote->quote->attest.len, 0, "no quote beside the log");
        cr_assert_leq(resp->quote->log.len, QUOTE_LOG_MAX);
        /* Whole records: exactly the file's records from `from` to the end, and they parse on their own. */
        file = read_log(path, &len, &count, NULL, NULL);
        assert_ok(cscp_eventlog_slice(file, len, CSCP_EVENTLOG_CEL_TLV, from, 0, &start, &slen, &count));
        cr_assert_eq(count, n1 - from);
        cr_assert_eq(resp->quote->log.len, slen, "log of %zu bytes from record %llu, the file holds %zu",
                     resp->quote->log.len, (unsigned long long)from, slen);
        cr_assert_arr_eq(resp->quote->log.data, file + start, slen, "the log sent differs from the file's records");
        free(file);
        {
                cscp_eventlog_opts_t o = {.first_index = from};
                cscp_eventlog_t *l = NULL;
                const cscp_event_t *ev;
                uint64_t next = from;

                assert_ok(cscp_eventlog_open_mem(resp->quote->log.data, resp->quote->log.len, CSCP_EVENTLOG_CEL_TLV, &o,
                                                 NULL, &l));
                while ((r = cscp_eventlog_next(l, &ev)) > 0)
                        cr_assert_eq(ev->index, next++);
                cr_assert_eq(r, 0, "the log sent does not parse: %s", cscp_eventlog_error(l));
                cr_assert_eq(next, n1);
                cscp_eventlog_free(l);
        }
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* Over 64 MiB of file: refused whatever the offset, naming the limit. */
        n2 = append_bulk(path, (QUOTE_LOG_FILE_MAX - (size_t)st.st_size) / (BULK_VALUE + 64) + 8);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_gt(st.st_size, QUOTE_LOG_FILE_MAX, "the log grew to only %lld bytes", (long long)st.st_size);
        resp = quote_log(sock, "biglog", true, n2);
        assert_quote_error(resp, VTPMD__ERROR_CODE__ERR_TOO_LARGE, "67108864", "Quote with the log of a 64 MiB+ file");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* vtpmd keeps serving: Status, and a Quote without the log. */
        resp = vctl_status(sock, &qvd, "biglog");
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS, "Status after the refusals: %s",
                     resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "?");
        cr_assert_str_eq(resp->status->instance->state, "ready");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        resp = quote_log(sock, "biglog", false, 0);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_QUOTE, "Quote without the log after the refusals: %s",
                     resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "?");
        cr_assert_eq(resp->quote->log.len, 0);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* A clean stop exits 0: under ASan this is where vtpmd's leaks and errors would show. */
        status = harness_stop(&qvd, SIGTERM, 20000);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                harness_dump_log(&qvd);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vtpmd did not stop cleanly (wait status 0x%x)",
                  (unsigned)status);
}
