/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cscp challenge` / `cscp verify` against a TDX host end to end: attestd --rot tdx
 * over tests/helpers/tdx-emu, a FUSE emulator of a TDX guest's Linux files that
 * signs "quotes" with a TEST CA. THIS IS NOT TDX: it exercises the protocol and the
 * verifier (lib/evidence.c) with a test trust anchor, nothing about TDX hardware.
 *
 * The emulator starts with MRTD and RTMR0..2 of the COS fixture, whose CCEL
 * (../shared/fixtures/tdx/go-tdx-guest) attestd serves as LOG_CCEL:
 *  - a host challenge with --tdx-root <emulator root.pem> is trusted (REPORTDATA =
 *    the batch root, RTMRs = CCEL replay); the saved evidence verifies offline with
 *    `cscp verify`, and fails host-batch-proof under another nonce;
 *  - without --tdx-root: exit 2 naming it; with the Intel root: host-tdx-pck-chain;
 *  - an RTMR2 extended behind attestd's back (no log explains it): host-rtmrs-replay
 *    fails naming RTMR2;
 *  - a container challenge (vtpmd --rot tdx: vtpm-bind records on RTMR2, a swtpm for
 *    vtpmd's master key) is trusted: vtpm-bind, vtpm-ek-cert, container quote and
 *    log, and RTMR2 = CCEL + host CEL.
 * Skips (77, with the reason) without the emulator (libfuse3, /dev/fuse) or without
 * ../shared/fixtures.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/rand.h>

#include "error.h"
#include "harness.h"
#include "tdx-guest.h"
#include "util.h"
#include "vctl.h"

static const char mrtd_hex[] =
        "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a";
static const char rtmr_hex[3][97] = {
        "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
        "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
        "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"};

static char *dir, *emu, *pki, *fxdir, *host_log, *state, *run, *ready, *sock_path, *vlog;
static pid_t epid;
static harness_attestd_t ad;
static harness_swtpm_t sw;
static harness_proc_t vd;

static void setup(void)
{
        const char *extra[] = {"--mrtd",    mrtd_hex,  "--rtmr0",   rtmr_hex[0], "--rtmr1",
                               rtmr_hex[1], "--rtmr2", rtmr_hex[2], NULL};

        if (!harness_fixtures_dir())
                cr_skip_test("../shared/fixtures not found: no CCEL to explain the emulator's RTMRs");
        fxdir = harness_path(harness_fixtures_dir(), "tdx/go-tdx-guest");
        if (access(fxdir, R_OK) < 0)
                cr_skip_test("%s absent: no TDX fixtures", fxdir);
        dir = harness_tmpdir();
        emu = harness_path(dir, "emu");
        host_log = harness_path(dir, "no-host.log");
        harness_tdx_emu_start(emu, extra, &epid); /* skips (77) when the emulator cannot run */
        pki = harness_path(dir, "pki");
        cr_assert_eq(harness_mkcerts(pki), 0);
        state = harness_path(dir, "vstate");
        run = harness_path(dir, "r");
        ready = harness_path(dir, "vready");
        sock_path = harness_path(run, "vtpmd.sock");
        vlog = harness_path(dir, "vtpmd.log");
}

static void teardown(void)
{
        harness_attestd_stop(&ad);
        if (vd.pid > 0) {
                int st = harness_stop(&vd, SIGTERM, 20000);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        harness_dump_log(&vd);
                vd.pid = 0;
        }
        if (state)
                harness_kill_swtpms(state, NULL);
        harness_swtpm_stop(&sw);
        if (epid > 0)
                harness_tdx_emu_stop(emu, epid);
        epid = 0;
}

TestSuite(challenge_tdx, .init = setup, .fini = teardown, .timeout = 240);

static const char *const *tdx_args(void)
{
        const char *a[] = {"--rot",
                           "tdx",
                           "--tsm-root",
                           harness_path(emu, "mnt/tsm"),
                           "--tdx-mr-root",
                           harness_path(emu, "mnt/measurements"),
                           "--ccel-table",
                           harness_path(fxdir, "ccel_ccel_table.dat"),
                           "--ccel-data",
                           harness_path(fxdir, "ccel_ccel_data.dat"),
                           NULL};
        return (const char *const *)harness_argv(a, NULL);
}

static void start_attestd(const char *const *more)
{
        const char *none = harness_path(dir, "absent");
        /* --boot-log / --ima-log are not read with --rot tdx (the CCEL; no IMA list is sent) */
        const char *logs[] = {"--host-log", host_log, "--host-proc-log", none, "--systemd-log", none, NULL};
        char **extra = harness_argv(tdx_args(), logs, more ? more : (const char *const[]){NULL}, NULL);
        int r = harness_attestd_start(dir, NULL, pki, extra, &ad);

        if (r < 0)
                harness_dump_log(&ad.proc);
        cr_assert_eq(r, 0, "attestd --rot tdx did not start: %s", cscp_strerror(r));
}

static const char *cscp_bin(void)
{
        return harness_path(harness_build_dir(), "cscp");
}

static const char *emu_root(void)
{
        return harness_path(emu, "state/root.pem");
}

/* cscp CMD ARGS... (NULL-terminated part); returns the exit code, output kept. */
static int cscp(const char *const *part, const char *const *more, char **out, char **err)
{
        const char *bin[] = {cscp_bin(), NULL};
        char **argv = harness_argv(bin, part, more ? more : (const char *const[]){NULL}, NULL);

        return harness_run_kept(argv, 60000, out, err);
}

/* `cscp challenge` over mutual TLS with --json, more arguments after. */
static int challenge(const char *const *more, char **out, char **err)
{
        const char *a[] = {"challenge", "--no-db", "--json", NULL};
        char **part = harness_argv(a, harness_tls_args(ad.addr, pki), NULL);

        return cscp((const char *const *)part, more, out, err);
}

/* "name": "X", "pass": B in the verdict JSON. */
static bool claim_is(const char *json, const char *name, bool pass)
{
        char needle[256];
        const char *p;

        snprintf(needle, sizeof(needle), "\"name\": \"%s\"", name);
        p = strstr(json, needle);
        if (!p) {
                snprintf(needle, sizeof(needle), "\"name\":\"%s\"", name);
                p = strstr(json, needle);
        }
        if (!p)
                return false;
        p += strlen(needle);
        return strncmp(p + strspn(p, " \n,\"pas:"), pass ? "true" : "false", pass ? 4 : 5) == 0;
}

/* The value of "nonce" among the facts. */
static char *fact_nonce(const char *json)
{
        const char *p = strstr(json, "\"nonce\"");
        char *hex;
        size_t n;

        cr_assert_not_null(p, "%s", json);
        p = strchr(p + 7, '"');
        cr_assert_not_null(p);
        p++;
        n = strspn(p, "0123456789abcdef");
        hex = harness_keep(strndup(p, n));
        return hex;
}

Test(challenge_tdx, host_challenge_is_trusted_and_verifies_offline)
{
        const char *root_args[] = {"--tdx-root", emu_root(), NULL};
        char *out = NULL, *err = NULL, *ev = harness_path(dir, "host.ev"), *nonce;
        int rc;

        start_attestd(NULL);
        {
                const char *more[] = {"--tdx-root", emu_root(), "--save-evidence", ev, NULL};
                rc = challenge(more, &out, &err);
        }
        cr_assert_eq(rc, 0, "cscp challenge: exit %d\n%s\n%s", rc, out, err);
        cr_assert(strstr(out, "\"verdict\": \"trusted\"") || strstr(out, "\"verdict\":\"trusted\""), "%s", out);
        for (const char *const *c = (const char *const[]){"host-tdx-quote-signature", "host-tdx-pck-chain",
                                                          "host-batch-proof", "host-logs", "host-rtmrs-replay", NULL};
             *c; c++)
                cr_assert(claim_is(out, *c, true), "%s did not pass:\n%s", *c, out);
        cr_assert_null(strstr(out, "\"name\":\"host-ak-enrolled\""), "no AK claim on a TDX host");
        cr_assert_not_null(strstr(out, "host-log-ccel"), "the CCEL was asked for and replayed: %s", out);
        nonce = fact_nonce(out);

        /* offline, same nonce: trusted; another nonce: the quote was not made for it */
        {
                const char *a[] = {"verify", "--evidence", ev, "--nonce", nonce, "--json", NULL};
                rc = cscp(a, root_args, &out, &err);
                cr_assert_eq(rc, 0, "cscp verify: exit %d\n%s\n%s", rc, out, err);
        }
        {
                char other[65];

                snprintf(other, sizeof(other), "%s", nonce);
                other[0] = other[0] == '0' ? '1' : '0';
                const char *a[] = {"verify", "--evidence", ev, "--nonce", other, "--json", NULL};
                rc = cscp(a, root_args, &out, &err);
                cr_assert_eq(rc, 1, "cscp verify, another nonce: exit %d\n%s\n%s", rc, out, err);
                cr_assert(claim_is(out, "host-batch-proof", false), "%s", out);
                cr_assert_not_null(strstr(out, "REPORTDATA"), "%s", out);
        }
        /* without --tdx-root: an error, named */
        {
                const char *a[] = {"verify", "--evidence", ev, "--nonce", nonce, NULL};
                rc = cscp(a, NULL, &out, &err);
                cr_assert_eq(rc, 2, "exit %d\n%s\n%s", rc, out, err);
                cr_assert_not_null(strstr(out, "TDX host evidence needs --tdx-root"), "%s", out);
        }
        /* the Intel root does not certify the emulator's TEST chain */
        {
                const char *a[] = {"verify", "--evidence", ev, "--nonce", nonce, "--json", NULL};
                const char *intel[] = {"--tdx-root", harness_path(fxdir, "trusted_root.pem"), NULL};
                rc = cscp(a, intel, &out, &err);
                cr_assert_eq(rc, 1, "exit %d\n%s\n%s", rc, out, err);
                cr_assert(claim_is(out, "host-tdx-pck-chain", false), "%s", out);
        }
        /* challenge without --tdx-root: exit 2 (and the CCEL was not asked for) */
        rc = challenge(NULL, &out, &err);
        cr_assert_eq(rc, 2, "exit %d\n%s\n%s", rc, out, err);
        cr_assert_not_null(strstr(out, "--tdx-root"), "%s", out);
}

Test(challenge_tdx, an_rtmr_no_log_explains_fails_the_replay)
{
        cscp_tdx_guest_paths_t p = {.mr_root = harness_path(emu, "mnt/measurements")};
        const char *more[] = {"--tdx-root", emu_root(), NULL};
        char *out = NULL, *err = NULL;
        uint8_t d[48];
        int rc;

        start_attestd(NULL);
        cr_assert_eq(RAND_bytes(d, sizeof(d)), 1);
        cr_assert_eq(cscp_tdx_guest_rtmr_extend(&p, 2, d), 0);
        rc = challenge(more, &out, &err);
        cr_assert_eq(rc, 1, "exit %d\n%s\n%s", rc, out, err);
        cr_assert(claim_is(out, "host-rtmrs-replay", false), "%s", out);
        cr_assert_not_null(strstr(out, "RTMR2"), "%s", out);
        cr_assert(claim_is(out, "host-batch-proof", true), "%s", out);
        cr_assert(claim_is(out, "host-tdx-quote-signature", true), "%s", out);
}

Test(challenge_tdx, container_challenge_is_trusted)
{
        char *out = NULL, *err = NULL;
        int rc;

        rc = harness_swtpm_start(harness_path(dir, "swtpm"), &sw);
        cr_assert_eq(rc, 0, "swtpm did not start: %s", strerror(-rc));
        {
                char **argv = vctl_vtpmd_argv(sw.tcti, state, run, pki, ready, tdx_args());
                rc = vctl_vtpmd_spawn(argv, vlog, ready, 30000, &vd);
                cr_assert_eq(rc, 0, "vtpmd --rot tdx did not start");
        }
        vtpmd__vtpm_response__free_unpacked(vctl_create_ok(sock_path, &vd, "c1", NULL), NULL);
        host_log = harness_path(state, "host.log");
        {
                const char *more[] = {"--vtpmd", sock_path, NULL};
                start_attestd(more);
        }
        {
                const char *more[] = {"--container", "c1",       "--vtpm-ca", harness_path(pki, "vtpm-ca.pem"),
                                      "--tdx-root",  emu_root(), NULL};
                rc = challenge(more, &out, &err);
        }
        cr_assert_eq(rc, 0, "cscp challenge --container: exit %d\n%s\n%s", rc, out, err);
        for (const char *const *c =
                     (const char *const[]){"host-batch-proof", "host-rtmrs-replay", "vtpm-bind", "vtpm-ek-cert",
                                           "container-signature", "container-pcrs-replay", NULL};
             *c; c++)
                cr_assert(claim_is(out, *c, true), "%s did not pass:\n%s", *c, out);
        cr_assert_not_null(strstr(out, "RTMR2 (CC index 3)"), "the binding is on RTMR2: %s", out);
}
