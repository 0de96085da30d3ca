/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Intel TDX, generation side (lib/tdx/guest.c): what a TD guest's Linux
 * offers, as files (reference.md 9.1, 9.3):
 *   - configfs-tsm reports: mkdir <tsm_root>/report/<name>, check provider,
 *     read generation, write 64 bytes to inblob (REPORTDATA), read outblob,
 *     read generation again (it must have moved by exactly the one write:
 *     otherwise another writer raced us and the quote is not used), rmdir.
 *     One instance per request.
 *   - the TSM measurement registers (Linux 6.16): <mr_root>/rtmrN:sha384,
 *     48 bytes read = the value, 48 bytes written at offset 0 = extend.
 *   - the CCEL: the ACPI table (<ccel_table>, 56 bytes, signature "CCEL",
 *     log area minimum length and start address) and the log area
 *     (<ccel_data>).
 * Every path is settable (tests run the file protocol against an emulator,
 * tests/helpers/tdx-emu.c); NULL members mean the Linux defaults below.
 */

#include <stddef.h>
#include <stdint.h>

#define CSCP_TDX_TSM_ROOT   "/sys/kernel/config/tsm"
#define CSCP_TDX_MR_ROOT    "/sys/devices/virtual/misc/tdx_guest/measurements"
#define CSCP_TDX_CCEL_TABLE "/sys/firmware/acpi/tables/CCEL"
#define CSCP_TDX_CCEL_DATA  "/sys/firmware/acpi/tables/data/CCEL"
#define CSCP_TDX_CCEL_MAX   (16u * 1024 * 1024) /* largest CCEL log area read */
#define CSCP_TDX_RTMR_SIZE  48

typedef struct cscp_tdx_guest_paths {
        const char *tsm_root;
        const char *mr_root;
        const char *ccel_table;
        const char *ccel_data;
} cscp_tdx_guest_paths_t;

/* 0 when a TDX quote provider is here; CSCP_E_UNSUPPORTED with why (one line) otherwise. */
int cscp_tdx_guest_probe(const cscp_tdx_guest_paths_t *p, char *why, size_t why_len);
/*
 * A TDX quote with REPORTDATA = report_data (64 bytes) through configfs-tsm.
 * The quote is parsed (cscp_tdx_quote_parse) and its REPORTDATA checked
 * before it is returned. -EAGAIN after 3 attempts raced by other writers.
 * Free *ret with free().
 */
int cscp_tdx_guest_quote(const cscp_tdx_guest_paths_t *p, const uint8_t report_data[64], uint8_t **ret, size_t *ret_len,
                         char *err, size_t err_len);
/* RTMR index 0..3. Extending is allowed for RTMR2 and RTMR3 only (0 and 1 belong to the firmware): -EPERM. */
int cscp_tdx_guest_rtmr_read(const cscp_tdx_guest_paths_t *p, unsigned rtmr, uint8_t ret[CSCP_TDX_RTMR_SIZE]);
int cscp_tdx_guest_rtmr_extend(const cscp_tdx_guest_paths_t *p, unsigned rtmr,
                               const uint8_t digest[CSCP_TDX_RTMR_SIZE]);
/*
 * The CCEL log area, as long as the table's log area minimum length says
 * (at most CSCP_TDX_CCEL_MAX), padding included (parsers stop at the 0xFF
 * padding). Free *ret with free().
 */
int cscp_tdx_guest_ccel_read(const cscp_tdx_guest_paths_t *p, uint8_t **ret, size_t *ret_len, char *err,
                             size_t err_len);

/*
 * The CCEL ACPI table (ACPI header 36 bytes, then CC type u8 (2 = Intel TDX),
 * CC subtype u8, reserved u16, log area minimum length u64, log area start
 * address u64; little endian). Checks the signature, the length field (at
 * least 56 and equal to len), the checksum (all bytes sum to 0 mod 256), the
 * CC type (TDX) and a non-zero LAML and LASA. 0, or CSCP_E_PROTO /
 * CSCP_E_UNSUPPORTED (another CC type) with err naming the field.
 */
#define CSCP_TDX_CCEL_TABLE_SIZE 56
#define CSCP_TDX_CCEL_TABLE_MAX  4096 /* largest table read */
int cscp_tdx_ccel_table_parse(const uint8_t *buf, size_t len, uint64_t *ret_laml, uint64_t *ret_lasa, char *err,
                              size_t err_len);
