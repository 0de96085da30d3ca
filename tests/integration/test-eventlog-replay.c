/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command-line face of issue 3, end to end: logs written here while the
 * same digests are extended into a real swtpm; `cscp eventlog replay` must
 * print exactly what `tpm2_pcrread` prints; incremental replay through
 * --checkpoint; `show --json`; clear errors; `cscp policy check`.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/util.h"
#include "harness.h"

static char *dir;
static harness_swtpm_t tpm;

static void setup(void)
{
        dir = harness_keep(harness_tmpdir());
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "swtpm"), &tpm), 0, "swtpm did not start");
}

static void teardown(void)
{
        harness_swtpm_stop(&tpm);
}

TestSuite(replay_cli, .init = setup, .fini = teardown, .timeout = 120);

/* Runs a program; returns its exit code, stdout/stderr kept until the test ends. */
static int run(char **out, char **err, const char *prog, ...)
{
        char *argv[32];
        size_t n = 0;
        va_list ap;
        int code = -1;
        char *o = NULL, *e = NULL;

        argv[n++] = (char *)prog;
        va_start(ap, prog);
        for (const char *a; n < 31 && (a = va_arg(ap, const char *));)
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        cr_assert_eq(harness_run(argv, 60000, &code, &o, &e), 0, "%s did not run", prog);
        harness_keep(o);
        harness_keep(e);
        if (out)
                *out = o;
        if (err)
                *err = e;
        return code;
}

static const char *cscp(void)
{
        return harness_path(harness_build_dir(), "cscp");
}

static void extend(unsigned pcr, const cscp_event_digest_t *d, size_t n)
{
        char arg[512];
        size_t off = (size_t)snprintf(arg, sizeof(arg), "%u:", pcr);
        char *err = NULL;

        for (size_t i = 0; i < n; i++) {
                char hex[2 * CSCP_EVENT_MAX_DIGEST + 1];
                cscp_hex_encode(d[i].digest, d[i].size, hex);
                off += (size_t)snprintf(arg + off, sizeof(arg) - off, "%s%s=%s", i ? "," : "",
                                        cscp_hash_alg_name(d[i].alg), hex);
        }
        setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);
        cr_assert_eq(run(NULL, &err, "tpm2_pcrextend", arg, NULL), 0, "tpm2_pcrextend %s: %s", arg, err);
}

static char *pcrread(const char *sel)
{
        char *out = NULL, *err = NULL;

        setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);
        cr_assert_eq(run(&out, &err, "tpm2_pcrread", sel, NULL), 0, "tpm2_pcrread: %s", err);
        return out;
}

static void append(const char *path, const void *buf, size_t len)
{
        FILE *f = fopen(path, "ab");

        cr_assert_not_null(f);
        cr_assert_eq(fwrite(buf, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
}

/* One CM_TLV record for PCR pcr: written to the log and extended into the swtpm (sha1 + sha256). */
static void cel_record(const char *path, uint64_t recnum, unsigned pcr, const char *value)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, 0};
        cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, "arg", 3}, {CSCP_CM_F_VALUE, value, strlen(value)}};
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        uint8_t *content, *rec;
        size_t clen, rlen, nd;

        cr_assert_eq(cscp_cm_encode(CSCP_CM_PROCESS, f, 2, &content, &clen), 0);
        cr_assert_eq(cscp_cm_digests(content, clen, banks, d, &nd), 0);
        cr_assert_eq(cscp_cel_tlv_encode(recnum, pcr, false, d, nd, CSCP_CEL_CM_TLV, content, clen, &rec, &rlen), 0);
        append(path, rec, rlen);
        extend(pcr, d, nd);
        free(content);
        free(rec);
}

Test(replay_cli, cel_replay_diffs_clean_against_tpm2_pcrread)
{
        char *log = harness_path(dir, "host.cel"), *out = NULL, *err = NULL;

        for (unsigned i = 0; i < 6; i++)
                cel_record(log, i, i % 2 ? 15 : 11, i % 3 ? "/bin/sh" : "--verbose");
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--pcr", "11,15", NULL), 0, "%s", err);
        cr_assert_str_eq(out, pcrread("sha1:11,15+sha256:11,15"));
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--bank", "sha256", "--pcr", "15", NULL), 0);
        cr_assert_str_eq(out, pcrread("sha256:15"));
}

/* ima-ng template data for one file, the way the kernel lays it out (host-endian lengths). */
static size_t ima_ng(uint8_t *out, const char *path, uint8_t fill)
{
        uint32_t l = 6 + 2 + 32;
        size_t off = 0;

        memcpy(out, &l, 4), off = 4;
        memcpy(out + off, "sha256:", 8), off += 8;
        memset(out + off, fill, 32), off += 32;
        l = (uint32_t)strlen(path) + 1;
        memcpy(out + off, &l, 4), off += 4;
        memcpy(out + off, path, l), off += l;
        return off;
}

/* One binary IMA entry (ima-ng, PCR 10), extended into the swtpm per bank as Linux >= 5.8 does. */
static void ima_entry(const char *path, const char *file, uint8_t fill)
{
        uint8_t data[512], rec[1024], sha1[20];
        cscp_event_digest_t d[2] = {{.alg = TPM2_ALG_SHA1, .size = 20}, {.alg = TPM2_ALG_SHA256, .size = 32}};
        size_t dl = ima_ng(data, file, fill), off = 0;
        uint32_t v;
        unsigned n;

        cr_assert_eq(EVP_Digest(data, dl, sha1, &n, EVP_sha1(), NULL), 1);
        memcpy(d[0].digest, sha1, 20);
        cr_assert_eq(EVP_Digest(data, dl, d[1].digest, &n, EVP_sha256(), NULL), 1);
        v = 10;
        memcpy(rec, &v, 4), off = 4;
        memcpy(rec + off, sha1, 20), off += 20;
        v = 6;
        memcpy(rec + off, &v, 4), off += 4;
        memcpy(rec + off, "ima-ng", 6), off += 6;
        v = (uint32_t)dl;
        memcpy(rec + off, &v, 4), off += 4;
        memcpy(rec + off, data, dl), off += dl;
        append(path, rec, off);
        extend(10, d, 2);
}

Test(replay_cli, ima_incremental_replay_with_checkpoint)
{
        char *log = harness_path(dir, "ima.bin"), *cp = harness_path(dir, "ima.checkpoint");
        char *out = NULL, *err = NULL, *full = NULL;

        for (int i = 0; i < 5; i++)
                ima_entry(log, i % 2 ? "/usr/bin/bash" : "/usr/bin/ls", (uint8_t)(i + 1));
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--pcr", "10", "--bank", "sha1,sha256",
                         "--checkpoint", cp, NULL),
                     0, "%s", err);
        cr_assert_str_eq(out, pcrread("sha1:10+sha256:10"));
        cr_assert_eq(access(cp, F_OK), 0, "no checkpoint written");

        /* The list grows; the next run reads only the new entries. */
        for (int i = 5; i < 9; i++)
                ima_entry(log, "/usr/lib/x86_64-linux-gnu/libc.so.6", (uint8_t)(i + 1));
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--pcr", "10", "--bank", "sha1,sha256",
                         "--checkpoint", cp, NULL),
                     0, "%s", err);
        cr_assert_str_eq(out, pcrread("sha1:10+sha256:10"));
        cr_assert_eq(run(&full, &err, cscp(), "eventlog", "replay", log, "--pcr", "10", "--bank", "sha1,sha256", NULL),
                     0);
        cr_assert_str_eq(out, full, "incremental and full replay differ");

        /* A log replaced by a shorter one, or the checkpoint used for another format: errors, not wrong values. */
        char *other = harness_path(dir, "other.bin");
        ima_entry(other, "/x", 1);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", other, "--checkpoint", cp, NULL), 2);
        cr_assert(strstr(err, "shorter than the checkpoint"), "%s", err);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", other, "--format", "tcg", "--checkpoint", cp, NULL),
                     2);
        cr_assert(strstr(err, "checkpoint"), "%s", err);
        /* A log as long but with other entries (rotated, replaced): refused, not silently replayed. */
        char *replaced = harness_path(dir, "replaced.bin");
        for (int i = 0; i < 10; i++)
                ima_entry(replaced, i % 2 ? "/usr/bin/bash" : "/usr/bin/ls", (uint8_t)(0x80 + i));
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", replaced, "--checkpoint", cp, NULL), 2);
        cr_assert(strstr(err, "does not continue the checkpoint"), "%s", err);
        /* A damaged checkpoint is refused. */
        {
                uint8_t *b;
                size_t len;
                cr_assert_eq(cscp_file_read(cp, 1 << 16, &b, &len), 0);
                b[len / 2] ^= 1;
                cr_assert_eq(cscp_file_write_atomic(cp, b, len, 0600), 0);
                free(b);
        }
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--checkpoint", cp, NULL), 2);
        cr_assert(strstr(err, "not a valid checkpoint"), "%s", err);
}

Test(replay_cli, show_json_and_errors)
{
        char *log = harness_path(dir, "ima.bin"), *out = NULL, *err = NULL;
        json_object *arr;
        uint8_t *b;
        size_t len;

        for (int i = 0; i < 3; i++)
                ima_entry(log, "/usr/bin/env", (uint8_t)(0x40 + i));
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "show", log, "--json", NULL), 0, "%s", err);
        arr = json_tokener_parse(out);
        cr_assert_not_null(arr, "not JSON: %s", out);
        cr_assert_eq(json_object_array_length(arr), 3);
        json_object *e = json_object_array_get_idx(arr, 2), *text, *digests;
        cr_assert(json_object_object_get_ex(e, "text", &text));
        cr_assert_str_eq(json_object_get_string(text), "/usr/bin/env");
        cr_assert(json_object_object_get_ex(e, "digests", &digests));
        cr_assert_geq(json_object_array_length(digests), 2);
        json_object_put(arr);

        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "show", log, NULL), 0);
        cr_assert_eq(strlen(out) > 0 && out[strlen(out) - 1] == '\n', true);

        /* Truncated in the third entry: an error naming event 2 and its offset, exit 2. */
        cr_assert_eq(cscp_file_read(log, 1 << 16, &b, &len), 0);
        char *cut = harness_path(dir, "cut.bin");
        cr_assert_eq(cscp_file_write_atomic(cut, b, len - 5, 0644), 0);
        free(b);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", cut, NULL), 2);
        cr_assert(strstr(err, "event 2 at byte"), "%s", err);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", harness_path(dir, "missing"), NULL), 2);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--bank", "md5", NULL), 2);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", log, "--pcr", "24", NULL), 2);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "frobnicate", NULL), 2);
        cr_assert_eq(run(&out, &err, cscp(), "eventlog", "replay", "--help", NULL), 0);
        cr_assert(strstr(out, "tpm2_pcrread"), "%s", out);
}

Test(replay_cli, policy_check)
{
        char *log = harness_path(dir, "ima.bin"), *pol = harness_path(dir, "policy.yaml"), *out = NULL, *err = NULL;
        char text[1024], hex[65];
        uint8_t d[32];

        ima_entry(log, "/usr/bin/bash", 0x11);
        ima_entry(log, "/usr/bin/evil", 0x22);
        ima_entry(log, "/tmp/scratch", 0x33);
        memset(d, 0x11, 32);
        cscp_hex_encode(d, 32, hex);
        snprintf(text, sizeof(text),
                 "version: 1\nima:\n  allow:\n    - path: /usr/bin/bash\n      digests: [sha256:%s]\n"
                 "  exclude: [\"/tmp/*\"]\n",
                 hex);
        cr_assert_eq(cscp_file_write_atomic(pol, text, strlen(text), 0644), 0);
        cr_assert_eq(run(&out, &err, cscp(), "policy", "check", "--policy", pol, "--log", log, NULL), 1, "%s%s", out,
                     err);
        cr_assert(strstr(out, "FAIL ima.allow"), "%s", out);
        cr_assert(strstr(out, "event 1 at byte"), "%s", out);
        cr_assert(strstr(out, "/usr/bin/evil"), "%s", out);
        cr_assert_null(strstr(out, "/tmp/scratch"), "%s", out);

        /* Allow the unknown file too: satisfied. */
        snprintf(text, sizeof(text), "version: 1\nima:\n  unknown: allow\n  exclude: [\"/tmp/*\"]\n");
        cr_assert_eq(cscp_file_write_atomic(pol, text, strlen(text), 0644), 0);
        cr_assert_eq(run(&out, &err, cscp(), "policy", "check", "--policy", pol, "--log", "ima-binary:", NULL), 2);
        cr_assert_eq(run(&out, &err, cscp(), "policy", "check", "--policy", pol, "--log", log, "--json", NULL), 0,
                     "%s%s", out, err);
        json_object *root = json_tokener_parse(out), *verdict;
        cr_assert_not_null(root, "%s", out);
        cr_assert(json_object_object_get_ex(root, "verdict", &verdict));
        cr_assert_str_eq(json_object_get_string(verdict), "satisfied");
        json_object_put(root);

        /* A broken policy is an error (exit 2) naming the line. */
        cr_assert_eq(cscp_file_write_atomic(pol, "ima:\n  unknown: sometimes\n", 26, 0644), 0);
        cr_assert_eq(run(&out, &err, cscp(), "policy", "check", "--policy", pol, "--log", log, NULL), 2);
        cr_assert(strstr(err, "line 2"), "%s", err);
}
