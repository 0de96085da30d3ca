/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the sealed-blob parser (lib/tpm/seal.c), which reads
 * <state>/master.sealed at every vtpmd start before anything reaches the
 * TPM. Whatever the bytes, no crash, no out-of-bounds access; a refusal
 * always says why, and nothing shorter than the fixed header is accepted.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cscp/error.h"
#include "cscp/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *why = NULL;
        int r = cscp_seal_blob_check(data, size, &why);

        if (r != 0 && (r != CSCP_E_STATE || !why || !*why))
                abort();
        if (r == 0 && (size < 12 || size > CSCP_SEAL_BLOB_MAX))
                abort();
        return 0;
}
