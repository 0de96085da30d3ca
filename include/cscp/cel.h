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
};

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

/* Converts one CEL-TLV record (as parsed by cscp_eventlog with CSCP_EVENTLOG_CEL_TLV) to a CEL-JSON object
 * text (one line, no newline), malloc'd; used by `cscp eventlog show --json` and for TLV <-> JSON round trips. */
int cscp_cel_event_to_json(const cscp_event_t *ev, char **ret);
