/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment end to end: a real swtpm given an EK certificate in its NV
 * index (signed here by a test EK CA the way swtpm-localca signs them:
 * empty subject, critical SubjectAltName with the TPM manufacturer
 * attributes), a real attestd, the real cscp binary and the library.
 * RSA-2048 and ECC P-256 EKs; wrong CA, TOFU, credentials the TPM must
 * refuse, an attestd whose EK certificate belongs to another TPM (a proxy
 * swaps it in), malformed requests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>

#include "client.h"
#include "credential.h"
#include "enroll.h"
#include "error.h"
#include "frame.h"
#include "harness.h"
#include "pcr.h"
#include "quote.h"
#include "store.h"
#include "tpm.h"
#include "util.h"

static char *dir, *pki;
static harness_swtpm_t tpm;
static harness_attestd_t ad;

static void setup(void)
{
        dir = harness_setup_tpm("swtpm", &pki, &tpm);
}

static void teardown(void)
{
        harness_attestd_stop(&ad);
        harness_swtpm_stop(&tpm);
}

TestSuite(enroll, .init = setup, .fini = teardown, .timeout = 300);

static void start_attestd(bool tls, char *const extra[])
{
        int r = harness_attestd_start(dir, tpm.tcti, tls ? pki : NULL, extra, &ad);
        if (r < 0)
                harness_dump_log(&ad.proc);
        cr_assert_eq(r, 0, "attestd did not start: %s", cscp_strerror(r));
}

/* --- a test EK CA and EK certificates ------------------------------------------------- */

typedef struct ca {
        EVP_PKEY *key;
        X509 *cert;
        char *pem; /* path of the CA certificate */
} ca_t;

static void ca_make(const char *name, ca_t *ca)
{
        X509_NAME *n;
        FILE *f;

        ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        cr_assert_not_null(ca->key);
        ca->cert = X509_new();
        X509_set_version(ca->cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(ca->cert), 1);
        n = X509_get_subject_name(ca->cert);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
        X509_set_issuer_name(ca->cert, n);
        X509_gmtime_adj(X509_getm_notBefore(ca->cert), -86400);
        X509_gmtime_adj(X509_getm_notAfter(ca->cert), 86400L * 365);
        X509_set_pubkey(ca->cert, ca->key);
        {
                X509V3_CTX ctx;
                X509V3_set_ctx(&ctx, ca->cert, ca->cert, NULL, NULL, 0);
                X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
                X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
                X509_EXTENSION *ski = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
                cr_assert(bc && ku && ski);
                X509_add_ext(ca->cert, bc, -1);
                X509_add_ext(ca->cert, ku, -1);
                X509_add_ext(ca->cert, ski, -1);
                X509_EXTENSION_free(bc);
                X509_EXTENSION_free(ku);
                X509_EXTENSION_free(ski);
        }
        cr_assert(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
        ca->pem = harness_path(dir, name);
        f = fopen(ca->pem, "w");
        cr_assert_not_null(f);
        PEM_write_X509(f, ca->cert);
        fclose(f);
}

static void ca_free(ca_t *ca)
{
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
}

/* An EK certificate as swtpm_cert makes them: empty subject, critical SAN dirName of TPM attributes. */
static uint8_t *ek_cert_make(const ca_t *ca, const uint8_t *ek_public, size_t ek_public_len, size_t *ret_len)
{
        EVP_PKEY *ek = NULL;
        X509 *x = X509_new();
        X509_NAME *dn = X509_NAME_new();
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        GENERAL_NAME *gn = GENERAL_NAME_new();
        uint8_t *der = NULL;
        int len;

        cr_assert_eq(cscp_tpm_public_to_pkey(ek_public, ek_public_len, &ek), 0);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 2);
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
        X509_gmtime_adj(X509_getm_notBefore(x), -86400);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
        X509_set_pubkey(x, ek);
        X509_NAME_add_entry_by_txt(dn, "2.23.133.2.1", MBSTRING_ASC, (const unsigned char *)"id:00001014", -1, -1, 0);
        X509_NAME_add_entry_by_txt(dn, "2.23.133.2.2", MBSTRING_ASC, (const unsigned char *)"swtpm", -1, -1, 0);
        X509_NAME_add_entry_by_txt(dn, "2.23.133.2.3", MBSTRING_ASC, (const unsigned char *)"id:20191023", -1, -1, 0);
        gn->type = GEN_DIRNAME;
        gn->d.dirn = dn;
        sk_GENERAL_NAME_push(gens, gn);
        cr_assert_eq(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT), 1);
        {
                X509V3_CTX ctx;
                X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
                X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:FALSE");
                X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyEncipherment");
                X509_EXTENSION *eku = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "2.23.133.8.1");
                cr_assert(bc && ku && eku);
                X509_add_ext(x, bc, -1);
                X509_add_ext(x, ku, -1);
                X509_add_ext(x, eku, -1);
                X509_EXTENSION_free(bc);
                X509_EXTENSION_free(ku);
                X509_EXTENSION_free(eku);
        }
        cr_assert(X509_sign(x, ca->key, EVP_sha256()) > 0);
        len = i2d_X509(x, &der);
        cr_assert_gt(len, 0);
        GENERAL_NAMES_free(gens);
        X509_free(x);
        EVP_PKEY_free(ek);
        *ret_len = (size_t)len;
        return harness_keep(der); /* OPENSSL_malloc = malloc here */
}

/* The TPM's EK public of alg (static buffer per alg). */
static uint8_t *ek_public_of(const char *tcti, cscp_key_alg_t alg, size_t *ret_len)
{
        static uint8_t ek[2][sizeof(TPMT_PUBLIC)];
        uint8_t *ekp = ek[alg == CSCP_KEY_RSA_2048];
        cscp_tpm_t *t = NULL;

        cr_assert_eq(cscp_tpm_open(tcti, &t), 0);
        cr_assert_eq(cscp_tpm_ek_public(t, alg, ekp, sizeof(ek[0]), ret_len), 0);
        cscp_tpm_free(t);
        return ekp;
}

/*
 * Writes der into the low-range EK certificate index of alg, as a
 * manufacturer does (platform authorisation), padded with 16 zero bytes as
 * some TPMs' indices are.
 */
static void nv_write_cert(const char *tcti, cscp_key_alg_t alg, const uint8_t *der, size_t der_len)
{
        uint8_t buf[CSCP_TPM_EK_CERT_MAX];
        cscp_tpm_t *t = NULL;
        ESYS_CONTEXT *esys;
        TPM2B_NV_PUBLIC nvpub = {0};
        TPM2B_AUTH auth = {0};
        ESYS_TR nv = ESYS_TR_NONE;
        size_t total = der_len + 16;

        cr_assert_leq(total, sizeof(buf));
        memset(buf, 0, sizeof(buf));
        memcpy(buf, der, der_len);
        cr_assert_eq(cscp_tpm_open(tcti, &t), 0);
        esys = cscp_tpm_esys(t);
        nvpub.nvPublic.nvIndex = cscp_tpm_ek_cert_index(alg);
        nvpub.nvPublic.nameAlg = TPM2_ALG_SHA256;
        nvpub.nvPublic.attributes = TPMA_NV_PPWRITE | TPMA_NV_PPREAD | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD |
                                    TPMA_NV_NO_DA | TPMA_NV_PLATFORMCREATE;
        nvpub.nvPublic.dataSize = (uint16_t)total;
        cr_assert_eq(Esys_NV_DefineSpace(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                         &nvpub, &nv),
                     TSS2_RC_SUCCESS);
        for (size_t off = 0; off < total;) {
                TPM2B_MAX_NV_BUFFER d;
                size_t n = total - off < 512 ? total - off : 512;
                d.size = (uint16_t)n;
                memcpy(d.buffer, buf + off, n);
                cr_assert_eq(Esys_NV_Write(esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                           &d, (uint16_t)off),
                             TSS2_RC_SUCCESS);
                off += n;
        }
        Esys_TR_Close(esys, &nv);
        cscp_tpm_free(t);
}

/* Gives the TPM an EK certificate (made here with OpenSSL) for its EK of alg; returns the EK public. */
static uint8_t *provision(const char *tcti, cscp_key_alg_t alg, const ca_t *ca, size_t *ret_ek_len)
{
        size_t ek_len = 0, cert_len = 0;
        uint8_t *ek = ek_public_of(tcti, alg, &ek_len);
        uint8_t *cert = ek_cert_make(ca, ek, ek_len, &cert_len);

        nv_write_cert(tcti, alg, cert, cert_len);
        *ret_ek_len = ek_len;
        return ek;
}

/* --- running cscp ---------------------------------------------------------------------- */

static int run_cscp(char **out, char **err, const char *const *args)
{
        char *o = NULL, *e = NULL;
        int code = harness_run_kept(
                harness_argv((const char *[]){harness_path(harness_build_dir(), "cscp"), NULL}, args, NULL), 120000, &o,
                &e);

        if (out)
                *out = o;
        if (err)
                *err = e;
        if (code != 0)
                cr_log_info("cscp exited %d\nstdout: %s\nstderr: %s", code, o, e);
        return code;
}

/* cscp enroll in plaintext against server, with up to 4 further arguments. */
static int enroll_cli(const char *server, char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
        const char *args[] = {"enroll",
                              "--server",
                              server,
                              "--insecure-plaintext",
                              "--json",
                              "--db",
                              harness_path(dir, "store.db"),
                              a1,
                              a2,
                              a3,
                              a4,
                              NULL};
        return run_cscp(out, NULL, args);
}

static cscp_conn_t *connect_plain(const char *server)
{
        cscp_client_opts_t o = {.server = server, .insecure_plaintext = true, .timeout_ms = 60000};
        cscp_conn_t *c = NULL;
        char err[256];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        return c;
}

static Cscp__Frame *enroll_request(cscp_conn_t *c)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__EnrollRequest er = CSCP__ENROLL_REQUEST__INIT;
        char err[256];

        er.version = CSCP_PROTOCOL_VERSION;
        req.body_case = CSCP__FRAME__BODY_ENROLL_REQUEST;
        req.enroll_request = &er;
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ENROLL_INFO);
        return resp;
}

static Cscp__Frame *activate(cscp_conn_t *c, const uint8_t *ek, size_t ek_len, const cscp_credential_t *cred)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Activate a = CSCP__ACTIVATE__INIT;
        char err[256];

        a.version = CSCP_PROTOCOL_VERSION;
        a.ek_public = (ProtobufCBinaryData){.data = (uint8_t *)ek, .len = ek_len};
        a.credential_blob = (ProtobufCBinaryData){.data = (uint8_t *)cred->blob, .len = cred->blob_len};
        a.secret = (ProtobufCBinaryData){.data = (uint8_t *)cred->secret, .len = cred->secret_len};
        req.body_case = CSCP__FRAME__BODY_ACTIVATE;
        req.activate = &a;
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
        return resp;
}

static TPM2B_NAME ak_name_of(const Cscp__EnrollInfo *info)
{
        TPM2B_NAME n;

        cr_assert_eq(cscp_tpm_public_name(info->ak_public.data, info->ak_public.len, &n), 0);
        return n;
}

static void assert_store(const char *host, const TPM2B_NAME *want, bool present)
{
        cscp_store_t *s = NULL;
        uint8_t got[66];
        size_t got_len = 0;
        int r;

        cr_assert_eq(cscp_store_open(harness_path(dir, "store.db"), &s), 0);
        r = cscp_store_enrolled_ak(s, host, got, &got_len);
        cscp_store_close(s);
        if (!present) {
                cr_assert_eq(r, -ENOENT, "the store holds an AK for %s after a refusal", host);
                return;
        }
        cr_assert_eq(r, 0, "the store has no AK for %s", host);
        cr_assert_eq(got_len, want->size);
        cr_assert_arr_eq(got, want->name, got_len, "the store holds another AK Name");
}

/* The AK Name attestd serves, read over a fresh connection. */
static TPM2B_NAME served_ak_name(const char *server)
{
        cscp_conn_t *c = connect_plain(server);
        Cscp__Frame *f = enroll_request(c);
        TPM2B_NAME n = ak_name_of(f->enroll_info);

        cscp__frame__free_unpacked(f, NULL);
        cscp_conn_free(c);
        return n;
}

/* --- success ------------------------------------------------------------------------------ */

static void enroll_ok(cscp_key_alg_t ek_alg, const char *ak_alg, const char *want_type)
{
        ca_t ca;
        size_t ek_len;
        char *out = NULL;
        char *extra[] = {"--ak-alg", (char *)ak_alg, NULL};
        TPM2B_NAME name;

        ca_make("ek-ca.pem", &ca);
        provision(tpm.tcti, ek_alg, &ca, &ek_len);
        start_attestd(true, extra);
        {
                const char *const *args = (const char *const *)harness_argv(
                        (const char *[]){"enroll", NULL}, harness_tls_args(ad.addr, pki),
                        (const char *[]){"--ek-ca", ca.pem, "--db", harness_path(dir, "store.db"), "--json", NULL},
                        NULL);
                cr_assert_eq(run_cscp(&out, NULL, args), 0, "enrollment failed");
        }
        cr_assert(strstr(out, "\"result\": \"enrolled\""), "%s", out);
        cr_assert(strstr(out, "\"method\": \"credential\""), "%s", out);
        cr_assert(strstr(out, "\"activated\": true"), "%s", out);
        cr_assert(strstr(out, want_type), "EK type %s not in %s", want_type, out);
        cr_assert(strstr(out, "\"tpm_model\": \"swtpm\""), "TPM attributes from the SAN missing: %s", out);

        /* The AK recorded is the one attestd quotes with. */
        {
                cscp_client_opts_t o = {.server = ad.addr,
                                        .ca = harness_path(pki, "ca.pem"),
                                        .cert = harness_path(pki, "client.pem"),
                                        .key = harness_path(pki, "client-key.pem"),
                                        .timeout_ms = 60000};
                cscp_conn_t *c = NULL;
                char err[256];
                Cscp__Frame *f;

                cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
                f = enroll_request(c);
                name = ak_name_of(f->enroll_info);
                cr_assert_gt(f->enroll_info->ek_certificate.len, 0);
                cscp__frame__free_unpacked(f, NULL);
                cscp_conn_free(c);
        }
        assert_store(ad.addr, &name, true);
        ca_free(&ca);
}

Test(enroll, rsa_ek_certificate)
{
        enroll_ok(CSCP_KEY_RSA_2048, "ecc", "\"type\": \"RSA-2048\"");
}

Test(enroll, ecc_ek_certificate)
{
        enroll_ok(CSCP_KEY_ECC_P256, "rsa", "\"type\": \"ECC P-256\"");
}

/*
 * The certificate made by swtpm_cert (swtpm-tools; what swtpm_setup and
 * swtpm-localca use) for the TPM's ECC P-256 EK: the real tool's encoding.
 */
Test(enroll, swtpm_cert_ecc)
{
        ca_t ca;
        size_t ek_len, off = 0, der_len = 0;
        uint8_t *ek, *der = NULL;
        TPMT_PUBLIC pub;
        char x[2 * 32 + 1], y[2 * 32 + 1], *keypem, *out = NULL, *code_err = NULL;
        char *certfile = harness_path(dir, "ek-swtpm-cert.der");
        FILE *f;
        int code = -1;

        ca_make("ek-ca.pem", &ca);
        keypem = harness_path(dir, "ek-ca-key.pem");
        f = fopen(keypem, "w");
        cr_assert_not_null(f);
        PEM_write_PrivateKey(f, ca.key, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        ek = ek_public_of(tpm.tcti, CSCP_KEY_ECC_P256, &ek_len);
        memset(&pub, 0, sizeof(pub));
        cr_assert_eq(Tss2_MU_TPMT_PUBLIC_Unmarshal(ek, ek_len, &off, &pub), TSS2_RC_SUCCESS);
        cscp_hex_encode(pub.unique.ecc.x.buffer, pub.unique.ecc.x.size, x);
        cscp_hex_encode(pub.unique.ecc.y.buffer, pub.unique.ecc.y.size, y);
        {
                char *argv[] = {"swtpm_cert",
                                "--type",
                                "ek",
                                "--ecc-x",
                                x,
                                "--ecc-y",
                                y,
                                "--ecc-curveid",
                                "secp256r1",
                                "--signkey",
                                keypem,
                                "--issuercert",
                                ca.pem,
                                "--out-cert",
                                certfile,
                                "--tpm-manufacturer",
                                "id:00001014",
                                "--tpm-model",
                                "swtpm",
                                "--tpm-version",
                                "id:20191023",
                                "--tpm2",
                                "--tpm-spec-family",
                                "2.0",
                                "--tpm-spec-level",
                                "0",
                                "--tpm-spec-revision",
                                "164",
                                "--subject",
                                "",
                                "--days",
                                "365",
                                "--serial",
                                "7",
                                NULL};
                int r = harness_run(argv, 60000, &code, &out, &code_err);
                if (r < 0 || code == 127)
                        cr_skip_test("swtpm_cert (Debian swtpm-tools) is not installed");
                cr_assert_eq(code, 0, "swtpm_cert failed: %s", code_err);
                free(out);
                free(code_err);
        }
        cr_assert_eq(cscp_file_read(certfile, CSCP_TPM_EK_CERT_MAX, &der, &der_len), 0);
        nv_write_cert(tpm.tcti, CSCP_KEY_ECC_P256, der, der_len);
        free(der);
        start_attestd(false, NULL);
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 0);
        cr_assert(strstr(out, "\"method\": \"credential\""), "%s", out);
        cr_assert(strstr(out, "\"type\": \"ECC P-256\""), "%s", out);
        cr_assert(strstr(out, "\"tpm_manufacturer\": \"id:00001014\""), "%s", out);
        ca_free(&ca);
}

/* --- refusals -------------------------------------------------------------------------- */

Test(enroll, wrong_ca_refused)
{
        ca_t ca, other;
        size_t ek_len;
        char *out = NULL;

        ca_make("ek-ca.pem", &ca);
        ca_make("other-ca.pem", &other);
        provision(tpm.tcti, CSCP_KEY_RSA_2048, &ca, &ek_len);
        start_attestd(false, NULL);
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", other.pem, NULL, NULL), 1);
        cr_assert(strstr(out, "does not chain"), "%s", out);
        /* --tofu does not override a certificate that failed its check. */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", other.pem, "--tofu", NULL), 1);
        assert_store(ad.addr, NULL, false);
        /* An empty or unreadable CA bundle is an error, not a refusal. */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", harness_path(dir, "missing.pem"), NULL, NULL), 2);
        /* The right CA still enrolls the same host. */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 0);
        {
                TPM2B_NAME n = served_ak_name(ad.addr);
                assert_store(ad.addr, &n, true);
        }
        ca_free(&ca);
        ca_free(&other);
}

Test(enroll, tofu_without_certificate)
{
        ca_t ca;
        char *out = NULL;
        TPM2B_NAME n;

        ca_make("ek-ca.pem", &ca);
        start_attestd(false, NULL);
        /* No EK certificate in NV: refused without --tofu ... */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 1);
        cr_assert(strstr(out, "no EK certificate"), "%s", out);
        assert_store(ad.addr, NULL, false);
        /* ... and neither --ek-ca nor --tofu is a usage error. */
        cr_assert_eq(enroll_cli(ad.addr, &out, NULL, NULL, NULL, NULL), 2);
        /* With --tofu: recorded as tofu, after the activation proved AK and EK share the TPM. */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--tofu", NULL, NULL, NULL), 0);
        cr_assert(strstr(out, "\"method\": \"tofu\""), "%s", out);
        cr_assert(strstr(out, "\"activated\": true"), "%s", out);
        n = served_ak_name(ad.addr);
        assert_store(ad.addr, &n, true);

        /* Without --db: the store under $XDG_STATE_HOME, its directories made 0700. */
        {
                char *xdg = harness_path(dir, "xdg"), *db = harness_path(xdg, "cscp/store.db");
                const char *args[] = {"enroll", "--server", ad.addr, "--insecure-plaintext", "--tofu", NULL};
                struct stat st;

                setenv("XDG_STATE_HOME", xdg, 1);
                cr_assert_eq(run_cscp(NULL, NULL, args), 0);
                unsetenv("XDG_STATE_HOME");
                cr_assert_eq(stat(harness_path(xdg, "cscp"), &st), 0);
                cr_assert_eq(st.st_mode & 0777, 0700);
                cr_assert_eq(stat(db, &st), 0, "no store at %s", db);
        }
        ca_free(&ca);
}

Test(enroll, tofu_certificate_without_ca)
{
        ca_t ca;
        size_t ek_len;
        char *out = NULL;

        ca_make("ek-ca.pem", &ca);
        provision(tpm.tcti, CSCP_KEY_ECC_P256, &ca, &ek_len);
        start_attestd(false, NULL);
        cr_assert_eq(enroll_cli(ad.addr, &out, "--tofu", NULL, NULL, NULL), 0);
        cr_assert(strstr(out, "\"method\": \"tofu\""), "%s", out);
        cr_assert(strstr(out, "\"certificate_trusted\": false"), "%s", out);
        ca_free(&ca);
}

/* A credential bound to another AK Name, or wrapped to another TPM's EK: the TPM refuses it. */
Test(enroll, tpm_refuses_foreign_credentials)
{
        harness_swtpm_t other;
        cscp_conn_t *c;
        Cscp__Frame *info, *f;
        cscp_credential_t cred;
        uint8_t secret[32], other_ek[sizeof(TPMT_PUBLIC)];
        size_t other_ek_len = 0;
        TPM2B_NAME name;
        cscp_tpm_t *t = NULL;

        cr_assert_eq(harness_swtpm_start(harness_path(dir, "swtpm-b"), &other), 0);
        cr_assert_eq(cscp_tpm_open(other.tcti, &t), 0);
        cr_assert_eq(cscp_tpm_ek_public(t, CSCP_KEY_ECC_P256, other_ek, sizeof(other_ek), &other_ek_len), 0);
        cscp_tpm_free(t);
        harness_swtpm_stop(&other);

        start_attestd(false, NULL);
        c = connect_plain(ad.addr);
        info = enroll_request(c);
        name = ak_name_of(info->enroll_info);
        cr_assert_eq(info->enroll_info->ek_certificate.len, 0);
        RAND_bytes(secret, sizeof(secret));

        /* Another AK Name. */
        name.name[name.size - 1] ^= 1;
        cr_assert_eq(cscp_credential_make(info->enroll_info->ek_public.data, info->enroll_info->ek_public.len,
                                          name.name, name.size, secret, sizeof(secret), &cred),
                     0);
        name.name[name.size - 1] ^= 1;
        f = activate(c, info->enroll_info->ek_public.data, info->enroll_info->ek_public.len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_eq(f->error->code, CSCP__ERROR_CODE__ERR_BAD_REQUEST);
        cr_assert(strstr(f->error->message, "refused the credential"), "%s", f->error->message);
        cscp__frame__free_unpacked(f, NULL);

        /* Wrapped to another TPM's EK, presented as for ours. */
        cr_assert_eq(cscp_credential_make(other_ek, other_ek_len, name.name, name.size, secret, sizeof(secret), &cred),
                     0);
        f = activate(c, info->enroll_info->ek_public.data, info->enroll_info->ek_public.len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert(strstr(f->error->message, "refused the credential"), "%s", f->error->message);
        cscp__frame__free_unpacked(f, NULL);
        /* ... or named as for that EK: attestd refuses before the TPM sees it. */
        f = activate(c, other_ek, other_ek_len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert(strstr(f->error->message, "not this TPM's"), "%s", f->error->message);
        cscp__frame__free_unpacked(f, NULL);

        /* The real thing on the same connection: the secret comes back. */
        cr_assert_eq(cscp_credential_make(info->enroll_info->ek_public.data, info->enroll_info->ek_public.len,
                                          name.name, name.size, secret, sizeof(secret), &cred),
                     0);
        f = activate(c, info->enroll_info->ek_public.data, info->enroll_info->ek_public.len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ACTIVATED);
        cr_assert_eq(f->activated->credential.len, sizeof(secret));
        cr_assert_arr_eq(f->activated->credential.data, secret, sizeof(secret));
        cscp__frame__free_unpacked(f, NULL);
        cscp__frame__free_unpacked(info, NULL);
        cscp_conn_free(c);
}

/* --- a man in the middle with another TPM's genuine EK certificate ---------------------- */

typedef struct mitm {
        int listen_fd;
        char addr[64];
        const char *upstream;
        const uint8_t *fake_ek, *fake_cert, *real_ek;
        size_t fake_ek_len, fake_cert_len, real_ek_len;
        bool tamper_activated; /* flip a bit of Activated.credential */
        pthread_t thread;
} mitm_t;

static int read_full(int fd, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = read(fd, p, n);
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Reads a frame, lets rewrite() change it, writes it on. 0 while the stream goes on. */
static int relay(int from, int to, const mitm_t *m)
{
        uint8_t hdr[4], *payload, *out = NULL;
        size_t len, out_len;
        Cscp__Frame *f = NULL;
        ProtobufCBinaryData save_ek = {0}, save_cert = {0};
        int r = -1;

        if (read_full(from, hdr, 4) < 0)
                return -1;
        len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (len == 0 || len > CSCP_FRAME_MAX_DEFAULT)
                return -1;
        payload = malloc(len);
        if (!payload || read_full(from, payload, len) < 0 || cscp_frame_unpack(payload, len, &f) < 0)
                goto out;
        if (f->body_case == CSCP__FRAME__BODY_ACTIVATED && m->tamper_activated && f->activated->credential.len)
                f->activated->credential.data[0] ^= 1;
        if (f->body_case == CSCP__FRAME__BODY_ENROLL_INFO && m->fake_ek) {
                save_ek = f->enroll_info->ek_public;
                save_cert = f->enroll_info->ek_certificate;
                f->enroll_info->ek_public = (ProtobufCBinaryData){.data = (uint8_t *)m->fake_ek, .len = m->fake_ek_len};
                f->enroll_info->ek_certificate =
                        (ProtobufCBinaryData){.data = (uint8_t *)m->fake_cert, .len = m->fake_cert_len};
        } else if (f->body_case == CSCP__FRAME__BODY_ACTIVATE && m->real_ek) {
                save_ek = f->activate->ek_public;
                f->activate->ek_public = (ProtobufCBinaryData){.data = (uint8_t *)m->real_ek, .len = m->real_ek_len};
        }
        if (cscp_frame_pack(f, CSCP_FRAME_MAX_DEFAULT, &out, &out_len) == 0 && write_full(to, out, out_len) == 0)
                r = 0;
        if (f->body_case == CSCP__FRAME__BODY_ENROLL_INFO && m->fake_ek) {
                f->enroll_info->ek_public = save_ek;
                f->enroll_info->ek_certificate = save_cert;
        } else if (f->body_case == CSCP__FRAME__BODY_ACTIVATE && m->real_ek)
                f->activate->ek_public = save_ek;
out:
        if (f)
                cscp__frame__free_unpacked(f, NULL);
        free(out);
        free(payload);
        return r;
}

static void *mitm_run(void *arg)
{
        mitm_t *m = arg;
        int client = accept(m->listen_fd, NULL, NULL), server = -1;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        char host[64];
        char *colon;

        snprintf(host, sizeof(host), "%s", m->upstream);
        colon = strrchr(host, ':');
        *colon = '\0';
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        inet_pton(AF_INET, host, &sa.sin_addr);
        server = socket(AF_INET, SOCK_STREAM, 0);
        if (client < 0 || server < 0 || connect(server, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                goto out;
        while (relay(client, server, m) == 0 && relay(server, client, m) == 0)
                ;
out:
        if (client >= 0)
                close(client);
        if (server >= 0)
                close(server);
        return NULL;
}

static void mitm_start(mitm_t *m)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);

        m->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(m->listen_fd, 0);
        cr_assert_eq(bind(m->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(listen(m->listen_fd, 1), 0);
        cr_assert_eq(getsockname(m->listen_fd, (struct sockaddr *)&sa, &sl), 0);
        snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
        cr_assert_eq(pthread_create(&m->thread, NULL, mitm_run, m), 0);
}

/*
 * attestd's AK is in TPM A; a proxy presents TPM B's EK with B's genuine
 * certificate. The checks pass, but the credential is wrapped to B's EK:
 * A cannot recover it, so the enrollment is refused and nothing recorded.
 */
Test(enroll, other_tpms_ek_certificate_refused)
{
        harness_swtpm_t b;
        ca_t ca;
        mitm_t m = {0};
        cscp_tpm_t *t = NULL;
        uint8_t real_ek[sizeof(TPMT_PUBLIC)], fake_ek[sizeof(TPMT_PUBLIC)], *fake_cert;
        size_t real_ek_len = 0, fake_ek_len = 0, fake_cert_len = 0;
        char *out = NULL;

        ca_make("ek-ca.pem", &ca);
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "swtpm-b"), &b), 0);
        memcpy(fake_ek, provision(b.tcti, CSCP_KEY_RSA_2048, &ca, &fake_ek_len), sizeof(fake_ek));
        cr_assert_eq(cscp_tpm_open(b.tcti, &t), 0);
        cr_assert_eq(cscp_tpm_ek_cert_read(t, CSCP_KEY_RSA_2048, &fake_cert, &fake_cert_len), 0);
        harness_keep(fake_cert);
        cscp_tpm_free(t);
        harness_swtpm_stop(&b);

        provision(tpm.tcti, CSCP_KEY_RSA_2048, &ca, &real_ek_len);
        cr_assert_eq(cscp_tpm_open(tpm.tcti, &t), 0);
        cr_assert_eq(cscp_tpm_ek_public(t, CSCP_KEY_RSA_2048, real_ek, sizeof(real_ek), &real_ek_len), 0);
        cscp_tpm_free(t);
        start_attestd(false, NULL);

        m.upstream = ad.addr;
        m.fake_ek = fake_ek;
        m.fake_ek_len = fake_ek_len;
        m.fake_cert = fake_cert;
        m.fake_cert_len = fake_cert_len;
        m.real_ek = real_ek;
        m.real_ek_len = real_ek_len;
        mitm_start(&m);
        cr_assert_eq(enroll_cli(m.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 1);
        cr_assert(strstr(out, "activation failed"), "%s", out);
        pthread_join(m.thread, NULL);
        close(m.listen_fd);
        assert_store(m.addr, NULL, false);
        /* The TPM is fine after refusing it: the host enrolls directly. */
        cr_assert_eq(enroll_cli(ad.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 0);
        ca_free(&ca);
}

/* An answer to Activate that is not the credential: refused (constant-time compare on the challenger). */
Test(enroll, altered_activation_answer_refused)
{
        ca_t ca;
        mitm_t m = {0};
        size_t ek_len;
        char *out = NULL;

        ca_make("ek-ca.pem", &ca);
        provision(tpm.tcti, CSCP_KEY_ECC_P256, &ca, &ek_len);
        start_attestd(false, NULL);
        m.upstream = ad.addr;
        m.tamper_activated = true;
        mitm_start(&m);
        cr_assert_eq(enroll_cli(m.addr, &out, "--ek-ca", ca.pem, NULL, NULL), 1);
        cr_assert(strstr(out, "returned another credential"), "%s", out);
        pthread_join(m.thread, NULL);
        close(m.listen_fd);
        assert_store(m.addr, NULL, false);
        ca_free(&ca);
}

/* --- enrollment beside group-committed challenges -------------------------------------- */

static const char *mixed_addr;

/* 4 host challenges on one connection; returns how many got Evidence. */
static void *challenger(void *arg)
{
        cscp_client_opts_t o = {.server = mixed_addr, .insecure_plaintext = true, .timeout_ms = 60000};
        cscp_conn_t *c = NULL;
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection **w = NULL;
        size_t nw = 0, ok = 0;
        char err[256];

        if (cscp_conn_open(&o, &c, err, sizeof(err)) < 0 || cscp_pcrsel_parse("sha256:0-7", &sel) < 0 ||
            cscp_pcrsel_to_wire(&sel, &w, &nw) < 0)
                goto out;
        for (int i = 0; i < 4; i++) {
                Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
                Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
                uint8_t nonce[32];

                RAND_bytes(nonce, sizeof(nonce));
                ch.version = CSCP_PROTOCOL_VERSION;
                ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
                ch.host_pcrs = w;
                ch.n_host_pcrs = nw;
                req.body_case = CSCP__FRAME__BODY_CHALLENGE;
                req.challenge = &ch;
                if (cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)) < 0)
                        break;
                ok += resp->body_case == CSCP__FRAME__BODY_EVIDENCE;
                cscp__frame__free_unpacked(resp, NULL);
        }
out:
        cscp_pcrsel_wire_free(w, nw);
        cscp_conn_free(c);
        return (void *)ok;
}

/* One whole enrollment (TOFU, nothing recorded); returns 1 when enrolled. */
static void *enroller(void *arg)
{
        cscp_client_opts_t o = {.server = mixed_addr, .insecure_plaintext = true, .timeout_ms = 60000};
        cscp_enroll_opts_t eo = {.host = mixed_addr, .tofu = true};
        cscp_enroll_result_t res;
        cscp_conn_t *c = NULL;
        char err[256];
        size_t ok = 0;

        if (cscp_conn_open(&o, &c, err, sizeof(err)) == 0)
                ok = cscp_enroll(c, &eo, &res, err, sizeof(err)) == CSCP_ENROLL_ENROLLED && res.activated;
        cscp_conn_free(c);
        return (void *)ok;
}

/* Enrollment jobs run alone on the TPM thread between quote batches: both kinds all succeed. */
Test(enroll, beside_batched_challenges)
{
        pthread_t ch[16], en[4];
        size_t ok_ch = 0, ok_en = 0;

        start_attestd(false, NULL);
        mixed_addr = ad.addr;
        for (size_t i = 0; i < 16; i++)
                cr_assert_eq(pthread_create(&ch[i], NULL, challenger, NULL), 0);
        for (size_t i = 0; i < 4; i++)
                cr_assert_eq(pthread_create(&en[i], NULL, enroller, NULL), 0);
        for (size_t i = 0; i < 16; i++) {
                void *v;
                pthread_join(ch[i], &v);
                ok_ch += (size_t)v;
        }
        for (size_t i = 0; i < 4; i++) {
                void *v;
                pthread_join(en[i], &v);
                ok_en += (size_t)v;
        }
        cr_assert_eq(ok_ch, 16 * 4, "%zu of 64 challenges answered", ok_ch);
        cr_assert_eq(ok_en, 4, "%zu of 4 enrollments succeeded", ok_en);
}

/* --- malformed messages ---------------------------------------------------------------- */

Test(enroll, malformed_activate_attestd_keeps_serving)
{
        cscp_conn_t *c;
        Cscp__Frame *info, *f;
        cscp_credential_t cred = {0};
        uint8_t junk[2048];
        const uint8_t *ek;
        size_t ek_len;

        start_attestd(false, NULL);
        c = connect_plain(ad.addr);
        info = enroll_request(c);
        ek = info->enroll_info->ek_public.data;
        ek_len = info->enroll_info->ek_public.len;

        /* Empty fields. */
        f = activate(c, ek, ek_len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_eq(f->error->code, CSCP__ERROR_CODE__ERR_BAD_REQUEST);
        cscp__frame__free_unpacked(f, NULL);
        /* Random bytes of TPM-acceptable sizes. */
        RAND_bytes(cred.blob, sizeof(cred.blob));
        RAND_bytes(cred.secret, sizeof(cred.secret));
        cred.blob_len = 2 + 32 + 2 + 32;
        cred.secret_len = 256;
        f = activate(c, ek, ek_len, &cred);
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
        cscp__frame__free_unpacked(f, NULL);
        /* Sizes no TPM structure holds. */
        {
                Cscp__Frame req = CSCP__FRAME__INIT;
                Cscp__Activate a = CSCP__ACTIVATE__INIT;
                char err[256];

                RAND_bytes(junk, sizeof(junk));
                a.version = CSCP_PROTOCOL_VERSION;
                a.ek_public = (ProtobufCBinaryData){.data = junk, .len = sizeof(junk)};
                a.credential_blob = (ProtobufCBinaryData){.data = junk, .len = sizeof(junk)};
                a.secret = (ProtobufCBinaryData){.data = junk, .len = sizeof(junk)};
                req.body_case = CSCP__FRAME__BODY_ACTIVATE;
                req.activate = &a;
                cr_assert_eq(cscp_conn_roundtrip(c, &req, &f, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
                cr_assert(strstr(f->error->message, "within TPM sizes"), "%s", f->error->message);
                cscp__frame__free_unpacked(f, NULL);
        }
        /* A message attestd does not answer (an EnrollInfo sent to it). */
        {
                Cscp__Frame req = CSCP__FRAME__INIT;
                char err[256];

                req.body_case = CSCP__FRAME__BODY_ENROLL_INFO;
                req.enroll_info = info->enroll_info;
                cr_assert_eq(cscp_conn_roundtrip(c, &req, &f, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(f->body_case, CSCP__FRAME__BODY_ERROR);
                cscp__frame__free_unpacked(f, NULL);
        }
        cscp__frame__free_unpacked(info, NULL);
        cscp_conn_free(c);

        /* attestd still serves, and enrollment still works. */
        cr_assert(harness_alive(&ad.proc));
        {
                char *out = NULL;
                cr_assert_eq(enroll_cli(ad.addr, &out, "--tofu", NULL, NULL, NULL), 0);
        }
}

/* The challenger's checks of EnrollInfo, one defect at a time. */
Test(enroll, malformed_enroll_info_refused)
{
        ca_t ca, other;
        size_t ek_len;
        cscp_conn_t *c;
        Cscp__Frame *f;
        Cscp__EnrollInfo *info, copy;
        cscp_enroll_opts_t o = {.tofu = false};
        cscp_enroll_result_t res;
        uint8_t buf[4096], *other_cert;
        size_t other_cert_len;
        char err[256];

        ca_make("ek-ca.pem", &ca);
        ca_make("other-ca.pem", &other);
        provision(tpm.tcti, CSCP_KEY_RSA_2048, &ca, &ek_len);
        start_attestd(false, NULL);
        c = connect_plain(ad.addr);
        f = enroll_request(c);
        info = f->enroll_info;
        o.ek_ca = ca.pem;

        {
                /* Seed for fuzz-enroll: a real EnrollInfo payload (without its length prefix). */
                char *seeds = harness_path(harness_build_dir(), "fuzz-seeds");
                uint8_t *packed = NULL;
                size_t packed_len = 0;
                mkdir(seeds, 0755);
                seeds = harness_path(seeds, "enroll");
                mkdir(seeds, 0755);
                cr_assert_eq(cscp_frame_pack(f, CSCP_FRAME_MAX_DEFAULT, &packed, &packed_len), 0);
                cscp_file_write_atomic(harness_path(seeds, "enroll-info-rsa"), packed + CSCP_FRAME_HEADER,
                                       packed_len - CSCP_FRAME_HEADER, 0644);
                free(packed);
        }
        cr_assert_eq(cscp_enroll_check_info(info, &o, &res, err, sizeof(err)), CSCP_ENROLL_ENROLLED, "%s", res.reason);
        cr_assert(res.ek_cert_trusted);
        cr_assert_str_eq(res.method, "credential");

#define REFUSED(why)                                                                                         \
        do {                                                                                                 \
                cr_assert_eq(cscp_enroll_check_info(&copy, &o, &res, err, sizeof(err)), CSCP_ENROLL_REFUSED, \
                             "not refused: %s", why);                                                        \
                cr_assert(strstr(res.reason, why), "reason '%s' lacks '%s'", res.reason, why);               \
        } while (0)

        /* AK: truncated, and with decrypt set (not a signing-only key). */
        copy = *info;
        copy.ak_public.len--;
        REFUSED("AK public is not a TPMT_PUBLIC");
        copy = *info;
        memcpy(buf, info->ak_public.data, info->ak_public.len);
        buf[5] ^= 0x01; /* objectAttributes (bytes 4..7, big-endian): restricted (0x00010000) cleared */
        copy.ak_public = (ProtobufCBinaryData){.data = buf, .len = info->ak_public.len};
        REFUSED("not a restricted signing key");
        /* EK: not the default template (userWithAuth added). */
        copy = *info;
        memcpy(buf, info->ek_public.data, info->ek_public.len);
        buf[7] |= 0x40;
        copy.ek_public = (ProtobufCBinaryData){.data = buf, .len = info->ek_public.len};
        REFUSED("TCG default EK template");
        /* Certificate: garbage, one byte more, or certifying another key. */
        copy = *info;
        copy.ek_certificate.len = 10;
        REFUSED("not one DER certificate");
        copy = *info;
        memcpy(buf, info->ek_certificate.data, info->ek_certificate.len);
        buf[info->ek_certificate.len] = 0;
        copy.ek_certificate = (ProtobufCBinaryData){.data = buf, .len = info->ek_certificate.len + 1};
        REFUSED("not one DER certificate");
        {
                cscp_tpm_t *t = NULL;
                uint8_t ecc_ek[sizeof(TPMT_PUBLIC)];
                size_t ecc_len = 0;
                cr_assert_eq(cscp_tpm_open(tpm.tcti, &t), 0);
                cr_assert_eq(cscp_tpm_ek_public(t, CSCP_KEY_ECC_P256, ecc_ek, sizeof(ecc_ek), &ecc_len), 0);
                cscp_tpm_free(t);
                other_cert = ek_cert_make(&ca, ecc_ek, ecc_len, &other_cert_len);
                copy = *info;
                copy.ek_certificate = (ProtobufCBinaryData){.data = other_cert, .len = other_cert_len};
                REFUSED("certifies another key");
        }
        /* Signed by another CA. */
        other_cert = ek_cert_make(&other, info->ek_public.data, info->ek_public.len, &other_cert_len);
        copy = *info;
        copy.ek_certificate = (ProtobufCBinaryData){.data = other_cert, .len = other_cert_len};
        REFUSED("does not chain");
        /* No certificate, no --tofu. */
        copy = *info;
        copy.ek_certificate.len = 0;
        REFUSED("no EK certificate");
#undef REFUSED

        cscp__frame__free_unpacked(f, NULL);
        cscp_conn_free(c);
        ca_free(&ca);
        ca_free(&other);
}
