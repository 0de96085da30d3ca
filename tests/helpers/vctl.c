/* SPDX-License-Identifier: Apache-2.0 */
/* vtpmd control calls for tests (vctl.h). */
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "vctl.h"

Vtpmd__VtpmResponse *vctl_call(const char *sock, const harness_proc_t *vd, Vtpmd__VtpmRequest *req)
{
        vtpmd_client_t *c = NULL;
        Vtpmd__VtpmResponse *resp = NULL;
        int r;

        r = vtpmd_client_connect(sock, 120000, &c);
        cr_assert_eq(r, 0, "connect %s: %s", sock, cscp_strerror(r));
        r = vtpmd_client_call(c, req, &resp);
        vtpmd_client_free(c);
        if (r < 0 && vd)
                harness_dump_log(vd);
        cr_assert_eq(r, 0, "control call: %s", cscp_strerror(r));
        return resp;
}

Vtpmd__VtpmResponse *vctl_status(const char *sock, const harness_proc_t *vd, const char *id)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Status st = VTPMD__STATUS__INIT;

        st.container_id = (char *)id;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_STATUS;
        req.status = &st;
        return vctl_call(sock, vd, &req);
}

void vctl_measurements(Vtpmd__Measurements *ms, bool digest, bool env)
{
        static char *args[] = {"/bin/sh", "-c", "sleep infinity"};
        static char *envs[] = {"PATH=/usr/bin:/bin", "SERVICE_PORT=8080"};

        vtpmd__measurements__init(ms);
        ms->runtime_name = "runc";
        ms->runtime_version = "1.1.12";
        if (digest)
                ms->config_digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        ms->args = args;
        ms->n_args = 3;
        if (env) {
                ms->env = envs;
                ms->n_env = 2;
        }
}

Vtpmd__VtpmResponse *vctl_create(const char *sock, const harness_proc_t *vd, const char *id, Vtpmd__Measurements *ms)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Create cr = VTPMD__CREATE__INIT;
        Vtpmd__Measurements def;

        if (!ms) {
                vctl_measurements(&def, true, true);
                ms = &def;
        }
        cr.container_id = (char *)id;
        cr.measurements = ms;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_CREATE;
        req.create = &cr;
        return vctl_call(sock, vd, &req);
}

Vtpmd__VtpmResponse *vctl_create_ok(const char *sock, const harness_proc_t *vd, const char *id, Vtpmd__Measurements *ms)
{
        Vtpmd__VtpmResponse *resp = vctl_create(sock, vd, id, ms);

        if (resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR) {
                if (vd)
                        harness_dump_log(vd);
                cr_assert_fail("Create %s: %s: %s", id, vtpmd_error_code_name(resp->error->code), resp->error->message);
        }
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_CREATED);
        return resp;
}

char **vctl_vtpmd_argv(const char *tcti, const char *state, const char *run, const char *pki, const char *ready,
                       const char *const *extra)
{
        const char *base[] = {harness_path(harness_path(harness_build_dir(), "vtpmd"), "vtpmd"),
                              "--tcti",
                              tcti,
                              "--state-dir",
                              state,
                              "--run-dir",
                              run,
                              "--vtpm-ca",
                              harness_path(pki, "vtpm-ca.pem"),
                              "--vtpm-ca-key",
                              harness_path(pki, "vtpm-ca-key.pem"),
                              NULL};
        const char *served[] = {"--ready-file", ready, "--stop-instances", "-v", NULL};

        return ready ? harness_argv(base, served, extra, NULL) : harness_argv(base, extra, NULL);
}

int vctl_vtpmd_spawn(char *const argv[], const char *log, const char *ready, int timeout_ms, harness_proc_t *vd)
{
        int r;

        (void)unlink(ready);
        free(vd->log);
        vd->log = NULL;
        r = harness_spawn(argv, log, vd);
        if (r < 0)
                return r;
        r = harness_wait_path(ready, timeout_ms);
        if (r < 0)
                harness_dump_log(vd);
        return r;
}
