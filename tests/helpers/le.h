/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Little-endian stores for tests that build binary structures, e.g. TDX quotes (tdx-emu.c, test-tdx.c). */

#include <stdint.h>

static inline void le16_put(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static inline void le32_put(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
