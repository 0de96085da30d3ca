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
#include "tdxrig.h"
#include "util.h"
#include "vctl.h"
#include "verdict.h"

static tdxrig_t rig;

static void setup(void)
{
        tdxrig_setup(&rig);
}

static void teardown(void)
{
        int st = 0;
        bool clean = tdxrig_teardown(&rig, &st);

        cr_assert(clean, "vtpmd did not stop cleanly on SIGTERM (wait status 0x%x)", (unsigned)st);
}

TestSuite(attestd_tdx, .init = setup, .fini = teardown, .timeout = 240);

static cscp_conn_t *connect_plain(void)
{
        cscp_client_opts_t o = {.server = rig.ad.addr, .insecure_plaintext = true, .timeout_ms = 30000};
        cscp_conn_t *c = NULL;
        char err[512];

        cr_assert_eq(cscp_conn_open(&o, &c, err, sizeof(err)), 0, "connect: %s", err);
        return c;
}

/* host_pcrs NULL: none (allowed on TDX); a container challenge asks for the container's sha256:0-23. */
typedef harness_challenge_t req_t;

/* One Challenge with a fresh 32-byte nonce (into nonce); the caller frees the answer. */
static Cscp__Frame *challenge_on(cscp_conn_t *c, const req_t *rq, uint8_t nonce[32])
{
        req_t s = *rq;

        if (s.container && !s.container_pcrs)
                s.container_pcrs = "sha256:0-23";
        return harness_challenge(c, &s, nonce);
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
        cscp_tdx_verify_opts_t o = {.root_file = rig.emu_root, .report_data = root};
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

        tdxrig_attestd_start(&rig, NULL, NULL);
        f = challenge(&rq, nonce);
        ev = evidence_of(f);
        assert_td_quote(ev, nonce, NULL, &q);
        cr_assert_eq(ev->host_batch->leaf_count, 1);
        cr_assert_eq(ev->host_batch->n_siblings, 0);
        assert_ccel(ev, &q, &rp, 3);
        cr_assert_eq(count_logs(ev, CSCP__LOG_KIND__LOG_HOST_CEL, NULL), 0, "no host log here: left out");
        {
                size_t n = 0;
                cr_assert_eq(cscp_hex_decode(tdxrig_mrtd_hex, want, 48, &n), 0);
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
        cr_assert(harness_alive(&rig.ad.proc));
}

Test(attestd_tdx, enrollment_is_unsupported)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__EnrollRequest er = CSCP__ENROLL_REQUEST__INIT;
        cscp_conn_t *c;
        char err[256];

        tdxrig_attestd_start(&rig, NULL, NULL);
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

        tdxrig_attestd_start(&rig, NULL, NULL);
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

static void rtmr2_now(uint8_t out[48])
{
        cscp_tdx_guest_paths_t p = {.mr_root = rig.mr_root};

        cr_assert_eq(cscp_tdx_guest_rtmr_read(&p, 2, out), 0);
}

/* The CCEL's replay, then the host log's records (each carrying register 3) into rp. */
static uint64_t replay_ccel_and_host_log(cscp_replay_t *rp, const char *log)
{
        size_t len = 0, cl = 0;
        char *bytes = harness_slurp(log, &len);
        char *ccel = harness_slurp(rig.ccel_data, &cl);
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

        tdxrig_swtpm_start(&rig);
        {
                size_t k = 0;
                cr_assert_eq(cscp_hex_decode(tdxrig_rtmr_hex[2], r2_boot, 48, &k), 0);
        }
        rtmr2_now(r2);
        cr_assert_arr_eq(r2, r2_boot, 48, "RTMR2 starts at the fixture's value");
        r = tdxrig_vtpmd_start(&rig, NULL);
        cr_assert_eq(r, 0, "vtpmd --rot tdx did not start");
        hl = harness_path(rig.state, "host.log");
        vtpmd__vtpm_response__free_unpacked(vctl_create_ok(rig.sock, &rig.vd, "c1", NULL), NULL);
        /* Create is acknowledged once the record is durable; a Status waits until its extends are done */
        vtpmd__vtpm_response__free_unpacked(vctl_status(rig.sock, &rig.vd, "c1"), NULL);

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
                const char *more[] = {"--vtpmd", rig.sock, NULL};
                req_t rq = {.container = "c1",
                            .kinds = {CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_CCEL,
                                      CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                            .n_logs = 3};
                const Cscp__Log *hlog = NULL, *clog = NULL;
                cscp_tdx_quote_t q;
                cscp_replay_t rp2;
                Cscp__Frame *f;
                const Cscp__Evidence *ev;

                rig.host_log = (char *)hl;
                tdxrig_attestd_start(&rig, NULL, more);
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
                harness_attestd_stop(&rig.ad);
        }

        /* a restart reconciles from the CCEL's value: it comes back */
        cr_assert_eq(WEXITSTATUS(harness_stop(&rig.vd, SIGTERM, 20000)), 0);
        rig.vd.pid = 0;
        r = tdxrig_vtpmd_start(&rig, NULL);
        cr_assert_eq(r, 0, "vtpmd --rot tdx did not restart over its host log");
        rtmr2_now(r2);
        cr_assert_arr_eq(r2, want, 48, "a restart changed RTMR2");
        cr_assert_eq(WEXITSTATUS(harness_stop(&rig.vd, SIGTERM, 20000)), 0);
        rig.vd.pid = 0;

        /* RTMR2 extended behind vtpmd's back: it refuses to start, naming RTMR2 */
        {
                cscp_tdx_guest_paths_t p = {.mr_root = rig.mr_root};
                uint8_t d[48];
                char *log;
                int st = 0;

                cr_assert_eq(RAND_bytes(d, sizeof(d)), 1);
                cr_assert_eq(cscp_tdx_guest_rtmr_extend(&p, 2, d), 0);
                free(rig.vd.log);
                rig.vd.log = NULL;
                cr_assert_eq(harness_spawn(vctl_vtpmd_argv(rig.sw.tcti, rig.state, rig.run, rig.pki, rig.ready,
                                                           tdxrig_tdx_args(&rig)),
                                           rig.vlog, &rig.vd),
                             0);
                cr_assert_eq(harness_wait(&rig.vd, 30000, &st), 0, "vtpmd runs over an RTMR2 its log does not explain");
                rig.vd.pid = 0;
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x", (unsigned)st);
                log = harness_slurp(rig.vlog, NULL);
                cr_assert_not_null(strstr(log, "RTMR2"), "%s", log);
                cr_assert_not_null(strstr(log, "disagree"), "%s", log);
        }
}

Test(attestd_tdx, vtpmd_refuses_tdx_without_a_tpm_or_with_a_measurement_policy)
{
        const char *base[] = {harness_path(harness_path(harness_build_dir(), "vtpmd"), "vtpmd"),
                              "--state-dir",
                              rig.state,
                              "--run-dir",
                              rig.run,
                              "--vtpm-ca",
                              harness_path(rig.pki, "vtpm-ca.pem"),
                              "--vtpm-ca-key",
                              harness_path(rig.pki, "vtpm-ca-key.pem"),
                              NULL};
        const char *policy_file = harness_path(rig.dir, "policy.yaml");
        char *out = NULL, *err = NULL;
        int code;
        FILE *pf;

        code = harness_run_kept(harness_argv(base, tdxrig_tdx_args(&rig), NULL), 30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "master key is sealed to a TPM"), "%s", err);

        pf = fopen(policy_file, "w");
        cr_assert_not_null(pf);
        fputs("backend: tpm\n", pf);
        fclose(pf);
        code = harness_run_kept(harness_argv(base, tdxrig_tdx_args(&rig),
                                             (const char *[]){"--tcti", "swtpm:path=/nonexistent",
                                                              "--measurement-policy", policy_file, NULL},
                                             NULL),
                                30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "not available with --rot tdx"), "%s", err);

        code = harness_run_kept(
                harness_argv(base, tdxrig_tdx_args(&rig),
                             (const char *[]){"--tcti", "swtpm:path=/nonexistent", "--host-pcr", "16", NULL}, NULL),
                30000, &out, &err);
        cr_assert_eq(code, 1, "exit %d: %s", code, err);
        cr_assert_not_null(strstr(err, "no RTMR"), "%s", err);
        /* the TDX path options need --rot tdx */
        code = harness_run_kept(harness_argv(base, (const char *[]){"--ccel-data", rig.ccel_data, NULL}, NULL), 30000,
                                &out, &err);
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
        const char *ima_file = harness_path(rig.dir, "ima-ascii"), *boot_file = harness_path(rig.dir, "tpm-boot-log");
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
        tdxrig_attestd_start(&rig, NULL, (const char *[]){"--ima-log", ima_file, "--boot-log", boot_file, NULL});
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

        log = harness_slurp(rig.ad.proc.log, NULL); /* kept: freed with the test */
        cr_assert_not_null(log);
        cr_assert_not_null(strstr(log, "--boot-log and --ima-log are not read"), "%s", log);
        cr_assert(harness_alive(&rig.ad.proc));
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
                                              "--tsm-root", harness_path(rig.dir, "nothing"), NULL},
                             NULL),
                30000, &out, &err);
        cr_assert_eq(code, 1);
        cr_assert_not_null(strstr(err, "no TDX guest here"), "%s", err);
}
