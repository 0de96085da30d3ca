/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the YAML policy loaders (appraisal and measurement
 * policy). The first byte picks the loader. Seeds: tests/unit/test-policy.c
 * writes them into <build>/fuzz-seeds/policy/.
 */

#include <stddef.h>
#include <stdint.h>

#include "cscp/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[256];

        if (size < 1)
                return 0;
        if (data[0] & 1) {
                cscp_measure_policy_t *m = NULL;
                if (cscp_measure_policy_parse((const char *)data + 1, size - 1, &m, err, sizeof(err)) == 0)
                        cscp_measure_policy_free(m);
        } else {
                cscp_policy_t *p = NULL;
                if (cscp_policy_parse((const char *)data + 1, size - 1, &p, err, sizeof(err)) == 0)
                        cscp_policy_free(p);
        }
        return 0;
}
