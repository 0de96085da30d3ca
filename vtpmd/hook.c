/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp-oci-hook: the OCI runtime hook that gives a container its vTPM
 * (docs/oci-hook.md). One binary for three hook points:
 *
 *   createRuntime    read the state (stdin) and <bundle>/config.json, ask
 *                    vtpmd to Create the container's vTPM with its
 *                    measurements, the image annotations included (one
 *                    Measure each only for a vtpmd that predates that)
 *   createContainer  bind-mount the vTPM endpoint directory
 *                    (<run-dir>/vtpm/<id>: tpm.sock, tpm.sock.ctrl) read-only
 *                    at /run/cscp/vtpm inside the container's root, in the
 *                    container's mount namespace, before pivot_root
 *                    (--frontend vtpm-proxy: make /dev/tpm0 and /dev/tpmrm0
 *                    there instead, with the numbers of the host devices vtpmd
 *                    reports; createRuntime has allowed them in the device
 *                    cgroup, cgroup v1, or checked that config.json does, v2)
 *   poststop         ask vtpmd to Destroy it
 *
 * Every step is idempotent against retries. A failure is fatal for the
 * container (exit 1: the runtime stops) unless its config carries the
 * annotation org.cscp.vtpm=optional (or =disabled: the hook does nothing).
 * Exit status: 0 done, 1 failed (the runtime must stop the container), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cscp/cel.h"
#include "cscp/eventlog.h"
#include "core.h"
#include "error.h"
#include "hook-oci.h"

#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define BUSY_RETRIES     50 /* ERR_BUSY: the instance is being created or destroyed; 100 ms apart */
#define ANNOTATION_PCR   11
#define MOUNT_POINT      "/run/cscp/vtpm"
#define RUN_DIR          "/run/cscp"
#define LOG_MAX          (64u * 1024 * 1024)
#define ANNOTATION_EVENT "annotation"

typedef enum stage {
        STAGE_CREATE_RUNTIME,
        STAGE_CREATE_CONTAINER,
        STAGE_POSTSTOP,
} stage_t;

typedef struct hook {
        stage_t stage;
        const char *stage_name;
        const char *socket;
        const char *mount_point;
        const char *runtime, *runtime_version;
        bool vtpm_proxy;
        int timeout_ms;
        hook_state_t st;
        hook_config_t cfg;
        bool have_cfg;
} hook_t;

static void usage(FILE *f)
{
        fprintf(f, "Usage: cscp-oci-hook createRuntime|createContainer|poststop [OPTIONS] < OCI-STATE\n"
                   "OCI runtime hook: gives the container its own vTPM from vtpmd (docs/oci-hook.md).\n"
                   "\n"
                   "  createRuntime    reads the state (stdin) and <bundle>/config.json and asks vtpmd to\n"
                   "                   create the container's vTPM, measured with the config digest\n"
                   "                   (sha256 of the config.json bytes), args, env and image annotations\n"
                   "  createContainer  bind-mounts the vTPM endpoint (tpm.sock, tpm.sock.ctrl) read-only at\n"
                   "                   " MOUNT_POINT " inside the container (in its mount namespace)\n"
                   "  poststop         asks vtpmd to destroy the container's vTPM\n"
                   "  (prestart is accepted as createRuntime for runtimes without createRuntime)\n"
                   "\n"
                   "Options:\n"
                   "  --socket PATH          vtpmd's control socket (default <run-dir>/vtpmd.sock)\n"
                   "  --run-dir DIR          vtpmd's run directory (default " RUN_DIR ")\n"
                   "  --mount-point PATH     where the endpoint appears in the container (default " MOUNT_POINT ")\n"
                   "  --frontend socket|vtpm-proxy\n"
                   "                         socket (default): the endpoint directory; vtpm-proxy: /dev/tpm0 and\n"
                   "                         /dev/tpmrm0 device nodes of the host's /dev/tpmN, /dev/tpmrmN (needs\n"
                   "                         /dev/vtpmx and vtpmd --frontend vtpm-proxy; under cgroup v2 config.json\n"
                   "                         must allow the devices, see docs/oci-hook.md)\n"
                   "  --runtime NAME, --runtime-version V\n"
                   "                         measured as the runtime (default: the parent process's name, and\n"
                   "                         \"oci-<ociVersion>\")\n"
                   "  --timeout SEC          give up waiting for vtpmd after SEC (default 120)\n"
                   "  -h, --help             this text\n"
                   "\n"
                   "Annotation org.cscp.vtpm: required (default: no vTPM, no container), optional (run without\n"
                   "a vTPM when provisioning fails, with a warning), disabled (the hook does nothing).\n"
                   "Exit status: 0 done, 1 failed (the runtime must not start the container), 2 usage error.\n");
}

static void msg(const hook_t *h, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * One line, one write(2): stderr is unbuffered and the runtime reads it through a pipe, so every separate write
 * wakes the runtime on the container's start path.
 */
static void msg(const hook_t *h, const char *level, const char *fmt, ...)
{
        char text[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        fprintf(stderr, "cscp-oci-hook: %s%s%s: %s%s\n", h->stage_name, h->st.id ? " " : "", h->st.id ? h->st.id : "",
                level, text);
}

/* A failure: fatal unless the container opted out (then a warning and exit 0). */
static int failed(const hook_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int failed(const hook_t *h, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        bool optional = h->have_cfg && h->cfg.mode == HOOK_MODE_OPTIONAL && h->stage != STAGE_POSTSTOP;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (optional) {
                msg(h, "warning: ", "%s; the container runs WITHOUT a vTPM (annotation %s=optional)", buf,
                    HOOK_ANNOTATION);
                return 0;
        }
        if (h->stage == STAGE_POSTSTOP)
                msg(h, "error: ", "%s", buf);
        else
                msg(h,
                    "error: ", "%s; the container must not start (annotation %s=optional lets it run without a vTPM)",
                    buf, HOOK_ANNOTATION);
        return EXIT_FAILED;
}

/* ---- vtpmd ------------------------------------------------------------------- */

/* One request; retries while vtpmd answers ERR_BUSY. r < 0: unreachable (message in err). */
static int call(const hook_t *h, Vtpmd__VtpmRequest *req, Vtpmd__VtpmResponse **ret, char *err, size_t err_len)
{
        for (int attempt = 0;; attempt++) {
                vtpmd_client_t *c = NULL;
                Vtpmd__VtpmResponse *resp = NULL;
                int r = vtpmd_client_connect(h->socket, h->timeout_ms, &c);

                if (r < 0) {
                        snprintf(err, err_len, "vtpmd is not reachable at %s (%s)", h->socket, cscp_strerror(r));
                        return r;
                }
                r = vtpmd_client_call(c, req, &resp);
                vtpmd_client_free(c);
                if (r < 0) {
                        snprintf(err, err_len, "no answer from vtpmd at %s (%s)", h->socket, cscp_strerror(r));
                        return r;
                }
                if (resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR &&
                    resp->error->code == VTPMD__ERROR_CODE__ERR_BUSY && attempt < BUSY_RETRIES) {
                        vtpmd__vtpm_response__free_unpacked(resp, NULL);
                        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
                        continue;
                }
                *ret = resp;
                return 0;
        }
}

static Vtpmd__ErrorCode err_code(const Vtpmd__VtpmResponse *resp)
{
        return resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->code
                                                                   : VTPMD__ERROR_CODE__ERR_UNSPECIFIED;
}

static int status(const hook_t *h, Vtpmd__VtpmResponse **ret, char *err, size_t err_len)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Status s = VTPMD__STATUS__INIT;

        s.container_id = h->st.id;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_STATUS;
        req.status = &s;
        return call(h, &req, ret, err, err_len);
}

static int destroy(const hook_t *h, Vtpmd__VtpmResponse **ret, char *err, size_t err_len)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Destroy d = VTPMD__DESTROY__INIT;

        d.container_id = h->st.id;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_DESTROY;
        req.destroy = &d;
        return call(h, &req, ret, err, err_len);
}

/* ---- the container log ----------------------------------------------------------- */

/* What the container log already says about this container. */
typedef struct log_facts {
        bool config_found;                       /* a CONFIG record for this container id */
        char config_digest[HOOK_DIGEST_LEN + 1]; /* its digest */
        bool *ann_present;                       /* per cfg.ann_keys: an identical annotation record exists */
} log_facts_t;

static bool field_is(const cscp_cm_record_t *rec, cscp_cm_field_t f, const char *s)
{
        return rec->f[f].data && rec->f[f].len == strlen(s) && memcmp(rec->f[f].data, s, rec->f[f].len) == 0;
}

static int log_scan(const hook_t *h, const char *path, log_facts_t *facts, char *err, size_t err_len)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        struct stat stbuf;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                snprintf(err, err_len, "cannot open the container log %s: %s", path, strerror(errno));
                return -errno;
        }
        if (fstat(fd, &stbuf) < 0 || !S_ISREG(stbuf.st_mode) || (uint64_t)stbuf.st_size > LOG_MAX) {
                snprintf(err, err_len, "the container log %s is not a regular file under %u bytes", path, LOG_MAX);
                close(fd);
                return -EINVAL;
        }
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l);
        if (r < 0) {
                snprintf(err, err_len, "cannot read the container log %s: %s", path, cscp_strerror(r));
                close(fd);
                return r;
        }
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;
                if (ev->type != CSCP_CEL_CM_TLV || cscp_cm_decode(ev->data, ev->data_len, &rec) < 0 ||
                    rec.kind != CSCP_CM_CONFIG)
                        continue;
                if (field_is(&rec, CSCP_CM_F_CONTAINER_ID, h->st.id) && rec.f[CSCP_CM_F_DIGEST].data &&
                    !rec.f[CSCP_CM_F_EVENT].data && rec.f[CSCP_CM_F_DIGEST].len <= HOOK_DIGEST_LEN) {
                        facts->config_found = true;
                        memcpy(facts->config_digest, rec.f[CSCP_CM_F_DIGEST].data, rec.f[CSCP_CM_F_DIGEST].len);
                        facts->config_digest[rec.f[CSCP_CM_F_DIGEST].len] = '\0';
                }
                if (!field_is(&rec, CSCP_CM_F_EVENT, ANNOTATION_EVENT) || !facts->ann_present)
                        continue;
                for (size_t i = 0; i < h->cfg.n_ann; i++)
                        if (field_is(&rec, CSCP_CM_F_NAME, h->cfg.ann_keys[i]) &&
                            field_is(&rec, CSCP_CM_F_VALUE, h->cfg.ann_values[i]))
                                facts->ann_present[i] = true;
        }
        if (r < 0)
                snprintf(err, err_len, "the container log %s is malformed: %s", path, cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        close(fd);
        return r < 0 ? r : 0;
}

/*
 * Status + log: 1 when the container has a vTPM measured with this config
 * (*ret_resp = the Status answer), 0 when vtpmd has none (NOT_FOUND), < 0 on
 * any other failure (message in err).
 */
static int vtpm_of_this_config(const hook_t *h, log_facts_t *facts, Vtpmd__VtpmResponse **ret_resp, char *err,
                               size_t err_len)
{
        Vtpmd__VtpmResponse *resp = NULL;
        int r = status(h, &resp, err, err_len);

        if (r < 0)
                return r;
        if (err_code(resp) == VTPMD__ERROR_CODE__ERR_NOT_FOUND) {
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return 0;
        }
        if (resp->body_case != VTPMD__VTPM_RESPONSE__BODY_STATUS) {
                snprintf(err, err_len, "vtpmd refused Status (%s): %s", vtpmd_error_code_name(err_code(resp)),
                         resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "");
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return -EPROTO;
        }
        r = log_scan(h, resp->status->instance->log, facts, err, err_len);
        if (r < 0) {
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return r;
        }
        if (!facts->config_found || strcmp(facts->config_digest, h->cfg.digest) != 0) {
                snprintf(err, err_len,
                         "container %s already has a vTPM, measured with config %s, not this config.json (%s): a "
                         "stale vTPM of an earlier container with this id? (vtpmctl destroy %s)",
                         h->st.id, facts->config_found ? facts->config_digest : "(none recorded)", h->cfg.digest,
                         h->st.id);
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return -EEXIST;
        }
        *ret_resp = resp;
        return 1;
}

/* ---- createRuntime ------------------------------------------------------------------ */

static int measure_annotation(const hook_t *h, size_t i, char *err, size_t err_len)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Measure m = VTPMD__MEASURE__INIT;
        Vtpmd__MeasureField f[4], *pf[4];
        const char *vals[4] = {ANNOTATION_EVENT, h->st.id, h->cfg.ann_keys[i], h->cfg.ann_values[i]};
        const uint32_t types[4] = {CSCP_CM_F_EVENT, CSCP_CM_F_CONTAINER_ID, CSCP_CM_F_NAME, CSCP_CM_F_VALUE};
        Vtpmd__VtpmResponse *resp = NULL;
        int r;

        for (size_t k = 0; k < 4; k++) {
                vtpmd__measure_field__init(&f[k]);
                f[k].type = types[k];
                f[k].value = (ProtobufCBinaryData){.data = (uint8_t *)vals[k], .len = strlen(vals[k])};
                pf[k] = &f[k];
        }
        m.container_id = h->st.id;
        m.pcr = ANNOTATION_PCR;
        m.kind = CSCP_CM_CONFIG;
        m.fields = pf;
        m.n_fields = 4;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_MEASURE;
        req.measure = &m;
        r = call(h, &req, &resp, err, err_len);
        if (r < 0)
                return r;
        if (resp->body_case != VTPMD__VTPM_RESPONSE__BODY_MEASURED) {
                snprintf(err, err_len, "vtpmd refused to measure annotation %s (%s): %s", h->cfg.ann_keys[i],
                         vtpmd_error_code_name(err_code(resp)),
                         resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "");
                r = -EPROTO;
        }
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return r;
}

/* Measures the annotations not yet in the log (all of them when present == NULL). */
static int measure_annotations(const hook_t *h, const bool *present, char *err, size_t err_len)
{
        for (size_t i = 0; i < h->cfg.n_ann; i++) {
                int r;
                if (present && present[i])
                        continue;
                r = measure_annotation(h, i, err, err_len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The runtime's name when --runtime is not given: the parent process (the runtime calls its hooks itself). */
static void runtime_default(char *buf, size_t len)
{
        char path[64], exe[PATH_MAX];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)getppid());
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n <= 0) {
                snprintf(buf, len, "unknown");
                return;
        }
        exe[n] = '\0';
        snprintf(buf, len, "%.200s", strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe);
}

/* ---- --frontend vtpm-proxy: the device cgroup (createRuntime) ----------------------------- */

#define CGROUP_MOUNT "/sys/fs/cgroup"

static int proxy_reported(const hook_t *h, const Vtpmd__Instance *in, char *err, size_t err_len)
{
        (void)h;
        if (in->proxy_device && in->proxy_device[0] && in->proxy_rm_device && in->proxy_rm_device[0] &&
            in->proxy_rm_major)
                return 0;
        snprintf(err, err_len,
                 "vtpmd reports no vtpm-proxy device for this container (run vtpmd with --frontend vtpm-proxy; it "
                 "needs /dev/vtpmx: modprobe tpm_vtpm_proxy)");
        return -ENODEV;
}

/*
 * The container may use (and its runc init mknod) the two devices: cgroup v1,
 * the hook appends them to the container's devices.allow (runc has applied
 * config.json's rules before createRuntime); cgroup v2, runc's eBPF device
 * program is made from config.json alone and a hook cannot extend it, so
 * config.json must already allow them.
 */
static int proxy_cgroup(const hook_t *h, const Vtpmd__Instance *in, char *err, size_t err_len)
{
        const unsigned dev[2][2] = {{in->proxy_major, in->proxy_minor}, {in->proxy_rm_major, in->proxy_rm_minor}};
        bool ok = true;
        char dir[PATH_MAX], proc[64];
        int v, r;

        for (int i = 0; i < 2; i++)
                ok = ok && hook_devices_allowed(&h->cfg, 'c', dev[i][0], dev[i][1], "rwm");
        if (ok)
                return 0; /* config.json allows both already (any cgroup version) */
        v = hook_cgroup_devices_version(CGROUP_MOUNT);
        if (v == 2) {
                snprintf(err, err_len,
                         "config.json's linux.resources.devices does not allow %s (c %u:%u) and %s (c %u:%u) with "
                         "access rwm; under cgroup v2 runc's device filter comes from config.json only: add "
                         "{\"allow\": true, \"type\": \"c\", \"major\": %u, \"access\": \"rwm\"} (every /dev/tpmN "
                         "and /dev/tpmrmN but /dev/tpm0) and {\"allow\": true, \"type\": \"c\", \"major\": 10, "
                         "\"minor\": 224, \"access\": \"rwm\"} (/dev/tpm0)",
                         in->proxy_device, dev[0][0], dev[0][1], in->proxy_rm_device, dev[1][0], dev[1][1],
                         in->proxy_rm_major);
                return -EPERM;
        }
        if (v != 1) {
                snprintf(err, err_len, "cannot tell the cgroup version under %s (%s)", CGROUP_MOUNT, strerror(-v));
                return v;
        }
        if (h->st.pid <= 0) {
                snprintf(err, err_len, "the OCI state has no pid: cannot find the container's devices cgroup");
                return -EINVAL;
        }
        snprintf(proc, sizeof(proc), "/proc/%d/cgroup", (int)h->st.pid);
        r = hook_cgroup_v1_devices_dir(proc, CGROUP_MOUNT "/devices", dir, sizeof(dir), err, err_len);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++) {
                r = hook_devices_allow(dir, dev[i][0], dev[i][1], "rwm", err, err_len);
                if (r < 0)
                        return r;
        }
        msg(h, "", "device cgroup %s allows c %u:%u and c %u:%u", dir, dev[0][0], dev[0][1], dev[1][0], dev[1][1]);
        return 0;
}

static int proxy_prepare(const hook_t *h, const Vtpmd__Instance *in, char *err, size_t err_len)
{
        int r;

        if (!h->vtpm_proxy)
                return 0;
        r = proxy_reported(h, in, err, err_len);
        return r < 0 ? r : proxy_cgroup(h, in, err, err_len);
}

static int mount_early_or_later(const hook_t *h, const char *socket, char *err, size_t err_len);

static int create_runtime(hook_t *h)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Create cr = VTPMD__CREATE__INIT;
        Vtpmd__Measurements ms = VTPMD__MEASUREMENTS__INIT;
        Vtpmd__Annotation *ann = NULL, **pann = NULL;
        Vtpmd__VtpmResponse *resp = NULL;
        char err[1024], rt[256], rtv[300];
        int r, rc;

        if (h->vtpm_proxy && access("/dev/vtpmx", F_OK) < 0)
                return failed(h, "the vtpm-proxy frontend needs /dev/vtpmx (modprobe tpm_vtpm_proxy); this host has "
                                 "none");
        if (h->runtime)
                snprintf(rt, sizeof(rt), "%s", h->runtime);
        else
                runtime_default(rt, sizeof(rt));
        if (h->runtime_version)
                snprintf(rtv, sizeof(rtv), "%s", h->runtime_version);
        else
                snprintf(rtv, sizeof(rtv), "oci-%s", h->cfg.oci_version[0] ? h->cfg.oci_version : "unknown");
        ms.runtime_name = rt;
        ms.runtime_version = rtv;
        ms.config_digest = h->cfg.digest;
        ms.args = h->cfg.args;
        ms.n_args = h->cfg.n_args;
        ms.env = h->cfg.env;
        ms.n_env = h->cfg.n_env;
        ms.layers = h->cfg.layers;
        ms.n_layers = h->cfg.n_layers;
        ms.image_name = (char *)h->cfg.image_name;
        /* The annotation records travel inside Create (no Measure round trip each, no wait for the extends). */
        if (h->cfg.n_ann) {
                ann = calloc(h->cfg.n_ann, sizeof(*ann));
                pann = calloc(h->cfg.n_ann, sizeof(*pann));
                if (!ann || !pann) {
                        free(ann);
                        free(pann);
                        return failed(h, "out of memory");
                }
                for (size_t i = 0; i < h->cfg.n_ann; i++) {
                        vtpmd__annotation__init(&ann[i]);
                        ann[i].key = h->cfg.ann_keys[i];
                        ann[i].value = h->cfg.ann_values[i];
                        pann[i] = &ann[i];
                }
                ms.annotations = pann;
                ms.n_annotations = h->cfg.n_ann;
        }
        cr.container_id = h->st.id;
        cr.measurements = &ms;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_CREATE;
        req.create = &cr;
        r = call(h, &req, &resp, err, sizeof(err));
        free(ann);
        free(pann);
        if (r < 0)
                return failed(h, "%s", err);
        if (resp->body_case == VTPMD__VTPM_RESPONSE__BODY_CREATED) {
                const Vtpmd__Instance *in = resp->created->instance;
                int mounted = 0;
                r = 0;
                /* A vtpmd that predates Measurements.annotations ignored them: one Measure each, as before. */
                if (resp->created->annotations_measured != h->cfg.n_ann)
                        r = measure_annotations(h, NULL, err, sizeof(err));
                if (r == 0)
                        r = proxy_prepare(h, in, err, sizeof(err));
                if (r == 0)
                        r = mounted = mount_early_or_later(h, in->socket, err, sizeof(err));
                if (r < 0) {
                        /* Never leave a half-measured vTPM behind. */
                        Vtpmd__VtpmResponse *d = NULL;
                        char e2[512];
                        if (destroy(h, &d, e2, sizeof(e2)) == 0)
                                vtpmd__vtpm_response__free_unpacked(d, NULL);
                        rc = failed(h, "%s (the new vTPM was destroyed again)", err);
                } else {
                        msg(h, "", "vTPM ready (%s, swtpm %u, %s, config %s, %zu args, %zu env, %zu annotations)%s",
                            in->socket, in->pid, in->from_pool ? "from the pool" : "manufactured now", h->cfg.digest,
                            h->cfg.n_args, h->cfg.n_env, h->cfg.n_ann,
                            mounted > 0 ? "; endpoint mounted in the container" : "");
                        rc = 0;
                }
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return rc;
        }
        if (err_code(resp) == VTPMD__ERROR_CODE__ERR_EXISTS) {
                /* A retried hook: fine if the vTPM was measured with this very config; finish its annotations. */
                Vtpmd__VtpmResponse *st = NULL;
                log_facts_t facts = {.ann_present = calloc(h->cfg.n_ann ? h->cfg.n_ann : 1, sizeof(bool))};
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                if (!facts.ann_present)
                        return failed(h, "out of memory");
                r = vtpm_of_this_config(h, &facts, &st, err, sizeof(err));
                if (r == 0)
                        snprintf(err, sizeof(err),
                                 "vtpmd said the vTPM exists, then that it does not (destroyed "
                                 "meanwhile?)");
                if (r > 0) {
                        r = proxy_prepare(h, st->status->instance, err, sizeof(err));
                        if (r == 0)
                                r = measure_annotations(h, facts.ann_present, err, sizeof(err));
                        if (r == 0)
                                r = mount_early_or_later(h, st->status->instance->socket, err, sizeof(err));
                        if (r > 0)
                                r = 0;
                        vtpmd__vtpm_response__free_unpacked(st, NULL);
                        if (r == 0) {
                                free(facts.ann_present);
                                msg(h, "", "already has its vTPM for this config (%s): nothing to do", h->cfg.digest);
                                return 0;
                        }
                }
                free(facts.ann_present);
                return failed(h, "%s", err);
        }
        snprintf(err, sizeof(err), "vtpmd refused to create the vTPM (%s): %s", vtpmd_error_code_name(err_code(resp)),
                 resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR ? resp->error->message : "unexpected answer");
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return failed(h, "%s", err);
}

/* ---- createContainer ------------------------------------------------------------------ */

/*
 * The runtime spec runs createContainer hooks "in the container namespace",
 * after the runtime environment is set up and before pivot_root: runc 1.1
 * runs them from `runc init`, inside the container's new mount namespace,
 * where the host paths (vtpmd's endpoint, the bundle's rootfs) are still
 * visible and a mount below the rootfs goes with it through pivot_root. The
 * state's pid is the container's pid *in its own pid namespace* (1 for runc),
 * so it cannot be used to find that namespace from here; we rely on being in
 * it, and refuse to mount when we are plainly in the host's (pid 1's) mount
 * namespace instead.
 */
static int check_mount_ns(char *err, size_t err_len)
{
        struct stat self, init;

        if (stat("/proc/self/ns/mnt", &self) < 0) {
                snprintf(err, err_len, "cannot read our mount namespace: %s", strerror(errno));
                return -errno;
        }
        if (stat("/proc/1/ns/mnt", &init) == 0 && self.st_ino == init.st_ino && self.st_dev == init.st_dev) {
                snprintf(err, err_len,
                         "createContainer runs in the host's mount namespace, not the container's (the runtime spec "
                         "runs it in the container namespace); refusing to mount on the host");
                return -EPERM;
        }
        return 0;
}

/*
 * Opens rel (a relative path of plain names) under dirfd without following
 * any symlink, creating missing directories: the rootfs is the container's,
 * and a symlink in it must not send a mount onto the host.
 */
static int open_beneath(int dirfd, const char *rel, bool create, char *err, size_t err_len)
{
        char buf[PATH_MAX], *save = NULL, *comp;
        int fd = dup(dirfd);

        if (fd < 0)
                return -errno;
        snprintf(buf, sizeof(buf), "%s", rel);
        for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
                int next;
                if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
                        close(fd);
                        snprintf(err, err_len, "mount point component '%s' is not allowed", comp);
                        return -EINVAL;
                }
                next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0 && errno == ENOENT && create) {
                        if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
                                int e = errno;
                                close(fd);
                                snprintf(err, err_len, "cannot create the mount point directory '%s': %s", comp,
                                         strerror(e));
                                return -e;
                        }
                        next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                if (next < 0) {
                        int e = errno;
                        close(fd);
                        snprintf(err, err_len, "mount point component '%s' in the container: %s", comp,
                                 e == ENOTDIR || e == ELOOP ? "not a directory (symlinks are refused)" : strerror(e));
                        return -e;
                }
                close(fd);
                fd = next;
        }
        return fd;
}

static int mount_endpoint(const hook_t *h, const char *endpoint, char *err, size_t err_len)
{
        const char *rel = h->mount_point + 1;
        struct stat src, dst;
        char proc[64];
        int rootfd, fd, r;

        if (stat(endpoint, &src) < 0 || !S_ISDIR(src.st_mode)) {
                snprintf(err, err_len, "the vTPM endpoint %.600s is not a directory", endpoint);
                return -ENOTDIR;
        }
        rootfd = open(h->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                snprintf(err, err_len, "cannot open the container root %s: %s", h->cfg.root, strerror(errno));
                return -errno;
        }
        fd = open_beneath(rootfd, rel, true, err, err_len);
        if (fd < 0) {
                close(rootfd);
                return fd;
        }
        if (fstat(fd, &dst) == 0 && dst.st_dev == src.st_dev && dst.st_ino == src.st_ino) {
                /* A retried hook: already mounted. */
                close(fd);
                close(rootfd);
                return 1;
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (mount(endpoint, proc, NULL, MS_BIND, NULL) < 0) {
                snprintf(err, err_len, "cannot bind-mount %.600s at %.255s in the container: %s", endpoint,
                         h->mount_point, strerror(errno));
                r = -errno;
                goto out;
        }
        close(fd);
        /* Re-open: the new descriptor names the mount just made, not the directory beneath it. */
        fd = open_beneath(rootfd, rel, false, err, err_len);
        if (fd < 0) {
                r = fd;
                goto out;
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (mount(NULL, proc, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                snprintf(err, err_len, "cannot make %s read-only in the container: %s", h->mount_point,
                         strerror(errno));
                r = -errno;
                (void)umount2(proc, MNT_DETACH);
                goto out;
        }
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        close(rootfd);
        return r;
}

/* The endpoint directory of a socket path vtpmd reported (<run>/vtpm/<id>/tpm.sock). */
static int endpoint_of(const char *socket, char *ret, size_t len)
{
        char *slash;

        if (!socket || vtpmd_fmt(ret, len, "%s", socket) < 0)
                return -EINVAL;
        slash = strrchr(ret, '/');
        if (!slash || slash == ret)
                return -EINVAL;
        *slash = '\0';
        return 0;
}

/*
 * createRuntime: runc runs it after `runc init` set up the container's mount
 * namespace and its mounts, before pivot_root (the same point as
 * createContainer, seen from outside), with the state's pid = runc init's
 * pid on the host. Joining that mount namespace (setns) lets this hook make
 * the bind mount itself, which saves the createContainer hook a round trip
 * to vtpmd (it then finds the mount in place). Done only when the state's
 * process has a mount namespace of its own and the container root is
 * already a mount in it (runc bind-mounts it onto itself first); otherwise
 * createContainer mounts as before. 1 mounted (or already), 0 left to
 * createContainer, < 0 failed (message in err). The hook exits soon after:
 * it never goes back to the host's namespace.
 */
static int mount_early(const hook_t *h, const char *socket, const char **why, char *err, size_t err_len)
{
        char endpoint[PATH_MAX], ns[64];
        struct stat self, target, init;
        struct statx stx;
        int fd, r;

        *why = "the vtpm-proxy frontend makes device nodes at createContainer";
        if (h->vtpm_proxy)
                return 0;
        *why = "the state has no pid";
        if (h->st.pid <= 0 || endpoint_of(socket, endpoint, sizeof(endpoint)) < 0)
                return 0;
        snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)h->st.pid);
        *why = "the state's pid shares the hook's mount namespace";
        if (stat("/proc/self/ns/mnt", &self) < 0 || stat(ns, &target) < 0 ||
            (self.st_dev == target.st_dev && self.st_ino == target.st_ino))
                return 0;
        /* Never the host's namespace (pid 1's): a mount there would be left on the host. */
        /*
         * Never the host's namespace: not pid 1's (when we may look at it) nor the runtime's (our parent's, which
         * created the container's): a mount there would be left on the host.
         */
        *why = "the state's pid is in pid 1's or the runtime's mount namespace";
        if (stat("/proc/1/ns/mnt", &init) == 0 && init.st_dev == target.st_dev && init.st_ino == target.st_ino)
                return 0;
        snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)getppid());
        if (stat(ns, &init) < 0 || (init.st_dev == target.st_dev && init.st_ino == target.st_ino))
                return 0;
        snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)h->st.pid);
        *why = "joining the state's mount namespace is not allowed";
        fd = open(ns, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        r = setns(fd, CLONE_NEWNS);
        close(fd);
        if (r < 0)
                return 0; /* not allowed here: createContainer mounts from inside */
        *why = "the container root is not a mount in the container's namespace yet";
        if (statx(AT_FDCWD, h->cfg.root, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0 ||
            !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                return 0; /* the root is not set up yet: createContainer mounts */
        *why = NULL;
        r = mount_endpoint(h, endpoint, err, err_len);
        return r < 0 ? r : 1;
}

/* Whether config.json runs this very binary at createContainer (then it can mount what createRuntime could not). */
static bool own_create_container_hook(const hook_t *h)
{
        char self[PATH_MAX], other[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (n <= 0)
                return false;
        self[n] = '\0';
        for (size_t i = 0; i < h->cfg.n_cc_hooks; i++)
                if (realpath(h->cfg.cc_hooks[i], other) && strcmp(self, other) == 0)
                        return true;
        return false;
}

/*
 * mount_early, and when it could not mount: fine if createContainer will
 * (config.json runs this hook there), else a failure (no container runs
 * believing it has a vTPM it cannot reach).
 */
static int mount_early_or_later(const hook_t *h, const char *socket, char *err, size_t err_len)
{
        const char *why = NULL;
        int r = mount_early(h, socket, &why, err, err_len);

        if (r != 0 || h->vtpm_proxy || own_create_container_hook(h))
                return r;
        snprintf(err, err_len,
                 "the vTPM endpoint cannot be mounted from createRuntime here (pid %d: %s) and config.json has no "
                 "createContainer hook of cscp-oci-hook to mount it; add one (docs/oci-hook.md)",
                 (int)h->st.pid, why ? why : "?");
        return -EPERM;
}

/*
 * createContainer without vtpmd: 1 when the mount point already is the
 * endpoint directory (createRuntime mounted it in this container's own,
 * fresh mount namespace after checking the vTPM, or this is a retry). The
 * endpoint is looked for where vtpmd puts it: <run-dir>/vtpm/<id>, run-dir
 * being the control socket's directory; 0 otherwise (then Status says where).
 */
static int already_mounted(const hook_t *h)
{
        char endpoint[PATH_MAX], err[256];
        struct stat src, dst;
        const char *slash = strrchr(h->socket, '/');
        int rootfd, fd;

        if (!slash ||
            vtpmd_fmt(endpoint, sizeof(endpoint), "%.*s/vtpm/%s", (int)(slash - h->socket), h->socket, h->st.id) < 0)
                return 0;
        if (stat(endpoint, &src) < 0 || !S_ISDIR(src.st_mode))
                return 0;
        rootfd = open(h->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return 0;
        fd = open_beneath(rootfd, h->mount_point + 1, false, err, sizeof(err));
        close(rootfd);
        if (fd < 0)
                return 0;
        if (fstat(fd, &dst) < 0 || dst.st_dev != src.st_dev || dst.st_ino != src.st_ino) {
                close(fd);
                return 0;
        }
        close(fd);
        return 1;
}

/*
 * --frontend vtpm-proxy: /dev/tpm0 and /dev/tpmrm0 in the container's /dev
 * (opened beneath the root without following symlinks, made if missing) with
 * the numbers of the host's /dev/tpmN and /dev/tpmrmN, mode 0660, root:root.
 */
static int make_proxy_nodes(const hook_t *h, const Vtpmd__Instance *in, char *err, size_t err_len)
{
        int rootfd, devfd, r, r0;

        rootfd = open(h->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                snprintf(err, err_len, "cannot open the container root %s: %s", h->cfg.root, strerror(errno));
                return -errno;
        }
        devfd = open_beneath(rootfd, "dev", true, err, err_len);
        close(rootfd);
        if (devfd < 0)
                return devfd;
        r0 = hook_dev_node(devfd, "tpm0", in->proxy_major, in->proxy_minor, err, err_len);
        r = r0 < 0 ? r0 : hook_dev_node(devfd, "tpmrm0", in->proxy_rm_major, in->proxy_rm_minor, err, err_len);
        if (r < 0 && r0 == 0)
                (void)unlinkat(devfd, "tpm0", 0);
        close(devfd);
        if (r < 0)
                return r;
        return r0 == 1 && r == 1 ? 1 : 0;
}

static int create_container_proxy(hook_t *h)
{
        Vtpmd__VtpmResponse *st = NULL;
        log_facts_t facts = {0};
        char err[1024];
        int r;

        if (access("/dev/vtpmx", F_OK) < 0)
                return failed(h, "the vtpm-proxy frontend needs /dev/vtpmx (modprobe tpm_vtpm_proxy); this host has "
                                 "none");
        r = vtpm_of_this_config(h, &facts, &st, err, sizeof(err));
        if (r == 0)
                return failed(h, "vtpmd has no vTPM for this container (did the createRuntime hook run?)");
        if (r < 0)
                return failed(h, "%s", err);
        r = proxy_reported(h, st->status->instance, err, sizeof(err));
        if (r == 0)
                r = check_mount_ns(err, sizeof(err));
        if (r == 0)
                r = make_proxy_nodes(h, st->status->instance, err, sizeof(err));
        if (r >= 0)
                msg(h, "", "/dev/tpm0 (%s, c %u:%u) and /dev/tpmrm0 (%s, c %u:%u) made in the container%s",
                    st->status->instance->proxy_device, st->status->instance->proxy_major,
                    st->status->instance->proxy_minor, st->status->instance->proxy_rm_device,
                    st->status->instance->proxy_rm_major, st->status->instance->proxy_rm_minor,
                    r == 1 ? " (already)" : "");
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        return r < 0 ? failed(h, "%s", err) : 0;
}

static int create_container(hook_t *h)
{
        Vtpmd__VtpmResponse *st = NULL;
        log_facts_t facts = {0};
        char err[1024], endpoint[PATH_MAX], *slash;
        int r;

        if (h->vtpm_proxy)
                return create_container_proxy(h);
        if (already_mounted(h)) {
                msg(h, "", "the vTPM endpoint is mounted at %s already (by createRuntime)", h->mount_point);
                return 0;
        }
        r = vtpm_of_this_config(h, &facts, &st, err, sizeof(err));
        if (r == 0)
                return failed(h, "vtpmd has no vTPM for this container (did the createRuntime hook run?)");
        if (r < 0)
                return failed(h, "%s", err);
        r = vtpmd_fmt(endpoint, sizeof(endpoint), "%s", st->status->instance->socket);
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        slash = strrchr(endpoint, '/');
        if (r < 0 || !slash || slash == endpoint)
                return failed(h, "vtpmd reported an unusable socket path");
        *slash = '\0';
        r = check_mount_ns(err, sizeof(err));
        if (r < 0)
                return failed(h, "%s", err);
        r = mount_endpoint(h, endpoint, err, sizeof(err));
        if (r < 0)
                return failed(h, "%s", err);
        msg(h, "", "%s mounted read-only at %s%s", endpoint, h->mount_point, r == 1 ? " (already)" : "");
        return 0;
}

/* ---- poststop ------------------------------------------------------------------------- */

static int poststop(hook_t *h)
{
        Vtpmd__VtpmResponse *resp = NULL;
        char err[1024];
        int r = destroy(h, &resp, err, sizeof(err));

        if (r < 0)
                return failed(h, "cannot destroy the vTPM: %s", err);
        switch (err_code(resp)) {
        case VTPMD__ERROR_CODE__ERR_UNSPECIFIED:
                msg(h, "", "vTPM destroyed");
                r = 0;
                break;
        case VTPMD__ERROR_CODE__ERR_NOT_FOUND:
                msg(h, "", "no vTPM for this container (never provisioned, or already destroyed): nothing to do");
                r = 0;
                break;
        case VTPMD__ERROR_CODE__ERR_BAD_REQUEST:
        case VTPMD__ERROR_CODE__ERR_VERSION:
        case VTPMD__ERROR_CODE__ERR_TOO_LARGE:
        case VTPMD__ERROR_CODE__ERR_EXISTS:
        case VTPMD__ERROR_CODE__ERR_PERMISSION_DENIED:
        case VTPMD__ERROR_CODE__ERR_LIMIT:
        case VTPMD__ERROR_CODE__ERR_BUSY:
        case VTPMD__ERROR_CODE__ERR_SWTPM:
        case VTPMD__ERROR_CODE__ERR_TPM:
        case VTPMD__ERROR_CODE__ERR_NO_SPACE:
        case VTPMD__ERROR_CODE__ERR_INTERNAL:
        case _VTPMD__ERROR_CODE_IS_INT_SIZE:
        default:
                r = failed(h, "vtpmd refused to destroy the vTPM (%s): %s", vtpmd_error_code_name(err_code(resp)),
                           resp->error->message);
                break;
        }
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return r;
}

/* ---- main ------------------------------------------------------------------------------- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "cscp-oci-hook: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see cscp-oci-hook --help)\n");
        return EXIT_USAGE;
}

/* An absolute path of plain names: no empty, "." or ".." component. */
static bool mount_point_ok(const char *p)
{
        const char *c = p;

        if (p[0] != '/' || strlen(p) >= 256)
                return false;
        while (*c == '/') {
                size_t n = strcspn(c + 1, "/");
                if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
                        return false;
                c += 1 + n;
        }
        return true;
}

int main(int argc, char **argv)
{
        enum { O_SOCKET = 0x100, O_RUN_DIR, O_MOUNT_POINT, O_FRONTEND, O_RUNTIME, O_RUNTIME_VERSION, O_TIMEOUT };
        static const struct option opts[] = {
                {"socket", required_argument, NULL, O_SOCKET},
                {"run-dir", required_argument, NULL, O_RUN_DIR},
                {"mount-point", required_argument, NULL, O_MOUNT_POINT},
                {"frontend", required_argument, NULL, O_FRONTEND},
                {"runtime", required_argument, NULL, O_RUNTIME},
                {"runtime-version", required_argument, NULL, O_RUNTIME_VERSION},
                {"timeout", required_argument, NULL, O_TIMEOUT},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        hook_t h = {.mount_point = MOUNT_POINT, .timeout_ms = 120000};
        const char *run_dir = RUN_DIR, *stage = NULL;
        char sock[PATH_MAX], err[1024];
        int c, r;

        /*
         * The hook uses OpenSSL for SHA-256 only (config digest, container log digests), fetched by name from the
         * built-in default provider (EVP_MD_fetch): no need to parse openssl.cnf (and whatever it loads), nor to
         * register every legacy cipher and digest name, which OpenSSL 3 then copies into its name map (and frees at
         * exit): ~0.8 ms of every hook process on the container's start path (docs/performance.md, issue 5).
         */
        (void)OPENSSL_init_crypto(
                OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS, NULL);

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case O_SOCKET:
                        h.socket = optarg;
                        break;
                case O_RUN_DIR:
                        run_dir = optarg;
                        break;
                case O_MOUNT_POINT:
                        if (!mount_point_ok(optarg))
                                return usage_error("--mount-point: '%s' is not an absolute path without . or ..",
                                                   optarg);
                        h.mount_point = optarg;
                        break;
                case O_FRONTEND:
                        if (strcmp(optarg, "vtpm-proxy") == 0)
                                h.vtpm_proxy = true;
                        else if (strcmp(optarg, "socket") != 0)
                                return usage_error("--frontend: '%s' is neither socket nor vtpm-proxy", optarg);
                        break;
                case O_RUNTIME:
                        h.runtime = optarg;
                        break;
                case O_RUNTIME_VERSION:
                        h.runtime_version = optarg;
                        break;
                case O_TIMEOUT:
                        h.timeout_ms = atoi(optarg) * 1000;
                        if (h.timeout_ms <= 0)
                                return usage_error("--timeout: '%s' is not a positive number of seconds", optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc)
                return usage_error("which hook point? createRuntime, createContainer or poststop");
        stage = argv[optind++];
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (strcmp(stage, "createRuntime") == 0 || strcmp(stage, "prestart") == 0)
                h.stage = STAGE_CREATE_RUNTIME;
        else if (strcmp(stage, "createContainer") == 0)
                h.stage = STAGE_CREATE_CONTAINER;
        else if (strcmp(stage, "poststop") == 0)
                h.stage = STAGE_POSTSTOP;
        else
                return usage_error("unknown hook point '%s' (createRuntime, createContainer or poststop)", stage);
        h.stage_name = stage;
        if (!h.socket) {
                if (vtpmd_fmt(sock, sizeof(sock), "%s/vtpmd.sock", run_dir) < 0)
                        return usage_error("--run-dir: '%s' is too long", run_dir);
                h.socket = sock;
        }

        r = hook_state_read(STDIN_FILENO, VTPMD_ID_MAX, &h.st, err, sizeof(err));
        if (r < 0) {
                msg(&h, "error: ", "%s", err);
                return EXIT_FAILED;
        }
        if (h.stage != STAGE_POSTSTOP) {
                r = hook_config_load(h.st.bundle, &h.cfg, err, sizeof(err));
                if (r < 0) {
                        msg(&h, "error: ", "%s", err);
                        hook_state_free(&h.st);
                        return EXIT_FAILED;
                }
                h.have_cfg = true;
                if (h.cfg.mode == HOOK_MODE_DISABLED) {
                        msg(&h, "", "annotation %s=disabled: no vTPM for this container", HOOK_ANNOTATION);
                        r = 0;
                        goto out;
                }
        }
        switch (h.stage) {
        case STAGE_CREATE_RUNTIME:
                r = create_runtime(&h);
                break;
        case STAGE_CREATE_CONTAINER:
                r = create_container(&h);
                break;
        case STAGE_POSTSTOP:
                r = poststop(&h);
                break;
        }
out:
        hook_config_free(&h.cfg);
        hook_state_free(&h.st);
        return r;
}
