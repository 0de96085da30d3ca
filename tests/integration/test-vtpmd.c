/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vtpmd end to end: a real swtpm as the host TPM, the real vtpmd binary
 * supervising real swtpm vTPMs, vtpmctl and the control-API client library,
 * tpm2-tools driving each vTPM through its socket, `cscp eventlog replay`
 * as the independent reader of the logs.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cel.h"
#include "core.h"
#include "eventlog.h"
#include "error.h"
#include "harness.h"
#include "pcr.h"
#include "tpm.h"
#include "util.h"
#include "vctl.h"

#define TOOL_TIMEOUT_MS 60000
#define N_MANY          20

static char *dir, *pki, *state, *run, *ready, *sock_path, *vlog;
static harness_swtpm_t host;
static harness_proc_t vd;

/* ---- processes ------------------------------------------------------------------ */

static char *vtpmd_bin(void)
{
        return harness_path(harness_path(harness_build_dir(), "vtpmd"), "vtpmd");
}

static char *vtpmctl_bin(void)
{
        return harness_path(harness_path(harness_build_dir(), "vtpmd"), "vtpmctl");
}

static int start_vtpmd(const char *const *extra)
{
        return vctl_vtpmd_spawn(vctl_vtpmd_argv(host.tcti, state, run, pki, ready, extra), vlog, ready, 30000, &vd);
}

static void setup(void)
{
        dir = harness_setup_tpm("host", &pki, &host);
        state = harness_path(dir, "state");
        run = harness_path(dir, "r");
        ready = harness_path(dir, "ready");
        sock_path = harness_path(run, "vtpmd.sock");
        vlog = harness_path(dir, "vtpmd.log");
        cr_assert_eq(access(harness_path(pki, "vtpm-ca.pem"), R_OK), 0, "mkcerts made no vtpm-ca.pem");
}

static void teardown(void)
{
        int st = 0;
        bool clean = true;
        if (vd.pid > 0) {
                /* A clean stop exits 0: under ASan this is where vtpmd's leaks and errors would show. */
                st = harness_stop(&vd, SIGTERM, 20000);
                clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                if (!clean)
                        harness_dump_log(&vd);
        }
        free(vd.log);
        vd.log = NULL;
        harness_kill_swtpms(state, NULL);
        harness_swtpm_stop(&host);
        cr_assert(clean, "vtpmd did not stop cleanly on SIGTERM (wait status 0x%x)", (unsigned)st);
}

/* ---- client -------------------------------------------------------------------- */

static Vtpmd__VtpmResponse *call(Vtpmd__VtpmRequest *req)
{
        return vctl_call(sock_path, &vd, req);
}

static Vtpmd__ErrorCode err_of(Vtpmd__VtpmResponse *resp)
{
        return resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->code
                                                                   : VTPMD__ERROR_CODE__ERR_UNSPECIFIED;
}

static Vtpmd__VtpmResponse *create_req(const char *id)
{
        return vctl_create(sock_path, &vd, id, NULL);
}

static Vtpmd__VtpmResponse *create_ok(const char *id)
{
        return vctl_create_ok(sock_path, &vd, id, NULL);
}

static Vtpmd__VtpmResponse *destroy_req(const char *id, bool keep)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Destroy de = VTPMD__DESTROY__INIT;

        de.container_id = (char *)id;
        de.keep_state = keep;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_DESTROY;
        req.destroy = &de;
        return call(&req);
}

static Vtpmd__VtpmResponse *list_req(void)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__List li = VTPMD__LIST__INIT;

        req.body_case = VTPMD__VTPM_REQUEST__BODY_LIST;
        req.list = &li;
        Vtpmd__VtpmResponse *resp = call(&req);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_LISTED, "List failed");
        return resp;
}

static Vtpmd__VtpmResponse *status_req(const char *id)
{
        return vctl_status(sock_path, &vd, id);
}

static void assert_serving(void)
{
        Vtpmd__VtpmResponse *resp = list_req();
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        cr_assert(harness_alive(&vd), "vtpmd died");
}

/* ---- reading PCRs ----------------------------------------------------------------- */

static void assert_host_pcr_matches_log(void)
{
        char *tpm = harness_pcrread(host.tcti, 15);
        char *log = harness_replay(harness_path(state, "host.log"), 15);

        cr_assert(log, "host log extends no PCR 15");
        cr_assert_str_eq(tpm, log, "host PCR 15 %s != replay of the host log %s", tpm, log);
}

static void assert_vtpm_matches_log(const char *sock, const char *log)
{
        char tcti[PATH_MAX + 16];

        snprintf(tcti, sizeof(tcti), "swtpm:path=%s", sock);
        for (unsigned pcr = 11; pcr <= 12; pcr++) {
                char *want = harness_replay(log, pcr);
                char *have = harness_pcrread(tcti, pcr);
                if (!want)
                        want = "0000000000000000000000000000000000000000000000000000000000000000";
                cr_assert_str_eq(have, want, "vTPM %s PCR %u = %s, container log replay = %s", sock, pcr, have, want);
        }
}

static void getrandom_via(const char *sock)
{
        char tcti[PATH_MAX + 16];
        char *argv[] = {"tpm2_getrandom", "--hex", "16", NULL};
        char *out = NULL, *err = NULL;
        int code = -1;

        snprintf(tcti, sizeof(tcti), "swtpm:path=%s", sock);
        setenv("TPM2TOOLS_TCTI", tcti, 1);
        cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "tpm2_getrandom via %s: %s", sock, err);
        cr_assert_eq(strlen(out), 32, "tpm2_getrandom printed '%s'", out);
        free(out);
        free(err);
}

/* Polls Status until the instance is in want_state with at least min_restarts; returns its swtpm pid. */
static uint32_t wait_state(const char *id, const char *want_state, unsigned min_restarts, int timeout_ms)
{
        for (int waited = 0;; waited += 50) {
                Vtpmd__VtpmResponse *resp = status_req(id);
                uint32_t pid = 0;
                if (resp->body_case == VTPMD__VTPM_RESPONSE__BODY_STATUS &&
                    strcmp(resp->status->instance->state, want_state) == 0 &&
                    resp->status->instance->restarts >= min_restarts)
                        pid = resp->status->instance->pid;
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                if (pid)
                        return pid;
                if (waited > timeout_ms) {
                        harness_dump_log(&vd);
                        cr_assert_fail("%s never reached state %s with %u restarts", id, want_state, min_restarts);
                }
                usleep(50000);
        }
}

static int run_vtpmctl(char **out, char **err, const char *const *args)
{
        return harness_run_kept(harness_argv((const char *[]){vtpmctl_bin(), "--socket", sock_path, NULL}, args, NULL),
                                TOOL_TIMEOUT_MS, out, err);
}

/* Alive and not a zombie (an adopted swtpm that exited waits for init to reap it). */
static bool proc_alive(pid_t pid)
{
        char path[64], buf[512];
        FILE *f;
        size_t n;
        char *rp;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        rp = strrchr(buf, ')');
        return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

TestSuite(vtpmd, .init = setup, .fini = teardown, .timeout = 560);

/*
 * 20 vTPMs, each driven with tpm2-tools; the host PCR replays; one vTPM killed
 * and restarted with its PCRs re-extended; vtpmd killed and re-adopting them all;
 * Destroy with and without keep_state.
 */
Test(vtpmd, many_instances_supervised_and_readopted)
{
        char ids[N_MANY][32];
        uint32_t pids[N_MANY];
        char socks[N_MANY][PATH_MAX], logs[N_MANY][PATH_MAX], dirs[N_MANY][PATH_MAX];
        uint64_t total = 0;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        for (int i = 0; i < N_MANY; i++) {
                uint64_t t0 = now_us();
                snprintf(ids[i], sizeof(ids[i]), "ctr-%02d.app_x+y", i);
                Vtpmd__VtpmResponse *resp = create_ok(ids[i]);
                total += now_us() - t0;
                const Vtpmd__Instance *in = resp->created->instance;
                cr_assert_str_eq(in->container_id, ids[i]);
                cr_assert_str_eq(in->state, "ready");
                cr_assert(in->pid > 0);
                cr_assert_gt(resp->created->ek_certificate.len, 100, "no EK certificate");
                cr_assert_gt(resp->created->ak_public.len, 0);
                snprintf(socks[i], sizeof(socks[i]), "%s", in->socket);
                snprintf(logs[i], sizeof(logs[i]), "%s", in->log);
                snprintf(dirs[i], sizeof(dirs[i]), "%s", in->state_dir);
                pids[i] = in->pid;
                {
                        char want[PATH_MAX];
                        snprintf(want, sizeof(want), "%s/vtpm/%s/tpm.sock", run, ids[i]);
                        cr_assert_str_eq(in->socket, want);
                }
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
        }
        fprintf(stderr, "test-vtpmd: %d Creates without pool: mean %.1f ms\n", N_MANY, (double)total / N_MANY / 1000.0);

        for (int i = 0; i < N_MANY; i++) {
                getrandom_via(socks[i]);
                assert_vtpm_matches_log(socks[i], logs[i]);
        }
        Vtpmd__VtpmResponse *li = list_req();
        cr_assert_eq(li->listed->n_instances, N_MANY);
        vtpmd__vtpm_response__free_unpacked(li, NULL);
        {
                char *out = NULL;
                const char *args[] = {"list", NULL};
                cr_assert_eq(run_vtpmctl(&out, NULL, args), 0);
                cr_assert(strstr(out, ids[7]), "vtpmctl list does not show %s: %s", ids[7], out);
                const char *sargs[] = {"status", ids[3], NULL};
                cr_assert_eq(run_vtpmctl(&out, NULL, sargs), 0);
                cr_assert(strstr(out, "state: ready"), "vtpmctl status: %s", out);
        }
        assert_host_pcr_matches_log();

        /* A measurement after Create, then kill -9 that vTPM's swtpm. */
        {
                const char *args[] = {"measure", ids[5],        "--pcr",   "11",          "--kind", "container",
                                      "--field", "event=start", "--field", "value=hello", NULL};
                char *err = NULL;
                cr_assert_eq(run_vtpmctl(NULL, &err, args), 0, "vtpmctl measure: %s", err);
        }
        char tcti5[PATH_MAX + 16];
        snprintf(tcti5, sizeof(tcti5), "swtpm:path=%s", socks[5]);
        char *before5 = harness_pcrread(tcti5, 11);
        cr_assert_eq(kill((pid_t)pids[5], SIGKILL), 0);
        uint32_t pid5 = wait_state(ids[5], "ready", 1, 30000);
        cr_assert_neq(pid5, pids[5], "swtpm was not restarted");
        pids[5] = pid5;
        assert_vtpm_matches_log(socks[5], logs[5]);
        cr_assert_str_eq(harness_pcrread(tcti5, 11), before5, "PCR 11 not restored after the restart");
        for (int i = 0; i < N_MANY; i++) {
                if (i == 5)
                        continue;
                Vtpmd__VtpmResponse *st = status_req(ids[i]);
                cr_assert_eq(st->status->instance->pid, pids[i], "%s was touched", ids[i]);
                cr_assert_eq(st->status->instance->restarts, 0);
                vtpmd__vtpm_response__free_unpacked(st, NULL);
        }

        /* kill -9 vtpmd: the next one re-adopts every running swtpm; nothing is lost. */
        cr_assert_eq(kill(vd.pid, SIGKILL), 0);
        harness_wait(&vd, 10000, NULL);
        vd.pid = 0;
        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not restart");
        li = list_req();
        if (li->listed->n_instances != N_MANY)
                harness_dump_log(&vd);
        cr_assert_eq(li->listed->n_instances, N_MANY, "instances lost across kill -9 of vtpmd");
        vtpmd__vtpm_response__free_unpacked(li, NULL);
        for (int i = 0; i < N_MANY; i++) {
                /* "restarting" until vtpmd has checked the re-adopted vTPM's platform auth. */
                uint32_t pid = wait_state(ids[i], "ready", 0, 30000);
                if (pid != pids[i])
                        harness_dump_log(&vd);
                cr_assert_eq(pid, pids[i], "%s: swtpm not re-adopted", ids[i]);
                assert_vtpm_matches_log(socks[i], logs[i]);
        }
        /* An adopted instance is still supervised. */
        cr_assert_eq(kill((pid_t)pids[9], SIGKILL), 0);
        cr_assert_neq(wait_state(ids[9], "ready", 1, 30000), pids[9]);
        assert_vtpm_matches_log(socks[9], logs[9]);

        /* Quote through the API. */
        {
                const char *args[] = {"quote",  ids[2],         "--nonce", "00112233445566778899aabbccddeeff0011223344",
                                      "--pcrs", "sha256:11,12", NULL};
                char *out = NULL, *err = NULL;
                cr_assert_eq(run_vtpmctl(&out, &err, args), 0, "vtpmctl quote: %s", err);
                cr_assert(strstr(out, "attest: ff544347"), "quote output: %s", out);
        }

        /* Destroy wipes; keep_state keeps. */
        {
                const char *args[] = {"destroy", ids[0], NULL};
                char *err = NULL;
                cr_assert_eq(run_vtpmctl(NULL, &err, args), 0, "vtpmctl destroy: %s", err);
                cr_assert_neq(access(dirs[0], F_OK), 0, "state of %s not wiped", ids[0]);
                cr_assert_neq(access(socks[0], F_OK), 0, "socket of %s still there", ids[0]);
                cr_assert(!proc_alive((pid_t)pids[0]), "swtpm of %s still running", ids[0]);
        }
        {
                Vtpmd__VtpmResponse *resp = destroy_req(ids[1], true);
                cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_DESTROYED);
                cr_assert(resp->destroyed->kept_state_dir[0], "no kept_state_dir");
                char *kept = harness_path(resp->destroyed->kept_state_dir, "tpm2-00.permall");
                cr_assert_eq(access(kept, F_OK), 0, "kept state %s missing", kept);
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
        }
        assert_host_pcr_matches_log();
        li = list_req();
        cr_assert_eq(li->listed->n_instances, N_MANY - 2);
        vtpmd__vtpm_response__free_unpacked(li, NULL);
}

/* Runs a tpm2-tools command through a vTPM's socket; returns its exit code. */
static int tool_via(const char *sock, char *const argv[])
{
        char tcti[PATH_MAX + 16];
        char *out = NULL, *err = NULL;
        int code = -1;

        snprintf(tcti, sizeof(tcti), "swtpm:path=%s", sock);
        setenv("TPM2TOOLS_TCTI", tcti, 1);
        cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
        free(out);
        free(err);
        return code;
}

/* What a container can do with the platform hierarchy when its auth is empty; none of it may work. */
static void assert_platform_closed(const char *sock)
{
        char ak[16];

        snprintf(ak, sizeof(ak), "0x%08x", VTPM_AK_HANDLE);
        {
                char *argv[] = {"tpm2_evictcontrol", "-C", "p", "-c", ak, NULL};
                cr_assert_neq(tool_via(sock, argv), 0, "%s: the platform-persistent AK evicted with an empty auth",
                              sock);
        }
        {
                char *argv[] = {"tpm2_clearcontrol", "-C", "p", "-P", "", "c", NULL};
                cr_assert_neq(tool_via(sock, argv), 0, "%s: ClearControl with an empty platform auth", sock);
        }
        {
                char *argv[] = {"tpm2_changeauth", "-c", "p", "mine", NULL};
                cr_assert_neq(tool_via(sock, argv), 0, "%s: platform auth changed from empty", sock);
        }
}

/*
 * A restarted swtpm runs TPM2_Startup(CLEAR), which empties the platform auth: vtpmd sets it again before the
 * instance is ready, for a supervised restart, a pool instance, and a re-adopted vTPM that was reset while vtpmd
 * was down (through its control socket, which the container can still reach until the mediated endpoint lands).
 */
Test(vtpmd, restart_sets_platform_auth_again)
{
        const char *extra[] = {"--pool", "1", NULL};
        char sock[PATH_MAX], log[PATH_MAX], state_dir[PATH_MAX];
        uint32_t pid;

        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not start");
        Vtpmd__VtpmResponse *resp = create_ok("ph");
        snprintf(sock, sizeof(sock), "%s", resp->created->instance->socket);
        snprintf(log, sizeof(log), "%s", resp->created->instance->log);
        snprintf(state_dir, sizeof(state_dir), "%s", resp->created->instance->state_dir);
        pid = resp->created->instance->pid;
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        assert_platform_closed(sock);

        /* Supervised restart. */
        cr_assert_eq(kill((pid_t)pid, SIGKILL), 0);
        pid = wait_state("ph", "ready", 1, 30000);
        assert_platform_closed(sock);
        assert_vtpm_matches_log(sock, log);

        /* A pool instance restarted, then taken by a Create. */
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *li = list_req();
                unsigned ready_n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (ready_n == 1)
                        break;
                cr_assert_lt(waited, 60000, "pool never filled");
                usleep(100000);
        }
        {
                char *inst_root = harness_path(state, "instances");
                DIR *dd = opendir(inst_root);
                struct dirent *e;
                char *pidfile = NULL;
                cr_assert(dd);
                while ((e = readdir(dd))) {
                        uint8_t *meta = NULL;
                        size_t meta_len = 0;
                        if (e->d_name[0] == '.' ||
                            cscp_file_read(harness_path(harness_path(inst_root, e->d_name), "meta"), 4096, &meta,
                                           &meta_len) < 0)
                                continue;
                        if (memmem(meta, meta_len, "\nstate=pool\n", 12))
                                pidfile = harness_path(harness_path(inst_root, e->d_name), "swtpm.pid");
                        free(meta);
                }
                closedir(dd);
                cr_assert(pidfile, "no pool instance");
                uint8_t *buf = NULL;
                size_t len = 0;
                char num[32] = {0};
                cr_assert_eq(cscp_file_read(pidfile, 31, &buf, &len), 0);
                memcpy(num, buf, len);
                free(buf);
                cr_assert_eq(kill((pid_t)atoi(num), SIGKILL), 0, "pid file %s: '%s'", pidfile, num);
        }
        usleep(200000);
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *li = list_req();
                unsigned ready_n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (ready_n == 1)
                        break;
                cr_assert_lt(waited, 60000, "pool instance not restarted");
                usleep(100000);
        }
        resp = create_ok("ph-pool");
        cr_assert(resp->created->instance->from_pool);
        assert_platform_closed(resp->created->instance->socket);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* vtpmd down; the container resets its vTPM (CMD_INIT + Startup(CLEAR)): PCRs and platform auth empty. */
        cr_assert_eq(kill(vd.pid, SIGKILL), 0);
        harness_wait(&vd, 10000, NULL);
        vd.pid = 0;
        {
                /* swtpm's own sockets: private in the instance directory once the mediated endpoint is there. */
                char raw[PATH_MAX + 16], ctrl[PATH_MAX + 32];
                snprintf(raw, sizeof(raw), "%s/swtpm.sock", state_dir);
                if (access(raw, F_OK) < 0)
                        snprintf(raw, sizeof(raw), "%s", sock);
                snprintf(ctrl, sizeof(ctrl), "%s.ctrl", raw);
                char *argv[] = {"swtpm_ioctl", "-i", "--unix", ctrl, NULL};
                cr_assert_eq(tool_via(raw, argv), 0, "swtpm_ioctl -i");
                char *su[] = {"tpm2_startup", "-c", NULL};
                cr_assert_eq(tool_via(raw, su), 0, "tpm2_startup");
                char *probe[] = {"tpm2_clearcontrol", "-C", "p", "-P", "", "s", NULL};
                cr_assert_eq(tool_via(raw, probe), 0, "platform auth not empty after the reset");
        }
        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not restart");
        cr_assert_eq(wait_state("ph", "ready", 0, 30000), pid, "not re-adopted");
        assert_platform_closed(sock);
        assert_vtpm_matches_log(sock, log);
}

/*
 * --measurement-policy: host processes into host PCR 11 through host-pcr11.cel (write-ahead like the bind log):
 * PCR 11 = replay of the log, which holds the binary's digest and the running process's command line. A policy
 * with an unknown key stops vtpmd at start with the line and column.
 */
Test(vtpmd, measurement_policy_host_processes)
{
        char *pol = harness_path(dir, "measure.yaml"), *bad = harness_path(dir, "bad.yaml");
        char *argv_sleep[] = {"sleep", "1000", "7s", NULL};
        static const char cmdline[] = "sleep\0"
                                      "1000\0"
                                      "7s";
        harness_proc_t sl = {0};
        uint8_t *bin = NULL, *logb = NULL, md[32];
        size_t bin_len = 0, log_len = 0;
        char want[8 + 65], hex[65];
        unsigned mdn = 0;
        FILE *f;

        f = fopen(pol, "w");
        cr_assert(f);
        fputs("backend: tpm\nhashAlgorithm: sha256\nmeasure:\n  system:\n    processes:\n"
              "      - path: /usr/bin/sleep\n        withParameter: true\n  container:\n    isolated: true\n",
              f);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(harness_spawn(argv_sleep, harness_path(dir, "sleep.log"), &sl), 0);
        for (int i = 0; i < 200; i++) { /* until the child has exec'd sleep */
                char link[64], target[PATH_MAX];
                ssize_t k;
                snprintf(link, sizeof(link), "/proc/%d/exe", (int)sl.pid);
                k = readlink(link, target, sizeof(target) - 1);
                if (k > 0 && (target[k] = '\0', strcmp(target, "/usr/bin/sleep") == 0))
                        break;
                usleep(10000);
        }
        const char *extra[] = {"--measurement-policy", pol, NULL};
        int started = start_vtpmd(extra);
        (void)harness_stop(&sl, SIGKILL, 5000);
        free(sl.log);
        cr_assert_eq(started, 0, "vtpmd did not start with %s", pol);

        char *log = harness_path(state, "host-pcr11.cel");
        char *tpm = harness_pcrread(host.tcti, 11), *rep = harness_replay(log, 11);
        cr_assert(rep, "host-pcr11.cel extends no PCR 11");
        cr_assert_str_eq(tpm, rep, "host PCR 11 %s != replay of host-pcr11.cel %s", tpm, rep);
        cr_assert_eq(cscp_file_read("/usr/bin/sleep", 64u << 20, &bin, &bin_len), 0);
        cr_assert_eq(EVP_Digest(bin, bin_len, md, &mdn, EVP_sha256(), NULL), 1);
        cscp_hex_encode(md, 32, hex);
        snprintf(want, sizeof(want), "sha256:%s", hex);
        cr_assert_eq(cscp_file_read(log, 1u << 20, &logb, &log_len), 0);
        cr_assert(memmem(logb, log_len, want, strlen(want)), "no %s in the log", want);
        cr_assert(memmem(logb, log_len, cmdline, sizeof(cmdline) - 1), "the command line is not in the log");
        cr_assert(memmem(logb, log_len, "host-process", 12));
        free(bin);
        free(logb);

        /* An unknown key: refused before anything starts, with where it is. */
        f = fopen(bad, "w");
        cr_assert(f);
        fputs("backend: tpm\nmeasure:\n  sytem:\n    processes: []\n", f);
        cr_assert_eq(fclose(f), 0);
        {
                char **argv = vctl_vtpmd_argv(host.tcti, state, run, pki, NULL,
                                              (const char *[]){"--socket", harness_path(dir, "other.sock"),
                                                               "--measurement-policy", bad, NULL});
                char *out = NULL, *err = NULL;
                int code = -1;
                cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
                cr_assert_eq(code, 1, "vtpmd started with %s: %s", bad, err);
                cr_assert(strstr(err, "line 3, column 3") && strstr(err, "unknown key 'sytem'"), "message: %s", err);
                free(out);
                free(err);
        }
        /* A TDX policy is refused until the TDX backend exists. */
        f = fopen(bad, "w");
        cr_assert(f);
        fputs("backend: tdx\n", f);
        cr_assert_eq(fclose(f), 0);
        {
                char *argv[] = {vtpmd_bin(),
                                "--vtpm-ca",
                                harness_path(pki, "vtpm-ca.pem"),
                                "--vtpm-ca-key",
                                harness_path(pki, "vtpm-ca-key.pem"),
                                "--measurement-policy",
                                bad,
                                NULL};
                char *out = NULL, *err = NULL;
                int code = -1;
                cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
                cr_assert_eq(code, 1);
                cr_assert(strstr(err, "tdx"), "message: %s", err);
                free(out);
                free(err);
        }
}

/* Bad input of every kind: a clear error each time, and vtpmd keeps serving. */
Test(vtpmd, bad_input_clear_errors)
{
        const char *extra[] = {"--max-instances", "2", "--max-frame", "4096", NULL};
        Vtpmd__VtpmResponse *resp;

        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not start");
        resp = create_ok("one");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        resp = create_req("one");
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_EXISTS, "duplicate Create: %d", err_of(resp));
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        resp = destroy_req("nobody", false);
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_NOT_FOUND);
        cr_assert(strstr(resp->error->message, "nobody"), "message: %s", resp->error->message);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        {
                char longid[200];
                memset(longid, 'a', sizeof(longid) - 1);
                longid[sizeof(longid) - 1] = '\0';
                const char *bad[] = {"", "../etc", "-x", ".hidden", "a/b", "a b", "x\xc3\xa9", longid};
                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        resp = create_req(bad[i]);
                        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "id '%s' accepted", bad[i]);
                        cr_assert(strstr(resp->error->message, "invalid container id"), "%s", resp->error->message);
                        vtpmd__vtpm_response__free_unpacked(resp, NULL);
                }
        }
        assert_serving();

        /* The instance limit. */
        resp = create_ok("two");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        resp = create_req("three");
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_LIMIT);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* Garbage, zero-length, oversize and wrong-version frames on raw connections. */
        struct {
                const char *what;
                uint8_t bytes[16];
                size_t len;
                Vtpmd__ErrorCode want;
        } raw[] = {
                {"garbage", {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10, VTPMD__ERROR_CODE__ERR_BAD_REQUEST},
                {"zero length", {0, 0, 0, 0}, 4, VTPMD__ERROR_CODE__ERR_BAD_REQUEST},
                {"oversize", {0x7f, 0xff, 0xff, 0xff}, 4, VTPMD__ERROR_CODE__ERR_TOO_LARGE},
                {"version 2", {0, 0, 0, 4, 0x08, 0x02, 0x22, 0x00}, 8, VTPMD__ERROR_CODE__ERR_VERSION},
                {"no body", {0, 0, 0, 2, 0x08, 0x01}, 6, VTPMD__ERROR_CODE__ERR_BAD_REQUEST},
        };
        for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                uint8_t buf[4096];
                size_t got = 0;
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                Vtpmd__VtpmResponse *r = NULL;

                strcpy(sa.sun_path, sock_path);
                cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                cr_assert_eq(write(fd, raw[i].bytes, raw[i].len), (ssize_t)raw[i].len);
                for (ssize_t n; (n = read(fd, buf + got, sizeof(buf) - got)) > 0;)
                        got += (size_t)n;
                close(fd);
                cr_assert_gt(got, 4, "%s: no answer", raw[i].what);
                cr_assert_eq(vtpmd_response_unpack(buf + 4, got - 4, &r), 0, "%s: answer unreadable", raw[i].what);
                cr_assert_eq(err_of(r), raw[i].want, "%s: got %s", raw[i].what, vtpmd_error_code_name(err_of(r)));
                vtpmd__vtpm_response__free_unpacked(r, NULL);
        }
        assert_serving();

        /* A client with the wrong uid (the test directory is opened for it to reach the socket at all). */
        cr_assert_eq(chmod(dir, 0711), 0);
        cr_assert_eq(chmod(sock_path, 0666), 0);
        {
                int p[2];
                cr_assert_eq(pipe(p), 0);
                pid_t pid = fork();
                cr_assert_neq(pid, -1);
                if (pid == 0) {
                        vtpmd_client_t *c = NULL;
                        Vtpmd__VtpmResponse *r = NULL;
                        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
                        Vtpmd__List l = VTPMD__LIST__INIT;
                        int code = 0;
                        close(p[0]);
                        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                                _exit(90);
                        req.body_case = VTPMD__VTPM_REQUEST__BODY_LIST;
                        req.list = &l;
                        if (vtpmd_client_connect(sock_path, 10000, &c) < 0)
                                _exit(91);
                        if (vtpmd_client_call(c, &req, &r) < 0)
                                _exit(92);
                        code = err_of(r);
                        if (write(p[1], r->error ? r->error->message : "", r->error ? strlen(r->error->message) : 0) <
                            0)
                                _exit(93);
                        _exit(code);
                }
                close(p[1]);
                char msg[256] = "";
                ssize_t n = read(p[0], msg, sizeof(msg) - 1);
                close(p[0]);
                if (n > 0)
                        msg[n] = '\0';
                int st = 0;
                cr_assert_eq(waitpid(pid, &st, 0), pid);
                cr_assert(WIFEXITED(st));
                cr_assert_eq(WEXITSTATUS(st), VTPMD__ERROR_CODE__ERR_PERMISSION_DENIED, "uid 65534: exit %d (%s)",
                             WEXITSTATUS(st), msg);
                cr_assert(strstr(msg, "permission denied"), "message: %s", msg);
        }
        assert_serving();

        /* vtpmctl's exit codes and messages. */
        {
                char *err = NULL;
                const char *dup[] = {"create", "one", NULL};
                cr_assert_eq(run_vtpmctl(NULL, &err, dup), 2);
                cr_assert(strstr(err, "ERR_EXISTS"), "vtpmctl: %s", err);
                const char *usage[] = {"frobnicate", "x", NULL};
                cr_assert_eq(run_vtpmctl(NULL, &err, usage), 1);
        }
        {
                char *argv[] = {vtpmctl_bin(), "--socket", harness_path(dir, "nosuch.sock"), "list", NULL};
                int code = -1;
                char *o = NULL, *e = NULL;
                cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &o, &e), 0);
                cr_assert_eq(code, 3, "unreachable vtpmd: exit %d", code);
                free(o);
                free(e);
        }

        /* Destroy frees a slot; the limit counts again. */
        resp = destroy_req("one", false);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_DESTROYED);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        resp = create_ok("three");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        assert_host_pcr_matches_log();
}

/* --swtpm /nonexistent: Create fails clearly, nothing is left behind, vtpmd keeps serving. */
Test(vtpmd, missing_swtpm_binary)
{
        const char *extra[] = {"--swtpm", "/nonexistent/swtpm", NULL};
        Vtpmd__VtpmResponse *resp;

        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not start");
        resp = create_req("c1");
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_SWTPM, "got %s", vtpmd_error_code_name(err_of(resp)));
        cr_assert(strstr(resp->error->message, "/nonexistent/swtpm"), "message: %s", resp->error->message);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        /* The failed Create released its id and its slot. */
        for (int waited = 0;; waited += 50) {
                Vtpmd__VtpmResponse *li = list_req();
                size_t n = li->listed->n_instances;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (n == 0)
                        break;
                cr_assert_lt(waited, 10000, "failed Create still listed");
                usleep(50000);
        }
        resp = create_req("c1");
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_SWTPM);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        assert_serving();
}

/* --pool 2: Create takes a pre-manufactured vTPM and the pool refills. */
Test(vtpmd, warm_pool)
{
        const char *extra[] = {"--pool", "2", NULL};
        uint64_t t_pool = 0;

        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not start");
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *li = list_req();
                unsigned ready_n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (ready_n == 2)
                        break;
                cr_assert_lt(waited, 60000, "pool never filled");
                usleep(100000);
        }
        for (int i = 0; i < 2; i++) {
                char id[16];
                snprintf(id, sizeof(id), "pooled-%d", i);
                uint64_t t0 = now_us();
                Vtpmd__VtpmResponse *resp = create_ok(id);
                t_pool += now_us() - t0;
                cr_assert(resp->created->instance->from_pool, "%s not from the pool", id);
                char want[PATH_MAX];
                snprintf(want, sizeof(want), "%s/vtpm/%s/tpm.sock", run, id);
                cr_assert_str_eq(resp->created->instance->socket, want);
                getrandom_via(want);
                assert_vtpm_matches_log(want, resp->created->instance->log);
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
        }
        fprintf(stderr, "test-vtpmd: 2 Creates from the pool: mean %.1f ms\n", (double)t_pool / 2 / 1000.0);
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *li = list_req();
                unsigned ready_n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (ready_n == 2)
                        break;
                cr_assert_lt(waited, 60000, "pool never refilled");
                usleep(100000);
        }
        /* Pool instances survive a vtpmd restart too. */
        harness_stop(&vd, SIGKILL, 5000);
        vd.pid = 0;
        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not restart");
        Vtpmd__VtpmResponse *li = list_req();
        cr_assert_eq(li->listed->n_instances, 2);
        vtpmd__vtpm_response__free_unpacked(li, NULL);
        /* Re-adopted pool instances count as ready once vtpmd has checked their platform auth. */
        for (int waited = 0;; waited += 100) {
                li = list_req();
                unsigned ready_n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (ready_n == 2)
                        break;
                cr_assert_lt(waited, 30000, "pool not re-adopted");
                usleep(100000);
        }
        Vtpmd__VtpmResponse *resp = create_ok("pooled-2");
        bool from_pool = resp->created->instance->from_pool;
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        cr_assert(from_pool, "the re-adopted pool was not used");
        assert_host_pcr_matches_log();
}

/* ---- Create: acknowledged when durable, extended right after -------------------------- */

#define SETTLE_DELAY_ENV "CSCP_VTPMD_TEST_SETTLE_DELAY_MS"

static Vtpmd__VtpmResponse *quote_req(const char *id, const uint8_t *nonce, size_t nonce_len, uint32_t pcr)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Quote q = VTPMD__QUOTE__INIT;
        Cscp__PcrSelection sel = CSCP__PCR_SELECTION__INIT, *psel = &sel;
        uint32_t pcrs[1] = {pcr};

        sel.hash_alg = 0x000B; /* sha256 */
        sel.pcrs = pcrs;
        sel.n_pcrs = 1;
        q.container_id = (char *)id;
        q.nonce = (ProtobufCBinaryData){.data = (uint8_t *)nonce, .len = nonce_len};
        q.pcrs = &psel;
        q.n_pcrs = 1;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
        req.quote = &q;
        return call(&req);
}

static bool file_contains(const char *path, const char *needle)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        bool found;

        if (cscp_file_read(path, 64u * 1024 * 1024, &buf, &len) < 0)
                return false;
        found = memmem(buf, len, needle, strlen(needle)) != NULL;
        free(buf);
        return found;
}

static char *hex_of(const uint8_t *p, size_t n)
{
        char *h = calloc(1, 2 * n + 1);

        cr_assert(h);
        for (size_t i = 0; i < n; i++)
                snprintf(h + 2 * i, 3, "%02x", p[i]);
        return harness_keep(h);
}

/*
 * vtpmd acknowledges Create once the records are durable and extends right
 * after (held back here by the test hook for 1.5 s): a Quote and a Status
 * sent right after the acknowledgement wait for the extends, and the quoted
 * PCR 11 is the replay of the container log; the container's endpoint sees
 * the same; the host PCR replays the host log.
 */
Test(vtpmd, quote_right_after_create_sees_the_measurements)
{
        const uint8_t nonce[20] = "fresh-nonce-0123456";
        Vtpmd__VtpmResponse *cr, *st, *q;
        char *log, *sock, *want;
        uint64_t t_ack, t_quote;

        setenv(SETTLE_DELAY_ENV, "1500", 1);
        int r = start_vtpmd(NULL);
        unsetenv(SETTLE_DELAY_ENV);
        cr_assert_eq(r, 0, "vtpmd did not start");
        cr = create_ok("early");
        t_ack = now_us();
        log = harness_keep(strdup(cr->created->instance->log));
        sock = harness_keep(strdup(cr->created->instance->socket));
        vtpmd__vtpm_response__free_unpacked(cr, NULL);

        q = quote_req("early", nonce, sizeof(nonce), 11);
        t_quote = now_us() - t_ack;
        if (q->body_case != VTPMD__VTPM_RESPONSE__BODY_QUOTE)
                harness_dump_log(&vd);
        cr_assert_eq(q->body_case, VTPMD__VTPM_RESPONSE__BODY_QUOTE, "Quote right after Create: %s",
                     q->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? q->error->message : "?");
        cr_assert_geq(t_quote, 1000000, "the Quote was answered %.0f ms after Create: it did not wait for the extends",
                      t_quote / 1e3);
        cr_assert_eq(q->quote->quote->n_pcrs, 1);
        want = harness_replay(log, 11);
        cr_assert(want, "the container log extends no PCR 11");
        cr_assert_str_eq(hex_of(q->quote->quote->pcrs[0]->value.data, q->quote->quote->pcrs[0]->value.len), want,
                         "quoted PCR 11 != replay of the container log");
        vtpmd__vtpm_response__free_unpacked(q, NULL);

        /* Status right after a second Create waits too, then says ready. */
        cr = create_ok("early-2");
        t_ack = now_us();
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        st = status_req("early-2");
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        cr_assert_str_eq(st->status->instance->state, "ready");
        cr_assert_geq(now_us() - t_ack, 1000000, "Status did not wait for the extends");
        vtpmd__vtpm_response__free_unpacked(st, NULL);

        assert_vtpm_matches_log(sock, log);
        assert_host_pcr_matches_log();
        cr_assert(file_contains(vlog, "settled after"), "vtpmd logged no settle time");
}

/*
 * SIGKILL of vtpmd after Create was acknowledged and before its extends (the
 * test hook holds them back for 5 s): the bind record is in the host log but
 * not in host PCR 15, the container records are in the container log but not
 * in the vTPM. The next vtpmd reconciles the host log (extends the one record
 * ahead) and, re-adopting the running swtpm, extends the records its PCRs
 * lack: both PCRs replay from their logs again, and the vTPM still works.
 */
Test(vtpmd, crash_between_acknowledgement_and_extends)
{
        char *log, *sock, *state_dir, *host_before, *tcti, *zero;
        Vtpmd__VtpmResponse *cr;
        uint32_t pid;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        cr = create_ok("before"); /* settles normally: the host log is not empty */
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        assert_host_pcr_matches_log();
        harness_stop(&vd, SIGTERM, 20000);
        vd.pid = 0;

        setenv(SETTLE_DELAY_ENV, "5000", 1);
        int r = start_vtpmd(NULL);
        unsetenv(SETTLE_DELAY_ENV);
        cr_assert_eq(r, 0, "vtpmd did not start");
        host_before = harness_pcrread(host.tcti, 15);
        cr = create_ok("crashed");
        log = harness_keep(strdup(cr->created->instance->log));
        sock = harness_keep(strdup(cr->created->instance->socket));
        state_dir = harness_keep(strdup(cr->created->instance->state_dir));
        pid = cr->created->instance->pid;
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_eq(kill(vd.pid, SIGKILL), 0);
        harness_wait(&vd, 10000, NULL);
        vd.pid = 0;

        /* The window was hit: logged, durable, not extended. */
        cr_assert_str_eq(harness_pcrread(host.tcti, 15), host_before, "host PCR 15 moved before the crash");
        cr_assert_str_neq(harness_replay(harness_path(state, "host.log"), 15), host_before,
                          "the host log does not hold the acknowledged vtpm-bind");
        tcti = harness_keep(calloc(1, PATH_MAX + 16));
        snprintf(tcti, PATH_MAX + 16, "swtpm:path=%s/swtpm.sock", state_dir);
        zero = "0000000000000000000000000000000000000000000000000000000000000000";
        cr_assert_str_eq(harness_pcrread(tcti, 11), zero, "the vTPM's PCR 11 was extended before the crash");
        cr_assert(harness_replay(log, 11), "the container log holds no records");

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not restart");
        cr_assert_eq(wait_state("crashed", "ready", 0, 30000), pid, "swtpm not re-adopted");
        assert_host_pcr_matches_log();
        assert_vtpm_matches_log(sock, log);
        getrandom_via(sock);
        cr = destroy_req("crashed", false);
        cr_assert_eq(cr->body_case, VTPMD__VTPM_RESPONSE__BODY_DESTROYED);
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        assert_host_pcr_matches_log();
}

/* ---- the commit point: vtpm-bind + a complete container log, meta written later ------- */

#define CRASH_ENV "CSCP_VTPMD_TEST_CRASH_AT"

/* "bind"/"destroy" per vtpm-bind/vtpm-destroy record of container id in the host log, comma-separated. */
static char *host_events_of(const char *id)
{
        char *path = harness_path(state, "host.log"), *out = harness_keep(calloc(1, 4096));
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        cr_assert_geq(fd, 0, "cannot open %s", path);
        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;
                const char *what;

                if (cscp_cm_decode(ev->data, ev->data_len, &rec) < 0 || rec.kind != CSCP_CM_CONTAINER ||
                    !rec.f[CSCP_CM_F_CONTAINER_ID].data || rec.f[CSCP_CM_F_CONTAINER_ID].len != strlen(id) ||
                    memcmp(rec.f[CSCP_CM_F_CONTAINER_ID].data, id, strlen(id)) != 0)
                        continue;
                what = rec.f[CSCP_CM_F_EVENT].len == 9 && memcmp(rec.f[CSCP_CM_F_EVENT].data, "vtpm-bind", 9) == 0
                               ? "bind"
                               : "destroy";
                if (out[0])
                        strcat(out, ",");
                strcat(out, what);
        }
        cr_assert_eq(r, 0, "host log: %s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        close(fd);
        return out;
}

/* Instance directories holding a container log (an instance bound, or half bound, to a container). */
static int dirs_with_container_log(void)
{
        char *root = harness_path(state, "instances");
        DIR *d = opendir(root);
        struct dirent *e;
        int n = 0;

        cr_assert(d, "cannot open %s", root);
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' &&
                    access(harness_path(harness_path(root, e->d_name), "container.log"), F_OK) == 0)
                        n++;
        closedir(d);
        return n;
}

static void wait_pool(unsigned want)
{
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *li = list_req();
                unsigned n = li->listed->pool_ready;
                vtpmd__vtpm_response__free_unpacked(li, NULL);
                if (n == want)
                        return;
                cr_assert_lt(waited, 60000, "pool never reached %u", want);
                usleep(100000);
        }
}

static const char *const pool1[] = {"--pool", "1", NULL};

/* Starts vtpmd with the crash hook at point, then a Create of id; returns its answer, or NULL when vtpmd died. */
static Vtpmd__VtpmResponse *create_crashing(const char *point, bool pool, const char *id)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Create cr = VTPMD__CREATE__INIT;
        Vtpmd__Measurements ms;
        Vtpmd__Annotation a = VTPMD__ANNOTATION__INIT, *pa = &a;
        Vtpmd__VtpmResponse *resp = NULL;
        vtpmd_client_t *c = NULL;
        int r;

        setenv(CRASH_ENV, point, 1);
        r = start_vtpmd(pool ? pool1 : NULL);
        unsetenv(CRASH_ENV);
        cr_assert_eq(r, 0, "vtpmd did not start");
        if (pool)
                wait_pool(1);
        vctl_measurements(&ms, true, true);
        a.key = "org.opencontainers.image.version";
        a.value = "1.2.3";
        ms.annotations = &pa;
        ms.n_annotations = 1;
        cr.container_id = (char *)id;
        cr.measurements = &ms;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_CREATE;
        req.create = &cr;
        cr_assert_eq(vtpmd_client_connect(sock_path, 120000, &c), 0);
        r = vtpmd_client_call(c, &req, &resp);
        vtpmd_client_free(c);
        /* The hook kills vtpmd at the point: wait for that (an answer may have gone out just before). */
        harness_wait(&vd, 20000, NULL);
        cr_assert(!harness_alive(&vd), "vtpmd survived the crash point %s", point);
        vd.pid = 0;
        return r == 0 ? resp : NULL;
}

/* After the restart: the vTPM of id is bound, its PCRs replay from its log, the host PCR from the host log. */
static void assert_rebound(const char *id, bool from_pool)
{
        Vtpmd__VtpmResponse *st;
        char *log, *sock, *meta;

        wait_state(id, "ready", 0, 30000);
        st = status_req(id);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        cr_assert_eq(st->status->instance->from_pool, from_pool);
        log = harness_keep(strdup(st->status->instance->log));
        sock = harness_keep(strdup(st->status->instance->socket));
        meta = harness_path(st->status->instance->state_dir, "meta");
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        assert_host_pcr_matches_log();
        assert_vtpm_matches_log(sock, log);
        getrandom_via(sock);
        cr_assert_str_eq(host_events_of(id), "bind");
        /* The instance record is written again once the re-adopted vTPM was checked. */
        for (int waited = 0; !file_contains(meta, "state=ready"); waited += 50) {
                cr_assert_lt(waited, 10000, "%s never says state=ready", meta);
                usleep(50000);
        }
        cr_assert(file_contains(meta, id), "%s does not name %s", meta, id);
        st = destroy_req(id, false);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_DESTROYED);
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        cr_assert_str_eq(host_events_of(id), "bind,destroy");
        assert_host_pcr_matches_log();
}

/*
 * Acknowledged from the pool, vtpmd killed after the extends and before the
 * instance record (meta still says "pool"): the next vtpmd binds it again from
 * the host log's vtpm-bind and the complete container log.
 */
Test(vtpmd, crash_after_ack_before_instance_record_pool)
{
        Vtpmd__VtpmResponse *cr = create_crashing("before-meta", true, "acked-pool");

        cr_assert(cr, "no answer: the crash point is after the acknowledgement");
        cr_assert_eq(cr->body_case, VTPMD__VTPM_RESPONSE__BODY_CREATED);
        cr_assert_eq(cr->created->annotations_measured, 1, "the annotation did not travel inside Create");
        cr_assert(file_contains(harness_path(cr->created->instance->state_dir, "meta"), "state=pool"),
                  "meta was written before the acknowledgement");
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_eq(start_vtpmd(pool1), 0, "vtpmd did not restart");
        assert_rebound("acked-pool", true);
}

/* The same without the pool: meta says "new" (with the container id) at the crash. */
Test(vtpmd, crash_after_ack_before_instance_record_new)
{
        Vtpmd__VtpmResponse *cr = create_crashing("before-meta", false, "acked-new");

        cr_assert(cr, "no answer: the crash point is after the acknowledgement");
        cr_assert_eq(cr->body_case, VTPMD__VTPM_RESPONSE__BODY_CREATED);
        cr_assert(file_contains(harness_path(cr->created->instance->state_dir, "meta"), "state=new"));
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not restart");
        assert_rebound("acked-new", false);
}

/*
 * Both logs durable, vtpmd killed before it answered: the client saw no
 * answer, but the Create is committed: bound at the next start (a retried
 * hook then finds it, measured with its config).
 */
Test(vtpmd, crash_durable_but_not_acknowledged)
{
        Vtpmd__VtpmResponse *cr = create_crashing("before-ack", true, "unanswered");

        cr_assert_null(cr, "vtpmd answered before the crash point");
        cr_assert_eq(dirs_with_container_log(), 1);
        cr_assert_eq(start_vtpmd(pool1), 0, "vtpmd did not restart");
        assert_rebound("unanswered", true);
}

/*
 * The vtpm-bind record durable, the container log not (a machine crash
 * before its fsync returned; the hook cuts it in half): never acknowledged.
 * The next vtpmd records vtpm-destroy and wipes the instance.
 */
Test(vtpmd, crash_bind_durable_container_log_torn)
{
        Vtpmd__VtpmResponse *cr = create_crashing("torn-log-after-bind", true, "torn");

        cr_assert_null(cr, "vtpmd answered before the crash point");
        cr_assert_str_eq(host_events_of("torn"), "bind");
        cr_assert_eq(start_vtpmd(pool1), 0, "vtpmd did not restart");
        cr = status_req("torn");
        cr_assert_eq(err_of(cr), VTPMD__ERROR_CODE__ERR_NOT_FOUND, "a Create with a torn log was bound");
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_str_eq(host_events_of("torn"), "bind,destroy");
        cr_assert_eq(dirs_with_container_log(), 0, "the half-bound instance was not wiped");
        assert_host_pcr_matches_log();
        wait_pool(1);
        vtpmd__vtpm_response__free_unpacked(create_ok("after-torn"), NULL);
}

/* Killed after the container log was written, before the vtpm-bind record: no binding, the instance wiped. */
Test(vtpmd, crash_before_bind_record)
{
        Vtpmd__VtpmResponse *cr = create_crashing("before-bind", true, "unbound");

        cr_assert_null(cr, "vtpmd answered before the crash point");
        cr_assert_str_eq(host_events_of("unbound"), "");
        cr_assert_eq(dirs_with_container_log(), 1);
        cr_assert_eq(start_vtpmd(pool1), 0, "vtpmd did not restart");
        cr = status_req("unbound");
        cr_assert_eq(err_of(cr), VTPMD__ERROR_CODE__ERR_NOT_FOUND);
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_eq(dirs_with_container_log(), 0, "the half-bound pool instance was not wiped");
        cr_assert_str_eq(host_events_of("unbound"), "");
        wait_pool(1);
        cr = create_ok("unbound"); /* the id is free */
        cr_assert(cr->created->instance->from_pool);
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_str_eq(host_events_of("unbound"), "bind");
        assert_host_pcr_matches_log();
}

/*
 * The instance record could not be written after the acknowledgement (the
 * hook "skip-meta" makes it fail); a Measure appends to the container log
 * after "create"; vtpmd is killed: the next one still binds the vTPM (the
 * log is complete up to "create"), with the Measure's record re-extended.
 */
Test(vtpmd, instance_record_lost_then_measure_then_crash)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Measure m = VTPMD__MEASURE__INIT;
        Vtpmd__MeasureField f = VTPMD__MEASURE_FIELD__INIT, *pf = &f;
        Vtpmd__VtpmResponse *cr;
        char *meta;
        int r;

        setenv(CRASH_ENV, "skip-meta", 1);
        r = start_vtpmd(pool1);
        unsetenv(CRASH_ENV);
        cr_assert_eq(r, 0, "vtpmd did not start");
        wait_pool(1);
        cr = create_ok("no-meta");
        meta = harness_path(cr->created->instance->state_dir, "meta");
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        f.type = CSCP_CM_F_EVENT;
        f.value = (ProtobufCBinaryData){.data = (uint8_t *)"later", .len = 5};
        m.container_id = "no-meta";
        m.pcr = 11; /* checked by assert_rebound (PCRs 11, 12) */
        m.kind = CSCP_CM_CONTAINER;
        m.fields = &pf;
        m.n_fields = 1;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_MEASURE;
        req.measure = &m;
        cr = call(&req);
        cr_assert_eq(cr->body_case, VTPMD__VTPM_RESPONSE__BODY_MEASURED);
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert(file_contains(meta, "state=pool"), "the hook did not keep meta from being written");
        harness_stop(&vd, SIGKILL, 5000);
        vd.pid = 0;
        cr_assert_eq(start_vtpmd(pool1), 0, "vtpmd did not restart");
        assert_rebound("no-meta", true);
}

/* Destroy killed after its vtpm-destroy record, before it removed the instance: the next vtpmd finishes it. */
Test(vtpmd, crash_destroy_after_record)
{
        Vtpmd__VtpmResponse *cr;
        vtpmd_client_t *c = NULL;
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Destroy de = VTPMD__DESTROY__INIT;
        int r;

        setenv(CRASH_ENV, "destroy-after-record", 1);
        r = start_vtpmd(NULL);
        unsetenv(CRASH_ENV);
        cr_assert_eq(r, 0, "vtpmd did not start");
        vtpmd__vtpm_response__free_unpacked(create_ok("gone"), NULL);
        de.container_id = "gone";
        req.body_case = VTPMD__VTPM_REQUEST__BODY_DESTROY;
        req.destroy = &de;
        cr_assert_eq(vtpmd_client_connect(sock_path, 120000, &c), 0);
        cr = NULL;
        r = vtpmd_client_call(c, &req, &cr);
        vtpmd_client_free(c);
        cr_assert_neq(r, 0, "Destroy was answered before the crash point");
        harness_wait(&vd, 20000, NULL);
        vd.pid = 0;
        cr_assert_str_eq(host_events_of("gone"), "bind,destroy");
        cr_assert_eq(dirs_with_container_log(), 1);
        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not restart");
        cr = status_req("gone");
        cr_assert_eq(err_of(cr), VTPMD__ERROR_CODE__ERR_NOT_FOUND, "a destroyed vTPM came back");
        vtpmd__vtpm_response__free_unpacked(cr, NULL);
        cr_assert_eq(dirs_with_container_log(), 0);
        cr_assert_str_eq(host_events_of("gone"), "bind,destroy");
        assert_host_pcr_matches_log();
}

/* "kind:event:name" per record of a container log, comma-separated (event and name when present). */
static char *log_outline(const char *path)
{
        char *out = harness_keep(calloc(1, 8192));
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        cr_assert_geq(fd, 0, "cannot open %s", path);
        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;
                char item[256];

                cr_assert_eq(cscp_cm_decode(ev->data, ev->data_len, &rec), 0);
                snprintf(item, sizeof(item), "%s%s:%.*s:%.*s", out[0] ? "," : "", cscp_cm_kind_name(rec.kind),
                         rec.f[CSCP_CM_F_EVENT].data ? (int)rec.f[CSCP_CM_F_EVENT].len : 0,
                         rec.f[CSCP_CM_F_EVENT].data ? (const char *)rec.f[CSCP_CM_F_EVENT].data : "",
                         rec.f[CSCP_CM_F_NAME].data && rec.kind == CSCP_CM_CONFIG ? (int)rec.f[CSCP_CM_F_NAME].len : 0,
                         rec.f[CSCP_CM_F_NAME].data ? (const char *)rec.f[CSCP_CM_F_NAME].data : "");
                cr_assert_lt(strlen(out) + strlen(item), 8192);
                strcat(out, item);
        }
        cr_assert_eq(r, 0, "%s: %s", path, cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        close(fd);
        return out;
}

/*
 * Image annotations travel inside Create: one CONFIG "annotation" record each,
 * in the order given, after the env records and before the closing "create"
 * (the commit marker recovery looks for); Created says how many. An empty key
 * is refused before anything happens; Measure (what older hooks send after
 * Create) still works.
 */
Test(vtpmd, create_carries_annotations)
{
        Vtpmd__Measurements ms;
        Vtpmd__Annotation a[2] = {VTPMD__ANNOTATION__INIT, VTPMD__ANNOTATION__INIT}, *pa[2] = {&a[0], &a[1]};
        Vtpmd__VtpmResponse *resp;
        char *log;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        vctl_measurements(&ms, true, false);
        a[0].key = "org.opencontainers.image.ref.name";
        a[0].value = "busybox";
        a[1].key = "org.opencontainers.image.version";
        a[1].value = "1.36";
        ms.annotations = pa;
        ms.n_annotations = 2;
        resp = vctl_create_ok(sock_path, &vd, "annotated", &ms);
        cr_assert_eq(resp->created->annotations_measured, 2);
        log = harness_keep(strdup(resp->created->instance->log));
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        cr_assert_str_eq(log_outline(log), "version::,config::,process:arg:,process:arg:,process:arg:,"
                                           "config:annotation:org.opencontainers.image.ref.name,"
                                           "config:annotation:org.opencontainers.image.version,container:create:");
        cr_assert_eq(vtpm_log_create_complete(log, "annotated"), 1);
        cr_assert_eq(vtpm_log_create_complete(log, "another"), 0);
        assert_vtpm_matches_log(harness_path(harness_path(harness_path(run, "vtpm"), "annotated"), "tpm.sock"), log);

        a[1].key = "";
        resp = vctl_create(sock_path, &vd, "empty-key", &ms);
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_BAD_REQUEST, "an annotation without a key was accepted");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        resp = status_req("empty-key");
        cr_assert_eq(err_of(resp), VTPMD__ERROR_CODE__ERR_NOT_FOUND);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        assert_serving();
}

/* ---- a full disk ------------------------------------------------------------------ */

static void unmount_state(void)
{
        /* Lazy: vtpmd (stopped by the suite's teardown, before or after this) may still hold files. */
        (void)umount2(state, MNT_DETACH);
}

/* Fills the file system holding path until write fails; returns the filler's path. */
static char *fill_disk(const char *path)
{
        char *filler = harness_path(path, "filler");
        static char block[64 * 1024];
        int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        cr_assert_geq(fd, 0, "cannot create %s", filler);
        memset(block, 0x5a, sizeof(block));
        for (;;) {
                ssize_t k = write(fd, block, sizeof(block));
                if (k < (ssize_t)sizeof(block)) {
                        /* Also the last small blocks: the disk must really be full. */
                        while (write(fd, block, 512) == 512)
                                ;
                        break;
                }
        }
        close(fd);
        return filler;
}

Test(vtpmd, full_disk_is_a_clear_error_and_nothing_is_lost, .fini = unmount_state)
{
        Vtpmd__VtpmResponse *resp, *c1;
        char *filler, *c1_sock;
        bool refused = false;

        cr_assert_eq(mkdir(state, 0700), 0);
        if (mount("tmpfs", state, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0700") < 0)
                cr_skip_test("cannot mount a tmpfs for the state directory (%s): this test needs root",
                             strerror(errno));
        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        c1 = create_ok("c1");
        c1_sock = harness_keep(strdup(c1->created->instance->socket));
        vtpmd__vtpm_response__free_unpacked(c1, NULL);

        /* No space left: Create fails with NO_SPACE (or, if the swtpm could not even write its state, a clear
         * SWTPM/INTERNAL error naming the cause), the daemon keeps serving, c1 keeps working. */
        filler = fill_disk(state);
        for (int i = 0; i < 3 && !refused; i++) {
                char id[16];
                snprintf(id, sizeof(id), "full%d", i);
                resp = create_req(id);
                cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_ERROR, "Create on a full disk succeeded");
                cr_log_info("Create on a full disk: %s: %s", vtpmd_error_code_name(resp->error->code),
                            resp->error->message);
                refused = err_of(resp) == VTPMD__ERROR_CODE__ERR_NO_SPACE ||
                          strstr(resp->error->message, "space") != NULL;
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
        }
        cr_assert(refused, "no Create on the full disk said the disk was full");
        assert_serving();
        getrandom_via(c1_sock);
        resp = status_req("c1");
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS, "c1 lost");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);

        /* Space back: Create works again, and nothing half-made was left behind. */
        cr_assert_eq(unlink(filler), 0);
        vtpmd__vtpm_response__free_unpacked(create_ok("c2"), NULL);
        resp = list_req();
        cr_assert_eq(resp->listed->n_instances, 2, "%zu instances listed (half-made ones left?)",
                     resp->listed->n_instances);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        assert_host_pcr_matches_log();
}
