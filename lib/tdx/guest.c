/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel TDX, generation side: the files a TD guest's Linux offers
 * (include/cscp/tdx-guest.h, docs/tdx.md "Generation side (Linux ABI)").
 *
 * configfs-tsm (Documentation/ABI/testing/configfs-tsm-report): one report
 * instance per request, named cscp-<pid>-<counter>-<random>, removed on every
 * path. `generation` counts the writes to the instance's inputs; it is read
 * before inblob is written and after outblob is read, and must have moved by
 * exactly our one write, else another writer changed inblob between our write
 * and our read: the quote may carry its REPORTDATA and is not used.
 *
 * TSM measurement registers (sysfs-devices-virtual-misc-tdx_guest, 6.16):
 * rtmrN:sha384 reads as the 48-byte value; 48 bytes written at offset 0
 * extend it.
 *
 * CCEL: the ACPI table (Linux include/acpi/actbl2.h struct acpi_table_ccel;
 * Intel TDX GHCI "CC Event Log"): ACPI header [36], CC type u8, CC subtype
 * u8, reserved u16, log area minimum length (LAML) u64, log area start
 * address (LASA) u64; Linux exposes the log area as tables/data/CCEL, LAML
 * bytes long (drivers/acpi/sysfs.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "error.h"
#include "tdx-guest.h"
#include "tdx.h"

#define QUOTE_ATTEMPTS 3
#define SMALL_MAX      64 /* provider, generation */
#define RACED          1  /* one_attempt(): generation moved by another writer */

static const char *tsm_root(const cscp_tdx_guest_paths_t *p)
{
        return p && p->tsm_root ? p->tsm_root : CSCP_TDX_TSM_ROOT;
}

static const char *mr_root(const cscp_tdx_guest_paths_t *p)
{
        return p && p->mr_root ? p->mr_root : CSCP_TDX_MR_ROOT;
}

static const char *ccel_table(const cscp_tdx_guest_paths_t *p)
{
        return p && p->ccel_table ? p->ccel_table : CSCP_TDX_CCEL_TABLE;
}

static const char *ccel_data(const cscp_tdx_guest_paths_t *p)
{
        return p && p->ccel_data ? p->ccel_data : CSCP_TDX_CCEL_DATA;
}

__attribute__((format(printf, 3, 4))) static int path_fmt(char *buf, size_t n, const char *fmt, ...)
{
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(buf, n, fmt, ap);
        va_end(ap);
        return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

/* Text from a file, made printable for a message (at most 32 characters). */
static void printable(const uint8_t *b, size_t n, char out[36])
{
        size_t i, o = 0;

        while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\0'))
                n--;
        for (i = 0; i < n && o < 32; i++)
                out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
        if (i < n)
                out[o++] = '.', out[o++] = '.', out[o++] = '.';
        out[o] = '\0';
}

/*
 * Reads a file to its end, at most max bytes (sysfs/configfs files report
 * sizes that mean nothing, so the size is what read() gives). -EFBIG when it
 * holds more than max. *ret is malloc'd, max + 1 bytes.
 */
static int read_all(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
        uint8_t *buf;
        size_t got = 0;
        int fd, k;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 1);
        if (!buf) {
                k = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + got, max + 1 - got);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        k = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
                if (got > max) {
                        k = -EFBIG;
                        goto out;
                }
        }
        *ret = buf;
        *ret_len = got;
        buf = NULL;
        k = 0;
out:
        free(buf);
        close(fd);
        return k;
}

static int read_text(const char *path, char out[SMALL_MAX + 1], char *err, size_t err_len)
{
        uint8_t *b = NULL;
        size_t n = 0;
        int k = read_all(path, SMALL_MAX, &b, &n);

        if (k == -EFBIG)
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: more than %d bytes", path, SMALL_MAX);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "read %s: %s", path, strerror(-k));
        memcpy(out, b, n);
        out[n] = '\0';
        free(b);
        return (int)n;
}

/* A decimal generation count, one trailing newline allowed. */
static int read_generation(const char *path, uint64_t *ret, char *err, size_t err_len)
{
        char s[SMALL_MAX + 1], shown[36];
        uint64_t v = 0;
        int k, n, i;

        if ((k = read_text(path, s, err, err_len)) < 0)
                return k;
        n = k;
        if (n > 0 && s[n - 1] == '\n')
                n--;
        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
                        break;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (n == 0 || i != n) {
                printable((const uint8_t *)s, (size_t)k, shown);
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: '%s' is not a decimal generation count", path,
                                    shown);
        }
        *ret = v;
        return 0;
}

/* 0 when the provider file says tdx_guest (one trailing newline allowed). */
static int check_provider(const char *path, char *err, size_t err_len)
{
        char s[SMALL_MAX + 1], shown[36];
        int k, n;

        if ((k = read_text(path, s, err, err_len)) < 0)
                return k;
        n = k;
        if (n > 0 && s[n - 1] == '\n')
                n--;
        if (n == 9 && memcmp(s, "tdx_guest", 9) == 0)
                return 0;
        printable((const uint8_t *)s, (size_t)k, shown);
        return cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "%s: TSM provider '%s', not tdx_guest", path, shown);
}

/* A new instance directory under <root>/report: cscp-<pid>-<counter>-<random>. */
static int instance_make(const char *root, char *dir, size_t n, char *err, size_t err_len)
{
        static atomic_uint counter;
        unsigned char rnd[4];
        int k;

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return cscp_err_set(err, err_len, CSCP_E_CRYPTO, "no random bytes for a report instance name");
        k = path_fmt(dir, n, "%s/report/cscp-%ld-%u-%02x%02x%02x%02x", root, (long)getpid(),
                     atomic_fetch_add(&counter, 1), rnd[0], rnd[1], rnd[2], rnd[3]);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "%s/report: path too long", root);
        if (mkdir(dir, 0700) < 0) {
                k = -errno;
                return cscp_err_set(err, err_len, k, "mkdir %s: %s", dir, strerror(-k));
        }
        return 0;
}

/* One request in the instance dir: 0, RACED (err says how), or negative. */
static int one_attempt(const char *dir, const uint8_t report_data[64], uint8_t **ret, size_t *ret_len, char *err,
                       size_t err_len)
{
        char path[PATH_MAX], perr[200];
        uint64_t gen0 = 0, gen1 = 0;
        cscp_tdx_quote_t q;
        uint8_t *quote = NULL;
        size_t quote_len = 0;
        ssize_t n;
        int fd, k;

        if ((k = path_fmt(path, sizeof(path), "%s/provider", dir)) < 0 || (k = check_provider(path, err, err_len)) < 0)
                return k;
        if ((k = path_fmt(path, sizeof(path), "%s/generation", dir)) < 0 ||
            (k = read_generation(path, &gen0, err, err_len)) < 0)
                return k;

        /* inblob: the 64 bytes in one write (configfs commits them when the file is closed) */
        if ((k = path_fmt(path, sizeof(path), "%s/inblob", dir)) < 0)
                return k;
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                k = -errno;
                return cscp_err_set(err, err_len, k, "open %s: %s", path, strerror(-k));
        }
        do
                n = write(fd, report_data, 64);
        while (n < 0 && errno == EINTR);
        if (n != 64) {
                k = n < 0 ? -errno : CSCP_E_PROTO;
                close(fd);
                if (n < 0)
                        return cscp_err_set(err, err_len, k, "write %s: %s", path, strerror(-k));
                return cscp_err_set(err, err_len, k, "write %s: %zd of 64 bytes written", path, n);
        }
        if (close(fd) < 0) {
                k = -errno;
                return cscp_err_set(err, err_len, k, "close %s: %s", path, strerror(-k));
        }

        if ((k = path_fmt(path, sizeof(path), "%s/outblob", dir)) < 0)
                return k;
        k = read_all(path, CSCP_TDX_QUOTE_MAX, &quote, &quote_len);
        if (k == -EFBIG)
                return cscp_err_set(err, err_len, CSCP_E_TOO_BIG, "%s: more than %u bytes (the TDX quote limit)", path,
                                    CSCP_TDX_QUOTE_MAX);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "read %s: %s", path, strerror(-k));
        if (quote_len == 0) {
                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: empty", path);
                goto fail;
        }

        if ((k = path_fmt(path, sizeof(path), "%s/generation", dir)) < 0 ||
            (k = read_generation(path, &gen1, err, err_len)) < 0)
                goto fail;
        if (gen1 != gen0 + 1) {
                k = cscp_err_set(err, err_len, RACED, "%s went from %" PRIu64 " to %" PRIu64 " (another writer)", path,
                                 gen0, gen1);
                goto fail;
        }

        if ((k = cscp_tdx_quote_parse(quote, quote_len, &q, perr, sizeof(perr))) < 0) {
                cscp_err_set(err, err_len, k, "%s/outblob: not a TDX quote: %s", dir, perr);
                goto fail;
        }
        if (CRYPTO_memcmp(q.report_data, report_data, 64) != 0) {
                k = cscp_err_set(err, err_len, CSCP_E_PROTO,
                                 "%s/outblob: the quote's REPORTDATA is not what inblob was given", dir);
                goto fail;
        }
        *ret = quote;
        *ret_len = quote_len;
        return 0;
fail:
        free(quote);
        return k;
}

int cscp_tdx_guest_quote(const cscp_tdx_guest_paths_t *p, const uint8_t report_data[64], uint8_t **ret, size_t *ret_len,
                         char *err, size_t err_len)
{
        const char *root = tsm_root(p);
        char dir[PATH_MAX], last[256] = "";
        uint8_t *quote = NULL;
        size_t quote_len = 0;
        int k;

        if (err && err_len)
                err[0] = '\0';
        if (!report_data || !ret || !ret_len)
                return cscp_err_set(err, err_len, -EINVAL, "no report data or result pointer");
        for (int attempt = 0; attempt < QUOTE_ATTEMPTS; attempt++) {
                k = instance_make(root, dir, sizeof(dir), err, err_len);
                if (k == -ENOENT || k == -ENOTDIR || k == -ENXIO)
                        return cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "no TDX guest here: mkdir %s: %s", dir,
                                            strerror(-k));
                if (k < 0)
                        return k;
                k = one_attempt(dir, report_data, &quote, &quote_len, err, err_len);
                /* The instance goes on every path. */
                if (rmdir(dir) < 0 && k >= 0) {
                        int e = errno;

                        free(quote);
                        quote = NULL;
                        return cscp_err_set(err, err_len, -e, "rmdir %s: %s", dir, strerror(e));
                }
                if (k == RACED) {
                        snprintf(last, sizeof(last), "%s", err ? err : "");
                        continue;
                }
                if (k < 0)
                        return k;
                *ret = quote;
                *ret_len = quote_len;
                return 0;
        }
        return cscp_err_set(err, err_len, -EAGAIN, "%s/report: another writer raced each of %d attempts (last: %s)",
                            root, QUOTE_ATTEMPTS, last);
}

int cscp_tdx_guest_probe(const cscp_tdx_guest_paths_t *p, char *why, size_t why_len)
{
        const char *root = tsm_root(p);
        char report[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
        struct stat st;
        int k, r;

        if (why && why_len)
                why[0] = '\0';
        if ((k = path_fmt(report, sizeof(report), "%s/report", root)) < 0)
                return cscp_err_set(why, why_len, k, "%s: path too long", root);
        if (stat(report, &st) < 0) {
                k = errno;
                return cscp_err_set(why, why_len, CSCP_E_UNSUPPORTED, "no TDX guest here: %s: %s", report, strerror(k));
        }
        if (!S_ISDIR(st.st_mode))
                return cscp_err_set(why, why_len, CSCP_E_UNSUPPORTED, "no TDX guest here: %s: %s", report,
                                    strerror(ENOTDIR));
        /* The provider shows only inside an instance. */
        k = instance_make(root, dir, sizeof(dir), why, why_len);
        if (k == -ENOENT || k == -ENOTDIR || k == -ENXIO)
                return cscp_err_set(why, why_len, CSCP_E_UNSUPPORTED, "no TDX guest here: mkdir %s: %s", dir,
                                    strerror(-k));
        if (k < 0)
                return k;
        r = path_fmt(path, sizeof(path), "%s/provider", dir);
        if (r == 0)
                r = check_provider(path, why, why_len);
        if (rmdir(dir) < 0 && r == 0) {
                k = errno;
                return cscp_err_set(why, why_len, -k, "rmdir %s: %s", dir, strerror(k));
        }
        return r;
}

static int rtmr_path(const cscp_tdx_guest_paths_t *p, unsigned rtmr, char *buf, size_t n)
{
        if (rtmr > 3)
                return -EINVAL;
        return path_fmt(buf, n, "%s/rtmr%u:sha384", mr_root(p), rtmr);
}

int cscp_tdx_guest_rtmr_read(const cscp_tdx_guest_paths_t *p, unsigned rtmr, uint8_t ret[CSCP_TDX_RTMR_SIZE])
{
        uint8_t buf[CSCP_TDX_RTMR_SIZE + 1];
        char path[PATH_MAX];
        ssize_t n;
        int fd, k;

        if (!ret)
                return -EINVAL;
        if ((k = rtmr_path(p, rtmr, path, sizeof(path))) < 0)
                return k;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        do
                n = pread(fd, buf, sizeof(buf), 0);
        while (n < 0 && errno == EINTR);
        k = n < 0 ? -errno : 0;
        close(fd);
        if (k < 0)
                return k;
        if (n != CSCP_TDX_RTMR_SIZE)
                return CSCP_E_PROTO; /* not a SHA-384 register */
        memcpy(ret, buf, CSCP_TDX_RTMR_SIZE);
        return 0;
}

int cscp_tdx_guest_rtmr_extend(const cscp_tdx_guest_paths_t *p, unsigned rtmr, const uint8_t digest[CSCP_TDX_RTMR_SIZE])
{
        char path[PATH_MAX];
        ssize_t n;
        int fd, k;

        if (!digest)
                return -EINVAL;
        if ((k = rtmr_path(p, rtmr, path, sizeof(path))) < 0)
                return k;
        if (rtmr < 2)
                return -EPERM; /* RTMR0/1: the firmware's */
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        do
                n = pwrite(fd, digest, CSCP_TDX_RTMR_SIZE, 0);
        while (n < 0 && errno == EINTR);
        k = n < 0 ? -errno : n != CSCP_TDX_RTMR_SIZE ? CSCP_E_PROTO : 0;
        if (close(fd) < 0 && k == 0)
                k = -errno;
        return k;
}

static uint64_t le64(const uint8_t *b)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = v << 8 | b[i];
        return v;
}

int cscp_tdx_ccel_table_parse(const uint8_t *buf, size_t len, uint64_t *ret_laml, uint64_t *ret_lasa, char *err,
                              size_t err_len)
{
        uint64_t laml, lasa;
        uint32_t length;
        char shown[36];
        uint8_t sum = 0;

        if (err && err_len)
                err[0] = '\0';
        if (!buf && len)
                return cscp_err_set(err, err_len, -EINVAL, "no table buffer");
        if (len < 8)
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "CCEL table: %zu bytes, truncated before the length field", len);
        if (memcmp(buf, "CCEL", 4) != 0) {
                printable(buf, 4, shown);
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "CCEL table signature at offset 0: '%s', not CCEL",
                                    shown);
        }
        length = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24;
        if (length < CSCP_TDX_CCEL_TABLE_SIZE)
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "CCEL table length at offset 4: %" PRIu32 ", less than the %d-byte CCEL table",
                                    length, CSCP_TDX_CCEL_TABLE_SIZE);
        if (length != len)
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "CCEL table length at offset 4: %" PRIu32 ", but the table holds %zu bytes", length,
                                    len);
        for (size_t i = 0; i < len; i++)
                sum = (uint8_t)(sum + buf[i]);
        if (sum != 0)
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "CCEL table checksum at offset 9: the bytes sum to 0x%02x mod 256, not 0", sum);
        if (buf[36] != 2)
                return cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED,
                                    "CCEL table cc_type at offset 36: %u (only 2, Intel TDX)", buf[36]);
        laml = le64(buf + 40);
        lasa = le64(buf + 48);
        if (laml == 0)
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "CCEL table laml at offset 40: 0 (no log area)");
        if (lasa == 0)
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "CCEL table lasa at offset 48: 0 (no log area)");
        if (ret_laml)
                *ret_laml = laml;
        if (ret_lasa)
                *ret_lasa = lasa;
        return 0;
}

int cscp_tdx_guest_ccel_read(const cscp_tdx_guest_paths_t *p, uint8_t **ret, size_t *ret_len, char *err, size_t err_len)
{
        const char *tpath = ccel_table(p), *dpath = ccel_data(p);
        uint8_t *table = NULL, *data = NULL;
        size_t table_len = 0, data_len = 0;
        uint64_t laml = 0, lasa = 0;
        char perr[200];
        int k;

        if (err && err_len)
                err[0] = '\0';
        if (!ret || !ret_len)
                return cscp_err_set(err, err_len, -EINVAL, "no result pointer");
        k = read_all(tpath, CSCP_TDX_CCEL_TABLE_MAX, &table, &table_len);
        if (k == -EFBIG)
                return cscp_err_set(err, err_len, CSCP_E_TOO_BIG, "%s: more than %d bytes, not a CCEL table", tpath,
                                    CSCP_TDX_CCEL_TABLE_MAX);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "read %s: %s", tpath, strerror(-k));
        k = cscp_tdx_ccel_table_parse(table, table_len, &laml, &lasa, perr, sizeof(perr));
        free(table);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "%s: %s", tpath, perr);
        if (laml > CSCP_TDX_CCEL_MAX)
                return cscp_err_set(err, err_len, CSCP_E_TOO_BIG,
                                    "%s: CCEL table laml at offset 40: %" PRIu64 " bytes, over the %u-byte limit",
                                    tpath, laml, CSCP_TDX_CCEL_MAX);
        k = read_all(dpath, (size_t)laml, &data, &data_len);
        if (k == -EFBIG)
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "%s: longer than the CCEL table laml (%" PRIu64 " bytes)", dpath, laml);
        if (k < 0)
                return cscp_err_set(err, err_len, k, "read %s: %s", dpath, strerror(-k));
        if (data_len != laml) {
                free(data);
                return cscp_err_set(err, err_len, CSCP_E_PROTO,
                                    "%s: %zu bytes, but the CCEL table laml at offset 40 says %" PRIu64, dpath,
                                    data_len, laml);
        }
        *ret = data;
        *ret_len = data_len;
        return 0;
}
