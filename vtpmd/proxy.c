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

#define VTPMX "/dev/vtpmx"

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
        log_info("%s: vTPM of %s exposed as /dev/tpm%u and /dev/tpmrm%u (major %u, minor %u)", inst->uid, inst->id,
                 nd.tpm_num, nd.tpm_num, nd.major, nd.minor);
        return vtpmd_fmt(ret_dev, dev_len, "/dev/tpmrm%u", nd.tpm_num);
}
