/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: cscp_credential_make on an EK public from the network
 * (enrollment gets it from attestd). Whatever the bytes, no crash, no
 * out-of-bounds access, and success only for a restricted decryption key.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cscp/credential.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t name[34] = {0x00, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const uint8_t secret[16] = {1};
        cscp_credential_t c;

        if (cscp_credential_make(data, size, name, sizeof(name), secret, sizeof(secret), &c) == 0 &&
            (c.blob_len < 2 + 20 + 2 + sizeof(secret) || c.secret_len == 0))
                abort();
        return 0;
}
