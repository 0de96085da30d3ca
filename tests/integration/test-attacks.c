/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attacks of issue 6 / design.md §3, each against the real rig (host
 * swtpm behind tpm2-abrmd, vtpmd with swtpm vTPMs, attestd) and the real
 * verifier, each detected and named in the verdict (docs/threat-model.md maps
 * every row to a test here):
 *
 *  - replay: old evidence for a new nonce, an old host quote beside a fresh
 *    container quote, old evidence presented after newer (clock);
 *  - masquerade: container B's evidence for A; B's quote inside A's evidence
 *    re-signed by a compromised host (it holds the host AK); a vTPM that was
 *    never bound; a bind record forged into the log but not the PCR; one
 *    that extends no PCR at all (NV index, CC register); another host's AK;
 *  - tampering: one flipped byte in each quote, log, proof, certificate;
 *  - reset: a vTPM restarted, the host TPM restarted, a clock going back;
 *  - downgrade: a SHA-1-only quote for a SHA-256 request; plaintext.
 *
 * The "compromised host" quotes use attestd's own AK through the host TPM:
 * what root on the host can do. Evidence is modified on copies (pack, unpack).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "cel.h"
#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "merkle.h"
#include "pcr.h"
#include "quote.h"
#include "rig.h"
#include "store.h"
#include "tpm.h"
#include "util.h"

#define CTR_A     "ctr-a"
#define CTR_B     "ctr-b"
#define HOST_PCRS "sha256:0-7,10,11,15"
#define CONT_PCRS "sha256:0-15"
#define TOOL_MS   120000

static char *db;            /* the challenger's store */
static X509_STORE *vtpm_ca; /* vtpmd's manufacturer CA */

/* ---- setup --------------------------------------------------------------------- */

static int run_cscp(char **out, const char *const *args)
{
        char *argv[40];
        size_t n = 0;
        int code = -1;
        char *o = NULL, *e = NULL;

        argv[n++] = harness_path(harness_build_dir(), "cscp");
        for (; *args && n < 39; args++)
                argv[n++] = (char *)*args;
        argv[n] = NULL;
        cr_assert_eq(harness_run(argv, TOOL_MS, &code, &o, &e), 0, "cscp did not run");
        harness_keep(o);
        harness_keep(e);
        if (out)
                *out = o;
        if (code == 2)
                cr_log_info("cscp stderr: %s", e);
        return code;
}

static void enroll(void)
{
        const char *const *tls = rig_tls_args();
        const char *args[16] = {"enroll"};
        size_t n = 1;
        char *out = NULL;

        for (; *tls; tls++)
                args[n++] = *tls;
        args[n++] = "--tofu"; /* the rig's host swtpm has no EK certificate: enrollment's own tests cover that */
        args[n++] = "--db";
        args[n++] = db;
        args[n] = NULL;
        cr_assert_eq(run_cscp(&out, args), 0, "enroll failed: %s", out);
}

static void setup(void)
{
        rig_setup(NULL);
        rig_create_container(CTR_A);
        rig_create_container(CTR_B);
        rig_start_attestd(NULL);
        db = harness_path(rig.dir, "store.db");
        enroll();
        vtpm_ca = X509_STORE_new();
        cr_assert(vtpm_ca && X509_STORE_load_file(vtpm_ca, harness_path(rig.pki, "vtpm-ca.pem")) == 1);
}

static void teardown(void)
{
        X509_STORE_free(vtpm_ca);
        vtpm_ca = NULL;
        rig_teardown();
}

TestSuite(attacks, .init = setup, .fini = teardown, .timeout = 300);

/* ---- challenges and verification ------------------------------------------------ */

typedef struct answer {
        uint8_t nonce[32];
        Cscp__Frame *frame; /* owns the evidence */
        Cscp__Evidence *ev;
} answer_t;

/* One challenge for container (NULL: host only) with every log; host_sel overrides HOST_PCRS. */
static void challenge(const char *container, const char *host_sel, answer_t *ret)
{
        static const Cscp__LogKind kinds[] = {CSCP__LOG_KIND__LOG_BOOT, CSCP__LOG_KIND__LOG_IMA,
                                              CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_CONTAINER_CEL};
        TPML_PCR_SELECTION hs, cs;
        Cscp__PcrSelection **wh = NULL, **wc = NULL;
        size_t nh = 0, nc = 0;
        Cscp__LogRequest lr[4], *plr[4];
        Cscp__Frame req = CSCP__FRAME__INIT;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        cscp_conn_t *c = rig_connect();
        char err[512];

        memset(ret, 0, sizeof(*ret));
        cr_assert_eq(cscp_nonce_draw(ret->nonce, sizeof(ret->nonce)), 0);
        cr_assert_eq(cscp_pcrsel_parse(host_sel ? host_sel : HOST_PCRS, &hs), 0);
        cr_assert_eq(cscp_pcrsel_parse(CONT_PCRS, &cs), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&hs, &wh, &nh), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&cs, &wc, &nc), 0);
        for (size_t i = 0; i < 4; i++) {
                cscp__log_request__init(&lr[i]);
                lr[i].kind = kinds[i];
                plr[i] = &lr[i];
        }
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = ret->nonce, .len = sizeof(ret->nonce)};
        ch.host_pcrs = wh;
        ch.n_host_pcrs = nh;
        if (container) {
                ch.container_id = (char *)container;
                ch.container_pcrs = wc;
                ch.n_container_pcrs = nc;
        }
        ch.logs = plr;
        ch.n_logs = container ? 4 : 3;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &ret->frame, err, sizeof(err)), 0, "%s", err);
        cscp_pcrsel_wire_free(wh, nh);
        cscp_pcrsel_wire_free(wc, nc);
        cscp_conn_free(c);
        cr_assert_eq(ret->frame->body_case, CSCP__FRAME__BODY_EVIDENCE, "attestd answered %s",
                     ret->frame->body_case == CSCP__FRAME__BODY_ERROR ? ret->frame->error->message : "?");
        ret->ev = ret->frame->evidence;
}

static void answer_free(answer_t *a)
{
        if (a->frame)
                cscp__frame__free_unpacked(a->frame, NULL);
        a->frame = NULL;
        a->ev = NULL;
}

/* An independent, freeable copy of an evidence (pack + unpack). */
static Cscp__Frame *copy(const Cscp__Evidence *ev)
{
        Cscp__Frame f = CSCP__FRAME__INIT, *g = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;

        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = (Cscp__Evidence *)ev;
        cr_assert_eq(cscp_frame_pack(&f, CSCP_FRAME_MAX_LIMIT, &buf, &len), 0);
        cr_assert_eq(cscp_frame_unpack(buf + CSCP_FRAME_HEADER, len - CSCP_FRAME_HEADER, &g), 0);
        free(buf);
        return g;
}

typedef struct vopts {
        const char *container;
        const char *host_sel;
        bool no_store;
        const cscp_policy_t *policy;
} vopts_t;

/* Verifies with the enrolled AK, the vTPM CA and the store; v must be cleared by the caller. */
static cscp_verdict_result_t verify(const Cscp__Evidence *ev, const uint8_t *nonce, const vopts_t *o, cscp_verdict_t *v)
{
        TPML_PCR_SELECTION hs, cs;
        uint8_t ak[sizeof(TPMU_NAME)];
        size_t ak_len = sizeof(ak);
        cscp_store_t *s = NULL;

        cr_assert_eq(cscp_pcrsel_parse(o->host_sel ? o->host_sel : HOST_PCRS, &hs), 0);
        cr_assert_eq(cscp_pcrsel_parse(CONT_PCRS, &cs), 0);
        cr_assert_eq(cscp_store_open(db, &s), 0);
        cr_assert_eq(cscp_store_enrolled_ak(s, rig.ad.addr, ak, &ak_len), 0, "not enrolled");
        cscp_expect_t want = {.nonce = nonce,
                              .nonce_len = 32,
                              .host_pcrs = &hs,
                              .host_ak_name = ak,
                              .host_ak_name_len = ak_len,
                              .host_ak_enrolled = true,
                              .container_id = o->container,
                              .container_pcrs = o->container ? &cs : NULL,
                              .vtpm_ca = vtpm_ca,
                              .vtpm_ca_name = "vtpm-ca.pem",
                              .policy = o->policy,
                              .store = o->no_store ? NULL : s,
                              .host = rig.ad.addr};
        cscp_verdict_init(v);
        cr_assert_eq(cscp_evidence_verify(ev, &want, v), 0);
        cscp_store_close(s);
        return cscp_verdict_result(v);
}

static void dump(const cscp_verdict_t *v)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cscp_verdict_print(v, f);
        fclose(f);
        cr_log_info("%s", buf);
        free(buf);
}

static void assert_claim(const cscp_verdict_t *v, const char *name, bool pass)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);
        if (!c || c->pass != pass)
                dump(v);
        cr_assert_not_null(c, "no claim %s", name);
        cr_assert_eq(c->pass, pass, "claim %s: %s (expected %s)", name, c->detail, pass ? "pass" : "fail");
}

/* Untrusted, with `name` among the failed claims. */
static void assert_caught(const Cscp__Evidence *ev, const uint8_t *nonce, const vopts_t *o, const char *name)
{
        cscp_verdict_t v;
        cscp_verdict_result_t r = verify(ev, nonce, o, &v);

        if (r != CSCP_VERDICT_UNTRUSTED)
                dump(&v);
        cr_assert_eq(r, CSCP_VERDICT_UNTRUSTED, "attack not caught (wanted %s)", name);
        assert_claim(&v, name, false);
        cscp_verdict_clear(&v);
}

static void assert_trusted(const Cscp__Evidence *ev, const uint8_t *nonce, const vopts_t *o)
{
        cscp_verdict_t v;
        cscp_verdict_result_t r = verify(ev, nonce, o, &v);

        if (r != CSCP_VERDICT_TRUSTED)
                dump(&v);
        cr_assert_eq(r, CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);
}

/* Writes a real evidence as a fuzz seed ($BUILD/fuzz-seeds/evidence/NAME). */
static void seed(const Cscp__Evidence *ev, const char *name)
{
        Cscp__Frame f = CSCP__FRAME__INIT;
        uint8_t *buf = NULL;
        size_t len = 0;
        char *d = harness_path(harness_path(harness_build_dir(), "fuzz-seeds"), "evidence");

        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = (Cscp__Evidence *)ev;
        (void)mkdir(harness_path(harness_build_dir(), "fuzz-seeds"), 0755);
        (void)mkdir(d, 0755);
        cr_assert_eq(cscp_frame_pack(&f, CSCP_FRAME_MAX_LIMIT, &buf, &len), 0);
        cr_assert_eq(
                cscp_file_write_atomic(harness_path(d, name), buf + CSCP_FRAME_HEADER, len - CSCP_FRAME_HEADER, 0644),
                0);
        free(buf);
}

/* ---- the compromised host ------------------------------------------------------- */

static void set_bytes(ProtobufCBinaryData *b, const uint8_t *data, size_t len)
{
        free(b->data);
        b->data = malloc(len ? len : 1);
        cr_assert(b->data);
        memcpy(b->data, data, len);
        b->len = len;
}

/*
 * What root on the host can do: a host quote with attestd's own AK over the
 * leaf of (nonce, id, ev's container quote), the evidence's batch proof set to
 * that single leaf. Every binding the host TPM gives is then genuine; only the
 * host log and the vTPM can tell the lie.
 */
static void resign_host_quote(Cscp__Evidence *ev, const uint8_t *nonce, const char *id)
{
        cscp_tpm_t *t = NULL;
        cscp_tpm_quote_t q = {0};
        TPML_PCR_SELECTION sel;
        TPM2B_NAME vak = {0};
        uint8_t leaf[32];
        const uint8_t *pub = NULL;
        size_t pub_len = 0;
        bool created = false;

        cr_assert_eq(
                cscp_tpm_public_name(ev->container_quote->ak_public.data, ev->container_quote->ak_public.len, &vak), 0);
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 32, id, ev->container_quote->attest.data,
                                      ev->container_quote->attest.len, vak.name, vak.size, leaf),
                     0);
        cr_assert_eq(cscp_pcrsel_parse(HOST_PCRS, &sel), 0);
        cr_assert_eq(cscp_tpm_open(RIG_TABRMD_TCTI, &t), 0);
        /* attestd's own AK, from its state directory: the key the challenger enrolled. */
        cr_assert_eq(cscp_tpm_ak_load_or_create(t, rig.ad.state_dir, CSCP_KEY_ECC_P256, &created), 0);
        cr_assert(!created, "no AK in attestd's state directory %s", rig.ad.state_dir);
        cr_assert_eq(cscp_tpm_ak_public(t, &pub, &pub_len), 0);
        cr_assert(pub_len == ev->host_quote->ak_public.len && memcmp(pub, ev->host_quote->ak_public.data, pub_len) == 0,
                  "the re-signing AK is not attestd's");
        cr_assert_eq(cscp_tpm_quote(t, leaf, sizeof(leaf), &sel, &q), 0);
        set_bytes(&ev->host_quote->attest, q.attest, q.attest_len);
        set_bytes(&ev->host_quote->signature, q.sig, q.sig_len);
        cr_assert_eq(ev->host_quote->n_pcrs, q.n_pcrs);
        for (size_t i = 0; i < q.n_pcrs; i++)
                set_bytes(&ev->host_quote->pcrs[i]->value, q.pcrs[i].value, q.pcrs[i].size);
        ev->host_batch->leaf_index = 0;
        ev->host_batch->leaf_count = 1;
        for (size_t i = 0; i < ev->host_batch->n_siblings; i++)
                free(ev->host_batch->siblings[i].data);
        ev->host_batch->n_siblings = 0;
        cscp_tpm_quote_clear(&q);
        cscp_tpm_free(t);
}

static Cscp__Log *log_of(Cscp__Evidence *ev, Cscp__LogKind kind)
{
        for (size_t i = 0; i < ev->n_logs; i++)
                if (ev->logs[i]->kind == kind)
                        return ev->logs[i];
        cr_assert_fail("evidence has no log of kind %d", kind);
        return NULL;
}

/* ---- baseline -------------------------------------------------------------------- */

Test(attacks, baseline_container_and_host_evidence_are_trusted)
{
        answer_t a, h;
        vopts_t o = {.container = CTR_A};

        challenge(CTR_A, NULL, &a);
        assert_trusted(a.ev, a.nonce, &o);
        seed(a.ev, "container");
        challenge(NULL, NULL, &h);
        assert_trusted(h.ev, h.nonce, &(vopts_t){0});
        seed(h.ev, "host");
        answer_free(&a);
        answer_free(&h);
}

/* ---- replay ---------------------------------------------------------------------- */

Test(attacks, replay_old_evidence_for_a_new_nonce)
{
        answer_t old, fresh;
        vopts_t o = {.container = CTR_A, .no_store = true};

        challenge(CTR_A, NULL, &old);
        challenge(CTR_A, NULL, &fresh);
        /* The old answer sent back to the new challenge. */
        assert_caught(old.ev, fresh.nonce, &o, "nonce-echo");
        assert_caught(old.ev, fresh.nonce, &o, "host-extra-data");
        assert_caught(old.ev, fresh.nonce, &o, "container-extra-data");
        answer_free(&old);
        answer_free(&fresh);
}

Test(attacks, replay_old_host_quote_beside_a_fresh_container_quote)
{
        answer_t old, fresh;
        vopts_t o = {.container = CTR_A, .no_store = true};
        Cscp__Frame *c1, *c2;
        Cscp__Quote *tq;
        Cscp__BatchProof *tb;

        challenge(CTR_A, NULL, &old);
        challenge(CTR_A, NULL, &fresh);
        c1 = copy(old.ev);
        c2 = copy(fresh.ev);
        /* The fresh evidence with the old host quote and its proof. */
        tq = c2->evidence->host_quote;
        c2->evidence->host_quote = c1->evidence->host_quote;
        c1->evidence->host_quote = tq;
        tb = c2->evidence->host_batch;
        c2->evidence->host_batch = c1->evidence->host_batch;
        c1->evidence->host_batch = tb;
        assert_caught(c2->evidence, fresh.nonce, &o, "host-extra-data");
        cscp__frame__free_unpacked(c1, NULL);
        cscp__frame__free_unpacked(c2, NULL);
        answer_free(&old);
        answer_free(&fresh);
}

Test(attacks, replay_of_older_evidence_after_newer_fails_the_clocks)
{
        answer_t old, fresh;
        vopts_t o = {.container = CTR_A};

        challenge(CTR_A, NULL, &old);
        challenge(CTR_A, NULL, &fresh);
        /* The challenger saw the newer one first: the older one, presented with its own nonce, is a replay. */
        assert_trusted(fresh.ev, fresh.nonce, &o);
        assert_caught(old.ev, old.nonce, &o, "host-clock");
        assert_caught(old.ev, old.nonce, &o, "container-clock");
        answer_free(&old);
        answer_free(&fresh);
}

/* ---- masquerade ------------------------------------------------------------------ */

Test(attacks, masquerade_container_b_evidence_presented_as_a)
{
        answer_t b;
        vopts_t o = {.container = CTR_A, .no_store = true};

        challenge(CTR_B, NULL, &b);
        assert_caught(b.ev, b.nonce, &o, "container-id");
        assert_caught(b.ev, b.nonce, &o, "host-extra-data"); /* the leaf names the container asked for */
        assert_caught(b.ev, b.nonce, &o, "vtpm-bind");
        answer_free(&b);
}

Test(attacks, masquerade_b_quote_in_a_evidence_resigned_by_a_compromised_host)
{
        answer_t a, b;
        vopts_t o = {.container = CTR_A, .no_store = true};
        Cscp__Frame *c = NULL, *cb = NULL;
        Cscp__Quote *tq;

        challenge(CTR_A, NULL, &a);
        challenge(CTR_B, NULL, &b);
        c = copy(a.ev);
        cb = copy(b.ev);
        /* B's container quote (B's vTPM answered B's nonce) inside A's evidence, with B's nonce echoed. */
        tq = c->evidence->container_quote;
        c->evidence->container_quote = cb->evidence->container_quote;
        cb->evidence->container_quote = tq;
        set_bytes(&c->evidence->nonce, b.nonce, 32);
        resign_host_quote(c->evidence, b.nonce, CTR_A);
        /* Nonce, container quote and host quote now all check out for A; the bind record of A names A's vAK. */
        assert_caught(c->evidence, b.nonce, &o, "vtpm-bind");
        cscp__frame__free_unpacked(c, NULL);
        cscp__frame__free_unpacked(cb, NULL);
        answer_free(&a);
        answer_free(&b);
}

/* A vTPM that vtpmd never bound: a swtpm of the attacker's with an AK of its own. */
static void rogue_container_quote(const uint8_t *nonce, Cscp__Quote *q)
{
        harness_swtpm_t rogue;
        cscp_tpm_t *t = NULL;
        cscp_tpm_quote_t tq = {0};
        TPML_PCR_SELECTION sel;
        const uint8_t *pub;
        size_t pub_len;
        char *d = harness_path(rig.dir, "rogue");

        cr_assert_eq(harness_swtpm_start(d, &rogue), 0);
        cr_assert_eq(cscp_tpm_open(rogue.tcti, &t), 0);
        cr_assert_eq(cscp_tpm_ak_load_or_create(t, d, CSCP_KEY_ECC_P256, NULL), 0);
        cr_assert_eq(cscp_tpm_ak_public(t, &pub, &pub_len), 0);
        cr_assert_eq(cscp_pcrsel_parse(CONT_PCRS, &sel), 0);
        cr_assert_eq(cscp_tpm_quote(t, nonce, 32, &sel, &tq), 0);
        set_bytes(&q->attest, tq.attest, tq.attest_len);
        set_bytes(&q->signature, tq.sig, tq.sig_len);
        set_bytes(&q->ak_public, pub, pub_len);
        cr_assert_eq(q->n_pcrs, tq.n_pcrs);
        for (size_t i = 0; i < tq.n_pcrs; i++)
                set_bytes(&q->pcrs[i]->value, tq.pcrs[i].value, tq.pcrs[i].size);
        cscp_tpm_quote_clear(&tq);
        cscp_tpm_free(t);
        harness_swtpm_stop(&rogue);
}

Test(attacks, masquerade_a_vtpm_that_was_never_bound)
{
        answer_t a;
        Cscp__Frame *c;
        vopts_t o = {.container = CTR_A, .no_store = true};

        challenge(CTR_A, NULL, &a);
        c = copy(a.ev);
        rogue_container_quote(a.nonce, c->evidence->container_quote);
        /* The rogue vTPM's PCRs are all reset: the container log no longer explains them, and no bind names it. */
        resign_host_quote(c->evidence, a.nonce, CTR_A);
        assert_caught(c->evidence, a.nonce, &o, "vtpm-bind");
        cscp__frame__free_unpacked(c, NULL);
        answer_free(&a);
}

/* How a forged vtpm-bind record is written into the host log. */
typedef enum forge {
        FORGE_PCR15,    /* a CM_TLV record on PCR 15, as vtpmd writes it (but not extended) */
        FORGE_NV_INDEX, /* a CM_TLV record whose register is an NV index: it extends no PCR */
        FORGE_CCMR,     /* a CM_TLV record on a CC measurement register (CC index 3 = RTMR2): no PCR */
} forge_t;

/* Appends a vtpm-bind record for id naming the quote's vAK to the evidence's host log, not extended anywhere. */
static void forge_bind_record_as(Cscp__Evidence *ev, const char *id, forge_t how)
{
        Cscp__Log *hl = log_of(ev, CSCP__LOG_KIND__LOG_HOST_CEL);
        static const uint16_t banks[] = {TPM2_ALG_SHA256, 0};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *e;
        uint64_t n = hl->offset;
        TPM2B_NAME vak = {0};
        uint8_t vek[32], *content = NULL, *rec = NULL, *all;
        size_t clen = 0, rlen = 0, nd = 0;
        cscp_event_digest_t d[4];
        unsigned md_len;

        cr_assert_eq(cscp_eventlog_open_mem(hl->data.data, hl->data.len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &l), 0);
        while (cscp_eventlog_next(l, &e) > 0)
                n++;
        cscp_eventlog_free(l);
        cr_assert_eq(
                cscp_tpm_public_name(ev->container_quote->ak_public.data, ev->container_quote->ak_public.len, &vak), 0);
        cr_assert_eq(EVP_Digest(ev->vtpm_ek_public.data, ev->vtpm_ek_public.len, vek, &md_len, EVP_sha256(), NULL), 1);
        cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, "vtpm-bind", 9},
                                     {CSCP_CM_F_CONTAINER_ID, id, strlen(id)},
                                     {CSCP_CM_F_VEK_SHA256, vek, 32},
                                     {CSCP_CM_F_VAK_NAME, vak.name, vak.size}};
        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, f, 4, &content, &clen), 0);
        cr_assert_eq(cscp_cm_digests(content, clen, banks, d, &nd), 0);
        cr_assert_eq(cscp_cel_tlv_encode(n,
                                         how == FORGE_NV_INDEX ? 0x01c10200
                                         : how == FORGE_CCMR   ? 3
                                                               : 15,
                                         how == FORGE_NV_INDEX, d, nd, CSCP_CEL_CM_TLV, content, clen, &rec, &rlen),
                     0);
        if (how == FORGE_CCMR) {
                /* The encoder writes PCR or NV index registers: the register TLV follows recnum (5 + 8 bytes). */
                cr_assert_eq(rec[13], CSCP_CEL_PCR);
                rec[13] = CSCP_CEL_CCMR;
        }
        all = malloc(hl->data.len + rlen);
        cr_assert(all);
        memcpy(all, hl->data.data, hl->data.len);
        memcpy(all + hl->data.len, rec, rlen);
        free(hl->data.data);
        hl->data.data = all;
        hl->data.len += rlen;
        free(content);
        free(rec);
}

static void forge_bind_record(Cscp__Evidence *ev, const char *id)
{
        forge_bind_record_as(ev, id, FORGE_PCR15);
}

Test(attacks, masquerade_bind_record_forged_into_the_log_but_not_the_pcr)
{
        answer_t a;
        Cscp__Frame *c;
        vopts_t o = {.container = CTR_A, .no_store = true};
        cscp_verdict_t v;

        challenge(CTR_A, NULL, &a);
        c = copy(a.ev);
        rogue_container_quote(a.nonce, c->evidence->container_quote);
        forge_bind_record(c->evidence, CTR_A);
        resign_host_quote(c->evidence, a.nonce, CTR_A);
        /* The log runs ahead of PCR 15 by one record: the replay still reaches the quote, the forged record is
         * not covered by it. */
        cr_assert_eq(verify(c->evidence, a.nonce, &o, &v), CSCP_VERDICT_UNTRUSTED);
        assert_claim(&v, "host-signature", true);
        assert_claim(&v, "host-pcrs-replay", true);
        assert_claim(&v, "vtpm-bind", false);
        cr_assert(strstr(cscp_verdict_find(&v, "vtpm-bind")->detail, "not covered by the host quote"), "%s",
                  cscp_verdict_find(&v, "vtpm-bind")->detail);
        cscp_verdict_clear(&v);
        cscp__frame__free_unpacked(c, NULL);
        answer_free(&a);
}

/*
 * A forged bind record that extends no PCR (its register an NV index, or a CC measurement register)
 * appended to a fully attested host log: the replay reaches every quoted PCR, and logcheck counts a
 * record that extends nothing as attested when what precedes it is. It must never bind: the genuine,
 * attested bind record of A (naming A's real vAK) stays the last one, so the rogue vAK is refused.
 * (A CM_TLV record on a PCR without a digest does not parse, and content of another type is no
 * bind record: those two need no case here.)
 */
Test(attacks, masquerade_bind_record_that_extends_no_pcr)
{
        static const struct {
                forge_t how;
                const char *what;
        } cases[] = {{FORGE_NV_INDEX, "NV index register"}, {FORGE_CCMR, "CC measurement register 3"}};
        answer_t a;
        vopts_t o = {.container = CTR_A, .no_store = true};

        challenge(CTR_A, NULL, &a);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Cscp__Frame *c = copy(a.ev);
                cscp_verdict_t v;
                const cscp_claim_t *b;

                rogue_container_quote(a.nonce, c->evidence->container_quote);
                forge_bind_record_as(c->evidence, CTR_A, cases[i].how);
                resign_host_quote(c->evidence, a.nonce, CTR_A);
                cr_assert_eq(verify(c->evidence, a.nonce, &o, &v), CSCP_VERDICT_UNTRUSTED, "%s: not untrusted",
                             cases[i].what);
                /* Everything the compromised host controls checks out: vtpm-bind is the only claim that fails. */
                assert_claim(&v, "host-signature", true);
                assert_claim(&v, "host-logs", true);
                assert_claim(&v, "host-pcrs-replay", true);
                assert_claim(&v, "vtpm-bind", false);
                for (size_t k = 0; k < v.n_claims; k++)
                        if (!v.claims[k].pass && strcmp(v.claims[k].name, "vtpm-bind") != 0)
                                assert_claim(&v, v.claims[k].name, true);
                b = cscp_verdict_find(&v, "vtpm-bind");
                cr_assert(strstr(b->detail, "names another vAK than"), "%s: %s", cases[i].what, b->detail);
                cscp_verdict_clear(&v);
                cscp__frame__free_unpacked(c, NULL);
        }
        answer_free(&a);
}

Test(attacks, masquerade_another_hosts_ak)
{
        harness_swtpm_t other;
        harness_attestd_t oad = {0};
        char *const extra[] = {"--insecure-plaintext", NULL};
        char *d = harness_path(rig.dir, "other-host");
        cscp_client_opts_t co = {.insecure_plaintext = true, .timeout_ms = 60000};
        cscp_conn_t *conn = NULL;
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        Cscp__PcrSelection **w = NULL;
        size_t nw = 0;
        TPML_PCR_SELECTION sel;
        uint8_t nonce[32];
        char err[512];

        /* Another host: its own TPM and attestd, answering perfectly well for itself. */
        cr_assert_eq(mkdir(d, 0700), 0);
        cr_assert_eq(harness_swtpm_start(harness_path(d, "tpm"), &other), 0);
        cr_assert_eq(harness_attestd_start(d, other.tcti, NULL, extra, &oad), 0);
        co.server = oad.addr;
        cr_assert_eq(cscp_nonce_draw(nonce, sizeof(nonce)), 0);
        cr_assert_eq(cscp_pcrsel_parse("sha256:0-7,10", &sel), 0);
        cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &nw), 0);
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = 32};
        ch.host_pcrs = w;
        ch.n_host_pcrs = nw;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        cr_assert_eq(cscp_conn_open(&co, &conn, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(cscp_conn_roundtrip(conn, &req, &resp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);
        /* ...presented as the enrolled host's answer. */
        assert_caught(resp->evidence, nonce, &(vopts_t){.host_sel = "sha256:0-7,10", .no_store = true},
                      "host-ak-enrolled");
        cscp__frame__free_unpacked(resp, NULL);
        cscp_pcrsel_wire_free(w, nw);
        cscp_conn_free(conn);
        harness_attestd_stop(&oad);
        harness_swtpm_stop(&other);
}

/* ---- tampering ------------------------------------------------------------------- */

typedef struct region {
        const char *what;
        ProtobufCBinaryData *(*get)(Cscp__Evidence *ev);
        const char *claim; /* a claim that must fail */
} region_t;

static ProtobufCBinaryData *host_attest(Cscp__Evidence *ev)
{
        return &ev->host_quote->attest;
}
static ProtobufCBinaryData *host_sig(Cscp__Evidence *ev)
{
        return &ev->host_quote->signature;
}
static ProtobufCBinaryData *host_akpub(Cscp__Evidence *ev)
{
        return &ev->host_quote->ak_public;
}
static ProtobufCBinaryData *host_pcr(Cscp__Evidence *ev)
{
        return &ev->host_quote->pcrs[0]->value;
}
static ProtobufCBinaryData *ctr_attest(Cscp__Evidence *ev)
{
        return &ev->container_quote->attest;
}
static ProtobufCBinaryData *ctr_sig(Cscp__Evidence *ev)
{
        return &ev->container_quote->signature;
}
static ProtobufCBinaryData *ctr_akpub(Cscp__Evidence *ev)
{
        return &ev->container_quote->ak_public;
}
static ProtobufCBinaryData *ctr_pcr(Cscp__Evidence *ev)
{
        return &ev->container_quote->pcrs[11]->value;
}
static ProtobufCBinaryData *host_log(Cscp__Evidence *ev)
{
        return &log_of(ev, CSCP__LOG_KIND__LOG_HOST_CEL)->data;
}
static ProtobufCBinaryData *ctr_log(Cscp__Evidence *ev)
{
        return &log_of(ev, CSCP__LOG_KIND__LOG_CONTAINER_CEL)->data;
}
static ProtobufCBinaryData *vek_cert(Cscp__Evidence *ev)
{
        return &ev->vtpm_ek_certificate;
}
static ProtobufCBinaryData *vek_pub(Cscp__Evidence *ev)
{
        return &ev->vtpm_ek_public;
}
static ProtobufCBinaryData *nonce_echo(Cscp__Evidence *ev)
{
        return &ev->nonce;
}

Test(attacks, tampering_one_flipped_byte_anywhere_is_caught)
{
        static const region_t regions[] = {
                {"host TPMS_ATTEST", host_attest, "host-signature"},
                {"host signature", host_sig, "host-signature"},
                {"host AK public", host_akpub, "host-ak-enrolled"},
                {"a host PCR value", host_pcr, "host-pcr-digest"},
                {"container TPMS_ATTEST", ctr_attest, "container-signature"},
                {"container signature", ctr_sig, "container-signature"},
                {"container AK public", ctr_akpub, "vtpm-bind"},
                {"a container PCR value", ctr_pcr, "container-pcr-digest"},
                {"host CEL log", host_log, "vtpm-bind"},
                {"container CEL log", ctr_log, "container-pcrs-replay"},
                {"vEK certificate", vek_cert, "vtpm-ek-cert"},
                {"vEK public", vek_pub, "vtpm-bind"},
                {"nonce echo", nonce_echo, "nonce-echo"},
        };
        answer_t a;
        vopts_t o = {.container = CTR_A, .no_store = true};

        challenge(CTR_A, NULL, &a);
        for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
                /* The first, a middle and the last byte of each region. */
                size_t len = regions[i].get(a.ev)->len;
                size_t at[3] = {0, len / 2, len - 1};

                cr_assert_gt(len, 0, "%s is empty", regions[i].what);
                for (size_t k = 0; k < 3; k++) {
                        Cscp__Frame *c = copy(a.ev);
                        cscp_verdict_t v;
                        ProtobufCBinaryData *b = regions[i].get(c->evidence);

                        b->data[at[k]] ^= 0x01;
                        if (verify(c->evidence, a.nonce, &o, &v) != CSCP_VERDICT_UNTRUSTED) {
                                dump(&v);
                                cr_assert_fail("a flipped bit in byte %zu of the %s was not caught", at[k],
                                               regions[i].what);
                        }
                        if (k == 1)
                                assert_claim(&v, regions[i].claim, false);
                        cscp_verdict_clear(&v);
                        cscp__frame__free_unpacked(c, NULL);
                }
        }
        answer_free(&a);
}

Test(attacks, tampering_with_the_batch_proof_is_caught)
{
        answer_t a;
        vopts_t o = {.container = CTR_A, .no_store = true};
        Cscp__Frame *c;

        challenge(CTR_A, NULL, &a);
        c = copy(a.ev);
        c->evidence->host_batch->leaf_count += 1; /* a proof for another tree size */
        assert_caught(c->evidence, a.nonce, &o, "host-batch-proof");
        c->evidence->host_batch->leaf_count -= 1;
        c->evidence->host_batch->leaf_index += 1;
        assert_caught(c->evidence, a.nonce, &o, "host-batch-proof");
        cscp__frame__free_unpacked(c, NULL);
        answer_free(&a);
}

/* ---- reboot / reset --------------------------------------------------------------- */

static uint32_t swtpm_pid_of(const char *id)
{
        Vtpmd__VtpmResponse *st = rig_status(id);
        uint32_t pid = st->status->instance->pid;
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        return pid;
}

/* Kills the container's swtpm and waits until vtpmd has restarted it and the instance is ready again. */
static void kill_vtpm_and_wait(const char *id)
{
        uint32_t pid = swtpm_pid_of(id);
        bool ready = false;

        cr_assert_eq(kill((pid_t)pid, SIGKILL), 0);
        for (int i = 0; i < 600 && !ready; i++) {
                Vtpmd__VtpmResponse *st;

                usleep(50 * 1000);
                st = rig_status(id);
                ready = st->status->instance->pid != pid && st->status->instance->pid != 0 &&
                        strcmp(st->status->instance->state, "ready") == 0;
                vtpmd__vtpm_response__free_unpacked(st, NULL);
        }
        cr_assert(ready, "vtpmd did not restart the vTPM");
}

Test(attacks, reset_a_restarted_vtpm_is_detected)
{
        answer_t before, after;
        vopts_t o = {.container = CTR_A};
        cscp_verdict_t v;

        challenge(CTR_A, NULL, &before);
        assert_trusted(before.ev, before.nonce, &o);
        /* The vTPM dies; vtpmd restarts it from its state and re-extends its log (PCRs agree again). */
        kill_vtpm_and_wait(CTR_A);
        challenge(CTR_A, NULL, &after);
        cr_assert_eq(verify(after.ev, after.nonce, &o, &v), CSCP_VERDICT_UNTRUSTED);
        assert_claim(&v, "container-pcrs-replay", true);
        assert_claim(&v, "vtpm-bind", true);
        assert_claim(&v, "container-clock", false);
        assert_claim(&v, "host-clock", true);
        cr_assert(strstr(cscp_verdict_find(&v, "container-clock")->detail, "reset"), "%s",
                  cscp_verdict_find(&v, "container-clock")->detail);
        cscp_verdict_clear(&v);
        answer_free(&before);
        answer_free(&after);
}

/* A policy that accepts reboots and restarts: the same restart passes. */
Test(attacks, reset_allowed_by_policy_passes)
{
        static const char yaml[] = "version: 1\nresets:\n  allow_reboot: true\n  allow_restart: true\n";
        char perr[256];
        cscp_policy_t *p = NULL;
        answer_t before, after;

        cr_assert_eq(cscp_policy_parse(yaml, sizeof(yaml) - 1, &p, perr, sizeof(perr)), 0, "%s", perr);
        vopts_t o = {.container = CTR_A, .policy = p};
        challenge(CTR_A, NULL, &before);
        assert_trusted(before.ev, before.nonce, &o);
        kill_vtpm_and_wait(CTR_A);
        challenge(CTR_A, NULL, &after);
        assert_trusted(after.ev, after.nonce, &o);
        cscp_policy_free(p);
        answer_free(&before);
        answer_free(&after);
}

Test(attacks, reset_a_clock_going_backwards_is_a_replay)
{
        answer_t a, b;
        vopts_t o = {.container = CTR_A};
        TPMS_ATTEST at;
        TPM2B_NAME ak = {0};
        cscp_store_t *s = NULL;
        cscp_clock_t ahead, last;
        bool had;

        challenge(CTR_A, NULL, &a);
        assert_trusted(a.ev, a.nonce, &o);
        /* The store has seen this host TPM's clock an hour further on, in the same reset and restart. */
        cr_assert_eq(cscp_attest_parse(a.ev->host_quote->attest.data, a.ev->host_quote->attest.len, &at), 0);
        cr_assert_eq(cscp_tpm_public_name(a.ev->host_quote->ak_public.data, a.ev->host_quote->ak_public.len, &ak), 0);
        ahead = (cscp_clock_t){.clock = at.clockInfo.clock + 3600 * 1000,
                               .reset_count = at.clockInfo.resetCount,
                               .restart_count = at.clockInfo.restartCount,
                               .safe = true};
        cr_assert_eq(cscp_store_open(db, &s), 0);
        cr_assert_eq(cscp_store_clock_swap(s, ak.name, ak.size, &ahead, &last, &had), 0);
        cscp_store_close(s);
        challenge(CTR_A, NULL, &b);
        assert_caught(b.ev, b.nonce, &o, "host-clock");
        answer_free(&a);
        answer_free(&b);
}

/* The host TPM itself restarted (a reboot): a host-only rig of its own, through the cscp binary. */
Test(attacks, reset_a_restarted_host_tpm_is_detected)
{
        char *d = harness_path(rig.dir, "host2"), *sdir = harness_path(d, "tpm"), *store2 = harness_path(d, "db");
        char *const extra[] = {"--insecure-plaintext", NULL};
        harness_swtpm_t tpm;
        harness_attestd_t a2 = {0};
        char *out = NULL;

        cr_assert_eq(mkdir(d, 0700), 0);
        cr_assert_eq(harness_swtpm_start(sdir, &tpm), 0);
        cr_assert_eq(harness_attestd_start(d, tpm.tcti, NULL, extra, &a2), 0);
        char *addr = harness_keep(strdup(a2.addr)); /* the store knows the host by it: reused after the restart */
        {
                const char *en[] = {"enroll", "--server", a2.addr, "--insecure-plaintext",
                                    "--tofu", "--db",     store2,  NULL};
                const char *ch[] = {"challenge", "--server", a2.addr, "--insecure-plaintext", "--db", store2, NULL};
                cr_assert_eq(run_cscp(&out, en), 0, "%s", out);
                cr_assert_eq(run_cscp(&out, ch), 0, "%s", out);
                cr_assert(strstr(out, "ok   host-clock"), "%s", out);
        }
        /* Power cycle: the TPM keeps its state (same seeds, same AK), its resetCount moves on. */
        harness_attestd_stop(&a2);
        harness_swtpm_stop(&tpm);
        cr_assert_eq(harness_swtpm_start(sdir, &tpm), 0);
        (void)extra;
        {
                char *same[] = {"--insecure-plaintext", "--listen", addr, NULL};
                a2 = (harness_attestd_t){0};
                cr_assert_eq(harness_attestd_start(d, tpm.tcti, NULL, same, &a2), 0);
        }
        {
                const char *ch[] = {"challenge", "--server", a2.addr, "--insecure-plaintext", "--db", store2, NULL};
                cr_assert_eq(run_cscp(&out, ch), 1, "%s", out);
                cr_assert(strstr(out, "FAIL host-clock"), "%s", out);
                cr_assert(strstr(out, "was reset since the last challenge"), "%s", out);
        }
        harness_attestd_stop(&a2);
        harness_swtpm_stop(&tpm);
}

/* ---- downgrade -------------------------------------------------------------------- */

Test(attacks, downgrade_to_a_sha1_only_quote_is_caught)
{
        answer_t a;
        vopts_t o = {.container = CTR_A, .no_store = true};

        /* The challenge's selection was turned into SHA-1 on the way (or attestd answers SHA-1 only). */
        challenge(CTR_A, "sha1:0-7,10,11,15", &a);
        assert_caught(a.ev, a.nonce, &o, "host-pcr-selection");
        answer_free(&a);
}

Test(attacks, downgrade_to_plaintext_is_refused)
{
        harness_swtpm_t other;
        harness_attestd_t pad = {0};
        char *const extra[] = {"--insecure-plaintext", NULL};
        char *d = harness_path(rig.dir, "plain");
        char *out = NULL;

        /* A plaintext endpoint where the challenger expects TLS: no verdict at all, never "trusted". */
        cr_assert_eq(mkdir(d, 0700), 0);
        cr_assert_eq(harness_swtpm_start(harness_path(d, "tpm"), &other), 0);
        cr_assert_eq(harness_attestd_start(d, other.tcti, NULL, extra, &pad), 0);
        {
                const char *args[] = {"challenge",
                                      "--server",
                                      pad.addr,
                                      "--ca",
                                      harness_path(rig.pki, "ca.pem"),
                                      "--cert",
                                      harness_path(rig.pki, "client.pem"),
                                      "--key",
                                      harness_path(rig.pki, "client-key.pem"),
                                      "--db",
                                      db,
                                      NULL};
                int code = run_cscp(&out, args);
                cr_assert(code == 2 || code == 1, "exit %d: %s", code, out);
                cr_assert_null(strstr(out, "verdict: trusted"), "%s", out);
        }
        harness_attestd_stop(&pad);
        harness_swtpm_stop(&other);
}

/* ---- policy ----------------------------------------------------------------------- */

Test(attacks, policy_holds_the_container_log_to_reference_values)
{
        static const char good[] = "version: 1\ncontainer:\n  configs: "
                                   "[sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef]\n"
                                   "  runtimes: [\"runc 1.1.*\"]\n";
        static const char bad[] = "version: 1\ncontainer:\n  configs: "
                                  "[sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff]\n";
        char perr[256];
        cscp_policy_t *pg = NULL, *pb = NULL;
        answer_t a;

        cr_assert_eq(cscp_policy_parse(good, sizeof(good) - 1, &pg, perr, sizeof(perr)), 0, "%s", perr);
        cr_assert_eq(cscp_policy_parse(bad, sizeof(bad) - 1, &pb, perr, sizeof(perr)), 0, "%s", perr);
        challenge(CTR_A, NULL, &a);
        assert_trusted(a.ev, a.nonce, &(vopts_t){.container = CTR_A, .no_store = true, .policy = pg});
        assert_caught(a.ev, a.nonce, &(vopts_t){.container = CTR_A, .no_store = true, .policy = pb}, "policy");
        cscp_policy_free(pg);
        cscp_policy_free(pb);
        answer_free(&a);
}

/* ---- incremental IMA ------------------------------------------------------------- */

/* Appends n ima-ng entries (binary, little-endian) to path; with extend, also into host PCR 10 (sha256). */
static void ima_append(const char *path, unsigned first, unsigned n, bool extend)
{
        cscp_tpm_t *t = NULL;
        FILE *f = fopen(path, "ab");

        cr_assert(f);
        if (extend)
                cr_assert_eq(cscp_tpm_open(RIG_TABRMD_TCTI, &t), 0);
        for (unsigned i = first; i < first + n; i++) {
                uint8_t td[256], fd[32], th1[20], th256[32];
                char p[64];
                size_t tl = 0;
                uint32_t u;
                unsigned ml;

                snprintf(p, sizeof(p), "/usr/bin/tool-%u", i);
                EVP_Digest(p, strlen(p), fd, &ml, EVP_sha256(), NULL); /* the "file" digest */
                u = 8 + 32;
                memcpy(td + tl, &u, 4);
                memcpy(td + tl + 4, "sha256:", 8);
                memcpy(td + tl + 12, fd, 32);
                tl += 4 + u;
                u = (uint32_t)strlen(p) + 1;
                memcpy(td + tl, &u, 4);
                memcpy(td + tl + 4, p, u);
                tl += 4 + u;
                EVP_Digest(td, tl, th1, &ml, EVP_sha1(), NULL);
                EVP_Digest(td, tl, th256, &ml, EVP_sha256(), NULL);
                u = 10;
                fwrite(&u, 4, 1, f);
                fwrite(th1, 20, 1, f);
                u = 6;
                fwrite(&u, 4, 1, f);
                fwrite("ima-ng", 6, 1, f);
                u = (uint32_t)tl;
                fwrite(&u, 4, 1, f);
                fwrite(td, tl, 1, f);
                if (extend)
                        cr_assert_eq(cscp_tpm_pcr_extend(t, 10, TPM2_ALG_SHA256, th256, 32), 0);
        }
        cr_assert_eq(fclose(f), 0);
        cscp_tpm_free(t);
}

/* cscp challenge (host only) with the store; returns the IMA log the evidence carried (offset, events). */
static void ima_challenge(const char *ev_path, uint64_t *ret_offset, uint64_t *ret_events, char **ret_out)
{
        const char *const *tls = rig_tls_args();
        const char *args[20] = {"challenge"};
        size_t n = 1;
        Cscp__Frame *f = NULL;
        char *out = NULL;
        int code;

        for (; *tls; tls++)
                args[n++] = *tls;
        args[n++] = "--db";
        args[n++] = db;
        args[n++] = "--save-evidence";
        args[n++] = ev_path;
        args[n] = NULL;
        code = run_cscp(&out, args);
        cr_assert_eq(code, 0, "%s", out);
        cr_assert_eq(cscp_evidence_load(ev_path, CSCP_FRAME_MAX_LIMIT, &f), 0);
        *ret_offset = UINT64_MAX;
        *ret_events = 0;
        for (size_t i = 0; i < f->evidence->n_logs; i++) {
                Cscp__Log *l = f->evidence->logs[i];
                cscp_eventlog_t *el = NULL;
                const cscp_event_t *e;
                cscp_eventlog_opts_t o = {.first_index = l->offset};

                if (l->kind != CSCP__LOG_KIND__LOG_IMA)
                        continue;
                *ret_offset = l->offset;
                if (l->data.len) {
                        cr_assert_eq(cscp_eventlog_open_mem(l->data.data, l->data.len, CSCP_EVENTLOG_IMA_BINARY, &o,
                                                            NULL, &el),
                                     0);
                        while (cscp_eventlog_next(el, &e) > 0)
                                (*ret_events)++;
                        cscp_eventlog_free(el);
                }
        }
        cscp__frame__free_unpacked(f, NULL);
        *ret_out = out;
}

Test(attacks, ima_list_is_replayed_incrementally_from_the_store_checkpoint)
{
        char *ima = harness_path(rig.dir, "ima.bin"), *ev = harness_path(rig.dir, "ev.bin"), *out = NULL;
        char *extra[] = {"--ima-log", ima, NULL};
        uint64_t off, n;

        ima_append(ima, 0, 5, true);
        rig_stop_attestd();
        rig_start_attestd(extra);
        /* attestd's address changed: enroll again under the new one */
        enroll();

        /* First: the whole list; the store keeps the replay at event 5. */
        ima_challenge(ev, &off, &n, &out);
        cr_assert_eq(off, 0);
        cr_assert_eq(n, 5);
        cr_assert(strstr(out, "next challenge asks IMA from event 5"), "%s", out);

        /* Three more entries: only they are sent, and PCR 10 replays from the checkpoint. */
        ima_append(ima, 5, 3, true);
        ima_challenge(ev, &off, &n, &out);
        cr_assert_eq(off, 5);
        cr_assert_eq(n, 3);
        cr_assert(strstr(out, "next challenge asks IMA from event 8"), "%s", out);

        /* An entry logged but not (yet) extended: sent, not attested; the checkpoint stays before it. */
        ima_append(ima, 8, 1, false);
        ima_challenge(ev, &off, &n, &out);
        cr_assert_eq(off, 8);
        cr_assert_eq(n, 1);
        cr_assert(strstr(out, "1 not (logged after the quote"), "%s", out);
        cr_assert(strstr(out, "next challenge asks IMA from event 8"), "%s", out);
}
