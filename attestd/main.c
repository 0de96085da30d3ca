/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE attestd
#include "error.h"
#include "log.h"
#include "server.h"
#include "tpmq.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: attestd [OPTIONS]\n"
                   "Answers CSCP challenges with evidence from the host root of trust: a TPM, or Intel TDX.\n"
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
                   "  --rot tpm|tdx            tpm (default): TPM quotes signed by the host AK, over a SHA-256 batch\n"
                   "                           root; tdx: this host is a TDX guest, TD quotes through configfs-tsm\n"
                   "                           with the SHA-512 batch root as REPORTDATA (no AK: no enrollment, the\n"
                   "                           quote is certified by its PCK chain; the host PCR selection of a\n"
                   "                           challenge is ignored, a TD quote holds MRTD and RTMR0..3; LOG_BOOT\n"
                   "                           and LOG_CCEL requests are answered with the CCEL, whole; LOG_IMA\n"
                   "                           requests are left out)\n"
                   "  --tcti CONF              tpm: TPM access, e.g. device:/dev/tpmrm0 or swtpm:path=/run/tpm.sock\n"
                   "                           (default: tpm2-tss tctildr's default)\n"
                   "  --state-dir DIR          tpm: where the host AK is kept (default /var/lib/cscp/attestd)\n"
                   "  --ak-alg ecc|rsa         tpm: AK type on first start: ECC P-256 (default) or RSA-2048\n"
                   "  --tsm-root DIR           tdx: configfs-tsm (default " CSCP_TDX_TSM_ROOT ")\n"
                   "  --tdx-mr-root DIR        tdx: TSM measurement registers\n"
                   "                           (default " CSCP_TDX_MR_ROOT ")\n"
                   "  --ccel-table FILE        tdx: the CCEL ACPI table (default " CSCP_TDX_CCEL_TABLE ")\n"
                   "  --ccel-data FILE         tdx: the CCEL log area (default " CSCP_TDX_CCEL_DATA ")\n"
                   "\n"
                   "Containers and logs (a log file that does not exist is left out of the evidence):\n"
                   "  --vtpmd SOCKET           vtpmd's control socket, for container quotes (default "
                   "/run/cscp/vtpmd.sock)\n"
                   "  --vtpmd-timeout SEC      one container quote from vtpmd must finish in SEC (default 30)\n"
                   "  --host-log FILE          vtpmd's host CEL log, vtpm-bind records (default "
                   "/var/lib/cscp/vtpmd/host.log)\n"
                   "  --host-proc-log FILE     vtpmd's host process CEL log, PCR 11\n"
                   "                           (default /var/lib/cscp/vtpmd/host-pcr11.cel)\n"
                   "  --boot-log FILE          tpm: TCG firmware log\n"
                   "                           (default /sys/kernel/security/tpm0/binary_bios_measurements)\n"
                   "  --ima-log FILE           tpm: IMA measurement list, binary or ascii\n"
                   "                           (default /sys/kernel/security/ima/binary_runtime_measurements)\n"
                   "                           tdx: --boot-log and --ima-log are not read (a warning at start-up\n"
                   "                           if given): LOG_BOOT is answered with the CCEL, and no IMA list is\n"
                   "                           sent (mainline IMA extends a TPM PCR; a TD quote holds none)\n"
                   "  --systemd-log FILE       systemd's CEL-JSON log (default /run/log/systemd/tpm2-measure.log)\n"
                   "\n"
                   "Access control:\n"
                   "  --acl FILE               which client certificate (SHA-256 fingerprint) may challenge the host\n"
                   "                           and which containers (format: docs/protocol.md); others get\n"
                   "                           ERR_PERMISSION_DENIED. Without it every client that passed TLS may\n"
                   "                           challenge everything: container isolation needs --acl (and client\n"
                   "                           certificates, so not with --insecure-plaintext or --no-client-auth)\n"
                   "\n"
                   "Limits:\n"
                   "  --max-frame BYTES        largest request frame accepted (default 65536)\n"
                   "  --max-connections N      concurrent connections (default 256)\n"
                   "  --idle-timeout SEC       close a connection with no request for SEC (default 60)\n"
                   "  --read-timeout SEC       a TLS handshake or a started request must finish in SEC (default 10)\n"
                   "  --max-batch N            challenges answered by one host quote, 1..1024 (default 1024;\n"
                   "                           1 = no batching, one host quote per challenge)\n"
                   "\n"
                   "  --ready-file FILE        write \"ADDR:PORT\" to FILE once listening\n"
                   "  (environment UV_THREADPOOL_SIZE: worker threads for TPM, vtpmd and log work; default 16)\n"
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
                OPT_LISTEN = CSCP_ROT_OPT_END,
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
                OPT_VTPMD,
                OPT_VTPMD_TIMEOUT,
                OPT_HOST_LOG,
                OPT_HOST_PROC_LOG,
                OPT_BOOT_LOG,
                OPT_IMA_LOG,
                OPT_SYSTEMD_LOG,
                OPT_ACL,
                OPT_MAX_BATCH,
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
                {"vtpmd", required_argument, NULL, OPT_VTPMD},
                {"vtpmd-timeout", required_argument, NULL, OPT_VTPMD_TIMEOUT},
                {"host-log", required_argument, NULL, OPT_HOST_LOG},
                {"host-proc-log", required_argument, NULL, OPT_HOST_PROC_LOG},
                {"boot-log", required_argument, NULL, OPT_BOOT_LOG},
                {"ima-log", required_argument, NULL, OPT_IMA_LOG},
                {"systemd-log", required_argument, NULL, OPT_SYSTEMD_LOG},
                {"acl", required_argument, NULL, OPT_ACL},
                {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
                CSCP_ROT_LONG_OPTIONS,
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        attestd_config_t cfg;
        unsigned long v;
        bool tpm_opt = false, tpm_log_opt = false;
        char rot_err[256];
        int verbose = 0, c, r;

        attestd_config_defaults(&cfg);
        cscp_log_set_ident("attestd");
        while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
                r = cscp_rot_opt(c, optarg, &cfg.rot, &cfg.tdx, rot_err, sizeof(rot_err));
                if (r < 0) {
                        fprintf(stderr, "attestd: %s\n", rot_err);
                        return 1;
                }
                if (r > 0)
                        continue;
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
                        tpm_opt = true;
                        break;
                case OPT_STATE_DIR:
                        cfg.state_dir = optarg;
                        break;
                case OPT_AK_ALG:
                        tpm_opt = true;
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
                case OPT_VTPMD:
                        cfg.vtpmd_socket = optarg;
                        break;
                case OPT_VTPMD_TIMEOUT:
                        if (parse_uint("--vtpmd-timeout", optarg, 1, 3600, &v) < 0)
                                return 1;
                        cfg.vtpmd_timeout_ms = (unsigned)v * 1000;
                        break;
                case OPT_HOST_LOG:
                        cfg.host_log = optarg;
                        break;
                case OPT_HOST_PROC_LOG:
                        cfg.host_proc_log = optarg;
                        break;
                case OPT_BOOT_LOG:
                        cfg.boot_log = optarg;
                        tpm_log_opt = true;
                        break;
                case OPT_IMA_LOG:
                        cfg.ima_log = optarg;
                        tpm_log_opt = true;
                        break;
                case OPT_SYSTEMD_LOG:
                        cfg.systemd_log = optarg;
                        break;
                case OPT_ACL:
                        cfg.acl = optarg;
                        break;
                case OPT_MAX_BATCH:
                        if (parse_uint("--max-batch", optarg, 1, TPMQ_MAX_BATCH, &v) < 0)
                                return 1;
                        cfg.max_batch = (unsigned)v;
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
        if (cfg.rot == CSCP_ROT_TDX && tpm_opt) {
                fprintf(stderr, "attestd: --tcti and --ak-alg are for --rot tpm; a TDX host has no AK\n");
                return 1;
        }
        if (cscp_rot_opts_check(cfg.rot, &cfg.tdx, rot_err, sizeof(rot_err)) < 0) {
                fprintf(stderr, "attestd: %s\n", rot_err);
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
        if (cfg.rot == CSCP_ROT_TDX && tpm_log_opt)
                /* Both explain TPM PCRs; a TD quote holds RTMRs. Not an error: one configuration may serve TPM
                 * and TDX hosts alike (docs/tdx.md "Logs on a TDX host"). */
                log_warn("--rot tdx: --boot-log and --ima-log are not read: the firmware log of a TD is the CCEL "
                         "(LOG_BOOT requests get it), and mainline IMA extends a TPM PCR that a TD quote does not "
                         "hold, so no IMA list is sent");
        /* tpm2-tss logs to stderr on its own; our log says what failed. TSS2_LOG overrides. */
        if (!getenv("TSS2_LOG"))
                setenv("TSS2_LOG", verbose > 1 ? "all+debug" : "all+none", 1);
        signal(SIGPIPE, SIG_IGN);
        /* The threadpool carries the host TPM queue, vtpmd round trips (each up to --vtpmd-timeout) and log reads:
         * more threads than libuv's 4, so slow vtpmd answers do not hold up host quotes. Set before the first
         * uv_queue_work; UV_THREADPOOL_SIZE in the environment wins. */
        if (!getenv("UV_THREADPOOL_SIZE"))
                setenv("UV_THREADPOOL_SIZE", "16", 1);
        r = attestd_run(&cfg);
        return r < 0 ? 1 : 0;
}
