/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The TPM side: a TPM reached through any TCTI (device:/dev/tpmrm0,
 * swtpm:path=..., tctildr's default), an attestation key made under the
 * standard EK template and kept in a state directory, and quotes.
 * TSS2_RC stays inside this module: failures become CSCP_E_TPM and the
 * decoded text is logged at debug.
 *
 * A cscp_tpm_t is not thread-safe: one thread at a time (attestd runs it on
 * the libuv threadpool, one job at a time).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tpm2_types.h>

#include "pcr.h"

typedef struct cscp_tpm cscp_tpm_t;

typedef enum {
        CSCP_KEY_ECC_P256 = 0, /* EK template L-2, AK ECDSA P-256 / SHA-256 */
        CSCP_KEY_RSA_2048 = 1, /* EK template L-1, AK RSASSA 2048 / SHA-256 */
} cscp_key_alg_t;

/* tcti: a tctildr configuration string ("swtpm:path=/x/tpm.sock"); NULL = tctildr default. */
int cscp_tpm_open(const char *tcti, cscp_tpm_t **ret);
void cscp_tpm_free(cscp_tpm_t *t);

/*
 * Loads the AK kept in state_dir/ak-<alg>.blob, or, when there is none,
 * creates one (EK primary from the template, AK as its child under a
 * PolicySecret(endorsement) session) and stores it atomically. The AK stays
 * loaded; the EK is flushed. A blob that does not load on this TPM is
 * CSCP_E_STATE (never silently replaced). ret_created may be NULL.
 */
int cscp_tpm_ak_load_or_create(cscp_tpm_t *t, const char *state_dir, cscp_key_alg_t alg, bool *ret_created);
/* Marshalled TPMT_PUBLIC of the loaded AK (owned by t; valid until free). */
int cscp_tpm_ak_public(cscp_tpm_t *t, const uint8_t **ret, size_t *ret_len);

typedef struct cscp_tpm_quote {
        uint8_t *attest; /* TPMS_ATTEST bytes */
        size_t attest_len;
        uint8_t *sig; /* TPMT_SIGNATURE marshalled */
        size_t sig_len;
        cscp_pcr_value_t *pcrs; /* values of the PCRs in the quote's selection, that order */
        size_t n_pcrs;
} cscp_tpm_quote_t;

/*
 * TPM2_Quote(AK, qualifyingData = nonce, sel) plus the PCR values. The
 * values are read after the quote and checked against its pcrDigest; if a PCR
 * moved in between, it quotes again (a few times, then CSCP_E_TPM).
 * The nonce is used as given: 1..64 bytes, never hashed or shortened.
 */
int cscp_tpm_quote(cscp_tpm_t *t, const uint8_t *nonce, size_t nonce_len, const TPML_PCR_SELECTION *sel,
                   cscp_tpm_quote_t *ret);
void cscp_tpm_quote_clear(cscp_tpm_quote_t *q);

/* TPM2_PCR_Read of a whole selection (loops over the TPM's 8-digest answers). */
int cscp_tpm_pcr_read(cscp_tpm_t *t, const TPML_PCR_SELECTION *sel, cscp_pcr_value_t **ret, size_t *ret_n);
/* Allocated PCR banks this library can replay (sha1/256/384/512), in the TPM's order. */
int cscp_tpm_pcr_banks(cscp_tpm_t *t, uint16_t *ret, size_t max, size_t *ret_n);
/* TPM2_PCR_Extend of one bank's PCR with a digest (tests, and vtpmd later). */
int cscp_tpm_pcr_extend(cscp_tpm_t *t, unsigned pcr, uint16_t hash_alg, const uint8_t *digest, size_t len);

/*
 * For vtpmd's manufacture (vtpmd/manufacture.c), which does TPM work this
 * module does not wrap (platform hierarchy, NV, EvictControl) on the same
 * context. Nothing here hands out a TSS2_RC.
 */
/* The ESYS context of t (owned by t, valid until cscp_tpm_free). */
ESYS_CONTEXT *cscp_tpm_esys(cscp_tpm_t *t);
/* The EK template used here: TCG L-2 (ECC P-256) or L-1 (RSA 2048), reference.md 2.1. */
void cscp_tpm_ek_template(cscp_key_alg_t alg, TPM2B_PUBLIC *ret);
/* The AK template: restricted signing, fixedTPM/fixedParent, ECDSA P-256 or RSASSA 2048, SHA-256. */
void cscp_tpm_ak_template(cscp_key_alg_t alg, TPM2B_PUBLIC *ret);
/*
 * Makes the persistent key at handle t's AK (checked to be an AK of alg):
 * cscp_tpm_quote and cscp_tpm_ak_public then use it. -ENOENT when there is
 * no object at handle, CSCP_E_STATE when it is not an AK.
 */
int cscp_tpm_ak_use_persistent(cscp_tpm_t *t, uint32_t handle, cscp_key_alg_t alg);

/*
 * Enrollment (lib/tpm/ek.c, issue 6): the EK of the TCG default templates
 * above, its certificate, and TPM2_ActivateCredential.
 */
#define CSCP_TPM_EK_CERT_MAX 8192 /* largest EK certificate read from NV */

/* The AK's ESYS handle (ESYS_TR_NONE when none is loaded). */
ESYS_TR cscp_tpm_ak_handle(cscp_tpm_t *t);
/* Low-range NV index of the EK certificate of alg: 0x01C00002 (RSA-2048), 0x01C0000A (ECC P-256). */
uint32_t cscp_tpm_ek_cert_index(cscp_key_alg_t alg);
/*
 * The EK certificate (DER, without any NV padding) of alg; -ENOENT when the
 * TPM has none, CSCP_E_TOO_BIG over CSCP_TPM_EK_CERT_MAX, CSCP_E_PROTO when
 * the index does not hold DER. Free *ret with free().
 */
int cscp_tpm_ek_cert_read(cscp_tpm_t *t, cscp_key_alg_t alg, uint8_t **ret, size_t *ret_len);
/* Marshalled TPMT_PUBLIC of the EK of alg (CreatePrimary from the template, then flushed). */
int cscp_tpm_ek_public(cscp_tpm_t *t, cscp_key_alg_t alg, uint8_t *ret, size_t max, size_t *ret_len);
/*
 * TPM2_ActivateCredential: activateHandle = the loaded AK, keyHandle = the EK
 * of ek_alg through a PolicySecret(TPM_RH_ENDORSEMENT) session. blob =
 * TPM2B_ID_OBJECT.credential, secret = TPM2B_ENCRYPTED_SECRET.secret (as
 * cscp_credential_make gives them). -EBADMSG when the TPM refuses them (made
 * for another EK or another AK Name, or altered); -ENOENT without an AK.
 */
int cscp_tpm_activate_credential(cscp_tpm_t *t, cscp_key_alg_t ek_alg, const uint8_t *blob, size_t blob_len,
                                 const uint8_t *secret, size_t secret_len, uint8_t *ret, size_t max, size_t *ret_len);
