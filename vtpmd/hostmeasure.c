/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The measurement policy's host half (docs/policy.md, measure.system.processes):
 * at start vtpmd measures each listed host binary, and with withParameter the
 * command line of every running process of that binary, into a second host
 * log (<state>/host-pcr11.cel, host PCR --host-process-pcr, default 11: the
 * container runtime caller PCR of design.md §2). The log is a hostlog_t, so
 * it is write-ahead and reconciled at open exactly like the bind log.
 *
 * Records (CM_TLV PROCESS, docs/measurements.md §8), in policy order:
 *   one per binary:  event "host-process", name = path, digest = "<alg>:<hex>" of the file
 *   one per running process of it (withParameter, ascending pid):
 *                    event "host-process", name = path, value = /proc/<pid>/cmdline, digest as above
 * The command line is the raw bytes of /proc/<pid>/cmdline: the arguments each
 * followed by a NUL, the last NUL dropped (so argument boundaries survive).
 * A binary that cannot be read is an error (vtpmd refuses to start: the
 * policy asked for it); a process that exits while it is read is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define LOGMODULE hostmeasure
#include "core.h"
#include "error.h"
#include "log.h"
#include "pcr.h"
#include "policy.h"
#include "util.h"

#define CMDLINE_MAX        (128u * 1024) /* under VTPM_LOG_MAX_CONTENT with room for the other fields */
#define PROCS_PER_PATH     256
#define HOST_PROCESS_EVENT "host-process"

static int file_digest(const char *path, uint16_t alg, char *ret, size_t ret_len, char *err, size_t err_len)
{
        const EVP_MD *md = EVP_get_digestbyname(cscp_hash_alg_name(alg));
        EVP_MD_CTX *ctx = NULL;
        uint8_t buf[64 * 1024], d[EVP_MAX_MD_SIZE];
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        unsigned n = 0;
        struct stat st;
        int fd, r = CSCP_E_CRYPTO;

        if (!md)
                return CSCP_E_UNSUPPORTED;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                vtpmd_fmt(err, err_len, "%s: %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                vtpmd_fmt(err, err_len, "%s: not a regular file", path);
                close(fd);
                return -EINVAL;
        }
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1)
                goto out;
        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        vtpmd_fmt(err, err_len, "reading %s: %s", path, strerror(errno));
                        goto out;
                }
                if (k == 0)
                        break;
                if (EVP_DigestUpdate(ctx, buf, (size_t)k) != 1)
                        goto out;
        }
        if (EVP_DigestFinal_ex(ctx, d, &n) != 1 || n != cscp_hash_alg_size(alg))
                goto out;
        cscp_hex_encode(d, n, hex);
        r = vtpmd_fmt(ret, ret_len, "%s:%s", cscp_hash_alg_name(alg), hex);
out:
        if (r == CSCP_E_CRYPTO)
                vtpmd_fmt(err, err_len, "hashing %s failed", path);
        EVP_MD_CTX_free(ctx);
        close(fd);
        return r;
}

/* /proc/<pid>/cmdline, at most CMDLINE_MAX bytes, the trailing NUL dropped: -E2BIG when longer, -ESRCH when gone. */
static int read_cmdline(pid_t pid, uint8_t **ret, size_t *ret_len)
{
        char path[64];
        uint8_t *buf;
        size_t len = 0;
        int fd;

        vtpmd_fmt(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -ESRCH;
        buf = malloc(CMDLINE_MAX + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t k = read(fd, buf + len, CMDLINE_MAX + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
                if (len > CMDLINE_MAX)
                        break;
        }
        close(fd);
        if (len > CMDLINE_MAX) {
                free(buf);
                return -E2BIG;
        }
        if (len == 0) { /* a zombie or a kernel thread */
                free(buf);
                return -ESRCH;
        }
        if (buf[len - 1] == '\0')
                len--;
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int pid_cmp(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

/* The pids whose /proc/<pid>/exe is path, ascending (at most PROCS_PER_PATH). */
static int find_processes(const char *path, pid_t *ret, size_t *ret_n)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        size_t n = 0;

        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                char link[64], target[PATH_MAX];
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                ssize_t k;

                if (*end || pid <= 0)
                        continue;
                vtpmd_fmt(link, sizeof(link), "/proc/%ld/exe", pid);
                k = readlink(link, target, sizeof(target) - 1);
                if (k <= 0)
                        continue;
                target[k] = '\0';
                if (strcmp(target, path) != 0)
                        continue;
                if (n == PROCS_PER_PATH) {
                        log_warn("%s: more than %d running processes; measuring the first %d found", path,
                                 PROCS_PER_PATH, PROCS_PER_PATH);
                        break;
                }
                ret[n++] = (pid_t)pid;
        }
        closedir(d);
        qsort(ret, n, sizeof(*ret), pid_cmp);
        *ret_n = n;
        return 0;
}

int hostmeasure_apply(hostlog_t *h, const cscp_measure_policy_t *p, char *err, size_t err_len)
{
        pid_t *pids = NULL;
        unsigned n_records = 0;
        int r = 0;

        if (!h || !p)
                return -EINVAL;
        pids = calloc(PROCS_PER_PATH, sizeof(*pids));
        if (!pids)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_processes; i++) {
                const cscp_measure_process_t *pr = &p->processes[i];
                char digest[16 + 2 * EVP_MAX_MD_SIZE];
                cscp_cm_field_value_t f[4];
                size_t n_pids = 0;

                r = file_digest(pr->path, p->hash_alg, digest, sizeof(digest), err, err_len);
                if (r < 0)
                        goto out;
                f[0] = (cscp_cm_field_value_t){CSCP_CM_F_EVENT, HOST_PROCESS_EVENT, strlen(HOST_PROCESS_EVENT)};
                f[1] = (cscp_cm_field_value_t){CSCP_CM_F_NAME, pr->path, strlen(pr->path)};
                f[2] = (cscp_cm_field_value_t){CSCP_CM_F_DIGEST, digest, strlen(digest)};
                r = hostlog_append(h, CSCP_CM_PROCESS, f, 3);
                if (r < 0) {
                        vtpmd_fmt(err, err_len, "appending the record of %s: %s", pr->path, cscp_strerror(r));
                        goto out;
                }
                n_records++;
                if (!pr->with_parameter)
                        continue;
                r = find_processes(pr->path, pids, &n_pids);
                if (r < 0) {
                        vtpmd_fmt(err, err_len, "reading /proc: %s", strerror(-r));
                        goto out;
                }
                for (size_t k = 0; k < n_pids; k++) {
                        uint8_t *cmd = NULL;
                        size_t cmd_len = 0;

                        r = read_cmdline(pids[k], &cmd, &cmd_len);
                        if (r == -ESRCH)
                                continue; /* exited meanwhile */
                        if (r == -E2BIG) {
                                log_warn("%s: process %d has a command line over %u bytes; not measured", pr->path,
                                         (int)pids[k], CMDLINE_MAX);
                                continue;
                        }
                        if (r < 0)
                                goto out;
                        f[2] = (cscp_cm_field_value_t){CSCP_CM_F_VALUE, cmd, cmd_len};
                        f[3] = (cscp_cm_field_value_t){CSCP_CM_F_DIGEST, digest, strlen(digest)};
                        r = hostlog_append(h, CSCP_CM_PROCESS, f, 4);
                        free(cmd);
                        if (r < 0) {
                                vtpmd_fmt(err, err_len, "appending the command line of %s (pid %d): %s", pr->path,
                                          (int)pids[k], cscp_strerror(r));
                                goto out;
                        }
                        n_records++;
                }
                log_info("measured %s (%s)%s%s", pr->path, digest, pr->with_parameter ? ", processes: " : "",
                         pr->with_parameter ? (n_pids ? "see the host log" : "none running") : "");
        }
        log_info("measurement policy: %u host process record(s) appended", n_records);
        r = 0;
out:
        free(pids);
        return r;
}

int hostmeasure_start(vtpmd_t *d, char *err, size_t err_len)
{
        const vtpmd_config_t *cfg = d->cfg;
        const cscp_measure_policy_t *p = cfg->measure_policy;
        uint16_t banks[2] = {0, 0};
        char msg[512];
        int r;

        if (!p)
                return 0;
        if (strcmp(p->backend, "tpm") != 0) {
                vtpmd_fmt(err, err_len, "measurement policy backend '%s' is not supported yet (only tpm)", p->backend);
                return CSCP_E_UNSUPPORTED;
        }
        r = vtpmd_fmt(d->proclog_path, sizeof(d->proclog_path), "%s/host-pcr%u.cel", cfg->state_dir,
                      (unsigned)cfg->host_process_pcr);
        if (r < 0)
                return r;
        banks[0] = p->hash_alg;
        r = hostlog_open(d->proclog_path, cfg->tcti, cfg->host_process_pcr, banks, &d->proclog, msg, sizeof(msg));
        if (r < 0) {
                vtpmd_fmt(err, err_len, "host process log %s (host PCR %u, bank %s): %s%s%s", d->proclog_path,
                          (unsigned)cfg->host_process_pcr, cscp_hash_alg_name(p->hash_alg), cscp_strerror(r),
                          msg[0] ? ": " : "", msg);
                return r;
        }
        log_info("measurement policy %s: %zu host process(es) into host PCR %u (%s), container.isolated=%s, "
                 "kubernetes.pods=%s",
                 cfg->measure_policy_path ? cfg->measure_policy_path : "(given)", p->n_processes,
                 (unsigned)cfg->host_process_pcr, cscp_hash_alg_name(p->hash_alg),
                 p->container_isolated ? "true" : "false", p->kubernetes_pods ? "true" : "false");
        r = hostmeasure_apply(d->proclog, p, err, err_len);
        if (r < 0) {
                hostlog_close(d->proclog);
                d->proclog = NULL;
        }
        return r;
}
