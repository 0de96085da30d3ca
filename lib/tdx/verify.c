/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quote verification (OpenSSL only, nothing fetched):
 *   tdx-quote-format         the quote parses (lib/tdx/quote.c)
 *   tdx-quote-signature      ECDSA-P256-SHA256 over header (+ v5 body descriptor) + body, attestation key
 *   tdx-qe-report-signature  ECDSA-P256-SHA256 over the 384-byte QE report, PCK leaf key
 *   tdx-qe-binding           QE REPORTDATA[0:32] = SHA-256(attestation key || QE auth data), [32:64] = 0
 *   tdx-pck-chain            PEM PCK chain -> trust anchor file, at the given time, CRLs when given
 *   tdx-report-data          REPORTDATA = the expected 64 bytes (only when asked)
 * TCB status needs TCB-info / QE-identity collateral, not evaluated here: a fact says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "error.h"
#include "tdx.h"
#include "util.h"

/* Raw P-256 point X||Y -> EVP_PKEY, or NULL. */
static EVP_PKEY *p256_from_raw(const uint8_t xy[64])
{
        uint8_t point[65];
        OSSL_PARAM_BLD *bld = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *pkey = NULL;

        point[0] = 0x04;
        memcpy(point + 1, xy, 64);
        bld = OSSL_PARAM_BLD_new();
        if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1)
                goto out;
        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                pkey = NULL;
                goto out;
        }
        /* fromdata does not check that the point is on the curve */
        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
                EVP_PKEY_free(pkey);
                pkey = NULL;
        }
out:
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        ERR_clear_error();
        return pkey;
}

/* 1 valid, 0 invalid, <0 library failure. sig is raw r||s (32 + 32 bytes). */
static int ecdsa_p256_verify(EVP_PKEY *key, const uint8_t sig[64], const uint8_t *msg, size_t msg_len)
{
        ECDSA_SIG *es = NULL;
        BIGNUM *r = NULL, *s = NULL;
        unsigned char *der = NULL;
        EVP_MD_CTX *md = NULL;
        int der_len, k = CSCP_E_CRYPTO;

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
                goto out;
        r = s = NULL; /* owned by es */
        der_len = i2d_ECDSA_SIG(es, &der);
        if (der_len <= 0)
                goto out;
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
                goto out;
        k = EVP_DigestVerify(md, der, (size_t)der_len, msg, msg_len) == 1 ? 1 : 0;
out:
        ERR_clear_error();
        EVP_MD_CTX_free(md);
        OPENSSL_free(der);
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return k;
}

static bool key_is_p256(EVP_PKEY *key)
{
        char group[64];
        size_t glen = 0;

        if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
                return false;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
                return false;
        return strcmp(group, "prime256v1") == 0;
}

/* The PEM chain as certificates, leaf first. NULL with the reason in why. */
static STACK_OF(X509) * read_chain(const uint8_t *pem, size_t len, char *why, size_t why_len)
{
        STACK_OF(X509) *chain = sk_X509_new_null();
        BIO *bio = NULL;
        X509 *x;

        while (len > 0 && (pem[len - 1] == '\0' || pem[len - 1] == '\n' || pem[len - 1] == '\r'))
                len--; /* real quotes end the PEM with NULs */
        if (!chain || len > INT32_MAX || !(bio = BIO_new_mem_buf(pem, (int)len))) {
                snprintf(why, why_len, "out of memory");
                goto fail;
        }
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                if (sk_X509_num(chain) >= CSCP_TDX_CHAIN_CERTS_MAX) {
                        X509_free(x);
                        snprintf(why, why_len, "PCK chain holds more than %d certificates", CSCP_TDX_CHAIN_CERTS_MAX);
                        goto fail;
                }
                if (!sk_X509_push(chain, x)) {
                        X509_free(x);
                        snprintf(why, why_len, "out of memory");
                        goto fail;
                }
        }
        if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || sk_X509_num(chain) == 0) {
                snprintf(why, why_len, "PCK chain is not a PEM certificate list (%d certificate(s) read)",
                         sk_X509_num(chain));
                goto fail;
        }
        ERR_clear_error();
        BIO_free(bio);
        return chain;
fail:
        ERR_clear_error();
        BIO_free(bio);
        sk_X509_pop_free(chain, X509_free);
        return NULL;
}

/* Adds every certificate (PEM) of path to store. Count or negative. */
static int load_anchors(X509_STORE *store, const char *path)
{
        uint8_t *data = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        X509 *x;
        int k, n = 0;

        k = cscp_file_read(path, 1024 * 1024, &data, &len);
        if (k < 0)
                return k;
        bio = BIO_new_mem_buf(data, (int)len);
        if (!bio) {
                k = -ENOMEM;
                goto out;
        }
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                if (X509_STORE_add_cert(store, x) != 1) {
                        X509_free(x);
                        k = CSCP_E_CRYPTO;
                        goto out;
                }
                X509_free(x);
                n++;
        }
        k = n > 0 ? n : CSCP_E_PROTO;
out:
        ERR_clear_error();
        BIO_free(bio);
        free(data);
        return k;
}

/* Adds the CRLs of path (PEM list or one DER CRL) to store. Count or negative. */
static int load_crls(X509_STORE *store, const char *path)
{
        uint8_t *data = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        X509_CRL *c;
        int k, n = 0;

        k = cscp_file_read(path, 16 * 1024 * 1024, &data, &len);
        if (k < 0)
                return k;
        bio = BIO_new_mem_buf(data, (int)len);
        if (!bio) {
                k = -ENOMEM;
                goto out;
        }
        while ((c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
                k = X509_STORE_add_crl(store, c);
                X509_CRL_free(c);
                if (k != 1) {
                        k = CSCP_E_CRYPTO;
                        goto out;
                }
                n++;
        }
        if (n == 0) {
                const unsigned char *p = data;

                c = d2i_X509_CRL(NULL, &p, (long)len);
                if (!c || p != data + len) {
                        X509_CRL_free(c);
                        k = CSCP_E_PROTO;
                        goto out;
                }
                k = X509_STORE_add_crl(store, c);
                X509_CRL_free(c);
                if (k != 1) {
                        k = CSCP_E_CRYPTO;
                        goto out;
                }
                n = 1;
        }
        k = n;
out:
        ERR_clear_error();
        BIO_free(bio);
        free(data);
        return k;
}

static void hex_fact(cscp_verdict_t *v, const char *key, const uint8_t *b, size_t n)
{
        char hex[2 * 64 + 1];

        cscp_hex_encode(b, n, hex);
        cscp_verdict_fact(v, key, "%s", hex);
}

int cscp_tdx_quote_verify(const uint8_t *buf, size_t len, const cscp_tdx_verify_opts_t *opts, cscp_verdict_t *v)
{
        cscp_tdx_quote_t q;
        char err[256];
        EVP_PKEY *ak = NULL;
        EVP_PKEY *pck_key = NULL;
        STACK_OF(X509) *chain = NULL;
        X509_STORE *store = NULL;
        X509_STORE_CTX *sctx = NULL;
        EVP_MD_CTX *md = NULL;
        uint8_t digest[32];
        unsigned dlen = 0;
        int k;

        if (!opts || !opts->root_file) {
                cscp_verdict_error(v, "no TDX trust anchor given (--tdx-root)");
                return -EINVAL;
        }

        /* The trust anchors first: without them nothing can be decided. */
        store = X509_STORE_new();
        if (!store) {
                cscp_verdict_error(v, "out of memory");
                return -ENOMEM;
        }
        k = load_anchors(store, opts->root_file);
        if (k < 0) {
                cscp_verdict_error(v, "TDX trust anchor %s: %s", opts->root_file,
                                   k == CSCP_E_PROTO ? "no PEM certificate in it" : cscp_strerror(k));
                goto out;
        }
        for (size_t i = 0; i < opts->n_crl_files; i++) {
                k = load_crls(store, opts->crl_files[i]);
                if (k < 0) {
                        cscp_verdict_error(v, "CRL %s: %s", opts->crl_files[i],
                                           k == CSCP_E_PROTO ? "not a PEM or DER CRL" : cscp_strerror(k));
                        goto out;
                }
        }

        k = cscp_tdx_quote_parse(buf, len, &q, err, sizeof(err));
        if (k < 0) {
                cscp_verdict_claim(v, "tdx-quote-format", false, "%s", err);
                k = 0;
                goto out;
        }
        cscp_verdict_claim(v, "tdx-quote-format", true, "quote v%u, %s TD report body, %zu-byte signed region%s",
                           q.version, q.tdx15 ? "TDX 1.5" : "TDX 1.0", q.signed_len,
                           q.trailing_len ? " (trailing bytes after the signature data ignored)" : "");
        cscp_verdict_fact(v, "tdx-version", "%u", q.version);
        hex_fact(v, "tdx-mrtd", q.mrtd, sizeof(q.mrtd));
        for (int i = 0; i < 4; i++) {
                char key[16];

                snprintf(key, sizeof(key), "tdx-rtmr%d", i);
                hex_fact(v, key, q.rtmr[i], 48);
        }
        hex_fact(v, "tdx-report-data-value", q.report_data, 64);
        cscp_verdict_fact(v, "tdx-td-debug", "%s", (q.td_attributes[0] & 1) ? "yes" : "no");
        cscp_verdict_fact(v, "tdx-tcb-status", "not evaluated (no collateral given)");

        /* 1. quote signature with the attestation key */
        ak = p256_from_raw(q.attest_key);
        if (!ak)
                cscp_verdict_claim(v, "tdx-quote-signature", false, "attestation key is not a valid P-256 point");
        else {
                k = ecdsa_p256_verify(ak, q.signature, q.signed_region, q.signed_len);
                if (k < 0) {
                        cscp_verdict_error(v, "ECDSA verification failed in the crypto library");
                        goto out;
                }
                cscp_verdict_claim(v, "tdx-quote-signature", k == 1,
                                   k == 1 ? "ECDSA-P256-SHA256 over the %zu-byte header+body, attestation key"
                                          : "ECDSA-P256-SHA256 signature over the %zu-byte header+body does not "
                                            "verify with the attestation key",
                                   q.signed_len);
        }

        /* 2. QE report signature with the PCK leaf key */
        chain = read_chain(q.pck_chain, q.pck_chain_len, err, sizeof(err));
        if (!chain)
                cscp_verdict_claim(v, "tdx-qe-report-signature", false, "%s", err);
        else {
                pck_key = X509_get_pubkey(sk_X509_value(chain, 0));
                if (!key_is_p256(pck_key))
                        cscp_verdict_claim(v, "tdx-qe-report-signature", false,
                                           "PCK leaf certificate key is not ECDSA P-256");
                else {
                        k = ecdsa_p256_verify(pck_key, q.qe_report_sig, q.qe_report, sizeof(q.qe_report));
                        if (k < 0) {
                                cscp_verdict_error(v, "ECDSA verification failed in the crypto library");
                                goto out;
                        }
                        cscp_verdict_claim(v, "tdx-qe-report-signature", k == 1,
                                           k == 1 ? "ECDSA-P256-SHA256 over the QE report, PCK leaf key"
                                                  : "QE report signature does not verify with the PCK leaf key");
                }
        }

        /* 3. QE report binds the attestation key: REPORTDATA = SHA-256(AK || auth data) || 0^32 */
        {
                static const uint8_t zero[32];

                md = EVP_MD_CTX_new();
                if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
                    EVP_DigestUpdate(md, q.attest_key, sizeof(q.attest_key)) != 1 ||
                    (q.qe_auth_len && EVP_DigestUpdate(md, q.qe_auth, q.qe_auth_len) != 1) ||
                    EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
                        cscp_verdict_error(v, "SHA-256 failed in the crypto library");
                        k = CSCP_E_CRYPTO;
                        goto out;
                }
                bool ok1 = CRYPTO_memcmp(digest, q.qe_report_data, 32) == 0;
                bool ok2 = CRYPTO_memcmp(zero, q.qe_report_data + 32, 32) == 0;
                cscp_verdict_claim(v, "tdx-qe-binding", ok1 && ok2,
                                   ok1 && ok2 ? "QE REPORTDATA = SHA-256(attestation key || %zu-byte QE auth data)"
                                   : !ok1     ? "QE REPORTDATA[0:32] is not SHA-256(attestation key || QE auth data)"
                                              : "QE REPORTDATA[32:64] is not zero",
                                   q.qe_auth_len);
        }

        /* 4. PCK chain to the trust anchor */
        if (!chain)
                cscp_verdict_claim(v, "tdx-pck-chain", false, "no PCK certificate chain (see tdx-qe-report-signature)");
        else {
                X509_VERIFY_PARAM *param;
                time_t at = opts->at ? opts->at : time(NULL);
                unsigned long flags = 0;

                sctx = X509_STORE_CTX_new();
                if (!sctx || X509_STORE_CTX_init(sctx, store, sk_X509_value(chain, 0), chain) != 1) {
                        cscp_verdict_error(v, "out of memory");
                        k = -ENOMEM;
                        goto out;
                }
                param = X509_STORE_CTX_get0_param(sctx);
                X509_VERIFY_PARAM_set_time(param, at);
                X509_VERIFY_PARAM_set_depth(param, CSCP_TDX_CHAIN_DEPTH_MAX);
                if (opts->n_crl_files)
                        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
                X509_VERIFY_PARAM_set_flags(param, flags);
                k = X509_verify_cert(sctx);
                if (k == 1) {
                        char subj[256] = "";
                        STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(sctx);
                        X509 *top = sk_X509_value(built, sk_X509_num(built) - 1);

                        X509_NAME_oneline(X509_get_subject_name(top), subj, sizeof(subj));
                        cscp_verdict_claim(v, "tdx-pck-chain", true, "%d certificates up to %s%s", sk_X509_num(built),
                                           subj, opts->n_crl_files ? ", CRLs checked" : "");
                } else {
                        int e = X509_STORE_CTX_get_error(sctx);

                        cscp_verdict_claim(v, "tdx-pck-chain", false, "certificate at depth %d: %s",
                                           X509_STORE_CTX_get_error_depth(sctx), X509_verify_cert_error_string(e));
                }
                ERR_clear_error();
        }

        /* 5. REPORTDATA as expected */
        if (opts->report_data) {
                bool ok = CRYPTO_memcmp(opts->report_data, q.report_data, 64) == 0;

                cscp_verdict_claim(v, "tdx-report-data", ok,
                                   ok ? "REPORTDATA is the expected 64 bytes" : "REPORTDATA differs from the expected");
        }
        k = 0;
out:
        OPENSSL_cleanse(digest, sizeof(digest));
        EVP_MD_CTX_free(md);
        X509_STORE_CTX_free(sctx);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(pck_key);
        EVP_PKEY_free(ak);
        X509_STORE_free(store);
        if (k < 0 && !v->error)
                cscp_verdict_error(v, "%s", cscp_strerror(k));
        return k < 0 ? k : 0;
}
