/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host TPM's side of enrollment (design.md §2, issue 6): the EK public
 * recreated from the TCG default template, the EK certificate from its NV
 * index, and TPM2_ActivateCredential with the AK as activateHandle and the
 * EK as keyHandle under PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential
 * Profile; reference.md §2.2, §2.3, §3). TSS2_RC stays in here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "error.h"
#include "tpm.h"

#define LOGMODULE tpm
#include "log.h"

#include "internal.h"

#define NV_CHUNK_DEFAULT 512

/*
 * The TPM refused a parameter (credentialBlob or secret: integrity, value,
 * size), as opposed to a handle or session (a stale AK after a TPM reset is
 * a TPM failure, not a wrong credential).
 */
static bool param_rejected(TSS2_RC rc)
{
        return tpm_rejected(rc) && (rc & TPM2_RC_P) != 0;
}

/*
 * libtpms answers an RSA secret that does not decrypt under its EK with
 * TPM_RC_FAILURE (its OpenSSL path) while the TPM itself is fine: tell that
 * apart from a TPM in failure mode by asking for its self-test result.
 */
static bool tpm_healthy(ESYS_CONTEXT *esys)
{
        TPM2B_MAX_BUFFER *data = NULL;
        TPM2_RC result = TPM2_RC_FAILURE;
        TSS2_RC rc;

        rc = Esys_GetTestResult(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &data, &result);
        Esys_Free(data);
        return rc == TSS2_RC_SUCCESS && result == TPM2_RC_SUCCESS;
}

/* What every EK entry point checks first: a TPM, the outputs (have_args), an EK algorithm we know. */
static int ek_args(ESYS_CONTEXT *esys, cscp_key_alg_t alg, bool have_args)
{
        if (!esys || !have_args)
                return -EINVAL;
        if (alg != CSCP_KEY_ECC_P256 && alg != CSCP_KEY_RSA_2048)
                return CSCP_E_UNSUPPORTED;
        return 0;
}

uint32_t cscp_tpm_ek_cert_index(cscp_key_alg_t alg)
{
        return alg == CSCP_KEY_RSA_2048 ? 0x01C00002u : 0x01C0000Au;
}

/* Length of the DER SEQUENCE at the start of buf (EK certificate indices may be padded), 0 if none. */
static size_t der_length(const uint8_t *buf, size_t len)
{
        size_t n, body = 0;

        if (len < 2 || buf[0] != 0x30)
                return 0;
        if (buf[1] < 0x80)
                return 2 + (size_t)buf[1] <= len ? 2 + (size_t)buf[1] : 0;
        n = buf[1] & 0x7f;
        if (n == 0 || n > 3 || len < 2 + n)
                return 0;
        for (size_t i = 0; i < n; i++)
                body = body << 8 | buf[2 + i];
        return 2 + n + body <= len ? 2 + n + body : 0;
}

static size_t nv_chunk(ESYS_CONTEXT *esys)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        size_t chunk = NV_CHUNK_DEFAULT;
        TSS2_RC rc;

        rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
        if (rc == TSS2_RC_SUCCESS && cap->data.tpmProperties.count == 1 &&
            cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX) {
                uint32_t v = cap->data.tpmProperties.tpmProperty[0].value;
                if (v >= 64 && v <= TPM2_MAX_NV_BUFFER_SIZE)
                        chunk = v;
        }
        Esys_Free(cap);
        return chunk;
}

/* NV_Read of the whole index with the given authorisation handle. */
static int nv_read_all(ESYS_CONTEXT *esys, ESYS_TR auth, ESYS_TR nv, uint8_t *buf, size_t size)
{
        size_t chunk = nv_chunk(esys);

        for (size_t off = 0; off < size;) {
                TPM2B_MAX_NV_BUFFER *data = NULL;
                uint16_t want = (uint16_t)(size - off < chunk ? size - off : chunk);
                TSS2_RC rc;

                rc = Esys_NV_Read(esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, want, (uint16_t)off,
                                  &data);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail("NV_Read(EK certificate)", rc);
                if (data->size != want) {
                        log_debug("NV_Read: %u bytes for %u asked", data->size, want);
                        Esys_Free(data);
                        return CSCP_E_TPM;
                }
                memcpy(buf + off, data->buffer, want);
                Esys_Free(data);
                off += want;
        }
        return 0;
}

int cscp_tpm_ek_cert_read(cscp_tpm_t *t, cscp_key_alg_t alg, uint8_t **ret, size_t *ret_len)
{
        ESYS_CONTEXT *esys = cscp_tpm_esys(t);
        TPM2B_NV_PUBLIC *pub = NULL;
        ESYS_TR nv = ESYS_TR_NONE;
        uint8_t *buf = NULL;
        uint32_t index;
        size_t size, der;
        TSS2_RC rc;
        int r;

        r = ek_args(esys, alg, ret && ret_len);
        if (r < 0)
                return r;
        index = cscp_tpm_ek_cert_index(alg);
        rc = Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("TR_FromTPMPublic(EK certificate index)", rc);
                return tpm_rejected(rc) ? -ENOENT : r;
        }
        rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("NV_ReadPublic(EK certificate index)", rc);
                goto out;
        }
        size = pub->nvPublic.dataSize;
        if (size == 0) {
                r = -ENOENT;
                goto out;
        }
        if (size > CSCP_TPM_EK_CERT_MAX) {
                log_debug("EK certificate index 0x%08x holds %zu bytes, over %d", (unsigned)index, size,
                          CSCP_TPM_EK_CERT_MAX);
                r = CSCP_E_TOO_BIG;
                goto out;
        }
        buf = malloc(size);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        /* EK certificate indices are OWNERREAD and usually AUTHREAD with an empty auth: try both. */
        r = nv_read_all(esys, ESYS_TR_RH_OWNER, nv, buf, size);
        if (r == CSCP_E_TPM)
                r = nv_read_all(esys, nv, nv, buf, size);
        if (r < 0)
                goto out;
        der = der_length(buf, size);
        if (der == 0) {
                log_debug("EK certificate index 0x%08x does not hold a DER certificate", (unsigned)index);
                r = CSCP_E_PROTO;
                goto out;
        }
        *ret = buf;
        *ret_len = der;
        buf = NULL;
        r = 0;
out:
        free(buf);
        Esys_Free(pub);
        if (nv != ESYS_TR_NONE)
                (void)Esys_TR_Close(esys, &nv);
        return r;
}

static int ek_create(ESYS_CONTEXT *esys, cscp_key_alg_t alg, ESYS_TR *ret, TPM2B_PUBLIC **ret_pub)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC tmpl;
        TSS2_RC rc;

        cscp_tpm_ek_template(alg, &tmpl);
        rc = Esys_CreatePrimary(esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                &tmpl, &outside, &creation_pcr, ret, ret_pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("CreatePrimary(EK)", rc);
        return 0;
}

int cscp_tpm_ek_public(cscp_tpm_t *t, cscp_key_alg_t alg, uint8_t *ret, size_t max, size_t *ret_len)
{
        ESYS_CONTEXT *esys = cscp_tpm_esys(t);
        TPM2B_PUBLIC *pub = NULL;
        ESYS_TR ek = ESYS_TR_NONE;
        size_t off = 0;
        TSS2_RC rc;
        int r;

        r = ek_args(esys, alg, ret && ret_len);
        if (r < 0)
                return r;
        r = ek_create(esys, alg, &ek, &pub);
        if (r < 0)
                return r;
        rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, ret, max, &off);
        if (rc != TSS2_RC_SUCCESS) {
                r = rc == TSS2_MU_RC_INSUFFICIENT_BUFFER ? -ENOBUFS : tss_fail("marshal EK public", rc);
                goto out;
        }
        *ret_len = off;
        r = 0;
out:
        Esys_Free(pub);
        tpm_flush(esys, &ek);
        return r;
}

int cscp_tpm_activate_credential(cscp_tpm_t *t, cscp_key_alg_t ek_alg, const uint8_t *blob, size_t blob_len,
                                 const uint8_t *secret, size_t secret_len, uint8_t *ret, size_t max, size_t *ret_len)
{
        ESYS_CONTEXT *esys = cscp_tpm_esys(t);
        TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
        TPM2B_NONCE nonce_tpm = {0}, policy_ref = {0};
        TPM2B_DIGEST cp_hash = {0};
        TPM2B_ID_OBJECT id = {0};
        TPM2B_ENCRYPTED_SECRET enc = {0};
        TPM2B_DIGEST *cert = NULL;
        ESYS_TR ak, ek = ESYS_TR_NONE, s = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        r = ek_args(esys, ek_alg, blob && secret && ret && ret_len);
        if (r < 0)
                return r;
        if (blob_len == 0 || blob_len > sizeof(id.credential) || secret_len == 0 || secret_len > sizeof(enc.secret))
                return -EBADMSG;
        ak = cscp_tpm_ak_handle(t);
        if (ak == ESYS_TR_NONE)
                return -ENOENT;
        id.size = (uint16_t)blob_len;
        memcpy(id.credential, blob, blob_len);
        enc.size = (uint16_t)secret_len;
        memcpy(enc.secret, secret, secret_len);

        r = ek_create(esys, ek_alg, &ek, NULL);
        if (r < 0)
                goto out;
        rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("StartAuthSession(policy)", rc);
                goto out;
        }
        rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &nonce_tpm, &cp_hash, &policy_ref, 0, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("PolicySecret(endorsement)", rc);
                goto out;
        }
        /* activateHandle = AK (ADMIN role, its empty authValue), keyHandle = EK (USER role, the policy session). */
        rc = Esys_ActivateCredential(esys, ak, ek, ESYS_TR_PASSWORD, s, ESYS_TR_NONE, &id, &enc, &cert);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("ActivateCredential", rc);
                if (param_rejected(rc) || (rc == TPM2_RC_FAILURE && tpm_healthy(esys)))
                        r = -EBADMSG; /* not made for this EK and AK, or tampered with */
                goto out;
        }
        if (cert->size > max) {
                r = -ENOBUFS;
                goto out;
        }
        memcpy(ret, cert->buffer, cert->size);
        *ret_len = cert->size;
        r = 0;
out:
        if (cert) {
                OPENSSL_cleanse(cert, sizeof(*cert));
                Esys_Free(cert);
        }
        OPENSSL_cleanse(&id, sizeof(id));
        OPENSSL_cleanse(&enc, sizeof(enc));
        tpm_flush(esys, &s);
        tpm_flush(esys, &ek);
        return r;
}
