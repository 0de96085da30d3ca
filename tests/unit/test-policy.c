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
