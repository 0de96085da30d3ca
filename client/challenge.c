/* SPDX-License-Identifier: Apache-2.0 */
/* cscp challenge / cscp verify: ask for evidence, check it, say what failed. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define LOGMODULE challenge
#include "client.h"
#include "commands.h"
#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "log.h"
#include "pcr.h"
#include "util.h"
#include "verdict.h"

#define DEFAULT_PCRS "sha256:0-7,10"

enum {
        OPT_SERVER = 0x100,
        OPT_CA,
        OPT_CERT,
        OPT_KEY,
        OPT_PLAINTEXT,
        OPT_PCRS,
        OPT_NONCE_SIZE,
        OPT_JSON,
        OPT_SAVE,
        OPT_TIMEOUT,
        OPT_ALLOW_SHA1,
        OPT_EVIDENCE,
        OPT_NONCE,
        OPT_AK_NAME,
};

static void challenge_usage(FILE *f)
{
        fprintf(f,
                "Usage: cscp challenge --server HOST:PORT [OPTIONS]\n"
                "Sends a fresh nonce to attestd and verifies the evidence it returns: TLS peer, quote\n"
                "signature, TPM_GENERATED magic, quote type, extraData = Merkle root of the batch holding this\n"
                "challenge's leaf (group commit), PCR selection and digest.\n"
                "\n"
                "  --server HOST:PORT       attestd to challenge ([IPv6]:PORT for IPv6)\n"
                "  --ca FILE                CA bundle the server certificate must chain to\n"
                "  --cert FILE, --key FILE  client certificate and key (attestd requires them by default)\n"
                "  --insecure-plaintext     no TLS (only against an attestd started the same way)\n"
                "  --pcrs SEL               host PCRs to quote (default " DEFAULT_PCRS "),\n"
                "                           e.g. sha256:0-7,10,11,15+sha1:0\n"
                "  --nonce-size N           nonce bytes, %d..%d (default %d)\n"
                "  --timeout SEC            connect/read/write timeout (default 30)\n"
                "  --ak-name HEX            the host AK Name you trust (from an earlier verdict's host-ak-name);\n"
                "                           without it the AK is taken from the evidence\n"
                "  --allow-sha1             accept SHA-1 quote signatures and PCR digests\n"
                "  --save-evidence FILE     keep the evidence (for cscp verify)\n"
                "  --json                   print the verdict as JSON\n"
                "  -h, --help               this text\n"
                "\n"
                "Exit status: 0 trusted, 1 untrusted (every failed claim is named), 2 error.\n"
                "Without --ak-name the quote proves freshness and integrity but not which TPM signed it.\n",
                CSCP_NONCE_MIN, CSCP_NONCE_MAX, CSCP_NONCE_DEFAULT);
}

static void verify_usage(FILE *f)
{
        fprintf(f,
                "Usage: cscp verify --evidence FILE --nonce HEX [OPTIONS]\n"
                "Verifies evidence saved by 'cscp challenge --save-evidence' against the nonce it answered.\n"
                "\n"
                "  --evidence FILE          the saved evidence\n"
                "  --nonce HEX              the challenge's nonce (%d..%d bytes)\n"
                "  --pcrs SEL               PCRs the quote must cover (default: whatever it covers)\n"
                "  --ak-name HEX            the host AK Name you trust\n"
                "  --allow-sha1             accept SHA-1 quote signatures and PCR digests\n"
                "  --json                   print the verdict as JSON\n"
                "  -h, --help               this text\n"
                "\n"
                "Exit status: 0 trusted, 1 untrusted, 2 error.\n",
                CSCP_NONCE_MIN, CSCP_NONCE_MAX);
}

static int finish(cscp_verdict_t *v, bool json)
{
        cscp_verdict_result_t res = cscp_verdict_result(v);

        if (json)
                (void)cscp_verdict_print_json(v, stdout);
        else
                cscp_verdict_print(v, stdout);
        fflush(stdout);
        cscp_verdict_clear(v);
        return (int)res;
}

static int fail_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail_usage(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "cscp %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n(see 'cscp %s --help')\n", cmd);
        return 2;
}

int cmd_challenge(int argc, char **argv)
{
        static const struct option opts[] = {
                {"server", required_argument, NULL, OPT_SERVER},
                {"ca", required_argument, NULL, OPT_CA},
                {"cert", required_argument, NULL, OPT_CERT},
                {"key", required_argument, NULL, OPT_KEY},
                {"insecure-plaintext", no_argument, NULL, OPT_PLAINTEXT},
                {"pcrs", required_argument, NULL, OPT_PCRS},
                {"nonce-size", required_argument, NULL, OPT_NONCE_SIZE},
                {"json", no_argument, NULL, OPT_JSON},
                {"save-evidence", required_argument, NULL, OPT_SAVE},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"allow-sha1", no_argument, NULL, OPT_ALLOW_SHA1},
                {"ak-name", required_argument, NULL, OPT_AK_NAME},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        cscp_client_opts_t co = {0};
        const char *pcrs = DEFAULT_PCRS, *save = NULL;
        bool json = false, allow_sha1 = false;
        uint8_t ak_name[sizeof(TPMU_NAME)];
        size_t ak_name_len = 0;
        long nonce_size = CSCP_NONCE_DEFAULT, timeout = 30;
        TPML_PCR_SELECTION sel;
        uint8_t nonce[CSCP_NONCE_MAX];
        cscp_verdict_t v;
        cscp_conn_t *conn = NULL;
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        Cscp__PcrSelection **wsel = NULL;
        size_t n_wsel = 0;
        char err[512], *end;
        int c, r, ret = 2;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_SERVER:
                        co.server = optarg;
                        break;
                case OPT_CA:
                        co.ca = optarg;
                        break;
                case OPT_CERT:
                        co.cert = optarg;
                        break;
                case OPT_KEY:
                        co.key = optarg;
                        break;
                case OPT_PLAINTEXT:
                        co.insecure_plaintext = true;
                        break;
                case OPT_PCRS:
                        pcrs = optarg;
                        break;
                case OPT_NONCE_SIZE:
                        errno = 0;
                        nonce_size = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg)
                                return fail_usage("challenge", "--nonce-size: '%s' is not a number", optarg);
                        break;
                case OPT_TIMEOUT:
                        errno = 0;
                        timeout = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || timeout < 1 || timeout > 3600)
                                return fail_usage("challenge", "--timeout: '%s' is not 1..3600 seconds", optarg);
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_SAVE:
                        save = optarg;
                        break;
                case OPT_ALLOW_SHA1:
                        allow_sha1 = true;
                        break;
                case OPT_AK_NAME:
                        if (cscp_hex_decode(optarg, ak_name, sizeof(ak_name), &ak_name_len) < 0 || ak_name_len < 2)
                                return fail_usage(argv[0], "--ak-name: '%s' is not a TPM Name in hex", optarg);
                        break;
                case 'h':
                        challenge_usage(stdout);
                        return 0;
                default:
                        challenge_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc)
                return fail_usage("challenge", "unexpected argument '%s'", argv[optind]);
        if (!co.server)
                return fail_usage("challenge", "%s", "--server HOST:PORT is required");
        if (!co.insecure_plaintext && !co.ca)
                return fail_usage("challenge", "%s",
                                  "--ca FILE is required to check the server (or --insecure-plaintext)");
        if (co.insecure_plaintext && (co.ca || co.cert || co.key))
                return fail_usage("challenge", "%s", "--insecure-plaintext cannot be combined with --ca/--cert/--key");
        if (nonce_size < CSCP_NONCE_MIN || nonce_size > CSCP_NONCE_MAX) {
                fprintf(stderr,
                        "cscp challenge: --nonce-size %ld refused: a nonce must be %d..%d bytes (%d bits at least)\n",
                        nonce_size, CSCP_NONCE_MIN, CSCP_NONCE_MAX, CSCP_NONCE_MIN * 8);
                return 2;
        }
        if (cscp_pcrsel_parse(pcrs, &sel) < 0)
                return fail_usage("challenge", "--pcrs: '%s' is not a PCR selection like sha256:0-7,10", pcrs);
        co.timeout_ms = (int)timeout * 1000;

        if (cscp_nonce_draw(nonce, (size_t)nonce_size) < 0) {
                fprintf(stderr, "cscp challenge: cannot draw a nonce from the OpenSSL RNG\n");
                return 2;
        }
        cscp_verdict_init(&v);
        cscp_verdict_fact(&v, "server", "%s", co.server);
        r = cscp_conn_open(&co, &conn, err, sizeof(err));
        if (r == CSCP_E_TLS_PEER) {
                cscp_verdict_claim(&v, "tls-peer", false, "%s", err);
                return finish(&v, json);
        }
        if (r < 0) {
                fprintf(stderr, "cscp challenge: %s\n", err[0] ? err : cscp_strerror(r));
                cscp_verdict_clear(&v);
                return 2;
        }
        if (co.insecure_plaintext)
                cscp_verdict_claim(&v, "tls-peer", true,
                                   "not checked: --insecure-plaintext (the evidence is still signed and nonce-bound)");
        else
                cscp_verdict_claim(&v, "tls-peer", true, "server certificate chains to %s and names the host", co.ca);

        r = cscp_pcrsel_to_wire(&sel, &wsel, &n_wsel);
        if (r < 0)
                goto out;
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = (size_t)nonce_size};
        ch.host_pcrs = wsel;
        ch.n_host_pcrs = n_wsel;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        r = cscp_conn_roundtrip(conn, &req, &resp, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "cscp challenge: %s\n", err[0] ? err : cscp_strerror(r));
                goto out;
        }
        if (resp->body_case == CSCP__FRAME__BODY_ERROR) {
                const ProtobufCEnumValue *ev =
                        protobuf_c_enum_descriptor_get_value(&cscp__error_code__descriptor, resp->error->code);
                fprintf(stderr, "cscp challenge: attestd refused: %s: %s\n", ev ? ev->name : "?", resp->error->message);
                goto out;
        }
        if (resp->body_case != CSCP__FRAME__BODY_EVIDENCE) {
                fprintf(stderr, "cscp challenge: attestd answered with something other than evidence\n");
                goto out;
        }
        if (save) {
                r = cscp_evidence_save(save, resp->evidence);
                if (r < 0) {
                        fprintf(stderr, "cscp challenge: cannot save evidence to %s: %s\n", save, cscp_strerror(r));
                        goto out;
                }
        }
        cscp_expect_t want = {.nonce = nonce,
                              .nonce_len = (size_t)nonce_size,
                              .host_pcrs = &sel,
                              .host_ak_name = ak_name_len ? ak_name : NULL,
                              .host_ak_name_len = ak_name_len,
                              .allow_sha1 = allow_sha1};
        r = cscp_evidence_verify(resp->evidence, &want, &v);
        if (r < 0)
                cscp_verdict_error(&v, "%s", cscp_strerror(r));
        ret = finish(&v, json);
out:
        if (ret == 2)
                cscp_verdict_clear(&v);
        OPENSSL_cleanse(nonce, sizeof(nonce));
        cscp_pcrsel_wire_free(wsel, n_wsel);
        if (resp)
                cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(conn);
        return ret;
}

int cmd_verify(int argc, char **argv)
{
        static const struct option opts[] = {
                {"evidence", required_argument, NULL, OPT_EVIDENCE},
                {"nonce", required_argument, NULL, OPT_NONCE},
                {"pcrs", required_argument, NULL, OPT_PCRS},
                {"allow-sha1", no_argument, NULL, OPT_ALLOW_SHA1},
                {"ak-name", required_argument, NULL, OPT_AK_NAME},
                {"json", no_argument, NULL, OPT_JSON},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *path = NULL, *nonce_hex = NULL, *pcrs = NULL;
        bool json = false, allow_sha1 = false;
        uint8_t ak_name[sizeof(TPMU_NAME)];
        size_t ak_name_len = 0;
        TPML_PCR_SELECTION sel;
        uint8_t nonce[CSCP_NONCE_MAX];
        size_t nonce_len;
        Cscp__Frame *f = NULL;
        cscp_verdict_t v;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_EVIDENCE:
                        path = optarg;
                        break;
                case OPT_NONCE:
                        nonce_hex = optarg;
                        break;
                case OPT_PCRS:
                        pcrs = optarg;
                        break;
                case OPT_ALLOW_SHA1:
                        allow_sha1 = true;
                        break;
                case OPT_AK_NAME:
                        if (cscp_hex_decode(optarg, ak_name, sizeof(ak_name), &ak_name_len) < 0 || ak_name_len < 2)
                                return fail_usage(argv[0], "--ak-name: '%s' is not a TPM Name in hex", optarg);
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        verify_usage(stdout);
                        return 0;
                default:
                        verify_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc)
                return fail_usage("verify", "unexpected argument '%s'", argv[optind]);
        if (!path || !nonce_hex)
                return fail_usage("verify", "%s", "--evidence FILE and --nonce HEX are required");
        if (cscp_hex_decode(nonce_hex, nonce, sizeof(nonce), &nonce_len) < 0 || cscp_nonce_check_len(nonce_len) < 0) {
                fprintf(stderr, "cscp verify: --nonce must be %d..%d bytes of hex\n", CSCP_NONCE_MIN, CSCP_NONCE_MAX);
                return 2;
        }
        if (pcrs && cscp_pcrsel_parse(pcrs, &sel) < 0)
                return fail_usage("verify", "--pcrs: '%s' is not a PCR selection like sha256:0-7,10", pcrs);
        r = cscp_evidence_load(path, CSCP_FRAME_MAX_DEFAULT, &f);
        if (r < 0) {
                fprintf(stderr, "cscp verify: cannot read evidence from %s: %s\n", path, cscp_strerror(r));
                return 2;
        }
        cscp_verdict_init(&v);
        cscp_verdict_fact(&v, "evidence", "%s", path);
        cscp_expect_t want = {.nonce = nonce,
                              .nonce_len = nonce_len,
                              .host_pcrs = pcrs ? &sel : NULL,
                              .host_ak_name = ak_name_len ? ak_name : NULL,
                              .host_ak_name_len = ak_name_len,
                              .allow_sha1 = allow_sha1};
        r = cscp_evidence_verify(f->evidence, &want, &v);
        if (r < 0)
                cscp_verdict_error(&v, "%s", cscp_strerror(r));
        cscp__frame__free_unpacked(f, NULL);
        return finish(&v, json);
}
