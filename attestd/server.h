/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "rot.h"
#include "tpm.h"

typedef struct attestd_config {
        const char *listen;         /* "ADDR:PORT"; port 0 picks a free one */
        const char *cert, *key;     /* server certificate and key (PEM) */
        const char *client_ca;      /* mutual TLS: clients must chain to this */
        bool no_client_auth;        /* TLS without client certificates */
        bool insecure_plaintext;    /* no TLS at all */
        cscp_rot_kind_t rot;        /* host root of trust: CSCP_ROT_TPM (default) or CSCP_ROT_TDX */
        const char *tcti;           /* tpm: NULL = tctildr default */
        cscp_tdx_guest_paths_t tdx; /* tdx: configfs-tsm, RTMR and CCEL paths; NULL members = Linux defaults */
        const char *state_dir;      /* tpm: the host AK */
        cscp_key_alg_t ak_alg;
        size_t max_frame; /* largest request accepted */
        unsigned max_connections;
        unsigned idle_timeout_ms; /* no request started */
        unsigned read_timeout_ms; /* TLS handshake or a started frame must complete */
        const char *ready_file;   /* written with "ADDR:PORT\n" once listening */
        /* container challenges (docs/protocol.md "Container challenges") */
        const char *vtpmd_socket;  /* vtpmd's control socket */
        unsigned vtpmd_timeout_ms; /* one Quote round trip to vtpmd */
        const char *host_log;      /* LOG_HOST_CEL: vtpmd's host log (vtpm-bind records, PCR 15) */
        const char *host_proc_log; /* LOG_HOST_PROC_CEL: vtpmd's host process log (PCR 11) */
        const char *boot_log;      /* LOG_BOOT: TCG PC Client firmware log (TDX: answered with LOG_CCEL) */
        const char *ima_log;       /* LOG_IMA: IMA measurement list (binary or ascii); TDX: never sent */
        const char *systemd_log;   /* LOG_SYSTEMD_CEL: systemd's CEL-JSON log */
        const char *acl;           /* NULL: every authenticated client may challenge anything */
        unsigned max_batch;        /* challenges per host quote (1 = no batching) */
        size_t max_evidence;       /* largest Evidence frame sent */
} attestd_config_t;

void attestd_config_defaults(attestd_config_t *c);
/* Opens the root of trust (tpm: loads or creates the AK; tdx: reads the CCEL), listens, serves until SIGINT/SIGTERM. */
int attestd_run(const attestd_config_t *c);
