/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX generation side (lib/tdx/guest.c, include/cscp/tdx-guest.h):
 *  - against tests/helpers/tdx-emu (a FUSE emulator of the configfs-tsm report
 *    and TSM measurement files, signing with a TEST CA: NOT TDX, it exercises
 *    the file protocol and the verifier): quote round trip verified with the
 *    emulator's root, instance directories removed (also after every error),
 *    RTMR extend = SHA-384(old || digest) carried by the next quote, RTMR0/1
 *    refused, a concurrent writer (--race) retried or -EAGAIN, a foreign
 *    provider, an oversize, garbage or foreign outblob;
 *  - the CCEL table + log area of ../shared/fixtures/tdx/go-tdx-guest and
 *    damaged tables (errors naming the field); seeds for fuzz-ccel-table;
 *  - the default (real) paths: this machine is no TDX guest, so probe says
 *    CSCP_E_UNSUPPORTED and the real quote test skips with the reason; on a
 *    TDX guest it runs the real round trip.
 * Tests needing the emulator skip (with the reason) without libfuse3 or FUSE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "error.h"
#include "harness.h"
#include "tdx-guest.h"
#include "tdx.h"
#include "util.h"
#include "verdict.h"

static char *emu_dir;
static pid_t emu_pid;
static cscp_tdx_guest_paths_t paths;

static const char mrtd_hex[] = "aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829"
                               "2a2b2c2d2e2f";
static const char rtmr2_hex[] = "bb0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829"
                                "2a2b2c2d2e2f";

static void emu_up(const char *const *extra)
{
        emu_dir = harness_keep(harness_tmpdir());
        harness_tdx_emu_start(emu_dir, extra, &emu_pid);
        paths = (cscp_tdx_guest_paths_t){.tsm_root = harness_path(emu_dir, "mnt/tsm"),
                                         .mr_root = harness_path(emu_dir, "mnt/measurements")};
}

/* Stops the emulator; its exit status (0: unmounted cleanly, no instance left, no leak under ASan). */
static int emu_stop(void)
{
        int status = 0;

        if (emu_pid > 0)
                status = harness_tdx_emu_stop(emu_dir, emu_pid);
        emu_pid = 0;
        return status;
}

static void emu_down(void)
{
        (void)emu_stop();
}

static const char *emu_root(void)
{
        return harness_path(emu_dir, "state/root.pem");
}

/* Entries under <tsm_root>/report: every instance must be gone after each request. */
static int report_entries(void)
{
        DIR *d = opendir(harness_path(paths.tsm_root, "report"));
        struct dirent *e;
        int n = 0;

        cr_assert_not_null(d, "opendir report: %s", strerror(errno));
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                        cr_log_error("left behind: %s", e->d_name);
                        n++;
                }
        closedir(d);
        return n;
}

/* How often the emulator's log says what. */
static int emu_log_count(const char *what)
{
        char *log = harness_slurp(harness_path(emu_dir, "tdx-emu.log"), NULL), *p;
        int n = 0;

        cr_assert_not_null(log);
        for (p = log; (p = strstr(p, what)); p += strlen(what))
                n++;
        return n;
}

static void random_rd(uint8_t rd[64])
{
        cr_assert_eq(RAND_bytes(rd, 64), 1);
}

static void hex48(const char *hex, uint8_t out[48])
{
        size_t n = 0;

        cr_assert_eq(cscp_hex_decode(hex, out, 48, &n), 0);
        cr_assert_eq(n, 48);
}

static void sha384_cat(const uint8_t a[48], const uint8_t b[48], uint8_t out[48])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();

        cr_assert(md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 && EVP_DigestUpdate(md, a, 48) == 1 &&
                  EVP_DigestUpdate(md, b, 48) == 1 && EVP_DigestFinal_ex(md, out, NULL) == 1);
        EVP_MD_CTX_free(md);
}

/* The quote verifies with root: every claim passes, REPORTDATA = rd. */
static void assert_verifies(const uint8_t *q, size_t len, const char *root, const uint8_t rd[64])
{
        cscp_tdx_verify_opts_t o = {.root_file = root, .report_data = rd};
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cr_assert_eq(cscp_tdx_quote_verify(q, len, &o, &v), 0, "%s", v.error ? v.error : "");
        for (size_t i = 0; i < v.n_claims; i++)
                if (!v.claims[i].pass)
                        cr_log_error("claim %s failed: %s", v.claims[i].name, v.claims[i].detail);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cr_assert_eq(v.n_claims, 6, "all five quote claims + tdx-report-data");
        cscp_verdict_clear(&v);
}

static uint8_t *quote_ok(const uint8_t rd[64], size_t *len, cscp_tdx_quote_t *q)
{
        uint8_t *b = NULL;
        char err[512];
        int k = cscp_tdx_guest_quote(&paths, rd, &b, len, err, sizeof(err));

        cr_assert_eq(k, 0, "quote: %s: %s", cscp_strerror(k), err);
        harness_keep(b);
        cr_assert_eq(cscp_tdx_quote_parse(b, *len, q, err, sizeof(err)), 0, "%s", err);
        return b;
}

/* A quote request that must fail with code, its message holding want; no instance left. */
static void quote_fails(int code, const char *want)
{
        uint8_t rd[64], *b = NULL;
        size_t len = 0;
        char err[512];
        int k;

        random_rd(rd);
        k = cscp_tdx_guest_quote(&paths, rd, &b, &len, err, sizeof(err));
        cr_assert_eq(k, code, "got %s (%s), wanted %s", cscp_err_name(k), err, cscp_err_name(code));
        cr_assert_null(b);
        cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
        cr_assert_null(strchr(err, '\n'), "one line: %s", err);
        cr_log_info("refused as expected: %s", err);
        cr_assert_eq(report_entries(), 0, "an instance directory was left behind after an error");
}

/* ------------------------------------------------------------ against the emulator */

Test(tdx_guest, quote_round_trip_verifies_with_the_emulator_root, .fini = emu_down)
{
        const char *extra[] = {"--mrtd", mrtd_hex, "--rtmr2", rtmr2_hex, NULL};
        uint8_t rd[64], rd2[64], mrtd[48], r2[48];
        cscp_tdx_quote_t q;
        char why[256];
        size_t len = 0;
        uint8_t *b;

        emu_up(extra);
        cr_assert_eq(cscp_tdx_guest_probe(&paths, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(report_entries(), 0, "probe left its instance behind");
        random_rd(rd);
        b = quote_ok(rd, &len, &q);
        cr_assert_eq(memcmp(q.report_data, rd, 64), 0, "REPORTDATA is what we asked");
        hex48(mrtd_hex, mrtd);
        hex48(rtmr2_hex, r2);
        cr_assert_eq(memcmp(q.mrtd, mrtd, 48), 0);
        cr_assert_eq(memcmp(q.rtmr[2], r2, 48), 0);
        assert_verifies(b, len, emu_root(), rd);
        cr_assert_eq(report_entries(), 0);

        /* a second request: a new instance, another REPORTDATA */
        random_rd(rd2);
        b = quote_ok(rd2, &len, &q);
        cr_assert_eq(memcmp(q.report_data, rd2, 64), 0);
        assert_verifies(b, len, emu_root(), rd2);
        cr_assert_eq(report_entries(), 0);

        /* the verifier still catches a wrong REPORTDATA claim and a foreign anchor */
        {
                cscp_tdx_verify_opts_t o = {.root_file = emu_root(), .report_data = rd};
                cscp_verdict_t v;

                cscp_verdict_init(&v);
                cr_assert_eq(cscp_tdx_quote_verify(b, len, &o, &v), 0);
                cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
                cr_assert_not(cscp_verdict_find(&v, "tdx-report-data")->pass);
                cscp_verdict_clear(&v);
        }
        if (harness_fixtures_dir()) {
                cscp_tdx_verify_opts_t o = {
                        .root_file = harness_path(harness_fixtures_dir(), "tdx/go-tdx-guest/trusted_root.pem")};
                cscp_verdict_t v;

                cscp_verdict_init(&v);
                cr_assert_eq(cscp_tdx_quote_verify(b, len, &o, &v), 0);
                cr_assert_not(cscp_verdict_find(&v, "tdx-pck-chain")->pass, "the emulator is not Intel");
                cscp_verdict_clear(&v);
        }
        cr_assert_eq(emu_stop(), 0, "tdx-emu did not exit cleanly on SIGTERM (see %s/tdx-emu.log)", emu_dir);
        cr_assert_eq(emu_log_count("still there at exit"), 0);
}

Test(tdx_guest, rtmr_extend_is_sha384_of_old_and_digest_and_the_next_quote_carries_it, .fini = emu_down)
{
        const char *extra[] = {"--rtmr2", rtmr2_hex, NULL};
        uint8_t old[48], d[48], want[48], got[48], r0[48], r0b[48], rd[64];
        cscp_tdx_quote_t q;
        size_t len = 0;
        uint8_t *b;
        int fd;

        emu_up(extra);
        for (unsigned i = 2; i < 4; i++) {
                cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, i, old), 0);
                random_rd(rd);
                memcpy(d, rd, 48);
                cr_assert_eq(cscp_tdx_guest_rtmr_extend(&paths, i, d), 0);
                cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, i, got), 0);
                sha384_cat(old, d, want);
                cr_assert_eq(memcmp(got, want, 48), 0, "RTMR%u = SHA-384(old || digest)", i);
        }
        hex48(rtmr2_hex, old);
        cr_assert_neq(memcmp(got, old, 48), 0);

        random_rd(rd);
        b = quote_ok(rd, &len, &q);
        cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, 2, got), 0);
        cr_assert_eq(memcmp(q.rtmr[2], got, 48), 0, "the quote carries the extended RTMR2");
        cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, 3, got), 0);
        cr_assert_eq(memcmp(q.rtmr[3], got, 48), 0, "the quote carries the extended RTMR3");
        assert_verifies(b, len, emu_root(), rd);

        /* RTMR0/1 belong to the firmware: refused before any write, value unchanged */
        cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, 0, r0), 0);
        cr_assert_eq(cscp_tdx_guest_rtmr_extend(&paths, 0, d), -EPERM);
        cr_assert_eq(cscp_tdx_guest_rtmr_extend(&paths, 1, d), -EPERM);
        cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, 0, r0b), 0);
        cr_assert_eq(memcmp(r0, r0b, 48), 0);
        cr_assert_eq(cscp_tdx_guest_rtmr_extend(&paths, 4, d), -EINVAL);
        cr_assert_eq(cscp_tdx_guest_rtmr_read(&paths, 4, got), -EINVAL);
        /* the emulator itself: rtmr0 not writable, partial writes refused like the kernel */
        fd = open(harness_path(paths.mr_root, "rtmr0:sha384"), O_WRONLY | O_CLOEXEC);
        cr_assert(fd < 0 && errno == EPERM, "rtmr0 opened for writing");
        fd = open(harness_path(paths.mr_root, "rtmr2:sha384"), O_WRONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert(pwrite(fd, d, 47, 0) < 0 && errno == EINVAL, "a 47-byte extend was taken");
        close(fd);
}

Test(tdx_guest, a_concurrent_writer_once_is_retried, .fini = emu_down)
{
        const char *extra[] = {"--race", "1", NULL};
        uint8_t rd[64], *b;
        cscp_tdx_quote_t q;
        size_t len = 0;

        emu_up(extra);
        random_rd(rd);
        b = quote_ok(rd, &len, &q);
        cr_assert_eq(memcmp(q.report_data, rd, 64), 0);
        assert_verifies(b, len, emu_root(), rd);
        cr_assert_eq(report_entries(), 0);
        cr_assert_eq(emu_log_count("generation bumped"), 1);
        cr_assert_eq(emu_log_count("tdx-emu: mkdir "), 2, "the raced attempt was retried in a new instance");
        cr_assert_eq(emu_log_count("tdx-emu: rmdir "), 2);
}

Test(tdx_guest, concurrent_writers_every_time_is_eagain, .fini = emu_down)
{
        const char *extra[] = {"--race", "5", NULL};

        emu_up(extra);
        quote_fails(-EAGAIN, "another writer");
        cr_assert_eq(emu_log_count("tdx-emu: mkdir "), 3, "three attempts");
        cr_assert_eq(emu_log_count("tdx-emu: rmdir "), 3);
}

Test(tdx_guest, another_provider_is_unsupported, .fini = emu_down)
{
        const char *extra[] = {"--provider", "sev_guest", NULL};
        char why[256];

        emu_up(extra);
        quote_fails(CSCP_E_UNSUPPORTED, "'sev_guest', not tdx_guest");
        cr_assert_eq(cscp_tdx_guest_probe(&paths, why, sizeof(why)), CSCP_E_UNSUPPORTED);
        cr_assert_not_null(strstr(why, "sev_guest"), "%s", why);
        cr_assert_eq(report_entries(), 0);
}

static void outblob_case(const uint8_t *data, size_t len, int code, const char *want)
{
        char *dir = harness_keep(harness_tmpdir()), *f = harness_path(dir, "outblob");
        const char *extra[] = {"--outblob-file", f, NULL};

        cr_assert_eq(cscp_file_write_atomic(f, data, len, 0644), 0);
        emu_up(extra);
        quote_fails(code, want);
        cr_assert_eq(emu_stop(), 0, "tdx-emu did not exit cleanly (see %s/tdx-emu.log)", emu_dir);
}

Test(tdx_guest, an_oversize_or_garbage_outblob_is_a_clear_error, .fini = emu_down)
{
        uint8_t *big = calloc(1, CSCP_TDX_QUOTE_MAX + 100), junk[1000];

        cr_assert_not_null(big);
        outblob_case(big, CSCP_TDX_QUOTE_MAX + 100, CSCP_E_TOO_BIG, "outblob: more than 65536 bytes");
        free(big);
        memset(junk, 0xab, sizeof(junk));
        outblob_case(junk, sizeof(junk), CSCP_E_VERSION, "not a TDX quote: header.version");
        outblob_case((const uint8_t *)"\x04\x00\x02\x00", 4, CSCP_E_PROTO, "not a TDX quote: header.tee_type");
        outblob_case((const uint8_t *)"", 0, CSCP_E_PROTO, "outblob: empty");
}

/* A real quote, but for another REPORTDATA (what a racing writer would leave): refused. */
Test(tdx_guest, a_quote_for_other_report_data_is_refused, .fini = emu_down)
{
        uint8_t rd[64], *b;
        cscp_tdx_quote_t q;
        size_t len = 0;

        emu_up(NULL);
        random_rd(rd);
        b = quote_ok(rd, &len, &q);
        cr_assert_eq(emu_stop(), 0, "tdx-emu did not exit cleanly (see %s/tdx-emu.log)", emu_dir);
        outblob_case(b, len, CSCP_E_PROTO, "REPORTDATA is not what inblob was given");
}

Test(tdx_guest, no_tsm_directory_is_unsupported)
{
        char *dir = harness_keep(harness_tmpdir()), why[256];
        cscp_tdx_guest_paths_t p = {.tsm_root = harness_path(dir, "nothing")};
        uint8_t rd[64] = {0}, *b = NULL;
        size_t len = 0;

        cr_assert_eq(cscp_tdx_guest_probe(&p, why, sizeof(why)), CSCP_E_UNSUPPORTED);
        cr_assert_not_null(strstr(why, "no TDX guest here: "), "%s", why);
        cr_assert_not_null(strstr(why, "No such file or directory"), "%s", why);
        cr_assert_eq(cscp_tdx_guest_quote(&p, rd, &b, &len, why, sizeof(why)), CSCP_E_UNSUPPORTED);
        cr_assert_not_null(strstr(why, "no TDX guest here: "), "%s", why);
}

/* ------------------------------------------------------------ the real files (this machine: no TDX) */

Test(tdx_guest, default_paths_probe)
{
        char why[256];
        int k = cscp_tdx_guest_probe(NULL, why, sizeof(why));

        if (k == 0)
                cr_skip_test("this is a TDX guest: the real round trip runs in real_quote_round_trip");
        cr_assert_eq(k, CSCP_E_UNSUPPORTED, "%s: %s", cscp_err_name(k), why);
        cr_assert(strstr(why, "no TDX guest here: ") || strstr(why, "not tdx_guest"), "%s", why);
        cr_log_info("probe: %s", why);
}

Test(tdx_guest, real_quote_round_trip)
{
        uint8_t rd[64], *b = NULL, r2[48];
        cscp_tdx_quote_t q;
        size_t len = 0;
        char why[512];
        int k = cscp_tdx_guest_probe(NULL, why, sizeof(why));

        if (k == CSCP_E_UNSUPPORTED)
                cr_skip_test("%s", why);
        cr_assert_eq(k, 0, "%s", why);
        random_rd(rd);
        k = cscp_tdx_guest_quote(NULL, rd, &b, &len, why, sizeof(why));
        cr_assert_eq(k, 0, "%s", why);
        harness_keep(b);
        cr_assert_eq(cscp_tdx_quote_parse(b, len, &q, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(memcmp(q.report_data, rd, 64), 0);
        cr_assert_eq(cscp_tdx_guest_rtmr_read(NULL, 2, r2), 0);
        if (harness_fixtures_dir())
                assert_verifies(b, len, harness_path(harness_fixtures_dir(), "tdx/go-tdx-guest/trusted_root.pem"), rd);
}

/* ------------------------------------------------------------ CCEL */

static const char *fx(const char *name)
{
        const char *d = harness_fixtures_dir();
        char *p;
        struct stat st;

        if (!d)
                cr_skip_test("../shared/fixtures not found (set CSCP_FIXTURES): no CCEL fixture");
        p = harness_path(d, "tdx/go-tdx-guest");
        if (stat(p, &st) < 0)
                cr_skip_test("%s absent: no CCEL fixture", p);
        return harness_path(p, name);
}

static uint8_t *load(const char *path, size_t *len)
{
        uint8_t *b = NULL;
        int k = cscp_file_read(path, 1 << 20, &b, len);

        cr_assert_eq(k, 0, "%s: %s", path, cscp_strerror(k));
        return harness_keep(b);
}

static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_checksum(uint8_t *t, size_t len)
{
        uint8_t sum = 0;

        t[9] = 0;
        for (size_t i = 0; i < len; i++)
                sum = (uint8_t)(sum + t[i]);
        t[9] = (uint8_t)(0x100 - sum);
}

/* cscp_tdx_guest_ccel_read with table bytes t (len) and the fixture data must fail with code naming want. */
static void ccel_fails(const uint8_t *t, size_t len, const char *data, int code, const char *want)
{
        char *dir = harness_keep(harness_tmpdir()), *tp = harness_path(dir, "CCEL"), err[512];
        cscp_tdx_guest_paths_t p = {.ccel_table = tp, .ccel_data = data};
        uint8_t *b = NULL;
        size_t n = 0;
        int k;

        cr_assert_eq(cscp_file_write_atomic(tp, t, len, 0644), 0);
        k = cscp_tdx_guest_ccel_read(&p, &b, &n, err, sizeof(err));
        cr_assert_eq(k, code, "got %s (%s), wanted %s", cscp_err_name(k), err, cscp_err_name(code));
        cr_assert_null(b);
        cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
        cr_log_info("refused as expected: %s", err);
}

Test(tdx_guest, ccel_fixture_reads_whole)
{
        const char *tp = fx("ccel_ccel_table.dat"), *dp = fx("ccel_ccel_data.dat");
        cscp_tdx_guest_paths_t p = {.ccel_table = tp, .ccel_data = dp};
        size_t tlen = 0, dlen = 0, n = 0;
        uint8_t *t = load(tp, &tlen), *d = load(dp, &dlen), *b = NULL;
        uint64_t laml = 0, lasa = 0;
        char err[512];
        int k;

        cr_assert_eq(tlen, CSCP_TDX_CCEL_TABLE_SIZE);
        cr_assert_eq(cscp_tdx_ccel_table_parse(t, tlen, &laml, &lasa, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(laml, 0x40000);
        cr_assert_eq(lasa, 0xbedbf000);
        k = cscp_tdx_guest_ccel_read(&p, &b, &n, err, sizeof(err));
        cr_assert_eq(k, 0, "%s", err);
        cr_assert_eq(n, dlen);
        cr_assert_eq(memcmp(b, d, n), 0);
        free(b);
}

Test(tdx_guest, damaged_ccel_tables_are_errors_naming_the_field)
{
        const char *tp = fx("ccel_ccel_table.dat"), *dp = fx("ccel_ccel_data.dat");
        size_t tlen = 0, dlen = 0;
        uint8_t *t = load(tp, &tlen), c[CSCP_TDX_CCEL_TABLE_SIZE + 8];
        char *dir = harness_keep(harness_tmpdir());

        load(dp, &dlen);
        memcpy(c, t, tlen);
        c[10] ^= 1;
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "checksum at offset 9");

        memcpy(c, t, tlen);
        c[3] = 'X';
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "signature at offset 0: 'CCEX', not CCEL");

        ccel_fails(t, 40, dp, CSCP_E_PROTO, "length at offset 4: 56, but the table holds 40 bytes");
        ccel_fails(t, 4, dp, CSCP_E_PROTO, "truncated before the length field");

        memcpy(c, t, tlen);
        c[4] = 40;
        fix_checksum(c, 40);
        ccel_fails(c, 40, dp, CSCP_E_PROTO, "length at offset 4: 40, less than the 56-byte CCEL table");

        memcpy(c, t, tlen);
        put64(c + 40, dlen + 4096);
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "bytes, but the CCEL table laml at offset 40 says 266240");

        memcpy(c, t, tlen);
        put64(c + 40, 4096);
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "longer than the CCEL table laml (4096 bytes)");

        memcpy(c, t, tlen);
        put64(c + 40, (uint64_t)CSCP_TDX_CCEL_MAX + 1);
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_TOO_BIG, "laml at offset 40: 16777217 bytes, over the 16777216-byte limit");

        memcpy(c, t, tlen);
        put64(c + 40, 0);
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "laml at offset 40: 0");

        memcpy(c, t, tlen);
        put64(c + 48, 0);
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_PROTO, "lasa at offset 48: 0");

        memcpy(c, t, tlen);
        c[36] = 1;
        fix_checksum(c, tlen);
        ccel_fails(c, tlen, dp, CSCP_E_UNSUPPORTED, "cc_type at offset 36: 1 (only 2, Intel TDX)");

        /* a longer table (a later revision) is fine when its length field says so */
        memcpy(c, t, tlen);
        memset(c + tlen, 0, 8);
        c[4] = (uint8_t)(tlen + 8);
        fix_checksum(c, tlen + 8);
        {
                uint64_t laml = 0;
                char err[256];

                cr_assert_eq(cscp_tdx_ccel_table_parse(c, tlen + 8, &laml, NULL, err, sizeof(err)), 0, "%s", err);
                cr_assert_eq(laml, 0x40000);
        }

        ccel_fails(t, tlen, harness_path(dir, "no-data"), -ENOENT, "no-data: No such file or directory");
        {
                cscp_tdx_guest_paths_t p = {.ccel_table = harness_path(dir, "no-table"), .ccel_data = dp};
                uint8_t *b = NULL;
                size_t n = 0;
                char err[512];

                cr_assert_eq(cscp_tdx_guest_ccel_read(&p, &b, &n, err, sizeof(err)), -ENOENT);
                cr_assert_not_null(strstr(err, "no-table"), "%s", err);
        }
}

/* Seed format (tests/fuzz/fuzz-ccel-table.c): the table bytes. */
Test(tdx_guest, fuzz_seeds_ccel_table)
{
        const char *tp = fx("ccel_ccel_table.dat"), *build = getenv("CSCP_BUILD_DIR");
        size_t tlen = 0;
        uint8_t *t = load(tp, &tlen), c[CSCP_TDX_CCEL_TABLE_SIZE];
        char *dir;

        if (!build)
                cr_skip_test("CSCP_BUILD_DIR not set");
        dir = harness_path(build, "fuzz-seeds");
        (void)mkdir(dir, 0755);
        dir = harness_path(dir, "ccel-table");
        (void)mkdir(dir, 0755);
        cr_assert_eq(cscp_file_write_atomic(harness_path(dir, "cos-113.table"), t, tlen, 0644), 0);
        memcpy(c, t, tlen);
        c[36] = 1;
        fix_checksum(c, tlen);
        cr_assert_eq(cscp_file_write_atomic(harness_path(dir, "cc-type-1.table"), c, tlen, 0644), 0);
}
