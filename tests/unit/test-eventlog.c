/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The format-independent half of lib/eventlog: format names, detection,
 * PCR replay arithmetic, tpm2_pcrread-style output, and checkpoints.
 * The per-format parsers have their own suites (test-eventlog-<format>.c).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "harness.h"

Test(eventlog, format_names_round_trip)
{
        for (int f = 0; f < _CSCP_EVENTLOG_FORMAT_MAX; f++) {
                const char *n = cscp_eventlog_format_name((cscp_eventlog_format_t)f);
                cr_assert_not_null(n);
                cr_assert_eq(cscp_eventlog_format_from_name(n), f);
        }
        cr_assert_eq(cscp_eventlog_format_from_name("ima-ng"), -1);
        cr_assert_eq(cscp_eventlog_format_from_name(NULL), -1);
        cr_assert_null(cscp_eventlog_format_name(_CSCP_EVENTLOG_FORMAT_MAX));
}

static cscp_eventlog_format_t detected(const void *buf, size_t len)
{
        cscp_eventlog_t *l = NULL;
        cscp_eventlog_format_t f;
        int r = cscp_eventlog_open_mem(buf, len, CSCP_EVENTLOG_AUTO, NULL, NULL, &l);

        if (r < 0)
                return CSCP_EVENTLOG_AUTO;
        f = cscp_eventlog_format(l);
        cscp_eventlog_free(l);
        return f;
}

Test(eventlog, detection)
{
        /* TCG crypto-agile header: pcr 0, EV_NO_ACTION, zero SHA-1 digest, size, "Spec ID Event03". */
        uint8_t tcg[64] = {0, 0, 0, 0, 3, 0, 0, 0};
        memcpy(tcg + 32, "Spec ID Event03", 16);
        cr_assert_eq(detected(tcg, sizeof(tcg)), CSCP_EVENTLOG_TCG);

        static const char ima[] = "10 91f34b5c671d73504b274a919661cf80dab1e127 ima-ng "
                                  "sha1:1801e1be3e65ef1eaa5c16617bec8f1274eaf6b3 boot_aggregate\n";
        cr_assert_eq(detected(ima, strlen(ima)), CSCP_EVENTLOG_IMA);

        /* IMA binary: pcr 10 (LE), 20-byte digest, name length 6, "ima-ng". */
        uint8_t imab[40] = {10, 0, 0, 0};
        imab[24] = 6;
        memcpy(imab + 28, "ima-ng", 6);
        cr_assert_eq(detected(imab, sizeof(imab)), CSCP_EVENTLOG_IMA_BINARY);

        /* CEL-TLV: recnum TLV (8 bytes) then pcr TLV (4 bytes). */
        uint8_t cel[32] = {0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 15};
        cr_assert_eq(detected(cel, sizeof(cel)), CSCP_EVENTLOG_CEL_TLV);

        cr_assert_eq(detected("[{\"pcr\":1}]", 11), CSCP_EVENTLOG_CEL_JSON);
        cr_assert_eq(detected("\x1e{\"pcr\":1}\n", 11), CSCP_EVENTLOG_CEL_JSON);
        cr_assert_eq(detected("  {\"recnum\":0}\n", 15), CSCP_EVENTLOG_CEL_JSON);

        cr_assert_eq(detected("", 0), CSCP_EVENTLOG_AUTO);
        cr_assert_eq(detected("hello world, not a log", 22), CSCP_EVENTLOG_AUTO);
}

Test(eventlog, open_rejects_bad_arguments)
{
        cscp_eventlog_t *l = NULL;

        cr_assert_eq(cscp_eventlog_open_mem(NULL, 5, CSCP_EVENTLOG_TCG, NULL, NULL, &l), -EINVAL);
        cr_assert_eq(cscp_eventlog_open_mem((const uint8_t *)"x", 1, (cscp_eventlog_format_t)99, NULL, NULL, &l),
                     -EINVAL);
        cr_assert_eq(cscp_eventlog_open_fd(-1, CSCP_EVENTLOG_TCG, NULL, NULL, &l), -EINVAL);
        cr_assert_eq(cscp_eventlog_open_mem((const uint8_t *)"", 0, CSCP_EVENTLOG_AUTO, NULL, NULL, &l), CSCP_E_PROTO);
        cr_assert_null(l);
        cscp_eventlog_free(NULL);
}

static void sha(const char *name, const void *a, size_t al, const void *b, size_t bl, uint8_t *out)
{
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned n;

        cr_assert_not_null(c);
        cr_assert_eq(EVP_DigestInit_ex(c, EVP_get_digestbyname(name), NULL), 1);
        cr_assert_eq(EVP_DigestUpdate(c, a, al), 1);
        if (b)
                cr_assert_eq(EVP_DigestUpdate(c, b, bl), 1);
        cr_assert_eq(EVP_DigestFinal_ex(c, out, &n), 1);
        EVP_MD_CTX_free(c);
}

static cscp_event_t event(unsigned pcr, uint16_t alg, uint8_t fill)
{
        cscp_event_t ev = {.pcr = pcr, .extend = true, .startup_locality = -1, .n_digests = 1};

        ev.digests[0].alg = alg;
        ev.digests[0].size = (uint16_t)cscp_hash_alg_size(alg);
        memset(ev.digests[0].digest, fill, ev.digests[0].size);
        return ev;
}

Test(replay, extend_arithmetic_and_initial_values)
{
        cscp_replay_t rp;
        cscp_event_t ev = event(10, TPM2_ALG_SHA256, 0xab);
        uint8_t want[32], zero[32] = {0}, got[64];
        size_t len;

        cscp_replay_init(&rp);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA256, 10, got, &len), -ENOENT, "bank present before any event");
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        sha("SHA256", zero, 32, ev.digests[0].digest, 32, want);
        sha("SHA256", want, 32, ev.digests[0].digest, 32, want);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA256, 10, got, &len), 0);
        cr_assert_eq(len, 32);
        cr_assert_arr_eq(got, want, 32);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA1, 10, got, &len), -ENOENT);

        /* DRTM PCRs start at all 0xFF. */
        ev = event(17, TPM2_ALG_SHA256, 0x01);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        uint8_t ff[32];
        memset(ff, 0xff, 32);
        sha("SHA256", ff, 32, ev.digests[0].digest, 32, want);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA256, 17, got, &len), 0);
        cr_assert_arr_eq(got, want, 32);

        /* Not extended: EV_NO_ACTION, NV-index records. */
        ev = event(11, TPM2_ALG_SHA256, 0x02);
        ev.extend = false;
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        ev.extend = true;
        ev.reg = CSCP_EVENT_NV_INDEX;
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA256, 11, got, &len), 0);
        cr_assert_arr_eq(got, zero, 32);
        cr_assert_eq(rp.extended[1] & (1u << 11), 0);

        /* Out of range and unknown banks are errors, not silent. */
        ev = event(24, TPM2_ALG_SHA256, 0x03);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), CSCP_E_PCRSEL);
        ev = event(1, TPM2_ALG_SHA256, 0x03);
        ev.digests[0].alg = 0x0027; /* sha3-256 */
        cr_assert_eq(cscp_replay_extend(&rp, &ev), CSCP_E_UNSUPPORTED);
        ev = event(1, TPM2_ALG_SHA256, 0x03);
        ev.digests[0].size = 20;
        cr_assert_eq(cscp_replay_extend(&rp, &ev), CSCP_E_UNSUPPORTED);
}

Test(replay, startup_locality_sets_pcr0_last_byte)
{
        cscp_replay_t rp;
        cscp_event_t loc = {.pcr = 0, .startup_locality = 3};
        cscp_event_t ev = event(0, TPM2_ALG_SHA1, 0x11);
        uint8_t init[20] = {0}, want[20], got[64];
        size_t len;

        cscp_replay_init(&rp);
        cr_assert_eq(cscp_replay_extend(&rp, &loc), 0);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        init[19] = 3;
        sha("SHA1", init, 20, ev.digests[0].digest, 20, want);
        cr_assert_eq(cscp_replay_pcr(&rp, TPM2_ALG_SHA1, 0, got, &len), 0);
        cr_assert_arr_eq(got, want, 20);
}

Test(replay, prints_like_tpm2_pcrread)
{
        cscp_replay_t rp;
        cscp_event_t a = event(0, TPM2_ALG_SHA1, 0), b = event(10, TPM2_ALG_SHA256, 0);
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        cscp_replay_init(&rp);
        cr_assert_eq(cscp_replay_extend(&rp, &a), 0);
        cr_assert_eq(cscp_replay_extend(&rp, &b), 0);
        f = open_memstream(&buf, &len);
        cr_assert_not_null(f);
        cr_assert_eq(cscp_replay_print(&rp, 0, 0, f), 0);
        fclose(f);
        /* SHA1(20 zero bytes || 20 zero bytes) and SHA256(64 zero bytes), uppercase as tpm2_pcrread prints. */
        cr_assert_str_eq(buf, "  sha1:\n"
                              "    0 : 0xB80DE5D138758541C5F05265AD144AB9FA86D1DB\n"
                              "  sha256:\n"
                              "    10: 0xF5A5FD42D16A20302798EF6ED309979B43003D2320D9F0E8EA9831A92759FB4B\n");
        free(buf);

        /* Selected PCRs of one bank, extended or not. */
        f = open_memstream(&buf, &len);
        cr_assert_eq(cscp_replay_print(&rp, TPM2_ALG_SHA256, (1u << 9) | (1u << 17), f), 0);
        fclose(f);
        cr_assert_str_eq(buf, "  sha256:\n"
                              "    9 : 0x0000000000000000000000000000000000000000000000000000000000000000\n"
                              "    17: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\n");
        free(buf);
}

Test(replay, save_load_round_trip_and_corruption)
{
        cscp_replay_t rp, back;
        cscp_event_t ev = event(10, TPM2_ALG_SHA384, 0x5a);
        uint8_t *buf;
        size_t len;

        cscp_replay_init(&rp);
        cr_assert_eq(cscp_replay_extend(&rp, &ev), 0);
        rp.format = CSCP_EVENTLOG_IMA_BINARY;
        rp.next_index = 12345;
        rp.next_offset = 987654321;
        rp.parser_state_len = 3;
        memcpy(rp.parser_state, "abc", 3);
        cr_assert_eq(cscp_replay_save(&rp, &buf, &len), 0);
        cr_assert_eq(cscp_replay_load(buf, len, &back), 0);
        cr_assert_eq(memcmp(&back.pcr, &rp.pcr, sizeof(rp.pcr)), 0);
        cr_assert_eq(memcmp(back.extended, rp.extended, sizeof(rp.extended)), 0);
        cr_assert_eq(memcmp(back.bank_present, rp.bank_present, sizeof(rp.bank_present)), 0);
        cr_assert_eq(back.format, CSCP_EVENTLOG_IMA_BINARY);
        cr_assert_eq(back.next_index, 12345);
        cr_assert_eq(back.next_offset, 987654321);
        cr_assert_eq(back.parser_state_len, 3);
        cr_assert_arr_eq(back.parser_state, "abc", 3);

        /* Any flipped bit, any truncation, anything appended: refused. */
        for (size_t i = 0; i < len; i += 13) {
                buf[i] ^= 0x04;
                cr_assert_eq(cscp_replay_load(buf, len, &back), CSCP_E_STATE, "flip at %zu accepted", i);
                buf[i] ^= 0x04;
        }
        cr_assert_eq(cscp_replay_load(buf, len - 1, &back), CSCP_E_STATE);
        cr_assert_eq(cscp_replay_load(buf, 10, &back), CSCP_E_STATE);
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        cr_assert_eq(cscp_replay_load(longer, len + 1, &back), CSCP_E_STATE);
        free(longer);

        /* Seed for fuzz-checkpoint. */
        {
                char *dir = harness_path(harness_build_dir(), "fuzz-seeds");
                mkdir(dir, 0755);
                dir = harness_path(dir, "checkpoint");
                mkdir(dir, 0755);
                FILE *f = fopen(harness_path(dir, "ima-binary"), "wb");
                if (f) {
                        fwrite(buf, 1, len, f);
                        fclose(f);
                }
        }
        free(buf);
}
