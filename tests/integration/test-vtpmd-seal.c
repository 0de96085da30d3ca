/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vtpmd master key sealed to the host TPM: lib/tpm/seal.c against real
 * swtpms (round trip, another TPM, every truncation and every flipped bit of
 * a blob, nothing left loaded), and the real vtpmd binary with a real swtpm
 * as its host TPM: a fresh state dir holds only master.sealed; a restart on
 * the same host TPM re-adopts working instances; the state dir copied to
 * another TPM is refused with nothing changed on disk; a plain master.key of
 * older versions is migrated (sealed first, then removed) and its instances
 * keep working; a truncated, altered or missing master.sealed is a clear
 * error, never a new key.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>

#include "core.h"
#include "error.h"
#include "harness.h"
#include "seal.h"
#include "tpm.h"
#include "util.h"
#include "vctl.h"

#define TOOL_TIMEOUT_MS 60000
#define MASTER_LEN      VTPMD_MASTER_KEY_LEN

static char *dir;
static harness_swtpm_t host, other;
static cscp_tpm_t *tpm;

/* ---- helpers shared by both suites ------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *ret_len)
{
        uint8_t *buf = NULL;
        int r = cscp_file_read(path, 1 << 20, &buf, ret_len);

        cr_assert_eq(r, 0, "read %s: %s", path, cscp_strerror(r));
        return harness_keep(buf);
}

static void write_file(const char *path, const void *data, size_t len, unsigned mode)
{
        int r = cscp_file_write_atomic(path, data, len, mode);
        cr_assert_eq(r, 0, "write %s: %s", path, cscp_strerror(r));
}

static bool contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t n)
{
        return memmem(hay, hay_len, needle, n) != NULL;
}

/* Loaded transient objects and sessions (no resource manager in front of swtpm: what we leave, stays). */
static unsigned handles_in_use(cscp_tpm_t *t, uint32_t first)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = 0;
        TSS2_RC rc;
        unsigned n;

        rc = Esys_GetCapability(cscp_tpm_esys(t), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, first, 64,
                                &more, &cap);
        cr_assert_eq(rc, TSS2_RC_SUCCESS, "GetCapability(handles 0x%08x): 0x%08x", first, rc);
        n = 0;
        for (uint32_t i = 0; i < cap->data.handles.count; i++)
                if ((cap->data.handles.handle[i] & 0xff000000u) == (first & 0xff000000u))
                        n++;
        free(cap);
        return n;
}

static void assert_nothing_loaded(cscp_tpm_t *t)
{
        /* Literal handles: tss2's TPM2_TRANSIENT_FIRST shifts a signed int (UBSan). */
        cr_assert_eq(handles_in_use(t, 0x80000000u), 0, "transient objects left loaded");
        cr_assert_eq(handles_in_use(t, 0x02000000u), 0, "HMAC sessions left loaded");
        cr_assert_eq(handles_in_use(t, 0x03000000u), 0, "policy sessions left loaded");
}

/* ---- suite seal: lib/tpm/seal.c ----------------------------------------------------- */

static void seal_setup(void)
{
        dir = harness_tmpdir();
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "tpm-a"), &host), 0, "swtpm did not start");
        cr_assert_eq(cscp_tpm_open(host.tcti, &tpm), 0);
}

static void seal_teardown(void)
{
        cscp_tpm_free(tpm);
        tpm = NULL;
        harness_swtpm_stop(&host);
        harness_swtpm_stop(&other);
}

TestSuite(seal, .init = seal_setup, .fini = seal_teardown, .timeout = 300);

/* Seeds for fuzz-seal (scripts/test feeds <build>/fuzz-seeds/seal/ to it). */
static void write_seed(const char *name, const uint8_t *blob, size_t len)
{
        char *seeds = harness_path(harness_build_dir(), "fuzz-seeds");

        mkdir(seeds, 0755);
        seeds = harness_path(seeds, "seal");
        mkdir(seeds, 0755);
        write_file(harness_path(seeds, name), blob, len, 0644);
}

Test(seal, round_trip_holds_no_plaintext_and_survives_a_tpm_restart)
{
        uint8_t data[CSCP_SEAL_DATA_MAX], out[CSCP_SEAL_DATA_MAX + 1], *blob = NULL, *file;
        size_t blob_len = 0, out_len = 0, file_len;
        const size_t sizes[] = {1, 32, CSCP_SEAL_DATA_MAX};
        const char *why = NULL;
        char *path = harness_path(dir, "x.sealed");
        struct stat st;

        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t n = sizes[k];

                cr_assert_eq(RAND_bytes(data, (int)n), 1);
                cr_assert_eq(cscp_tpm_seal(tpm, data, n, &blob, &blob_len), 0, "seal %zu bytes", n);
                cr_assert_lt(blob_len, CSCP_SEAL_BLOB_MAX);
                cr_assert_eq(memcmp(blob, "CSCPSEAL", 8), 0);
                cr_assert_eq(cscp_seal_blob_check(blob, blob_len, NULL), 0);
                if (n >= 16)
                        cr_assert(!contains(blob, blob_len, data, n), "the blob holds the plaintext");
                memset(out, 0, sizeof(out));
                cr_assert_eq(cscp_tpm_unseal(tpm, blob, blob_len, out, sizeof(out), &out_len), 0);
                cr_assert_eq(out_len, n);
                cr_assert_arr_eq(out, data, n, "unsealed something else");
                if (n > 1)
                        cr_assert_eq(cscp_tpm_unseal(tpm, blob, blob_len, out, n - 1, &out_len), -ENOBUFS);
                if (n == 32)
                        write_seed("blob-32", blob, blob_len);
                free(blob);
                blob = NULL;
                assert_nothing_loaded(tpm);
        }
        cr_assert_eq(cscp_tpm_seal(tpm, data, 0, &blob, &blob_len), -EINVAL);
        cr_assert_eq(cscp_tpm_seal(tpm, data, CSCP_SEAL_DATA_MAX + 1, &blob, &blob_len), -EINVAL);

        /* Two seals of one secret differ (fresh seed value): no equality oracle across files. */
        {
                uint8_t *b1 = NULL, *b2 = NULL;
                size_t l1 = 0, l2 = 0;
                cr_assert_eq(cscp_tpm_seal(tpm, data, 32, &b1, &l1), 0);
                cr_assert_eq(cscp_tpm_seal(tpm, data, 32, &b2, &l2), 0);
                cr_assert(l1 != l2 || memcmp(b1, b2, l1) != 0, "two seals of one secret are identical");
                free(b1);
                free(b2);
        }

        /* The file helpers: 0600, same format. */
        cr_assert_eq(cscp_tpm_seal_file(tpm, path, data, 32), 0);
        cr_assert_eq(lstat(path, &st), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
        file = slurp(path, &file_len);
        cr_assert_eq(cscp_seal_blob_check(file, file_len, NULL), 0);
        cr_assert(!contains(file, file_len, data, 32), "the file holds the plaintext");
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), 0);
        cr_assert_eq(out_len, 32);
        cr_assert_arr_eq(out, data, 32);
        cr_assert_eq(cscp_tpm_unseal_file(tpm, harness_path(dir, "none"), out, sizeof(out), &out_len, &why), -ENOENT);

        /* Same TPM after a restart (power cycle, Startup(CLEAR)): the SRK comes back from the owner seed. */
        cscp_tpm_free(tpm);
        tpm = NULL;
        harness_swtpm_stop(&host);
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "tpm-a"), &host), 0, "swtpm did not restart");
        cr_assert_eq(cscp_tpm_open(host.tcti, &tpm), 0);
        memset(out, 0, sizeof(out));
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), 0,
                     "does not unseal after a TPM restart: %s", why);
        cr_assert_eq(out_len, 32);
        cr_assert_arr_eq(out, data, 32);
        assert_nothing_loaded(tpm);
}

Test(seal, another_tpm_cannot_unseal)
{
        uint8_t data[32], out[64];
        size_t out_len = 0;
        const char *why = NULL;
        char *path = harness_path(dir, "m.sealed");
        cscp_tpm_t *t2 = NULL;
        int r;

        cr_assert_eq(RAND_bytes(data, sizeof(data)), 1);
        cr_assert_eq(cscp_tpm_seal_file(tpm, path, data, sizeof(data)), 0);
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "tpm-b"), &other), 0, "second swtpm did not start");
        cr_assert_eq(cscp_tpm_open(other.tcti, &t2), 0);
        r = cscp_tpm_unseal_file(t2, path, out, sizeof(out), &out_len, &why);
        cr_assert_eq(r, CSCP_E_STATE, "another TPM: %s", cscp_strerror(r));
        cr_assert(why && strstr(why, "another TPM"), "reason: %s", why ? why : "(none)");
        assert_nothing_loaded(t2);
        cscp_tpm_free(t2);
        /* Still fine on its own TPM. */
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), 0);
        cr_assert_arr_eq(out, data, sizeof(data));
}

Test(seal, every_truncation_and_every_flipped_byte_is_refused)
{
        uint8_t data[32], out[64], *blob = NULL, *bad;
        size_t blob_len = 0, out_len = 0;
        const char *why = NULL;
        char *path = harness_path(dir, "bad.sealed");
        unsigned tpm_refusals = 0;
        int r;

        cr_assert_eq(RAND_bytes(data, sizeof(data)), 1);
        cr_assert_eq(cscp_tpm_seal(tpm, data, sizeof(data), &blob, &blob_len), 0);
        bad = harness_keep(malloc(blob_len + 1));

        for (size_t n = 0; n < blob_len; n++) {
                why = NULL;
                cr_assert_eq(cscp_seal_blob_check(blob, n, &why), CSCP_E_STATE, "prefix of %zu bytes accepted", n);
                cr_assert(why && *why);
                cr_assert_eq(cscp_tpm_unseal(tpm, blob, n, out, sizeof(out), &out_len), CSCP_E_STATE);
        }
        memcpy(bad, blob, blob_len);
        bad[blob_len] = 0;
        cr_assert_eq(cscp_seal_blob_check(bad, blob_len + 1, &why), CSCP_E_STATE, "trailing byte accepted");
        cr_assert_str_eq(why, "trailing bytes after the private area");

        /* Each byte flipped: the parser or the TPM (integrity of the private area, Name of the public) refuses. */
        for (size_t i = 0; i < blob_len; i++) {
                memcpy(bad, blob, blob_len);
                bad[i] ^= 0x01;
                r = cscp_tpm_unseal(tpm, bad, blob_len, out, sizeof(out), &out_len);
                cr_assert_eq(r, CSCP_E_STATE, "byte %zu flipped: %s", i, cscp_strerror(r));
                if (cscp_seal_blob_check(bad, blob_len, NULL) == 0)
                        tpm_refusals++;
                if (i == 40)
                        write_seed("flipped-40", bad, blob_len);
        }
        cr_assert_gt(tpm_refusals, blob_len / 2, "the TPM itself saw only %u of %zu altered blobs", tpm_refusals,
                     blob_len);
        assert_nothing_loaded(tpm);

        /* Files: truncated, garbage, too long, not a regular file. */
        write_file(path, blob, blob_len / 2, 0600);
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), CSCP_E_STATE);
        cr_assert(strstr(why, "truncated"), "reason: %s", why);
        write_file(path, "garbage, not a blob", 19, 0600);
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), CSCP_E_STATE);
        cr_assert(strstr(why, "magic"), "reason: %s", why);
        {
                uint8_t *big = harness_keep(calloc(1, CSCP_SEAL_BLOB_MAX + 1));
                write_file(path, big, CSCP_SEAL_BLOB_MAX + 1, 0600);
                cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), CSCP_E_STATE);
                cr_assert(strstr(why, "longer"), "reason: %s", why);
        }
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(symlink("/etc/hostname", path), 0);
        cr_assert_eq(cscp_tpm_unseal_file(tpm, path, out, sizeof(out), &out_len, &why), CSCP_E_STATE);
        cr_assert(strstr(why, "regular"), "reason: %s", why);
        free(blob);
}

/* ---- suite vtpmd_seal: the vtpmd binary --------------------------------------------- */

static char *pki, *state, *run, *ready, *sock_path, *vlog;
static harness_proc_t vd;

static int start_vtpmd(void)
{
        (void)unlink(vlog); /* each start's log on its own */
        return vctl_vtpmd_spawn(vctl_vtpmd_argv(host.tcti, state, run, pki, ready, NULL), vlog, ready, 60000, &vd);
}

static void stop_vtpmd(void)
{
        int st = harness_stop(&vd, SIGTERM, 20000);

        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                harness_dump_log(&vd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vtpmd did not stop cleanly (wait status 0x%x)", (unsigned)st);
        vd.pid = 0;
}

/* A log as it is now (vtpmd may still be appending to it). */
static char *read_log(const char *path)
{
        FILE *f = fopen(path, "r");
        char *s = harness_keep(calloc(1, 1 << 20));
        size_t n;

        cr_assert(f, "open %s: %s", path, strerror(errno));
        n = fread(s, 1, (1 << 20) - 1, f);
        s[n] = '\0';
        fclose(f);
        return s;
}

/* Runs vtpmd that must refuse to start: exit status != 0 within the timeout; returns its log. */
static char *vtpmd_refuses(const char *tcti, const char *state_dir, const char *run_dir)
{
        char **argv = vctl_vtpmd_argv(tcti, state_dir, run_dir, pki, ready, NULL),
             *log = harness_path(dir, "refused.log");
        harness_proc_t p = {0};
        int st = 0, r;

        (void)unlink(ready);
        (void)unlink(log);
        cr_assert_eq(harness_spawn(argv, log, &p), 0);
        r = harness_wait(&p, 60000, &st);
        if (r < 0) {
                harness_stop(&p, SIGKILL, 1000);
                harness_dump_log(&p);
        }
        cr_assert_eq(r, 0, "vtpmd did not exit");
        if (!WIFEXITED(st) || WEXITSTATUS(st) == 0)
                harness_dump_log(&p);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "vtpmd started (wait status 0x%x)", (unsigned)st);
        cr_assert_neq(access(ready, F_OK), 0, "vtpmd wrote its ready file");
        free(p.log);
        {
                char *text = read_log(log);
                /* Refusing is no excuse: under ASan/UBSan the error path must be clean too. */
                cr_assert(!strstr(text, "Sanitizer") && !strstr(text, "runtime error"), "sanitizer report: %s", text);
                return text;
        }
}

/* Every swtpm left behind by a failed test (its command line names our temporary directory), but the host TPMs. */
static void kill_leftovers(void)
{
        const char *spare[3] = {0};
        size_t n = 0;

        if (host.dir)
                spare[n++] = host.dir;
        if (other.dir)
                spare[n++] = other.dir;
        harness_kill_swtpms(dir, spare);
}

static void vtpmd_setup(void)
{
        dir = harness_setup_tpm("host", &pki, &host);
        state = harness_path(dir, "state");
        run = harness_path(dir, "r");
        ready = harness_path(dir, "ready");
        sock_path = harness_path(run, "vtpmd.sock");
        vlog = harness_path(dir, "vtpmd.log");
}

static void vtpmd_teardown(void)
{
        if (vd.pid > 0)
                harness_stop(&vd, SIGTERM, 20000);
        vd.pid = 0;
        free(vd.log);
        vd.log = NULL;
        kill_leftovers();
        harness_swtpm_stop(&host);
        harness_swtpm_stop(&other);
}

TestSuite(vtpmd_seal, .init = vtpmd_setup, .fini = vtpmd_teardown, .timeout = 560);

typedef struct created {
        char socket[PATH_MAX], log[PATH_MAX], state_dir[PATH_MAX], uid[VTPMD_UID_LEN + 1];
} created_t;

static void create_ok(const char *id, created_t *ret)
{
        Vtpmd__Measurements ms;
        Vtpmd__VtpmResponse *resp;

        vctl_measurements(&ms, true, false);
        resp = vctl_create_ok(sock_path, &vd, id, &ms);
        snprintf(ret->socket, sizeof(ret->socket), "%s", resp->created->instance->socket);
        snprintf(ret->log, sizeof(ret->log), "%s", resp->created->instance->log);
        snprintf(ret->state_dir, sizeof(ret->state_dir), "%s", resp->created->instance->state_dir);
        snprintf(ret->uid, sizeof(ret->uid), "%s", resp->created->instance->uid);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
}

/* Polls Status until the instance is ready. */
static void wait_ready(const char *id)
{
        for (int waited = 0;; waited += 100) {
                Vtpmd__VtpmResponse *resp = vctl_status(sock_path, &vd, id);
                bool ok = resp->body_case == VTPMD__VTPM_RESPONSE__BODY_STATUS &&
                          strcmp(resp->status->instance->state, "ready") == 0;
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                if (ok)
                        return;
                if (waited > 60000) {
                        harness_dump_log(&vd);
                        cr_assert_fail("%s never became ready again", id);
                }
                usleep(100000);
        }
}

/* The vTPM answers through its endpoint, and its PCRs are the replay of its log (it was restarted from state). */
static void assert_instance_works(const created_t *c)
{
        char tcti[PATH_MAX + 16];
        char *argv[] = {"tpm2_getrandom", "--hex", "16", NULL};
        char *out = NULL, *err = NULL;
        int code = -1;

        snprintf(tcti, sizeof(tcti), "swtpm:path=%s", c->socket);
        setenv("TPM2TOOLS_TCTI", tcti, 1);
        cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "tpm2_getrandom via %s: %s", c->socket, err);
        cr_assert_eq(strlen(out), 32, "tpm2_getrandom printed '%s'", out);
        free(out);
        free(err);
        for (unsigned pcr = 11; pcr <= 12; pcr++) {
                char *want = harness_replay(c->log, pcr), *have = harness_pcrread(tcti, pcr);
                if (!want)
                        want = "0000000000000000000000000000000000000000000000000000000000000000";
                cr_assert_str_eq(have, want, "vTPM PCR %u = %s, container log replay = %s", pcr, have, want);
        }
}

/* Unseals <state_dir>/master.sealed with the host TPM, as vtpmd does. */
static void unseal_master(const char *state_dir, uint8_t key[MASTER_LEN])
{
        cscp_tpm_t *t = NULL;
        size_t len = 0;
        const char *why = NULL;
        int r;

        cr_assert_eq(cscp_tpm_open(host.tcti, &t), 0);
        r = cscp_tpm_unseal_file(t, harness_path(state_dir, "master.sealed"), key, MASTER_LEN, &len, &why);
        cr_assert_eq(r, 0, "unseal master.sealed: %s (%s)", why, cscp_strerror(r));
        cr_assert_eq(len, MASTER_LEN);
        cscp_tpm_free(t);
}

/* master.sealed is a well-formed sealed blob, 0600, without the key; no master.key; the key opens the instance. */
static void assert_sealed_state(const char *state_dir, const created_t *c, uint8_t ret_key[MASTER_LEN])
{
        char *sealed = harness_path(state_dir, "master.sealed");
        uint8_t key[MASTER_LEN], secret[VTPMD_SECRET_LEN], *file;
        size_t file_len;
        const char *why = NULL;
        struct stat st;
        int r;

        cr_assert_eq(lstat(sealed, &st), 0, "no %s", sealed);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0600, "master.sealed mode %o", st.st_mode & 0777);
        cr_assert_neq(access(harness_path(state_dir, "master.key"), F_OK), 0, "a plain master.key exists");
        file = slurp(sealed, &file_len);
        r = cscp_seal_blob_check(file, file_len, &why);
        cr_assert_eq(r, 0, "master.sealed: %s", why);
        unseal_master(state_dir, key);
        cr_assert(!contains(file, file_len, key, sizeof(key)), "master.sealed holds the master key in clear");
        if (c) {
                char *kf = harness_path(harness_path(harness_path(state_dir, "instances"), c->uid), "key.wrapped");
                r = keys_secret_load(key, c->uid, kf, secret);
                cr_assert_eq(r, 0, "the sealed master key does not open %s: %s", kf, cscp_strerror(r));
        }
        if (ret_key)
                memcpy(ret_key, key, sizeof(key));
}

/* A listing of a tree: name, type, mode, size, mtime and SHA-256 of each regular file, sorted. */
static char *snap_buf;
static size_t snap_len;
static int snap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        char line[PATH_MAX + 256], hex[2 * EVP_MAX_MD_SIZE + 1] = "-";

        (void)flag;
        (void)ftw;
        if (S_ISREG(st->st_mode)) {
                uint8_t *buf = NULL, md[EVP_MAX_MD_SIZE];
                size_t len = 0;
                unsigned mdlen = 0;
                cr_assert_eq(cscp_file_read(path, 64u << 20, &buf, &len), 0, "read %s", path);
                cr_assert_eq(EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL), 1);
                cscp_hex_encode(md, mdlen, hex);
                free(buf);
        }
        snprintf(line, sizeof(line), "%s %o %lld %lld.%09ld %s\n", path, (unsigned)st->st_mode, (long long)st->st_size,
                 S_ISREG(st->st_mode) ? (long long)st->st_mtim.tv_sec : 0LL,
                 S_ISREG(st->st_mode) ? st->st_mtim.tv_nsec : 0L, hex);
        snap_buf = realloc(snap_buf, snap_len + strlen(line) + 1);
        cr_assert(snap_buf);
        memcpy(snap_buf + snap_len, line, strlen(line) + 1);
        snap_len += strlen(line);
        return 0;
}

static int cmp_lines(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *snapshot(const char *root)
{
        char **lines = NULL, *res, *p, *save = NULL;
        size_t n = 0, len = 0;

        snap_buf = NULL;
        snap_len = 0;
        cr_assert_eq(nftw(root, snap_one, 16, FTW_PHYS), 0, "walk %s", root);
        for (p = strtok_r(snap_buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
                lines = realloc(lines, (n + 1) * sizeof(*lines));
                lines[n++] = p;
                len += strlen(p) + 1;
        }
        qsort(lines, n, sizeof(*lines), cmp_lines);
        res = calloc(1, len + 1);
        for (size_t i = 0; i < n; i++) {
                strcat(res, lines[i]);
                strcat(res, "\n");
        }
        free(lines);
        free(snap_buf);
        snap_buf = NULL;
        return harness_keep(res);
}

static void copy_tree(const char *from, const char *to)
{
        char *argv[] = {"cp", "-a", (char *)from, (char *)to, NULL};
        char *out = NULL, *err = NULL;
        int code = -1;

        cr_assert_eq(harness_run(argv, TOOL_TIMEOUT_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "cp -a %s %s: %s", from, to, err);
        free(out);
        free(err);
}

/* A first vtpmd with one instance, then stopped (its swtpm too): the state dir every test below starts from. */
static void make_state(created_t *c)
{
        char *log;

        cr_assert_eq(start_vtpmd(), 0, "vtpmd did not start");
        log = read_log(vlog);
        cr_assert(strstr(log, "created the master key, sealed to the host TPM"), "log: %s", log);
        assert_sealed_state(state, NULL, NULL);
        create_ok("ctr-seal", c);
        assert_instance_works(c);
        stop_vtpmd();
        assert_sealed_state(state, c, NULL);
}

Test(vtpmd_seal, restart_on_the_same_host_tpm_readopts)
{
        created_t c;
        uint8_t *before, *after;
        size_t before_len, after_len;
        char *log;

        make_state(&c);
        before = slurp(harness_path(state, "master.sealed"), &before_len);
        cr_assert_eq(start_vtpmd(), 0, "vtpmd did not start again");
        log = read_log(vlog);
        cr_assert(!strstr(log, "created the master key"), "a second master key was made: %s", log);
        wait_ready("ctr-seal");
        assert_instance_works(&c);
        stop_vtpmd();
        after = slurp(harness_path(state, "master.sealed"), &after_len);
        cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0, "master.sealed was rewritten");
        assert_sealed_state(state, &c, NULL);
}

Test(vtpmd_seal, another_host_tpm_is_refused_and_nothing_changes)
{
        created_t c;
        char *copy = harness_path(dir, "copy"), *run2 = harness_path(dir, "r2"), *before, *after, *log;

        make_state(&c);
        copy_tree(state, copy);
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "other-host"), &other), 0, "second swtpm did not start");
        before = snapshot(copy);
        log = vtpmd_refuses(other.tcti, copy, run2);
        after = snapshot(copy);
        cr_assert_str_eq(before, after, "the state dir changed:\n--- before\n%s--- after\n%s", before, after);
        cr_assert(strstr(log, "master.sealed") && strstr(log, "another TPM"), "unclear error: %s", log);
        cr_assert_neq(access(harness_path(copy, "master.key"), F_OK), 0, "a plain master key appeared");

        /* The original host TPM still opens the copy. */
        unseal_master(copy, (uint8_t[MASTER_LEN]){0});
}

Test(vtpmd_seal, plain_master_key_is_migrated_and_instances_keep_working)
{
        created_t c;
        uint8_t key[MASTER_LEN], now[MASTER_LEN], other_key[MASTER_LEN];
        char *plain = harness_path(state, "master.key"), *sealed = harness_path(state, "master.sealed"), *log;
        char *before, *after;

        make_state(&c);
        /* What an older vtpmd left: the same key as a plain 0600 file, no sealed file. */
        unseal_master(state, key);
        write_file(plain, key, sizeof(key), 0600);
        cr_assert_eq(unlink(sealed), 0);

        cr_assert_eq(start_vtpmd(), 0, "vtpmd did not start from a plain master.key");
        log = read_log(vlog);
        cr_assert(strstr(log, "removed the plain master.key"), "log: %s", log);
        cr_assert(!strstr(log, "created the master key"), "a new master key was made: %s", log);
        wait_ready("ctr-seal");
        assert_instance_works(&c);
        stop_vtpmd();
        assert_sealed_state(state, &c, now);
        cr_assert_arr_eq(now, key, sizeof(key), "the migrated key is not the old one");

        /* A migration cut short between the sealed file's fsync and the unlink: both, same key. */
        write_file(plain, key, sizeof(key), 0600);
        cr_assert_eq(start_vtpmd(), 0, "vtpmd did not start with both files");
        log = read_log(vlog);
        cr_assert(strstr(log, "interrupted migration"), "log: %s", log);
        wait_ready("ctr-seal");
        assert_instance_works(&c);
        stop_vtpmd();
        assert_sealed_state(state, &c, NULL);

        /* Both, different keys: not vtpmd's to choose; nothing removed. */
        cr_assert_eq(RAND_bytes(other_key, sizeof(other_key)), 1);
        write_file(plain, other_key, sizeof(other_key), 0600);
        before = snapshot(state);
        log = vtpmd_refuses(host.tcti, state, run);
        after = snapshot(state);
        cr_assert_str_eq(before, after, "the state dir changed");
        cr_assert(strstr(log, "different master keys"), "unclear error: %s", log);

        /* A plain key readable by others is refused, as before. */
        cr_assert_eq(chmod(plain, 0644), 0);
        log = vtpmd_refuses(host.tcti, state, run);
        cr_assert(strstr(log, "master.key") && strstr(log, "0600"), "unclear error: %s", log);
        cr_assert_eq(unlink(plain), 0);
}

Test(vtpmd_seal, damaged_or_missing_sealed_file_is_a_clear_error)
{
        created_t c;
        char *sealed = harness_path(state, "master.sealed"), *before, *after, *log;
        uint8_t *good, *bad;
        size_t good_len;

        make_state(&c);
        good = slurp(sealed, &good_len);
        bad = harness_keep(malloc(good_len));

        /* Truncated. */
        write_file(sealed, good, good_len / 2, 0600);
        before = snapshot(state);
        log = vtpmd_refuses(host.tcti, state, run);
        after = snapshot(state);
        cr_assert_str_eq(before, after, "the state dir changed");
        cr_assert(strstr(log, "master.sealed") && strstr(log, "truncated"), "unclear error: %s", log);

        /* One bit of the private area flipped: the TPM's integrity check. */
        memcpy(bad, good, good_len);
        bad[good_len - 5] ^= 0x10;
        write_file(sealed, bad, good_len, 0600);
        log = vtpmd_refuses(host.tcti, state, run);
        cr_assert(strstr(log, "master.sealed") && strstr(log, "refused"), "unclear error: %s", log);

        /* Garbage. */
        write_file(sealed, "#!/bin/sh\necho not a key\n", 25, 0600);
        log = vtpmd_refuses(host.tcti, state, run);
        cr_assert(strstr(log, "master.sealed") && strstr(log, "magic"), "unclear error: %s", log);

        /* Gone while an instance holds a wrapped secret: never a new key. */
        cr_assert_eq(unlink(sealed), 0);
        before = snapshot(state);
        log = vtpmd_refuses(host.tcti, state, run);
        after = snapshot(state);
        cr_assert_str_eq(before, after, "the state dir changed");
        cr_assert(strstr(log, "orphan") && strstr(log, "key.wrapped"), "unclear error: %s", log);
        cr_assert_neq(access(sealed, F_OK), 0, "a new master.sealed was made");

        /* Put back: everything works again. */
        write_file(sealed, good, good_len, 0600);
        cr_assert_eq(start_vtpmd(), 0, "vtpmd did not start with the sealed file restored");
        wait_ready("ctr-seal");
        assert_instance_works(&c);
        stop_vtpmd();
}
