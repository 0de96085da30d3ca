/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Sealing a small secret to one TPM: a keyedhash sealed-data object
 * (TPM2_Create with sensitive.data = the secret; fixedTPM | fixedParent |
 * userWithAuth | noDA, empty authValue and authPolicy, no sign/decrypt)
 * under the owner hierarchy's storage primary key made from the TCG SRK
 * template (ECC NIST P-256, SHA-256, restricted decrypt, AES-128-CFB, empty
 * authPolicy, unique x = y = 32 zero bytes: EK Credential Profile template
 * L-2 with the TCG Provisioning Guidance §7.5.1 SRK changes). The SRK is
 * created again (deterministically, from the owner seed) for every call and
 * flushed with every other object and session before return; nothing
 * persistent is made. The secret only comes back from the TPM that sealed
 * it while its owner seed is unchanged (TPM2_Clear makes it unrecoverable).
 *
 * Commands carrying the secret (Create, Unseal) use an HMAC session salted
 * with the SRK and parameter encryption (AES-128-CFB), so it never crosses
 * the TPM bus in clear.
 *
 * Sealed blob (all integers big-endian; this is also the file format):
 *   magic     8 bytes  "CSCPSEAL"
 *   version   u16      1
 *   parent    u16      TPM2_ALG_ECC: the SRK template above
 *   public    TPM2B_PUBLIC, tss2-mu marshalled: the sealed object
 *   private   TPM2B_PRIVATE, tss2-mu marshalled
 * and nothing after it; at most CSCP_SEAL_BLOB_MAX bytes.
 */

#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

#define CSCP_SEAL_DATA_MAX 128  /* TPM2B_SENSITIVE_DATA (MAX_SYM_DATA) */
#define CSCP_SEAL_BLOB_MAX 2048 /* a blob is ~250 bytes; files are refused over this before reading */

/*
 * Seals len (1..CSCP_SEAL_DATA_MAX) bytes of data to t's TPM. *ret_blob is
 * malloc'd (free with free()); it holds no plaintext.
 */
int cscp_tpm_seal(cscp_tpm_t *t, const uint8_t *data, size_t len, uint8_t **ret_blob, size_t *ret_blob_len);

/*
 * Unseals blob into ret (room for max bytes). CSCP_E_STATE: the blob is
 * malformed, or t's TPM refused it (another TPM, a cleared owner hierarchy,
 * an altered blob); CSCP_E_TPM: the TPM failed otherwise; -ENOBUFS: the
 * secret is longer than max (ret untouched).
 */
int cscp_tpm_unseal(cscp_tpm_t *t, const uint8_t *blob, size_t blob_len, uint8_t *ret, size_t max, size_t *ret_len);

/*
 * Checks a blob's format without a TPM (bounds, magic, version, parent, the
 * public area is a sealed object of exactly the kind cscp_tpm_seal makes, no
 * trailing bytes). 0, or CSCP_E_STATE with *ret_reason (may be NULL) set to a
 * static text saying what is wrong.
 */
int cscp_seal_blob_check(const uint8_t *blob, size_t len, const char **ret_reason);

/* cscp_tpm_seal into a file, written with cscp_file_write_atomic (mode 0600, fsynced with its directory). */
int cscp_tpm_seal_file(cscp_tpm_t *t, const char *path, const uint8_t *data, size_t len);
/*
 * Reads path (a regular file, at most CSCP_SEAL_BLOB_MAX bytes, else
 * CSCP_E_STATE) and unseals it like cscp_tpm_unseal. -ENOENT when there is no
 * such file. *ret_reason (may be NULL) is set on failure to a static text.
 */
int cscp_tpm_unseal_file(cscp_tpm_t *t, const char *path, uint8_t *ret, size_t max, size_t *ret_len,
                         const char **ret_reason);
