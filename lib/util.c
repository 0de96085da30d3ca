/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "error.h"
#include "util.h"

void cscp_hex_encode(const uint8_t *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * len] = '\0';
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int cscp_hex_decode(const char *hex, uint8_t *out, size_t max, size_t *ret_len)
{
        size_t n = strlen(hex);

        if (n % 2 != 0)
                return -EINVAL;
        if (n / 2 > max)
                return -E2BIG;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        *ret_len = n / 2;
        return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

static int fsync_dir_of(const char *path)
{
        char buf[PATH_MAX];
        int fd, r = 0;

        if (strlen(path) >= sizeof(buf))
                return -ENAMETOOLONG;
        strcpy(buf, path);
        fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int cscp_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
        char tmp[PATH_MAX];
        int fd, r;

        /* A unique temporary next to path: concurrent writers never share one,
         * and readers see the old file or the new one, never a part. */
        if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode & 07777) < 0) {
                r = -errno;
                goto fail_close;
        }
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail_close;
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail_close;
        }
        if (close(fd) < 0) {
                r = -errno;
                goto fail_unlink;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail_unlink;
        }
        return fsync_dir_of(path);

fail_close:
        close(fd);
fail_unlink:
        unlink(tmp);
        return r;
}

int cscp_file_read(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
        struct stat st;
        uint8_t *buf = NULL;
        size_t got = 0;
        int fd, r;

        /* O_NONBLOCK: a FIFO or device in the way must not hang the reader. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        if ((uintmax_t)st.st_size > max) {
                r = -EFBIG;
                goto out;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
                if (got > (size_t)st.st_size) { /* grew while reading */
                        r = -EFBIG;
                        goto out;
                }
        }
        *ret = buf;
        *ret_len = got;
        buf = NULL;
        r = 0;
out:
        free(buf);
        close(fd);
        return r;
}

int cscp_nonce_check_len(size_t len)
{
        return (len < CSCP_NONCE_MIN || len > CSCP_NONCE_MAX) ? CSCP_E_NONCE : 0;
}

int cscp_nonce_draw(uint8_t *buf, size_t len)
{
        int r = cscp_nonce_check_len(len);

        if (r < 0)
                return r;
        return RAND_bytes(buf, (int)len) == 1 ? 0 : CSCP_E_CRYPTO;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_seq_len(const unsigned char *p)
{
        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                return (p[1] & 0xc0) == 0x80 ? 2 : 0;
        if (p[0] >= 0xe0 && p[0] <= 0xef) {
                if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
                        return 0;
                if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
                        return 0;
                return 3;
        }
        if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
                        return 0;
                if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
                        return 0;
                return 4;
        }
        return 0;
}

char *cscp_text_sanitize(char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t o = 0;
        char *out;

        if (!s)
                return NULL;
        out = malloc(3 * strlen(s) + 1);
        if (!out) {
                free(s);
                return NULL;
        }
        while (*p) {
                size_t k = utf8_seq_len(p);
                if (k == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        p++;
                } else if ((k == 1 && ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)) ||
                           (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
                        out[o++] = '?'; /* C0 (but newline and tab), DEL, C1: terminal controls */
                        p += k;
                } else {
                        memcpy(out + o, p, k);
                        o += k;
                        p += k;
                }
        }
        out[o] = '\0';
        free(s);
        return out;
}
