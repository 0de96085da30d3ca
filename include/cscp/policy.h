/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Policies (YAML, parsed with libyaml; documented in docs/policy.md):
 *
 *  - the appraisal policy: reference values a challenger holds the replayed
 *    logs to (boot log digests and PCR values, an IMA allowlist with excludes
 *    and signature expectations, allowed container configs, layers,
 *    arguments and environment, what resets are acceptable, a TD quote's
 *    MRTD / RTMRs / TD attributes and acceptable TCB statuses). The appraiser
 *    sees every event of every log and returns every violation with the
 *    event that caused it;
 *  - the measurement policy: what the host measures (the container
 *    measurement design guide's shape: backend, hashAlgorithm,
 *    measure.system.processes[].withParameter, measure.container.isolated,
 *    measure.kubernetes.pods), parsed and validated here, applied by vtpmd.
 *
 * Loading is strict: unknown keys, wrong types, bad digests, bad patterns are
 * errors naming the line and column; limits on sizes and counts apply before
 * anything is stored.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"

#define CSCP_POLICY_MAX_BYTES   (4u * 1024 * 1024)
#define CSCP_POLICY_MAX_ENTRIES 1000000

typedef struct cscp_policy cscp_policy_t;

/* Parses an appraisal policy; on failure *ret is untouched and err holds "line L, column C: ...". */
int cscp_policy_parse(const char *text, size_t len, cscp_policy_t **ret, char *err, size_t err_len);
int cscp_policy_load(const char *path, cscp_policy_t **ret, char *err, size_t err_len);
void cscp_policy_free(cscp_policy_t *p);

/* One violation: which rule, which log and event, and why. */
typedef struct cscp_violation {
        char *rule; /* "boot.pcrs", "boot.events", "ima.allow", "ima.signature", "container.layers", "tdx.mrtd", ... */
        char *log;  /* the log's name as given to cscp_appraisal_log (e.g. its path) */
        int64_t event; /* event index in that log, -1 when the violation is about the whole log */
        uint64_t offset;
        char *detail; /* valid UTF-8, no control characters */
} cscp_violation_t;

typedef struct cscp_appraisal cscp_appraisal_t;

int cscp_appraisal_new(const cscp_policy_t *p, cscp_appraisal_t **ret);
void cscp_appraisal_free(cscp_appraisal_t *a);
/* Starts the next log (its name is used in violations). */
int cscp_appraisal_log(cscp_appraisal_t *a, const char *name, cscp_eventlog_format_t format);
/* Appraises one event of the current log. */
int cscp_appraisal_event(cscp_appraisal_t *a, const cscp_event_t *ev);
/* Ends the current log: checks its replayed PCRs against boot.pcrs (NULL: skip) . */
int cscp_appraisal_end_log(cscp_appraisal_t *a, const cscp_replay_t *rp);
/*
 * Resets: (reset_count, restart_count) now versus last seen; a reboot is
 * acceptable only when resets.allow_reboot, a restart (same reset_count,
 * higher restart_count) only when resets.allow_restart; a lower pair is never.
 */
int cscp_appraisal_resets(cscp_appraisal_t *a, uint32_t last_reset, uint32_t last_restart, uint32_t reset,
                          uint32_t restart);
/* resets.allow_reboot / resets.allow_restart of a policy (false when the policy has no resets section). */
void cscp_policy_resets(const cscp_policy_t *p, bool *ret_allow_reboot, bool *ret_allow_restart);
/*
 * TDX reference values (the policy's tdx section, docs/policy.md): holds a
 * parsed TD quote's MRTD, RTMR0..3, MRSEAM, MRSIGNERSEAM, MRCONFIGID, MROWNER,
 * MROWNERCONFIG to the values the policy allows (each register it names: any
 * one of its values, exact 48 bytes) and TDATTRIBUTES.DEBUG (bit 0) to
 * tdx.allow_debug. Call it once, after the quote's signature verified (the
 * values of an unverified quote prove nothing). Violations (rules tdx.mrtd,
 * tdx.rtmrs, tdx.mrseam, tdx.mrsignerseam, tdx.mrconfigid, tdx.mrowner,
 * tdx.mrownerconfig, tdx.allow_debug; event -1) name the register, the quoted
 * value and the allowed value(s); their log is name (NULL: "tdx-quote").
 * q NULL says the host gave no TD quote: a policy with a tdx section then
 * yields one violation (rule "tdx"). A policy without a tdx section checks
 * nothing. 0, or -EINVAL / -ENOMEM / CSCP_E_TOO_BIG.
 */
struct cscp_tdx_quote;
int cscp_appraisal_tdx(cscp_appraisal_t *a, const char *name, const struct cscp_tdx_quote *q);
/*
 * tdx.ccel_rtmrs: the values the firmware's event log (CCEL) alone replays
 * RTMR0..3 to (rp: the replay of the CCEL's events, SHA-384 "PCRs" 1..4 = CC
 * index, RTMR0..3, as the CCEL numbers them; an RTMR the CCEL never extends is
 * zero). Unlike tdx.rtmrs (the quoted values, which on a CSCP host include
 * vtpmd's records in RTMR2), these hold still across container starts. Call
 * it once the CCEL replayed without error; rp NULL says the host sent no CCEL
 * (one violation when the policy names such values). Violations: rule
 * tdx.ccel_rtmrs, event -1, log name (NULL: the current log's name).
 */
int cscp_appraisal_tdx_ccel(cscp_appraisal_t *a, const char *name, const cscp_replay_t *rp);
/* The policy has a tdx section (its reference values apply to TDX hosts only). */
bool cscp_policy_has_tdx(const cscp_policy_t *p);
/* The policy names host PCR values (boot.pcrs): a TDX host has no PCRs to satisfy them. */
bool cscp_policy_has_host_pcrs(const cscp_policy_t *p);
/*
 * tdx.tcb_status: the TCB statuses the policy accepts (Intel names, e.g.
 * "SWHardeningNeeded"; UpToDate is always accepted, listed or not), for
 * cscp_tdx_verify_opts_t.tcb_allowed. Returns true when the policy states
 * tdx.tcb_status (*ret / *ret_n: the list, owned by p), false when it does not
 * (*ret = NULL, *ret_n = 0: UpToDate only, or whatever the caller's default is).
 */
bool cscp_policy_tdx_tcb_allowed(const cscp_policy_t *p, const char *const **ret, size_t *ret_n);

/* The violations so far (owned by a). */
const cscp_violation_t *cscp_appraisal_violations(const cscp_appraisal_t *a, size_t *ret_n);

/* Fields of one IMA entry (from an event of an IMA list: ev->kind = template, ev->data = template data). */
typedef struct cscp_ima_entry {
        const char *template_name;
        uint16_t hash_alg; /* of the file digest; 0 when the template's digest has no algorithm (ima: SHA-1) */
        const uint8_t *digest;
        size_t digest_len;
        const char *path;   /* NUL-terminated inside a copy held by the entry */
        const uint8_t *sig; /* ima-sig / ima-modsig signature (security.ima xattr bytes), NULL when absent */
        size_t sig_len;
        const char *cgroup; /* ima-cgpath / ima-dep-cgn */
        char buf[4096 + 256];
} cscp_ima_entry_t;
int cscp_ima_entry_parse(const cscp_event_t *ev, cscp_ima_entry_t *ret);

/* The measurement policy. */
typedef struct cscp_measure_process {
        char *path;          /* absolute path of the binary to measure */
        bool with_parameter; /* measure the command line too */
} cscp_measure_process_t;

typedef struct cscp_measure_policy {
        char backend[8];   /* "tpm" or "tdx" */
        uint16_t hash_alg; /* TPM2_ALG_SHA256 (default), SHA384, SHA512, SHA1 refused */
        cscp_measure_process_t *processes;
        size_t n_processes;
        bool container_isolated; /* each challenger sees only the containers it is authorised for */
        bool kubernetes_pods;    /* measure pod records (CM_TLV POD) */
} cscp_measure_policy_t;

int cscp_measure_policy_parse(const char *text, size_t len, cscp_measure_policy_t **ret, char *err, size_t err_len);
int cscp_measure_policy_load(const char *path, cscp_measure_policy_t **ret, char *err, size_t err_len);
void cscp_measure_policy_free(cscp_measure_policy_t *p);
