/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What several libFuzzer targets share (header-only: each target is one executable, tests/fuzz/meson.build). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cscp/evidence.h"
#include "cscp/frame.h"
#include "cscp/util.h"

/*
 * The TDX trust anchor: $CSCP_TDX_ROOT when readable, else $CSCP_FIXTURES/tdx/go-tdx-guest/trusted_root.pem when
 * readable, else NULL (the target then runs without one). Looked up once, on the first call.
 */
static inline const char *fuzz_tdx_root(void)
{
        static char root[4096];
        static bool done;
        const char *r, *fx;

        if (done)
                return root[0] ? root : NULL;
        done = true;
        r = getenv("CSCP_TDX_ROOT");
        fx = getenv("CSCP_FIXTURES");
        if (r && access(r, R_OK) == 0)
                snprintf(root, sizeof(root), "%s", r);
        else if (fx) {
                snprintf(root, sizeof(root), "%s/tdx/go-tdx-guest/trusted_root.pem", fx);
                if (access(root, R_OK) != 0)
                        root[0] = '\0';
        }
        return root[0] ? root : NULL;
}

/* A private copy of exactly size bytes, so ASan sees any read past the end; NULL when out of memory. */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
        uint8_t *copy = malloc(size ? size : 1);

        if (copy && size)
                memcpy(copy, data, size);
        return copy;
}

/*
 * cscp_evidence_verify on an Evidence frame payload, expecting what the evidence itself says (its nonce and
 * container id, so the checks behind nonce-echo and container-id are reached), with tdx_root (NULL: none) and
 * tdx_at as the TDX trust anchor and time. No store, no CA, no policy, no enrolled AK: an input that reads as
 * trusted aborts.
 */
static inline void fuzz_evidence_never_trusted(const uint8_t *data, size_t size, const char *tdx_root, time_t tdx_at)
{
        Cscp__Frame *f = NULL;
        cscp_verdict_t v;

        if (size > 4u * 1024 * 1024 || cscp_frame_unpack(data, size, &f) < 0)
                return;
        if (f->body_case == CSCP__FRAME__BODY_EVIDENCE && f->evidence->nonce.len <= CSCP_NONCE_MAX) {
                const Cscp__Evidence *ev = f->evidence;
                cscp_expect_t want = {
                        .nonce = ev->nonce.data,
                        .nonce_len = ev->nonce.len,
                        .container_id = ev->container_id,
                        .tdx_root = tdx_root,
                        .tdx_at = tdx_at,
                };

                cscp_verdict_init(&v);
                (void)cscp_evidence_verify(ev, &want, &v);
                if (cscp_verdict_result(&v) == CSCP_VERDICT_TRUSTED)
                        abort();
                cscp_verdict_clear(&v);
        }
        cscp__frame__free_unpacked(f, NULL);
}
