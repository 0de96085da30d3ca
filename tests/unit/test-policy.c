/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Appraisal and measurement policies: strict loading (every error names line
 * and column), and the appraiser against events built here byte for byte the
 * way the kernel, firmware and vtpmd write them.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/policy.h"
#include "cscp/tdx.h"
#include "cscp/util.h"
#include "harness.h"

#define D256(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

/* Seeds for fuzz-policy: first byte '0' appraisal policy, '1' measurement policy. */
static void seed(const char *name, char which, const char *text)
{
        char *dir = harness_path(harness_build_dir(), "fuzz-seeds");
        FILE *f;

        mkdir(dir, 0755);
        dir = harness_path(dir, "policy");
        mkdir(dir, 0755);
        f = fopen(harness_path(dir, name), "w");
        if (f) {
                fputc(which, f);
                fputs(text, f);
                fclose(f);
        }
}

static cscp_policy_t *parse_ok(const char *text)
{
        cscp_policy_t *p = NULL;
        char err[256];
        int r = cscp_policy_parse(text, strlen(text), &p, err, sizeof(err));

        cr_assert_eq(r, 0, "policy refused: %s\n%s", err, text);
        return p;
}

static void parse_bad(const char *text, const char *want)
{
        cscp_policy_t *p = NULL;
        char err[256];
        int r = cscp_policy_parse(text, strlen(text), &p, err, sizeof(err));

        cr_assert_lt(r, 0, "accepted: %s", text);
        cr_assert_null(p);
        cr_assert(strstr(err, want), "error '%s' does not mention '%s'", err, want);
}

static const char full_policy[] =
        "version: 1\n"
        "boot:\n"
        "  pcrs:\n"
        "    sha256:\n"
        "      4: " /* 32 bytes of 0x11 */
        "\"1111111111111111111111111111111111111111111111111111111111111111\"\n"
        "  events:\n"
        "    - pcr: 4\n"
        "      digests: [" D256("aa") ", " D256(
                "bb") "]\n"
                      "ima:\n"
                      "  allow:\n"
                      "    - path: /usr/bin/bash\n"
                      "      digests: [" D256(
                              "01") "]\n"
                                    "    - path: /usr/bin/ls\n"
                                    "      digests: [" D256("02") ", " D256(
                                            "03") "]\n"
                                                  "  exclude: [\"/tmp/*\"]\n"
                                                  "  unknown: deny\n"
                                                  "  require_signature: [\"/usr/bin/*\"]\n"
                                                  "  keyids: [\"a1b2c3d4\"]\n"
                                                  "container:\n"
                                                  "  configs: [" D256(
                                                          "c0") "]\n"
                                                                "  layers: [" D256(
                                                                        "1a") "]\n"
                                                                              "  args: [\"/bin/sh\", \"-c\", \"echo "
                                                                              "*\"]\n"
                                                                              "  env: [\"PATH=/usr/bin:/bin\", "
                                                                              "\"SERVICE_*\"]\n"
                                                                              "  runtimes: [\"runc 1.1.*\"]\n"
                                                                              "resets:\n"
                                                                              "  allow_reboot: true\n"
                                                                              "  allow_restart: false\n";

Test(policy, full_policy_loads)
{
        cscp_policy_free(parse_ok(full_policy));
        cscp_policy_free(parse_ok("version: 1\n"));
        cscp_policy_free(NULL);
        seed("full", '0', full_policy);
}

Test(policy, errors_name_line_and_column)
{
        parse_bad("version: 2\n", "line 1, column 10");
        parse_bad("versoin: 1\n", "unknown key 'versoin'");
        parse_bad("ima:\n  allow:\n    - path: /x\n      digests: [sha256:zz]\n", "line 4");
        parse_bad("ima:\n  allow:\n    - path: /x\n      digests: [md4:00]\n", "unknown hash algorithm 'md4'");
        parse_bad("ima:\n  allow:\n    - path: /x\n", "needs path and digests");
        parse_bad("ima:\n  allow:\n    - {path: /x, digests: [" D256("01") "]}\n    - {path: /x, digests: [" D256(
                          "02") "]}\n",
                  "listed twice");
        parse_bad("ima:\n  unknown: maybe\n", "allow or deny");
        parse_bad("ima:\n  keyids: [abc]\n", "4-byte key id");
        parse_bad("boot:\n  pcrs:\n    sha256:\n      24: \"00\"\n", "boot.pcrs index");
        parse_bad("boot:\n  pcrs:\n    sha256:\n      1: \"00\"\n", "64 hex characters");
        parse_bad("boot:\n  pcrs:\n    md5:\n      1: \"00\"\n", "unknown bank 'md5'");
        parse_bad("boot:\n  events:\n    - pcr: 1\n", "needs pcr and digests");
        parse_bad("container:\n  layers: [notadigest]\n", "container.layers");
        parse_bad("container:\n  env: []\n", "empty list");
        parse_bad("resets:\n  allow_reboot: perhaps\n", "true or false");
        parse_bad("version: 1\nversion: 1\n", "duplicate key 'version'");
        parse_bad("ima: [1, 2]\n", "expected a mapping");
        parse_bad("ima:\n  allow: {a: b}\n", "expected a list");
        parse_bad("key: [unclosed\n", "line");
        parse_bad("", "empty policy");
        {
                char nul[] = "version: 1\n\0extra";
                cscp_policy_t *p = NULL;
                char err[128];
                cr_assert_lt(cscp_policy_parse(nul, sizeof(nul) - 1, &p, err, sizeof(err)), 0);
                cr_assert(strstr(err, "NUL"), "%s", err);
        }
        {
                size_t big = CSCP_POLICY_MAX_BYTES + 1;
                char *t = malloc(big);
                cscp_policy_t *p = NULL;
                char err[128];
                memset(t, '#', big);
                cr_assert_lt(cscp_policy_parse(t, big, &p, err, sizeof(err)), 0);
                cr_assert(strstr(err, "larger than"), "%s", err);
                free(t);
        }
        seed("bad-dup", '0', "ima:\n  allow:\n    - {path: /x, digests: [sha1:00]}\n");
}

Test(policy, measurement_policy)
{
        static const char text[] = "backend: tdx\n"
                                   "hashAlgorithm: sha384\n"
                                   "measure:\n"
                                   "  system:\n"
                                   "    processes:\n"
                                   "      - path: /usr/bin/containerd\n"
                                   "        withParameter: true\n"
                                   "      - /usr/sbin/vtpmd\n"
                                   "  container:\n"
                                   "    isolated: true\n"
                                   "  kubernetes:\n"
                                   "    pods: true\n";
        cscp_measure_policy_t *m = NULL;
        char err[256];

        cr_assert_eq(cscp_measure_policy_parse(text, strlen(text), &m, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(m->backend, "tdx");
        cr_assert_eq(m->hash_alg, TPM2_ALG_SHA384);
        cr_assert_eq(m->n_processes, 2);
        cr_assert_str_eq(m->processes[0].path, "/usr/bin/containerd");
        cr_assert(m->processes[0].with_parameter);
        cr_assert_str_eq(m->processes[1].path, "/usr/sbin/vtpmd");
        cr_assert_not(m->processes[1].with_parameter);
        cr_assert(m->container_isolated);
        cr_assert(m->kubernetes_pods);
        cscp_measure_policy_free(m);
        seed("measure", '1', text);

        /* Defaults. */
        cr_assert_eq(cscp_measure_policy_parse("measure: {}\n", 12, &m, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(m->backend, "tpm");
        cr_assert_eq(m->hash_alg, TPM2_ALG_SHA256);
        cr_assert_eq(m->n_processes, 0);
        cscp_measure_policy_free(m);

        static const struct {
                const char *text, *want;
        } bad[] = {
                {"hashAlgorithm: sha1\n", "sha1 is refused"},
                {"backend: sgx\n", "tpm or tdx"},
                {"measure:\n  system:\n    processes: [bin/sh]\n", "absolute path"},
                {"measure:\n  system:\n    processes:\n      - withParameter: true\n", "needs a path"},
                {"measure:\n  container:\n    isolated: 1\n", "true or false"},
                {"measure:\n  cluster: {}\n", "unknown key 'cluster'"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                m = NULL;
                cr_assert_lt(cscp_measure_policy_parse(bad[i].text, strlen(bad[i].text), &m, err, sizeof(err)), 0,
                             "accepted: %s", bad[i].text);
                cr_assert_null(m);
                cr_assert(strstr(err, bad[i].want), "'%s' does not mention '%s'", err, bad[i].want);
        }
}

/* ------------------------------------------------------------ appraisal */

/* ima-ng / ima-sig template data as the kernel builds it (host-endian u32 lengths). */
static size_t ima_data(uint8_t *out, const char *alg, uint8_t fill, size_t dlen, const char *path, const uint8_t *sig,
                       size_t sig_len, bool with_sig)
{
        size_t off = 0;
        uint32_t l = (uint32_t)(strlen(alg) + 2 + dlen);

        memcpy(out + off, &l, 4);
        off += 4;
        memcpy(out + off, alg, strlen(alg));
        off += strlen(alg);
        out[off++] = ':';
        out[off++] = '\0';
        memset(out + off, fill, dlen);
        off += dlen;
        l = (uint32_t)strlen(path) + 1;
        memcpy(out + off, &l, 4);
        off += 4;
        memcpy(out + off, path, l);
        off += l;
        if (with_sig) {
                l = (uint32_t)sig_len;
                memcpy(out + off, &l, 4);
                off += 4;
                if (sig_len)
                        memcpy(out + off, sig, sig_len);
                off += sig_len;
        }
        return off;
}

static cscp_event_t ima_event(uint64_t index, const char *tmpl, const uint8_t *data, size_t len)
{
        cscp_event_t ev = {.index = index, .offset = 100 * index, .pcr = 10, .extend = true, .startup_locality = -1};

        ev.kind = tmpl;
        ev.data = data;
        ev.data_len = len;
        return ev;
}

static void expect_violations(cscp_appraisal_t *a, const char *const *rules, const int64_t *events)
{
        size_t n = 0, want = 0;
        const cscp_violation_t *v = cscp_appraisal_violations(a, &n);

        while (rules[want])
                want++;
        for (size_t i = 0; i < n; i++)
                cr_log_info("violation %s event %lld: %s", v[i].rule, (long long)v[i].event, v[i].detail);
        cr_assert_eq(n, want, "%zu violations, expected %zu", n, want);
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(v[i].rule, rules[i]);
                cr_assert_eq(v[i].event, events[i], "violation %zu: event %lld", i, (long long)v[i].event);
        }
}

Test(appraisal, ima_allowlist_excludes_signatures)
{
        cscp_policy_t *p = parse_ok(full_policy);
        cscp_appraisal_t *a;
        uint8_t buf[8][512];
        size_t len[8];
        /* security.ima v2 signature header: type 3, version 2, hash algo 4 (sha256), keyid, size, sig. */
        uint8_t good_sig[] = {0x03, 0x02, 0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x02, 0x55, 0x66};
        uint8_t bad_sig[] = {0x03, 0x02, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x55, 0x66};

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ima.log", CSCP_EVENTLOG_IMA_BINARY), 0);
        len[0] = ima_data(buf[0], "sha256", 0x01, 32, "/usr/bin/bash", good_sig, sizeof(good_sig), true);
        len[1] = ima_data(buf[1], "sha256", 0x04, 32, "/usr/bin/ls", good_sig, sizeof(good_sig), true);
        len[2] = ima_data(buf[2], "sha256", 0x09, 32, "/tmp/scratch", NULL, 0, false);
        len[3] = ima_data(buf[3], "sha256", 0x09, 32, "/opt/unknown", NULL, 0, false);
        len[4] = ima_data(buf[4], "sha256", 0x00, 32, "/etc/passwd", NULL, 0, false);
        len[5] = ima_data(buf[5], "sha256", 0x01, 32, "/usr/bin/bash", NULL, 0, true);
        len[6] = ima_data(buf[6], "sha256", 0x01, 32, "/usr/bin/bash", bad_sig, sizeof(bad_sig), true);
        len[7] = ima_data(buf[7], "sha256", 0x01, 31, "/usr/bin/bash", good_sig, sizeof(good_sig), true);
        static const char *const tmpl[] = {"ima-sig", "ima-sig", "ima-ng",  "ima-ng",
                                           "ima-ng",  "ima-sig", "ima-sig", "ima-sig"};
        for (int i = 0; i < 8; i++) {
                cscp_event_t ev = ima_event((uint64_t)i, tmpl[i], buf[i], len[i]);
                cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        }
        /* An entry whose template data does not parse, and a template we do not know. */
        cscp_event_t broken = ima_event(8, "ima-ng", buf[0], 7);
        cr_assert_eq(cscp_appraisal_event(a, &broken), 0);
        cscp_event_t unknown = ima_event(9, "ima-future", buf[0], len[0]);
        cr_assert_eq(cscp_appraisal_event(a, &unknown), 0);

        static const char *const rules[] = {"ima.allow",     "ima.allow",  "ima.violation",
                                            "ima.signature", "ima.keyids", "ima.allow",
                                            "ima.entry",     "ima.entry",  NULL};
        static const int64_t events[] = {1, 3, 4, 5, 6, 7, 8, 9};
        expect_violations(a, rules, events);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

Test(appraisal, ima_template_variants)
{
        cscp_policy_t *p = parse_ok("ima:\n  allow:\n    - path: /bin/true\n      digests: [sha1:"
                                    "0101010101010101010101010101010101010101]\n");
        cscp_appraisal_t *a;
        cscp_ima_entry_t e;
        uint8_t d[256];
        size_t off = 0;
        uint32_t l;

        /* `ima`: 20-byte digest with no length, then u32 length + name. */
        memset(d, 0x01, 20);
        off = 20;
        l = 9;
        memcpy(d + off, &l, 4);
        off += 4;
        memcpy(d + off, "/bin/true", 9);
        off += 9;
        cscp_event_t ev = ima_event(0, "ima", d, off);
        cr_assert_eq(cscp_ima_entry_parse(&ev, &e), 0);
        cr_assert_str_eq(e.path, "/bin/true");
        cr_assert_eq(e.hash_alg, TPM2_ALG_SHA1);
        cr_assert_eq(e.digest_len, 20);

        /* ima-cgpath: dep | cg-path | d-ng | n-ng. */
        off = 0;
        const char *dep = "/usr/bin/runc:swapper/0", *cg = "/kubepods/pod1/abc";
        l = (uint32_t)strlen(dep) + 1;
        memcpy(d + off, &l, 4), off += 4, memcpy(d + off, dep, l), off += l;
        l = (uint32_t)strlen(cg) + 1;
        memcpy(d + off, &l, 4), off += 4, memcpy(d + off, cg, l), off += l;
        off += ima_data(d + off, "sha1", 0x01, 20, "/bin/true", NULL, 0, false);
        ev = ima_event(1, "ima-cgpath", d, off);
        cr_assert_eq(cscp_ima_entry_parse(&ev, &e), 0);
        cr_assert_str_eq(e.path, "/bin/true");
        cr_assert_str_eq(e.cgroup, cg);

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ima", CSCP_EVENTLOG_IMA), 0);
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        ev = ima_event(2, "ima", d, 0);
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        static const char *const rules[] = {"ima.entry", NULL};
        static const int64_t events[] = {2};
        expect_violations(a, rules, events);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

Test(appraisal, boot_events_and_pcrs)
{
        cscp_policy_t *p = parse_ok(full_policy);
        cscp_appraisal_t *a;
        cscp_replay_t rp;
        cscp_event_t ev = {.pcr = 4, .extend = true, .startup_locality = -1, .n_digests = 1, .kind = "EV_EFI_BOOT"};

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "boot", CSCP_EVENTLOG_TCG), 0);
        cscp_replay_init(&rp);
        ev.digests[0].alg = TPM2_ALG_SHA256;
        ev.digests[0].size = 32;
        memset(ev.digests[0].digest, 0xbb, 32); /* allowed */
        ev.index = 1;
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        memset(ev.digests[0].digest, 0xcc, 32); /* not allowed */
        ev.index = 2;
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        ev.extend = false; /* EV_NO_ACTION: not held to the rule */
        ev.index = 3;
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        ev.extend = true;
        ev.pcr = 5; /* no rule for PCR 5 */
        ev.index = 4;
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        /* PCR 4 replays to something other than 0x11..11. */
        cr_assert_eq(cscp_appraisal_end_log(a, &rp), 0);
        static const char *const rules[] = {"boot.events", "boot.pcrs", NULL};
        static const int64_t events[] = {2, -1};
        expect_violations(a, rules, events);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

Test(appraisal, resets)
{
        cscp_policy_t *p = parse_ok(full_policy); /* allow_reboot: true, allow_restart: false */
        cscp_appraisal_t *a;

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_resets(a, 3, 2, 3, 2), 0); /* same epoch */
        cr_assert_eq(cscp_appraisal_resets(a, 3, 2, 4, 0), 0); /* reboot: allowed, restartCount back to 0 */
        cr_assert_eq(cscp_appraisal_resets(a, 3, 2, 3, 3), 0); /* restart: not allowed */
        cr_assert_eq(cscp_appraisal_resets(a, 3, 2, 2, 9), 0); /* rollback */
        cr_assert_eq(cscp_appraisal_resets(a, 3, 2, 3, 1), 0); /* rollback within an epoch */
        static const char *const rules[] = {"resets.allow_restart", "resets", "resets", NULL};
        static const int64_t events[] = {-1, -1, -1};
        expect_violations(a, rules, events);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

static size_t cm(cscp_cm_kind_t kind, const char *event, const char *name, const char *value, const char *digest,
                 uint8_t **ret)
{
        cscp_cm_field_value_t f[4];
        size_t n = 0, len;

        if (event)
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_EVENT, event, strlen(event)};
        if (name)
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_NAME, name, strlen(name)};
        if (value)
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_VALUE, value, strlen(value)};
        if (digest)
                f[n++] = (cscp_cm_field_value_t){CSCP_CM_F_DIGEST, digest, strlen(digest)};
        cr_assert_eq(cscp_cm_encode(kind, f, n, ret, &len), 0);
        return len;
}

Test(appraisal, container_records)
{
        cscp_policy_t *p = parse_ok(full_policy);
        cscp_appraisal_t *a;
        struct {
                cscp_cm_kind_t kind;
                const char *event, *name, *value, *digest;
        } recs[] = {
                {CSCP_CM_VERSION, NULL, "runc", "1.1.5", NULL},            /* ok */
                {CSCP_CM_VERSION, NULL, "crun", "1.8", NULL},              /* runtime not allowed */
                {CSCP_CM_CONFIG, NULL, NULL, NULL, D256("c0")},            /* ok */
                {CSCP_CM_CONFIG, NULL, NULL, NULL, D256("c1")},            /* config not allowed */
                {CSCP_CM_LAYER, NULL, "img", NULL, D256("1a")},            /* ok */
                {CSCP_CM_LAYER, NULL, "img", NULL, D256("1b")},            /* layer not allowed */
                {CSCP_CM_PROCESS, "arg", NULL, "/bin/sh", NULL},           /* ok */
                {CSCP_CM_PROCESS, "arg", NULL, "echo hello", NULL},        /* ok (pattern) */
                {CSCP_CM_PROCESS, "arg", NULL, "rm -rf /", NULL},          /* arg not allowed */
                {CSCP_CM_PROCESS, "env", "SERVICE_PORT", "8080", NULL},    /* ok (pattern) */
                {CSCP_CM_PROCESS, "env", "LD_PRELOAD", "/tmp/x.so", NULL}, /* env not allowed */
                {CSCP_CM_CONTAINER, "create", NULL, NULL, NULL},           /* lifecycle: no rule */
        };
        size_t n = sizeof(recs) / sizeof(recs[0]);

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "container.cel", CSCP_EVENTLOG_CEL_TLV), 0);
        for (size_t i = 0; i < n; i++) {
                uint8_t *c;
                size_t len = cm(recs[i].kind, recs[i].event, recs[i].name, recs[i].value, recs[i].digest, &c);
                cscp_event_t ev = {.index = i,
                                   .pcr = 11,
                                   .extend = true,
                                   .startup_locality = -1,
                                   .type = CSCP_CEL_CM_TLV,
                                   .data = c,
                                   .data_len = len,
                                   .kind = "cm_tlv"};
                cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
                free(c);
        }
        /* Undecodable CM_TLV content is a violation, not a crash. */
        cscp_event_t junk = {.index = n,
                             .pcr = 11,
                             .type = CSCP_CEL_CM_TLV,
                             .data = (const uint8_t *)"\x03\x00",
                             .data_len = 2,
                             .startup_locality = -1};
        cr_assert_eq(cscp_appraisal_event(a, &junk), 0);

        static const char *const rules[] = {"container.runtimes",
                                            "container.configs",
                                            "container.layers",
                                            "container.args",
                                            "container.env",
                                            "container.record",
                                            NULL};
        static const int64_t events[] = {1, 3, 5, 8, 10, 12};
        expect_violations(a, rules, events);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

Test(appraisal, details_are_printable)
{
        cscp_policy_t *p = parse_ok("ima:\n  unknown: deny\n");
        cscp_appraisal_t *a;
        const cscp_violation_t *v;
        uint8_t buf[512];
        size_t n, len = ima_data(buf, "sha256", 0x07, 32, "/tmp/\x1b[31mred\xff", NULL, 0, false);
        cscp_event_t ev = ima_event(0, "ima-ng", buf, len);

        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ima", CSCP_EVENTLOG_IMA_BINARY), 0);
        cr_assert_eq(cscp_appraisal_event(a, &ev), 0);
        v = cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 1);
        /* The escape becomes '?', the invalid byte U+FFFD: nothing reaches a terminal raw. */
        cr_assert_null(strchr(v[0].detail, '\x1b'), "%s", v[0].detail);
        cr_assert(strstr(v[0].detail, "/tmp/?[31mred\xef\xbf\xbd"), "%s", v[0].detail);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
}

/* ---------------------------------------------------------------- tdx section
 * Against the three real TD quotes of ../shared/fixtures/tdx/go-tdx-guest,
 * parsed by cscp_tdx_quote_parse. The values below are the ones
 * expected.json states for each quote (source: go-tdx-guest tests). */

#define Z96 "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

typedef struct tdx_fixture {
        const char *file;
        const char *mrtd, *rtmr[4];
        const char *mrseam; /* NULL: not stated by the source */
} tdx_fixture_t;

static const tdx_fixture_t tdx_fixtures[] = {
        {"tdx_prod_quote_SPR_E4.dat",
         "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb",
         {"2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a",
          "2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800db2cacb61",
          "8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c924eb4424e", Z96},
         "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656"},
        {"ccel_cos-113-tdx-quote.dat",
         "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a",
         {"3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
          "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
          "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1", Z96},
         NULL},
        {"quote_v5_sample.dat",
         "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
         {"5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619",
          "463acaace1b6e97c76e92e41fe312aa66f3fd4dad60ec7acf169859db0343e3d1e591646795cdc80fbc0ca5f7041d253",
          "6369b9c9a3b791ebcbdc5a0bb9536cfb57f50df2b393b33c8b29616d3568baa61f4b59dc6092e31ea8764bcbdfc69f20", Z96},
         "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d1189589feab1d5a3c9a9d"},
};
#define N_TDX_FIXTURES (sizeof(tdx_fixtures) / sizeof(tdx_fixtures[0]))

typedef struct tdx_loaded {
        uint8_t *buf; /* the parsed quote borrows it */
        size_t len;
        cscp_tdx_quote_t q;
} tdx_loaded_t;

static void tdx_load(const tdx_fixture_t *f, tdx_loaded_t *ret)
{
        const char *fx = harness_fixtures_dir();
        char *dir, err[256];
        struct stat st;
        int r;

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        dir = harness_path(fx, "tdx/go-tdx-guest");
        if (stat(dir, &st) < 0)
                cr_skip_test("%s absent: no TDX fixtures", dir);
        r = cscp_file_read(harness_path(dir, f->file), CSCP_TDX_QUOTE_MAX, &ret->buf, &ret->len);
        cr_assert_eq(r, 0, "%s: %s", f->file, cscp_strerror(r));
        r = cscp_tdx_quote_parse(ret->buf, ret->len, &ret->q, err, sizeof(err));
        cr_assert_eq(r, 0, "%s: %s", f->file, err);
}

/* A policy naming f's MRTD and RTMR0..3 (and MRSEAM when stated); rtmr_override replaces RTMR n's value. */
static char *tdx_policy_text(const tdx_fixture_t *f, int override_reg, const char *override, const char *extra)
{
        char *t = NULL;
        const char *r[4];

        for (int i = 0; i < 4; i++)
                r[i] = i == override_reg ? override : f->rtmr[i];
        cr_assert_geq(asprintf(&t,
                               "version: 1\n"
                               "tdx:\n"
                               "  mrtd: [\"%s\"]\n"
                               "  rtmrs:\n"
                               "    0: \"%s\"\n"
                               "    1: [\"%s\"]\n"
                               "    2: [\"%s\"]\n"
                               "    3: [%s]\n"
                               "%s%s%s"
                               "  mrconfigid: \"" Z96 "\"\n"
                               "%s",
                               f->mrtd, r[0], r[1], r[2], r[3], f->mrseam ? "  mrseam: [\"" : "",
                               f->mrseam ? f->mrseam : "", f->mrseam ? "\"]\n" : "", extra ? extra : ""),
                      0);
        return t;
}

static const cscp_violation_t *tdx_appraise(const cscp_policy_t *p, const cscp_tdx_quote_t *q, cscp_appraisal_t **a,
                                            size_t *n)
{
        cr_assert_eq(cscp_appraisal_new(p, a), 0);
        cr_assert_eq(cscp_appraisal_tdx(*a, "host-tdx-quote", q), 0);
        return cscp_appraisal_violations(*a, n);
}

Test(tdx_policy, fixture_quotes_satisfy_their_stated_values)
{
        char *all = NULL;

        for (size_t i = 0; i < N_TDX_FIXTURES; i++) {
                const tdx_fixture_t *f = &tdx_fixtures[i];
                tdx_loaded_t l;
                cscp_appraisal_t *a;
                size_t n = 99;
                char *text;
                cscp_policy_t *p;
                const cscp_violation_t *v;

                tdx_load(f, &l);
                cr_assert_eq(l.q.td_attributes[0] & 1, 0, "%s: a production quote with DEBUG set", f->file);
                text = tdx_policy_text(f, -1, NULL, NULL);
                p = parse_ok(text);
                cr_assert(cscp_policy_has_tdx(p));
                cr_assert_not(cscp_policy_has_host_pcrs(p));
                v = tdx_appraise(p, &l.q, &a, &n);
                cr_assert_eq(n, 0, "%s: %zu violation(s), first: %s: %s", f->file, n, n ? v[0].rule : "",
                             n ? v[0].detail : "");
                cscp_appraisal_free(a);
                cscp_policy_free(p);
                if (i == 0)
                        seed("tdx", '0', text);
                free(text);
                free(l.buf);
        }
        /* One policy for the three platforms: any one of the listed values. */
        cr_assert_geq(asprintf(&all,
                               "tdx:\n  mrtd:\n    - %s\n    - %s\n    - %s\n  rtmrs:\n    3: " Z96 "\n"
                               "  tcb_status: [UpToDate, SWHardeningNeeded]\n",
                               tdx_fixtures[0].mrtd, tdx_fixtures[1].mrtd, tdx_fixtures[2].mrtd),
                      0);
        {
                cscp_policy_t *p = parse_ok(all);
                for (size_t i = 0; i < N_TDX_FIXTURES; i++) {
                        tdx_loaded_t l;
                        cscp_appraisal_t *a;
                        size_t n = 99;
                        tdx_load(&tdx_fixtures[i], &l);
                        tdx_appraise(p, &l.q, &a, &n);
                        cr_assert_eq(n, 0, "%s", tdx_fixtures[i].file);
                        cscp_appraisal_free(a);
                        free(l.buf);
                }
                cscp_policy_free(p);
        }
        seed("tdx-any", '0', all);
        free(all);
}

Test(tdx_policy, one_wrong_value_names_register_and_both_values)
{
        /* RTMR1 of the policy differs from the quote's in its last byte */
        for (size_t i = 0; i < N_TDX_FIXTURES; i++) {
                const tdx_fixture_t *f = &tdx_fixtures[i];
                char wrong[97], *text;
                tdx_loaded_t l;
                cscp_appraisal_t *a;
                cscp_policy_t *p;
                const cscp_violation_t *v;
                size_t n = 0;

                tdx_load(f, &l);
                snprintf(wrong, sizeof(wrong), "%s", f->rtmr[1]);
                wrong[95] = wrong[95] == '0' ? '1' : '0';
                text = tdx_policy_text(f, 1, wrong, NULL);
                p = parse_ok(text);
                v = tdx_appraise(p, &l.q, &a, &n);
                cr_assert_eq(n, 1, "%s: %zu violations", f->file, n);
                cr_assert_str_eq(v[0].rule, "tdx.rtmrs");
                cr_assert_str_eq(v[0].log, "host-tdx-quote");
                cr_assert_eq(v[0].event, -1);
                cr_assert(strstr(v[0].detail, "RTMR1 is "), "%s", v[0].detail);
                cr_assert(strstr(v[0].detail, f->rtmr[1]), "quoted value missing: %s", v[0].detail);
                cr_assert(strstr(v[0].detail, wrong), "policy value missing: %s", v[0].detail);
                cr_assert_null(strstr(v[0].detail, "RTMR0"), "%s", v[0].detail);
                cscp_appraisal_free(a);
                cscp_policy_free(p);
                free(text);

                /* MRTD not among two allowed values; every other register still right */
                char *t2 = NULL;
                cr_assert_geq(asprintf(&t2, "tdx:\n  mrtd: [\"%s\", \"%s\"]\n  rtmrs: {0: \"%s\"}\n",
                                       tdx_fixtures[(i + 1) % N_TDX_FIXTURES].mrtd,
                                       tdx_fixtures[(i + 2) % N_TDX_FIXTURES].mrtd, f->rtmr[0]),
                              0);
                p = parse_ok(t2);
                v = tdx_appraise(p, &l.q, &a, &n);
                cr_assert_eq(n, 1, "%s: %zu violations", f->file, n);
                cr_assert_str_eq(v[0].rule, "tdx.mrtd");
                cr_assert(strstr(v[0].detail, "MRTD is "), "%s", v[0].detail);
                cr_assert(strstr(v[0].detail, f->mrtd), "%s", v[0].detail);
                cr_assert(strstr(v[0].detail, "not one of the 2"), "%s", v[0].detail);
                cr_assert(strstr(v[0].detail, tdx_fixtures[(i + 1) % N_TDX_FIXTURES].mrtd), "%s", v[0].detail);
                cr_assert(strstr(v[0].detail, tdx_fixtures[(i + 2) % N_TDX_FIXTURES].mrtd), "%s", v[0].detail);
                cscp_appraisal_free(a);
                cscp_policy_free(p);
                free(t2);

                /* every register wrong: one violation each, in register order */
                cr_assert_geq(asprintf(&t2,
                                       "tdx:\n  mrtd: " Z96 "\n  mrseam: " Z96 "\n  mrsignerseam: [\"%.95s1\"]\n"
                                       "  mrowner: [\"%.95s1\"]\n  mrownerconfig: [\"%.95s1\"]\n"
                                       "  mrconfigid: [\"%.95s1\"]\n  rtmrs: {0: " Z96 ", 1: " Z96 ", 2: " Z96
                                       ", 3: \"%.95s1\"}\n",
                                       Z96, Z96, Z96, Z96, Z96),
                              0);
                p = parse_ok(t2);
                v = tdx_appraise(p, &l.q, &a, &n);
                static const char *const names[] = {"MRTD",          "MRSEAM", "MRSIGNERSEAM", "MRCONFIGID", "MROWNER",
                                                    "MROWNERCONFIG", "RTMR0",  "RTMR1",        "RTMR2",      "RTMR3"};
                static const char *const rules[] = {
                        "tdx.mrtd",          "tdx.mrseam", "tdx.mrsignerseam", "tdx.mrconfigid", "tdx.mrowner",
                        "tdx.mrownerconfig", "tdx.rtmrs",  "tdx.rtmrs",        "tdx.rtmrs",      "tdx.rtmrs"};
                cr_assert_eq(n, 10, "%s: %zu violations", f->file, n);
                for (size_t k = 0; k < 10; k++) {
                        char want[32];
                        snprintf(want, sizeof(want), "%s is ", names[k]);
                        cr_assert(strncmp(v[k].detail, want, strlen(want)) == 0, "%zu: %s", k, v[k].detail);
                        cr_assert_str_eq(v[k].rule, rules[k]);
                }
                cscp_appraisal_free(a);
                cscp_policy_free(p);
                free(t2);
                free(l.buf);
        }
}

Test(tdx_policy, debug_bit)
{
        tdx_loaded_t l;
        cscp_tdx_quote_t dbg;
        cscp_appraisal_t *a;
        const cscp_violation_t *v;
        cscp_policy_t *p;
        size_t n = 0;
        char *text;

        tdx_load(&tdx_fixtures[1], &l);
        dbg = l.q;
        dbg.td_attributes[0] |= 0x01; /* TDATTRIBUTES.DEBUG */

        /* the stated values still match: the debug bit alone is the violation */
        text = tdx_policy_text(&tdx_fixtures[1], -1, NULL, NULL);
        p = parse_ok(text);
        v = tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(v[0].rule, "tdx.allow_debug");
        cr_assert(strstr(v[0].detail, "debug mode (TDATTRIBUTES 0100001000000000"), "%s", v[0].detail);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
        free(text);

        /* allow_debug: true accepts it; false is the default and says so explicitly too */
        text = tdx_policy_text(&tdx_fixtures[1], -1, NULL, "  allow_debug: true\n");
        p = parse_ok(text);
        tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 0);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
        free(text);
        p = parse_ok("tdx:\n  allow_debug: false\n");
        tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 1);
        cscp_appraisal_free(a);
        tdx_appraise(p, &l.q, &a, &n);
        cr_assert_eq(n, 0, "the real quote's DEBUG bit is clear");
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        /* an empty tdx section still refuses debug TDs; other bits of TDATTRIBUTES are not the debug bit */
        p = parse_ok("tdx: {}\n");
        tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 1);
        cscp_appraisal_free(a);
        dbg = l.q;
        dbg.td_attributes[0] |= 0xfe;
        dbg.td_attributes[7] |= 0x01;
        tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 0);
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        /* no tdx section: nothing about a TD quote is checked */
        p = parse_ok("resets:\n  allow_reboot: true\n");
        dbg.td_attributes[0] |= 0x01;
        tdx_appraise(p, &dbg, &a, &n);
        cr_assert_eq(n, 0);
        cr_assert_eq(cscp_appraisal_tdx(a, NULL, NULL), 0);
        cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 0);
        cscp_appraisal_free(a);
        cscp_policy_free(p);
        free(l.buf);
}

Test(tdx_policy, accessors_and_missing_quote)
{
        cscp_policy_t *p;
        cscp_appraisal_t *a;
        const cscp_violation_t *v;
        const char *const *l = (const char *const *)1;
        size_t n = 7;

        p = parse_ok("tdx:\n  mrtd: " Z96 "\n  tcb_status: [SWHardeningNeeded, UpToDate, OutOfDate]\n");
        cr_assert(cscp_policy_has_tdx(p));
        cr_assert(cscp_policy_tdx_tcb_allowed(p, &l, &n));
        cr_assert_eq(n, 3);
        cr_assert_str_eq(l[0], "SWHardeningNeeded");
        cr_assert_str_eq(l[2], "OutOfDate");
        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_tdx(a, NULL, NULL), 0);
        v = cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(v[0].rule, "tdx");
        cr_assert_str_eq(v[0].log, "tdx-quote");
        cr_assert(strstr(v[0].detail, "no TD quote"), "%s", v[0].detail);
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        p = parse_ok("tdx:\n  tcb_status: ConfigurationNeeded\n");
        cr_assert(cscp_policy_tdx_tcb_allowed(p, &l, &n));
        cr_assert_eq(n, 1);
        cr_assert_str_eq(l[0], "ConfigurationNeeded");
        cscp_policy_free(p);

        p = parse_ok("tdx:\n  allow_debug: no\n");
        cr_assert_not(cscp_policy_tdx_tcb_allowed(p, &l, &n));
        cr_assert_null(l);
        cr_assert_eq(n, 0);
        cscp_policy_free(p);

        p = parse_ok("boot:\n  pcrs:\n    sha256:\n      4: "
                     "\"1111111111111111111111111111111111111111111111111111111111111111\"\n");
        cr_assert_not(cscp_policy_has_tdx(p));
        cr_assert(cscp_policy_has_host_pcrs(p));
        cr_assert_not(cscp_policy_tdx_tcb_allowed(p, NULL, NULL));
        cscp_policy_free(p);
        cr_assert_not(cscp_policy_has_tdx(NULL));
        cr_assert_not(cscp_policy_has_host_pcrs(NULL));
        cr_assert_eq(cscp_appraisal_tdx(NULL, NULL, NULL), -EINVAL);
}

Test(tdx_policy, malformed_sections_name_line_and_column)
{
        /* hex length: 95, 97 and 98 characters; not hex; a SHA-256 value */
        parse_bad("tdx:\n  mrtd: [\"" Z96 "\", \"" Z96 "0\"]\n",
                  "line 2, column 110: tdx.mrtd: '0000000000000000...' is not 96 hex");
        parse_bad("tdx:\n  mrtd: \"00" Z96 "\"\n", "line 2, column 9: tdx.mrtd");
        parse_bad("tdx:\n  mrtd: \"" Z96 "\"\n  mrseam: \""
                  "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\"\n",
                  "line 3, column 11: tdx.mrseam");
        parse_bad("tdx:\n  rtmrs:\n    1: [\"zz" Z96 "\"]\n", "line 3, column 9: tdx.rtmrs: RTMR1: 'zz00");
        parse_bad("tdx:\n  mrconfigid: sha384:" Z96 "\n", "line 2, column 15: tdx.mrconfigid");
        parse_bad("tdx:\n  mrowner: [\"1111111111111111111111111111111111111111111111111111111111111111\"]\n",
                  "is not 96 hex characters");
        /* unknown keys */
        parse_bad("tdx:\n  mrtdd: " Z96 "\n", "line 2, column 3: tdx: unknown key 'mrtdd'");
        parse_bad("tdx:\n  rtmr0: " Z96 "\n", "unknown key 'rtmr0' (mrtd, rtmrs,");
        parse_bad("tdx:\n  rtmrs:\n    4: " Z96 "\n", "line 3, column 5: tdx.rtmrs index");
        parse_bad("tdx:\n  rtmrs:\n    rtmr0: " Z96 "\n", "line 3, column 5: tdx.rtmrs index");
        parse_bad("tdxx:\n  mrtd: " Z96 "\n",
                  "line 1, column 1: unknown key 'tdxx' (version, boot, ima, container, resets, tdx)");
        /* wrong types */
        parse_bad("tdx:\n  allow_debug: maybe\n", "line 2, column 16: tdx.allow_debug: expected true or false");
        parse_bad("tdx:\n  mrtd: {a: b}\n", "line 2, column 9: tdx.mrtd: expected a list");
        parse_bad("tdx:\n  mrtd: [[" Z96 "]]\n", "line 2, column 10: tdx.mrtd: expected 96 hex");
        parse_bad("tdx:\n  rtmrs: [" Z96 "]\n", "line 2, column 10: tdx.rtmrs: expected a mapping");
        parse_bad("tdx: [1]\n", "line 1, column 6: tdx: expected a mapping");
        parse_bad("tdx:\n", "tdx: expected a mapping");
        parse_bad("tdx:\n  tcb_status: {UpToDate: 1}\n", "tdx.tcb_status: expected a list");
        /* empty lists, a register twice, statuses */
        parse_bad("tdx:\n  mrtd: []\n", "line 2, column 9: tdx.mrtd: empty list");
        parse_bad("tdx:\n  rtmrs:\n    0: " Z96 "\n    00: " Z96 "\n",
                  "line 4, column 9: tdx.rtmrs: RTMR0: given twice");
        parse_bad("tdx:\n  mrtd: " Z96 "\n  mrtd: " Z96 "\n", "duplicate key 'mrtd'");
        parse_bad("tdx:\n  tcb_status: []\n", "tdx.tcb_status: empty list");
        parse_bad("tdx:\n  tcb_status: [UpToDate, uptodate]\n",
                  "line 2, column 26: tdx.tcb_status: unknown status 'uptodate' (UpToDate, SWHardeningNeeded");
        parse_bad("tdx:\n  tcb_status: [OutOfDate, Revoked]\n", "line 2, column 27: tdx.tcb_status: Revoked is never");
        parse_bad("tdx:\n  tcb_status: [\"no matching TCB level\"]\n", "unknown status 'no matching TCB level'");
        seed("tdx-bad", '0', "tdx:\n  rtmrs:\n    0: " Z96 "\n    00: [\"" Z96 "\"]\n  tcb_status: [Revoked]\n");
}

/* The CCEL of the COS quote, replayed as the verifier replays it: SHA-384 "PCRs" 1..4 = RTMR0..3. */
static void ccel_replay(cscp_replay_t *rp)
{
        const char *fx = harness_fixtures_dir();
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        uint8_t *area;
        size_t len;
        char *dir;
        struct stat st;
        int r;

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        dir = harness_path(fx, "tdx/go-tdx-guest");
        if (stat(dir, &st) < 0)
                cr_skip_test("%s absent: no TDX fixtures", dir);
        r = cscp_file_read(harness_path(dir, "ccel_ccel_data.dat"), 1 << 20, &area, &len);
        cr_assert_eq(r, 0, "%s", cscp_strerror(r));
        while (len > 0 && area[len - 1] == 0xff) /* the ACPI area is padded with 0xFF after the log */
                len--;
        cscp_replay_init(rp);
        cr_assert_eq(cscp_eventlog_open_mem(area, len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0)
                cr_assert_eq(cscp_replay_extend(rp, ev), 0);
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        free(area);
}

Test(tdx_policy, ccel_rtmrs_hold_still_when_rtmr2_moves)
{
        const tdx_fixture_t *f = &tdx_fixtures[1]; /* the COS quote: its CCEL is a fixture too */
        cscp_replay_t rp;
        tdx_loaded_t l;
        cscp_appraisal_t *a;
        const cscp_violation_t *v;
        cscp_policy_t *p;
        size_t n = 0;
        char *text = NULL, wrong[97];

        ccel_replay(&rp);
        tdx_load(f, &l);
        cr_assert_geq(asprintf(&text,
                               "tdx:\n  mrtd: %s\n  rtmrs:\n    2: %s\n  ccel_rtmrs:\n    0: %s\n    1: [%s]\n"
                               "    2: [\"%s\"]\n    3: " Z96 "\n",
                               f->mrtd, f->rtmr[2], f->rtmr[0], f->rtmr[1], f->rtmr[2]),
                      0);
        p = parse_ok(text);
        seed("tdx-ccel", '0', text);
        free(text);

        /* the quote and the CCEL of the same boot: nothing to say */
        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ccel", CSCP_EVENTLOG_TCG), 0);
        cr_assert_eq(cscp_appraisal_tdx_ccel(a, NULL, &rp), 0);
        cr_assert_eq(cscp_appraisal_tdx(a, NULL, &l.q), 0);
        cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 0);
        cscp_appraisal_free(a);

        /* vtpmd extended RTMR2 after boot (a container started): the quoted RTMR2 no longer matches
         * the pinned value, the CCEL's contribution still does */
        l.q.rtmr[2][0] ^= 0x80;
        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ccel", CSCP_EVENTLOG_TCG), 0);
        cr_assert_eq(cscp_appraisal_tdx_ccel(a, NULL, &rp), 0);
        cr_assert_eq(cscp_appraisal_tdx(a, NULL, &l.q), 0);
        v = cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(v[0].rule, "tdx.rtmrs");
        cr_assert(strstr(v[0].detail, "RTMR2 is "), "%s", v[0].detail);
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        /* a CCEL replaying elsewhere: names the RTMR, the CC index, both values; the log is the CCEL's */
        snprintf(wrong, sizeof(wrong), "%s", f->rtmr[2]);
        wrong[0] = wrong[0] == 'f' ? '0' : 'f';
        cr_assert_geq(asprintf(&text, "tdx:\n  ccel_rtmrs: {0: %s, 2: %s}\n", f->rtmr[0], wrong), 0);
        p = parse_ok(text);
        free(text);
        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_log(a, "ccel", CSCP_EVENTLOG_TCG), 0);
        cr_assert_eq(cscp_appraisal_tdx_ccel(a, NULL, &rp), 0);
        v = cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(v[0].rule, "tdx.ccel_rtmrs");
        cr_assert_str_eq(v[0].log, "ccel");
        cr_assert(strstr(v[0].detail, "RTMR2 (CC index 3) replays from the CCEL to "), "%s", v[0].detail);
        cr_assert(strstr(v[0].detail, f->rtmr[2]), "%s", v[0].detail);
        cr_assert(strstr(v[0].detail, wrong), "%s", v[0].detail);
        /* no CCEL at all */
        cr_assert_eq(cscp_appraisal_tdx_ccel(a, "host-tdx", NULL), 0);
        v = cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(v[1].log, "host-tdx");
        cr_assert(strstr(v[1].detail, "sent no CCEL"), "%s", v[1].detail);
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        /* a policy without ccel_rtmrs checks no CCEL */
        p = parse_ok("tdx:\n  mrtd: " Z96 "\n");
        cr_assert_eq(cscp_appraisal_new(p, &a), 0);
        cr_assert_eq(cscp_appraisal_tdx_ccel(a, NULL, NULL), 0);
        cscp_appraisal_violations(a, &n);
        cr_assert_eq(n, 0);
        cscp_appraisal_free(a);
        cscp_policy_free(p);

        parse_bad("tdx:\n  ccel_rtmrs:\n    5: " Z96 "\n", "line 3, column 5: tdx.ccel_rtmrs index");
        parse_bad("tdx:\n  ccel_rtmrs:\n    2: [\"" Z96 "0\"]\n", "line 3, column 9: tdx.ccel_rtmrs: RTMR2: '0000");
        free(l.buf);
}
