/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The challenger's side of a connection: blocking, one request at a time,
 * reusable for many challenges. Thread-compatible (one connection per thread).
 */

#include <stdbool.h>
#include <stddef.h>

#include "cscp.pb-c.h"

typedef struct cscp_conn cscp_conn_t;

typedef struct cscp_client_opts {
        const char *server; /* "HOST:PORT", "[v6]:PORT" */
        const char *ca;     /* PEM bundle the server must chain to */
        const char *cert;   /* client certificate (mutual TLS) */
        const char *key;
        bool insecure_plaintext; /* no TLS at all (must match the server) */
        int timeout_ms;          /* connect, each read and write; 0 = 30000 */
        size_t max_frame;        /* 0 = CSCP_FRAME_MAX_DEFAULT */
} cscp_client_opts_t;

/*
 * Connects and (unless plaintext) completes the TLS handshake, verifying the
 * server certificate chain and that it names the host (DNS or IP SAN).
 * CSCP_E_TLS_PEER when the peer fails verification; err gets the reason.
 */
int cscp_conn_open(const cscp_client_opts_t *o, cscp_conn_t **ret, char *err, size_t errlen);
/* Sends one frame and reads one answer frame. */
int cscp_conn_roundtrip(cscp_conn_t *c, const Cscp__Frame *req, Cscp__Frame **ret_resp, char *err, size_t errlen);
/* Raw access (tests, fuzzing a server): writes bytes as they are. */
int cscp_conn_write_raw(cscp_conn_t *c, const void *buf, size_t len);
void cscp_conn_free(cscp_conn_t *c);
