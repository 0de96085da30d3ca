/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for cscp_quote_verify (and through it tss2-mu decoding,
 * the TPMT_PUBLIC -> EVP_PKEY conversion, signature and PCR digest checks).
 *
 * Input: a flags byte (1 allow_sha1, 2 use the required selection, 4 a claim
 * prefix), then six chunks, each a big-endian u16 length and that many bytes:
 * TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC, nonce, PCR values (records of u16
 * alg, u8 index, u8 size, size bytes), required TPML_PCR_SELECTION (tss2
 * marshalled). Missing or short chunks are empty / cut. tests/unit/test-quote.c
 * writes seeds in this format to <build>/fuzz-seeds/quote/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "quote.h"
#include "verdict.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* tss2-mu logs every rejected structure; the fuzzer feeds millions of them. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        setenv("TSS2_LOG", "all+none", 0);
        return 0;
}

#define MAX_PCRS 600 /* above the verifier's own limit, so the limit is exercised */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Takes the next chunk; an absent or cut one yields what is left. */
static void chunk(const uint8_t **p, size_t *left, const uint8_t **ret, size_t *ret_len)
{
        size_t n;

        if (*left < 2) {
                *ret = NULL;
                *ret_len = 0;
                *p += *left;
                *left = 0;
                return;
        }
        n = (size_t)(*p)[0] << 8 | (*p)[1];
        *p += 2;
        *left -= 2;
        if (n > *left)
                n = *left;
        *ret = *p;
        *ret_len = n;
        *p += n;
        *left -= n;
}

/* A private copy of exactly n bytes, so ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *b, size_t n)
{
        uint8_t *c = malloc(n ? n : 1);

        if (c && n)
                memcpy(c, b, n);
        return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *p = data, *attest, *sig, *pub, *nonce, *pcrs_raw, *req_raw;
        size_t left = size, attest_len, sig_len, pub_len, nonce_len, pcrs_len, req_len, off = 0;
        uint8_t *a = NULL, *s = NULL, *k = NULL, *n = NULL;
        cscp_pcr_value_t *pcrs = NULL;
        TPML_PCR_SELECTION required;
        bool have_required = false;
        cscp_verdict_t v;
        uint8_t flags;
        size_t n_pcrs = 0;

        if (size < 1)
                return 0;
        flags = p[0];
        p++;
        left--;
        chunk(&p, &left, &attest, &attest_len);
        chunk(&p, &left, &sig, &sig_len);
        chunk(&p, &left, &pub, &pub_len);
        chunk(&p, &left, &nonce, &nonce_len);
        chunk(&p, &left, &pcrs_raw, &pcrs_len);
        chunk(&p, &left, &req_raw, &req_len);

        pcrs = calloc(MAX_PCRS, sizeof(*pcrs));
        a = dup_exact(attest, attest_len);
        s = dup_exact(sig, sig_len);
        k = dup_exact(pub, pub_len);
        n = dup_exact(nonce, nonce_len);
        if (!pcrs || !a || !s || !k || !n)
                goto finish;

        for (size_t i = 0; i + 4 <= pcrs_len && n_pcrs < MAX_PCRS;) {
                cscp_pcr_value_t *pv = &pcrs[n_pcrs++];
                size_t vlen = pcrs_raw[i + 3];

                pv->hash_alg = (uint16_t)(pcrs_raw[i] << 8 | pcrs_raw[i + 1]);
                pv->index = pcrs_raw[i + 2];
                pv->size = (uint16_t)vlen; /* may claim more than value[] holds: the verifier must cope */
                i += 4;
                if (vlen > pcrs_len - i)
                        vlen = pcrs_len - i;
                memcpy(pv->value, pcrs_raw + i, vlen < sizeof(pv->value) ? vlen : sizeof(pv->value));
                i += vlen;
        }

        if ((flags & 2) && req_len > 0) {
                memset(&required, 0, sizeof(required));
                have_required =
                        Tss2_MU_TPML_PCR_SELECTION_Unmarshal(req_raw, req_len, &off, &required) == TSS2_RC_SUCCESS;
        }

        {
                cscp_quote_t q = {
                        .attest = attest_len ? a : NULL,
                        .attest_len = attest_len,
                        .sig = sig_len ? s : NULL,
                        .sig_len = sig_len,
                        .ak_public = pub_len ? k : NULL,
                        .ak_public_len = pub_len,
                        .pcrs = n_pcrs ? pcrs : NULL,
                        .n_pcrs = n_pcrs,
                };
                cscp_quote_opts_t opts = {
                        .nonce = nonce_len ? n : NULL,
                        .nonce_len = nonce_len,
                        .required = have_required ? &required : NULL,
                        .allow_sha1 = flags & 1,
                        .prefix = (flags & 4) ? "fz-" : NULL,
                };

                cscp_verdict_init(&v);
                if (cscp_quote_verify(&q, &opts, &v) == 0 && v.n_claims != 9)
                        abort(); /* every claim must be named whatever the input */
                cscp_verdict_clear(&v);
        }
finish:
        free(pcrs);
        free(a);
        free(s);
        free(k);
        free(n);
        return 0;
}
