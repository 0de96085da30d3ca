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
#include "tdxrig.h"
#include "util.h"
#include "vctl.h"

static tdxrig_t rig;

static void setup(void)
{
        tdxrig_setup(&rig);
}

static void teardown(void)
{
        tdxrig_teardown(&rig, NULL);
}

TestSuite(challenge_tdx, .init = setup, .fini = teardown, .timeout = 240);

static void start_attestd(const char *const *more)
{
        const char *none = harness_path(rig.dir, "absent");
        /* --boot-log / --ima-log are not read with --rot tdx (the CCEL; no IMA list is sent) */
        const char *logs[] = {"--host-proc-log", none, "--systemd-log", none, NULL};

        tdxrig_attestd_start(&rig, rig.pki,
                             (const char *const *)harness_argv(logs, more ? more : (const char *const[]){NULL}, NULL));
}

static const char *cscp_bin(void)
{
        return harness_path(harness_build_dir(), "cscp");
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
        char **part = harness_argv(a, harness_tls_args(rig.ad.addr, rig.pki), NULL);

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
        const char *root_args[] = {"--tdx-root", rig.emu_root, NULL};
        char *out = NULL, *err = NULL, *ev = harness_path(rig.dir, "host.ev"), *nonce;
        int rc;

        start_attestd(NULL);
        {
                const char *more[] = {"--tdx-root", rig.emu_root, "--save-evidence", ev, NULL};
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
                const char *intel[] = {"--tdx-root", harness_path(rig.fx, "trusted_root.pem"), NULL};
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
        cscp_tdx_guest_paths_t p = {.mr_root = rig.mr_root};
        const char *more[] = {"--tdx-root", rig.emu_root, NULL};
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

        tdxrig_swtpm_start(&rig);
        rc = tdxrig_vtpmd_start(&rig, NULL);
        cr_assert_eq(rc, 0, "vtpmd --rot tdx did not start");
        vtpmd__vtpm_response__free_unpacked(vctl_create_ok(rig.sock, &rig.vd, "c1", NULL), NULL);
        rig.host_log = harness_path(rig.state, "host.log");
        {
                const char *more[] = {"--vtpmd", rig.sock, NULL};
                start_attestd(more);
        }
        {
                const char *more[] = {"--container", "c1",         "--vtpm-ca", harness_path(rig.pki, "vtpm-ca.pem"),
                                      "--tdx-root",  rig.emu_root, NULL};
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
