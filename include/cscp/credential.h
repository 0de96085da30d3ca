/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * TPM2_MakeCredential in software, for enrollment (design.md §3, issue 6):
 * the challenger wraps a random secret to a TPM's EK so that only that TPM,
 * and only for an AK with the given Name, can recover it with
 * TPM2_ActivateCredential. RSA EKs (RSA-OAEP, label "IDENTITY") and ECC EKs
 * (ephemeral ECDH + KDFe) are supported; the KDFs are OpenSSL's KBKDF
 * (= TPM KDFa) and SSKDF (= TPM KDFe). Steps: reference.md §3, TPM 2.0
 * Part 1 §24 (Credential Protection).
 */

#include <stddef.h>
#include <stdint.h>

#define CSCP_CREDENTIAL_MAX 64 /* bytes of credential; also capped at the EK nameAlg's digest size */

typedef struct cscp_credential {
        /* TPM2B_ID_OBJECT.credential: u16 BE hLen || outerHMAC || encIdentity. */
        uint8_t blob[2 + 64 + 2 + CSCP_CREDENTIAL_MAX];
        size_t blob_len;
        /* TPM2B_ENCRYPTED_SECRET.secret: the RSA-OAEP ciphertext, or the marshalled ephemeral TPMS_ECC_POINT. */
        uint8_t secret[512];
        size_t secret_len;
} cscp_credential_t;

/*
 * ek_public: marshalled TPMT_PUBLIC of the EK (restricted decrypt key, AES-CFB
 * symmetric); ak_name: the full Name (alg id || digest) of the key the
 * credential is bound to; credential: 1..min(CSCP_CREDENTIAL_MAX, hLen) bytes.
 * CSCP_E_UNSUPPORTED for an EK we cannot wrap to, -EINVAL for bad arguments.
 */
int cscp_credential_make(const uint8_t *ek_public, size_t ek_public_len, const uint8_t *ak_name, size_t ak_name_len,
                         const uint8_t *credential, size_t credential_len, cscp_credential_t *ret);
