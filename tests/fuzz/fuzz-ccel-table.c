/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CCEL ACPI table parser (cscp_tdx_ccel_table_parse,
 * lib/tdx/guest.c). Input: the table bytes. Seeds:
 * tests/integration/test-tdx-guest.c writes the go-tdx-guest COS table and a
 * variant to <build>/fuzz-seeds/ccel-table/; checked in,
 * tests/fuzz/corpus-ccel-table/ holds hand-built 56-byte tables (OEM id
 * "CSCPFZ"): valid-tdx (CC type 2, checksum right), bad-checksum, and
 * cc-type-sev (CC type 1). scripts/test runs the target over both.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "tdx-guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint64_t laml = 0, lasa = 0;
        uint8_t *copy, sum = 0;
        char err[256];
        int k;

        copy = fuzz_copy(data, size);
        if (!copy)
                return 0;
        k = cscp_tdx_ccel_table_parse(copy, size, &laml, &lasa, err, sizeof(err));
        if (k < 0 && err[0] == '\0')
                abort(); /* every refusal must say why */
        if (k == 0) {
                for (size_t i = 0; i < size; i++)
                        sum = (uint8_t)(sum + copy[i]);
                if (size < CSCP_TDX_CCEL_TABLE_SIZE || memcmp(copy, "CCEL", 4) != 0 || sum != 0 || laml == 0 ||
                    lasa == 0 || (copy[4] | copy[5] << 8 | copy[6] << 16 | (uint32_t)copy[7] << 24) != size)
                        abort(); /* accepted what the rules refuse */
        }
        free(copy);
        return 0;
}
