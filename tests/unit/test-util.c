/* SPDX-License-Identifier: Apache-2.0 */
/* Hex, nonces, state files, error names (include/cscp/util.h, error.h). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cscp/error.h"
#include "cscp/util.h"

/* ---- hex -------------------------------------------------------------- */

Test(hex, encode)
{
        static const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
        char out[2 * sizeof(in) + 1];

        memset(out, 'Z', sizeof(out));
        cscp_hex_encode(in, sizeof(in), out);
        cr_assert_str_eq(out, "00017f80abff");

        memset(out, 'Z', sizeof(out));
        cscp_hex_encode(in, 0, out);
        cr_assert_str_eq(out, "");
}

Test(hex, decode)
{
        uint8_t out[8];
        size_t len = 99;

        memset(out, 0xee, sizeof(out));
        cr_assert_eq(cscp_hex_decode("00017f80abff", out, sizeof(out), &len), 0);
        cr_assert_eq(len, 6);
        cr_assert_arr_eq(out, ((const uint8_t[]){0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}), 6);
}

Test(hex, decode_exact_max)
{
        uint8_t out[4];
        size_t len = 0;

        cr_assert_eq(cscp_hex_decode("deadbeef", out, 4, &len), 0);
        cr_assert_eq(len, 4);
        cr_assert_arr_eq(out, ((const uint8_t[]){0xde, 0xad, 0xbe, 0xef}), 4);
}

Test(hex, decode_too_long)
{
        uint8_t out[8];
        size_t len = 12345;

        memset(out, 0xee, sizeof(out));
        cr_assert_eq(cscp_hex_decode("deadbeef00", out, 4, &len), -E2BIG);
        cr_assert_eq(len, 12345, "ret_len written on failure");
        for (size_t i = 4; i < sizeof(out); i++)
                cr_assert_eq(out[i], 0xee, "wrote beyond max at %zu", i);
        cr_assert_eq(cscp_hex_decode("00", out, 0, &len), -E2BIG);
}

Test(hex, decode_bad)
{
        static const char *const bad[] = {
                "abc", "0",  "zz", "0g",    "g0",    "0x00",     "00 ",   " 00",
                "+1",  "-1", "0-", "00:11", "ab\n0", "\xc3\xa9", "0\x01",
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t out[16];
                size_t len = 12345;
                int r = cscp_hex_decode(bad[i], out, sizeof(out), &len);

                cr_expect_eq(r, -EINVAL, "decode \"%s\": got %d, want -EINVAL", bad[i], r);
                cr_expect_eq(len, 12345, "decode \"%s\": ret_len written on failure", bad[i]);
        }
}

Test(hex, round_trip)
{
        uint8_t in[256], out[256];
        char hex[2 * sizeof(in) + 1];
        size_t len = 0, i;

        for (i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)i;
        cscp_hex_encode(in, sizeof(in), hex);
        cr_assert_eq(strlen(hex), 2 * sizeof(in));
        for (i = 0; hex[i]; i++)
                cr_assert((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'), "not lower-case hex");
        cr_assert_eq(cscp_hex_decode(hex, out, sizeof(out), &len), 0);
        cr_assert_eq(len, sizeof(in));
        cr_assert_arr_eq(in, out, sizeof(in));
}

/* ---- nonces ----------------------------------------------------------- */

Test(nonce, check_len)
{
        cr_assert_eq(CSCP_NONCE_MIN, 20);
        cr_assert_eq(CSCP_NONCE_MAX, 64);
        cr_assert_eq(cscp_nonce_check_len(0), CSCP_E_NONCE);
        cr_assert_eq(cscp_nonce_check_len(19), CSCP_E_NONCE);
        cr_assert_eq(cscp_nonce_check_len(20), 0);
        cr_assert_eq(cscp_nonce_check_len(32), 0);
        cr_assert_eq(cscp_nonce_check_len(64), 0);
        cr_assert_eq(cscp_nonce_check_len(65), CSCP_E_NONCE);
        cr_assert_eq(cscp_nonce_check_len(SIZE_MAX), CSCP_E_NONCE);
}

Test(nonce, draw)
{
        uint8_t a[CSCP_NONCE_DEFAULT], b[CSCP_NONCE_DEFAULT], zero[CSCP_NONCE_DEFAULT] = {0};

        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        cr_assert_eq(cscp_nonce_draw(a, sizeof(a)), 0);
        cr_assert_eq(cscp_nonce_draw(b, sizeof(b)), 0);
        cr_assert_arr_neq(a, b, sizeof(a), "two draws gave the same nonce");
        cr_assert_arr_neq(a, zero, sizeof(a));
}

Test(nonce, draw_lengths)
{
        uint8_t buf[128], before[128];

        cr_assert_eq(cscp_nonce_draw(buf, 20), 0);
        cr_assert_eq(cscp_nonce_draw(buf, 64), 0);

        memset(buf, 0xa5, sizeof(buf));
        memcpy(before, buf, sizeof(buf));
        cr_assert_eq(cscp_nonce_draw(buf, 19), CSCP_E_NONCE);
        cr_assert_eq(cscp_nonce_draw(buf, 65), CSCP_E_NONCE);
        cr_assert_eq(cscp_nonce_draw(buf, 0), CSCP_E_NONCE);
        cr_assert_arr_eq(buf, before, sizeof(buf), "buffer written although the length was refused");

        /* Exactly len bytes are written. */
        memset(buf, 0xa5, sizeof(buf));
        cr_assert_eq(cscp_nonce_draw(buf, 20), 0);
        for (size_t i = 20; i < sizeof(buf); i++)
                cr_assert_eq(buf[i], 0xa5, "wrote past len at %zu", i);
}

/* ---- files ------------------------------------------------------------ */

static char *dir;

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void files_setup(void)
{
        static char tmpl[] = "/tmp/cscp-test-util-XXXXXX";

        dir = mkdtemp(tmpl);
        cr_assert_not_null(dir, "mkdtemp: %s", strerror(errno));
        umask(022);
}

static void files_teardown(void)
{
        if (dir)
                nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(files, .init = files_setup, .fini = files_teardown);

static char *in_dir(const char *name)
{
        char *p = NULL;

        cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

static void put_file(const char *path, const char *content)
{
        FILE *f = fopen(path, "we");

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        cr_assert_geq(fputs(content, f), 0);
        cr_assert_eq(fclose(f), 0);
}

/* Whole file via stdio (not the code under test). */
static char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *b = NULL;
        size_t n = 0, cap = 0;
        int c;

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        while ((c = fgetc(f)) != EOF) {
                if (n + 1 >= cap) {
                        cap = cap ? 2 * cap : 64;
                        b = realloc(b, cap);
                        cr_assert_not_null(b);
                }
                b[n++] = (char)c;
        }
        fclose(f);
        if (!b)
                b = calloc(1, 1);
        b[n] = '\0';
        if (ret_len)
                *ret_len = n;
        return b;
}

static size_t dir_entries(void)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        cr_assert_not_null(d);
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

Test(files, write_atomic_content_and_mode)
{
        char *path = in_dir("state"), *tmp = in_dir("state.tmp"), *got;
        static const char data[] = "first\0binary\xff";
        struct stat st;
        size_t len;

        cr_assert_eq(cscp_file_write_atomic(path, data, sizeof(data), 0600), 0);
        got = slurp(path, &len);
        cr_assert_eq(len, sizeof(data));
        cr_assert_arr_eq(got, data, sizeof(data));
        free(got);
        cr_assert_eq(lstat(path, &st), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
        cr_assert_eq(access(tmp, F_OK), -1, ".tmp left behind");
        cr_assert_eq(errno, ENOENT);
        cr_assert_eq(dir_entries(), 1);

        cr_assert_eq(cscp_file_write_atomic(path, "x", 1, 0644), 0);
        cr_assert_eq(lstat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0644, "mode %o", st.st_mode & 07777);
        free(path);
        free(tmp);
}

Test(files, write_atomic_replaces)
{
        char *path = in_dir("state"), *got;
        struct stat before, after;
        size_t len;

        put_file(path, "old content that is much longer than the new one\n");
        cr_assert_eq(stat(path, &before), 0);
        cr_assert_eq(cscp_file_write_atomic(path, "new", 3, 0600), 0);
        got = slurp(path, &len);
        cr_assert_eq(len, 3, "old bytes remain after the new content");
        cr_assert_arr_eq(got, "new", 3);
        free(got);
        cr_assert_eq(stat(path, &after), 0);
        cr_assert_neq(before.st_ino, after.st_ino, "file rewritten in place, not renamed over");
        cr_assert_eq(dir_entries(), 1, "something left beside the file");

        cr_assert_eq(cscp_file_write_atomic(path, "", 0, 0600), 0);
        got = slurp(path, &len);
        cr_assert_eq(len, 0);
        free(got);
        free(path);
}

Test(files, write_atomic_concurrent_writers)
{
        char *path = in_dir("state"), *got;
        pid_t kids[2];
        size_t len;

        /* Two processes rewrite one file 200 times each: every read sees one
         * whole version, and no temporary is left behind. */
        for (int k = 0; k < 2; k++) {
                kids[k] = fork();
                cr_assert_geq(kids[k], 0);
                if (kids[k] == 0) {
                        const char *mine = k ? "BBBBBBBBBBBBBBBB" : "aaaaaaaa";
                        for (int i = 0; i < 200; i++)
                                if (cscp_file_write_atomic(path, mine, strlen(mine), 0600) < 0)
                                        _exit(1);
                        _exit(0);
                }
        }
        for (int k = 0; k < 2; k++) {
                int st;
                cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed", k);
        }
        got = slurp(path, &len);
        cr_assert(len == 8 || len == 16, "torn file of %zu bytes", len);
        for (size_t i = 1; i < len; i++)
                cr_assert_eq(got[i], got[0], "mixed content");
        free(got);
        cr_assert_eq(dir_entries(), 1, "temporaries left behind");
        free(path);
}

Test(files, write_atomic_stale_tmp_symlink)
{
        char *path = in_dir("state"), *tmp = in_dir("state.tmp"), *victim = in_dir("victim"), *got;
        size_t len;
        int r;

        /* Dangling symlink at <path>.tmp: nothing may be created through it. */
        cr_assert_eq(symlink(victim, tmp), 0);
        r = cscp_file_write_atomic(path, "secret", 6, 0600);
        cr_assert_eq(access(victim, F_OK), -1, "file created through the .tmp symlink (r=%d)", r);
        if (r == 0) {
                got = slurp(path, &len);
                cr_assert_eq(len, 6);
                free(got);
        } else
                cr_assert_lt(r, 0);

        /* Symlink at <path>.tmp to an existing file: its content must survive. */
        unlink(tmp);
        unlink(path);
        put_file(victim, "precious");
        cr_assert_eq(symlink(victim, tmp), 0);
        r = cscp_file_write_atomic(path, "secret", 6, 0600);
        got = slurp(victim, &len);
        cr_assert_str_eq(got, "precious", "written through the .tmp symlink (r=%d)", r);
        free(got);
        free(path);
        free(tmp);
        free(victim);
}

Test(files, write_atomic_target_symlink_replaced_not_followed)
{
        char *path = in_dir("state"), *victim = in_dir("victim"), *got;
        struct stat st;
        size_t len;
        int r;

        put_file(victim, "precious");
        cr_assert_eq(symlink(victim, path), 0);
        r = cscp_file_write_atomic(path, "secret", 6, 0600);
        got = slurp(victim, &len);
        cr_assert_str_eq(got, "precious", "written through the target symlink (r=%d)", r);
        free(got);
        if (r == 0) {
                cr_assert_eq(lstat(path, &st), 0);
                cr_assert(S_ISREG(st.st_mode), "target is still a symlink after success");
        }
        free(path);
        free(victim);
}

Test(files, write_atomic_missing_dir)
{
        char *path = in_dir("no/such/dir/state");
        int r;

        r = cscp_file_write_atomic(path, "x", 1, 0600);
        cr_assert_lt(r, 0);
        cr_assert_eq(r, -ENOENT, "got %d", r);
        cr_assert_eq(dir_entries(), 0, "something was created");
        free(path);
}

Test(files, read_ok)
{
        char *path = in_dir("f");
        uint8_t *buf = NULL;
        size_t len = 0;

        put_file(path, "hello world");
        cr_assert_eq(cscp_file_read(path, 4096, &buf, &len), 0);
        cr_assert_eq(len, 11);
        cr_assert_arr_eq(buf, "hello world", 11);
        free(buf);

        /* max exactly the size */
        buf = NULL;
        cr_assert_eq(cscp_file_read(path, 11, &buf, &len), 0);
        cr_assert_eq(len, 11);
        cr_assert_arr_eq(buf, "hello world", 11);
        free(buf);
        free(path);
}

Test(files, read_empty)
{
        char *path = in_dir("empty");
        uint8_t *buf = NULL;
        size_t len = 99;

        put_file(path, "");
        cr_assert_eq(cscp_file_read(path, 4096, &buf, &len), 0);
        cr_assert_eq(len, 0);
        free(buf);
        free(path);
}

Test(files, read_round_trip_with_write_atomic)
{
        char *path = in_dir("state");
        uint8_t data[10000], *buf = NULL;
        size_t len = 0, i;

        for (i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7);
        cr_assert_eq(cscp_file_write_atomic(path, data, sizeof(data), 0600), 0);
        cr_assert_eq(cscp_file_read(path, sizeof(data), &buf, &len), 0);
        cr_assert_eq(len, sizeof(data));
        cr_assert_arr_eq(buf, data, sizeof(data));
        free(buf);
        free(path);
}

Test(files, read_over_max)
{
        char *path = in_dir("f");
        uint8_t *buf = (uint8_t *)0x1;
        size_t len = 12345;
        int r;

        put_file(path, "hello world");
        r = cscp_file_read(path, 10, &buf, &len);
        cr_assert_lt(r, 0, "file over max accepted");
        cr_expect(r == -EFBIG || r == -E2BIG || r == CSCP_E_TOO_BIG, "got %d (%s)", r, cscp_err_name(r));
        cr_assert_eq(buf, (uint8_t *)0x1, "ret written on failure");
        cr_assert_eq(len, 12345, "ret_len written on failure");
        r = cscp_file_read(path, 0, &buf, &len);
        cr_assert_lt(r, 0);
        free(path);
}

Test(files, read_symlink_refused)
{
        char *path = in_dir("f"), *link = in_dir("link");
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        put_file(path, "hello");
        cr_assert_eq(symlink(path, link), 0);
        r = cscp_file_read(link, 4096, &buf, &len);
        cr_assert_lt(r, 0, "read through a symlink");
        cr_assert_null(buf);
        free(path);
        free(link);
}

Test(files, read_missing)
{
        char *path = in_dir("missing");
        uint8_t *buf = NULL;
        size_t len = 0;

        cr_assert_eq(cscp_file_read(path, 4096, &buf, &len), -ENOENT);
        cr_assert_null(buf);
        free(path);
}

Test(files, read_not_regular)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        r = cscp_file_read(dir, 4096, &buf, &len);
        cr_assert_lt(r, 0, "read a directory");
        cr_assert_null(buf);
}

/* A FIFO without a writer: opening it for reading would block forever. */
Test(files, read_fifo_refused_without_blocking, .timeout = 10)
{
        char *path = in_dir("fifo");
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        cr_assert_eq(mkfifo(path, 0600), 0);
        r = cscp_file_read(path, 4096, &buf, &len);
        cr_assert_lt(r, 0, "read a FIFO");
        cr_assert_null(buf);
        free(path);
}

/* ---- error names ------------------------------------------------------ */

Test(error, project_codes)
{
        static const struct {
                int code;
                const char *name;
                const char *text;
        } t[] = {
#define X(name, value, text) {name, #name, text},
                CSCP_ERRORS(X)
#undef X
        };
        size_t i, j;

        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                cr_assert_lt(t[i].code, 0);
                cr_assert_str_eq(cscp_err_name(t[i].code), t[i].name);
                cr_assert_str_eq(cscp_strerror(t[i].code), t[i].text, "%s", t[i].name);
                for (j = 0; j < i; j++)
                        cr_assert_neq(t[i].code, t[j].code);
        }
}

Test(error, errno_codes)
{
        static const struct {
                int e;
                const char *name;
        } t[] = {
                {ENOENT, "ENOENT"},
                {EINVAL, "EINVAL"},
                {ENOMEM, "ENOMEM"},
                {E2BIG, "E2BIG"},
                {EFBIG, "EFBIG"},
                {EEXIST, "EEXIST"},
                {EACCES, "EACCES"},
                {EPERM, "EPERM"},
                {ETIMEDOUT, "ETIMEDOUT"},
                {EIO, "EIO"},
                {ECONNREFUSED, "ECONNREFUSED"},
                {ECONNRESET, "ECONNRESET"},
                {ELOOP, "ELOOP"},
                {EAGAIN, "EAGAIN"},
        };
        size_t i;

        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const char *s = cscp_strerror(-t[i].e);

                cr_assert_str_eq(cscp_err_name(-t[i].e), t[i].name);
                cr_assert_not_null(s);
                cr_assert_str_eq(s, strerror(t[i].e), "%s", t[i].name);
        }
}

Test(error, unknown)
{
        cr_assert_str_eq(cscp_err_name(-999999), "?");
        cr_assert_str_eq(cscp_err_name(-1014), "?", "one past the last project code");
        cr_assert_str_eq(cscp_err_name(-999), "?");
        cr_assert_str_eq(cscp_err_name(1000), "?", "positive is not an error");
        cr_assert_str_eq(cscp_err_name(-2147483647 - 1), "?");
        cr_assert_not_null(cscp_strerror(-999999));
        cr_assert_not_null(cscp_strerror(-2147483647 - 1));
        cr_assert_not_null(cscp_strerror(-1014));
        cr_assert_not_null(cscp_strerror(0));
}
