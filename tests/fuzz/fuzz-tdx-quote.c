/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the TDX quote parser (cscp_tdx_quote_parse) and, when
 * a trust anchor is at hand, the whole verifier (cscp_tdx_quote_verify: P-256
 * key import, ECDSA checks, PEM chain reading, X509 chain building).
 *
 * Input: the quote bytes. Seeds: tests/unit/test-tdx.c writes the fixture
 * quotes (Intel-signed) to <build>/fuzz-seeds/tdx-quote/; checked in,
 * tests/fuzz/corpus-tdx-quote/ holds quotes made by tests/helpers/tdx-emu
 * (signed under its TEST CA, not by Intel): emu-v4 whole (2695 bytes), and
 * two cut at 1958 bytes, inside the PEM PCK chain: emu-v4-cut-in-pck-chain
 * with every size left as it was, emu-v4-sigdata-len-cut-in-pck-chain with the
 * signature data size shortened to the cut (the nested sizes not). scripts/test
 * runs the target over both directories. The trust anchor is $CSCP_TDX_ROOT, else
 * $CSCP_FIXTURES/tdx/go-tdx-guest/trusted_root.pem; with neither, only the
 * parser runs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "tdx.h"
#include "verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *root = fuzz_tdx_root();
        cscp_tdx_quote_t q;
        uint8_t *copy;
        char err[256];
        int k;

        copy = fuzz_copy(data, size);
        if (!copy)
                return 0;
        k = cscp_tdx_quote_parse(copy, size, &q, err, sizeof(err));
        if (k < 0 && err[0] == '\0')
                abort(); /* every refusal must say why */
        if (k == 0 && (q.signed_len + 4 + q.sig_data_len + q.trailing_len != size))
                abort();
        if (root) {
                cscp_tdx_verify_opts_t o = {.root_file = root, .at = 1688173200};
                cscp_verdict_t v;

                cscp_verdict_init(&v);
                if (cscp_tdx_quote_verify(copy, size, &o, &v) == 0 && v.n_claims != (k == 0 ? 5u : 1u))
                        abort(); /* every claim named whatever the input */
                cscp_verdict_clear(&v);
        }
        free(copy);
        return 0;
}
