/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG Canonical Event Log: streaming parsers for CEL-TLV and CEL-JSON
 * (reference.md §6; our CM_TLV content in docs/measurements.md).
 *
 * CEL-TLV: every TLV is u8 type || u32 big-endian length || value. A record is
 *   recnum TLV (type 0; 1..8 byte big-endian integer: any width, as long as
 *              it fits, since go-eventlog writes 8 bytes and others write the
 *              minimal length)
 *   register   pcr (1), nv_index (2) or go-eventlog's CCMR (108); 1..4 bytes
 *   digests    (3) nested TLVs: type = TPM_ALG_ID (sha1 4, sha256 0x0B,
 *              sha384 0x0C, sha512 0x0D), value = the digest of that size;
 *              at most one per algorithm, at most four
 *   content    one TLV whose type (>= 4) is the content type: CEL_MGT 4,
 *              PCCLIENT_STD 5, IMA_TEMPLATE 7, IMA_TLV 8, CM_TLV 9; any other
 *              type is kept as is (ev->type, ev->data) and not interpreted.
 *
 * CEL-JSON: one object per record with "recnum", "pcr" or "nv_index",
 * "digests" [{"hashAlg", "digest" (hex)}], "content_type" and "content", in
 * one of three framings, chosen by the first byte that is not whitespace and
 * then fixed for the whole log:
 *   '['   a JSON array of records (tpm2-tss FAPI),
 *   '{'   JSON lines: records separated by whitespace,
 *   0x1E  RFC 7464 JSON-SEQ: RS before every record (systemd's
 *         /run/log/systemd/tpm2-measure.log, which has no recnum).
 *
 * Rules common to both encodings:
 *  - recnum must equal the record's position in the log (ev->index): the
 *    first record is 0 and every record adds one. A record without recnum
 *    (JSON only) is numbered by its position.
 *  - CEL_MGT records are not extended (ev->extend = false); every other
 *    record must carry at least one digest, and a PCR record must name a PCR
 *    0..23.
 *  - CM_TLV content must decode (cscp_cm_decode) and every digest must be
 *    H_alg(content value): the content is what a policy reads, so it is bound
 *    to what replay checks. Other content types are not checked against
 *    their digests.
 *  - Nested TLVs of CEL_MGT, PCCLIENT_STD, IMA_TEMPLATE and IMA_TLV content
 *    must tile the content value exactly.
 *
 * CEL-JSON specifics: the text must be strict JSON (RFC 8259) in strict UTF-8:
 * no NUL (raw or \u0000), no raw control characters or unpaired surrogates
 * in strings, no duplicate member names anywhere, nesting at most
 * JSON_MAX_DEPTH, no members other than the seven above. json-c's tokener
 * parses; what it lets through (overlong and surrogate UTF-8, single quotes,
 * "1.", duplicate keys) is refused by the pre-pass below. content_type names:
 * "cel" 4, "pcclient_std" 5, "ima_template" 7, "ima_tlv" 8, "cm_tlv" 9,
 * "systemd" CSCP_CEL_CONTENT_SYSTEMD, "tss2" CSCP_CEL_CONTENT_TSS2, any other
 * name CSCP_CEL_CONTENT_OTHER (kind = the name); a number 4..255 is that
 * content type. ev->data is the content serialised compactly by json-c, except
 * for cm_tlv, whose "raw" hex is decoded into ev->data (and the named fields
 * must be exactly what cscp_cm_to_json gives for raw).
 *
 * Memory: one record is held at a time (bounded by opts.max_record); the JSON
 * pre-pass keeps one counter per object of the record.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/util.h"
#include "internal.h"

#define TLV_HEADER     5
#define DIGESTS_MAX    (CSCP_EVENT_MAX_DIGESTS * (TLV_HEADER + CSCP_EVENT_MAX_DIGEST))
#define TEXT_MAX       512
#define KIND_MAX       64
#define JSON_MAX_DEPTH 32
#define JSON_CHUNK     4096
#define RS             0x1e

#define STATE_VERSION 1
#define STATE_LEN     11 /* version, frame, array state, u64 BE next recnum */

typedef enum frame {
        FRAME_NONE = 0, /* not yet known (start of the log) */
        FRAME_ARRAY,
        FRAME_LINES,
        FRAME_SEQ,
} frame_t;

typedef enum array_state {
        ARRAY_OPEN = 0, /* after '[': an element or ']' */
        ARRAY_AFTER,    /* after an element: ',' or ']' */
        ARRAY_NEED,     /* after ',': an element */
        ARRAY_CLOSED,   /* after ']': only whitespace */
} array_state_t;

typedef struct cel {
        uint64_t next_recnum;
        bool resumed; /* restored from a checkpoint: check next_recnum against the index once */
        frame_t frame;
        array_state_t array;
        char kind[KIND_MAX];
        char text[TEXT_MAX];
        /* JSON: the current record's content (ev->data) and the pre-pass's per-object member counts. */
        char *json_data;
        uint8_t *raw;
        uint32_t *counts;
        size_t n_counts, cap_counts;
        struct json_tokener *tok;
} cel_t;

static cel_t *state(cscp_eventlog_t *l)
{
        if (!l->priv) {
                cel_t *st = calloc(1, sizeof(cel_t));
                if (st)
                        st->next_recnum = l->next_index; /* a slice (opts.first_index) starts counting there */
                l->priv = st;
        }
        return l->priv;
}

static void cel_free(cscp_eventlog_t *l)
{
        cel_t *st = l->priv;

        if (!st)
                return;
        free(st->json_data);
        free(st->raw);
        free(st->counts);
        if (st->tok)
                json_tokener_free(st->tok);
        free(st);
        l->priv = NULL;
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* Index of the first byte that is not strict UTF-8, or len. */
static size_t utf8_bad(const uint8_t *p, size_t len)
{
        size_t i = 0;

        while (i < len) {
                uint8_t c = p[i];
                size_t n;
                uint32_t cp, min;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1fu, min = 0x80;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0fu, min = 0x800;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07u, min = 0x10000;
                else
                        return i;
                if (len - i - 1 < n)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = cp << 6 | (p[i + k] & 0x3fu);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += n + 1;
        }
        return len;
}

bool cscp_cel_utf8_valid(const void *s, size_t len)
{
        return (s || !len) && utf8_bad(s, len) == len;
}

/* ---------------------------------------------------------------- text */

typedef struct tb {
        char *buf;
        size_t cap, len;
} tb_t;

/* Appends UTF-8 (already valid) with control characters escaped; truncates at a character boundary. */
static void tb_bytes(tb_t *t, const uint8_t *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t c = s[i];
                size_t clen = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

                if (c < 0x20 || c == 0x7f) {
                        if (t->len + 4 + 4 >= t->cap)
                                goto cut;
                        t->len += (size_t)snprintf(t->buf + t->len, t->cap - t->len, "\\x%02x", c);
                        continue;
                }
                if (i + clen > n)
                        clen = n - i;
                if (t->len + clen + 4 >= t->cap)
                        goto cut;
                memcpy(t->buf + t->len, s + i, clen);
                t->len += clen;
                i += clen - 1;
        }
        t->buf[t->len] = '\0';
        return;
cut:
        if (t->len + 3 < t->cap) {
                memcpy(t->buf + t->len, "...", 3);
                t->len += 3;
        }
        t->buf[t->len] = '\0';
}

static void tb_str(tb_t *t, const char *s)
{
        tb_bytes(t, (const uint8_t *)s, strlen(s));
}

static void tb_sep(tb_t *t)
{
        if (t->len)
                tb_str(t, " ");
}

/* kind, event, container id, name of a CM_TLV content value ("container vtpm-bind c1 ..."). */
static void text_cm(tb_t *t, const cscp_cm_record_t *rec)
{
        static const cscp_cm_field_t shown[] = {CSCP_CM_F_EVENT, CSCP_CM_F_CONTAINER_ID, CSCP_CM_F_NAME,
                                                CSCP_CM_F_DIGEST};

        tb_str(t, cscp_cm_kind_name(rec->kind));
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
                if (rec->f[shown[i]].data && rec->f[shown[i]].len) {
                        tb_sep(t);
                        tb_bytes(t, rec->f[shown[i]].data, rec->f[shown[i]].len);
                }
        if (rec->f[CSCP_CM_F_INDEX].data) {
                char b[24];
                snprintf(b, sizeof(b), " #%u", (unsigned)get_be(rec->f[CSCP_CM_F_INDEX].data, 4));
                tb_str(t, b);
        }
}

/* ----------------------------------------------------------- input helpers */

/* evlog_in_need with an error naming what was being read (rel: offset in the record). */
static int need(cscp_eventlog_t *l, size_t n, const char *what, size_t rel, const uint8_t **ret)
{
        int r = evlog_in_need(&l->in, n, ret);

        if (r == 0)
                return 0;
        if (r == -ENODATA)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + rel,
                                  "truncated record: %s needs %zu bytes, only %zu left", what, n,
                                  evlog_in_avail(&l->in));
        if (r == CSCP_E_TOO_BIG)
                return evlog_fail(l, CSCP_E_TOO_BIG, l->ev.offset + rel,
                                  "record longer than the limit of %zu bytes (reading %s)", l->opts.max_record, what);
        return evlog_fail(l, r, l->ev.offset + rel, "reading %s: %s", what, cscp_strerror(r));
}

/* Checks a restored checkpoint against the numbering eventlog.c continues with. */
static int check_resume(cscp_eventlog_t *l, cel_t *st, cscp_event_t *ev)
{
        if (!st->resumed)
                return 0;
        st->resumed = false;
        if (st->next_recnum != ev->index)
                return evlog_fail(l, CSCP_E_STATE, ev->offset,
                                  "checkpoint expects recnum %llu but resumes at event %llu",
                                  (unsigned long long)st->next_recnum, (unsigned long long)ev->index);
        return 0;
}

/* Shared by both encodings once register, digests and content are known. */
static int finish_event(cscp_eventlog_t *l, cel_t *st, cscp_event_t *ev, size_t rel_digests)
{
        const char *name = cscp_cel_content_type_name(ev->type);

        ev->extend = ev->type != CSCP_CEL_MGT;
        if (ev->extend && ev->n_digests == 0)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + rel_digests, "record has no digest");
        if (ev->extend && ev->reg == CSCP_EVENT_PCR && ev->pcr >= CSCP_PCR_COUNT)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "PCR index %u out of range 0..%d", ev->pcr,
                                  CSCP_PCR_COUNT - 1);
        if (name) {
                ev->kind = name;
        } else if (ev->type != CSCP_CEL_CONTENT_OTHER) {
                snprintf(st->kind, sizeof(st->kind), "content-%u", ev->type);
                ev->kind = st->kind;
        } else {
                ev->kind = st->kind; /* set by the JSON parser */
        }
        ev->text = st->text;
        return 0;
}

/* For CM_TLV content: decode, text, and every digest = H_alg(content). */
static int check_cm(cscp_eventlog_t *l, cel_t *st, cscp_event_t *ev, size_t rel_content, size_t rel_digests)
{
        tb_t t = {.buf = st->text, .cap = sizeof(st->text)};
        cscp_cm_record_t rec;
        int r;

        r = cscp_cm_decode(ev->data, ev->data_len, &rec);
        if (r < 0)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + rel_content, "CM_TLV content does not decode");
        for (size_t i = 0; i < ev->n_digests; i++) {
                uint8_t h[CSCP_EVENT_MAX_DIGEST];

                r = evlog_hash(ev->digests[i].alg, ev->data, ev->data_len, h);
                if (r < 0)
                        return evlog_fail(l, r, ev->offset + rel_digests, "hashing CM_TLV content: %s",
                                          cscp_strerror(r));
                if (memcmp(h, ev->digests[i].digest, ev->digests[i].size) != 0)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + rel_digests,
                                          "%s digest is not the hash of the CM_TLV content",
                                          cscp_hash_alg_name(ev->digests[i].alg));
        }
        text_cm(&t, &rec);
        return 0;
}

/* ------------------------------------------------------------------ TLV */

/* Nested TLVs of a known content type: they must tile the value; text from the interesting ones. */
static int check_nested(cscp_eventlog_t *l, cel_t *st, cscp_event_t *ev, size_t rel)
{
        tb_t t = {.buf = st->text, .cap = sizeof(st->text)};
        const uint8_t *d = ev->data;
        size_t off = 0, n = ev->data_len;

        while (off < n) {
                uint8_t type;
                uint64_t len;
                const uint8_t *v;

                if (n - off < TLV_HEADER)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + rel + off,
                                          "nested TLV header truncated: %zu bytes left in the %s content", n - off,
                                          ev->kind);
                type = d[off];
                len = get_be(d + off + 1, 4);
                if (len > n - off - TLV_HEADER)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + rel + off,
                                          "nested TLV (type %u) of %llu bytes overflows the %s content (%zu left)",
                                          type, (unsigned long long)len, ev->kind, n - off - TLV_HEADER);
                v = d + off + TLV_HEADER;
                if (ev->type == CSCP_CEL_PCCLIENT_STD && type == 0 && len >= 1 && len <= 4) {
                        char b[48];
                        snprintf(b, sizeof(b), "event_type 0x%08X", (unsigned)get_be(v, (size_t)len));
                        tb_sep(&t);
                        tb_str(&t, b);
                } else if ((ev->type == CSCP_CEL_IMA_TEMPLATE || ev->type == CSCP_CEL_IMA_TLV) && type == 0 &&
                           utf8_bad(v, (size_t)len) == len && !memchr(v, 0, (size_t)len)) {
                        tb_sep(&t);
                        tb_bytes(&t, v, (size_t)len); /* template name / path */
                } else if (ev->type == CSCP_CEL_MGT) {
                        const char *what = type == 1                    ? "cel_version"
                                           : type == 2                  ? "firmware_end"
                                           : type == 80 || type == 0x80 ? "cel_timestamp"
                                           : type == 81 || type == 0x81 ? "state_trans"
                                                                        : NULL;
                        if (what) {
                                tb_sep(&t);
                                tb_str(&t, what);
                        }
                }
                off += TLV_HEADER + (size_t)len;
        }
        return 0;
}

static int tlv_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        cel_t *st = state(l);
        const uint8_t *p;
        uint64_t len, recnum, clen;
        size_t off, dstart, dend, rel_content;
        uint8_t type;
        char lb[8];
        int r;

        if (!st)
                return -ENOMEM;
        st->text[0] = '\0';
        if (evlog_in_at_end(&l->in))
                return 0;
        r = check_resume(l, st, ev);
        if (r < 0)
                return r;

        /* recnum */
        r = need(l, TLV_HEADER, "the recnum TLV", 0, &p);
        if (r < 0)
                return r;
        if (p[0] != CSCP_CEL_RECNUM)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "expected the recnum TLV (type 0), found type %u", p[0]);
        len = get_be(p + 1, 4);
        if (len < 1 || len > 8)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + 1, "recnum of %llu bytes (1..8 allowed)",
                                  (unsigned long long)len);
        r = need(l, TLV_HEADER + (size_t)len, "the recnum", TLV_HEADER, &p);
        if (r < 0)
                return r;
        recnum = get_be(p + TLV_HEADER, (size_t)len);
        if (recnum != st->next_recnum)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + TLV_HEADER,
                                  "recnum %llu, expected %llu (recnums count up by one from 0)",
                                  (unsigned long long)recnum, (unsigned long long)st->next_recnum);
        off = TLV_HEADER + (size_t)len;

        /* register */
        r = need(l, off + TLV_HEADER, "the PCR / NV index TLV", off, &p);
        if (r < 0)
                return r;
        type = p[off];
        if (type != CSCP_CEL_PCR && type != CSCP_CEL_NV_INDEX && type != CSCP_CEL_CCMR)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + off,
                                  "expected a pcr (1), nv_index (2) or ccmr (108) TLV, found type %u", type);
        len = get_be(p + off + 1, 4);
        if (len < 1 || len > 4)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + off + 1, "register index of %llu bytes (1..4 allowed)",
                                  (unsigned long long)len);
        r = need(l, off + TLV_HEADER + (size_t)len, "the register index", off, &p);
        if (r < 0)
                return r;
        ev->reg = type == CSCP_CEL_PCR        ? CSCP_EVENT_PCR
                  : type == CSCP_CEL_NV_INDEX ? CSCP_EVENT_NV_INDEX
                                              : CSCP_EVENT_RTMR;
        ev->pcr = (uint32_t)get_be(p + off + TLV_HEADER, (size_t)len);
        off += TLV_HEADER + (size_t)len;

        /* digests */
        r = need(l, off + TLV_HEADER, "the digests TLV", off, &p);
        if (r < 0)
                return r;
        if (p[off] != CSCP_CEL_DIGESTS)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + off, "expected the digests TLV (type 3), found type %u",
                                  p[off]);
        len = get_be(p + off + 1, 4);
        if (len > DIGESTS_MAX)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + off + 1,
                                  "digests TLV of %llu bytes (at most %d: four digests of up to %d bytes)",
                                  (unsigned long long)len, DIGESTS_MAX, CSCP_EVENT_MAX_DIGEST);
        dstart = off;
        r = need(l, off + TLV_HEADER + (size_t)len, "the digests", off, &p);
        if (r < 0)
                return r;
        off += TLV_HEADER;
        dend = off + (size_t)len;
        while (off < dend) {
                uint8_t alg;
                uint64_t dlen;
                size_t size;

                if (dend - off < TLV_HEADER)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + off,
                                          "nested digest TLV header truncated: %zu bytes left in the digests TLV",
                                          dend - off);
                alg = p[off];
                dlen = get_be(p + off + 1, 4);
                if (dlen > dend - off - TLV_HEADER)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + off,
                                          "digest TLV of %llu bytes overflows the digests TLV (%zu bytes left)",
                                          (unsigned long long)dlen, dend - off - TLV_HEADER);
                size = cscp_hash_alg_size(alg);
                if (size == 0) {
                        snprintf(lb, sizeof(lb), "0x%02x", alg);
                        return evlog_fail(l, CSCP_E_UNSUPPORTED, ev->offset + off, "unknown digest algorithm %s", lb);
                }
                if (dlen != size)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + off, "%s digest of %llu bytes (expected %zu)",
                                          cscp_hash_alg_name(alg), (unsigned long long)dlen, size);
                r = evlog_add_digest(ev, alg, p + off + TLV_HEADER, size);
                if (r < 0)
                        return evlog_fail(l, r, ev->offset + off, "%s digest: %s", cscp_hash_alg_name(alg),
                                          r == CSCP_E_PROTO ? "a second digest of this algorithm" : cscp_strerror(r));
                off += TLV_HEADER + size;
        }

        /* content */
        r = need(l, off + TLV_HEADER, "the content TLV", off, &p);
        if (r < 0)
                return r;
        type = p[off];
        if (type < CSCP_CEL_MGT || type == CSCP_CEL_CCMR)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + off, "expected a content TLV, found type %u", type);
        clen = get_be(p + off + 1, 4);
        if (clen > l->opts.max_record || off + TLV_HEADER > l->opts.max_record - clen)
                return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset + off + 1,
                                  "content of %llu bytes exceeds the record limit of %zu bytes",
                                  (unsigned long long)clen, l->opts.max_record);
        rel_content = off + TLV_HEADER;
        r = need(l, rel_content + (size_t)clen, "the content", off, &p);
        if (r < 0)
                return r;
        ev->type = type;
        ev->data = p + rel_content;
        ev->data_len = (size_t)clen;
        ev->kind = cscp_cel_content_type_name(type);
        if (type == CSCP_CEL_CM_TLV)
                r = check_cm(l, st, ev, rel_content, dstart);
        else if (type == CSCP_CEL_MGT || type == CSCP_CEL_PCCLIENT_STD || type == CSCP_CEL_IMA_TEMPLATE ||
                 type == CSCP_CEL_IMA_TLV)
                r = check_nested(l, st, ev, rel_content);
        if (r < 0)
                return r;
        r = finish_event(l, st, ev, dstart);
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, rel_content + (size_t)clen);
        st->next_recnum++;
        return 1;
}

/* ----------------------------------------------------------------- JSON */

static bool is_ws(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips whitespace; 1 and the next byte (not consumed), 0 at the end, < 0 on a read error. */
static int skip_ws(cscp_eventlog_t *l, uint8_t *ret)
{
        for (;;) {
                const uint8_t *p;
                int r;

                if (evlog_in_at_end(&l->in))
                        return 0;
                r = evlog_in_need(&l->in, 1, &p);
                if (r < 0)
                        return r;
                if (!is_ws(p[0])) {
                        *ret = p[0];
                        return 1;
                }
                evlog_in_consume(&l->in, 1);
        }
}

/* Length of the JSON object that starts at the current position ('{'), read as far as needed. */
static int find_object(cscp_eventlog_t *l, size_t *ret_len)
{
        size_t pos = 0, depth = 0, want = JSON_CHUNK, max = l->opts.max_record;
        bool in_str = false, esc = false;

        for (;;) {
                const uint8_t *p;
                size_t have = want > max ? max : want;
                int r = evlog_in_need(&l->in, have, &p);

                if (r == -ENODATA) {
                        have = evlog_in_avail(&l->in);
                        r = have ? evlog_in_need(&l->in, have, &p) : -ENODATA;
                }
                if (r == -ENODATA || (r == 0 && have <= pos))
                        return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + pos,
                                          "truncated record: the JSON object is not closed (%zu bytes, depth %zu)", pos,
                                          depth);
                if (r < 0)
                        return evlog_fail(l, r, l->ev.offset + pos, "reading the record: %s", cscp_strerror(r));
                for (; pos < have; pos++) {
                        uint8_t c = p[pos];

                        if (c == 0)
                                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + pos, "NUL byte in the JSON text");
                        if (in_str) {
                                if (esc)
                                        esc = false;
                                else if (c == '\\')
                                        esc = true;
                                else if (c == '"')
                                        in_str = false;
                                continue;
                        }
                        if (c == '"') {
                                in_str = true;
                        } else if (c == '{' || c == '[') {
                                if (++depth > JSON_MAX_DEPTH)
                                        return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + pos,
                                                          "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
                        } else if (c == '}' || c == ']') {
                                if (depth == 0 || --depth == 0) {
                                        *ret_len = pos + 1;
                                        return 0;
                                }
                        }
                }
                if (have >= max)
                        return evlog_fail(l, CSCP_E_TOO_BIG, l->ev.offset,
                                          "JSON record longer than the limit of %zu bytes", max);
                if (have < want)
                        continue; /* end of input reached: the next round reports truncation */
                want = want > max / 2 ? max : want * 2;
        }
}

static int hexdig(uint8_t c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int u4(const uint8_t *p, size_t n, size_t i, uint32_t *ret)
{
        uint32_t v = 0;

        if (n - i < 4)
                return -1;
        for (size_t k = 0; k < 4; k++) {
                int h = hexdig(p[i + k]);
                if (h < 0)
                        return -1;
                v = v << 4 | (uint32_t)h;
        }
        *ret = v;
        return 0;
}

static bool is_digit(uint8_t c)
{
        return c >= '0' && c <= '9';
}

/* JSON number grammar at p[i]; returns its length or 0. */
static size_t number_len(const uint8_t *p, size_t n, size_t i)
{
        size_t s = i;

        if (i < n && p[i] == '-')
                i++;
        if (i >= n || !is_digit(p[i]))
                return 0;
        if (p[i] == '0')
                i++;
        else
                while (i < n && is_digit(p[i]))
                        i++;
        if (i < n && p[i] == '.') {
                if (++i >= n || !is_digit(p[i]))
                        return 0;
                while (i < n && is_digit(p[i]))
                        i++;
        }
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
                i++;
                if (i < n && (p[i] == '+' || p[i] == '-'))
                        i++;
                if (i >= n || !is_digit(p[i]))
                        return 0;
                while (i < n && is_digit(p[i]))
                        i++;
        }
        return i - s;
}

/*
 * What json-c lets through: strict UTF-8, strings (controls, escapes, NUL,
 * surrogates), numbers, bare words, and the member count of every object in
 * document order (st->counts) to find duplicate names after parsing.
 */
static int prepass(cscp_eventlog_t *l, cel_t *st, const uint8_t *p, size_t n)
{
        size_t stack[JSON_MAX_DEPTH + 1], depth = 0, bad;
        bool is_obj[JSON_MAX_DEPTH + 1];
        uint64_t at = l->ev.offset;

        bad = utf8_bad(p, n);
        if (bad < n)
                return evlog_fail(l, CSCP_E_PROTO, at + bad, "invalid UTF-8 in the JSON text");
        st->n_counts = 0;
        for (size_t i = 0; i < n;) {
                uint8_t c = p[i];

                if (c == '"') {
                        for (i++;; i++) {
                                if (i >= n)
                                        return evlog_fail(l, CSCP_E_PROTO, at + i, "unterminated JSON string");
                                c = p[i];
                                if (c == '"')
                                        break;
                                if (c < 0x20)
                                        return evlog_fail(l, CSCP_E_PROTO, at + i,
                                                          "control character 0x%02x in a JSON string", c);
                                if (c != '\\')
                                        continue;
                                if (++i >= n)
                                        return evlog_fail(l, CSCP_E_PROTO, at + i, "unterminated JSON string");
                                c = p[i];
                                if (c == 'u') {
                                        uint32_t u = 0, lo = 0;
                                        if (u4(p, n, i + 1, &u) < 0)
                                                return evlog_fail(l, CSCP_E_PROTO, at + i, "bad \\u escape");
                                        i += 4;
                                        if (u == 0)
                                                return evlog_fail(l, CSCP_E_PROTO, at + i - 5,
                                                                  "\\u0000 (NUL) in a JSON string");
                                        if (u >= 0xdc00 && u <= 0xdfff)
                                                return evlog_fail(l, CSCP_E_PROTO, at + i - 5,
                                                                  "unpaired surrogate \\u%04X", u);
                                        if (u >= 0xd800 && u <= 0xdbff) {
                                                if (n - i < 3 || p[i + 1] != '\\' || p[i + 2] != 'u' ||
                                                    u4(p, n, i + 3, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                                        return evlog_fail(l, CSCP_E_PROTO, at + i - 5,
                                                                          "unpaired surrogate \\u%04X", u);
                                                i += 6;
                                        }
                                } else if (!strchr("\"\\/bfnrt", c)) {
                                        return evlog_fail(l, CSCP_E_PROTO, at + i - 1,
                                                          "bad escape \\%c in a JSON string",
                                                          c >= 0x20 && c < 0x7f ? c : '?');
                                }
                        }
                        i++;
                        continue;
                }
                if (c == '-' || is_digit(c)) {
                        size_t k = number_len(p, n, i);
                        if (k == 0)
                                return evlog_fail(l, CSCP_E_PROTO, at + i, "malformed JSON number");
                        i += k;
                        continue;
                }
                if (c == 't' || c == 'f' || c == 'n') {
                        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
                        size_t wl = strlen(w);
                        if (n - i < wl || memcmp(p + i, w, wl) != 0)
                                return evlog_fail(l, CSCP_E_PROTO, at + i, "unexpected word in JSON text");
                        i += wl;
                        continue;
                }
                if (c == '{' || c == '[') {
                        if (depth >= JSON_MAX_DEPTH)
                                return evlog_fail(l, CSCP_E_PROTO, at + i, "JSON nested deeper than %d levels",
                                                  JSON_MAX_DEPTH);
                        is_obj[depth] = c == '{';
                        stack[depth] = st->n_counts;
                        depth++;
                        if (c == '{') {
                                if (st->n_counts == st->cap_counts) {
                                        size_t cap = st->cap_counts ? 2 * st->cap_counts : 64;
                                        uint32_t *nc = reallocarray(st->counts, cap, sizeof(*nc));
                                        if (!nc)
                                                return -ENOMEM;
                                        st->counts = nc;
                                        st->cap_counts = cap;
                                }
                                st->counts[st->n_counts++] = 0;
                        }
                } else if (c == '}' || c == ']') {
                        if (depth == 0)
                                return evlog_fail(l, CSCP_E_PROTO, at + i, "unbalanced '%c'", c);
                        depth--;
                } else if (c == ':') {
                        if (depth == 0 || !is_obj[depth - 1])
                                return evlog_fail(l, CSCP_E_PROTO, at + i, "':' outside an object");
                        st->counts[stack[depth - 1]]++;
                } else if (c != ',' && !is_ws(c)) {
                        return evlog_fail(l, CSCP_E_PROTO, at + i, "unexpected character '%c' in JSON text",
                                          c >= 0x20 && c < 0x7f ? c : '?');
                }
                i++;
        }
        return 0;
}

/* Compares json-c's objects (pre-order) with the pre-pass's member counts: a difference is a duplicate name. */
static bool counts_match(json_object *o, const uint32_t *counts, size_t n, size_t *k)
{
        if (json_object_is_type(o, json_type_object)) {
                if (*k >= n || (size_t)json_object_object_length(o) != counts[*k])
                        return false;
                (*k)++;
                json_object_object_foreach(o, key, val)
                {
                        (void)key;
                        if (!counts_match(val, counts, n, k))
                                return false;
                }
        } else if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (!counts_match(json_object_array_get_idx(o, i), counts, n, k))
                                return false;
        }
        return true;
}

/* A JSON record mapped to the fields of a CEL record. */
typedef struct jrec {
        bool has_recnum;
        uint64_t recnum;
        cscp_event_register_t reg;
        uint32_t index;
        size_t n_digests;
        cscp_event_digest_t digests[CSCP_EVENT_MAX_DIGESTS];
        uint32_t type;
        const char *type_name; /* as written (for CSCP_CEL_CONTENT_OTHER) */
        json_object *content;
        uint8_t *raw; /* "raw" hex of the content, decoded (malloc'd), when present */
        size_t raw_len;
        bool has_raw;
} jrec_t;

static int get_u32(json_object *v, uint32_t *ret)
{
        int64_t x;

        if (!json_object_is_type(v, json_type_int))
                return -1;
        errno = 0;
        x = json_object_get_int64(v);
        if (errno || x < 0 || x > UINT32_MAX)
                return -1;
        *ret = (uint32_t)x;
        return 0;
}

static uint16_t alg_from_json(const char *s)
{
        if (strncasecmp(s, "TPM2_ALG_", 9) == 0)
                s += 9;
        if (strcasecmp(s, "sha1") == 0)
                return TPM2_ALG_SHA1;
        if (strcasecmp(s, "sha256") == 0)
                return TPM2_ALG_SHA256;
        if (strcasecmp(s, "sha384") == 0)
                return TPM2_ALG_SHA384;
        if (strcasecmp(s, "sha512") == 0)
                return TPM2_ALG_SHA512;
        return 0;
}

/* Hex string (any case) to bytes; malloc'd. */
static int hex_bytes(json_object *v, uint8_t **ret, size_t *ret_len)
{
        const char *s = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        uint8_t *b;

        if (n % 2)
                return -1;
        b = malloc(n / 2 + 1);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hexdig((uint8_t)s[2 * i]), lo = hexdig((uint8_t)s[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        free(b);
                        return -1;
                }
                b[i] = (uint8_t)(hi << 4 | lo);
        }
        *ret = b;
        *ret_len = n / 2;
        return 0;
}

#define JFAIL(code, ...)                            \
        do {                                        \
                snprintf(err, errlen, __VA_ARGS__); \
                return (code);                      \
        } while (0)

static int jrec_digests(json_object *arr, jrec_t *j, char *err, size_t errlen)
{
        size_t n;

        if (!json_object_is_type(arr, json_type_array))
                JFAIL(CSCP_E_PROTO, "\"digests\" is not an array");
        n = json_object_array_length(arr);
        if (n > CSCP_EVENT_MAX_DIGESTS)
                JFAIL(CSCP_E_PROTO, "%zu digests (at most %d)", n, CSCP_EVENT_MAX_DIGESTS);
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(arr, i), *alg = NULL, *hex = NULL;
                cscp_event_digest_t *out = &j->digests[i];
                uint16_t id;
                size_t size, hl;
                uint8_t *b = NULL;
                int r;

                if (!json_object_is_type(d, json_type_object) || json_object_object_length(d) != 2 ||
                    !json_object_object_get_ex(d, "hashAlg", &alg) || !json_object_object_get_ex(d, "digest", &hex) ||
                    !json_object_is_type(alg, json_type_string) || !json_object_is_type(hex, json_type_string))
                        JFAIL(CSCP_E_PROTO, "digest %zu is not {\"hashAlg\": string, \"digest\": hex string}", i);
                id = alg_from_json(json_object_get_string(alg));
                if (!id)
                        JFAIL(CSCP_E_UNSUPPORTED, "digest %zu: unknown digest algorithm \"%.32s\"", i,
                              json_object_get_string(alg));
                for (size_t k = 0; k < i; k++)
                        if (j->digests[k].alg == id)
                                JFAIL(CSCP_E_PROTO, "digest %zu: a second %s digest", i, cscp_hash_alg_name(id));
                size = cscp_hash_alg_size(id);
                hl = (size_t)json_object_get_string_len(hex);
                if (hl != 2 * size)
                        JFAIL(CSCP_E_PROTO, "digest %zu: %s digest of %zu hex digits (expected %zu)", i,
                              cscp_hash_alg_name(id), hl, 2 * size);
                r = hex_bytes(hex, &b, &hl);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        JFAIL(CSCP_E_PROTO, "digest %zu: not hex", i);
                out->alg = id;
                out->size = (uint16_t)size;
                memset(out->digest, 0, sizeof(out->digest));
                memcpy(out->digest, b, size);
                free(b);
                j->n_digests = i + 1;
        }
        return 0;
}

/* Maps a parsed record object; the message of a failure goes to err. */
static int jrec_parse(json_object *o, jrec_t *j, char *err, size_t errlen)
{
        json_object *v;
        int regs = 0, r;

        memset(j, 0, sizeof(*j));
        if (!json_object_is_type(o, json_type_object))
                JFAIL(CSCP_E_PROTO, "record is not a JSON object");
        json_object_object_foreach(o, key, val)
        {
                (void)val;
                if (strcmp(key, "recnum") && strcmp(key, "pcr") && strcmp(key, "nv_index") && strcmp(key, "digests") &&
                    strcmp(key, "content_type") && strcmp(key, "content"))
                        JFAIL(CSCP_E_PROTO, "unknown member \"%.40s\"", key);
        }
        if (json_object_object_get_ex(o, "recnum", &v)) {
                int64_t x;
                errno = 0;
                x = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
                if (errno || x < 0)
                        JFAIL(CSCP_E_PROTO, "\"recnum\" is not a non-negative integer");
                j->has_recnum = true;
                j->recnum = (uint64_t)x;
        }
        if (json_object_object_get_ex(o, "pcr", &v)) {
                regs++;
                j->reg = CSCP_EVENT_PCR;
                if (get_u32(v, &j->index) < 0)
                        JFAIL(CSCP_E_PROTO, "\"pcr\" is not an integer 0..4294967295");
        }
        if (json_object_object_get_ex(o, "nv_index", &v)) {
                regs++;
                j->reg = CSCP_EVENT_NV_INDEX;
                if (get_u32(v, &j->index) < 0)
                        JFAIL(CSCP_E_PROTO, "\"nv_index\" is not an integer 0..4294967295");
        }
        if (regs != 1)
                JFAIL(CSCP_E_PROTO, "record needs exactly one of \"pcr\" and \"nv_index\"");
        if (!json_object_object_get_ex(o, "digests", &v))
                JFAIL(CSCP_E_PROTO, "record has no \"digests\"");
        r = jrec_digests(v, j, err, errlen);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(o, "content_type", &v))
                JFAIL(CSCP_E_PROTO, "record has no \"content_type\"");
        if (json_object_is_type(v, json_type_string)) {
                const char *name = json_object_get_string(v);
                if (json_object_get_string_len(v) == 0 || json_object_get_string_len(v) >= KIND_MAX)
                        JFAIL(CSCP_E_PROTO, "\"content_type\" of %d bytes (1..%d)", json_object_get_string_len(v),
                              KIND_MAX - 1);
                j->type = cscp_cel_content_type_from_name(name);
                if (!j->type)
                        j->type = CSCP_CEL_CONTENT_OTHER;
                j->type_name = name;
        } else {
                uint32_t t;
                if (get_u32(v, &t) < 0 || t < CSCP_CEL_MGT || t > 0xff || t == CSCP_CEL_CCMR)
                        JFAIL(CSCP_E_PROTO, "\"content_type\" is neither a name nor a content type 4..255");
                j->type = t;
        }
        if (!json_object_object_get_ex(o, "content", &j->content))
                JFAIL(CSCP_E_PROTO, "record has no \"content\"");
        if (json_object_is_type(j->content, json_type_object) && json_object_object_get_ex(j->content, "raw", &v)) {
                if (!json_object_is_type(v, json_type_string))
                        JFAIL(CSCP_E_PROTO, "content \"raw\" is not a hex string");
                r = hex_bytes(v, &j->raw, &j->raw_len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        JFAIL(CSCP_E_PROTO, "content \"raw\" is not hex");
                j->has_raw = true;
        }
        if (j->type == CSCP_CEL_CM_TLV) {
                char *canon = NULL;
                json_object *c;
                bool same;

                if (!j->has_raw)
                        JFAIL(CSCP_E_PROTO, "cm_tlv content has no \"raw\"");
                r = cscp_cm_to_json(j->raw, j->raw_len, &canon);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        JFAIL(CSCP_E_PROTO, "cm_tlv content \"raw\" does not decode");
                c = json_tokener_parse(canon);
                free(canon);
                if (!c)
                        return -ENOMEM;
                same = json_object_equal(c, j->content);
                json_object_put(c);
                if (!same)
                        JFAIL(CSCP_E_PROTO, "cm_tlv content fields disagree with its \"raw\" bytes");
                for (size_t i = 0; i < j->n_digests; i++) {
                        uint8_t h[CSCP_EVENT_MAX_DIGEST];
                        r = evlog_hash(j->digests[i].alg, j->raw, j->raw_len, h);
                        if (r < 0)
                                JFAIL(r, "hashing cm_tlv content: %s", cscp_strerror(r));
                        if (memcmp(h, j->digests[i].digest, j->digests[i].size) != 0)
                                JFAIL(CSCP_E_PROTO, "%s digest is not the hash of the cm_tlv content",
                                      cscp_hash_alg_name(j->digests[i].alg));
                }
        }
        return 0;
}

#undef JFAIL

/* Frames, parses, checks one JSON record at the current position (a '{'); fills ev. */
static int json_record(cscp_eventlog_t *l, cel_t *st, cscp_event_t *ev, size_t *ret_len)
{
        tb_t t = {.buf = st->text, .cap = sizeof(st->text)};
        const uint8_t *p;
        json_object *o;
        jrec_t j;
        size_t len = 0, k = 0;
        char err[256];
        int r;

        r = find_object(l, &len);
        if (r < 0)
                return r;
        r = evlog_in_need(&l->in, len, &p);
        if (r < 0)
                return evlog_fail(l, r, ev->offset, "reading the record: %s", cscp_strerror(r));
        r = prepass(l, st, p, len);
        if (r < 0)
                return r;
        if (len > INT32_MAX)
                return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset, "JSON record of %zu bytes", len);
        if (!st->tok) {
                st->tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1);
                if (!st->tok)
                        return -ENOMEM;
        }
        json_tokener_reset(st->tok);
        json_tokener_set_flags(st->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(st->tok, (const char *)p, (int)len);
        if (!o || json_tokener_get_parse_end(st->tok) != len) {
                size_t end = json_tokener_get_parse_end(st->tok);
                enum json_tokener_error e = json_tokener_get_error(st->tok);
                json_object_put(o);
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + end, "invalid JSON: %s",
                                  e == json_tokener_success ? "trailing characters" : json_tokener_error_desc(e));
        }
        if (!counts_match(o, st->counts, st->n_counts, &k) || k != st->n_counts) {
                json_object_put(o);
                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "duplicate member name in a JSON object");
        }
        r = jrec_parse(o, &j, err, sizeof(err));
        if (r < 0) {
                free(j.raw);
                json_object_put(o);
                return r == -ENOMEM ? r : evlog_fail(l, r, ev->offset, "%s", err);
        }
        if (j.has_recnum && j.recnum != st->next_recnum) {
                free(j.raw);
                json_object_put(o);
                return evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                  "recnum %llu, expected %llu (recnums count up by one from 0)",
                                  (unsigned long long)j.recnum, (unsigned long long)st->next_recnum);
        }
        ev->reg = j.reg;
        ev->pcr = j.index;
        ev->n_digests = j.n_digests;
        memcpy(ev->digests, j.digests, sizeof(j.digests));
        ev->type = j.type;
        if (j.type == CSCP_CEL_CONTENT_OTHER)
                snprintf(st->kind, sizeof(st->kind), "%s", j.type_name);
        free(st->json_data);
        st->json_data = NULL;
        free(st->raw);
        st->raw = NULL;
        if (j.type == CSCP_CEL_CM_TLV) {
                cscp_cm_record_t rec;

                st->raw = j.raw;
                j.raw = NULL;
                ev->data = st->raw;
                ev->data_len = j.raw_len;
                if (cscp_cm_decode(ev->data, ev->data_len, &rec) == 0)
                        text_cm(&t, &rec);
        } else {
                const char *s = json_object_to_json_string_ext(j.content,
                                                               JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                json_object *v;

                st->json_data = s ? strdup(s) : NULL;
                if (!st->json_data) {
                        free(j.raw);
                        json_object_put(o);
                        return -ENOMEM;
                }
                ev->data = (const uint8_t *)st->json_data;
                ev->data_len = strlen(st->json_data);
                if (json_object_is_type(j.content, json_type_object)) {
                        if (json_object_object_get_ex(j.content, "string", &v) &&
                            json_object_is_type(v, json_type_string)) {
                                tb_bytes(&t, (const uint8_t *)json_object_get_string(v),
                                         (size_t)json_object_get_string_len(v));
                        } else if (json_object_object_get_ex(j.content, "eventType", &v) &&
                                   json_object_is_type(v, json_type_string)) {
                                tb_bytes(&t, (const uint8_t *)json_object_get_string(v),
                                         (size_t)json_object_get_string_len(v));
                        } else if (json_object_object_get_ex(j.content, "template_name", &v) &&
                                   json_object_is_type(v, json_type_string)) {
                                tb_bytes(&t, (const uint8_t *)json_object_get_string(v),
                                         (size_t)json_object_get_string_len(v));
                        }
                }
        }
        free(j.raw);
        json_object_put(o);
        r = finish_event(l, st, ev, 0);
        if (r < 0)
                return r;
        *ret_len = len;
        return 0;
}

static int json_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        cel_t *st = state(l);
        size_t len = 0;
        uint8_t c = 0;
        int r;

        if (!st)
                return -ENOMEM;
        st->text[0] = '\0';
        r = check_resume(l, st, ev);
        if (r < 0)
                return r;
        for (;;) {
                r = skip_ws(l, &c);
                if (r < 0)
                        return evlog_fail(l, r, l->in.consumed, "reading: %s", cscp_strerror(r));
                ev->offset = l->in.consumed;
                switch (st->frame) {
                case FRAME_NONE:
                        if (r == 0)
                                return 0;
                        if (c == '[') {
                                st->frame = FRAME_ARRAY;
                                st->array = ARRAY_OPEN;
                                evlog_in_consume(&l->in, 1);
                                continue;
                        }
                        if (c == RS) {
                                st->frame = FRAME_SEQ;
                                continue;
                        }
                        if (c == '{') {
                                st->frame = FRAME_LINES;
                                continue;
                        }
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                          "expected '[', '{' or RS (0x1E) to start a CEL-JSON log");
                case FRAME_ARRAY:
                        if (r == 0) {
                                if (st->array == ARRAY_CLOSED)
                                        return 0;
                                return evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                                  "truncated log: the JSON array is not closed");
                        }
                        if (st->array == ARRAY_CLOSED)
                                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "data after the closing ']'");
                        if (c == ']' && st->array != ARRAY_NEED) {
                                st->array = ARRAY_CLOSED;
                                evlog_in_consume(&l->in, 1);
                                continue;
                        }
                        if (c == ',' && st->array == ARRAY_AFTER) {
                                st->array = ARRAY_NEED;
                                evlog_in_consume(&l->in, 1);
                                continue;
                        }
                        if (c != '{' || st->array == ARRAY_AFTER)
                                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "expected %s in the JSON array",
                                                  st->array == ARRAY_AFTER  ? "',' or ']'"
                                                  : st->array == ARRAY_NEED ? "a record object"
                                                                            : "a record object or ']'");
                        break;
                case FRAME_LINES:
                        if (r == 0)
                                return 0;
                        if (c != '{')
                                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "expected '{' (JSON lines)");
                        break;
                case FRAME_SEQ:
                        if (r == 0)
                                return 0;
                        if (c != RS)
                                return evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                                  "expected RS (0x1E) before a JSON-SEQ record");
                        evlog_in_consume(&l->in, 1);
                        r = skip_ws(l, &c);
                        if (r < 0)
                                return evlog_fail(l, r, l->in.consumed, "reading: %s", cscp_strerror(r));
                        if (r == 0 || c != '{')
                                return evlog_fail(l, CSCP_E_PROTO, l->in.consumed,
                                                  r == 0 ? "truncated log: RS at the end" : "expected '{' after RS");
                        ev->offset = l->in.consumed;
                        break;
                default:
                        return evlog_fail(l, CSCP_E_STATE, ev->offset, "bad framing state");
                }
                break;
        }
        r = json_record(l, st, ev, &len);
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, len);
        if (st->frame == FRAME_ARRAY)
                st->array = ARRAY_AFTER;
        st->next_recnum++;
        return 1;
}

/* ------------------------------------------------------ describe, resume */

static int cel_describe(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret)
{
        const cscp_event_digest_t *d = NULL;
        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1] = "", *s = NULL;

        (void)l;
        for (size_t i = 0; i < ev->n_digests; i++)
                if (!d || ev->digests[i].alg == TPM2_ALG_SHA256)
                        d = &ev->digests[i];
        if (d)
                cscp_hex_encode(d->digest, d->size <= CSCP_EVENT_MAX_DIGEST ? d->size : CSCP_EVENT_MAX_DIGEST, hex);
        if (asprintf(&s, "#%llu %s %u %s %s%s%s%s%s%s", (unsigned long long)ev->index,
                     ev->reg == CSCP_EVENT_NV_INDEX ? "NV"
                     : ev->reg == CSCP_EVENT_RTMR   ? "CCMR"
                                                    : "PCR",
                     ev->pcr, ev->kind && *ev->kind ? ev->kind : "?", d ? cscp_hash_alg_name(d->alg) : "no digest",
                     d ? ":" : "", hex, ev->extend ? "" : " (not extended)", ev->text && *ev->text ? " " : "",
                     ev->text ? ev->text : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Checkpoint state: u8 version (1), u8 framing, u8 array state, u64 BE recnum of the next record. */
static int cel_save(const cscp_eventlog_t *l, uint8_t *buf, size_t *len)
{
        const cel_t *st = l->priv;
        uint64_t next = st ? st->next_recnum : 0;

        if (*len < STATE_LEN)
                return CSCP_E_TOO_BIG;
        buf[0] = STATE_VERSION;
        buf[1] = (uint8_t)(st ? st->frame : FRAME_NONE);
        buf[2] = (uint8_t)(st ? st->array : ARRAY_OPEN);
        for (int i = 0; i < 8; i++)
                buf[3 + i] = (uint8_t)(next >> (56 - 8 * i));
        *len = STATE_LEN;
        return 0;
}

static int cel_restore(cscp_eventlog_t *l, const uint8_t *buf, size_t len)
{
        cel_t *st;

        if (len != STATE_LEN || buf[0] != STATE_VERSION || buf[1] > FRAME_SEQ || buf[2] > ARRAY_CLOSED)
                return CSCP_E_STATE;
        if (l->ops->format == CSCP_EVENTLOG_CEL_TLV && (buf[1] != FRAME_NONE || buf[2] != ARRAY_OPEN))
                return CSCP_E_STATE;
        st = state(l);
        if (!st)
                return -ENOMEM;
        st->frame = (frame_t)buf[1];
        st->array = (array_state_t)buf[2];
        st->next_recnum = get_be(buf + 3, 8);
        st->resumed = true;
        return 0;
}

const evlog_ops_t evlog_cel_tlv_ops = {
        .format = CSCP_EVENTLOG_CEL_TLV,
        .next = tlv_next,
        .describe = cel_describe,
        .save = cel_save,
        .restore = cel_restore,
        .free = cel_free,
};

const evlog_ops_t evlog_cel_json_ops = {
        .format = CSCP_EVENTLOG_CEL_JSON,
        .next = json_next,
        .describe = cel_describe,
        .save = cel_save,
        .restore = cel_restore,
        .free = cel_free,
};

/* ----------------------------------------------------------- JSON -> TLV */

int cscp_cel_json_to_tlv(const char *json, size_t len, uint8_t **ret, size_t *ret_len)
{
        cscp_eventlog_opts_t opts = {.max_events = 1};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        struct json_tokener *tok;
        json_object *o = NULL, *v;
        cel_t *st;
        jrec_t j = {0};
        char err[256];
        int r;

        if ((!json && len) || !ret || !ret_len)
                return -EINVAL;
        if (len > INT32_MAX)
                return CSCP_E_TOO_BIG;
        tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, json ? json : "", (int)len);
        json_tokener_free(tok);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return CSCP_E_PROTO;
        }
        /* The log parser does the strict checks (UTF-8, grammar, duplicates, content); the record's own
         * recnum is where its count starts. */
        r = cscp_eventlog_open_mem((const uint8_t *)json, len, CSCP_EVENTLOG_CEL_JSON, &opts, NULL, &l);
        if (r < 0)
                goto finish;
        st = state(l);
        if (!st) {
                r = -ENOMEM;
                goto finish;
        }
        if (json_object_object_get_ex(o, "recnum", &v) && json_object_is_type(v, json_type_int) &&
            json_object_get_int64(v) >= 0)
                st->next_recnum = (uint64_t)json_object_get_int64(v);
        r = cscp_eventlog_next(l, &ev);
        if (r == 0 || (r > 0 && cscp_eventlog_next(l, &ev) != 0))
                r = CSCP_E_PROTO; /* no record, or more than one */
        if (r < 0)
                goto finish;
        r = jrec_parse(o, &j, err, sizeof(err));
        if (r < 0)
                goto finish;
        if (!j.has_recnum)
                r = CSCP_E_PROTO;
        else if (j.type > 0xff || !j.has_raw)
                r = CSCP_E_UNSUPPORTED;
        else
                r = cscp_cel_tlv_encode(j.recnum, j.index, j.reg == CSCP_EVENT_NV_INDEX, j.digests, j.n_digests,
                                        (uint8_t)j.type, j.raw, j.raw_len, ret, ret_len);
finish:
        free(j.raw);
        cscp_eventlog_free(l);
        json_object_put(o);
        return r;
}
