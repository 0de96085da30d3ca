/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Who may challenge what (attestd --acl FILE; docs/protocol.md "Access
 * control"). One rule per line:
 *
 *     # comment
 *     <client certificate SHA-256 fingerprint>  <target> [<target> ...]
 *
 * The fingerprint is SHA-256 over the DER client certificate, 64 hex digits,
 * optionally as 32 colon-separated pairs (what `openssl x509 -noout
 * -fingerprint -sha256` prints after "="), case-insensitive. Targets:
 * `host` (host-only challenges), `container:ID` (challenges for container
 * ID: its quote, its log, and the host evidence that binds it),
 * `container:*` (every container). A fingerprint may appear on several
 * lines; its targets add up. Blank lines and lines starting with '#' are
 * ignored. Anything else is an error naming the line.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_MAX_FILE    (1024u * 1024) /* bytes */
#define ACL_MAX_LINE    4096           /* bytes per line */
#define ACL_MAX_RULES   10000          /* lines with a rule */
#define ACL_MAX_TARGETS 100000         /* targets in the whole file */
#define ACL_MAX_ID      64             /* container id length (vtpmd's VTPMD_ID_MAX) */

typedef struct acl acl_t;

/* Parses an ACL from memory; on error returns CSCP_E_PROTO / CSCP_E_TOO_BIG / -ENOMEM with "line N: why" in err. */
int acl_parse(const char *buf, size_t len, acl_t **ret, char *err, size_t errlen);
/* Reads and parses FILE (at most ACL_MAX_FILE bytes). */
int acl_load(const char *path, acl_t **ret, char *err, size_t errlen);
void acl_free(acl_t *a);
/* Rules and targets loaded (for the startup log). */
size_t acl_rules(const acl_t *a);
/* Whether the client with certificate fingerprint fp may challenge container_id ("" or NULL: the host). */
bool acl_allows(const acl_t *a, const uint8_t fp[32], const char *container_id);
