/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestd end to end: a real swtpm, a real attestd on loopback TLS, the real
 * cscp binary and the client library.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "client.h"
#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "harness.h"
#include "pcr.h"
#include "quote.h"
#include "util.h"

static char *dir, *pki;
static harness_swtpm_t tpm;
static harness_attestd_t ad;

/*
 * The host AK these tests trust: pinned from attestd's first answer (these
 * tests are about serving; enrollment has its own tests). CLI challenges get
 * "--no-db --ak-name <it>" unless they say otherwise.
 */
static uint8_t pin_name[sizeof(TPMU_NAME)];
static size_t pinned_len;
static char pinned_hex[2 * sizeof(TPMU_NAME) + 1];

static int challenge_lib(cscp_conn_t *conn, size_t nonce_len, Cscp__Frame **ret_resp);
static cscp_client_opts_t tls_opts(void);

static void pin_ak(bool plaintext)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        Cscp__Frame *resp = NULL;
        TPM2B_NAME name = {0};
        char err[512];

        if (plaintext)
                o = (cscp_client_opts_t){.server = ad.addr, .insecure_plaintext = true, .timeout_ms = 20000};
        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "connect: %s", err);
        cr_assert_eq(challenge_lib(c, 32, &resp), 0);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);
        cr_assert_eq(cscp_tpm_public_name(resp->evidence->host_quote->ak_public.data,
                                          resp->evidence->host_quote->ak_public.len, &name),
                     0);
        memcpy(pin_name, name.name, name.size);
        pinned_len = name.size;
        cscp_hex_encode(pin_name, pinned_len, pinned_hex);
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
}

static void start_attestd(char *const extra[])
{
        bool plaintext = false;
        int r = harness_attestd_start(dir, tpm.tcti, pki, extra, &ad);
        if (r < 0)
                harness_dump_log(&ad.proc);
        cr_assert_eq(r, 0, "attestd did not start: %s", cscp_strerror(r));
        for (size_t i = 0; extra && extra[i]; i++)
                if (strcmp(extra[i], "--insecure-plaintext") == 0)
                        plaintext = true;
        pin_ak(plaintext);
}

static void setup_common(void)
{
        dir = harness_setup_tpm("swtpm", &pki, &tpm);
}

static void setup(void)
{
        setup_common();
        start_attestd(NULL);
}

static void teardown(void)
{
        harness_attestd_stop(&ad);
        harness_swtpm_stop(&tpm);
}

static cscp_client_opts_t tls_opts(void)
{
        return (cscp_client_opts_t){
                .server = ad.addr,
                .ca = harness_path(pki, "ca.pem"),
                .cert = harness_path(pki, "client.pem"),
                .key = harness_path(pki, "client-key.pem"),
                .timeout_ms = 20000,
        };
}

/* Runs the cscp binary; returns its exit code, output in *out (may be NULL). */
static int run_cscp(char **out, char **errout, const char *const *args)
{
        char *argv[32];
        size_t n = 0;
        bool is_challenge = args[0] && strcmp(args[0], "challenge") == 0, pin = is_challenge && pinned_len;

        argv[n++] = harness_path(harness_build_dir(), "cscp");
        for (const char *const *a = args; *a; a++)
                if (strcmp(*a, "--ak-name") == 0 || strncmp(*a, "--db", 4) == 0)
                        pin = false;
        for (; *args && n < 28; args++)
                argv[n++] = (char *)*args;
        if (pin) {
                argv[n++] = "--no-db";
                argv[n++] = "--ak-name";
                argv[n++] = pinned_hex;
        }
        argv[n] = NULL;
        /* Outputs live until the test ends: callers compare several runs. */
        return harness_run_kept(argv, 60000, out, errout);
}

/* cmd with the TLS options for attestd, then rest (NULL-terminated). */
static const char *const *tls_argv(const char *cmd, const char *const *rest)
{
        return (const char *const *)harness_argv((const char *[]){cmd, NULL}, harness_tls_args(ad.addr, pki), rest,
                                                 NULL);
}

static int challenge_cli(char **out, char **err, const char *extra1, const char *extra2)
{
        const char *const *args =
                tls_argv("challenge", (const char *[]){"--pcrs", "sha256:0-7,10+sha1:0", extra1, extra2, NULL});
        return run_cscp(out, err, args);
}

static unsigned largest_batch;

/* One challenge through the library: returns the verdict result, or a negative error. */
static int challenge_lib(cscp_conn_t *conn, size_t nonce_len, Cscp__Frame **ret_resp)
{
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection **w = NULL;
        size_t nw = 0;
        uint8_t nonce[128];
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        char err[512];
        int r;

        cr_assert_eq(cscp_pcrsel_parse("sha256:0-7,10", &sel), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &nw), 0);
        cr_assert_leq(nonce_len, sizeof(nonce));
        for (size_t i = 0; i < nonce_len; i++)
                nonce[i] = (uint8_t)(rand() & 0xff);
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = nonce_len};
        ch.host_pcrs = w;
        ch.n_host_pcrs = nw;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        r = cscp_conn_roundtrip(conn, &req, &resp, err, sizeof(err));
        cscp_pcrsel_wire_free(w, nw);
        if (r < 0)
                return r;
        if (ret_resp) {
                *ret_resp = resp;
                return 0;
        }
        if (resp->body_case != CSCP__FRAME__BODY_EVIDENCE) {
                cscp__frame__free_unpacked(resp, NULL);
                return CSCP_E_PEER;
        }
        cscp_verdict_t v;
        cscp_verdict_init(&v);
        cscp_expect_t want = {.nonce = nonce,
                              .nonce_len = nonce_len,
                              .host_pcrs = &sel,
                              .host_ak_name = pin_name,
                              .host_ak_name_len = pinned_len};
        r = cscp_evidence_verify(resp->evidence, &want, &v);
        if (r == 0)
                r = (int)cscp_verdict_result(&v);
        if (resp->evidence->host_batch) {
                /* Record the largest batch seen (group commit, design.md §3). */
                unsigned n = resp->evidence->host_batch->leaf_count,
                         seen = __atomic_load_n(&largest_batch, __ATOMIC_RELAXED);
                while (n > seen && !__atomic_compare_exchange_n(&largest_batch, &seen, n, false, __ATOMIC_RELAXED,
                                                                __ATOMIC_RELAXED))
                        ;
        }
        cscp_verdict_clear(&v);
        cscp__frame__free_unpacked(resp, NULL);
        return r;
}

/* A fresh TLS client can complete a trusted challenge: the server is still serving. */
static void assert_still_serving(void)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "connect: %s", err);
        cr_assert_eq(challenge_lib(c, 32, NULL), CSCP_VERDICT_TRUSTED, "server stopped serving good clients");
        cscp_conn_free(c);
        cr_assert(harness_alive(&ad.proc), "attestd died");
}

TestSuite(attestd, .init = setup, .fini = teardown, .timeout = 120);

static void assert_claims_pass(const char *out, const char *const *names)
{
        for (; *names; names++) {
                char line[128];
                snprintf(line, sizeof(line), "ok   %s ", *names);
                cr_assert(strstr(out, line), "claim %s not passed:\n%s", *names, out);
        }
}

Test(attestd, good_challenge_is_trusted)
{
        static const char *const claims[] = {"tls-peer",
                                             "nonce-echo",
                                             "host-ak-public",
                                             "host-ak-attributes",
                                             "host-signature",
                                             "host-magic",
                                             "host-type",
                                             "host-extra-data",
                                             "host-pcr-selection",
                                             "host-pcr-values",
                                             "host-pcr-digest",
                                             "host-batch-proof",
                                             NULL};
        char *out = NULL, *err = NULL;
        int code = challenge_cli(&out, &err, NULL, NULL);

        cr_assert_eq(code, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", code, out, err);
        cr_assert(strstr(out, "verdict: trusted"), "%s", out);
        assert_claims_pass(out, claims);
}

Test(attestd, json_verdict_names_every_claim)
{
        char *out = NULL;
        int code = challenge_cli(&out, NULL, "--json", NULL);
        json_object *root, *claims, *verdict;

        cr_assert_eq(code, 0, "%s", out);
        root = json_tokener_parse(out);
        cr_assert_not_null(root, "not JSON: %s", out);
        cr_assert(json_object_object_get_ex(root, "verdict", &verdict));
        cr_assert_str_eq(json_object_get_string(verdict), "trusted");
        cr_assert(json_object_object_get_ex(root, "claims", &claims));
        cr_assert_geq(json_object_array_length(claims), 10);
        for (size_t i = 0; i < json_object_array_length(claims); i++) {
                json_object *c = json_object_array_get_idx(claims, i), *pass;
                cr_assert(json_object_object_get_ex(c, "pass", &pass));
                cr_assert(json_object_get_boolean(pass));
        }
        json_object_put(root);
}

Test(attestd, client_certificate_from_another_ca_is_refused)
{
        char *other = harness_path(dir, "other-pki");
        char *out = NULL, *err = NULL;
        const char *args[] = {"challenge",
                              "--server",
                              ad.addr,
                              "--ca",
                              harness_path(pki, "ca.pem"),
                              "--cert",
                              harness_path(other, "client.pem"),
                              "--key",
                              harness_path(other, "client-key.pem"),
                              NULL};
        int code;

        cr_assert_eq(harness_mkcerts(other), 0);
        code = run_cscp(&out, &err, args);
        cr_assert_eq(code, 2, "exit %d\n%s\n%s", code, out, err);
        cr_assert_null(strstr(out, "trusted"), "%s", out);
        assert_still_serving();
}

Test(attestd, client_without_certificate_is_refused)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        char err[512];
        int r;

        o.cert = o.key = NULL;
        r = cscp_conn_open(&o, &c, err, sizeof(err));
        if (r == 0) { /* TLS 1.3: the server's refusal arrives after the client's handshake */
                r = challenge_lib(c, 32, NULL);
                cscp_conn_free(c);
        }
        cr_assert_lt(r, 0, "a client without a certificate got an answer");
        assert_still_serving();
}

Test(attestd, server_from_another_ca_is_untrusted)
{
        char *other = harness_path(dir, "other-pki");
        char *out = NULL, *err = NULL;
        const char *args[] = {"challenge",
                              "--server",
                              ad.addr,
                              "--ca",
                              harness_path(other, "ca.pem"),
                              "--cert",
                              harness_path(pki, "client.pem"),
                              "--key",
                              harness_path(pki, "client-key.pem"),
                              NULL};
        int code;

        cr_assert_eq(harness_mkcerts(other), 0);
        code = run_cscp(&out, &err, args);
        cr_assert_eq(code, 1, "exit %d\n%s\n%s", code, out, err);
        cr_assert(strstr(out, "FAIL tls-peer"), "%s", out);
}

Test(attestd, plaintext_client_against_tls_server_is_refused)
{
        cscp_client_opts_t o = {.server = ad.addr, .insecure_plaintext = true, .timeout_ms = 20000};
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_lt(challenge_lib(c, 32, NULL), 0, "a plaintext challenge got an answer from a TLS server");
        cscp_conn_free(c);
        assert_still_serving();
}

Test(attestd, garbage_client_is_disconnected)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        char err[512];
        uint8_t junk[4096];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t)(i * 131 + 7);
        junk[0] = 0; /* a plausible length so the server reads a payload, then fails to parse it */
        junk[1] = 0;
        junk[2] = 0x01;
        junk[3] = 0x00;
        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_write_raw(c, junk, sizeof(junk)), 0);
        /* The server answers an Error and closes: the next request on this connection fails. */
        cr_assert_lt(challenge_lib(c, 32, NULL), 0, "connection survived garbage");
        cscp_conn_free(c);
        assert_still_serving();
}

Test(attestd, oversize_frame_is_refused_and_disconnected)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        Cscp__Frame *resp = NULL;
        char err[512];
        /* A header announcing far more than --max-frame (64 KiB default); nothing follows. */
        static const uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
        Cscp__Frame req = CSCP__FRAME__INIT;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        char *big = malloc(200 * 1024);
        uint8_t nonce[32] = {1};

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        memset(big, 'a', 200 * 1024 - 1);
        big[200 * 1024 - 1] = '\0';
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
        ch.container_id = big;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_eq(resp->error->code, CSCP__ERROR_CODE__ERR_TOO_LARGE, "code %d", resp->error->code);
        cscp__frame__free_unpacked(resp, NULL);
        cr_assert_lt(challenge_lib(c, 32, NULL), 0, "connection survived an oversize frame");
        cscp_conn_free(c);

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_write_raw(c, hdr, sizeof(hdr)), 0);
        cr_assert_lt(challenge_lib(c, 32, NULL), 0, "connection survived a 2 GiB length");
        cscp_conn_free(c);
        free(big);
        assert_still_serving();
}

Test(attestd, nonce_rules_are_enforced_by_the_server)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        Cscp__Frame *resp = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        for (size_t len = 0; len < 2; len++) {
                size_t n = len == 0 ? 19 : 65;
                cr_assert_eq(challenge_lib(c, n, &resp), 0);
                cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ERROR, "nonce of %zu bytes was accepted", n);
                cr_assert_eq(resp->error->code, CSCP__ERROR_CODE__ERR_BAD_REQUEST);
                cscp__frame__free_unpacked(resp, NULL);
        }
        /* The connection stays usable after a refused request, for 20 and 64 bytes alike. */
        cr_assert_eq(challenge_lib(c, 20, NULL), CSCP_VERDICT_TRUSTED);
        cr_assert_eq(challenge_lib(c, 64, NULL), CSCP_VERDICT_TRUSTED);
        cscp_conn_free(c);
}

Test(attestd, client_refuses_short_nonce)
{
        char *out = NULL, *err = NULL;
        int code = challenge_cli(&out, &err, "--nonce-size", "19");

        cr_assert_eq(code, 2);
        cr_assert(strstr(err, "20..64"), "%s", err);
}

Test(attestd, many_challenges_on_one_connection)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        for (int i = 0; i < 20; i++)
                cr_assert_eq(challenge_lib(c, 32, NULL), CSCP_VERDICT_TRUSTED, "challenge %d", i);
        cscp_conn_free(c);
}

#define CONCURRENT 50

static void *concurrent_worker(void *arg)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        char err[512];
        intptr_t r;

        r = cscp_conn_open(&o, &c, err, sizeof(err));
        if (r == 0)
                r = challenge_lib(c, 32, NULL);
        cscp_conn_free(c);
        return (void *)r;
}

Test(attestd, fifty_concurrent_challenges_are_all_trusted)
{
        pthread_t t[CONCURRENT];
        int trusted = 0;

        for (int i = 0; i < CONCURRENT; i++)
                cr_assert_eq(pthread_create(&t[i], NULL, concurrent_worker, NULL), 0);
        for (int i = 0; i < CONCURRENT; i++) {
                void *res;
                pthread_join(t[i], &res);
                trusted += (intptr_t)res == CSCP_VERDICT_TRUSTED;
        }
        cr_assert_eq(trusted, CONCURRENT, "%d of %d trusted", trusted, CONCURRENT);
        /* 50 challenges at once cannot all have had a quote of their own: some were answered together. */
        cr_assert_gt(largest_batch, 1, "no challenge shared a host quote (group commit did not batch)");
        cr_log_info("largest batch: %u challenges in one quote", largest_batch);
}

static char *ak_name_of(const char *json)
{
        json_object *root = json_tokener_parse(json), *facts, *name;
        char *s;

        cr_assert_not_null(root, "%s", json);
        cr_assert(json_object_object_get_ex(root, "facts", &facts));
        cr_assert(json_object_object_get_ex(facts, "host-ak-name", &name), "%s", json);
        s = harness_keep(strdup(json_object_get_string(name)));
        json_object_put(root);
        return s;
}

Test(attestd, restart_keeps_the_same_ak_and_stops_cleanly)
{
        char *out1 = NULL, *out2 = NULL, *a1, *a2;
        int status;

        cr_assert_eq(challenge_cli(&out1, NULL, "--json", NULL), 0, "%s", out1);
        a1 = ak_name_of(out1);
        status = harness_stop(&ad.proc, SIGTERM, 10000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "attestd did not stop cleanly on SIGTERM (%d)",
                  status);
        harness_attestd_stop(&ad);
        start_attestd(NULL);
        cr_assert_eq(challenge_cli(&out2, NULL, "--json", NULL), 0, "%s", out2);
        a2 = ak_name_of(out2);
        cr_assert_str_eq(a1, a2, "AK changed across a restart");
}

Test(attestd, saved_evidence_verifies_offline_and_tampering_is_caught)
{
        char *ev = harness_path(dir, "evidence.bin");
        char *out = NULL, *out2 = NULL, *nonce;
        json_object *root, *facts, *n;
        uint8_t *buf;
        size_t len;

        /* An evidence file that cannot be written is an error, not a verdict. */
        cr_assert_eq(challenge_cli(&out, NULL, "--json", "--save-evidence=/nonexistent-dir/evidence.bin"), 2);
        {
                const char *const *args =
                        tls_argv("challenge", (const char *[]){"--json", "--save-evidence", ev, NULL});
                cr_assert_eq(run_cscp(&out, NULL, args), 0, "%s", out);
        }
        root = json_tokener_parse(out);
        cr_assert_not_null(root, "%s", out);
        cr_assert(json_object_object_get_ex(root, "facts", &facts));
        cr_assert(json_object_object_get_ex(facts, "nonce", &n));
        nonce = harness_keep(strdup(json_object_get_string(n)));
        json_object_put(root);

        char *ak = ak_name_of(out);
        const char *ok[] = {"verify", "--evidence", ev, "--nonce", nonce, "--ak-name", ak, NULL};
        cr_assert_eq(run_cscp(&out2, NULL, ok), 0, "%s", out2);
        cr_assert(strstr(out2, "ok   host-ak-pinned"), "%s", out2);

        /* Another TPM's AK (here: a made-up Name) is refused by the pin. */
        char wrong_ak[256];
        snprintf(wrong_ak, sizeof(wrong_ak), "%s", ak);
        wrong_ak[strlen(wrong_ak) - 1] = wrong_ak[strlen(wrong_ak) - 1] == '0' ? '1' : '0';
        const char *pinned[] = {"verify", "--evidence", ev, "--nonce", nonce, "--ak-name", wrong_ak, NULL};
        cr_assert_eq(run_cscp(&out2, NULL, pinned), 1, "%s", out2);
        cr_assert(strstr(out2, "FAIL host-ak-pinned"), "%s", out2);

        char other[65];
        memcpy(other, nonce, 64);
        other[64] = '\0';
        other[0] = other[0] == '0' ? '1' : '0';
        const char *wrong[] = {"verify", "--evidence", ev, "--nonce", other, NULL};
        cr_assert_eq(run_cscp(&out2, NULL, wrong), 1, "%s", out2);
        cr_assert(strstr(out2, "FAIL host-extra-data"), "%s", out2);

        const char *more[] = {"verify", "--evidence", ev, "--nonce", nonce, "--pcrs", "sha256:0-7,10,16", NULL};
        cr_assert_eq(run_cscp(&out2, NULL, more), 1, "%s", out2);
        cr_assert(strstr(out2, "FAIL host-pcr-selection"), "%s", out2);

        /* Flip every 7th byte after the header, one at a time: never trusted. */
        cr_assert_eq(cscp_file_read(ev, 1 << 20, &buf, &len), 0);
        for (size_t i = 4; i < len; i += 7) {
                char *t = harness_path(dir, "tampered.bin");
                buf[i] ^= 0x01;
                cr_assert_eq(cscp_file_write_atomic(t, buf, len, 0644), 0);
                buf[i] ^= 0x01;
                const char *tam[] = {"verify", "--evidence", t, "--nonce", nonce, "--ak-name", ak, NULL};
                int code = run_cscp(&out2, NULL, tam);
                cr_assert_neq(code, 0, "tampering with byte %zu went unnoticed:\n%s", i, out2);
        }
        free(buf);
}

Test(attestd, rsa_ak)
{
        char *const extra[] = {"--ak-alg", "rsa", NULL};
        char *out = NULL;

        harness_attestd_stop(&ad);
        ad = (harness_attestd_t){0};
        {
                char *d2 = harness_path(dir, "rsa");
                cr_assert_eq(mkdir(d2, 0700), 0);
                char *const *ex = extra;
                cr_assert_eq(harness_attestd_start(d2, tpm.tcti, pki, ex, &ad), 0);
                pin_ak(false); /* a new state directory: a new AK */
        }
        cr_assert_eq(challenge_cli(&out, NULL, NULL, NULL), 0, "%s", out);
        cr_assert(strstr(out, "verdict: trusted"), "%s", out);
}

Test(attestd, connection_limit_and_timeouts)
{
        char *const extra[] = {"--max-connections", "2", "--idle-timeout", "1", "--read-timeout", "1", NULL};
        cscp_client_opts_t o;
        cscp_conn_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
        char err[512];
        static const uint8_t half[2] = {0, 0};

        harness_attestd_stop(&ad);
        ad = (harness_attestd_t){0};
        cr_assert_eq(mkdir(harness_path(dir, "limits"), 0700), 0);
        cr_assert_eq(harness_attestd_start(harness_path(dir, "limits"), tpm.tcti, pki, extra, &ad), 0);
        pin_ak(false);      /* a new state directory: a new AK */
        usleep(200 * 1000); /* let attestd see that connection closed before counting the next two */
        o = tls_opts();
        cr_assert_eq(cscp_conn_open(&o, &c1, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_open(&o, &c2, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(challenge_lib(c1, 32, NULL), CSCP_VERDICT_TRUSTED);
        /* The third is over the limit: closed at once (handshake or first request fails). */
        if (cscp_conn_open(&o, &c3, err, sizeof(err)) == 0)
                cr_assert_lt(challenge_lib(c3, 32, NULL), 0, "third connection was served over the limit");
        cscp_conn_free(c3);
        /* Idle for longer than --idle-timeout: closed. */
        sleep(2);
        cr_assert_lt(challenge_lib(c1, 32, NULL), 0, "idle connection was not closed");
        cscp_conn_free(c1);
        cscp_conn_free(c2);
        /* Half a header and then silence: closed after --read-timeout. */
        cr_assert_eq(cscp_conn_open(&o, &c1, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_write_raw(c1, half, sizeof(half)), 0);
        sleep(2);
        cr_assert_lt(challenge_lib(c1, 32, NULL), 0, "stalled request was not timed out");
        cscp_conn_free(c1);
        /* And the server still serves. */
        cr_assert_eq(cscp_conn_open(&o, &c1, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(challenge_lib(c1, 32, NULL), CSCP_VERDICT_TRUSTED);
        cscp_conn_free(c1);
}

Test(attestd, plaintext_mode_needs_the_explicit_flag)
{
        char *const extra[] = {"--insecure-plaintext", NULL};
        char *out = NULL, *err = NULL;
        const char *args[] = {"challenge", "--server", NULL, "--insecure-plaintext", NULL};

        /* Without certificates and without the flag attestd refuses to start. */
        {
                char *argv[] = {harness_path(harness_build_dir(), "attestd"),
                                "--listen",
                                "127.0.0.1:0",
                                "--tcti",
                                tpm.tcti,
                                "--state-dir",
                                harness_path(dir, "st"),
                                NULL};
                int code = -1;
                char *o = NULL, *e = NULL;
                cr_assert_eq(harness_run(argv, 20000, &code, &o, &e), 0);
                harness_keep(o);
                harness_keep(e);
                cr_assert_eq(code, 1, "attestd started without TLS material or --insecure-plaintext");
                cr_assert(strstr(e, "--client-ca"), "%s", e);
        }
        /* The suite's TLS attestd gives way to a plaintext one on the same TPM and state. */
        harness_attestd_stop(&ad);
        cr_assert_eq(harness_attestd_start(dir, tpm.tcti, NULL, extra, &ad), 0);
        args[2] = ad.addr;
        cr_assert_eq(run_cscp(&out, &err, args), 0, "%s\n%s", out, err);
        cr_assert(strstr(out, "not checked: --insecure-plaintext"), "%s", out);
}

/* Evidence stripped of its batch proof, or with a proof for another position, is never trusted. */
Test(attestd, batch_proof_is_required_and_bound)
{
        cscp_client_opts_t o = tls_opts();
        cscp_conn_t *c = NULL;
        Cscp__Frame *resp = NULL;
        char err[512];
        static const uint8_t nonce_fill = 0x42;
        uint8_t nonce[32];
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection **w = NULL;
        size_t nw = 0;
        Cscp__Frame req = CSCP__FRAME__INIT;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;

        memset(nonce, nonce_fill, sizeof(nonce));
        cr_assert_eq(cscp_pcrsel_parse("sha256:0-7,10", &sel), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &nw), 0);
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
        ch.host_pcrs = w;
        ch.n_host_pcrs = nw;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
        cscp_pcrsel_wire_free(w, nw);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);

        cscp_expect_t want = {.nonce = nonce,
                              .nonce_len = sizeof(nonce),
                              .host_pcrs = &sel,
                              .host_ak_name = pin_name,
                              .host_ak_name_len = pinned_len};
        cscp_verdict_t v;
        Cscp__BatchProof *bp = resp->evidence->host_batch;

        cr_assert_not_null(bp, "attestd sent no batch proof");
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_evidence_verify(resp->evidence, &want, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);

        /* No proof. */
        resp->evidence->host_batch = NULL;
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_evidence_verify(resp->evidence, &want, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);
        resp->evidence->host_batch = bp;

        /* The same proof claimed for another leaf position / batch size. */
        bp->leaf_count += 1;
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_evidence_verify(resp->evidence, &want, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);
        bp->leaf_count -= 1;

        /* Another challenger's nonce (same evidence): its leaf is not under this root. */
        nonce[0] ^= 1;
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_evidence_verify(resp->evidence, &want, &v), 0);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);

        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
}
