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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Cscp__Frame *f = NULL;
        cscp_verdict_t v;

        if (size > 4u * 1024 * 1024 || cscp_frame_unpack(data, size, &f) < 0)
                return 0;
        if (f->body_case == CSCP__FRAME__BODY_EVIDENCE && f->evidence->nonce.len <= CSCP_NONCE_MAX) {
                const Cscp__Evidence *ev = f->evidence;
                cscp_expect_t want = {
                        .nonce = ev->nonce.data,
                        .nonce_len = ev->nonce.len,
                        .container_id = ev->container_id,
                };

                cscp_verdict_init(&v);
                (void)cscp_evidence_verify(ev, &want, &v);
                /* No AK is enrolled or pinned here: host-ak-enrolled fails, so nothing may read as trusted. */
                if (cscp_verdict_result(&v) == CSCP_VERDICT_TRUSTED)
                        abort();
                cscp_verdict_clear(&v);
        }
        cscp__frame__free_unpacked(f, NULL);
        return 0;
}
