/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Each command returns the process exit status: 0 trusted/ok, 1 untrusted, 2 error. */
int cmd_challenge(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_tdx(int argc, char **argv);

#include <time.h>

/* A time for --at: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @EPOCH (UTC); -EINVAL otherwise (client/tdx.c). */
int cli_parse_time(const char *s, time_t *ret);

/*
 * TDX verification options shared by `cscp tdx verify`, `cscp challenge` and
 * `cscp verify` (client/tdx.c): --tdx-root, --tdx-collateral, --tdx-crl
 * (repeatable), --tdx-allow-tcb (repeatable, Intel status names), --at.
 * Their values are 0x400 and up, clear of every command's own options.
 */
#include <stdbool.h>
#include <stddef.h>

#define TDX_MAX_CRLS    8
#define TDX_MAX_ALLOWED 16

enum {
        TDX_OPT_ROOT = 0x400,
        TDX_OPT_COLLATERAL,
        TDX_OPT_CRL,
        TDX_OPT_ALLOW_TCB,
        TDX_OPT_AT,
};

#define TDX_LONG_OPTIONS                                                         \
        {"tdx-root", required_argument, NULL, TDX_OPT_ROOT},                     \
                {"tdx-collateral", required_argument, NULL, TDX_OPT_COLLATERAL}, \
                {"tdx-crl", required_argument, NULL, TDX_OPT_CRL},               \
                {"tdx-allow-tcb", required_argument, NULL, TDX_OPT_ALLOW_TCB},   \
        {                                                                        \
                "at", required_argument, NULL, TDX_OPT_AT                        \
        }

typedef struct tdx_cli {
        const char *root, *collateral;
        const char *crls[TDX_MAX_CRLS];
        const char *allowed[TDX_MAX_ALLOWED];
        size_t n_crls, n_allowed;
        time_t at; /* 0 = now */
        bool have_at;
} tdx_cli_t;

/* 1: c was a TDX option (stored in o), 0: not one, -1: a bad value (said on stderr as "cscp CMD: ..."). */
int tdx_cli_opt(int c, const char *arg, tdx_cli_t *o, const char *cmd);

/*
 * Connection options shared by `cscp challenge` and `cscp enroll`: --server,
 * --ca, --cert, --key, --insecure-plaintext, --timeout (client/connopts.c).
 * Commands number their own options from CONN_OPT_END on.
 */
#include "client.h"

enum {
        CONN_OPT_SERVER = 0x100,
        CONN_OPT_CA,
        CONN_OPT_CERT,
        CONN_OPT_KEY,
        CONN_OPT_PLAINTEXT,
        CONN_OPT_TIMEOUT,
        CONN_OPT_END,
};

#define CONN_LONG_OPTIONS                                                                                         \
        {"server", required_argument, NULL, CONN_OPT_SERVER}, {"ca", required_argument, NULL, CONN_OPT_CA},       \
                {"cert", required_argument, NULL, CONN_OPT_CERT}, {"key", required_argument, NULL, CONN_OPT_KEY}, \
                {"insecure-plaintext", no_argument, NULL, CONN_OPT_PLAINTEXT},                                    \
        {                                                                                                         \
                "timeout", required_argument, NULL, CONN_OPT_TIMEOUT                                              \
        }

/* 1: c was a connection option (stored in co), 0: not one, -1: a bad value (said on stderr). */
int conn_opt(int c, const char *arg, cscp_client_opts_t *co, const char *cmd);
/* The combination is complete and consistent (default timeout 30 s); -1 with the reason on stderr. */
int conn_opts_check(cscp_client_opts_t *co, const char *cmd);
