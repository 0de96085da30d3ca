/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux IMA measurement lists (lib/eventlog/ima.c): conformance with the
 * public fixtures (../shared/fixtures/ima, via CSCP_FIXTURES), lists written
 * here covering every template (checked against an independent replay done
 * in this file and against `evmctl ima_measurement`), every malformed case,
 * checkpoint/resume, and the seeds of the IMA fuzzer
 * ($CSCP_BUILD_DIR/fuzz-seeds/ima/).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "error.h"
#include "eventlog.h"
#include "harness.h"
#include "pcr.h"

#define LE 1
#define BE 2

static const uint16_t banks[4] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512};

/* ------------------------------------------------------------------ helpers */

static uint8_t *read_all(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
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
        return harness_keep(buf);
}

static void write_file(const char *path, const void *p, size_t n)
{
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        if (n)
                cr_assert_eq(fwrite(p, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
}

static void mkdir_p(const char *path)
{
        char tmp[4096];
        size_t n = strlen(path);

        cr_assert_lt(n, sizeof(tmp));
        memcpy(tmp, path, n + 1);
        for (size_t i = 1; i <= n; i++) {
                if (tmp[i] != '/' && tmp[i] != '\0')
                        continue;
                char c = tmp[i];
                tmp[i] = '\0';
                cr_assert(mkdir(tmp, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", tmp, strerror(errno));
                tmp[i] = c;
        }
}

static const char *hex(const uint8_t *p, size_t n)
{
        char *s = malloc(2 * n + 1);
        cr_assert_not_null(s);
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", p[i]);
        s[2 * n] = '\0';
        return harness_keep(s);
}

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
        size_t n = strlen(s);
        cr_assert(n % 2 == 0 && n / 2 <= max, "bad hex %s", s);
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t)v;
        }
        return n / 2;
}

static const char *bank_name(uint16_t alg)
{
        return cscp_hash_alg_name(alg);
}

/* One temporary directory per test process (removed at exit by the harness). */
static const char *tmpdir(void)
{
        static char *dir;
        if (!dir)
                dir = harness_keep(harness_tmpdir());
        return dir;
}

/* Independent hashing (the test's own OpenSSL calls). */
static size_t H(uint16_t alg, const void *p, size_t n, uint8_t *out)
{
        unsigned len = 0;
        const EVP_MD *md = alg == TPM2_ALG_SHA1     ? EVP_sha1()
                           : alg == TPM2_ALG_SHA256 ? EVP_sha256()
                           : alg == TPM2_ALG_SHA384 ? EVP_sha384()
                                                    : EVP_sha512();
        cr_assert_eq(EVP_Digest(p, n, out, &len, md, NULL), 1);
        return len;
}

/* A growing byte buffer. */
typedef struct buf {
        uint8_t *p;
        size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = realloc(b->p, b->cap);
                cr_assert_not_null(b->p);
        }
        if (n)
                memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void put_str(buf_t *b, const char *s)
{
        put(b, s, strlen(s));
}

static void put32(buf_t *b, uint32_t v, int endian)
{
        uint8_t w[4];
        for (int i = 0; i < 4; i++)
                w[endian == BE ? 3 - i : i] = (uint8_t)(v >> (8 * i));
        put(b, w, 4);
}

/* ------------------------------------------------------- list writer */

/* One template field: its stored bytes and how the ascii list prints it. */
typedef struct tfield {
        uint8_t bin[600];
        size_t len;
        char ascii[1300];
} tfield_t;

static tfield_t f_dng(const char *prefix, uint16_t alg, const char *what)
{
        tfield_t f = {0};
        uint8_t d[64];
        size_t n = H(alg, what, strlen(what), d);

        if (strcmp(what, "zero") == 0)
                memset(d, 0, n);
        f.len = strlen(prefix) + 1 + n;
        memcpy(f.bin, prefix, strlen(prefix));
        memcpy(f.bin + strlen(prefix) + 1, d, n);
        snprintf(f.ascii, sizeof(f.ascii), "%s%s", prefix, hex(d, n));
        return f;
}

static tfield_t f_str(const char *s)
{
        tfield_t f = {0};
        f.len = strlen(s) + 1;
        memcpy(f.bin, s, f.len);
        snprintf(f.ascii, sizeof(f.ascii), "%s", s);
        return f;
}

static tfield_t f_hex(const void *p, size_t n)
{
        tfield_t f = {0};
        f.len = n;
        memcpy(f.bin, p, n);
        snprintf(f.ascii, sizeof(f.ascii), "%s", hex(p, n));
        return f;
}

static tfield_t f_uint(uint32_t v, size_t width, int endian)
{
        tfield_t f = {0};
        f.len = width;
        for (size_t i = 0; i < width; i++)
                f.bin[endian == BE ? width - 1 - i : i] = (uint8_t)(v >> (8 * i));
        snprintf(f.ascii, sizeof(f.ascii), "%u", v);
        return f;
}

static const tfield_t f_empty = {0};

typedef struct entry {
        uint32_t pcr;
        const char *tpl;
        bool violation;
        size_t n;
        tfield_t f[9];
        const char *text; /* expected ev->text */
} entry_t;

/* The data the template hash covers (the `ima` template: d || name padded to 256). */
static void hashed_data(const entry_t *e, int endian, buf_t *out)
{
        out->len = 0;
        if (strcmp(e->tpl, "ima") == 0) {
                uint8_t name[256] = {0};
                put(out, e->f[0].bin, 20);
                memcpy(name, e->f[1].bin, e->f[1].len - 1);
                put(out, name, sizeof(name));
                return;
        }
        for (size_t i = 0; i < e->n; i++) {
                put32(out, (uint32_t)e->f[i].len, endian);
                put(out, e->f[i].bin, e->f[i].len);
        }
}

/* Appends e to a binary list (template hash of thash_alg) and to its ascii form. */
static void write_entry(const entry_t *e, int endian, uint16_t thash_alg, buf_t *bin, buf_t *ascii)
{
        buf_t data = {0};
        uint8_t th[64];
        size_t tl;
        char head[16];

        hashed_data(e, endian, &data);
        tl = H(thash_alg, data.p, data.len, th);
        if (e->violation)
                memset(th, 0, tl);
        put32(bin, e->pcr, endian);
        put(bin, th, tl);
        put32(bin, (uint32_t)strlen(e->tpl), endian);
        put_str(bin, e->tpl);
        if (strcmp(e->tpl, "ima") == 0) {
                put(bin, e->f[0].bin, 20);
                put32(bin, (uint32_t)e->f[1].len - 1, endian);
                put(bin, e->f[1].bin, e->f[1].len - 1);
        } else {
                put32(bin, (uint32_t)data.len, endian);
                put(bin, data.p, data.len);
        }
        if (ascii) {
                snprintf(head, sizeof(head), "%2u ", e->pcr);
                put_str(ascii, head);
                put_str(ascii, hex(th, tl));
                put_str(ascii, " ");
                put_str(ascii, e->tpl);
                for (size_t i = 0; i < e->n; i++) {
                        put_str(ascii, " ");
                        put_str(ascii, e->f[i].ascii);
                }
                put_str(ascii, "\n");
        }
        free(data.p);
}

/* Expected PCR values computed here: per bank H_bank(data), violations all 0xFF. */
typedef struct expect {
        uint8_t pcr[4][24][64];
        uint32_t used;
} expect_t;

static void expect_extend(expect_t *x, const entry_t *e, int endian)
{
        buf_t data = {0};
        hashed_data(e, endian, &data);
        for (int b = 0; b < 4; b++) {
                uint8_t d[64], cat[128];
                size_t n = cscp_hash_alg_size(banks[b]);
                H(banks[b], data.p, data.len, d);
                if (e->violation)
                        memset(d, 0xff, n);
                memcpy(cat, x->pcr[b][e->pcr], n);
                memcpy(cat + n, d, n);
                H(banks[b], cat, 2 * n, x->pcr[b][e->pcr]);
        }
        x->used |= 1u << e->pcr;
        free(data.p);
}

/* The entries: every template, violations, boot_aggregate, odd names. */
static size_t make_entries(entry_t *out, int endian, bool with_ima)
{
        static const uint8_t sig[] = {0x03, 0x02, 0x04, 0x6e, 0x6c, 0x10, 0x46, 0x01, 0x00, 0x06, 0xaa, 0xbb};
        static const uint8_t modsig[] = {0x30, 0x82, 0x01, 0x89, 0x06, 0x09, 0x2a, 0x86, 0x48};
        static const uint8_t certs[] = {0x30, 0x82, 0x05, 0x28, 0x30, 0x82, 0x03, 0x10, 0xa0, 0x03};
        static const char cmdline[] = "BOOT_IMAGE=/vmlinuz-6.1 root=/dev/sda1 ro ima_template=ima-cgpath";
        static const char *dep = "/usr/bin/containerd-shim-runc-v2:/usr/lib/systemd/systemd:swapper/0";
        size_t n = 0;

        out[n++] = (entry_t){10,
                             "ima-ng",
                             false,
                             2,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "aggregate"), f_str("boot_aggregate")},
                             "boot_aggregate"};
        if (with_ima) {
                tfield_t d = f_hex("0123456789abcdefghij", 20);
                out[n++] = (entry_t){10, "ima", false, 2, {d, f_str("/init")}, "/init"};
                out[n++] = (entry_t){
                        10,
                        "ima",
                        true,
                        2,
                        {f_hex("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20), f_str("/var/log/ima-violation")},
                        "/var/log/ima-violation"};
        }
        out[n++] = (entry_t){10,
                             "ima-ng",
                             false,
                             2,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "bash"), f_str("/usr/bin/bash")},
                             "/usr/bin/bash"};
        out[n++] = (entry_t){10,
                             "ima-ng",
                             false,
                             2,
                             {f_dng("sha1:", TPM2_ALG_SHA1, "old"), f_str("/tmp/my_file_with_spaces")},
                             "/tmp/my_file_with_spaces"};
        out[n++] = (entry_t){10,
                             "ima-ng",
                             false,
                             2,
                             {f_dng("sha512:", TPM2_ALG_SHA512, "utf8"), f_str("/tmp/caf\xc3\xa9")},
                             "/tmp/caf\xc3\xa9"};
        out[n++] = (entry_t){10,
                             "ima-ngv2",
                             false,
                             2,
                             {f_dng("ima:sha256:", TPM2_ALG_SHA256, "libc"), f_str("/usr/lib/libc.so.6")},
                             "/usr/lib/libc.so.6"};
        out[n++] = (entry_t){10,
                             "ima-sig",
                             false,
                             3,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "systemd"), f_str("/usr/lib/systemd/systemd"),
                              f_hex(sig, sizeof(sig))},
                             "/usr/lib/systemd/systemd"};
        out[n++] = (entry_t){10,
                             "ima-sig",
                             false,
                             3,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "unsigned"), f_str("/usr/bin/unsigned"), f_empty},
                             "/usr/bin/unsigned"};
        out[n++] = (entry_t){10,
                             "ima-ng",
                             true,
                             2,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "zero"), f_str("/var/log/messages")},
                             "/var/log/messages"};
        out[n++] = (entry_t){10,
                             "ima-sigv2",
                             false,
                             3,
                             {f_dng("verity:sha256:", TPM2_ALG_SHA256, "verity"), f_str("/usr/bin/veritied"),
                              f_hex(sig, sizeof(sig))},
                             "/usr/bin/veritied"};
        out[n++] = (entry_t){
                10,
                "ima-buf",
                false,
                3,
                {f_dng("sha256:", TPM2_ALG_SHA256, cmdline), f_str("kexec-cmdline"), f_hex(cmdline, strlen(cmdline))},
                "kexec-cmdline: BOOT_IMAGE=/vmlinuz-6.1 root=/dev/sda1 ro ima_template=ima-cgpath"};
        out[n++] = (entry_t){10,
                             "ima-buf",
                             false,
                             3,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "certs"), f_str(".builtin_trusted_keys"),
                              f_hex(certs, sizeof(certs))},
                             ".builtin_trusted_keys (10-byte buffer)"};
        out[n++] = (entry_t){10,
                             "ima-modsig",
                             false,
                             5,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "module"), f_str("/usr/lib/modules/x.ko"),
                              f_hex(sig, sizeof(sig)), f_dng("sha256:", TPM2_ALG_SHA256, "nosig"),
                              f_hex(modsig, sizeof(modsig))},
                             "/usr/lib/modules/x.ko"};
        out[n++] = (entry_t){
                10,
                "ima-modsig",
                false,
                5,
                {f_dng("sha256:", TPM2_ALG_SHA256, "plain"), f_str("/usr/bin/plain"), f_empty, f_empty, f_empty},
                "/usr/bin/plain"};
        out[n++] = (entry_t){10,
                             "ima-cgpath",
                             false,
                             4,
                             {f_str(dep), f_str("/kubepods/besteffort/pod1234/cri-containerd-abcd.scope"),
                              f_dng("sha384:", TPM2_ALG_SHA384, "server"), f_str("/app/server")},
                             "/app/server"};
        out[n++] = (entry_t){10,
                             "ima-dep-cgn",
                             false,
                             4,
                             {f_str(dep), f_str("cri-containerd-abcd.scope"), f_dng("sha512:", TPM2_ALG_SHA512, "sh"),
                              f_str("/bin/sh")},
                             "/bin/sh"};
        out[n++] = (entry_t){10,
                             "ima-cgpath",
                             true,
                             4,
                             {f_str(dep), f_str("-"), f_dng("sha384:", TPM2_ALG_SHA384, "zero"), f_str("/data/db")},
                             "/data/db"};
        out[n++] = (entry_t){11,
                             "ima-sig",
                             false,
                             3,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "pcr11"), f_str("/etc/pcr11.conf"), f_empty},
                             "/etc/pcr11.conf"};
        out[n++] = (entry_t){10,
                             "evm-sig",
                             false,
                             9,
                             {f_dng("sha256:", TPM2_ALG_SHA256, "evm"), f_str("/etc/evm"), f_hex(sig, sizeof(sig)),
                              f_hex("security.ima", 12), f_hex("\x00\x0c", 2), f_hex(sig, 6), f_uint(0, 4, endian),
                              f_uint(1000, 4, endian), f_uint(0100644, 2, endian)},
                             "/etc/evm"};
        out[n++] = (entry_t){10,
                             "d-ng|n-ng|sig",
                             false,
                             3,
                             {f_dng("sha1:", TPM2_ALG_SHA1, "custom"), f_str("/custom/fmt"), f_hex(sig, 4)},
                             "/custom/fmt"};
        /* The ascii form prints xattrnames as a string. */
        snprintf(out[n - 2].f[3].ascii, sizeof(out[n - 2].f[3].ascii), "security.ima");
        return n;
}

/* Builds a list; returns the expected replay. */
static void build_list(int endian, uint16_t thash_alg, bool with_ima, buf_t *bin, buf_t *ascii, expect_t *x,
                       entry_t *ents, size_t *n_ents)
{
        size_t n = make_entries(ents, endian, with_ima);

        memset(x, 0, sizeof(*x));
        for (size_t i = 0; i < n; i++) {
                write_entry(&ents[i], endian, thash_alg, bin, ascii);
                expect_extend(x, &ents[i], endian);
        }
        *n_ents = n;
}

/* Replays a whole log; returns the code of the last next() (0 at the end). */
static int replay_log(cscp_eventlog_t *l, cscp_replay_t *rp, size_t *ret_n)
{
        const cscp_event_t *ev;
        size_t n = 0;
        int r;

        cscp_replay_init(rp);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                char *line = NULL;
                cr_assert_eq(cscp_replay_extend(rp, ev), 0);
                cr_assert_eq(cscp_event_describe(l, ev, &line), 0);
                free(line);
                n++;
        }
        *ret_n = n;
        return r;
}

static int replay_mem(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                      cscp_replay_t *rp, size_t *ret_n, char *err, size_t errlen)
{
        cscp_eventlog_t *l = NULL;
        int r = cscp_eventlog_open_mem(p, n, fmt, opts, NULL, &l);
        if (r < 0) {
                snprintf(err, errlen, "open: %s", cscp_strerror(r));
                return r;
        }
        r = replay_log(l, rp, ret_n);
        snprintf(err, errlen, "%s", cscp_eventlog_error(l));
        cscp_eventlog_free(l);
        return r;
}

static void assert_replay_equals(const cscp_replay_t *rp, const expect_t *x, const char *what)
{
        for (int b = 0; b < 4; b++)
                for (unsigned p = 0; p < 24; p++) {
                        uint8_t v[64];
                        size_t len;
                        if (!(x->used & (1u << p)))
                                continue;
                        cr_assert_eq(cscp_replay_pcr(rp, banks[b], p, v, &len), 0);
                        cr_assert(memcmp(v, x->pcr[b][p], len) == 0, "%s: %s PCR %u: %s, expected %s", what,
                                  bank_name(banks[b]), p, hex(v, len), hex(x->pcr[b][p], len));
                }
}

/* ---------------------------------------------------------------- fixtures */

static char *fixture_dir(void)
{
        const char *root = harness_fixtures_dir();
        struct stat st;
        char *dir;

        if (!root)
                cr_skip_test("no fixtures: CSCP_FIXTURES / ../shared/fixtures is absent");
        cr_assert_geq(asprintf(&dir, "%s/ima", root), 0);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                cr_skip_test("fixture directory %s is absent", dir);
        return harness_keep(dir);
}

/* Every file below dir/ima (two levels), calls fn(path, name, dir). */
static size_t for_each_fixture(void (*fn)(const char *dir, const char *name, void *ctx), void *ctx)
{
        const char *root = fixture_dir();
        DIR *d = opendir(root), *s;
        struct dirent *e, *f;
        size_t n = 0;

        cr_assert_not_null(d);
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char *sub = harness_path(root, e->d_name);
                if (!(s = opendir(sub)))
                        continue;
                while ((f = readdir(s))) {
                        if (f->d_name[0] == '.')
                                continue;
                        fn(sub, f->d_name, ctx);
                        n++;
                }
                closedir(s);
        }
        closedir(d);
        return n;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Opens a fixture as IMA if it is one (auto detection); NULL otherwise. */
static cscp_eventlog_t *open_ima(const uint8_t *p, size_t n)
{
        cscp_eventlog_t *l = NULL;

        if (cscp_eventlog_open_mem(p, n, CSCP_EVENTLOG_AUTO, NULL, NULL, &l) < 0)
                return NULL;
        if (cscp_eventlog_format(l) != CSCP_EVENTLOG_IMA && cscp_eventlog_format(l) != CSCP_EVENTLOG_IMA_BINARY) {
                cscp_eventlog_free(l);
                return NULL;
        }
        return l;
}

typedef struct fx_stats {
        size_t lists, with_expect, pcr_checks, digest_checks;
} fx_stats_t;

/* A fixture with <name>.expected.json: entries / complete_entries / template digests / expected_pcr10. */
static void fixture_one(const char *dir, const char *name, void *ctx)
{
        fx_stats_t *st = ctx;
        json_object *j = NULL, *v, *arr;
        const cscp_event_t *ev;
        cscp_eventlog_t *l;
        cscp_replay_t rp;
        char *jp;
        size_t len, n = 0, complete = SIZE_MAX;
        uint8_t *p;
        int r;

        if (ends_with(name, ".json") || ends_with(name, ".txt"))
                return;
        p = read_all(harness_path(dir, name), &len);
        l = open_ima(p, len);
        if (!l)
                return;
        st->lists++;
        cr_assert_geq(asprintf(&jp, "%s/%s.expected.json", dir, name), 0);
        if (access(jp, R_OK) == 0) {
                j = json_object_from_file(jp);
                cr_assert_not_null(j, "%s: bad JSON", jp);
                st->with_expect++;
        }
        free(jp);
        if (j && json_object_object_get_ex(j, "complete_entries", &v))
                complete = (size_t)json_object_get_int64(v);
        if (j && json_object_object_get_ex(j, "entries", &v))
                complete = (size_t)json_object_get_int64(v);
        arr = NULL;
        if (j)
                json_object_object_get_ex(j, "expected_template_digests_in_order", &arr);

        cscp_replay_init(&rp);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                char *line = NULL;
                cr_assert_eq(cscp_replay_extend(&rp, ev), 0);
                cr_assert_eq(cscp_event_describe(l, ev, &line), 0, "%s: describe", name);
                free(line);
                if (arr && n < json_object_array_length(arr)) {
                        /* The listed SHA-1 template digest = the sha1-bank digest once it verified. */
                        const char *want = json_object_get_string(json_object_array_get_idx(arr, n));
                        cr_assert_eq(ev->digests[0].alg, TPM2_ALG_SHA1);
                        cr_assert_str_eq(hex(ev->digests[0].digest, 20), want, "%s entry %zu", name, n);
                        st->digest_checks++;
                }
                n++;
        }
        if (complete != SIZE_MAX && complete == n && r < 0) {
                /* An excerpt cut mid-record: the complete entries are right, the tail is refused. */
                cr_assert(strstr(cscp_eventlog_error(l), "truncated record"), "%s: %s", name, cscp_eventlog_error(l));
                char want[64];
                snprintf(want, sizeof(want), "event %zu at byte ", n);
                cr_assert(strstr(cscp_eventlog_error(l), want), "%s: %s", name, cscp_eventlog_error(l));
        } else {
                cr_assert_eq(r, 0, "%s: %s", name, cscp_eventlog_error(l));
        }
        if (complete != SIZE_MAX)
                cr_assert_eq(n, complete, "%s: %zu entries, expected %zu", name, n, complete);
        if (j && json_object_object_get_ex(j, "expected_pcr10", &v)) {
                json_object_object_foreach(v, alg, val)
                {
                        uint8_t want[64], got[64];
                        size_t wl = unhex(json_object_get_string(val), want, sizeof(want)), gl;
                        cr_assert_eq(cscp_replay_pcr(&rp, cscp_hash_alg_from_name(alg), 10, got, &gl), 0);
                        cr_assert_eq(gl, wl);
                        cr_assert(memcmp(got, want, wl) == 0, "%s: %s PCR 10 %s, expected %s", name, alg, hex(got, gl),
                                  hex(want, wl));
                        st->pcr_checks++;
                }
        }
        cscp_eventlog_free(l);
        json_object_put(j);
}

Test(ima_fixtures, every_list_with_its_stated_values)
{
        fx_stats_t st = {0};
        size_t files = for_each_fixture(fixture_one, &st);

        cr_assert_gt(files, 0);
        cr_assert_geq(st.lists, 1);
        cr_assert_gt(st.pcr_checks, 0, "no PCR 10 value was checked");
        cr_assert_gt(st.digest_checks, 0, "no template digest was checked");
        cr_log_info("%zu IMA lists, %zu with expectations, %zu PCR values, %zu template digests", st.lists,
                    st.with_expect, st.pcr_checks, st.digest_checks);
}

/* A directory's expected.json: keys "A + B" name files; each IMA list among them must parse, and its
 * boot_aggregate digest must be one of the hex values the statement gives. */
static void dir_expect(const char *dir, const char *name, void *ctx)
{
        size_t *checked = ctx;
        json_object *j;

        if (strcmp(name, "expected.json") != 0)
                return;
        j = json_object_from_file(harness_path(dir, name));
        cr_assert_not_null(j);
        json_object_object_foreach(j, key, val)
        {
                json_object *e;
                const char *stmt;
                char *keys = strdup(key), *save = NULL;

                if (!json_object_object_get_ex(val, "expected", &e))
                        goto next;
                stmt = json_object_get_string(e);
                for (char *tok = strtok_r(keys, " +", &save); tok; tok = strtok_r(NULL, " +", &save)) {
                        size_t len, n = 0;
                        const cscp_event_t *ev;
                        uint8_t *p;
                        cscp_eventlog_t *l;
                        char path[4096];
                        int r;
                        bool found = false;

                        snprintf(path, sizeof(path), "%s/%s", dir, tok);
                        if (access(path, R_OK) != 0)
                                continue;
                        p = read_all(path, &len);
                        if (!(l = open_ima(p, len)))
                                continue;
                        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                                n++;
                                if (strcmp(ev->text, "boot_aggregate") != 0)
                                        continue;
                                /* d-ng: the digest follows "algo:\0" (after the 4-byte length word). */
                                const uint8_t *nul = memchr(ev->data + 4, 0, ev->data_len - 4);
                                cr_assert_not_null(nul);
                                const uint8_t *dig = nul + 1;
                                size_t dl = (size_t)(ev->data + 4 + (ev->data[0] | ev->data[1] << 8) - dig);
                                cr_assert(strstr(stmt, hex(dig, dl)), "%s: boot_aggregate %s not in \"%s\"", tok,
                                          hex(dig, dl), stmt);
                                found = true;
                        }
                        cr_assert_eq(r, 0, "%s: %s", tok, cscp_eventlog_error(l));
                        cr_assert(found, "%s: no boot_aggregate entry", tok);
                        cscp_eventlog_free(l);
                        (*checked)++;
                }
        next:
                free(keys);
        }
        json_object_put(j);
}

Test(ima_fixtures, boot_aggregate_statements)
{
        size_t checked = 0;
        for_each_fixture(dir_expect, &checked);
        cr_assert_gt(checked, 0, "no boot_aggregate statement was checked");
}

/* ------------------------------------------------- lists made by the test */

Test(ima_lists, every_template_binary_ascii_and_byte_orders)
{
        static const struct {
                int endian;
                uint16_t thash;
        } variants[] = {{LE, TPM2_ALG_SHA1},
                        {BE, TPM2_ALG_SHA1},
                        {LE, TPM2_ALG_SHA256},
                        {LE, TPM2_ALG_SHA384},
                        {BE, TPM2_ALG_SHA512}};

        for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                for (int opt_endian = 0; opt_endian <= 2; opt_endian++) {
                        buf_t bin = {0}, ascii = {0};
                        entry_t ents[32];
                        size_t n_ents, n;
                        expect_t x;
                        cscp_replay_t rp;
                        cscp_eventlog_opts_t opts = {.ima_endian = opt_endian};
                        char err[512], what[64];
                        int endian = variants[v].endian;

                        if (opt_endian && opt_endian != endian)
                                continue;
                        build_list(endian, variants[v].thash, true, &bin, &ascii, &x, ents, &n_ents);
                        snprintf(what, sizeof(what), "%s %s opt %d", endian == LE ? "LE" : "BE",
                                 bank_name(variants[v].thash), opt_endian);

                        cr_assert_eq(
                                replay_mem(bin.p, bin.len, CSCP_EVENTLOG_IMA_BINARY, &opts, &rp, &n, err, sizeof(err)),
                                0, "%s binary: %s", what, err);
                        cr_assert_eq(n, n_ents);
                        assert_replay_equals(&rp, &x, what);
                        /* Auto detection finds both forms. */
                        cr_assert_eq(replay_mem(bin.p, bin.len, CSCP_EVENTLOG_AUTO, &opts, &rp, &n, err, sizeof(err)),
                                     0, "%s auto binary: %s", what, err);
                        assert_replay_equals(&rp, &x, what);
                        cr_assert_eq(
                                replay_mem(ascii.p, ascii.len, CSCP_EVENTLOG_AUTO, &opts, &rp, &n, err, sizeof(err)), 0,
                                "%s ascii: %s", what, err);
                        cr_assert_eq(n, n_ents);
                        assert_replay_equals(&rp, &x, what);
                        free(bin.p);
                        free(ascii.p);
                }
        }
}

/* Events: kind, text, data, describe = the ascii line. */
Test(ima_lists, events_text_and_describe)
{
        buf_t bin = {0}, ascii = {0};
        entry_t ents[32];
        size_t n_ents;
        expect_t x;

        build_list(LE, TPM2_ALG_SHA1, true, &bin, &ascii, &x, ents, &n_ents);
        for (int form = 0; form < 2; form++) {
                cscp_eventlog_t *l;
                const cscp_event_t *ev;
                const char *line = (const char *)ascii.p;
                size_t i = 0;

                cr_assert_eq(cscp_eventlog_open_mem(form ? ascii.p : bin.p, form ? ascii.len : bin.len,
                                                    form ? CSCP_EVENTLOG_IMA : CSCP_EVENTLOG_IMA_BINARY, NULL, NULL,
                                                    &l),
                             0);
                while (cscp_eventlog_next(l, &ev) > 0) {
                        char *d = NULL;
                        const char *nl = strchr(line, '\n');
                        buf_t data = {0};

                        cr_assert_lt(i, n_ents);
                        cr_assert_str_eq(ev->kind, ents[i].tpl);
                        cr_assert_str_eq(ev->text, ents[i].text, "entry %zu", i);
                        cr_assert_eq(ev->pcr, ents[i].pcr);
                        cr_assert(ev->extend);
                        cr_assert_eq(ev->index, i);
                        cr_assert_eq(ev->n_digests, 4);
                        hashed_data(&ents[i], LE, &data);
                        cr_assert_eq(ev->data_len, data.len);
                        cr_assert(memcmp(ev->data, data.p, data.len) == 0, "entry %zu data", i);
                        free(data.p);
                        for (size_t k = 0; k < ev->n_digests && ents[i].violation; k++)
                                for (size_t b = 0; b < ev->digests[k].size; b++)
                                        cr_assert_eq(ev->digests[k].digest[b], 0xff);
                        /* describe reproduces the kernel's ascii line. */
                        cr_assert_eq(cscp_event_describe(l, ev, &d), 0);
                        cr_assert_eq(strlen(d), (size_t)(nl - line), "entry %zu:\n%s\n%.*s", i, d, (int)(nl - line),
                                     line);
                        cr_assert(strncmp(d, line, (size_t)(nl - line)) == 0, "entry %zu:\n%s\n%.*s", i, d,
                                  (int)(nl - line), line);
                        free(d);
                        line = nl + 1;
                        i++;
                }
                cr_assert_eq(i, n_ents, "%s", cscp_eventlog_error(l));
                cscp_eventlog_free(l);
        }
        free(bin.p);
        free(ascii.p);
}

/* Writes evmctl's --pcrs file ("PCR-NN:hex" for 0..23) from our replay; tamper flips PCR 10. */
static void write_pcrs(const char *path, const cscp_replay_t *rp, uint16_t alg, bool tamper)
{
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f);
        for (unsigned p = 0; p < 24; p++) {
                uint8_t v[64] = {0};
                size_t len = cscp_hash_alg_size(alg);
                if (rp->extended[0] & (1u << p))
                        cr_assert_eq(cscp_replay_pcr(rp, alg, p, v, &len), 0);
                if (tamper && p == 10)
                        v[0] ^= 1;
                fprintf(f, "PCR-%02u:%s\n", p, hex(v, len));
        }
        cr_assert_eq(fclose(f), 0);
}

static int run_evmctl(const char *list, const char *pcrs, uint16_t alg, char **ret_out)
{
        char arg[4200];
        int status;
        char *out = NULL, *err = NULL;

        snprintf(arg, sizeof(arg), "%s,%s", bank_name(alg), pcrs);
        char *const argv[] = {"evmctl", "-v", "ima_measurement", "--ignore-violations",
                              "--pcrs", arg,  (char *)list,      NULL};
        cr_assert_eq(harness_run(argv, 60000, &status, &out, &err), 0);
        if (ret_out) {
                cr_assert_geq(asprintf(ret_out, "%s%s", out, err), 0);
                harness_keep(*ret_out);
        }
        free(out);
        free(err);
        return status;
}

/*
 * evmctl validates a binary list against PCR values: the values our replay
 * computes are accepted bank by bank, a flipped bit is refused. evmctl
 * cannot mix the `ima` template with others, so that runs as its own list.
 */
Test(ima_lists, evmctl_agrees)
{
        const char *dir = tmpdir();
        size_t checked = 0;

        if (access("/usr/bin/evmctl", X_OK) != 0)
                cr_skip_test("evmctl is not installed (package ima-evm-utils; scripts/deps installs it)");
        for (int with_ima = 0; with_ima < 2; with_ima++) {
                buf_t bin = {0};
                entry_t ents[32];
                size_t n_ents, n;
                expect_t x;
                cscp_replay_t rp;
                char err[512];
                const char *list = harness_path(dir, with_ima ? "ima-only.bin" : "all.bin");

                if (with_ima) {
                        /* Only `ima` entries (plus their own boot_aggregate). */
                        entry_t all[32];
                        size_t na = make_entries(all, LE, true);
                        memset(&x, 0, sizeof(x));
                        n_ents = 0;
                        for (size_t i = 0; i < na; i++)
                                if (strcmp(all[i].tpl, "ima") == 0) {
                                        ents[n_ents++] = all[i];
                                        write_entry(&all[i], LE, TPM2_ALG_SHA1, &bin, NULL);
                                        expect_extend(&x, &all[i], LE);
                                }
                } else {
                        build_list(LE, TPM2_ALG_SHA1, false, &bin, NULL, &x, ents, &n_ents);
                }
                write_file(list, bin.p, bin.len);
                cr_assert_eq(replay_mem(bin.p, bin.len, CSCP_EVENTLOG_IMA_BINARY, NULL, &rp, &n, err, sizeof(err)), 0,
                             "%s", err);
                assert_replay_equals(&rp, &x, list);
                for (int b = 0; b < 4; b++) {
                        const char *good = harness_path(dir, "good.pcrs"), *bad = harness_path(dir, "bad.pcrs");
                        char *out;
                        int st;

                        write_pcrs(good, &rp, banks[b], false);
                        write_pcrs(bad, &rp, banks[b], true);
                        st = run_evmctl(list, good, banks[b], &out);
                        if (strstr(out, "Unknown algorithm")) {
                                /* evmctl 1.4 knows only some banks (Debian 12: sha1, sha256). */
                                cr_log_info("evmctl does not know %s; that bank is checked against our own replay only",
                                            bank_name(banks[b]));
                                continue;
                        }
                        checked++;
                        cr_assert(st == 0, "evmctl refused our %s PCRs for %s:\n%s", bank_name(banks[b]), list, out);
                        cr_assert(strstr(out, "Matched per TPM bank"), "%s", out);
                        st = run_evmctl(list, bad, banks[b], &out);
                        cr_assert(st != 0, "evmctl accepted a tampered %s PCR 10", bank_name(banks[b]));
                }
                free(bin.p);
        }
        cr_assert_geq(checked, 2, "evmctl checked fewer than one bank per list");
}

/* ------------------------------------------------------------ malformed */

typedef struct bad_case {
        const char *what;
        int code;
        const char *msg; /* substring of the error */
        uint64_t event;  /* event number named */
        long byte;       /* byte offset named, -1: any */
} bad_case_t;

static void expect_fail_opts(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, const cscp_eventlog_opts_t *opts,
                             const bad_case_t *c)
{
        for (int via_fd = 0; via_fd < 2; via_fd++) {
                cscp_eventlog_t *l = NULL;
                const cscp_event_t *ev;
                uint64_t seen = 0;
                int r, fd = -1;
                char want[96];

                if (via_fd) {
                        char *path = harness_path(tmpdir(), "bad");
                        write_file(path, p, n);
                        fd = open(path, O_RDONLY | O_CLOEXEC);
                        cr_assert_geq(fd, 0);
                        cr_assert_eq(cscp_eventlog_open_fd(fd, fmt, opts, NULL, &l), 0, "%s", c->what);
                } else {
                        cr_assert_eq(cscp_eventlog_open_mem(p, n, fmt, opts, NULL, &l), 0, "%s", c->what);
                }
                while ((r = cscp_eventlog_next(l, &ev)) > 0)
                        seen++;
                cr_assert_eq(r, c->code, "%s: got %s (%s), expected %s", c->what, cscp_err_name(r),
                             cscp_eventlog_error(l), cscp_err_name(c->code));
                cr_assert_eq(seen, c->event, "%s: %s", c->what, cscp_eventlog_error(l));
                cr_assert(strstr(cscp_eventlog_error(l), c->msg), "%s: \"%s\" lacks \"%s\"", c->what,
                          cscp_eventlog_error(l), c->msg);
                if (c->byte >= 0)
                        snprintf(want, sizeof(want), "event %" PRIu64 " at byte %ld: ", c->event, c->byte);
                else
                        snprintf(want, sizeof(want), "event %" PRIu64 " at byte ", c->event);
                cr_assert(strncmp(cscp_eventlog_error(l), want, strlen(want)) == 0, "%s: \"%s\" does not start \"%s\"",
                          c->what, cscp_eventlog_error(l), want);
                cscp_eventlog_free(l);
                if (fd >= 0)
                        close(fd);
        }
}

static void expect_fail(const uint8_t *p, size_t n, cscp_eventlog_format_t fmt, const bad_case_t *c)
{
        expect_fail_opts(p, n, fmt, NULL, c);
}

/* Two good ima-ng records; the tests break the second one (offset = where it starts). */
static void two_records(buf_t *b, size_t *second)
{
        entry_t e[2] = {
                {10, "ima-ng", false, 2, {f_dng("sha256:", TPM2_ALG_SHA256, "a"), f_str("boot_aggregate")}, ""},
                {10, "ima-ng", false, 2, {f_dng("sha256:", TPM2_ALG_SHA256, "b"), f_str("/bin/b")}, ""},
        };
        write_entry(&e[0], LE, TPM2_ALG_SHA1, b, NULL);
        *second = b->len;
        write_entry(&e[1], LE, TPM2_ALG_SHA1, b, NULL);
}

static void set32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

Test(ima_malformed, binary)
{
        buf_t b = {0};
        size_t s, len;
        uint8_t *m;

        two_records(&b, &s);
        len = b.len;
        m = harness_keep(malloc(len + 64));
        /* Second record layout: pcr @s, thash @s+4, name len @s+24, name @s+28 (6), data len @s+34, data @s+38:
         * field 1 len @s+38, d-ng (40 bytes) @s+42, field 2 len @s+82, name @s+86 (7). */
        cr_assert_eq(len - s, 93);

        /* Truncated at every byte of the second record. */
        for (size_t cut = s + 1; cut < len; cut++) {
                bad_case_t c = {"truncated", CSCP_E_PROTO, "truncated record", 1, (long)cut};
                expect_fail(b.p, cut, CSCP_EVENTLOG_IMA_BINARY, &c);
        }
        memcpy(m, b.p, len);
        set32(m + s, 24);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"pcr 24", CSCP_E_PROTO, "PCR index 24 is out of range", 1, (long)s});
        memcpy(m, b.p, len);
        set32(m + s + 24, 0);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"name len 0", CSCP_E_PROTO, "template name length 0", 1, (long)s + 24});
        memcpy(m, b.p, len);
        set32(m + s + 24, 0xffffffffu);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"name len huge", CSCP_E_PROTO, "template name length 4294967295", 1, (long)s + 24});
        memcpy(m, b.p, len);
        memcpy(m + s + 28, "ima-zz", 6);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"unknown template", CSCP_E_UNSUPPORTED, "unknown IMA template 'ima-zz'", 1,
                                  (long)s + 28});
        memcpy(m, b.p, len);
        set32(m + s + 34, 0xfffffff0u);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"data len huge", CSCP_E_TOO_BIG,
                                  "template data length 4294967280 is over the record "
                                  "limit",
                                  1, (long)s + 34});
        memcpy(m, b.p, len);
        set32(m + s + 34, 60);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"data len past the end", CSCP_E_PROTO, "truncated record: the template data", 1,
                                  (long)len});
        memcpy(m, b.p, len);
        set32(m + s + 38, 41);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"field shifted", CSCP_E_PROTO, "field 2 (n-ng) length", 1, (long)s + 83});
        memcpy(m, b.p, len);
        set32(m + s + 82, 0x7fffffff);
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"field past the end", CSCP_E_PROTO,
                                  "field 2 (n-ng) length 2147483647 runs past the end", 1, (long)s + 82});
        /* Extra bytes after the last field (data length grown, one byte appended). */
        memcpy(m, b.p, len);
        set32(m + s + 34, 56);
        m[len] = 'x';
        expect_fail(m, len + 1, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"extra field bytes", CSCP_E_PROTO, "has 2 fields but 1 bytes", 1, (long)len});
        /* A missing field: data holds only the d-ng field. */
        memcpy(m, b.p, len);
        set32(m + s + 34, 44);
        expect_fail(m, s + 82, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"missing field", CSCP_E_PROTO, "field 2 (n-ng) length word past the end", 1,
                                  (long)s + 82});
        /* Wrong template hash. */
        memcpy(m, b.p, len);
        m[s + 4] ^= 1;
        expect_fail(m, len, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"template hash", CSCP_E_PROTO, "template hash mismatch (ima-ng entry \"/bin/b\")", 1,
                                  (long)s});
        {
                cscp_eventlog_opts_t o = {.ima_no_template_check = true};
                cscp_replay_t rp;
                size_t n;
                char err[512];
                cr_assert_eq(replay_mem(m, len, CSCP_EVENTLOG_IMA_BINARY, &o, &rp, &n, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(n, 2);
        }
        /* A record over max_record. */
        {
                cscp_eventlog_opts_t o = {.max_record = 64};
                expect_fail_opts(b.p, len, CSCP_EVENTLOG_IMA_BINARY, &o,
                                 &(bad_case_t){"max_record", CSCP_E_TOO_BIG, "over the record limit (64)", 0, 34});
        }
        /* Garbage is not a list. */
        memset(m, 0x41, 64);
        expect_fail(m, 64, CSCP_EVENTLOG_IMA_BINARY,
                    &(bad_case_t){"garbage", CSCP_E_PROTO, "not an IMA binary record", 0, 0});
        /* The `ima` template: name longer than 255. */
        {
                entry_t e = {10, "ima", false, 2, {f_hex("01234567890123456789", 20), f_str("/x")}, ""};
                buf_t i = {0};
                write_entry(&e, LE, TPM2_ALG_SHA1, &i, NULL);
                set32(i.p + 4 + 20 + 4 + 3 + 20, 256);
                expect_fail(i.p, i.len, CSCP_EVENTLOG_IMA_BINARY,
                            &(bad_case_t){"ima name", CSCP_E_PROTO, "file name length 256 is over 255", 0, 51});
                free(i.p);
        }
        free(b.p);
}

Test(ima_malformed, ascii)
{
        static const char good[] =
                "10 9069ca78e7450a285173431b3e52c5c25299e473 ima-ng sha1:0000000000000000000000000000000000000000 x\n";
        static const struct {
                const char *line;
                int code;
                const char *msg;
                long col; /* byte offset within the second line */
        } cases[] = {
                {"", CSCP_E_PROTO, "expected a PCR index", 0},
                {"xx 1d8d", CSCP_E_PROTO, "expected a PCR index", 0},
                {"99 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:00 a", CSCP_E_PROTO,
                 "PCR index is out of range", 0},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e2 ima-ng sha1:00 a", CSCP_E_PROTO, "38 hex digits", 3},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e26g ima-ng sha1:00 a", CSCP_E_PROTO,
                 "invalid hex in the template hash", 42},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260a0b1c2d3e4f5a6b7c8d9e0f1 ima-ng sha1:00 a", CSCP_E_PROTO,
                 "earlier entries had sha1", 3},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260", CSCP_E_PROTO, "line ends after the template hash", 43},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-foo sha1:00 a", CSCP_E_UNSUPPORTED,
                 "unknown IMA template 'ima-foo'", 44},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:00", CSCP_E_PROTO,
                 "template ima-ng has 2 fields, the line has 1", 58},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:00 a b", CSCP_E_PROTO, "the line has more",
                 60},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:0z a", CSCP_E_PROTO,
                 "field d-ng: invalid hex digest", 57},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:000 a", CSCP_E_PROTO,
                 "field d-ng: odd-length hex digest", 59},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng 00 a", CSCP_E_PROTO, "no \"<algo>:\"", 51},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-sig sha1:00 a 0q", CSCP_E_PROTO,
                 "field sig: invalid hex", 63},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:00 a", CSCP_E_PROTO,
                 "template hash mismatch (ima-ng entry \"a\"): listed 1d8d532d", 0},
                {"10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima 00 a", CSCP_E_PROTO, "digest is 1 bytes, not 20", 48},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                buf_t b = {0};
                /* The first line carries a correct template hash of its own. */
                entry_t e = {10, "ima-ng", false, 2, {f_dng("sha1:", TPM2_ALG_SHA1, "zero"), f_str("x")}, ""};
                buf_t bin = {0};
                write_entry(&e, LE, TPM2_ALG_SHA1, &bin, &b);
                (void)good;
                size_t first = b.len;
                put_str(&b, cases[i].line);
                put_str(&b, "\n");
                bad_case_t c = {cases[i].line, cases[i].code, cases[i].msg, 1, (long)first + cases[i].col};
                expect_fail(b.p, b.len, CSCP_EVENTLOG_IMA, &c);
                free(b.p);
                free(bin.p);
        }
        /* A line over max_record. */
        {
                buf_t b = {0};
                cscp_eventlog_opts_t o = {.max_record = 128};
                put_str(&b, "10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:00 ");
                for (int i = 0; i < 200; i++)
                        put_str(&b, "a");
                put_str(&b, "\n");
                expect_fail_opts(b.p, b.len, CSCP_EVENTLOG_IMA, &o,
                                 &(bad_case_t){"long line", CSCP_E_TOO_BIG, "line longer than the record limit", 0, 0});
                free(b.p);
        }
}

/* Unknown banks in opts are refused clearly. */
Test(ima_malformed, bad_bank_option)
{
        buf_t b = {0};
        size_t s;
        cscp_eventlog_opts_t o = {.ima_banks = {TPM2_ALG_SHA256, 0x0012, 0}};

        two_records(&b, &s);
        expect_fail_opts(b.p, b.len, CSCP_EVENTLOG_IMA_BINARY, &o,
                         &(bad_case_t){"bank", CSCP_E_UNSUPPORTED, "IMA bank 0x0012", 0, 0});
        free(b.p);
}

/* ------------------------------------------------------------ checkpoint */

static void checkpoint_case(const uint8_t *p, size_t len, cscp_eventlog_format_t fmt, const char *path)
{
        cscp_replay_t full, half, loaded;
        const cscp_event_t *ev;
        cscp_eventlog_t *l;
        uint8_t *saved;
        size_t n_full, saved_len, k = 0;
        char err[512];
        int fd = -1, r;

        cr_assert_eq(replay_mem(p, len, fmt, NULL, &full, &n_full, err, sizeof(err)), 0, "%s", err);
        for (int via_fd = 0; via_fd < 2; via_fd++) {
                if (via_fd) {
                        fd = open(path, O_RDONLY | O_CLOEXEC);
                        cr_assert_geq(fd, 0);
                        cr_assert_eq(cscp_eventlog_open_fd(fd, fmt, NULL, NULL, &l), 0);
                } else {
                        cr_assert_eq(cscp_eventlog_open_mem(p, len, fmt, NULL, NULL, &l), 0);
                }
                cscp_replay_init(&half);
                for (k = 0; k < n_full / 2; k++) {
                        cr_assert_eq(cscp_eventlog_next(l, &ev), 1);
                        cr_assert_eq(cscp_replay_extend(&half, ev), 0);
                }
                cr_assert_eq(cscp_replay_checkpoint(&half, l), 0);
                cscp_eventlog_free(l);
                cr_assert_eq(cscp_replay_save(&half, &saved, &saved_len), 0);
                cr_assert_eq(cscp_replay_load(saved, saved_len, &loaded), 0);
                free(saved);
                /* Resume on the same fd (rewound: offsets count from where the log starts) or buffer. */
                if (via_fd) {
                        cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
                        cr_assert_eq(cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_AUTO, NULL, &loaded, &l), 0);
                } else {
                        cr_assert_eq(cscp_eventlog_open_mem(p, len, CSCP_EVENTLOG_AUTO, NULL, &loaded, &l), 0);
                }
                while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                        cr_assert_eq(ev->index, k);
                        cr_assert_eq(cscp_replay_extend(&loaded, ev), 0);
                        k++;
                }
                cr_assert_eq(r, 0, "%s", cscp_eventlog_error(l));
                cr_assert_eq(k, n_full);
                cr_assert(memcmp(loaded.pcr, full.pcr, sizeof(full.pcr)) == 0, "resumed replay differs");
                cr_assert(memcmp(loaded.extended, full.extended, sizeof(full.extended)) == 0);
                cscp_eventlog_free(l);
                if (fd >= 0)
                        close(fd);
                fd = -1;
        }
}

Test(ima_checkpoint, resume_gives_the_same_replay)
{
        const char *dir = tmpdir();

        for (int v = 0; v < 3; v++) {
                buf_t bin = {0}, ascii = {0};
                entry_t ents[32];
                size_t n;
                expect_t x;
                int endian = v == 1 ? BE : LE;
                uint16_t th = v == 2 ? TPM2_ALG_SHA384 : TPM2_ALG_SHA1;
                char *pb = harness_path(dir, "bin"), *pa = harness_path(dir, "ascii");

                build_list(endian, th, true, &bin, &ascii, &x, ents, &n);
                write_file(pb, bin.p, bin.len);
                write_file(pa, ascii.p, ascii.len);
                checkpoint_case(bin.p, bin.len, CSCP_EVENTLOG_IMA_BINARY, pb);
                checkpoint_case(ascii.p, ascii.len, CSCP_EVENTLOG_IMA, pa);
                free(bin.p);
                free(ascii.p);
        }
}

/* ------------------------------------------------------------ fuzz seeds */

/* First byte (fuzz-ima.c): bit 0 binary, bits 1-2 ima_endian, bit 3 no template check. */
static void write_seed(const char *dir, const char *name, uint8_t control, const uint8_t *p, size_t n)
{
        buf_t b = {0};
        put(&b, &control, 1);
        put(&b, p, n);
        write_file(harness_path(dir, name), b.p, b.len);
        free(b.p);
}

Test(ima_seeds, write_fuzz_seeds)
{
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096];

        if (!build)
                cr_skip_test("CSCP_BUILD_DIR is not set (run through meson test)");
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds/ima", build), sizeof(dir));
        mkdir_p(dir);
        for (int v = 0; v < 3; v++) {
                buf_t bin = {0}, ascii = {0};
                entry_t ents[32];
                size_t n;
                expect_t x;
                char name[64];
                int endian = v == 1 ? BE : LE;
                uint16_t th = v == 2 ? TPM2_ALG_SHA256 : TPM2_ALG_SHA1;

                build_list(endian, th, true, &bin, &ascii, &x, ents, &n);
                snprintf(name, sizeof(name), "binary-%d", v);
                write_seed(dir, name, (uint8_t)(1 | (v == 1 ? 4 : 0)), bin.p, bin.len);
                snprintf(name, sizeof(name), "ascii-%d", v);
                write_seed(dir, name, 0, ascii.p, ascii.len);
                free(bin.p);
                free(ascii.p);
        }
}
