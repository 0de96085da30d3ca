/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Verifying a TPM 2.0 quote with OpenSSL 3 and tss2-mu: the signature over
 * the exact TPMS_ATTEST bytes with the key in TPMT_PUBLIC, magic, type,
 * extraData, the PCR selection, and the PCR digest recomputed from the PCR
 * values (in the quote's own selection order, with the signature's hash).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "pcr.h"
#include "verdict.h"

/* A quote as received: views into the caller's buffers. */
typedef struct cscp_quote {
        const uint8_t *attest; /* TPMS_ATTEST, the signed bytes */
        size_t attest_len;
        const uint8_t *sig; /* TPMT_SIGNATURE */
        size_t sig_len;
        const uint8_t *ak_public; /* TPMT_PUBLIC */
        size_t ak_public_len;
        const cscp_pcr_value_t *pcrs;
        size_t n_pcrs;
} cscp_quote_t;

typedef struct cscp_quote_opts {
        const uint8_t *nonce; /* expected extraData */
        size_t nonce_len;
        const char *extra_label;            /* what the expected extraData is, for the claim text (NULL: "nonce") */
        const TPML_PCR_SELECTION *required; /* PCRs the quote must cover; NULL: any */
        bool allow_sha1;                    /* accept SHA-1 signatures and PCR digests (old quotes) */
        const char *prefix;                 /* claim name prefix, e.g. "host-" (NULL: none) */
} cscp_quote_opts_t;

/*
 * Checks the quote and records these claims in v (with opts->prefix):
 *   ak-public      TPMT_PUBLIC parses and is a supported signing key
 *   ak-attributes  restricted | sign | fixedTPM | fixedParent | sensitiveDataOrigin
 *   signature      TPMT_SIGNATURE parses, its scheme/hash are allowed, it verifies
 *   magic          TPM2_GENERATED_VALUE
 *   type           TPM2_ST_ATTEST_QUOTE
 *   extra-data     extraData == opts->nonce (constant-time): the nonce, or the batch root
 *   pcr-selection  the quote covers opts->required
 *   pcr-values     a value of the right size for every selected PCR, none extra
 *   pcr-digest     digest of the values == TPMS_QUOTE_INFO.pcrDigest
 * and facts: ak-name, clock, reset-count, restart-count, safe, firmware-version.
 * Returns 0 when the checks ran (the verdict tells the outcome), negative
 * on allocation failure.
 */
int cscp_quote_verify(const cscp_quote_t *q, const cscp_quote_opts_t *opts, cscp_verdict_t *v);

/* TPMT_PUBLIC (marshalled) -> OpenSSL public key (RSA or EC P-256/384/521). */
int cscp_tpm_public_to_pkey(const uint8_t *tpmt_public, size_t len, EVP_PKEY **ret);
/* TPMT_PUBLIC (parsed) -> OpenSSL public key. */
int cscp_tpmt_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret);
/* Object Name = nameAlg || H_nameAlg(marshalled TPMT_PUBLIC); ret is TPM2B_NAME.name. */
int cscp_tpm_public_name(const uint8_t *tpmt_public, size_t len, TPM2B_NAME *ret);
/* Parses a TPMS_ATTEST (must consume all bytes). */
int cscp_attest_parse(const uint8_t *attest, size_t len, TPMS_ATTEST *ret);
/*
 * Computes the quote PCR digest: H_alg over the values selected by sel, in
 * list order, PCR index ascending, into ret_digest (room for EVP_MAX_MD_SIZE
 * bytes); -ENOENT when a selected value is missing from pcrs.
 */
int cscp_pcr_digest(uint16_t hash_alg, const TPML_PCR_SELECTION *sel, const cscp_pcr_value_t *pcrs, size_t n_pcrs,
                    uint8_t *ret_digest, size_t *ret_len);
