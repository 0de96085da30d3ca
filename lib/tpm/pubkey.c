/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPMT_PUBLIC -> OpenSSL 3 EVP_PKEY (RSA, ECC NIST P-256/384/521) and the
 * object Name (nameAlg || H_nameAlg(marshalled TPMT_PUBLIC)).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>

#include "error.h"
#include "pcr.h"
#include "quote.h"

/* RSA moduli a TPM can hold: 1024..4096 (TPM2_MAX_RSA_KEY_BYTES); we refuse < 2048. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS (8 * TPM2_MAX_RSA_KEY_BYTES)

static int curve_info(uint16_t curve, const char **ret_name, size_t *ret_len)
{
        switch (curve) {
        case TPM2_ECC_NIST_P256:
                *ret_name = SN_X9_62_prime256v1;
                *ret_len = 32;
                return 0;
        case TPM2_ECC_NIST_P384:
                *ret_name = SN_secp384r1;
                *ret_len = 48;
                return 0;
        case TPM2_ECC_NIST_P521:
                *ret_name = SN_secp521r1;
                *ret_len = 66;
                return 0;
        default:
                return CSCP_E_UNSUPPORTED;
        }
}

/* Builds the key from params and checks it (EVP_PKEY_public_check). */
static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret)
{
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL, *check = NULL;
        EVP_PKEY *pkey = NULL;
        int r;

        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        if (!params || !ctx) {
                r = -ENOMEM;
                goto finish;
        }
        if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                r = CSCP_E_CRYPTO;
                goto finish;
        }
        check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check) {
                r = -ENOMEM;
                goto finish;
        }
        if (EVP_PKEY_public_check(check) != 1) {
                r = CSCP_E_CRYPTO;
                goto finish;
        }
        *ret = pkey;
        pkey = NULL;
        r = 0;
finish:
        EVP_PKEY_free(pkey);
        EVP_PKEY_CTX_free(check);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        return r;
}

static int rsa_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
        const TPMS_RSA_PARMS *parms = &pub->parameters.rsaDetail;
        const TPM2B_PUBLIC_KEY_RSA *mod = &pub->unique.rsa;
        uint32_t exponent = parms->exponent ? parms->exponent : 65537;
        OSSL_PARAM_BLD *bld = NULL;
        BIGNUM *n = NULL, *e = NULL;
        int r;

        if (parms->keyBits < RSA_MIN_BITS || parms->keyBits > RSA_MAX_BITS || parms->keyBits % 8 != 0)
                return CSCP_E_UNSUPPORTED;
        if (mod->size != parms->keyBits / 8 || mod->size > sizeof(mod->buffer))
                return CSCP_E_PROTO;
        if (exponent < 3 || exponent % 2 == 0)
                return CSCP_E_PROTO;

        n = BN_bin2bn(mod->buffer, mod->size, NULL);
        e = BN_new();
        bld = OSSL_PARAM_BLD_new();
        if (!n || !e || !bld || BN_set_word(e, exponent) != 1) {
                r = -ENOMEM;
                goto finish;
        }
        /* The modulus must really have keyBits bits (top byte non-zero). */
        if ((unsigned)BN_num_bits(n) != parms->keyBits) {
                r = CSCP_E_PROTO;
                goto finish;
        }
        if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
                r = -ENOMEM;
                goto finish;
        }
        r = pkey_from_params("RSA", bld, ret);
finish:
        OSSL_PARAM_BLD_free(bld);
        BN_free(n);
        BN_free(e);
        return r;
}

static int ecc_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
        const TPMS_ECC_POINT *pt = &pub->unique.ecc;
        uint8_t point[1 + 2 * 66];
        OSSL_PARAM_BLD *bld = NULL;
        const char *group;
        size_t flen;
        int r;

        r = curve_info(pub->parameters.eccDetail.curveID, &group, &flen);
        if (r < 0)
                return r;
        /* Coordinates may come without leading zero bytes; never longer than the field. */
        if (pt->x.size == 0 || pt->y.size == 0 || pt->x.size > flen || pt->y.size > flen ||
            pt->x.size > sizeof(pt->x.buffer) || pt->y.size > sizeof(pt->y.buffer))
                return CSCP_E_PROTO;

        memset(point, 0, sizeof(point));
        point[0] = 0x04; /* uncompressed: 04 || X || Y, each left-padded to the field size */
        memcpy(point + 1 + flen - pt->x.size, pt->x.buffer, pt->x.size);
        memcpy(point + 1 + 2 * flen - pt->y.size, pt->y.buffer, pt->y.size);

        bld = OSSL_PARAM_BLD_new();
        if (!bld)
                return -ENOMEM;
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * flen) != 1) {
                r = -ENOMEM;
                goto finish;
        }
        r = pkey_from_params("EC", bld, ret);
finish:
        OSSL_PARAM_BLD_free(bld);
        return r;
}

int cscp_tpmt_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
        if (!pub || !ret)
                return -EINVAL;

        switch (pub->type) {
        case TPM2_ALG_RSA:
                return rsa_to_pkey(pub, ret);
        case TPM2_ALG_ECC:
                return ecc_to_pkey(pub, ret);
        default:
                return CSCP_E_UNSUPPORTED;
        }
}

/* Unmarshals a TPMT_PUBLIC that must take exactly len bytes. */
static int public_parse(const uint8_t *buf, size_t len, TPMT_PUBLIC *ret)
{
        TPMT_PUBLIC pub;
        size_t off = 0;

        if (!buf || len == 0 || len > sizeof(TPM2B_PUBLIC))
                return CSCP_E_PROTO;
        memset(&pub, 0, sizeof(pub));
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(buf, len, &off, &pub) != TSS2_RC_SUCCESS || off != len)
                return CSCP_E_PROTO;
        *ret = pub;
        return 0;
}

int cscp_tpm_public_to_pkey(const uint8_t *tpmt_public, size_t len, EVP_PKEY **ret)
{
        TPMT_PUBLIC pub;
        int r;

        if (!ret)
                return -EINVAL;
        r = public_parse(tpmt_public, len, &pub);
        if (r < 0)
                return r;
        return cscp_tpmt_public_to_pkey(&pub, ret);
}

int cscp_tpm_public_name(const uint8_t *tpmt_public, size_t len, TPM2B_NAME *ret)
{
        uint8_t canon[sizeof(TPM2B_PUBLIC)];
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        TPM2B_NAME name;
        TPMT_PUBLIC pub;
        const char *md;
        size_t off = 0, size;
        int r;

        if (!ret)
                return -EINVAL;
        r = public_parse(tpmt_public, len, &pub);
        if (r < 0)
                return r;
        /* The TPM hashes its own marshalling: refuse input that does not round-trip. */
        if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, canon, sizeof(canon), &off) != TSS2_RC_SUCCESS)
                return CSCP_E_PROTO;
        if (off != len || memcmp(canon, tpmt_public, len) != 0)
                return CSCP_E_PROTO;

        memset(&name, 0, sizeof(name));
        if (pub.nameAlg == TPM2_ALG_NULL) {
                /* A NULL nameAlg gives the empty Name. */
                *ret = name;
                return 0;
        }
        md = cscp_hash_alg_evp(pub.nameAlg);
        size = cscp_hash_alg_size(pub.nameAlg);
        if (!md || size == 0 || 2 + size > sizeof(name.name))
                return CSCP_E_UNSUPPORTED;
        if (EVP_Digest(canon, off, digest, &dlen, EVP_get_digestbyname(md), NULL) != 1 || dlen != size)
                return CSCP_E_CRYPTO;

        name.name[0] = (uint8_t)(pub.nameAlg >> 8);
        name.name[1] = (uint8_t)(pub.nameAlg & 0xff);
        memcpy(name.name + 2, digest, size);
        name.size = (uint16_t)(2 + size);
        *ret = name;
        return 0;
}
