/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers that assert (Criterion) on failure, shared by the integration
 * and e2e suites: whole files, leftover swtpms, argument vectors, running a
 * tool and keeping its output, a session bus with tpm2-abrmd, PCR reads and
 * `cscp eventlog replay`. See harness.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "error.h"
#include "frame.h"
#include "harness.h"
#include "pcr.h"
#include "quote.h"
#include "util.h"
#include "verdict.h"

#define TOOL_MS 60000

char *harness_slurp(const char *path, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0, cap = 4096;
        char *buf;

        if (fd < 0)
                return NULL;
        buf = malloc(cap + 1);
        cr_assert(buf);
        for (;;) {
                ssize_t n;
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                        cr_assert(buf);
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return harness_keep(buf);
}

const char *harness_fixture_dir(const char *sub)
{
        const char *fx = harness_fixtures_dir();
        struct stat st;
        char *dir;

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        dir = harness_path(fx, sub);
        if (stat(dir, &st) < 0)
                cr_skip_test("%s absent: no such fixtures", dir);
        return dir;
}

char *harness_fixture_path(const char *sub, const char *name)
{
        return harness_path(harness_fixture_dir(sub), name);
}

harness_blob_t harness_load(const char *path)
{
        harness_blob_t b = {0};
        int k = cscp_file_read(path, 1 << 20, &b.p, &b.len);

        cr_assert_eq(k, 0, "%s: %s", path, cscp_strerror(k));
        harness_keep(b.p);
        return b;
}

Cscp__Frame *harness_challenge(cscp_conn_t *c, const harness_challenge_t *rq, uint8_t nonce[32])
{
        TPML_PCR_SELECTION hsel, csel;
        Cscp__PcrSelection **hw = NULL, **cw = NULL;
        size_t nhw = 0, ncw = 0;
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        Cscp__LogRequest lr[8], *lrp[8];
        char err[512];
        int r;

        cr_assert_leq(rq->n_logs, 8);
        cr_assert_eq(cscp_nonce_draw(nonce, 32), 0);
        if (rq->host_pcrs) {
                cr_assert_eq(cscp_pcrsel_parse(rq->host_pcrs, &hsel), 0);
                cr_assert_eq(cscp_pcrsel_to_wire(&hsel, &hw, &nhw), 0);
        }
        if (rq->container_pcrs) {
                cr_assert_eq(cscp_pcrsel_parse(rq->container_pcrs, &csel), 0);
                cr_assert_eq(cscp_pcrsel_to_wire(&csel, &cw, &ncw), 0);
        }
        for (size_t i = 0; i < rq->n_logs; i++) {
                cscp__log_request__init(&lr[i]);
                lr[i].kind = rq->kinds[i];
                lr[i].offset = rq->offsets[i];
                lrp[i] = &lr[i];
        }
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = 32};
        ch.container_id = (char *)(rq->container ? rq->container : "");
        ch.host_pcrs = hw;
        ch.n_host_pcrs = nhw;
        ch.container_pcrs = cw;
        ch.n_container_pcrs = ncw;
        ch.logs = lrp;
        ch.n_logs = rq->n_logs;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        r = cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err));
        cscp_pcrsel_wire_free(hw, nhw);
        cscp_pcrsel_wire_free(cw, ncw);
        cr_assert_eq(r, 0, "roundtrip: %s (%s)", cscp_strerror(r), err);
        return resp;
}

void harness_kill_swtpms(const char *needle, const char *const spare[])
{
        DIR *d;
        struct dirent *e;

        if (!needle || !(d = opendir("/proc")))
                return;
        while ((e = readdir(d))) {
                char path[64], buf[4096];
                int pid = atoi(e->d_name);
                bool keep = false;
                size_t n;
                FILE *f;

                if (pid <= 1 || pid == getpid())
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
                if (!(f = fopen(path, "r")))
                        continue;
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                for (size_t i = 0; i < n; i++)
                        if (!buf[i])
                                buf[i] = ' ';
                buf[n] = '\0';
                if (strncmp(buf, "swtpm", 5) != 0 && strncmp(buf, "/usr/bin/swtpm", 14) != 0)
                        continue;
                if (!strstr(buf, needle))
                        continue;
                for (; spare && *spare && !keep; spare++)
                        keep = strstr(buf, *spare) != NULL;
                if (!keep)
                        kill(pid, SIGKILL);
        }
        closedir(d);
}

char **harness_argv(const char *const *part, ...)
{
        char **argv = harness_keep(calloc(HARNESS_ARGV_MAX + 1, sizeof(char *)));
        size_t n = 0;
        va_list ap;

        cr_assert(argv);
        va_start(ap, part);
        for (; part; part = va_arg(ap, const char *const *))
                for (; *part; part++) {
                        cr_assert_lt(n, HARNESS_ARGV_MAX, "argument vector too long");
                        argv[n++] = (char *)*part;
                }
        va_end(ap);
        argv[n] = NULL;
        return argv;
}

const char *const *harness_tls_args(const char *addr, const char *pki)
{
        const char **args = harness_keep(calloc(9, sizeof(char *)));

        cr_assert(args);
        args[0] = "--server";
        args[1] = addr;
        args[2] = "--ca";
        args[3] = harness_path(pki, "ca.pem");
        args[4] = "--cert";
        args[5] = harness_path(pki, "client.pem");
        args[6] = "--key";
        args[7] = harness_path(pki, "client-key.pem");
        args[8] = NULL;
        return args;
}

int harness_run_kept(char *const argv[], int timeout_ms, char **ret_out, char **ret_err)
{
        char *o = NULL, *e = NULL;
        int code = -1;

        cr_assert_eq(harness_run(argv, timeout_ms, &code, &o, &e), 0, "%s did not run", argv[0]);
        harness_keep(o);
        harness_keep(e);
        if (ret_out)
                *ret_out = o;
        if (ret_err)
                *ret_err = e;
        return code;
}

void harness_abrmd_start(const char *dir, const char *host_tcti, harness_proc_t *dbus, harness_proc_t *abrmd)
{
        char *dlog = harness_path(dir, "dbus.log"), *alog = harness_path(dir, "abrmd.log"), *addr = NULL;
        char *dargv[] = {"dbus-daemon", "--session", "--nofork", "--print-address=1", NULL};
        char tcti_arg[PATH_MAX + 32];

        cr_assert_eq(harness_spawn(dargv, dlog, dbus), 0, "dbus-daemon did not start");
        for (int i = 0; i < 200 && !addr; i++) {
                char *s = harness_slurp(dlog, NULL);
                char *nl;
                if (s && strncmp(s, "unix:", 5) == 0 && (nl = strchr(s, '\n'))) {
                        *nl = '\0';
                        addr = s;
                }
                if (!addr)
                        usleep(25000);
        }
        cr_assert(addr, "dbus-daemon printed no address");
        setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
        snprintf(tcti_arg, sizeof(tcti_arg), "--tcti=%s", host_tcti);
        char *aargv[] = {"tpm2-abrmd", "--session", "--allow-root", tcti_arg, NULL};
        cr_assert_eq(harness_spawn(aargv, alog, abrmd), 0, "tpm2-abrmd did not start");
        setenv("TPM2TOOLS_TCTI", HARNESS_TABRMD_TCTI, 1);
        for (int i = 0;; i++) {
                char *argv[] = {"tpm2_getrandom", "--hex", "4", NULL};
                char *o = NULL, *e = NULL;
                int code = -1;
                cr_assert_eq(harness_run(argv, TOOL_MS, &code, &o, &e), 0);
                free(o);
                free(e);
                if (code == 0)
                        break;
                if (i > 200) {
                        harness_dump_log(abrmd);
                        cr_assert_fail("tpm2-abrmd does not answer on the session bus");
                }
                usleep(50000);
        }
}

char *harness_pcr_hex(const char *out, unsigned pcr)
{
        char want[16], *hex;
        const char *p;

        snprintf(want, sizeof(want), "%u: 0x", pcr);
        p = strstr(out, want);
        cr_assert(p, "no PCR %u in: %s", pcr, out);
        p += strlen(want);
        hex = harness_keep(calloc(1, 65));
        cr_assert(hex);
        for (size_t i = 0; i < 64 && p[i]; i++)
                hex[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
        return hex;
}

char *harness_pcrread(const char *tcti, unsigned pcr)
{
        char sel[32];
        char *argv[] = {"tpm2_pcrread", sel, NULL};
        char *out = NULL, *err = NULL, *hex;
        int code = -1;

        snprintf(sel, sizeof(sel), "sha256:%u", pcr);
        setenv("TPM2TOOLS_TCTI", tcti, 1);
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "tpm2_pcrread %s via %s: %s", sel, tcti, err);
        hex = harness_pcr_hex(out, pcr);
        free(out);
        free(err);
        return hex;
}

char *harness_replay(const char *log, unsigned pcr)
{
        char *argv[] = {harness_path(harness_build_dir(), "cscp"),
                        "eventlog",
                        "replay",
                        (char *)log,
                        "--format",
                        "cel-tlv",
                        "--json",
                        NULL};
        char *out = NULL, *err = NULL, key[8], *res = NULL;
        struct json_object *j, *bank, *v;
        int code = -1;

        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "cscp eventlog replay %s: %s", log, err);
        j = json_tokener_parse(out);
        cr_assert(j, "replay output is not JSON: %s", out);
        snprintf(key, sizeof(key), "%u", pcr);
        if (json_object_object_get_ex(j, "sha256", &bank) && json_object_object_get_ex(bank, key, &v))
                res = harness_keep(strdup(json_object_get_string(v)));
        json_object_put(j);
        free(out);
        free(err);
        return res;
}

char *harness_setup_tpm(const char *name, char **ret_pki, harness_swtpm_t *ret)
{
        char *dir = harness_tmpdir();

        *ret_pki = harness_path(dir, "pki");
        cr_assert_eq(harness_mkcerts(*ret_pki), 0, "certs/mkcerts failed");
        cr_assert_eq(harness_swtpm_start(harness_path(dir, name), ret), 0, "swtpm %s did not start", name);
        return dir;
}

void harness_assert_quote_files(const char *dir, const uint8_t *ak, size_t ak_len, const char *nonce_hex,
                                const char *what)
{
        size_t attest_len = 0, sig_len = 0, pcr_len = 0, nonce_len = 0;
        char *attest = harness_slurp(harness_path(dir, "q.attest"), &attest_len);
        char *sig = harness_slurp(harness_path(dir, "q.sig"), &sig_len);
        char *pcrs = harness_slurp(harness_path(dir, "q.pcrs"), &pcr_len);
        cscp_pcr_value_t vals[2];
        uint8_t nonce[64];
        TPML_PCR_SELECTION sel;
        cscp_verdict_t v;

        cr_assert(attest && sig && pcrs, "quote files missing in %s", dir);
        cr_assert_eq(pcr_len, 64, "2 sha256 PCR values expected, got %zu bytes", pcr_len);
        for (int i = 0; i < 2; i++) {
                vals[i] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA256, .index = (uint16_t)(11 + i), .size = 32};
                memcpy(vals[i].value, pcrs + 32 * i, 32);
        }
        cr_assert_eq(cscp_hex_decode(nonce_hex, nonce, sizeof(nonce), &nonce_len), 0);
        cr_assert_eq(cscp_pcrsel_parse("sha256:11,12", &sel), 0);
        cscp_quote_t q = {.attest = (uint8_t *)attest,
                          .attest_len = attest_len,
                          .sig = (uint8_t *)sig,
                          .sig_len = sig_len,
                          .ak_public = ak,
                          .ak_public_len = ak_len,
                          .pcrs = vals,
                          .n_pcrs = 2};
        cscp_quote_opts_t qo = {.nonce = nonce, .nonce_len = nonce_len, .required = &sel, .prefix = "container-"};
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_quote_verify(&q, &qo, &v), 0);
        if (cscp_verdict_result(&v) != CSCP_VERDICT_TRUSTED)
                cscp_verdict_print(&v, stderr);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED, "%s does not verify", what);
        cscp_verdict_clear(&v);
}
