/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "merkle.h"
#include "quote.h"
#include "util.h"

int cscp_quote_from_wire(const Cscp__Quote *wq, cscp_pcr_value_t **ret_pcrs, size_t *ret_n)
{
        cscp_pcr_value_t *pcrs;

        /* At most every PCR of every bank: anything more is not a quote's worth of values. */
        if (wq->n_pcrs > (size_t)TPM2_NUM_PCR_BANKS * CSCP_PCR_COUNT)
                return CSCP_E_TOO_BIG;
        pcrs = calloc(wq->n_pcrs ? wq->n_pcrs : 1, sizeof(*pcrs));
        if (!pcrs)
                return -ENOMEM;
        for (size_t i = 0; i < wq->n_pcrs; i++) {
                const Cscp__PcrValue *w = wq->pcrs[i];
                if (!w || w->hash_alg > 0xffff || w->index >= CSCP_PCR_COUNT || w->value.len > sizeof(pcrs[i].value)) {
                        free(pcrs);
                        return CSCP_E_PROTO;
                }
                pcrs[i].hash_alg = (uint16_t)w->hash_alg;
                pcrs[i].index = (uint16_t)w->index;
                pcrs[i].size = (uint16_t)w->value.len;
                if (w->value.len)
                        memcpy(pcrs[i].value, w->value.data, w->value.len);
        }
        *ret_pcrs = pcrs;
        *ret_n = wq->n_pcrs;
        return 0;
}

static void verify_quote(const Cscp__Quote *wq, const char *prefix, const cscp_quote_opts_t *base, cscp_verdict_t *v)
{
        cscp_quote_opts_t opts = *base;
        cscp_pcr_value_t *pcrs = NULL;
        size_t n = 0;
        char name[64];
        int r;

        opts.prefix = prefix;
        snprintf(name, sizeof(name), "%squote", prefix);
        r = cscp_quote_from_wire(wq, &pcrs, &n);
        if (r < 0) {
                cscp_verdict_claim(v, name, false, "PCR values malformed: %s", cscp_strerror(r));
                return;
        }
        cscp_quote_t q = {
                .attest = wq->attest.data,
                .attest_len = wq->attest.len,
                .sig = wq->signature.data,
                .sig_len = wq->signature.len,
                .ak_public = wq->ak_public.data,
                .ak_public_len = wq->ak_public.len,
                .pcrs = pcrs,
                .n_pcrs = n,
        };
        r = cscp_quote_verify(&q, &opts, v);
        if (r < 0)
                cscp_verdict_error(v, "quote verification failed: %s", cscp_strerror(r));
        free(pcrs);
}

int cscp_evidence_verify(const Cscp__Evidence *ev, const cscp_expect_t *want, cscp_verdict_t *v)
{
        cscp_quote_opts_t opts = {
                .nonce = want->nonce,
                .nonce_len = want->nonce_len,
                .required = want->host_pcrs,
                .allow_sha1 = want->allow_sha1,
        };
        char hex[2 * CSCP_NONCE_MAX + 1];

        if (want->nonce_len > CSCP_NONCE_MAX) {
                cscp_verdict_error(v, "nonce longer than %d bytes", CSCP_NONCE_MAX);
                return CSCP_E_NONCE;
        }
        cscp_hex_encode(want->nonce, want->nonce_len, hex);
        cscp_verdict_fact(v, "nonce", "%s", hex);
        cscp_verdict_claim(v, "nonce-echo",
                           ev->nonce.len == want->nonce_len &&
                                   CRYPTO_memcmp(ev->nonce.data, want->nonce, want->nonce_len) == 0,
                           ev->nonce.len == want->nonce_len ? "evidence answers this challenge's nonce"
                                                            : "evidence echoes a nonce of another length");
        if (ev->container_id && ev->container_id[0])
                cscp_verdict_claim(v, "container-id", false,
                                   "evidence names container '%.64s' but the challenge asked for the host only",
                                   ev->container_id);
        if (!cscp_verdict_claim(v, "host-quote-present", ev->host_quote != NULL,
                                ev->host_quote ? "host quote present" : "evidence carries no host quote"))
                return 0;
        /*
         * extraData is the Merkle root over the batch this challenge was answered in
         * (design.md §3): recompute this challenge's leaf from our nonce, follow the
         * proof to a root, and hold the quote's extraData to that root.
         */
        {
                uint8_t leaf[CSCP_MERKLE_MAX_HASH], root[CSCP_MERKLE_MAX_HASH];
                cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
                const Cscp__BatchProof *bp = ev->host_batch;
                bool ok = bp && bp->leaf_count >= 1 && bp->leaf_count <= CSCP_MERKLE_MAX_LEAVES &&
                          bp->leaf_index < bp->leaf_count && bp->n_siblings <= CSCP_MERKLE_MAX_DEPTH;
                int r;

                for (size_t i = 0; ok && i < bp->n_siblings; i++) {
                        ok = bp->siblings[i].len == 32;
                        if (ok)
                                memcpy(path[i], bp->siblings[i].data, 32);
                }
                r = cscp_merkle_leaf(TPM2_ALG_SHA256, want->nonce, want->nonce_len, "", NULL, 0, NULL, 0, leaf);
                if (r < 0) {
                        cscp_verdict_error(v, "cannot compute this challenge's leaf: %s", cscp_strerror(r));
                        return r;
                }
                if (ok)
                        ok = cscp_merkle_root_from_proof(TPM2_ALG_SHA256, leaf, bp->leaf_index, bp->leaf_count, path,
                                                         bp->n_siblings, root) == 0;
                if (!bp)
                        cscp_verdict_claim(v, "host-batch-proof", false, "evidence carries no batch proof");
                else
                        cscp_verdict_claim(v, "host-batch-proof", ok,
                                           ok ? "leaf %u of a batch of %u, %zu sibling hash(es) lead to a root"
                                              : "the proof (leaf %u of %u, %zu siblings) does not fit a tree of that "
                                                "size",
                                           bp->leaf_index, bp->leaf_count, bp->n_siblings);
                if (ok) {
                        opts.nonce = root;
                        opts.nonce_len = 32;
                        opts.extra_label = "the batch root of this challenge's leaf";
                } else {
                        /* No usable proof: hold extraData to the leaf itself (a batch of one), never to
                         * "nothing" (an empty extraData must not match an empty expectation). */
                        opts.nonce = leaf;
                        opts.nonce_len = 32;
                        opts.extra_label = "this challenge's leaf (no valid batch proof)";
                }
                verify_quote(ev->host_quote, "host-", &opts, v);
                if (ok)
                        cscp_verdict_fact(v, "host-batch", "%u challenge(s) in one host quote", bp->leaf_count);
        }
        if (want->host_ak_name) {
                TPM2B_NAME name = {0};
                char have[2 * sizeof(name.name) + 1] = "", expect[2 * sizeof(name.name) + 1];
                int r = cscp_tpm_public_name(ev->host_quote->ak_public.data, ev->host_quote->ak_public.len, &name);
                bool same;

                if (want->host_ak_name_len > sizeof(name.name)) {
                        cscp_verdict_error(v, "pinned AK name is longer than any TPM name");
                        return -EINVAL;
                }
                cscp_hex_encode(want->host_ak_name, want->host_ak_name_len, expect);
                if (r == 0)
                        cscp_hex_encode(name.name, name.size, have);
                same = r == 0 && name.size == want->host_ak_name_len &&
                       CRYPTO_memcmp(name.name, want->host_ak_name, name.size) == 0;
                cscp_verdict_claim(v, "host-ak-pinned", same, "AK name %s %s pinned %s", r == 0 ? have : "(unparsable)",
                                   same ? "=" : "!=", expect);
        } else
                cscp_verdict_fact(v, "host-ak-pinned",
                                  "no: the AK is the one the evidence carries; pin it with --ak-name");
        return 0;
}

int cscp_evidence_save(const char *path, const Cscp__Evidence *ev)
{
        Cscp__Frame f = CSCP__FRAME__INIT;
        uint8_t *buf;
        size_t len;
        int r;

        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = (Cscp__Evidence *)ev;
        r = cscp_frame_pack(&f, CSCP_FRAME_MAX_LIMIT, &buf, &len);
        if (r < 0)
                return r;
        r = cscp_file_write_atomic(path, buf, len, 0644);
        free(buf);
        return r;
}

int cscp_evidence_load(const char *path, size_t max, Cscp__Frame **ret_frame)
{
        Cscp__Frame *f = NULL;
        uint8_t *buf;
        size_t len;
        uint32_t n;
        int r;

        if (max == 0)
                max = CSCP_FRAME_MAX_DEFAULT;
        r = cscp_file_read(path, max + CSCP_FRAME_HEADER, &buf, &len);
        if (r < 0)
                return r == -EFBIG ? CSCP_E_TOO_BIG : r;
        if (len < CSCP_FRAME_HEADER) {
                r = CSCP_E_PROTO;
                goto out;
        }
        n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
        if ((size_t)n != len - CSCP_FRAME_HEADER) {
                r = CSCP_E_PROTO;
                goto out;
        }
        r = cscp_frame_unpack(buf + CSCP_FRAME_HEADER, n, &f);
        if (r < 0)
                goto out;
        if (f->body_case != CSCP__FRAME__BODY_EVIDENCE) {
                cscp__frame__free_unpacked(f, NULL);
                r = CSCP_E_PROTO;
                goto out;
        }
        *ret_frame = f;
out:
        free(buf);
        return r;
}
