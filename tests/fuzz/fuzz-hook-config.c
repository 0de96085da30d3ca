/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: cscp-oci-hook's readers of what a runtime hands it
 * (vtpmd/hook-oci.c): the OCI state (stdin) and the bundle's config.json,
 * both untrusted. Byte 0 chooses the reader (even: config.json, odd: state),
 * the rest is the document. An accepted config must keep its documented
 * limits (counts, string lengths, a "sha256:" digest, an absolute root) and
 * free cleanly; a refusal must leave a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "hook-oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[512] = "";

        if (size < 1 || size > HOOK_STATE_MAX + 1)
                return 0;
        if (data[0] & 1) {
                hook_state_t st = {0};

                if (hook_state_parse((const char *)data + 1, size - 1, VTPMD_ID_MAX, &st, err, sizeof(err)) == 0) {
                        if (!st.id || vtpmd_container_id_check(st.id, VTPMD_ID_MAX) < 0 || !st.bundle)
                                abort();
                        hook_state_free(&st);
                } else if (!err[0]) {
                        abort();
                }
                return 0;
        }
        hook_config_t c = {0};
        if (hook_config_parse((const char *)data + 1, size - 1, "/bundle", &c, err, sizeof(err)) == 0) {
                if (strncmp(c.digest, "sha256:", 7) != 0 || strlen(c.digest) != HOOK_DIGEST_LEN || !c.root ||
                    c.root[0] != '/' || c.n_args > VTPMD_MAX_ARGS || c.n_env > VTPMD_MAX_ENV ||
                    c.n_ann > HOOK_MAX_ANNOTATIONS || c.n_cc_hooks > HOOK_MAX_HOOKS)
                        abort();
                for (size_t i = 0; i < c.n_cc_hooks; i++)
                        if (!c.cc_hooks[i] || strlen(c.cc_hooks[i]) > VTPMD_MAX_STRING)
                                abort();
                hook_config_free(&c);
        } else if (!err[0]) {
                abort();
        }
        return 0;
}
