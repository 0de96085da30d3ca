/* SPDX-License-Identifier: Apache-2.0 */
/* The challenger's half of enrollment (include/cscp/enroll.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "cscp/credential.h"
#include "cscp/enroll.h"
#include "cscp/error.h"
#include "cscp/frame.h"
#include "cscp/quote.h"
#include "cscp/tpm.h"
#include "cscp/util.h"

/* TCG TPM attributes in the EK certificate's SubjectAltName directoryName (EK Credential Profile §3.2.9). */
#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL        "2.23.133.2.2"
#define OID_TPM_VERSION      "2.23.133.2.3"

#define AK_ATTRS_REQUIRED                                                                                     \
        (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
         TPMA_OBJECT_SENSITIVEDATAORIGIN)

static int refuse(cscp_enroll_result_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(cscp_enroll_result_t *res, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
        va_end(ap);
        res->verdict = CSCP_ENROLL_REFUSED;
        res->method = NULL;
        return CSCP_ENROLL_REFUSED;
}

static int public_parse(const ProtobufCBinaryData *b, TPMT_PUBLIC *ret)
{
        size_t off = 0;

        memset(ret, 0, sizeof(*ret));
        if (b->len == 0 || b->len > sizeof(TPMT_PUBLIC))
                return CSCP_E_PROTO;
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(b->data, b->len, &off, ret) != TSS2_RC_SUCCESS || off != b->len)
                return CSCP_E_PROTO;
        return 0;
}

/* The EK must be exactly a TCG default-template EK (L-1 RSA-2048 or L-2 ECC P-256) apart from its key. */
static int ek_check(const ProtobufCBinaryData *b, cscp_enroll_result_t *res, EVP_PKEY **ret_key)
{
        uint8_t want[sizeof(TPMT_PUBLIC)];
        TPM2B_PUBLIC tmpl;
        TPMT_PUBLIC pub;
        size_t off = 0;
        int r;

        if (public_parse(b, &pub) < 0)
                return refuse(res, "the EK public is not a TPMT_PUBLIC");
        if (pub.type == TPM2_ALG_RSA) {
                cscp_tpm_ek_template(CSCP_KEY_RSA_2048, &tmpl);
                tmpl.publicArea.unique = pub.unique;
                snprintf(res->ek_type, sizeof(res->ek_type), "RSA-%u", pub.parameters.rsaDetail.keyBits);
        } else if (pub.type == TPM2_ALG_ECC) {
                cscp_tpm_ek_template(CSCP_KEY_ECC_P256, &tmpl);
                tmpl.publicArea.unique = pub.unique;
                snprintf(res->ek_type, sizeof(res->ek_type), "%s",
                         pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 ? "ECC P-256" : "ECC");
        } else
                return refuse(res, "the EK is neither RSA nor ECC (type 0x%04x)", pub.type);
        if (Tss2_MU_TPMT_PUBLIC_Marshal(&tmpl.publicArea, want, sizeof(want), &off) != TSS2_RC_SUCCESS ||
            off != b->len || memcmp(want, b->data, off) != 0)
                return refuse(res, "the EK public is not from the TCG default EK template "
                                   "(RSA-2048 L-1 or ECC P-256 L-2: restricted decrypt, AES-128-CFB, PolicySecret)");
        r = cscp_tpmt_public_to_pkey(&pub, ret_key);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return refuse(res, "the EK public key is not a valid key: %s", cscp_strerror(r));
        return 0;
}

static int ak_check(const ProtobufCBinaryData *b, cscp_enroll_result_t *res)
{
        TPMT_PUBLIC pub;
        TPM2B_NAME name;
        EVP_PKEY *key = NULL;
        int r;

        if (public_parse(b, &pub) < 0)
                return refuse(res, "the AK public is not a TPMT_PUBLIC");
        if (pub.type != TPM2_ALG_RSA && pub.type != TPM2_ALG_ECC)
                return refuse(res, "the AK is neither RSA nor ECC (type 0x%04x)", pub.type);
        if ((pub.objectAttributes & AK_ATTRS_REQUIRED) != AK_ATTRS_REQUIRED ||
            (pub.objectAttributes & TPMA_OBJECT_DECRYPT))
                return refuse(res,
                              "the AK is not a restricted signing key that stays in its TPM (attributes 0x%08x: "
                              "restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin wanted, decrypt not)",
                              (unsigned)pub.objectAttributes);
        r = cscp_tpmt_public_to_pkey(&pub, &key);
        EVP_PKEY_free(key);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return refuse(res, "the AK public key is not a valid key: %s", cscp_strerror(r));
        r = cscp_tpm_public_name(b->data, b->len, &name);
        if (r < 0 || name.size <= 2 || name.size > sizeof(res->ak_name))
                return refuse(res, "the AK has no usable Name (nameAlg 0x%04x)", pub.nameAlg);
        memcpy(res->ak_name, name.name, name.size);
        res->ak_name_len = name.size;
        return 0;
}

/* Printable copy of an ASN.1 string (anything else becomes '?'). */
static void asn1_text(const ASN1_STRING *s, char *out, size_t outlen)
{
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, s);
        size_t k = 0;

        for (int i = 0; i < n && k + 1 < outlen; i++)
                out[k++] = utf8[i] >= 0x20 && utf8[i] < 0x7f ? (char)utf8[i] : '?';
        out[k] = '\0';
        OPENSSL_free(utf8);
}

/* Reads the TPM manufacturer attributes from the SubjectAltName; -1 if a SAN is there but does not decode. */
static int san_read(X509 *x, cscp_enroll_result_t *res)
{
        GENERAL_NAMES *names;
        int crit = -1;

        names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
        if (!names)
                return crit == -1 ? 0 : -1; /* -1: absent; -2: more than one; else: does not decode */
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

                if (gn->type != GEN_DIRNAME)
                        continue;
                for (int k = 0; k < X509_NAME_entry_count(gn->d.dirn); k++) {
                        const X509_NAME_ENTRY *e = X509_NAME_get_entry(gn->d.dirn, k);
                        char oid[64];

                        if (OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(e), 1) <= 0)
                                continue;
                        if (strcmp(oid, OID_TPM_MANUFACTURER) == 0)
                                asn1_text(X509_NAME_ENTRY_get_data(e), res->tpm_manufacturer,
                                          sizeof(res->tpm_manufacturer));
                        else if (strcmp(oid, OID_TPM_MODEL) == 0)
                                asn1_text(X509_NAME_ENTRY_get_data(e), res->tpm_model, sizeof(res->tpm_model));
                        else if (strcmp(oid, OID_TPM_VERSION) == 0)
                                asn1_text(X509_NAME_ENTRY_get_data(e), res->tpm_version, sizeof(res->tpm_version));
                }
        }
        GENERAL_NAMES_free(names);
        return 0;
}

/*
 * EK certificates mark their SubjectAltName (a directoryName of TPM
 * attributes) critical and may use encodings OpenSSL does not handle. That
 * one extension is ours to judge (san_read decodes it); any other critical
 * extension OpenSSL does not know still fails the chain.
 */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
        X509 *x;

        if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION)
                return ok;
        x = X509_STORE_CTX_get_current_cert(ctx);
        if (!x || X509_STORE_CTX_get_error_depth(ctx) != 0)
                return 0; /* only the EK certificate itself */
        for (int i = 0; i < X509_get_ext_count(x); i++) {
                X509_EXTENSION *ext = X509_get_ext(x, i);

                if (!X509_EXTENSION_get_critical(ext) || X509_supported_extension(ext))
                        continue;
                if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
                        return 0;
        }
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
}

static int ca_load(X509_STORE *store, const char *ca, char *err, size_t errlen)
{
        if (X509_STORE_load_file(store, ca) != 1) {
                snprintf(err, errlen, "cannot load the EK CA bundle %s: not a readable file of PEM certificates", ca);
                ERR_clear_error();
                return -ENOENT;
        }
        return 0;
}

static int cert_chain(X509 *x, const char *ca, cscp_enroll_result_t *res, char *err, size_t errlen)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int r, vr;

        if (!store || !ctx) {
                r = -ENOMEM;
                goto out;
        }
        r = ca_load(store, ca, err, errlen);
        if (r < 0)
                goto out;
        X509_STORE_set_verify_cb(store, verify_cb);
        if (X509_STORE_CTX_init(ctx, store, x, NULL) != 1) {
                r = CSCP_E_CRYPTO;
                goto out;
        }
        if (X509_verify_cert(ctx) != 1) {
                vr = X509_STORE_CTX_get_error(ctx);
                r = refuse(res, "the EK certificate does not chain to %s: %s", ca, X509_verify_cert_error_string(vr));
                goto out;
        }
        r = 0;
out:
        ERR_clear_error();
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        return r;
}

static int cert_check(const ProtobufCBinaryData *b, EVP_PKEY *ek_key, const char *ca, cscp_enroll_result_t *res,
                      char *err, size_t errlen)
{
        const unsigned char *p = b->data;
        BIO *bio = NULL;
        X509 *x;
        int r;

        if (b->len > CSCP_TPM_EK_CERT_MAX)
                return refuse(res, "the EK certificate is over %d bytes", CSCP_TPM_EK_CERT_MAX);
        x = d2i_X509(NULL, &p, (long)b->len);
        if (!x || p != b->data + b->len) {
                ERR_clear_error();
                X509_free(x);
                return refuse(res, "the EK certificate is not one DER certificate");
        }
        bio = BIO_new(BIO_s_mem());
        if (bio && X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) >= 0) {
                int n = BIO_read(bio, res->ek_cert_issuer, (int)sizeof(res->ek_cert_issuer) - 1);
                res->ek_cert_issuer[n > 0 ? n : 0] = '\0';
                for (char *c = res->ek_cert_issuer; *c; c++)
                        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                                *c = '?';
        }
        BIO_free(bio);
        if (san_read(x, res) < 0) {
                r = refuse(res, "the EK certificate's SubjectAltName does not decode");
                goto out;
        }
        if (!ek_key || EVP_PKEY_eq(X509_get0_pubkey(x), ek_key) != 1) {
                r = refuse(res, "the EK certificate certifies another key than the EK public attestd sent");
                goto out;
        }
        r = 0;
        if (ca) {
                r = cert_chain(x, ca, res, err, errlen);
                if (r == 0)
                        res->ek_cert_trusted = true;
        }
out:
        ERR_clear_error();
        X509_free(x);
        return r;
}

int cscp_enroll_check_info(const Cscp__EnrollInfo *info, const cscp_enroll_opts_t *o, cscp_enroll_result_t *res,
                           char *err, size_t errlen)
{
        EVP_PKEY *ek_key = NULL;
        int r;

        if (!info || !o || !res || !err || errlen == 0)
                return -EINVAL;
        memset(res, 0, sizeof(*res));
        err[0] = '\0';
        r = ak_check(&info->ak_public, res);
        if (r != 0)
                return r;
        if (info->ek_public.len > 0) {
                r = ek_check(&info->ek_public, res, &ek_key);
                if (r != 0)
                        goto out;
        }
        if (info->ek_certificate.len > 0) {
                res->ek_cert_present = true;
                if (!ek_key) {
                        r = refuse(res, "an EK certificate came without the EK public");
                        goto out;
                }
                r = cert_check(&info->ek_certificate, ek_key, o->ek_ca, res, err, errlen);
                if (r != 0)
                        goto out;
        }
        if (res->ek_cert_trusted)
                res->method = "credential";
        else if (!o->tofu) {
                if (!ek_key)
                        r = refuse(res, "attestd sent no EK (trust it on first use only with --tofu)");
                else if (!res->ek_cert_present)
                        r = refuse(res, "the host TPM has no EK certificate to check "
                                        "(trust it on first use only with --tofu)");
                else
                        r = refuse(res, "no EK CA bundle to check the EK certificate against "
                                        "(give --ek-ca FILE, or trust it on first use with --tofu)");
                goto out;
        } else
                res->method = "tofu";
        res->verdict = CSCP_ENROLL_ENROLLED;
        r = CSCP_ENROLL_ENROLLED;
out:
        EVP_PKEY_free(ek_key);
        return r;
}

static void peer_error(const Cscp__Error *e, const char *what, char *out, size_t outlen)
{
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(&cscp__error_code__descriptor, e->code);
        char *msg = cscp_text_sanitize(strdup(e->message ? e->message : ""));

        snprintf(out, outlen, "attestd refused %s: %s: %s", what, ev ? ev->name : "?", msg ? msg : "");
        free(msg);
}

static int activate(cscp_conn_t *conn, const Cscp__EnrollInfo *info, cscp_enroll_result_t *res, char *err,
                    size_t errlen)
{
        uint8_t secret[CSCP_ENROLL_CREDENTIAL_LEN];
        cscp_credential_t cred;
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Activate act = CSCP__ACTIVATE__INIT;
        int r;

        if (RAND_bytes(secret, sizeof(secret)) != 1) {
                snprintf(err, errlen, "cannot draw a credential from the OpenSSL RNG");
                return CSCP_E_CRYPTO;
        }
        r = cscp_credential_make(info->ek_public.data, info->ek_public.len, res->ak_name, res->ak_name_len, secret,
                                 sizeof(secret), &cred);
        if (r < 0) {
                snprintf(err, errlen, "cannot wrap a credential to this EK: %s", cscp_strerror(r));
                goto out;
        }
        act.version = CSCP_PROTOCOL_VERSION;
        act.ek_public = info->ek_public;
        act.credential_blob = (ProtobufCBinaryData){.data = cred.blob, .len = cred.blob_len};
        act.secret = (ProtobufCBinaryData){.data = cred.secret, .len = cred.secret_len};
        req.body_case = CSCP__FRAME__BODY_ACTIVATE;
        req.activate = &act;
        r = cscp_conn_roundtrip(conn, &req, &resp, err, errlen);
        if (r < 0)
                goto out;
        if (resp->body_case == CSCP__FRAME__BODY_ERROR) {
                /* attestd's TPM could not recover it: the AK and EK are not one TPM's, as far as we can tell. */
                if (resp->error->code == CSCP__ERROR_CODE__ERR_BAD_REQUEST) {
                        char why[400];
                        peer_error(resp->error, "the credential", why, sizeof(why));
                        r = refuse(res, "activation failed: %s", why);
                } else {
                        peer_error(resp->error, "the credential", err, errlen);
                        r = CSCP_E_PEER;
                }
                goto out;
        }
        if (resp->body_case != CSCP__FRAME__BODY_ACTIVATED) {
                snprintf(err, errlen, "attestd answered Activate with something other than Activated");
                r = CSCP_E_PROTO;
                goto out;
        }
        if (resp->activated->credential.len != sizeof(secret) ||
            CRYPTO_memcmp(resp->activated->credential.data, secret, sizeof(secret)) != 0) {
                r = refuse(res, "activation failed: attestd returned another credential than the one wrapped "
                                "to its EK for its AK");
                goto out;
        }
        res->activated = true;
        r = 0;
out:
        if (resp) {
                if (resp->body_case == CSCP__FRAME__BODY_ACTIVATED)
                        OPENSSL_cleanse(resp->activated->credential.data, resp->activated->credential.len);
                cscp__frame__free_unpacked(resp, NULL);
        }
        OPENSSL_cleanse(secret, sizeof(secret));
        OPENSSL_cleanse(&cred, sizeof(cred));
        return r;
}

int cscp_enroll(cscp_conn_t *conn, const cscp_enroll_opts_t *o, cscp_enroll_result_t *res, char *err, size_t errlen)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__EnrollRequest er = CSCP__ENROLL_REQUEST__INIT;
        const char *method;
        int r;

        if (!conn || !o || !res || !err || errlen == 0)
                return -EINVAL;
        memset(res, 0, sizeof(*res));
        err[0] = '\0';
        if (o->ek_ca) {
                /* A bundle we cannot use is the caller's error, whether or not the host has a certificate. */
                X509_STORE *store = X509_STORE_new();
                r = store ? ca_load(store, o->ek_ca, err, errlen) : -ENOMEM;
                X509_STORE_free(store);
                if (r < 0)
                        return r;
        }
        er.version = CSCP_PROTOCOL_VERSION;
        req.body_case = CSCP__FRAME__BODY_ENROLL_REQUEST;
        req.enroll_request = &er;
        r = cscp_conn_roundtrip(conn, &req, &resp, err, errlen);
        if (r < 0)
                return r;
        if (resp->body_case == CSCP__FRAME__BODY_ERROR) {
                peer_error(resp->error, "the EnrollRequest", err, errlen);
                r = CSCP_E_PEER;
                goto out;
        }
        if (resp->body_case != CSCP__FRAME__BODY_ENROLL_INFO) {
                snprintf(err, errlen, "attestd answered EnrollRequest with something other than EnrollInfo");
                r = CSCP_E_PROTO;
                goto out;
        }
        r = cscp_enroll_check_info(resp->enroll_info, o, res, err, errlen);
        if (r != CSCP_ENROLL_ENROLLED)
                goto out;
        method = res->method;
        if (resp->enroll_info->ek_public.len > 0) {
                r = activate(conn, resp->enroll_info, res, err, errlen);
                if (r != 0)
                        goto out;
        }
        if (o->store) {
                r = cscp_store_enroll(o->store, o->host, res->ak_name, res->ak_name_len,
                                      resp->enroll_info->ak_public.data, resp->enroll_info->ak_public.len, method);
                if (r < 0) {
                        snprintf(err, errlen, "cannot record the AK in the store: %s (%s)", cscp_strerror(r),
                                 cscp_store_error(o->store));
                        goto out;
                }
        }
        res->method = method;
        res->verdict = CSCP_ENROLL_ENROLLED;
        r = CSCP_ENROLL_ENROLLED;
out:
        cscp__frame__free_unpacked(resp, NULL);
        return r;
}
