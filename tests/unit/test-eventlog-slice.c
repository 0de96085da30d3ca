/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp_eventlog_slice: whole events from event N, as attestd and vtpmd cut
 * logs for a LogRequest offset. CEL-TLV (vtpmd's logs), CEL-JSON-SEQ
 * (systemd's), IMA ascii and binary, each with a writer caught mid-append.
 * Also writes seeds for tests/fuzz/fuzz-slice.c to <build>/fuzz-seeds/slice/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cel.h"
#include "error.h"
#include "eventlog.h"
#include "util.h"

typedef struct buf {
        uint8_t *p;
        size_t len;
        size_t ends[16]; /* byte offset after each record */
        size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
        b->p = realloc(b->p, b->len + n + 1);
        cr_assert(b->p);
        memcpy(b->p + b->len, p, n);
        b->len += n;
}

static void end_record(buf_t *b)
{
        cr_assert_lt(b->n, 16);
        b->ends[b->n++] = b->len;
}

static size_t rec_start(const buf_t *b, size_t i)
{
        return i == 0 ? 0 : b->ends[i - 1];
}

/* Five CM_TLV records as vtpmd writes them (recnum 0..4, PCR 15, sha256). */
static void cel_tlv_log(buf_t *b)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA256, 0};

        for (uint64_t i = 0; i < 5; i++) {
                char value[32];
                cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, "vtpm-bind", 9}, {CSCP_CM_F_VALUE, value, 0}};
                cscp_event_digest_t d[4];
                size_t nd = 0, cl = 0, rl = 0;
                uint8_t *content = NULL, *rec = NULL;

                snprintf(value, sizeof(value), "record %llu", (unsigned long long)i);
                f[1].len = strlen(value);
                cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, f, 2, &content, &cl), 0);
                cr_assert_eq(cscp_cm_digests(content, cl, banks, d, &nd), 0);
                cr_assert_eq(cscp_cel_tlv_encode(i, 15, false, d, nd, CSCP_CEL_CM_TLV, content, cl, &rec, &rl), 0);
                put(b, rec, rl);
                end_record(b);
                free(content);
                free(rec);
        }
}

/* Like systemd's tpm2-measure.log: RS, one JSON object, LF. */
static void json_seq_log(buf_t *b)
{
        for (unsigned i = 0; i < 4; i++) {
                char line[512];
                snprintf(
                        line, sizeof(line),
                        "\x1e{\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"%064x\"}],"
                        "\"content_type\":\"systemd\",\"content\":{\"string\":\"phase-%u\",\"eventType\":\"phase\"}}\n",
                        i + 1, i);
                put(b, line, strlen(line));
                end_record(b);
        }
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
        cscp_hex_encode(p, n, out);
}

/* IMA ima-ng entries, ascii (template hash = SHA-1 over the template data) or binary (little-endian). */
static void ima_log(buf_t *b, bool binary)
{
        for (unsigned i = 0; i < 4; i++) {
                char path[64], th_hex[41], fd_hex[65], line[512];
                uint8_t fd[32], th[20], data[256];
                uint32_t l1, l2, dl = 0;
                unsigned int mdl;

                snprintf(path, sizeof(path), "/usr/bin/tool-%u", i);
                EVP_Digest(path, strlen(path), fd, &mdl, EVP_sha256(), NULL);
                l1 = 7 + 1 + 32; /* "sha256:" NUL digest */
                memcpy(data + dl, &l1, 4);
                dl += 4;
                memcpy(data + dl, "sha256:", 8);
                dl += 8;
                memcpy(data + dl, fd, 32);
                dl += 32;
                l2 = (uint32_t)strlen(path) + 1;
                memcpy(data + dl, &l2, 4);
                dl += 4;
                memcpy(data + dl, path, l2);
                dl += l2;
                EVP_Digest(data, dl, th, &mdl, EVP_sha1(), NULL);
                if (binary) {
                        uint32_t pcr = 10, tl = 6;
                        put(b, &pcr, 4);
                        put(b, th, 20);
                        put(b, &tl, 4);
                        put(b, "ima-ng", 6);
                        put(b, &dl, 4);
                        put(b, data, dl);
                } else {
                        hex_of(th, 20, th_hex);
                        hex_of(fd, 32, fd_hex);
                        snprintf(line, sizeof(line), "10 %s ima-ng sha256:%s %s\n", th_hex, fd_hex, path);
                        put(b, line, strlen(line));
                }
                end_record(b);
        }
}

static int slice(const buf_t *b, size_t len, cscp_eventlog_format_t fmt, uint64_t from, size_t max, size_t *start,
                 size_t *n, uint64_t *count)
{
        return cscp_eventlog_slice(b->p, len, fmt, from, max, start, n, count);
}

/* Every from: exactly the records from there; a trailing partial record is left out; past the end: -ERANGE. */
static void check_format(const buf_t *b, cscp_eventlog_format_t fmt, const char *what)
{
        /* A JSON record is whole at its '}': the newline after it is a separator, not part of it. */
        size_t trailing = fmt == CSCP_EVENTLOG_CEL_JSON ? 1 : 0;
        size_t start, n;
        uint64_t count;

        for (size_t from = 0; from <= b->n; from++) {
                size_t want_start = from == 0 ? 0 : b->ends[from - 1] - trailing;

                cr_assert_eq(slice(b, b->len, fmt, from, 0, &start, &n, &count), 0, "%s from %zu", what, from);
                cr_assert_eq(count, b->n - from, "%s from %zu: %llu events", what, from, (unsigned long long)count);
                cr_assert_eq(start, want_start, "%s from %zu: start %zu", what, from, start);
                cr_assert_eq(start + n, b->len - trailing, "%s from %zu", what, from);
        }
        cr_assert_eq(slice(b, b->len, fmt, b->n + 1, 0, &start, &n, &count), -ERANGE, "%s past the end", what);

        /* A writer mid-append: every cut inside the last record leaves it out. */
        for (size_t cut = rec_start(b, b->n - 1) + 1; cut < b->len - trailing; cut++) {
                int r = slice(b, cut, fmt, 0, 0, &start, &n, &count);
                cr_assert_eq(r, 0, "%s cut at %zu of %zu: %s", what, cut, b->len, cscp_strerror(r));
                cr_assert_eq(count, b->n - 1, "%s cut at %zu: %llu events", what, cut, (unsigned long long)count);
                cr_assert_eq(start + n, rec_start(b, b->n - 1) - trailing, "%s cut at %zu", what, cut);
        }

        /* A byte budget: whole records only, 1 while more follow. */
        cr_assert_eq(slice(b, b->len, fmt, 1, b->ends[2] - b->ends[0], &start, &n, &count), 1, "%s budget", what);
        cr_assert_eq(count, 2);
        cr_assert_eq(start, b->ends[0] - trailing);
        cr_assert_eq(n, b->ends[2] - b->ends[0]);
        cr_assert_eq(slice(b, b->len, fmt, 1, b->ends[2] - b->ends[0] - 1, &start, &n, &count), 1);
        cr_assert_eq(count, 1);
        cr_assert_eq(slice(b, b->len, fmt, 0, 1, &start, &n, &count), 1, "%s: first record over the budget", what);
        cr_assert_eq(count, 0);
        cr_assert_eq(n, 0);
        cr_assert_eq(slice(b, b->len, fmt, 0, b->len, &start, &n, &count), 0, "%s: exact budget", what);
        cr_assert_eq(count, b->n);
}

static void seed(const char *name, uint8_t fmt, uint8_t from, uint8_t budget, const buf_t *b)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char path[4096];
        FILE *f;

        if (!build)
                return;
        snprintf(path, sizeof(path), "%s/fuzz-seeds", build);
        (void)mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/fuzz-seeds/slice", build);
        (void)mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/fuzz-seeds/slice/%s", build, name);
        f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        fputc(fmt, f);
        fputc(from, f);
        fputc(budget, f);
        cr_assert_eq(fwrite(b->p, 1, b->len, f), b->len);
        fclose(f);
}

Test(slice, cel_tlv)
{
        buf_t b = {0};

        cel_tlv_log(&b);
        check_format(&b, CSCP_EVENTLOG_CEL_TLV, "CEL-TLV");
        check_format(&b, CSCP_EVENTLOG_AUTO, "CEL-TLV (detected)");
        seed("cel-tlv", CSCP_EVENTLOG_CEL_TLV, 2, 0, &b);
        seed("cel-tlv-budget", CSCP_EVENTLOG_CEL_TLV, 1, 20, &b);
        free(b.p);
}

Test(slice, cel_json_seq)
{
        buf_t b = {0};

        json_seq_log(&b);
        check_format(&b, CSCP_EVENTLOG_CEL_JSON, "CEL-JSON-SEQ");
        seed("cel-json-seq", CSCP_EVENTLOG_CEL_JSON, 1, 0, &b);
        free(b.p);
}

Test(slice, ima_ascii_and_binary)
{
        buf_t a = {0}, bin = {0};

        ima_log(&a, false);
        ima_log(&bin, true);
        check_format(&a, CSCP_EVENTLOG_IMA, "IMA ascii");
        check_format(&bin, CSCP_EVENTLOG_IMA_BINARY, "IMA binary");
        seed("ima", CSCP_EVENTLOG_IMA, 1, 0, &a);
        seed("ima-binary", CSCP_EVENTLOG_IMA_BINARY, 3, 0, &bin);
        free(a.p);
        free(bin.p);
}

Test(slice, corrupt_record_before_the_end_is_an_error)
{
        buf_t b = {0};
        size_t start, n;
        uint64_t count;

        cel_tlv_log(&b);
        /* Record 2's recnum TLV type (its first byte) is no longer 0: malformed, not a partial append. */
        b.p[rec_start(&b, 2)] = 0x7f;
        cr_assert_lt(slice(&b, b.len, CSCP_EVENTLOG_CEL_TLV, 0, 0, &start, &n, &count), 0);
        cr_assert_lt(slice(&b, b.len, CSCP_EVENTLOG_CEL_TLV, 3, 0, &start, &n, &count), 0);
        free(b.p);
}

Test(slice, empty_log_and_bad_arguments)
{
        size_t start = 9, n = 9;
        uint64_t count = 9;
        const uint8_t x = 0;

        cr_assert_eq(cscp_eventlog_slice(NULL, 0, CSCP_EVENTLOG_AUTO, 0, 0, &start, &n, &count), 0);
        cr_assert(start == 0 && n == 0 && count == 0);
        cr_assert_eq(cscp_eventlog_slice(NULL, 0, CSCP_EVENTLOG_CEL_TLV, 1, 0, &start, &n, &count), -ERANGE);
        cr_assert_eq(cscp_eventlog_slice(NULL, 1, CSCP_EVENTLOG_CEL_TLV, 0, 0, &start, &n, &count), -EINVAL);
        cr_assert_eq(cscp_eventlog_slice(&x, 1, _CSCP_EVENTLOG_FORMAT_MAX, 0, 0, &start, &n, &count), -EINVAL);
        cr_assert_eq(cscp_eventlog_slice(&x, 1, CSCP_EVENTLOG_CEL_TLV, 0, 0, NULL, &n, &count), -EINVAL);
}

Test(slice, json_array_only_whole)
{
        static const char arr[] = "[{\"recnum\":0,\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":"
                                  "\"0000000000000000000000000000000000000000000000000000000000000001\"}],"
                                  "\"content_type\":\"systemd\",\"content\":{\"string\":\"x\"}}]";
        size_t start, n;
        uint64_t count;

        cr_assert_eq(cscp_eventlog_slice((const uint8_t *)arr, strlen(arr), CSCP_EVENTLOG_CEL_JSON, 0, 0, &start, &n,
                                         &count),
                     0);
        cr_assert(start == 0 && n == strlen(arr) && count == 1);
        cr_assert_eq(cscp_eventlog_slice((const uint8_t *)arr, strlen(arr), CSCP_EVENTLOG_CEL_JSON, 1, 0, &start, &n,
                                         &count),
                     CSCP_E_UNSUPPORTED); /* A budget that cannot hold the whole array: nothing, never a part of it (the
                                             event alone fits). */
        cr_assert_eq(cscp_eventlog_slice((const uint8_t *)arr, strlen(arr), CSCP_EVENTLOG_CEL_JSON, 0, strlen(arr) - 1,
                                         &start, &n, &count),
                     1);
        cr_assert(n == 0 && count == 0, "a part of a JSON array: %zu bytes, %llu events", n, (unsigned long long)count);
        /* The fuzzer's case: an array of no events with more blank bytes than the budget. */
        {
                static const char blank[] = "    [         ]   ";
                cr_assert_eq(cscp_eventlog_slice((const uint8_t *)blank, strlen(blank), CSCP_EVENTLOG_CEL_JSON, 0, 16,
                                                 &start, &n, &count),
                             1);
                cr_assert(n == 0 && count == 0);
                cr_assert_eq(cscp_eventlog_slice((const uint8_t *)blank, strlen(blank), CSCP_EVENTLOG_CEL_JSON, 0, 0,
                                                 &start, &n, &count),
                             0);
                cr_assert(start == 0 && n == strlen(blank) && count == 0);
        }
}
