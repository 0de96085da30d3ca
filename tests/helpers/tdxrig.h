/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The TDX host of the attestd-tdx and challenge-tdx tests: tests/helpers/tdx-emu, a FUSE emulator of a TDX
 * guest's Linux files that signs "quotes" with a TEST CA (NOT TDX), started with MRTD and RTMR0..2 of the COS
 * fixture (../shared/fixtures/tdx/go-tdx-guest, expected.json), whose CCEL explains them as on a real TD; then
 * attestd and vtpmd --rot tdx over it. Every function asserts (Criterion) on failure.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

/* The COS TD of the fixture (expected.json, "ccel_cos-113-tdx-quote.dat + ccel_ccel_data.dat + ..."). */
extern const char tdxrig_mrtd_hex[97];
extern const char tdxrig_rtmr_hex[3][97];

typedef struct tdxrig {
        char *dir;                    /* the test's temporary directory */
        char *emu;                    /* the emulator's directory (harness_tdx_emu_start) */
        char *fx;                     /* the fixture directory */
        char *pki;                    /* harness_mkcerts */
        char *tsm_root, *mr_root;     /* the emulator's configfs-tsm and measurement registers */
        char *emu_root;               /* the emulator's TEST trust anchor (PEM) */
        char *ccel_table, *ccel_data; /* the fixture's CCEL */
        char *host_log;               /* attestd's --host-log: <dir>/no-host.log until a test points it elsewhere */
        char *state, *run, *ready, *sock, *vlog; /* vtpmd's state and run directories, ready file, socket, log */
        pid_t epid;
        harness_attestd_t ad;
        harness_swtpm_t sw;
        harness_proc_t vd;
} tdxrig_t;

/* Skips (77, with the reason) without ../shared/fixtures or the emulator (libfuse3, /dev/fuse). */
void tdxrig_setup(tdxrig_t *t);
/*
 * Stops attestd, vtpmd (SIGTERM; its log dumped when it does not exit 0), vtpmd's swtpms, the swtpm and the
 * emulator. Returns whether vtpmd (if running) exited 0 on SIGTERM, with its wait status in *ret_status.
 */
bool tdxrig_teardown(tdxrig_t *t, int *ret_status);
/* --rot tdx --tsm-root --tdx-mr-root --ccel-table --ccel-data of the rig, NULL-terminated, kept until exit. */
const char *const *tdxrig_tdx_args(const tdxrig_t *t);
/* attestd --rot tdx (tdxrig_tdx_args, --host-log t->host_log, then more: NULL-terminated, may be NULL); certs: a PKI
 * from harness_mkcerts, NULL = plaintext. */
void tdxrig_attestd_start(tdxrig_t *t, const char *certs, const char *const *more);
/* A swtpm in <dir>/swtpm, for vtpmd's master key (a TD has no TPM of its own). */
void tdxrig_swtpm_start(tdxrig_t *t);
/* vtpmd --rot tdx over the swtpm (vctl_vtpmd_argv, then extra: NULL-terminated, may be NULL): 0 once it is ready,
 * or a negative errno. */
int tdxrig_vtpmd_start(tdxrig_t *t, const char *const *extra);
