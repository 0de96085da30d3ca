/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attestd and vtpmd on a TDX host (--rot tdx), against tests/helpers/tdx-emu:
 * a FUSE emulator of a TDX guest's Linux files that signs "quotes" with a
 * TEST CA. THIS IS NOT TDX: it exercises the file protocol, the evidence
 * format and the register bookkeeping, nothing about TDX hardware.
 *
 * The emulator starts with MRTD and RTMR0..2 of the COS fixture
 * (../shared/fixtures/tdx/go-tdx-guest, expected.json), so the fixture's
 * CCEL explains them, as on a real TD:
 *  - a host challenge is answered with host_tdx_quote (no host_quote); its
 *    REPORTDATA is the SHA-512 Merkle root of the challenge's leaf (checked
 *    with lib/merkle.c, 64-byte siblings in batches), it verifies with the
 *    emulator's root; LOG_BOOT and LOG_CCEL requests are answered with
 *    LOG_CCEL, whole and once, which replays to the quote's RTMR0..2;
 *  - no IMA list and no TPM boot log are sent, even with --ima-log and
 *    --boot-log naming real files (a warning at start-up);
 *  - enrollment is refused with ERR_UNSUPPORTED;
 *  - vtpmd --rot tdx writes vtpm-bind records carrying register index 3
 *    (RTMR2), RTMR2 moves by exactly them (from the CCEL's value), a restart
 *    reconciles from the CCEL, an RTMR2 extended behind its back is refused;
 *    a container challenge's SHA-512 leaf (over the container quote and the
 *    vAK Name) is under REPORTDATA, and CCEL + host CEL replay to the
 *    quote's RTMR2;
 *  - vtpmd refuses --rot tdx without a TPM for its master key, and with a
 *    measurement policy.
 * Skips (77, with the reason) without the emulator (libfuse3, /dev/fuse) or
 * without ../shared/fixtures.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cel.h"
#include "client.h"
#include "core.h"
#include "error.h"
#include "eventlog.h"
#include "frame.h"
#include "harness.h"
#include "merkle.h"
#include "pcr.h"
#include "quote.h"
#include "tdx-guest.h"
#include "tdx.h"
#include "util.h"
#include "vctl.h"
#include "verdict.h"

/* The COS TD of the fixture (expected.json, "ccel_cos-113-tdx-quote.dat + ccel_ccel_data.dat + ..."). */
static const char mrtd_hex[] =
        "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a";
static const char rtmr_hex[3][97] = {
        "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
        "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
        "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"};

static char *dir, *emu, *pki, *ccel_table, *ccel_data, *host_log;
static pid_t epid;
static harness_attestd_t ad;
static harness_swtpm_t sw;
static harness_proc_t vd;
static char *state, *run, *ready, *sock_path, *vlog;

static char *fx(const char *name)
{
        return harness_path(harness_path(harness_fixtures_dir(), "tdx/go-tdx-guest"), name);
}

static void setup(void)
{
        const char *extra[] = {"--mrtd",    mrtd_hex,  "--rtmr0",   rtmr_hex[0], "--rtmr1",
                               rtmr_hex[1], "--rtmr2", rtmr_hex[2], NULL};

        if (!harness_fixtures_dir())
                cr_skip_test("../shared/fixtures not found: no CCEL to explain the emulator's RTMRs");
        dir = harness_tmpdir();
        emu = harness_path(dir, "emu");
        ccel_table = fx("ccel_ccel_table.dat");
        ccel_data = fx("ccel_ccel_data.dat");
        host_log = harness_path(dir, "no-host.log");
        harness_tdx_emu_start(emu, extra, &epid); /* skips (77) when the emulator cannot run */
        pki = harness_path(dir, "pki");
        cr_assert_eq(harness_mkcerts(pki), 0);
        state = harness_path(dir, "vstate");
        run = harness_path(dir, "r");
        ready = harness_path(dir, "vready");
        sock_path = harness_path(run, "vtpmd.sock");
        vlog = harness_path(dir, "vtpmd.log");
}

static void teardown(void)
{
        int st = 0;
        bool clean = true;

        harness_attestd_stop(&ad);
        if (vd.pid > 0) {
                st = harness_stop(&vd, SIGTERM, 20000);
                clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                if (!clean)
                        harness_dump_log(&vd);
                vd.pid = 0;
        }
        free(vd.log);
        vd.log = NULL;
        if (state)
                harness_kill_swtpms(state, NULL);
        harness_swtpm_stop(&sw);
        if (epid > 0)
                harness_tdx_emu_stop(emu, epid);
        epid = 0;
        cr_assert(clean, "vtpmd did not stop cleanly on SIGTERM (wait status 0x%x)", (unsigned)st);
}

TestSuite(attestd_tdx, .init = setup, .fini = teardown, .timeout = 240);

static const char *tsm_root(void)
{
        return harness_path(emu, "mnt/tsm");
}

static const char *mr_root(void)
{
        return harness_path(emu, "mnt/measurements");
}

static const char *const *tdx_args(void)
{
        const char *a[] = {"--rot",   "tdx",          "--tsm-root", tsm_root(),    "--tdx-mr-root",
                           mr_root(), "--ccel-table", ccel_table,   "--ccel-data", ccel_data,
                           NULL};
        return (const char *const *)harness_argv(a, NULL);
}

static void start_attestd(const char *const *more)
{
        const char *logs[] = {"--host-log", host_log, NULL};
        char **extra = harness_argv(tdx_args(), logs, more ? more : (const char *const[]){NULL}, NULL);
        int r = harness_attestd_start(dir, NULL, NULL, extra, &ad);

        if (r < 0)
                harness_dump_log(&ad.proc);
        cr_assert_eq(r, 0, "attestd --rot tdx did not start: %s", cscp_strerror(r));
}

static cscp_conn_t *connect_plain(void)
{
        cscp_client_opts_t o = {.server = ad.addr, .insecure_plaintext = true, .timeout_ms = 30000};
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "connect: %s", err);
        return c;
}

typedef struct req {
        const char *container;
        const char *host_pcrs; /* NULL: none (allowed on TDX) */
        Cscp__LogKind kinds[8];
        uint64_t offsets[8];
        size_t n_logs;
} req_t;

/* One Challenge with a fresh 32-byte nonce (into nonce); the caller frees the answer. */
static Cscp__Frame *challenge_on(cscp_conn_t *c, const req_t *rq, uint8_t nonce[32])
{
        TPML_PCR_SELECTION hsel, csel;
        Cscp__PcrSelection **hw = NULL, **cw = NULL;
        size_t nhw = 0, ncw = 0;
        Cscp__LogRequest lr[8], *lp[8];
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        char err[512];
        int r;

        cr_assert_eq(RAND_bytes(nonce, 32), 1);
        if (rq->host_pcrs) {
                cr_assert_eq(cscp_pcrsel_parse(rq->host_pcrs, &hsel), 0);
                cr_assert_eq(cscp_pcrsel_to_wire(&hsel, &hw, &nhw), 0);
        }
        if (rq->container) {
                cr_assert_eq(cscp_pcrsel_parse("sha256:0-23", &csel), 0);
                cr_assert_eq(cscp_pcrsel_to_wire(&csel, &cw, &ncw), 0);
                ch.container_id = (char *)rq->container;
        }
        for (size_t i = 0; i < rq->n_logs; i++) {
                cscp__log_request__init(&lr[i]);
                lr[i].kind = rq->kinds[i];
                lr[i].offset = rq->offsets[i];
                lp[i] = &lr[i];
        }
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = 32};
        ch.host_pcrs = hw;
        ch.n_host_pcrs = nhw;
        ch.container_pcrs = cw;
        ch.n_container_pcrs = ncw;
        ch.logs = lp;
        ch.n_logs = rq->n_logs;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        r = cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err));
        cscp_pcrsel_wire_free(hw, nhw);
        cscp_pcrsel_wire_free(cw, ncw);
        cr_assert_eq(r, 0, "roundtrip: %s", err);
        return resp;
}

static Cscp__Frame *challenge(const req_t *rq, uint8_t nonce[32])
{
        cscp_conn_t *c = connect_plain();
        Cscp__Frame *f = challenge_on(c, rq, nonce);

        cscp_conn_free(c);
        return f;
}

static const Cscp__Evidence *evidence_of(const Cscp__Frame *f)
{
        cr_assert_eq(f->body_case, CSCP__FRAME__BODY_EVIDENCE, "no evidence: %s",
                     f->body_case == CSCP__FRAME__BODY_ERROR ? f->error->message : "?");
        return f->evidence;
}

/*
 * The TD quote of ev: no TPM quote beside it; REPORTDATA = the SHA-512 root the proof takes this challenge's leaf
 * to (host leaf, or the container leaf over its quote and vAK Name); verifies with the emulator's TEST root.
 */
static void assert_td_quote(const Cscp__Evidence *ev, const uint8_t nonce[32], const char *container,
                            cscp_tdx_quote_t *ret)
{
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
        uint8_t leaf[64], root[64];
        cscp_tdx_verify_opts_t o = {.root_file = harness_path(emu, "state/root.pem"), .report_data = root};
        cscp_verdict_t v;
        char err[256];
        int r;

        cr_assert_null(ev->host_quote, "a TDX host sends no host_quote");
        cr_assert(ev->host_tdx_quote.len > 0, "no host_tdx_quote");
        cr_assert_eq(ev->nonce.len, 32);
        cr_assert_arr_eq(ev->nonce.data, nonce, 32);
        if (container) {
                TPM2B_NAME vak = {0};

                cr_assert_not_null(ev->container_quote);
                cr_assert_eq(cscp_tpm_public_name(ev->container_quote->ak_public.data,
                                                  ev->container_quote->ak_public.len, &vak),
                             0);
                r = cscp_merkle_leaf(TPM2_ALG_SHA512, nonce, 32, container, ev->container_quote->attest.data,
                                     ev->container_quote->attest.len, vak.name, vak.size, leaf);
        } else
                r = cscp_merkle_leaf(TPM2_ALG_SHA512, nonce, 32, "", NULL, 0, NULL, 0, leaf);
        cr_assert_eq(r, 0);
        cr_assert_not_null(ev->host_batch);
        cr_assert_leq(ev->host_batch->n_siblings, CSCP_MERKLE_MAX_DEPTH);
        for (size_t i = 0; i < ev->host_batch->n_siblings; i++) {
                cr_assert_eq(ev->host_batch->siblings[i].len, 64, "sibling %zu: a SHA-512 node", i);
                memcpy(path[i], ev->host_batch->siblings[i].data, 64);
        }
        cr_assert_eq(cscp_merkle_root_from_proof(TPM2_ALG_SHA512, leaf, ev->host_batch->leaf_index,
                                                 ev->host_batch->leaf_count, path, ev->host_batch->n_siblings, root),
                     0);
        cr_assert_eq(cscp_tdx_quote_parse(ev->host_tdx_quote.data, ev->host_tdx_quote.len, ret, err, sizeof(err)), 0,
                     "%s", err);
        cr_assert_arr_eq(ret->report_data, root, 64, "REPORTDATA is the SHA-512 batch root of this leaf");
        cscp_verdict_init(&v);
        cr_assert_eq(cscp_tdx_quote_verify(ev->host_tdx_quote.data, ev->host_tdx_quote.len, &o, &v), 0);
        for (size_t i = 0; i < v.n_claims; i++)
                if (!v.claims[i].pass)
                        cr_log_error("claim %s failed: %s", v.claims[i].name, v.claims[i].detail);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);
}

static size_t count_logs(const Cscp__Evidence *ev, Cscp__LogKind k, const Cscp__Log **ret)
{
        size_t n = 0;

        for (size_t i = 0; i < ev->n_logs; i++)
                if (ev->logs[i]->kind == k) {
                        if (ret)
                                *ret = ev->logs[i];
                        n++;
                }
        return n;
}

/* Replays a log into rp; every event must parse. Returns the number of events. */
static uint64_t replay_into(cscp_replay_t *rp, const ProtobufCBinaryData *data, cscp_eventlog_format_t fmt,
                            uint32_t want_pcr)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        uint64_t n = 0;
        int r;

        cr_assert_eq(cscp_eventlog_open_mem(data->data, data->len, fmt, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                if (want_pcr != UINT32_MAX)
                        cr_assert_eq(ev->pcr, want_pcr, "record %llu carries register %u, wanted %u",
                                     (unsigned long long)ev->index, ev->pcr, want_pcr);
                cr_assert_eq(cscp_replay_extend(rp, ev), 0);
                n++;
        }
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        return n;
}

static void replay_value(const cscp_replay_t *rp, unsigned ix, uint8_t out[48])
{
        size_t len = 0;

        cr_assert_eq(cscp_replay_pcr(rp, TPM2_ALG_SHA384, ix, out, &len), 0);
        cr_assert_eq(len, 48);
}

/* The CCEL in ev: once, offset 0, replays (into rp) to the quote's RTMR0 .. RTMR(n_rtmrs - 1). */
static void assert_ccel(const Cscp__Evidence *ev, const cscp_tdx_quote_t *q, cscp_replay_t *rp, unsigned n_rtmrs)
{
        const Cscp__Log *l = NULL;
        uint8_t v[48];
        uint64_t n;

        cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_CCEL, &l), 1, "one LOG_CCEL");
        cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_BOOT, NULL), 0, "no LOG_BOOT on TDX");
        cr_assert_eq(l->offset, 0, "the CCEL is sent whole");
        cr_assert_eq(l->data.len, 18101, "the CCEL's events, without the 0xFF padding of its area");
        cscp_replay_init(rp);
        n = replay_into(rp, &l->data, CSCP_EVENTLOG_TCG, UINT32_MAX);
        cr_assert_eq(n, 44, "the Spec ID header + the 43 events of the fixture's CCEL: %llu", (unsigned long long)n);
        for (unsigned i = 0; i < n_rtmrs; i++) {
                replay_value(rp, i + 1, v);
                cr_assert_arr_eq(v, q->rtmr[i], 48, "RTMR%u of the quote = the CCEL's replay", i);
        }
}

Test(attestd_tdx, host_challenge_gets_a_td_quote_and_the_ccel)
{
        req_t rq = {.host_pcrs = "sha256:0-7,10,15",
                    .kinds = {CSCP__LOG_KIND__LOG_BOOT, CSCP__LOG_KIND__LOG_HOST_CEL},
                    .offsets = {7, 0},
                    .n_logs = 2};
        uint8_t nonce[32], want[48];
        cscp_tdx_quote_t q;
        cscp_replay_t rp;
        Cscp__Frame *f;
        const Cscp__Evidence *ev;

        start_attestd(NULL);
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        cr_assert_eq(ev->host_batch->leaf_count, 1);
        cr_assert_eq(ev->host_batch->n_siblings, 0);
        assert_ccel(ev, &q, &rp, 3);
        cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_HOST_CEL, NULL), 0, "no host log here: left out");
        {
                size_t n = 0;
                cr_assert_eq(cscp_hex_decode(mrtd_hex, want, 48, &n), 0);
                cr_assert_arr_eq(q.mrtd, want, 48, "the emulator's MRTD (the fixture's)");
        }
        cscp__frame__free_unpacked(f, NULL);

        /* LOG_CCEL and LOG_BOOT together: the CCEL once; no host PCR selection at all is fine on TDX */
        rq = (req_t){.kinds = {CSCP__LOG_KIND__LOG_CCEL, CSCP__LOG_KIND__LOG_BOOT}, .offsets = {3, 0}, .n_logs = 2};
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        assert_ccel(ev, &q, &rp, 3);
        cr_assert_eq(ev->n_logs, 1);
        cscp__frame__free_unpacked(f, NULL);

        /* without logs: no log */
        rq = (req_t){.host_pcrs = "sha384:0"};
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        cr_assert_eq(ev->n_logs, 0);
        cscp__frame__free_unpacked(f, NULL);

        /* a malformed selection is still refused */
        {
                Cscp__PcrSelection bad = CSCP__PCR_SELECTION__INIT, *bp = &bad;
                Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
                Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
                uint32_t pcrs[] = {99};
                cscp_conn_t *c = connect_plain();
                char err[256];

                bad.hash_alg = TPM2_ALG_SHA256;
                bad.pcrs = pcrs;
                bad.n_pcrs = 1;
                ch.version = CSCP_PROTOCOL_VERSION;
                ch.nonce = (ProtobufCBinaryData){.data = nonce, .len = 32};
                ch.host_pcrs = &bp;
                ch.n_host_pcrs = 1;
                req.body_case = CSCP__FRAME__BODY_CHALLENGE;
                req.challenge = &ch;
                cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ERROR);
                cr_assert_eq(resp->error->code, CSCP__ERROR_CODE__ERR_BAD_REQUEST);
                cscp__frame__free_unpacked(resp, NULL);
                cscp_conn_free(c);
        }
        cr_assert(harness_alive(&ad.proc));
}

Test(attestd_tdx, enrollment_is_unsupported)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__EnrollRequest er = CSCP__ENROLL_REQUEST__INIT;
        cscp_conn_t *c;
        char err[256];

        start_attestd(NULL);
        c = connect_plain();
        er.version = CSCP_PROTOCOL_VERSION;
        req.body_case = CSCP__FRAME__BODY_ENROLL_REQUEST;
        req.enroll_request = &er;
        cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ERROR);
        cr_assert_eq(resp->error->code, CSCP__ERROR_CODE__ERR_UNSUPPORTED);
        cr_assert_not_null(strstr(resp->error->message, "TDX host: no AK to enroll"), "%s", resp->error->message);
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
        /* the connection and the server go on */
        {
                req_t rq = {.host_pcrs = "sha256:0"};
                uint8_t nonce[32];
                cscp_tdx_quote_t q;
                Cscp__Frame *f = challenge(&rq, nonce);

                assert_td_quote(evidence_of(f), nonce, NULL, &q);
                cscp__frame__free_unpacked(f, NULL);
        }
}

#define N_CONC 16

typedef struct conc {
        cscp_conn_t *c;
        req_t rq;
        uint8_t nonce[32];
        Cscp__Frame *resp;
        int r;
        pthread_barrier_t *go;
} conc_t;

static void *conc_run(void *p)
{
        conc_t *t = p;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        Cscp__Frame req = CSCP__FRAME__INIT;
        char err[256];

        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce = (ProtobufCBinaryData){.data = t->nonce, .len = 32};
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;
        pthread_barrier_wait(t->go);
        t->r = cscp_conn_roundtrip(t->c, &req, &t->resp, err, sizeof(err));
        return NULL;
}

/* Concurrent challenges batch under one TD quote: every proof (64-byte siblings) leads to its REPORTDATA. */
Test(attestd_tdx, batched_challenges_share_one_td_quote)
{
        unsigned largest = 0;

        start_attestd(NULL);
        for (int round = 0; round < 10 && largest < 2; round++) {
                conc_t t[N_CONC];
                pthread_t th[N_CONC];
                pthread_barrier_t go;

                pthread_barrier_init(&go, NULL, N_CONC);
                for (int i = 0; i < N_CONC; i++) {
                        t[i] = (conc_t){.c = connect_plain(), .go = &go};
                        cr_assert_eq(RAND_bytes(t[i].nonce, 32), 1);
                        cr_assert_eq(pthread_create(&th[i], NULL, conc_run, &t[i]), 0);
                }
                for (int i = 0; i < N_CONC; i++)
                        pthread_join(th[i], NULL);
                pthread_barrier_destroy(&go);
                for (int i = 0; i < N_CONC; i++) {
                        cscp_tdx_quote_t q;
                        const Cscp__Evidence *ev;

                        cr_assert_eq(t[i].r, 0, "challenge %d: %s", i, cscp_strerror(t[i].r));
                        ev = evidence_of(t[i].resp);
                        assert_td_quote(ev, t[i].nonce, NULL, &q);
                        if (ev->host_batch->leaf_count > largest)
                                largest = ev->host_batch->leaf_count;
                        cscp__frame__free_unpacked(t[i].resp, NULL);
                        cscp_conn_free(t[i].c);
                }
        }
        cr_log_info("largest batch under one TD quote: %u", largest);
        cr_assert_geq(largest, 2, "%d rounds of %d concurrent challenges never batched", 10, N_CONC);
}

/* ---- vtpmd --rot tdx ---------------------------------------------------------------------------------------- */

static int start_vtpmd(const char *const *extra)
{
        char **argv = vctl_vtpmd_argv(
                sw.tcti, state, run, pki, ready,
                (const char *const *)harness_argv(tdx_args(), extra ? extra : (const char *const[]){NULL}, NULL));

        return vctl_vtpmd_spawn(argv, vlog, ready, 30000, &vd);
}

static void start_swtpm(void)
{
        int r = harness_swtpm_start(harness_path(dir, "swtpm"), &sw);

        cr_assert_eq(r, 0, "swtpm did not start: %s", strerror(-r));
}

static void rtmr2_now(uint8_t out[48])
{
        cscp_tdx_guest_paths_t p = {.mr_root = mr_root()};

        cr_assert_eq(cscp_tdx_guest_rtmr_read(&p, 2, out), 0);
}

/* The CCEL's replay, then the host log's records (each carrying register 3) into rp. */
static uint64_t replay_ccel_and_host_log(cscp_replay_t *rp, const char *log)
{
        size_t len = 0, cl = 0;
        char *bytes = harness_slurp(log, &len);
        char *ccel = harness_slurp(ccel_data, &cl);
        ProtobufCBinaryData d = {.data = (uint8_t *)bytes, .len = len}, c = {.data = (uint8_t *)ccel, .len = cl};

        cr_assert_not_null(bytes, "%s", log);
        cr_assert_not_null(ccel);
        cscp_replay_init(rp);
        replay_into(rp, &c, CSCP_EVENTLOG_TCG, UINT32_MAX);
        return replay_into(rp, &d, CSCP_EVENTLOG_CEL_TLV, 3);
}

Test(attestd_tdx, vtpmd_binds_in_rtmr2_and_attestd_proves_it)
{
        uint8_t r2_boot[48], r2[48], want[48], nonce[32];
        const char *hl = NULL;
        cscp_replay_t rp;
        uint64_t n;
        int r;

        start_swtpm();
        {
                size_t k = 0;
                cr_assert_eq(cscp_hex_decode(rtmr_hex[2], r2_boot, 48, &k), 0);
        }
        rtmr2_now(r2);
        cr_assert_arr_eq(r2, r2_boot, 48, "RTMR2 starts at the fixture's value");
        r = start_vtpmd(NULL);
        cr_assert_eq(r, 0, "vtpmd --rot tdx did not start");
        hl = harness_path(state, "host.log");
        vtpmd__vtpm_response__free_unpacked(vctl_create_ok(sock_path, &vd, "c1", NULL), NULL);
        /* Create is acknowledged once the record is durable; a Status waits until its extends are done */
        vtpmd__vtpm_response__free_unpacked(vctl_status(sock_path, &vd, "c1"), NULL);

        /* every record carries index 3; RTMR2 = CCEL replay + the records, and it moved */
        n = replay_ccel_and_host_log(&rp, hl);
        cr_assert_geq(n, 1, "no vtpm-bind record");
        replay_value(&rp, 3, want);
        rtmr2_now(r2);
        cr_assert_arr_eq(r2, want, 48, "RTMR2 = the CCEL's replay extended by the %llu host log records",
                         (unsigned long long)n);
        cr_assert(memcmp(r2, r2_boot, 48) != 0, "RTMR2 did not move");

        /* attestd: a container challenge; its SHA-512 leaf is under REPORTDATA; CCEL + host CEL = quoted RTMR2 */
        {
                const char *more[] = {"--vtpmd", sock_path, NULL};
                req_t rq = {.container = "c1",
                            .kinds = {CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_CCEL,
                                      CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                            .n_logs = 3};
                const Cscp__Log *hlog = NULL, *clog = NULL;
                cscp_tdx_quote_t q;
                cscp_replay_t rp2;
                Cscp__Frame *f;
                const Cscp__Evidence *ev;

                host_log = (char *)hl;
                start_attestd(more);
                f = challenge(&rq, nonce);
                ev = evidence_of(f);
                assert_td_quote(ev, nonce, "c1", &q);
                assert_ccel(ev, &q, &rp2, 2); /* RTMR2: the CCEL and the host log, below */
                cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_HOST_CEL, &hlog), 1);
                cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_CONTAINER_CEL, &clog), 1);
                cr_assert_eq(hlog->offset, 0);
                replay_into(&rp2, &hlog->data, CSCP_EVENTLOG_CEL_TLV, 3);
                replay_value(&rp2, 3, want);
                cr_assert_arr_eq(q.rtmr[2], want, 48, "the quote's RTMR2 = CCEL + host CEL replayed");
                cscp__frame__free_unpacked(f, NULL);
                harness_attestd_stop(&ad);
        }

        /* a restart reconciles from the CCEL's value: it comes back */
        cr_assert_eq(WEXITSTATUS(harness_stop(&vd, SIGTERM, 20000)), 0);
        vd.pid = 0;
        r = start_vtpmd(NULL);
        cr_assert_eq(r, 0, "vtpmd --rot tdx did not restart over its host log");
        rtmr2_now(r2);
        cr_assert_arr_eq(r2, want, 48, "a restart changed RTMR2");
        cr_assert_eq(WEXITSTATUS(harness_stop(&vd, SIGTERM, 20000)), 0);
        vd.pid = 0;

        /* RTMR2 extended behind vtpmd's back: it refuses to start, naming RTMR2 */
        {
                cscp_tdx_guest_paths_t p = {.mr_root = mr_root()};
                uint8_t d[48];
                char *log;
                int st = 0;

                cr_assert_eq(RAND_bytes(d, sizeof(d)), 1);
                cr_assert_eq(cscp_tdx_guest_rtmr_extend(&p, 2, d), 0);
                free(vd.log);
                vd.log = NULL;
                cr_assert_eq(harness_spawn(vctl_vtpmd_argv(sw.tcti, state, run, pki, ready, tdx_args()), vlog, &vd), 0);
                cr_assert_eq(harness_wait(&vd, 30000, &st), 0, "vtpmd runs over an RTMR2 its log does not explain");
                vd.pid = 0;
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x", (unsigned)st);
                log = harness_slurp(vlog, NULL);
                cr_assert_not_null(strstr(log, "RTMR2"), "%s", log);
                cr_assert_not_null(strstr(log, "disagree"), "%s", log);
        }
}

Test(attestd_tdx, vtpmd_refuses_tdx_without_a_tpm_or_with_a_measurement_policy)
{
        const char *base[] = {harness_path(harness_path(harness_build_dir(), "vtpmd"), "vtpmd"),
                              "--state-dir",
                              state,
                              "--run-dir",
                              run,
                              "--vtpm-ca",
                              harness_path(pki, "vtpm-ca.pem"),
                              "--vtpm-ca-key",
                              harness_path(pki, "vtpm-ca-key.pem"),
                              NULL};
        const char *policy_file = harness_path(dir, "policy.yaml");
        char *out = NULL, *err = NULL;
        int code;
        FILE *pf;

        code = harness_run_kept(harness_argv(base, tdx_args(), NULL), 30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "master key is sealed to a TPM"), "%s", err);

        pf = fopen(policy_file, "w");
        cr_assert_not_null(pf);
        fputs("backend: tpm\n", pf);
        fclose(pf);
        code = harness_run_kept(harness_argv(base, tdx_args(),
                                             (const char *[]){"--tcti", "swtpm:path=/nonexistent",
                                                              "--measurement-policy", policy_file, NULL},
                                             NULL),
                                30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "not available with --rot tdx"), "%s", err);

        code = harness_run_kept(
                harness_argv(base, tdx_args(),
                             (const char *[]){"--tcti", "swtpm:path=/nonexistent", "--host-pcr", "16", NULL}, NULL),
                30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "no RTMR"), "%s", err);
        /* the TDX path options need --rot tdx */
        code = harness_run_kept(harness_argv(base, (const char *[]){"--ccel-data", ccel_data, NULL}, NULL), 30000, &out,
                                &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "need --rot tdx"), "%s", err);
}

/*
 * A TD has no TPM: an IMA list (mainline IMA extends PCR 10 of a TPM) and a TPM boot log cannot be verified
 * against a TD quote. attestd --rot tdx reads neither, even when --ima-log / --boot-log name real files (one
 * configuration may serve TPM and TDX hosts), and says so at start-up.
 */
Test(attestd_tdx, no_ima_list_and_no_tpm_boot_log_on_tdx)
{
        static const char ima[] = "10 0000000000000000000000000000000000000000 ima-ng "
                                  "sha256:0000000000000000000000000000000000000000000000000000000000000000 "
                                  "boot_aggregate\n";
        const char *ima_file = harness_path(dir, "ima-ascii"), *boot_file = harness_path(dir, "tpm-boot-log");
        req_t rq = {.kinds = {CSCP__LOG_KIND__LOG_IMA, CSCP__LOG_KIND__LOG_BOOT, CSCP__LOG_KIND__LOG_HOST_CEL},
                    .n_logs = 3};
        uint8_t nonce[32];
        cscp_tdx_quote_t q;
        cscp_replay_t rp;
        Cscp__Frame *f;
        const Cscp__Evidence *ev;
        char *log;

        /* Files a TPM host's attestd would send: the IMA list as it is, the "boot log" as bytes. */
        cr_assert_eq(cscp_file_write_atomic(ima_file, (const uint8_t *)ima, sizeof(ima) - 1, 0600), 0);
        cr_assert_eq(cscp_file_write_atomic(boot_file, (const uint8_t *)"not a CCEL", 10, 0600), 0);
        start_attestd((const char *[]){"--ima-log", ima_file, "--boot-log", boot_file, NULL});
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        assert_ccel(ev, &q, &rp, 3); /* LOG_BOOT answered with the CCEL, no LOG_BOOT */
        cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_IMA, NULL), 0, "a TDX host sends no IMA list");
        cr_assert_eq(ev->n_logs, 1, "only the CCEL: %zu logs", ev->n_logs);
        cscp__frame__free_unpacked(f, NULL);

        /* LOG_IMA alone, from an offset: nothing */
        rq = (req_t){.kinds = {CSCP__LOG_KIND__LOG_IMA}, .offsets = {1}, .n_logs = 1};
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        cr_assert_eq(ev->n_logs, 0);
        cscp__frame__free_unpacked(f, NULL);

        log = harness_slurp(ad.proc.log, NULL); /* kept: freed with the test */
        cr_assert_not_null(log);
        cr_assert_not_null(strstr(log, "--boot-log and --ima-log are not read"), "%s", log);
        cr_assert(harness_alive(&ad.proc));
}

Test(attestd_tdx, attestd_options_are_checked)
{
        const char *bin = harness_path(harness_build_dir(), "attestd");
        char *out = NULL, *err = NULL;
        int code;

        code = harness_run_kept(harness_argv((const char *[]){bin, "--rot", "sev", NULL}, NULL), 30000, &out, &err);
        cr_assert_eq(code, 1);
        cr_assert_not_null(strstr(err, "--rot must be tpm or tdx"), "%s", err);
        code = harness_run_kept(
                harness_argv((const char *[]){bin, "--rot", "tdx", "--tcti", "swtpm:path=/x", NULL}, NULL), 30000, &out,
                &err);
        cr_assert_eq(code, 1);
        cr_assert_not_null(strstr(err, "are for --rot tpm"), "%s", err);
        code = harness_run_kept(harness_argv((const char *[]){bin, "--tsm-root", "/x", NULL}, NULL), 30000, &out, &err);
        cr_assert_eq(code, 1);
        cr_assert_not_null(strstr(err, "need --rot tdx"), "%s", err);
        code = harness_run_kept(harness_argv((const char *[]){bin, "--help", NULL}, NULL), 30000, &out, &err);
        cr_assert_eq(code, 0);
        cr_assert_not_null(strstr(out, "--rot tpm|tdx"), "%s", out);
        cr_assert_not_null(strstr(out, "--ccel-data FILE"), "%s", out);
        cr_assert_not_null(strstr(out, "tdx: --boot-log and --ima-log are not read"), "%s", out);
        /* no TDX where the paths lead nowhere: a startup error naming why */
        code = harness_run_kept(
                harness_argv((const char *[]){bin, "--rot", "tdx", "--insecure-plaintext", "--listen", "127.0.0.1:0",
                                              "--tsm-root", harness_path(dir, "nothing"), NULL},
                             NULL),
                30000, &out, &err);
        cr_assert_eq(code, 1);
        cr_assert_not_null(strstr(err, "no TDX guest here"), "%s", err);
}
