/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --frontend vtpm-proxy: the instance's vTPM also appears as a kernel TPM
 * (/dev/tpmN and /dev/tpmrmN) through the vtpm_proxy driver (reference.md §8):
 * VTPM_PROXY_IOC_NEW_DEV with VTPM_PROXY_FLAG_TPM2 on /dev/vtpmx returns an
 * fd from which the kernel's commands are read (one per read()) and to which
 * the responses are written; they go through the same resource manager as the
 * socket endpoint (one more client space; the kernel's /dev/tpmrmN adds its own
 * spaces on top). The kernel's locality requests (TPM2_CC_SET_LOCALITY
 * 0x20001000) are answered by the endpoint. Closing the fd removes the device.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vtpm_proxy.h>

#define LOGMODULE proxy
#include "core.h"
#include "endpoint.h"
#include "log.h"

#define VTPMX           "/dev/vtpmx"
#define TPM_NUM_DEVICES 65536u /* drivers/char/tpm/tpm.h: /dev/tpmrmN is minor N + TPM_NUM_DEVICES */

/* The dynamic "tpm" char major from /proc/devices (the kernel's tpm_devt), 0 when absent. */
static unsigned tpm_char_major(void)
{
        FILE *f = fopen("/proc/devices", "re");
        char line[128];
        bool chars = false;
        unsigned major = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                unsigned m;
                char name[64];
                if (strncmp(line, "Character devices:", 18) == 0)
                        chars = true;
                else if (strncmp(line, "Block devices:", 14) == 0)
                        chars = false;
                else if (chars && sscanf(line, "%u %63s", &m, name) == 2 && strcmp(name, "tpm") == 0)
                        major = m;
        }
        fclose(f);
        return major;
}

int proxy_open(instance_t *inst, char *ret_dev, size_t dev_len)
{
        struct vtpm_proxy_new_dev nd = {.flags = VTPM_PROXY_FLAG_TPM2};
        char name[64];
        int fd, r;

        fd = open(VTPMX, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                log_error("%s: cannot open %s: %s (module tpm_vtpm_proxy, CAP_SYS_ADMIN)", inst->uid, VTPMX,
                          strerror(errno));
                return r;
        }
        if (ioctl(fd, VTPM_PROXY_IOC_NEW_DEV, &nd) < 0) {
                r = -errno;
                log_error("%s: VTPM_PROXY_IOC_NEW_DEV: %s", inst->uid, strerror(errno));
                close(fd);
                return r;
        }
        close(fd); /* /dev/vtpmx itself is no longer needed; nd.fd is the device's server side */
        (void)fcntl((int)nd.fd, F_SETFD, FD_CLOEXEC);
        vtpmd_fmt(name, sizeof(name), "/dev/tpm%u", nd.tpm_num);
        r = endpoint_attach_fd(inst, (int)nd.fd, name);
        if (r < 0)
                return r;
        /* /dev/tpm0 is the misc device 10:224; every /dev/tpmrmN has the "tpm" major (reference.md §8). */
        inst->proxy_major = nd.major;
        inst->proxy_minor = nd.minor;
        inst->proxy_rm_major = nd.tpm_num == 0 ? tpm_char_major() : nd.major;
        inst->proxy_rm_minor = nd.tpm_num + TPM_NUM_DEVICES;
        vtpmd_fmt(inst->proxy_dev, sizeof(inst->proxy_dev), "/dev/tpm%u", nd.tpm_num);
        vtpmd_fmt(inst->proxy_rm_dev, sizeof(inst->proxy_rm_dev), "/dev/tpmrm%u", nd.tpm_num);
        inst->have_proxy = inst->proxy_rm_major != 0;
        if (!inst->have_proxy)
                log_warn("%s: no \"tpm\" major in /proc/devices: /dev/tpmrm%u is not reported", inst->uid, nd.tpm_num);
        log_info("%s: vTPM of %s exposed as %s (%u:%u) and %s (%u:%u)", inst->uid, inst->id, inst->proxy_dev,
                 inst->proxy_major, inst->proxy_minor, inst->proxy_rm_dev, inst->proxy_rm_major, inst->proxy_rm_minor);
        return vtpmd_fmt(ret_dev, dev_len, "/dev/tpmrm%u", nd.tpm_num);
}
