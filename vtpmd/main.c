/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE vtpmd
#include "core.h"
#include "error.h"
#include "log.h"
#include "policy.h"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: vtpmd [OPTIONS]\n"
                "Gives each container its own vTPM: one supervised `swtpm socket --tpm2` per container, its state\n"
                "encrypted at rest, manufactured (EK, EK certificate, AK) and bound to the host TPM by a vtpm-bind\n"
                "record in the host log, extended into a host PCR. Runs as root.\n"
                "\n"
                "Host root of trust:\n"
                "  --rot tpm|tdx            what the host log is extended into: tpm (default) the host TPM's PCR;\n"
                "                           tdx: this host is a TDX guest, the PCR's RTMR (TDVF mapping: 8..15 ->\n"
                "                           RTMR2), records carry the CC register index (3 = RTMR2), and RTMR2 is\n"
                "                           reconciled from the CCEL's replay. The master key is still sealed to a\n"
                "                           TPM: with tdx, --tcti must name one (e.g. the TD's vTPM), else vtpmd\n"
                "                           refuses to start (there is no unsealed master key)\n"
                "  --tcti CONF              host TPM, e.g. device:/dev/tpmrm0 or swtpm:path=/run/tpm.sock\n"
                "                           (default: tpm2-tss tctildr's default)\n"
                "  --tdx-mr-root DIR        tdx: TSM measurement registers (default " CSCP_TDX_MR_ROOT ")\n"
                "  --tsm-root DIR           tdx: configfs-tsm (default " CSCP_TDX_TSM_ROOT ")\n"
                "  --ccel-table FILE        tdx: the CCEL ACPI table (default " CSCP_TDX_CCEL_TABLE ")\n"
                "  --ccel-data FILE         tdx: the CCEL log area (default " CSCP_TDX_CCEL_DATA ")\n"
                "  --host-pcr N             host PCR the host log is extended into (default 15; tdx: 8..15)\n"
                "  --measurement-policy FILE   YAML (docs/policy.md): at start, measure the host processes it lists\n"
                "                           (binary digest; command lines with withParameter) into a second host log\n"
                "                           <state-dir>/host-pcr<N>.cel; backend must be tpm, and not with\n"
                "                           --rot tdx (PCR 11 and 15 both map to RTMR2: one log per register)\n"
                "  --host-process-pcr N     host PCR of that log (default 11)\n"
                "\n"
                "Files:\n"
                "  --state-dir DIR          master key, host log, instance state (default /var/lib/cscp/vtpmd)\n"
                "  --run-dir DIR            control socket and vTPM sockets <DIR>/vtpm/<id>/tpm.sock (default "
                "/run/cscp)\n"
                "  --socket PATH            control socket (default <run-dir>/vtpmd.sock)\n"
                "  --ready-file FILE        write the control socket path to FILE once listening\n"
                "\n"
                "vTPMs:\n"
                "  --swtpm PATH             swtpm binary (default: swtpm from PATH)\n"
                "  --vtpm-ca FILE           manufacturer CA certificate (PEM) that signs vTPM EK certificates "
                "(required)\n"
                "  --vtpm-ca-key FILE       its private key (PEM) (required)\n"
                "  --ek-alg ecc|rsa         vTPM EK type: ECC P-256 (default) or RSA-2048\n"
                "  --pool N                 keep N pre-manufactured vTPMs ready (default 0, at most %d)\n"
                "  --max-instances N        vTPMs bound to containers at most (default 256, at most %d)\n"
                "  --stop-instances         on SIGTERM/SIGINT stop every swtpm too (default: leave them running;\n"
                "                           the next vtpmd re-adopts them)\n"
                "  --frontend socket|vtpm-proxy   the container endpoint: vtpmd's mediated sockets (default), and\n"
                "                           with vtpm-proxy also a kernel /dev/tpmN + /dev/tpmrmN per vTPM "
                "(/dev/vtpmx)\n"
                "\n"
                "Control API (proto/vtpmd.proto over the Unix socket):\n"
                "  --control-group GROUP    members (primary gid of the peer) may use the API besides root\n"
                "  --max-frame BYTES        largest request frame (default %u)\n"
                "  --max-connections N      concurrent control connections (default 128)\n"
                "  --idle-timeout SEC       close a connection with no request for SEC (default 60)\n"
                "  --read-timeout SEC       a started request must arrive within SEC (default 10)\n"
                "\n"
                "  -v, --verbose            debug log output (-vv: trace); default info; CSCP_LOG overrides\n"
                "  -h, --help               this text\n"
                "      --version            print the version\n"
                "\n"
                "Stops cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop, 1 on a startup error.\n",
                VTPMD_MAX_POOL, VTPMD_MAX_INSTANCES, VTPMD_FRAME_MAX_DEFAULT);
}

static int parse_uint(const char *opt, const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || end == s || s[0] == '-' || v < min || v > max) {
                fprintf(stderr, "vtpmd: %s: '%s' is not a number in %lu..%lu\n", opt, s, min, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int main(int argc, char **argv)
{
        enum {
                OPT_TCTI = CSCP_ROT_OPT_END,
                OPT_HOST_PCR,
                OPT_STATE_DIR,
                OPT_RUN_DIR,
                OPT_SOCKET,
                OPT_READY,
                OPT_SWTPM,
                OPT_CA,
                OPT_CA_KEY,
                OPT_EK_ALG,
                OPT_POOL,
                OPT_MAX_INST,
                OPT_STOP_INST,
                OPT_FRONTEND,
                OPT_MEASURE_POLICY,
                OPT_HOST_PROC_PCR,
                OPT_GROUP,
                OPT_MAX_FRAME,
                OPT_MAX_CONN,
                OPT_IDLE,
                OPT_READ,
                OPT_VERSION,
        };
        static const struct option opts[] = {
                {"tcti", required_argument, NULL, OPT_TCTI},
                CSCP_ROT_LONG_OPTIONS,
                {"host-pcr", required_argument, NULL, OPT_HOST_PCR},
                {"state-dir", required_argument, NULL, OPT_STATE_DIR},
                {"run-dir", required_argument, NULL, OPT_RUN_DIR},
                {"socket", required_argument, NULL, OPT_SOCKET},
                {"ready-file", required_argument, NULL, OPT_READY},
                {"swtpm", required_argument, NULL, OPT_SWTPM},
                {"vtpm-ca", required_argument, NULL, OPT_CA},
                {"vtpm-ca-key", required_argument, NULL, OPT_CA_KEY},
                {"ek-alg", required_argument, NULL, OPT_EK_ALG},
                {"pool", required_argument, NULL, OPT_POOL},
                {"max-instances", required_argument, NULL, OPT_MAX_INST},
                {"stop-instances", no_argument, NULL, OPT_STOP_INST},
                {"frontend", required_argument, NULL, OPT_FRONTEND},
                {"measurement-policy", required_argument, NULL, OPT_MEASURE_POLICY},
                {"host-process-pcr", required_argument, NULL, OPT_HOST_PROC_PCR},
                {"control-group", required_argument, NULL, OPT_GROUP},
                {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
                {"max-connections", required_argument, NULL, OPT_MAX_CONN},
                {"idle-timeout", required_argument, NULL, OPT_IDLE},
                {"read-timeout", required_argument, NULL, OPT_READ},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        vtpmd_config_t cfg;
        cscp_measure_policy_t *policy = NULL;
        unsigned long v;
        char rot_err[256];
        int verbose = 0, c, r;

        /* The swtpm trampoline (core.h): never returns when argv asks for it. */
        vtpmd_exec_swtpm(argc, argv);
        vtpmd_config_defaults(&cfg);
        cscp_log_set_ident("vtpmd");
        while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
                r = cscp_rot_opt(c, optarg, &cfg.rot, &cfg.tdx, rot_err, sizeof(rot_err));
                if (r < 0) {
                        fprintf(stderr, "vtpmd: %s\n", rot_err);
                        return 1;
                }
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_TCTI:
                        cfg.tcti = optarg;
                        break;
                case OPT_HOST_PCR:
                        if (parse_uint("--host-pcr", optarg, 0, 23, &v) < 0)
                                return 1;
                        cfg.host_pcr = (uint32_t)v;
                        break;
                case OPT_STATE_DIR:
                        cfg.state_dir = optarg;
                        break;
                case OPT_RUN_DIR:
                        cfg.run_dir = optarg;
                        break;
                case OPT_SOCKET:
                        cfg.socket = optarg;
                        break;
                case OPT_READY:
                        cfg.ready_file = optarg;
                        break;
                case OPT_SWTPM:
                        cfg.swtpm = optarg;
                        break;
                case OPT_CA:
                        cfg.vtpm_ca = optarg;
                        break;
                case OPT_CA_KEY:
                        cfg.vtpm_ca_key = optarg;
                        break;
                case OPT_EK_ALG:
                        if (strcmp(optarg, "ecc") == 0)
                                cfg.ek_alg = CSCP_KEY_ECC_P256;
                        else if (strcmp(optarg, "rsa") == 0)
                                cfg.ek_alg = CSCP_KEY_RSA_2048;
                        else {
                                fprintf(stderr, "vtpmd: --ek-alg must be ecc or rsa\n");
                                return 1;
                        }
                        break;
                case OPT_POOL:
                        if (parse_uint("--pool", optarg, 0, VTPMD_MAX_POOL, &v) < 0)
                                return 1;
                        cfg.pool = (unsigned)v;
                        break;
                case OPT_MAX_INST:
                        if (parse_uint("--max-instances", optarg, 1, VTPMD_MAX_INSTANCES, &v) < 0)
                                return 1;
                        cfg.max_instances = (unsigned)v;
                        break;
                case OPT_MEASURE_POLICY:
                        cfg.measure_policy_path = optarg;
                        break;
                case OPT_HOST_PROC_PCR:
                        if (parse_uint("--host-process-pcr", optarg, 0, 23, &v) < 0)
                                return 1;
                        cfg.host_process_pcr = (uint32_t)v;
                        break;
                case OPT_STOP_INST:
                        cfg.stop_instances = true;
                        break;
                case OPT_FRONTEND:
                        if (strcmp(optarg, "vtpm-proxy") != 0 && strcmp(optarg, "socket") != 0) {
                                fprintf(stderr, "vtpmd: --frontend: 'socket' or 'vtpm-proxy', not '%s'\n", optarg);
                                return 1;
                        }
                        cfg.frontend_proxy = strcmp(optarg, "vtpm-proxy") == 0;
                        break;
                case OPT_GROUP: {
                        struct group *g = getgrnam(optarg);
                        if (!g && parse_uint("--control-group", optarg, 1, 0x7fffffff, &v) == 0) {
                                cfg.control_gid = (gid_t)v;
                        } else if (g) {
                                cfg.control_gid = g->gr_gid;
                        } else {
                                fprintf(stderr, "vtpmd: --control-group: no group '%s'\n", optarg);
                                return 1;
                        }
                        cfg.have_control_group = true;
                        break;
                }
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
                case 'v':
                        verbose++;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_VERSION:
                        printf("vtpmd (cscp) 0.1.0\n");
                        return 0;
                default:
                        usage(stderr);
                        return 1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vtpmd: unexpected argument '%s'\n", argv[optind]);
                return 1;
        }
        if (cscp_rot_opts_check(cfg.rot, &cfg.tdx, rot_err, sizeof(rot_err)) < 0) {
                fprintf(stderr, "vtpmd: %s\n", rot_err);
                return 1;
        }
        if (cfg.rot == CSCP_ROT_TDX && !cfg.tcti) {
                fprintf(stderr, "vtpmd: --rot tdx: the master key is sealed to a TPM, and a TDX host has none of its "
                                "own: give --tcti of the TPM to seal it to (e.g. the TD's vTPM); vtpmd has no "
                                "unsealed master key\n");
                return 1;
        }
        if (cfg.rot == CSCP_ROT_TDX && (cfg.host_pcr < 8 || cfg.host_pcr > 15)) {
                fprintf(stderr, "vtpmd: --rot tdx: --host-pcr %u has no RTMR vtpmd may extend (PCR 8..15 -> RTMR2)\n",
                        cfg.host_pcr);
                return 1;
        }
        if (!cfg.vtpm_ca || !cfg.vtpm_ca_key) {
                fprintf(stderr, "vtpmd: --vtpm-ca and --vtpm-ca-key are required (they sign vTPM EK certificates)\n");
                return 1;
        }
        if (!getenv("CSCP_LOG")) {
                setenv("CSCP_LOG", verbose > 1 ? "all+trace" : verbose ? "all+debug" : "all+info", 1);
                cscp_log_reload();
        }
        if (!getenv("TSS2_LOG"))
                setenv("TSS2_LOG", verbose > 1 ? "all+debug" : "all+none", 1);
        if (cfg.measure_policy_path && cfg.rot == CSCP_ROT_TDX) {
                fprintf(stderr,
                        "vtpmd: --measurement-policy is not available with --rot tdx: the host process log needs a "
                        "register of its own, and on TDX the PCRs a log may extend (8..15) all map to RTMR2, which "
                        "the host log (PCR %u) uses\n",
                        cfg.host_pcr);
                return 1;
        }
        if (cfg.measure_policy_path) {
                char err[512];
                r = cscp_measure_policy_load(cfg.measure_policy_path, &policy, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "vtpmd: --measurement-policy %s: %s\n", cfg.measure_policy_path,
                                err[0] ? err : cscp_strerror(r));
                        return 1;
                }
                if (strcmp(policy->backend, "tpm") != 0) {
                        fprintf(stderr,
                                "vtpmd: --measurement-policy %s: backend '%s' is not supported yet; only 'tpm' (the "
                                "TDX backend arrives with the TDX work)\n",
                                cfg.measure_policy_path, policy->backend);
                        cscp_measure_policy_free(policy);
                        return 1;
                }
                if (cfg.host_process_pcr == cfg.host_pcr) {
                        fprintf(stderr, "vtpmd: --host-process-pcr and --host-pcr must differ (two logs, one each)\n");
                        cscp_measure_policy_free(policy);
                        return 1;
                }
                cfg.measure_policy = policy;
        }
        signal(SIGPIPE, SIG_IGN);
        r = vtpmd_run(&cfg);
        cscp_measure_policy_free(policy);
        return r < 0 ? 1 : 0;
}
