/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

/*
 * Error codes. Functions that can fail return int: >= 0 success, a negative
 * errno value, or one of the negative project codes below. TSS2_RC never
 * crosses the TPM boundary (lib/tpm/): it is decoded and mapped to CSCP_E_TPM.
 */

#define CSCP_ERRORS(X)                                                       \
        X(CSCP_E_PROTO, -1000, "malformed message")                          \
        X(CSCP_E_TOO_BIG, -1001, "frame or field over the configured limit") \
        X(CSCP_E_VERSION, -1002, "unsupported protocol version")             \
        X(CSCP_E_TPM, -1003, "TPM command failed")                           \
        X(CSCP_E_CRYPTO, -1004, "cryptographic library failure")             \
        X(CSCP_E_TLS, -1005, "TLS failure")                                  \
        X(CSCP_E_NONCE, -1006, "nonce length out of range")                  \
        X(CSCP_E_PCRSEL, -1007, "invalid PCR selection")                     \
        X(CSCP_E_UNSUPPORTED, -1008, "unsupported algorithm or feature")     \
        X(CSCP_E_STATE, -1009, "state file invalid or from another TPM")     \
        X(CSCP_E_PEER, -1010, "peer answered with an error")                 \
        X(CSCP_E_CLOSED, -1011, "connection closed by peer")                 \
        X(CSCP_E_TIMEOUT, -1012, "timed out")                                \
        X(CSCP_E_TLS_PEER, -1013, "TLS peer verification failed")

enum {
#define CSCP_X_ENUM(name, value, text) name = (value),
        CSCP_ERRORS(CSCP_X_ENUM)
#undef CSCP_X_ENUM
};

/*
 * Writes the printf-style message into err (when err is not NULL and err_len > 0) and returns code, for
 * functions that give a reason beside their return code: return cscp_err_set(err, err_len, -EINVAL, "...", ...).
 */
int cscp_err_set(char *err, size_t err_len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Text for any return code: project codes and negative errno alike. */
const char *cscp_strerror(int r);
/* Symbolic name ("CSCP_E_PROTO", "ENOENT"), or "?" */
const char *cscp_err_name(int r);
