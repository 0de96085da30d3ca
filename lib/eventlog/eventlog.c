/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event logs: opening, format detection, buffered input and dispatch to the
 * per-format parsers (tcg.c, ima.c, cel.c).
 */

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "internal.h"

#define DEFAULT_MAX_RECORD (16u * 1024 * 1024)
#define DEFAULT_MAX_EVENTS 10000000ull
#define READ_CHUNK         65536

static const char *const format_names[_CSCP_EVENTLOG_FORMAT_MAX] = {
        [CSCP_EVENTLOG_AUTO] = "auto",       [CSCP_EVENTLOG_TCG] = "tcg",
        [CSCP_EVENTLOG_IMA] = "ima",         [CSCP_EVENTLOG_IMA_BINARY] = "ima-binary",
        [CSCP_EVENTLOG_CEL_TLV] = "cel-tlv", [CSCP_EVENTLOG_CEL_JSON] = "cel-json",
};

int cscp_eventlog_format_from_name(const char *name)
{
        if (!name)
                return -1;
        for (int i = 0; i < _CSCP_EVENTLOG_FORMAT_MAX; i++)
                if (strcmp(name, format_names[i]) == 0)
                        return i;
        return -1;
}

const char *cscp_eventlog_format_name(cscp_eventlog_format_t f)
{
        if ((int)f < 0 || f >= _CSCP_EVENTLOG_FORMAT_MAX)
                return NULL;
        return format_names[f];
}

/* ------------------------------------------------------------------ input */

size_t evlog_in_avail(const evlog_in_t *in)
{
        if (in->fd < 0)
                return in->mem_len - (size_t)in->consumed;
        return in->fill - in->pos;
}

/* Reads more into the window until at least n bytes are available or EOF. */
static int fill_to(evlog_in_t *in, size_t n)
{
        if (in->pos > 0 && in->cap - in->fill < READ_CHUNK) {
                /* Slide the unconsumed part to the front. */
                memmove(in->buf, in->buf + in->pos, in->fill - in->pos);
                in->fill -= in->pos;
                in->base += in->pos;
                in->pos = 0;
        }
        while (in->fill - in->pos < n && !in->eof) {
                size_t want = n - (in->fill - in->pos);

                if (want < READ_CHUNK)
                        want = READ_CHUNK;
                if (in->cap - in->fill < want) {
                        size_t cap = in->fill + want;
                        uint8_t *b;

                        if (cap > in->max + READ_CHUNK)
                                cap = in->max + READ_CHUNK;
                        if (cap <= in->fill)
                                return CSCP_E_TOO_BIG;
                        b = realloc(in->buf, cap);
                        if (!b)
                                return -ENOMEM;
                        in->buf = b;
                        in->cap = cap;
                }
                ssize_t k = read(in->fd, in->buf + in->fill, in->cap - in->fill);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        in->eof = true;
                in->fill += (size_t)k;
        }
        return 0;
}

int evlog_in_need(evlog_in_t *in, size_t n, const uint8_t **ret)
{
        int r;

        if (n > in->max)
                return CSCP_E_TOO_BIG;
        if (in->fd < 0) {
                if (in->mem_len - in->consumed < n)
                        return -ENODATA;
                *ret = in->mem + in->consumed;
                return 0;
        }
        if (in->fill - in->pos < n) {
                r = fill_to(in, n);
                if (r < 0)
                        return r;
                if (in->fill - in->pos < n)
                        return -ENODATA;
        }
        *ret = in->buf + in->pos;
        return 0;
}

bool evlog_in_at_end(evlog_in_t *in)
{
        if (in->fd < 0)
                return in->consumed >= in->mem_len;
        if (in->fill > in->pos)
                return false;
        if (fill_to(in, 1) < 0)
                return false; /* the next read reports the error */
        return in->fill == in->pos;
}

void evlog_in_consume(evlog_in_t *in, size_t n)
{
        if (in->fd >= 0)
                in->pos += n;
        in->consumed += n;
}

int evlog_in_line(evlog_in_t *in, size_t max, const uint8_t **ret, size_t *ret_len, size_t *ret_newline)
{
        size_t have = 0;
        int r;

        if (max > in->max)
                max = in->max;
        for (;;) {
                const uint8_t *p;
                size_t avail = evlog_in_avail(in);
                bool clamped = avail > in->max; /* a window of max bytes without '\n': the line is too long */

                if (clamped)
                        avail = in->max;
                if (avail > have) {
                        r = evlog_in_need(in, avail, &p);
                        if (r < 0)
                                return r;
                        const uint8_t *nl = memchr(p + have, '\n', avail - have);
                        if (nl) {
                                if ((size_t)(nl - p) > max)
                                        return CSCP_E_TOO_BIG;
                                *ret = p;
                                *ret_len = (size_t)(nl - p);
                                *ret_newline = 1;
                                return 1;
                        }
                        have = avail;
                }
                if (have > max || clamped)
                        return CSCP_E_TOO_BIG;
                if (in->fd < 0 || in->eof) {
                        if (have == 0)
                                return 0;
                        r = evlog_in_need(in, have, &p);
                        if (r < 0)
                                return r;
                        *ret = p;
                        *ret_len = have;
                        *ret_newline = 0;
                        return 1;
                }
                r = fill_to(in, have + 1);
                if (r < 0)
                        return r;
        }
}

int evlog_in_tail(const evlog_in_t *in, uint64_t end, uint8_t *out, size_t n)
{
        if (n > end)
                return -EINVAL;
        if (in->fd < 0) {
                if (end > in->mem_len)
                        return -ENODATA;
                memcpy(out, in->mem + end - n, n);
                return 0;
        }
        if (end - n >= in->base && end <= in->base + in->fill) {
                memcpy(out, in->buf + (end - n - in->base), n);
                return 0;
        }
        for (size_t got = 0; got < n;) {
                ssize_t k = pread(in->fd, out + got, n - got, (off_t)(end - n + got));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == ESPIPE ? -ESPIPE : -errno;
                if (k == 0)
                        return -ENODATA;
                got += (size_t)k;
        }
        return 0;
}

int evlog_in_seek(evlog_in_t *in, uint64_t off)
{
        if (off < in->consumed)
                return -EINVAL;
        if (in->fd < 0) {
                if (off > in->mem_len)
                        return -ENODATA;
                in->consumed = off;
                return 0;
        }
        /* Try lseek (regular files), else read and drop. */
        uint64_t skip = off - in->consumed;
        if (skip <= in->fill - in->pos) {
                evlog_in_consume(in, (size_t)skip);
                return 0;
        }
        skip -= in->fill - in->pos;
        in->consumed += in->fill - in->pos;
        in->base += in->fill;
        in->fill = in->pos = 0;
        struct stat st;
        if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(in->fd, (off_t)skip, SEEK_CUR) >= 0) {
                /* lseek happily goes past the end: a log shorter than the checkpoint is an error. */
                if ((uint64_t)st.st_size < off)
                        return -ENODATA;
                in->consumed += skip;
                in->base = in->consumed;
                return 0;
        }
        while (skip > 0) {
                const uint8_t *p;
                size_t n = skip > READ_CHUNK ? READ_CHUNK : (size_t)skip;
                int r = evlog_in_need(in, n, &p);
                if (r < 0)
                        return r;
                evlog_in_consume(in, n);
                skip -= n;
        }
        return 0;
}

/* ------------------------------------------------------------- helpers */

int evlog_fail(cscp_eventlog_t *l, int code, uint64_t offset, const char *fmt, ...)
{
        va_list ap;
        int n;

        n = snprintf(l->err, sizeof(l->err), "event %llu at byte %llu: ", (unsigned long long)l->ev.index,
                     (unsigned long long)offset);
        if (n < 0 || (size_t)n >= sizeof(l->err))
                n = 0;
        va_start(ap, fmt);
        vsnprintf(l->err + n, sizeof(l->err) - (size_t)n, fmt, ap);
        va_end(ap);
        l->failed = true;
        return code;
}

/*
 * Hashing is most of a replay's time: the four digests are fetched once per
 * process, and each thread reuses one context (EVP_Digest would allocate and
 * free one per call).
 */
static const uint16_t hash_algs[CSCP_EVENT_MAX_DIGESTS] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384,
                                                           TPM2_ALG_SHA512};
static EVP_MD *hash_mds[CSCP_EVENT_MAX_DIGESTS];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *hash_ctx[CSCP_EVENT_MAX_DIGESTS];

static void hash_fetch(void)
{
        for (int i = 0; i < CSCP_EVENT_MAX_DIGESTS; i++)
                hash_mds[i] = EVP_MD_fetch(NULL, cscp_hash_alg_evp(hash_algs[i]), NULL);
}

int evlog_hash2(uint16_t alg, const void *a, size_t alen, const void *b, size_t blen, uint8_t *out)
{
        unsigned outlen = 0;
        int i;

        for (i = 0; i < CSCP_EVENT_MAX_DIGESTS; i++)
                if (hash_algs[i] == alg)
                        break;
        if (i == CSCP_EVENT_MAX_DIGESTS)
                return CSCP_E_UNSUPPORTED;
        pthread_once(&hash_once, hash_fetch);
        if (!hash_mds[i])
                return CSCP_E_CRYPTO;
        /* One context per algorithm: re-initialising with the same digest keeps its provider state. */
        if (!hash_ctx[i]) {
                hash_ctx[i] = EVP_MD_CTX_new();
                if (!hash_ctx[i] || EVP_DigestInit_ex2(hash_ctx[i], hash_mds[i], NULL) != 1)
                        return CSCP_E_CRYPTO;
        } else if (EVP_DigestInit_ex2(hash_ctx[i], NULL, NULL) != 1)
                return CSCP_E_CRYPTO;
        if (EVP_DigestUpdate(hash_ctx[i], a, alen) != 1 || (blen && EVP_DigestUpdate(hash_ctx[i], b, blen) != 1) ||
            EVP_DigestFinal_ex(hash_ctx[i], out, &outlen) != 1)
                return CSCP_E_CRYPTO;
        return 0;
}

int evlog_hash(uint16_t alg, const void *data, size_t len, uint8_t *out)
{
        return evlog_hash2(alg, data, len, NULL, 0, out);
}

int evlog_add_digest(cscp_event_t *ev, uint16_t alg, const uint8_t *digest, size_t size)
{
        if (size == 0 || size > CSCP_EVENT_MAX_DIGEST || cscp_hash_alg_size(alg) != size)
                return CSCP_E_UNSUPPORTED;
        for (size_t i = 0; i < ev->n_digests; i++)
                if (ev->digests[i].alg == alg)
                        return CSCP_E_PROTO;
        if (ev->n_digests >= CSCP_EVENT_MAX_DIGESTS)
                return CSCP_E_TOO_BIG;
        ev->digests[ev->n_digests].alg = alg;
        ev->digests[ev->n_digests].size = (uint16_t)size;
        memcpy(ev->digests[ev->n_digests].digest, digest, size);
        ev->n_digests++;
        return 0;
}

/* ----------------------------------------------------------- detection */

static bool is_hex(uint8_t c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* Guesses the format from up to the first 96 bytes (an IMA sha512 list needs 76). */
static cscp_eventlog_format_t detect(const uint8_t *p, size_t n)
{
        size_t i = 0;

        if (n == 0)
                return CSCP_EVENTLOG_AUTO;
        /* Text: IMA ascii ("10 <hex> ima-ng ...") or JSON / JSON-SEQ. */
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
                i++;
        if (i < n && (p[i] == '[' || p[i] == '{' || p[i] == 0x1e))
                return CSCP_EVENTLOG_CEL_JSON;
        if (i < n && isdigit(p[i])) {
                size_t j = i;
                while (j < n && isdigit(p[j]))
                        j++;
                if (j < n && p[j] == ' ') {
                        size_t k = j + 1, h = 0;
                        while (k < n && is_hex(p[k]))
                                k++, h++;
                        if (h >= 32 || k == n)
                                return CSCP_EVENTLOG_IMA;
                }
        }
        /* IMA binary: u32 pcr, template digest (20 bytes, or 32/48/64 in the 6.10+ per-bank files), u32 name
         * length (1..255), name "ima..."/"evm..." or a custom field list ("d-ng|sig", "n"). */
        for (size_t s = 20; s <= 64; s += s == 20 ? 12 : 16) {
                if (n < s + 9)
                        break;
                uint32_t nl = le32(p + s + 4), nb = be32(p + s + 4), len = nl <= 255 ? nl : nb;
                if (len == 0 || len > 255 || n < s + 8 + 3)
                        continue;
                if (memcmp(p + s + 8, "ima", 3) == 0 || memcmp(p + s + 8, "evm", 3) == 0)
                        return CSCP_EVENTLOG_IMA_BINARY;
                size_t k = 0;
                while (k < len && s + 8 + k < n &&
                       (islower(p[s + 8 + k]) || p[s + 8 + k] == '-' || p[s + 8 + k] == '|'))
                        k++;
                if ((le32(p) < 24 || be32(p) < 24) && (k == len || s + 8 + k == n) && p[s + 8] >= 'a' &&
                    p[s + 8] <= 'z')
                        return CSCP_EVENTLOG_IMA_BINARY;
        }
        /* TCG crypto-agile: header event in PCR 0, EV_NO_ACTION, the Spec ID signature at byte 32. */
        if (n >= 47 && le32(p) == 0 && le32(p + 4) == 3 && memcmp(p + 32, "Spec ID Event03", 15) == 0)
                return CSCP_EVENTLOG_TCG;
        /* CEL-TLV: a recnum TLV (type 0, big-endian length 1..8), then a pcr or nv_index TLV (length 1..4). */
        if (n >= 5 && p[0] == 0 && be32(p + 1) >= 1 && be32(p + 1) <= 8) {
                size_t k = 5 + be32(p + 1);
                if (n >= k + 5 && (p[k] == 1 || p[k] == 2) && be32(p + k + 1) >= 1 && be32(p + k + 1) <= 4)
                        return CSCP_EVENTLOG_CEL_TLV;
        }
        /* TCG: u32 pcr (little-endian, < 24 in practice) then u32 event type. */
        if (n >= 8 && le32(p) < 32)
                return CSCP_EVENTLOG_TCG;
        return CSCP_EVENTLOG_AUTO;
}

static const evlog_ops_t *ops_for(cscp_eventlog_format_t f)
{
        switch (f) {
        case CSCP_EVENTLOG_TCG:
                return &evlog_tcg_ops;
        case CSCP_EVENTLOG_IMA:
                return &evlog_ima_ops;
        case CSCP_EVENTLOG_IMA_BINARY:
                return &evlog_ima_binary_ops;
        case CSCP_EVENTLOG_CEL_TLV:
                return &evlog_cel_tlv_ops;
        case CSCP_EVENTLOG_CEL_JSON:
                return &evlog_cel_json_ops;
        case CSCP_EVENTLOG_AUTO:
        case _CSCP_EVENTLOG_FORMAT_MAX:
        default:
                return NULL;
        }
}

/* ---------------------------------------------------------------- API */

cscp_eventlog_format_t cscp_eventlog_detect(const uint8_t *buf, size_t len)
{
        return buf ? detect(buf, len < 96 ? len : 96) : CSCP_EVENTLOG_AUTO;
}

static int open_common(cscp_eventlog_t *l, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                       const cscp_replay_t *resume, cscp_eventlog_t **ret)
{
        int r;

        if (opts)
                l->opts = *opts;
        if (l->opts.max_record == 0)
                l->opts.max_record = DEFAULT_MAX_RECORD;
        if (l->opts.max_events == 0)
                l->opts.max_events = DEFAULT_MAX_EVENTS;
        if (l->opts.ima_banks[0] == 0) {
                static const uint16_t all[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512, 0};
                memcpy(l->opts.ima_banks, all, sizeof(all));
        }
        l->in.max = l->opts.max_record;
        if (resume) {
                if (fmt != CSCP_EVENTLOG_AUTO && fmt != resume->format) {
                        snprintf(l->err, sizeof(l->err), "checkpoint is for a %s log, not %s",
                                 cscp_eventlog_format_name(resume->format), cscp_eventlog_format_name(fmt));
                        r = -EINVAL;
                        goto fail;
                }
                fmt = resume->format;
        }
        if (fmt == CSCP_EVENTLOG_AUTO) {
                const uint8_t *p;
                size_t n = 96;

                r = evlog_in_need(&l->in, n, &p);
                if (r == -ENODATA) {
                        n = evlog_in_avail(&l->in);
                        r = n ? evlog_in_need(&l->in, n, &p) : 0;
                }
                if (r < 0)
                        goto fail;
                fmt = n ? detect(p, n) : CSCP_EVENTLOG_AUTO;
                if (fmt == CSCP_EVENTLOG_AUTO) {
                        snprintf(l->err, sizeof(l->err), "%s",
                                 n ? "unrecognised log format (give --format)" : "empty log");
                        r = CSCP_E_PROTO;
                        goto fail;
                }
        }
        l->ops = ops_for(fmt);
        if (!l->ops) {
                r = -EINVAL;
                goto fail;
        }
        if (!resume && l->opts.first_index) {
                if (fmt == CSCP_EVENTLOG_TCG) {
                        snprintf(l->err, sizeof(l->err), "a TCG log cannot start at event %llu: it is sent whole",
                                 (unsigned long long)l->opts.first_index);
                        r = -EINVAL;
                        goto fail;
                }
                l->next_index = l->opts.first_index;
        }
        if (resume) {
                if (l->ops->restore) {
                        r = l->ops->restore(l, resume->parser_state, resume->parser_state_len);
                        if (r < 0)
                                goto fail;
                } else if (resume->parser_state_len) {
                        r = -EINVAL;
                        goto fail;
                }
                r = evlog_in_seek(&l->in, resume->next_offset);
                if (r < 0) {
                        snprintf(l->err, sizeof(l->err), "cannot resume at byte %llu: %s",
                                 (unsigned long long)resume->next_offset,
                                 r == -ENODATA ? "the log is shorter than the checkpoint" : cscp_strerror(r));
                        goto fail;
                }
                if (resume->tail_len) {
                        uint8_t tail[256], sum[32];
                        if (resume->tail_len > sizeof(tail)) {
                                r = -EINVAL;
                                goto fail;
                        }
                        r = evlog_in_tail(&l->in, resume->next_offset, tail, resume->tail_len);
                        if (r == 0)
                                r = evlog_hash(TPM2_ALG_SHA256, tail, resume->tail_len, sum);
                        if (r == 0 && CRYPTO_memcmp(sum, resume->tail_sha256, 32) != 0)
                                r = -ESTALE;
                        if (r < 0 && r != -ESPIPE)
                                goto fail;
                }
                l->next_index = resume->next_index;
                l->started = true; /* headers were read by the first reader */
        }
        *ret = l;
        return 0;
fail:
        /* A failed open returns only the code: CSCP_E_PROTO (format not recognised or
         * empty), -EINVAL (checkpoint of another format or parser), -ENODATA (log
         * shorter than the checkpoint), -ESTALE (the bytes before the checkpoint differ: the
         * log was replaced or rotated), or what reading returned. */
        cscp_eventlog_free(l);
        return r;
}

int cscp_eventlog_open_fd(int fd, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                          const cscp_replay_t *resume, cscp_eventlog_t **ret)
{
        cscp_eventlog_t *l;

        if (fd < 0 || !ret || (int)fmt < 0 || fmt >= _CSCP_EVENTLOG_FORMAT_MAX)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->in.fd = fd;
        return open_common(l, fmt, opts, resume, ret);
}

int cscp_eventlog_open_mem(const uint8_t *buf, size_t len, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                           const cscp_replay_t *resume, cscp_eventlog_t **ret)
{
        cscp_eventlog_t *l;

        if ((!buf && len) || !ret || (int)fmt < 0 || fmt >= _CSCP_EVENTLOG_FORMAT_MAX)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->in.fd = -1;
        l->in.mem = buf;
        l->in.mem_len = len;
        return open_common(l, fmt, opts, resume, ret);
}

int cscp_eventlog_next(cscp_eventlog_t *l, const cscp_event_t **ret)
{
        int r;

        if (!l || !ret)
                return -EINVAL;
        if (l->failed)
                return CSCP_E_PROTO;
        if (l->ended)
                return 0;
        if (!l->started) {
                l->started = true;
                if (l->ops->init) {
                        l->ev = (cscp_event_t){.index = l->next_index, .offset = l->in.consumed};
                        r = l->ops->init(l);
                        if (r < 0) {
                                l->failed = true;
                                return r;
                        }
                }
        }
        if (l->next_index >= l->opts.max_events) {
                if (evlog_in_at_end(&l->in)) {
                        l->ended = true;
                        return 0;
                }
                return evlog_fail(l, CSCP_E_TOO_BIG, l->in.consumed, "more than %llu events",
                                  (unsigned long long)l->opts.max_events);
        }
        l->ev = (cscp_event_t){.index = l->next_index, .offset = l->in.consumed, .startup_locality = -1};
        r = l->ops->next(l, &l->ev);
        if (r < 0) {
                if (!l->failed)
                        evlog_fail(l, r, l->ev.offset, "%s", cscp_strerror(r));
                return r;
        }
        if (r == 0) {
                l->ended = true;
                return 0;
        }
        l->ev.length = l->in.consumed - l->ev.offset;
        if (!l->ev.kind)
                l->ev.kind = "";
        if (!l->ev.text)
                l->ev.text = "";
        l->next_index++;
        *ret = &l->ev;
        return 1;
}

cscp_eventlog_format_t cscp_eventlog_format(const cscp_eventlog_t *l)
{
        return l && l->ops ? l->ops->format : CSCP_EVENTLOG_AUTO;
}

const char *cscp_eventlog_error(const cscp_eventlog_t *l)
{
        return l ? l->err : "";
}

uint64_t cscp_eventlog_offset(const cscp_eventlog_t *l)
{
        return l ? l->in.consumed : 0;
}

void cscp_eventlog_free(cscp_eventlog_t *l)
{
        if (!l)
                return;
        if (l->ops && l->ops->free)
                l->ops->free(l);
        free(l->in.buf);
        free(l);
}

int cscp_event_describe(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret)
{
        char *s = NULL, dig[2 * CSCP_EVENT_MAX_DIGEST + 1] = "";
        const char *bank = "";

        if (!l || !ev || !ret)
                return -EINVAL;
        if (l->ops->describe)
                return l->ops->describe(l, ev, ret);
        /* Generic: "#N PCR p KIND sha256:hex TEXT". Prefer sha256 for the digest shown. */
        for (size_t i = 0; i < ev->n_digests; i++)
                if (i == 0 || ev->digests[i].alg == TPM2_ALG_SHA256) {
                        for (size_t k = 0; k < ev->digests[i].size; k++)
                                snprintf(dig + 2 * k, 3, "%02x", ev->digests[i].digest[k]);
                        bank = cscp_hash_alg_name(ev->digests[i].alg);
                }
        if (asprintf(&s, "#%llu %s %u %s%s%s%s%s%s", (unsigned long long)ev->index,
                     ev->reg == CSCP_EVENT_NV_INDEX ? "NV"
                     : ev->reg == CSCP_EVENT_RTMR   ? "RTMR"
                                                    : "PCR",
                     ev->pcr, ev->kind, *bank ? " " : "", bank ? bank : "", *bank ? ":" : "", dig,
                     ev->extend ? "" : " (not extended)") < 0)
                return -ENOMEM;
        if (ev->text && *ev->text) {
                char *t = NULL;
                if (asprintf(&t, "%s %s", s, ev->text) < 0) {
                        free(s);
                        return -ENOMEM;
                }
                free(s);
                s = t;
        }
        *ret = s;
        return 0;
}
