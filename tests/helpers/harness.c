/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test harness: temporary directories removed at exit, child processes the
 * harness owns (no daemonizing, no zombies, killed at exit if a test forgot),
 * and helpers to start swtpm and attestd and wait until they are usable.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL) so that a test process that dies
 * hard (abort, SIGKILL from a timeout) does not leave a swtpm behind.
 * Set CSCP_TEST_KEEP=1 to keep the temporary directories for inspection.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define MAX_TRACKED              256
#define RUN_OUTPUT_MAX           (16u * 1024 * 1024)
#define SWTPM_START_TIMEOUT_MS   10000
#define ATTESTD_START_TIMEOUT_MS 20000
#define MKCERTS_TIMEOUT_MS       120000
#define STOP_TIMEOUT_MS          5000

/* What is cleaned at exit, only by the process that registered it. */
static pid_t owner_pid;
static char *tmpdirs[MAX_TRACKED];
static size_t n_tmpdirs;
static pid_t children[MAX_TRACKED];
static size_t n_children;
static bool atexit_done;

static void die(const char *what)
{
        fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
        abort();
}

static void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);

        if (!p)
                die("malloc");
        return p;
}

static char *path_join(const char *dir, const char *name);

static char *xstrdup(const char *s)
{
        char *p = strdup(s);

        if (!p)
                die("strdup");
        return p;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                (void)rmdir(path);
        else
                (void)unlink(path);
        return 0;
}

static void fuse_mounts_release(void);

static void child_forget(pid_t pid)
{
        for (size_t i = 0; i < n_children; i++)
                if (children[i] == pid) {
                        children[i] = children[--n_children];
                        return;
                }
}

static void cleanup_at_exit(void)
{
        const char *keep = getenv("CSCP_TEST_KEEP");

        if (getpid() != owner_pid)
                return; /* a forked copy of the registry: not ours */
        /* Unmount before the emulators die: no stale FUSE mount. */
        fuse_mounts_release();
        for (size_t i = 0; i < n_children; i++) {
                (void)kill(children[i], SIGKILL);
                while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        n_children = 0;
        for (size_t i = 0; i < n_tmpdirs; i++) {
                if (keep && *keep && strcmp(keep, "0") != 0)
                        fprintf(stderr, "harness: keeping %s\n", tmpdirs[i]);
                else
                        (void)nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
                free(tmpdirs[i]);
        }
        n_tmpdirs = 0;
}

static void registry_init(void)
{
        if (owner_pid != getpid()) {
                /* First use in this process (or in a fork of a process that used it). */
                owner_pid = getpid();
                n_tmpdirs = 0;
                n_children = 0;
        }
        if (!atexit_done) {
                if (atexit(cleanup_at_exit) != 0)
                        die("atexit");
                atexit_done = true;
        }
}

/* --- paths ----------------------------------------------------------------------------- */

static char *exe_grandparent(void)
{
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        char *s;

        if (n <= 0)
                return xstrdup(".");
        buf[n] = '\0';
        for (int i = 0; i < 2; i++) {
                s = strrchr(buf, '/');
                if (!s || s == buf)
                        return xstrdup("/");
                *s = '\0';
        }
        return xstrdup(buf);
}

const char *harness_build_dir(void)
{
        static char *dir;
        const char *e;

        if (!dir) {
                e = getenv("CSCP_BUILD_DIR");
                dir = e && *e ? xstrdup(e) : exe_grandparent(); /* <build>/tests/test-x */
        }
        return dir;
}

const char *harness_source_dir(void)
{
        static char *dir;
        const char *e;

        if (!dir) {
                e = getenv("CSCP_SOURCE_DIR");
                dir = e && *e ? xstrdup(e) : path_join(harness_build_dir(), "..");
        }
        return dir;
}

const char *harness_fixtures_dir(void)
{
        static char *dir;
        static bool checked;
        const char *e;
        struct stat st;
        char *p;

        if (!checked) {
                checked = true;
                e = getenv("CSCP_FIXTURES");
                p = e && *e ? xstrdup(e) : path_join(harness_source_dir(), "../shared/fixtures");
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        dir = p;
                else
                        free(p);
        }
        return dir;
}

char *harness_tmpdir(void)
{
        char tmpl[] = "/tmp/cscp-test-XXXXXX";

        registry_init();
        if (n_tmpdirs == MAX_TRACKED) {
                errno = EMFILE;
                die("too many temporary directories");
        }
        if (!mkdtemp(tmpl))
                die("mkdtemp");
        tmpdirs[n_tmpdirs++] = xstrdup(tmpl);
        return xstrdup(tmpl);
}

/* Test-lifetime allocations: reachable from here until exit, freed by harness_keep_free(). */
static void **kept;
static size_t n_kept, cap_kept;

static void harness_keep_free(void)
{
        for (size_t i = 0; i < n_kept; i++)
                free(kept[i]);
        free(kept);
        kept = NULL;
        n_kept = cap_kept = 0;
}

void *harness_keep(void *p)
{
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

        if (!p)
                return NULL;
        pthread_mutex_lock(&lock);
        if (n_kept == cap_kept) {
                size_t cap = cap_kept ? cap_kept * 2 : 64;
                void **k = realloc(kept, cap * sizeof(*k));

                if (!k)
                        die("realloc");
                if (!kept)
                        atexit(harness_keep_free);
                kept = k;
                cap_kept = cap;
        }
        kept[n_kept++] = p;
        pthread_mutex_unlock(&lock);
        return p;
}

static char *path_join(const char *dir, const char *name)
{
        size_t a = strlen(dir), b = strlen(name);
        char *p = xmalloc(a + b + 2);

        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
        return p;
}

char *harness_path(const char *dir, const char *name)
{
        return harness_keep(path_join(dir, name));
}

static int mkdir_if_missing(const char *dir)
{
        struct stat st;

        if (mkdir(dir, 0700) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        if (stat(dir, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* --- processes ------------------------------------------------------------------------- */

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child_exec(char *const argv[], int in_fd, int out_fd, int err_fd, pid_t parent)
{
        sigset_t none;

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        (void)signal(SIGPIPE, SIG_DFL);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
                _exit(127);
        execvp(argv[0], argv);
        {
                static const char msg[] = "harness: exec failed: ";
                (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
                (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
                (void)!write(STDERR_FILENO, "\n", 1);
        }
        _exit(127);
}

int harness_spawn(char *const argv[], const char *logfile, harness_proc_t *ret)
{
        pid_t parent = getpid(), pid;
        int null_fd, log_fd, r;

        if (!argv || !argv[0] || !ret)
                return -EINVAL;
        registry_init();
        if (n_children == MAX_TRACKED)
                return -EAGAIN;
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                return -errno;
        log_fd = open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                r = -errno;
                goto out_null;
        }
        fflush(NULL); /* no buffered output duplicated into the child */
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out_log;
        }
        if (pid == 0)
                child_exec(argv, null_fd, log_fd, log_fd, parent);
        children[n_children++] = pid;
        ret->pid = pid;
        ret->log = logfile ? xstrdup(logfile) : NULL;
        r = 0;
out_log:
        close(log_fd);
out_null:
        close(null_fd);
        return r;
}

int harness_wait(harness_proc_t *p, int timeout_ms, int *ret_status)
{
        int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
        int status;
        pid_t w;

        if (!p || p->pid <= 0)
                return -ECHILD;
        for (;;) {
                w = waitpid(p->pid, &status, WNOHANG);
                if (w < 0 && errno != EINTR)
                        return -errno;
                if (w == p->pid) {
                        child_forget(p->pid);
                        p->pid = 0; /* reaped: the number may be reused */
                        if (ret_status)
                                *ret_status = status;
                        return 0;
                }
                if (now_ms() >= deadline)
                        return -ETIMEDOUT;
                sleep_ms(5);
        }
}

int harness_stop(harness_proc_t *p, int sig, int timeout_ms)
{
        int status = 0, r;
        pid_t w;

        if (!p || p->pid <= 0)
                return -ECHILD;
        (void)kill(p->pid, sig);
        r = harness_wait(p, timeout_ms, &status);
        if (r == 0)
                return status;
        if (r != -ETIMEDOUT)
                return r;
        (void)kill(p->pid, SIGKILL);
        do
                w = waitpid(p->pid, &status, 0);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        child_forget(p->pid);
        p->pid = 0;
        return status;
}

bool harness_alive(const harness_proc_t *p)
{
        siginfo_t si;

        if (!p || p->pid <= 0)
                return false;
        memset(&si, 0, sizeof(si));
        /* WNOWAIT: look without reaping, so harness_wait still gets the status. */
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return false;
        return si.si_pid == 0;
}

typedef struct outbuf {
        char *data;
        size_t len, cap;
} outbuf_t;

static int outbuf_read(int fd, outbuf_t *b)
{
        char tmp[4096];
        ssize_t n;

        n = read(fd, tmp, sizeof(tmp));
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : -errno;
        if (n == 0)
                return 0;
        if (b->len + (size_t)n > RUN_OUTPUT_MAX)
                return -E2BIG;
        if (b->len + (size_t)n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *d;

                while (cap < b->len + (size_t)n + 1)
                        cap *= 2;
                d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, tmp, (size_t)n);
        b->len += (size_t)n;
        return 1;
}

static char *outbuf_take(outbuf_t *b)
{
        char *s = b->data ? b->data : xmalloc(1);

        s[b->len] = '\0';
        b->data = NULL;
        return s;
}

int harness_run(char *const argv[], int timeout_ms, int *ret_exit, char **ret_out, char **ret_err)
{
        outbuf_t out = {0}, err = {0};
        int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        int64_t deadline = now_ms() + timeout_ms;
        harness_proc_t p = {0};
        int null_fd = -1, status = 0, r;
        pid_t parent = getpid(), pid;

        if (!argv || !argv[0])
                return -EINVAL;
        registry_init();
        if (n_children == MAX_TRACKED)
                return -EAGAIN;
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                return -errno;
        if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
                r = -errno;
                goto out_fds;
        }
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out_fds;
        }
        if (pid == 0)
                child_exec(argv, null_fd, out_pipe[1], err_pipe[1], parent);
        children[n_children++] = pid;
        p.pid = pid;
        close(out_pipe[1]);
        close(err_pipe[1]);
        out_pipe[1] = err_pipe[1] = -1;

        r = 0;
        while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
                struct pollfd pfd[2] = {{.fd = out_pipe[0], .events = POLLIN}, {.fd = err_pipe[0], .events = POLLIN}};
                int64_t left = deadline - now_ms();
                int n;

                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                n = poll(pfd, 2, (int)(left > INT_MAX ? INT_MAX : left));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < 2 && r == 0; i++) {
                        int *fd = i == 0 ? &out_pipe[0] : &err_pipe[0];
                        int k;

                        if (*fd < 0 || pfd[i].revents == 0)
                                continue;
                        k = outbuf_read(*fd, i == 0 ? &out : &err);
                        if (k < 0)
                                r = k;
                        else if (k == 0) {
                                close(*fd);
                                *fd = -1;
                        }
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                (void)harness_stop(&p, SIGKILL, 0);
                goto out_fds;
        }
        {
                int64_t left = deadline - now_ms();

                r = harness_wait(&p, left > 0 ? (int)left : 0, &status);
                if (r < 0) {
                        (void)harness_stop(&p, SIGKILL, 0);
                        goto out_fds;
                }
        }
        if (ret_exit)
                *ret_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (ret_out)
                *ret_out = outbuf_take(&out);
        if (ret_err)
                *ret_err = outbuf_take(&err);
        r = 0;
out_fds:
        free(out.data);
        free(err.data);
        for (int i = 0; i < 2; i++) {
                if (out_pipe[i] >= 0)
                        close(out_pipe[i]);
                if (err_pipe[i] >= 0)
                        close(err_pipe[i]);
        }
        if (null_fd >= 0)
                close(null_fd);
        return r;
}

void harness_dump_log(const harness_proc_t *p)
{
        char buf[4096];
        ssize_t n;
        int fd;

        if (!p || !p->log)
                return;
        fflush(stdout);
        fprintf(stderr, "---- %s (pid %d) ----\n", p->log, (int)p->pid);
        fd = open(p->log, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "(cannot open: %s)\n", strerror(errno));
                return;
        }
        fflush(stderr);
        for (;;) {
                n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                fwrite(buf, 1, (size_t)n, stderr);
        }
        close(fd);
        fprintf(stderr, "---- end of %s ----\n", p->log);
}

int harness_wait_path(const char *path, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;

        for (;;) {
                if (access(path, F_OK) == 0)
                        return 0;
                if (now_ms() >= deadline)
                        return -ETIMEDOUT;
                sleep_ms(10);
        }
}

/* --- swtpm ----------------------------------------------------------------------------- */

static bool unix_connects(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        bool ok;
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

int harness_swtpm_start(const char *dir, harness_swtpm_t *ret)
{
        harness_swtpm_t s = {0};
        char *state_arg = NULL, *server_arg = NULL, *ctrl_arg = NULL, *ctrl = NULL, *log = NULL;
        int64_t deadline;
        int r;

        if (!dir || !ret)
                return -EINVAL;
        r = mkdir_if_missing(dir);
        if (r < 0)
                return r;
        s.dir = xstrdup(dir);
        s.sock = path_join(dir, "tpm.sock");
        ctrl = path_join(dir, "tpm.sock.ctrl");
        log = path_join(dir, "swtpm.log");
        {
                struct sockaddr_un sa;
                if (strlen(ctrl) >= sizeof(sa.sun_path)) {
                        r = -ENAMETOOLONG;
                        goto fail;
                }
        }
        (void)unlink(s.sock); /* a stale socket from a previous instance */
        (void)unlink(ctrl);
        if (asprintf(&state_arg, "dir=%s", dir) < 0 || asprintf(&server_arg, "type=unixio,path=%s", s.sock) < 0 ||
            asprintf(&ctrl_arg, "type=unixio,path=%s", ctrl) < 0 || asprintf(&s.tcti, "swtpm:path=%s", s.sock) < 0)
                die("asprintf");
        {
                char *argv[] = {"swtpm",
                                "socket",
                                "--tpm2",
                                "--tpmstate",
                                state_arg,
                                "--server",
                                server_arg,
                                "--ctrl",
                                ctrl_arg,
                                "--flags",
                                "not-need-init,startup-clear",
                                NULL};

                r = harness_spawn(argv, log, &s.proc);
                if (r < 0)
                        goto fail;
        }
        deadline = now_ms() + SWTPM_START_TIMEOUT_MS;
        for (;;) {
                if (access(ctrl, F_OK) == 0 && unix_connects(s.sock))
                        break;
                if (!harness_alive(&s.proc)) {
                        fprintf(stderr, "harness: swtpm exited during start-up\n");
                        harness_dump_log(&s.proc);
                        r = -ECHILD;
                        goto fail;
                }
                if (now_ms() >= deadline) {
                        fprintf(stderr, "harness: swtpm not listening after %d ms\n", SWTPM_START_TIMEOUT_MS);
                        harness_dump_log(&s.proc);
                        r = -ETIMEDOUT;
                        goto fail;
                }
                sleep_ms(10);
        }
        *ret = s;
        s = (harness_swtpm_t){0};
        r = 0;
fail:
        harness_swtpm_stop(&s);
        free(state_arg);
        free(server_arg);
        free(ctrl_arg);
        free(ctrl);
        free(log);
        return r;
}

void harness_swtpm_stop(harness_swtpm_t *s)
{
        if (!s)
                return;
        if (s->proc.pid > 0)
                (void)harness_stop(&s->proc, SIGTERM, STOP_TIMEOUT_MS);
        free(s->proc.log);
        free(s->dir);
        free(s->sock);
        free(s->tcti);
        *s = (harness_swtpm_t){0};
}

/* --- certificates and attestd ---------------------------------------------------------- */

int harness_mkcerts(const char *dir)
{
        static const char *const files[] = {"ca.pem",         "ca-key.pem", "server.pem",
                                            "server-key.pem", "client.pem", "client-key.pem"};
        char *script = path_join(harness_source_dir(), "certs/mkcerts");
        char *out = NULL, *err = NULL;
        int r, code = -1;

        r = mkdir_if_missing(dir);
        if (r < 0)
                goto out;
        {
                char *argv[] = {script, (char *)dir, NULL};

                r = harness_run(argv, MKCERTS_TIMEOUT_MS, &code, &out, &err);
        }
        if (r < 0) {
                fprintf(stderr, "harness: %s: %s\n", script, strerror(-r));
                goto out;
        }
        if (code != 0) {
                fprintf(stderr, "harness: %s exited with %d\n--- stdout ---\n%s\n--- stderr ---\n%s\n", script, code,
                        out, err);
                r = -EIO;
                goto out;
        }
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                char *f = path_join(dir, files[i]);
                bool ok = access(f, R_OK) == 0;

                if (!ok)
                        fprintf(stderr, "harness: %s did not create %s\n", script, f);
                free(f);
                if (!ok) {
                        r = -ENOENT;
                        goto out;
                }
        }
        r = 0;
out:
        free(out);
        free(err);
        free(script);
        return r;
}

/* Reads "host:port\n" from the ready file; 1 when not complete yet. */
static int read_ready(const char *path, char **ret)
{
        char buf[128];
        ssize_t n;
        char *nl;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 1 : -errno;
        do
                n = read(fd, buf, sizeof(buf) - 1);
        while (n < 0 && errno == EINTR);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        nl = strchr(buf, '\n');
        if (!nl)
                return 1;
        *nl = '\0';
        if (nl == buf || !strchr(buf, ':'))
                return -EBADMSG;
        *ret = xstrdup(buf);
        return 0;
}

int harness_attestd_start(const char *dir, const char *tcti, const char *certs, char *const extra[],
                          harness_attestd_t *ret)
{
        harness_attestd_t a = {0};
        char *bin = path_join(harness_build_dir(), "attestd");
        char *ready = path_join(dir, "ready");
        char *log = path_join(dir, "attestd.log");
        char *cert = NULL, *key = NULL, *ca = NULL;
        char **argv = NULL;
        size_t n_extra = 0, k = 0;
        int64_t deadline;
        int r;

        a.state_dir = path_join(dir, "state");
        if (certs) {
                cert = path_join(certs, "server.pem");
                key = path_join(certs, "server-key.pem");
                ca = path_join(certs, "ca.pem");
        }
        while (extra && extra[n_extra])
                n_extra++;
        argv = xmalloc((16 + n_extra) * sizeof(*argv));
        argv[k++] = bin;
        argv[k++] = "--listen";
        argv[k++] = "127.0.0.1:0";
        if (tcti) {
                argv[k++] = "--tcti";
                argv[k++] = (char *)tcti;
        }
        argv[k++] = "--state-dir";
        argv[k++] = a.state_dir;
        argv[k++] = "--ready-file";
        argv[k++] = ready;
        if (certs) {
                argv[k++] = "--cert";
                argv[k++] = cert;
                argv[k++] = "--key";
                argv[k++] = key;
                argv[k++] = "--client-ca";
                argv[k++] = ca;
        } else
                argv[k++] = "--insecure-plaintext";
        for (size_t i = 0; i < n_extra; i++)
                argv[k++] = extra[i];
        argv[k] = NULL;

        (void)unlink(ready); /* from a previous instance in the same dir */
        r = harness_spawn(argv, log, &a.proc);
        if (r < 0)
                goto fail;
        deadline = now_ms() + ATTESTD_START_TIMEOUT_MS;
        for (;;) {
                r = read_ready(ready, &a.addr);
                if (r <= 0)
                        break;
                if (!harness_alive(&a.proc)) {
                        fprintf(stderr, "harness: attestd exited during start-up\n");
                        r = -ECHILD;
                        break;
                }
                if (now_ms() >= deadline) {
                        fprintf(stderr, "harness: no %s after %d ms\n", ready, ATTESTD_START_TIMEOUT_MS);
                        r = -ETIMEDOUT;
                        break;
                }
                sleep_ms(10);
        }
        if (r < 0) {
                harness_dump_log(&a.proc);
                goto fail;
        }
        *ret = a;
        a = (harness_attestd_t){0};
        r = 0;
fail:
        harness_attestd_stop(&a);
        free(argv);
        free(cert);
        free(key);
        free(ca);
        free(bin);
        free(ready);
        free(log);
        return r;
}

void harness_attestd_stop(harness_attestd_t *a)
{
        if (!a)
                return;
        if (a->proc.pid > 0)
                (void)harness_stop(&a->proc, SIGTERM, STOP_TIMEOUT_MS);
        free(a->proc.log);
        free(a->state_dir);
        free(a->addr);
        *a = (harness_attestd_t){0};
}

/* --- tdx-emu (tests/helpers/tdx-emu.c: a TEST emulator of a TDX guest's files, NOT TDX) --------------------------- */

#define TDX_EMU_START_TIMEOUT_MS 15000
#define FUSE_SUPER_MAGIC_        0x65735546
#define MAX_FUSE_MOUNTS          16

static char *fuse_mounts[MAX_FUSE_MOUNTS];
static size_t n_fuse_mounts;

static bool fuse_mounted(const char *mnt)
{
        struct statfs sf;

        return statfs(mnt, &sf) == 0 ? (unsigned long)sf.f_type == FUSE_SUPER_MAGIC_ : errno == ENOTCONN;
}

/* Unmounts mnt if a FUSE file system is still there: fusermount3 -u, then a lazy unmount. */
static void fuse_unmount(const char *mnt)
{
        pid_t pid;
        int status;

        if (!fuse_mounted(mnt))
                return;
        pid = fork();
        if (pid == 0) {
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (fd >= 0) {
                        (void)dup2(fd, STDOUT_FILENO);
                        (void)dup2(fd, STDERR_FILENO);
                }
                execlp("fusermount3", "fusermount3", "-u", "-z", mnt, (char *)NULL);
                _exit(127);
        }
        if (pid > 0)
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
        if (fuse_mounted(mnt))
                (void)umount2(mnt, MNT_DETACH);
}

static void fuse_mounts_release(void)
{
        for (size_t i = 0; i < n_fuse_mounts; i++) {
                fuse_unmount(fuse_mounts[i]);
                free(fuse_mounts[i]);
        }
        n_fuse_mounts = 0;
}

static void fuse_mount_forget(const char *mnt)
{
        for (size_t i = 0; i < n_fuse_mounts; i++)
                if (strcmp(fuse_mounts[i], mnt) == 0) {
                        free(fuse_mounts[i]);
                        fuse_mounts[i] = fuse_mounts[--n_fuse_mounts];
                        return;
                }
}

/* As root: a mount namespace of this test process's own (private propagation), so that a mount made here dies
 * with the process even when it is killed. Without the privilege: the registry + fusermount3 at exit. */
static void private_mount_namespace(void)
{
        static pid_t done_in;

        if (done_in == getpid() || geteuid() != 0)
                return;
        done_in = getpid();
        if (unshare(CLONE_NEWNS) < 0)
                return;
        (void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

int harness_tdx_emu_start(const char *dir, const char *const *extra_args, pid_t *ret_pid)
{
        char *exe = path_join(harness_build_dir(), "tests/tdx-emu"), *mnt = path_join(dir, "mnt"),
             *state = path_join(dir, "state"), *ready = path_join(dir, "tdx-emu.ready"),
             *log = path_join(dir, "tdx-emu.log");
        const char *base[] = {exe, mnt, "--state", state, "--ready-file", ready, NULL};
        char **argv = harness_argv(base, extra_args ? extra_args : (const char *const[]){NULL}, NULL);
        harness_proc_t p = {0};
        int64_t deadline;
        char *text;
        int status = 0, r;

        if (access(exe, X_OK) != 0)
                cr_skip_test("%s not built (libfuse3 was not found at configure time: scripts/deps installs "
                             "libfuse3-dev fuse3): no TDX emulator",
                             exe);
        if (access("/dev/fuse", R_OK | W_OK) != 0)
                cr_skip_test("/dev/fuse: %s: no FUSE here, no TDX emulator", strerror(errno));
        cr_assert(mkdir_if_missing(dir) == 0 && mkdir_if_missing(mnt) == 0, "mkdir %s", mnt);
        (void)unlink(ready);
        private_mount_namespace();
        r = harness_spawn(argv, log, &p);
        cr_assert_eq(r, 0, "spawn %s: %s", exe, strerror(-r));
        if (n_fuse_mounts < MAX_FUSE_MOUNTS)
                fuse_mounts[n_fuse_mounts++] = xstrdup(mnt);
        deadline = now_ms() + TDX_EMU_START_TIMEOUT_MS;
        while (access(ready, F_OK) != 0) {
                if (harness_wait(&p, 0, &status) == 0) {
                        fuse_mount_forget(mnt);
                        text = harness_slurp(log, NULL);
                        /* libfuse and fusermount3 say why a mount failed with these prefixes: the machine's
                         * limits, not our bug. */
                        if (text && (strstr(text, "fuse:") || strstr(text, "fusermount")))
                                cr_skip_test("tdx-emu could not mount %s (no FUSE mount here): %s", mnt, text);
                        cr_assert_fail("tdx-emu exited (status 0x%x) before mounting: %s", status,
                                       text ? text : "(no log)");
                }
                if (now_ms() > deadline) {
                        harness_dump_log(&p);
                        (void)harness_stop(&p, SIGKILL, STOP_TIMEOUT_MS);
                        fuse_unmount(mnt);
                        fuse_mount_forget(mnt);
                        cr_assert_fail("tdx-emu did not mount %s within %d ms", mnt, TDX_EMU_START_TIMEOUT_MS);
                }
                sleep_ms(10);
        }
        *ret_pid = p.pid;
        free(p.log);
        free(exe);
        free(mnt);
        free(state);
        free(ready);
        free(log);
        return 0;
}

int harness_tdx_emu_stop(const char *dir, pid_t pid)
{
        char *mnt = path_join(dir, "mnt");
        harness_proc_t p = {.pid = pid};
        int status = -ECHILD;

        if (pid > 0)
                status = harness_stop(&p, SIGTERM, STOP_TIMEOUT_MS);
        fuse_unmount(mnt);
        fuse_mount_forget(mnt);
        free(mnt);
        return status;
}
