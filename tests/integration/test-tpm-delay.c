/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/tpm-delay (the slow test-rig host TPM) in front of a real swtpm:
 * commands reach the swtpm and come back unchanged, each response is held at
 * least the set time, commands from several clients run one at a time, the
 * control channel is relayed, bad input is refused without stopping the
 * proxy, and SIGTERM stops it cleanly. Timing is checked as lower bounds only.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "harness.h"

static char *dir;
static harness_swtpm_t sw;
static harness_proc_t proxy;
static char *proxy_sock, *proxy_tcti, *proxy_log;

static void setup(void)
{
        int r;

        dir = harness_tmpdir();
        r = harness_swtpm_start(harness_path(dir, "swtpm"), &sw);
        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
        proxy_sock = harness_path(dir, "slow.sock");
        proxy_log = harness_path(dir, "tpm-delay.log");
        if (asprintf(&proxy_tcti, "swtpm:path=%s", proxy_sock) < 0)
                cr_assert_fail("asprintf");
        harness_keep(proxy_tcti);
}

static void teardown(void)
{
        if (proxy.pid > 0)
                (void)harness_stop(&proxy, SIGKILL, 5000);
        free(proxy.log);
        proxy = (harness_proc_t){0};
        harness_swtpm_stop(&sw);
        free(dir);
        dir = NULL;
}

TestSuite(tpm_delay, .init = setup, .fini = teardown, .timeout = 120);

static char *tool(void)
{
        return harness_path(harness_build_dir(), "tpm-delay");
}

/* Starts the proxy in front of sw with the given --delay-ms (and more arguments), waits for its socket. */
static void proxy_start(const char *delay_ms, const char *extra)
{
        char *argv[] = {tool(),       "--listen",       proxy_sock,    "--upstream", sw.sock,
                        "--delay-ms", (char *)delay_ms, (char *)extra, NULL};
        int r;

        r = harness_spawn(argv, proxy_log, &proxy);
        cr_assert_eq(r, 0, "tpm-delay did not start: %s", strerror(-r));
        r = harness_wait_path(proxy_sock, 10000);
        if (r < 0)
                harness_dump_log(&proxy);
        cr_assert_eq(r, 0, "tpm-delay did not create %s", proxy_sock);
}

/* Stops the proxy with SIGTERM: it must exit 0 (under ASan: without leaks or errors). */
static void proxy_stop_clean(void)
{
        int status = harness_stop(&proxy, SIGTERM, 10000);

        proxy.pid = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                harness_dump_log(&proxy);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tpm-delay did not exit 0 on SIGTERM (status %d)",
                  status);
}

static ESYS_CONTEXT *esys_open(const char *tcti, TSS2_TCTI_CONTEXT **ret_tcti)
{
        ESYS_CONTEXT *ctx = NULL;
        TSS2_RC rc;

        rc = Tss2_TctiLdr_Initialize(tcti, ret_tcti);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "TCTI %s: 0x%x", tcti, rc);
        rc = Esys_Initialize(&ctx, *ret_tcti, NULL);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "Esys_Initialize: 0x%x", rc);
        return ctx;
}

static void esys_close(ESYS_CONTEXT **ctx, TSS2_TCTI_CONTEXT **tcti)
{
        Esys_Finalize(ctx);
        Tss2_TctiLdr_Finalize(tcti);
}

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pcr_read_sha256(ESYS_CONTEXT *ctx, unsigned pcr, uint8_t out[32])
{
        TPML_PCR_SELECTION sel = {.count = 1,
                                  .pcrSelections = {{.hash = TPM2_ALG_SHA256, .sizeofSelect = 3, .pcrSelect = {0}}}};
        TPML_PCR_SELECTION *osel = NULL;
        TPML_DIGEST *vals = NULL;
        uint32_t counter;
        TSS2_RC rc;

        sel.pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
        rc = Esys_PCR_Read(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &osel, &vals);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "PCR_Read: 0x%x", rc);
        cr_assert_eq(vals->count, 1);
        cr_assert_eq(vals->digests[0].size, 32);
        memcpy(out, vals->digests[0].buffer, 32);
        Esys_Free(osel);
        Esys_Free(vals);
}

static void pcr_extend_sha256(ESYS_CONTEXT *ctx, unsigned pcr, const uint8_t digest[32])
{
        TPML_DIGEST_VALUES v = {.count = 1, .digests = {{.hashAlg = TPM2_ALG_SHA256}}};
        TSS2_RC rc;

        memcpy(v.digests[0].digest.sha256, digest, 32);
        rc = Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "PCR_Extend: 0x%x", rc);
}

static void sha256_extend(uint8_t pcr[32], const uint8_t digest[32])
{
        uint8_t buf[64];
        unsigned len = 32;

        memcpy(buf, pcr, 32);
        memcpy(buf + 32, digest, 32);
        cr_assert_eq(EVP_Digest(buf, sizeof(buf), pcr, &len, EVP_sha256(), NULL), 1);
}

Test(tpm_delay, forwards_to_the_real_tpm_and_holds_each_response)
{
        TSS2_TCTI_CONTEXT *tcti = NULL, *dtcti = NULL;
        ESYS_CONTEXT *ctx, *direct;
        TPM2B_DIGEST *rnd = NULL;
        uint8_t before[32], expect[32], via_proxy[32], via_swtpm[32], digest[32];
        double t0, took;
        TSS2_RC rc;

        proxy_start("150", NULL);
        ctx = esys_open(proxy_tcti, &tcti);

        t0 = now_ms();
        rc = Esys_GetRandom(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 16, &rnd);
        took = now_ms() - t0;
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "GetRandom through the proxy: 0x%x", rc);
        cr_assert_eq(rnd->size, 16);
        Esys_Free(rnd);
        cr_expect_geq(took, 150.0, "GetRandom answered after %.1f ms, under the 150 ms delay", took);

        /* A PCR extended through the proxy has moved in the swtpm behind it, by exactly this digest. */
        pcr_read_sha256(ctx, 16, before);
        memset(digest, 0xa5, sizeof(digest));
        t0 = now_ms();
        pcr_extend_sha256(ctx, 16, digest);
        took = now_ms() - t0;
        cr_expect_geq(took, 150.0, "PCR_Extend answered after %.1f ms, under the 150 ms delay", took);
        pcr_read_sha256(ctx, 16, via_proxy);
        esys_close(&ctx, &tcti);

        memcpy(expect, before, 32);
        sha256_extend(expect, digest);
        cr_assert(memcmp(via_proxy, expect, 32) == 0, "PCR 16 through the proxy is not the extended value");
        direct = esys_open(sw.tcti, &dtcti);
        pcr_read_sha256(direct, 16, via_swtpm);
        esys_close(&direct, &dtcti);
        cr_assert(memcmp(via_swtpm, expect, 32) == 0, "the swtpm behind the proxy did not see the extend");
        proxy_stop_clean();
}

struct burst {
        const char *tcti;
        int n;
        int failures;
};

static void *burst_main(void *arg)
{
        struct burst *b = arg;
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *ctx = NULL;

        if (Tss2_TctiLdr_Initialize(b->tcti, &tcti) != TSS2_RC_SUCCESS ||
            Esys_Initialize(&ctx, tcti, NULL) != TSS2_RC_SUCCESS) {
                b->failures = b->n;
                Tss2_TctiLdr_Finalize(&tcti);
                return NULL;
        }
        for (int i = 0; i < b->n; i++) {
                TPM2B_DIGEST *rnd = NULL;

                if (Esys_GetRandom(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &rnd) != TSS2_RC_SUCCESS ||
                    rnd->size != 8)
                        b->failures++;
                Esys_Free(rnd);
        }
        Esys_Finalize(&ctx);
        Tss2_TctiLdr_Finalize(&tcti);
        return NULL;
}

Test(tpm_delay, commands_from_several_clients_run_one_at_a_time)
{
        enum { CLIENTS = 4, EACH = 3, DELAY = 100 };
        struct burst b[CLIENTS];
        pthread_t t[CLIENTS];
        double t0, took;

        proxy_start("100", NULL);
        t0 = now_ms();
        for (int i = 0; i < CLIENTS; i++) {
                b[i] = (struct burst){.tcti = proxy_tcti, .n = EACH};
                cr_assert_eq(pthread_create(&t[i], NULL, burst_main, &b[i]), 0);
        }
        for (int i = 0; i < CLIENTS; i++)
                pthread_join(t[i], NULL);
        took = now_ms() - t0;
        for (int i = 0; i < CLIENTS; i++)
                cr_assert_eq(b[i].failures, 0, "client %d: %d of %d commands failed", i, b[i].failures, EACH);
        /* Serial: 12 held responses cannot overlap, so the whole burst takes at least 12 delays. */
        cr_expect_geq(took, (double)(CLIENTS * EACH * DELAY), "%d commands from %d clients took %.1f ms",
                      CLIENTS * EACH, CLIENTS, took);
        proxy_stop_clean();
}

/* One control command on a control socket: u32 code (+ body) out, `want` bytes back. */
static void ctrl_command(const char *path, uint32_t code, const uint8_t *body, size_t body_len, uint8_t *resp,
                         size_t want)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        uint8_t req[64];
        size_t got = 0;
        int fd;

        cr_assert_lt(strlen(path), sizeof(sa.sun_path));
        cr_assert_leq(4 + body_len, sizeof(req));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path, strerror(errno));
        req[0] = (uint8_t)(code >> 24);
        req[1] = (uint8_t)(code >> 16);
        req[2] = (uint8_t)(code >> 8);
        req[3] = (uint8_t)code;
        if (body_len)
                memcpy(req + 4, body, body_len);
        cr_assert_eq(write(fd, req, 4 + body_len), (ssize_t)(4 + body_len));
        while (got < want) {
                ssize_t n = read(fd, resp + got, want - got);
                cr_assert_gt(n, 0, "control response from %s ended after %zu of %zu bytes", path, got, want);
                got += (size_t)n;
        }
        close(fd);
}

Test(tpm_delay, control_channel_reaches_the_swtpm)
{
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *ctx;
        uint8_t caps_proxy[8], caps_direct[8], res[4], digest[32], value[32], zero[32] = {0};
        uint8_t init_flags[4] = {0, 0, 0, 0};
        char *pctrl = harness_path(dir, "slow.sock.ctrl"), *dctrl = harness_path(sw.dir, "tpm.sock.ctrl");
        TSS2_RC rc;

        proxy_start("20", NULL);

        /* CMD_GET_CAPABILITY (1): the same answer through the proxy as from swtpm itself. */
        ctrl_command(pctrl, 1, NULL, 0, caps_proxy, sizeof(caps_proxy));
        ctrl_command(dctrl, 1, NULL, 0, caps_direct, sizeof(caps_direct));
        cr_assert(memcmp(caps_proxy, caps_direct, sizeof(caps_proxy)) == 0, "CMD_GET_CAPABILITY differs");
        cr_assert(memcmp(caps_proxy, zero, 4) == 0, "CMD_GET_CAPABILITY result is not 0");

        /* CMD_INIT (2) through the proxy power-cycles the swtpm: PCR 10 goes back to zero. */
        ctx = esys_open(proxy_tcti, &tcti);
        memset(digest, 0x3c, sizeof(digest));
        pcr_extend_sha256(ctx, 10, digest);
        pcr_read_sha256(ctx, 10, value);
        cr_assert(memcmp(value, zero, 32) != 0);
        ctrl_command(pctrl, 2, init_flags, sizeof(init_flags), res, sizeof(res));
        cr_assert(memcmp(res, zero, 4) == 0, "CMD_INIT through the proxy failed");
        rc = Esys_Startup(ctx, TPM2_SU_CLEAR);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "Startup after CMD_INIT: 0x%x", rc);
        pcr_read_sha256(ctx, 10, value);
        esys_close(&ctx, &tcti);
        cr_assert(memcmp(value, zero, 32) == 0, "PCR 10 survived a CMD_INIT sent through the proxy");
        proxy_stop_clean();
}

Test(tpm_delay, bad_commands_are_refused_and_the_proxy_goes_on)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        /* tag TPM_ST_NO_SESSIONS, size 0xffffffff, GetRandom */
        const uint8_t huge[10] = {0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x7b};
        const uint8_t tiny[10] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x7b};
        const uint8_t *bad[] = {huge, tiny};
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *ctx;
        TPM2B_DIGEST *rnd = NULL;
        TSS2_RC rc;

        proxy_start("0", NULL);
        memcpy(sa.sun_path, proxy_sock, strlen(proxy_sock) + 1);
        for (size_t i = 0; i < 2; i++) {
                uint8_t resp[10];
                ssize_t n;
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                cr_assert_geq(fd, 0);
                cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                cr_assert_eq(write(fd, bad[i], 10), 10);
                n = read(fd, resp, sizeof(resp));
                cr_assert_eq(n, 10, "no TPM error response to a command of a bad size");
                /* TPM_RC_COMMAND_SIZE */
                cr_assert(resp[6] == 0 && resp[7] == 0 && resp[8] == 0x01 && resp[9] == 0x42,
                          "response code %02x%02x%02x%02x", resp[6], resp[7], resp[8], resp[9]);
                n = read(fd, resp, sizeof(resp));
                cr_assert_eq(n, 0, "the connection stays open after a bad command");
                close(fd);
        }
        /* A client that goes away mid-command does not stop the proxy either. */
        {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                cr_assert_eq(write(fd, huge, 6), 6);
                close(fd);
        }
        cr_assert(harness_alive(&proxy), "tpm-delay died on bad input");
        ctx = esys_open(proxy_tcti, &tcti);
        rc = Esys_GetRandom(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &rnd);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "GetRandom after bad input: 0x%x", rc);
        Esys_Free(rnd);
        esys_close(&ctx, &tcti);
        proxy_stop_clean();
}

static bool log_has(const char *what)
{
        char buf[4096];
        FILE *f = fopen(proxy_log, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return strstr(buf, what) != NULL;
}

Test(tpm_delay, sigterm_stops_cleanly_and_removes_the_sockets)
{
        struct stat st;

        proxy_start("100", NULL);
        /* SIGUSR1 prints the counts and the proxy goes on. */
        cr_assert_eq(kill(proxy.pid, SIGUSR1), 0);
        for (int i = 0; i < 500 && !log_has(" commands ("); i++)
                usleep(10000);
        cr_assert(log_has(" commands ("), "no statistics after SIGUSR1");
        cr_assert(harness_alive(&proxy), "SIGUSR1 stopped tpm-delay");
        proxy_stop_clean();
        cr_assert_neq(lstat(proxy_sock, &st), 0, "%s is left behind", proxy_sock);
        cr_assert_neq(lstat(harness_path(dir, "slow.sock.ctrl"), &st), 0, "the control socket is left behind");
}

Test(tpm_delay, usage)
{
        char *help[] = {tool(), "--help", NULL};
        char *bad_delay[] = {tool(), "--listen", "x", "--upstream", "y", "--delay-ms", "-5", NULL};
        char *bad_cmd[] = {tool(), "--listen", "x", "--upstream", "y", "--commands", "Quote,NoSuchCommand", NULL};
        char *missing[] = {tool(), "--delay-ms", "5", NULL};
        char *out = NULL, *err = NULL;
        int code;

        cr_assert_eq(harness_run(help, 10000, &code, &out, &err), 0);
        cr_assert_eq(code, 0);
        cr_assert(strstr(out, "--delay-ms") && strstr(out, "PATH.ctrl"), "--help does not describe the options");
        free(out);
        free(err);
        char **bad[] = {bad_delay, bad_cmd, missing};
        for (size_t i = 0; i < 3; i++) {
                out = err = NULL;
                cr_assert_eq(harness_run(bad[i], 10000, &code, &out, &err), 0);
                cr_assert_eq(code, 2, "bad usage %zu exited %d", i, code);
                cr_assert(err && strlen(err) > 0, "bad usage %zu: no message", i);
                free(out);
                free(err);
        }
}
