/* SPDX-License-Identifier: Apache-2.0 */
/* Logs against quoted PCR values, with logs that run ahead of the quote (logcheck.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "error.h"
#include "logcheck.h"

#define NO_PCR 0xff

typedef struct quoted {
        cscp_logcheck_pcr_t out;
        int bank; /* slot in cscp_replay_t */
        uint8_t value[CSCP_EVENT_MAX_DIGEST];
        uint16_t size;
        int64_t match_ord; /* ordinal of the PCR's extends at which the value was reached; -1: not yet */
} quoted_t;

typedef struct evrec {
        uint32_t ord; /* ordinal of this extend on its PCR (1-based); 0 for a record that extends nothing */
        uint8_t pcr;  /* NO_PCR: extends nothing */
        uint8_t log;
} evrec_t;

typedef struct logstate {
        bool fed;
        uint64_t first_seq, n_events;
        uint32_t pcrs;
} logstate_t;

struct cscp_logcheck {
        cscp_replay_t rp;
        quoted_t *q;
        size_t n_q;
        uint32_t quoted_mask;
        uint32_t ord[CSCP_PCR_COUNT];
        int64_t match_ord[CSCP_PCR_COUNT]; /* after finish: the PCR's attested ordinal, -1 when it failed */
        evrec_t *evs;
        uint64_t n_evs, cap_evs;
        logstate_t logs[CSCP_LOGCHECK_MAX_LOGS];
        uint8_t *attested; /* bitmap after finish */
        uint32_t want_snap;
        cscp_replay_t *snap[CSCP_PCR_COUNT];
        uint16_t ima_banks[CSCP_EVENT_MAX_DIGESTS + 1]; /* the quoted banks: all an IMA list needs hashed in */
        uint64_t snap_seq[CSCP_PCR_COUNT];
        bool finished;
};

static int bank_slot(const cscp_replay_t *rp, uint16_t alg)
{
        for (int i = 0; i < CSCP_EVENT_MAX_DIGESTS; i++)
                if (rp->banks[i] == alg)
                        return i;
        return -1;
}

int cscp_logcheck_new(const cscp_pcr_value_t *quoted, size_t n_quoted, cscp_logcheck_t **ret)
{
        cscp_logcheck_t *lc;

        if (!ret || (n_quoted && !quoted) || n_quoted > (size_t)CSCP_EVENT_MAX_DIGESTS * CSCP_PCR_COUNT)
                return -EINVAL;
        lc = calloc(1, sizeof(*lc));
        if (!lc)
                return -ENOMEM;
        cscp_replay_init(&lc->rp);
        lc->q = calloc(n_quoted ? n_quoted : 1, sizeof(*lc->q));
        if (!lc->q) {
                free(lc);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_quoted; i++) {
                quoted_t *q = &lc->q[lc->n_q];
                int b = bank_slot(&lc->rp, quoted[i].hash_alg);

                if (b < 0 || quoted[i].index >= CSCP_PCR_COUNT ||
                    quoted[i].size != cscp_hash_alg_size(quoted[i].hash_alg)) {
                        cscp_logcheck_free(lc);
                        return CSCP_E_UNSUPPORTED;
                }
                for (size_t j = 0; j < lc->n_q; j++)
                        if (lc->q[j].out.alg == quoted[i].hash_alg && lc->q[j].out.pcr == quoted[i].index) {
                                cscp_logcheck_free(lc);
                                return -EINVAL; /* one value per bank and PCR */
                        }
                q->out.alg = quoted[i].hash_alg;
                q->out.pcr = (uint8_t)quoted[i].index;
                q->bank = b;
                q->size = quoted[i].size;
                memcpy(q->value, quoted[i].value, q->size);
                q->match_ord = -1;
                lc->quoted_mask |= 1u << quoted[i].index;
                lc->n_q++;
                for (size_t k = 0; k < CSCP_EVENT_MAX_DIGESTS; k++) {
                        if (lc->ima_banks[k] == quoted[i].hash_alg)
                                break;
                        if (lc->ima_banks[k] == 0) {
                                lc->ima_banks[k] = quoted[i].hash_alg;
                                break;
                        }
                }
        }
        for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                lc->match_ord[p] = -1;
        *ret = lc;
        return 0;
}

void cscp_logcheck_free(cscp_logcheck_t *lc)
{
        if (!lc)
                return;
        free(lc->q);
        free(lc->evs);
        free(lc->attested);
        for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                free(lc->snap[p]);
        free(lc);
}

int cscp_logcheck_seed(cscp_logcheck_t *lc, const cscp_replay_t *from, uint32_t pcr_mask)
{
        if (!lc || !from || lc->n_evs || lc->finished)
                return -EINVAL;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                if (from->banks[b] != lc->rp.banks[b])
                        return CSCP_E_STATE;
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++) {
                        if (!(pcr_mask & (1u << p)))
                                continue;
                        memcpy(lc->rp.pcr[b][p], from->pcr[b][p], sizeof(lc->rp.pcr[b][p]));
                        if (from->extended[b] & (1u << p))
                                lc->rp.extended[b] |= 1u << p;
                }
                lc->rp.bank_present[b] |= from->bank_present[b];
        }
        return 0;
}

int cscp_logcheck_want_snapshot(cscp_logcheck_t *lc, unsigned pcr)
{
        if (!lc || pcr >= CSCP_PCR_COUNT || lc->n_evs)
                return -EINVAL;
        lc->want_snap |= 1u << pcr;
        return 0;
}

/* Compares the running value of every still unmatched quoted bank of pcr; takes the snapshot when all match. */
static int check_pcr(cscp_logcheck_t *lc, unsigned pcr)
{
        bool all = true, any_new = false;

        for (size_t i = 0; i < lc->n_q; i++) {
                quoted_t *q = &lc->q[i];
                if (q->out.pcr != pcr)
                        continue;
                if (q->match_ord < 0 && CRYPTO_memcmp(lc->rp.pcr[q->bank][pcr], q->value, q->size) == 0) {
                        q->match_ord = lc->ord[pcr];
                        any_new = true;
                }
                if (q->match_ord < 0)
                        all = false;
        }
        if (all && any_new && (lc->want_snap & (1u << pcr)) && !lc->snap[pcr]) {
                lc->snap[pcr] = malloc(sizeof(cscp_replay_t));
                if (!lc->snap[pcr])
                        return -ENOMEM;
                *lc->snap[pcr] = lc->rp;
                lc->snap_seq[pcr] = lc->n_evs; /* events replayed into it */
        }
        return 0;
}

static int push_event(cscp_logcheck_t *lc, uint8_t pcr, uint32_t ord, uint8_t log)
{
        if (lc->n_evs == lc->cap_evs) {
                uint64_t cap = lc->cap_evs ? lc->cap_evs * 2 : 1024;
                evrec_t *n;

                if (lc->n_evs >= CSCP_LOGCHECK_MAX_EVENTS)
                        return CSCP_E_TOO_BIG;
                if (cap > CSCP_LOGCHECK_MAX_EVENTS)
                        cap = CSCP_LOGCHECK_MAX_EVENTS;
                n = realloc(lc->evs, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                lc->evs = n;
                lc->cap_evs = cap;
        }
        lc->evs[lc->n_evs++] = (evrec_t){.ord = ord, .pcr = pcr, .log = log};
        return 0;
}

int cscp_logcheck_feed(cscp_logcheck_t *lc, unsigned log_no, const uint8_t *data, size_t len,
                       cscp_eventlog_format_t fmt, uint64_t first_index, cscp_logcheck_event_cb cb, void *userdata,
                       char *err, size_t err_len)
{
        cscp_eventlog_opts_t opts = {0};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t saved;
        uint32_t saved_ord[CSCP_PCR_COUNT];
        uint64_t saved_n = 0;
        logstate_t *ls;
        int r;

        if (err && err_len)
                err[0] = '\0';
        if (!lc || log_no >= CSCP_LOGCHECK_MAX_LOGS || lc->finished || lc->logs[log_no].fed)
                return -EINVAL;
        ls = &lc->logs[log_no];
        /* A log that fails part-way must not count: keep what to roll back to. */
        saved = lc->rp;
        memcpy(saved_ord, lc->ord, sizeof(saved_ord));
        saved_n = lc->n_evs;
        ls->fed = true;
        ls->first_seq = lc->n_evs;
        if (len == 0) { /* nothing from this offset on */
                ls->n_events = 0;
                return 0;
        }
        opts.first_index = first_index;
        /* An IMA entry's digest for a bank is a hash of its template data: only the quoted banks matter. */
        if (lc->ima_banks[0])
                memcpy(opts.ima_banks, lc->ima_banks, sizeof(opts.ima_banks));
        r = cscp_eventlog_open_mem(data, len, fmt, &opts, NULL, &l);
        if (r < 0) {
                if (err)
                        snprintf(err, err_len, "cannot open: %s", cscp_strerror(r));
                return r;
        }
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                const cscp_event_t e = *ev;
                bool ext = e.extend && e.reg == CSCP_EVENT_PCR;
                uint64_t seq = lc->n_evs;

                if (ext && e.pcr >= CSCP_PCR_COUNT) {
                        r = CSCP_E_PCRSEL;
                        if (err)
                                snprintf(err, err_len, "event %" PRIu64 " extends PCR %u", e.index, e.pcr);
                        break;
                }
                if (ext && e.n_digests == 0)
                        ext = false;
                if (ext && lc->ord[e.pcr] == 0) {
                        /* Before the PCR's first extend (after any StartupLocality event): the quote may
                         * predate every event of this PCR. */
                        r = check_pcr(lc, e.pcr);
                        if (r < 0)
                                break;
                }
                r = cscp_replay_extend(&lc->rp, &e);
                if (r < 0) {
                        if (err)
                                snprintf(err, err_len, "event %" PRIu64 " (byte %" PRIu64 "): cannot replay: %s",
                                         e.index, e.offset, cscp_strerror(r));
                        break;
                }
                if (ext) {
                        if (lc->ord[e.pcr] == UINT32_MAX) {
                                r = CSCP_E_TOO_BIG;
                                break;
                        }
                        lc->ord[e.pcr]++;
                        ls->pcrs |= 1u << e.pcr;
                }
                r = push_event(lc, ext ? (uint8_t)e.pcr : NO_PCR, ext ? lc->ord[e.pcr] : 0, (uint8_t)log_no);
                if (r < 0) {
                        if (err)
                                snprintf(err, err_len, "more than %u events in all logs", CSCP_LOGCHECK_MAX_EVENTS);
                        break;
                }
                if (ext) {
                        r = check_pcr(lc, e.pcr);
                        if (r < 0)
                                break;
                }
                if (cb) {
                        r = cb(userdata, log_no, &e, seq);
                        if (r < 0) {
                                if (err && !err[0])
                                        snprintf(err, err_len, "event %" PRIu64 ": %s", e.index, cscp_strerror(r));
                                break;
                        }
                }
        }
        if (r < 0 && err && !err[0])
                snprintf(err, err_len, "%s", cscp_eventlog_error(l)[0] ? cscp_eventlog_error(l) : cscp_strerror(r));
        cscp_eventlog_free(l);
        if (r < 0) {
                /* Roll back: this log explains nothing. Matches found inside it are undone too. */
                lc->rp = saved;
                memcpy(lc->ord, saved_ord, sizeof(saved_ord));
                lc->n_evs = saved_n;
                for (size_t i = 0; i < lc->n_q; i++)
                        if (lc->q[i].match_ord > (int64_t)lc->ord[lc->q[i].out.pcr])
                                lc->q[i].match_ord = -1;
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                        if (lc->snap[p] && lc->snap_seq[p] > saved_n) {
                                free(lc->snap[p]);
                                lc->snap[p] = NULL;
                        }
                ls->n_events = 0;
                ls->pcrs = 0;
                return r == -ENOMEM ? r : (r == CSCP_E_TOO_BIG ? r : CSCP_E_PROTO);
        }
        ls->n_events = lc->n_evs - ls->first_seq;
        return 0;
}

int cscp_logcheck_finish(cscp_logcheck_t *lc)
{
        int failed = 0;

        if (!lc || lc->finished)
                return -EINVAL;
        /* PCRs no event touched: the quoted value must be the (seeded or reset) value. */
        for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                if ((lc->quoted_mask & (1u << p)) && lc->ord[p] == 0) {
                        int r = check_pcr(lc, p);
                        if (r < 0)
                                return r;
                }
        /* One attested ordinal per PCR: every quoted bank must have reached its value after the same event. */
        for (unsigned p = 0; p < CSCP_PCR_COUNT; p++) {
                int64_t ord = -2;
                bool ok = true;

                if (!(lc->quoted_mask & (1u << p)))
                        continue;
                for (size_t i = 0; i < lc->n_q; i++) {
                        if (lc->q[i].out.pcr != p)
                                continue;
                        if (lc->q[i].match_ord < 0 || (ord != -2 && ord != lc->q[i].match_ord))
                                ok = false;
                        ord = lc->q[i].match_ord;
                }
                lc->match_ord[p] = ok ? ord : -1;
                if (!ok && lc->snap[p]) {
                        free(lc->snap[p]);
                        lc->snap[p] = NULL;
                }
        }
        for (size_t i = 0; i < lc->n_q; i++) {
                quoted_t *q = &lc->q[i];
                q->out.events = lc->ord[q->out.pcr];
                q->out.matched = lc->match_ord[q->out.pcr] >= 0;
                q->out.attested = q->out.matched ? (uint64_t)lc->match_ord[q->out.pcr] : 0;
                if (!q->out.matched)
                        failed++;
        }
        lc->attested = calloc(lc->n_evs / 8 + 1, 1);
        if (!lc->attested)
                return -ENOMEM;
        for (unsigned log = 0; log < CSCP_LOGCHECK_MAX_LOGS; log++) {
                const logstate_t *ls = &lc->logs[log];
                bool last = true; /* records before any extend of their log */

                for (uint64_t s = ls->first_seq; s < ls->first_seq + ls->n_events; s++) {
                        const evrec_t *e = &lc->evs[s];
                        bool a;

                        if (e->pcr == NO_PCR)
                                a = last;
                        else
                                a = last = lc->match_ord[e->pcr] >= 0 && (int64_t)e->ord <= lc->match_ord[e->pcr];
                        if (a)
                                lc->attested[s / 8] |= (uint8_t)(1u << (s % 8));
                }
        }
        lc->finished = true;
        return failed;
}

size_t cscp_logcheck_n_pcrs(const cscp_logcheck_t *lc)
{
        return lc ? lc->n_q : 0;
}

const cscp_logcheck_pcr_t *cscp_logcheck_pcr(const cscp_logcheck_t *lc, size_t i)
{
        return lc && i < lc->n_q ? &lc->q[i].out : NULL;
}

bool cscp_logcheck_attested(const cscp_logcheck_t *lc, uint64_t seq)
{
        return lc && lc->finished && seq < lc->n_evs && (lc->attested[seq / 8] & (1u << (seq % 8)));
}

int cscp_logcheck_log_counts(const cscp_logcheck_t *lc, unsigned log_no, uint64_t *ret_events,
                             uint64_t *ret_attested_prefix, uint64_t *ret_unattested, uint32_t *ret_pcrs)
{
        const logstate_t *ls;
        uint64_t prefix = 0, un = 0;
        bool gap = false;

        if (!lc || !lc->finished || log_no >= CSCP_LOGCHECK_MAX_LOGS)
                return -EINVAL;
        ls = &lc->logs[log_no];
        if (!ls->fed)
                return -ENOENT;
        for (uint64_t s = ls->first_seq; s < ls->first_seq + ls->n_events; s++) {
                if (cscp_logcheck_attested(lc, s)) {
                        if (!gap)
                                prefix++;
                } else {
                        gap = true;
                        un++;
                }
        }
        if (ret_events)
                *ret_events = ls->n_events;
        if (ret_attested_prefix)
                *ret_attested_prefix = prefix;
        if (ret_unattested)
                *ret_unattested = un;
        if (ret_pcrs)
                *ret_pcrs = ls->pcrs;
        return 0;
}

int cscp_logcheck_snapshot(const cscp_logcheck_t *lc, unsigned pcr, cscp_replay_t *ret, uint64_t *ret_seq)
{
        if (!lc || !lc->finished || pcr >= CSCP_PCR_COUNT || !ret)
                return -EINVAL;
        if (!lc->snap[pcr] || lc->match_ord[pcr] < 0)
                return -ENOENT;
        *ret = *lc->snap[pcr];
        if (ret_seq)
                *ret_seq = lc->snap_seq[pcr];
        return 0;
}
