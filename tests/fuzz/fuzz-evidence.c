/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the whole verifier (cscp_evidence_verify) on an Evidence
 * frame payload: quotes, batch proof, every log kind through lib/logcheck.c,
 * vtpm-bind records, the vEK certificate. The expectation is built from the
 * evidence itself (its own nonce and container id), so the fuzzer reaches
 * the checks behind nonce-echo and container-id. No store, no CA, no policy,
 * no enrolled AK: no input may ever give a trusted verdict.
 * Seeds: tests/integration/test-attacks.c writes real evidence to
 * $BUILD/fuzz-seeds/evidence/.
 */

#include <stdint.h>
#include <stdlib.h>

#include "cscp/error.h"
#include "cscp/evidence.h"
#include "cscp/frame.h"
#include "cscp/util.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* No AK is enrolled or pinned here: host-ak-enrolled fails, so nothing may read as trusted. */
        fuzz_evidence_never_trusted(data, size, NULL, 0);
        return 0;
}
