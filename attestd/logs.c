/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "eventlog.h"
#include "logs.h"

int attestd_log_format(Cscp__LogKind kind)
{
        switch (kind) {
        case CSCP__LOG_KIND__LOG_BOOT:
        case CSCP__LOG_KIND__LOG_CCEL:
                return CSCP_EVENTLOG_TCG;
        case CSCP__LOG_KIND__LOG_IMA:
                return CSCP_EVENTLOG_AUTO;
        case CSCP__LOG_KIND__LOG_HOST_CEL:
        case CSCP__LOG_KIND__LOG_CONTAINER_CEL:
        case CSCP__LOG_KIND__LOG_HOST_PROC_CEL:
                return CSCP_EVENTLOG_CEL_TLV;
        case CSCP__LOG_KIND__LOG_SYSTEMD_CEL:
                return CSCP_EVENTLOG_CEL_JSON;
        case CSCP__LOG_KIND__LOG_UNSPECIFIED:
        case _CSCP__LOG_KIND_IS_INT_SIZE:
        default:
                return -EINVAL;
        }
}

const char *attestd_log_name(Cscp__LogKind kind)
{
        switch (kind) {
        case CSCP__LOG_KIND__LOG_BOOT:
                return "boot";
        case CSCP__LOG_KIND__LOG_IMA:
                return "IMA";
        case CSCP__LOG_KIND__LOG_HOST_CEL:
                return "host CEL";
        case CSCP__LOG_KIND__LOG_CONTAINER_CEL:
                return "container CEL";
        case CSCP__LOG_KIND__LOG_SYSTEMD_CEL:
                return "systemd CEL-JSON";
        case CSCP__LOG_KIND__LOG_HOST_PROC_CEL:
                return "host process CEL";
        case CSCP__LOG_KIND__LOG_CCEL:
                return "CCEL";
        case CSCP__LOG_KIND__LOG_UNSPECIFIED:
        case _CSCP__LOG_KIND_IS_INT_SIZE:
        default:
                return "unknown";
        }
}

void attestd_log_clear(attestd_log_t *l)
{
        if (!l)
                return;
        free(l->buf);
        *l = (attestd_log_t){0};
}

/* The whole file, up to max bytes: securityfs and sysfs files report size 0, IMA's list grows while we read. */
static int read_all(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
        struct stat st;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        if ((uintmax_t)st.st_size > max) {
                r = CSCP_E_TOO_BIG;
                goto out;
        }
        cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 64 * 1024;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
                        uint8_t *nb;
                        if (ncap <= cap) {
                                r = CSCP_E_TOO_BIG;
                                goto out;
                        }
                        nb = realloc(buf, ncap);
                        if (!nb) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = nb;
                        cap = ncap;
                }
                if (!buf) {
                        buf = malloc(cap);
                        if (!buf) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        r = CSCP_E_TOO_BIG;
                        goto out;
                }
        }
        *ret = buf;
        *ret_len = len;
        buf = NULL;
        r = 0;
out:
        free(buf);
        close(fd);
        return r;
}

int attestd_log_read(const char *path, Cscp__LogKind kind, uint64_t offset, size_t max_bytes, attestd_log_t *ret,
                     char *msg, size_t msg_len)
{
        const char *name = attestd_log_name(kind);
        int fmt = attestd_log_format(kind);
        attestd_log_t l = {0};
        size_t len = 0;
        int r;

        if (fmt < 0 || !path) {
                snprintf(msg, msg_len, "no %s log on this host", name);
                return -EINVAL;
        }
        if (kind == CSCP__LOG_KIND__LOG_BOOT)
                offset = 0; /* its first event defines the digest sizes of the rest */
        r = read_all(path, ATTESTD_LOG_FILE_MAX, &l.buf, &len);
        if (r == -ENOENT) {
                snprintf(msg, msg_len, "no %s log at %s", name, path);
                return r;
        }
        if (r == CSCP_E_TOO_BIG) {
                snprintf(msg, msg_len, "the %s log %s is over the %u bytes attestd reads", name, path,
                         ATTESTD_LOG_FILE_MAX);
                return r;
        }
        if (r < 0) {
                snprintf(msg, msg_len, "cannot read the %s log %s: %s", name, path,
                         r == -EINVAL ? "not a regular file" : cscp_strerror(r));
                return r;
        }
        if (kind == CSCP__LOG_KIND__LOG_IMA && len > 0) {
                /* ascii or binary, whichever the file is; anything else is not an IMA list */
                cscp_eventlog_t *p = NULL;
                r = cscp_eventlog_open_mem(l.buf, len, CSCP_EVENTLOG_AUTO, NULL, NULL, &p);
                if (r == 0) {
                        fmt = cscp_eventlog_format(p);
                        cscp_eventlog_free(p);
                }
                if (r < 0 || (fmt != CSCP_EVENTLOG_IMA && fmt != CSCP_EVENTLOG_IMA_BINARY)) {
                        snprintf(msg, msg_len, "%s is not an IMA measurement list", path);
                        r = CSCP_E_PROTO;
                        goto fail;
                }
        }
        r = cscp_eventlog_slice(l.buf, len, (cscp_eventlog_format_t)(fmt == CSCP_EVENTLOG_AUTO ? 0 : fmt), offset,
                                max_bytes, &l.start, &l.len, &l.count);
        if (r == -ERANGE && offset > 0) {
                /* Fewer events than the challenger has seen: the log started over (the host rebooted). The
                 * whole log, marked as starting at event 0, lets the challenger replay it from the start. */
                offset = 0;
                r = cscp_eventlog_slice(l.buf, len, (cscp_eventlog_format_t)(fmt == CSCP_EVENTLOG_AUTO ? 0 : fmt), 0,
                                        max_bytes, &l.start, &l.len, &l.count);
        }
        if (r == 1) {
                snprintf(msg, msg_len, "the %s log from event %llu is over %zu bytes: ask from a later offset", name,
                         (unsigned long long)offset, max_bytes);
                r = CSCP_E_TOO_BIG;
        } else if (r == -ERANGE) {
                snprintf(msg, msg_len, "offset %llu is past the end of the %s log (did the host reboot?)",
                         (unsigned long long)offset, name);
        } else if (r < 0) {
                snprintf(msg, msg_len, "the %s log %s does not parse: %s", name, path, cscp_strerror(r));
        }
        if (r < 0)
                goto fail;
        l.offset = offset;
        *ret = l;
        return 0;
fail:
        attestd_log_clear(&l);
        return r;
}
