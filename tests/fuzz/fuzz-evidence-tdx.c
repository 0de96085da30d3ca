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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *r = getenv("CSCP_TDX_ROOT"), *fx = getenv("CSCP_FIXTURES");

        (void)argc;
        (void)argv;
        if (r && access(r, R_OK) == 0)
                snprintf(root, sizeof(root), "%s", r);
        else if (fx) {
                snprintf(root, sizeof(root), "%s/tdx/go-tdx-guest/trusted_root.pem", fx);
                if (access(root, R_OK) != 0)
                        root[0] = '\0';
        }
        if (!root[0])
                fprintf(stderr, "fuzz-evidence-tdx: no trust anchor ($CSCP_TDX_ROOT or $CSCP_FIXTURES): the TDX "
                                "checks are not reached\n");
        return 0;
}

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
                        .tdx_root = root[0] ? root : NULL,
                        .tdx_at = 1735689600, /* 2025-01-01: the COS quote's PCK chain is valid */
                };

                cscp_verdict_init(&v);
                (void)cscp_evidence_verify(ev, &want, &v);
                if (cscp_verdict_result(&v) == CSCP_VERDICT_TRUSTED)
                        abort();
                cscp_verdict_clear(&v);
        }
        cscp__frame__free_unpacked(f, NULL);
        return 0;
}
