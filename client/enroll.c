/* SPDX-License-Identifier: Apache-2.0 */
/* cscp enroll: check a host's EK and AK, prove they share a TPM, record the AK (lib/enroll.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define LOGMODULE enroll
#include "client.h"
#include "commands.h"
#include "enroll.h"
#include "error.h"
#include "log.h"
#include "store.h"
#include "util.h"

enum {
        OPT_EK_CA = CONN_OPT_END,
        OPT_TOFU,
        OPT_DB,
        OPT_JSON,
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: cscp enroll --server HOST:PORT --ek-ca FILE [OPTIONS]\n"
                   "Enrolls a host's attestation key (AK): asks attestd for its EK public, EK certificate and AK\n"
                   "public; checks that the EK certificate chains to the EK CA bundle and certifies that EK, and\n"
                   "that the AK is a restricted signing key bound to its TPM (fixedTPM, fixedParent,\n"
                   "sensitiveDataOrigin); wraps a random credential to the EK for the AK's Name (MakeCredential);\n"
                   "only a TPM holding both can recover it (ActivateCredential). Then the AK is recorded in the\n"
                   "store under the --server string, with method \"credential\".\n"
                   "\n"
                   "  --server HOST:PORT       attestd to enroll ([IPv6]:PORT for IPv6)\n"
                   "  --ca FILE                CA bundle the server certificate must chain to\n"
                   "  --cert FILE, --key FILE  client certificate and key (attestd requires them by default)\n"
                   "  --insecure-plaintext     no TLS (only against an attestd started the same way)\n"
                   "  --timeout SEC            connect/read/write timeout (default 30)\n"
                   "  --ek-ca FILE             PEM bundle of EK certificate CAs (TPM vendors' roots;\n"
                   "                           swtpm-localca's CA in test rigs)\n"
                   "  --tofu                   trust on first use when there is nothing to check: the TPM has no EK\n"
                   "                           certificate, or no --ek-ca is given. Recorded as method \"tofu\"; the\n"
                   "                           credential activation still runs. Never overrides a failed check.\n"
                   "  --db FILE                the store (default $XDG_STATE_HOME/cscp/store.db or\n"
                   "                           ~/.local/state/cscp/store.db)\n"
                   "  --json                   print the result as JSON\n"
                   "  -h, --help               this text\n"
                   "\n"
                   "Exit status: 0 enrolled, 1 refused (untrusted EK or AK, or the activation failed; the reason\n"
                   "is printed), 2 error.\n");
}

static int fail_usage(const char *msg)
{
        fprintf(stderr, "cscp enroll: %s\n(see 'cscp enroll --help')\n", msg);
        return 2;
}

static void print_text(const char *server, const cscp_enroll_result_t *res)
{
        char name[2 * sizeof(res->ak_name) + 1];

        cscp_hex_encode(res->ak_name, res->ak_name_len, name);
        printf("server: %s\n", server);
        if (res->ek_type[0])
                printf("EK: %s\n", res->ek_type);
        printf("EK certificate: %s%s%s\n",
               !res->ek_cert_present  ? "none"
               : res->ek_cert_trusted ? "trusted"
                                      : "present, not checked",
               res->ek_cert_issuer[0] ? ", issuer " : "", res->ek_cert_issuer);
        if (res->tpm_manufacturer[0] || res->tpm_model[0] || res->tpm_version[0])
                printf("TPM: manufacturer %s, model %s, version %s\n", res->tpm_manufacturer, res->tpm_model,
                       res->tpm_version);
        if (res->ak_name_len)
                printf("AK name: %s\n", name);
        printf("activation: %s\n", res->activated ? "passed" : "not passed");
        if (res->verdict == CSCP_ENROLL_ENROLLED)
                printf("enrolled (method %s)\n", res->method);
        else
                printf("refused: %s\n", res->reason);
}

static void print_json(const char *server, const cscp_enroll_result_t *res)
{
        char name[2 * sizeof(res->ak_name) + 1];
        json_object *o = json_object_new_object(), *ek = json_object_new_object();

        if (!o || !ek) {
                json_object_put(o);
                json_object_put(ek);
                return;
        }
        cscp_hex_encode(res->ak_name, res->ak_name_len, name);
        json_object_object_add(o, "server", json_object_new_string(server));
        json_object_object_add(o, "result",
                               json_object_new_string(res->verdict == CSCP_ENROLL_ENROLLED ? "enrolled" : "refused"));
        if (res->method)
                json_object_object_add(o, "method", json_object_new_string(res->method));
        if (res->verdict != CSCP_ENROLL_ENROLLED)
                json_object_object_add(o, "reason", json_object_new_string(res->reason));
        json_object_object_add(o, "ak_name", json_object_new_string(name));
        json_object_object_add(ek, "type", json_object_new_string(res->ek_type));
        json_object_object_add(ek, "certificate", json_object_new_boolean(res->ek_cert_present));
        json_object_object_add(ek, "certificate_trusted", json_object_new_boolean(res->ek_cert_trusted));
        json_object_object_add(ek, "issuer", json_object_new_string(res->ek_cert_issuer));
        json_object_object_add(ek, "tpm_manufacturer", json_object_new_string(res->tpm_manufacturer));
        json_object_object_add(ek, "tpm_model", json_object_new_string(res->tpm_model));
        json_object_object_add(ek, "tpm_version", json_object_new_string(res->tpm_version));
        json_object_object_add(o, "ek", ek);
        json_object_object_add(o, "activated", json_object_new_boolean(res->activated));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
}

int cmd_enroll(int argc, char **argv)
{
        static const struct option opts[] = {
                CONN_LONG_OPTIONS,
                {"ek-ca", required_argument, NULL, OPT_EK_CA},
                {"tofu", no_argument, NULL, OPT_TOFU},
                {"db", required_argument, NULL, OPT_DB},
                {"json", no_argument, NULL, OPT_JSON},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        cscp_client_opts_t co = {0};
        cscp_enroll_opts_t eo = {0};
        cscp_enroll_result_t res;
        const char *db = NULL;
        char *db_default = NULL, err[512];
        cscp_store_t *store = NULL;
        cscp_conn_t *conn = NULL;
        bool json = false;
        int c, r, ret = 2;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                r = conn_opt(c, optarg, &co, "enroll");
                if (r < 0)
                        return 2;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_EK_CA:
                        eo.ek_ca = optarg;
                        break;
                case OPT_TOFU:
                        eo.tofu = true;
                        break;
                case OPT_DB:
                        db = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cscp enroll: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (conn_opts_check(&co, "enroll") < 0)
                return 2;
        if (!eo.ek_ca && !eo.tofu)
                return fail_usage("--ek-ca FILE is required to check the host's EK certificate "
                                  "(or --tofu to trust the host on first use)");
        if (!db) {
                r = cscp_store_default_path(&db_default);
                if (r < 0) {
                        fprintf(stderr, "cscp enroll: no default store path (give --db FILE): %s\n", cscp_strerror(r));
                        return 2;
                }
                db = db_default;
        }
        r = cscp_store_open(db, &store);
        if (r < 0) {
                fprintf(stderr, "cscp enroll: cannot open the store %s: %s\n", db, cscp_strerror(r));
                goto out;
        }
        r = cscp_conn_open(&co, &conn, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "cscp enroll: %s\n", err[0] ? err : cscp_strerror(r));
                goto out;
        }
        eo.host = co.server;
        eo.store = store;
        r = cscp_enroll(conn, &eo, &res, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "cscp enroll: %s\n", err[0] ? err : cscp_strerror(r));
                goto out;
        }
        if (json)
                print_json(co.server, &res);
        else
                print_text(co.server, &res);
        fflush(stdout);
        ret = r == CSCP_ENROLL_ENROLLED ? 0 : 1;
out:
        cscp_conn_free(conn);
        cscp_store_close(store);
        free(db_default);
        return ret;
}
