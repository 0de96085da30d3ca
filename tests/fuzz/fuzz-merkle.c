/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: cscp_merkle_verify on a proof from the network (index,
 * tree size, path). Input: u16 index, u16 size-1, then 32-byte path entries.
 * A proof may verify only if recomputing the root over a tree whose other
 * leaves we know gives the same root — here: a proof never verifies against
 * a root it did not commit to (the leaf is fixed, the root is random-ish).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/merkle.h"
#include "cscp/pcr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH + 2];
        uint8_t leaf[32], root[32];
        size_t index, n, len;

        if (size < 4 + 64)
                return 0;
        index = (size_t)data[0] << 8 | data[1];
        n = ((size_t)data[2] << 8 | data[3]) + 1;
        memcpy(leaf, data + 4, 32);
        memcpy(root, data + 36, 32);
        data += 68;
        size -= 68;
        len = size / 32;
        if (len > CSCP_MERKLE_MAX_DEPTH + 2)
                len = CSCP_MERKLE_MAX_DEPTH + 2;
        for (size_t i = 0; i < len; i++)
                memcpy(path[i], data + 32 * i, 32);
        (void)cscp_merkle_verify(TPM2_ALG_SHA256, leaf, index, n, path, len, root);
        /* Self-consistency: a tree of n (capped) copies of leaf; its own proofs verify. */
        if (n <= 64 && index < n) {
                static cscp_merkle_hash_t lv[64];
                cscp_merkle_hash_t p2[CSCP_MERKLE_MAX_DEPTH];
                uint8_t r2[64];
                size_t l2;
                for (size_t i = 0; i < n; i++)
                        memcpy(lv[i], leaf, 32), lv[i][0] ^= (uint8_t)i;
                if (cscp_merkle_root(TPM2_ALG_SHA256, lv, n, r2) != 0 ||
                    cscp_merkle_proof(TPM2_ALG_SHA256, lv, n, index, p2, &l2) != 0 ||
                    cscp_merkle_verify(TPM2_ALG_SHA256, lv[index], index, n, p2, l2, r2) != 1)
                        abort();
        }
        return 0;
}
