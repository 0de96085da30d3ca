/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG PC Client firmware event log (binary_bios_measurements), reference.md §5.
 *
 * Two layouts, told apart by the first record (which is event 0 either way and
 * always in the SHA-1 layout TCG_PCClientPCREvent: u32 pcrIndex, u32
 * eventType, digest[20], u32 eventDataSize, event[]):
 *
 *   crypto-agile  the first record is EV_NO_ACTION (in PCR 0; the TDX CCEL says 1) with the Spec ID
 *                 event ("Spec ID Event03\0"); its algorithm table gives the
 *                 digest size of every algorithm, and every later record is a
 *                 TCG_PCR_EVENT2 (u32 pcrIndex, u32 eventType, u32 digestCount,
 *                 digestCount x {u16 alg, digest[size from the table]},
 *                 u32 eventSize, event[]).
 *   SHA-1 only    (TCG 1.2 / legacy UEFI) any other first record; every record
 *                 is a TCG_PCClientPCREvent and carries one SHA-1 digest.
 *
 * All integers are little-endian. The reader streams: one record is buffered at
 * a time (evlog_in_need grows the window field by field, bounded by
 * opts.max_record), nothing past the current record is read.
 *
 * Choices a user of the parser should know:
 *  - Every algorithm of the Spec ID table is accepted. Digests of algorithms
 *    replay cannot compute (anything but sha1/256/384/512, e.g. SM3_256) are
 *    skipped by their table size and kept out of ev->digests; describe says so.
 *    A table entry for a known algorithm with the wrong size is refused.
 *  - EV_NO_ACTION records are never extended (ev->extend = false), whatever
 *    PCR they name (real logs carry EV_NO_ACTION with PCR 0xFFFFFFFF). Any
 *    other record naming a PCR >= 24 is refused (CSCP_E_PROTO): it cannot be
 *    replayed, and accepting it would make a replay silently incomplete.
 *  - StartupLocality (EV_NO_ACTION, PCR 0, "StartupLocality\0" + u8) sets
 *    ev->startup_locality; an EV_EFI_HCRTM_EVENT in PCR 0 sets it to 4 (H-CRTM,
 *    as tpm2-tools and tpm2-tss replay it), so replay starts PCR 0 at 00..04.
 *  - A record header of all 0xFF (pcrIndex and eventType 0xFFFFFFFF) ends the
 *    log: firmware event-log areas (e.g. the TDX CCEL) are padded with 0xFF.
 *  - An empty input is an empty log (0 events).
 *  - Quirk: a Spec ID event whose eventDataSize ends right after vendorInfoSize
 *    (leaving out vendorInfo[]) is read on to the end of vendorInfo, as
 *    tpm2-tools does (its specid-vendordata fixture). Any other disagreement
 *    between vendorInfoSize and eventDataSize is an error.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/error.h"
#include "internal.h"

/* Event types (TCG PC Client PFP; tpm2-tools lib/efi_event.h). */
#define EV_PREBOOT_CERT                  0x00000000u
#define EV_POST_CODE                     0x00000001u
#define EV_UNUSED                        0x00000002u
#define EV_NO_ACTION                     0x00000003u
#define EV_SEPARATOR                     0x00000004u
#define EV_ACTION                        0x00000005u
#define EV_EVENT_TAG                     0x00000006u
#define EV_S_CRTM_CONTENTS               0x00000007u
#define EV_S_CRTM_VERSION                0x00000008u
#define EV_CPU_MICROCODE                 0x00000009u
#define EV_PLATFORM_CONFIG_FLAGS         0x0000000Au
#define EV_TABLE_OF_DEVICES              0x0000000Bu
#define EV_COMPACT_HASH                  0x0000000Cu
#define EV_IPL                           0x0000000Du
#define EV_IPL_PARTITION_DATA            0x0000000Eu
#define EV_NONHOST_CODE                  0x0000000Fu
#define EV_NONHOST_CONFIG                0x00000010u
#define EV_NONHOST_INFO                  0x00000011u
#define EV_OMIT_BOOT_DEVICE_EVENTS       0x00000012u
#define EV_POST_CODE2                    0x00000013u
#define EV_EFI_EVENT_BASE                0x80000000u
#define EV_EFI_VARIABLE_DRIVER_CONFIG    0x80000001u
#define EV_EFI_VARIABLE_BOOT             0x80000002u
#define EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define EV_EFI_BOOT_SERVICES_DRIVER      0x80000004u
#define EV_EFI_RUNTIME_SERVICES_DRIVER   0x80000005u
#define EV_EFI_GPT_EVENT                 0x80000006u
#define EV_EFI_ACTION                    0x80000007u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB    0x80000008u
#define EV_EFI_HANDOFF_TABLES            0x80000009u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB2   0x8000000Au
#define EV_EFI_HANDOFF_TABLES2           0x8000000Bu
#define EV_EFI_VARIABLE_BOOT2            0x8000000Cu
#define EV_EFI_GPT_EVENT2                0x8000000Du
#define EV_EFI_HCRTM_EVENT               0x80000010u
#define EV_EFI_VARIABLE_AUTHORITY        0x800000E0u
#define EV_EFI_SPDM_FIRMWARE_BLOB        0x800000E1u
#define EV_EFI_SPDM_FIRMWARE_CONFIG      0x800000E2u
#define EV_EFI_SPDM_DEVICE_POLICY        0x800000E3u
#define EV_EFI_SPDM_DEVICE_AUTHORITY     0x800000E4u

#define SHA1_HEADER    32                /* TCG_PCClientPCREvent without event[] */
#define EVENT2_HEADER  12                /* pcrIndex, eventType, digestCount */
#define SPECID_SIG     "Spec ID Event03" /* 16 bytes with the NUL */
#define SPECID_FIXED   28                /* signature .. numberOfAlgorithms */
#define LOCALITY_SIG   "StartupLocality" /* 16 bytes with the NUL */
#define HCRTM_LOCALITY 4

/* Algorithms one Spec ID event may list; the table must fit the checkpoint state. */
#define TCG_MAX_ALGS  32
#define STATE_VERSION 1
#define STATE_HEADER  3 /* version, flags, count */
#define FLAG_HEADER   0x01u
#define FLAG_AGILE    0x02u

#define TEXT_MAX 512

typedef struct tcg_alg {
        uint16_t id;
        uint16_t size;
} tcg_alg_t;

typedef struct tcg {
        bool header_done; /* event 0 was read (or a checkpoint said so) */
        bool agile;       /* crypto-agile: records after the header are TCG_PCR_EVENT2 */
        size_t n_algs;
        tcg_alg_t algs[TCG_MAX_ALGS];
        /* About the event last returned (for describe). */
        uint64_t cur_index;
        size_t n_skipped;
        uint16_t skipped[TCG_MAX_ALGS];
        char kind[16];
        char text[TEXT_MAX];
} tcg_t;

_Static_assert(STATE_HEADER + 4 * TCG_MAX_ALGS <= CSCP_REPLAY_STATE_MAX, "Spec ID table must fit a checkpoint");

static uint16_t le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
        return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static tcg_t *state(cscp_eventlog_t *l)
{
        if (!l->priv)
                l->priv = calloc(1, sizeof(tcg_t));
        return l->priv;
}

static const char *type_name(uint32_t type)
{
        switch (type) {
        case EV_PREBOOT_CERT:
                return "EV_PREBOOT_CERT";
        case EV_POST_CODE:
                return "EV_POST_CODE";
        case EV_UNUSED:
                return "EV_UNUSED";
        case EV_NO_ACTION:
                return "EV_NO_ACTION";
        case EV_SEPARATOR:
                return "EV_SEPARATOR";
        case EV_ACTION:
                return "EV_ACTION";
        case EV_EVENT_TAG:
                return "EV_EVENT_TAG";
        case EV_S_CRTM_CONTENTS:
                return "EV_S_CRTM_CONTENTS";
        case EV_S_CRTM_VERSION:
                return "EV_S_CRTM_VERSION";
        case EV_CPU_MICROCODE:
                return "EV_CPU_MICROCODE";
        case EV_PLATFORM_CONFIG_FLAGS:
                return "EV_PLATFORM_CONFIG_FLAGS";
        case EV_TABLE_OF_DEVICES:
                return "EV_TABLE_OF_DEVICES";
        case EV_COMPACT_HASH:
                return "EV_COMPACT_HASH";
        case EV_IPL:
                return "EV_IPL";
        case EV_IPL_PARTITION_DATA:
                return "EV_IPL_PARTITION_DATA";
        case EV_NONHOST_CODE:
                return "EV_NONHOST_CODE";
        case EV_NONHOST_CONFIG:
                return "EV_NONHOST_CONFIG";
        case EV_NONHOST_INFO:
                return "EV_NONHOST_INFO";
        case EV_OMIT_BOOT_DEVICE_EVENTS:
                return "EV_OMIT_BOOT_DEVICE_EVENTS";
        case EV_POST_CODE2:
                return "EV_POST_CODE2";
        case EV_EFI_EVENT_BASE:
                return "EV_EFI_EVENT_BASE";
        case EV_EFI_VARIABLE_DRIVER_CONFIG:
                return "EV_EFI_VARIABLE_DRIVER_CONFIG";
        case EV_EFI_VARIABLE_BOOT:
                return "EV_EFI_VARIABLE_BOOT";
        case EV_EFI_BOOT_SERVICES_APPLICATION:
                return "EV_EFI_BOOT_SERVICES_APPLICATION";
        case EV_EFI_BOOT_SERVICES_DRIVER:
                return "EV_EFI_BOOT_SERVICES_DRIVER";
        case EV_EFI_RUNTIME_SERVICES_DRIVER:
                return "EV_EFI_RUNTIME_SERVICES_DRIVER";
        case EV_EFI_GPT_EVENT:
                return "EV_EFI_GPT_EVENT";
        case EV_EFI_ACTION:
                return "EV_EFI_ACTION";
        case EV_EFI_PLATFORM_FIRMWARE_BLOB:
                return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
        case EV_EFI_HANDOFF_TABLES:
                return "EV_EFI_HANDOFF_TABLES";
        case EV_EFI_PLATFORM_FIRMWARE_BLOB2:
                return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
        case EV_EFI_HANDOFF_TABLES2:
                return "EV_EFI_HANDOFF_TABLES2";
        case EV_EFI_VARIABLE_BOOT2:
                return "EV_EFI_VARIABLE_BOOT2";
        case EV_EFI_GPT_EVENT2:
                return "EV_EFI_GPT_EVENT2";
        case EV_EFI_HCRTM_EVENT:
                return "EV_EFI_HCRTM_EVENT";
        case EV_EFI_VARIABLE_AUTHORITY:
                return "EV_EFI_VARIABLE_AUTHORITY";
        case EV_EFI_SPDM_FIRMWARE_BLOB:
                return "EV_EFI_SPDM_FIRMWARE_BLOB";
        case EV_EFI_SPDM_FIRMWARE_CONFIG:
                return "EV_EFI_SPDM_FIRMWARE_CONFIG";
        case EV_EFI_SPDM_DEVICE_POLICY:
                return "EV_EFI_SPDM_DEVICE_POLICY";
        case EV_EFI_SPDM_DEVICE_AUTHORITY:
                return "EV_EFI_SPDM_DEVICE_AUTHORITY";
        default:
                return NULL;
        }
}

/* Names for algorithms replay does not compute (shown, never hashed). */
static const char *alg_label(uint16_t alg, char *buf, size_t len)
{
        const char *n = cscp_hash_alg_name(alg);

        if (n)
                return n;
        switch (alg) {
        case 0x0012:
                return "sm3_256";
        case 0x0027:
                return "sha3_256";
        case 0x0028:
                return "sha3_384";
        case 0x0029:
                return "sha3_512";
        default:
                snprintf(buf, len, "alg 0x%04x", alg);
                return buf;
        }
}

/* True when replay can use digests of alg with this size. */
static bool replayable(uint16_t alg, size_t size)
{
        size_t want = cscp_hash_alg_size(alg);
        return want != 0 && want == size && size <= CSCP_EVENT_MAX_DIGEST && cscp_hash_alg_evp(alg) != NULL;
}

/* ------------------------------------------------------- text for describe */

/* A bounded UTF-8 string builder: whole code points only, "..." when cut. */
typedef struct tb {
        char *buf;
        size_t cap, len;
        bool full;
} tb_t;

static void tb_raw(tb_t *t, const char *s, size_t n)
{
        if (t->full)
                return;
        if (t->len + n + 4 > t->cap) { /* room for "..." and the NUL */
                memcpy(t->buf + t->len, "...", 3);
                t->len += 3;
                t->buf[t->len] = '\0';
                t->full = true;
                return;
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len] = '\0';
}

static void tb_str(tb_t *t, const char *s)
{
        tb_raw(t, s, strlen(s));
}

static void tb_printf(tb_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tb_t *t, const char *fmt, ...)
{
        char tmp[128];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        tb_raw(t, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* One code point, escaped when it is a control character, a backslash or not a scalar value. */
static void tb_cp(tb_t *t, uint32_t cp)
{
        char u[8];
        size_t n;

        if (cp == '\\') {
                tb_raw(t, "\\\\", 2);
                return;
        }
        if (cp == '\n' || cp == '\t' || cp == '\r') {
                tb_raw(t, cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : "\\r", 2);
                return;
        }
        if (cp < 0x20 || cp == 0x7f) {
                tb_printf(t, "\\x%02x", (unsigned)cp);
                return;
        }
        if ((cp >= 0x80 && cp < 0xa0) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
                tb_printf(t, "\\u%04x", (unsigned)cp);
                return;
        }
        if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (char)(0xf0 | cp >> 18);
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                n = 4;
        }
        tb_raw(t, u, n);
}

/* Decodes one UTF-8 sequence at p (n > 0 bytes); 0 when invalid. */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *ret)
{
        uint32_t cp;
        size_t len;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2, cp = p[0] & 0x1fu;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3, cp = p[0] & 0x0fu;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4, cp = p[0] & 0x07u;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret = cp;
        return len;
}

/* Bytes as UTF-8 text; trailing NULs dropped, invalid bytes as \xNN. */
static void tb_bytes(tb_t *t, const uint8_t *p, size_t n)
{
        while (n > 0 && p[n - 1] == 0)
                n--;
        for (size_t i = 0; i < n && !t->full;) {
                uint32_t cp;
                size_t k = utf8_decode(p + i, n - i, &cp);

                if (k == 0) {
                        tb_printf(t, "\\x%02x", p[i]);
                        i++;
                        continue;
                }
                tb_cp(t, cp);
                i += k;
        }
}

/* n UTF-16LE code units at p (2n bytes); trailing NULs dropped, lone surrogates as \uXXXX. */
static void tb_utf16(tb_t *t, const uint8_t *p, size_t n)
{
        while (n > 0 && le16(p + 2 * (n - 1)) == 0)
                n--;
        for (size_t i = 0; i < n && !t->full; i++) {
                uint32_t c = le16(p + 2 * i);

                if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
                        uint32_t d = le16(p + 2 * (i + 1));
                        if (d >= 0xdc00 && d <= 0xdfff) {
                                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                                i++;
                        }
                }
                tb_cp(t, c);
        }
}

static void tb_hex(tb_t *t, const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n && !t->full; i++)
                tb_printf(t, "%02x", p[i]);
}

static void tb_guid(tb_t *t, const uint8_t *g)
{
        tb_printf(t, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32(g), le16(g + 4), le16(g + 6), g[8], g[9],
                  g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* Printable UTF-8 (tabs and newlines allowed) after dropping trailing NULs. */
static bool looks_utf8(const uint8_t *p, size_t n)
{
        while (n > 0 && p[n - 1] == 0)
                n--;
        if (n == 0)
                return false;
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = utf8_decode(p + i, n - i, &cp);

                if (k == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f)
                        return false;
                i += k;
        }
        return true;
}

/* UTF-16LE text in the ASCII range (how firmware writes strings), trailing NULs allowed. */
static bool looks_utf16(const uint8_t *p, size_t n)
{
        size_t units;

        if (n < 4 || n % 2)
                return false;
        units = n / 2;
        while (units > 0 && le16(p + 2 * (units - 1)) == 0)
                units--;
        if (units == 0)
                return false;
        for (size_t i = 0; i < units; i++) {
                uint16_t c = le16(p + 2 * i);
                if (c < 0x20 || c > 0x7e)
                        return false;
        }
        return true;
}

/* Fallback: the data as text when it is text, else its size. */
static void describe_generic(tb_t *t, const uint8_t *d, size_t n)
{
        if (looks_utf8(d, n)) {
                tb_str(t, "\"");
                tb_bytes(t, d, n);
                tb_str(t, "\"");
        } else if (looks_utf16(d, n)) {
                tb_str(t, "\"");
                tb_utf16(t, d, n / 2);
                tb_str(t, "\"");
        } else if (n > 0) {
                tb_printf(t, "%zu bytes", n);
        }
}

/* UEFI_VARIABLE_DATA: GUID, u64 name length (UTF-16 units), u64 data length, name, data. */
static void describe_variable(tb_t *t, const uint8_t *d, size_t n)
{
        uint64_t name_len, data_len;
        const uint8_t *name, *val;

        if (n < 32) {
                tb_printf(t, "malformed UEFI_VARIABLE_DATA (%zu bytes)", n);
                return;
        }
        name_len = le64(d + 16);
        data_len = le64(d + 24);
        if (name_len > (n - 32) / 2 || data_len > n - 32 - 2 * name_len) {
                tb_printf(t, "malformed UEFI_VARIABLE_DATA (%zu bytes, name %llu units, data %llu bytes)", n,
                          (unsigned long long)name_len, (unsigned long long)data_len);
                return;
        }
        name = d + 32;
        val = name + 2 * name_len;
        tb_guid(t, d);
        tb_str(t, " ");
        tb_utf16(t, name, (size_t)name_len);
        if (data_len <= 8) {
                tb_str(t, " = ");
                tb_hex(t, val, (size_t)data_len);
                if (data_len == 0)
                        tb_str(t, "(empty)");
                return;
        }
        tb_printf(t, " (%llu bytes)", (unsigned long long)data_len);
        /* Boot####: EFI_LOAD_OPTION = u32 attributes, u16 path length, NUL-terminated UTF-16 description. */
        if (name_len >= 8 && memcmp(name, "B\0o\0o\0t\0", 8) == 0 && data_len >= 8) {
                size_t units = 0, max = ((size_t)data_len - 6) / 2;
                while (units < max && le16(val + 6 + 2 * units) != 0)
                        units++;
                if (units > 0) {
                        tb_str(t, " \"");
                        tb_utf16(t, val + 6, units);
                        tb_str(t, "\"");
                }
        }
}

/* UEFI_IMAGE_LOAD_EVENT: u64 location, u64 length, u64 link-time address, u64 path length, device path. */
static void describe_image(tb_t *t, const uint8_t *d, size_t n)
{
        uint64_t path_len;
        const uint8_t *dp;
        bool named = false;

        if (n < 32) {
                describe_generic(t, d, n);
                return;
        }
        tb_printf(t, "image at 0x%llx, %llu bytes", (unsigned long long)le64(d), (unsigned long long)le64(d + 8));
        path_len = le64(d + 24);
        if (path_len > n - 32)
                return;
        dp = d + 32;
        /* Device path nodes: u8 type, u8 subtype, u16 length (>= 4). Media file path = 4/4, UTF-16. */
        for (size_t off = 0; off + 4 <= path_len;) {
                size_t len = le16(dp + off + 2);

                if (len < 4 || len > path_len - off)
                        break;
                if (dp[off] == 0x7f)
                        break;
                if (dp[off] == 4 && dp[off + 1] == 4 && len > 4) {
                        tb_str(t, named ? "" : " ");
                        tb_utf16(t, dp + off + 4, (len - 4) / 2);
                        named = true;
                }
                off += len;
        }
}

/* The Spec ID event, already validated by parse_specid. */
static void describe_specid(tb_t *t, const tcg_t *st, const uint8_t *d, size_t n)
{
        char lb[16];

        tb_str(t, "Spec ID Event03:");
        for (size_t i = 0; i < st->n_algs; i++) {
                tb_printf(t, " %s (%u)", alg_label(st->algs[i].id, lb, sizeof(lb)), st->algs[i].size);
                if (!replayable(st->algs[i].id, st->algs[i].size))
                        tb_str(t, " [not replayed]");
        }
        tb_printf(t, "; platform class %u, spec %u.%u errata %u, uintnSize %u", le32(d + 16), d[21], d[20], d[22],
                  d[23]);
        if (n > SPECID_FIXED + 4 * st->n_algs && d[SPECID_FIXED + 4 * st->n_algs] > 0)
                tb_printf(t, ", vendor info %u bytes", d[SPECID_FIXED + 4 * st->n_algs]);
}

static void describe_data(tb_t *t, const tcg_t *st, const cscp_event_t *ev, bool specid)
{
        const uint8_t *d = ev->data;
        size_t n = ev->data_len;

        if (specid) {
                describe_specid(t, st, d, n);
                return;
        }
        switch (ev->type) {
        case EV_NO_ACTION:
                if (ev->startup_locality >= 0) {
                        tb_printf(t, "StartupLocality %d", ev->startup_locality);
                } else if (n >= 16 && looks_utf8(d, 16)) {
                        /* EV_NO_ACTION structures start with a 16-byte signature ("SP800-155 Event3", ...). */
                        tb_bytes(t, d, 16);
                        tb_printf(t, " (%zu bytes)", n);
                } else {
                        describe_generic(t, d, n);
                }
                break;
        case EV_SEPARATOR:
                if (n == 4) {
                        tb_hex(t, d, 4);
                        if (le32(d) == 0xffffffffu)
                                tb_str(t, " (error)");
                } else {
                        describe_generic(t, d, n);
                }
                break;
        case EV_EFI_VARIABLE_DRIVER_CONFIG:
        case EV_EFI_VARIABLE_BOOT:
        case EV_EFI_VARIABLE_BOOT2:
        case EV_EFI_VARIABLE_AUTHORITY:
                describe_variable(t, d, n);
                break;
        case EV_EFI_BOOT_SERVICES_APPLICATION:
        case EV_EFI_BOOT_SERVICES_DRIVER:
        case EV_EFI_RUNTIME_SERVICES_DRIVER:
                describe_image(t, d, n);
                break;
        case EV_EFI_PLATFORM_FIRMWARE_BLOB:
                if (n == 16)
                        tb_printf(t, "blob at 0x%llx, %llu bytes", (unsigned long long)le64(d),
                                  (unsigned long long)le64(d + 8));
                else
                        describe_generic(t, d, n);
                break;
        case EV_EFI_PLATFORM_FIRMWARE_BLOB2:
        case EV_EFI_HANDOFF_TABLES2:
                /* u8 description size, description, ... */
                if (n >= 1 && (size_t)d[0] + 1 <= n && d[0] > 0) {
                        tb_str(t, "\"");
                        tb_bytes(t, d + 1, d[0]);
                        tb_str(t, "\"");
                } else {
                        describe_generic(t, d, n);
                }
                break;
        case EV_ACTION:
        case EV_EFI_ACTION:
                /* Strings by definition: shown even when they hold odd bytes (escaped). */
                tb_str(t, "\"");
                if (looks_utf16(d, n))
                        tb_utf16(t, d, n / 2);
                else
                        tb_bytes(t, d, n);
                tb_str(t, "\"");
                break;
        case EV_EFI_HANDOFF_TABLES:
                if (n >= 8)
                        tb_printf(t, "%llu table(s)", (unsigned long long)le64(d));
                break;
        case EV_EFI_GPT_EVENT:
        case EV_EFI_GPT_EVENT2:
                /* UEFI_PARTITION_TABLE_HEADER (92 bytes), u64 number of partitions, entries. */
                if (n >= 100 && memcmp(d, "EFI PART", 8) == 0)
                        tb_printf(t, "GPT, %llu partition(s)", (unsigned long long)le64(d + 92));
                else
                        describe_generic(t, d, n);
                break;
        case EV_EVENT_TAG:
                /* TCG_PCClientTaggedEvent: u32 id, u32 size, data. */
                if (n >= 8) {
                        uint32_t id = le32(d);
                        tb_printf(t, "tag 0x%08x", id);
                        if (id == 0x8f3b22ecu)
                                tb_str(t, " (Linux initrd)");
                        else if (id == 0x8f3b22edu)
                                tb_str(t, " (Linux load options)");
                        tb_printf(t, ", %u bytes", le32(d + 4));
                } else {
                        describe_generic(t, d, n);
                }
                break;
        case EV_POST_CODE:
                if (n == 16 && !looks_utf8(d, n))
                        tb_printf(t, "blob at 0x%llx, %llu bytes", (unsigned long long)le64(d),
                                  (unsigned long long)le64(d + 8));
                else
                        describe_generic(t, d, n);
                break;
        default:
                describe_generic(t, d, n);
                break;
        }
}

/* ----------------------------------------------------------------- parsing */

/* evlog_in_need with an error naming what was being read. */
static int need(cscp_eventlog_t *l, size_t n, const char *what, size_t rel, const uint8_t **ret)
{
        int r = evlog_in_need(&l->in, n, ret);

        if (r == 0)
                return 0;
        if (r == -ENODATA)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + rel,
                                  "truncated record: %s needs the record to be %zu bytes long, only %zu left", what, n,
                                  evlog_in_avail(&l->in));
        if (r == CSCP_E_TOO_BIG)
                return evlog_fail(l, CSCP_E_TOO_BIG, l->ev.offset + rel,
                                  "record longer than the limit of %zu bytes (reading %s)", l->opts.max_record, what);
        return evlog_fail(l, r, l->ev.offset + rel, "reading %s: %s", what, cscp_strerror(r));
}

static const tcg_alg_t *find_alg(const tcg_t *st, uint16_t id, size_t *ret_slot)
{
        for (size_t i = 0; i < st->n_algs; i++)
                if (st->algs[i].id == id) {
                        *ret_slot = i;
                        return &st->algs[i];
                }
        return NULL;
}

/* Validates one algorithm table (from a Spec ID event or a checkpoint); message into err. */
static int check_algs(const tcg_alg_t *algs, size_t n, char *err, size_t errlen, size_t *ret_bad)
{
        char lb[16];

        for (size_t i = 0; i < n; i++) {
                size_t want = cscp_hash_alg_size(algs[i].id);

                *ret_bad = i;
                if (algs[i].size == 0) {
                        snprintf(err, errlen, "algorithm %s has digest size 0", alg_label(algs[i].id, lb, sizeof(lb)));
                        return CSCP_E_PROTO;
                }
                if (want != 0 && want != algs[i].size) {
                        snprintf(err, errlen, "digest size %u for %s disagrees with the algorithm (%zu bytes)",
                                 algs[i].size, alg_label(algs[i].id, lb, sizeof(lb)), want);
                        return CSCP_E_PROTO;
                }
                for (size_t k = 0; k < i; k++)
                        if (algs[k].id == algs[i].id) {
                                snprintf(err, errlen, "algorithm %s is listed twice",
                                         alg_label(algs[i].id, lb, sizeof(lb)));
                                return CSCP_E_PROTO;
                        }
        }
        return 0;
}

/*
 * TCG_EfiSpecIdEvent in d[0..n) (event data of record 0, at record offset
 * SHA1_HEADER). *ret_extra: vendorInfo bytes past eventDataSize to read as part
 * of the event (see the quirk in next_sha1), else 0.
 */
static int parse_specid(cscp_eventlog_t *l, tcg_t *st, const uint8_t *d, size_t n, size_t *ret_extra)
{
        const size_t base = SHA1_HEADER;
        uint32_t count;
        size_t vendor_at, bad = 0;
        char err[160];
        int r;

        if (n < SPECID_FIXED)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + base,
                                  "Spec ID event of %zu bytes is shorter than its fixed part (%d bytes)", n,
                                  SPECID_FIXED);
        count = le32(d + 24);
        if (count == 0)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + base + 24, "Spec ID event lists no algorithms");
        if (count > TCG_MAX_ALGS)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + base + 24,
                                  "Spec ID event lists %u algorithms (at most %d supported)", count, TCG_MAX_ALGS);
        vendor_at = SPECID_FIXED + 4 * (size_t)count;
        if (n < vendor_at + 1)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + base,
                                  "Spec ID event of %zu bytes is too short for %u algorithms and vendorInfoSize", n,
                                  count);
        *ret_extra = 0;
        if (vendor_at + 1 == n && d[vendor_at] > 0)
                *ret_extra = d[vendor_at]; /* eventDataSize that leaves out vendorInfo[] */
        else if (vendor_at + 1 + d[vendor_at] > n)
                return evlog_fail(l, CSCP_E_PROTO, l->ev.offset + base + vendor_at,
                                  "vendorInfoSize %u runs past the end of the Spec ID event (%zu bytes)", d[vendor_at],
                                  n);
        for (size_t i = 0; i < count; i++) {
                st->algs[i].id = le16(d + SPECID_FIXED + 4 * i);
                st->algs[i].size = le16(d + SPECID_FIXED + 4 * i + 2);
        }
        r = check_algs(st->algs, count, err, sizeof(err), &bad);
        if (r < 0)
                return evlog_fail(l, r, l->ev.offset + base + SPECID_FIXED + 4 * bad, "Spec ID event: %s", err);
        st->n_algs = count;
        st->agile = true;
        return 0;
}

/* Sets the fields every record shares, checks the PCR index. */
static int finish_event(cscp_eventlog_t *l, tcg_t *st, cscp_event_t *ev, bool specid)
{
        const char *name = type_name(ev->type);
        tb_t t = {.buf = st->text, .cap = sizeof(st->text)};

        ev->reg = CSCP_EVENT_PCR;
        ev->extend = ev->type != EV_NO_ACTION;
        if (ev->extend && ev->pcr >= CSCP_PCR_COUNT)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset,
                                  "PCR index %u out of range 0..%d (only EV_NO_ACTION may name another)", ev->pcr,
                                  CSCP_PCR_COUNT - 1);
        if (ev->type == EV_NO_ACTION && ev->pcr == 0 && ev->data_len >= 17 &&
            memcmp(ev->data, LOCALITY_SIG, sizeof(LOCALITY_SIG)) == 0)
                ev->startup_locality = ev->data[16];
        if (ev->type == EV_EFI_HCRTM_EVENT && ev->pcr == 0)
                ev->startup_locality = HCRTM_LOCALITY;
        if (name) {
                ev->kind = name;
        } else {
                snprintf(st->kind, sizeof(st->kind), "0x%08X", ev->type);
                ev->kind = st->kind;
        }
        st->text[0] = '\0';
        describe_data(&t, st, ev, specid);
        ev->text = st->text;
        st->cur_index = ev->index;
        return 1;
}

/* A TCG_PCClientPCREvent (SHA-1 layout): the header event, or any event of a SHA-1 log. */
static int next_sha1(cscp_eventlog_t *l, tcg_t *st, cscp_event_t *ev, bool header)
{
        const uint8_t *p;
        uint32_t size;
        size_t total;
        bool specid = false;
        int r;

        r = need(l, SHA1_HEADER, "the event header", 0, &p);
        if (r < 0)
                return r;
        size = le32(p + 28);
        if ((uint64_t)size > l->opts.max_record - SHA1_HEADER)
                return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset + 28,
                                  "eventDataSize %u exceeds the record limit of %zu bytes", size, l->opts.max_record);
        total = SHA1_HEADER + (size_t)size;
        r = need(l, total, "the event data", 28, &p);
        if (r < 0)
                return r;
        ev->pcr = le32(p);
        ev->type = le32(p + 4);
        ev->data = p + SHA1_HEADER;
        ev->data_len = size;
        /* Any PCR index: the PC Client profile says 0, the TDX CCEL logs its header with MR index 1. */
        if (header && ev->type == EV_NO_ACTION && size >= sizeof(SPECID_SIG) &&
            memcmp(ev->data, SPECID_SIG, sizeof(SPECID_SIG)) == 0) {
                size_t extra = 0;

                r = parse_specid(l, st, ev->data, size, &extra);
                if (r < 0)
                        return r;
                if (extra > 0) {
                        /*
                         * Quirk: a Spec ID event whose eventDataSize stops right after
                         * vendorInfoSize (so leaves out vendorInfo[]), as in tpm2-tools'
                         * specid-vendordata fixture; tpm2-tools reads vendorInfo and
                         * continues after it. We do the same, and only in exactly this case.
                         */
                        r = need(l, total + extra, "vendorInfo", SHA1_HEADER + size - 1, &p);
                        if (r < 0)
                                return r;
                        total += extra;
                        ev->data = p + SHA1_HEADER;
                        ev->data_len = size + extra;
                }
                specid = true;
        } else {
                r = evlog_add_digest(ev, TPM2_ALG_SHA1, p + 8, 20);
                if (r < 0)
                        return evlog_fail(l, r, ev->offset + 8, "SHA-1 digest: %s", cscp_strerror(r));
        }
        st->n_skipped = 0;
        r = finish_event(l, st, ev, specid);
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, total);
        return 1;
}

/* A TCG_PCR_EVENT2 of a crypto-agile log. */
static int next_event2(cscp_eventlog_t *l, tcg_t *st, cscp_event_t *ev)
{
        const uint8_t *p;
        uint32_t count, size, seen = 0;
        size_t off, total;
        char lb[16];
        int r;

        r = need(l, EVENT2_HEADER, "the event header", 0, &p);
        if (r < 0)
                return r;
        if (le32(p) == 0xffffffffu && le32(p + 4) == 0xffffffffu)
                return 0; /* 0xFF padding of a firmware log area: the log ends here */
        count = le32(p + 8);
        if (count > st->n_algs)
                return evlog_fail(l, CSCP_E_PROTO, ev->offset + 8,
                                  "digestCount %u exceeds the %zu algorithm(s) of the Spec ID event", count,
                                  st->n_algs);
        off = EVENT2_HEADER;
        for (uint32_t i = 0; i < count; i++) {
                const tcg_alg_t *a;
                size_t slot = 0;
                uint16_t id;

                r = need(l, off + 2, "a digest's algorithm", off, &p);
                if (r < 0)
                        return r;
                id = le16(p + off);
                a = find_alg(st, id, &slot);
                if (!a)
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + off,
                                          "digest %u: algorithm %s is not in the Spec ID event", i,
                                          alg_label(id, lb, sizeof(lb)));
                if (seen & (1u << slot))
                        return evlog_fail(l, CSCP_E_PROTO, ev->offset + off, "digest %u: a second %s digest", i,
                                          alg_label(id, lb, sizeof(lb)));
                seen |= 1u << slot;
                off += 2 + (size_t)a->size; /* at most 32 x 65537: no overflow */
        }
        r = need(l, off + 4, "eventSize", off, &p);
        if (r < 0)
                return r;
        size = le32(p + off);
        if ((uint64_t)size > l->opts.max_record - (off + 4))
                return evlog_fail(l, CSCP_E_TOO_BIG, ev->offset + off,
                                  "eventSize %u exceeds the record limit of %zu bytes", size, l->opts.max_record);
        total = off + 4 + (size_t)size;
        r = need(l, total, "the event data", off, &p);
        if (r < 0)
                return r;
        ev->pcr = le32(p);
        ev->type = le32(p + 4);
        ev->data = p + off + 4;
        ev->data_len = size;
        st->n_skipped = 0;
        off = EVENT2_HEADER;
        for (uint32_t i = 0; i < count; i++) {
                size_t slot = 0;
                uint16_t id = le16(p + off);
                const tcg_alg_t *a = find_alg(st, id, &slot);

                if (replayable(a->id, a->size)) {
                        r = evlog_add_digest(ev, a->id, p + off + 2, a->size);
                        if (r < 0)
                                return evlog_fail(l, r, ev->offset + off, "digest %u (%s): %s", i,
                                                  alg_label(id, lb, sizeof(lb)), cscp_strerror(r));
                } else {
                        st->skipped[st->n_skipped++] = a->id;
                }
                off += 2 + (size_t)a->size;
        }
        r = finish_event(l, st, ev, false);
        if (r < 0)
                return r;
        evlog_in_consume(&l->in, total);
        return 1;
}

static int tcg_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        tcg_t *st = state(l);
        int r;

        if (!st)
                return -ENOMEM;
        if (evlog_in_at_end(&l->in))
                return 0;
        if (!st->header_done) {
                r = next_sha1(l, st, ev, true);
                if (r > 0)
                        st->header_done = true;
                return r;
        }
        return st->agile ? next_event2(l, st, ev) : next_sha1(l, st, ev, false);
}

static int tcg_describe(const cscp_eventlog_t *l, const cscp_event_t *ev, char **ret)
{
        const tcg_t *st = l->priv;
        const cscp_event_digest_t *d = NULL;
        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1] = "", skipped[TCG_MAX_ALGS * 24] = "";
        tb_t sk = {.buf = skipped, .cap = sizeof(skipped)};
        char *s = NULL;

        for (size_t i = 0; i < ev->n_digests; i++)
                if (!d || ev->digests[i].alg == TPM2_ALG_SHA256)
                        d = &ev->digests[i];
        if (d)
                for (size_t k = 0; k < d->size && k < CSCP_EVENT_MAX_DIGEST; k++)
                        snprintf(hex + 2 * k, 3, "%02x", d->digest[k]);
        if (st && st->cur_index == ev->index && st->n_skipped > 0) {
                char lb[16];
                tb_str(&sk, " (skipped:");
                for (size_t i = 0; i < st->n_skipped; i++)
                        tb_printf(&sk, " %s", alg_label(st->skipped[i], lb, sizeof(lb)));
                tb_str(&sk, " digest, not replayed)");
        }
        if (asprintf(&s, "#%llu PCR %u %s %s%s%s%s%s%s%s", (unsigned long long)ev->index, ev->pcr,
                     ev->kind && *ev->kind ? ev->kind : "?", d ? cscp_hash_alg_name(d->alg) : "no digest", d ? ":" : "",
                     hex, skipped, ev->extend ? "" : " (not extended)", ev->text && *ev->text ? " " : "",
                     ev->text ? ev->text : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/*
 * Checkpoint state: u8 version (1), u8 flags (1 header read, 2 crypto-agile),
 * u8 number of algorithms, then per algorithm u16 id, u16 digest size
 * (little-endian like the log).
 */
static int tcg_save(const cscp_eventlog_t *l, uint8_t *buf, size_t *len)
{
        const tcg_t *st = l->priv;
        size_t n = st ? st->n_algs : 0, want = STATE_HEADER + 4 * n;

        if (*len < want)
                return CSCP_E_TOO_BIG;
        buf[0] = STATE_VERSION;
        buf[1] = (uint8_t)((st && st->header_done ? FLAG_HEADER : 0) | (st && st->agile ? FLAG_AGILE : 0));
        buf[2] = (uint8_t)n;
        for (size_t i = 0; i < n; i++) {
                buf[STATE_HEADER + 4 * i] = (uint8_t)st->algs[i].id;
                buf[STATE_HEADER + 4 * i + 1] = (uint8_t)(st->algs[i].id >> 8);
                buf[STATE_HEADER + 4 * i + 2] = (uint8_t)st->algs[i].size;
                buf[STATE_HEADER + 4 * i + 3] = (uint8_t)(st->algs[i].size >> 8);
        }
        *len = want;
        return 0;
}

static int tcg_restore(cscp_eventlog_t *l, const uint8_t *buf, size_t len)
{
        tcg_t *st, tmp = {0};
        size_t n, bad = 0;
        char err[160];
        uint8_t flags;

        if (len < STATE_HEADER || buf[0] != STATE_VERSION)
                return CSCP_E_STATE;
        flags = buf[1];
        n = buf[2];
        if ((flags & ~(FLAG_HEADER | FLAG_AGILE)) || n > TCG_MAX_ALGS || len != STATE_HEADER + 4 * n)
                return CSCP_E_STATE;
        if ((flags & FLAG_AGILE) ? (!(flags & FLAG_HEADER) || n == 0) : n != 0)
                return CSCP_E_STATE;
        for (size_t i = 0; i < n; i++) {
                tmp.algs[i].id = le16(buf + STATE_HEADER + 4 * i);
                tmp.algs[i].size = le16(buf + STATE_HEADER + 4 * i + 2);
        }
        if (check_algs(tmp.algs, n, err, sizeof(err), &bad) < 0)
                return CSCP_E_STATE;
        st = state(l);
        if (!st)
                return -ENOMEM;
        memcpy(st->algs, tmp.algs, sizeof(st->algs));
        st->n_algs = n;
        st->header_done = flags & FLAG_HEADER;
        st->agile = flags & FLAG_AGILE;
        return 0;
}

static void tcg_free(cscp_eventlog_t *l)
{
        free(l->priv);
        l->priv = NULL;
}

const evlog_ops_t evlog_tcg_ops = {
        .format = CSCP_EVENTLOG_TCG,
        .next = tcg_next,
        .describe = tcg_describe,
        .save = tcg_save,
        .restore = tcg_restore,
        .free = tcg_free,
};
