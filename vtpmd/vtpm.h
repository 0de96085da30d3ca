/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The TPM-facing half of vtpmd (files manufacture.c, hostlog.c, measure.c):
 * manufacturing a fresh vTPM, the write-ahead host log bound to a host PCR,
 * and container measurements into a vTPM and its CEL-TLV log. The daemon half
 * (main.c, daemon.c, control.c, instance.c, registry.c, pool.c) calls these.
 * Every function here is blocking (TPM round trips): call it off the libuv
 * loop thread (uv_queue_work or a worker).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cscp/cel.h"
#include "cscp/tpm.h"

#define VTPM_PLATFORM_AUTH_LEN 32
#define VTPM_MAX_PUBLIC        1024 /* marshalled TPMT_PUBLIC */
#define VTPM_MAX_NAME          66   /* TPM2B_NAME.name: alg id + SHA-512 */

/* Added by manufacture.c: where manufacture puts things in the vTPM (reference.md 2.3). */
#define VTPM_EK_HANDLE_RSA  0x81010001u /* TCG EK handle, RSA 2048 (owner range: the EK can be re-derived) */
#define VTPM_EK_HANDLE_ECC  0x81010002u /* TCG EK handle, ECC P-256 */
#define VTPM_EK_CERT_NV_RSA 0x01C00002u /* TCG low-range EK certificate NV index, RSA 2048 */
#define VTPM_EK_CERT_NV_ECC 0x01C0000Au /* ECC P-256 */
#define VTPM_AK_HANDLE      0x81800001u /* platform range: only the platform hierarchy can evict it */
#define VTPM_MAX_EK_CERT    2048        /* DER bytes (the NV index size limit of libtpms) */

/* What manufacture made; saved with the instance (vtpm_identity_save/load). */
typedef struct vtpm_identity {
        cscp_key_alg_t ek_alg;
        uint8_t ek_public[VTPM_MAX_PUBLIC]; /* marshalled TPMT_PUBLIC */
        size_t ek_public_len;
        uint8_t ek_sha256[32]; /* SHA-256 of ek_public: what vtpm-bind records */
        uint8_t *ek_cert;      /* DER, also stored at the TCG NV index for ek_alg */
        size_t ek_cert_len;
        uint32_t ak_handle; /* persistent, in the platform range: the container cannot evict it */
        uint8_t ak_public[VTPM_MAX_PUBLIC];
        size_t ak_public_len;
        uint8_t ak_name[VTPM_MAX_NAME]; /* TPM2B_NAME.name */
        size_t ak_name_len;
} vtpm_identity_t;

typedef struct vtpm_manufacture_opts {
        cscp_key_alg_t ek_alg;    /* ECC P-256 (default) or RSA-2048 */
        const char *ca_cert;      /* vTPM manufacturer CA (PEM), signs the EK certificate */
        const char *ca_key;       /* its key (PEM) */
        const char *serial_label; /* EK certificate subject CN (e.g. the instance id) */
        /* Platform hierarchy auth to set (random, kept by vtpmd); VTPM_PLATFORM_AUTH_LEN bytes. */
        const uint8_t *platform_auth;
} vtpm_manufacture_opts_t;

/*
 * Manufactures a vTPM that has just been started (fresh state): sets the
 * platform hierarchy auth, creates the EK (standard template), issues and
 * stores its certificate at the TCG NV index, creates the AK (restricted
 * ECC P-256 signing key) and makes it persistent under the platform
 * hierarchy. tcti: "swtpm:path=<sock>".
 */
int vtpm_manufacture(const char *tcti, const vtpm_manufacture_opts_t *o, vtpm_identity_t *ret);
/*
 * After a vTPM restart (swtpm runs TPM2_Startup(CLEAR), which empties the
 * platform hierarchy auth) and before anyone else may talk to it: sets the
 * platform auth from empty to platform_auth (VTPM_PLATFORM_AUTH_LEN bytes).
 * Returns 1 when it was empty and is set now, 0 when it already was
 * platform_auth (nothing changed), CSCP_E_STATE when it is set to something
 * else or the platform hierarchy is unusable (someone got at the vTPM while
 * it was open). disableClear, set at manufacture, is NV state and survives
 * Startup(CLEAR) (tested), so it is not re-applied here.
 */
int vtpm_platform_auth_set(const char *tcti, const uint8_t *platform_auth);
void vtpm_identity_clear(vtpm_identity_t *id);
/* Atomic save / checked load of an identity (a file in the instance directory). */
int vtpm_identity_save(const vtpm_identity_t *id, const char *path);
int vtpm_identity_load(const char *path, vtpm_identity_t *ret);

/* Quote with the vTPM's AK: extraData = nonce (1..64 bytes), values read as cscp_tpm_quote does. */
int vtpm_quote(const char *tcti, const vtpm_identity_t *id, const uint8_t *nonce, size_t nonce_len,
               const TPML_PCR_SELECTION *sel, cscp_tpm_quote_t *ret);

/*
 * The host log: CEL-TLV records of CM_TLV content, each extended into host
 * PCR `pcr` (default 15) of every bank in banks (0-terminated). Write-ahead:
 * the record is appended and fsynced before the extend. hostlog_open
 * reconciles log and PCR: if replaying the log gives the PCR value, fine; if
 * the log has exactly one trailing record more, it is extended now; any other
 * mismatch is CSCP_E_STATE with a message in ret_msg (never papered over).
 * The host TPM is opened for each operation and closed after it, so attestd
 * can share a single-connection TPM (swtpm) with vtpmd.
 */
typedef struct hostlog hostlog_t;
int hostlog_open(const char *path, const char *host_tcti, uint32_t pcr, const uint16_t *banks, hostlog_t **ret,
                 char *ret_msg, size_t msg_len);
/*
 * The same on any host root of trust (include/cscp/rot.h; hostlog_open is
 * the tpm one): records carry cscp_rot_log_index(pcr) (TDX: PCR 15 -> 3 =
 * RTMR2), and on TDX the register's value at boot is the CCEL's replay.
 * banks NULL: every bank of the root ({SHA-384} on TDX); given banks must be
 * banks the root has.
 */
struct cscp_rot_config;
int hostlog_open_rot(const char *path, const struct cscp_rot_config *rot, uint32_t pcr, const uint16_t *banks,
                     hostlog_t **ret, char *ret_msg, size_t msg_len);
int hostlog_append(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields);
void hostlog_close(hostlog_t *h);
/*
 * Write-ahead in two steps, so a caller can acknowledge once the record is
 * durable and extend right after: hostlog_append_deferred appends and fsyncs
 * (nothing extended yet; the log's flock stays held and further appends are
 * refused), hostlog_extend_pending extends it and releases the lock. A crash
 * in between leaves exactly one record ahead of the PCR, which hostlog_open
 * extends (reconciliation).
 */
typedef struct hostlog_pending {
        uint64_t recnum;
        size_t n;
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
} hostlog_pending_t;
int hostlog_append_deferred(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields,
                            hostlog_pending_t *ret);
int hostlog_extend_pending(hostlog_t *h, const hostlog_pending_t *p);
/* Test hook: append and fsync the record but do not extend (a crash between the two). */
int hostlog_append_no_extend(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields);

/* Added (hostlog.c, shared with measure.c): limits on what vtpmd writes to and reads from its CEL logs. */
#define VTPM_LOG_MAX_CONTENT (256u * 1024) /* one CM_TLV content value */
#define VTPM_LOG_MAX_RECORD  (VTPM_LOG_MAX_CONTENT + 1024)
#define VTPM_LOG_MAX_RECORDS 1000000u

/*
 * Reads a CEL-TLV log of vtpmd from fd (from offset 0): the whole records,
 * replayed (ret_all), the replay without the last record (ret_prev, may be
 * NULL), and that last record's digests (ret_last, may be NULL). Every record
 * must extend a PCR (not an NV index). ret_whole_len = bytes of whole
 * records; ret_truncated = the file ends inside a record (a crash in the
 * middle of an append). Anything else malformed is CSCP_E_STATE with a
 * message in msg.
 */
typedef struct vtpm_log_scan {
        uint64_t n_records;
        uint64_t whole_len;
        bool truncated;     /* bytes after the last whole record that do not parse */
        uint64_t tail_len;  /* how many */
        uint32_t pcrs_used; /* bit i: some record extends PCR i */
        size_t n_last;
        cscp_event_digest_t last[CSCP_EVENT_MAX_DIGESTS];
        uint32_t last_pcr;
} vtpm_log_scan_t;
int vtpm_log_scan(int fd, cscp_replay_t *ret_all, cscp_replay_t *ret_prev, vtpm_log_scan_t *ret, char *msg,
                  size_t msg_len);
/*
 * One CEL-TLV record of CM_TLV content for PCR pcr: the bytes (malloc'd) and
 * the digests to extend, one per bank of banks (0-terminated). Content over
 * VTPM_LOG_MAX_CONTENT is CSCP_E_TOO_BIG.
 */
int vtpm_log_record(uint64_t recnum, uint32_t pcr, const uint16_t *banks, cscp_cm_kind_t kind,
                    const cscp_cm_field_value_t *fields, size_t n_fields, cscp_event_digest_t *ret_digests,
                    size_t *ret_n, uint8_t **ret, size_t *ret_len);

/* What vtpmd measures into a container's vTPM at Create (design.md §4). */
typedef struct vtpm_create_measurements {
        const char *container_id;
        const char *runtime_name, *runtime_version; /* VERSION */
        const char *config_digest;                  /* CONFIG: "sha256:<hex>" of the OCI config.json */
        const char *const *args;                    /* PROCESS, one record per argument */
        size_t n_args;
        const char *const *env; /* PROCESS, one record per NAME=value */
        size_t n_env;
        const char *const *layers; /* LAYER: "sha256:<hex>" manifest/config/layer digests */
        size_t n_layers;
        const char *image_name; /* LAYER name field when known */
        /* CONFIG event "annotation", PCR 11, one per (key, value), in the given order (the hook sorts by key);
         * recorded after the env records and before the closing "create" record. */
        const char *const *ann_keys, *const *ann_values;
        size_t n_ann;
} vtpm_create_measurements_t;

/*
 * The Create measurements in steps (write-ahead, acknowledged in between):
 * vtpm_measure_create_log appends every record to the container log in one
 * write and returns what is left to extend (the log's flock stays held by
 * it); vtpm_pending_sync fsyncs them (separate, so the caller can write other
 * logs first and their fsyncs share a journal commit); vtpm_pending_extend
 * extends them into the vTPM in log order. vtpm_pending_free releases the
 * lock (and frees) in any case, and takes back records never synced. The
 * banks are the vTPM's allocated PCR banks (vtpm_pcr_banks), 0-terminated.
 * A stop in between leaves the log ahead of the PCRs; vtpm_log_reextend
 * extends the records the PCRs lack.
 */
typedef struct vtpm_pending vtpm_pending_t;
int vtpm_pcr_banks(const char *vtpm_tcti, uint16_t ret[CSCP_EVENT_MAX_DIGESTS + 1]);
int vtpm_measure_create_log(const char *log_path, const uint16_t *banks, const vtpm_create_measurements_t *m,
                            vtpm_pending_t **ret);
int vtpm_pending_sync(vtpm_pending_t *p);
/* One TPM2_PCR_Extend of pcr with a record's digests, one per bank (all banks in one command). */
int vtpm_pcr_extend_record(cscp_tpm_t *t, uint32_t pcr, const cscp_event_digest_t *d, size_t n);
int vtpm_pending_extend(const char *vtpm_tcti, vtpm_pending_t *p);
void vtpm_pending_free(vtpm_pending_t *p);
/* Appends one CM_TLV record to the container log (fsync) and extends it into the vTPM's PCR. */
int vtpm_measure(const char *vtpm_tcti, const char *log_path, uint32_t pcr, cscp_cm_kind_t kind,
                 const cscp_cm_field_value_t *fields, size_t n_fields);
/* All Create measurements, in a fixed documented order (docs/measurements.md). */
int vtpm_measure_create(const char *vtpm_tcti, const char *log_path, const vtpm_create_measurements_t *m);
/*
 * After a vTPM restart (PCRs reset) or a vtpmd stop between a log write and
 * its extends: per PCR and bank, finds the prefix of the log the PCR holds
 * (none when reset) and extends the records after it. PCRs that equal no
 * prefix of the log are CSCP_E_STATE (never papered over).
 */
int vtpm_log_reextend(const char *vtpm_tcti, const char *log_path);
/*
 * Whether log_path holds one complete set of Create measurements for
 * container_id (what vtpm_measure_create_log wrote in one write, durable):
 * whole CM_TLV records whose digests are the hashes of their content, up to
 * and including the CONTAINER "create" record of container_id (records after
 * it, e.g. later Measures, are not looked at). 1 complete, 0 not (missing,
 * empty, torn or damaged before that record, another container's), < 0 an
 * I/O error. vtpmd's recovery: a vTPM whose vtpm-bind record is in the host
 * log is bound only with a complete log.
 */
int vtpm_log_create_complete(const char *log_path, const char *container_id);
