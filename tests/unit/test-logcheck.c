/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logs against quoted PCR values (lib/logcheck.c): exact logs, logs that run
 * ahead of the quote, logs that never reach it, banks that disagree, slices
 * from an offset with a seeded checkpoint, and malformed logs that must not
 * count. The expected PCR values are computed here with OpenSSL, not with the
 * replay under test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/logcheck.h"

/* A CEL-TLV log of n CM_TLV records on pcr, sha1 + sha256, recnums from first. */
typedef struct tlog {
        uint8_t *buf;
        size_t len;
        size_t off[64]; /* byte offset of each record */
} tlog_t;

static const uint16_t banks[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, 0};

static void add_record(tlog_t *l, uint64_t recnum, uint32_t pcr, const char *event)
{
        cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, event, strlen(event)}};
        cscp_event_digest_t d[4];
        size_t nd = 0, rl = 0;
        uint8_t *content = NULL, *rec = NULL;

        cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, f, 1, &content, &rl), 0);
        size_t cl = rl;
        cr_assert_eq(cscp_cm_digests(content, cl, banks, d, &nd), 0);
        cr_assert_eq(cscp_cel_tlv_encode(recnum, pcr, false, d, nd, CSCP_CEL_CM_TLV, content, cl, &rec, &rl), 0);
        l->off[recnum] = l->len;
        l->buf = realloc(l->buf, l->len + rl);
        memcpy(l->buf + l->len, rec, rl);
        l->len += rl;
        free(rec);
        free(content);
}

/* The PCR value after extending the first n records' digests (computed independently). */
static void expect_value(const tlog_t *l, uint16_t alg, size_t n, uint8_t *out)
{
        const EVP_MD *md = alg == TPM2_ALG_SHA1 ? EVP_sha1() : EVP_sha256();
        size_t size = (size_t)EVP_MD_get_size(md);
        cscp_eventlog_t *el = NULL;
        const cscp_event_t *ev;

        memset(out, 0, size);
        cr_assert_eq(cscp_eventlog_open_mem(l->buf, l->len, CSCP_EVENTLOG_CEL_TLV, NULL, NULL, &el), 0);
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(cscp_eventlog_next(el, &ev), 1);
                for (size_t k = 0; k < ev->n_digests; k++) {
                        if (ev->digests[k].alg != alg)
                                continue;
                        EVP_MD_CTX *x = EVP_MD_CTX_new();
                        unsigned ol;
                        EVP_DigestInit_ex(x, md, NULL);
                        EVP_DigestUpdate(x, out, size);
                        EVP_DigestUpdate(x, ev->digests[k].digest, size);
                        EVP_DigestFinal_ex(x, out, &ol);
                        EVP_MD_CTX_free(x);
                }
        }
        cscp_eventlog_free(el);
}

static cscp_pcr_value_t value(const tlog_t *l, uint16_t alg, unsigned pcr, size_t n)
{
        cscp_pcr_value_t v = {.hash_alg = alg, .index = (uint16_t)pcr};
        v.size = (uint16_t)cscp_hash_alg_size(alg);
        expect_value(l, alg, n, v.value);
        return v;
}

static tlog_t make(size_t n, uint32_t pcr)
{
        tlog_t l = {0};
        char ev[32];
        for (size_t i = 0; i < n; i++) {
                snprintf(ev, sizeof(ev), "event-%zu", i);
                add_record(&l, i, pcr, ev);
        }
        return l;
}

Test(logcheck, exact_log_matches_and_every_event_is_attested)
{
        tlog_t l = make(5, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 5), value(&l, TPM2_ALG_SHA1, 15, 5)};
        cscp_logcheck_t *lc;
        uint64_t events, prefix, un;

        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 0);
        cr_assert(cscp_logcheck_pcr(lc, 0)->matched && cscp_logcheck_pcr(lc, 1)->matched);
        cr_assert_eq(cscp_logcheck_pcr(lc, 0)->attested, 5);
        cr_assert_eq(cscp_logcheck_log_counts(lc, 0, &events, &prefix, &un, NULL), 0);
        cr_assert_eq(events, 5);
        cr_assert_eq(prefix, 5);
        cr_assert_eq(un, 0);
        for (uint64_t s = 0; s < 5; s++)
                cr_assert(cscp_logcheck_attested(lc, s));
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, log_running_ahead_of_the_quote_attests_only_its_prefix)
{
        tlog_t l = make(6, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 4)};
        cscp_logcheck_t *lc;
        uint64_t seen[8], n = 0;

        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 0);
        cr_assert(cscp_logcheck_pcr(lc, 0)->matched);
        cr_assert_eq(cscp_logcheck_pcr(lc, 0)->events, 6);
        cr_assert_eq(cscp_logcheck_pcr(lc, 0)->attested, 4);
        for (uint64_t s = 0; s < 6; s++)
                if (cscp_logcheck_attested(lc, s))
                        seen[n++] = s;
        cr_assert_eq(n, 4);
        cr_assert_eq(seen[3], 3);
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, a_quote_before_any_event_matches_the_reset_value)
{
        tlog_t l = make(2, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 0), value(&l, TPM2_ALG_SHA256, 10, 0)};
        cscp_logcheck_t *lc;

        q[1].index = 10; /* no log writes PCR 10: its reset value */
        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 0);
        cr_assert(cscp_logcheck_pcr(lc, 0)->matched);
        cr_assert_eq(cscp_logcheck_pcr(lc, 0)->attested, 0);
        cr_assert(!cscp_logcheck_attested(lc, 0));
        cr_assert(cscp_logcheck_pcr(lc, 1)->matched);
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, a_log_that_never_reaches_the_quote_fails)
{
        tlog_t l = make(3, 15), other = make(4, 15);
        cscp_pcr_value_t q[] = {value(&other, TPM2_ALG_SHA256, 15, 4)};
        cscp_logcheck_t *lc;

        /* "other" has one more record: a log with a record removed never reaches the quoted value. */
        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 1);
        cr_assert(!cscp_logcheck_pcr(lc, 0)->matched);
        for (uint64_t s = 0; s < 3; s++)
                cr_assert(!cscp_logcheck_attested(lc, s));
        cscp_logcheck_free(lc);
        free(l.buf);
        free(other.buf);
}

Test(logcheck, one_flipped_digest_byte_fails)
{
        tlog_t l = make(3, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 3)};
        cscp_logcheck_t *lc;
        int r;

        /* Flip the last byte of the last record (its content): the digest no longer matches the content
         * (CM_TLV digests are recomputed) or the replay misses the quote. */
        l.buf[l.len - 1] ^= 0x01;
        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), 0);
        r = cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0);
        cr_assert(r == 0 || r == CSCP_E_PROTO);
        cr_assert_eq(cscp_logcheck_finish(lc), 1);
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, banks_reaching_their_values_at_different_events_fail)
{
        tlog_t l = make(4, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 4), value(&l, TPM2_ALG_SHA1, 15, 3)};
        cscp_logcheck_t *lc;

        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 2);
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, a_malformed_log_counts_for_nothing)
{
        tlog_t l = make(3, 15);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 15, 2)};
        cscp_logcheck_t *lc;
        char err[256];

        /* Cut inside the third record: the parser stops there; nothing of the log counts. */
        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), 0);
        cr_assert_eq(
                cscp_logcheck_feed(lc, 0, l.buf, l.off[2] + 5, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, err, sizeof(err)),
                CSCP_E_PROTO);
        cr_assert_neq(err[0], '\0');
        cr_assert_eq(cscp_logcheck_finish(lc), 1, "a prefix of a rejected log must not match");
        cscp_logcheck_free(lc);
        free(l.buf);
}

static int count_cb(void *ud, unsigned log_no, const cscp_event_t *ev, uint64_t seq)
{
        uint64_t *first = ud;
        if (seq == 0)
                *first = ev->index;
        return 0;
}

Test(logcheck, a_slice_from_a_checkpoint_continues_the_replay)
{
        tlog_t l = make(6, 10);
        cscp_pcr_value_t q[] = {value(&l, TPM2_ALG_SHA256, 10, 6), value(&l, TPM2_ALG_SHA1, 10, 6)};
        cscp_pcr_value_t q3[] = {value(&l, TPM2_ALG_SHA256, 10, 3), value(&l, TPM2_ALG_SHA1, 10, 3)};
        cscp_logcheck_t *lc;
        cscp_replay_t snap;
        uint64_t seq, first = 99;

        /* First challenge: the quote covers 3 of 6 records; take the state there. */
        cr_assert_eq(cscp_logcheck_new(q3, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_want_snapshot(lc, 10), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf, l.len, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_finish(lc), 0);
        cr_assert_eq(cscp_logcheck_snapshot(lc, 10, &snap, &seq), 0);
        cr_assert_eq(seq, 3);
        cscp_logcheck_free(lc);

        /* Second challenge: records 3.. only, seeded from the snapshot; recnums continue at 3. */
        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_seed(lc, &snap, 1u << 10), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf + l.off[3], l.len - l.off[3], CSCP_EVENTLOG_CEL_TLV, 3, count_cb,
                                        &first, NULL, 0),
                     0);
        cr_assert_eq(first, 3, "events of a slice carry their index in the whole log");
        cr_assert_eq(cscp_logcheck_finish(lc), 0);
        cscp_logcheck_free(lc);

        /* The same slice without the seed does not match: the state before it matters. */
        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf + l.off[3], l.len - l.off[3], CSCP_EVENTLOG_CEL_TLV, 3, NULL, NULL,
                                        NULL, 0),
                     0);
        cr_assert_eq(cscp_logcheck_finish(lc), 2);
        cscp_logcheck_free(lc);

        /* A slice whose recnums do not start at the given index is malformed. */
        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, l.buf + l.off[3], l.len - l.off[3], CSCP_EVENTLOG_CEL_TLV, 2, NULL, NULL,
                                        NULL, 0),
                     CSCP_E_PROTO);
        cscp_logcheck_free(lc);
        free(l.buf);
}

Test(logcheck, bad_arguments)
{
        cscp_pcr_value_t q[2] = {{.hash_alg = TPM2_ALG_SHA256, .index = 1, .size = 32},
                                 {.hash_alg = TPM2_ALG_SHA256, .index = 1, .size = 32}};
        cscp_logcheck_t *lc = NULL;

        cr_assert_eq(cscp_logcheck_new(q, 2, &lc), -EINVAL, "two values for one bank and PCR");
        q[0].size = 20;
        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), CSCP_E_UNSUPPORTED, "a value of the wrong size");
        q[0].size = 32;
        cr_assert_eq(cscp_logcheck_new(q, 1, &lc), 0);
        cr_assert_eq(
                cscp_logcheck_feed(lc, CSCP_LOGCHECK_MAX_LOGS, NULL, 0, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0),
                -EINVAL);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, NULL, 0, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), 0);
        cr_assert_eq(cscp_logcheck_feed(lc, 0, NULL, 0, CSCP_EVENTLOG_CEL_TLV, 0, NULL, NULL, NULL, 0), -EINVAL,
                     "one log number fed twice");
        cscp_logcheck_free(lc);
}
