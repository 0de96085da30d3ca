/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void cscp_hex_encode(const uint8_t *in, size_t len, char *out);
/* Parses hex (even length, no prefix); -EINVAL on bad input, -E2BIG if over max. */
int cscp_hex_decode(const char *hex, uint8_t *out, size_t max, size_t *ret_len);

/*
 * Writes a file so that readers see the old or the new content, never a mix:
 * a unique <path>.XXXXXX (mkostemp: O_EXCL, never follows a link), fsync, rename,
 * fsync the directory. Concurrent writers of one path do not disturb each other.
 */
int cscp_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* Reads a whole regular file of at most max bytes (O_NOFOLLOW). */
int cscp_file_read(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

/* Nonce rules of the protocol: a challenger's nonce is 20..64 bytes. */
#define CSCP_NONCE_MIN     20
#define CSCP_NONCE_MAX     64
#define CSCP_NONCE_DEFAULT 32
/* Fills buf with len bytes from OpenSSL's CSPRNG after checking the length rule. */
int cscp_nonce_draw(uint8_t *buf, size_t len);
int cscp_nonce_check_len(size_t len);

/*
 * Text that may quote what a peer sent, made safe to print and to put in JSON:
 * invalid UTF-8 (RFC 3629: no overlongs, no surrogates) becomes U+FFFD, C0
 * controls (but newline and tab), DEL and C1 become '?'. Takes ownership of s
 * and returns a new string (NULL on allocation failure, s freed).
 */
char *cscp_text_sanitize(char *s);
