/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * TCG Canonical Event Log records: encoding (what vtpmd writes to the host
 * and container logs) and the CM_TLV container-measurement content
 * (design.md §4; exact bytes in docs/measurements.md).
 *
 * CEL-TLV: TLV = u8 type || u32 big-endian length || value. A record is
 * recnum TLV (type 0, u64 big-endian), pcr TLV (type 1, u32 big-endian) or
 * nv_index TLV (type 2), digests TLV (type 3: nested TLVs whose type is the
 * TPM_ALG_ID's low byte and whose value is the digest), then one content TLV.
 * Parsing lives in lib/eventlog/cel.c (cscp/eventlog.h); this header builds
 * records.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"

/* Top-level CEL-TLV types. */
enum {
        CSCP_CEL_RECNUM = 0,
        CSCP_CEL_PCR = 1,
        CSCP_CEL_NV_INDEX = 2,
        CSCP_CEL_DIGESTS = 3,
        /* content types */
        CSCP_CEL_MGT = 4,
        CSCP_CEL_PCCLIENT_STD = 5,
        CSCP_CEL_IMA_TEMPLATE = 7,
        CSCP_CEL_IMA_TLV = 8,
        CSCP_CEL_CM_TLV = 9, /* container measurement (ours; design.md §4) */
        /* go-eventlog's register type for confidential-computing MRs (CCMR, TDX RTMR); parsed as
         * CSCP_EVENT_RTMR with the index as written. Non-standard. */
        CSCP_CEL_CCMR = 108,
};

/*
 * cscp_event_t.type of CEL-JSON records whose content_type has no TLV number
 * (above 255, so they never collide with a TLV content type; Safford's CEL tools
 * use 9 for systemd, which is our CM_TLV).
 */
#define CSCP_CEL_CONTENT_SYSTEMD 0x100u /* "systemd": /run/log/systemd/tpm2-measure.log */
#define CSCP_CEL_CONTENT_TSS2    0x101u /* "tss2": tpm2-tss FAPI's own records */
#define CSCP_CEL_CONTENT_OTHER   0x1FFu /* any other name (kind = the name as written) */

/* Largest CM_TLV content value cscp_cm_encode builds (cscp_cm_decode takes what the log limit allows). */
#define CSCP_CM_MAX_CONTENT (1024u * 1024)

/* CM_TLV record kinds: the one nested TLV inside a CM_TLV content value. */
typedef enum cscp_cm_kind {
        CSCP_CM_VERSION = 0,   /* runtime / component name and version */
        CSCP_CM_CONFIG = 1,    /* OCI runtime config digest */
        CSCP_CM_LAYER = 2,     /* image manifest / config / layer digest */
        CSCP_CM_PROCESS = 3,   /* one argument or environment variable, or a host process */
        CSCP_CM_CONTAINER = 4, /* lifecycle: create, start, vtpm-bind, vtpm-destroy, stop */
        CSCP_CM_POD = 5,
        CSCP_CM_CLUSTER = 6,
} cscp_cm_kind_t;

/*
 * Fields inside a CM_TLV record kind: nested TLVs (u8 type, u32 BE length,
 * value), in ascending type order, each at most once; strings are UTF-8
 * without NUL. Which fields each kind carries is in docs/measurements.md.
 */
typedef enum cscp_cm_field {
        CSCP_CM_F_EVENT = 0,        /* string: "vtpm-bind", "vtpm-destroy", "create", "arg", "env", ... */
        CSCP_CM_F_CONTAINER_ID = 1, /* string */
        CSCP_CM_F_NAME = 2,         /* string: component name, image name, env variable name, process path */
        CSCP_CM_F_VALUE = 3,        /* bytes: version string, argument, env value, command line */
        CSCP_CM_F_DIGEST = 4,       /* string "sha256:<hex>" (OCI digest syntax) */
        CSCP_CM_F_INDEX = 5,        /* u32 BE: argument position, layer position */
        CSCP_CM_F_VEK_SHA256 = 6,   /* 32 bytes: SHA-256 of the vTPM EK's marshalled TPMT_PUBLIC */
        CSCP_CM_F_VAK_NAME = 7,     /* TPM2B_NAME.name bytes of the vTPM AK */
        CSCP_CM_F_TIME = 8,         /* u64 BE: CLOCK_REALTIME seconds (informational, not policy) */
} cscp_cm_field_t;

#define CSCP_CM_MAX_FIELDS 9

/* One field to encode: type and bytes (strings without NUL). */
typedef struct cscp_cm_field_value {
        cscp_cm_field_t type;
        const void *data;
        size_t len;
} cscp_cm_field_value_t;

/*
 * Builds a CM_TLV content value (the bytes inside the type-9 content TLV):
 * nested TLV(kind, fields...). Fields are sorted by type; duplicates are
 * -EINVAL. The result is malloc'd.
 */
int cscp_cm_encode(cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields, uint8_t **ret,
                   size_t *ret_len);

/* Decoded CM_TLV content: pointers into the buffer given to cscp_cm_decode. */
typedef struct cscp_cm_record {
        cscp_cm_kind_t kind;
        struct {
                const uint8_t *data; /* NULL when absent */
                size_t len;
        } f[CSCP_CM_MAX_FIELDS];
} cscp_cm_record_t;

/* Parses a CM_TLV content value; CSCP_E_PROTO on anything malformed (trailing bytes included). */
int cscp_cm_decode(const uint8_t *buf, size_t len, cscp_cm_record_t *ret);

/*
 * Encodes one complete CEL-TLV record: recnum, PCR (or NV index when
 * nv_index is true), digests (one per entry of digests, in the given order),
 * and the content TLV (content_type, content bytes). The result is malloc'd.
 */
int cscp_cel_tlv_encode(uint64_t recnum, uint32_t pcr, bool nv_index, const cscp_event_digest_t *digests,
                        size_t n_digests, uint8_t content_type, const uint8_t *content, size_t content_len,
                        uint8_t **ret, size_t *ret_len);

/*
 * Digests to extend for a CM_TLV record: H_alg(content value) per bank in
 * banks (0-terminated). The measured bytes are the CM_TLV content value, so a
 * verifier recomputes them from the log alone.
 */
int cscp_cm_digests(const uint8_t *content, size_t content_len, const uint16_t *banks, cscp_event_digest_t *ret,
                    size_t *ret_n);

/*
 * Converts one CEL-TLV record (as parsed by cscp_eventlog with CSCP_EVENTLOG_CEL_TLV) to a CEL-JSON object
 * text (one line, no newline), malloc'd; used by `cscp eventlog show --json` and for TLV <-> JSON round trips.
 *
 *   {"recnum":N,"pcr":P,"digests":[{"hashAlg":"sha256","digest":"<hex>"},...],
 *    "content_type":"cm_tlv","content":{...}}
 *
 * recnum is ev->index (the CEL parsers require recnum = position in the log);
 * "nv_index" replaces "pcr" for NV records, "ccmr" for CCMR records.
 * content_type is the name (cscp_cel_content_type_name) or, for a type without
 * one, the number. content is cscp_cm_to_json's object for CM_TLV and
 * {"raw":"<hex of the content value>"} for every other type.
 */
int cscp_cel_event_to_json(const cscp_event_t *ev, char **ret);

/*
 * The inverse: one CEL-JSON record object (as cscp_cel_event_to_json writes
 * it; json points to len bytes, no NUL needed) to one CEL-TLV record, in the
 * widths cscp_cel_tlv_encode writes. Needs "recnum", "pcr" or "nv_index",
 * "digests", a content_type with a TLV number and a content that carries
 * "raw" (CM_TLV: the whole object must be what cscp_cm_to_json gives for raw,
 * and every digest must be H_alg(raw)). So a record vtpmd wrote survives
 * TLV -> JSON -> TLV byte for byte. CSCP_E_PROTO for malformed input,
 * CSCP_E_UNSUPPORTED for content that has no TLV form (e.g. systemd records).
 */
int cscp_cel_json_to_tlv(const char *json, size_t len, uint8_t **ret, size_t *ret_len);

/*
 * The CEL-JSON object for a CM_TLV content value, one line, malloc'd: "kind"
 * (cscp_cm_kind_name), each field present under cscp_cm_field_name (strings as
 * JSON strings; value as a string when it is UTF-8 without NUL, else
 * "value_hex"; digest as a string; index and time as numbers; vek_sha256 and
 * vak_name as hex), then "raw": the content value in hex.
 * CSCP_E_PROTO when content does not decode.
 */
int cscp_cm_to_json(const uint8_t *content, size_t content_len, char **ret);

/* "version", "config", "layer", "process", "container", "pod", "cluster"; NULL when unknown. */
const char *cscp_cm_kind_name(cscp_cm_kind_t kind);
/* "event", "container_id", "name", "value", "digest", "index", "vek_sha256", "vak_name", "time"; NULL when unknown. */
const char *cscp_cm_field_name(cscp_cm_field_t field);

/* CEL-JSON content_type names: 4 "cel", 5 "pcclient_std", 7 "ima_template", 8 "ima_tlv", 9 "cm_tlv",
 * CSCP_CEL_CONTENT_SYSTEMD "systemd", CSCP_CEL_CONTENT_TSS2 "tss2"; NULL for others. */
const char *cscp_cel_content_type_name(uint32_t type);
/* The inverse; 0 when the name is unknown (0 is never a content type). */
uint32_t cscp_cel_content_type_from_name(const char *name);

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF); NUL is allowed. */
bool cscp_cel_utf8_valid(const void *s, size_t len);
