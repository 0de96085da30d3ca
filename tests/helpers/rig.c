/* SPDX-License-Identifier: Apache-2.0 */
/* The container-challenge rig (rig.h): host swtpm + tpm2-abrmd + vtpmd + attestd, all real. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "rig.h"
#include "util.h"
#include "vctl.h"

rig_t rig;

void rig_start_vtpmd(char *const extra[])
{
        char *ready = harness_path(rig.dir, "vtpmd.ready");
        char **argv = vctl_vtpmd_argv(RIG_TABRMD_TCTI, rig.state, rig.run, rig.pki, ready, (const char *const *)extra);

        if (vctl_vtpmd_spawn(argv, harness_path(rig.dir, "vtpmd.log"), ready, 60000, &rig.vd) < 0)
                cr_assert_fail("vtpmd not ready");
}

Vtpmd__VtpmResponse *rig_vcall(Vtpmd__VtpmRequest *req)
{
        return vctl_call(rig.sock, &rig.vd, req);
}

void rig_create_container(const char *id)
{
        vtpmd__vtpm_response__free_unpacked(vctl_create_ok(rig.sock, &rig.vd, id, NULL), NULL);
}

/* After the quotes with logs: vtpmd stops with exit 0 (a sanitizer build reports leaks through it). */
void rig_stop_vtpmd(void)
{
        int st = harness_stop(&rig.vd, SIGTERM, 20000);

        if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                harness_dump_log(&rig.vd);
                cr_assert_fail("vtpmd did not stop cleanly (wait status 0x%x)", (unsigned)st);
        }
        rig.vd.pid = 0;
}

/* Status of a container: the caller frees. */
Vtpmd__VtpmResponse *rig_status(const char *id)
{
        Vtpmd__VtpmResponse *resp = vctl_status(rig.sock, &rig.vd, id);

        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS, "Status %s failed", id);
        return resp;
}

void rig_start_attestd(char *const extra[])
{
        /* --vtpmd and the rig.host logs of this rig come first; a test's extra options follow (getopt: last wins). */
        char *args[40];
        size_t n = 0;
        int r;

        args[n++] = "--vtpmd";
        args[n++] = rig.sock;
        args[n++] = "--host-log";
        args[n++] = harness_path(rig.state, "host.log");
        args[n++] = "--host-proc-log";
        args[n++] = harness_path(rig.state, "host-pcr11.cel"); /* vtpmd runs without --measurement-policy: absent */
        args[n++] = "--boot-log";
        args[n++] = harness_path(rig.dir, "no-boot-log");
        args[n++] = "--ima-log";
        args[n++] = harness_path(rig.dir, "no-ima-log");
        args[n++] = "--systemd-log";
        args[n++] = harness_path(rig.dir, "no-systemd-log");
        for (; extra && *extra && n < 39; extra++)
                args[n++] = *extra;
        args[n] = NULL;
        cr_assert_eq(mkdir(harness_path(rig.dir, "attestd"), 0700) == 0 || errno == EEXIST, 1);
        r = harness_attestd_start(harness_path(rig.dir, "attestd"), RIG_TABRMD_TCTI, rig.pki, args, &rig.ad);
        if (r < 0)
                harness_dump_log(&rig.ad.proc);
        cr_assert_eq(r, 0, "attestd did not start: %s", cscp_strerror(r));
        rig.have_ad = true;
}

/* Stops attestd: a clean exit 0 (a sanitizer build reports leaks and errors through the exit status). */
void rig_stop_attestd(void)
{
        int st;

        if (!rig.have_ad)
                return;
        rig.have_ad = false;
        st = harness_stop(&rig.ad.proc, SIGTERM, 20000);
        if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                harness_dump_log(&rig.ad.proc);
                harness_attestd_stop(&rig.ad);
                cr_assert_fail("attestd did not stop cleanly (wait status 0x%x)", (unsigned)st);
        }
        rig.ad.proc.pid = 0;
        harness_attestd_stop(&rig.ad);
}

void rig_kill_leftovers(void)
{
        harness_kill_swtpms(rig.state, NULL);
}

void rig_setup_pki(void)
{
        rig.dir = harness_tmpdir();
        rig.pki = harness_path(rig.dir, "pki");
        rig.state = harness_path(rig.dir, "state");
        rig.run = harness_path(rig.dir, "r");
        rig.sock = harness_path(rig.run, "vtpmd.sock");
        rig.have_ad = false;
        cr_assert_eq(harness_mkcerts(rig.pki), 0, "certs/mkcerts failed");
}

void rig_setup(char *const vtpmd_extra[])
{
        rig_setup_pki();
        cr_assert_eq(harness_swtpm_start(harness_path(rig.dir, "host"), &rig.host), 0, "host swtpm did not start");
        harness_abrmd_start(rig.dir, rig.host.tcti, &rig.dbus, &rig.abrmd);
        rig_start_vtpmd(vtpmd_extra);
}

void rig_teardown(void)
{
        rig_stop_attestd();
        if (rig.vd.pid > 0)
                harness_stop(&rig.vd, SIGTERM, 20000);
        if (rig.state)
                rig_kill_leftovers();
        if (rig.abrmd.pid > 0)
                harness_stop(&rig.abrmd, SIGTERM, 5000);
        if (rig.dbus.pid > 0)
                harness_stop(&rig.dbus, SIGTERM, 5000);
        if (rig.host.proc.pid > 0)
                harness_swtpm_stop(&rig.host);
        free(rig.vd.log);
        free(rig.abrmd.log);
        free(rig.dbus.log);
        rig.vd = rig.abrmd = rig.dbus = (harness_proc_t){0};
}

cscp_conn_t *rig_connect(void)
{
        cscp_client_opts_t o = {
                .server = rig.ad.addr,
                .ca = harness_path(rig.pki, "ca.pem"),
                .cert = harness_path(rig.pki, "client.pem"),
                .key = harness_path(rig.pki, "client-key.pem"),
                .timeout_ms = 60000,
        };
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "connect: %s", err);
        return c;
}

void rig_destroy_container(const char *id)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Destroy d = VTPMD__DESTROY__INIT;
        Vtpmd__VtpmResponse *resp;

        d.container_id = (char *)id;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_DESTROY;
        req.destroy = &d;
        resp = rig_vcall(&req);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_DESTROYED, "Destroy %s failed", id);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
}

const char *const *rig_tls_args(void)
{
        return harness_tls_args(rig.ad.addr, rig.pki);
}
