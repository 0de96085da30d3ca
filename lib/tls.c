/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "error.h"
#include "tls.h"

void cscp_tls_errors(char *buf, size_t len)
{
        size_t off = strlen(buf);
        unsigned long e;

        while ((e = ERR_get_error()) != 0) {
                char one[256];
                ERR_error_string_n(e, one, sizeof(one));
                if (off + 3 < len) {
                        int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", one);
                        if (n > 0)
                                off += (size_t)n < len - off ? (size_t)n : len - off - 1;
                }
        }
}

static int fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *file)
{
        if (err && errlen) {
                snprintf(err, errlen, "%s%s%s: ", what, file ? " " : "", file ? file : "");
                cscp_tls_errors(err, errlen);
        }
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return CSCP_E_TLS;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
                return fail(NULL, err, errlen, "cannot load certificate", cert);
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
                return fail(NULL, err, errlen, "cannot load private key", key);
        if (SSL_CTX_check_private_key(ctx) != 1)
                return fail(NULL, err, errlen, "private key does not match certificate", key);
        return 0;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method)
{
        SSL_CTX *ctx = SSL_CTX_new(method);

        if (!ctx)
                return NULL;
        /* TLS 1.3 only: no downgrade to older protocol versions. */
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
                SSL_CTX_free(ctx);
                return NULL;
        }
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
        return ctx;
}

int cscp_tls_server_ctx(const char *cert, const char *key, const char *client_ca, SSL_CTX **ret, char *err,
                        size_t errlen)
{
        SSL_CTX *ctx;
        int r;

        if (!cert || !key) {
                snprintf(err, errlen, "a server certificate and key are required");
                return -EINVAL;
        }
        ctx = new_ctx(TLS_server_method());
        if (!ctx)
                return fail(NULL, err, errlen, "cannot create TLS context", NULL);
        r = load_cert_key(ctx, cert, key, err, errlen);
        if (r < 0) {
                SSL_CTX_free(ctx);
                return r;
        }
        /* Challengers do not resume sessions; do not spend work on tickets. */
        SSL_CTX_set_num_tickets(ctx, 0);
        if (client_ca) {
                STACK_OF(X509_NAME) * names;
                if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1)
                        return fail(ctx, err, errlen, "cannot load client CA", client_ca);
                names = SSL_load_client_CA_file(client_ca);
                if (!names)
                        return fail(ctx, err, errlen, "cannot read client CA names", client_ca);
                SSL_CTX_set_client_CA_list(ctx, names);
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        } else
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        *ret = ctx;
        return 0;
}

int cscp_tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **ret, char *err, size_t errlen)
{
        SSL_CTX *ctx;
        int r;

        if (!ca) {
                snprintf(err, errlen, "a CA bundle for the server certificate is required (--ca)");
                return -EINVAL;
        }
        if (!cert != !key) {
                snprintf(err, errlen, "a client certificate needs its key and vice versa");
                return -EINVAL;
        }
        ctx = new_ctx(TLS_client_method());
        if (!ctx)
                return fail(NULL, err, errlen, "cannot create TLS context", NULL);
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
                return fail(ctx, err, errlen, "cannot load CA", ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (cert) {
                r = load_cert_key(ctx, cert, key, err, errlen);
                if (r < 0) {
                        SSL_CTX_free(ctx);
                        return r;
                }
        }
        *ret = ctx;
        return 0;
}
