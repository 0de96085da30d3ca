/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mediated endpoint and its resource manager (vtpmd/endpoint.c, rm.c),
 * end to end: a real swtpm as the host TPM, the real vtpmd with real swtpm
 * vTPMs, tpm2-tools and swtpm_ioctl as the container, ESYS clients in forked
 * processes, raw bytes for what no tool sends, `cscp eventlog replay` as the
 * independent reader of the container log.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "core.h"
#include "error.h"
#include "harness.h"
#include "util.h"
#include "vctl.h"

#define TOOL_TIMEOUT_MS 120000

static char *dir, *pki, *state, *run, *ready, *sock_path, *vlog, *work;
static harness_swtpm_t host;
static harness_proc_t vd;

/* ---- vtpmd ------------------------------------------------------------------------ */

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
        work = harness_path(dir, "work");
        cr_assert_eq(mkdir(work, 0700), 0);
}

static void teardown(void)
{
        int st = 0;
        bool clean = true;

        if (vd.pid > 0) {
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

static Vtpmd__VtpmResponse *call(Vtpmd__VtpmRequest *req)
{
        return vctl_call(sock_path, &vd, req);
}

/* Create id; returns its container log path (kept). */
static char *create_ok(const char *id, uint32_t *ret_pid)
{
        Vtpmd__Measurements ms;
        Vtpmd__VtpmResponse *resp;
        char *log;

        vctl_measurements(&ms, false, false);
        resp = vctl_create_ok(sock_path, &vd, id, &ms);
        log = harness_keep(strdup(resp->created->instance->log));
        if (ret_pid)
                *ret_pid = resp->created->instance->pid;
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return log;
}

static uint32_t status_pid(const char *id)
{
        Vtpmd__VtpmResponse *resp = vctl_status(sock_path, &vd, id);
        uint32_t pid;

        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        pid = resp->status->instance->pid;
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return pid;
}

static int vtpmd_quote(const char *id)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Quote q = VTPMD__QUOTE__INIT;
        Cscp__PcrSelection sel = CSCP__PCR_SELECTION__INIT;
        Cscp__PcrSelection *psel = &sel;
        uint32_t pcrs[] = {11, 12};
        uint8_t nonce[32] = {1, 2, 3};
        Vtpmd__VtpmResponse *resp;
        int ok;

        sel.hash_alg = 0x000B;
        sel.pcrs = pcrs;
        sel.n_pcrs = 2;
        q.container_id = (char *)id;
        q.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
        q.pcrs = &psel;
        q.n_pcrs = 1;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
        req.quote = &q;
        resp = call(&req);
        ok = resp->body_case == VTPMD__VTPM_RESPONSE__BODY_QUOTE ? 0 : -1;
        if (ok < 0)
                fprintf(stderr, "vtpmd quote: %s\n",
                        resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "?");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return ok;
}

/* ---- tools ---------------------------------------------------------------------------- */

static char *tcti_of(const char *id)
{
        char buf[PATH_MAX + 32];
        snprintf(buf, sizeof(buf), "swtpm:path=%s/vtpm/%s/tpm.sock", run, id);
        return harness_keep(strdup(buf));
}

/* Runs a tool against the endpoint of id (in work/); returns its exit code, output kept in *out / *err. */
static int tool(const char *id, char **out, char **err, const char *const *argv)
{
        char *o = NULL, *e = NULL;
        int code = -1;
        char cwd[PATH_MAX];

        cr_assert(getcwd(cwd, sizeof(cwd)));
        cr_assert_eq(chdir(work), 0);
        setenv("TPM2TOOLS_TCTI", tcti_of(id), 1);
        cr_assert_eq(harness_run((char *const *)argv, TOOL_TIMEOUT_MS, &code, &o, &e), 0, "cannot run %s", argv[0]);
        cr_assert_eq(chdir(cwd), 0);
        harness_keep(o);
        harness_keep(e);
        if (out)
                *out = o;
        if (err)
                *err = e;
        return code;
}

#define TOOL_OK(id, ...)                                                                            \
        do {                                                                                        \
                const char *a_[] = {__VA_ARGS__, NULL};                                             \
                char *e_ = NULL;                                                                    \
                int c_ = tool(id, NULL, &e_, a_);                                                   \
                if (c_ != 0)                                                                        \
                        harness_dump_log(&vd);                                                      \
                cr_assert_eq(c_, 0, "%s through the endpoint failed (exit %d): %s", a_[0], c_, e_); \
        } while (0)

#define TOOL_REFUSED(id, ...)                                                                                    \
        do {                                                                                                     \
                const char *a_[] = {__VA_ARGS__, NULL};                                                          \
                char *e_ = NULL;                                                                                 \
                int c_ = tool(id, NULL, &e_, a_);                                                                \
                cr_assert_neq(c_, 0, "%s was not refused (%s)", a_[0], #__VA_ARGS__);                            \
                fprintf(stderr, "test-vtpmd-rm: refused as expected: %s: %.200s", #__VA_ARGS__, e_ ? e_ : "\n"); \
        } while (0)

static char *pcrread(const char *id, unsigned pcr)
{
        char sel[32], *out = NULL;
        const char *argv[] = {"tpm2_pcrread", sel, NULL};

        snprintf(sel, sizeof(sel), "sha256:%u", pcr);
        cr_assert_eq(tool(id, &out, NULL, argv), 0, "tpm2_pcrread through the endpoint");
        return harness_pcr_hex(out, pcr);
}

/* The replay of log for pcr; zeros if the log never extends it. */
static char *replay(const char *log, unsigned pcr)
{
        char *res = harness_replay(log, pcr);

        return res ? res : "0000000000000000000000000000000000000000000000000000000000000000";
}

static void assert_pcrs_match_log(const char *id, const char *log)
{
        for (unsigned pcr = 11; pcr <= 12; pcr++) {
                char *have = pcrread(id, pcr), *want = replay(log, pcr);
                cr_assert_str_eq(have, want, "%s: PCR %u = %s through the endpoint, log replay = %s", id, pcr, have,
                                 want);
        }
}

/* ---- raw bytes ------------------------------------------------------------------------------ */

static int raw_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = 30};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        cr_assert_geq(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path, strerror(errno));
        return fd;
}

/* Sends bytes on a fresh connection to path; returns the first n bytes of the answer (ret_len = bytes read). */
static size_t raw_exchange(const char *path, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap)
{
        int fd = raw_connect(path);
        size_t got = 0;

        cr_assert_eq(send(fd, cmd, len, MSG_NOSIGNAL), (ssize_t)len);
        while (got < cap) {
                ssize_t n = recv(fd, resp + got, cap - got, 0);
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got >= 10 &&
                    got >= ((size_t)resp[2] << 24 | (size_t)resp[3] << 16 | (size_t)resp[4] << 8 | resp[5]))
                        break;
                if (got >= 4 && cap <= 8)
                        break;
        }
        close(fd);
        return got;
}

static uint32_t rc_of(const uint8_t *r)
{
        return (uint32_t)r[6] << 24 | (uint32_t)r[7] << 16 | (uint32_t)r[8] << 8 | r[9];
}

static char *endpoint_of(const char *id, const char *name)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s/vtpm/%s/%s", run, id, name);
        return harness_keep(strdup(buf));
}

/* ---- ESYS clients ------------------------------------------------------------------------------- */

static ESYS_CONTEXT *esys_open(const char *id)
{
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *ctx = NULL;

        if (Tss2_TctiLdr_Initialize(tcti_of(id), &tcti) != TSS2_RC_SUCCESS)
                return NULL;
        if (Esys_Initialize(&ctx, tcti, NULL) != TSS2_RC_SUCCESS)
                return NULL;
        return ctx;
}

static void esys_close(ESYS_CONTEXT *ctx)
{
        TSS2_TCTI_CONTEXT *tcti = NULL;

        Esys_GetTcti(ctx, &tcti);
        Esys_Finalize(&ctx);
        Tss2_TctiLdr_Finalize(&tcti);
}

static TSS2_RC primary(ESYS_CONTEXT *ctx, ESYS_TR hierarchy, ESYS_TR *ret, TPM2_HANDLE *ret_tpm)
{
        TPM2B_SENSITIVE_CREATE in_s = {0};
        TPM2B_PUBLIC in_p = {
                .publicArea =
                        {
                                .type = TPM2_ALG_ECC,
                                .nameAlg = TPM2_ALG_SHA256,
                                .objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                                                    TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN,
                                .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_AES,
                                                                       .keyBits.aes = 128,
                                                                       .mode.aes = TPM2_ALG_CFB},
                                                         .scheme = {.scheme = TPM2_ALG_NULL},
                                                         .curveID = TPM2_ECC_NIST_P256,
                                                         .kdf = {.scheme = TPM2_ALG_NULL}},
                        },
        };
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION pcrs = {0};
        TSS2_RC rc;

        rc = Esys_CreatePrimary(ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in_s, &in_p, &outside,
                                &pcrs, ret, NULL, NULL, NULL, NULL);
        if (rc == TSS2_RC_SUCCESS && ret_tpm)
                rc = Esys_TR_GetTpmHandle(ctx, *ret, ret_tpm);
        return rc;
}

/* The transient handles this client sees (GetCapability). */
static uint32_t transient_handles(ESYS_CONTEXT *ctx, TPM2_HANDLE *list, uint32_t cap)
{
        TPMS_CAPABILITY_DATA *cd = NULL;
        TPMI_YES_NO more;
        uint32_t n;

        cr_assert_eq(Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                        0x80000000u /* TPM2_TRANSIENT_FIRST shifts an int: UB */, TPM2_MAX_CAP_HANDLES,
                                        &more, &cd),
                     TSS2_RC_SUCCESS);
        n = cd->data.handles.count;
        for (uint32_t i = 0; i < n && i < cap; i++)
                list[i] = cd->data.handles.handle[i];
        free(cd);
        return n;
}

static TSS2_RC name_of_raw(ESYS_CONTEXT *ctx, TPM2_HANDLE h, TPM2B_NAME **ret)
{
        ESYS_TR tr;
        TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
        if (rc != TSS2_RC_SUCCESS)
                return rc;
        rc = Esys_TR_GetName(ctx, tr, ret);
        Esys_TR_Close(ctx, &tr);
        return rc;
}

TestSuite(vtpmd_rm, .init = setup, .fini = teardown, .timeout = 560);

/*
 * tpm2-tools work through the endpoint; everything that would break the
 * binding is refused with a TPM error without reaching swtpm; the swtpm
 * control channel offers nothing harmful; garbage gets TPM errors; the vTPM
 * keeps working and its PCRs still equal the log replay; a new vtpmd serves
 * the endpoint again.
 */
Test(vtpmd_rm, tools_work_and_binding_breakers_are_refused)
{
        uint32_t pid;
        char *log;
        uint8_t resp[4096];
        size_t n;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        log = create_ok("c1", &pid);
        assert_pcrs_match_log("c1", log);

        TOOL_OK("c1", "tpm2_getrandom", "--hex", "16");
        TOOL_OK("c1", "tpm2_createprimary", "-C", "o", "-G", "ecc", "-c", "primary.ctx");
        TOOL_OK("c1", "tpm2_create", "-C", "primary.ctx", "-G", "ecc", "-u", "key.pub", "-r", "key.priv");
        TOOL_OK("c1", "tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx");
        TOOL_OK("c1", "tpm2_quote", "-c", "key.ctx", "-l", "sha256:11,12", "-q", "00112233", "-m", "q.msg", "-s",
                "q.sig");
        TOOL_OK("c1", "tpm2_startauthsession", "--policy-session", "-S", "s.ctx");
        TOOL_OK("c1", "tpm2_policypcr", "-S", "s.ctx", "-l", "sha256:16", "-L", "policy.dat");
        TOOL_OK("c1", "tpm2_flushcontext", "s.ctx");
        TOOL_OK("c1", "tpm2_evictcontrol", "-C", "o", "-c", "primary.ctx", "0x81000010");
        TOOL_OK("c1", "tpm2_pcrextend", "16:sha256=0000000000000000000000000000000000000000000000000000000000000001");

        /* The binding: AK, EK, EK certificate, hierarchies, seeds, power state, PCRs vtpmd owns. */
        TOOL_REFUSED("c1", "tpm2_evictcontrol", "-C", "o", "-c", "0x81800001");
        TOOL_REFUSED("c1", "tpm2_evictcontrol", "-C", "p", "-c", "0x81800001");
        TOOL_REFUSED("c1", "tpm2_evictcontrol", "-C", "o", "-c", "0x81010002");
        TOOL_REFUSED("c1", "tpm2_clear");
        TOOL_REFUSED("c1", "tpm2_clear", "-c", "p");
        TOOL_REFUSED("c1", "tpm2_clearcontrol", "-C", "l", "s");
        TOOL_REFUSED("c1", "tpm2_changeauth", "-c", "p", "newpass");
        TOOL_REFUSED("c1", "tpm2_changeauth", "-c", "e", "newpass");
        TOOL_REFUSED("c1", "tpm2_changeauth", "-c", "l", "newpass");
        TOOL_REFUSED("c1", "tpm2_hierarchycontrol", "-C", "o", "shEnable", "clear");
        TOOL_REFUSED("c1", "tpm2_changeeps");
        TOOL_REFUSED("c1", "tpm2_shutdown");
        TOOL_REFUSED("c1", "tpm2_shutdown", "-c");
        TOOL_REFUSED("c1", "tpm2_startup", "-c");
        TOOL_REFUSED("c1", "tpm2_nvundefine", "0x1c0000a");
        TOOL_REFUSED("c1", "tpm2_nvundefine", "-C", "p", "0x1c0000a");
        TOOL_REFUSED("c1", "tpm2_pcrreset", "16");
        TOOL_REFUSED("c1", "tpm2_pcrextend",
                     "11:sha256=0000000000000000000000000000000000000000000000000000000000000001");
        {
                char *out = NULL;
                const char *a[] = {"tpm2_nvread", "0x1c0000a", "-s", "16", NULL};
                cr_assert_eq(tool("c1", &out, NULL, a), 0, "the EK certificate is no longer readable");
        }

        /* The swtpm control channel: only harmless answers, nothing reaches swtpm. */
        {
                const char *init[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-i", NULL};
                const char *stop[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "--stop", NULL};
                const char *shut[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-s", NULL};
                const char *vol[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-v", NULL};
                const char *caps[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-c", NULL};
                const char *loc[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-l", "0", NULL};
                const char *loc3[] = {"swtpm_ioctl", "--unix", endpoint_of("c1", "tpm.sock.ctrl"), "-l", "3", NULL};
                cr_assert_neq(tool("c1", NULL, NULL, init), 0, "CMD_INIT was not refused");
                cr_assert_neq(tool("c1", NULL, NULL, stop), 0, "CMD_STOP was not refused");
                cr_assert_neq(tool("c1", NULL, NULL, shut), 0, "CMD_SHUTDOWN was not refused");
                cr_assert_neq(tool("c1", NULL, NULL, vol), 0, "CMD_STORE_VOLATILE was not refused");
                cr_assert_neq(tool("c1", NULL, NULL, loc3), 0, "CMD_SET_LOCALITY(3) was not refused");
                cr_assert_eq(tool("c1", NULL, NULL, caps), 0, "CMD_GET_CAPABILITY failed");
                cr_assert_eq(tool("c1", NULL, NULL, loc), 0, "CMD_SET_LOCALITY(0) failed");
                /* CMD_GET_STATEBLOB (decrypted, permanent) in raw bytes */
                uint8_t blob[16] = {0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
                n = raw_exchange(endpoint_of("c1", "tpm.sock.ctrl"), blob, sizeof(blob), resp, 8);
                cr_assert_geq(n, 4);
                cr_assert_neq(resp[3], 0, "CMD_GET_STATEBLOB answered with success");
        }

        /* Garbage, oversize, unknown, denied in raw bytes: TPM errors, the endpoint keeps serving. */
        {
                const char *data = endpoint_of("c1", "tpm.sock");
                uint8_t garbage[] = "hello, this is not a TPM command";
                uint8_t huge[10] = {0x80, 0x01, 0x00, 0x01, 0x86, 0xA0, 0x00, 0x00, 0x01, 0x7B}; /* 100000 bytes */
                uint8_t tiny[10] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x7B};
                uint8_t unknown[10] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x01, 0xFF};
                uint8_t clear[] = {0x80, 0x02, 0, 0, 0,    27, 0, 0, 0x01, 0x26, 0x40, 0, 0, 0x0A,
                                   0,    0,    0, 9, 0x40, 0,  0, 9, 0,    0,    1,    0, 0};
                uint8_t shutdown[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0};
                uint8_t flush_foreign[14] = {0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65, 0x80, 0xFF, 0xFF, 0xFF};
                n = raw_exchange(data, garbage, sizeof(garbage), resp, sizeof(resp));
                cr_assert_eq(n, 10);
                cr_assert_eq(rc_of(resp), 0x01E, "garbage: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, huge, sizeof(huge), resp, sizeof(resp));
                cr_assert_eq(n, 10);
                cr_assert_eq(rc_of(resp), 0x142, "oversize: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, tiny, sizeof(tiny), resp, sizeof(resp));
                cr_assert_eq(rc_of(resp), 0x142, "undersize: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, unknown, sizeof(unknown), resp, sizeof(resp));
                cr_assert_eq(rc_of(resp), 0x143, "unknown command: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, clear, sizeof(clear), resp, sizeof(resp));
                cr_assert_eq(rc_of(resp), 0x143, "TPM2_Clear: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, shutdown, sizeof(shutdown), resp, sizeof(resp));
                cr_assert_eq(rc_of(resp), 0x143, "TPM2_Shutdown: rc 0x%x", rc_of(resp));
                n = raw_exchange(data, flush_foreign, sizeof(flush_foreign), resp, sizeof(resp));
                cr_assert_eq(rc_of(resp), 0x1CB, "FlushContext of a handle not ours: rc 0x%x", rc_of(resp));
                /* Half a command, then the peer goes away: nothing is stuck. */
                int fd = raw_connect(data);
                cr_assert_eq(send(fd, huge, 6, MSG_NOSIGNAL), 6);
                close(fd);
        }

        /* Still the same swtpm, still working, PCRs still those of the log; the AK still there. */
        cr_assert_eq(status_pid("c1"), pid, "swtpm was restarted or replaced");
        TOOL_OK("c1", "tpm2_getrandom", "--hex", "16");
        TOOL_OK("c1", "tpm2_readpublic", "-c", "0x81800001");
        assert_pcrs_match_log("c1", log);
        cr_assert_eq(vtpmd_quote("c1"), 0, "vtpmd's Quote failed");

        /* A new vtpmd (after kill -9) makes the endpoint again in front of the re-adopted swtpm. */
        cr_assert_eq(kill(vd.pid, SIGKILL), 0);
        harness_wait(&vd, 10000, NULL);
        vd.pid = 0;
        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not restart");
        for (int waited = 0; status_pid("c1") != pid; waited += 100) {
                cr_assert_lt(waited, 30000, "swtpm not re-adopted");
                usleep(100000);
        }
        TOOL_OK("c1", "tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key2.ctx");
        TOOL_REFUSED("c1", "tpm2_clear");
        assert_pcrs_match_log("c1", log);
}

/* Two clients at once on one endpoint: each sees only its own transient handles. */
Test(vtpmd_rm, two_clients_each_see_their_own_handles)
{
        ESYS_CONTEXT *a;
        ESYS_TR obj;
        TPM2_HANDLE h = 0, list[16];
        TPM2B_NAME *name_a = NULL;
        int sync_fd[2], back_fd[2], st = 0;
        pid_t child;
        char c;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        (void)create_ok("c2", NULL);

        a = esys_open("c2");
        cr_assert(a, "ESYS on the endpoint");
        cr_assert_eq(primary(a, ESYS_TR_RH_OWNER, &obj, &h), TSS2_RC_SUCCESS);
        cr_assert_eq(h, 0x80FFFFFF, "first virtual handle is 0x%x", h);
        cr_assert_eq(name_of_raw(a, h, &name_a), TSS2_RC_SUCCESS);

        cr_assert_eq(pipe(sync_fd), 0);
        cr_assert_eq(pipe(back_fd), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                close(sync_fd[1]);
                close(back_fd[0]);
                /* Client B: two objects of its own; A's are invisible and unusable. */
                ESYS_CONTEXT *b = esys_open("c2");
                ESYS_TR o1, o2;
                TPM2_HANDLE h1 = 0, h2 = 0, l[16];
                TPM2B_NAME *nb = NULL;
                int code = 0;
                if (!b)
                        _exit(10);
                if (primary(b, ESYS_TR_RH_ENDORSEMENT, &o1, &h1) != TSS2_RC_SUCCESS ||
                    primary(b, ESYS_TR_RH_NULL, &o2, &h2) != TSS2_RC_SUCCESS)
                        _exit(11);
                if (h1 != 0x80FFFFFF || h2 != 0x80FFFFFE)
                        _exit(12);
                if (transient_handles(b, l, 16) != 2)
                        _exit(13);
                if (name_of_raw(b, 0x80FFFFFF, &nb) != TSS2_RC_SUCCESS)
                        _exit(14);
                if (nb->size == name_a->size && memcmp(nb->name, name_a->name, nb->size) == 0)
                        code = 15; /* B reached A's object */
                free(nb);
                if (write(back_fd[1], "b", 1) != 1)
                        _exit(16);
                if (read(sync_fd[0], &c, 1) != 1) /* hold the objects while A looks */
                        _exit(17);
                esys_close(b);
                _exit(code);
        }
        close(sync_fd[0]);
        close(back_fd[1]); /* B's end only: a B that dies early gives EOF here, not a hang */
        cr_assert_eq(read(back_fd[0], &c, 1), 1, "client B failed early");
        /* A, while B holds two objects: one handle, its own; B's second handle is invalid here. */
        cr_assert_eq(transient_handles(a, list, 16), 1, "A sees other clients' handles");
        cr_assert_eq(list[0], 0x80FFFFFF);
        {
                TPM2B_NAME *n = NULL;
                cr_assert_neq(name_of_raw(a, 0x80FFFFFE, &n), TSS2_RC_SUCCESS, "B's handle is valid for A");
                cr_assert_eq(name_of_raw(a, 0x80FFFFFF, &n), TSS2_RC_SUCCESS);
                cr_assert(n->size == name_a->size && memcmp(n->name, name_a->name, n->size) == 0,
                          "A's handle now names another object");
                free(n);
        }
        /* A third client (a tool process) sees nothing at all and cannot use A's handle. */
        {
                char *out = NULL;
                const char *getcap[] = {"tpm2_getcap", "handles-transient", NULL};
                const char *readpub[] = {"tpm2_readpublic", "-c", "0x80FFFFFF", NULL};
                cr_assert_eq(tool("c2", &out, NULL, getcap), 0);
                cr_assert(!strstr(out, "0x80"), "a new client sees transient handles: %s", out);
                cr_assert_neq(tool("c2", NULL, NULL, readpub), 0, "A's handle is valid for a tool process");
        }
        cr_assert_eq(write(sync_fd[1], "a", 1), 1);
        cr_assert_eq(waitpid(child, &st, 0), child);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client B failed (status 0x%x)", (unsigned)st);
        /* B is gone (its space dropped); A's object still works. */
        cr_assert_eq(transient_handles(a, list, 16), 1);
        {
                ESYS_TR t = ESYS_TR_NONE; /* the name lookups above may have closed obj's ESYS_TR */
                cr_assert_eq(Esys_TR_FromTPMPublic(a, 0x80FFFFFF, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t),
                             TSS2_RC_SUCCESS);
                cr_assert_eq(Esys_FlushContext(a, t), TSS2_RC_SUCCESS);
        }
        cr_assert_eq(transient_handles(a, list, 16), 0, "FlushContext did not free the handle");
        free(name_a);
        esys_close(a);
}

/* vtpmd's own Quote interleaved with a container's session-heavy workload: both succeed. */
Test(vtpmd_rm, vtpmd_quotes_interleave_with_container_sessions)
{
        char script[4096];
        char *log;
        harness_proc_t loop = {0};
        int st = -1, quotes = 0;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        log = create_ok("c3", NULL);
        snprintf(script, sizeof(script),
                 "set -e; cd %s; export TPM2TOOLS_TCTI=%s; for i in 1 2 3 4 5 6; do "
                 "tpm2_createprimary -Q -C o -G ecc -c p$i.ctx; "
                 "tpm2_create -Q -C p$i.ctx -G ecc -u k$i.pub -r k$i.priv; "
                 "tpm2_load -Q -C p$i.ctx -u k$i.pub -r k$i.priv -c k$i.ctx; "
                 "tpm2_startauthsession -Q --policy-session -S s$i.ctx; "
                 "tpm2_policypcr -Q -S s$i.ctx -l sha256:16; "
                 "tpm2_flushcontext s$i.ctx; "
                 "tpm2_quote -Q -c k$i.ctx -l sha256:11 -q 0102 -m m$i -s s$i; done",
                 work, tcti_of("c3"));
        char *argv[] = {"/bin/sh", "-c", script, NULL};
        cr_assert_eq(harness_spawn(argv, harness_path(dir, "workload.log"), &loop), 0);
        while (harness_alive(&loop)) {
                cr_assert_eq(vtpmd_quote("c3"), 0, "vtpmd's Quote failed during the workload");
                quotes++;
        }
        cr_assert_eq(harness_wait(&loop, 60000, &st), 0);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                harness_dump_log(&loop);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the container workload failed (status 0x%x)", (unsigned)st);
        fprintf(stderr, "test-vtpmd-rm: %d vtpmd Quotes interleaved with the container workload\n", quotes);
        cr_assert_geq(quotes, 2);
        free(loop.log);
        assert_pcrs_match_log("c3", log);
}

/* An unrestricted ECC P-256 signing primary (owner hierarchy). */
static TSS2_RC signer(ESYS_CONTEXT *ctx, ESYS_TR *ret)
{
        TPM2B_SENSITIVE_CREATE in_s = {0};
        TPM2B_PUBLIC in_p = {
                .publicArea = {.type = TPM2_ALG_ECC,
                               .nameAlg = TPM2_ALG_SHA256,
                               .objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT |
                                                   TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                                   TPMA_OBJECT_SENSITIVEDATAORIGIN,
                               .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_NULL},
                                                        .scheme = {.scheme = TPM2_ALG_ECDSA,
                                                                   .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
                                                        .curveID = TPM2_ECC_NIST_P256,
                                                        .kdf = {.scheme = TPM2_ALG_NULL}}},
        };
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION pcrs = {0};

        return Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in_s, &in_p,
                                  &outside, &pcrs, ret, NULL, NULL, NULL, NULL);
}

/* TPM2_Quote of PCRs 11, 12 with key (the key's private part must be loaded in swtpm for it). */
static TSS2_RC quote_with(ESYS_CONTEXT *ctx, ESYS_TR key)
{
        TPM2B_DATA qual = {.size = 4, .buffer = {1, 2, 3, 4}};
        TPML_PCR_SELECTION sel = {
                .count = 1, .pcrSelections = {{.hash = TPM2_ALG_SHA256, .sizeofSelect = 3, .pcrSelect = {0, 0x18, 0}}}};
        TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
        TPM2B_ATTEST *att = NULL;
        TPMT_SIGNATURE *sig = NULL;
        TSS2_RC rc =
                Esys_Quote(ctx, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qual, &scheme, &sel, &att, &sig);

        free(att);
        free(sig);
        return rc;
}

/*
 * Lazy eviction (rm.h): client A's key stays loaded in swtpm after A's
 * commands; client B (another process) then needs all three object slots of
 * swtpm at once and vtpmd quotes in between. A's key must still work
 * afterwards, B must never reach A's objects (neither by virtual nor by
 * swtpm's own handles), and B's objects, loaded when B exits, must not stay
 * behind: A can fill every slot afterwards.
 */
Test(vtpmd_rm, lazy_eviction_keeps_clients_apart)
{
        ESYS_CONTEXT *a;
        ESYS_TR ka, extra[3];
        TPM2B_NAME *name_a = NULL;
        TPM2_HANDLE list[16];
        int go_fd[2], back_fd[2], st = 0;
        pid_t child;
        char c;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        (void)create_ok("c5", NULL);
        a = esys_open("c5");
        cr_assert(a, "ESYS on the endpoint");
        cr_assert_eq(signer(a, &ka), TSS2_RC_SUCCESS);
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's first Quote");
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's second Quote (key still loaded)");
        cr_assert_eq(Esys_TR_GetName(a, ka, &name_a), TSS2_RC_SUCCESS);

        cr_assert_eq(pipe(go_fd), 0);
        cr_assert_eq(pipe(back_fd), 0);
        child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                /* Client B: three objects loaded together (every swtpm slot), used across vtpmd's and A's turns. */
                ESYS_CONTEXT *b;
                ESYS_TR o[3], kb;
                TPM2_HANDLE h[3], l[16];
                TPM2B_NAME *n = NULL;
                close(go_fd[1]);
                close(back_fd[0]);
                b = esys_open("c5");
                if (!b)
                        _exit(10);
                for (int i = 0; i < 3; i++)
                        if (primary(b, ESYS_TR_RH_OWNER, &o[i], &h[i]) != TSS2_RC_SUCCESS)
                                _exit(11);
                if (h[0] != 0x80FFFFFF || h[1] != 0x80FFFFFE || h[2] != 0x80FFFFFD)
                        _exit(12);
                if (transient_handles(b, l, 16) != 3)
                        _exit(13);
                /* A's object is not B's 0x80FFFFFF, and swtpm's own handles name nothing for B. */
                if (name_of_raw(b, 0x80FFFFFF, &n) != TSS2_RC_SUCCESS)
                        _exit(14);
                if (n->size == name_a->size && memcmp(n->name, name_a->name, n->size) == 0)
                        _exit(15);
                free(n);
                for (TPM2_HANDLE ph = 0x80000000; ph <= 0x80000002; ph++) {
                        n = NULL;
                        if (name_of_raw(b, ph, &n) == TSS2_RC_SUCCESS)
                                _exit(16); /* a TPM handle reached through the RM */
                }
                if (write(back_fd[1], "1", 1) != 1 || read(go_fd[0], &c, 1) != 1)
                        _exit(17);
                /* vtpmd and A had the TPM meanwhile: B's three objects come back, a signing key needs a slot too. */
                for (int i = 0; i < 3; i++) {
                        n = NULL; /* (name_of_raw closes o[0]'s ESYS_TR: ESYS hands out one per TPM handle) */
                        if (name_of_raw(b, h[i], &n) != TSS2_RC_SUCCESS)
                                _exit(19);
                        free(n);
                }
                if (Esys_TR_FromTPMPublic(b, h[2], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &o[2]) !=
                            TSS2_RC_SUCCESS ||
                    Esys_FlushContext(b, o[2]) != TSS2_RC_SUCCESS)
                        _exit(20);
                if (signer(b, &kb) != TSS2_RC_SUCCESS || quote_with(b, kb) != TSS2_RC_SUCCESS)
                        _exit(21);
                if (transient_handles(b, l, 16) != 3)
                        _exit(22);
                if (write(back_fd[1], "2", 1) != 1 || read(go_fd[0], &c, 1) != 1)
                        _exit(23);
                /* Exit with three objects loaded in swtpm (B is the owner): they must be flushed for it. */
                if (quote_with(b, kb) != TSS2_RC_SUCCESS || name_of_raw(b, h[0], &n) != TSS2_RC_SUCCESS)
                        _exit(24);
                _exit(0);
        }
        close(go_fd[0]);
        close(back_fd[1]);
        cr_assert_eq(read(back_fd[0], &c, 1), 1, "client B failed early");
        /* B holds every slot: vtpmd's Quote, then A's key again (B's objects are evicted, A's come back). */
        cr_assert_eq(vtpmd_quote("c5"), 0, "vtpmd's Quote while B held every object slot");
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's key after B filled the TPM");
        cr_assert_eq(transient_handles(a, list, 16), 1, "A sees other clients' handles");
        cr_assert_eq(list[0], 0x80FFFFFF);
        cr_assert_eq(write(go_fd[1], "g", 1), 1);
        if (read(back_fd[0], &c, 1) != 1) {
                (void)waitpid(child, &st, 0);
                cr_assert_fail("client B failed after A's turn (status 0x%x)", (unsigned)st);
        }
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's key after B's second turn");
        cr_assert_eq(vtpmd_quote("c5"), 0, "vtpmd's Quote after A's turn");
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's key after vtpmd's Quote");
        cr_assert_eq(write(go_fd[1], "g", 1), 1);
        cr_assert_eq(waitpid(child, &st, 0), child);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client B failed (status 0x%x)", (unsigned)st);
        close(go_fd[1]);
        close(back_fd[0]);

        /* B left with its objects loaded: none of them may stay behind. A fills every slot in one command. */
        for (int i = 0; i < 2; i++)
                cr_assert_eq(primary(a, ESYS_TR_RH_OWNER, &extra[i], NULL), TSS2_RC_SUCCESS, "A's object %d", i);
        cr_assert_eq(signer(a, &extra[2]), TSS2_RC_SUCCESS, "a third object for A (a slot left over from B?)");
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS, "A's first key among four");
        cr_assert_eq(quote_with(a, extra[2]), TSS2_RC_SUCCESS);
        cr_assert_eq(transient_handles(a, list, 16), 4);
        cr_assert_eq(vtpmd_quote("c5"), 0, "vtpmd's Quote after A filled the TPM");
        for (int i = 0; i < 3; i++)
                cr_assert_eq(Esys_FlushContext(a, extra[i]), TSS2_RC_SUCCESS);
        cr_assert_eq(quote_with(a, ka), TSS2_RC_SUCCESS);
        cr_assert_eq(Esys_FlushContext(a, ka), TSS2_RC_SUCCESS);
        cr_assert_eq(transient_handles(a, list, 16), 0, "FlushContext did not free the handles");
        free(name_a);
        esys_close(a);
}

/* --frontend vtpm-proxy: the same vTPM as a kernel /dev/tpmrmN. */
Test(vtpmd_rm, vtpm_proxy_frontend)
{
        const char *extra[] = {"--frontend", "vtpm-proxy", NULL};
        char *out = NULL, *p, dev[64];
        int code = -1;

        if (access("/dev/vtpmx", R_OK | W_OK) < 0)
                cr_skip_test("/dev/vtpmx is missing (module tpm_vtpm_proxy not loaded, or no access): %s",
                             strerror(errno));
        cr_assert_eq(start_vtpmd(extra), 0, "vtpmd did not start");
        (void)create_ok("c4", NULL);
        {
                uint8_t *buf = NULL;
                size_t len = 0;
                cr_assert_eq(cscp_file_read(vlog, 1 << 20, &buf, &len), 0);
                out = calloc(1, len + 1);
                memcpy(out, buf, len);
                free(buf);
        }
        p = strstr(out, "exposed as /dev/tpm");
        cr_assert(p, "no device in the log");
        cr_assert_eq(sscanf(p, "exposed as /dev/tpm%*u and %63s", dev), 1);
        {
                char tcti[96];
                char *argv[] = {"tpm2_getrandom", "--hex", "8", NULL};
                snprintf(tcti, sizeof(tcti), "device:%s", dev);
                setenv("TPM2TOOLS_TCTI", tcti, 1);
                cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, NULL, NULL), 0);
                cr_assert_eq(code, 0, "tpm2_getrandom through %s", dev);
        }
        free(out);
}

/* ---- pipelining and clients that do not read -------------------------------------------- */

/* TPM2_GetRandom(bytes) as raw bytes. */
static void getrandom_cmd(uint8_t cmd[12], uint16_t bytes)
{
        static const uint8_t head[10] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B};
        memcpy(cmd, head, sizeof(head));
        cmd[10] = (uint8_t)(bytes >> 8);
        cmd[11] = (uint8_t)bytes;
}

/* Reads one whole response from fd into r (cap bytes); returns its size, 0 on EOF/timeout/garbage. */
static size_t read_response(int fd, uint8_t *r, size_t cap)
{
        size_t got = 0, want = 10;

        while (got < want) {
                ssize_t n = recv(fd, r + got, want - got, 0);
                if (n <= 0)
                        return 0;
                got += (size_t)n;
                if (got == 10 && want == 10) {
                        want = (size_t)r[2] << 24 | (size_t)r[3] << 16 | (size_t)r[4] << 8 | r[5];
                        if (want < 10 || want > cap)
                                return 0;
                }
        }
        return got;
}

/*
 * A client may send several commands before reading: the endpoint answers each
 * whole and in order on that connection (a TPM is serial; tpm2-tss never does this,
 * other stacks and hand-written clients may).
 */
Test(vtpmd_rm, pipelined_commands_are_answered_in_order)
{
        enum { N = 16 };
        uint8_t cmds[N][12], r[256];
        int fd;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        (void)create_ok("p1", NULL);
        fd = raw_connect(endpoint_of("p1", "tpm.sock"));
        /* N commands in one send, each asking for a different number of bytes. */
        for (int i = 0; i < N; i++)
                getrandom_cmd(cmds[i], (uint16_t)(i + 1));
        cr_assert_eq(send(fd, cmds, sizeof(cmds), MSG_NOSIGNAL), (ssize_t)sizeof(cmds));
        for (int i = 0; i < N; i++) {
                size_t n = read_response(fd, r, sizeof(r));
                cr_assert_gt(n, 0, "answer %d of %d missing", i + 1, N);
                cr_assert_eq(rc_of(r), 0, "answer %d: rc 0x%x", i + 1, rc_of(r));
                /* TPM2B_DIGEST randomBytes: its size says which command this answers. */
                cr_assert_eq(n, 12u + (size_t)i + 1, "answer %d has %zu bytes: out of order or merged", i + 1, n);
                cr_assert_eq((size_t)r[10] << 8 | r[11], (size_t)i + 1);
        }
        close(fd);
}

/*
 * A client that sends commands and never reads the answers fills its socket
 * buffer; the endpoint then stops reading from it (endpoint.c) and keeps
 * serving everyone else: another client's commands and vtpmd's own Quote
 * still answer. When the stuck client goes away, nothing is left behind.
 */
Test(vtpmd_rm, a_client_that_never_reads_does_not_stall_the_others)
{
        uint8_t cmd[12], r[256];
        int stuck, other, flags;
        size_t sent = 0;

        cr_assert_eq(start_vtpmd(NULL), 0, "vtpmd did not start");
        (void)create_ok("s1", NULL);
        stuck = raw_connect(endpoint_of("s1", "tpm.sock"));
        {
                int small = 4096;
                (void)setsockopt(stuck, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        }
        flags = fcntl(stuck, F_GETFL);
        cr_assert_eq(fcntl(stuck, F_SETFL, flags | O_NONBLOCK), 0);
        getrandom_cmd(cmd, 48);
        /* Send until our own send buffer is full too: by then the endpoint has stopped reading. */
        for (int spins = 0; spins < 2000; spins++) {
                ssize_t n = send(stuck, cmd, sizeof(cmd), MSG_NOSIGNAL);
                if (n == (ssize_t)sizeof(cmd)) {
                        sent++;
                        continue;
                }
                cr_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "send: %s", strerror(errno));
                usleep(2000);
                if (send(stuck, cmd, sizeof(cmd), MSG_NOSIGNAL) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                sent++;
        }
        cr_assert_gt(sent, 100, "only %zu commands were taken", sent);
        /* Another client is served promptly (SO_RCVTIMEO 30 s in raw_connect: a stall fails the read). */
        for (int i = 0; i < 5; i++) {
                other = raw_connect(endpoint_of("s1", "tpm.sock"));
                getrandom_cmd(cmd, 8);
                cr_assert_eq(send(other, cmd, sizeof(cmd), MSG_NOSIGNAL), (ssize_t)sizeof(cmd));
                cr_assert_eq(read_response(other, r, sizeof(r)), 20u, "a second client is not answered");
                cr_assert_eq(rc_of(r), 0);
                close(other);
        }
        /* tpm2-tools and vtpmd's own quote go through the same endpoint thread. */
        {
                const char *getrand[] = {"tpm2_getrandom", "--hex", "8", NULL};
                cr_assert_eq(tool("s1", NULL, NULL, getrand), 0, "tpm2_getrandom while a client is stuck");
        }
        cr_assert_eq(vtpmd_quote("s1"), 0, "vtpmd's quote while a client is stuck");
        /* The stuck client reads a little: its answers are whole and in order. */
        cr_assert_eq(fcntl(stuck, F_SETFL, flags), 0);
        for (int i = 0; i < 3; i++) {
                cr_assert_eq(read_response(stuck, r, sizeof(r)), 60u, "answer %d to the stuck client", i + 1);
                cr_assert_eq(rc_of(r), 0);
        }
        close(stuck);
        /* Gone: the vTPM still answers, and Status still works. */
        other = raw_connect(endpoint_of("s1", "tpm.sock"));
        getrandom_cmd(cmd, 8);
        cr_assert_eq(send(other, cmd, sizeof(cmd), MSG_NOSIGNAL), (ssize_t)sizeof(cmd));
        cr_assert_eq(read_response(other, r, sizeof(r)), 20u);
        close(other);
        cr_assert_gt(status_pid("s1"), 0);
}
