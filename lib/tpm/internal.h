/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Shared by the lib/tpm sources only: TSS2_RC to CSCP error mapping and handle
 * flushing. Include after "log.h" (the debug lines carry the including
 * file's LOGMODULE).
 */

#include <errno.h>
#include <stdbool.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>

#include "error.h"

/* Logs what failed; -ENOMEM for an allocation failure of ESYS or TCTI, else CSCP_E_TPM. */
static inline int tss_fail(const char *what, TSS2_RC rc)
{
        log_debug("%s: 0x%08x %s", what, (unsigned)rc, Tss2_RC_Decode(rc));
        if (rc == TSS2_ESYS_RC_MEMORY || rc == TSS2_TCTI_RC_MEMORY)
                return -ENOMEM;
        return CSCP_E_TPM;
}

/* The TPM itself refused a parameter/handle/session (format-one response code). */
static inline bool tpm_rejected(TSS2_RC rc)
{
        return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && (rc & TPM2_RC_FMT1) != 0;
}

/* Flushes a loaded object or session (a failure is only logged) and sets *h to ESYS_TR_NONE. */
static inline void tpm_flush(ESYS_CONTEXT *esys, ESYS_TR *h)
{
        TSS2_RC rc;

        if (*h == ESYS_TR_NONE)
                return;
        rc = Esys_FlushContext(esys, *h);
        if (rc != TSS2_RC_SUCCESS)
                log_debug("FlushContext: 0x%08x %s", (unsigned)rc, Tss2_RC_Decode(rc));
        *h = ESYS_TR_NONE;
}

/* An ECC NIST P-256 storage parent as the TCG templates make it (EK template L-2, SRK): AES-128-CFB, no scheme,
 * no KDF, a zero-filled unique of 32 + 32 bytes. Sets type and parameters only. */
static inline void tpm_ecc_p256_parent(TPMT_PUBLIC *p)
{
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 128;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32;
        p->unique.ecc.y.size = 32;
}

/* Whether a public area the TPM made is the one asked for (arg: the caller's). */
typedef bool tpm_public_ok_t(const TPMT_PUBLIC *p, const void *arg);

/*
 * TPM2_Create of tmpl with sens under parent, authorized by session s; what names it in the debug log. The
 * public area the TPM returns must pass public_ok (else CSCP_E_TPM). On success the caller owns *ret_pub and
 * *ret_priv and hands both to tpm_created_free.
 */
int tpm_create_object(ESYS_CONTEXT *esys, ESYS_TR parent, ESYS_TR s, const TPM2B_SENSITIVE_CREATE *sens,
                      const TPM2B_PUBLIC *tmpl, const char *what, tpm_public_ok_t *public_ok, const void *arg,
                      TPM2B_PUBLIC **ret_pub, TPM2B_PRIVATE **ret_priv);
/* Frees what tpm_create_object returned, the private part cleansed first; NULL is fine. */
void tpm_created_free(TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv);
