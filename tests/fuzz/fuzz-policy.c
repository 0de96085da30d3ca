/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the YAML policy loaders (appraisal and measurement
 * policy), then the appraisal policy's tdx checks. The first byte picks the
 * loader. Seeds: tests/unit/test-policy.c writes them into
 * <build>/fuzz-seeds/policy/.
 */

#include <stddef.h>
#include <stdint.h>

#include "cscp/policy.h"
#include "cscp/tdx.h"

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
                if (cscp_policy_parse((const char *)data + 1, size - 1, &p, err, sizeof(err)) == 0) {
                        /* the tdx section's checks: an all-zero debug TD quote, an empty CCEL replay */
                        static cscp_tdx_quote_t q = {.td_attributes = {1}};
                        cscp_appraisal_t *a = NULL;
                        cscp_replay_t rp;
                        cscp_replay_init(&rp);
                        if (cscp_appraisal_new(p, &a) == 0) {
                                (void)cscp_appraisal_tdx(a, NULL, &q);
                                (void)cscp_appraisal_tdx(a, NULL, NULL);
                                (void)cscp_appraisal_tdx_ccel(a, NULL, &rp);
                                (void)cscp_appraisal_tdx_ccel(a, NULL, NULL);
                                cscp_appraisal_free(a);
                        }
                        cscp_policy_free(p);
                }
        }
        return 0;
}
