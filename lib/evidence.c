/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cel.h"
#include "error.h"
#include "evidence.h"
#include "frame.h"
#include "logcheck.h"
#include "merkle.h"
#include "quote.h"
#include "tdx.h"
#include "util.h"

int cscp_quote_from_wire(const Cscp__Quote *wq, cscp_pcr_value_t **ret_pcrs, size_t *ret_n)
{
        cscp_pcr_value_t *pcrs;

        /* At most every PCR of every bank: anything more is not a quote's worth of values. */
        if (wq->n_pcrs > (size_t)TPM2_NUM_PCR_BANKS * CSCP_PCR_COUNT)
                return CSCP_E_TOO_BIG;
        pcrs = calloc(wq->n_pcrs ? wq->n_pcrs : 1, sizeof(*pcrs));
        if (!pcrs)
                return -ENOMEM;
        for (size_t i = 0; i < wq->n_pcrs; i++) {
                const Cscp__PcrValue *w = wq->pcrs[i];
                if (!w || w->hash_alg > 0xffff || w->index >= CSCP_PCR_COUNT || w->value.len > sizeof(pcrs[i].value)) {
                        free(pcrs);
                        return CSCP_E_PROTO;
                }
                pcrs[i].hash_alg = (uint16_t)w->hash_alg;
                pcrs[i].index = (uint16_t)w->index;
                pcrs[i].size = (uint16_t)w->value.len;
                if (w->value.len)
                        memcpy(pcrs[i].value, w->value.data, w->value.len);
        }
        *ret_pcrs = pcrs;
        *ret_n = wq->n_pcrs;
        return 0;
}

static void verify_quote(const Cscp__Quote *wq, const char *prefix, const cscp_quote_opts_t *base, cscp_verdict_t *v)
{
        cscp_quote_opts_t opts = *base;
        cscp_pcr_value_t *pcrs = NULL;
        size_t n = 0;
        char name[64];
        int r;

        opts.prefix = prefix;
        snprintf(name, sizeof(name), "%squote", prefix);
        r = cscp_quote_from_wire(wq, &pcrs, &n);
        if (r < 0) {
                cscp_verdict_claim(v, name, false, "PCR values malformed: %s", cscp_strerror(r));
                return;
        }
        cscp_quote_t q = {
                .attest = wq->attest.data,
                .attest_len = wq->attest.len,
                .sig = wq->signature.data,
                .sig_len = wq->signature.len,
                .ak_public = wq->ak_public.data,
                .ak_public_len = wq->ak_public.len,
                .pcrs = pcrs,
                .n_pcrs = n,
        };
        r = cscp_quote_verify(&q, &opts, v);
        if (r < 0)
                cscp_verdict_error(v, "quote verification failed: %s", cscp_strerror(r));
        free(pcrs);
}

/* ---- logs ------------------------------------------------------------------------------------ */

enum { HOST_LOG_BOOT, HOST_LOG_SYSTEMD, HOST_LOG_IMA, HOST_LOG_PROC, HOST_LOG_BIND, HOST_LOG_N };

/* A host log the verifier replays: its wire kind, its name in claims, its format. */
typedef struct logspec {
        Cscp__LogKind kind;
        const char *name;
        cscp_eventlog_format_t fmt;
} logspec_t;

/* Host logs in the order their events reach the TPM where they share PCRs (systemd before vtpmd). */
static const logspec_t host_logs[HOST_LOG_N] = {
        [HOST_LOG_BOOT] = {CSCP__LOG_KIND__LOG_BOOT, "boot", CSCP_EVENTLOG_TCG},
        [HOST_LOG_SYSTEMD] = {CSCP__LOG_KIND__LOG_SYSTEMD_CEL, "systemd", CSCP_EVENTLOG_CEL_JSON},
        [HOST_LOG_IMA] = {CSCP__LOG_KIND__LOG_IMA, "ima", CSCP_EVENTLOG_AUTO},
        [HOST_LOG_PROC] = {CSCP__LOG_KIND__LOG_HOST_PROC_CEL, "host-proc", CSCP_EVENTLOG_CEL_TLV},
        [HOST_LOG_BIND] = {CSCP__LOG_KIND__LOG_HOST_CEL, "host", CSCP_EVENTLOG_CEL_TLV},
};

#define IMA_PCR             10
#define IMA_CHECKPOINT      "ima"
#define IMA_CKPT_MAGIC      "CSCPIMA1"
#define IMA_CKPT_HEADER     (8 + 4 + 8) /* magic, resetCount, next event index */
#define MAX_BIND_RECORDS    100000
#define MAX_LISTED_FAILURES 8

typedef struct bindrec {
        uint64_t seq, index;
        uint32_t reg; /* the register the record extends: a PCR, or on TDX the CC index (3 = RTMR2) */
        bool destroy;
        uint8_t vak[sizeof(TPMU_NAME)];
        size_t vak_len;
        uint8_t vek[32];
        bool has_vek;
} bindrec_t;

typedef struct feedctx {
        const char *container_id;
        bindrec_t *recs;
        size_t n_recs, cap_recs;
        cscp_appraisal_t *appraisal;
        bool appraise;
        cscp_replay_t boot; /* boot log replay for boot.pcrs */
        bool boot_log;
} feedctx_t;

static int feed_cb(void *userdata, unsigned log_no, const cscp_event_t *ev, uint64_t seq)
{
        feedctx_t *c = userdata;
        (void)log_no;

        if (c->boot_log) {
                int r = cscp_replay_extend(&c->boot, ev);
                if (r < 0)
                        return r;
        }
        if (c->appraise && c->appraisal) {
                int r = cscp_appraisal_event(c->appraisal, ev);
                if (r < 0)
                        return r;
        }
        if (c->container_id && ev->type == CSCP_CEL_CM_TLV && ev->data) {
                cscp_cm_record_t rec;
                bindrec_t *b;
                size_t idl = strlen(c->container_id);
                bool bind, destroy;

                /* Only a record that extends a register can be covered by a quote: one that extends nothing
                 * (an NV index or CC register type, no digest) would otherwise inherit the attestation of
                 * the record before it. */
                if (!ev->extend || ev->reg != CSCP_EVENT_PCR || ev->n_digests == 0)
                        return 0;
                if (cscp_cm_decode(ev->data, ev->data_len, &rec) < 0 || rec.kind != CSCP_CM_CONTAINER ||
                    !rec.f[CSCP_CM_F_EVENT].data || !rec.f[CSCP_CM_F_CONTAINER_ID].data)
                        return 0;
                bind = rec.f[CSCP_CM_F_EVENT].len == 9 && memcmp(rec.f[CSCP_CM_F_EVENT].data, "vtpm-bind", 9) == 0;
                destroy = rec.f[CSCP_CM_F_EVENT].len == 12 &&
                          memcmp(rec.f[CSCP_CM_F_EVENT].data, "vtpm-destroy", 12) == 0;
                if ((!bind && !destroy) || rec.f[CSCP_CM_F_CONTAINER_ID].len != idl ||
                    memcmp(rec.f[CSCP_CM_F_CONTAINER_ID].data, c->container_id, idl) != 0)
                        return 0;
                if (c->n_recs == c->cap_recs) {
                        size_t cap = c->cap_recs ? c->cap_recs * 2 : 8;
                        bindrec_t *n;
                        if (c->n_recs >= MAX_BIND_RECORDS)
                                return CSCP_E_TOO_BIG;
                        n = realloc(c->recs, cap * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        c->recs = n;
                        c->cap_recs = cap;
                }
                b = &c->recs[c->n_recs++];
                memset(b, 0, sizeof(*b));
                b->seq = seq;
                b->index = ev->index;
                b->reg = ev->pcr;
                b->destroy = destroy;
                if (rec.f[CSCP_CM_F_VAK_NAME].data && rec.f[CSCP_CM_F_VAK_NAME].len <= sizeof(b->vak)) {
                        memcpy(b->vak, rec.f[CSCP_CM_F_VAK_NAME].data, rec.f[CSCP_CM_F_VAK_NAME].len);
                        b->vak_len = rec.f[CSCP_CM_F_VAK_NAME].len;
                }
                if (rec.f[CSCP_CM_F_VEK_SHA256].data && rec.f[CSCP_CM_F_VEK_SHA256].len == 32) {
                        memcpy(b->vek, rec.f[CSCP_CM_F_VEK_SHA256].data, 32);
                        b->has_vek = true;
                }
        }
        return 0;
}

static const Cscp__Log *find_log(const Cscp__Evidence *ev, Cscp__LogKind kind, bool *dup)
{
        const Cscp__Log *found = NULL;

        for (size_t i = 0; i < ev->n_logs; i++)
                if (ev->logs[i] && ev->logs[i]->kind == kind) {
                        if (found)
                                *dup = true;
                        found = ev->logs[i];
                }
        return found;
}

/* One claim for the replay of a set of logs against a quote's values. */
static void replay_claim(cscp_verdict_t *v, const char *name, const cscp_logcheck_t *lc, const char *logs)
{
        char fails[512] = "";
        size_t n = cscp_logcheck_n_pcrs(lc), bad = 0, len = 0;
        uint64_t ahead = 0;
        for (size_t i = 0; i < n; i++) {
                const cscp_logcheck_pcr_t *p = cscp_logcheck_pcr(lc, i);
                if (p->matched) {
                        ahead += p->events - p->attested;
                        continue;
                }
                if (bad++ < MAX_LISTED_FAILURES && len < sizeof(fails)) {
                        int w = snprintf(fails + len, sizeof(fails) - len, "%s%s:%u (%" PRIu64 " events)",
                                         len ? ", " : "", cscp_hash_alg_name(p->alg), p->pcr, p->events);
                        if (w > 0)
                                len += (size_t)w;
                }
        }
        if (bad)
                cscp_verdict_claim(v, name, false,
                                   "%zu quoted PCR value(s) are not the replay of %s: %s%s; the quote covers a "
                                   "state these logs do not explain",
                                   bad, logs, fails, bad > MAX_LISTED_FAILURES ? ", ..." : "");
        else
                cscp_verdict_claim(v, name, true,
                                   "all %zu quoted PCR values equal the replay of %s (%" PRIu64
                                   " later event(s) not yet attested)",
                                   n, logs, ahead);
}

static void log_fact(cscp_verdict_t *v, const char *prefix, const char *name, const cscp_logcheck_t *lc,
                     unsigned log_no, uint64_t first)
{
        uint64_t events, prefix_n, un;
        uint32_t pcrs;
        char key[64];

        if (cscp_logcheck_log_counts(lc, log_no, &events, &prefix_n, &un, &pcrs) < 0)
                return;
        snprintf(key, sizeof(key), "%slog-%s", prefix, name);
        cscp_verdict_fact(v, key,
                          "events %" PRIu64 "..%" PRIu64 " sent, %" PRIu64 " covered by the quote, %" PRIu64
                          " not (logged after the quote, or on a PCR not quoted), PCR mask 0x%06" PRIx32,
                          first, first + events, events - un, un, pcrs);
}

/* Policy violations from attested events only (a log running ahead of the quote proves nothing yet). */
typedef struct logmap {
        const char *name;
        unsigned log_no;
        uint64_t first_index, first_seq;
        const cscp_logcheck_t *lc;
} logmap_t;

/* ---- clock ----------------------------------------------------------------------------------- */

static void clock_claim(cscp_verdict_t *v, const char *name, cscp_store_t *store, const char *who,
                        const uint8_t *attest, size_t attest_len, const uint8_t *ak_public, size_t ak_public_len,
                        const cscp_policy_t *policy)
{
        TPMS_ATTEST a;
        TPM2B_NAME akn = {0};
        cscp_clock_t now, last;
        bool had = false, reboot_ok, restart_ok;
        const char *safe;
        int r;

        cscp_policy_resets(policy, &reboot_ok, &restart_ok);
        if (cscp_attest_parse(attest, attest_len, &a) < 0 || cscp_tpm_public_name(ak_public, ak_public_len, &akn) < 0) {
                cscp_verdict_claim(v, name, false, "%s clockInfo not readable", who);
                return;
        }
        now = (cscp_clock_t){.clock = a.clockInfo.clock,
                             .reset_count = a.clockInfo.resetCount,
                             .restart_count = a.clockInfo.restartCount,
                             .safe = a.clockInfo.safe == TPM2_YES};
        if (!store) {
                cscp_verdict_fact(v, name,
                                  "not checked (no store): resetCount %" PRIu32 ", restartCount %" PRIu32
                                  ", clock %" PRIu64 " ms",
                                  now.reset_count, now.restart_count, now.clock);
                return;
        }
        r = cscp_store_clock_swap(store, akn.name, akn.size, &now, &last, &had);
        if (r < 0) {
                cscp_verdict_error(v, "store: cannot record the %s clock: %s (%s)", who, cscp_strerror(r),
                                   cscp_store_error(store));
                return;
        }
        /* safe = NO: the clock may have read higher before an unorderly stop. It is reported, and the
         * comparisons below never trust a clock across a reset or restart anyway. */
        safe = now.safe ? "" : " (clockInfo.safe = NO: the TPM stopped without an orderly shutdown)";
        if (!had) {
                cscp_verdict_claim(v, name, true,
                                   "first challenge of this %s AK: resetCount %" PRIu32 ", restartCount %" PRIu32
                                   ", clock %" PRIu64 " ms recorded%s",
                                   who, now.reset_count, now.restart_count, now.clock, safe);
                return;
        }
        if (now.reset_count < last.reset_count)
                cscp_verdict_claim(v, name, false,
                                   "%s resetCount went back from %" PRIu32 " to %" PRIu32 " (a replayed quote or a "
                                   "rolled-back TPM)%s",
                                   who, last.reset_count, now.reset_count, safe);
        else if (now.reset_count > last.reset_count)
                cscp_verdict_claim(v, name, reboot_ok,
                                   "%s TPM was reset since the last challenge (resetCount %" PRIu32 " -> %" PRIu32
                                   ")%s%s",
                                   who, last.reset_count, now.reset_count,
                                   reboot_ok ? ": allowed by resets.allow_reboot" : ": its PCRs started over", safe);
        else if (now.restart_count < last.restart_count)
                cscp_verdict_claim(v, name, false,
                                   "%s restartCount went back from %" PRIu32 " to %" PRIu32 " within one reset%s", who,
                                   last.restart_count, now.restart_count, safe);
        else if (now.restart_count > last.restart_count)
                cscp_verdict_claim(v, name, restart_ok,
                                   "%s TPM was restarted since the last challenge (restartCount %" PRIu32 " -> %" PRIu32
                                   ")%s%s",
                                   who, last.restart_count, now.restart_count,
                                   restart_ok ? ": allowed by resets.allow_restart" : "", safe);
        else if (now.clock < last.clock)
                cscp_verdict_claim(v, name, false,
                                   "%s clock went backwards from %" PRIu64 " to %" PRIu64
                                   " ms within one reset (a replayed quote)%s",
                                   who, last.clock, now.clock, safe);
        else
                cscp_verdict_claim(v, name, true,
                                   "%s resetCount %" PRIu32 ", restartCount %" PRIu32 ", clock %" PRIu64
                                   " ms: no reset since the last challenge%s",
                                   who, now.reset_count, now.restart_count, now.clock, safe);
}

static bool claim_passed(const cscp_verdict_t *v, const char *name)
{
        const cscp_claim_t *c = cscp_verdict_find(v, name);
        return c && c->pass;
}

/* ---- IMA checkpoint -------------------------------------------------------------------------- */

static uint64_t get_be(const uint8_t *p, size_t n)
{
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++)
                x = x << 8 | p[i];
        return x;
}

static void put_be(uint8_t *p, uint64_t x, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
}

static int ima_ckpt_load(cscp_store_t *store, const char *host, uint32_t *ret_reset, uint64_t *ret_next,
                         cscp_replay_t *ret)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int r = cscp_store_checkpoint_get(store, host, IMA_CHECKPOINT, &buf, &len);

        if (r < 0)
                return r;
        if (len < IMA_CKPT_HEADER || memcmp(buf, IMA_CKPT_MAGIC, 8) != 0)
                r = CSCP_E_STATE;
        else {
                *ret_reset = (uint32_t)get_be(buf + 8, 4);
                *ret_next = get_be(buf + 12, 8);
                r = ret ? cscp_replay_load(buf + IMA_CKPT_HEADER, len - IMA_CKPT_HEADER, ret) : 0;
        }
        free(buf);
        return r;
}

static int ima_ckpt_save(cscp_store_t *store, const char *host, uint32_t reset, uint64_t next, const cscp_replay_t *rp)
{
        cscp_replay_t ck = *rp;
        uint8_t *blob = NULL, *buf;
        size_t len = 0;
        int r;

        /* The PCR values are what matters; the position is in our header (an event index, not a byte offset). */
        ck.format = CSCP_EVENTLOG_IMA_BINARY;
        ck.next_index = next;
        ck.next_offset = 0;
        ck.parser_state_len = 0;
        ck.tail_len = 0;
        r = cscp_replay_save(&ck, &blob, &len);

        if (r < 0)
                return r;
        buf = malloc(IMA_CKPT_HEADER + len);
        if (!buf) {
                free(blob);
                return -ENOMEM;
        }
        memcpy(buf, IMA_CKPT_MAGIC, 8);
        put_be(buf + 8, reset, 4);
        put_be(buf + 12, next, 8);
        memcpy(buf + IMA_CKPT_HEADER, blob, len);
        r = cscp_store_checkpoint_put(store, host, IMA_CHECKPOINT, buf, IMA_CKPT_HEADER + len);
        free(blob);
        free(buf);
        return r;
}

int cscp_evidence_ima_offset(cscp_store_t *store, const char *host, uint64_t *ret)
{
        uint32_t reset;
        uint64_t next;
        int r;

        *ret = 0;
        if (!store || !host)
                return 0;
        r = ima_ckpt_load(store, host, &reset, &next, NULL);
        if (r == -ENOENT || r == CSCP_E_STATE)
                return 0;
        if (r < 0)
                return r;
        *ret = next;
        return 0;
}

/* Whether the checkpoint holds PCR 10 in every bank the quote has it in (IMA lists are replayed in quoted banks). */
static bool ckpt_has_banks(const cscp_replay_t *ck, const cscp_pcr_value_t *pcrs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                if (pcrs[i].index != IMA_PCR)
                        continue;
                for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++)
                        if (ck->banks[b] == pcrs[i].hash_alg && (ck->extended[b] & (1u << IMA_PCR)))
                                found = true;
                if (!found)
                        return false;
        }
        return true;
}

/* ---- the verifier ---------------------------------------------------------------------------- */

static void vek_cert_claim(cscp_verdict_t *v, const Cscp__Evidence *ev, const cscp_expect_t *want)
{
        const uint8_t *p = ev->vtpm_ek_certificate.data;
        X509 *cert = NULL;
        X509_STORE_CTX *ctx = NULL;
        EVP_PKEY *ek = NULL;
        int r;

        if (!ev->vtpm_ek_certificate.len) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false, "evidence carries no vTPM EK certificate");
                return;
        }
        if (!want->vtpm_ca) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false,
                                   "no vTPM manufacturer CA to check the vEK certificate against (--vtpm-ca)");
                return;
        }
        if (ev->vtpm_ek_certificate.len > 64 * 1024 ||
            !(cert = d2i_X509(NULL, &p, (long)ev->vtpm_ek_certificate.len)) ||
            p != ev->vtpm_ek_certificate.data + ev->vtpm_ek_certificate.len) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false, "the vEK certificate is not one DER certificate");
                goto out;
        }
        ctx = X509_STORE_CTX_new();
        if (!ctx || X509_STORE_CTX_init(ctx, want->vtpm_ca, cert, NULL) != 1) {
                cscp_verdict_error(v, "cannot set up certificate verification");
                goto out;
        }
        if (X509_verify_cert(ctx) != 1) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false, "the vEK certificate does not chain to %s: %s",
                                   want->vtpm_ca_name ? want->vtpm_ca_name : "the vTPM manufacturer CA",
                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
                goto out;
        }
        r = cscp_tpm_public_to_pkey(ev->vtpm_ek_public.data, ev->vtpm_ek_public.len, &ek);
        if (r < 0) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false, "the vEK public area does not parse: %s",
                                   cscp_strerror(r));
                goto out;
        }
        if (EVP_PKEY_eq(X509_get0_pubkey(cert), ek) != 1) {
                cscp_verdict_claim(v, "vtpm-ek-cert", false,
                                   "the vEK certificate chains to the CA but certifies another key than the vEK");
                goto out;
        }
        cscp_verdict_claim(v, "vtpm-ek-cert", true, "the vEK certificate chains to %s and certifies the vEK",
                           want->vtpm_ca_name ? want->vtpm_ca_name : "the vTPM manufacturer CA");
out:
        EVP_PKEY_free(ek);
        X509_STORE_CTX_free(ctx);
        X509_free(cert);
}

static void bind_claim(cscp_verdict_t *v, const feedctx_t *fc, const cscp_logcheck_t *lc, bool host_log_present,
                       const Cscp__Evidence *ev, const char *id, bool tdx)
{
        char where[48];
        TPM2B_NAME vak = {0};
        uint8_t vek[32];
        const bindrec_t *last = NULL;
        size_t unattested_after = 0;
        char hex[2 * sizeof(TPMU_NAME) + 1];
        const char *note;

        if (!host_log_present) {
                cscp_verdict_claim(v, "vtpm-bind", false, "evidence carries no host CEL log (its vtpm-bind records)");
                return;
        }
        for (size_t i = 0; i < fc->n_recs; i++) {
                if (cscp_logcheck_attested(lc, fc->recs[i].seq)) {
                        last = &fc->recs[i];
                        unattested_after = 0;
                } else
                        unattested_after++;
        }
        /* Records for this container after the last attested one: forged, or logged after the quote. */
        note = unattested_after ? "; a later record for it in the log is not covered by the host quote (forged, or "
                                  "logged after the quote)"
                                : "";
        if (!last) {
                cscp_verdict_claim(v, "vtpm-bind", false,
                                   "no vtpm-bind record for container '%.64s' is covered by the host quote%s", id,
                                   note);
                return;
        }
        if (last->destroy) {
                cscp_verdict_claim(v, "vtpm-bind", false,
                                   "container '%.64s' has a vtpm-destroy record (host log event %" PRIu64
                                   ") after its last bind%s",
                                   id, last->index, note);
                return;
        }
        if (!ev->container_quote ||
            cscp_tpm_public_name(ev->container_quote->ak_public.data, ev->container_quote->ak_public.len, &vak) < 0) {
                cscp_verdict_claim(v, "vtpm-bind", false, "the container quote's AK public does not parse");
                return;
        }
        if (last->vak_len != vak.size || CRYPTO_memcmp(last->vak, vak.name, vak.size) != 0) {
                cscp_hex_encode(vak.name, vak.size, hex);
                cscp_verdict_claim(v, "vtpm-bind", false,
                                   "the vtpm-bind record of '%.64s' (host log event %" PRIu64
                                   ") names another vAK than %s, which signed the container quote%s",
                                   id, last->index, hex, note);
                return;
        }
        if (!last->has_vek || !ev->vtpm_ek_public.len ||
            EVP_Digest(ev->vtpm_ek_public.data, ev->vtpm_ek_public.len, vek, NULL, EVP_sha256(), NULL) != 1 ||
            CRYPTO_memcmp(vek, last->vek, 32) != 0) {
                cscp_verdict_claim(v, "vtpm-bind", false,
                                   "the vtpm-bind record of '%.64s' (host log event %" PRIu64
                                   ") names another vEK than the one in the evidence%s",
                                   id, last->index, note);
                return;
        }
        cscp_hex_encode(vak.name, vak.size, hex);
        if (tdx)
                snprintf(where, sizeof(where), "RTMR%u (CC index %u)", last->reg - 1, last->reg);
        else
                snprintf(where, sizeof(where), "PCR %u", last->reg);
        cscp_verdict_claim(v, "vtpm-bind", true,
                           "host log event %" PRIu64 " (%s, covered by the host quote) binds '%.64s' to vAK %s and "
                           "its vEK; no later vtpm-destroy%s",
                           last->index, where, id, hex,
                           unattested_after ? " covered by the quote (a later record is not yet attested)" : "");
}

static void policy_claim(cscp_verdict_t *v, cscp_appraisal_t *a, const logmap_t *maps, size_t n_maps, bool tdx)
{
        size_t n = 0, shown = 0, counted = 0;
        const cscp_violation_t *vs = cscp_appraisal_violations(a, &n);
        char list[1024] = "";
        size_t len = 0;

        for (size_t i = 0; i < n; i++) {
                const cscp_violation_t *x = &vs[i];
                bool attested = true;

                if (x->event >= 0)
                        for (size_t m = 0; m < n_maps; m++)
                                if (maps[m].lc && x->log && strcmp(x->log, maps[m].name) == 0) {
                                        uint64_t e = (uint64_t)x->event;
                                        attested = e >= maps[m].first_index &&
                                                   cscp_logcheck_attested(maps[m].lc,
                                                                          maps[m].first_seq + e - maps[m].first_index);
                                }
                if (!attested)
                        continue;
                counted++;
                if (tdx && x->rule && strcmp(x->rule, "boot.pcrs") == 0) {
                        /* boot.pcrs names TPM PCRs: a TD quote holds RTMRs, which are not mapped to them. */
                        if (shown < MAX_LISTED_FAILURES && len < sizeof(list)) {
                                int w = snprintf(list + len, sizeof(list) - len,
                                                 "%sboot.pcrs: the policy names host PCRs, and a TDX host has none "
                                                 "(its quote holds MRTD and RTMR0..3, which boot.pcrs does not name)",
                                                 len ? "; " : "");
                                if (w > 0)
                                        len += (size_t)w;
                                shown++;
                        }
                        continue;
                }
                if (shown < MAX_LISTED_FAILURES && len < sizeof(list)) {
                        int w = x->event >= 0
                                        ? snprintf(list + len, sizeof(list) - len, "%s%s (%s event %" PRId64 "): %s",
                                                   len ? "; " : "", x->rule, x->log ? x->log : "?", x->event, x->detail)
                                        : snprintf(list + len, sizeof(list) - len, "%s%s (%s): %s", len ? "; " : "",
                                                   x->rule, x->log ? x->log : "?", x->detail);
                        if (w > 0)
                                len += (size_t)w;
                        shown++;
                }
        }
        if (counted)
                cscp_verdict_claim(v, "policy", false, "%zu violation(s): %s%s", counted, list,
                                   counted > shown ? "; ..." : "");
        else
                cscp_verdict_claim(v, "policy", true, "every attested event satisfies the appraisal policy");
}

/* ---- TDX host (docs/tdx.md "TDX host evidence") ----------------------------------------------- */

/*
 * A TD quote holds RTMR0..3 (SHA-384). The CCEL numbers them by CC measurement register index,
 * 1 = RTMR0 .. 4 = RTMR3, and our host CEL logs carry the same index in their PCR field, so the
 * replay runs them as "PCRs" 1..4 of the SHA-384 bank with the logcheck of the TPM path: a log may
 * run ahead of the quote, the events after an RTMR's quoted value are not attested.
 */
#define TDX_CC_RTMR0 1
#define TDX_RTMRS    4

enum { TDX_LOG_CCEL, TDX_LOG_SYSTEMD, TDX_LOG_PROC, TDX_LOG_BIND, TDX_LOG_N };

/* In the order their events reach the RTMRs: firmware, systemd, then vtpmd's logs (as on a TPM host). */
static const logspec_t tdx_logs[TDX_LOG_N] = {
        [TDX_LOG_CCEL] = {CSCP__LOG_KIND__LOG_CCEL, "ccel", CSCP_EVENTLOG_TCG},
        [TDX_LOG_SYSTEMD] = {CSCP__LOG_KIND__LOG_SYSTEMD_CEL, "systemd", CSCP_EVENTLOG_CEL_JSON},
        [TDX_LOG_PROC] = {CSCP__LOG_KIND__LOG_HOST_PROC_CEL, "host-proc", CSCP_EVENTLOG_CEL_TLV},
        [TDX_LOG_BIND] = {CSCP__LOG_KIND__LOG_HOST_CEL, "host", CSCP_EVENTLOG_CEL_TLV},
};

/* src's claims and facts into dst, each name prefixed (the tdx-* claims become the host's). */
static void merge_prefixed(cscp_verdict_t *dst, const cscp_verdict_t *src, const char *prefix)
{
        char name[128];

        for (size_t i = 0; i < src->n_claims; i++) {
                snprintf(name, sizeof(name), "%s%s", prefix, src->claims[i].name);
                cscp_verdict_claim(dst, name, src->claims[i].pass, "%s", src->claims[i].detail);
        }
        for (size_t i = 0; i < src->n_facts; i++) {
                snprintf(name, sizeof(name), "%s%s", prefix, src->facts[i].key);
                cscp_verdict_fact(dst, name, "%s", src->facts[i].value);
        }
        if (src->error)
                cscp_verdict_error(dst, "%s", src->error);
}

static void rtmr_replay_claim(cscp_verdict_t *v, const cscp_logcheck_t *lc, const char *logs)
{
        char fails[256] = "";
        size_t n = cscp_logcheck_n_pcrs(lc), bad = 0, len = 0;
        uint64_t ahead = 0;

        for (size_t i = 0; i < n; i++) {
                const cscp_logcheck_pcr_t *p = cscp_logcheck_pcr(lc, i);
                if (p->matched) {
                        ahead += p->events - p->attested;
                        continue;
                }
                bad++;
                if (len < sizeof(fails)) {
                        int w = snprintf(fails + len, sizeof(fails) - len, "%sRTMR%u (%" PRIu64 " events)",
                                         len ? ", " : "", p->pcr - TDX_CC_RTMR0, p->events);
                        if (w > 0)
                                len += (size_t)w;
                }
        }
        if (bad)
                cscp_verdict_claim(v, "host-rtmrs-replay", false,
                                   "%zu RTMR value(s) in the TD quote are not the replay of %s: %s; the quote covers "
                                   "a state these logs do not explain",
                                   bad, logs, fails);
        else
                cscp_verdict_claim(v, "host-rtmrs-replay", true,
                                   "RTMR0..3 in the TD quote equal the replay of %s (%" PRIu64
                                   " later event(s) not yet attested)",
                                   logs, ahead);
}

/*
 * The host part of TDX evidence: quote (PCK chain), REPORTDATA = the batch root, RTMRs = replay of
 * the CCEL and the host CEL logs. Fills *ret_lc and fc (vtpm-bind records) for the container part.
 * Returns 0 (the verdict says what passed, or holds the error), negative on allocation failure.
 */
static int tdx_host(const Cscp__Evidence *ev, const cscp_expect_t *want, const char *cid, const Cscp__Quote *cq,
                    cscp_verdict_t *v, cscp_appraisal_t *appraisal, feedctx_t *fc, logmap_t *maps, size_t *n_maps,
                    cscp_logcheck_t **ret_lc)
{
        const uint8_t *qb = ev->host_tdx_quote.data;
        size_t qlen = ev->host_tdx_quote.len;
        cscp_tdx_verify_opts_t o = {
                .root_file = want->tdx_root,
                .at = want->tdx_at,
                .crl_files = want->n_tdx_crls ? want->tdx_crls : NULL,
                .n_crl_files = want->n_tdx_crls,
                .collateral_dir = want->tdx_collateral_dir,
                .tcb_allowed = want->n_tdx_tcb_allowed ? want->tdx_tcb_allowed : NULL,
                .n_tcb_allowed = want->n_tdx_tcb_allowed,
        };
        uint8_t leaf[CSCP_MERKLE_MAX_HASH], root[CSCP_MERKLE_MAX_HASH];
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
        const Cscp__BatchProof *bp = ev->host_batch;
        bool ccel_seen = false;
        cscp_pcr_value_t rtmrs[TDX_RTMRS];
        cscp_logcheck_t *lc = NULL;
        cscp_verdict_t tv;
        cscp_tdx_quote_t q;
        char err[512], failed[768] = "", names[128] = "";
        size_t flen = 0, nlen = 0;
        bool ok, logs_ok = true, dup = false;
        TPM2B_NAME vak = {0};
        int r;

        /* The caller's --tdx-allow-tcb list wins; without one, the policy's tdx.tcb_status applies. */
        if (!o.n_tcb_allowed && want->policy)
                (void)cscp_policy_tdx_tcb_allowed(want->policy, &o.tcb_allowed, &o.n_tcb_allowed);

        /* 1. the quote: signatures and the PCK chain up to --tdx-root */
        cscp_verdict_init(&tv);
        r = cscp_tdx_quote_verify(qb, qlen, &o, &tv);
        merge_prefixed(v, &tv, "host-");
        cscp_verdict_clear(&tv);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || v->error)
                return 0; /* the trust anchor or a CRL is unusable: no verdict */
        cscp_verdict_fact(v, "host-root-of-trust",
                          "TDX host: quote certified by its PCK chain (no TPM AK to enroll or pin, no TPM clock: "
                          "host-ak-enrolled/-pinned and host-clock do not apply)");
        if (want->host_pcrs)
                cscp_verdict_fact(v, "host-pcrs", "not applicable to a TDX host: its quote holds MRTD and RTMR0..3");
        if (cscp_tdx_quote_parse(qb, qlen, &q, err, sizeof(err)) < 0) {
                /* host-tdx-quote-format failed already and says why */
                cscp_verdict_claim(v, "host-batch-proof", false, "REPORTDATA unreadable: the TD quote does not parse");
                cscp_verdict_claim(v, "host-rtmrs-replay", false, "RTMRs unreadable: the TD quote does not parse");
                return 0;
        }
        /* The policy's tdx reference values (MRTD, RTMRs, module, debug bit): violations go to the policy claim. */
        if (appraisal) {
                r = cscp_appraisal_tdx(appraisal, "host-tdx-quote", &q);
                if (r == -ENOMEM)
                        return r;
        }

        /* 2. REPORTDATA = the SHA-512 root of the batch holding this challenge's leaf */
        ok = bp && bp->leaf_count >= 1 && bp->leaf_count <= CSCP_MERKLE_MAX_LEAVES && bp->leaf_index < bp->leaf_count &&
             bp->n_siblings <= CSCP_MERKLE_MAX_DEPTH;
        for (size_t i = 0; ok && i < bp->n_siblings; i++) {
                ok = bp->siblings[i].len == 64;
                if (ok)
                        memcpy(path[i], bp->siblings[i].data, 64);
        }
        if (cid && cq && cscp_tpm_public_name(cq->ak_public.data, cq->ak_public.len, &vak) < 0)
                vak.size = 0; /* the leaf then cannot match: container-ak-public says why */
        r = cid ? cscp_merkle_leaf(TPM2_ALG_SHA512, want->nonce, want->nonce_len, cid, cq ? cq->attest.data : NULL,
                                   cq ? cq->attest.len : 0, vak.name, vak.size, leaf)
                : cscp_merkle_leaf(TPM2_ALG_SHA512, want->nonce, want->nonce_len, "", NULL, 0, NULL, 0, leaf);
        if (r < 0) {
                cscp_verdict_error(v, "cannot compute this challenge's leaf: %s", cscp_strerror(r));
                return r == -ENOMEM ? r : 0;
        }
        if (!bp)
                cscp_verdict_claim(v, "host-batch-proof", false, "evidence carries no batch proof");
        else if (!ok || cscp_merkle_root_from_proof(TPM2_ALG_SHA512, leaf, bp->leaf_index, bp->leaf_count, path,
                                                    bp->n_siblings, root) < 0)
                cscp_verdict_claim(v, "host-batch-proof", false,
                                   "the proof (leaf %u of %u, %zu siblings) does not fit a SHA-512 tree of that size "
                                   "(64-byte siblings)",
                                   bp->leaf_index, bp->leaf_count, bp->n_siblings);
        else if (CRYPTO_memcmp(root, q.report_data, 64) != 0)
                cscp_verdict_claim(v, "host-batch-proof", false,
                                   "REPORTDATA of the TD quote is not the SHA-512 batch root of this challenge's leaf "
                                   "(leaf %u of %u, %zu siblings): the quote was not made for this challenge",
                                   bp->leaf_index, bp->leaf_count, bp->n_siblings);
        else {
                cscp_verdict_claim(v, "host-batch-proof", true,
                                   "REPORTDATA = the SHA-512 root that leaf %u of a batch of %u and %zu sibling(s) "
                                   "lead to, from %s",
                                   bp->leaf_index, bp->leaf_count, bp->n_siblings,
                                   cid ? "this challenge's leaf (nonce, container id, container quote, vAK)"
                                       : "this challenge's leaf");
                cscp_verdict_fact(v, "host-batch", "%u challenge(s) in one TD quote", bp->leaf_count);
        }
        OPENSSL_cleanse(leaf, sizeof(leaf));

        /* 3. RTMR0..3 = replay of the CCEL, then the host CEL logs */
        for (unsigned i = 0; i < TDX_RTMRS; i++) {
                rtmrs[i] = (cscp_pcr_value_t){.hash_alg = TPM2_ALG_SHA384, .index = TDX_CC_RTMR0 + i, .size = 48};
                memcpy(rtmrs[i].value, q.rtmr[i], 48);
        }
        r = cscp_logcheck_new(rtmrs, TDX_RTMRS, &lc);
        if (r < 0)
                return r == -ENOMEM ? r : (cscp_verdict_error(v, "RTMR replay: %s", cscp_strerror(r)), 0);
        fc->container_id = cid; /* collect its vtpm-bind / vtpm-destroy records */
        for (unsigned i = 0; i < TDX_LOG_N; i++) {
                const Cscp__Log *lg = find_log(ev, tdx_logs[i].kind, &dup);

                if (dup) {
                        dup = false;
                        logs_ok = false;
                        flen += (size_t)snprintf(failed + flen, flen < sizeof(failed) ? sizeof(failed) - flen : 0,
                                                 "%s: sent twice; ", tdx_logs[i].name);
                        continue;
                }
                if (!lg)
                        continue;
                if (i == TDX_LOG_CCEL && lg->offset > 0) {
                        logs_ok = false;
                        flen += (size_t)snprintf(failed + flen, flen < sizeof(failed) ? sizeof(failed) - flen : 0,
                                                 "ccel: sent from event %" PRIu64 "; the CCEL is replayed whole; ",
                                                 lg->offset);
                        continue;
                }
                /* The CCEL alone, replayed, for the policy's tdx.ccel_rtmrs (SHA-384 "PCRs" 1..4 = RTMR0..3). */
                fc->boot_log = appraisal && i == TDX_LOG_CCEL;
                if (fc->boot_log)
                        cscp_replay_init(&fc->boot);
                fc->appraise = want->policy && i == TDX_LOG_CCEL;
                if (fc->appraise) {
                        (void)cscp_appraisal_log(appraisal, tdx_logs[i].name, tdx_logs[i].fmt);
                        maps[(*n_maps)++] = (logmap_t){tdx_logs[i].name, i, lg->offset, 0, NULL};
                }
                size_t recs_before = fc->n_recs;
                r = cscp_logcheck_feed(lc, i, lg->data.data, lg->data.len, tdx_logs[i].fmt, lg->offset, feed_cb, fc,
                                       err, sizeof(err));
                if (r == -ENOMEM)
                        goto fail;
                if (r < 0) {
                        fc->n_recs = recs_before; /* a log that does not parse names no binding */
                        logs_ok = false;
                        if (flen < sizeof(failed))
                                flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen, "%s: %s; ",
                                                         tdx_logs[i].name, err);
                } else if (nlen < sizeof(names))
                        nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s", nlen ? ", " : "",
                                                 tdx_logs[i].name);
                if (fc->appraise && r == 0) {
                        /* boot.pcrs names TPM PCRs: checked against no bank, so such a policy fails (policy). */
                        cscp_replay_t none;
                        cscp_replay_init(&none);
                        (void)cscp_appraisal_end_log(appraisal, &none);
                }
                if (fc->boot_log && r == 0) {
                        ccel_seen = true;
                        r = cscp_appraisal_tdx_ccel(appraisal, tdx_logs[i].name, &fc->boot);
                        if (r == -ENOMEM)
                                goto fail;
                }
                fc->boot_log = false;
                r = 0;
        }
        fc->appraise = false;
        if (appraisal && !ccel_seen) {
                /* No CCEL that replays: tdx.ccel_rtmrs, if the policy names them, cannot be met. */
                r = cscp_appraisal_tdx_ccel(appraisal, "ccel", NULL);
                if (r == -ENOMEM)
                        goto fail;
                r = 0;
        }
        for (size_t i = 0; i < ev->n_logs; i++) {
                const Cscp__Log *lg = ev->logs[i];

                if (!lg)
                        continue;
                if (lg->kind == CSCP__LOG_KIND__LOG_IMA)
                        cscp_verdict_fact(v, "host-log-ima",
                                          "not verifiable on a TDX host: IMA extends PCR 10 of a TPM, which a TD "
                                          "quote does not hold; the list (%zu bytes) was neither replayed nor "
                                          "appraised",
                                          lg->data.len);
                else if (lg->kind == CSCP__LOG_KIND__LOG_BOOT)
                        cscp_verdict_fact(v, "host-log-boot",
                                          "not verifiable on a TDX host: a TPM boot log explains PCRs, a TD quote "
                                          "holds RTMRs (the CCEL explains them); not replayed");
                else if (lg->kind == CSCP__LOG_KIND__LOG_UNSPECIFIED || lg->kind == CSCP__LOG_KIND__LOG_CONTAINER_CEL ||
                         lg->kind > CSCP__LOG_KIND__LOG_CCEL) {
                        if (lg->kind == CSCP__LOG_KIND__LOG_CONTAINER_CEL)
                                continue; /* the container part reads it */
                        logs_ok = false;
                        if (flen < sizeof(failed))
                                flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                         "a log of unknown kind %d; ", lg->kind);
                }
        }
        if (!find_log(ev, CSCP__LOG_KIND__LOG_CCEL, &dup) && !dup) {
                logs_ok = false;
                if (flen < sizeof(failed))
                        flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                 "no CCEL (LOG_CCEL): RTMR0 and RTMR1 cannot be explained; ");
        }
        if (flen > 2 && flen < sizeof(failed))
                failed[flen - 2] = '\0';
        cscp_verdict_claim(v, "host-logs", logs_ok, "%s", logs_ok ? names : failed);
        r = cscp_logcheck_finish(lc);
        if (r < 0)
                goto fail;
        {
                char what[160];
                snprintf(what, sizeof(what), nlen ? "the host logs (%s)" : "no log (none parsed)", names);
                rtmr_replay_claim(v, lc, what);
        }
        for (unsigned i = 0; i < TDX_LOG_N; i++) {
                const Cscp__Log *lg = find_log(ev, tdx_logs[i].kind, &dup);
                if (lg)
                        log_fact(v, "host-", tdx_logs[i].name, lc, i, lg->offset);
        }
        for (size_t m = 0; m < *n_maps; m++) {
                uint64_t ev_n;
                maps[m].lc = lc;
                maps[m].first_seq = 0;
                for (unsigned j = 0; j < maps[m].log_no; j++)
                        if (cscp_logcheck_log_counts(lc, j, &ev_n, NULL, NULL, NULL) == 0)
                                maps[m].first_seq += ev_n;
        }
        *ret_lc = lc;
        return 0;
fail:
        cscp_logcheck_free(lc);
        return r;
}

int cscp_evidence_verify(const Cscp__Evidence *ev, const cscp_expect_t *want, cscp_verdict_t *v)
{
        cscp_quote_opts_t opts = {
                .nonce = want->nonce,
                .nonce_len = want->nonce_len,
                .required = want->host_pcrs,
                .allow_sha1 = want->allow_sha1,
        };
        const char *cid = want->container_id && want->container_id[0] ? want->container_id : NULL;
        const Cscp__Quote *cq = ev->container_quote;
        char hex[2 * CSCP_NONCE_MAX + 1], err[512];
        cscp_appraisal_t *appraisal = NULL;
        cscp_logcheck_t *hlc = NULL, *clc = NULL;
        cscp_pcr_value_t *pcrs = NULL;
        size_t n_pcrs = 0;
        feedctx_t fc = {0};
        logmap_t maps[3];
        size_t n_maps = 0;
        TPMS_ATTEST hattest;
        bool have_hattest = false, dup = false, tdx = ev->host_tdx_quote.len > 0;
        int r = 0;

        if (want->nonce_len > CSCP_NONCE_MAX) {
                cscp_verdict_error(v, "nonce longer than %d bytes", CSCP_NONCE_MAX);
                return CSCP_E_NONCE;
        }
        cscp_hex_encode(want->nonce, want->nonce_len, hex);
        cscp_verdict_fact(v, "nonce", "%s", hex);
        cscp_verdict_claim(v, "nonce-echo",
                           ev->nonce.len == want->nonce_len &&
                                   CRYPTO_memcmp(ev->nonce.data, want->nonce, want->nonce_len) == 0,
                           ev->nonce.len == want->nonce_len ? "evidence answers this challenge's nonce"
                                                            : "evidence echoes a nonce of another length");
        if (cid)
                cscp_verdict_claim(v, "container-id", ev->container_id && strcmp(ev->container_id, cid) == 0,
                                   "evidence names container '%.64s', the challenge asked for '%.64s'",
                                   ev->container_id ? ev->container_id : "", cid);
        else if (ev->container_id && ev->container_id[0])
                cscp_verdict_claim(v, "container-id", false,
                                   "evidence names container '%.64s' but the challenge asked for the host only",
                                   ev->container_id);
        if (ev->host_quote && tdx) {
                cscp_verdict_claim(v, "host-quote-present", false,
                                   "evidence carries both a TPM host quote (host_quote) and a TDX host quote "
                                   "(host_tdx_quote): one host root of trust per evidence");
                return 0;
        }
        if (!cscp_verdict_claim(v, "host-quote-present", ev->host_quote != NULL || tdx,
                                tdx              ? "TDX host quote present (host_tdx_quote)"
                                : ev->host_quote ? "host quote present"
                                                 : "evidence carries no host quote (host_quote or host_tdx_quote)"))
                return 0;
        if (tdx && !want->tdx_root) {
                cscp_verdict_error(v, "TDX host evidence needs --tdx-root (the trust anchor of its PCK chain)");
                return 0;
        }
        if (cid && !cscp_verdict_claim(v, "container-quote-present", cq && cq->attest.len && cq->ak_public.len,
                                       cq ? "container quote present" : "evidence carries no container quote"))
                cq = NULL;
        if (want->policy && cscp_appraisal_new(want->policy, &appraisal) < 0)
                return -ENOMEM;
        if (tdx) {
                r = tdx_host(ev, want, cid, cq, v, appraisal, &fc, maps, &n_maps, &hlc);
                if (r < 0)
                        goto out;
                if (v->error)
                        goto out;
                goto container;
        }
        /* A policy with a tdx section asks for a TD: a TPM host does not satisfy it (one policy violation). */
        if (appraisal && cscp_policy_has_tdx(want->policy)) {
                r = cscp_appraisal_tdx(appraisal, "host-quote", NULL);
                if (r < 0)
                        goto out;
        }
        /*
         * extraData is the Merkle root over the batch this challenge was answered in
         * (design.md §3): recompute this challenge's leaf from our nonce, container id,
         * the container quote and its AK, follow the proof to a root, and hold the
         * quote's extraData to that root.
         */
        {
                uint8_t leaf[CSCP_MERKLE_MAX_HASH], root[CSCP_MERKLE_MAX_HASH];
                cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
                const Cscp__BatchProof *bp = ev->host_batch;
                bool ok = bp && bp->leaf_count >= 1 && bp->leaf_count <= CSCP_MERKLE_MAX_LEAVES &&
                          bp->leaf_index < bp->leaf_count && bp->n_siblings <= CSCP_MERKLE_MAX_DEPTH;
                TPM2B_NAME vak = {0};

                for (size_t i = 0; ok && i < bp->n_siblings; i++) {
                        ok = bp->siblings[i].len == 32;
                        if (ok)
                                memcpy(path[i], bp->siblings[i].data, 32);
                }
                if (cid && cq && cscp_tpm_public_name(cq->ak_public.data, cq->ak_public.len, &vak) < 0)
                        vak.size = 0; /* the leaf then cannot match: container-ak-public says why */
                r = cid ? cscp_merkle_leaf(TPM2_ALG_SHA256, want->nonce, want->nonce_len, cid,
                                           cq ? cq->attest.data : NULL, cq ? cq->attest.len : 0, vak.name, vak.size,
                                           leaf)
                        : cscp_merkle_leaf(TPM2_ALG_SHA256, want->nonce, want->nonce_len, "", NULL, 0, NULL, 0, leaf);
                if (r < 0) {
                        cscp_verdict_error(v, "cannot compute this challenge's leaf: %s", cscp_strerror(r));
                        goto out;
                }
                if (ok)
                        ok = cscp_merkle_root_from_proof(TPM2_ALG_SHA256, leaf, bp->leaf_index, bp->leaf_count, path,
                                                         bp->n_siblings, root) == 0;
                if (!bp)
                        cscp_verdict_claim(v, "host-batch-proof", false, "evidence carries no batch proof");
                else
                        cscp_verdict_claim(v, "host-batch-proof", ok,
                                           ok ? "leaf %u of a batch of %u, %zu sibling hash(es) lead to a root"
                                              : "the proof (leaf %u of %u, %zu siblings) does not fit a tree of that "
                                                "size",
                                           bp->leaf_index, bp->leaf_count, bp->n_siblings);
                if (ok) {
                        opts.nonce = root;
                        opts.nonce_len = 32;
                        opts.extra_label = cid ? "the batch root of this challenge's leaf (nonce, container id, "
                                                 "container quote, vAK)"
                                               : "the batch root of this challenge's leaf";
                } else {
                        /* No usable proof: hold extraData to the leaf itself (a batch of one), never to
                         * "nothing" (an empty extraData must not match an empty expectation). */
                        opts.nonce = leaf;
                        opts.nonce_len = 32;
                        opts.extra_label = "this challenge's leaf (no valid batch proof)";
                }
                verify_quote(ev->host_quote, "host-", &opts, v);
                if (ok)
                        cscp_verdict_fact(v, "host-batch", "%u challenge(s) in one host quote", bp->leaf_count);
        }
        if (want->host_ak_name) {
                TPM2B_NAME name = {0};
                char have[2 * sizeof(name.name) + 1] = "", expect[2 * sizeof(name.name) + 1];
                const char *claim = want->host_ak_enrolled ? "host-ak-enrolled" : "host-ak-pinned";
                bool same;

                r = cscp_tpm_public_name(ev->host_quote->ak_public.data, ev->host_quote->ak_public.len, &name);
                if (want->host_ak_name_len > sizeof(name.name)) {
                        cscp_verdict_error(v, "trusted AK name is longer than any TPM name");
                        r = -EINVAL;
                        goto out;
                }
                cscp_hex_encode(want->host_ak_name, want->host_ak_name_len, expect);
                if (r == 0)
                        cscp_hex_encode(name.name, name.size, have);
                same = r == 0 && name.size == want->host_ak_name_len &&
                       CRYPTO_memcmp(name.name, want->host_ak_name, name.size) == 0;
                cscp_verdict_claim(v, claim, same, "AK name %s %s %s %s", r == 0 ? have : "(unparsable)",
                                   same ? "=" : "!=", want->host_ak_enrolled ? "enrolled" : "pinned", expect);
                r = 0;
        } else
                cscp_verdict_claim(v, "host-ak-enrolled", false,
                                   "this host's AK is neither enrolled (cscp enroll) nor pinned (--ak-name): the "
                                   "quote proves freshness and integrity, not which TPM made it");

        /* Host logs: replayed against the host quote's PCR values. */
        r = cscp_quote_from_wire(ev->host_quote, &pcrs, &n_pcrs);
        if (r < 0) {
                cscp_verdict_claim(v, "host-pcrs-replay", false, "the host PCR values are malformed");
                r = 0;
                goto container;
        }
        have_hattest = cscp_attest_parse(ev->host_quote->attest.data, ev->host_quote->attest.len, &hattest) == 0;
        r = cscp_logcheck_new(pcrs, n_pcrs, &hlc);
        if (r < 0) {
                cscp_verdict_claim(v, "host-pcrs-replay", false, "the host PCR values are not usable: %s",
                                   cscp_strerror(r));
                r = 0;
                goto container;
        }
        {
                const Cscp__Log *ima = find_log(ev, CSCP__LOG_KIND__LOG_IMA, &dup);
                char failed[512] = "", names[128] = "";
                size_t flen = 0, nlen = 0;
                bool logs_ok = true, ima_skip = false;

                if (ima && ima->offset > 0) {
                        cscp_replay_t ck;
                        uint32_t reset = 0;
                        uint64_t next = 0;
                        int k = want->store ? ima_ckpt_load(want->store, want->host, &reset, &next, &ck) : -ENOENT;

                        if (k < 0 || next != ima->offset || !have_hattest || hattest.clockInfo.resetCount != reset) {
                                logs_ok = false;
                                ima_skip = true;
                                flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                         "ima: sent from event %" PRIu64 " but %s; ", ima->offset,
                                                         k < 0 ? "this challenger has no checkpoint there"
                                                         : next != ima->offset
                                                                 ? "the checkpoint is at another event"
                                                                 : "the host was reset since the checkpoint "
                                                                   "(the next challenge asks for the whole list)");
                                /* Drop a checkpoint of an earlier reset, on the word of a quote that verified only. */
                                if (k == 0 && have_hattest && hattest.clockInfo.resetCount != reset &&
                                    claim_passed(v, "host-signature") && claim_passed(v, "host-extra-data"))
                                        (void)cscp_store_checkpoint_put(want->store, want->host, IMA_CHECKPOINT,
                                                                        (const uint8_t *)"", 0);
                        } else if (!ckpt_has_banks(&ck, pcrs, n_pcrs)) {
                                /* Made for another PCR selection: it holds no values for a bank quoted now. */
                                logs_ok = false;
                                ima_skip = true;
                                flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                         "ima: the checkpoint holds no values for a bank quoted now "
                                                         "(the PCR selection changed; the next challenge asks for "
                                                         "the whole list); ");
                                if (claim_passed(v, "host-signature") && claim_passed(v, "host-extra-data"))
                                        (void)cscp_store_checkpoint_put(want->store, want->host, IMA_CHECKPOINT,
                                                                        (const uint8_t *)"", 0);
                        } else if (cscp_logcheck_seed(hlc, &ck, 1u << IMA_PCR) < 0) {
                                logs_ok = false;
                                ima_skip = true;
                                flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                         "ima: the checkpoint does not fit this replay; ");
                        }
                }
                (void)cscp_logcheck_want_snapshot(hlc, IMA_PCR);
                fc.container_id = cid;
                for (unsigned i = 0; i < HOST_LOG_N; i++) {
                        bool d = false;
                        const Cscp__Log *lg = find_log(ev, host_logs[i].kind, &d);

                        if (d) {
                                logs_ok = false;
                                flen += (size_t)snprintf(failed + flen,
                                                         flen < sizeof(failed) ? sizeof(failed) - flen : 0,
                                                         "%s: sent twice; ", host_logs[i].name);
                                continue;
                        }
                        if (!lg || (i == HOST_LOG_IMA && ima_skip))
                                continue;
                        cscp_eventlog_format_t fmt = host_logs[i].fmt;
                        if (i == HOST_LOG_IMA) {
                                /* ascii or binary (either byte order): anything else is not an IMA list */
                                fmt = cscp_eventlog_detect(lg->data.data, lg->data.len);
                                if (fmt != CSCP_EVENTLOG_IMA && fmt != CSCP_EVENTLOG_IMA_BINARY)
                                        fmt = CSCP_EVENTLOG_IMA_BINARY;
                        }
                        fc.boot_log = i == HOST_LOG_BOOT;
                        fc.appraise = want->policy && (i == HOST_LOG_BOOT || i == HOST_LOG_IMA);
                        if (fc.appraise) {
                                (void)cscp_appraisal_log(appraisal, host_logs[i].name, fmt);
                                maps[n_maps++] = (logmap_t){host_logs[i].name, i, lg->offset, 0, NULL};
                        }
                        if (fc.boot_log)
                                cscp_replay_init(&fc.boot);
                        size_t recs_before = fc.n_recs;
                        r = cscp_logcheck_feed(hlc, i, lg->data.data, lg->data.len, fmt, lg->offset, feed_cb, &fc, err,
                                               sizeof(err));
                        if (r == -ENOMEM)
                                goto out;
                        if (r < 0) {
                                fc.n_recs = recs_before; /* a log that does not parse names no binding */
                                logs_ok = false;
                                if (flen < sizeof(failed))
                                        flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen, "%s: %s; ",
                                                                 host_logs[i].name, err);
                        } else if (nlen < sizeof(names))
                                nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s", nlen ? ", " : "",
                                                         host_logs[i].name);
                        if (fc.appraise && r == 0 && fc.boot_log)
                                (void)cscp_appraisal_end_log(appraisal, &fc.boot);
                        r = 0;
                }
                for (size_t i = 0; i < ev->n_logs; i++)
                        if (ev->logs[i] && ev->logs[i]->kind == CSCP__LOG_KIND__LOG_CCEL) {
                                logs_ok = false;
                                if (flen < sizeof(failed))
                                        flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                                 "ccel: a TDX CC event log with a TPM host quote "
                                                                 "(it explains RTMRs, not PCRs); ");
                        } else if (ev->logs[i] && (ev->logs[i]->kind == CSCP__LOG_KIND__LOG_UNSPECIFIED ||
                                                   ev->logs[i]->kind > CSCP__LOG_KIND__LOG_CCEL)) {
                                logs_ok = false;
                                if (flen < sizeof(failed))
                                        flen += (size_t)snprintf(failed + flen, sizeof(failed) - flen,
                                                                 "a log of unknown kind %d; ", ev->logs[i]->kind);
                        }
                if (flen > 2 && flen < sizeof(failed))
                        failed[flen - 2] = '\0';
                cscp_verdict_claim(v, "host-logs", logs_ok, "%s",
                                   logs_ok ? (nlen ? names : "no host logs sent") : failed);
                r = cscp_logcheck_finish(hlc);
                if (r < 0)
                        goto out;
                r = 0;
                {
                        char what[160];
                        snprintf(what, sizeof(what), nlen ? "the host logs (%s)" : "no log (none sent)", names);
                        replay_claim(v, "host-pcrs-replay", hlc, what);
                }
                for (unsigned i = 0; i < HOST_LOG_N; i++) {
                        bool d = false;
                        const Cscp__Log *lg = find_log(ev, host_logs[i].kind, &d);
                        if (lg)
                                log_fact(v, "host-", host_logs[i].name, hlc, i, lg->offset);
                }
                for (size_t m = 0; m < n_maps; m++) {
                        uint64_t ev_n;
                        maps[m].lc = hlc;
                        /* first_seq: where this log's events start among all fed events */
                        maps[m].first_seq = 0;
                        for (unsigned j = 0; j < maps[m].log_no; j++)
                                if (cscp_logcheck_log_counts(hlc, j, &ev_n, NULL, NULL, NULL) == 0)
                                        maps[m].first_seq += ev_n;
                }
                /* A new IMA checkpoint: only from a quote that verified, at the point the quote covers. */
                if (want->store && ima && have_hattest && claim_passed(v, "host-signature") &&
                    claim_passed(v, "host-extra-data") && claim_passed(v, "host-pcrs-replay")) {
                        cscp_replay_t snap;
                        uint64_t seq, ima_events = 0, before = 0;
                        uint32_t ima_pcrs = 0;

                        for (unsigned j = 0; j < HOST_LOG_IMA; j++) {
                                uint64_t e;
                                if (cscp_logcheck_log_counts(hlc, j, &e, NULL, NULL, NULL) == 0)
                                        before += e;
                        }
                        if (cscp_logcheck_log_counts(hlc, HOST_LOG_IMA, &ima_events, NULL, NULL, &ima_pcrs) == 0 &&
                            ima_pcrs == (1u << IMA_PCR) && cscp_logcheck_snapshot(hlc, IMA_PCR, &snap, &seq) == 0 &&
                            seq >= before && seq - before <= ima_events) {
                                int k = ima_ckpt_save(want->store, want->host, hattest.clockInfo.resetCount,
                                                      ima->offset + (seq - before), &snap);
                                if (k < 0)
                                        cscp_verdict_fact(v, "ima-checkpoint", "not saved: %s", cscp_strerror(k));
                                else
                                        cscp_verdict_fact(v, "ima-checkpoint",
                                                          "next challenge asks IMA from event %" PRIu64,
                                                          ima->offset + (seq - before));
                        }
                }
        }

container:
        if (cid && cq) {
                cscp_quote_opts_t copts = {
                        .nonce = want->nonce,
                        .nonce_len = want->nonce_len,
                        .required = want->container_pcrs,
                        .allow_sha1 = want->allow_sha1,
                        .extra_label = "the nonce",
                };
                const Cscp__Log *cl = find_log(ev, CSCP__LOG_KIND__LOG_CONTAINER_CEL, &dup);
                cscp_pcr_value_t *cpcrs = NULL;
                size_t n_cpcrs = 0;

                verify_quote(cq, "container-", &copts, v);
                r = cscp_quote_from_wire(cq, &cpcrs, &n_cpcrs);
                if (r == 0)
                        r = cscp_logcheck_new(cpcrs, n_cpcrs, &clc);
                free(cpcrs);
                if (r == -ENOMEM)
                        goto out;
                if (r < 0) {
                        cscp_verdict_claim(v, "container-pcrs-replay", false,
                                           "the container PCR values are not usable");
                        r = 0;
                } else {
                        feedctx_t cc = {.appraisal = appraisal, .appraise = want->policy != NULL};
                        bool ok = true;

                        if (cl && cc.appraise) {
                                (void)cscp_appraisal_log(appraisal, "container", CSCP_EVENTLOG_CEL_TLV);
                                maps[n_maps++] = (logmap_t){"container", 0, cl->offset, 0, NULL};
                        }
                        if (cl && cl->offset > 0) {
                                ok = false;
                                cscp_verdict_claim(v, "container-logs", false,
                                                   "the container log was sent from event %" PRIu64
                                                   "; container logs are replayed whole",
                                                   cl->offset);
                        } else if (cl) {
                                r = cscp_logcheck_feed(clc, 0, cl->data.data, cl->data.len, CSCP_EVENTLOG_CEL_TLV, 0,
                                                       feed_cb, &cc, err, sizeof(err));
                                if (r == -ENOMEM)
                                        goto out;
                                ok = r == 0;
                                cscp_verdict_claim(v, "container-logs", ok, "container CEL-TLV log%s%s",
                                                   ok ? " parses" : ": ", ok ? "" : err);
                                r = 0;
                        } else
                                cscp_verdict_fact(v, "container-logs", "none sent");
                        if (cscp_logcheck_finish(clc) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        replay_claim(v, "container-pcrs-replay", clc,
                                     cl && ok ? "the container log" : "no log (none sent)");
                        if (cl)
                                log_fact(v, "container-", "cel", clc, 0, cl->offset);
                        if (n_maps && strcmp(maps[n_maps - 1].name, "container") == 0)
                                maps[n_maps - 1].lc = clc;
                }
                if (hlc)
                        bind_claim(v, &fc, hlc, find_log(ev, CSCP__LOG_KIND__LOG_HOST_CEL, &dup) != NULL, ev, cid, tdx);
                else
                        cscp_verdict_claim(v, "vtpm-bind", false, "the host logs could not be replayed");
                vek_cert_claim(v, ev, want);
        }

        /* Clocks last: recorded only from quotes whose signature and extraData verified. */
        if (!tdx && claim_passed(v, "host-signature") && claim_passed(v, "host-extra-data"))
                clock_claim(v, "host-clock", want->store, "host", ev->host_quote->attest.data,
                            ev->host_quote->attest.len, ev->host_quote->ak_public.data, ev->host_quote->ak_public.len,
                            want->policy);
        if (cid && cq && claim_passed(v, "container-signature") && claim_passed(v, "container-extra-data"))
                clock_claim(v, "container-clock", want->store, "vTPM", cq->attest.data, cq->attest.len,
                            cq->ak_public.data, cq->ak_public.len, want->policy);
        if (want->policy)
                policy_claim(v, appraisal, maps, n_maps, tdx);
        r = 0;
out:
        free(fc.recs);
        free(pcrs);
        cscp_logcheck_free(hlc);
        cscp_logcheck_free(clc);
        cscp_appraisal_free(appraisal);
        return r;
}

int cscp_evidence_save(const char *path, const Cscp__Evidence *ev)
{
        Cscp__Frame f = CSCP__FRAME__INIT;
        uint8_t *buf;
        size_t len;
        int r;

        f.body_case = CSCP__FRAME__BODY_EVIDENCE;
        f.evidence = (Cscp__Evidence *)ev;
        r = cscp_frame_pack(&f, CSCP_FRAME_MAX_LIMIT, &buf, &len);
        if (r < 0)
                return r;
        r = cscp_file_write_atomic(path, buf, len, 0644);
        free(buf);
        return r;
}

int cscp_evidence_load(const char *path, size_t max, Cscp__Frame **ret_frame)
{
        Cscp__Frame *f = NULL;
        uint8_t *buf;
        size_t len;
        uint32_t n;
        int r;

        if (max == 0)
                max = CSCP_FRAME_MAX_DEFAULT;
        r = cscp_file_read(path, max + CSCP_FRAME_HEADER, &buf, &len);
        if (r < 0)
                return r == -EFBIG ? CSCP_E_TOO_BIG : r;
        if (len < CSCP_FRAME_HEADER) {
                r = CSCP_E_PROTO;
                goto out;
        }
        n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
        if ((size_t)n != len - CSCP_FRAME_HEADER) {
                r = CSCP_E_PROTO;
                goto out;
        }
        r = cscp_frame_unpack(buf + CSCP_FRAME_HEADER, n, &f);
        if (r < 0)
                goto out;
        if (f->body_case != CSCP__FRAME__BODY_EVIDENCE) {
                cscp__frame__free_unpacked(f, NULL);
                r = CSCP_E_PROTO;
                goto out;
        }
        *ret_frame = f;
out:
        free(buf);
        return r;
}
