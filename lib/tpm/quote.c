/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM 2.0 quote verification (include/cscp/quote.h). Every structure is
 * decoded with tss2-mu and must use its buffer exactly; the signature is
 * checked with OpenSSL 3 over the received TPMS_ATTEST bytes; the PCR digest
 * is recomputed with the signature's hash over the quote's own pcrSelect
 * (libtpms PCRComputeCurrentDigest: list order, PCR index ascending).
 *
 * Every claim named in quote.h is recorded on every call: a step that
 * cannot run because an earlier one failed is recorded as failed with
 * "not checked: <why>".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "error.h"
#include "pcr.h"
#include "quote.h"
#include "verdict.h"

/* At most one value per (bank, PCR) the largest selection can name. */
#define MAX_PCR_VALUES (TPM2_NUM_PCR_BANKS * TPM2_MAX_PCRS)
/* Hex of at most HEX_BYTES bytes (a TPMU_NAME), "..." when cut, NUL. */
#define HEX_BYTES 68
#define HEX_MAX   (2 * HEX_BYTES + 4)
/* A formatted selection: 16 banks of "+0x0000:" and up to 32 indexes. */
#define SEL_MAX 2048

#define AK_REQUIRED_ATTRS                                                                                     \
        (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
         TPMA_OBJECT_SENSITIVEDATAORIGIN)

_Static_assert(sizeof(TPMU_NAME) <= HEX_BYTES, "a Name must fit in one hex string");

typedef struct check {
        cscp_verdict_t *v;
        const char *prefix;
        bool oom;
} check_t;

static void check_claim(check_t *c, const char *name, bool pass, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void check_fact(check_t *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void check_claim(check_t *c, const char *name, bool pass, const char *fmt, ...)
{
        char *full = NULL, *detail = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&detail, fmt, ap);
        va_end(ap);
        if (r < 0 || asprintf(&full, "%s%s", c->prefix, name) < 0) {
                if (r >= 0)
                        free(detail);
                c->oom = true;
                return;
        }
        cscp_verdict_claim(c->v, full, pass, "%s", detail);
        free(full);
        free(detail);
}

static void check_fact(check_t *c, const char *key, const char *fmt, ...)
{
        char *full = NULL, *value = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&value, fmt, ap);
        va_end(ap);
        if (r < 0 || asprintf(&full, "%s%s", c->prefix, key) < 0) {
                if (r >= 0)
                        free(value);
                c->oom = true;
                return;
        }
        cscp_verdict_fact(c->v, full, "%s", value);
        free(full);
        free(value);
}

static const char *hex(const uint8_t *b, size_t n, char out[static HEX_MAX])
{
        static const char digits[] = "0123456789abcdef";
        size_t m = n > HEX_BYTES ? HEX_BYTES : n, i;

        for (i = 0; i < m; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 0xf];
        }
        if (m < n) {
                memcpy(out + 2 * m, "...", 4);
                return out;
        }
        out[2 * m] = '\0';
        return out;
}

static const char *hash_name(uint16_t alg, char buf[static 8])
{
        const char *n = cscp_hash_alg_name(alg);

        if (n)
                return n;
        if (alg == TPM2_ALG_NULL)
                return "null";
        snprintf(buf, 8, "0x%04x", alg);
        return buf;
}

static const char *scheme_name(uint16_t alg, char buf[static 8])
{
        switch (alg) {
        case TPM2_ALG_RSASSA:
                return "rsassa";
        case TPM2_ALG_RSAPSS:
                return "rsapss";
        case TPM2_ALG_ECDSA:
                return "ecdsa";
        case TPM2_ALG_ECDAA:
                return "ecdaa";
        case TPM2_ALG_SM2:
                return "sm2";
        case TPM2_ALG_ECSCHNORR:
                return "ecschnorr";
        case TPM2_ALG_HMAC:
                return "hmac";
        case TPM2_ALG_RSAES:
                return "rsaes";
        case TPM2_ALG_OAEP:
                return "oaep";
        case TPM2_ALG_NULL:
                return "null";
        default:
                snprintf(buf, 8, "0x%04x", alg);
                return buf;
        }
}

static uint32_t sel_count(const TPML_PCR_SELECTION *sel)
{
        return sel->count < TPM2_NUM_PCR_BANKS ? sel->count : TPM2_NUM_PCR_BANKS;
}

/* "sha256:0-2,16+sha1:7" (cscp_pcrsel_format), "none" when empty. */
static const char *sel_format(const TPML_PCR_SELECTION *sel, char buf[static SEL_MAX])
{
        if (cscp_pcrsel_format(sel, buf, SEL_MAX) < 0)
                snprintf(buf, SEL_MAX, "?");
        else if (!buf[0])
                snprintf(buf, SEL_MAX, "none");
        return buf;
}

static const cscp_pcr_value_t *find_value(const cscp_pcr_value_t *pcrs, size_t n, uint16_t alg, unsigned index,
                                          size_t *ret_count)
{
        const cscp_pcr_value_t *first = NULL;
        size_t count = 0;

        for (size_t i = 0; i < n; i++)
                if (pcrs[i].hash_alg == alg && pcrs[i].index == index) {
                        if (!first)
                                first = &pcrs[i];
                        count++;
                }
        if (ret_count)
                *ret_count = count;
        return first;
}

int cscp_pcr_digest(uint16_t hash_alg, const TPML_PCR_SELECTION *sel, const cscp_pcr_value_t *pcrs, size_t n_pcrs,
                    uint8_t *ret_digest, size_t *ret_len)
{
        uint8_t md[EVP_MAX_MD_SIZE];
        const char *mdname;
        EVP_MD_CTX *ctx = NULL;
        EVP_MD *evp = NULL;
        unsigned mdlen = 0;
        int r;

        if (!sel || (n_pcrs > 0 && !pcrs) || !ret_digest || !ret_len)
                return -EINVAL;
        if (sel->count > TPM2_NUM_PCR_BANKS)
                return CSCP_E_PCRSEL;
        if (n_pcrs > MAX_PCR_VALUES)
                return CSCP_E_TOO_BIG;
        mdname = cscp_hash_alg_evp(hash_alg);
        if (!mdname)
                return CSCP_E_UNSUPPORTED;

        /* Every selected value must be there, of its bank's size, before hashing. */
        for (uint32_t b = 0; b < sel->count; b++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
                size_t size = cscp_hash_alg_size(s->hash);

                if (s->sizeofSelect > TPM2_PCR_SELECT_MAX)
                        return CSCP_E_PCRSEL;
                for (unsigned i = 0; i < 8u * s->sizeofSelect; i++) {
                        const cscp_pcr_value_t *pv;

                        if (!cscp_pcrsel_is_set(s, i))
                                continue;
                        if (size == 0)
                                return CSCP_E_UNSUPPORTED;
                        pv = find_value(pcrs, n_pcrs, s->hash, i, NULL);
                        if (!pv)
                                return -ENOENT;
                        if (pv->size != size || pv->size > sizeof(pv->value))
                                return CSCP_E_PROTO;
                }
        }

        evp = EVP_MD_fetch(NULL, mdname, NULL);
        ctx = EVP_MD_CTX_new();
        if (!evp || !ctx) {
                r = -ENOMEM;
                goto finish;
        }
        if (EVP_DigestInit_ex2(ctx, evp, NULL) != 1) {
                r = CSCP_E_CRYPTO;
                goto finish;
        }
        for (uint32_t b = 0; b < sel->count; b++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];

                for (unsigned i = 0; i < 8u * s->sizeofSelect; i++) {
                        const cscp_pcr_value_t *pv;

                        if (!cscp_pcrsel_is_set(s, i))
                                continue;
                        pv = find_value(pcrs, n_pcrs, s->hash, i, NULL);
                        if (EVP_DigestUpdate(ctx, pv->value, pv->size) != 1) {
                                r = CSCP_E_CRYPTO;
                                goto finish;
                        }
                }
        }
        if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != cscp_hash_alg_size(hash_alg)) {
                r = CSCP_E_CRYPTO;
                goto finish;
        }
        memcpy(ret_digest, md, mdlen);
        *ret_len = mdlen;
        r = 0;
finish:
        EVP_MD_CTX_free(ctx);
        EVP_MD_free(evp);
        return r;
}

/* Parses attest; on success *ret_trailing says how many bytes were left over. */
static int attest_parse(const uint8_t *buf, size_t len, TPMS_ATTEST *ret, size_t *ret_trailing)
{
        TPMS_ATTEST a;
        size_t off = 0;

        if (!buf || len == 0)
                return CSCP_E_PROTO;
        if (len > sizeof(((TPM2B_ATTEST *)NULL)->attestationData))
                return CSCP_E_TOO_BIG;
        memset(&a, 0, sizeof(a));
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(buf, len, &off, &a) != TSS2_RC_SUCCESS || off > len)
                return CSCP_E_PROTO;
        /* Never trust the decoder's bounds alone: re-check what we index later. */
        if (a.qualifiedSigner.size > sizeof(a.qualifiedSigner.name) || a.extraData.size > sizeof(a.extraData.buffer))
                return CSCP_E_PROTO;
        if (a.type == TPM2_ST_ATTEST_QUOTE) {
                const TPMS_QUOTE_INFO *qi = &a.attested.quote;

                if (qi->pcrSelect.count > TPM2_NUM_PCR_BANKS || qi->pcrDigest.size > sizeof(qi->pcrDigest.buffer))
                        return CSCP_E_PROTO;
                for (uint32_t b = 0; b < qi->pcrSelect.count; b++)
                        if (qi->pcrSelect.pcrSelections[b].sizeofSelect > TPM2_PCR_SELECT_MAX)
                                return CSCP_E_PROTO;
        }
        *ret = a;
        *ret_trailing = len - off;
        return 0;
}

int cscp_attest_parse(const uint8_t *attest, size_t len, TPMS_ATTEST *ret)
{
        TPMS_ATTEST a;
        size_t trailing;
        int r;

        if (!ret)
                return -EINVAL;
        r = attest_parse(attest, len, &a, &trailing);
        if (r < 0)
                return r;
        if (trailing != 0)
                return CSCP_E_PROTO;
        *ret = a;
        return 0;
}

/* ---- the AK ---- */

typedef struct ak {
        bool parsed; /* TPMT_PUBLIC decoded (attributes can be checked) */
        bool ok;     /* parsed, supported, key built */
        TPMT_PUBLIC pub;
        EVP_PKEY *pkey;
        char why[160]; /* why !ok */
} ak_t;

static uint16_t ak_scheme(const TPMT_PUBLIC *pub, uint16_t *ret_hash)
{
        if (pub->type == TPM2_ALG_RSA) {
                *ret_hash = pub->parameters.rsaDetail.scheme.details.anySig.hashAlg;
                return pub->parameters.rsaDetail.scheme.scheme;
        }
        *ret_hash = pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
        return pub->parameters.eccDetail.scheme.scheme;
}

static int check_ak_public(check_t *c, const cscp_quote_t *q, ak_t *ak)
{
        char kdesc[64], sb[8], hb[8], nb[8], nhex[HEX_MAX];
        uint16_t scheme, shash;
        TPM2B_NAME name;
        size_t off = 0;
        int r;

        memset(&ak->pub, 0, sizeof(ak->pub));
        if (!q->ak_public || q->ak_public_len == 0 || q->ak_public_len > sizeof(TPM2B_PUBLIC) ||
            Tss2_MU_TPMT_PUBLIC_Unmarshal(q->ak_public, q->ak_public_len, &off, &ak->pub) != TSS2_RC_SUCCESS) {
                snprintf(ak->why, sizeof(ak->why), "AK TPMT_PUBLIC unparsable (%zu bytes)", q->ak_public_len);
                goto fail;
        }
        if (off != q->ak_public_len) {
                snprintf(ak->why, sizeof(ak->why), "AK TPMT_PUBLIC has %zu trailing bytes", q->ak_public_len - off);
                goto fail;
        }
        ak->parsed = true;

        switch (ak->pub.type) {
        case TPM2_ALG_RSA:
                snprintf(kdesc, sizeof(kdesc), "RSA-%u", (unsigned)ak->pub.parameters.rsaDetail.keyBits);
                break;
        case TPM2_ALG_ECC:
                switch (ak->pub.parameters.eccDetail.curveID) {
                case TPM2_ECC_NIST_P256:
                        snprintf(kdesc, sizeof(kdesc), "ECC NIST P-256");
                        break;
                case TPM2_ECC_NIST_P384:
                        snprintf(kdesc, sizeof(kdesc), "ECC NIST P-384");
                        break;
                case TPM2_ECC_NIST_P521:
                        snprintf(kdesc, sizeof(kdesc), "ECC NIST P-521");
                        break;
                default:
                        snprintf(ak->why, sizeof(ak->why), "AK curve 0x%04x unsupported",
                                 ak->pub.parameters.eccDetail.curveID);
                        goto fail;
                }
                break;
        default:
                snprintf(ak->why, sizeof(ak->why), "AK type 0x%04x is not RSA or ECC", ak->pub.type);
                goto fail;
        }

        scheme = ak_scheme(&ak->pub, &shash);
        if (!(scheme == TPM2_ALG_NULL ||
              (ak->pub.type == TPM2_ALG_RSA && (scheme == TPM2_ALG_RSASSA || scheme == TPM2_ALG_RSAPSS)) ||
              (ak->pub.type == TPM2_ALG_ECC && scheme == TPM2_ALG_ECDSA))) {
                snprintf(ak->why, sizeof(ak->why), "%s AK scheme %s is not a supported signing scheme", kdesc,
                         scheme_name(scheme, sb));
                goto fail;
        }
        if (scheme != TPM2_ALG_NULL && cscp_hash_alg_size(shash) == 0) {
                snprintf(ak->why, sizeof(ak->why), "%s AK scheme %s with unsupported hash %s", kdesc,
                         scheme_name(scheme, sb), hash_name(shash, hb));
                goto fail;
        }

        r = cscp_tpm_public_name(q->ak_public, q->ak_public_len, &name);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || name.size == 0) {
                snprintf(ak->why, sizeof(ak->why), "%s AK: cannot compute its Name (nameAlg %s): %s", kdesc,
                         hash_name(ak->pub.nameAlg, nb), r < 0 ? cscp_strerror(r) : "NULL nameAlg");
                goto fail;
        }

        r = cscp_tpmt_public_to_pkey(&ak->pub, &ak->pkey);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(ak->why, sizeof(ak->why), "%s AK key unusable: %s", kdesc, cscp_strerror(r));
                ERR_clear_error();
                goto fail;
        }

        ak->ok = true;
        check_fact(c, "ak-name", "%s", hex(name.name, name.size, nhex));
        check_claim(c, "ak-public", true, "%s, nameAlg %s, scheme %s%s%s", kdesc, hash_name(ak->pub.nameAlg, nb),
                    scheme_name(scheme, sb), scheme == TPM2_ALG_NULL ? "" : "-",
                    scheme == TPM2_ALG_NULL ? "" : hash_name(shash, hb));
        return 0;
fail:
        ak->ok = false;
        check_claim(c, "ak-public", false, "%s", ak->why);
        return 0;
}

static void check_ak_attributes(check_t *c, const ak_t *ak)
{
        static const struct {
                TPMA_OBJECT bit;
                const char *name;
        } attrs[] = {
                {TPMA_OBJECT_RESTRICTED, "restricted"},
                {TPMA_OBJECT_SIGN_ENCRYPT, "sign"},
                {TPMA_OBJECT_FIXEDTPM, "fixedTPM"},
                {TPMA_OBJECT_FIXEDPARENT, "fixedParent"},
                {TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"},
        };
        char missing[128] = "";
        size_t off = 0;
        TPMA_OBJECT a;

        if (!ak->parsed) {
                check_claim(c, "ak-attributes", false, "not checked: %s", ak->why);
                return;
        }
        a = ak->pub.objectAttributes;
        if ((a & AK_REQUIRED_ATTRS) == AK_REQUIRED_ATTRS) {
                check_claim(c, "ak-attributes", true,
                            "objectAttributes 0x%08" PRIx32
                            " has restricted|sign|fixedTPM|fixedParent|sensitiveDataOrigin",
                            (uint32_t)a);
                return;
        }
        for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
                if (!(a & attrs[i].bit)) {
                        int n = snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? "|" : "", attrs[i].name);
                        if (n > 0 && (size_t)n < sizeof(missing) - off)
                                off += (size_t)n;
                }
        check_claim(c, "ak-attributes", false, "objectAttributes 0x%08" PRIx32 " lacks %s", (uint32_t)a, missing);
}

/* ---- the signature ---- */

typedef struct sig {
        bool parsed;
        TPMT_SIGNATURE s;
        uint16_t hash; /* the signature's hash, 0 when unknown */
        char why[160]; /* why hash is not usable for the PCR digest */
} sigck_t;

/* 1: verifies, 0: does not, < 0: allocation failure. */
static int sig_verify(EVP_PKEY *pkey, const TPMT_SIGNATURE *s, const uint8_t *msg, size_t len, char *why, size_t whylen)
{
        const char *mdname = cscp_hash_alg_evp(s->signature.any.hashAlg);
        EVP_MD_CTX *mctx = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        ECDSA_SIG *esig = NULL;
        BIGNUM *br = NULL, *bs = NULL;
        unsigned char *der = NULL;
        const uint8_t *sb;
        size_t sblen;
        int r, k;

        if (s->sigAlg == TPM2_ALG_ECDSA) {
                const TPMS_SIGNATURE_ECC *e = &s->signature.ecdsa;
                int dlen;

                if (e->signatureR.size == 0 || e->signatureS.size == 0 ||
                    e->signatureR.size > sizeof(e->signatureR.buffer) ||
                    e->signatureS.size > sizeof(e->signatureS.buffer)) {
                        snprintf(why, whylen, "ECDSA r or s has a bad size (%u, %u)", e->signatureR.size,
                                 e->signatureS.size);
                        return 0;
                }
                esig = ECDSA_SIG_new();
                br = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
                bs = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
                if (!esig || !br || !bs || ECDSA_SIG_set0(esig, br, bs) != 1) {
                        r = -ENOMEM;
                        goto finish;
                }
                br = bs = NULL; /* owned by esig */
                dlen = i2d_ECDSA_SIG(esig, &der);
                if (dlen <= 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                sb = der;
                sblen = (size_t)dlen;
        } else {
                const TPMS_SIGNATURE_RSA *rs = &s->signature.rsassa;

                if (rs->sig.size == 0 || rs->sig.size > sizeof(rs->sig.buffer)) {
                        snprintf(why, whylen, "RSA signature has a bad size (%u)", rs->sig.size);
                        return 0;
                }
                sb = rs->sig.buffer;
                sblen = rs->sig.size;
        }

        mctx = EVP_MD_CTX_new();
        if (!mctx) {
                r = -ENOMEM;
                goto finish;
        }
        if (EVP_DigestVerifyInit_ex(mctx, &pctx, mdname, NULL, NULL, pkey, NULL) != 1) {
                snprintf(why, whylen, "cannot set up verification");
                r = 0;
                goto finish;
        }
        if (s->sigAlg == TPM2_ALG_RSAPSS) {
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mdname, NULL) != 1) {
                        snprintf(why, whylen, "cannot set up RSA-PSS verification");
                        r = 0;
                        goto finish;
                }
        } else if (s->sigAlg == TPM2_ALG_RSASSA) {
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
                        snprintf(why, whylen, "cannot set up RSASSA verification");
                        r = 0;
                        goto finish;
                }
        }
        k = EVP_DigestVerify(mctx, sb, sblen, msg, len);
        if (k == 1) {
                r = 1;
        } else {
                snprintf(why, whylen, "does not verify over the %zu attest bytes", len);
                r = 0;
        }
finish:
        ERR_clear_error();
        OPENSSL_free(der);
        ECDSA_SIG_free(esig);
        BN_free(br);
        BN_free(bs);
        EVP_MD_CTX_free(mctx);
        return r;
}

static int check_signature(check_t *c, const cscp_quote_t *q, const cscp_quote_opts_t *opts, const ak_t *ak,
                           sigck_t *sg)
{
        char sb[8], hb[8], ksb[8], khb[8], why[160] = "";
        uint16_t kscheme, khash, alg, hash;
        size_t off = 0;
        int r;

        memset(&sg->s, 0, sizeof(sg->s));
        sg->parsed = false;
        sg->hash = 0;
        if (!q->sig || q->sig_len == 0 || q->sig_len > sizeof(TPMT_SIGNATURE) ||
            Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sg->s) != TSS2_RC_SUCCESS) {
                snprintf(sg->why, sizeof(sg->why), "TPMT_SIGNATURE unparsable (%zu bytes)", q->sig_len);
                check_claim(c, "signature", false, "%s", sg->why);
                return 0;
        }
        if (off != q->sig_len) {
                snprintf(sg->why, sizeof(sg->why), "TPMT_SIGNATURE has %zu trailing bytes", q->sig_len - off);
                check_claim(c, "signature", false, "%s", sg->why);
                return 0;
        }
        sg->parsed = true;
        alg = sg->s.sigAlg;
        if (alg != TPM2_ALG_RSASSA && alg != TPM2_ALG_RSAPSS && alg != TPM2_ALG_ECDSA) {
                snprintf(sg->why, sizeof(sg->why), "signature scheme %s unsupported", scheme_name(alg, sb));
                check_claim(c, "signature", false, "%s", sg->why);
                return 0;
        }
        hash = sg->s.signature.any.hashAlg;
        if (cscp_hash_alg_size(hash) == 0) {
                snprintf(sg->why, sizeof(sg->why), "signature hash %s unsupported", hash_name(hash, hb));
                check_claim(c, "signature", false, "%s-%s: %s", scheme_name(alg, sb), hash_name(hash, hb), sg->why);
                return 0;
        }
        if (hash == TPM2_ALG_SHA1 && !opts->allow_sha1) {
                snprintf(sg->why, sizeof(sg->why), "sha1 is not allowed (allow_sha1 off)");
                check_claim(c, "signature", false, "%s-sha1 signature: %s", scheme_name(alg, sb), sg->why);
                return 0;
        }
        /* From here on the hash is good for the PCR digest, whatever the key says. */
        sg->hash = hash;

        if (!ak->ok) {
                check_claim(c, "signature", false, "not checked: %s", ak->why);
                return 0;
        }
        if ((alg == TPM2_ALG_ECDSA) != (ak->pub.type == TPM2_ALG_ECC)) {
                check_claim(c, "signature", false, "%s-%s signature does not fit the %s AK", scheme_name(alg, sb),
                            hash_name(hash, hb), ak->pub.type == TPM2_ALG_ECC ? "ECC" : "RSA");
                return 0;
        }
        kscheme = ak_scheme(&ak->pub, &khash);
        if (kscheme != TPM2_ALG_NULL && (kscheme != alg || khash != hash)) {
                check_claim(c, "signature", false, "%s-%s signature disagrees with the AK scheme %s-%s",
                            scheme_name(alg, sb), hash_name(hash, hb), scheme_name(kscheme, ksb),
                            hash_name(khash, khb));
                return 0;
        }

        r = sig_verify(ak->pkey, &sg->s, q->attest, q->attest ? q->attest_len : 0, why, sizeof(why));
        if (r < 0)
                return r;
        if (r == 0) {
                check_claim(c, "signature", false, "%s-%s signature %s", scheme_name(alg, sb), hash_name(hash, hb),
                            why);
                return 0;
        }
        check_claim(c, "signature", true, "%s-%s signature verifies with the AK over %zu attest bytes",
                    scheme_name(alg, sb), hash_name(hash, hb), q->attest_len);
        return 0;
}

/* ---- PCRs ---- */

static void check_pcr_selection(check_t *c, const TPML_PCR_SELECTION *have, const TPML_PCR_SELECTION *want)
{
        char hb[SEL_MAX], wb[SEL_MAX];
        TPML_PCR_SELECTION missing;
        bool ok = true;

        if (!want) {
                check_claim(c, "pcr-selection", true, "quote covers %s (nothing required)", sel_format(have, hb));
                return;
        }
        memset(&missing, 0, sizeof(missing));
        for (uint32_t b = 0; b < sel_count(want); b++) {
                const TPMS_PCR_SELECTION *w = &want->pcrSelections[b];
                TPMS_PCR_SELECTION *m = &missing.pcrSelections[missing.count];

                m->hash = w->hash;
                m->sizeofSelect = TPM2_PCR_SELECT_MAX;
                for (unsigned i = 0; i < TPM2_MAX_PCRS; i++) {
                        bool found = false;

                        if (!cscp_pcrsel_is_set(w, i))
                                continue;
                        for (uint32_t k = 0; k < sel_count(have) && !found; k++)
                                found = have->pcrSelections[k].hash == w->hash &&
                                        cscp_pcrsel_is_set(&have->pcrSelections[k], i);
                        if (!found) {
                                m->pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
                                ok = false;
                        }
                }
                for (unsigned i = 0; i < TPM2_PCR_SELECT_MAX; i++)
                        if (m->pcrSelect[i]) {
                                missing.count++;
                                break;
                        }
        }
        if (ok)
                check_claim(c, "pcr-selection", true, "quote covers %s, required %s", sel_format(have, hb),
                            sel_format(want, wb));
        else
                check_claim(c, "pcr-selection", false, "quote covers %s, lacks required %s", sel_format(have, hb),
                            sel_format(&missing, wb));
}

static void check_pcr_values(check_t *c, const cscp_quote_t *q, const TPML_PCR_SELECTION *sel)
{
        char hb[8], sb[SEL_MAX];
        size_t needed = 0;

        if (q->n_pcrs > MAX_PCR_VALUES) {
                check_claim(c, "pcr-values", false, "%zu PCR values, more than the limit %u", q->n_pcrs,
                            (unsigned)MAX_PCR_VALUES);
                return;
        }
        for (uint32_t b = 0; b < sel_count(sel); b++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
                size_t size = cscp_hash_alg_size(s->hash);

                for (unsigned i = 0; i < TPM2_MAX_PCRS; i++) {
                        const cscp_pcr_value_t *pv;
                        size_t count;

                        if (!cscp_pcrsel_is_set(s, i))
                                continue;
                        if (size == 0) {
                                check_claim(c, "pcr-values", false, "quote selects PCR %u of unsupported bank %s", i,
                                            hash_name(s->hash, hb));
                                return;
                        }
                        pv = find_value(q->pcrs, q->n_pcrs, s->hash, i, &count);
                        if (!pv) {
                                check_claim(c, "pcr-values", false, "no value for %s:%u", hash_name(s->hash, hb), i);
                                return;
                        }
                        if (count > 1) {
                                check_claim(c, "pcr-values", false, "%zu values for %s:%u", count,
                                            hash_name(s->hash, hb), i);
                                return;
                        }
                        if (pv->size != size) {
                                check_claim(c, "pcr-values", false, "value for %s:%u has %u bytes, expected %zu",
                                            hash_name(s->hash, hb), i, (unsigned)pv->size, size);
                                return;
                        }
                        needed++;
                }
        }
        /* None extra: every value must be selected by some bank of the quote. */
        for (size_t k = 0; k < q->n_pcrs; k++) {
                const cscp_pcr_value_t *pv = &q->pcrs[k];
                bool selected = false;

                for (uint32_t b = 0; b < sel_count(sel) && !selected; b++)
                        selected = sel->pcrSelections[b].hash == pv->hash_alg && pv->index < TPM2_MAX_PCRS &&
                                   cscp_pcrsel_is_set(&sel->pcrSelections[b], pv->index);
                if (!selected) {
                        check_claim(c, "pcr-values", false, "value for %s:%u is not in the quote's selection %s",
                                    hash_name(pv->hash_alg, hb), (unsigned)pv->index, sel_format(sel, sb));
                        return;
                }
        }
        check_claim(c, "pcr-values", true, "%zu values, one for each PCR in %s", needed, sel_format(sel, sb));
}

static int check_pcr_digest(check_t *c, const cscp_quote_t *q, const TPMS_QUOTE_INFO *qi, const sigck_t *sg)
{
        char hb[8], h1[HEX_MAX], h2[HEX_MAX], sb[SEL_MAX];
        uint8_t digest[TPM2_SHA512_DIGEST_SIZE];
        size_t dlen = 0;
        int r;

        if (sg->hash == 0) {
                check_claim(c, "pcr-digest", false, "not checked: no usable signature hash (%s)", sg->why);
                return 0;
        }
        r = cscp_pcr_digest(sg->hash, &qi->pcrSelect, q->pcrs, q->n_pcrs, digest, &dlen);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT) {
                check_claim(c, "pcr-digest", false, "not checked: a value of %s is missing",
                            sel_format(&qi->pcrSelect, sb));
                return 0;
        }
        if (r < 0) {
                check_claim(c, "pcr-digest", false, "not checked: cannot compute the %s digest of %s: %s",
                            hash_name(sg->hash, hb), sel_format(&qi->pcrSelect, sb), cscp_strerror(r));
                return 0;
        }
        if (dlen != qi->pcrDigest.size || CRYPTO_memcmp(digest, qi->pcrDigest.buffer, dlen) != 0) {
                check_claim(c, "pcr-digest", false, "pcrDigest %s != %s(%s values) %s",
                            hex(qi->pcrDigest.buffer, qi->pcrDigest.size, h1), hash_name(sg->hash, hb),
                            sel_format(&qi->pcrSelect, sb), hex(digest, dlen, h2));
                return 0;
        }
        check_claim(c, "pcr-digest", true, "pcrDigest %s = %s(%s values)", hex(digest, dlen, h1),
                    hash_name(sg->hash, hb), sel_format(&qi->pcrSelect, sb));
        return 0;
}

static void check_magic(check_t *c, const cscp_quote_t *q, const TPMS_ATTEST *a, const char *why)
{
        uint32_t magic = 0;
        size_t off = 0;

        if (a)
                magic = a->magic;
        else if (!q->attest || Tss2_MU_UINT32_Unmarshal(q->attest, q->attest_len, &off, &magic) != TSS2_RC_SUCCESS) {
                check_claim(c, "magic", false, "not checked: %s", why);
                return;
        }
        check_claim(c, "magic", magic == TPM2_GENERATED_VALUE, "magic 0x%08" PRIx32 " %s TPM2_GENERATED_VALUE 0x%08x",
                    magic, magic == TPM2_GENERATED_VALUE ? "=" : "!=", (unsigned)TPM2_GENERATED_VALUE);
}

static void check_type(check_t *c, const cscp_quote_t *q, const TPMS_ATTEST *a, const char *why)
{
        uint16_t type = 0;
        size_t off = 4;

        if (a)
                type = a->type;
        else if (!q->attest || q->attest_len < 4 ||
                 Tss2_MU_UINT16_Unmarshal(q->attest, q->attest_len, &off, &type) != TSS2_RC_SUCCESS) {
                check_claim(c, "type", false, "not checked: %s", why);
                return;
        }
        if (type == TPM2_ST_ATTEST_QUOTE)
                check_claim(c, "type", true, "type 0x%04x (TPM2_ST_ATTEST_QUOTE)", type);
        else
                check_claim(c, "type", false, "type 0x%04x != TPM2_ST_ATTEST_QUOTE (0x%04x)", type,
                            (unsigned)TPM2_ST_ATTEST_QUOTE);
}

int cscp_quote_verify(const cscp_quote_t *q, const cscp_quote_opts_t *opts, cscp_verdict_t *v)
{
        static const cscp_quote_opts_t no_opts;
        char h1[HEX_MAX], h2[HEX_MAX], why[96] = "";
        TPMS_ATTEST attest;
        bool attest_ok = false, had_error;
        size_t trailing = 0;
        ak_t ak;
        sigck_t sg;
        check_t c;
        int r;

        if (!q || !v)
                return -EINVAL;
        if (!opts)
                opts = &no_opts;
        if ((q->attest_len && !q->attest) || (q->sig_len && !q->sig) || (q->ak_public_len && !q->ak_public) ||
            (q->n_pcrs && !q->pcrs) || (opts->nonce_len && !opts->nonce))
                return -EINVAL;

        had_error = v->error != NULL;
        c = (check_t){.v = v, .prefix = opts->prefix ? opts->prefix : "", .oom = false};
        memset(&ak, 0, sizeof(ak));
        memset(&sg, 0, sizeof(sg));

        r = check_ak_public(&c, q, &ak);
        if (r < 0)
                goto finish;
        check_ak_attributes(&c, &ak);
        r = check_signature(&c, q, opts, &ak, &sg);
        if (r < 0)
                goto finish;

        r = attest_parse(q->attest, q->attest_len, &attest, &trailing);
        if (r == 0 && trailing == 0)
                attest_ok = true;
        else if (r == 0)
                snprintf(why, sizeof(why), "attest unparsable (%zu trailing bytes)", trailing);
        else if (r == CSCP_E_TOO_BIG)
                snprintf(why, sizeof(why), "attest unparsable (%zu bytes, over the TPM2B_ATTEST limit)", q->attest_len);
        else
                snprintf(why, sizeof(why), "attest unparsable (%zu bytes)", q->attest_len);
        r = 0;

        /* magic and type are read straight from the bytes when the rest does not parse. */
        check_magic(&c, q, attest_ok ? &attest : NULL, why);
        check_type(&c, q, attest_ok ? &attest : NULL, why);

        if (!attest_ok) {
                check_claim(&c, "extra-data", false, "not checked: %s", why);
        } else {
                const TPM2B_DATA *ed = &attest.extraData;
                bool eq = ed->size == opts->nonce_len &&
                          (ed->size == 0 || CRYPTO_memcmp(ed->buffer, opts->nonce, ed->size) == 0);

                check_claim(&c, "extra-data", eq, "extraData %s %s %s %s",
                            ed->size ? hex(ed->buffer, ed->size, h1) : "(empty)",
                            eq ? "=" : "!=", opts->extra_label ? opts->extra_label : "nonce",
                            opts->nonce_len ? hex(opts->nonce, opts->nonce_len, h2) : "(empty)");
        }

        if (attest_ok && attest.type != TPM2_ST_ATTEST_QUOTE)
                snprintf(why, sizeof(why), "attest is not a quote (type 0x%04x)", attest.type);
        if (!attest_ok || attest.type != TPM2_ST_ATTEST_QUOTE) {
                check_claim(&c, "pcr-selection", false, "not checked: %s", why);
                check_claim(&c, "pcr-values", false, "not checked: %s", why);
                check_claim(&c, "pcr-digest", false, "not checked: %s", why);
        } else {
                check_pcr_selection(&c, &attest.attested.quote.pcrSelect, opts->required);
                check_pcr_values(&c, q, &attest.attested.quote.pcrSelect);
                r = check_pcr_digest(&c, q, &attest.attested.quote, &sg);
                if (r < 0)
                        goto finish;
        }

        if (attest_ok) {
                const TPMS_CLOCK_INFO *ci = &attest.clockInfo;

                check_fact(&c, "clock", "%" PRIu64, (uint64_t)ci->clock);
                check_fact(&c, "reset-count", "%" PRIu32, (uint32_t)ci->resetCount);
                check_fact(&c, "restart-count", "%" PRIu32, (uint32_t)ci->restartCount);
                check_fact(&c, "safe", "%s", ci->safe == TPM2_YES ? "yes" : ci->safe == TPM2_NO ? "no" : "invalid");
                check_fact(&c, "firmware-version", "0x%016" PRIx64, (uint64_t)attest.firmwareVersion);
        }

finish:
        EVP_PKEY_free(ak.pkey);
        if (r == 0 && (c.oom || (!had_error && v->error)))
                r = -ENOMEM;
        if (r == -ENOMEM)
                cscp_verdict_error(v, "out of memory while verifying the quote");
        return r;
}
