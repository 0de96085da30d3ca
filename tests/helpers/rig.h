/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The whole host for container challenges, real parts only: a swtpm as the
 * host TPM behind tpm2-abrmd on a session bus of our own (attestd holds a TPM
 * context for its whole life, vtpmd opens the host TPM per operation, and
 * swtpm serves one connection at a time), vtpmd with its own swtpm vTPMs, and
 * attestd with vtpmd's host logs. One rig per test process (Criterion forks a
 * process per test); every function asserts on failure.
 */

#include <stdbool.h>

#include "client.h"
#include "core.h"
#include "harness.h"

#define RIG_TABRMD_TCTI HARNESS_TABRMD_TCTI

typedef struct rig {
        char *dir, *pki, *state, *run, *sock; /* sock: vtpmd's control socket */
        harness_swtpm_t host;
        harness_proc_t dbus, abrmd, vd;
        harness_attestd_t ad;
        bool have_ad;
} rig_t;

extern rig_t rig;

/* Temporary directory and PKI (certs/mkcerts: TLS and the vTPM manufacturer CA). */
void rig_setup_pki(void);
/* rig_setup_pki, host swtpm, abrmd, vtpmd (extra: more vtpmd options, NULL-terminated, may be NULL). */
void rig_setup(char *const vtpmd_extra[]);
void rig_teardown(void);

void rig_start_vtpmd(char *const extra[]);
/* SIGTERM; asserts a clean exit 0 (sanitizer builds report through it). */
void rig_stop_vtpmd(void);
/* attestd with --vtpmd and the rig's host logs; extra options follow (getopt: the last wins). */
void rig_start_attestd(char *const extra[]);
void rig_stop_attestd(void);

/* One vtpmd control call; the caller frees the response. */
Vtpmd__VtpmResponse *rig_vcall(Vtpmd__VtpmRequest *req);
/* Create with a fixed set of measurements (runc 1.1.12, a config digest, args, env); asserts success. */
void rig_create_container(const char *id);
void rig_destroy_container(const char *id);
/* Status of a container (asserts it is known); the caller frees. */
Vtpmd__VtpmResponse *rig_status(const char *id);

/* SIGKILLs every swtpm whose command line names the rig's state directory (after a failed test). */
void rig_kill_leftovers(void);
/* A TLS connection to attestd with the rig's client certificate. */
cscp_conn_t *rig_connect(void);
/* Argument vector pieces for the cscp binary: --server, --ca, --cert, --key (NULL-terminated, static). */
const char *const *rig_tls_args(void);
