/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The batch tree of design.md §3: one host quote answers every challenge
 * pending at that moment; its extraData is the Merkle root over their
 * leaves, and each answer carries its leaf's inclusion proof.
 *
 *   leaf = H("cscp-leaf-v1" || u16 len || nonce || u16 len || container_id
 *            || H(container TPMS_ATTEST) || u16 len || vAK Name)
 *   node = H(0x01 || left || right)            (RFC 9162 §2.1.1 shape)
 *
 * The tree over n leaves splits at the largest power of two below n, as in
 * RFC 9162; one leaf is its own root. Length prefixes (big-endian) make the
 * leaf encoding unambiguous; the "cscp-leaf-v1" prefix keeps leaves and
 * nodes apart. H is SHA-256 for TPM quotes (extraData <= 64 bytes; 32 used)
 * and SHA-512 for TDX REPORTDATA (64 bytes) — the caller picks the bank.
 */

#include <stddef.h>
#include <stdint.h>

#define CSCP_MERKLE_MAX_LEAVES 65536
#define CSCP_MERKLE_MAX_DEPTH  16 /* ceil(log2(CSCP_MERKLE_MAX_LEAVES)) */
#define CSCP_MERKLE_MAX_HASH   64

typedef uint8_t cscp_merkle_hash_t[CSCP_MERKLE_MAX_HASH];

/* The leaf of one challenge. container_id may be "" (a host-only challenge), attest/vak_name may be empty. */
int cscp_merkle_leaf(uint16_t alg, const uint8_t *nonce, size_t nonce_len, const char *container_id,
                     const uint8_t *attest, size_t attest_len, const uint8_t *vak_name, size_t vak_name_len,
                     uint8_t *ret);
/* Root over n leaves (1..CSCP_MERKLE_MAX_LEAVES). */
int cscp_merkle_root(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, uint8_t *ret);
/* Inclusion proof of leaf `index`: sibling hashes from the leaf up; *ret_len <= CSCP_MERKLE_MAX_DEPTH. */
int cscp_merkle_proof(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, size_t index,
                      cscp_merkle_hash_t *ret_path, size_t *ret_len);
/*
 * The whole tree at once, for a server answering a batch: O(n) hashes to
 * build, O(log n) per proof (the level-by-level form of the same tree: an
 * unpaired last node is carried up unchanged).
 */
typedef struct cscp_merkle_tree cscp_merkle_tree_t;
int cscp_merkle_tree_new(uint16_t alg, const cscp_merkle_hash_t *leaves, size_t n, cscp_merkle_tree_t **ret);
const uint8_t *cscp_merkle_tree_root(const cscp_merkle_tree_t *t);
int cscp_merkle_tree_proof(const cscp_merkle_tree_t *t, size_t index, cscp_merkle_hash_t *ret_path, size_t *ret_len);
void cscp_merkle_tree_free(cscp_merkle_tree_t *t);

/* The root a proof leads to for (leaf, index, n); CSCP_E_PROTO when the path does not fit a tree of n. */
int cscp_merkle_root_from_proof(uint16_t alg, const uint8_t *leaf, size_t index, size_t n,
                                const cscp_merkle_hash_t *path, size_t path_len, uint8_t *ret_root);
/* 1 when the proof takes leaf to root for (index, n); 0 when it does not; < 0 for malformed input. */
int cscp_merkle_verify(uint16_t alg, const uint8_t *leaf, size_t index, size_t n, const cscp_merkle_hash_t *path,
                       size_t path_len, const uint8_t *root);
