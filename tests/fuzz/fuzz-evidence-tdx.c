/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the verifier on TDX-host evidence (cscp_evidence_verify with
 * a TDX trust anchor): the TD quote claims, the SHA-512 batch proof against
 * REPORTDATA, the CCEL + host CEL replay into RTMR0..3, vtpm-bind records, the
 * container part. The expectation comes from the evidence itself (its nonce and
 * container id) and the trust anchor is the Intel SGX Root CA: no input may read
 * as trusted (REPORTDATA would have to be a SHA-512 root chosen after an Intel
 * signature).
 *
 * Input: an Evidence frame payload. tests/unit/test-evidence-tdx.c writes seeds
 * (the COS quote + CCEL, with and without host CEL records, a container
 * challenge) to <build>/fuzz-seeds/evidence-tdx/. The anchor is $CSCP_TDX_ROOT,
 * else $CSCP_FIXTURES/tdx/go-tdx-guest/trusted_root.pem; with neither, the
 * verifier stops at "needs --tdx-root" (and the target says so once).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cscp/error.h"
#include "cscp/evidence.h"
#include "cscp/frame.h"
#include "cscp/util.h"
#include "fuzz-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        if (!fuzz_tdx_root())
                fprintf(stderr, "fuzz-evidence-tdx: no trust anchor ($CSCP_TDX_ROOT or $CSCP_FIXTURES): the TDX "
                                "checks are not reached\n");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* 2025-01-01: the COS quote's PCK chain is valid */
        fuzz_evidence_never_trusted(data, size, fuzz_tdx_root(), 1735689600);
        return 0;
}
