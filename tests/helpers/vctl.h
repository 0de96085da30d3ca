/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * vtpmd control calls for tests (real vtpmd, real socket); every function asserts on a failed call.
 */

#include "core.h"
#include "harness.h"

/* One control call on sock; a failed call dumps vd's log (vd may be NULL). The caller frees the response. */
Vtpmd__VtpmResponse *vctl_call(const char *sock, const harness_proc_t *vd, Vtpmd__VtpmRequest *req);
/* Status of id, whatever vtpmd answers (Status or Error); the caller frees. */
Vtpmd__VtpmResponse *vctl_status(const char *sock, const harness_proc_t *vd, const char *id);
/* A fixed set of measurements: runc 1.1.12, `/bin/sh -c "sleep infinity"`, with a config digest and two environment
 * variables when asked (static strings). */
void vctl_measurements(Vtpmd__Measurements *ms, bool digest, bool env);
/* Create id with ms (NULL: vctl_measurements with digest and env), whatever vtpmd answers; the caller frees. */
Vtpmd__VtpmResponse *vctl_create(const char *sock, const harness_proc_t *vd, const char *id, Vtpmd__Measurements *ms);
/* vctl_create that must succeed (a Created answer); the caller frees. */
Vtpmd__VtpmResponse *vctl_create_ok(const char *sock, const harness_proc_t *vd, const char *id,
                                    Vtpmd__Measurements *ms);

/* vtpmd from the build dir: --tcti --state-dir --run-dir, --vtpm-ca and --vtpm-ca-key from pki (harness_mkcerts),
 * --ready-file ready --stop-instances -v (none of the three when ready is NULL), then extra (NULL-terminated, may be
 * NULL). Kept until exit. */
char **vctl_vtpmd_argv(const char *tcti, const char *state, const char *run, const char *pki, const char *ready,
                       const char *const *extra);
/* Spawns argv into vd (its previous log path freed) with output to log, then waits up to timeout_ms for ready
 * (removed first); dumps the log when it does not appear. 0 or a negative errno. */
int vctl_vtpmd_spawn(char *const argv[], const char *log, const char *ready, int timeout_ms, harness_proc_t *vd);
