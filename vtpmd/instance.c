/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One vTPM = one supervised `swtpm socket --tpm2` process.
 *
 * The process is started with uv_spawn (detached: its own session, so a
 * signal to vtpmd's process group does not reach it, and it outlives a
 * vtpmd crash). Its state key arrives on fd 3 through a pipe that holds
 * exactly 32 bytes and is closed at once, so the key never touches the disk
 * in clear. A child we spawned is watched through its uv_process_t; one we
 * re-adopted after a vtpmd restart is not our child, so it is watched
 * through a pidfd (Linux >= 5.3) polled by the loop.
 *
 * Handle lifetimes: proc, pidpoll and timer each hold a reference on the
 * instance while open; the exit of the process is acted on only after the
 * process handle is closed, so a restart can re-initialise it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define LOGMODULE instance
#include "core.h"
#include "endpoint.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define KILL_GRACE_MS 3000

uint64_t instance_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pathf(char *dst, const char *dir, const char *name)
{
        /* Every base path was length-checked at start (id_max); this cannot truncate. */
        vtpmd_fmt(dst, PATH_MAX, "%s/%s", dir, name);
}

instance_t *instance_new(vtpmd_t *d, const char *uid)
{
        instance_t *inst = calloc(1, sizeof(*inst));
        uint8_t rnd[VTPMD_UID_LEN / 2];

        if (!inst)
                return NULL;
        inst->d = d;
        inst->refs = 1;
        inst->pidfd = -1;
        if (uid) {
                vtpmd_fmt(inst->uid, sizeof(inst->uid), "%s", uid);
        } else {
                if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
                        free(inst);
                        return NULL;
                }
                cscp_hex_encode(rnd, sizeof(rnd), inst->uid);
        }
        pathf(inst->dir, d->inst_root, inst->uid);
        pathf(inst->meta, inst->dir, "meta");
        pathf(inst->keyfile, inst->dir, "key.wrapped");
        pathf(inst->identity, inst->dir, "identity");
        pathf(inst->log, inst->dir, "container.log");
        pathf(inst->pidfile, inst->dir, "swtpm.pid");
        pathf(inst->swtpm_log, inst->dir, "swtpm.log");
        /* swtpm's sockets stay private to vtpmd (the directory is 0700); containers get endpoint.c's. */
        pathf(inst->swtpm_sock, inst->dir, "swtpm.sock");
        pathf(inst->swtpm_ctrl, inst->dir, "swtpm.sock.ctrl");
        vtpmd_fmt(inst->tcti, sizeof(inst->tcti), "swtpm:path=%s", inst->swtpm_sock);
        uv_mutex_init(&inst->lock);
        inst->swtpm_fd = -1;
        uv_timer_init(d->loop, &inst->timer);
        inst->timer.data = inst;
        inst->timer_open = true;
        inst->refs++;
        return inst;
}

void instance_ref(instance_t *inst)
{
        inst->refs++;
}

void instance_unref(instance_t *inst)
{
        if (!inst || --inst->refs > 0)
                return;
        uv_mutex_destroy(&inst->lock);
        rm_tpm_release(&inst->tpm);
        if (inst->swtpm_fd >= 0)
                close(inst->swtpm_fd);
        vtpm_identity_clear(&inst->ident);
        free(inst);
}

void instance_set_endpoint(instance_t *inst, const char *endpoint_dir)
{
        vtpmd_fmt(inst->endpoint, sizeof(inst->endpoint), "%s", endpoint_dir);
        pathf(inst->sock, inst->endpoint, "tpm.sock");
        pathf(inst->ctrl, inst->endpoint, "tpm.sock.ctrl");
}

const char *instance_state_name(instance_state_t s)
{
        switch (s) {
        case INST_NEW:
                return "provisioning";
        case INST_POOL:
                return "pool";
        case INST_BINDING:
                return "binding";
        case INST_READY:
                return "ready";
        case INST_RESTARTING:
                return "restarting";
        case INST_DESTROYING:
                return "destroying";
        case INST_FAILED:
                return "failed";
        }
        return "?";
}

bool instance_running(const instance_t *inst)
{
        return inst->pid > 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int instance_rm_rf(const char *path)
{
        if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

/* ---- exit handling ----------------------------------------------------- */

static void process_gone(instance_t *inst, int64_t status, int sig)
{
        instance_cb cb = inst->on_exit;

        inst->pid = 0;
        inst->adopted = false;
        if (inst->timer_open)
                uv_timer_stop(&inst->timer);
        if (cb) {
                inst->on_exit = NULL;
                cb(inst, 0);
                return;
        }
        if (inst->d->stopping)
                return;
        control_instance_died(inst, status, sig);
}

static void proc_closed_cb(uv_handle_t *h)
{
        instance_t *inst = h->data;
        bool exited = inst->exited;

        inst->proc_open = false;
        inst->exited = false;
        /* Acted on only now, so that a restart can initialise the handle again. */
        if (exited)
                process_gone(inst, inst->exit_status, inst->exit_signal);
        instance_unref(inst);
}

static void exit_cb(uv_process_t *p, int64_t status, int sig)
{
        instance_t *inst = p->data;

        log_debug("%s: swtpm %d exited (status %lld, signal %d)", inst->uid, (int)p->pid, (long long)status, sig);
        inst->exited = true;
        inst->exit_status = status;
        inst->exit_signal = sig;
        uv_close((uv_handle_t *)p, proc_closed_cb);
}

static void pidpoll_closed_cb(uv_handle_t *h)
{
        instance_t *inst = h->data;
        bool exited = inst->exited;

        if (inst->pidfd >= 0)
                close(inst->pidfd);
        inst->pidfd = -1;
        inst->poll_open = false;
        inst->exited = false;
        /* As for our own children: acted on once the handle is closed, so a restart can use it again. */
        if (exited)
                process_gone(inst, -1, 0);
        instance_unref(inst);
}

static void pidpoll_cb(uv_poll_t *p, int status, int events)
{
        instance_t *inst = p->data;

        (void)status;
        (void)events;
        log_debug("%s: adopted swtpm %d exited", inst->uid, (int)inst->pid);
        uv_poll_stop(p);
        inst->exited = true;
        uv_close((uv_handle_t *)p, pidpoll_closed_cb);
}

/* ---- spawn -------------------------------------------------------------- */

int vtpmd_find_swtpm(const char *name, char *ret, size_t len)
{
        const char *path = getenv("PATH");

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return -errno;
                return vtpmd_fmt(ret, len, "%s", name);
        }
        for (const char *p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"; *p;) {
                const char *colon = strchr(p, ':');
                size_t n = colon ? (size_t)(colon - p) : strlen(p);
                if (n > 0 && vtpmd_fmt(ret, len, "%.*s/%s", (int)n, p, name) == 0 && access(ret, X_OK) == 0)
                        return 0;
                p += n + (colon ? 1 : 0);
        }
        return -ENOENT;
}

int vtpmd_exec_swtpm(int argc, char **argv)
{
        if (argc < 3 || strcmp(argv[1], VTPMD_EXEC_SWTPM) != 0)
                return 0;
        /* fd 3 is the state key pipe; nothing else may reach swtpm. */
        if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
                for (int fd = 4; fd < 65536; fd++)
                        (void)close(fd);
        execv(argv[2], argv + 2);
        fprintf(stderr, "vtpmd: cannot execute %s: %s\n", argv[2], strerror(errno));
        _exit(127);
}

int instance_spawn(instance_t *inst, char *err, size_t err_len)
{
        vtpmd_t *d = inst->d;
        uv_process_options_t o = {0};
        uv_stdio_container_t stdio[4];
        uint8_t secret[VTPMD_SECRET_LEN];
        char a_state[PATH_MAX + 32], a_server[PATH_MAX + 32], a_ctrl[PATH_MAX + 32], a_pid[PATH_MAX + 16],
                a_log[PATH_MAX + 16];
        int pfd[2] = {-1, -1};
        int r;

        if (inst->proc_open || inst->poll_open || inst->pid > 0) {
                vtpmd_fmt(err, err_len, "swtpm for %s is still running or closing", inst->uid);
                return -EBUSY;
        }
        (void)unlink(inst->swtpm_sock); /* stale sockets of a dead swtpm */
        (void)unlink(inst->swtpm_ctrl);
        (void)unlink(inst->pidfile);
        if (!d->swtpm_path[0] || access(d->swtpm_path, X_OK) < 0) {
                vtpmd_fmt(err, err_len, "cannot start %s: %s", d->cfg->swtpm,
                          d->swtpm_path[0] ? strerror(errno) : "not found (no such executable)");
                return CSCP_E_UNSUPPORTED;
        }
        r = keys_secret_load(d->master, inst->uid, inst->keyfile, secret);
        if (r < 0) {
                vtpmd_fmt(err, err_len, "cannot unwrap the state key of %s: %s", inst->uid, cscp_strerror(r));
                return r;
        }
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = -errno;
                OPENSSL_cleanse(secret, sizeof(secret));
                vtpmd_fmt(err, err_len, "pipe: %s", strerror(errno));
                return r;
        }
        /* 32 bytes fit any pipe buffer: this does not block. */
        if (write(pfd[1], secret, VTPMD_STATE_KEY_LEN) != VTPMD_STATE_KEY_LEN) {
                r = -EIO;
                OPENSSL_cleanse(secret, sizeof(secret));
                vtpmd_fmt(err, err_len, "cannot pass the state key to swtpm");
                goto out;
        }
        OPENSSL_cleanse(secret, sizeof(secret));
        close(pfd[1]);
        pfd[1] = -1;

        vtpmd_fmt(a_state, sizeof(a_state), "dir=%s,mode=0600", inst->dir);
        vtpmd_fmt(a_server, sizeof(a_server), "type=unixio,path=%s,mode=0600", inst->swtpm_sock);
        vtpmd_fmt(a_ctrl, sizeof(a_ctrl), "type=unixio,path=%s,mode=0600", inst->swtpm_ctrl);
        vtpmd_fmt(a_pid, sizeof(a_pid), "file=%s", inst->pidfile);
        vtpmd_fmt(a_log, sizeof(a_log), "file=%s", inst->swtpm_log);
        char *argv[] = {"vtpmd",
                        VTPMD_EXEC_SWTPM,
                        d->swtpm_path,
                        "socket",
                        "--tpm2",
                        "--tpmstate",
                        a_state,
                        "--server",
                        a_server,
                        "--ctrl",
                        a_ctrl,
                        "--key",
                        "fd=3,mode=aes-256-cbc,format=binary",
                        "--seccomp",
                        "action=kill",
                        "--flags",
                        "not-need-init,startup-clear",
                        "--pid",
                        a_pid,
                        "--log",
                        a_log,
                        NULL};
        stdio[0].flags = UV_IGNORE;
        stdio[1].flags = UV_IGNORE;
        stdio[2].flags = UV_IGNORE;
        stdio[3].flags = UV_INHERIT_FD;
        stdio[3].data.fd = pfd[0];
        o.file = "/proc/self/exe"; /* this vtpmd binary, as the fd-closing trampoline */
        o.args = argv;
        o.exit_cb = exit_cb;
        o.flags = UV_PROCESS_DETACHED;
        o.stdio = stdio;
        o.stdio_count = 4;
        inst->proc.data = inst;
        r = uv_spawn(d->loop, &inst->proc, &o);
        /* Whether it worked or not, the handle was initialised and must be closed once. */
        inst->proc_open = true;
        inst->refs++;
        if (r < 0) {
                vtpmd_fmt(err, err_len, "cannot start %s: %s", d->cfg->swtpm, uv_strerror(r));
                uv_close((uv_handle_t *)&inst->proc, proc_closed_cb);
                r = r == UV_ENOENT || r == UV_EACCES ? CSCP_E_UNSUPPORTED : r;
                goto out;
        }
        inst->pid = inst->proc.pid;
        inst->adopted = false;
        log_debug("%s: swtpm started, pid %d, endpoint %s", inst->uid, (int)inst->pid, inst->endpoint);
        r = 0;
out:
        if (pfd[0] >= 0)
                close(pfd[0]);
        if (pfd[1] >= 0)
                close(pfd[1]);
        return r;
}

/* ---- probing ------------------------------------------------------------- */

/* CMD_GET_CAPABILITY on the control socket: 0 when swtpm answers with TPM_SUCCESS. */
static int ctrl_probe(const char *ctrl, int timeout_ms)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        uint8_t cmd[4] = {0, 0, 0, 1}, resp[64];
        ssize_t n;
        int fd, r = -EIO;

        if (strlen(ctrl) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, ctrl);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                goto out;
        }
        if (send(fd, cmd, sizeof(cmd), MSG_NOSIGNAL) != (ssize_t)sizeof(cmd))
                goto out;
        n = recv(fd, resp, sizeof(resp), 0);
        if (n >= 4 && resp[0] == 0 && resp[1] == 0 && resp[2] == 0 && resp[3] == 0)
                r = 0;
out:
        close(fd);
        return r;
}

static int data_probe(const char *sock)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r = 0;

        if (strlen(sock) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, sock);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                r = -errno;
        close(fd);
        return r;
}

int instance_wait_ready(const instance_t *inst, unsigned timeout_ms)
{
        uint64_t deadline = instance_now_ms() + timeout_ms;
        int r;

        for (;;) {
                r = ctrl_probe(inst->swtpm_ctrl, 1000);
                if (r == 0)
                        r = data_probe(inst->swtpm_sock);
                if (r == 0)
                        return 0;
                if (instance_now_ms() >= deadline)
                        return CSCP_E_TIMEOUT;
                usleep(5000);
        }
}

/* /proc/<pid>/cmdline names swtpm and this instance's state directory. (/proc files report size 0: read in a loop.) */
static bool proc_is_our_swtpm(pid_t pid, const char *dir)
{
        char path[64], want[PATH_MAX + 8];
        static char buf[64 * 1024]; /* loop thread only */
        size_t len = 0;
        bool named = false, has_dir = false;
        int fd;

        vtpmd_fmt(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == sizeof(buf) - 1)
                        break;
        }
        close(fd);
        if (len == 0)
                return false; /* a zombie, or gone */
        buf[len] = '\0';
        vtpmd_fmt(want, sizeof(want), "dir=%s,", dir);
        for (size_t off = 0; off < len;) {
                const char *a = buf + off;
                size_t n = strnlen(a, len - off);
                const char *base = strrchr(a, '/');
                if (off == 0 && strncmp(base ? base + 1 : a, "swtpm", 5) == 0)
                        named = true;
                if (strncmp(a, want, strlen(want)) == 0)
                        has_dir = true;
                off += n + 1;
        }
        return named && has_dir;
}

static int read_pidfile(const char *path, pid_t *ret)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        char s[32];
        char *end;
        long v;
        int r;

        r = cscp_file_read(path, 31, &buf, &len);
        if (r < 0)
                return r;
        memcpy(s, buf, len);
        s[len] = '\0';
        free(buf);
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || v <= 1 || v > INT32_MAX || (*end && *end != '\n'))
                return CSCP_E_STATE;
        *ret = (pid_t)v;
        return 0;
}

int instance_adopt(instance_t *inst)
{
        pid_t pid;
        int fd, r;

        r = read_pidfile(inst->pidfile, &pid);
        if (r < 0)
                return r;
        if (!proc_is_our_swtpm(pid, inst->dir))
                return -ESRCH;
        r = ctrl_probe(inst->swtpm_ctrl, 1000);
        if (r < 0) {
                /* Alive but not answering on the endpoint we expect: it is stuck; stop it, the caller restarts. */
                log_warn("%s: swtpm %d does not answer on %s; killing it", inst->uid, (int)pid, inst->swtpm_ctrl);
                kill(pid, SIGKILL);
                return r;
        }
        fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) {
                r = -errno;
                log_error("%s: pidfd_open(%d): %s (vtpmd needs Linux >= 5.3 to supervise adopted instances)", inst->uid,
                          (int)pid, strerror(errno));
                return r;
        }
        r = uv_poll_init(inst->d->loop, &inst->pidpoll, fd);
        if (r < 0) {
                close(fd);
                return r;
        }
        inst->pidfd = fd;
        inst->pidpoll.data = inst;
        inst->poll_open = true;
        inst->refs++;
        r = uv_poll_start(&inst->pidpoll, UV_READABLE, pidpoll_cb);
        if (r < 0) {
                uv_close((uv_handle_t *)&inst->pidpoll, pidpoll_closed_cb);
                return r;
        }
        inst->pid = pid;
        inst->adopted = true;
        return 0;
}

/* ---- stopping ------------------------------------------------------------ */

static void kill_timer_cb(uv_timer_t *t)
{
        instance_t *inst = t->data;

        if (inst->pid > 0) {
                log_warn("%s: swtpm %d ignored SIGTERM for %d ms; SIGKILL", inst->uid, (int)inst->pid, KILL_GRACE_MS);
                kill(inst->pid, SIGKILL);
        }
}

void instance_stop(instance_t *inst, instance_cb cb)
{
        if (inst->pid <= 0) {
                if (cb)
                        cb(inst, 0);
                return;
        }
        inst->on_exit = cb;
        inst->stop_requested = true;
        kill(inst->pid, SIGTERM);
        if (inst->timer_open)
                uv_timer_start(&inst->timer, kill_timer_cb, KILL_GRACE_MS, KILL_GRACE_MS);
}

static void timer_closed_cb(uv_handle_t *h)
{
        instance_t *inst = h->data;

        inst->timer_open = false;
        instance_unref(inst);
}

void instance_release(instance_t *inst)
{
        endpoint_close(inst);
        inst->on_exit = NULL;
        if (inst->timer_open && !uv_is_closing((uv_handle_t *)&inst->timer))
                uv_close((uv_handle_t *)&inst->timer, timer_closed_cb);
        if (inst->proc_open && !uv_is_closing((uv_handle_t *)&inst->proc))
                uv_close((uv_handle_t *)&inst->proc, proc_closed_cb);
        if (inst->poll_open && !uv_is_closing((uv_handle_t *)&inst->pidpoll)) {
                uv_poll_stop(&inst->pidpoll);
                uv_close((uv_handle_t *)&inst->pidpoll, pidpoll_closed_cb);
        }
        instance_unref(inst);
}
