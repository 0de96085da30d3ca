/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Evidence as a whole: building a challenge, checking an answer, saving it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "cscp.pb-c.h"
#include "pcr.h"
#include "verdict.h"

typedef struct cscp_expect {
        const uint8_t *nonce;
        size_t nonce_len;
        const TPML_PCR_SELECTION *host_pcrs; /* required host selection; NULL: any */
        /*
         * The host AK's Name the challenger trusts (nameAlg || digest). Without
         * it the AK is the one the evidence carries: the quote then proves
         * freshness and integrity, not which TPM made it.
         */
        const uint8_t *host_ak_name;
        size_t host_ak_name_len;
        bool allow_sha1;
} cscp_expect_t;

/*
 * Verifies an Evidence message against what the challenger asked: the nonce
 * echo, the host quote (cscp_quote_verify with the "host-" prefix), the host
 * AK against want->host_ak_name ("host-ak-pinned") when given. Claims go into v.
 */
int cscp_evidence_verify(const Cscp__Evidence *ev, const cscp_expect_t *want, cscp_verdict_t *v);

/* Evidence file: one length-prefixed Frame holding an Evidence (the wire form). */
int cscp_evidence_save(const char *path, const Cscp__Evidence *ev);
/* Loads and unpacks; ret_frame owns the evidence (free with cscp__frame__free_unpacked). */
int cscp_evidence_load(const char *path, size_t max, Cscp__Frame **ret_frame);

/* Wire Quote -> view for cscp_quote_verify; pcrs is allocated (free()). */
int cscp_quote_from_wire(const Cscp__Quote *wq, cscp_pcr_value_t **ret_pcrs, size_t *ret_n);
