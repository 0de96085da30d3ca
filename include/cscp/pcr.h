/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "cscp.pb-c.h"

#define CSCP_PCR_COUNT 24

/* One PCR value of one bank. */
typedef struct cscp_pcr_value {
        uint16_t hash_alg; /* TPM2_ALG_SHA1/256/384/512 */
        uint16_t index;
        uint16_t size;
        uint8_t value[64]; /* up to SHA-512 */
} cscp_pcr_value_t;

/* "sha256" -> TPM2_ALG_SHA256; 0 when unknown. */
uint16_t cscp_hash_alg_from_name(const char *name);
/* TPM2_ALG_SHA256 -> "sha256"; NULL when unknown. */
const char *cscp_hash_alg_name(uint16_t alg);
/* Digest size of a hash algorithm; 0 when unknown. */
size_t cscp_hash_alg_size(uint16_t alg);
/* OpenSSL digest name ("SHA256") for EVP_MD_fetch; NULL when unknown. */
const char *cscp_hash_alg_evp(uint16_t alg);

/*
 * Parses "sha256:0-7,10+sha1:0,1" (ranges or lists, banks separated by '+',
 * "all" for 0-23) into a selection. Each bank at most once; PCRs 0..23.
 * Returns 0 or CSCP_E_PCRSEL.
 */
int cscp_pcrsel_parse(const char *text, TPML_PCR_SELECTION *ret);
/* Formats a selection back in the same syntax ("sha256:0-7,10"). */
int cscp_pcrsel_format(const TPML_PCR_SELECTION *sel, char *buf, size_t len);
/* Number of PCRs selected across all banks. */
size_t cscp_pcrsel_count(const TPML_PCR_SELECTION *sel);
bool cscp_pcrsel_is_set(const TPMS_PCR_SELECTION *s, unsigned pcr);
/* True when every PCR in `want` is also in `have`. */
bool cscp_pcrsel_covers(const TPML_PCR_SELECTION *have, const TPML_PCR_SELECTION *want);

/* Wire <-> TPM forms. from_wire refuses unknown banks, PCRs > 23, duplicates. */
int cscp_pcrsel_from_wire(Cscp__PcrSelection *const *sels, size_t n, TPML_PCR_SELECTION *ret);
/* Allocates the wire form; free with cscp_pcrsel_wire_free. */
int cscp_pcrsel_to_wire(const TPML_PCR_SELECTION *sel, Cscp__PcrSelection ***ret, size_t *ret_n);
void cscp_pcrsel_wire_free(Cscp__PcrSelection **sels, size_t n);
