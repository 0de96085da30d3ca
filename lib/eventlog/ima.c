/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux IMA runtime measurement lists (reference.md §4): ascii_runtime_measurements
 * and binary_runtime_measurements, including the Linux 6.10+ per-bank files
 * (`*_runtime_measurements_<algo>`, detected by the template-hash length).
 *
 * Every entry's template data is checked against its listed template hash and
 * hashed once per requested bank (the digest the kernel extends since 5.8);
 * violations (all-zero template hash) extend all-0xFF. For the ascii form the
 * template data is rebuilt from the printed fields so the same checks apply.
 *
 * Templates: ima, ima-ng, ima-ngv2, ima-sig, ima-sigv2, ima-buf, ima-modsig,
 * evm-sig, the container templates ima-cgpath and ima-dep-cgn, and custom
 * ima_template_fmt= lists ("d-ng|n-ng|sig"), which the kernel names by their
 * format string. Any other name is CSCP_E_UNSUPPORTED.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cscp/error.h"
#include "internal.h"

#define NAME_MAX_LEN   255 /* template name length limit (kernel names are short) */
#define EVENT_NAME_MAX 255 /* IMA_EVENT_NAME_LEN_MAX: the `ima` template's n field */
#define FIELDS_MAX     15  /* IMA_TEMPLATE_NUM_FIELDS_MAX */
#define IMA_DATA_LEN   (20 + EVENT_NAME_MAX + 1)
#define TEXT_BUF_MAX   4096 /* longest ima-buf payload shown in text */
#define ENDIAN_LE      1
#define ENDIAN_BE      2
#define STATE_VERSION  1

/* How a field is stored and printed (ima_template_lib.c data formats). */
typedef enum field_fmt {
        FF_DIGEST,      /* d: raw digest, ascii bare hex */
        FF_DIGEST_ALGO, /* d-ng, d-ngv2, d-modsig: "<prefix>:" '\0' digest, ascii "<prefix>:<hex>" */
        FF_STRING,      /* n, n-ng, dep, cgn, cg-path: bytes + NUL, ascii the string */
        FF_STRING_RAW,  /* xattrnames: bytes without NUL, ascii the string */
        FF_HEX,         /* sig, buf, modsig, evmsig, xattrlengths, xattrvalues: ascii hex */
        FF_UINT,        /* iuid, igid, imode: integer, ascii decimal */
} field_fmt_t;

typedef struct field_def {
        const char *id;
        field_fmt_t fmt;
        unsigned width; /* FF_UINT: bytes */
} field_def_t;

static const field_def_t field_defs[] = {
        {"d", FF_DIGEST, 0},
        {"n", FF_STRING, 0},
        {"d-ng", FF_DIGEST_ALGO, 0},
        {"d-ngv2", FF_DIGEST_ALGO, 0},
        {"n-ng", FF_STRING, 0},
        {"sig", FF_HEX, 0},
        {"buf", FF_HEX, 0},
        {"d-modsig", FF_DIGEST_ALGO, 0},
        {"modsig", FF_HEX, 0},
        {"evmsig", FF_HEX, 0},
        {"xattrnames", FF_STRING_RAW, 0},
        {"xattrlengths", FF_HEX, 0},
        {"xattrvalues", FF_HEX, 0},
        {"iuid", FF_UINT, 4},
        {"igid", FF_UINT, 4},
        {"imode", FF_UINT, 2},
        {"dep", FF_STRING, 0},
        {"cgn", FF_STRING, 0},
        {"cg-path", FF_STRING, 0},
};
#define N_FIELD_DEFS (sizeof(field_defs) / sizeof(field_defs[0]))

static const struct {
        const char *name, *fmt;
} templates[] = {
        {"ima", "d|n"},
        {"ima-ng", "d-ng|n-ng"},
        {"ima-ngv2", "d-ngv2|n-ng"},
        {"ima-sig", "d-ng|n-ng|sig"},
        {"ima-sigv2", "d-ngv2|n-ng|sig"},
        {"ima-buf", "d-ng|n-ng|buf"},
        {"ima-modsig", "d-ng|n-ng|sig|d-modsig|modsig"},
        {"evm-sig", "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode"},
        {"ima-cgpath", "dep|cg-path|d-ng|n-ng"},
        {"ima-dep-cgn", "dep|cgn|d-ng|n-ng"},
};

static const uint16_t thash_algs[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512};

typedef struct ima_state {
        /* Remembered across records (and saved for resume). */
        int endian;         /* binary: 0 undecided, ENDIAN_LE, ENDIAN_BE */
        int ascii_endian;   /* ascii: byte order of the rebuilt length words */
        bool ascii_locked;  /* ascii_endian confirmed by a template-hash match */
        uint16_t thash_alg; /* algorithm of the listed template hashes; 0 undecided */
        /* Hashing. */
        uint16_t md_alg[CSCP_EVENT_MAX_DIGESTS]; /* banks to compute (opts.ima_banks, checked) */
        size_t n_md;
        /* Parsed template (cached by name). */
        char name[NAME_MAX_LEN + 1];
        bool is_ima;
        const field_def_t *fields[FIELDS_MAX];
        size_t n_fields;
        /* The current record. */
        uint8_t thash[CSCP_EVENT_MAX_DIGEST];
        size_t thash_len;
        uint8_t *data; /* rebuilt (ascii) or padded (`ima`) template data */
        size_t data_cap;
        char *text;
        size_t text_cap;
} ima_state_t;

/* ------------------------------------------------------------------ helpers */

static int host_endian(void)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        return ENDIAN_BE;
#else
        return ENDIAN_LE;
#endif
}

static uint32_t rd32(const uint8_t *p, int endian)
{
        if (endian == ENDIAN_BE)
                return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void wr32(uint8_t *p, uint32_t v, int endian)
{
        for (int i = 0; i < 4; i++)
                p[endian == ENDIAN_BE ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd_uint(const uint8_t *p, size_t n, int endian)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[endian == ENDIAN_BE ? n - 1 - i : i] << (8 * i);
        return v;
}

static int hexval(uint8_t c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Index of the first non-hex character in s[0..n), or n. */
static size_t hex_span(const uint8_t *s, size_t n)
{
        size_t i = 0;
        while (i < n && hexval(s[i]) >= 0)
                i++;
        return i;
}

static void hex_decode(const uint8_t *s, size_t n, uint8_t *out)
{
        for (size_t i = 0; i + 1 < n; i += 2)
                out[i / 2] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
}

static size_t thash_size(uint16_t alg)
{
        return cscp_hash_alg_size(alg);
}

static uint16_t alg_for_size(size_t n)
{
        for (size_t i = 0; i < sizeof(thash_algs) / sizeof(thash_algs[0]); i++)
                if (cscp_hash_alg_size(thash_algs[i]) == n)
                        return thash_algs[i];
        return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

static int grow(void **buf, size_t *cap, size_t need)
{
        void *b;
        size_t n;

        if (need <= *cap)
                return 0;
        n = *cap ? *cap : 256;
        while (n < need)
                n = n > SIZE_MAX / 2 ? need : 2 * n;
        b = realloc(*buf, n);
        if (!b)
                return -ENOMEM;
        *buf = b;
        *cap = n;
        return 0;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
        uint8_t c = s[0];
        size_t len;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, cp = c & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

/* A growing string; every append keeps it NUL-terminated and valid UTF-8. */
typedef struct sbuf {
        char *s;
        size_t len, cap;
        int err;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t more)
{
        if (b->err)
                return;
        if (more > SIZE_MAX - b->len - 1) {
                b->err = -ENOMEM;
                return;
        }
        b->err = grow((void **)&b->s, &b->cap, b->len + more + 1);
}

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
        sb_reserve(b, n);
        if (b->err)
                return;
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
        sb_put(b, s, strlen(s));
}

static void sb_hex(sbuf_t *b, const uint8_t *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";

        if (n > (SIZE_MAX - 1) / 2) {
                b->err = -ENOMEM;
                return;
        }
        sb_reserve(b, 2 * n);
        if (b->err)
                return;
        for (size_t i = 0; i < n; i++) {
                b->s[b->len++] = digits[p[i] >> 4];
                b->s[b->len++] = digits[p[i] & 15];
        }
        b->s[b->len] = '\0';
}

/* Bytes as text: valid UTF-8 passes, control characters, DEL, backslash and invalid bytes become \xNN. */
static void sb_text(sbuf_t *b, const uint8_t *p, size_t n)
{
        if (n > (SIZE_MAX - 1) / 4) {
                b->err = -ENOMEM;
                return;
        }
        sb_reserve(b, 4 * n);
        if (b->err)
                return;
        for (size_t i = 0; i < n;) {
                /* Fast path: a run of printable ASCII is copied as one. */
                size_t run = 0;
                while (i + run < n && p[i + run] >= 0x20 && p[i + run] < 0x7f && p[i + run] != '\\')
                        run++;
                if (run) {
                        memcpy(b->s + b->len, p + i, run);
                        b->len += run;
                        i += run;
                        continue;
                }
                size_t k = utf8_seq(p + i, n - i);
                if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\'))
                        k = 0;
                if (k == 0) {
                        snprintf(b->s + b->len, 5, "\\x%02x", p[i]);
                        b->len += 4;
                        i++;
                } else {
                        memcpy(b->s + b->len, p + i, k);
                        b->len += k;
                        i += k;
                }
        }
        b->s[b->len] = '\0';
}

/* --------------------------------------------------------------- templates */

static const field_def_t *field_lookup(const char *id, size_t n)
{
        for (size_t i = 0; i < N_FIELD_DEFS; i++)
                if (strlen(field_defs[i].id) == n && memcmp(field_defs[i].id, id, n) == 0)
                        return &field_defs[i];
        return NULL;
}

static bool name_chars_ok(const uint8_t *p, size_t n)
{
        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (p[i] <= 0x20 || p[i] >= 0x7f)
                        return false;
        return true;
}

/* Fills st's field list for template name p[0..n); false when unknown. */
static bool template_parse(ima_state_t *st, const uint8_t *p, size_t n)
{
        const char *fmt = NULL;
        size_t nf = 0;

        if (!name_chars_ok(p, n))
                return false;
        if (strlen(st->name) == n && memcmp(st->name, p, n) == 0 && st->n_fields)
                return true;
        for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
                if (strlen(templates[i].name) == n && memcmp(templates[i].name, p, n) == 0)
                        fmt = templates[i].fmt;
        /* A custom ima_template_fmt= is named by its format string. */
        const char *f = fmt ? fmt : (const char *)p;
        size_t flen = fmt ? strlen(fmt) : n;
        const field_def_t *defs[FIELDS_MAX];

        for (size_t i = 0; i <= flen;) {
                size_t j = i;
                while (j < flen && f[j] != '|')
                        j++;
                if (nf == FIELDS_MAX)
                        return false;
                defs[nf] = field_lookup(f + i, j - i);
                if (!defs[nf])
                        return false;
                nf++;
                i = j + 1;
        }
        memcpy(st->fields, defs, nf * sizeof(defs[0]));
        st->n_fields = nf;
        memcpy(st->name, p, n);
        st->name[n] = '\0';
        st->is_ima = n == 3 && memcmp(p, "ima", 3) == 0;
        return true;
}

/* Name p[0..n) printed safely for an error message. */
static const char *name_for_msg(const uint8_t *p, size_t n, char *buf, size_t len)
{
        sbuf_t b = {0};
        sb_text(&b, p, n > 64 ? 64 : n);
        snprintf(buf, len, "%s%s", b.s ? b.s : "", n > 64 ? "..." : "");
        free(b.s);
        return buf;
}

/* ------------------------------------------------------------------- state */

static void state_free(ima_state_t *st)
{
        if (!st)
                return;
        free(st->data);
        free(st->text);
        free(st);
}

static void ima_free(cscp_eventlog_t *l)
{
        state_free(l->priv);
        l->priv = NULL;
}

/* The parser's state, created on first use (a resumed reader skips init). */
static int get_state(cscp_eventlog_t *l, ima_state_t **ret)
{
        ima_state_t *st = l->priv;

        if (st) {
                *ret = st;
                return 0;
        }
        if (l->opts.ima_endian < 0 || l->opts.ima_endian > 2)
                return evlog_fail(l, -EINVAL, l->in.consumed, "ima_endian must be 0, 1 or 2");
        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->endian = l->opts.ima_endian;
        st->ascii_endian = l->opts.ima_endian ? l->opts.ima_endian : host_endian();
        st->ascii_locked = l->opts.ima_endian != 0;
        for (size_t i = 0; i < CSCP_EVENT_MAX_DIGESTS && l->opts.ima_banks[i]; i++) {
                uint16_t alg = l->opts.ima_banks[i];
                bool dup = false;

                for (size_t k = 0; k < st->n_md; k++)
                        dup |= st->md_alg[k] == alg;
                if (!cscp_hash_alg_evp(alg) || !cscp_hash_alg_size(alg) || dup) {
                        state_free(st);
                        return evlog_fail(l, CSCP_E_UNSUPPORTED, l->in.consumed,
                                          "IMA bank 0x%04x is unknown or given twice", alg);
                }
                st->md_alg[st->n_md++] = alg;
        }
        l->priv = st;
        *ret = st;
        return 0;
}

static int ima_init(cscp_eventlog_t *l)
{
        ima_state_t *st;
        return get_state(l, &st);
}

/* Saved form: version, binary byte order, ascii byte order, ascii locked, u16 template-hash alg (BE). */
static int ima_save(const cscp_eventlog_t *l, uint8_t *buf, size_t *len)
{
        const ima_state_t *st = l->priv;

        if (*len < 6)
                return -ENOBUFS;
        buf[0] = STATE_VERSION;
        buf[1] = st ? (uint8_t)st->endian : 0;
        buf[2] = st ? (uint8_t)st->ascii_endian : 0;
        buf[3] = st && st->ascii_locked;
        buf[4] = st ? (uint8_t)(st->thash_alg >> 8) : 0;
        buf[5] = st ? (uint8_t)st->thash_alg : 0;
        *len = 6;
        return 0;
}

static int ima_restore(cscp_eventlog_t *l, const uint8_t *buf, size_t len)
{
        ima_state_t *st;
        uint16_t alg;
        int r;

        if (len != 6 || buf[0] != STATE_VERSION || buf[1] > 2 || buf[2] > 2 || buf[3] > 1)
                return -EINVAL;
        alg = (uint16_t)(buf[4] << 8 | buf[5]);
        if (alg && !alg_for_size(thash_size(alg)))
                return -EINVAL;
        r = get_state(l, &st);
        if (r < 0)
                return r;
        if (buf[1])
                st->endian = buf[1];
        if (buf[2] && !l->opts.ima_endian) {
                st->ascii_endian = buf[2];
                st->ascii_locked = buf[3];
        }
        st->thash_alg = alg;
        return 0;
}

/* -------------------------------------------------------------- per entry */

/* Template hash of data: 1 matches, 0 does not (computed left in out). */
static int thash_matches(ima_state_t *st, const uint8_t *data, size_t len, uint8_t *out)
{
        int r = evlog_hash(st->thash_alg, data, len, out); /* one cached context per algorithm and thread */
        if (r < 0)
                return r;
        return CRYPTO_memcmp(out, st->thash, st->thash_len) == 0;
}

/* A field of the current template data. */
typedef struct field_ref {
        const uint8_t *p;
        uint32_t len;
} field_ref_t;

/*
 * Splits non-`ima` template data into st->n_fields length-prefixed fields.
 * Returns 0, or a negative code after evlog_fail (offset = log offset of data).
 */
static int split_fields(cscp_eventlog_t *l, ima_state_t *st, const uint8_t *data, size_t len, int endian,
                        uint64_t offset, field_ref_t *out)
{
        size_t pos = 0;

        for (size_t i = 0; i < st->n_fields; i++) {
                uint32_t flen;

                if (len - pos < 4)
                        return evlog_fail(l, CSCP_E_PROTO, offset + pos,
                                          "template %s: field %zu (%s) length word past the end of the template data "
                                          "(%zu of %zu bytes left)",
                                          st->name, i + 1, st->fields[i]->id, len - pos, len);
                flen = rd32(data + pos, endian);
                if (flen > len - pos - 4)
                        return evlog_fail(l, CSCP_E_PROTO, offset + pos,
                                          "template %s: field %zu (%s) length %u runs past the end of the template "
                                          "data (%zu bytes left)",
                                          st->name, i + 1, st->fields[i]->id, flen, len - pos - 4);
                out[i].p = data + pos + 4;
                out[i].len = flen;
                pos += 4 + (size_t)flen;
        }
        if (pos != len)
                return evlog_fail(l, CSCP_E_PROTO, offset + pos,
                                  "template %s has %zu fields but %zu bytes of template data follow them", st->name,
                                  st->n_fields, len - pos);
        return 0;
}

/* ev->text: the file name; for buffers (ima-buf) the name and the buffer when it is printable. */
static int make_text(ima_state_t *st, const field_ref_t *f, cscp_event_t *ev)
{
        sbuf_t b = {.s = st->text, .cap = st->text_cap};
        const field_ref_t *name = NULL, *buf = NULL;

        for (size_t i = 0; i < st->n_fields; i++) {
                const char *id = st->fields[i]->id;
                if (!name && (strcmp(id, "n-ng") == 0 || strcmp(id, "n") == 0))
                        name = &f[i];
                if (!buf && strcmp(id, "buf") == 0)
                        buf = &f[i];
        }
        sb_put(&b, "", 0);
        if (name) {
                size_t n = strnlen((const char *)name->p, name->len);
                sb_text(&b, name->p, n);
        }
        if (buf && buf->len) {
                bool printable = true;
                char tmp[64];

                for (size_t i = 0; i < buf->len && printable; i++)
                        printable = buf->p[i] >= 0x20 && buf->p[i] < 0x7f;
                if (printable) {
                        sb_str(&b, name ? ": " : "");
                        sb_text(&b, buf->p, buf->len > TEXT_BUF_MAX ? TEXT_BUF_MAX : buf->len);
                        if (buf->len > TEXT_BUF_MAX)
                                sb_str(&b, "...");
                } else {
                        snprintf(tmp, sizeof(tmp), "%s(%u-byte buffer)", name ? " " : "", buf->len);
                        sb_str(&b, tmp);
                }
        }
        st->text = b.s;
        st->text_cap = b.cap;
        if (b.err)
                return b.err;
        ev->text = st->text;
        return 0;
}

/*
 * Everything after the layout is known: template-hash check, per-bank
 * digests, kind/text. data is what the template hash covers.
 */
static int finish_entry(cscp_eventlog_t *l, ima_state_t *st, cscp_event_t *ev, uint32_t pcr, const uint8_t *data,
                        size_t len, const field_ref_t *f, bool checked)
{
        uint8_t computed[CSCP_EVENT_MAX_DIGEST], bank[CSCP_EVENT_MAX_DIGEST];
        bool violation = all_zero(st->thash, st->thash_len), have_thash = false;
        int r;

        r = make_text(st, f, ev);
        if (r < 0)
                return r;
        if (!violation && !l->opts.ima_no_template_check && !checked) {
                r = thash_matches(st, data, len, computed);
                if (r < 0)
                        return r;
                if (r == 0) {
                        sbuf_t a = {0}, c = {0};
                        sb_hex(&a, st->thash, st->thash_len);
                        sb_hex(&c, computed, st->thash_len);
                        r = evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                       "template hash mismatch (%s entry \"%s\"): listed %s, %s of the template data "
                                       "is %s",
                                       st->name, ev->text, a.s ? a.s : "?", cscp_hash_alg_name(st->thash_alg),
                                       c.s ? c.s : "?");
                        free(a.s);
                        free(c.s);
                        return r;
                }
                have_thash = true;
        } else if (checked) {
                memcpy(computed, st->thash, st->thash_len);
                have_thash = true;
        }
        for (size_t i = 0; i < st->n_md; i++) {
                size_t size = cscp_hash_alg_size(st->md_alg[i]);

                if (violation)
                        memset(bank, 0xff, size);
                else if (have_thash && st->md_alg[i] == st->thash_alg)
                        memcpy(bank, computed, size);
                else if ((r = evlog_hash(st->md_alg[i], data, len, bank)) < 0)
                        return r;
                r = evlog_add_digest(ev, st->md_alg[i], bank, size);
                if (r < 0)
                        return r;
        }
        ev->reg = CSCP_EVENT_PCR;
        ev->pcr = pcr;
        ev->type = 0;
        ev->extend = true;
        ev->data = data;
        ev->data_len = len;
        ev->kind = st->name;
        return 0;
}

/* ------------------------------------------------------------------ binary */

static int truncated(cscp_eventlog_t *l, const char *what, size_t need)
{
        size_t have = evlog_in_avail(&l->in);
        return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + (have < need ? have : need),
                          "truncated record: %s needs %zu bytes, the log ends after %zu", what, need, have);
}

/* evlog_in_need with the errors named. */
static int need(cscp_eventlog_t *l, size_t n, const char *what, const uint8_t **ret)
{
        int r = evlog_in_need(&l->in, n, ret);

        if (r == -ENODATA)
                return truncated(l, what, n);
        if (r == CSCP_E_TOO_BIG)
                return evlog_fail(l, r, l->ev.offset, "record of at least %zu bytes is over the limit (%zu)", n,
                                  l->opts.max_record);
        return r;
}

/*
 * First record: finds the byte order and template-hash size that give a
 * sane PCR index, template name length and a known template name.
 */
static int bin_detect(cscp_eventlog_t *l, ima_state_t *st)
{
        int endians[2], n_end = 0;
        const uint8_t *p;
        uint8_t unknown[NAME_MAX_LEN];
        size_t unknown_len = 0;
        char msg[300];

        if (st->endian) {
                endians[n_end++] = st->endian;
        } else {
                endians[n_end++] = host_endian();
                endians[n_end++] = host_endian() == ENDIAN_LE ? ENDIAN_BE : ENDIAN_LE;
        }
        for (int e = 0; e < n_end; e++) {
                for (size_t a = 0; a < sizeof(thash_algs) / sizeof(thash_algs[0]); a++) {
                        uint16_t alg = st->thash_alg ? st->thash_alg : thash_algs[a];
                        size_t s = thash_size(alg);
                        uint32_t nl;

                        if (evlog_in_need(&l->in, 4 + s + 4, &p) < 0)
                                break;
                        nl = rd32(p + 4 + s, endians[e]);
                        if (rd32(p, endians[e]) >= CSCP_PCR_COUNT || nl == 0 || nl > NAME_MAX_LEN)
                                continue;
                        if (evlog_in_need(&l->in, 4 + s + 4 + nl, &p) < 0)
                                continue;
                        if (template_parse(st, p + 4 + s + 4, nl)) {
                                st->endian = endians[e];
                                st->thash_alg = alg;
                                return 0;
                        }
                        if (!unknown_len && name_chars_ok(p + 4 + s + 4, nl)) {
                                memcpy(unknown, p + 4 + s + 4, nl);
                                unknown_len = nl;
                        }
                        if (st->thash_alg)
                                break;
                }
        }
        if (unknown_len)
                return evlog_fail(l, CSCP_E_UNSUPPORTED, l->ev.offset, "unknown IMA template '%s'",
                                  name_for_msg(unknown, unknown_len, msg, sizeof(msg)));
        if (evlog_in_avail(&l->in) < 4 + 20 + 4 + 3)
                return truncated(l, "an IMA record header", 4 + 20 + 4 + 3);
        return evlog_fail(l, CSCP_E_PROTO, l->ev.offset,
                          "not an IMA binary record: no byte order and template-hash size give a PCR index below "
                          "%u and a known template name",
                          CSCP_PCR_COUNT);
}

static int bin_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        field_ref_t f[FIELDS_MAX];
        ima_state_t *st;
        const uint8_t *p;
        size_t s, hdr, total;
        uint32_t pcr, nl;
        char msg[300];
        int r;

        r = get_state(l, &st);
        if (r < 0)
                return r;
        if (evlog_in_at_end(&l->in))
                return 0;
        if (!st->endian || !st->thash_alg) {
                r = bin_detect(l, st);
                if (r < 0)
                        return r;
        }
        s = thash_size(st->thash_alg);
        hdr = 4 + s + 4;
        r = need(l, hdr, "the record header", &p);
        if (r < 0)
                return r;
        pcr = rd32(p, st->endian);
        if (pcr >= CSCP_PCR_COUNT)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "PCR index %u is out of range (0..%u)", pcr,
                                  CSCP_PCR_COUNT - 1);
        memcpy(st->thash, p + 4, s);
        st->thash_len = s;
        nl = rd32(p + 4 + s, st->endian);
        if (nl == 0 || nl > NAME_MAX_LEN)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + 4 + s,
                                  "template name length %u is out of range (1..%u)", nl, NAME_MAX_LEN);
        r = need(l, hdr + nl, "the template name", &p);
        if (r < 0)
                return r;
        if (!template_parse(st, p + hdr, nl))
                return evlog_fail(l, name_chars_ok(p + hdr, nl) ? CSCP_E_UNSUPPORTED : CSCP_E_PROTO, ev->offset + hdr,
                                  "unknown IMA template '%s'", name_for_msg(p + hdr, nl, msg, sizeof(msg)));
        hdr += nl;
        if (st->is_ima) {
                /* d (20 bytes, no length) || u32 strlen || name without NUL; hashed as d || name[256]. */
                uint32_t len;

                r = need(l, hdr + 24, "the ima template's digest and name length", &p);
                if (r < 0)
                        return r;
                len = rd32(p + hdr + 20, st->endian);
                if (len > EVENT_NAME_MAX)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + hdr + 20,
                                          "ima template: file name length %u is over %u", len, EVENT_NAME_MAX);
                total = hdr + 24 + len;
                r = need(l, total, "the ima template's file name", &p);
                if (r < 0)
                        return r;
                r = grow((void **)&st->data, &st->data_cap, IMA_DATA_LEN);
                if (r < 0)
                        return r;
                memset(st->data, 0, IMA_DATA_LEN);
                memcpy(st->data, p + hdr, 20);
                memcpy(st->data + 20, p + hdr + 24, len);
                f[0] = (field_ref_t){st->data, 20};
                f[1] = (field_ref_t){st->data + 20, len};
                r = finish_entry(l, st, ev, pcr, st->data, IMA_DATA_LEN, f, false);
        } else {
                uint32_t dlen;

                r = need(l, hdr + 4, "the template data length", &p);
                if (r < 0)
                        return r;
                dlen = rd32(p + hdr, st->endian);
                if (dlen > l->opts.max_record || hdr + 4 > l->opts.max_record - dlen)
                        return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset + hdr,
                                          "template data length %u is over the record limit (%zu)", dlen,
                                          l->opts.max_record);
                total = hdr + 4 + dlen;
                r = need(l, total, "the template data", &p);
                if (r < 0)
                        return r;
                r = split_fields(l, st, p + hdr + 4, dlen, st->endian, ev->offset + hdr + 4, f);
                if (r < 0)
                        return r;
                r = finish_entry(l, st, ev, pcr, p + hdr + 4, dlen, f, false);
        }
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, total);
        return 1;
}

/* ------------------------------------------------------------------- ascii */

typedef struct token {
        const uint8_t *p;
        size_t len;
} token_t;

/* Size of field i rebuilt from its printed form, or a negative code after evlog_fail. */
static int64_t ascii_field_size(cscp_eventlog_t *l, const field_def_t *def, const token_t *t, uint64_t off)
{
        const uint8_t *colon = NULL;
        size_t h;

        if (t->len == 0)
                return 0;
        switch (def->fmt) {
        case FF_DIGEST:
        case FF_HEX:
                h = hex_span(t->p, t->len);
                if (h != t->len || h % 2)
                        return evlog_fail(l, CSCP_E_PROTO, off + (h < t->len ? h : 0), "field %s: %s hex", def->id,
                                          h != t->len ? "invalid" : "odd-length");
                return (int64_t)(t->len / 2);
        case FF_DIGEST_ALGO:
                for (size_t i = 0; i < t->len; i++)
                        if (t->p[i] == ':')
                                colon = t->p + i;
                if (!colon)
                        return evlog_fail(l, CSCP_E_PROTO, off, "field %s: no \"<algo>:\" before the digest", def->id);
                h = hex_span(colon + 1, (size_t)(t->p + t->len - colon - 1));
                if (colon + 1 + h != t->p + t->len || h % 2)
                        return evlog_fail(l, CSCP_E_PROTO, off + (size_t)(colon + 1 - t->p) + h,
                                          "field %s: %s hex digest", def->id,
                                          colon + 1 + h != t->p + t->len ? "invalid" : "odd-length");
                return (int64_t)((size_t)(colon - t->p) + 2 + h / 2);
        case FF_STRING:
                return (int64_t)t->len + 1;
        case FF_STRING_RAW:
                return (int64_t)t->len;
        case FF_UINT:
                for (size_t i = 0; i < t->len; i++)
                        if (t->p[i] < '0' || t->p[i] > '9' || t->len > 20)
                                return evlog_fail(l, CSCP_E_PROTO, off + i, "field %s: not a decimal number", def->id);
                return def->width;
        }
        return CSCP_E_PROTO;
}

/* Writes field def's bytes (size n) for token t into out. */
static void ascii_field_write(const field_def_t *def, const token_t *t, uint8_t *out, size_t n, int endian)
{
        const uint8_t *colon = NULL;
        uint64_t v = 0;

        if (n == 0)
                return;
        switch (def->fmt) {
        case FF_DIGEST:
        case FF_HEX:
                hex_decode(t->p, t->len, out);
                break;
        case FF_DIGEST_ALGO:
                for (size_t i = 0; i < t->len; i++)
                        if (t->p[i] == ':')
                                colon = t->p + i;
                memcpy(out, t->p, (size_t)(colon - t->p) + 1);
                out[colon - t->p + 1] = '\0';
                hex_decode(colon + 1, (size_t)(t->p + t->len - colon - 1), out + (colon - t->p) + 2);
                break;
        case FF_STRING:
                memcpy(out, t->p, t->len);
                out[t->len] = '\0';
                break;
        case FF_STRING_RAW:
                memcpy(out, t->p, t->len);
                break;
        case FF_UINT:
                for (size_t i = 0; i < t->len; i++)
                        v = v * 10 + (uint64_t)(t->p[i] - '0');
                for (size_t i = 0; i < n; i++)
                        out[endian == ENDIAN_BE ? n - 1 - i : i] = (uint8_t)(v >> (8 * i));
                break;
        }
}

/* Rebuilds the template data with length words in the given byte order. */
static void ascii_build(ima_state_t *st, const token_t *tok, const size_t *sizes, int endian, field_ref_t *f)
{
        uint8_t *o = st->data;

        if (st->is_ima) {
                memset(st->data, 0, IMA_DATA_LEN);
                ascii_field_write(st->fields[0], &tok[0], st->data, 20, endian);
                memcpy(st->data + 20, tok[1].p, tok[1].len);
                f[0] = (field_ref_t){st->data, 20};
                f[1] = (field_ref_t){st->data + 20, (uint32_t)tok[1].len};
                return;
        }
        for (size_t i = 0; i < st->n_fields; i++) {
                wr32(o, (uint32_t)sizes[i], endian);
                ascii_field_write(st->fields[i], &tok[i], o + 4, sizes[i], endian);
                f[i] = (field_ref_t){o + 4, (uint32_t)sizes[i]};
                o += 4 + sizes[i];
        }
}

static int ascii_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        token_t tok[FIELDS_MAX];
        size_t sizes[FIELDS_MAX];
        field_ref_t f[FIELDS_MAX];
        ima_state_t *st;
        const uint8_t *line, *p, *end;
        size_t len, nl, total = 0, ntok = 0, hl;
        uint64_t pcr = 0;
        uint16_t alg;
        bool checked = false;
        char msg[300];
        int r;

        r = get_state(l, &st);
        if (r < 0)
                return r;
        r = evlog_in_line(&l->in, l->opts.max_record, &line, &len, &nl);
        if (r == 0)
                return 0;
        if (r == CSCP_E_TOO_BIG)
                return evlog_fail(l, r, ev->offset, "line longer than the record limit (%zu bytes)",
                                  l->opts.max_record);
        if (r < 0)
                return r;
        p = line;
        end = line + len;
        /* "%2d ": PCR, right-aligned in two columns. */
        while (p < end && *p == ' ')
                p++;
        if (p == end || *p < '0' || *p > '9')
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(p - line),
                                  "expected a PCR index at the start of the line");
        while (p < end && *p >= '0' && *p <= '9' && pcr < CSCP_PCR_COUNT)
                pcr = pcr * 10 + (uint64_t)(*p++ - '0');
        if (pcr >= CSCP_PCR_COUNT)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset, "PCR index is out of range (0..%u)", CSCP_PCR_COUNT - 1);
        if (p == end || *p != ' ')
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(p - line),
                                  "expected a space after the PCR index");
        p++;
        /* Template hash: its length names the algorithm (6.10+ per-bank files). */
        hl = hex_span(p, (size_t)(end - p));
        if (p + hl < end && *(p + hl) != ' ')
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(p + hl - line),
                                  "invalid hex in the template hash");
        alg = hl % 2 ? 0 : alg_for_size(hl / 2);
        if (!alg)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(p - line),
                                  "template hash of %zu hex digits is not a SHA-1/256/384/512 digest", hl);
        if (st->thash_alg && alg != st->thash_alg)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(p - line),
                                  "template hash is a %s digest, earlier entries had %s", cscp_hash_alg_name(alg),
                                  cscp_hash_alg_name(st->thash_alg));
        st->thash_alg = alg;
        st->thash_len = hl / 2;
        hex_decode(p, hl, st->thash);
        p += hl;
        if (p == end)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + len, "line ends after the template hash");
        p++;
        /* Template name. */
        const uint8_t *name = p;
        while (p < end && *p != ' ')
                p++;
        if (!template_parse(st, name, (size_t)(p - name)))
                return evlog_fail(l, name_chars_ok(name, (size_t)(p - name)) ? CSCP_E_UNSUPPORTED : CSCP_E_PROTO,
                                  ev->offset + (uint64_t)(name - line), "unknown IMA template '%s'",
                                  name_for_msg(name, (size_t)(p - name), msg, sizeof(msg)));
        /* Fields: each preceded by one space; an empty field prints nothing. */
        while (p < end) {
                const uint8_t *t = ++p;
                if (ntok == st->n_fields)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(t - 1 - line),
                                          "template %s has %zu fields, the line has more", st->name, st->n_fields);
                while (p < end && *p != ' ')
                        p++;
                tok[ntok++] = (token_t){t, (size_t)(p - t)};
        }
        if (ntok != st->n_fields)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + len, "template %s has %zu fields, the line has %zu",
                                  st->name, st->n_fields, ntok);
        for (size_t i = 0; i < ntok; i++) {
                int64_t n = ascii_field_size(l, st->fields[i], &tok[i], ev->offset + (uint64_t)(tok[i].p - line));
                if (n < 0)
                        return (int)n;
                sizes[i] = (size_t)n;
                total += 4 + (size_t)n;
        }
        if (st->is_ima) {
                if (sizes[0] != 20)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(tok[0].p - line),
                                          "ima template: digest is %zu bytes, not 20", sizes[0]);
                if (tok[1].len > EVENT_NAME_MAX)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + (uint64_t)(tok[1].p - line),
                                          "ima template: file name of %zu bytes is over %u", tok[1].len,
                                          EVENT_NAME_MAX);
                total = IMA_DATA_LEN;
        }
        if (total > l->opts.max_record)
                return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset, "template data of %zu bytes is over the limit (%zu)",
                                  total, l->opts.max_record);
        r = grow((void **)&st->data, &st->data_cap, total ? total : 1);
        if (r < 0)
                return r;
        ascii_build(st, tok, sizes, st->ascii_endian, f);
        if (!all_zero(st->thash, st->thash_len) && !l->opts.ima_no_template_check) {
                uint8_t computed[CSCP_EVENT_MAX_DIGEST];

                r = thash_matches(st, st->data, total, computed);
                if (r == 0 && !st->ascii_locked && !st->is_ima) {
                        /* The list may come from a machine of the other byte order. */
                        int other = st->ascii_endian == ENDIAN_LE ? ENDIAN_BE : ENDIAN_LE;
                        ascii_build(st, tok, sizes, other, f);
                        r = thash_matches(st, st->data, total, computed);
                        if (r == 1)
                                st->ascii_endian = other;
                        else
                                ascii_build(st, tok, sizes, st->ascii_endian, f);
                }
                if (r < 0)
                        return r;
                if (r == 1) {
                        st->ascii_locked |= !st->is_ima;
                        checked = true;
                }
                /* r == 0: finish_entry reports the mismatch. */
        }
        r = finish_entry(l, st, ev, (uint32_t)pcr, st->data, total, f, checked);
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, len + nl);
        return 1;
}

/* ---------------------------------------------------------------- describe */

/* One field as the kernel's ascii list prints it. */
static void describe_field(sbuf_t *b, const field_def_t *def, const uint8_t *p, size_t n, int endian)
{
        const uint8_t *nul;
        char num[32];

        if (n == 0)
                return;
        switch (def->fmt) {
        case FF_DIGEST:
        case FF_HEX:
                sb_hex(b, p, n);
                break;
        case FF_DIGEST_ALGO:
                nul = memchr(p, '\0', n);
                if (nul && nul > p && nul[-1] == ':') {
                        sb_text(b, p, (size_t)(nul - p));
                        sb_hex(b, nul + 1, n - (size_t)(nul - p) - 1);
                } else {
                        sb_hex(b, p, n);
                }
                break;
        case FF_STRING:
                sb_text(b, p, strnlen((const char *)p, n));
                break;
        case FF_STRING_RAW:
                sb_text(b, p, n);
                break;
        case FF_UINT:
                if (n == 1 || n == 2 || n == 4 || n == 8) {
                        snprintf(num, sizeof(num), "%llu", (unsigned long long)rd_uint(p, n, endian));
                        sb_str(b, num);
                } else {
                        sb_hex(b, p, n);
                }
                break;
        }
}

static int ima_describe(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret)
{
        const ima_state_t *st = l->priv;
        sbuf_t b = {0};
        char head[16];
        int endian;

        if (!st || ev != &l->ev || !ev->data)
                return -EINVAL;
        endian = l->ops->format == CSCP_EVENTLOG_IMA ? st->ascii_endian : st->endian;
        snprintf(head, sizeof(head), "%2u ", ev->pcr);
        sb_str(&b, head);
        sb_hex(&b, st->thash, st->thash_len);
        sb_str(&b, " ");
        sb_str(&b, st->name);
        if (st->is_ima && ev->data_len == IMA_DATA_LEN) {
                sb_str(&b, " ");
                sb_hex(&b, ev->data, 20);
                sb_str(&b, " ");
                sb_text(&b, ev->data + 20, strnlen((const char *)ev->data + 20, EVENT_NAME_MAX + 1));
        } else {
                size_t pos = 0;
                for (size_t i = 0; i < st->n_fields && ev->data_len - pos >= 4; i++) {
                        uint32_t n = rd32(ev->data + pos, endian);
                        if (n > ev->data_len - pos - 4)
                                break;
                        sb_str(&b, " ");
                        describe_field(&b, st->fields[i], ev->data + pos + 4, n, endian);
                        pos += 4 + (size_t)n;
                }
        }
        if (b.err) {
                free(b.s);
                return b.err;
        }
        *ret = b.s;
        return 0;
}

const evlog_ops_t evlog_ima_ops = {
        .format = CSCP_EVENTLOG_IMA,
        .init = ima_init,
        .next = ascii_next,
        .describe = ima_describe,
        .save = ima_save,
        .restore = ima_restore,
        .free = ima_free,
};

const evlog_ops_t evlog_ima_binary_ops = {
        .format = CSCP_EVENTLOG_IMA_BINARY,
        .init = ima_init,
        .next = bin_next,
        .describe = ima_describe,
        .save = ima_save,
        .restore = ima_restore,
        .free = ima_free,
};
