/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The host root of trust (design.md §2, issue 7): one set of operations with
 * two backends, so attestd and vtpmd never know which one the host has.
 *
 *   tpm  a TPM 2.0 through any TCTI (lib/tpm/): quotes sign the caller data
 *        as TPM2_Quote extraData (32 bytes: a SHA-256 Merkle root) with the
 *        AK; registers are PCRs.
 *   tdx  an Intel TDX guest through the Linux ABI (include/cscp/tdx-guest.h):
 *        quotes through configfs-tsm with the caller data as REPORTDATA
 *        (64 bytes: a SHA-512 Merkle root); registers are RTMRs, reached
 *        through the TSM measurement-register sysfs. PCR numbers map to
 *        RTMRs as TDVF maps them (reference.md 9, design.md §2):
 *        PCR 1 and 7 -> RTMR0, 2..6 -> RTMR1, 8..15 -> RTMR2 (PCR 0 is
 *        MRTD, fixed at TD build; other PCRs have no RTMR: -EINVAL).
 *
 * Registers are named by their TPM PCR number everywhere above this
 * interface (design.md's PCR use: 11 runtime, 15 containers). What a log
 * record carries is cscp_rot_log_index(): the PCR number on a TPM, the CC
 * measurement-register index on TDX (1..4 = RTMR0..3, as the CCEL numbers
 * them), so the verifier replays the firmware log and ours with one rule.
 *
 * A cscp_rot_t is not thread-safe (one thread at a time), like cscp_tpm_t.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "eventlog.h"
#include "tdx-guest.h"
#include "tpm.h"

typedef enum {
        CSCP_ROT_TPM = 1,
        CSCP_ROT_TDX = 2,
} cscp_rot_kind_t;

typedef struct cscp_rot cscp_rot_t;

typedef struct cscp_rot_config {
        cscp_rot_kind_t kind;
        const char *tcti;             /* tpm: tctildr string; NULL = tctildr default */
        cscp_tdx_guest_paths_t paths; /* tdx: NULL members = the Linux defaults */
        /*
         * tdx: registers and the CCEL only (vtpmd's host log): open checks the RTMR files instead of making a
         * configfs-tsm report instance, and cscp_rot_quote is CSCP_E_UNSUPPORTED. Ignored by tpm.
         */
        bool registers_only;
} cscp_rot_config_t;

/* "tpm" / "tdx" <-> kind. -EINVAL for anything else. */
int cscp_rot_kind_from_string(const char *s, cscp_rot_kind_t *ret);
const char *cscp_rot_kind_to_string(cscp_rot_kind_t kind);

/*
 * The command-line options that choose the host root of trust, shared by attestd and vtpmd: --rot tpm|tdx,
 * --tsm-root DIR, --tdx-mr-root DIR, --ccel-table FILE, --ccel-data FILE. CSCP_ROT_LONG_OPTIONS goes into a
 * getopt_long table (<getopt.h>); a program numbers its own options from CSCP_ROT_OPT_END on.
 */
enum {
        CSCP_ROT_OPT_ROT = 0x100,
        CSCP_ROT_OPT_TSM_ROOT,
        CSCP_ROT_OPT_MR_ROOT,
        CSCP_ROT_OPT_CCEL_TABLE,
        CSCP_ROT_OPT_CCEL_DATA,
        CSCP_ROT_OPT_END,
};

#define CSCP_ROT_LONG_OPTIONS                                                     \
        {"rot", required_argument, NULL, CSCP_ROT_OPT_ROT},                       \
                {"tsm-root", required_argument, NULL, CSCP_ROT_OPT_TSM_ROOT},     \
                {"tdx-mr-root", required_argument, NULL, CSCP_ROT_OPT_MR_ROOT},   \
                {"ccel-table", required_argument, NULL, CSCP_ROT_OPT_CCEL_TABLE}, \
        {                                                                         \
                "ccel-data", required_argument, NULL, CSCP_ROT_OPT_CCEL_DATA      \
        }

/*
 * 1: c was one of these options (stored in *kind or *paths), 0: not one, -EINVAL: a bad --rot value (err says
 * why, without the program's name).
 */
int cscp_rot_opt(int c, const char *arg, cscp_rot_kind_t *kind, cscp_tdx_guest_paths_t *paths, char *err,
                 size_t err_len);
/* 0 when the combination is consistent; -EINVAL with the reason in err when TDX paths were given without --rot tdx. */
int cscp_rot_opts_check(cscp_rot_kind_t kind, const cscp_tdx_guest_paths_t *paths, char *err, size_t err_len);

/*
 * Opens the backend. TDX on a machine without it: CSCP_E_UNSUPPORTED, and a
 * one-line reason is logged at error ("no TDX guest here: /sys/kernel/config/
 * tsm/report: No such file or directory").
 */
int cscp_rot_open(const cscp_rot_config_t *cfg, cscp_rot_t **ret);
void cscp_rot_free(cscp_rot_t *rot);
cscp_rot_kind_t cscp_rot_kind(const cscp_rot_t *rot);

/* The TPM behind a tpm backend (AK load, enrollment); NULL on TDX. */
cscp_tpm_t *cscp_rot_tpm(cscp_rot_t *rot);

/* Hash of the batch tree (include/cscp/merkle.h) and how many bytes of caller data a quote carries: tpm SHA-256/32, tdx
 * SHA-512/64. */
uint16_t cscp_rot_merkle_alg(const cscp_rot_t *rot);
size_t cscp_rot_data_len(const cscp_rot_t *rot);

typedef struct cscp_rot_quote {
        cscp_rot_kind_t kind;
        cscp_tpm_quote_t tpm; /* CSCP_ROT_TPM */
        uint8_t *tdx;         /* CSCP_ROT_TDX: the quote as outblob gave it */
        size_t tdx_len;
} cscp_rot_quote_t;

/*
 * A quote over data (exactly cscp_rot_data_len bytes). sel: the PCRs of a
 * TPM quote; ignored on TDX (a TD quote always holds MRTD and RTMR0..3).
 */
int cscp_rot_quote(cscp_rot_t *rot, const uint8_t *data, size_t len, const TPML_PCR_SELECTION *sel,
                   cscp_rot_quote_t *ret);
int cscp_rot_quote_dup(const cscp_rot_quote_t *in, cscp_rot_quote_t *out);
void cscp_rot_quote_clear(cscp_rot_quote_t *q);

/* The banks a record extended into this root must carry: the TPM's allocated banks; {SHA-384} on TDX. */
int cscp_rot_banks(cscp_rot_t *rot, uint16_t *ret, size_t max, size_t *ret_n);
/*
 * The register index a log record for PCR pcr carries (above). -EINVAL for a PCR without a register (TDX: PCR 0
 * and 16..23; TPM: 24 and up). On TDX PCR 1..7 have an index too (RTMR0/1), though cscp_rot_extend refuses them.
 */
int cscp_rot_log_index(const cscp_rot_t *rot, unsigned pcr, uint32_t *ret);
/* The same by backend kind, without opening one (vtpmd checks its configuration before the root is reached). */
int cscp_rot_kind_log_index(cscp_rot_kind_t kind, unsigned pcr, uint32_t *ret);
/*
 * Extends PCR pcr (TDX: its RTMR) with one digest per bank of cscp_rot_banks; digests of other banks are ignored,
 * and at least one must be for a bank of the root (else -EINVAL). TPM: every bank in one TPM2_PCR_Extend. TDX:
 * the SHA-384 digest; PCRs mapping to RTMR0/1 (1..7, the firmware's) are -EPERM.
 */
int cscp_rot_extend(cscp_rot_t *rot, unsigned pcr, const cscp_event_digest_t *digests, size_t n);
/*
 * Reads PCR pcr in bank alg (TDX: its RTMR, SHA-384 only: another alg is CSCP_E_UNSUPPORTED). ret holds
 * CSCP_EVENT_MAX_DIGEST bytes.
 */
int cscp_rot_read(cscp_rot_t *rot, unsigned pcr, uint16_t alg, uint8_t *ret, size_t *ret_len);

/*
 * The firmware event log that explains the registers at boot: on TDX the
 * CCEL (its log area as the ACPI table bounds it); on a TPM -ENOENT (attestd
 * reads the TPM boot log from --boot-log, securityfs). Free *ret with free().
 */
int cscp_rot_firmware_log(cscp_rot_t *rot, uint8_t **ret, size_t *ret_len);

/* One line describing the platform ("tpm: swtpm:path=... banks sha256,sha384", "tdx: provider tdx_guest, ..."). */
int cscp_rot_describe(cscp_rot_t *rot, char *buf, size_t len);
