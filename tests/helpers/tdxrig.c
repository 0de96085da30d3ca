/* SPDX-License-Identifier: Apache-2.0 */
/* The TDX host of the attestd-tdx and challenge-tdx tests (tdxrig.h). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "tdxrig.h"
#include "vctl.h"

const char tdxrig_mrtd_hex[97] =
        "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a";
const char tdxrig_rtmr_hex[3][97] = {
        "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
        "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
        "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"};

void tdxrig_setup(tdxrig_t *t)
{
        const char *extra[] = {"--mrtd",           tdxrig_mrtd_hex,    "--rtmr0",
                               tdxrig_rtmr_hex[0], "--rtmr1",          tdxrig_rtmr_hex[1],
                               "--rtmr2",          tdxrig_rtmr_hex[2], NULL};

        *t = (tdxrig_t){0};
        if (!harness_fixtures_dir())
                cr_skip_test("../shared/fixtures not found: no CCEL to explain the emulator's RTMRs");
        t->fx = harness_path(harness_fixtures_dir(), "tdx/go-tdx-guest");
        if (access(t->fx, R_OK) < 0)
                cr_skip_test("%s absent: no TDX fixtures", t->fx);
        t->ccel_table = harness_path(t->fx, "ccel_ccel_table.dat");
        t->ccel_data = harness_path(t->fx, "ccel_ccel_data.dat");
        t->dir = harness_tmpdir();
        t->emu = harness_path(t->dir, "emu");
        t->tsm_root = harness_path(t->emu, "mnt/tsm");
        t->mr_root = harness_path(t->emu, "mnt/measurements");
        t->emu_root = harness_path(t->emu, "state/root.pem");
        t->host_log = harness_path(t->dir, "no-host.log");
        harness_tdx_emu_start(t->emu, extra, &t->epid); /* skips (77) when the emulator cannot run */
        t->pki = harness_path(t->dir, "pki");
        cr_assert_eq(harness_mkcerts(t->pki), 0);
        t->state = harness_path(t->dir, "vstate");
        t->run = harness_path(t->dir, "r");
        t->ready = harness_path(t->dir, "vready");
        t->sock = harness_path(t->run, "vtpmd.sock");
        t->vlog = harness_path(t->dir, "vtpmd.log");
}

bool tdxrig_teardown(tdxrig_t *t, int *ret_status)
{
        int st = 0;
        bool clean = true;

        harness_attestd_stop(&t->ad);
        if (t->vd.pid > 0) {
                st = harness_stop(&t->vd, SIGTERM, 20000);
                clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                if (!clean)
                        harness_dump_log(&t->vd);
                t->vd.pid = 0;
        }
        free(t->vd.log);
        t->vd.log = NULL;
        if (t->state)
                harness_kill_swtpms(t->state, NULL);
        harness_swtpm_stop(&t->sw);
        if (t->epid > 0)
                harness_tdx_emu_stop(t->emu, t->epid);
        t->epid = 0;
        if (ret_status)
                *ret_status = st;
        return clean;
}

const char *const *tdxrig_tdx_args(const tdxrig_t *t)
{
        const char *a[] = {"--rot",    "tdx",          "--tsm-root",  t->tsm_root,   "--tdx-mr-root",
                           t->mr_root, "--ccel-table", t->ccel_table, "--ccel-data", t->ccel_data,
                           NULL};

        return (const char *const *)harness_argv(a, NULL);
}

void tdxrig_attestd_start(tdxrig_t *t, const char *certs, const char *const *more)
{
        const char *logs[] = {"--host-log", t->host_log, NULL};
        char **extra = harness_argv(tdxrig_tdx_args(t), logs, more ? more : (const char *const[]){NULL}, NULL);
        int r = harness_attestd_start(t->dir, NULL, certs, extra, &t->ad);

        if (r < 0)
                harness_dump_log(&t->ad.proc);
        cr_assert_eq(r, 0, "attestd --rot tdx did not start: %s", cscp_strerror(r));
}

void tdxrig_swtpm_start(tdxrig_t *t)
{
        int r = harness_swtpm_start(harness_path(t->dir, "swtpm"), &t->sw);

        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
}

int tdxrig_vtpmd_start(tdxrig_t *t, const char *const *extra)
{
        char **argv = vctl_vtpmd_argv(t->sw.tcti, t->state, t->run, t->pki, t->ready,
                                      (const char *const *)harness_argv(
                                              tdxrig_tdx_args(t), extra ? extra : (const char *const[]){NULL}, NULL));

        return vctl_vtpmd_spawn(argv, t->vlog, t->ready, 30000, &t->vd);
}
