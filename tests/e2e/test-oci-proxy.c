/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp-oci-hook --frontend vtpm-proxy: the container gets /dev/tpm0 and
 * /dev/tpmrm0 (device nodes + device cgroup, as LXD does) instead of the
 * socket directory. Needs the kernel's vtpm proxy (/dev/vtpmx, module
 * tpm_vtpm_proxy); without it this test skips (exit 77) and says so. With it,
 * the hook must refuse clearly while vtpmd has no vtpm-proxy frontend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

Test(oci_proxy, hook_refuses_without_a_proxy_device)
{
        char *dir = harness_tmpdir();
        char *bundle = harness_path(dir, "b");
        char *sh = NULL, *err = NULL, *out = NULL;
        int code = -1;

        cr_assert_eq(mkdir(bundle, 0755), 0);
        FILE *f = fopen(harness_path(bundle, "config.json"), "w");
        cr_assert(f);
        fputs("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"process\":{\"args\":[\"true\"]}}", f);
        fclose(f);
        cr_assert(asprintf(&sh,
                           "echo '{\"ociVersion\":\"1.0.2\",\"id\":\"p1\",\"pid\":1,\"bundle\":\"%s\"}' | "
                           "'%s/vtpmd/cscp-oci-hook' createContainer --frontend vtpm-proxy --socket '%s/none.sock'",
                           bundle, harness_build_dir(), dir) > 0);
        char *argv[] = {"sh", "-c", sh, NULL};
        cr_assert_eq(harness_run(argv, 60000, &code, &out, &err), 0);
        cr_assert_eq(code, 1, "hook exit %d: %s", code, err);
        cr_assert(strstr(err, "vtpm-proxy"), "%s", err);
        free(sh);
        free(out);
        free(err);
}

int main(int argc, char **argv)
{
        struct criterion_test_set *tests;
        int result = 0;

        if (access("/dev/vtpmx", F_OK) < 0) {
                fprintf(stderr, "SKIP: /dev/vtpmx is missing (modprobe tpm_vtpm_proxy): the vtpm-proxy frontend "
                                "cannot be exercised on this host\n");
                return 77;
        }
        tests = criterion_initialize();
        if (criterion_handle_args(argc, argv, true))
                result = !criterion_run_all_tests(tests);
        criterion_finalize(tests);
        return result;
}
