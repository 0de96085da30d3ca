/* SPDX-License-Identifier: Apache-2.0 */
/* The batch Merkle tree: known small trees computed by hand, every proof of trees of 1..70 leaves, tampering. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cscp/merkle.h"
#include "cscp/pcr.h"

static void h(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl, uint8_t *out)
{
        EVP_MD_CTX *x = EVP_MD_CTX_new();
        unsigned n;

        cr_assert_eq(EVP_DigestInit_ex(x, EVP_sha256(), NULL), 1);
        EVP_DigestUpdate(x, a, al);
        if (b)
                EVP_DigestUpdate(x, b, bl);
        if (c)
                EVP_DigestUpdate(x, c, cl);
        EVP_DigestFinal_ex(x, out, &n);
        EVP_MD_CTX_free(x);
}

/* node = SHA-256(0x01 || l || r), written out independently of lib/merkle.c. */
static void nd(const uint8_t *l, const uint8_t *r, uint8_t *out)
{
        static const uint8_t one = 1;
        h(&one, 1, l, 32, r, 32, out);
}

static void leaves(cscp_merkle_hash_t *lv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t nonce[32];
                char id[16];
                memset(nonce, (int)i, sizeof(nonce));
                snprintf(id, sizeof(id), "c%zu", i);
                cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 32, id, (const uint8_t *)"attest", 6,
                                              (const uint8_t *)"\x00\x0bname", 6, lv[i]),
                             0);
        }
}

Test(merkle, leaf_encoding)
{
        uint8_t nonce[20], got[64], want[32], ah[32];
        uint8_t buf[256];
        size_t off = 0;

        memset(nonce, 0xab, sizeof(nonce));
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 20, "ctr", (const uint8_t *)"AT", 2,
                                      (const uint8_t *)"NM", 2, got),
                     0);
        h("AT", 2, NULL, 0, NULL, 0, ah);
        memcpy(buf, "cscp-leaf-v1", 12), off = 12;
        buf[off++] = 0, buf[off++] = 20;
        memcpy(buf + off, nonce, 20), off += 20;
        buf[off++] = 0, buf[off++] = 3;
        memcpy(buf + off, "ctr", 3), off += 3;
        memcpy(buf + off, ah, 32), off += 32;
        buf[off++] = 0, buf[off++] = 2;
        memcpy(buf + off, "NM", 2), off += 2;
        h(buf, off, NULL, 0, NULL, 0, want);
        cr_assert_arr_eq(got, want, 32);
        /* Moving a byte between fields changes the leaf (length prefixes). */
        uint8_t other[64];
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 20, "ct", (const uint8_t *)"AT", 2,
                                      (const uint8_t *)"rNM", 3, other),
                     0);
        cr_assert_neq(memcmp(got, other, 32), 0);
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA1, nonce, 20, "", NULL, 0, NULL, 0, got), -EINVAL);
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 0, "", NULL, 0, NULL, 0, got), -EINVAL);
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA512, nonce, 20, "", NULL, 0, NULL, 0, got), 0);
}

Test(merkle, small_trees_by_hand)
{
        cscp_merkle_hash_t lv[5];
        uint8_t root[64], ab[32], cd[32], abcd[32], want[32];

        leaves(lv, 5);
        cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, 1, root), 0);
        cr_assert_arr_eq(root, lv[0], 32, "one leaf is its own root");
        nd(lv[0], lv[1], ab);
        cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, 2, root), 0);
        cr_assert_arr_eq(root, ab, 32);
        nd(ab, lv[2], want);
        cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, 3, root), 0);
        cr_assert_arr_eq(root, want, 32);
        nd(lv[2], lv[3], cd);
        nd(ab, cd, abcd);
        nd(abcd, lv[4], want);
        cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, 5, root), 0);
        cr_assert_arr_eq(root, want, 32);
}

Test(merkle, every_proof_verifies_and_tampering_fails)
{
        static cscp_merkle_hash_t lv[70];
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
        uint8_t root[64];
        size_t len;

        leaves(lv, 70);
        for (size_t n = 1; n <= 70; n++) {
                cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, n, root), 0);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_eq(cscp_merkle_proof(TPM2_ALG_SHA256, lv, n, i, path, &len), 0);
                        cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[i], i, n, path, len, root), 1,
                                     "n=%zu i=%zu", n, i);
                        /* Another leaf, index, size, a flipped path bit, a shorter or longer path. */
                        cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[(i + 1) % 70], i, n, path, len, root), 0);
                        if (n > 1) {
                                cr_assert_eq(
                                        cscp_merkle_verify(TPM2_ALG_SHA256, lv[i], (i + 1) % n, n, path, len, root), 0,
                                        "n=%zu i=%zu: index not bound", n, i);
                                path[0][5] ^= 1;
                                cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[i], i, n, path, len, root), 0);
                                path[0][5] ^= 1;
                                cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[i], i, n, path, len - 1, root), 0);
                        }
                        if (len < CSCP_MERKLE_MAX_DEPTH)
                                cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[i], i, n, path, len + 1, root), 0);
                }
        }
        cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[0], 1, 1, NULL, 0, lv[0]), -EINVAL);
        cr_assert_eq(cscp_merkle_verify(TPM2_ALG_SHA256, lv[0], 0, 0, NULL, 0, lv[0]), -EINVAL);
        cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, 0, root), -EINVAL);
        cr_assert_eq(cscp_merkle_proof(TPM2_ALG_SHA256, lv, 3, 3, path, &len), -EINVAL);
}

Test(merkle, level_tree_equals_recursive_tree)
{
        static cscp_merkle_hash_t lv[300];
        cscp_merkle_hash_t p1[CSCP_MERKLE_MAX_DEPTH], p2[CSCP_MERKLE_MAX_DEPTH];
        uint8_t root[64], back[64];
        size_t l1, l2;

        leaves(lv, 300);
        for (size_t n = 1; n <= 300; n += n < 40 ? 1 : 13) {
                cscp_merkle_tree_t *t;
                cr_assert_eq(cscp_merkle_tree_new(TPM2_ALG_SHA256, lv, n, &t), 0);
                cr_assert_eq(cscp_merkle_root(TPM2_ALG_SHA256, lv, n, root), 0);
                cr_assert_arr_eq(cscp_merkle_tree_root(t), root, 32, "n=%zu", n);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_eq(cscp_merkle_tree_proof(t, i, p1, &l1), 0);
                        cr_assert_eq(cscp_merkle_proof(TPM2_ALG_SHA256, lv, n, i, p2, &l2), 0);
                        cr_assert_eq(l1, l2, "n=%zu i=%zu", n, i);
                        for (size_t k = 0; k < l1; k++)
                                cr_assert_eq(memcmp(p1[k], p2[k], 32), 0, "n=%zu i=%zu level %zu", n, i, k);
                        cr_assert_eq(cscp_merkle_root_from_proof(TPM2_ALG_SHA256, lv[i], i, n, p1, l1, back), 0);
                        cr_assert_arr_eq(back, root, 32);
                }
                cr_assert_eq(cscp_merkle_tree_proof(t, n, p1, &l1), -EINVAL);
                cscp_merkle_tree_free(t);
        }
        cscp_merkle_tree_free(NULL);
}
