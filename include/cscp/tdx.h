/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Intel TDX quotes, verification side (lib/tdx/): a strict parser for quote
 * v4 (48-byte header + 584-byte TD report body, TDX 1.0) and v5 (header +
 * body type/size + 584-byte TDX 1.0 or 648-byte TDX 1.5 body), and the
 * checks of an ECDSA-P256 quote: quote signature, QE report signature with
 * the PCK leaf key, the QE report's binding of the attestation key, and the
 * PCK chain up to a trust anchor file. Layout: Intel TDX DCAP Quoting Library
 * API, appendix "Quote Format" (docs/tdx.md lists every offset).
 *
 * A parsed quote BORROWS the caller's buffer (signed region, QE auth data,
 * PCK chain point into it): keep the buffer alive while the quote is used.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "verdict.h"

#define CSCP_TDX_QUOTE_MAX       (64u * 1024) /* whole quote, bytes */
#define CSCP_TDX_CERT_CHAIN_MAX  (32u * 1024) /* PEM PCK chain, bytes */
#define CSCP_TDX_QE_AUTH_MAX     4096u        /* QE authentication data, bytes */
#define CSCP_TDX_CHAIN_CERTS_MAX 8            /* certificates in the PEM chain */
#define CSCP_TDX_CHAIN_DEPTH_MAX 4            /* X509 verification depth limit */

#define CSCP_TDX_HEADER_SIZE    48
#define CSCP_TDX_BODY10_SIZE    584
#define CSCP_TDX_BODY15_SIZE    648
#define CSCP_TDX_QE_REPORT_SIZE 384
#define CSCP_TDX_TEE_TYPE       0x00000081u
#define CSCP_TDX_AK_ECDSA_P256  2

typedef struct cscp_tdx_quote {
        /* header (48 bytes) */
        uint16_t version;  /* 4 or 5 */
        uint16_t ak_type;  /* 2 = ECDSA-256-with-P-256 */
        uint32_t tee_type; /* 0x81 = TDX */
        uint16_t qe_svn;
        uint16_t pce_svn;
        uint8_t qe_vendor_id[16];
        uint8_t user_data[20];
        /* v5 only: body descriptor (v4: 2 / 584 implied) */
        uint16_t body_type; /* 2 = TDX 1.0 TD report, 3 = TDX 1.5 TD report */
        uint32_t body_size;
        /* TD report body */
        uint8_t tee_tcb_svn[16];
        uint8_t mrseam[48];
        uint8_t mrsignerseam[48];
        uint8_t seam_attributes[8];
        uint8_t td_attributes[8];
        uint8_t xfam[8];
        uint8_t mrtd[48];
        uint8_t mrconfigid[48];
        uint8_t mrowner[48];
        uint8_t mrownerconfig[48];
        uint8_t rtmr[4][48];
        uint8_t report_data[64];
        bool tdx15; /* the two fields below are set */
        uint8_t tee_tcb_svn2[16];
        uint8_t mrservicetd[48];
        /* signed region: header (+ body descriptor) + body */
        const uint8_t *signed_region;
        size_t signed_len;
        /* signature data */
        uint32_t sig_data_len;
        uint8_t signature[64];  /* raw r || s, big endian */
        uint8_t attest_key[64]; /* raw X || Y, big endian */
        uint16_t cert_type;     /* outer certification data type: 6 */
        uint8_t qe_report[CSCP_TDX_QE_REPORT_SIZE];
        uint8_t qe_report_sig[64];
        const uint8_t *qe_auth;
        size_t qe_auth_len;
        uint16_t pck_cert_type;   /* inner certification data type: 5 */
        const uint8_t *pck_chain; /* PEM, as given (may end in NULs) */
        size_t pck_chain_len;
        size_t trailing_len; /* bytes after the declared signature data (ignored, outside the signature) */
        /* QE report (SGX report body) fields */
        uint8_t qe_mrenclave[32];
        uint8_t qe_mrsigner[32];
        uint16_t qe_isv_prod_id;
        uint16_t qe_isv_svn;
        uint8_t qe_report_data[64];
} cscp_tdx_quote_t;

/*
 * Parses a quote. 0, or: CSCP_E_PROTO (truncated, inconsistent sizes),
 * CSCP_E_VERSION (not v4/v5), CSCP_E_UNSUPPORTED (TEE type, key type,
 * body type, certification data type), CSCP_E_TOO_BIG (over a limit). On
 * failure err (if given) names the field and its byte offset.
 */
int cscp_tdx_quote_parse(const uint8_t *buf, size_t len, cscp_tdx_quote_t *q, char *err, size_t err_len);

typedef struct cscp_tdx_verify_opts {
        const char *root_file;        /* PEM trust anchor(s), e.g. the Intel SGX Root CA; required */
        time_t at;                    /* verification time; 0 = now */
        const char *const *crl_files; /* PEM or DER CRLs; NULL/0: no revocation check */
        size_t n_crl_files;
        const uint8_t *report_data; /* 64 bytes expected in REPORTDATA, or NULL (no claim) */
} cscp_tdx_verify_opts_t;

/*
 * Verifies a quote into v. Claims (every one always named once the quote
 * parses): tdx-quote-format, tdx-quote-signature, tdx-qe-report-signature,
 * tdx-qe-binding, tdx-pck-chain, and tdx-report-data when opts->report_data
 * is given. Facts: tdx-version, tdx-mrtd, tdx-tcb-status ("not evaluated (no
 * collateral given)"), ... A quote that does not parse yields a failed
 * tdx-quote-format claim and no other claim. Returns 0 when v holds the
 * result; negative (and v's error set) when the verifier could not decide
 * (trust anchor unreadable, allocation failure).
 */
int cscp_tdx_quote_verify(const uint8_t *buf, size_t len, const cscp_tdx_verify_opts_t *opts, cscp_verdict_t *v);
