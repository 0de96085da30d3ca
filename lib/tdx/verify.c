/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quote verification (OpenSSL only, nothing fetched):
 *   tdx-quote-format         the quote parses (lib/tdx/quote.c)
 *   tdx-quote-signature      ECDSA-P256-SHA256 over header (+ v5 body descriptor) + body, attestation key
 *   tdx-qe-report-signature  ECDSA-P256-SHA256 over the 384-byte QE report, PCK leaf key
 *   tdx-qe-binding           QE REPORTDATA[0:32] = SHA-256(attestation key || QE auth data), [32:64] = 0
 *   tdx-pck-chain            PEM PCK chain -> trust anchor file, at the given time, CRLs when given
 *   tdx-report-data          REPORTDATA = the expected 64 bytes (only when asked)
 * With a collateral directory (opts->collateral_dir, lib/tdx/collateral.c):
 *   tdx-collateral           TCB info + QE identity well formed, ECDSA-P256-SHA256 over their exact JSON
 *                            bytes by an "Intel SGX TCB Signing" certificate that chains to the trust anchor
 *                            at the given time (CRLs when given), issueDate <= at <= nextUpdate
 *   tdx-qe-identity          the QE report matches the TD_QE identity
 *   tdx-tcb-status           the evaluated TCB status is UpToDate or in opts->tcb_allowed
 * Without one the TCB status is not evaluated: a fact says so.
 */
#include <errno.h>
#include <stdarg.h>
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
static STACK_OF(X509) * read_chain(const char *what, const uint8_t *pem, size_t len, char *why, size_t why_len)
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
                        snprintf(why, why_len, "%s holds more than %d certificates", what, CSCP_TDX_CHAIN_CERTS_MAX);
                        goto fail;
                }
                if (!sk_X509_push(chain, x)) {
                        X509_free(x);
                        snprintf(why, why_len, "out of memory");
                        goto fail;
                }
        }
        if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || sk_X509_num(chain) == 0) {
                snprintf(why, why_len, "%s is not a PEM certificate list (%d certificate(s) read)", what,
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

/* ------------------------------------------------------------------ collateral */

#define TCB_SIGNING_CN "Intel SGX TCB Signing"

static void fmt_time(time_t t, char out[32])
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, 32, "@%lld", (long long)t);
}

/* Appends "; <text>" (or <text>) to buf. */
__attribute__((format(printf, 3, 4))) static void add_problem(char *buf, size_t cap, const char *fmt, ...)
{
        size_t n = strlen(buf);
        va_list ap;

        if (n + 3 >= cap)
                return;
        if (n) {
                memcpy(buf + n, "; ", 3);
                n += 2;
        }
        va_start(ap, fmt);
        vsnprintf(buf + n, cap - n, fmt, ap);
        va_end(ap);
}

/*
 * The TCB signing chain: its first certificate must be "Intel SGX TCB Signing"
 * with a P-256 key and chain to the trust anchor at `at` (depth limit, CRLs as
 * for the PCK chain). *ret_key is that key whenever it is P-256, so that the
 * signatures are checked (and reported) even when the chain is not good.
 */
static int check_signer(const cscp_tdx_collateral_t *c, X509_STORE *store, time_t at, unsigned long flags,
                        EVP_PKEY **ret_key, char *desc, size_t desc_len, char *problems, size_t cap)
{
        STACK_OF(X509) *chain = NULL;
        X509_STORE_CTX *sctx = NULL;
        EVP_PKEY *key = NULL;
        char why[320], cn[128] = "";
        X509 *leaf;
        int k = 0;

        *ret_key = NULL;
        if (!c->chain_pem) {
                add_problem(problems, cap, "%s", c->chain_err);
                return 0;
        }
        chain = read_chain(CSCP_TDX_COLLATERAL_CHAIN, c->chain_pem, c->chain_len, why, sizeof(why));
        if (!chain) {
                add_problem(problems, cap, "%s", why);
                return 0;
        }
        leaf = sk_X509_value(chain, 0);
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) < 0)
                cn[0] = '\0';
        if (strcmp(cn, TCB_SIGNING_CN) != 0)
                add_problem(problems, cap,
                            CSCP_TDX_COLLATERAL_CHAIN ": the first certificate's CN is \"%s\", not \"" TCB_SIGNING_CN
                                                      "\"",
                            cn);
        key = X509_get_pubkey(leaf);
        if (!key_is_p256(key)) {
                add_problem(problems, cap, CSCP_TDX_COLLATERAL_CHAIN ": the signing key is not ECDSA P-256");
                EVP_PKEY_free(key);
                key = NULL;
        }
        sctx = X509_STORE_CTX_new();
        if (!sctx || X509_STORE_CTX_init(sctx, store, leaf, chain) != 1) {
                k = -ENOMEM;
                goto out;
        }
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx), at);
        X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(sctx), CSCP_TDX_CHAIN_DEPTH_MAX);
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), flags);
        if (X509_verify_cert(sctx) == 1) {
                STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(sctx);
                char subj[256] = "";

                X509_NAME_oneline(X509_get_subject_name(sk_X509_value(built, sk_X509_num(built) - 1)), subj,
                                  sizeof(subj));
                snprintf(desc, desc_len, "signed by CN=%s, %d certificates up to %s%s", cn, sk_X509_num(built), subj,
                         flags ? ", CRLs checked" : "");
        } else
                add_problem(problems, cap, CSCP_TDX_COLLATERAL_CHAIN ": certificate at depth %d: %s",
                            X509_STORE_CTX_get_error_depth(sctx),
                            X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        *ret_key = key;
        key = NULL;
out:
        ERR_clear_error();
        EVP_PKEY_free(key);
        X509_STORE_CTX_free(sctx);
        sk_X509_pop_free(chain, X509_free);
        return k;
}

/* One signed document: the signature over its exact bytes, and issueDate <= at <= nextUpdate. */
static int check_doc(const char *file, const char *what, const char *member, EVP_PKEY *key, const uint8_t sig[64],
                     const uint8_t *body, size_t body_len, time_t issue, time_t next, time_t at, char *problems,
                     size_t cap)
{
        char t1[32], t2[32];

        if (key) {
                int k = ecdsa_p256_verify(key, sig, body, body_len);

                if (k < 0)
                        return k;
                if (k == 0)
                        add_problem(problems, cap,
                                    "%s: the signature does not verify over the %zu-byte \"%s\" value with the TCB "
                                    "signing key",
                                    file, body_len, member);
        }
        fmt_time(at, t2);
        if (at > next) {
                fmt_time(next, t1);
                add_problem(problems, cap, "%s expired: nextUpdate %s < at %s", what, t1, t2);
        }
        if (at < issue) {
                fmt_time(issue, t1);
                add_problem(problems, cap, "%s not yet valid: issueDate %s > at %s", what, t1, t2);
        }
        return 0;
}

static bool tcb_allowed(const cscp_tdx_verify_opts_t *opts, cscp_tdx_tcb_status_t s)
{
        if (s == CSCP_TDX_TCB_UP_TO_DATE)
                return true;
        if (s > CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED)
                return false; /* no matching level, mismatch: never */
        for (size_t i = 0; opts->tcb_allowed && i < opts->n_tcb_allowed; i++)
                if (opts->tcb_allowed[i] && strcmp(opts->tcb_allowed[i], cscp_tdx_tcb_status_name(s)) == 0)
                        return true;
        return false;
}

/* tdx-collateral, tdx-qe-identity, tdx-tcb-status. Negative on a library failure. */
static int collateral_claims(const cscp_tdx_quote_t *q, X509 *pck_leaf, X509_STORE *store, time_t at,
                             unsigned long flags, const cscp_tdx_collateral_t *c, const cscp_tdx_verify_opts_t *opts,
                             cscp_verdict_t *v)
{
        static const char NOT_VERIFIED[] = ", but the collateral did not verify (see tdx-collateral)";
        const cscp_tdx_tcb_info_t *ti = c->have_tcb_info ? &c->tcb_info : NULL;
        const cscp_tdx_qe_identity_t *qe = c->have_qe_identity ? &c->qe_identity : NULL;
        char problems[2048] = "", signer[512] = "", why[320] = "", t1[32], t2[32], fmspc[13];
        cscp_tdx_tcb_eval_t *r = NULL;
        cscp_tdx_pck_ext_t ext;
        EVP_PKEY *key = NULL;
        bool col_ok, ext_ok = false;
        int k;

        k = check_signer(c, store, at, flags, &key, signer, sizeof(signer), problems, sizeof(problems));
        if (k < 0)
                goto out;
        if (!ti)
                add_problem(problems, sizeof(problems), "%s", c->tcb_info_err);
        else if ((k = check_doc(CSCP_TDX_COLLATERAL_TCB_INFO, "tcb info", "tcbInfo", key, ti->signature, ti->body,
                                ti->body_len, ti->issue_date, ti->next_update, at, problems, sizeof(problems))) < 0)
                goto out;
        if (!qe)
                add_problem(problems, sizeof(problems), "%s", c->qe_identity_err);
        else if ((k = check_doc(CSCP_TDX_COLLATERAL_QE_IDENTITY, "qe identity", "enclaveIdentity", key, qe->signature,
                                qe->body, qe->body_len, qe->issue_date, qe->next_update, at, problems,
                                sizeof(problems))) < 0)
                goto out;
        col_ok = problems[0] == '\0';
        if (col_ok) {
                cscp_hex_encode(ti->fmspc, 6, fmspc);
                fmt_time(ti->next_update, t1);
                fmt_time(qe->next_update, t2);
                cscp_verdict_claim(v, "tdx-collateral", true,
                                   CSCP_TDX_COLLATERAL_TCB_INFO " (TDX v%u, FMSPC %s, evaluation data %u, next update "
                                                                "%s) and " CSCP_TDX_COLLATERAL_QE_IDENTITY
                                                                " (TD_QE v%u, next update %s): %s",
                                   ti->version, fmspc, ti->eval_number, t1, qe->version, t2, signer);
        } else
                cscp_verdict_claim(v, "tdx-collateral", false, "%s", problems);

        if (pck_leaf)
                ext_ok = cscp_tdx_pck_ext_from_x509(pck_leaf, &ext, why, sizeof(why)) == 0;
        else
                snprintf(why, sizeof(why), "no PCK certificate (see tdx-qe-report-signature)");
        if (ext_ok) {
                cscp_hex_encode(ext.fmspc, 6, fmspc);
                cscp_verdict_fact(v, "tdx-fmspc", "%s", fmspc);
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
                k = -ENOMEM;
                goto out;
        }
        if (qe) {
                cscp_tdx_tcb_evaluate(q, ext_ok ? &ext : NULL, ti, qe, r);
                cscp_verdict_claim(v, "tdx-qe-identity", r->qe_identity_ok && col_ok, "%s%s", r->qe_why,
                                   r->qe_identity_ok && !col_ok ? NOT_VERIFIED : "");
        } else
                cscp_verdict_claim(v, "tdx-qe-identity", false,
                                   "not evaluated: " CSCP_TDX_COLLATERAL_QE_IDENTITY
                                   " did not parse (see tdx-collateral)");

        if (!ti)
                cscp_verdict_claim(v, "tdx-tcb-status", false,
                                   "not evaluated: " CSCP_TDX_COLLATERAL_TCB_INFO
                                   " did not parse (see tdx-collateral)");
        else if (!ext_ok)
                cscp_verdict_claim(v, "tdx-tcb-status", false, "not evaluated: %s", why);
        else if (!qe)
                cscp_verdict_claim(v, "tdx-tcb-status", false,
                                   "not evaluated: " CSCP_TDX_COLLATERAL_QE_IDENTITY
                                   " did not parse (see tdx-collateral)");
        else {
                const char *name = cscp_tdx_tcb_status_name(r->status);
                bool allowed = tcb_allowed(opts, r->status);
                char level[160] = "", module[160] = "";

                if (r->level >= 0)
                        snprintf(level, sizeof(level), " at TCB level %d of %zu (tcbDate %s, %s)", r->level + 1,
                                 ti->n_levels, ti->levels[r->level].tcb_date,
                                 cscp_tdx_tcb_status_name(ti->levels[r->level].status));
                if (r->module_level >= 0)
                        snprintf(module, sizeof(module), "; TDX module %s level %d: %s",
                                 ti->module_ids[r->module_id].id, r->module_level + 1,
                                 cscp_tdx_tcb_status_name(r->module_status));
                if (r->status == CSCP_TDX_TCB_NO_MATCH || r->status == CSCP_TDX_TCB_MISMATCH)
                        cscp_verdict_claim(v, "tdx-tcb-status", false, "%s: %s%s", name, r->why,
                                           col_ok ? "" : NOT_VERIFIED);
                else
                        cscp_verdict_claim(v, "tdx-tcb-status", allowed && col_ok, "%s%s%s; QE ISVSVN %u: %s%s%s%s%s",
                                           name, level, module, q->qe_isv_svn, cscp_tdx_tcb_status_name(r->qe_status),
                                           r->advisories[0] ? "; advisories " : "", r->advisories,
                                           r->status == CSCP_TDX_TCB_UP_TO_DATE ? ""
                                           : allowed                            ? " (allowed by the caller)"
                                                                                : " (not UpToDate, not allowed)",
                                           col_ok ? "" : NOT_VERIFIED);
                if (r->advisories[0])
                        cscp_verdict_fact(v, "tdx-tcb-advisories", "%s", r->advisories);
        }
        k = 0;
out:
        free(r);
        EVP_PKEY_free(key);
        return k;
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
        cscp_tdx_collateral_t col;
        time_t at;
        unsigned long flags = 0;
        int k;

        memset(&col, 0, sizeof(col));
        memset(digest, 0, sizeof(digest));

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
        if (opts->collateral_dir) {
                k = cscp_tdx_collateral_load(opts->collateral_dir, &col, err, sizeof(err));
                if (k < 0) {
                        cscp_verdict_error(v, "TDX collateral: %s", err);
                        goto out;
                }
                for (size_t i = 0; i < col.n_crls; i++) {
                        k = load_crls(store, col.crl_paths[i]);
                        if (k < 0) {
                                cscp_verdict_error(v, "TDX collateral CRL %s: %s", col.crl_paths[i],
                                                   k == CSCP_E_PROTO ? "not a PEM or DER CRL" : cscp_strerror(k));
                                goto out;
                        }
                }
        }
        at = opts->at ? opts->at : time(NULL);
        if (opts->n_crl_files || col.n_crls)
                flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;

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
        if (!opts->collateral_dir)
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
        chain = read_chain("PCK chain", q.pck_chain, q.pck_chain_len, err, sizeof(err));
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

                sctx = X509_STORE_CTX_new();
                if (!sctx || X509_STORE_CTX_init(sctx, store, sk_X509_value(chain, 0), chain) != 1) {
                        cscp_verdict_error(v, "out of memory");
                        k = -ENOMEM;
                        goto out;
                }
                param = X509_STORE_CTX_get0_param(sctx);
                X509_VERIFY_PARAM_set_time(param, at);
                X509_VERIFY_PARAM_set_depth(param, CSCP_TDX_CHAIN_DEPTH_MAX);
                X509_VERIFY_PARAM_set_flags(param, flags);
                k = X509_verify_cert(sctx);
                if (k == 1) {
                        char subj[256] = "";
                        STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(sctx);
                        X509 *top = sk_X509_value(built, sk_X509_num(built) - 1);

                        X509_NAME_oneline(X509_get_subject_name(top), subj, sizeof(subj));
                        cscp_verdict_claim(v, "tdx-pck-chain", true, "%d certificates up to %s%s", sk_X509_num(built),
                                           subj, flags ? ", CRLs checked" : "");
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

        /* 6. TCB status from the collateral */
        if (opts->collateral_dir) {
                k = collateral_claims(&q, chain ? sk_X509_value(chain, 0) : NULL, store, at, flags, &col, opts, v);
                if (k < 0) {
                        cscp_verdict_error(v, "TDX collateral: %s",
                                           k == -ENOMEM ? "out of memory" : "crypto library failure");
                        goto out;
                }
        }
        k = 0;
out:
        cscp_tdx_collateral_free(&col);
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
