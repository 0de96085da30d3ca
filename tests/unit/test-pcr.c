/* SPDX-License-Identifier: Apache-2.0 */
/* PCR selections and hash algorithms (include/cscp/pcr.h). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "cscp/pcr.h"

/* ---- helpers ---------------------------------------------------------- */

static void parse_ok(const char *text, TPML_PCR_SELECTION *ret)
{
        int r;

        memset(ret, 0, sizeof(*ret));
        r = cscp_pcrsel_parse(text, ret);
        cr_assert_eq(r, 0, "parse \"%s\": %d", text, r);
}

/* The set of PCRs of one bank as a 24-bit mask, read through is_set. */
static uint32_t bank_mask(const TPMS_PCR_SELECTION *s)
{
        uint32_t m = 0;
        unsigned i;

        for (i = 0; i < CSCP_PCR_COUNT; i++)
                if (cscp_pcrsel_is_set(s, i))
                        m |= 1u << i;
        return m;
}

/* The mask of bank `alg` in sel; -1 when the bank is absent. */
static int64_t mask_of(const TPML_PCR_SELECTION *sel, uint16_t alg)
{
        uint32_t i;

        for (i = 0; i < sel->count; i++)
                if (sel->pcrSelections[i].hash == alg)
                        return bank_mask(&sel->pcrSelections[i]);
        return -1;
}

/* Same banks (in the same order) with the same PCRs. */
static void assert_same(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b, const char *what)
{
        uint32_t i;

        cr_assert_eq(a->count, b->count, "%s: bank count %u vs %u", what, a->count, b->count);
        for (i = 0; i < a->count; i++) {
                cr_assert_eq(a->pcrSelections[i].hash, b->pcrSelections[i].hash, "%s: bank %u", what, i);
                cr_assert_eq(bank_mask(&a->pcrSelections[i]), bank_mask(&b->pcrSelections[i]), "%s: bank %u mask", what,
                             i);
        }
}

/* ---- parse ------------------------------------------------------------ */

Test(pcrsel_parse, ranges_and_list)
{
        TPML_PCR_SELECTION sel;
        const TPMS_PCR_SELECTION *s;

        parse_ok("sha256:0-7,10", &sel);
        cr_assert_eq(sel.count, 1);
        s = &sel.pcrSelections[0];
        cr_assert_eq(s->hash, TPM2_ALG_SHA256);
        cr_assert_eq(s->sizeofSelect, 3);
        cr_assert_eq(s->pcrSelect[0], 0xff);
        cr_assert_eq(s->pcrSelect[1], 0x04);
        cr_assert_eq(s->pcrSelect[2], 0x00);
        cr_assert_eq(cscp_pcrsel_count(&sel), 9);
}

Test(pcrsel_parse, two_banks)
{
        TPML_PCR_SELECTION sel;

        parse_ok("sha256:0-7,10+sha1:0", &sel);
        cr_assert_eq(sel.count, 2);
        cr_assert_eq(sel.pcrSelections[0].hash, TPM2_ALG_SHA256, "banks keep the order of the text");
        cr_assert_eq(sel.pcrSelections[1].hash, TPM2_ALG_SHA1);
        cr_assert_eq(sel.pcrSelections[0].sizeofSelect, 3);
        cr_assert_eq(sel.pcrSelections[1].sizeofSelect, 3);
        cr_assert_eq(bank_mask(&sel.pcrSelections[0]), 0x4ff);
        cr_assert_eq(bank_mask(&sel.pcrSelections[1]), 0x1);
        cr_assert_eq(sel.pcrSelections[1].pcrSelect[0], 0x01);
        cr_assert_eq(sel.pcrSelections[1].pcrSelect[1], 0x00);
        cr_assert_eq(sel.pcrSelections[1].pcrSelect[2], 0x00);
        cr_assert_eq(cscp_pcrsel_count(&sel), 10);
}

Test(pcrsel_parse, all)
{
        TPML_PCR_SELECTION sel;

        parse_ok("sha256:all", &sel);
        cr_assert_eq(sel.count, 1);
        cr_assert_eq(sel.pcrSelections[0].hash, TPM2_ALG_SHA256);
        cr_assert_eq(sel.pcrSelections[0].sizeofSelect, 3);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[0], 0xff);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[1], 0xff);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[2], 0xff);
        cr_assert_eq(cscp_pcrsel_count(&sel), 24);
}

Test(pcrsel_parse, single)
{
        TPML_PCR_SELECTION sel;

        parse_ok("sha256:3", &sel);
        cr_assert_eq(sel.count, 1);
        cr_assert_eq(sel.pcrSelections[0].sizeofSelect, 3);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[0], 0x08);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[1], 0x00);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[2], 0x00);
        cr_assert_eq(cscp_pcrsel_count(&sel), 1);

        parse_ok("sha256:23", &sel);
        cr_assert_eq(bank_mask(&sel.pcrSelections[0]), 1u << 23);
        cr_assert_eq(sel.pcrSelections[0].pcrSelect[2], 0x80);

        parse_ok("sha256:0-23", &sel);
        cr_assert_eq(bank_mask(&sel.pcrSelections[0]), 0xffffff);

        parse_ok("sha256:5-5", &sel);
        cr_assert_eq(bank_mask(&sel.pcrSelections[0]), 1u << 5);
}

Test(pcrsel_parse, every_bank)
{
        TPML_PCR_SELECTION sel;

        parse_ok("sha1:0+sha256:1+sha384:2+sha512:3", &sel);
        cr_assert_eq(sel.count, 4);
        cr_assert_eq(mask_of(&sel, TPM2_ALG_SHA1), 0x1);
        cr_assert_eq(mask_of(&sel, TPM2_ALG_SHA256), 0x2);
        cr_assert_eq(mask_of(&sel, TPM2_ALG_SHA384), 0x4);
        cr_assert_eq(mask_of(&sel, TPM2_ALG_SHA512), 0x8);
        cr_assert_eq(cscp_pcrsel_count(&sel), 4);
}

Test(pcrsel_parse, errors)
{
        static const char *const bad[] = {
                "",
                "sha256:",
                "sha256",
                ":1",
                "sha256:24",
                "sha256:0-24",
                "sha256:7-3",
                "md5:1",
                "foo:1",
                "sha256:1,,2",
                "sha256:,1",
                "sha256:1,",
                "sha256:0-",
                "sha256:-1",
                "sha256:-",
                "sha256:0-7+sha256:8",
                "sha1:0+sha256:1+sha1:2",
                "sha256:1+",
                "+sha256:1",
                "sha256:1++sha1:1",
                "sha256:1 ",
                " sha256:1",
                "sha256: 1",
                "sha256:1x",
                "sha256:0x1",
                "sha256:1-2-3",
                "sha256:+1",
                "sha256:1-+2",
                "sha256:1:2",
                "sha256::1",
                /* overlong numbers, some of which wrap to a valid PCR */
                "sha256:100",
                "sha256:4294967296",
                "sha256:4294967297",
                "sha256:18446744073709551616",
                "sha256:18446744073709551617",
                "sha256:99999999999999999999999999999999999999",
                "sha256:0-4294967297",
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                TPML_PCR_SELECTION sel;
                int r;

                memset(&sel, 0, sizeof(sel));
                r = cscp_pcrsel_parse(bad[i], &sel);
                cr_expect_eq(r, CSCP_E_PCRSEL, "parse \"%s\": got %d, want CSCP_E_PCRSEL", bad[i], r);
        }
}

Test(pcrsel_parse, ret_untouched_on_error)
{
        TPML_PCR_SELECTION sel, before;

        memset(&sel, 0xa5, sizeof(sel));
        memcpy(&before, &sel, sizeof(sel));
        cr_assert_eq(cscp_pcrsel_parse("sha256:0-7+sha256:8", &sel), CSCP_E_PCRSEL);
        cr_expect_arr_eq(&sel, &before, sizeof(sel), "ret_ written on failure (conventions.md)");
}

/* ---- format ----------------------------------------------------------- */

static void expect_format(const char *text, const char *want)
{
        TPML_PCR_SELECTION sel;
        char buf[256];
        int r;

        parse_ok(text, &sel);
        memset(buf, 'Z', sizeof(buf));
        r = cscp_pcrsel_format(&sel, buf, sizeof(buf));
        cr_assert_geq(r, 0, "format \"%s\": %d", text, r);
        cr_assert_str_eq(buf, want, "format of \"%s\"", text);
}

Test(pcrsel_format, canonical)
{
        expect_format("sha256:0-7,10", "sha256:0-7,10");
        expect_format("sha256:3", "sha256:3");
        expect_format("sha256:0-7,10+sha1:0", "sha256:0-7,10+sha1:0");
        expect_format("sha1:0+sha256:1+sha384:2+sha512:3", "sha1:0+sha256:1+sha384:2+sha512:3");
        expect_format("sha256:10,0-7", "sha256:0-7,10");
        expect_format("sha256:3,2,1,0", "sha256:0-3");
}

Test(pcrsel_format, round_trip)
{
        static const char *const texts[] = {
                "sha256:0-7,10",
                "sha256:0-7,10+sha1:0",
                "sha256:all",
                "sha256:3",
                "sha256:0,2,4,6,8,10,12,14,16,18,20,22",
                "sha1:1-2+sha512:22-23",
                "sha384:23",
                "sha256:0-23+sha1:all+sha384:0,23+sha512:11-12",
                "sha256:1,2",
                "sha256:0,1,3-5,7",
        };
        size_t i;

        for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                TPML_PCR_SELECTION a, b;
                char buf[512];
                int r;

                parse_ok(texts[i], &a);
                r = cscp_pcrsel_format(&a, buf, sizeof(buf));
                cr_assert_geq(r, 0, "format \"%s\": %d", texts[i], r);
                cr_assert_lt(strlen(buf), sizeof(buf));
                parse_ok(buf, &b);
                assert_same(&a, &b, texts[i]);
        }
}

Test(pcrsel_format, small_buffer)
{
        TPML_PCR_SELECTION sel;
        char buf[32];
        int r;

        parse_ok("sha256:0-7,10+sha1:0", &sel);
        memset(buf, 'Z', sizeof(buf));
        r = cscp_pcrsel_format(&sel, buf, 5);
        cr_assert_lt(r, 0, "format into 5 bytes must fail, got %d", r);
        for (size_t i = 5; i < sizeof(buf); i++)
                cr_assert_eq(buf[i], 'Z', "wrote past the buffer at %zu", i);

        /* Exactly large enough (text + NUL) works; one byte less does not. */
        memset(buf, 'Z', sizeof(buf));
        r = cscp_pcrsel_format(&sel, buf, strlen("sha256:0-7,10+sha1:0") + 1);
        cr_assert_geq(r, 0);
        cr_assert_str_eq(buf, "sha256:0-7,10+sha1:0");
        memset(buf, 'Z', sizeof(buf));
        r = cscp_pcrsel_format(&sel, buf, strlen("sha256:0-7,10+sha1:0"));
        cr_assert_lt(r, 0, "no room for the NUL but format returned %d", r);
        cr_assert_eq(buf[strlen("sha256:0-7,10+sha1:0")], 'Z', "wrote past the buffer");
}

/* ---- count, covers, is_set ------------------------------------------- */

Test(pcrsel, count)
{
        TPML_PCR_SELECTION sel;

        memset(&sel, 0, sizeof(sel));
        cr_assert_eq(cscp_pcrsel_count(&sel), 0);
        parse_ok("sha256:all+sha1:all", &sel);
        cr_assert_eq(cscp_pcrsel_count(&sel), 48);
        parse_ok("sha256:0,2,4", &sel);
        cr_assert_eq(cscp_pcrsel_count(&sel), 3);
}

Test(pcrsel, covers)
{
        TPML_PCR_SELECTION have, want, empty;

        parse_ok("sha256:0-7,10+sha1:0", &have);

        parse_ok("sha256:0-7", &want);
        cr_assert(cscp_pcrsel_covers(&have, &want));
        parse_ok("sha256:10", &want);
        cr_assert(cscp_pcrsel_covers(&have, &want));
        parse_ok("sha1:0+sha256:0-7,10", &want);
        cr_assert(cscp_pcrsel_covers(&have, &want), "bank order does not matter");
        cr_assert(cscp_pcrsel_covers(&have, &have));

        parse_ok("sha256:0-8", &want);
        cr_assert_not(cscp_pcrsel_covers(&have, &want));
        parse_ok("sha256:11", &want);
        cr_assert_not(cscp_pcrsel_covers(&have, &want));
        parse_ok("sha1:1", &want);
        cr_assert_not(cscp_pcrsel_covers(&have, &want));
        parse_ok("sha384:0", &want);
        cr_assert_not(cscp_pcrsel_covers(&have, &want), "missing bank");
        parse_ok("sha256:0+sha384:0", &want);
        cr_assert_not(cscp_pcrsel_covers(&have, &want));

        memset(&empty, 0, sizeof(empty));
        cr_assert(cscp_pcrsel_covers(&have, &empty), "empty want is covered");
        parse_ok("sha256:0", &want);
        cr_assert_not(cscp_pcrsel_covers(&empty, &want));
}

Test(pcrsel, is_set_bit_layout)
{
        TPMS_PCR_SELECTION s;
        unsigned i;

        memset(&s, 0, sizeof(s));
        s.hash = TPM2_ALG_SHA256;
        s.sizeofSelect = 3;
        s.pcrSelect[0] = 0x01; /* PCR 0 */
        s.pcrSelect[1] = 0x80; /* PCR 15 */
        s.pcrSelect[2] = 0x12; /* PCR 17, 20 */
        for (i = 0; i < CSCP_PCR_COUNT; i++) {
                bool want = i == 0 || i == 15 || i == 17 || i == 20;

                cr_assert_eq(cscp_pcrsel_is_set(&s, i), want, "PCR %u", i);
        }
        s.pcrSelect[3] = 0xff;
        cr_assert_not(cscp_pcrsel_is_set(&s, 24), "bit beyond sizeofSelect");
        cr_assert_not(cscp_pcrsel_is_set(&s, 31), "bit beyond sizeofSelect");
        cr_assert_not(cscp_pcrsel_is_set(&s, 1000));

        /* Only sizeofSelect bytes count. */
        s.sizeofSelect = 1;
        cr_assert(cscp_pcrsel_is_set(&s, 0));
        cr_assert_not(cscp_pcrsel_is_set(&s, 15), "byte 1 is beyond sizeofSelect 1");
        s.sizeofSelect = 0;
        cr_assert_not(cscp_pcrsel_is_set(&s, 0));
}

/* ---- wire ------------------------------------------------------------- */

static int from_wire_1(uint32_t alg, const uint32_t *pcrs, size_t n, TPML_PCR_SELECTION *ret)
{
        Cscp__PcrSelection ps = CSCP__PCR_SELECTION__INIT;
        Cscp__PcrSelection *v[1] = {&ps};

        ps.hash_alg = alg;
        ps.pcrs = (uint32_t *)pcrs;
        ps.n_pcrs = n;
        return cscp_pcrsel_from_wire(v, 1, ret);
}

Test(pcrsel_wire, from_wire_ok)
{
        static const uint32_t pcrs[] = {0, 1, 2, 3, 4, 5, 6, 7, 10};
        TPML_PCR_SELECTION sel, want;

        memset(&sel, 0, sizeof(sel));
        cr_assert_eq(from_wire_1(TPM2_ALG_SHA256, pcrs, 9, &sel), 0);
        parse_ok("sha256:0-7,10", &want);
        assert_same(&sel, &want, "from_wire");
        cr_assert_eq(sel.pcrSelections[0].sizeofSelect, 3);

        cr_assert_eq(from_wire_1(TPM2_ALG_SHA1, (const uint32_t[]){23}, 1, &sel), 0);
        cr_assert_eq(bank_mask(&sel.pcrSelections[0]), 1u << 23);
}

Test(pcrsel_wire, from_wire_refuses)
{
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection a = CSCP__PCR_SELECTION__INIT, b = CSCP__PCR_SELECTION__INIT;
        Cscp__PcrSelection *v[2] = {&a, &b};
        uint32_t pa[] = {0}, pb[] = {1};
        int r;

        r = from_wire_1(TPM2_ALG_SHA256, (const uint32_t[]){24}, 1, &sel);
        cr_expect_lt(r, 0, "PCR 24 accepted (%d)", r);
        r = from_wire_1(TPM2_ALG_SHA256, (const uint32_t[]){1, 0xffffffffu}, 2, &sel);
        cr_expect_lt(r, 0, "PCR 0xffffffff accepted (%d)", r);
        r = from_wire_1(TPM2_ALG_SHA256, (const uint32_t[]){256 + 1}, 1, &sel);
        cr_expect_lt(r, 0, "PCR 257 accepted (%d)", r);
        r = from_wire_1(0x1234, (const uint32_t[]){0}, 1, &sel);
        cr_expect_lt(r, 0, "unknown alg accepted (%d)", r);
        r = from_wire_1(0x0005 /* TPM_ALG_MD5 */, (const uint32_t[]){0}, 1, &sel);
        cr_expect_lt(r, 0, "md5 accepted (%d)", r);
        r = from_wire_1(0x1000B /* sha256 + 0x10000: truncates to sha256 */, (const uint32_t[]){0}, 1, &sel);
        cr_expect_lt(r, 0, "alg 0x1000B accepted (%d)", r);

        a.hash_alg = TPM2_ALG_SHA256;
        a.pcrs = pa;
        a.n_pcrs = 1;
        b.hash_alg = TPM2_ALG_SHA256;
        b.pcrs = pb;
        b.n_pcrs = 1;
        r = cscp_pcrsel_from_wire(v, 2, &sel);
        cr_expect_lt(r, 0, "duplicate bank accepted (%d)", r);

        b.hash_alg = TPM2_ALG_SHA1;
        r = cscp_pcrsel_from_wire(v, 2, &sel);
        cr_expect_eq(r, 0, "two different banks refused (%d)", r);
}

Test(pcrsel_wire, from_wire_too_many_banks)
{
        Cscp__PcrSelection s[TPM2_NUM_PCR_BANKS + 1];
        Cscp__PcrSelection *v[TPM2_NUM_PCR_BANKS + 1];
        uint32_t p0 = 0;
        TPML_PCR_SELECTION sel;
        size_t i;
        int r;

        for (i = 0; i < TPM2_NUM_PCR_BANKS + 1; i++) {
                cscp__pcr_selection__init(&s[i]);
                s[i].hash_alg = TPM2_ALG_SHA256;
                s[i].pcrs = &p0;
                s[i].n_pcrs = 1;
                v[i] = &s[i];
        }
        r = cscp_pcrsel_from_wire(v, TPM2_NUM_PCR_BANKS + 1, &sel);
        cr_assert_lt(r, 0, "%d banks accepted (%d)", TPM2_NUM_PCR_BANKS + 1, r);
}

Test(pcrsel_wire, to_wire_round_trip)
{
        static const char *const texts[] = {"sha256:0-7,10+sha1:0", "sha256:all", "sha384:23+sha512:0,5"};
        size_t t;

        for (t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
                TPML_PCR_SELECTION sel, back;
                Cscp__PcrSelection **w = NULL;
                size_t n = 0, i, j;

                parse_ok(texts[t], &sel);
                cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &n), 0);
                cr_assert_eq(n, sel.count);
                cr_assert_not_null(w);
                for (i = 0; i < n; i++) {
                        uint32_t m = 0;

                        cr_assert_eq(w[i]->hash_alg, sel.pcrSelections[i].hash);
                        for (j = 0; j < w[i]->n_pcrs; j++) {
                                cr_assert_lt(w[i]->pcrs[j], CSCP_PCR_COUNT);
                                if (j > 0)
                                        cr_assert_gt(w[i]->pcrs[j], w[i]->pcrs[j - 1], "PCR indexes ascending");
                                m |= 1u << w[i]->pcrs[j];
                        }
                        cr_assert_eq(m, bank_mask(&sel.pcrSelections[i]));
                }
                /* Each wire message is a proper protobuf-c message (descriptor set). */
                for (i = 0; i < n; i++) {
                        size_t len = cscp__pcr_selection__get_packed_size(w[i]);
                        uint8_t *buf = malloc(len + 1);
                        Cscp__PcrSelection *u;

                        cr_assert_not_null(buf);
                        cr_assert_eq(cscp__pcr_selection__pack(w[i], buf), len);
                        u = cscp__pcr_selection__unpack(NULL, len, buf);
                        cr_assert_not_null(u);
                        cr_assert_eq(u->hash_alg, w[i]->hash_alg);
                        cr_assert_eq(u->n_pcrs, w[i]->n_pcrs);
                        cscp__pcr_selection__free_unpacked(u, NULL);
                        free(buf);
                }
                memset(&back, 0, sizeof(back));
                cr_assert_eq(cscp_pcrsel_from_wire(w, n, &back), 0);
                assert_same(&sel, &back, texts[t]);
                cscp_pcrsel_wire_free(w, n);
        }
        cscp_pcrsel_wire_free(NULL, 0);
}

Test(pcrsel_wire, to_wire_exact_values)
{
        TPML_PCR_SELECTION sel;
        Cscp__PcrSelection **w = NULL;
        size_t n = 0;

        parse_ok("sha256:0-7,10+sha1:0", &sel);
        cr_assert_eq(cscp_pcrsel_to_wire(&sel, &w, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_eq(w[0]->hash_alg, 0x000B);
        cr_assert_eq(w[0]->n_pcrs, 9);
        cr_assert_arr_eq(w[0]->pcrs, ((const uint32_t[]){0, 1, 2, 3, 4, 5, 6, 7, 10}), 9 * sizeof(uint32_t));
        cr_assert_eq(w[1]->hash_alg, 0x0004);
        cr_assert_eq(w[1]->n_pcrs, 1);
        cr_assert_eq(w[1]->pcrs[0], 0);
        cscp_pcrsel_wire_free(w, n);
}

/* ---- hash algorithms -------------------------------------------------- */

Test(hash_alg, names_and_sizes)
{
        static const struct {
                const char *name;
                uint16_t alg;
                size_t size;
        } t[] = {
                {"sha1", TPM2_ALG_SHA1, 20},
                {"sha256", TPM2_ALG_SHA256, 32},
                {"sha384", TPM2_ALG_SHA384, 48},
                {"sha512", TPM2_ALG_SHA512, 64},
        };
        size_t i;

        cr_assert_eq(TPM2_ALG_SHA1, 0x0004);
        cr_assert_eq(TPM2_ALG_SHA256, 0x000B);
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const char *evp;
                EVP_MD *md;

                cr_assert_eq(cscp_hash_alg_from_name(t[i].name), t[i].alg, "%s", t[i].name);
                cr_assert_str_eq(cscp_hash_alg_name(t[i].alg), t[i].name);
                cr_assert_eq(cscp_hash_alg_size(t[i].alg), t[i].size, "%s", t[i].name);
                evp = cscp_hash_alg_evp(t[i].alg);
                cr_assert_not_null(evp, "%s", t[i].name);
                md = EVP_MD_fetch(NULL, evp, NULL);
                cr_assert_not_null(md, "EVP_MD_fetch(\"%s\")", evp);
                cr_assert_eq((size_t)EVP_MD_get_size(md), t[i].size, "%s", evp);
                EVP_MD_free(md);
        }
}

Test(hash_alg, unknown)
{
        cr_assert_eq(cscp_hash_alg_from_name("md5"), 0);
        cr_assert_eq(cscp_hash_alg_from_name(""), 0);
        cr_assert_eq(cscp_hash_alg_from_name("sha"), 0);
        cr_assert_eq(cscp_hash_alg_from_name("sha2566"), 0);
        cr_assert_eq(cscp_hash_alg_from_name("sm3_256"), 0);
        cr_assert_null(cscp_hash_alg_name(0));
        cr_assert_null(cscp_hash_alg_name(0x1234));
        cr_assert_null(cscp_hash_alg_name(TPM2_ALG_RSA));
        cr_assert_eq(cscp_hash_alg_size(0), 0);
        cr_assert_eq(cscp_hash_alg_size(0x1234), 0);
        cr_assert_eq(cscp_hash_alg_size(TPM2_ALG_RSA), 0);
        cr_assert_null(cscp_hash_alg_evp(0));
        cr_assert_null(cscp_hash_alg_evp(0x1234));
}

/* Seeds for tests/fuzz/fuzz-pcrsel.c: plain text, one selection per file. */
Test(pcrsel_seeds, write_fuzz_corpus)
{
        static const char *const seeds[] = {
                "sha256:0-7,10",
                "sha256:0-7,10+sha1:0",
                "sha256:all",
                "sha256:3",
                "sha1:0+sha256:1+sha384:2+sha512:3",
                "sha256:0,2,4-6,23",
                "sha256:7-3",
                "sha256:1,,2",
        };
        const char *build = getenv("CSCP_BUILD_DIR");
        char dir[4096], path[4200];
        size_t i;

        if (!build || !*build)
                cr_skip_test("CSCP_BUILD_DIR not set (run through meson test)");
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds", build), sizeof(dir));
        (void)mkdir(dir, 0755);
        cr_assert_lt((size_t)snprintf(dir, sizeof(dir), "%s/fuzz-seeds/pcrsel", build), sizeof(dir));
        (void)mkdir(dir, 0755);
        for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
                FILE *f;

                snprintf(path, sizeof(path), "%s/seed-%zu", dir, i);
                f = fopen(path, "we");
                cr_assert_not_null(f, "%s", path);
                cr_assert_eq(fputs(seeds[i], f) >= 0, true);
                cr_assert_eq(fclose(f), 0);
        }
}
