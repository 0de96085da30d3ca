/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: cscp_replay_load, the checkpoint reader for incremental
 * replay (a file a challenger keeps between runs). Seeds: written by
 * tests/unit/test-eventlog.c into <build>/fuzz-seeds/checkpoint/.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_replay_t rp;
        uint8_t *again;
        size_t len;

        if (cscp_replay_load(data, size, &rp) < 0)
                return 0;
        /* What loads saves back to the same bytes. */
        if (cscp_replay_save(&rp, &again, &len) < 0)
                abort();
        if (len != size || memcmp(again, data, size) != 0)
                abort();
        free(again);
        return 0;
}
