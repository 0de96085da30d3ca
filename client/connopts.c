/* SPDX-License-Identifier: Apache-2.0 */
/* The connection options cscp challenge and cscp enroll share (commands.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"

int conn_opt(int c, const char *arg, cscp_client_opts_t *co, const char *cmd)
{
        long v;
        char *end;

        switch (c) {
        case CONN_OPT_SERVER:
                co->server = arg;
                return 1;
        case CONN_OPT_CA:
                co->ca = arg;
                return 1;
        case CONN_OPT_CERT:
                co->cert = arg;
                return 1;
        case CONN_OPT_KEY:
                co->key = arg;
                return 1;
        case CONN_OPT_PLAINTEXT:
                co->insecure_plaintext = true;
                return 1;
        case CONN_OPT_TIMEOUT:
                errno = 0;
                v = strtol(arg, &end, 10);
                if (errno || *end || end == arg || v < 1 || v > 3600) {
                        fprintf(stderr, "cscp %s: --timeout: '%s' is not 1..3600 seconds\n(see 'cscp %s --help')\n",
                                cmd, arg, cmd);
                        return -1;
                }
                co->timeout_ms = (int)v * 1000;
                return 1;
        default:
                return 0;
        }
}

int conn_opts_check(cscp_client_opts_t *co, const char *cmd)
{
        const char *why = NULL;

        if (!co->server)
                why = "--server HOST:PORT is required";
        else if (!co->insecure_plaintext && !co->ca)
                why = "--ca FILE is required to check the server (or --insecure-plaintext)";
        else if (co->insecure_plaintext && (co->ca || co->cert || co->key))
                why = "--insecure-plaintext cannot be combined with --ca/--cert/--key";
        if (why) {
                fprintf(stderr, "cscp %s: %s\n(see 'cscp %s --help')\n", cmd, why, cmd);
                return -1;
        }
        if (!co->timeout_ms)
                co->timeout_ms = 30 * 1000;
        return 0;
}
