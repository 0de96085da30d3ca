/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG PC Client event logs (lib/eventlog/tcg.c):
 *  - conformance with real logs from public projects (../shared/fixtures/eventlog,
 *    via CSCP_FIXTURES): event counts and the PCR values their expected.json state;
 *  - a crypto-agile log written here while the same digests are extended into a
 *    real swtpm with tpm2_pcrextend, replayed and compared with tpm2_pcrread;
 *  - malformed input, each refused with an error naming event number and offset;
 *  - checkpointed replay resumed mid-log;
 *  - the seed corpus of tests/fuzz/fuzz-tcg.c ($CSCP_BUILD_DIR/fuzz-seeds/tcg/).
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "harness.h"

#define EV_POST_CODE                  0x1u
#define EV_NO_ACTION                  0x3u
#define EV_SEPARATOR                  0x4u
#define EV_ACTION                     0x5u
#define EV_EVENT_TAG                  0x6u
#define EV_S_CRTM_VERSION             0x8u
#define EV_IPL                        0xDu
#define EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define EV_EFI_ACTION                 0x80000007u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB 0x80000008u
#define ALG_SM3_256                   0x0012u

/* ------------------------------------------------------------------ helpers */

static uint8_t *read_all(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL;
        size_t cap = 0, len = 0;

        cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
        for (;;) {
                size_t n;
                if (len == cap) {
                        cap = cap ? 2 * cap : 4096;
                        buf = realloc(buf, cap);
                        cr_assert_not_null(buf);
                }
                n = fread(buf + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        fclose(f);
        *ret_len = len;
        return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
        FILE *f = fopen(path, "we");

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        if (len > 0)
                cr_assert_eq(fwrite(buf, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
}

static void mkdir_p(const char *path)
{
        char tmp[4096];

        cr_assert_lt(strlen(path), sizeof(tmp));
        strcpy(tmp, path);
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                mkdir(tmp, 0755);
                *p = '/';
        }
        cr_assert(mkdir(tmp, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", tmp, strerror(errno));
}

/* Valid UTF-8 without control characters (what describe promises). */
static bool clean_utf8(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                size_t n;
                unsigned cp;
                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if (*p >= 0xc2 && *p <= 0xdf)
                        n = 1, cp = *p & 0x1f;
                else if (*p >= 0xe0 && *p <= 0xef)
                        n = 2, cp = *p & 0x0f;
                else if (*p >= 0xf0 && *p <= 0xf4)
                        n = 3, cp = *p & 0x07;
                else
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
                        return false;
                p += n + 1;
        }
        return true;
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t max)
{
        size_t n = strlen(hex);

        cr_assert(n % 2 == 0 && n / 2 <= max, "bad hex %s", hex);
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t)v;
        }
        return n / 2;
}

/* Digest of data as the log writer computes it; algorithms OpenSSL lacks get filler bytes. */
static void digest_of(uint16_t alg, uint16_t size, const void *data, size_t len, uint8_t *out)
{
        const char *evp = cscp_hash_alg_evp(alg);
        unsigned dl = 0;

        if (evp && cscp_hash_alg_size(alg) == size) {
                EVP_MD *md = EVP_MD_fetch(NULL, evp, NULL);
                cr_assert_not_null(md);
                cr_assert_eq(EVP_Digest(data, len, out, &dl, md, NULL), 1);
                EVP_MD_free(md);
                return;
        }
        for (size_t i = 0; i < size; i++)
                out[i] = (uint8_t)(0xa5 ^ i ^ len);
}

/* --------------------------------------------------------------- log writer */

typedef struct lbuf {
        uint8_t *p;
        size_t len, cap;
} lbuf_t;

typedef struct alg {
        uint16_t id, size;
} alg_t;

static void put(lbuf_t *b, const void *d, size_t n)
{
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2 + 64;
                b->p = realloc(b->p, b->cap);
                cr_assert_not_null(b->p);
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
}

static void put_le(lbuf_t *b, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++) {
                uint8_t c = (uint8_t)(v >> (8 * i));
                put(b, &c, 1);
        }
}

static void set_le(uint8_t *p, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* The SHA-1 layout record (header event or SHA-1 log event); returns its offset. */
static size_t put_sha1_event(lbuf_t *b, uint32_t pcr, uint32_t type, const uint8_t digest[20], const void *data,
                             size_t len)
{
        size_t at = b->len;
        static const uint8_t zero[20];

        put_le(b, pcr, 4);
        put_le(b, type, 4);
        put(b, digest ? digest : zero, 20);
        put_le(b, len, 4);
        put(b, data, len);
        return at;
}

static size_t put_specid(lbuf_t *b, const alg_t *algs, size_t n, const char *vendor)
{
        lbuf_t d = {0};
        size_t at;

        put(&d, "Spec ID Event03", 16);
        put_le(&d, 0, 4); /* platformClass */
        put_le(&d, 0, 1); /* specVersionMinor */
        put_le(&d, 2, 1); /* specVersionMajor */
        put_le(&d, 0, 1); /* specErrata */
        put_le(&d, 2, 1); /* uintnSize */
        put_le(&d, n, 4);
        for (size_t i = 0; i < n; i++) {
                put_le(&d, algs[i].id, 2);
                put_le(&d, algs[i].size, 2);
        }
        put_le(&d, vendor ? strlen(vendor) : 0, 1);
        if (vendor)
                put(&d, vendor, strlen(vendor));
        at = put_sha1_event(b, 0, EV_NO_ACTION, NULL, d.p, d.len);
        free(d.p);
        return at;
}

/* A TCG_PCR_EVENT2 with one digest per algorithm (zero digests for EV_NO_ACTION); returns its offset. */
static size_t put_event2(lbuf_t *b, const alg_t *algs, size_t n, uint32_t pcr, uint32_t type, const void *data,
                         size_t len)
{
        size_t at = b->len;

        put_le(b, pcr, 4);
        put_le(b, type, 4);
        put_le(b, n, 4);
        for (size_t i = 0; i < n; i++) {
                uint8_t dg[128] = {0};
                cr_assert_leq(algs[i].size, sizeof(dg));
                if (type != EV_NO_ACTION)
                        digest_of(algs[i].id, algs[i].size, data, len, dg);
                put_le(b, algs[i].id, 2);
                put(b, dg, algs[i].size);
        }
        put_le(b, len, 4);
        put(b, data, len);
        return at;
}

static const uint8_t locality0[17] = "StartupLocality";
static const alg_t two_banks[] = {{TPM2_ALG_SHA1, 20}, {TPM2_ALG_SHA256, 32}};

/* Spec ID (sha1, sha256) + StartupLocality 3 + three measured events. Offsets of each record in off[]. */
static lbuf_t small_log(size_t off[5])
{
        lbuf_t b = {0};
        uint8_t loc[17];
        static const char act[] = "Calling EFI Application from Boot Option";
        static const uint8_t sep[4] = {0};

        memcpy(loc, locality0, sizeof(loc));
        loc[16] = 3;
        off[0] = put_specid(&b, two_banks, 2, NULL);
        off[1] = put_event2(&b, two_banks, 2, 0, EV_NO_ACTION, loc, sizeof(loc));
        off[2] = put_event2(&b, two_banks, 2, 0, EV_S_CRTM_VERSION, "1.0", 3);
        off[3] = put_event2(&b, two_banks, 2, 4, EV_EFI_ACTION, act, strlen(act));
        off[4] = put_event2(&b, two_banks, 2, 7, EV_SEPARATOR, sep, sizeof(sep));
        return b;
}

/* Writes buf as a seed of tests/fuzz/fuzz-tcg.c (skipped outside meson test). */
static void write_seed(const char *name, const void *buf, size_t len)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];

        if (!build || !*build)
                return;
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds/tcg", build), sizeof(dir));
        mkdir_p(dir);
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name), sizeof(path));
        write_file(path, buf, len);
}

/* ------------------------------------------------------------------ replay */

typedef struct run {
        int r;          /* last cscp_eventlog_next result */
        uint64_t count; /* events returned */
        char err[512];
        cscp_replay_t rp;
} run_t;

/* Reads every event (describing each: clean UTF-8), replays, and records the outcome. */
static void run_log(cscp_eventlog_t *l, run_t *out, uint64_t stop_after)
{
        const cscp_event_t *ev;

        out->count = 0;
        while (out->count < stop_after && (out->r = cscp_eventlog_next(l, &ev)) > 0) {
                char *line = NULL;
                cr_assert_eq(cscp_event_describe(l, ev, &line), 0);
                cr_assert(clean_utf8(line), "describe output not clean UTF-8: %s", line);
                cr_assert(clean_utf8(ev->text));
                free(line);
                cr_assert_eq(cscp_replay_extend(&out->rp, ev), 0, "replay of event %llu",
                             (unsigned long long)ev->index);
                out->count++;
        }
        if (out->count == stop_after)
                out->r = 1;
        snprintf(out->err, sizeof(out->err), "%s", cscp_eventlog_error(l));
}

static run_t replay_mem(const uint8_t *buf, size_t len, const cscp_eventlog_opts_t *opts)
{
        run_t out = {0};
        cscp_eventlog_t *l = NULL;

        cscp_replay_init(&out.rp);
        out.r = cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_TCG, opts, NULL, &l);
        cr_assert_eq(out.r, 0);
        run_log(l, &out, UINT64_MAX);
        cscp_eventlog_free(l);
        return out;
}

static run_t replay_fd(const char *path)
{
        run_t out = {0};
        cscp_eventlog_t *l = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cscp_replay_init(&out.rp);
        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), 0, "open %s", path);
        cr_assert_eq(cscp_eventlog_format(l), CSCP_EVENTLOG_TCG, "%s not detected as a TCG log", path);
        run_log(l, &out, UINT64_MAX);
        cscp_eventlog_free(l);
        close(fd);
        return out;
}

static char *print_replay(const cscp_replay_t *rp, uint32_t pcrs)
{
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        cr_assert_not_null(f);
        cr_assert_eq(cscp_replay_print(rp, 0, pcrs, f), 0);
        fclose(f);
        return s;
}

/* Lowercase, no whitespace: tpm2_eventlog's "pcrs:" pads and cases differently from tpm2_pcrread. */
static char *squash(const char *s, size_t n)
{
        char *o = malloc(n + 1), *q = o;

        cr_assert_not_null(o);
        for (size_t i = 0; i < n; i++)
                if (!isspace((unsigned char)s[i]))
                        *q++ = (char)tolower((unsigned char)s[i]);
        *q = '\0';
        return o;
}

/* -------------------------------------------------------------- conformance */

static int compare_stated(const char *name, json_object *pcrs, const cscp_replay_t *rp, size_t *ret_mismatch)
{
        int compared = 0;

        *ret_mismatch = 0;
        json_object_object_foreach(pcrs, bank, vals)
        {
                uint16_t alg = cscp_hash_alg_from_name(bank);
                cr_assert_neq(alg, 0, "%s: unknown bank %s", name, bank);
                json_object_object_foreach(vals, idx, hex)
                {
                        unsigned pcr = (unsigned)atoi(idx);
                        uint8_t want[64], got[64];
                        size_t wl = hex_decode(json_object_get_string(hex), want, sizeof(want)), gl = 0;
                        int b;

                        /* A PCR the log never extends is a live TPM value, not a replay claim. */
                        if (cscp_replay_pcr(rp, alg, pcr, got, &gl) < 0)
                                continue;
                        for (b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++)
                                if (rp->banks[b] == alg)
                                        break;
                        cr_assert_lt(b, CSCP_EVENT_MAX_DIGESTS);
                        if (!(rp->extended[b] & (1u << pcr)))
                                continue;
                        compared++;
                        if (gl != wl || memcmp(got, want, wl) != 0) {
                                (*ret_mismatch)++;
                                cr_log_info("%s: %s PCR %u differs from the stated value", name, bank, pcr);
                        }
                }
        }
        return compared;
}

static bool notes_say(json_object *j, const char *phrase)
{
        json_object *notes;

        if (!json_object_object_get_ex(j, "notes", &notes) || !json_object_is_type(notes, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(notes); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(notes, i));
                if (s && strstr(s, phrase))
                        return true;
        }
        return false;
}

/* The "pcrs:" section of tpm2_eventlog's YAML next to a fixture, or NULL. */
static char *yaml_pcrs(const char *dir, const char *file)
{
        static const char *const suffixes[] = {".raw.yaml", ".yaml"};

        for (size_t i = 0; i < 2; i++) {
                char path[4096];
                struct stat st;
                uint8_t *y;
                size_t n;
                char *sec, *out;

                cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s%s", dir, file, suffixes[i]), sizeof(path));
                if (stat(path, &st) != 0)
                        continue;
                y = read_all(path, &n);
                y = realloc(y, n + 1);
                y[n] = '\0';
                sec = strstr((char *)y, "\npcrs:");
                cr_assert_not_null(sec, "%s has no pcrs: section", path);
                sec += strlen("\npcrs:");
                out = squash(sec, strlen(sec));
                free(y);
                return out;
        }
        return NULL;
}

static int check_fixture_dir(const char *sub)
{
        const char *fx = harness_fixtures_dir();
        char dir[4096];
        struct dirent *de;
        DIR *d;
        int checked = 0;

        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/eventlog/%s", fx, sub), sizeof(dir));
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char path[4096], jpath[4200];
                json_object *j, *count, *pcrs;
                struct stat st;
                size_t len, mismatch = 0;
                uint8_t *buf;
                run_t mem, viafd;
                char *yaml;
                int compared = 0;

                cr_assert_lt((size_t)snprintf(jpath, sizeof(jpath), "%s/%s.expected.json", dir, de->d_name),
                             sizeof(jpath));
                if (stat(jpath, &st) != 0)
                        continue;
                cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name), sizeof(path));
                j = json_object_from_file(jpath);
                cr_assert_not_null(j, "%s", jpath);

                buf = read_all(path, &len);
                mem = replay_mem(buf, len, NULL);
                cr_assert_eq(mem.r, 0, "%s: %s", de->d_name, mem.err);
                viafd = replay_fd(path);
                cr_assert_eq(viafd.r, 0, "%s (fd): %s", de->d_name, viafd.err);
                cr_assert_eq(memcmp(&mem.rp, &viafd.rp, sizeof(mem.rp)), 0, "%s: fd and memory replay differ",
                             de->d_name);

                if (json_object_object_get_ex(j, "events_including_specid", &count))
                        cr_assert_eq(mem.count, (uint64_t)json_object_get_int64(count), "%s: %llu events, stated %lld",
                                     de->d_name, (unsigned long long)mem.count,
                                     (long long)json_object_get_int64(count));

                if (json_object_object_get_ex(j, "expected_pcrs", &pcrs) && json_object_object_length(pcrs) > 0) {
                        compared = compare_stated(de->d_name, pcrs, &mem.rp, &mismatch);
                        cr_assert_gt(compared, 0, "%s: no stated PCR is covered by the replay", de->d_name);
                        if (notes_say(j, "strict verifier => reject"))
                                /* The fixture is stated to need a verifier-side workaround: plain replay must differ.
                                 */
                                cr_assert_gt(mismatch, 0, "%s: strict replay should not reproduce the stated values",
                                             de->d_name);
                        else
                                cr_assert_eq(mismatch, 0, "%s: %zu of %d stated PCR values not reproduced", de->d_name,
                                             mismatch, compared);
                }

                yaml = yaml_pcrs(dir, de->d_name);
                if (yaml) {
                        char *mine = print_replay(&mem.rp, 0), *sq = squash(mine, strlen(mine));
                        cr_assert_str_eq(sq, yaml, "%s: replay output differs from tpm2_eventlog's pcrs: section",
                                         de->d_name);
                        free(mine);
                        free(sq);
                        free(yaml);
                }
                cr_log_info("%s: %llu events, %d stated PCR values compared", de->d_name, (unsigned long long)mem.count,
                            compared);
                free(buf);
                json_object_put(j);
                checked++;
        }
        closedir(d);
        return checked;
}

Test(tcg_fixtures, conformance)
{
        int n = 0;

        if (!harness_fixtures_dir())
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        n += check_fixture_dir("tpm2-tools");
        n += check_fixture_dir("go-attestation");
        n += check_fixture_dir("tpm2-tss");
        if (n == 0)
                cr_skip_test("no TCG event-log fixtures under %s/eventlog", harness_fixtures_dir());
        cr_assert_geq(n, 20, "only %d fixtures checked", n);
}

/* The EBS fixture's notes state what a replay gives once the two missing events are appended. */
Test(tcg_fixtures, ebs_workaround_reproduces_stated_pcr5)
{
        const char *fx = harness_fixtures_dir();
        char path[4096];
        struct stat st;
        uint8_t *buf, want[20], got[20];
        size_t len, gl = 0;
        run_t r;
        static const char *const acts[] = {"Exit Boot Services Invocation", "Exit Boot Services Returned with Success"};
        cscp_event_t ev = {.reg = CSCP_EVENT_PCR, .pcr = 5, .extend = true, .startup_locality = -1, .n_digests = 1};

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/eventlog/go-attestation/ebs_event_missing_eventlog", fx),
                     sizeof(path));
        if (stat(path, &st) != 0)
                cr_skip_test("%s absent", path);
        buf = read_all(path, &len);
        r = replay_mem(buf, len, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        for (int i = 0; i < 2; i++) {
                ev.digests[0].alg = TPM2_ALG_SHA1;
                ev.digests[0].size = 20;
                digest_of(TPM2_ALG_SHA1, 20, acts[i], strlen(acts[i]), ev.digests[0].digest);
                cr_assert_eq(cscp_replay_extend(&r.rp, &ev), 0);
        }
        hex_decode("31245808d6d35849bc394f6343f2b3ff908ed5e3", want, sizeof(want));
        cr_assert_eq(cscp_replay_pcr(&r.rp, TPM2_ALG_SHA1, 5, got, &gl), 0);
        cr_assert_eq(memcmp(got, want, 20), 0);
        free(buf);
}

/*
 * The TDX CCEL (go-tdx-guest): a SHA-384 crypto-agile log whose header names MR
 * index 1, in a 256 KiB area padded with 0xFF. The fixture states the log ends
 * at byte 18101 after 43 events (plus the header) and that MR index i+1 replays
 * to RTMR i (values the collector checked against the quote's RTMRs).
 */
Test(tcg_fixtures, tdx_ccel_padding_and_rtmrs)
{
        const char *fx = harness_fixtures_dir();
        char path[4096];
        struct stat st;
        json_object *j, *entry = NULL, *check, *ccel;
        uint8_t *buf;
        size_t len;
        run_t r;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/tdx/go-tdx-guest/ccel_ccel_data.dat", fx), sizeof(path));
        if (stat(path, &st) != 0)
                cr_skip_test("%s absent", path);
        buf = read_all(path, &len);
        r = replay_mem(buf, len, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 1 + 43); /* the Spec ID header, then the 43 events the fixture counts */
        cr_assert_eq(cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), 0);
        while (cscp_eventlog_next(l, &ev) > 0)
                ;
        cr_assert_eq(cscp_eventlog_offset(l), 18101);
        cscp_eventlog_free(l);

        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/tdx/go-tdx-guest/expected.json", fx), sizeof(path));
        j = json_object_from_file(path);
        cr_assert_not_null(j);
        json_object_object_foreach(j, key, val)
        {
                if (strstr(key, "ccel_ccel_data.dat"))
                        entry = val;
        }
        cr_assert_not_null(entry);
        cr_assert(json_object_object_get_ex(entry, "collector_check", &check));
        cr_assert(json_object_object_get_ex(check, "ccel_replay", &ccel));
        for (unsigned i = 0; i < 3; i++) {
                char k[8];
                json_object *h;
                uint8_t want[48], got[64];
                size_t gl = 0;

                snprintf(k, sizeof(k), "rtmr%u", i);
                cr_assert(json_object_object_get_ex(ccel, k, &h));
                hex_decode(json_object_get_string(h), want, sizeof(want));
                cr_assert_eq(cscp_replay_pcr(&r.rp, TPM2_ALG_SHA384, i + 1, got, &gl), 0);
                cr_assert_eq(memcmp(got, want, 48), 0, "RTMR%u", i);
        }
        json_object_put(j);
        free(buf);
}

/* ------------------------------------------------- real swtpm + tpm2-tools */

static char *run_tool(char *const argv[])
{
        int status = -1;
        char *out = NULL, *err = NULL;

        cr_assert_eq(harness_run(argv, 30000, &status, &out, &err), 0, "%s did not run", argv[0]);
        cr_assert_eq(status, 0, "%s failed (%d): %s", argv[0], status, err ? err : "");
        free(err);
        return out;
}

typedef struct mevent {
        uint32_t pcr, type;
        const void *data;
        size_t len;
} mevent_t;

static const uint8_t var_secureboot[] = {
        /* EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c, "SecureBoot", 1 byte 01 */
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c, 10,  0,
        0,    0,    0,    0,    0,    0,    1,    0,    0,    0,    0,    0,    0,    0,    'S',  0,    'e', 0,
        'c',  0,    'u',  0,    'r',  0,    'e',  0,    'B',  0,    'o',  0,    'o',  0,    't',  0,    1,
};
static const uint8_t crtm_version[] = {'1', 0, '.', 0, '2', 0, 0, 0};          /* UTF-16 "1.2" */
static const uint8_t fw_blob[16] = {0, 0, 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0x7e}; /* base, length */
static const uint8_t separator[4] = {0};
static const uint8_t tag[] = {0xec, 0x22, 0x3b, 0x8f, 4, 0, 0, 0, 'i', 'n', 'i', 't'};
static const uint8_t sp800[] = "SP800-155 Event3\0vendor";
static const uint8_t odd_text[] = "tab\there \x01 bell\x7f bad\xff\xfe utf8 \xc3\xa9 end";

/* The events of the test-made log (after Spec ID and StartupLocality). */
static const mevent_t made_events[] = {
        {0, EV_S_CRTM_VERSION, crtm_version, sizeof(crtm_version)},
        {0, EV_EFI_PLATFORM_FIRMWARE_BLOB, fw_blob, sizeof(fw_blob)},
        {7, EV_EFI_VARIABLE_DRIVER_CONFIG, var_secureboot, sizeof(var_secureboot)},
        {0, EV_NO_ACTION, sp800, sizeof(sp800)},
        {0, EV_SEPARATOR, separator, 4},
        {1, EV_SEPARATOR, separator, 4},
        {4, EV_EFI_ACTION, "Calling EFI Application from Boot Option", 40},
        {7, EV_SEPARATOR, separator, 4},
        {4, EV_SEPARATOR, separator, 4},
        {5, EV_EFI_ACTION, "Exit Boot Services Invocation", 29},
        {8, EV_IPL, "grub_cmd: linux /vmlinuz root=/dev/sda1", 39},
        {9, EV_EVENT_TAG, tag, sizeof(tag)},
        {14, EV_ACTION, odd_text, sizeof(odd_text) - 1},
        {0xffffffffu, EV_NO_ACTION, "padding", 7},
        {23, EV_IPL, "debug pcr", 9},
};
#define N_MADE (sizeof(made_events) / sizeof(made_events[0]))

/* Banks with a non-empty selection in `tpm2_getcap pcrs`. */
static size_t allocated_banks(const char *getcap, alg_t *ret, size_t max)
{
        static const char *const names[] = {"sha1", "sha256", "sha384", "sha512"};
        size_t n = 0;

        for (size_t i = 0; i < 4; i++) {
                char key[32];
                const char *p;
                snprintf(key, sizeof(key), "- %s: [", names[i]);
                p = strstr(getcap, key);
                if (!p)
                        continue;
                p += strlen(key);
                while (*p == ' ')
                        p++;
                if (*p == ']')
                        continue;
                cr_assert_lt(n, max);
                ret[n].id = cscp_hash_alg_from_name(names[i]);
                ret[n].size = (uint16_t)cscp_hash_alg_size(ret[n].id);
                n++;
        }
        return n;
}

Test(tcg_swtpm, log_replays_to_tpm2_pcrread)
{
        char *dir = harness_keep(harness_tmpdir()), *out, *logpath = harness_path(dir, "binary_bios_measurements");
        harness_swtpm_t tpm;
        alg_t banks[4];
        size_t nbanks;
        uint32_t mask = 0;
        char sel[512] = "";
        run_t r;
        lbuf_t made_log = {0};
        alg_t made_algs[6];
        size_t made_nalgs;

        cr_assert_eq(harness_swtpm_start(dir, &tpm), 0, "swtpm did not start");
        setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);

        out = run_tool((char *[]){"tpm2_getcap", "pcrs", NULL});
        nbanks = allocated_banks(out, banks, 4);
        cr_assert_geq(nbanks, 1, "no PCR bank allocated: %s", out);
        free(out);

        /* Spec ID: the allocated banks plus SM3-256, which replay must skip by its size. */
        memcpy(made_algs, banks, nbanks * sizeof(alg_t));
        made_algs[nbanks] = (alg_t){ALG_SM3_256, 32};
        made_nalgs = nbanks + 1;
        put_specid(&made_log, made_algs, made_nalgs, "cscp");
        /* swtpm starts with locality 0: PCR 0 begins all zero. */
        put_event2(&made_log, made_algs, made_nalgs, 0, EV_NO_ACTION, locality0, sizeof(locality0));

        for (size_t i = 0; i < N_MADE; i++) {
                const mevent_t *e = &made_events[i];
                char arg[1024];
                size_t k;

                put_event2(&made_log, made_algs, made_nalgs, e->pcr, e->type, e->data, e->len);
                if (e->type == EV_NO_ACTION)
                        continue;
                mask |= 1u << e->pcr;
                k = (size_t)snprintf(arg, sizeof(arg), "%u:", e->pcr);
                for (size_t b = 0; b < nbanks; b++) {
                        uint8_t dg[64];
                        digest_of(banks[b].id, banks[b].size, e->data, e->len, dg);
                        k += (size_t)snprintf(arg + k, sizeof(arg) - k, "%s%s=", b ? "," : "",
                                              cscp_hash_alg_name(banks[b].id));
                        for (size_t x = 0; x < banks[b].size; x++)
                                k += (size_t)snprintf(arg + k, sizeof(arg) - k, "%02x", dg[x]);
                }
                cr_assert_lt(k, sizeof(arg));
                free(run_tool((char *[]){"tpm2_pcrextend", arg, NULL}));
        }
        write_file(logpath, made_log.p, made_log.len);
        write_seed("swtpm-made", made_log.p, made_log.len);

        /* The same selection for tpm2_pcrread: "sha1:0,1,4+sha256:0,1,4". */
        for (size_t b = 0; b < nbanks; b++) {
                size_t k = strlen(sel);
                bool first = true;
                snprintf(sel + k, sizeof(sel) - k, "%s%s:", b ? "+" : "", cscp_hash_alg_name(banks[b].id));
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                        if (mask & (1u << p)) {
                                k = strlen(sel);
                                snprintf(sel + k, sizeof(sel) - k, "%s%u", first ? "" : ",", p);
                                first = false;
                        }
        }
        out = run_tool((char *[]){"tpm2_pcrread", sel, NULL});

        r = replay_fd(logpath);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 2 + N_MADE);
        {
                char *mine = print_replay(&r.rp, mask);
                cr_assert_str_eq(mine, out, "replay:\n%s\ntpm2_pcrread %s:\n%s", mine, sel, out);
                free(mine);
        }
        free(out);
        free(made_log.p);
        harness_swtpm_stop(&tpm);
}

/* What describe says about the test-made log (no TPM needed: the writer is deterministic). */
Test(tcg_describe, lines_name_types_digests_and_text)
{
        lbuf_t b = {0};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        const alg_t algs[] = {{TPM2_ALG_SHA1, 20}, {TPM2_ALG_SHA256, 32}, {ALG_SM3_256, 32}};
        char *lines[2 + N_MADE] = {0};
        size_t n = 0;
        uint8_t d256[32];
        char hex[65];

        put_specid(&b, algs, 3, "cscp");
        put_event2(&b, algs, 3, 0, EV_NO_ACTION, locality0, sizeof(locality0));
        for (size_t i = 0; i < N_MADE; i++)
                put_event2(&b, algs, 3, made_events[i].pcr, made_events[i].type, made_events[i].data,
                           made_events[i].len);
        put_event2(&b, algs, 3, 3, 0x1234, "x", 1);
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), 0);
        while (cscp_eventlog_next(l, &ev) > 0) {
                char *s;
                cr_assert_eq(cscp_event_describe(l, ev, &s), 0);
                cr_assert(clean_utf8(s), "%s", s);
                cr_log_info("%s", s);
                if (n < 2 + N_MADE)
                        lines[n] = s;
                else
                        free(s);
                n++;
        }
        cr_assert_eq(n, 3 + N_MADE, "%s", cscp_eventlog_error(l));
        cr_assert_not_null(strstr(lines[0], "#0 PCR 0 EV_NO_ACTION"), "%s", lines[0]);
        cr_assert_not_null(strstr(lines[0], "sm3_256 (32) [not replayed]"), "%s", lines[0]);
        cr_assert_not_null(strstr(lines[0], "(not extended)"), "%s", lines[0]);
        cr_assert_not_null(strstr(lines[1], "StartupLocality 0"), "%s", lines[1]);
        cr_assert_not_null(strstr(lines[2], "EV_S_CRTM_VERSION"), "%s", lines[2]);
        cr_assert_not_null(strstr(lines[2], "\"1.2\""), "%s", lines[2]);
        cr_assert_not_null(strstr(lines[2], "skipped: sm3_256"), "%s", lines[2]);
        digest_of(TPM2_ALG_SHA256, 32, crtm_version, sizeof(crtm_version), d256);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", d256[i]);
        cr_assert_not_null(strstr(lines[2], hex), "%s lacks the sha256 digest %s", lines[2], hex);
        cr_assert_not_null(strstr(lines[4], "8be4df61-93ca-11d2-aa0d-00e098032b8c SecureBoot = 01"), "%s", lines[4]);
        cr_assert_not_null(strstr(lines[5], "SP800-155 Event3"), "%s", lines[5]);
        cr_assert_not_null(strstr(lines[8], "\"Calling EFI Application from Boot Option\""), "%s", lines[8]);
        cr_assert_not_null(strstr(lines[13], "tag 0x8f3b22ec (Linux initrd)"), "%s", lines[13]);
        /* Control characters and invalid UTF-8 escaped, valid UTF-8 kept. */
        cr_assert_not_null(strstr(lines[14], "tab\\there \\x01 bell\\x7f bad\\xff\\xfe utf8 \xc3\xa9 end"), "%s",
                           lines[14]);
        cr_assert_not_null(strstr(lines[15], "PCR 4294967295 EV_NO_ACTION"), "%s", lines[15]);
        cscp_eventlog_free(l);
        for (size_t i = 0; i < 2 + N_MADE; i++)
                free(lines[i]);
        free(b.p);
}

Test(tcg_describe, unknown_type_is_hex)
{
        lbuf_t b = {0};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        char *s;

        put_specid(&b, two_banks, 2, NULL);
        put_event2(&b, two_banks, 2, 3, 0x1234, "x", 1);
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_str_eq(ev->kind, "0x00001234");
        cr_assert_eq(cscp_event_describe(l, ev, &s), 0);
        cr_assert_not_null(strstr(s, "#1 PCR 3 0x00001234 sha256:"), "%s", s);
        free(s);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 0);
        cscp_eventlog_free(l);
        free(b.p);
}

/* ------------------------------------------------------------ event fields */

Test(tcg_parse, fields_locality_and_no_action)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        run_t r;
        uint8_t v[32];
        size_t vl = 0;

        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_eq(ev->index, 0);
        cr_assert_eq(ev->offset, 0);
        cr_assert_eq(ev->length, off[1]);
        cr_assert_eq(ev->type, EV_NO_ACTION);
        cr_assert_not(ev->extend);
        cr_assert_eq(ev->startup_locality, -1);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert_eq(ev->offset, off[1]);
        cr_assert_not(ev->extend);
        cr_assert_eq(ev->startup_locality, 3);
        cr_assert_eq(ev->n_digests, 2);
        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
        cr_assert(ev->extend);
        cr_assert_str_eq(ev->kind, "EV_S_CRTM_VERSION");
        cr_assert_eq(ev->data_len, 3);
        cr_assert_eq(memcmp(ev->data, "1.0", 3), 0);
        cr_assert_eq(ev->digests[0].alg, TPM2_ALG_SHA1);
        cr_assert_eq(ev->digests[1].alg, TPM2_ALG_SHA256);
        cscp_eventlog_free(l);

        /* PCR 0 starts at 00..03 because of the StartupLocality event. */
        r = replay_mem(b.p, b.len, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 5);
        {
                uint8_t init[32] = {0}, buf[64], want[32];
                unsigned dl = 0;
                init[31] = 3;
                memcpy(buf, init, 32);
                digest_of(TPM2_ALG_SHA256, 32, "1.0", 3, buf + 32);
                cr_assert_eq(EVP_Digest(buf, 64, want, &dl, EVP_sha256(), NULL), 1);
                cr_assert_eq(cscp_replay_pcr(&r.rp, TPM2_ALG_SHA256, 0, v, &vl), 0);
                cr_assert_eq(memcmp(v, want, 32), 0);
        }
        free(b.p);
}

Test(tcg_parse, ff_padding_ends_the_log)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        size_t end = b.len;
        uint8_t ff[64];
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        int n = 0, r;

        memset(ff, 0xff, sizeof(ff));
        put(&b, ff, sizeof(ff));
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        while ((r = cscp_eventlog_next(l, &ev)) > 0)
                n++;
        cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
        cr_assert_eq(n, 5);
        cr_assert_eq(cscp_eventlog_offset(l), end);
        cscp_eventlog_free(l);
        free(b.p);
}

Test(tcg_parse, sha1_log_and_empty_input)
{
        lbuf_t b = {0};
        uint8_t d[20];
        run_t r;

        digest_of(TPM2_ALG_SHA1, 20, "abc", 3, d);
        put_sha1_event(&b, 0, EV_S_CRTM_VERSION, d, "abc", 3);
        put_sha1_event(&b, 0, EV_NO_ACTION, NULL, "x", 1);
        put_sha1_event(&b, 7, EV_SEPARATOR, d, separator, 4);
        r = replay_mem(b.p, b.len, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        cr_assert_eq(r.count, 3);
        cr_assert(r.rp.bank_present[0]);
        cr_assert_not(r.rp.bank_present[1]);
        cr_assert_eq(r.rp.extended[0], (1u << 0) | (1u << 7));

        r = replay_mem((const uint8_t *)"", 0, NULL);
        cr_assert_eq(r.r, 0);
        cr_assert_eq(r.count, 0);
        free(b.p);
}

/* ---------------------------------------------------------- malformed input */

/* Parses buf; the result must be `code` with an error naming event `event` at byte `offset`. */
static void expect_error(const uint8_t *buf, size_t len, const cscp_eventlog_opts_t *opts, int code,
                         unsigned long long event, unsigned long long offset, const char *words)
{
        char want[64];
        run_t r = {0};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;

        cscp_replay_init(&r.rp);
        cr_assert_eq(cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_TCG, opts, NULL, &l), 0);
        run_log(l, &r, UINT64_MAX);
        cr_assert_eq(r.r, code, "expected %s, got %s (%d): %s", cscp_err_name(code), cscp_err_name(r.r), r.r, r.err);
        snprintf(want, sizeof(want), "event %llu at byte %llu: ", event, offset);
        cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "error \"%s\" does not start with \"%s\"", r.err, want);
        if (words)
                cr_assert_not_null(strstr(r.err, words), "error \"%s\" lacks \"%s\"", r.err, words);
        cr_assert_eq(r.count, event, "%llu events before the error", (unsigned long long)r.count);
        /* A failed log stays failed. */
        cr_assert_lt(cscp_eventlog_next(l, &ev), 0);
        cscp_eventlog_free(l);
}

Test(tcg_malformed, truncated_everywhere)
{
        size_t off[5];
        lbuf_t b = small_log(off);

        /* Every cut either ends on a record boundary (a shorter, valid log) or is a truncated record. */
        for (size_t cut = 1; cut < b.len; cut++) {
                uint8_t *copy = malloc(cut);
                size_t ev = 0;
                cr_assert_not_null(copy);
                memcpy(copy, b.p, cut);
                while (ev + 1 < 5 && off[ev + 1] <= cut)
                        ev++;
                if (off[ev] == cut) {
                        run_t r = replay_mem(copy, cut, NULL);
                        cr_assert_eq(r.r, 0, "cut %zu: %s", cut, r.err);
                        cr_assert_eq(r.count, ev);
                } else {
                        char at[32];
                        snprintf(at, sizeof(at), "event %zu at byte ", ev);
                        run_t r = replay_mem(copy, cut, NULL);
                        cr_assert_eq(r.r, CSCP_E_PROTO, "cut %zu: %d %s", cut, r.r, r.err);
                        cr_assert_eq(strncmp(r.err, at, strlen(at)), 0, "cut %zu: %s", cut, r.err);
                        cr_assert_not_null(strstr(r.err, "truncated"), "cut %zu: %s", cut, r.err);
                }
                free(copy);
        }
        /* One spelled out: event 3's data cut short; the error names the eventSize field. */
        expect_error(b.p, off[4] - 5, NULL, CSCP_E_PROTO, 3, off[3] + 12 + 2 + 20 + 2 + 32, "truncated record");
        free(b.p);
}

Test(tcg_malformed, length_past_the_end)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        size_t size_at = off[4] + 12 + 22 + 34; /* eventSize of the last record */

        set_le(b.p + size_at, 1000, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 4, size_at, "1072 bytes long, only 76 left");
        /* The Spec ID header's eventDataSize past the end. */
        set_le(b.p + 28, 100000, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 28, "truncated record");
        free(b.p);
}

Test(tcg_malformed, absurd_digest_count)
{
        size_t off[5];
        lbuf_t b = small_log(off);

        set_le(b.p + off[3] + 8, 3, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 3, off[3] + 8, "digestCount 3 exceeds the 2 algorithm(s)");
        set_le(b.p + off[3] + 8, 0xffffffffu, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 3, off[3] + 8, "digestCount 4294967295");
        free(b.p);
}

Test(tcg_malformed, algorithm_not_in_spec_id)
{
        size_t off[5];
        lbuf_t b = small_log(off);

        /* Second digest of event 2 claims sha384, which the Spec ID event does not list. */
        set_le(b.p + off[2] + 12 + 22, TPM2_ALG_SHA384, 2);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 2, off[2] + 12 + 22, "sha384 is not in the Spec ID event");
        /* Two sha1 digests. */
        set_le(b.p + off[2] + 12 + 22, TPM2_ALG_SHA1, 2);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 2, off[2] + 12 + 22, "a second sha1 digest");
        free(b.p);
}

Test(tcg_malformed, digest_size_disagrees_with_spec_id)
{
        lbuf_t b = {0};
        const alg_t bad[] = {{TPM2_ALG_SHA1, 20}, {TPM2_ALG_SHA256, 20}};
        const alg_t dup[] = {{TPM2_ALG_SHA256, 32}, {TPM2_ALG_SHA256, 32}};
        const alg_t zero[] = {{0x0099, 0}};

        /* Spec ID says sha256 digests are 20 bytes: the table entry is refused. */
        put_specid(&b, bad, 2, NULL);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 28 + 4, "digest size 20 for sha256 disagrees");
        b.len = 0;
        put_specid(&b, dup, 2, NULL);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 28 + 4, "listed twice");
        b.len = 0;
        put_specid(&b, zero, 1, NULL);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 28, "digest size 0");

        /* An event whose sha256 digest is only 20 bytes: what follows is misread, and refused. */
        b.len = 0;
        put_specid(&b, two_banks, 2, NULL);
        {
                size_t at = put_event2(&b, bad, 2, 4, EV_EFI_ACTION, "abc", 3);
                expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 1, at + 12 + 22 + 34, "truncated record");
        }
        free(b.p);
}

Test(tcg_malformed, spec_id_tables)
{
        lbuf_t b = {0};
        alg_t many[33];

        for (int i = 0; i < 33; i++)
                many[i] = (alg_t){(uint16_t)(0x100 + i), 32};
        put_specid(&b, many, 33, NULL);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 24, "33 algorithms");
        b.len = 0;
        put_specid(&b, two_banks, 0, NULL);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 24, "no algorithms");
        /* vendorInfoSize past the end of the event. */
        b.len = 0;
        put_specid(&b, two_banks, 2, "abcd");
        b.p[32 + 28 + 8] = 200;
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32 + 28 + 8, "vendorInfoSize 200");
        /* eventDataSize that leaves out vendorInfo[] (tpm2-tools' quirk): read on, but only if the bytes are there. */
        b.len = 0;
        put_specid(&b, two_banks, 2, "abcd");
        set_le(b.p + 28, 28 + 8 + 1, 4);
        {
                run_t r = replay_mem(b.p, b.len, NULL);
                cr_assert_eq(r.r, 0, "%s", r.err);
                cr_assert_eq(r.count, 1);
        }
        expect_error(b.p, b.len - 1, NULL, CSCP_E_PROTO, 0, 32 + 28 + 8, "vendorInfo");
        /* numberOfAlgorithms larger than the event holds. */
        b.len = 0;
        put_specid(&b, two_banks, 2, NULL);
        set_le(b.p + 32 + 24, 20, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32, "too short for 20 algorithms");
        /* Shorter than the fixed part. */
        b.len = 0;
        put_sha1_event(&b, 0, EV_NO_ACTION, NULL, "Spec ID Event03\0\0\0", 18);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 0, 32, "shorter than its fixed part");
        free(b.p);
}

Test(tcg_malformed, event_size_over_max_record)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        cscp_eventlog_opts_t opts = {.max_record = 200};
        size_t size_at = off[3] + 12 + 22 + 34;
        lbuf_t big = {0};
        uint8_t *blob = calloc(1, 300);

        cr_assert_not_null(blob);
        /* A limit the log respects. */
        cr_assert_eq(replay_mem(b.p, b.len, &opts).r, 0);
        /* eventSize 0xFFFFFFFF with the default limit (16 MiB): refused before any allocation. */
        set_le(b.p + size_at, 0xffffffffu, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_TOO_BIG, 3, size_at, "eventSize 4294967295 exceeds the record limit");
        /* A real 300-byte event under a 200-byte limit. */
        put_specid(&big, two_banks, 2, NULL);
        {
                size_t at = put_event2(&big, two_banks, 2, 4, EV_EFI_ACTION, blob, 300);
                expect_error(big.p, big.len, &opts, CSCP_E_TOO_BIG, 1, at + 12 + 22 + 34, "eventSize 300 exceeds");
        }
        /* The same in a SHA-1 log. */
        big.len = 0;
        put_sha1_event(&big, 0, EV_POST_CODE, NULL, blob, 300);
        expect_error(big.p, big.len, &opts, CSCP_E_TOO_BIG, 0, 28, "eventDataSize 300 exceeds");
        free(blob);
        free(big.p);
        free(b.p);
}

Test(tcg_malformed, pcr_index_out_of_range)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        run_t r;

        /* EV_NO_ACTION may name any PCR: it is never extended. */
        set_le(b.p + off[1], 0xffffffffu, 4);
        r = replay_mem(b.p, b.len, NULL);
        cr_assert_eq(r.r, 0, "%s", r.err);
        /* A measured event in PCR 24 cannot be replayed: refused. */
        set_le(b.p + off[3], 24, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 3, off[3], "PCR index 24 out of range");
        set_le(b.p + off[3], 0xffffffffu, 4);
        expect_error(b.p, b.len, NULL, CSCP_E_PROTO, 3, off[3], "PCR index 4294967295");
        free(b.p);
}

Test(tcg_malformed, fd_input_errors_match_memory)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        char *dir = harness_keep(harness_tmpdir()), *path = harness_path(dir, "cut.bin");
        run_t r = {0};
        cscp_eventlog_t *l = NULL;
        int fd;

        write_file(path, b.p, off[4] - 5);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cscp_replay_init(&r.rp);
        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        run_log(l, &r, UINT64_MAX);
        cr_assert_eq(r.r, CSCP_E_PROTO);
        cr_assert_eq(r.count, 3);
        cr_assert_not_null(strstr(r.err, "event 3 at byte "), "%s", r.err);
        cscp_eventlog_free(l);
        close(fd);
        free(b.p);
}

/* -------------------------------------------------------------- checkpoints */

/* Replays n events, checkpoints, saves and loads, resumes (memory and fd), and compares with one pass. */
static void check_resume(const uint8_t *buf, size_t len, const char *path, uint64_t n)
{
        run_t whole = replay_mem(buf, len, NULL), first = {0}, rest = {0};
        cscp_eventlog_t *l = NULL;
        cscp_replay_t loaded;
        uint8_t *saved;
        size_t saved_len;

        cr_assert_eq(whole.r, 0, "%s", whole.err);
        cscp_replay_init(&first.rp);
        cr_assert_eq(cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        run_log(l, &first, n);
        cr_assert_eq(cscp_replay_checkpoint(&first.rp, l), 0);
        cscp_eventlog_free(l);
        cr_assert_eq(cscp_replay_save(&first.rp, &saved, &saved_len), 0);
        cr_assert_eq(cscp_replay_load(saved, saved_len, &loaded), 0);
        free(saved);
        cr_assert_eq(loaded.next_index, first.count);

        rest.rp = loaded;
        cr_assert_eq(cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_AUTO, NULL, &loaded, &l), 0);
        run_log(l, &rest, UINT64_MAX);
        cr_assert_eq(rest.r, 0, "resume after %llu: %s", (unsigned long long)n, rest.err);
        cr_assert_eq(first.count + rest.count, whole.count);
        cscp_eventlog_free(l);
        cr_assert_eq(memcmp(rest.rp.pcr, whole.rp.pcr, sizeof(whole.rp.pcr)), 0, "resume after %llu differs",
                     (unsigned long long)n);
        cr_assert_eq(memcmp(rest.rp.extended, whole.rp.extended, sizeof(whole.rp.extended)), 0);

        if (path) {
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                run_t again = {0};
                cr_assert_geq(fd, 0);
                again.rp = loaded;
                cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_TCG, NULL, &loaded, &l), 0);
                run_log(l, &again, UINT64_MAX);
                cr_assert_eq(again.r, 0, "%s", again.err);
                cr_assert_eq(memcmp(again.rp.pcr, whole.rp.pcr, sizeof(whole.rp.pcr)), 0);
                cscp_eventlog_free(l);
                close(fd);
        }
}

Test(tcg_checkpoint, resume_mid_log)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        char *dir = harness_keep(harness_tmpdir()), *path = harness_path(dir, "small.bin");

        write_file(path, b.p, b.len);
        for (uint64_t n = 0; n <= 5; n++)
                check_resume(b.p, b.len, path, n);
        free(b.p);
}

Test(tcg_checkpoint, resume_fixtures_halfway)
{
        const char *fx = harness_fixtures_dir();
        const char *const subs[] = {"tpm2-tools", "go-attestation", "tpm2-tss"};
        int n = 0;

        if (!fx)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES)");
        for (size_t s = 0; s < 3; s++) {
                char dir[4096];
                struct dirent *de;
                DIR *d;

                cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/eventlog/%s", fx, subs[s]), sizeof(dir));
                d = opendir(dir);
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        char path[4096], jpath[4200];
                        struct stat st;
                        uint8_t *buf;
                        size_t len;
                        run_t whole;

                        cr_assert_lt((size_t)snprintf(jpath, sizeof(jpath), "%s/%s.expected.json", dir, de->d_name),
                                     sizeof(jpath));
                        if (stat(jpath, &st) != 0)
                                continue;
                        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name), sizeof(path));
                        buf = read_all(path, &len);
                        whole = replay_mem(buf, len, NULL);
                        check_resume(buf, len, path, whole.count / 2);
                        check_resume(buf, len, NULL, 1);
                        free(buf);
                        n++;
                }
                closedir(d);
        }
        if (n == 0)
                cr_skip_test("no TCG fixtures found");
}

Test(tcg_checkpoint, corrupt_parser_state_refused)
{
        size_t off[5];
        lbuf_t b = small_log(off);
        cscp_eventlog_t *l = NULL;
        run_t first = {0};
        cscp_replay_t bad;

        cscp_replay_init(&first.rp);
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, NULL, &l), 0);
        run_log(l, &first, 2);
        cr_assert_eq(cscp_replay_checkpoint(&first.rp, l), 0);
        cscp_eventlog_free(l);
        cr_assert_eq(first.rp.parser_state_len, 3 + 2 * 4);

        bad = first.rp;
        bad.parser_state[0] = 9; /* version */
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, &bad, &l), CSCP_E_STATE);
        bad = first.rp;
        bad.parser_state_len--; /* table cut */
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, &bad, &l), CSCP_E_STATE);
        bad = first.rp;
        bad.parser_state[3 + 4 + 2] = 20; /* sha256 with 20-byte digests */
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, &bad, &l), CSCP_E_STATE);
        bad = first.rp;
        bad.parser_state[1] = 0x02; /* crypto-agile but header not read */
        cr_assert_eq(cscp_eventlog_open_mem(b.p, b.len, CSCP_EVENTLOG_TCG, NULL, &bad, &l), CSCP_E_STATE);
        free(b.p);
}

/* ---------------------------------------------------------------- fuzz seeds */

Test(tcg_seeds, write_fuzz_corpus)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];
        size_t off[5];
        lbuf_t b = small_log(off), s1 = {0}, all = {0};
        const alg_t algs[] = {{TPM2_ALG_SHA1, 20},
                              {TPM2_ALG_SHA256, 32},
                              {TPM2_ALG_SHA384, 48},
                              {TPM2_ALG_SHA512, 64},
                              {ALG_SM3_256, 32}};
        uint8_t d[20];

        if (!build || !*build)
                cr_skip_test("CSCP_BUILD_DIR not set (run through meson test)");
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds/tcg", build), sizeof(dir));
        mkdir_p(dir);

        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/small-agile", dir), sizeof(path));
        write_file(path, b.p, b.len);
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/small-agile-cut", dir), sizeof(path));
        write_file(path, b.p, off[4] - 5);

        digest_of(TPM2_ALG_SHA1, 20, "abc", 3, d);
        put_sha1_event(&s1, 0, EV_S_CRTM_VERSION, d, "abc", 3);
        put_sha1_event(&s1, 0, EV_NO_ACTION, NULL, locality0, sizeof(locality0));
        put_sha1_event(&s1, 7, EV_SEPARATOR, d, separator, 4);
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/sha1-log", dir), sizeof(path));
        write_file(path, s1.p, s1.len);

        put_specid(&all, algs, 5, "vendor");
        put_event2(&all, algs, 5, 0, EV_NO_ACTION, locality0, sizeof(locality0));
        for (size_t i = 0; i < N_MADE; i++)
                put_event2(&all, algs, 5, made_events[i].pcr, made_events[i].type, made_events[i].data,
                           made_events[i].len);
        cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/all-banks-sm3", dir), sizeof(path));
        write_file(path, all.p, all.len);
        free(b.p);
        free(s1.p);
        free(all.p);
}
