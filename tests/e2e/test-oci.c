/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCI hook with a real runc: a real swtpm as the host TPM behind a real
 * tpm2-abrmd (so attestd and vtpmd share it), the real vtpmd, real runc
 * containers on a busybox-static rootfs with the host's tpm2-tools
 * bind-mounted read-only, and cscp-oci-hook wired into config.json. The
 * quote made inside a container is verified here with libcscp against the
 * AK vtpmd reports; the container log is replayed with `cscp eventlog`.
 * Skips (exit 77) only when runc or busybox-static is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "cscp/cel.h"
#include "cscp/eventlog.h"
#include "cscp/quote.h"
#include "core.h"
#include "error.h"
#include "harness.h"
#include "hook-oci.h"
#include "pcr.h"
#include "util.h"
#include "vctl.h"

#define TOOL_MS      60000
#define AK_HANDLE    "0x81800001"
#define MOUNT_INSIDE "/run/cscp/vtpm"
#define MAX_CTR      4

static char *dir, *pki, *state, *run, *sock_path, *runc_root;
static harness_swtpm_t host;
static harness_proc_t dbus, abrmd, vd;
static harness_attestd_t ad;
static bool have_ad;
static char *ctr_ids[MAX_CTR];
static size_t n_ctr;

/* ---- the rig ------------------------------------------------------------------- */

static char *bin(const char *sub, const char *name)
{
        return harness_path(sub ? harness_path(harness_build_dir(), sub) : harness_build_dir(), name);
}

static char *hook_bin(void)
{
        return bin("vtpmd", "cscp-oci-hook");
}

static void start_vtpmd(void)
{
        char *ready = harness_path(dir, "vtpmd.ready");
        char **argv =
                vctl_vtpmd_argv(HARNESS_TABRMD_TCTI, state, run, pki, ready, (const char *[]){"--pool", "2", NULL});

        if (vctl_vtpmd_spawn(argv, harness_path(dir, "vtpmd.log"), ready, 60000, &vd) < 0)
                cr_assert_fail("vtpmd not ready");
}

static void setup(void)
{
        dir = harness_setup_tpm("host", &pki, &host);
        state = harness_path(dir, "state");
        /* A longer run dir than usual: vtpmd's id limit (socket path length) drops below the hook's 64. */
        run = harness_path(dir, "run-dir-of-vtpmd");
        sock_path = harness_path(run, "vtpmd.sock");
        runc_root = harness_path(dir, "runc");
        n_ctr = 0;
        have_ad = false;
        harness_abrmd_start(dir, host.tcti, &dbus, &abrmd);
        start_vtpmd();
}

static int runc(int timeout_ms, char **out, char **err, const char *const *args)
{
        return harness_run_kept(harness_argv((const char *[]){"runc", "--root", runc_root, NULL}, args, NULL),
                                timeout_ms, out, err);
}

static void teardown(void)
{
        for (size_t i = 0; i < n_ctr; i++) {
                const char *args[] = {"delete", "--force", ctr_ids[i], NULL};
                runc(TOOL_MS, NULL, NULL, args);
        }
        if (have_ad)
                harness_attestd_stop(&ad);
        if (vd.pid > 0)
                harness_stop(&vd, SIGTERM, 20000);
        harness_kill_swtpms(state, NULL);
        if (abrmd.pid > 0)
                harness_stop(&abrmd, SIGTERM, 5000);
        if (dbus.pid > 0)
                harness_stop(&dbus, SIGTERM, 5000);
        harness_swtpm_stop(&host);
        free(vd.log);
        free(abrmd.log);
        free(dbus.log);
        vd = abrmd = dbus = (harness_proc_t){0};
}

/* ---- bundles -------------------------------------------------------------------- */

static void xsymlink(const char *target, const char *path)
{
        cr_assert(symlink(target, path) == 0 || errno == EEXIST, "symlink %s: %s", path, strerror(errno));
}

static void xmkdir(const char *path)
{
        cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

/* busybox-static plus mount points for the host's tpm2-tools (bound read-only by config.json). */
static void make_rootfs(const char *root)
{
        static const char *const dirs[] = {
                "",      "/bin", "/usr", "/usr/bin", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/tmp",
                "/proc", "/dev", "/sys", "/run",     "/etc"};
        static const char *const tools[] = {"tpm2_pcrread", "tpm2_quote",      "tpm2_createprimary",
                                            "tpm2_create",  "tpm2_readpublic", "tpm2_getrandom"};
        static const char *const applets[] = {"sh",   "ls",    "cat", "test", "touch", "sleep", "echo",
                                              "grep", "mount", "wc",  "od",   "tr",    "true",  "false"};
        char *argv[] = {"cp", "/usr/bin/busybox", harness_path(root, "bin/busybox"), NULL};
        int code = -1;

        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                xmkdir(harness_path(root, dirs[i][0] ? dirs[i] + 1 : ""));
        xsymlink("usr/lib", harness_path(root, "lib"));
        xsymlink("usr/lib64", harness_path(root, "lib64"));
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, NULL, NULL), 0);
        cr_assert_eq(code, 0, "cp busybox");
        for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
                xsymlink("busybox", harness_path(harness_path(root, "bin"), applets[i]));
        close(open(harness_path(root, "usr/bin/tpm2"), O_CREAT | O_WRONLY | O_CLOEXEC, 0755));
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
                xsymlink("tpm2", harness_path(harness_path(root, "usr/bin"), tools[i]));
}

static struct json_object *ro_bind(const char *src, const char *dst)
{
        struct json_object *m = json_object_new_object(), *o = json_object_new_array();
        json_object_object_add(m, "destination", json_object_new_string(dst));
        json_object_object_add(m, "type", json_object_new_string("bind"));
        json_object_object_add(m, "source", json_object_new_string(src));
        json_object_array_add(o, json_object_new_string("rbind"));
        json_object_array_add(o, json_object_new_string("ro"));
        json_object_array_add(o, json_object_new_string("nosuid"));
        json_object_array_add(o, json_object_new_string("nodev"));
        json_object_object_add(m, "options", o);
        return m;
}

static struct json_object *hook_entry(const char *stage, const char *socket)
{
        struct json_object *h = json_object_new_object(), *a = json_object_new_array();
        json_object_object_add(h, "path", json_object_new_string(hook_bin()));
        json_object_array_add(a, json_object_new_string("cscp-oci-hook"));
        json_object_array_add(a, json_object_new_string(stage));
        json_object_array_add(a, json_object_new_string("--socket"));
        json_object_array_add(a, json_object_new_string(socket));
        json_object_object_add(h, "args", a);
        return h;
}

/*
 * A bundle <dir>/<name>: `runc spec`, then process (no terminal, cmd), the
 * tpm2-tools binds, a tmpfs on /run (the hook makes /run/cscp/vtpm there), the
 * three hooks pointing at socket (NULL: the rig's vtpmd), and annotations
 * (key, value pairs, NULL-terminated).
 */
static char *make_bundle(const char *name, const char *cmd, const char *socket, const char *const *ann)
{
        char *b = harness_path(dir, name), *cfg = harness_path(b, "config.json");
        struct json_object *c, *proc, *args, *mounts, *hooks, *tmpfs, *o, *env, *annotations;
        char *argv[] = {"runc", "spec", "--bundle", b, NULL};
        int code = -1;

        xmkdir(b);
        make_rootfs(harness_path(b, "rootfs"));
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, NULL, NULL), 0);
        cr_assert_eq(code, 0, "runc spec");
        c = json_object_from_file(cfg);
        cr_assert(c, "runc spec wrote no JSON");
        json_object_object_get_ex(c, "process", &proc);
        json_object_object_add(proc, "terminal", json_object_new_boolean(0));
        args = json_object_new_array();
        json_object_array_add(args, json_object_new_string("sh"));
        json_object_array_add(args, json_object_new_string("-c"));
        json_object_array_add(args, json_object_new_string(cmd));
        json_object_object_add(proc, "args", args);
        json_object_object_get_ex(proc, "env", &env);
        json_object_array_add(env, json_object_new_string("TPM2TOOLS_TCTI=swtpm:path=" MOUNT_INSIDE "/tpm.sock"));
        json_object_object_get_ex(c, "mounts", &mounts);
        json_object_array_add(mounts, ro_bind("/usr/bin/tpm2", "/usr/bin/tpm2"));
        json_object_array_add(mounts, ro_bind("/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"));
        json_object_array_add(mounts, ro_bind("/usr/lib64", "/usr/lib64"));
        tmpfs = json_object_new_object();
        json_object_object_add(tmpfs, "destination", json_object_new_string("/run"));
        json_object_object_add(tmpfs, "type", json_object_new_string("tmpfs"));
        json_object_object_add(tmpfs, "source", json_object_new_string("tmpfs"));
        o = json_object_new_array();
        json_object_array_add(o, json_object_new_string("nosuid"));
        json_object_array_add(o, json_object_new_string("nodev"));
        json_object_array_add(o, json_object_new_string("mode=755"));
        json_object_array_add(o, json_object_new_string("size=1m"));
        json_object_object_add(tmpfs, "options", o);
        json_object_array_add(mounts, tmpfs);
        json_object_object_get_ex(c, "root", &o);
        json_object_object_add(o, "readonly", json_object_new_boolean(0));
        hooks = json_object_new_object();
        static const char *const stages[] = {"createRuntime", "createContainer", "poststop"};
        for (size_t i = 0; i < 3; i++) {
                struct json_object *a = json_object_new_array();
                json_object_array_add(a, hook_entry(stages[i], socket ? socket : sock_path));
                json_object_object_add(hooks, stages[i], a);
        }
        json_object_object_add(c, "hooks", hooks);
        annotations = json_object_new_object();
        for (; ann && ann[0]; ann += 2)
                json_object_object_add(annotations, ann[0], json_object_new_string(ann[1]));
        json_object_object_add(c, "annotations", annotations);
        cr_assert_eq(json_object_to_file_ext(cfg, c, JSON_C_TO_STRING_PRETTY), 0);
        json_object_put(c);
        return b;
}

static const char *const default_ann[] = {"org.opencontainers.image.ref.name",
                                          "example.org/busybox:1.35",
                                          "org.opencontainers.image.base.digest",
                                          "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                          "io.kubernetes.cri.image-name",
                                          "docker.io/library/busybox:1.35",
                                          "unrelated.annotation",
                                          "not measured",
                                          NULL};

/* runc run --detach: the container keeps running `sleep` so we can exec into it. */
static void run_detached(const char *id, const char *bundle)
{
        char *argv[] = {"runc", "--root", runc_root, "run", "--detach", "--bundle", (char *)bundle, (char *)id, NULL};
        harness_proc_t p = {0};
        int st = 0;

        ctr_ids[n_ctr++] = harness_keep(strdup(id));
        cr_assert_eq(harness_spawn(argv, harness_path(dir, "runc-run.log"), &p), 0);
        cr_assert_eq(harness_wait(&p, TOOL_MS, &st), 0, "runc run -d %s did not return", id);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                harness_dump_log(&p);
                harness_dump_log(&vd);
                cr_assert_fail("runc run -d %s failed (status 0x%x)", id, (unsigned)st);
        }
        free(p.log);
}

/* runc exec ID sh -c CMD: exit code, output. */
static int exec_in(const char *id, const char *cmd, char **out, char **err)
{
        const char *args[] = {"exec", id, "sh", "-c", cmd, NULL};
        return runc(TOOL_MS, out, err, args);
}

/* ---- vtpmd ------------------------------------------------------------------------ */

static Vtpmd__VtpmResponse *call(Vtpmd__VtpmRequest *req)
{
        return vctl_call(sock_path, &vd, req);
}

static Vtpmd__VtpmResponse *status_of(const char *id)
{
        return vctl_status(sock_path, &vd, id);
}

/* PCR 11 in tpm2_pcrread's output (lower-cased in place) is the replay of the container log. */
static void assert_pcr11_is_replay(char *out, const char *log, const char *what)
{
        char *want = harness_replay(log, 11);

        cr_assert(want, "the container log extends no PCR 11");
        if (strncmp(want, "0x", 2) == 0)
                want += 2;
        for (char *p = out; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        cr_assert(strstr(out, want), "%s (%s) is not the container log's replay (%s)", what, out, want);
}

/* cscp cmd with the TLS options for attestd, then rest (NULL-terminated). */
static char **cscp_argv(const char *cmd, const char *const *rest)
{
        return harness_argv((const char *[]){bin(NULL, "cscp"), cmd, NULL}, harness_tls_args(ad.addr, pki), rest, NULL);
}

/* The AK public vtpmd reports (its Quote answer carries it), checked against Status's ak_name. */
static uint8_t *ak_public_of(const char *id, size_t *ret_len, char ret_name_hex[2 * sizeof(TPMU_NAME) + 1])
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Quote q = VTPMD__QUOTE__INIT;
        Vtpmd__VtpmResponse *resp, *st;
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection **w = NULL;
        size_t nw = 0;
        uint8_t nonce[20] = {1, 2, 3};
        TPM2B_NAME name;
        uint8_t *ak;

        cr_assert_eq(cscp_pcrsel_parse("sha256:11", &sel), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &nw), 0);
        q.container_id = (char *)id;
        q.nonce = (ProtobufCBinaryData){.data = nonce, .len = sizeof(nonce)};
        q.pcrs = w;
        q.n_pcrs = nw;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
        req.quote = &q;
        resp = call(&req);
        cscp_pcrsel_wire_free(w, nw);
        cr_assert_eq(resp->body_case, VTPMD__VTPM_RESPONSE__BODY_QUOTE, "Quote %s refused", id);
        ak = malloc(resp->quote->quote->ak_public.len);
        memcpy(ak, resp->quote->quote->ak_public.data, resp->quote->quote->ak_public.len);
        *ret_len = resp->quote->quote->ak_public.len;
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        cr_assert_eq(cscp_tpm_public_name(ak, *ret_len, &name), 0);
        st = status_of(id);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        cr_assert_eq(st->status->instance->ak_name.len, name.size);
        cr_assert_eq(memcmp(st->status->instance->ak_name.data, name.name, name.size), 0,
                     "Quote's AK public does not have Status's ak_name");
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        cscp_hex_encode(name.name, name.size, ret_name_hex);
        return harness_keep(ak);
}

/* Counts CM_TLV records of kind with field f1 == v1 (and f2 == v2 when v2). */
static int count_records(const char *log, cscp_cm_kind_t kind, cscp_cm_field_t f1, const char *v1, cscp_cm_field_t f2,
                         const char *v2)
{
        size_t len = 0;
        char *buf = harness_slurp(log, &len);
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        int n = 0, r;

        cr_assert(buf, "cannot read %s", log);
        cr_assert_eq(cscp_eventlog_open_mem((uint8_t *)buf, len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;
                if (ev->type != CSCP_CEL_CM_TLV || cscp_cm_decode(ev->data, ev->data_len, &rec) < 0 || rec.kind != kind)
                        continue;
                if (!rec.f[f1].data || rec.f[f1].len != strlen(v1) || memcmp(rec.f[f1].data, v1, strlen(v1)))
                        continue;
                if (v2 && (!rec.f[f2].data || rec.f[f2].len != strlen(v2) || memcmp(rec.f[f2].data, v2, strlen(v2))))
                        continue;
                n++;
        }
        cr_assert_eq(r, 0, "%s: %s", log, cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        return n;
}

static char *sha256_file(const char *path)
{
        size_t len = 0;
        char *buf = harness_slurp(path, &len);
        uint8_t md[32];
        char *hex = malloc(7 + 65);

        cr_assert(buf);
        cr_assert(EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL));
        memcpy(hex, "sha256:", 7);
        cscp_hex_encode(md, 32, hex + 7);
        return harness_keep(hex);
}

/* Host PCR 15 (through abrmd) equals the replay of vtpmd's host log. */
static void assert_host_log_replays(void)
{
        char *argv[] = {"tpm2_pcrread", "sha256:15", NULL};
        char *out = NULL, *err = NULL, *p, *want = harness_replay(harness_path(state, "host.log"), 15);
        int code = -1;

        cr_assert(want);
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "tpm2_pcrread: %s", err);
        p = strstr(out, "15: 0x");
        cr_assert(p, "%s", out);
        p += 6;
        for (size_t i = 0; i < 64; i++)
                cr_assert_eq(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i], want[i],
                             "host PCR 15 %.64s != host log replay %s", p, want);
        free(out);
        free(err);
}

/* Nothing of the test directory is mounted in the host's mount namespace. */
static void assert_no_mounts_left(void)
{
        char *mi = harness_slurp("/proc/self/mountinfo", NULL);
        cr_assert(mi);
        cr_assert(!strstr(mi, dir), "mounts left under %s:\n%s", dir, mi);
}

/* ---- tests -------------------------------------------------------------------------- */

TestSuite(oci, .init = setup, .fini = teardown, .timeout = 500);

/*
 * One container: tpm2-tools inside read PCRs, create a key and quote with the
 * AK; the quote verifies here against the AK vtpmd reports; the container log
 * replays to the PCRs read inside and records this config's digest, args and
 * image annotations; runc delete destroys the vTPM and the host log says so.
 */
Test(oci, container_quote_verifies_and_log_replays)
{
        const char *id = "quote-1";
        char *b = make_bundle("b1", "sleep 600", NULL, default_ann);
        char *out = NULL, *err = NULL, ak_name[2 * sizeof(TPMU_NAME) + 1];
        const char *nonce_hex = "5eed0102030405060708090a0b0c0d0e0f101112";
        char cmd[1024];
        size_t ak_len = 0;

        run_detached(id, b);
        /* Only the endpoint: two sockets, a read-only mount. */
        cr_assert_eq(exec_in(id, "ls " MOUNT_INSIDE, &out, &err), 0, "ls: %s", err);
        cr_assert_str_eq(out, "tpm.sock\ntpm.sock.ctrl\n");
        cr_assert_neq(exec_in(id, "touch " MOUNT_INSIDE "/x", NULL, &err), 0, "the endpoint is writable");
        cr_assert(strstr(err, "Read-only"), "touch: %s", err);
        cr_assert_eq(exec_in(id, "tpm2_pcrread sha256:11,12", &out, &err), 0, "tpm2_pcrread inside: %s", err);
        cr_assert_eq(exec_in(id,
                             "tpm2_createprimary -C o -c /tmp/primary.ctx >/dev/null && "
                             "tpm2_create -C /tmp/primary.ctx -u /tmp/key.pub -r /tmp/key.priv >/dev/null",
                             &out, &err),
                     0, "creating a key inside: %s", err);
        snprintf(cmd, sizeof(cmd),
                 "tpm2_quote -c " AK_HANDLE " -l sha256:11,12 -q %s -m /tmp/q.attest -s /tmp/q.sig -o /tmp/q.pcrs "
                 "-F values -g sha256 >/dev/null",
                 nonce_hex);
        cr_assert_eq(exec_in(id, cmd, &out, &err), 0, "tpm2_quote inside: %s", err);

        /* Verify on the host with libcscp against the AK vtpmd reports. */
        uint8_t *ak = ak_public_of(id, &ak_len, ak_name);
        harness_assert_quote_files(harness_path(b, "rootfs/tmp"), ak, ak_len, nonce_hex, "the in-container quote");

        /* The container log replays to the PCRs the container quoted, and records this config. */
        Vtpmd__VtpmResponse *st = status_of(id);
        char *log = harness_keep(strdup(st->status->instance->log));
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        char *quoted = harness_slurp(harness_path(b, "rootfs/tmp/q.pcrs"), NULL); /* 64 bytes, checked above */
        for (int i = 0; i < 2; i++) {
                char hex[65];
                char *want = harness_replay(log, 11 + (unsigned)i);
                cscp_hex_encode((const uint8_t *)quoted + 32 * i, 32, hex);
                cr_assert(want, "log never extends PCR %d", 11 + i);
                cr_assert_str_eq(hex, want, "PCR %d quoted inside %s != log replay %s", 11 + i, hex, want);
        }
        char *digest = sha256_file(harness_path(b, "config.json"));
        cr_assert_eq(count_records(log, CSCP_CM_CONFIG, CSCP_CM_F_DIGEST, digest, CSCP_CM_F_CONTAINER_ID, id), 1,
                     "no CONFIG record with %s", digest);
        cr_assert_eq(count_records(log, CSCP_CM_PROCESS, CSCP_CM_F_VALUE, "sleep 600", CSCP_CM_F_EVENT, "arg"), 1);
        cr_assert_eq(count_records(log, CSCP_CM_CONFIG, CSCP_CM_F_NAME, "org.opencontainers.image.ref.name",
                                   CSCP_CM_F_VALUE, "example.org/busybox:1.35"),
                     1, "image annotation not measured");
        cr_assert_eq(count_records(log, CSCP_CM_CONFIG, CSCP_CM_F_NAME, "unrelated.annotation", 0, NULL), 0);
        cr_assert_eq(count_records(log, CSCP_CM_LAYER, CSCP_CM_F_DIGEST,
                                   "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                   CSCP_CM_F_NAME, "docker.io/library/busybox:1.35"),
                     1, "image digest annotation not measured as a layer");

        /* runc delete -> poststop -> Destroy; the host log records it. */
        const char *kill_args[] = {"kill", id, "KILL", NULL};
        cr_assert_eq(runc(TOOL_MS, NULL, &err, kill_args), 0, "runc kill: %s", err);
        for (int i = 0; i < 100; i++) {
                const char *sargs[] = {"state", id, NULL};
                runc(TOOL_MS, &out, NULL, sargs);
                if (strstr(out, "\"stopped\""))
                        break;
                usleep(50000);
        }
        const char *del_args[] = {"delete", id, NULL};
        cr_assert_eq(runc(TOOL_MS, NULL, &err, del_args), 0, "runc delete: %s", err);
        n_ctr = 0;
        st = status_of(id);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_ERROR, "vTPM of %s still there after runc delete", id);
        cr_assert_eq(st->error->code, VTPMD__ERROR_CODE__ERR_NOT_FOUND);
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        cr_assert_eq(count_records(harness_path(state, "host.log"), CSCP_CM_CONTAINER, CSCP_CM_F_EVENT, "vtpm-destroy",
                                   CSCP_CM_F_CONTAINER_ID, id),
                     1, "host log has no vtpm-destroy for %s", id);
        assert_host_log_replays();
        assert_no_mounts_left();
}

/*
 * Two containers at once, created while attestd answers a challenge through
 * the same abrmd: each sees only its own vTPM (its AK is the one vtpmd bound
 * to it) and cannot reach the other's socket.
 */
Test(oci, two_containers_isolated)
{
        char *b1 = make_bundle("b1", "sleep 600", NULL, default_ann);
        char *b2 = make_bundle("b2", "sleep 600", NULL, NULL);
        char *out = NULL, *err = NULL, names[2][2 * sizeof(TPMU_NAME) + 1], cmd[PATH_MAX + 200];
        const char *ids[2] = {"iso-a", "iso-b"};
        harness_proc_t ch[3];
        size_t len = 0;

        cr_assert_eq(mkdir(harness_path(dir, "attestd"), 0700), 0);
        cr_assert_eq(harness_attestd_start(harness_path(dir, "attestd"), HARNESS_TABRMD_TCTI, pki, NULL, &ad), 0,
                     "attestd did not start on abrmd");
        have_ad = true;
        /* The host AK these challenges trust: pinned from a first answer (enrollment has its own tests). */
        char *ak_pin = NULL;
        {
                char **argv =
                        cscp_argv("challenge", (const char *[]){"--pcrs", "sha256:0-7,10", "--no-db", "--json", NULL});
                struct json_object *j, *facts, *name;
                int code = -1;

                cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
                j = json_tokener_parse(out);
                cr_assert(j && json_object_object_get_ex(j, "facts", &facts) &&
                                  json_object_object_get_ex(facts, "host-ak-name", &name),
                          "no host-ak-name in: %s %s", out, err);
                ak_pin = harness_keep(strdup(json_object_get_string(name)));
                json_object_put(j);
                free(out);
                free(err);
        }
        /* Challenges in flight while vtpmd creates the vTPMs (host log extends) through the same abrmd. */
        for (int i = 0; i < 3; i++) {
                char **argv = cscp_argv(
                        "challenge", (const char *[]){"--pcrs", "sha256:0-7,10", "--no-db", "--ak-name", ak_pin, NULL});
                char logname[32];
                snprintf(logname, sizeof(logname), "challenge-%d.log", i);
                cr_assert_eq(harness_spawn(argv, harness_path(dir, logname), &ch[i]), 0);
        }
        run_detached(ids[0], b1);
        run_detached(ids[1], b2);
        for (int i = 0; i < 3; i++) {
                int stt = 0;
                cr_assert_eq(harness_wait(&ch[i], 120000, &stt), 0, "a challenge hung (abrmd?)");
                if (!WIFEXITED(stt) || WEXITSTATUS(stt) != 0)
                        harness_dump_log(&ch[i]);
                cr_assert(WIFEXITED(stt) && WEXITSTATUS(stt) == 0, "challenge %d during creates not trusted", i);
                free(ch[i].log);
        }

        for (int i = 0; i < 2; i++) {
                (void)ak_public_of(ids[i], &len, names[i]);
                cr_assert_eq(exec_in(ids[i], "ls " MOUNT_INSIDE, &out, &err), 0);
                cr_assert_str_eq(out, "tpm.sock\ntpm.sock.ctrl\n");
                cr_assert_eq(exec_in(ids[i], "tpm2_readpublic -c " AK_HANDLE " -n /tmp/ak.name >/dev/null", &out, &err),
                             0, "tpm2_readpublic in %s: %s", ids[i], err);
                char *nm = harness_slurp(harness_path(i == 0 ? b1 : b2, "rootfs/tmp/ak.name"), &len);
                char hex[2 * sizeof(TPMU_NAME) + 1];
                cr_assert(nm && len < sizeof(TPMU_NAME));
                cscp_hex_encode((uint8_t *)nm, len, hex);
                cr_assert_str_eq(hex, names[i], "%s sees AK %s, vtpmd bound %s", ids[i], hex, names[i]);
        }
        cr_assert_str_neq(names[0], names[1]);
        /* The other's socket: not in the container's view, by host path or otherwise. */
        for (int i = 0; i < 2; i++) {
                Vtpmd__VtpmResponse *st = status_of(ids[1 - i]);
                snprintf(cmd, sizeof(cmd),
                         "test -e %s && exit 9; TPM2TOOLS_TCTI=swtpm:path=%s tpm2_getrandom 4 >/dev/null 2>&1 && exit "
                         "8; ls /run/cscp; ls -R /run/cscp/vtpm | wc -l",
                         st->status->instance->socket, st->status->instance->socket);
                vtpmd__vtpm_response__free_unpacked(st, NULL);
                int code = exec_in(ids[i], cmd, &out, &err);
                cr_assert_eq(code, 0, "%s reached %s's socket (exit %d): %s", ids[i], ids[1 - i], code, err);
                cr_assert_str_eq(out, "vtpm\n3\n", "%s sees more than its endpoint: %s", ids[i], out);
        }
        assert_host_log_replays();
}

/*
 * A hook failure stops the container: vtpmd unreachable (the container's
 * command never runs, nothing is left); the opt-out annotation lets it run
 * without a vTPM; an id vtpmd refuses stops it with vtpmd's reason.
 */
Test(oci, hook_failure_stops_container)
{
        char *bad_sock = harness_path(dir, "no-vtpmd.sock");
        char *b1 = make_bundle("b1", "touch /ran", bad_sock, NULL);
        char *out = NULL, *err = NULL;
        const char *run1[] = {"run", "--bundle", b1, "fail-1", NULL};

        cr_assert_neq(runc(TOOL_MS, &out, &err, run1), 0, "runc run succeeded without vtpmd");
        cr_assert(strstr(err, "vtpmd is not reachable"), "runc's error does not carry the hook's: %s", err);
        cr_assert(strstr(err, "must not start"), "%s", err);
        cr_assert_neq(access(harness_path(b1, "rootfs/ran"), F_OK), 0, "the container's command ran");
        const char *list[] = {"list", "--quiet", NULL};
        runc(TOOL_MS, &out, NULL, list);
        cr_assert(!strstr(out, "fail-1"), "runc still lists the container: %s", out);
        assert_no_mounts_left();

        const char *opt_ann[] = {HOOK_ANNOTATION, "optional", NULL};
        char *b2 = make_bundle("b2", "touch /ran; test -e " MOUNT_INSIDE "/tpm.sock && echo HAS-VTPM; true", bad_sock,
                               opt_ann);
        const char *run2[] = {"run", "--bundle", b2, "optional-1", NULL};
        cr_assert_eq(runc(TOOL_MS, &out, &err, run2), 0, "optional container did not run: %s", err);
        cr_assert_eq(access(harness_path(b2, "rootfs/ran"), F_OK), 0, "the optional container's command did not run");
        cr_assert(!strstr(out, "HAS-VTPM"), "%s", out);

        /* 64 characters: fine for runc and the hook, too long for this vtpmd's socket paths. */
        char *b3 = make_bundle("b3", "touch /ran", NULL, NULL);
        char longid[65];
        memset(longid, 'x', 64);
        longid[64] = '\0';
        const char *run3[] = {"run", "--bundle", b3, longid, NULL};
        cr_assert_neq(runc(TOOL_MS, &out, &err, run3), 0, "container with an id vtpmd refuses ran");
        cr_assert(strstr(err, "ERR_BAD_REQUEST") && strstr(err, "invalid container id"), "%s", err);
        cr_assert_neq(access(harness_path(b3, "rootfs/ran"), F_OK), 0);
        assert_no_mounts_left();
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__List li = VTPMD__LIST__INIT;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_LIST;
        req.list = &li;
        Vtpmd__VtpmResponse *resp = call(&req);
        cr_assert_eq(resp->listed->n_instances, 0, "vTPMs left behind: %zu", resp->listed->n_instances);
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
}

/* Runs the hook directly with state on stdin; returns its exit code, stderr in *err. */
static int hook(const char *stage, const char *state_json, char **err, const char *socket)
{
        char *in = harness_path(dir, "state.json"), *sh;
        FILE *f = fopen(in, "w");
        int code = -1;
        char *o = NULL;

        cr_assert(f);
        fputs(state_json, f);
        fclose(f);
        cr_assert(asprintf(&sh, "exec '%s' %s --socket '%s' < '%s'", hook_bin(), stage, socket ? socket : sock_path,
                           in) > 0);
        char *argv[] = {"sh", "-c", sh, NULL};
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &o, err), 0);
        free(o);
        free(sh);
        harness_keep(*err);
        return code;
}

static char *state_json(const char *id, const char *bundle, int pid)
{
        char *s;
        cr_assert(asprintf(&s,
                           "{\"ociVersion\":\"1.0.2\",\"id\":\"%s\",\"status\":\"creating\",\"pid\":%d,"
                           "\"bundle\":\"%s\"}",
                           id, pid, bundle) > 0);
        return harness_keep(s);
}

/* Bad input and retries, the hook run directly: clear messages, right exit codes, nothing left. */
Test(oci, hook_bad_input_and_retries)
{
        char *b = make_bundle("b1", "true", NULL, default_ann);
        char *err = NULL;

        cr_assert_eq(hook("createRuntime", "{\"id\": ", &err, NULL), 1);
        cr_assert(strstr(err, "not valid JSON"), "%s", err);
        cr_assert_eq(hook("createRuntime", "[1,2]", &err, NULL), 1);
        cr_assert(strstr(err, "not a JSON object"), "%s", err);
        cr_assert_eq(hook("createRuntime", state_json("../etc", b, 1), &err, NULL), 1);
        cr_assert(strstr(err, "container id"), "%s", err);
        cr_assert_eq(hook("createRuntime", state_json("nocfg", dir, 1), &err, NULL), 1);
        cr_assert(strstr(err, "config.json") && strstr(err, "No such file"), "%s", err);
        cr_assert_eq(hook("createRuntime", state_json("novtpmd", b, 1), &err, harness_path(dir, "nope.sock")), 1);
        cr_assert(strstr(err, "vtpmd is not reachable"), "%s", err);
        cr_assert_eq(hook("bogusStage", state_json("x", b, 1), &err, NULL), 2);
        cr_assert_eq(hook("poststop", state_json("never-had-one", b, 1), &err, NULL), 0);
        cr_assert(strstr(err, "nothing to do"), "%s", err);

        /* createRuntime twice: the retry finds its vTPM and changes nothing. */
        cr_assert_eq(hook("createRuntime", state_json("twice", b, 1), &err, NULL), 0, "%s", err);
        Vtpmd__VtpmResponse *st = status_of("twice");
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        char *log = harness_keep(strdup(st->status->instance->log));
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        char *before = harness_slurp(log, NULL);
        cr_assert_eq(hook("createRuntime", state_json("twice", b, 1), &err, NULL), 0, "%s", err);
        cr_assert(strstr(err, "already has its vTPM"), "%s", err);
        cr_assert_str_eq(harness_slurp(log, NULL), before, "a retried createRuntime changed the container log");

        /* Another config for an existing id is refused: a stale vTPM must not be handed to a new container. */
        char *b2 = make_bundle("b2", "other", NULL, NULL);
        cr_assert_eq(hook("createRuntime", state_json("twice", b2, 1), &err, NULL), 1);
        cr_assert(strstr(err, "not this config.json"), "%s", err);

        /* createContainer twice, in a private mount namespace standing in for the container's. */
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
                char *e2 = NULL;
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(90);
                for (int i = 0; i < 2; i++)
                        if (hook("createContainer", state_json("twice", b, 1), &e2, NULL) != 0) {
                                fprintf(stderr, "%s", e2);
                                _exit(91 + i);
                        }
                char *mi = harness_slurp("/proc/self/mountinfo", NULL);
                int n = 0;
                for (char *p = mi; (p = strstr(p, "/rootfs/run/cscp/vtpm ro,")); p++)
                        n++;
                _exit(n == 1 ? 0 : 95);
        }
        int wst = 0;
        cr_assert_eq(waitpid(pid, &wst, 0), pid);
        cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "createContainer twice: wait status 0x%x (1 mount expected)",
                  (unsigned)wst);
        assert_no_mounts_left();

        /* poststop twice: destroyed, then nothing to do. */
        cr_assert_eq(hook("poststop", state_json("twice", b, 0), &err, NULL), 0, "%s", err);
        cr_assert(strstr(err, "vTPM destroyed"), "%s", err);
        cr_assert_eq(hook("poststop", state_json("twice", b, 0), &err, NULL), 0, "%s", err);
        cr_assert(strstr(err, "nothing to do"), "%s", err);
        /* poststop with vtpmd unreachable: an error (the runtime logs it). */
        cr_assert_eq(hook("poststop", state_json("twice", b, 0), &err, harness_path(dir, "nope.sock")), 1);
        cr_assert(strstr(err, "not reachable"), "%s", err);
}

/* Removes one hook point from a bundle's config.json. */
static void drop_stage(const char *bundle, const char *stage)
{
        char *cfg = harness_path(bundle, "config.json");
        struct json_object *c = json_object_from_file(cfg), *hooks;

        cr_assert(c && json_object_object_get_ex(c, "hooks", &hooks));
        json_object_object_del(hooks, stage);
        cr_assert_eq(json_object_to_file_ext(cfg, c, JSON_C_TO_STRING_PRETTY), 0);
        json_object_put(c);
}

/*
 * Under runc, createRuntime joins the container's mount namespace and mounts
 * the endpoint itself: a config.json with createRuntime and poststop only
 * gives a container its vTPM (read-only, only the endpoint), whose PCR 11
 * inside equals the container log's replay. Where createRuntime cannot mount
 * (here: run by hand from the host's namespace) and no createContainer hook
 * would, it fails and destroys the vTPM again: no container starts without
 * the endpoint.
 */
Test(oci, create_runtime_mounts_under_runc)
{
        const char *id = "early-1";
        char *b = make_bundle("b1", "sleep 600", NULL, default_ann);
        char *out = NULL, *err = NULL, *log;
        Vtpmd__VtpmResponse *st;

        drop_stage(b, "createContainer");
        run_detached(id, b);
        cr_assert_eq(exec_in(id, "ls " MOUNT_INSIDE, &out, &err), 0, "ls: %s", err);
        cr_assert_str_eq(out, "tpm.sock\ntpm.sock.ctrl\n");
        cr_assert_neq(exec_in(id, "touch " MOUNT_INSIDE "/x", NULL, &err), 0, "the endpoint is writable");
        cr_assert_eq(exec_in(id, "tpm2_pcrread sha256:11", &out, &err), 0, "tpm2_pcrread inside: %s", err);
        st = status_of(id);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        log = harness_keep(strdup(st->status->instance->log));
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        assert_pcr11_is_replay(out, log, "PCR 11 inside");

        char *b2 = make_bundle("b2", "true", NULL, NULL);
        drop_stage(b2, "createContainer");
        cr_assert_eq(hook("createRuntime", state_json("early-2", b2, 1), &err, NULL), 1);
        cr_assert(strstr(err, "no createContainer hook"), "%s", err);
        cr_assert(strstr(err, "destroyed again"), "%s", err);
        st = status_of("early-2");
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_ERROR, "the vTPM of early-2 was left behind");
        cr_assert_eq(st->error->code, VTPMD__ERROR_CODE__ERR_NOT_FOUND);
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        assert_no_mounts_left();
}

/*
 * vtpmd answers Create once the records are durable and extends after (held
 * back 2 s here by its test hook): the container's very first command reads
 * PCR 11 through the endpoint and must see the measurements (the endpoint
 * waits for the extends), equal to the container log's replay; a poststop
 * right after a Create waits too and destroys.
 */
Test(oci, first_tpm_command_waits_for_the_extends)
{
        const char *id = "first-cmd";
        char *b, *pcr_file, *got = NULL;
        Vtpmd__VtpmResponse *st;

        harness_stop(&vd, SIGTERM, 20000);
        free(vd.log);
        vd = (harness_proc_t){0};
        setenv("CSCP_VTPMD_TEST_SETTLE_DELAY_MS", "2000", 1);
        start_vtpmd();
        unsetenv("CSCP_VTPMD_TEST_SETTLE_DELAY_MS");

        b = make_bundle("b1", "tpm2_pcrread sha256:11 > /tmp/pcr11 2>&1; sleep 600", NULL, NULL);
        pcr_file = harness_path(b, "rootfs/tmp/pcr11");
        run_detached(id, b);
        for (int waited = 0; waited < 60000; waited += 100) {
                size_t n = 0;
                got = harness_slurp(pcr_file, &n);
                if (got && n > 0 && strstr(got, "11:"))
                        break;
                got = NULL; /* kept by the harness */
                usleep(100000);
        }
        cr_assert(got, "the container's first command wrote no PCR 11");
        st = status_of(id);
        cr_assert_eq(st->body_case, VTPMD__VTPM_RESPONSE__BODY_STATUS);
        assert_pcr11_is_replay(got, st->status->instance->log, "the first command read PCR 11");
        vtpmd__vtpm_response__free_unpacked(st, NULL);

        /* A Create answered, then at once the hook's poststop: it waits for the extends and destroys. */
        char *b2 = make_bundle("b2", "true", NULL, NULL);
        char *err = NULL;
        cr_assert_eq(hook("createRuntime", state_json("quick", b2, 1), &err, NULL), 0, "%s", err);
        cr_assert_eq(hook("poststop", state_json("quick", b2, 0), &err, NULL), 0, "%s", err);
        cr_assert(strstr(err, "vTPM destroyed"), "%s", err);
        assert_host_log_replays();
}

/* The hooks.d files (podman / CRI-O) follow oci-hooks(5) version 1.0.0. */
static void validate_hooks_json(const char *path, const char *want_stage)
{
        static const char *const stages[] = {"prestart",       "createRuntime", "createContainer",
                                             "startContainer", "poststart",     "poststop"};
        static const char *const top_keys[] = {"version", "hook", "when", "stages"};
        static const char *const hook_keys[] = {"path", "args", "env", "timeout"};
        static const char *const when_keys[] = {"always", "annotations", "commands", "hasBindMounts"};
        struct json_object *j = json_object_from_file(path), *v, *h, *w, *s;

        cr_assert(j, "%s is not JSON", path);
        json_object_object_foreach(j, k, val)
        {
                bool ok = false;
                for (size_t i = 0; i < 4; i++)
                        ok = ok || strcmp(k, top_keys[i]) == 0;
                cr_assert(ok, "%s: unknown key %s", path, k);
                (void)val;
        }
        cr_assert(json_object_object_get_ex(j, "version", &v) && strcmp(json_object_get_string(v), "1.0.0") == 0);
        cr_assert(json_object_object_get_ex(j, "hook", &h) && json_object_is_type(h, json_type_object));
        json_object_object_foreach(h, hk, hv)
        {
                bool ok = false;
                for (size_t i = 0; i < 4; i++)
                        ok = ok || strcmp(hk, hook_keys[i]) == 0;
                cr_assert(ok, "%s: unknown hook key %s", path, hk);
                (void)hv;
        }
        cr_assert(json_object_object_get_ex(h, "path", &v) && json_object_get_string(v)[0] == '/',
                  "%s: hook.path must be absolute", path);
        cr_assert(json_object_object_get_ex(h, "args", &v) && json_object_is_type(v, json_type_array));
        cr_assert_eq(json_object_array_length(v), 2);
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 1)), want_stage);
        if (json_object_object_get_ex(h, "timeout", &v))
                cr_assert(json_object_is_type(v, json_type_int) && json_object_get_int(v) > 0);
        cr_assert(json_object_object_get_ex(j, "when", &w) && json_object_is_type(w, json_type_object));
        cr_assert_gt(json_object_object_length(w), 0, "%s: when needs at least one condition", path);
        json_object_object_foreach(w, wk, wv)
        {
                bool ok = false;
                for (size_t i = 0; i < 4; i++)
                        ok = ok || strcmp(wk, when_keys[i]) == 0;
                cr_assert(ok, "%s: unknown when key %s", path, wk);
                (void)wv;
        }
        cr_assert(json_object_object_get_ex(j, "stages", &s) && json_object_is_type(s, json_type_array));
        cr_assert_eq(json_object_array_length(s), 1);
        for (size_t i = 0; i < json_object_array_length(s); i++) {
                const char *st = json_object_get_string(json_object_array_get_idx(s, i));
                bool ok = false;
                for (size_t k2 = 0; k2 < sizeof(stages) / sizeof(stages[0]); k2++)
                        ok = ok || strcmp(st, stages[k2]) == 0;
                cr_assert(ok, "%s: unknown stage %s", path, st);
                cr_assert_str_eq(st, want_stage);
        }
        json_object_put(j);
}

Test(oci, hooks_d_files_validate)
{
        static const char *const stages[] = {"createRuntime", "createContainer", "poststop"};
        for (size_t i = 0; i < 3; i++) {
                char name[64];
                snprintf(name, sizeof(name), "cscp-vtpm-%s.json", stages[i]);
                validate_hooks_json(bin("vtpmd", name), stages[i]);
                validate_hooks_json(harness_path(harness_path(harness_source_dir(), "docs/hooks.d"), name), stages[i]);
        }
}

static bool have_program(const char *name)
{
        const char *path = getenv("PATH");
        char buf[PATH_MAX];

        for (const char *p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"; *p;) {
                size_t n = strcspn(p, ":");
                snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
                if (access(buf, X_OK) == 0)
                        return true;
                p += n + (p[n] == ':');
        }
        return false;
}

int main(int argc, char **argv)
{
        struct criterion_test_set *tests;
        int result = 0;

        if (!have_program("runc")) {
                fprintf(stderr, "SKIP: runc is not installed (apt-get install runc; scripts/deps installs it)\n");
                return 77;
        }
        if (access("/usr/bin/busybox", X_OK) < 0 || geteuid() != 0) {
                fprintf(stderr, "SKIP: needs root and busybox-static (/usr/bin/busybox) for the container rootfs\n");
                return 77;
        }
        tests = criterion_initialize();
        if (criterion_handle_args(argc, argv, true))
                result = !criterion_run_all_tests(tests);
        criterion_finalize(tests);
        return result;
}

/*
 * The whole Container State Challenge Protocol against a real runc container
 * started with the hook: enroll the host AK, then `cscp challenge --container`
 * gets host and container quotes, both logs, the bind record and the vEK
 * certificate, and trusts them; after `runc delete` the vtpm-destroy record
 * makes the same challenge fail (attestd no longer knows the container).
 */
Test(oci, container_challenge_of_a_runc_container_is_trusted)
{
        const char *id = "csc-1";
        char *b = make_bundle("b1", "sleep 600", NULL, default_ann);
        char *db = harness_path(dir, "store.db"), *out = NULL, *err = NULL;
        char *extra[] = {"--vtpmd", sock_path, "--host-log", harness_path(state, "host.log"), NULL};
        int code;

        cr_assert_eq(mkdir(harness_path(dir, "attestd"), 0700), 0);
        cr_assert_eq(harness_attestd_start(harness_path(dir, "attestd"), HARNESS_TABRMD_TCTI, pki, extra, &ad), 0);
        have_ad = true;
        run_detached(id, b);
        {
                char **argv = cscp_argv("enroll", (const char *[]){"--tofu", "--db", db, NULL});
                cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
                cr_assert_eq(code, 0, "enroll: %s %s", out, err);
                free(out);
                free(err);
        }
        char **argv = cscp_argv("challenge", (const char *[]){"--container", (char *)id, "--vtpm-ca",
                                                              harness_path(pki, "vtpm-ca.pem"), "--db", db, NULL});
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 0, "container challenge not trusted:\n%s\n%s", out, err);
        cr_assert(strstr(out, "ok   vtpm-bind"), "%s", out);
        cr_assert(strstr(out, "ok   container-pcrs-replay"), "%s", out);
        free(out);
        free(err);

        /* runc delete: the poststop hook destroys the vTPM; the container is gone for attestd. */
        {
                const char *del[] = {"delete", "--force", id, NULL};
                cr_assert_eq(runc(TOOL_MS, NULL, NULL, del), 0);
        }
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &out, &err), 0);
        cr_assert_eq(code, 2, "a destroyed container must not be challengeable: %d\n%s\n%s", code, out, err);
        cr_assert(strstr(err, "ERR_NOT_FOUND"), "%s", err);
        free(out);
        free(err);
}
