/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE attestd
#include "error.h"
#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: attestd [OPTIONS]\n"
                   "Answers CSCP challenges with evidence from the host TPM.\n"
                   "\n"
                   "Transport (TLS 1.3, mutual by default):\n"
                   "  --listen ADDR:PORT       address to listen on (default 127.0.0.1:7420; port 0 = any free)\n"
                   "  --cert FILE              server certificate chain (PEM)\n"
                   "  --key FILE               server private key (PEM)\n"
                   "  --client-ca FILE         CA bundle client certificates must chain to (mutual TLS)\n"
                   "  --no-client-auth         TLS without client certificates\n"
                   "  --insecure-plaintext     no TLS at all (tests and debugging only)\n"
                   "\n"
                   "Root of trust:\n"
                   "  --tcti CONF              TPM access, e.g. device:/dev/tpmrm0 or swtpm:path=/run/tpm.sock\n"
                   "                           (default: tpm2-tss tctildr's default)\n"
                   "  --state-dir DIR          where the host AK is kept (default /var/lib/cscp/attestd)\n"
                   "  --ak-alg ecc|rsa         AK type on first start: ECC P-256 (default) or RSA-2048\n"
                   "\n"
                   "Limits:\n"
                   "  --max-frame BYTES        largest request frame accepted (default 65536)\n"
                   "  --max-connections N      concurrent connections (default 256)\n"
                   "  --idle-timeout SEC       close a connection with no request for SEC (default 60)\n"
                   "  --read-timeout SEC       a TLS handshake or a started request must finish in SEC (default 10)\n"
                   "\n"
                   "  --ready-file FILE        write \"ADDR:PORT\" to FILE once listening\n"
                   "  -v, --verbose            debug log output (-vv: trace); default info; "
                   "CSCP_LOG=all+debug,server+trace overrides\n"
                   "  -h, --help               this text\n"
                   "      --version            print the version\n"
                   "\n"
                   "Stops cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop, 1 on a startup error.\n");
}

static int parse_uint(const char *opt, const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || end == s || s[0] == '-' || v < min || v > max) {
                fprintf(stderr, "attestd: %s: '%s' is not a number in %lu..%lu\n", opt, s, min, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int main(int argc, char **argv)
{
        enum {
                OPT_LISTEN = 0x100,
                OPT_CERT,
                OPT_KEY,
                OPT_CLIENT_CA,
                OPT_NO_CLIENT_AUTH,
                OPT_PLAINTEXT,
                OPT_TCTI,
                OPT_STATE_DIR,
                OPT_AK_ALG,
                OPT_MAX_FRAME,
                OPT_MAX_CONN,
                OPT_IDLE,
                OPT_READ,
                OPT_READY,
                OPT_VERSION,
        };
        static const struct option opts[] = {
                {"listen", required_argument, NULL, OPT_LISTEN},
                {"cert", required_argument, NULL, OPT_CERT},
                {"key", required_argument, NULL, OPT_KEY},
                {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
                {"no-client-auth", no_argument, NULL, OPT_NO_CLIENT_AUTH},
                {"insecure-plaintext", no_argument, NULL, OPT_PLAINTEXT},
                {"tcti", required_argument, NULL, OPT_TCTI},
                {"state-dir", required_argument, NULL, OPT_STATE_DIR},
                {"ak-alg", required_argument, NULL, OPT_AK_ALG},
                {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
                {"max-connections", required_argument, NULL, OPT_MAX_CONN},
                {"idle-timeout", required_argument, NULL, OPT_IDLE},
                {"read-timeout", required_argument, NULL, OPT_READ},
                {"ready-file", required_argument, NULL, OPT_READY},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        attestd_config_t cfg;
        unsigned long v;
        int verbose = 0, c, r;

        attestd_config_defaults(&cfg);
        cscp_log_set_ident("attestd");
        while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
                switch (c) {
                case OPT_LISTEN:
                        cfg.listen = optarg;
                        break;
                case OPT_CERT:
                        cfg.cert = optarg;
                        break;
                case OPT_KEY:
                        cfg.key = optarg;
                        break;
                case OPT_CLIENT_CA:
                        cfg.client_ca = optarg;
                        break;
                case OPT_NO_CLIENT_AUTH:
                        cfg.no_client_auth = true;
                        break;
                case OPT_PLAINTEXT:
                        cfg.insecure_plaintext = true;
                        break;
                case OPT_TCTI:
                        cfg.tcti = optarg;
                        break;
                case OPT_STATE_DIR:
                        cfg.state_dir = optarg;
                        break;
                case OPT_AK_ALG:
                        if (strcmp(optarg, "ecc") == 0)
                                cfg.ak_alg = CSCP_KEY_ECC_P256;
                        else if (strcmp(optarg, "rsa") == 0)
                                cfg.ak_alg = CSCP_KEY_RSA_2048;
                        else {
                                fprintf(stderr, "attestd: --ak-alg must be ecc or rsa\n");
                                return 1;
                        }
                        break;
                case OPT_MAX_FRAME:
                        if (parse_uint("--max-frame", optarg, 256, 64u * 1024 * 1024, &v) < 0)
                                return 1;
                        cfg.max_frame = v;
                        break;
                case OPT_MAX_CONN:
                        if (parse_uint("--max-connections", optarg, 1, 100000, &v) < 0)
                                return 1;
                        cfg.max_connections = (unsigned)v;
                        break;
                case OPT_IDLE:
                        if (parse_uint("--idle-timeout", optarg, 1, 86400, &v) < 0)
                                return 1;
                        cfg.idle_timeout_ms = (unsigned)v * 1000;
                        break;
                case OPT_READ:
                        if (parse_uint("--read-timeout", optarg, 1, 3600, &v) < 0)
                                return 1;
                        cfg.read_timeout_ms = (unsigned)v * 1000;
                        break;
                case OPT_READY:
                        cfg.ready_file = optarg;
                        break;
                case 'v':
                        verbose++;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_VERSION:
                        printf("attestd (cscp) 0.1.0\n");
                        return 0;
                default:
                        usage(stderr);
                        return 1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "attestd: unexpected argument '%s'\n", argv[optind]);
                return 1;
        }
        if (cfg.insecure_plaintext && (cfg.cert || cfg.key || cfg.client_ca)) {
                fprintf(stderr, "attestd: --insecure-plaintext cannot be combined with --cert/--key/--client-ca\n");
                return 1;
        }
        if (verbose && !getenv("CSCP_LOG")) {
                setenv("CSCP_LOG", verbose > 1 ? "all+trace" : "all+debug", 1);
                cscp_log_reload();
        } else if (!getenv("CSCP_LOG")) {
                setenv("CSCP_LOG", "all+info", 1);
                cscp_log_reload();
        }
        /* tpm2-tss logs to stderr on its own; our log says what failed. TSS2_LOG overrides. */
        if (!getenv("TSS2_LOG"))
                setenv("TSS2_LOG", verbose > 1 ? "all+debug" : "all+none", 1);
        signal(SIGPIPE, SIG_IGN);
        r = attestd_run(&cfg);
        return r < 0 ? 1 : 0;
}
