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
        /* TCB collateral (lib/tdx/collateral.c): a directory holding tcb_info.json,
         * qe_identity.json, tcb_signing_chain.pem and optionally pck_crl.der /
         * root_crl.der; NULL: the TCB status is not evaluated (a fact says so). */
        const char *collateral_dir;
        /* TCB statuses accepted besides UpToDate (Intel names, e.g. "SWHardeningNeeded") */
        const char *const *tcb_allowed;
        size_t n_tcb_allowed;
} cscp_tdx_verify_opts_t;

/*
 * Verifies a quote into v. Claims (every one always named once the quote
 * parses): tdx-quote-format, tdx-quote-signature, tdx-qe-report-signature,
 * tdx-qe-binding, tdx-pck-chain, and tdx-report-data when opts->report_data
 * is given, and with opts->collateral_dir: tdx-collateral (TCB info and QE
 * identity well formed, signed by a TCB signing certificate that chains to the
 * trust anchor, inside their issueDate..nextUpdate), tdx-qe-identity (the QE
 * report matches the QE identity) and tdx-tcb-status (the evaluated status is
 * UpToDate or in opts->tcb_allowed). Facts: tdx-version, tdx-mrtd, and without
 * collateral tdx-tcb-status ("not evaluated (no collateral given)"), ... A
 * quote that does not parse yields a failed
 * tdx-quote-format claim and no other claim. Returns 0 when v holds the
 * result; negative (and v's error set) when the verifier could not decide
 * (trust anchor unreadable, a collateral file missing or unreadable,
 * allocation failure).
 */
int cscp_tdx_quote_verify(const uint8_t *buf, size_t len, const cscp_tdx_verify_opts_t *opts, cscp_verdict_t *v);

/* ------------------------------------------------------------------------
 * TCB collateral (lib/tdx/collateral.c): Intel PCS TDX TCB info (v3) and
 * TD_QE identity (v2) responses, the PCK certificate's SGX extension, and
 * the TCB status evaluation of Intel's quote verification library (TDX
 * path). Parsing and evaluation only: signatures and chains are checked by
 * cscp_tdx_quote_verify (lib/tdx/verify.c).
 */

#define CSCP_TDX_COLLATERAL_JSON_MAX (256u * 1024)       /* tcb_info.json, qe_identity.json */
#define CSCP_TDX_COLLATERAL_PEM_MAX  (64u * 1024)        /* tcb_signing_chain.pem */
#define CSCP_TDX_COLLATERAL_CRL_MAX  (16u * 1024 * 1024) /* pck_crl.der, root_crl.der */
#define CSCP_TDX_TCB_LEVELS_MAX      128                 /* TCB levels per list */
#define CSCP_TDX_MODULE_IDS_MAX      16                  /* tdxModuleIdentities */
#define CSCP_TDX_ADVISORIES_MAX      128                 /* advisoryIDs per level */
#define CSCP_TDX_SGX_EXT_MAX         4096u               /* DER SGX extension, bytes */

/* Collateral directory layout (file names). */
#define CSCP_TDX_COLLATERAL_TCB_INFO    "tcb_info.json"
#define CSCP_TDX_COLLATERAL_QE_IDENTITY "qe_identity.json"
#define CSCP_TDX_COLLATERAL_CHAIN       "tcb_signing_chain.pem"
#define CSCP_TDX_COLLATERAL_PCK_CRL     "pck_crl.der"
#define CSCP_TDX_COLLATERAL_ROOT_CRL    "root_crl.der"

typedef enum cscp_tdx_tcb_status {
        /* statuses Intel publishes or its verification library derives */
        CSCP_TDX_TCB_UP_TO_DATE = 0,
        CSCP_TDX_TCB_SW_HARDENING_NEEDED,
        CSCP_TDX_TCB_CONFIGURATION_NEEDED,
        CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
        CSCP_TDX_TCB_OUT_OF_DATE,
        CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
        CSCP_TDX_TCB_REVOKED,
        CSCP_TDX_TCB_TD_RELAUNCH_ADVISED,
        CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
        /* evaluation outcomes: never accepted */
        CSCP_TDX_TCB_NO_MATCH, /* "no matching TCB level" */
        CSCP_TDX_TCB_MISMATCH, /* the collateral is not for this platform / TDX module / QE */
} cscp_tdx_tcb_status_t;

/* "UpToDate", "OutOfDate", ..., "no matching TCB level", "collateral mismatch". */
const char *cscp_tdx_tcb_status_name(cscp_tdx_tcb_status_t s);
/* Intel status name -> value (exact, case-sensitive); -EINVAL for any other string. */
int cscp_tdx_tcb_status_from_name(const char *name, cscp_tdx_tcb_status_t *ret);

typedef struct cscp_tdx_tcb_level {
        uint8_t sgx_svn[16]; /* TCB info levels: sgxtcbcomponents[].svn */
        uint16_t pce_svn;
        uint8_t tdx_svn[16]; /* tdxtcbcomponents[].svn */
        uint16_t isv_svn;    /* QE identity and TDX module identity levels */
        cscp_tdx_tcb_status_t status;
        char tcb_date[21]; /* "YYYY-MM-DDTHH:MM:SSZ" as given */
        char *advisories;  /* "INTEL-SA-00106,INTEL-SA-00115", or NULL */
} cscp_tdx_tcb_level_t;

typedef struct cscp_tdx_module_identity {
        char id[8]; /* "TDX_01" (upper case) */
        uint8_t mrsigner[48];
        uint8_t attributes[8];
        uint8_t attributes_mask[8];
        cscp_tdx_tcb_level_t *levels;
        size_t n_levels;
} cscp_tdx_module_identity_t;

typedef struct cscp_tdx_tcb_info {
        unsigned version; /* 3 */
        time_t issue_date, next_update;
        uint8_t fmspc[6];
        uint8_t pce_id[2];
        uint32_t tcb_type, eval_number;
        uint8_t module_mrsigner[48], module_attributes[8], module_attributes_mask[8]; /* tdxModule */
        cscp_tdx_module_identity_t *module_ids; /* tdxModuleIdentities (TDX 1.5), may be none */
        size_t n_module_ids;
        cscp_tdx_tcb_level_t *levels; /* in file order (Intel: newest first) */
        size_t n_levels;
        const uint8_t *body; /* the signed bytes: the "tcbInfo" value exactly as in the file (borrowed) */
        size_t body_len;
        uint8_t signature[64]; /* ECDSA-P256-SHA256 r || s */
} cscp_tdx_tcb_info_t;

typedef struct cscp_tdx_qe_identity {
        unsigned version; /* 2 */
        time_t issue_date, next_update;
        uint32_t eval_number;
        uint8_t miscselect[4], miscselect_mask[4];
        uint8_t attributes[16], attributes_mask[16];
        uint8_t mrsigner[32];
        uint16_t isv_prod_id;
        cscp_tdx_tcb_level_t *levels;
        size_t n_levels;
        const uint8_t *body; /* the "enclaveIdentity" value exactly as in the file (borrowed) */
        size_t body_len;
        uint8_t signature[64];
} cscp_tdx_qe_identity_t;

/*
 * Parse a PCS response body ({"tcbInfo":{...},"signature":"hex"} /
 * {"enclaveIdentity":{...},"signature":"hex"}: exactly those two members).
 * The parsed struct borrows buf (body). 0, or CSCP_E_PROTO / CSCP_E_TOO_BIG /
 * CSCP_E_UNSUPPORTED (id, version) / -ENOMEM with err naming the field
 * (e.g. "tcbInfo.tcbLevels[1].tcb.pcesvn: not an integer"). Free with the
 * matching _free (also after a failed parse).
 */
int cscp_tdx_tcb_info_parse(const uint8_t *buf, size_t len, cscp_tdx_tcb_info_t *ti, char *err, size_t err_len);
void cscp_tdx_tcb_info_free(cscp_tdx_tcb_info_t *ti);
int cscp_tdx_qe_identity_parse(const uint8_t *buf, size_t len, cscp_tdx_qe_identity_t *qe, char *err, size_t err_len);
void cscp_tdx_qe_identity_free(cscp_tdx_qe_identity_t *qe);

/* What the PCK leaf certificate's SGX extension (1.2.840.113741.1.13.1) says. */
typedef struct cscp_tdx_pck_ext {
        uint8_t fmspc[6];    /* .4 */
        uint8_t pce_id[2];   /* .3 */
        uint8_t sgx_svn[16]; /* .2.1 .. .2.16: SGX TCB components */
        uint16_t pce_svn;    /* .2.17 */
        uint8_t cpu_svn[16]; /* .2.18 */
} cscp_tdx_pck_ext_t;

/* The DER value of the SGX extension. 0 or CSCP_E_PROTO / CSCP_E_TOO_BIG with err. */
int cscp_tdx_sgx_ext_parse(const uint8_t *der, size_t len, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len);
struct x509_st;
/* The extension of an OpenSSL X509 (the PCK leaf). */
int cscp_tdx_pck_ext_from_x509(const struct x509_st *x, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len);
/* The extension of the first certificate of a PEM chain (e.g. the quote's). */
int cscp_tdx_pck_ext_from_pem(const uint8_t *pem, size_t len, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len);

typedef struct cscp_tdx_tcb_eval {
        cscp_tdx_tcb_status_t status;        /* final, what tdx-tcb-status reports */
        cscp_tdx_tcb_status_t sgx_status;    /* first level the PCK certificate's SGX TCB reaches */
        cscp_tdx_tcb_status_t tdx_status;    /* first level the TEE_TCB_SVN reaches too, after the module */
        cscp_tdx_tcb_status_t module_status; /* TDX module identity level (UpToDate when not versioned) */
        cscp_tdx_tcb_status_t qe_status;     /* QE identity level by ISVSVN */
        bool qe_identity_ok;                 /* MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES match */
        int level, sgx_level;                /* indexes into ti->levels, -1: none */
        int module_id, module_level;         /* ti->module_ids[module_id].levels[module_level], -1: none */
        int qe_level;                        /* qe->levels, -1: none */
        char advisories[2048];               /* advisory IDs of the levels used, comma separated */
        char why[384];                       /* the reason when status is NO_MATCH or MISMATCH */
        char qe_why[384];                    /* QE identity outcome, for tdx-qe-identity */
} cscp_tdx_tcb_eval_t;

/*
 * TCB status of quote q on the platform ext describes, per ti and qe
 * (Intel QVL: FMSPC / PCE-ID match, TDX module identity, TCB level match,
 * TDX module level, TD relaunch check for TDX 1.5 bodies, QE identity and
 * its level, convergence). Pure: no signature is checked here. ti or ext
 * NULL: only the QE part (qe_identity_ok, qe_status, qe_why) is evaluated.
 */
void cscp_tdx_tcb_evaluate(const cscp_tdx_quote_t *q, const cscp_tdx_pck_ext_t *ext, const cscp_tdx_tcb_info_t *ti,
                           const cscp_tdx_qe_identity_t *qe, cscp_tdx_tcb_eval_t *r);

/* A collateral directory, read with every size limited before allocation. */
typedef struct cscp_tdx_collateral {
        uint8_t *tcb_info_raw, *qe_identity_raw, *chain_pem;
        size_t tcb_info_len, qe_identity_len, chain_len;
        cscp_tdx_tcb_info_t tcb_info;
        cscp_tdx_qe_identity_t qe_identity;
        bool have_tcb_info, have_qe_identity;                         /* parsed */
        char tcb_info_err[384], qe_identity_err[384], chain_err[384]; /* why not, naming the file */
        char *crl_paths[2];                                           /* pck_crl.der, root_crl.der when present */
        size_t n_crls;
} cscp_tdx_collateral_t;

/*
 * Reads dir. Negative (err names the file) when a required file is missing
 * or unreadable; content problems (over a limit, not parsing) are recorded
 * in *_err with have_* false, for the tdx-collateral claim.
 */
int cscp_tdx_collateral_load(const char *dir, cscp_tdx_collateral_t *c, char *err, size_t err_len);
void cscp_tdx_collateral_free(cscp_tdx_collateral_t *c);
