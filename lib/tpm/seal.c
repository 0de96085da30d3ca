/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealing a secret to the TPM (include/cscp/seal.h has the format and the
 * object templates). TSS2_RC values stay in this file: decoded into debug
 * logs, mapped to CSCP_E_*.
 *
 * Sources for the SRK template: TCG EK Credential Profile template L-2 (ECC
 * NIST P-256 storage key, reference.md §2.1) with the changes of the TCG TPM
 * v2.0 Provisioning Guidance §7.5.1: userWithAuth and noDA set,
 * adminWithPolicy clear, empty authPolicy (the same template as go-tpm's
 * ECCSRKTemplate and systemd's tpm2_get_srk_template).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "error.h"
#include "seal.h"
#include "tpm.h"
#include "util.h"

#define LOGMODULE seal
#include "log.h"

#include "internal.h"

#define SEAL_MAGIC     "CSCPSEAL"
#define SEAL_MAGIC_LEN 8
#define SEAL_VERSION   1
#define SEAL_HEADER    (SEAL_MAGIC_LEN + 2 + 2)

#define SRK_ATTRS                                                                                                      \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
         TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
/* No sensitiveDataOrigin (the data is ours), no sign/decrypt: a sealed data object. */
#define SEALED_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA)

static void srk_template(TPM2B_PUBLIC *ret)
{
        TPMT_PUBLIC *p = &ret->publicArea;

        memset(ret, 0, sizeof(*ret));
        tpm_ecc_p256_parent(p);
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = SRK_ATTRS;
}

static void sealed_template(TPM2B_PUBLIC *ret)
{
        TPMT_PUBLIC *p = &ret->publicArea;

        memset(ret, 0, sizeof(*ret));
        p->type = TPM2_ALG_KEYEDHASH;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = SEALED_ATTRS;
        p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
}

/* Exactly what cscp_tpm_seal makes: anything else is not ours to load. */
static bool sealed_public_ok(const TPMT_PUBLIC *p, const void *unused)
{
        return p->type == TPM2_ALG_KEYEDHASH && p->nameAlg == TPM2_ALG_SHA256 && p->objectAttributes == SEALED_ATTRS &&
               p->authPolicy.size == 0 && p->parameters.keyedHashDetail.scheme.scheme == TPM2_ALG_NULL &&
               p->unique.keyedHash.size == 32;
}

/* --- blob ------------------------------------------------------------------------------- */

static int blob_decode(const uint8_t *buf, size_t len, TPM2B_PUBLIC *ret_pub, TPM2B_PRIVATE *ret_priv,
                       const char **ret_reason)
{
        TPM2B_PUBLIC pub = {0};
        TPM2B_PRIVATE priv = {0};
        size_t off = SEAL_MAGIC_LEN, pub_start;
        uint16_t version = 0, parent = 0;
        const char *why;
        TSS2_RC rc;

        if (!buf || len < SEAL_HEADER) {
                why = "too short for a sealed blob (truncated?)";
                goto bad;
        }
        if (len > CSCP_SEAL_BLOB_MAX) {
                why = "longer than any sealed blob";
                goto bad;
        }
        if (memcmp(buf, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0) {
                why = "not a sealed blob (bad magic)";
                goto bad;
        }
        rc = Tss2_MU_UINT16_Unmarshal(buf, len, &off, &version);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_UINT16_Unmarshal(buf, len, &off, &parent);
        if (rc != TSS2_RC_SUCCESS) {
                why = "truncated header";
                goto bad;
        }
        if (version != SEAL_VERSION) {
                why = "unknown format version";
                goto bad;
        }
        if (parent != TPM2_ALG_ECC) {
                why = "unknown parent key kind";
                goto bad;
        }
        pub_start = off;
        rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub);
        if (rc != TSS2_RC_SUCCESS) {
                log_debug("sealed blob: public: 0x%08x %s", (unsigned)rc, Tss2_RC_Decode(rc));
                why = "malformed or truncated public area";
                goto bad;
        }
        /* tss2-mu does not hold the TPM2B's size to what the TPMT used: a canonical encoding only. */
        if (off - pub_start != 2 + (size_t)pub.size) {
                why = "the public area's size field does not match its content";
                goto bad;
        }
        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &priv);
        if (rc != TSS2_RC_SUCCESS) {
                log_debug("sealed blob: private: 0x%08x %s", (unsigned)rc, Tss2_RC_Decode(rc));
                why = "malformed or truncated private area";
                goto bad;
        }
        if (off != len) {
                why = "trailing bytes after the private area";
                goto bad;
        }
        if (!sealed_public_ok(&pub.publicArea, NULL)) {
                why = "the public area is not a sealed-data object of the expected kind";
                goto bad;
        }
        if (priv.size == 0) {
                why = "empty private area";
                goto bad;
        }
        if (ret_pub)
                *ret_pub = pub;
        if (ret_priv)
                *ret_priv = priv;
        OPENSSL_cleanse(&priv, sizeof(priv));
        return 0;
bad:
        log_debug("sealed blob: %s", why);
        if (ret_reason)
                *ret_reason = why;
        return CSCP_E_STATE;
}

int cscp_seal_blob_check(const uint8_t *blob, size_t len, const char **ret_reason)
{
        return blob_decode(blob, len, NULL, NULL, ret_reason);
}

static int blob_encode(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint8_t **ret, size_t *ret_len)
{
        size_t off = SEAL_MAGIC_LEN;
        uint8_t *buf;
        TSS2_RC rc;
        int r;

        buf = malloc(CSCP_SEAL_BLOB_MAX);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, SEAL_MAGIC, SEAL_MAGIC_LEN);
        rc = Tss2_MU_UINT16_Marshal(SEAL_VERSION, buf, CSCP_SEAL_BLOB_MAX, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_UINT16_Marshal(TPM2_ALG_ECC, buf, CSCP_SEAL_BLOB_MAX, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, CSCP_SEAL_BLOB_MAX, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, CSCP_SEAL_BLOB_MAX, &off);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("marshal sealed blob", rc);
                OPENSSL_cleanse(buf, CSCP_SEAL_BLOB_MAX);
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = off;
        return 0;
}

/* --- TPM work --------------------------------------------------------------------------- */

static int srk_create(ESYS_CONTEXT *esys, ESYS_TR *ret)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC tmpl;
        ESYS_TR srk = ESYS_TR_NONE;
        TSS2_RC rc;

        srk_template(&tmpl);
        rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                                &outside, &creation_pcr, &srk, NULL, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("CreatePrimary(SRK, owner hierarchy)", rc);
        *ret = srk;
        return 0;
}

/*
 * An HMAC session salted with the SRK, AES-128-CFB parameter encryption:
 * attrs TPMA_SESSION_DECRYPT encrypts the command's first parameter (the
 * sensitive data of Create), TPMA_SESSION_ENCRYPT the response's (Unseal's
 * outData).
 */
static int salted_session(ESYS_CONTEXT *esys, ESYS_TR srk, TPMA_SESSION attrs, ESYS_TR *ret)
{
        TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;

        rc = Esys_StartAuthSession(esys, srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("StartAuthSession(salted HMAC)", rc);
        rc = Esys_TRSess_SetAttributes(esys, s, attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
        if (rc != TSS2_RC_SUCCESS) {
                tpm_flush(esys, &s);
                return tss_fail("TRSess_SetAttributes", rc);
        }
        *ret = s;
        return 0;
}

int cscp_tpm_seal(cscp_tpm_t *t, const uint8_t *data, size_t len, uint8_t **ret_blob, size_t *ret_blob_len)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_PUBLIC tmpl;
        TPM2B_PUBLIC *out_pub = NULL;
        TPM2B_PRIVATE *out_priv = NULL;
        ESYS_TR srk = ESYS_TR_NONE, s = ESYS_TR_NONE;
        ESYS_CONTEXT *esys;
        int r;

        if (!t || !data || len == 0 || len > CSCP_SEAL_DATA_MAX || len > sizeof(sens.sensitive.data.buffer) ||
            !ret_blob || !ret_blob_len)
                return -EINVAL;
        esys = cscp_tpm_esys(t);
        r = srk_create(esys, &srk);
        if (r < 0)
                return r;
        r = salted_session(esys, srk, TPMA_SESSION_DECRYPT, &s);
        if (r < 0)
                goto out_srk;
        sealed_template(&tmpl);
        sens.sensitive.data.size = (uint16_t)len;
        memcpy(sens.sensitive.data.buffer, data, len);
        r = tpm_create_object(esys, srk, s, &sens, &tmpl, "Create(sealed data)", sealed_public_ok, NULL, &out_pub,
                              &out_priv);
        OPENSSL_cleanse(&sens, sizeof(sens));
        if (r < 0)
                goto out_session;
        r = blob_encode(out_pub, out_priv, ret_blob, ret_blob_len);
        tpm_created_free(out_pub, out_priv);
out_session:
        tpm_flush(esys, &s);
out_srk:
        tpm_flush(esys, &srk);
        return r;
}

int cscp_tpm_unseal(cscp_tpm_t *t, const uint8_t *blob, size_t blob_len, uint8_t *ret, size_t max, size_t *ret_len)
{
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
        TPM2B_SENSITIVE_DATA *out = NULL;
        ESYS_TR srk = ESYS_TR_NONE, s = ESYS_TR_NONE, obj = ESYS_TR_NONE;
        ESYS_CONTEXT *esys;
        TSS2_RC rc;
        int r;

        if (!t || !blob || !ret || !ret_len)
                return -EINVAL;
        r = blob_decode(blob, blob_len, &pub, &priv, NULL);
        if (r < 0)
                return r;
        esys = cscp_tpm_esys(t);
        r = srk_create(esys, &srk);
        if (r < 0)
                goto out;
        rc = Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &obj);
        if (rc != TSS2_RC_SUCCESS) {
                /* Another TPM or owner seed (integrity check of the private area), or an altered blob. */
                r = tss_fail("Load(sealed data)", rc);
                if (tpm_rejected(rc))
                        r = CSCP_E_STATE;
                goto out_srk;
        }
        r = salted_session(esys, srk, TPMA_SESSION_ENCRYPT, &s);
        if (r < 0)
                goto out_obj;
        rc = Esys_Unseal(esys, obj, s, ESYS_TR_NONE, ESYS_TR_NONE, &out);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("Unseal", rc);
                if (tpm_rejected(rc))
                        r = CSCP_E_STATE;
                goto out_session;
        }
        if (out->size > max) {
                r = -ENOBUFS;
                goto out_free;
        }
        memcpy(ret, out->buffer, out->size);
        *ret_len = out->size;
        r = 0;
out_free:
        OPENSSL_cleanse(out, sizeof(*out));
        Esys_Free(out);
out_session:
        tpm_flush(esys, &s);
out_obj:
        tpm_flush(esys, &obj);
out_srk:
        tpm_flush(esys, &srk);
out:
        OPENSSL_cleanse(&priv, sizeof(priv));
        return r;
}

/* --- files ------------------------------------------------------------------------------ */

int cscp_tpm_seal_file(cscp_tpm_t *t, const char *path, const uint8_t *data, size_t len)
{
        uint8_t *blob = NULL;
        size_t blob_len = 0;
        int r;

        if (!path)
                return -EINVAL;
        r = cscp_tpm_seal(t, data, len, &blob, &blob_len);
        if (r < 0)
                return r;
        r = cscp_file_write_atomic(path, blob, blob_len, 0600);
        OPENSSL_cleanse(blob, blob_len);
        free(blob);
        return r;
}

int cscp_tpm_unseal_file(cscp_tpm_t *t, const char *path, uint8_t *ret, size_t max, size_t *ret_len,
                         const char **ret_reason)
{
        uint8_t *blob = NULL;
        size_t blob_len = 0;
        const char *why = NULL;
        int r;

        if (!t || !path || !ret || !ret_len)
                return -EINVAL;
        r = cscp_file_read(path, CSCP_SEAL_BLOB_MAX, &blob, &blob_len);
        if (r == -EFBIG) {
                why = "longer than any sealed blob";
                r = CSCP_E_STATE;
                goto out;
        }
        if (r == -EINVAL || r == -ELOOP) {
                why = "not a regular file";
                r = CSCP_E_STATE;
                goto out;
        }
        if (r < 0) {
                why = "cannot be read";
                goto out;
        }
        r = blob_decode(blob, blob_len, NULL, NULL, &why);
        if (r < 0)
                goto out;
        r = cscp_tpm_unseal(t, blob, blob_len, ret, max, ret_len);
        if (r == CSCP_E_STATE)
                why = "this TPM refused it: sealed by another TPM (or before its owner hierarchy was cleared), "
                      "or altered";
        else if (r == -ENOBUFS)
                why = "the sealed secret is longer than expected";
        else if (r < 0)
                why = "the TPM failed while unsealing";
out:
        if (blob) {
                OPENSSL_cleanse(blob, blob_len);
                free(blob);
        }
        if (r < 0 && ret_reason)
                *ret_reason = why;
        return r;
}
