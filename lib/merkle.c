/* SPDX-License-Identifier: Apache-2.0 */
/* Batch Merkle tree (include/cscp/merkle.h). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "cscp/merkle.h"
#include "cscp/pcr.h"

static const char leaf_prefix[] = "cscp-leaf-v1";

static size_t hsize(uint16_t alg)
{
        return alg == TPM2_ALG_SHA256 || alg == TPM2_ALG_SHA384 || alg == TPM2_ALG_SHA512 ? cscp_hash_alg_size(alg) : 0;
}

typedef struct hctx {
        EVP_MD_CTX *c;
        int ok;
} hctx_t;

static void h_init(hctx_t *h, uint16_t alg)
{
        h->c = EVP_MD_CTX_new();
        h->ok = h->c && EVP_DigestInit_ex2(h->c, EVP_get_digestbyname(cscp_hash_alg_evp(alg)), NULL) == 1;
}

static void h_add(hctx_t *h, const void *p, size_t n)
{
        if (h->ok && n)
                h->ok = EVP_DigestUpdate(h->c, p, n) == 1;
}

static void h_add16(hctx_t *h, const void *p, size_t n)
{
        uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        h_add(h, len, 2);
        h_add(h, p, n);
}

static int h_final(hctx_t *h, uint8_t *out)
{
        unsigned n = 0;
        int ok = h->ok && EVP_DigestFinal_ex(h->c, out, &n) == 1;

        EVP_MD_CTX_free(h->c);
        return ok ? 0 : CSCP_E_CRYPTO;
}

int cscp_merkle_leaf(uint16_t alg, const uint8_t *nonce, size_t nonce_len, const char *container_id,
                     const uint8_t *attest, size_t attest_len, const uint8_t *vak_name, size_t vak_name_len,
                     uint8_t *ret)
{
        size_t hs = hsize(alg), idlen;
        uint8_t ah[CSCP_MERKLE_MAX_HASH];
        hctx_t h;
        int r;

        if (!hs || !nonce || nonce_len == 0 || nonce_len > 0xffff || !container_id || (!attest && attest_len) ||
            (!vak_name && vak_name_len) || vak_name_len > 0xffff || !ret)
                return -EINVAL;
        idlen = strlen(container_id);
        if (idlen > 0xffff)
                return -EINVAL;
        /* H(container TPMS_ATTEST); an empty attest hashes to H("") (host-only challenges). */
        h_init(&h, alg);
        h_add(&h, attest, attest_len);
        if ((r = h_final(&h, ah)) < 0)
                return r;
        h_init(&h, alg);
        h_add(&h, leaf_prefix, sizeof(leaf_prefix) - 1);
        h_add16(&h, nonce, nonce_len);
        h_add16(&h, container_id, idlen);
        h_add(&h, ah, hs);
        h_add16(&h, vak_name, vak_name_len);
        return h_final(&h, ret);
}

static int node(uint16_t alg, const uint8_t *l, const uint8_t *r, uint8_t *out)
{
        static const uint8_t one = 0x01;
        size_t hs = hsize(alg);
        hctx_t h;

        h_init(&h, alg);
        h_add(&h, &one, 1);
        h_add(&h, l, hs);
        h_add(&h, r, hs);
        return h_final(&h, out);
}

/* Largest power of two strictly less than n (n >= 2). */
static size_t split(size_t n)
{
        size_t k = 1;
        while (k << 1 < n)
                k <<= 1;
        return k;
}

static int root_of(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, uint8_t *out)
{
        uint8_t l[CSCP_MERKLE_MAX_HASH], r[CSCP_MERKLE_MAX_HASH];
        size_t k;
        int rc;

        if (n == 1) {
                memcpy(out, leaves[0], hsize(alg));
                return 0;
        }
        k = split(n);
        if ((rc = root_of(alg, leaves, k, l)) < 0 || (rc = root_of(alg, leaves + k, n - k, r)) < 0)
                return rc;
        return node(alg, l, r, out);
}

int cscp_merkle_root(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, uint8_t *ret)
{
        if (!hsize(alg) || !leaves || n == 0 || n > CSCP_MERKLE_MAX_LEAVES || !ret)
                return -EINVAL;
        return root_of(alg, leaves, n, ret);
}

/* RFC 9162 PATH(m, D[n]): appended bottom-up. */
static int path_of(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, size_t m, cscp_merkle_hash_t *out,
                   size_t *len)
{
        size_t k;
        int rc;

        if (n == 1)
                return 0;
        k = split(n);
        if (m < k) {
                if ((rc = path_of(alg, leaves, k, m, out, len)) < 0)
                        return rc;
                rc = root_of(alg, leaves + k, n - k, out[*len]);
        } else {
                if ((rc = path_of(alg, leaves + k, n - k, m - k, out, len)) < 0)
                        return rc;
                rc = root_of(alg, leaves, k, out[*len]);
        }
        if (rc < 0)
                return rc;
        (*len)++;
        return 0;
}

int cscp_merkle_proof(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, size_t index,
                      cscp_merkle_hash_t *ret_path, size_t *ret_len)
{
        size_t len = 0;
        int r;

        if (!hsize(alg) || !leaves || n == 0 || n > CSCP_MERKLE_MAX_LEAVES || index >= n || !ret_path || !ret_len)
                return -EINVAL;
        r = path_of(alg, leaves, n, index, ret_path, &len);
        if (r < 0)
                return r;
        *ret_len = len;
        return 0;
}

int cscp_merkle_root_from_proof(uint16_t alg, const uint8_t *leaf, size_t index, size_t n,
                                const cscp_merkle_hash_t *path, size_t path_len, uint8_t *ret_root)
{
        size_t hs = hsize(alg), fn = index, sn = n - 1, i;
        uint8_t r[CSCP_MERKLE_MAX_HASH];
        int rc;

        if (!hs || !leaf || !ret_root || (path_len && !path) || n == 0 || n > CSCP_MERKLE_MAX_LEAVES || index >= n ||
            path_len > CSCP_MERKLE_MAX_DEPTH)
                return -EINVAL;
        /* RFC 9162 §2.1.3.2. */
        memcpy(r, leaf, hs);
        for (i = 0; i < path_len; i++) {
                if (sn == 0)
                        return CSCP_E_PROTO; /* proof longer than the tree is deep */
                if ((fn & 1) || fn == sn) {
                        if ((rc = node(alg, path[i], r, r)) < 0)
                                return rc;
                        if (!(fn & 1))
                                while (fn != 0 && !(fn & 1)) {
                                        fn >>= 1;
                                        sn >>= 1;
                                }
                } else if ((rc = node(alg, r, path[i], r)) < 0)
                        return rc;
                fn >>= 1;
                sn >>= 1;
        }
        if (sn != 0)
                return CSCP_E_PROTO; /* proof shorter than the tree is deep */
        memcpy(ret_root, r, hs);
        return 0;
}

int cscp_merkle_verify(uint16_t alg, const uint8_t *leaf, size_t index, size_t n, const cscp_merkle_hash_t *path,
                       size_t path_len, const uint8_t *root)
{
        uint8_t r[CSCP_MERKLE_MAX_HASH];
        int rc;

        if (!root)
                return -EINVAL;
        rc = cscp_merkle_root_from_proof(alg, leaf, index, n, path, path_len, r);
        if (rc == CSCP_E_PROTO)
                return 0;
        if (rc < 0)
                return rc;
        return CRYPTO_memcmp(r, root, hsize(alg)) == 0 ? 1 : 0;
}

struct cscp_merkle_tree {
        uint16_t alg;
        size_t n, depth;
        size_t count[CSCP_MERKLE_MAX_DEPTH + 1]; /* nodes per level */
        cscp_merkle_hash_t *level[CSCP_MERKLE_MAX_DEPTH + 1];
};

void cscp_merkle_tree_free(cscp_merkle_tree_t *t)
{
        if (!t)
                return;
        for (size_t i = 0; i <= t->depth; i++)
                free(t->level[i]);
        free(t);
}

int cscp_merkle_tree_new(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, cscp_merkle_tree_t **ret)
{
        cscp_merkle_tree_t *t;
        size_t hs = hsize(alg);
        int r;

        if (!hs || !leaves || n == 0 || n > CSCP_MERKLE_MAX_LEAVES || !ret)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->alg = alg;
        t->n = n;
        t->count[0] = n;
        t->level[0] = malloc(n * sizeof(cscp_merkle_hash_t));
        if (!t->level[0]) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(t->level[0], leaves, n * sizeof(cscp_merkle_hash_t));
        while (t->count[t->depth] > 1) {
                size_t below = t->count[t->depth], above = (below + 1) / 2, d = t->depth + 1;
                t->level[d] = malloc(above * sizeof(cscp_merkle_hash_t));
                if (!t->level[d]) {
                        r = -ENOMEM;
                        goto fail;
                }
                t->count[d] = above;
                t->depth = d;
                for (size_t i = 0; i < above; i++) {
                        if (2 * i + 1 < below)
                                r = node(alg, t->level[d - 1][2 * i], t->level[d - 1][2 * i + 1], t->level[d][i]);
                        else {
                                memcpy(t->level[d][i], t->level[d - 1][2 * i], hs); /* carried up */
                                r = 0;
                        }
                        if (r < 0)
                                goto fail;
                }
        }
        *ret = t;
        return 0;
fail:
        cscp_merkle_tree_free(t);
        return r;
}

const uint8_t *cscp_merkle_tree_root(const cscp_merkle_tree_t *t)
{
        return t ? t->level[t->depth][0] : NULL;
}

int cscp_merkle_tree_proof(const cscp_merkle_tree_t *t, size_t index, cscp_merkle_hash_t *ret_path, size_t *ret_len)
{
        size_t len = 0, hs;

        if (!t || index >= t->n || !ret_path || !ret_len)
                return -EINVAL;
        hs = hsize(t->alg);
        for (size_t d = 0; d < t->depth; d++, index >>= 1) {
                size_t sib = index ^ 1;
                if (sib < t->count[d])
                        memcpy(ret_path[len++], t->level[d][sib], hs);
        }
        *ret_len = len;
        return 0;
}
