/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The daemon half of vtpmd (private to vtpmd/ and its tests):
 *   wire.c      control frames: pack, checked unpack, container id rules, a small client
 *   keys.c      the master key and the wrapped per-instance secrets
 *   instance.c  one supervised swtpm child (spawn, readiness, adoption, kill, restart)
 *   registry.c  instance records in --state-dir, re-adoption at start
 *   pool.c      warm pool of pre-manufactured vTPMs
 *   control.c   request handlers (TPM work on the libuv threadpool)
 *   rm.c        resource manager: deny list, per-client handle virtualization (rm.h)
 *   endpoint.c  the container's sockets, served through the RM; proxy.c: vtpm_proxy (endpoint.h)
 *   daemon.c    libuv loop, Unix control socket, peer credentials, limits, signals
 * Everything that touches a vtpmd_t or an instance_t runs on the loop thread,
 * except the fields a worker is documented to use (paths, ident, lock).
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "rm.h"
#include "rot.h"
#include "vtpm.h"
#include "vtpmd.pb-c.h"

#define VTPMD_PROTOCOL_VERSION  1
#define VTPMD_FRAME_MAX_DEFAULT (1024u * 1024)
#define VTPMD_ID_MAX            64 /* container id length limit (further limited by the socket path) */
#define VTPMD_UID_LEN           32 /* hex of 16 random bytes */
#define VTPMD_MAX_ARGS          1024
#define VTPMD_MAX_ENV           1024
#define VTPMD_MAX_LAYERS        256
#define VTPMD_MAX_ANNOTATIONS   1024 /* Measurements.annotations (the hook keeps at most HOOK_MAX_ANNOTATIONS) */
#define VTPMD_MAX_STRING        4096 /* one argument, variable, digest, name */
#define VTPMD_MAX_INSTANCES     4096 /* hard ceiling for --max-instances */
#define VTPMD_MAX_POOL          64
#define VTPMD_SECRET_LEN        64 /* swtpm state key (32) || platform hierarchy auth (32) */
#define VTPMD_STATE_KEY_LEN     32
#define VTPMD_MASTER_KEY_LEN    32
#define VTPMD_CONTAINER_PCR_MAX 23

/* ---- wire.c ---------------------------------------------------------- */

/* snprintf for paths and messages: -ENAMETOOLONG when the result was truncated (paths are length-checked at start). */
int vtpmd_fmt(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* OCI-style container id: [A-Za-z0-9][A-Za-z0-9_.+-]*, 1..max_len bytes. -EINVAL otherwise. */
int vtpmd_container_id_check(const char *id, size_t max_len);
/*
 * Parses one request payload (no length prefix): canonical encoding only,
 * version VTPMD_PROTOCOL_VERSION (else CSCP_E_VERSION), exactly one body,
 * every count and string within the limits above (else CSCP_E_TOO_BIG).
 * Free with vtpmd__vtpm_request__free_unpacked(m, NULL).
 */
int vtpmd_request_unpack(const uint8_t *payload, size_t len, Vtpmd__VtpmRequest **ret);
int vtpmd_response_unpack(const uint8_t *payload, size_t len, Vtpmd__VtpmResponse **ret);
/* Serialize with the 4-byte length prefix; refuse > max (0 = VTPMD_FRAME_MAX_DEFAULT). Sets `version`. */
int vtpmd_request_pack(Vtpmd__VtpmRequest *m, size_t max, uint8_t **ret, size_t *ret_len);
int vtpmd_response_pack(Vtpmd__VtpmResponse *m, size_t max, uint8_t **ret, size_t *ret_len);
int vtpmd_error_pack(Vtpmd__ErrorCode code, const char *message, uint8_t **ret, size_t *ret_len);
const char *vtpmd_error_code_name(Vtpmd__ErrorCode code);

/* A blocking client: one connection, one request at a time. */
typedef struct vtpmd_client vtpmd_client_t;
int vtpmd_client_connect(const char *path, int timeout_ms, vtpmd_client_t **ret);
/* Sends req, waits for the answer (an Error answer is returned as a response, not as a failure). */
int vtpmd_client_call(vtpmd_client_t *c, Vtpmd__VtpmRequest *req, Vtpmd__VtpmResponse **ret);
void vtpmd_client_free(vtpmd_client_t *c);

/* ---- keys.c ---------------------------------------------------------- */

/*
 * The master key (32 random bytes), sealed to the host TPM (tcti) in
 * <state_dir>/master.sealed (include/cscp/seal.h). A plain <state_dir>/master.key
 * of older versions (0600, ours) is sealed and then removed; a new key is made only
 * when neither exists and no instance holds a wrapped secret. Returns one of
 * KEYS_MASTER_*; on failure msg names the file and the reason and nothing on disk
 * was changed.
 */
enum {
        KEYS_MASTER_UNSEALED = 0,      /* from master.sealed */
        KEYS_MASTER_CREATED = 1,       /* first start: a new key, sealed */
        KEYS_MASTER_MIGRATED = 2,      /* a plain master.key sealed, then removed */
        KEYS_MASTER_PLAIN_REMOVED = 3, /* from master.sealed; a leftover identical master.key removed */
};
int keys_master_load_or_create(const char *state_dir, const char *tcti, uint8_t ret[VTPMD_MASTER_KEY_LEN], char *msg,
                               size_t msg_len);
/* AES-256-GCM under the master key, AAD binds the instance uid. */
int keys_secret_save(const uint8_t master[VTPMD_MASTER_KEY_LEN], const char *uid,
                     const uint8_t secret[VTPMD_SECRET_LEN], const char *path);
int keys_secret_load(const uint8_t master[VTPMD_MASTER_KEY_LEN], const char *uid, const char *path,
                     uint8_t ret[VTPMD_SECRET_LEN]);

/* ---- daemon ------------------------------------------------------------ */

typedef struct vtpmd_config {
        cscp_rot_kind_t rot;        /* host root of trust of the host log (--rot): CSCP_ROT_TPM (default) or TDX */
        cscp_tdx_guest_paths_t tdx; /* --rot tdx: RTMR and CCEL paths (NULL members = Linux defaults) */
        const char *tcti;      /* host TPM (the master key seal; the host log with --rot tpm); NULL = tctildr default */
        const char *state_dir; /* default /var/lib/cscp/vtpmd */
        const char *run_dir;   /* default /run/cscp */
        const char *socket;    /* control socket; default <run_dir>/vtpmd.sock */
        const char *swtpm;     /* swtpm binary (default "swtpm", PATH lookup) */
        const char *vtpm_ca, *vtpm_ca_key;
        const char *ready_file;
        cscp_key_alg_t ek_alg;
        uint32_t host_pcr;
        unsigned pool;
        unsigned max_instances;
        gid_t control_gid;
        bool have_control_group;
        size_t max_frame;
        unsigned max_connections;
        unsigned idle_timeout_ms, read_timeout_ms;
        unsigned swtpm_start_timeout_ms;
        bool stop_instances; /* stop every swtpm on a clean exit (default: leave them for re-adoption) */
        /* --measurement-policy (hostmeasure.c): host processes into host PCR host_process_pcr; NULL = none */
        const struct cscp_measure_policy *measure_policy;
        const char *measure_policy_path;
        uint32_t host_process_pcr; /* default 11 */
        bool frontend_proxy;       /* --frontend vtpm-proxy: also a kernel /dev/tpmN per bound vTPM (proxy.c) */
} vtpmd_config_t;

void vtpmd_config_defaults(vtpmd_config_t *c);
/* Opens the host log, re-adopts instances, listens, serves until SIGINT/SIGTERM. */
int vtpmd_run(const vtpmd_config_t *c);

typedef struct instance instance_t;

typedef struct vtpmd {
        const vtpmd_config_t *cfg;
        uv_loop_t *loop;
        uint8_t master[VTPMD_MASTER_KEY_LEN];
        hostlog_t *hostlog;
        uv_mutex_t hostlog_lock; /* workers: one host log operation at a time */
        instance_t *instances;   /* every instance: pool, provisioning, bound */
        unsigned n_bound;        /* instances holding (or being given) a container id */
        unsigned pool_ready, pool_pending;
        unsigned jobs; /* work requests in flight */
        bool stopping;
        char inst_root[PATH_MAX]; /* <state>/instances */
        char kept_root[PATH_MAX]; /* <state>/kept */
        char vtpm_run[PATH_MAX];  /* <run>/vtpm */
        char pool_run[PATH_MAX];  /* <run>/vtpm-pool */
        char hostlog_path[PATH_MAX];
        hostlog_t *proclog; /* <state>/host-pcr11.cel: host process records (hostmeasure.c), NULL without a policy */
        char proclog_path[PATH_MAX];
        size_t id_max;             /* longest container id whose socket path fits */
        char swtpm_path[PATH_MAX]; /* cfg->swtpm resolved through PATH ("" when not found) */
        void (*stopped_cb)(struct vtpmd *d);
} vtpmd_t;

/* ---- instance.c -------------------------------------------------------- */

typedef enum instance_state {
        INST_NEW,        /* provisioning (key, swtpm, manufacture) */
        INST_POOL,       /* manufactured, waiting in the pool */
        INST_BINDING,    /* being given to a container (measure, vtpm-bind) */
        INST_READY,      /* bound to a container */
        INST_RESTARTING, /* swtpm died, being restarted and re-extended */
        INST_DESTROYING,
        INST_FAILED, /* restarted too often; Destroy still works */
} instance_state_t;

typedef void (*instance_cb)(instance_t *inst, int r);

struct instance {
        vtpmd_t *d;
        instance_t *next;
        unsigned refs; /* list membership, open handles, jobs */
        char uid[VTPMD_UID_LEN + 1];
        char id[VTPMD_ID_MAX + 1]; /* container id, "" while in the pool */
        instance_state_t state;
        bool from_pool, in_list;
        uint64_t created; /* CLOCK_REALTIME seconds */
        unsigned restarts;
        uint64_t death_window_ms;
        unsigned deaths_in_window;
        /* paths (workers read them while the instance is busy) */
        char dir[PATH_MAX]; /* <state>/instances/<uid> */
        char meta[PATH_MAX], keyfile[PATH_MAX], identity[PATH_MAX], log[PATH_MAX], pidfile[PATH_MAX],
                swtpm_log[PATH_MAX];
        char endpoint[PATH_MAX]; /* directory holding the container's sockets (endpoint.c serves them) */
        char sock[PATH_MAX], ctrl[PATH_MAX];
        /* swtpm's own sockets, private (<dir>/swtpm.sock{,.ctrl}); tcti = "swtpm:path=<swtpm_sock>" is vtpmd's */
        char swtpm_sock[PATH_MAX], swtpm_ctrl[PATH_MAX], tcti[PATH_MAX + 16];
        struct endpoint *ep; /* the mediated endpoint while the instance is bound (endpoint.h) */
        /* --frontend vtpm-proxy (proxy.c): the kernel devices, valid while have_proxy and ep (its fd lives there) */
        bool have_proxy;
        char proxy_dev[32], proxy_rm_dev[32]; /* /dev/tpmN, /dev/tpmrmN */
        unsigned proxy_major, proxy_minor, proxy_rm_major, proxy_rm_minor;
        vtpm_identity_t ident;
        bool have_ident;
        uv_mutex_t lock; /* workers and the endpoint thread: one TPM conversation per instance at a time */
        rm_tpm_t tpm;    /* under lock: whose contexts swtpm holds; every conversation acquires it first (rm.h) */
        int swtpm_fd;    /* under lock: endpoint.c's connection to swtpm_sock, kept between client commands, or -1 */
        /* process */
        pid_t pid;
        bool adopted;
        uv_process_t proc;
        bool proc_open;
        bool exited; /* exit_cb ran; acted on when the handle is closed */
        int64_t exit_status;
        int exit_signal;
        uv_poll_t pidpoll;
        int pidfd;
        bool poll_open;
        uv_timer_t timer; /* kill escalation, or liveness polling without pidfd */
        bool timer_open, timer_polling;
        instance_cb on_exit; /* set while we are stopping it on purpose */
        bool stop_requested;
        /* supervision */
        instance_state_t resume_state; /* what a restart returns to (INST_READY or INST_POOL) */
        bool restart_busy, died_again;
        char err[256]; /* last failure, for the reply */
        void *pending; /* the request job waiting on provisioning or on a stop */
        /*
         * Create is acknowledged once its records are durable; the TPM extends follow on the same worker, which
         * holds `lock` throughout (so the endpoint waits). While settling, Status/Quote/Measure/Destroy of this
         * instance are parked in waiters (control.c) and answered after the extends.
         */
        bool settling;
        void *waiters;
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1]; /* the vTPM's PCR banks, 0-terminated; under lock, once known */
};

instance_t *instance_new(vtpmd_t *d, const char *uid);
void instance_ref(instance_t *inst);
void instance_unref(instance_t *inst);
/* Endpoint directory for the sockets: <run>/vtpm/<id> or <run>/vtpm-pool/<uid>. */
void instance_set_endpoint(instance_t *inst, const char *endpoint_dir);
const char *instance_state_name(instance_state_t s);
/*
 * swtpm is not exec'd directly: uv_spawn would let the child inherit every
 * descriptor a worker thread holds open at that instant (tpm2-tss opens its
 * sockets without O_CLOEXEC), and an inherited client socket keeps another
 * vTPM's single data connection busy forever. The child execs the vtpmd
 * binary as `vtpmd --exec-swtpm SWTPM ARGS...`, which closes every fd above 3
 * and then execs SWTPM (vtpmd_exec_swtpm, called first thing in main()).
 */
#define VTPMD_EXEC_SWTPM "--exec-swtpm"
int vtpmd_exec_swtpm(int argc, char **argv);
/* Resolves cfg->swtpm (PATH lookup when it has no '/'); -ENOENT when there is no executable. */
int vtpmd_find_swtpm(const char *name, char *ret, size_t len);
/* Loop thread: starts swtpm on the instance's state (its key passed through a pipe). */
int instance_spawn(instance_t *inst, char *err, size_t err_len);
/* Worker: waits until swtpm answers on its control socket (and accepts data connections). */
int instance_wait_ready(const instance_t *inst, unsigned timeout_ms);
/* Loop thread: probes a running swtpm (pid file, /proc, control socket) and watches it. */
int instance_adopt(instance_t *inst);
/* Loop thread: SIGTERM, SIGKILL after a grace period; cb when it is gone. */
void instance_stop(instance_t *inst, instance_cb cb);
bool instance_running(const instance_t *inst);
/* Loop thread: closes handles (does not stop the process); drops the list ref. */
void instance_release(instance_t *inst);
/* Worker-safe helpers. */
int instance_rm_rf(const char *path);
uint64_t instance_now_ms(void);

/* ---- registry.c -------------------------------------------------------- */

/* Worker or loop: writes <dir>/meta atomically with the given state name. */
int registry_save(const instance_t *inst, instance_state_t state);
instance_t *registry_find(vtpmd_t *d, const char *container_id);
void registry_add(vtpmd_t *d, instance_t *inst);
void registry_remove(vtpmd_t *d, instance_t *inst);
/* At start: loads every record, re-adopts the running swtpms, restarts the dead ones, wipes half-made ones. */
int registry_recover(vtpmd_t *d);

/* ---- control.c ---------------------------------------------------------- */

/* Answers go through reply(conn, frame, len) on the loop thread; frame is owned by the callee (NULL: no answer). */
typedef void (*control_reply_cb)(void *conn, uint8_t *frame, size_t len);
/* Takes ownership of req. */
void control_handle(vtpmd_t *d, Vtpmd__VtpmRequest *req, control_reply_cb reply, void *conn);
/* The supervisor: called when an instance's swtpm exited unexpectedly. */
void control_instance_died(instance_t *inst, int64_t status, int signal);
/* Starts (loop) a restart + re-extend of a dead instance (platform auth set again first). */
void control_instance_restart(instance_t *inst);
/*
 * Loop: a re-adopted running swtpm is RESTARTING until a worker checked its
 * platform auth (vtpm_platform_auth_set); one found reset is re-extended too.
 */
void control_instance_verify(instance_t *inst);
/* Queue a job on the threadpool, counted so a stop can wait for it. */
int control_queue(vtpmd_t *d, uv_work_t *w, uv_work_cb work, uv_after_work_cb after);
void control_job_done(vtpmd_t *d);
/* Provisions a fresh instance (key, swtpm, manufacture; meta "pool" when for_pool); cb on the loop thread. */
void control_provision(instance_t *inst, bool for_pool, instance_cb cb);
/* Worker-safe: appends a CM_CONTAINER record (event "vtpm-bind"/"vtpm-destroy") to the host log. */
int control_host_event(vtpmd_t *d, const char *event, const instance_t *inst);
/* Loop: stops the swtpm of an instance that will not be used and wipes it (never acknowledged). */
void control_discard(instance_t *inst);
/* Loop: called when the last job finished during a stop. */
void control_stop_instances(vtpmd_t *d);
/* Maps an error to a wire error code. */
Vtpmd__ErrorCode control_error_code(int r);

/* ---- hostmeasure.c -------------------------------------------------------- */

/*
 * At start: appends a CM_TLV PROCESS record per host binary of the policy's
 * measure.system.processes (and per running process of it, withParameter) to
 * h and extends it (docs/measurements.md §8). A message in err on failure.
 */
int hostmeasure_apply(hostlog_t *h, const struct cscp_measure_policy *p, char *err, size_t err_len);
/* Daemon start, after the host log: opens d->proclog (<state>/host-pcr<N>.cel) and applies cfg->measure_policy. */
int hostmeasure_start(vtpmd_t *d, char *err, size_t err_len);

/* ---- pool.c -------------------------------------------------------------- */

void pool_init(vtpmd_t *d);
/* Takes a ready pool instance (state INST_POOL), or NULL. */
instance_t *pool_take(vtpmd_t *d);
/* Starts background manufacture until the pool holds cfg->pool instances. */
void pool_refill(vtpmd_t *d);
/* The same, REFILL_MS later (after a Create settled: off the starting container's way). */
void pool_refill_soon(vtpmd_t *d);
void pool_close(vtpmd_t *d);
