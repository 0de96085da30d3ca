/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* OpenSSL 3 contexts for the CSCP transport: TLS 1.3 only. */

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * Server context with cert/key (PEM). client_ca set: clients must present a
 * certificate that chains to it (mutual TLS); NULL: no client certificate asked.
 * err receives a one-line reason on failure.
 */
int cscp_tls_server_ctx(const char *cert, const char *key, const char *client_ca, SSL_CTX **ret, char *err,
                        size_t errlen);
/* Client context: server verified against ca; cert/key optional (mutual TLS). */
int cscp_tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **ret, char *err, size_t errlen);
/* Appends OpenSSL's error queue to buf (and clears it). */
void cscp_tls_errors(char *buf, size_t len);
