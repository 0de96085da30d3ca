/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Evidence as a whole: building a challenge, checking an answer, saving it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tss2/tss2_tpm2_types.h>

#include <openssl/x509_vfy.h>

#include "cscp.pb-c.h"
#include "pcr.h"
#include "policy.h"
#include "store.h"
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
        /* Where host_ak_name comes from: true = the store's enrollment (claim host-ak-enrolled), false = pinned
         * by the user (host-ak-pinned). Without host_ak_name the claim host-ak-enrolled fails. */
        bool host_ak_enrolled;
        bool allow_sha1;
        /* A container challenge: the container id asked for (NULL or "": host only). */
        const char *container_id;
        const TPML_PCR_SELECTION *container_pcrs; /* required container selection; NULL: any */
        /* The vtpmd manufacturer CA the vTPM EK certificate must chain to (vtpm-ek-cert); name for messages. */
        X509_STORE *vtpm_ca;
        const char *vtpm_ca_name;
        /* The appraisal policy (claim "policy"), and what it says about resets; NULL: no policy. */
        const cscp_policy_t *policy;
        /*
         * The challenger's store (NULL: none): the last clockInfo per AK (host-clock, container-clock) and
         * the IMA replay checkpoint of this host, both updated only from evidence whose signatures and
         * extraData verified. host names the host in the store (the --server string).
         */
        cscp_store_t *store;
        const char *host;
        /*
         * A TDX host (Evidence.host_tdx_quote, docs/tdx.md "TDX host evidence"): the PCK chain's trust
         * anchor file (PEM; required: without it such evidence is an error verdict), the verification
         * time (0: now), CRL files, the collateral directory (TCB info / QE identity; NULL: TCB status
         * not evaluated) and the TCB statuses accepted besides UpToDate (n_tdx_tcb_allowed names, e.g.
         * "SWHardeningNeeded"). Unused for a TPM host.
         */
        const char *tdx_root;
        time_t tdx_at;
        const char *const *tdx_crls;
        size_t n_tdx_crls;
        const char *tdx_collateral_dir;
        const char *const *tdx_tcb_allowed;
        size_t n_tdx_tcb_allowed;
} cscp_expect_t;

/*
 * Verifies an Evidence message against what the challenger asked, every step
 * of design.md §3.5 a named claim in v:
 *   nonce-echo, container-id, host-quote-present, host-batch-proof,
 *   host-{ak-public,ak-attributes,signature,magic,type,extra-data,pcr-selection,pcr-values,pcr-digest},
 *   host-ak-enrolled | host-ak-pinned, host-logs (the logs parse), host-pcrs-replay,
 *   and for a container:
 *   container-quote-present, container-{...the quote claims...} (extraData = the nonce),
 *   container-pcrs-replay, vtpm-bind (an attested vtpm-bind record for this container naming the vAK
 *   that signed the container quote and the vEK, no later vtpm-destroy), vtpm-ek-cert (chains to the
 *   manufacturer CA, holds the vEK); then host-clock and container-clock (with a store), and policy.
 * A TDX host (host_tdx_quote instead of host_quote; both or neither: host-quote-present fails) is checked
 * with host-tdx-* (cscp_tdx_quote_verify's tdx-* claims, prefixed), host-batch-proof (REPORTDATA = the
 * SHA-512 root), host-logs and host-rtmrs-replay (CCEL + host CEL logs into RTMR0..3) instead of the
 * host quote, AK and clock claims; the container part is the same.
 * Returns 0 when the checks ran (the verdict tells the outcome), negative on
 * allocation failure or bad arguments.
 */
int cscp_evidence_verify(const Cscp__Evidence *ev, const cscp_expect_t *want, cscp_verdict_t *v);

/* Evidence file: one length-prefixed Frame holding an Evidence (the wire form). */
int cscp_evidence_save(const char *path, const Cscp__Evidence *ev);
/* Loads and unpacks; ret_frame owns the evidence (free with cscp__frame__free_unpacked). */
int cscp_evidence_load(const char *path, size_t max, Cscp__Frame **ret_frame);

/*
 * The IMA event index the store's checkpoint for host continues from (0: none, ask for the whole list).
 * Used to fill the IMA LogRequest's offset; cscp_evidence_verify resumes from the same checkpoint.
 */
int cscp_evidence_ima_offset(cscp_store_t *store, const char *host, uint64_t *ret);

/* Wire Quote -> view for cscp_quote_verify; pcrs is allocated (free()). */
int cscp_quote_from_wire(const Cscp__Quote *wq, cscp_pcr_value_t **ret_pcrs, size_t *ret_n);
