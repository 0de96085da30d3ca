/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vtpmctl: the command-line face of vtpmd's control API (proto/vtpmd.proto).
 * Exit status: 0 done, 1 usage error, 2 vtpmd refused (its error is printed),
 * 3 vtpmd could not be reached or the answer was unreadable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error.h"
#include "pcr.h"
#include "util.h"

#define EXIT_USAGE   1
#define EXIT_REFUSED 2
#define EXIT_IO      3
#define MAX_LIST     1024

static void usage(FILE *f)
{
        fprintf(f, "Usage: vtpmctl [--socket PATH] [--timeout SEC] COMMAND [ARGS]\n"
                   "Talks to vtpmd over its control socket (default /run/cscp/vtpmd.sock).\n"
                   "\n"
                   "Commands:\n"
                   "  create ID [--runtime NAME --runtime-version V] [--config-digest sha256:HEX]\n"
                   "            [--arg A]... [--env NAME=VALUE]... [--layer sha256:HEX]... [--image NAME]\n"
                   "                           give container ID a vTPM (measured and bound to the host TPM)\n"
                   "  destroy ID [--keep-state]\n"
                   "                           stop and wipe its vTPM (or keep the encrypted state)\n"
                   "  list                     every vTPM: id, state, swtpm pid, restarts, socket\n"
                   "  status ID                one vTPM in detail\n"
                   "  quote ID --nonce HEX --pcrs SEL\n"
                   "                           TPM2_Quote with the vTPM's AK, e.g. --pcrs sha256:0-23; prints hex\n"
                   "  measure ID --pcr N --kind KIND --field NAME=VALUE...\n"
                   "                           append a CM_TLV record to the container log and extend it;\n"
                   "                           KIND: version config layer process container pod cluster;\n"
                   "                           NAME: event container_id name value digest\n"
                   "\n"
                   "Options:\n"
                   "  --socket PATH            vtpmd's control socket\n"
                   "  --timeout SEC            give up waiting for an answer after SEC (default 120)\n"
                   "  -h, --help               this text\n"
                   "\n"
                   "Exit status: 0 done, 1 usage error, 2 vtpmd refused the request, 3 vtpmd unreachable.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "vtpmctl: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see vtpmctl --help)\n");
        return EXIT_USAGE;
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
        printf("%s", label);
        for (size_t i = 0; i < n; i++)
                printf("%02x", p[i]);
        printf("\n");
}

static void print_instance(const Vtpmd__Instance *in, bool detail)
{
        if (!detail) {
                printf("%s\t%s\t%u\t%u\t%s\n", in->container_id, in->state, in->pid, in->restarts, in->socket);
                return;
        }
        printf("container_id: %s\nuid: %s\nstate: %s\npid: %u\nsocket: %s\nstate_dir: %s\nlog: %s\nrestarts: "
               "%u\nfrom_pool: %s\ncreated: %llu\n",
               in->container_id, in->uid, in->state, in->pid, in->socket, in->state_dir, in->log, in->restarts,
               in->from_pool ? "yes" : "no", (unsigned long long)in->created);
        print_hex("ek_sha256: ", in->ek_sha256.data, in->ek_sha256.len);
        print_hex("ak_name: ", in->ak_name.data, in->ak_name.len);
        if (in->proxy_device && in->proxy_device[0]) /* --frontend vtpm-proxy: the kernel TPM devices */
                printf("proxy_device: %s (%u:%u)\nproxy_rm_device: %s (%u:%u)\n", in->proxy_device, in->proxy_major,
                       in->proxy_minor, in->proxy_rm_device ? in->proxy_rm_device : "", in->proxy_rm_major,
                       in->proxy_rm_minor);
}

static int call(const char *sock, int timeout_ms, Vtpmd__VtpmRequest *req, Vtpmd__VtpmResponse **ret)
{
        vtpmd_client_t *c = NULL;
        int r;

        r = vtpmd_client_connect(sock, timeout_ms, &c);
        if (r < 0) {
                fprintf(stderr, "vtpmctl: cannot connect to %s: %s\n", sock, cscp_strerror(r));
                return EXIT_IO;
        }
        r = vtpmd_client_call(c, req, ret);
        vtpmd_client_free(c);
        if (r < 0) {
                fprintf(stderr, "vtpmctl: no answer from vtpmd at %s: %s\n", sock, cscp_strerror(r));
                return EXIT_IO;
        }
        if ((*ret)->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR) {
                fprintf(stderr, "vtpmctl: vtpmd refused (%s): %s\n", vtpmd_error_code_name((*ret)->error->code),
                        (*ret)->error->message);
                vtpmd__vtpm_response__free_unpacked(*ret, NULL);
                *ret = NULL;
                return EXIT_REFUSED;
        }
        return 0;
}

static int kind_parse(const char *s, uint32_t *ret)
{
        static const char *const names[] = {"version", "config", "layer", "process", "container", "pod", "cluster"};
        for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

static int field_parse(const char *s, uint32_t *ret)
{
        static const char *const names[] = {"event", "container_id", "name", "value", "digest"};
        for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

int main(int argc, char **argv)
{
        static const struct option gopts[] = {
                {"socket", required_argument, NULL, 's'},
                {"timeout", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        enum {
                O_RUNTIME = 0x100,
                O_RUNTIME_VERSION,
                O_CONFIG,
                O_ARG,
                O_ENV,
                O_LAYER,
                O_IMAGE,
                O_KEEP,
                O_NONCE,
                O_PCRS,
                O_PCR,
                O_KIND,
                O_FIELD,
        };
        static const struct option sopts[] = {
                {"runtime", required_argument, NULL, O_RUNTIME},
                {"runtime-version", required_argument, NULL, O_RUNTIME_VERSION},
                {"config-digest", required_argument, NULL, O_CONFIG},
                {"arg", required_argument, NULL, O_ARG},
                {"env", required_argument, NULL, O_ENV},
                {"layer", required_argument, NULL, O_LAYER},
                {"image", required_argument, NULL, O_IMAGE},
                {"keep-state", no_argument, NULL, O_KEEP},
                {"nonce", required_argument, NULL, O_NONCE},
                {"pcrs", required_argument, NULL, O_PCRS},
                {"pcr", required_argument, NULL, O_PCR},
                {"kind", required_argument, NULL, O_KIND},
                {"field", required_argument, NULL, O_FIELD},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *sock = "/run/cscp/vtpmd.sock", *cmd, *id = NULL;
        int timeout_ms = 120000, c, rc = 0;
        char *args[MAX_LIST], *env[MAX_LIST], *layers[MAX_LIST];
        size_t n_args = 0, n_env = 0, n_layers = 0, n_fields = 0;
        Vtpmd__Measurements ms = VTPMD__MEASUREMENTS__INIT;
        Vtpmd__MeasureField fields[CSCP_CM_MAX_FIELDS], *pfields[CSCP_CM_MAX_FIELDS];
        bool keep = false, have_pcr = false, have_kind = false;
        uint8_t nonce[CSCP_NONCE_MAX];
        size_t nonce_len = 0;
        const char *pcrs = NULL;
        uint32_t pcr = 0, kind = 0;
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__VtpmResponse *resp = NULL;

        while ((c = getopt_long(argc, argv, "+h", gopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        sock = optarg;
                        break;
                case 't':
                        timeout_ms = atoi(optarg) * 1000;
                        if (timeout_ms <= 0)
                                return usage_error("--timeout: '%s' is not a positive number of seconds", optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        cmd = argv[optind];
        argc -= optind;
        argv += optind;
        optind = 0; /* glibc: re-initialise getopt (permutation state included) for the command's options */
        while ((c = getopt_long(argc, argv, "h", sopts, NULL)) != -1) {
                switch (c) {
                case O_RUNTIME:
                        ms.runtime_name = optarg;
                        break;
                case O_RUNTIME_VERSION:
                        ms.runtime_version = optarg;
                        break;
                case O_CONFIG:
                        ms.config_digest = optarg;
                        break;
                case O_ARG:
                case O_ENV:
                case O_LAYER: {
                        char **v = c == O_ARG ? args : c == O_ENV ? env : layers;
                        size_t *n = c == O_ARG ? &n_args : c == O_ENV ? &n_env : &n_layers;
                        if (*n >= MAX_LIST)
                                return usage_error("too many --arg/--env/--layer values (limit %d)", MAX_LIST);
                        v[(*n)++] = optarg;
                        break;
                }
                case O_IMAGE:
                        ms.image_name = optarg;
                        break;
                case O_KEEP:
                        keep = true;
                        break;
                case O_NONCE:
                        if (cscp_hex_decode(optarg, nonce, sizeof(nonce), &nonce_len) < 0)
                                return usage_error("--nonce: '%s' is not hex of at most 64 bytes", optarg);
                        break;
                case O_PCRS:
                        pcrs = optarg;
                        break;
                case O_PCR: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v > VTPMD_CONTAINER_PCR_MAX)
                                return usage_error("--pcr: '%s' is not a PCR 0..23", optarg);
                        pcr = (uint32_t)v;
                        have_pcr = true;
                        break;
                }
                case O_KIND:
                        if (kind_parse(optarg, &kind) < 0)
                                return usage_error("--kind: unknown kind '%s'", optarg);
                        have_kind = true;
                        break;
                case O_FIELD: {
                        char *eq = strchr(optarg, '=');
                        uint32_t t;
                        if (!eq || n_fields >= CSCP_CM_MAX_FIELDS)
                                return usage_error("--field: '%s' is not NAME=VALUE (or too many fields)", optarg);
                        *eq = '\0';
                        if (field_parse(optarg, &t) < 0)
                                return usage_error("--field: unknown field name '%s'", optarg);
                        vtpmd__measure_field__init(&fields[n_fields]);
                        fields[n_fields].type = t;
                        fields[n_fields].value =
                                (ProtobufCBinaryData){.data = (uint8_t *)eq + 1, .len = strlen(eq + 1)};
                        pfields[n_fields] = &fields[n_fields];
                        n_fields++;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (strcmp(cmd, "list") != 0) {
                if (optind >= argc)
                        return usage_error("%s needs a container id", cmd);
                id = argv[optind++];
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);

        if (strcmp(cmd, "create") == 0) {
                Vtpmd__Create cr = VTPMD__CREATE__INIT;
                cr.container_id = (char *)id;
                ms.args = args;
                ms.n_args = n_args;
                ms.env = env;
                ms.n_env = n_env;
                ms.layers = layers;
                ms.n_layers = n_layers;
                cr.measurements = &ms;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_CREATE;
                req.create = &cr;
                rc = call(sock, timeout_ms, &req, &resp);
                if (rc == 0) {
                        const Vtpmd__Instance *in = resp->created->instance;
                        printf("created %s uid=%s socket=%s pid=%u from_pool=%s elapsed_us=%llu\n", in->container_id,
                               in->uid, in->socket, in->pid, in->from_pool ? "yes" : "no",
                               (unsigned long long)resp->created->elapsed_us);
                }
        } else if (strcmp(cmd, "destroy") == 0) {
                Vtpmd__Destroy de = VTPMD__DESTROY__INIT;
                de.container_id = (char *)id;
                de.keep_state = keep;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_DESTROY;
                req.destroy = &de;
                rc = call(sock, timeout_ms, &req, &resp);
                if (rc == 0) {
                        if (resp->destroyed->kept_state_dir && resp->destroyed->kept_state_dir[0])
                                printf("destroyed %s, state kept in %s\n", id, resp->destroyed->kept_state_dir);
                        else
                                printf("destroyed %s, state wiped\n", id);
                }
        } else if (strcmp(cmd, "list") == 0) {
                Vtpmd__List li = VTPMD__LIST__INIT;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_LIST;
                req.list = &li;
                rc = call(sock, timeout_ms, &req, &resp);
                if (rc == 0) {
                        for (size_t i = 0; i < resp->listed->n_instances; i++)
                                print_instance(resp->listed->instances[i], false);
                        printf("# %zu vTPM(s), limit %u, pool %u/%u ready\n", resp->listed->n_instances,
                               resp->listed->max_instances, resp->listed->pool_ready, resp->listed->pool_target);
                }
        } else if (strcmp(cmd, "status") == 0) {
                Vtpmd__Status st = VTPMD__STATUS__INIT;
                st.container_id = (char *)id;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_STATUS;
                req.status = &st;
                rc = call(sock, timeout_ms, &req, &resp);
                if (rc == 0)
                        print_instance(resp->status->instance, true);
        } else if (strcmp(cmd, "quote") == 0) {
                Vtpmd__Quote q = VTPMD__QUOTE__INIT;
                TPML_PCR_SELECTION sel;
                Cscp__PcrSelection **w = NULL;
                size_t nw = 0;
                if (!nonce_len || !pcrs)
                        return usage_error("quote needs --nonce HEX and --pcrs SEL");
                if (cscp_pcrsel_parse(pcrs, &sel) < 0 || cscp_pcrsel_to_wire(&sel, &w, &nw) < 0)
                        return usage_error("--pcrs: '%s' is not a PCR selection (e.g. sha256:0-23)", pcrs);
                q.container_id = (char *)id;
                q.nonce = (ProtobufCBinaryData){.data = nonce, .len = nonce_len};
                q.pcrs = w;
                q.n_pcrs = nw;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
                req.quote = &q;
                rc = call(sock, timeout_ms, &req, &resp);
                cscp_pcrsel_wire_free(w, nw);
                if (rc == 0 && resp->quote->quote) {
                        const Cscp__Quote *qq = resp->quote->quote;
                        print_hex("attest: ", qq->attest.data, qq->attest.len);
                        print_hex("signature: ", qq->signature.data, qq->signature.len);
                        print_hex("ak_public: ", qq->ak_public.data, qq->ak_public.len);
                        for (size_t i = 0; i < qq->n_pcrs; i++) {
                                char label[48];
                                snprintf(label, sizeof(label), "pcr 0x%04x:%u: ", qq->pcrs[i]->hash_alg,
                                         qq->pcrs[i]->index);
                                print_hex(label, qq->pcrs[i]->value.data, qq->pcrs[i]->value.len);
                        }
                }
        } else if (strcmp(cmd, "measure") == 0) {
                Vtpmd__Measure m = VTPMD__MEASURE__INIT;
                if (!have_pcr || !have_kind || n_fields == 0)
                        return usage_error("measure needs --pcr, --kind and at least one --field");
                m.container_id = (char *)id;
                m.pcr = pcr;
                m.kind = kind;
                m.fields = pfields;
                m.n_fields = n_fields;
                req.body_case = VTPMD__VTPM_REQUEST__BODY_MEASURE;
                req.measure = &m;
                rc = call(sock, timeout_ms, &req, &resp);
                if (rc == 0)
                        printf("measured into %s PCR %u\n", id, pcr);
        } else {
                return usage_error("unknown command '%s'", cmd);
        }
        if (resp)
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return rc;
}
