/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM2_MakeCredential in software (see include/cscp/credential.h).
 * KDFa = SP 800-108 counter mode with HMAC = OpenSSL's KBKDF (it inserts the
 * 0x00 after the label and appends the 32-bit output length, as KDFa does for
 * a label given without its NUL). KDFe = SP 800-56C one-step KDF with a hash
 * = OpenSSL's SSKDF (H(counter || Z || FixedInfo), FixedInfo = label with its
 * NUL || PartyUInfo || PartyVInfo).
 */

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "cscp/credential.h"
#include "cscp/error.h"
#include "cscp/pcr.h"
#include "cscp/quote.h"

static const char *md_name(TPMI_ALG_HASH alg)
{
        return cscp_hash_alg_evp(alg);
}

/* KDFa(H, key, label, contextU, contextV, bits) with label given without its NUL. */
static int kdfa(TPMI_ALG_HASH alg, const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx_u,
                size_t ctx_u_len, uint8_t *out, size_t out_len)
{
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
        EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[7], *p = params;
        int r = CSCP_E_CRYPTO;

        if (!kctx)
                goto out;
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"COUNTER", 0);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"HMAC", 0);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md_name(alg), 0);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label));
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ctx_u, ctx_u_len);
        *p = OSSL_PARAM_construct_end();
        if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
                r = 0;
out:
        EVP_KDF_CTX_free(kctx);
        EVP_KDF_free(kdf);
        return r;
}

/* KDFe(H, Z, label-with-NUL, U, V, bits). */
static int kdfe(TPMI_ALG_HASH alg, const uint8_t *z, size_t z_len, const uint8_t *info, size_t info_len, uint8_t *out,
                size_t out_len)
{
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
        EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[4], *p = params;
        int r = CSCP_E_CRYPTO;

        if (!kctx)
                goto out;
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md_name(alg), 0);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, z_len);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
        *p = OSSL_PARAM_construct_end();
        if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
                r = 0;
out:
        EVP_KDF_CTX_free(kctx);
        EVP_KDF_free(kdf);
        return r;
}

static const uint8_t identity_label[] = "IDENTITY"; /* sizeof includes the NUL, as TPM2B_STRING does */

static int rsa_seed(EVP_PKEY *ek, TPMI_ALG_HASH alg, uint8_t *seed, size_t hlen, cscp_credential_t *c)
{
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL);
        uint8_t *label = NULL;
        size_t outlen = sizeof(c->secret);
        int r = CSCP_E_CRYPTO;

        if (!pctx || EVP_PKEY_encrypt_init(pctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, md_name(alg), NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md_name(alg), NULL) != 1)
                goto out;
        label = OPENSSL_memdup(identity_label, sizeof(identity_label));
        if (!label || EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, label, sizeof(identity_label)) != 1) {
                OPENSSL_free(label);
                goto out;
        }
        if (RAND_bytes(seed, (int)hlen) != 1)
                goto out;
        if (EVP_PKEY_encrypt(pctx, c->secret, &outlen, seed, hlen) != 1)
                goto out;
        c->secret_len = outlen;
        r = 0;
out:
        EVP_PKEY_CTX_free(pctx);
        return r;
}

static int ecc_seed(EVP_PKEY *ek, const TPMT_PUBLIC *pub, TPMI_ALG_HASH alg, uint8_t *seed, size_t hlen,
                    cscp_credential_t *c)
{
        char group[64];
        EVP_PKEY *eph = NULL;
        EVP_PKEY_CTX *dctx = NULL;
        BIGNUM *x = NULL, *y = NULL;
        uint8_t z[66], xb[66], yb[66], info[sizeof(identity_label) + 2 * 66];
        size_t zlen = sizeof(z), flen, off = 0;
        int r = CSCP_E_CRYPTO;

        if (EVP_PKEY_get_utf8_string_param(ek, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
                goto out;
        flen = ((size_t)EVP_PKEY_get_bits(ek) + 7) / 8;
        if (flen == 0 || flen > sizeof(xb) || pub->unique.ecc.x.size != flen)
                goto out;
        eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
        dctx = eph ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
        if (!dctx || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, ek) != 1 ||
            EVP_PKEY_derive(dctx, z, &zlen) != 1 || zlen != flen)
                goto out;
        if (EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 || BN_bn2binpad(x, xb, (int)flen) < 0 ||
            BN_bn2binpad(y, yb, (int)flen) < 0)
                goto out;
        /* FixedInfo = "IDENTITY\0" || Qe.x || EK.x */
        memcpy(info, identity_label, sizeof(identity_label));
        off = sizeof(identity_label);
        memcpy(info + off, xb, flen);
        off += flen;
        memcpy(info + off, pub->unique.ecc.x.buffer, flen);
        off += flen;
        r = kdfe(alg, z, zlen, info, off, seed, hlen);
        if (r < 0)
                goto out;
        /* secret = marshalled TPMS_ECC_POINT Qe. */
        {
                TPMS_ECC_POINT q = {0};
                size_t moff = 0;
                q.x.size = (UINT16)flen;
                memcpy(q.x.buffer, xb, flen);
                q.y.size = (UINT16)flen;
                memcpy(q.y.buffer, yb, flen);
                if (Tss2_MU_TPMS_ECC_POINT_Marshal(&q, c->secret, sizeof(c->secret), &moff) != TSS2_RC_SUCCESS) {
                        r = CSCP_E_CRYPTO;
                        goto out;
                }
                c->secret_len = moff;
        }
        r = 0;
out:
        OPENSSL_cleanse(z, sizeof(z));
        BN_free(x);
        BN_free(y);
        EVP_PKEY_CTX_free(dctx);
        EVP_PKEY_free(eph);
        return r;
}

int cscp_credential_make(const uint8_t *ek_public, size_t ek_public_len, const uint8_t *ak_name, size_t ak_name_len,
                         const uint8_t *credential, size_t credential_len, cscp_credential_t *ret)
{
        TPMT_PUBLIC pub = {0};
        TPMT_SYM_DEF_OBJECT sym;
        EVP_PKEY *ek = NULL;
        cscp_credential_t c = {0};
        uint8_t seed[64], sym_key[32], hmac_key[64], plain[2 + CSCP_CREDENTIAL_MAX], enc[2 + CSCP_CREDENTIAL_MAX];
        uint8_t mac[64];
        size_t off = 0, hlen, keylen, plain_len;
        unsigned maclen = 0;
        EVP_CIPHER_CTX *cctx = NULL;
        int r, outl = 0, finl = 0;

        if (!ek_public || !ak_name || !credential || !ret || ak_name_len < 2 || ak_name_len > sizeof(TPMU_NAME) ||
            credential_len == 0 || credential_len > CSCP_CREDENTIAL_MAX)
                return -EINVAL;
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(ek_public, ek_public_len, &off, &pub) != TSS2_RC_SUCCESS ||
            off != ek_public_len)
                return -EINVAL;
        /* An EK: a restricted decryption (storage) key with an AES-CFB symmetric definition. */
        if (!(pub.objectAttributes & TPMA_OBJECT_RESTRICTED) || !(pub.objectAttributes & TPMA_OBJECT_DECRYPT))
                return CSCP_E_UNSUPPORTED;
        hlen = cscp_hash_alg_size(pub.nameAlg);
        if (hlen == 0 || credential_len > hlen)
                return hlen == 0 ? CSCP_E_UNSUPPORTED : -EINVAL;
        sym = pub.type == TPM2_ALG_RSA   ? pub.parameters.rsaDetail.symmetric
              : pub.type == TPM2_ALG_ECC ? pub.parameters.eccDetail.symmetric
                                         : (TPMT_SYM_DEF_OBJECT){0};
        if (sym.algorithm != TPM2_ALG_AES || sym.mode.aes != TPM2_ALG_CFB ||
            (sym.keyBits.aes != 128 && sym.keyBits.aes != 256))
                return CSCP_E_UNSUPPORTED;
        keylen = sym.keyBits.aes / 8;
        r = cscp_tpmt_public_to_pkey(&pub, &ek);
        if (r < 0)
                return r;

        /* 1. seed and the secret that carries it to the TPM. */
        r = pub.type == TPM2_ALG_RSA ? rsa_seed(ek, pub.nameAlg, seed, hlen, &c)
                                     : ecc_seed(ek, &pub, pub.nameAlg, seed, hlen, &c);
        if (r < 0)
                goto out;
        /* 2. symKey = KDFa(H, seed, "STORAGE", Name, -, keyBits); encIdentity = AES-CFB(0 IV, TPM2B_DIGEST). */
        r = kdfa(pub.nameAlg, seed, hlen, "STORAGE", ak_name, ak_name_len, sym_key, keylen);
        if (r < 0)
                goto out;
        plain[0] = (uint8_t)(credential_len >> 8);
        plain[1] = (uint8_t)credential_len;
        memcpy(plain + 2, credential, credential_len);
        plain_len = 2 + credential_len;
        {
                static const uint8_t iv[16];
                cctx = EVP_CIPHER_CTX_new();
                r = CSCP_E_CRYPTO;
                if (!cctx ||
                    EVP_EncryptInit_ex(cctx, keylen == 16 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128(), NULL, sym_key,
                                       iv) != 1 ||
                    EVP_EncryptUpdate(cctx, enc, &outl, plain, (int)plain_len) != 1 ||
                    EVP_EncryptFinal_ex(cctx, enc + outl, &finl) != 1 || (size_t)(outl + finl) != plain_len)
                        goto out;
        }
        /* 3. hmacKey = KDFa(H, seed, "INTEGRITY", -, -, hLen); outerHMAC = HMAC(hmacKey, encIdentity || Name). */
        r = kdfa(pub.nameAlg, seed, hlen, "INTEGRITY", NULL, 0, hmac_key, hlen);
        if (r < 0)
                goto out;
        {
                uint8_t buf[sizeof(enc) + sizeof(TPMU_NAME)];
                size_t got = 0;
                memcpy(buf, enc, plain_len);
                memcpy(buf + plain_len, ak_name, ak_name_len);
                r = CSCP_E_CRYPTO;
                if (!EVP_Q_mac(NULL, "HMAC", NULL, md_name(pub.nameAlg), NULL, hmac_key, hlen, buf,
                               plain_len + ak_name_len, mac, sizeof(mac), &got) ||
                    got != hlen)
                        goto out;
                maclen = (unsigned)hlen;
        }
        /* 4. credentialBlob = u16 hLen || outerHMAC || encIdentity. */
        c.blob[0] = (uint8_t)(maclen >> 8);
        c.blob[1] = (uint8_t)maclen;
        memcpy(c.blob + 2, mac, maclen);
        memcpy(c.blob + 2 + maclen, enc, plain_len);
        c.blob_len = 2 + maclen + plain_len;
        *ret = c;
        r = 0;
out:
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(sym_key, sizeof(sym_key));
        OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
        OPENSSL_cleanse(plain, sizeof(plain));
        OPENSSL_cleanse(&c, sizeof(c));
        EVP_CIPHER_CTX_free(cctx);
        EVP_PKEY_free(ek);
        return r;
}
