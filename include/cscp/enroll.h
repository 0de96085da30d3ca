/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The challenger's half of enrollment (docs/protocol.md "Enrollment",
 * design.md §2): EnrollRequest -> EnrollInfo{EK public, EK certificate, AK
 * public}; the EK certificate is checked against a CA bundle and must
 * certify that EK public; the AK must be a restricted signing key that
 * cannot leave its TPM; a random credential wrapped to the EK for the AK's
 * Name (cscp_credential_make) must come back from the TPM
 * (Activate -> Activated); then the AK is recorded in the store.
 *
 * Trust on first use (method "tofu") only when asked for, and only for what
 * is missing: no EK certificate, or no CA bundle to check it against. A
 * certificate that fails the check is never overridden. The activation runs
 * whenever there is an EK: it proves the AK and the EK share a TPM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "cscp.pb-c.h"
#include "store.h"

#define CSCP_ENROLL_CREDENTIAL_LEN 32

typedef enum {
        CSCP_ENROLL_ENROLLED = 0,
        CSCP_ENROLL_REFUSED = 1, /* untrusted EK or AK, or the activation failed: reason says which */
} cscp_enroll_verdict_t;

typedef struct cscp_enroll_result {
        cscp_enroll_verdict_t verdict;
        char reason[512];    /* why refused; "" when enrolled */
        const char *method;  /* "credential" or "tofu" when enrolled, else NULL */
        uint8_t ak_name[66]; /* the AK's Name (nameAlg || digest) once parsed */
        size_t ak_name_len;
        char ek_type[16];     /* "RSA-2048", "ECC P-256", ... ("" when none was sent) */
        bool ek_cert_present; /* EnrollInfo carried a certificate */
        bool ek_cert_trusted; /* it chains to the CA bundle and certifies the EK public */
        char ek_cert_issuer[256];
        char tpm_manufacturer[64], tpm_model[64], tpm_version[64]; /* from the certificate's SubjectAltName */
        bool activated;                                            /* the credential came back intact */
} cscp_enroll_result_t;

typedef struct cscp_enroll_opts {
        const char *host;  /* the name the AK is recorded under (cscp enroll: the --server string) */
        const char *ek_ca; /* PEM bundle of EK certificate CAs (TPM vendors; swtpm-localca in test rigs); NULL: none */
        bool tofu;         /* accept a host without an EK certificate, or without ek_ca, recording "tofu" */
        cscp_store_t *store; /* where the AK is recorded; NULL: nothing is recorded (checks only) */
} cscp_enroll_opts_t;

/*
 * Checks one EnrollInfo as the first half of cscp_enroll does (no network):
 * EK public is a TCG default-template EK (restricted decrypt, AES-128-CFB),
 * AK public is a restricted signing key with fixedTPM, fixedParent and
 * sensitiveDataOrigin, the certificate (if any) is one DER certificate whose
 * public key is the EK's and (with ek_ca) chains to ek_ca. A critical
 * SubjectAltName, which EK certificates carry with the TPM manufacturer
 * attributes, is decoded and accepted; any other unhandled critical
 * extension fails the check.
 * Returns CSCP_ENROLL_ENROLLED (= may go on to the activation) or
 * CSCP_ENROLL_REFUSED with res->reason, or < 0 on an error (ek_ca unreadable:
 * -ENOENT/CSCP_E_CRYPTO; err says why).
 */
int cscp_enroll_check_info(const Cscp__EnrollInfo *info, const cscp_enroll_opts_t *o, cscp_enroll_result_t *res,
                           char *err, size_t errlen);

/*
 * The whole exchange over an open connection: EnrollRequest, checks,
 * Activate, compare, record. Returns CSCP_ENROLL_ENROLLED or
 * CSCP_ENROLL_REFUSED (res->reason), or < 0 on an error (err says why;
 * CSCP_E_PEER when attestd answered with an Error other than a refused
 * activation).
 */
int cscp_enroll(cscp_conn_t *conn, const cscp_enroll_opts_t *o, cscp_enroll_result_t *res, char *err, size_t errlen);
