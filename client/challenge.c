/* SPDX-License-Identifier: Apache-2.0 */
/* cscp challenge / cscp verify: ask for evidence, check it, say what failed. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509_vfy.h>

#define LOGMODULE challenge
#include "client.h"
#include "commands.h"
#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "log.h"
#include "pcr.h"
#include "policy.h"
#include "store.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

#define DEFAULT_PCRS           "sha256:0-7,10"
#define DEFAULT_CONTAINER_HOST "sha256:0-7,10,11,15"
#define DEFAULT_CONTAINER_PCRS "sha256:0-15"

enum {
        OPT_PCRS = CONN_OPT_END,
        OPT_NONCE_SIZE,
        OPT_JSON,
        OPT_SAVE,
        OPT_ALLOW_SHA1,
        OPT_EVIDENCE,
        OPT_NONCE,
        OPT_AK_NAME,
        OPT_CONTAINER,
        OPT_CONTAINER_PCRS,
        OPT_VTPM_CA,
        OPT_POLICY,
        OPT_DB,
        OPT_NO_DB,
        OPT_HOST,
};

static void challenge_usage(FILE *f)
{
        fprintf(f,
                "Usage: cscp challenge --server HOST:PORT [--container ID] [OPTIONS]\n"
                "Sends a fresh nonce to attestd and verifies the evidence it returns, each step a named claim:\n"
                "TLS peer; host AK enrolled (cscp enroll) or pinned; host quote signature, magic, type, PCR\n"
                "selection and digest; extraData = Merkle root of the batch holding this challenge's leaf;\n"
                "host PCRs = replay of the host logs; with --container: the container quote (extraData = the\n"
                "nonce), container PCRs = replay of its log, the attested vtpm-bind record naming its vAK and\n"
                "vEK, the vEK certificate; then the TPM clocks against the last challenge (store) and the policy.\n"
                "A TDX host (attestd --rot tdx) answers with a TD quote instead: with --tdx-root its PCK chain,\n"
                "REPORTDATA = the batch root, RTMR0..3 = replay of its CCEL and host logs (docs/tdx.md).\n"
                "\n"
                "  --server HOST:PORT       attestd to challenge ([IPv6]:PORT for IPv6)\n"
                "  --ca FILE                CA bundle the server certificate must chain to\n"
                "  --cert FILE, --key FILE  client certificate and key (attestd requires them by default)\n"
                "  --insecure-plaintext     no TLS (only against an attestd started the same way)\n"
                "  --pcrs SEL               host PCRs to quote (default " DEFAULT_PCRS ", with --container\n"
                "                           " DEFAULT_CONTAINER_HOST "), e.g. sha256:0-7,10,11,15+sha1:0\n"
                "  --container ID           also challenge this container's vTPM\n"
                "  --container-pcrs SEL     vTPM PCRs to quote (default " DEFAULT_CONTAINER_PCRS ")\n"
                "  --vtpm-ca FILE           vtpmd's vTPM manufacturer CA (PEM): the vEK certificate must chain to it\n"
                "  --policy FILE            appraisal policy (docs/policy.md); without it no reference values\n"
                "  --tdx-root FILE          accept a TDX host: the trust anchor (PEM, the Intel SGX Root CA) its\n"
                "                           quote's PCK chain must reach; also asks for the CCEL (LOG_CCEL).\n"
                "                           Without it TDX evidence is an error (exit 2)\n"
                "  --tdx-collateral DIR     TCB info / QE identity collateral (docs/tdx.md); without it the TCB\n"
                "                           status is not evaluated (a fact says so)\n"
                "  --tdx-crl FILE           a CRL (PEM or DER) for the PCK chain; repeatable (at most %d)\n"
                "  --tdx-allow-tcb STATUS   accept this TCB status besides UpToDate (e.g. SWHardeningNeeded);\n"
                "                           repeatable (at most %d)\n"
                "  --at TIME                verify the TDX certificates and collateral at TIME: YYYY-MM-DD,\n"
                "                           YYYY-MM-DDTHH:MM:SSZ or @EPOCH (default: now)\n"
                "  --db FILE                the challenger's store: enrolled AKs, last TPM clocks, IMA checkpoints,\n"
                "                           verdict history (default $XDG_STATE_HOME/cscp/store.db or\n"
                "                           ~/.local/state/cscp/store.db)\n"
                "  --no-db                  no store: the host AK must be pinned with --ak-name, clocks are not\n"
                "                           compared and IMA lists are sent whole\n"
                "  --nonce-size N           nonce bytes, %d..%d (default %d)\n"
                "  --timeout SEC            connect/read/write timeout (default 30)\n"
                "  --ak-name HEX            the host AK Name you trust, instead of the one enrolled in the store\n"
                "  --allow-sha1             accept SHA-1 quote signatures and PCR digests\n"
                "  --save-evidence FILE     keep the evidence (for cscp verify)\n"
                "  --json                   print the verdict as JSON\n"
                "  -h, --help               this text\n"
                "\n"
                "Exit status: 0 trusted, 1 untrusted (every failed claim is named), 2 error.\n"
                "A host whose AK is neither enrolled nor pinned is untrusted (claim host-ak-enrolled).\n",
                TDX_MAX_CRLS, TDX_MAX_ALLOWED, CSCP_NONCE_MIN, CSCP_NONCE_MAX, CSCP_NONCE_DEFAULT);
}

static void verify_usage(FILE *f)
{
        fprintf(f,
                "Usage: cscp verify --evidence FILE --nonce HEX [OPTIONS]\n"
                "Verifies evidence saved by 'cscp challenge --save-evidence' against the nonce it answered,\n"
                "with the same claims as cscp challenge.\n"
                "\n"
                "  --evidence FILE          the saved evidence\n"
                "  --nonce HEX              the challenge's nonce (%d..%d bytes)\n"
                "  --pcrs SEL               host PCRs the quote must cover (default: whatever it covers)\n"
                "  --container ID           the container the challenge asked for\n"
                "  --container-pcrs SEL     vTPM PCRs the container quote must cover (default: whatever it covers)\n"
                "  --vtpm-ca FILE           vtpmd's vTPM manufacturer CA (PEM)\n"
                "  --policy FILE            appraisal policy (docs/policy.md)\n"
                "  --tdx-root FILE          accept a TDX host: the trust anchor (PEM, the Intel SGX Root CA) its\n"
                "                           quote's PCK chain must reach.\n"
                "                           Without it TDX evidence is an error (exit 2)\n"
                "  --tdx-collateral DIR     TCB info / QE identity collateral (docs/tdx.md); without it the TCB\n"
                "                           status is not evaluated (a fact says so)\n"
                "  --tdx-crl FILE           a CRL (PEM or DER) for the PCK chain; repeatable (at most %d)\n"
                "  --tdx-allow-tcb STATUS   accept this TCB status besides UpToDate (e.g. SWHardeningNeeded);\n"
                "                           repeatable (at most %d)\n"
                "  --at TIME                verify the TDX certificates and collateral at TIME: YYYY-MM-DD,\n"
                "                           YYYY-MM-DDTHH:MM:SSZ or @EPOCH (default: now)\n"
                "  --ak-name HEX            the host AK Name you trust\n"
                "  --db FILE --host NAME    take the AK enrolled for NAME from this store, and compare and record\n"
                "                           the TPM clocks there (an old evidence then fails host-clock)\n"
                "  --allow-sha1             accept SHA-1 quote signatures and PCR digests\n"
                "  --json                   print the verdict as JSON\n"
                "  -h, --help               this text\n"
                "\n"
                "Exit status: 0 trusted, 1 untrusted, 2 error.\n",
                CSCP_NONCE_MIN, CSCP_NONCE_MAX, TDX_MAX_CRLS, TDX_MAX_ALLOWED);
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

/* Whether any bank of sel selects PCR pcr. */
static bool pcrsel_has(const TPML_PCR_SELECTION *sel, unsigned pcr)
{
        for (uint32_t i = 0; i < sel->count; i++)
                if (pcr / 8 < sel->pcrSelections[i].sizeofSelect &&
                    (sel->pcrSelections[i].pcrSelect[pcr / 8] & (1u << (pcr % 8))))
                        return true;
        return false;
}

/* What both challenge and verify check against: the store, the policy, the vTPM CA, the host AK. */
typedef struct vctx {
        cscp_store_t *store;
        cscp_policy_t *policy;
        X509_STORE *vtpm_ca;
        uint8_t ak_name[sizeof(TPMU_NAME)];
        size_t ak_name_len;
        bool ak_enrolled;
} vctx_t;

static void vctx_close(vctx_t *c)
{
        cscp_store_close(c->store);
        cscp_policy_free(c->policy);
        X509_STORE_free(c->vtpm_ca);
        memset(c, 0, sizeof(*c));
}

/* Opens what the options name; on failure prints why and returns 2 (usage/setup error). */
static int vctx_open(vctx_t *c, const char *cmd, const char *db, bool no_db, const char *policy, const char *vtpm_ca,
                     const char *host)
{
        char err[512], *path = NULL;
        int r;

        if (policy) {
                r = cscp_policy_load(policy, &c->policy, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "cscp %s: policy %s: %s\n", cmd, policy, err[0] ? err : cscp_strerror(r));
                        return 2;
                }
        }
        if (vtpm_ca) {
                c->vtpm_ca = X509_STORE_new();
                if (!c->vtpm_ca || X509_STORE_load_file(c->vtpm_ca, vtpm_ca) != 1) {
                        fprintf(stderr, "cscp %s: --vtpm-ca %s: not a readable PEM certificate bundle\n", cmd, vtpm_ca);
                        return 2;
                }
        }
        if (!no_db) {
                if (!db) {
                        r = cscp_store_default_path(&path);
                        if (r < 0) {
                                fprintf(stderr, "cscp %s: no default store path (%s): give --db FILE or --no-db\n", cmd,
                                        cscp_strerror(r));
                                return 2;
                        }
                        db = path;
                }
                r = cscp_store_open(db, &c->store);
                if (r < 0) {
                        fprintf(stderr, "cscp %s: store %s: %s%s%s\n", cmd, db, cscp_strerror(r), c->store ? ": " : "",
                                c->store ? cscp_store_error(c->store) : "");
                        free(path);
                        return 2;
                }
                free(path);
        }
        if (!c->ak_name_len && c->store && host) {
                size_t len = sizeof(c->ak_name);
                r = cscp_store_enrolled_ak(c->store, host, c->ak_name, &len);
                if (r == 0) {
                        c->ak_name_len = len;
                        c->ak_enrolled = true;
                } else if (r != -ENOENT) {
                        fprintf(stderr, "cscp %s: store: %s (%s)\n", cmd, cscp_strerror(r), cscp_store_error(c->store));
                        return 2;
                }
        }
        return 0;
}

/* What the verifier holds the evidence to. */
static cscp_expect_t vctx_expect(const vctx_t *c, const uint8_t *nonce, size_t nonce_len,
                                 const TPML_PCR_SELECTION *host_sel, const char *container,
                                 const TPML_PCR_SELECTION *container_sel, const char *host, bool allow_sha1,
                                 const char *vtpm_ca_name)
{
        return (cscp_expect_t){.nonce = nonce,
                               .nonce_len = nonce_len,
                               .host_pcrs = host_sel,
                               .host_ak_name = c->ak_name_len ? c->ak_name : NULL,
                               .host_ak_name_len = c->ak_name_len,
                               .host_ak_enrolled = c->ak_enrolled,
                               .allow_sha1 = allow_sha1,
                               .container_id = container,
                               .container_pcrs = container_sel,
                               .vtpm_ca = c->vtpm_ca,
                               .vtpm_ca_name = vtpm_ca_name,
                               .policy = c->policy,
                               .store = c->store,
                               .host = host};
}

/* Records the verdict in the store's history; a failure there is reported, not fatal. */
static void record_verdict(vctx_t *c, const char *host, const char *container, const cscp_verdict_t *v)
{
        char *json = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (!c->store)
                return;
        f = open_memstream(&json, &len);
        if (!f)
                return;
        (void)cscp_verdict_print_json(v, f);
        if (fclose(f) != 0) {
                free(json);
                return;
        }
        r = cscp_store_verdict_add(c->store, host, container, (int)cscp_verdict_result(v), json);
        if (r < 0)
                fprintf(stderr, "cscp: warning: verdict not recorded in the store: %s\n", cscp_strerror(r));
        free(json);
}

/* The verification options challenge and verify share. */
typedef struct vopts {
        const char *pcrs, *container, *cpcrs, *vtpm_ca, *policy, *db;
        bool json, allow_sha1;
        tdx_cli_t tdx; /* TDX host */
} vopts_t;

#define VERIFY_LONG_OPTIONS                                                                                           \
        {"pcrs", required_argument, NULL, OPT_PCRS}, {"json", no_argument, NULL, OPT_JSON},                           \
                {"allow-sha1", no_argument, NULL, OPT_ALLOW_SHA1}, {"ak-name", required_argument, NULL, OPT_AK_NAME}, \
                {"container", required_argument, NULL, OPT_CONTAINER},                                                \
                {"container-pcrs", required_argument, NULL, OPT_CONTAINER_PCRS},                                      \
                {"vtpm-ca", required_argument, NULL, OPT_VTPM_CA}, {"policy", required_argument, NULL, OPT_POLICY},   \
                TDX_LONG_OPTIONS,                                                                                     \
        {                                                                                                             \
                "db", required_argument, NULL, OPT_DB                                                                 \
        }

/* 1: c was a verification option (stored), 0: not one, -1: a bad value (said on stderr). */
static int verify_opt(int c, const char *arg, vopts_t *o, vctx_t *vc, const char *cmd)
{
        int r = tdx_cli_opt(c, arg, &o->tdx, cmd);

        if (r != 0)
                return r;
        switch (c) {
        case OPT_PCRS:
                o->pcrs = arg;
                return 1;
        case OPT_JSON:
                o->json = true;
                return 1;
        case OPT_ALLOW_SHA1:
                o->allow_sha1 = true;
                return 1;
        case OPT_AK_NAME:
                if (cscp_hex_decode(arg, vc->ak_name, sizeof(vc->ak_name), &vc->ak_name_len) < 0 ||
                    vc->ak_name_len < 2) {
                        fail_usage(cmd, "--ak-name: '%s' is not a TPM Name in hex", arg);
                        return -1;
                }
                return 1;
        case OPT_CONTAINER:
                o->container = arg;
                return 1;
        case OPT_CONTAINER_PCRS:
                o->cpcrs = arg;
                return 1;
        case OPT_VTPM_CA:
                o->vtpm_ca = arg;
                return 1;
        case OPT_POLICY:
                o->policy = arg;
                return 1;
        case OPT_DB:
                o->db = arg;
                return 1;
        default:
                return 0;
        }
}

/* The TDX options go with --tdx-root; -1 (said on stderr) when one is given without it. */
static int tdx_opts_check(const vopts_t *o, const char *cmd)
{
        if (o->tdx.root)
                return 0;
        if (o->tdx.collateral || o->tdx.n_crls || o->tdx.n_allowed || o->tdx.have_at) {
                fail_usage(cmd, "%s",
                           "--tdx-collateral, --tdx-crl, --tdx-allow-tcb and --at verify a TDX host: "
                           "they need --tdx-root");
                return -1;
        }
        return 0;
}

/* The TDX part of the expectation. */
static void tdx_expect(cscp_expect_t *want, const vopts_t *o)
{
        want->tdx_root = o->tdx.root;
        want->tdx_at = o->tdx.have_at ? o->tdx.at : 0;
        want->tdx_crls = o->tdx.crls;
        want->n_tdx_crls = o->tdx.n_crls;
        want->tdx_collateral_dir = o->tdx.collateral;
        want->tdx_tcb_allowed = o->tdx.allowed;
        want->n_tdx_tcb_allowed = o->tdx.n_allowed;
}

int cmd_challenge(int argc, char **argv)
{
        static const struct option opts[] = {
                CONN_LONG_OPTIONS,
                VERIFY_LONG_OPTIONS,
                {"nonce-size", required_argument, NULL, OPT_NONCE_SIZE},
                {"save-evidence", required_argument, NULL, OPT_SAVE},
                {"no-db", no_argument, NULL, OPT_NO_DB},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        cscp_client_opts_t co = {0};
        vopts_t vo = {.cpcrs = DEFAULT_CONTAINER_PCRS};
        const char *save = NULL;
        bool no_db = false;
        vctx_t vc = {0};
        uint64_t ima_offset = 0;
        Cscp__LogRequest lr[7], *plr[7];
        size_t n_lr = 0;
        long nonce_size = CSCP_NONCE_DEFAULT;
        TPML_PCR_SELECTION sel, csel;
        Cscp__PcrSelection **wcsel = NULL;
        size_t n_wcsel = 0;
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
                r = conn_opt(c, optarg, &co, "challenge");
                if (r == 0)
                        r = verify_opt(c, optarg, &vo, &vc, "challenge");
                if (r < 0)
                        return 2;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_NONCE_SIZE:
                        errno = 0;
                        nonce_size = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg)
                                return fail_usage("challenge", "--nonce-size: '%s' is not a number", optarg);
                        break;
                case OPT_SAVE:
                        save = optarg;
                        break;
                case OPT_NO_DB:
                        no_db = true;
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
        const char *pcrs = vo.pcrs, *container = vo.container, *cpcrs = vo.cpcrs, *vtpm_ca = vo.vtpm_ca;
        const char *policy = vo.policy, *db = vo.db;
        bool json = vo.json, allow_sha1 = vo.allow_sha1;
        if (conn_opts_check(&co, "challenge") < 0 || tdx_opts_check(&vo, "challenge") < 0)
                return 2;
        if (nonce_size < CSCP_NONCE_MIN || nonce_size > CSCP_NONCE_MAX) {
                fprintf(stderr,
                        "cscp challenge: --nonce-size %ld refused: a nonce must be %d..%d bytes (%d bits at least)\n",
                        nonce_size, CSCP_NONCE_MIN, CSCP_NONCE_MAX, CSCP_NONCE_MIN * 8);
                return 2;
        }
        if (!pcrs)
                pcrs = container ? DEFAULT_CONTAINER_HOST : DEFAULT_PCRS;
        if (cscp_pcrsel_parse(pcrs, &sel) < 0)
                return fail_usage("challenge", "--pcrs: '%s' is not a PCR selection like sha256:0-7,10", pcrs);
        if (container && (!container[0] || strlen(container) > 1024))
                return fail_usage("challenge", "%s", "--container: an empty or over-long container id");
        if (cscp_pcrsel_parse(cpcrs, &csel) < 0)
                return fail_usage("challenge", "--container-pcrs: '%s' is not a PCR selection like sha256:0-15", cpcrs);
        if (db && no_db)
                return fail_usage("challenge", "%s", "--db and --no-db exclude each other");
        r = vctx_open(&vc, "challenge", db, no_db, policy, vtpm_ca, co.server);
        if (r) {
                vctx_close(&vc);
                return r;
        }
        r = cscp_evidence_ima_offset(vc.store, co.server, &ima_offset);
        if (r < 0) {
                fprintf(stderr, "cscp challenge: store: %s\n", cscp_strerror(r));
                vctx_close(&vc);
                return 2;
        }

        if (cscp_nonce_draw(nonce, (size_t)nonce_size) < 0) {
                fprintf(stderr, "cscp challenge: cannot draw a nonce from the OpenSSL RNG\n");
                vctx_close(&vc);
                return 2;
        }
        cscp_verdict_init(&v);
        cscp_verdict_fact(&v, "server", "%s", co.server);
        if (container)
                cscp_verdict_fact(&v, "container", "%s", container);
        r = cscp_conn_open(&co, &conn, err, sizeof(err));
        if (r == CSCP_E_TLS_PEER) {
                cscp_verdict_claim(&v, "tls-peer", false, "%s", err);
                record_verdict(&vc, co.server, container, &v);
                vctx_close(&vc);
                return finish(&v, json);
        }
        if (r < 0) {
                fprintf(stderr, "cscp challenge: %s\n", err[0] ? err : cscp_strerror(r));
                cscp_verdict_clear(&v);
                vctx_close(&vc);
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
        if (container) {
                r = cscp_pcrsel_to_wire(&csel, &wcsel, &n_wcsel);
                if (r < 0)
                        goto out;
                ch.container_id = (char *)container;
                ch.container_pcrs = wcsel;
                ch.n_container_pcrs = n_wcsel;
        }
        {
                /* Every log that explains a quoted PCR; IMA from the store's checkpoint on. */
                static const Cscp__LogKind kinds[] = {
                        CSCP__LOG_KIND__LOG_BOOT,     CSCP__LOG_KIND__LOG_SYSTEMD_CEL,
                        CSCP__LOG_KIND__LOG_IMA,      CSCP__LOG_KIND__LOG_HOST_PROC_CEL,
                        CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_CONTAINER_CEL,
                        CSCP__LOG_KIND__LOG_CCEL,
                };
                for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                        if (kinds[i] == CSCP__LOG_KIND__LOG_CONTAINER_CEL && !container)
                                continue;
                        /* The CCEL explains a TD quote's RTMRs: asked for when a TDX host is accepted. */
                        if (kinds[i] == CSCP__LOG_KIND__LOG_CCEL && !vo.tdx.root)
                                continue;
                        /* The IMA list can be large: only when PCR 10 is quoted (it explains nothing else). */
                        if (kinds[i] == CSCP__LOG_KIND__LOG_IMA && !pcrsel_has(&sel, 10))
                                continue;
                        cscp__log_request__init(&lr[n_lr]);
                        lr[n_lr].kind = kinds[i];
                        lr[n_lr].offset = kinds[i] == CSCP__LOG_KIND__LOG_IMA ? ima_offset : 0;
                        plr[n_lr] = &lr[n_lr];
                        n_lr++;
                }
                ch.logs = plr;
                ch.n_logs = n_lr;
        }
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
        cscp_expect_t want = vctx_expect(&vc, nonce, (size_t)nonce_size, &sel, container, container ? &csel : NULL,
                                         co.server, allow_sha1, vtpm_ca);
        tdx_expect(&want, &vo);
        r = cscp_evidence_verify(resp->evidence, &want, &v);
        if (r < 0)
                cscp_verdict_error(&v, "%s", cscp_strerror(r));
        record_verdict(&vc, co.server, container, &v);
        ret = finish(&v, json);
out:
        if (ret == 2)
                cscp_verdict_clear(&v);
        OPENSSL_cleanse(nonce, sizeof(nonce));
        cscp_pcrsel_wire_free(wsel, n_wsel);
        cscp_pcrsel_wire_free(wcsel, n_wcsel);
        vctx_close(&vc);
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
                VERIFY_LONG_OPTIONS,
                {"host", required_argument, NULL, OPT_HOST},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *path = NULL, *nonce_hex = NULL, *host = NULL;
        vopts_t vo = {0};
        vctx_t vc = {0};
        TPML_PCR_SELECTION sel, csel;
        uint8_t nonce[CSCP_NONCE_MAX];
        size_t nonce_len;
        Cscp__Frame *f = NULL;
        cscp_verdict_t v;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                r = verify_opt(c, optarg, &vo, &vc, "verify");
                if (r < 0)
                        return 2;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_EVIDENCE:
                        path = optarg;
                        break;
                case OPT_NONCE:
                        nonce_hex = optarg;
                        break;
                case OPT_HOST:
                        host = optarg;
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
        const char *pcrs = vo.pcrs, *container = vo.container, *cpcrs = vo.cpcrs, *vtpm_ca = vo.vtpm_ca;
        const char *policy = vo.policy, *db = vo.db;
        bool json = vo.json, allow_sha1 = vo.allow_sha1;
        if (!path || !nonce_hex)
                return fail_usage("verify", "%s", "--evidence FILE and --nonce HEX are required");
        if (tdx_opts_check(&vo, "verify") < 0)
                return 2;
        if (cscp_hex_decode(nonce_hex, nonce, sizeof(nonce), &nonce_len) < 0 || cscp_nonce_check_len(nonce_len) < 0) {
                fprintf(stderr, "cscp verify: --nonce must be %d..%d bytes of hex\n", CSCP_NONCE_MIN, CSCP_NONCE_MAX);
                return 2;
        }
        if (pcrs && cscp_pcrsel_parse(pcrs, &sel) < 0)
                return fail_usage("verify", "--pcrs: '%s' is not a PCR selection like sha256:0-7,10", pcrs);
        if (cpcrs && cscp_pcrsel_parse(cpcrs, &csel) < 0)
                return fail_usage("verify", "--container-pcrs: '%s' is not a PCR selection like sha256:0-15", cpcrs);
        if (!db != !host)
                return fail_usage("verify", "%s", "--db and --host go together");
        r = vctx_open(&vc, "verify", db, !db, policy, vtpm_ca, host);
        if (r) {
                vctx_close(&vc);
                return r;
        }
        r = cscp_evidence_load(path, CSCP_FRAME_MAX_LIMIT, &f);
        if (r < 0) {
                fprintf(stderr, "cscp verify: cannot read evidence from %s: %s\n", path, cscp_strerror(r));
                vctx_close(&vc);
                return 2;
        }
        cscp_verdict_init(&v);
        cscp_verdict_fact(&v, "evidence", "%s", path);
        cscp_expect_t want = vctx_expect(&vc, nonce, nonce_len, pcrs ? &sel : NULL, container, cpcrs ? &csel : NULL,
                                         host, allow_sha1, vtpm_ca);
        tdx_expect(&want, &vo);
        r = cscp_evidence_verify(f->evidence, &want, &v);
        if (r < 0)
                cscp_verdict_error(&v, "%s", cscp_strerror(r));
        cscp__frame__free_unpacked(f, NULL);
        vctx_close(&vc);
        return finish(&v, json);
}
