/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp tdx inspect|verify: print a TDX quote's parsed fields, or verify its
 * signatures and PCK chain against a trust anchor file, and with a collateral
 * directory its TCB status (lib/tdx/).
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define LOGMODULE cscp
#include "cscp/error.h"
#include "cscp/tdx.h"
#include "cscp/util.h"
#include "cscp/verdict.h"
#include "commands.h"
#include "log.h"

enum {
        OPT_JSON = 0x100,
        OPT_REPORT_DATA,
};

static const struct option long_opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"report-data", required_argument, NULL, OPT_REPORT_DATA},
        TDX_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: cscp tdx inspect QUOTE [--json]\n"
                "       cscp tdx verify QUOTE --tdx-root FILE [--at TIME] [--tdx-crl FILE]... [--report-data HEX]\n"
                "                       [--tdx-collateral DIR [--tdx-allow-tcb STATUS]...] [--json]\n"
                "Inspect or verify an Intel TDX quote (v4 or v5, ECDSA-P256).\n"
                "  --tdx-root FILE     trust anchor(s), PEM (the Intel SGX Root CA); never fetched\n"
                "  --at TIME           verification time: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @EPOCH "
                "(default: now)\n"
                "  --tdx-crl FILE      a CRL (PEM or DER) to check the PCK chain against; repeatable\n"
                "  --report-data HEX   the 64 bytes REPORTDATA must hold (128 hex digits)\n"
                "  --tdx-collateral DIR  evaluate the TCB status from Intel PCS collateral in DIR:\n"
                "                      tcb_info.json, qe_identity.json (the PCS response bodies),\n"
                "                      tcb_signing_chain.pem (TCB-Info-Issuer-Chain), optional pck_crl.der and\n"
                "                      root_crl.der (PEM or DER; then CRLs are checked for every chain)\n"
                "  --tdx-allow-tcb STATUS  accept this TCB status besides UpToDate (repeatable): SWHardeningNeeded,\n"
                "                      ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate,\n"
                "                      OutOfDateConfigurationNeeded, Revoked, TDRelaunchAdvised,\n"
                "                      TDRelaunchAdvisedConfigurationNeeded\n"
                "  --json              machine-readable output\n"
                "Without --tdx-collateral the TCB status is reported as not evaluated.\n"
                "Exit status: inspect 0 parsed, 2 error; verify 0 trusted, 1 untrusted, 2 error.\n");
}

/* Shared with cscp challenge/verify --at (commands.h). */
int cli_parse_time(const char *s, time_t *ret)
{
        struct tm tm;
        const char *end;
        char *e;

        if (s[0] == '@') {
                long long t;

                errno = 0;
                t = strtoll(s + 1, &e, 10);
                if (errno || e == s + 1 || *e || t <= 0)
                        return -EINVAL;
                *ret = (time_t)t;
                return 0;
        }
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d", &tm);
                if (!end || *end)
                        return -EINVAL;
        }
        *ret = timegm(&tm);
        return *ret > 0 ? 0 : -EINVAL;
}

static void hexout(char *out, const uint8_t *b, size_t n)
{
        cscp_hex_encode(b, n, out);
}

typedef struct field {
        const char *name;
        const uint8_t *b;
        size_t n;
} field_t;

static size_t body_fields(const cscp_tdx_quote_t *q, field_t *f)
{
        size_t n = 0;

#define ADD(nm, ptr, len) f[n++] = (field_t){nm, ptr, len}
        ADD("qe_vendor_id", q->qe_vendor_id, 16);
        ADD("user_data", q->user_data, 20);
        ADD("tee_tcb_svn", q->tee_tcb_svn, 16);
        ADD("mrseam", q->mrseam, 48);
        ADD("mrsignerseam", q->mrsignerseam, 48);
        ADD("seam_attributes", q->seam_attributes, 8);
        ADD("td_attributes", q->td_attributes, 8);
        ADD("xfam", q->xfam, 8);
        ADD("mrtd", q->mrtd, 48);
        ADD("mrconfigid", q->mrconfigid, 48);
        ADD("mrowner", q->mrowner, 48);
        ADD("mrownerconfig", q->mrownerconfig, 48);
        ADD("rtmr0", q->rtmr[0], 48);
        ADD("rtmr1", q->rtmr[1], 48);
        ADD("rtmr2", q->rtmr[2], 48);
        ADD("rtmr3", q->rtmr[3], 48);
        ADD("report_data", q->report_data, 64);
        if (q->tdx15) {
                ADD("tee_tcb_svn2", q->tee_tcb_svn2, 16);
                ADD("mrservicetd", q->mrservicetd, 48);
        }
        ADD("attestation_key", q->attest_key, 64);
        ADD("qe_mrenclave", q->qe_mrenclave, 32);
        ADD("qe_mrsigner", q->qe_mrsigner, 32);
        ADD("qe_report_data", q->qe_report_data, 64);
#undef ADD
        return n;
}

static int inspect(const cscp_tdx_quote_t *q, bool json)
{
        field_t f[32];
        size_t n = body_fields(q, f);
        char hex[2 * 64 + 1];

        if (json) {
                json_object *o = json_object_new_object();

                if (!o)
                        return 2;
                json_object_object_add(o, "version", json_object_new_int(q->version));
                json_object_object_add(o, "attestation_key_type", json_object_new_int(q->ak_type));
                json_object_object_add(o, "tee_type", json_object_new_int((int32_t)q->tee_type));
                json_object_object_add(o, "qe_svn", json_object_new_int(q->qe_svn));
                json_object_object_add(o, "pce_svn", json_object_new_int(q->pce_svn));
                json_object_object_add(o, "body_type", json_object_new_int(q->body_type));
                json_object_object_add(o, "body_size", json_object_new_int((int32_t)q->body_size));
                for (size_t i = 0; i < n; i++) {
                        hexout(hex, f[i].b, f[i].n);
                        json_object_object_add(o, f[i].name, json_object_new_string(hex));
                }
                json_object_object_add(o, "td_debug", json_object_new_boolean(q->td_attributes[0] & 1));
                json_object_object_add(o, "qe_isv_prod_id", json_object_new_int(q->qe_isv_prod_id));
                json_object_object_add(o, "qe_isv_svn", json_object_new_int(q->qe_isv_svn));
                json_object_object_add(o, "qe_auth_data_size", json_object_new_int((int32_t)q->qe_auth_len));
                json_object_object_add(o, "pck_chain_size", json_object_new_int((int32_t)q->pck_chain_len));
                json_object_object_add(o, "trailing_bytes", json_object_new_int64((int64_t)q->trailing_len));
                printf("%s\n",
                       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                return 0;
        }
        printf("version              %u\n", q->version);
        printf("attestation_key_type %u (ECDSA-256-with-P-256)\n", q->ak_type);
        printf("tee_type             0x%x (TDX)\n", q->tee_type);
        printf("qe_svn               %u\n", q->qe_svn);
        printf("pce_svn              %u\n", q->pce_svn);
        printf("body                 type %u, %u bytes (%s)\n", q->body_type, q->body_size,
               q->tdx15 ? "TDX 1.5 TD report" : "TDX 1.0 TD report");
        for (size_t i = 0; i < n; i++) {
                hexout(hex, f[i].b, f[i].n);
                printf("%-20s %s\n", f[i].name, hex);
        }
        printf("td_debug             %s\n", (q->td_attributes[0] & 1) ? "yes" : "no");
        printf("qe_isv_prod_id       %u\n", q->qe_isv_prod_id);
        printf("qe_isv_svn           %u\n", q->qe_isv_svn);
        printf("qe_auth_data         %zu bytes\n", q->qe_auth_len);
        printf("pck_chain            %zu bytes (PEM)\n", q->pck_chain_len);
        if (q->trailing_len)
                printf("trailing_bytes       %zu (after the signature data, ignored)\n", q->trailing_len);
        return 0;
}

int tdx_cli_opt(int c, const char *arg, tdx_cli_t *o, const char *cmd)
{
        cscp_tdx_tcb_status_t st;

        switch (c) {
        case TDX_OPT_ROOT:
                o->root = arg;
                return 1;
        case TDX_OPT_COLLATERAL:
                o->collateral = arg;
                return 1;
        case TDX_OPT_AT:
                if (cli_parse_time(arg, &o->at) < 0) {
                        fprintf(stderr, "cscp %s: --at '%s': not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @EPOCH\n", cmd,
                                arg);
                        return -1;
                }
                o->have_at = true;
                return 1;
        case TDX_OPT_CRL:
                if (o->n_crls >= TDX_MAX_CRLS) {
                        fprintf(stderr, "cscp %s: at most %d --tdx-crl\n", cmd, TDX_MAX_CRLS);
                        return -1;
                }
                o->crls[o->n_crls++] = arg;
                return 1;
        case TDX_OPT_ALLOW_TCB:
                if (cscp_tdx_tcb_status_from_name(arg, &st) < 0) {
                        fprintf(stderr,
                                "cscp %s: --tdx-allow-tcb '%s': not a TCB status (an Intel name, e.g. "
                                "SWHardeningNeeded; see --help)\n",
                                cmd, arg);
                        return -1;
                }
                if (o->n_allowed >= TDX_MAX_ALLOWED) {
                        fprintf(stderr, "cscp %s: at most %d --tdx-allow-tcb\n", cmd, TDX_MAX_ALLOWED);
                        return -1;
                }
                o->allowed[o->n_allowed++] = arg;
                return 1;
        default:
                return 0;
        }
}

int cmd_tdx(int argc, char **argv)
{
        tdx_cli_t t = {0};
        uint8_t report_data[64];
        bool json = false, have_rd = false;
        size_t rd_len = 0;
        uint8_t *quote = NULL;
        size_t quote_len = 0;
        const char *sub;
        int c, k, ret = 2;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        sub = argv[1];
        if (strcmp(sub, "inspect") != 0 && strcmp(sub, "verify") != 0) {
                fprintf(stderr, "cscp tdx: unknown subcommand '%s'\n", sub);
                usage(stderr);
                return 2;
        }
        argc--;
        argv++;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
                k = tdx_cli_opt(c, optarg, &t, "tdx");
                if (k < 0)
                        return 2;
                if (k > 0)
                        continue;
                switch (c) {
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_REPORT_DATA:
                        if (cscp_hex_decode(optarg, report_data, sizeof(report_data), &rd_len) < 0 || rd_len != 64) {
                                fprintf(stderr, "cscp tdx: --report-data: needs 128 hex digits (64 bytes)\n");
                                return 2;
                        }
                        have_rd = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "cscp tdx %s: needs exactly one QUOTE file\n", sub);
                return 2;
        }
        k = cscp_file_read(argv[optind], CSCP_TDX_QUOTE_MAX + 1, &quote, &quote_len);
        if (k < 0) {
                fprintf(stderr, "cscp tdx: %s: %s\n", argv[optind], cscp_strerror(k));
                return 2;
        }

        if (strcmp(sub, "inspect") == 0) {
                cscp_tdx_quote_t q;
                char err[256];

                k = cscp_tdx_quote_parse(quote, quote_len, &q, err, sizeof(err));
                if (k < 0) {
                        fprintf(stderr, "cscp tdx inspect: %s: %s\n", argv[optind], err);
                        goto out;
                }
                ret = inspect(&q, json);
        } else {
                cscp_tdx_verify_opts_t o = {
                        .root_file = t.root,
                        .at = t.at,
                        .crl_files = t.n_crls ? t.crls : NULL,
                        .n_crl_files = t.n_crls,
                        .report_data = have_rd ? report_data : NULL,
                        .collateral_dir = t.collateral,
                        .tcb_allowed = t.n_allowed ? t.allowed : NULL,
                        .n_tcb_allowed = t.n_allowed,
                };
                cscp_verdict_t v;

                if (!t.root) {
                        fprintf(stderr, "cscp tdx verify: --tdx-root FILE is required (the Intel SGX Root CA)\n");
                        goto out;
                }
                if (t.n_allowed && !t.collateral) {
                        fprintf(stderr, "cscp tdx verify: --tdx-allow-tcb needs --tdx-collateral DIR\n");
                        goto out;
                }
                cscp_verdict_init(&v);
                (void)cscp_tdx_quote_verify(quote, quote_len, &o, &v);
                if (json)
                        cscp_verdict_print_json(&v, stdout);
                else
                        cscp_verdict_print(&v, stdout);
                ret = (int)cscp_verdict_result(&v);
                cscp_verdict_clear(&v);
        }
out:
        free(quote);
        return ret;
}
