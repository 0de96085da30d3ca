/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pcr.h"

static const struct {
        uint16_t alg;
        const char *name;
        const char *evp;
        size_t size;
} hashes[] = {
        {TPM2_ALG_SHA1, "sha1", "SHA1", 20},
        {TPM2_ALG_SHA256, "sha256", "SHA256", 32},
        {TPM2_ALG_SHA384, "sha384", "SHA384", 48},
        {TPM2_ALG_SHA512, "sha512", "SHA512", 64},
};

#define N_HASHES (sizeof(hashes) / sizeof(hashes[0]))

uint16_t cscp_hash_alg_from_name(const char *name)
{
        for (size_t i = 0; i < N_HASHES; i++)
                if (strcmp(name, hashes[i].name) == 0)
                        return hashes[i].alg;
        return 0;
}

const char *cscp_hash_alg_name(uint16_t alg)
{
        for (size_t i = 0; i < N_HASHES; i++)
                if (hashes[i].alg == alg)
                        return hashes[i].name;
        return NULL;
}

size_t cscp_hash_alg_size(uint16_t alg)
{
        for (size_t i = 0; i < N_HASHES; i++)
                if (hashes[i].alg == alg)
                        return hashes[i].size;
        return 0;
}

const char *cscp_hash_alg_evp(uint16_t alg)
{
        for (size_t i = 0; i < N_HASHES; i++)
                if (hashes[i].alg == alg)
                        return hashes[i].evp;
        return NULL;
}

bool cscp_pcrsel_is_set(const TPMS_PCR_SELECTION *s, unsigned pcr)
{
        if (pcr / 8 >= s->sizeofSelect || pcr / 8 >= sizeof(s->pcrSelect))
                return false;
        return (s->pcrSelect[pcr / 8] >> (pcr % 8)) & 1;
}

static void pcrsel_set(TPMS_PCR_SELECTION *s, unsigned pcr)
{
        s->pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
}

static TPMS_PCR_SELECTION *pcrsel_bank(TPML_PCR_SELECTION *sel, uint16_t alg)
{
        for (uint32_t i = 0; i < sel->count; i++)
                if (sel->pcrSelections[i].hash == alg)
                        return &sel->pcrSelections[i];
        return NULL;
}

/* Parses a decimal PCR index 0..23 at *p, advancing it. */
static int parse_index(const char **p, unsigned *ret)
{
        unsigned v = 0;
        const char *s = *p;

        if (*s < '0' || *s > '9')
                return CSCP_E_PCRSEL;
        while (*s >= '0' && *s <= '9') {
                v = v * 10 + (unsigned)(*s - '0');
                if (v >= CSCP_PCR_COUNT)
                        return CSCP_E_PCRSEL;
                s++;
        }
        *p = s;
        *ret = v;
        return 0;
}

static int parse_bank(const char *text, size_t len, TPML_PCR_SELECTION *sel)
{
        char name[16];
        const char *colon = memchr(text, ':', len);
        const char *p, *end = text + len;
        TPMS_PCR_SELECTION *s;
        uint16_t alg;

        if (!colon || (size_t)(colon - text) >= sizeof(name))
                return CSCP_E_PCRSEL;
        memcpy(name, text, (size_t)(colon - text));
        name[colon - text] = '\0';
        alg = cscp_hash_alg_from_name(name);
        if (alg == 0 || pcrsel_bank(sel, alg) || sel->count >= TPM2_NUM_PCR_BANKS)
                return CSCP_E_PCRSEL;
        s = &sel->pcrSelections[sel->count];
        memset(s, 0, sizeof(*s));
        s->hash = alg;
        s->sizeofSelect = 3;

        p = colon + 1;
        if ((size_t)(end - p) == 3 && memcmp(p, "all", 3) == 0) {
                for (unsigned i = 0; i < CSCP_PCR_COUNT; i++)
                        pcrsel_set(s, i);
                sel->count++;
                return 0;
        }
        if (p == end)
                return CSCP_E_PCRSEL;
        while (p < end) {
                unsigned lo, hi;
                if (parse_index(&p, &lo) < 0)
                        return CSCP_E_PCRSEL;
                hi = lo;
                if (p < end && *p == '-') {
                        p++;
                        if (parse_index(&p, &hi) < 0 || hi < lo)
                                return CSCP_E_PCRSEL;
                }
                for (unsigned i = lo; i <= hi; i++)
                        pcrsel_set(s, i);
                if (p < end) {
                        if (*p != ',' || p + 1 == end)
                                return CSCP_E_PCRSEL;
                        p++;
                }
        }
        sel->count++;
        return 0;
}

int cscp_pcrsel_parse(const char *text, TPML_PCR_SELECTION *ret)
{
        TPML_PCR_SELECTION sel = {0};
        const char *p = text;

        if (!text || !*text)
                return CSCP_E_PCRSEL;
        for (;;) {
                const char *plus = strchr(p, '+');
                size_t len = plus ? (size_t)(plus - p) : strlen(p);
                if (parse_bank(p, len, &sel) < 0)
                        return CSCP_E_PCRSEL;
                if (!plus)
                        break;
                p = plus + 1;
        }
        *ret = sel;
        return 0;
}

int cscp_pcrsel_format(const TPML_PCR_SELECTION *sel, char *buf, size_t len)
{
        size_t off = 0;

#define APPEND(...)                                                   \
        do {                                                          \
                int n_ = snprintf(buf + off, len - off, __VA_ARGS__); \
                if (n_ < 0 || (size_t)n_ >= len - off)                \
                        return -ENOBUFS;                              \
                off += (size_t)n_;                                    \
        } while (0)

        if (len == 0)
                return -ENOBUFS;
        buf[0] = '\0';
        for (uint32_t b = 0; b < sel->count && b < TPM2_NUM_PCR_BANKS; b++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
                const char *name = cscp_hash_alg_name(s->hash);
                bool first = true;
                char unknown[16];

                if (!name) {
                        snprintf(unknown, sizeof(unknown), "0x%04x", s->hash);
                        name = unknown;
                }
                APPEND("%s%s:", b ? "+" : "", name);
                for (unsigned i = 0; i < 8u * TPM2_PCR_SELECT_MAX;) {
                        unsigned j = i;
                        if (!cscp_pcrsel_is_set(s, i)) {
                                i++;
                                continue;
                        }
                        while (j + 1 < 8u * TPM2_PCR_SELECT_MAX && cscp_pcrsel_is_set(s, j + 1))
                                j++;
                        if (j == i)
                                APPEND("%s%u", first ? "" : ",", i);
                        else
                                APPEND("%s%u-%u", first ? "" : ",", i, j);
                        first = false;
                        i = j + 1;
                }
        }
#undef APPEND
        return 0;
}

size_t cscp_pcrsel_count(const TPML_PCR_SELECTION *sel)
{
        size_t n = 0;

        for (uint32_t b = 0; b < sel->count && b < TPM2_NUM_PCR_BANKS; b++)
                for (unsigned i = 0; i < 8u * TPM2_PCR_SELECT_MAX; i++)
                        n += cscp_pcrsel_is_set(&sel->pcrSelections[b], i);
        return n;
}

bool cscp_pcrsel_covers(const TPML_PCR_SELECTION *have, const TPML_PCR_SELECTION *want)
{
        for (uint32_t b = 0; b < want->count && b < TPM2_NUM_PCR_BANKS; b++) {
                const TPMS_PCR_SELECTION *w = &want->pcrSelections[b];
                const TPMS_PCR_SELECTION *h = NULL;
                for (uint32_t k = 0; k < have->count && k < TPM2_NUM_PCR_BANKS; k++)
                        if (have->pcrSelections[k].hash == w->hash)
                                h = &have->pcrSelections[k];
                for (unsigned i = 0; i < 8u * TPM2_PCR_SELECT_MAX; i++)
                        if (cscp_pcrsel_is_set(w, i) && (!h || !cscp_pcrsel_is_set(h, i)))
                                return false;
        }
        return true;
}

int cscp_pcrsel_from_wire(Cscp__PcrSelection *const *sels, size_t n, TPML_PCR_SELECTION *ret)
{
        TPML_PCR_SELECTION sel = {0};

        if (n > TPM2_NUM_PCR_BANKS)
                return CSCP_E_PCRSEL;
        for (size_t b = 0; b < n; b++) {
                const Cscp__PcrSelection *w = sels[b];
                TPMS_PCR_SELECTION *s;

                if (!w || cscp_hash_alg_size((uint16_t)w->hash_alg) == 0 || w->hash_alg > 0xffff ||
                    pcrsel_bank(&sel, (uint16_t)w->hash_alg) || w->n_pcrs == 0 || w->n_pcrs > CSCP_PCR_COUNT)
                        return CSCP_E_PCRSEL;
                s = &sel.pcrSelections[sel.count];
                s->hash = (uint16_t)w->hash_alg;
                s->sizeofSelect = 3;
                for (size_t i = 0; i < w->n_pcrs; i++) {
                        if (w->pcrs[i] >= CSCP_PCR_COUNT || cscp_pcrsel_is_set(s, w->pcrs[i]))
                                return CSCP_E_PCRSEL;
                        pcrsel_set(s, w->pcrs[i]);
                }
                sel.count++;
        }
        *ret = sel;
        return 0;
}

void cscp_pcrsel_wire_free(Cscp__PcrSelection **sels, size_t n)
{
        if (!sels)
                return;
        for (size_t i = 0; i < n; i++) {
                if (sels[i])
                        free(sels[i]->pcrs);
                free(sels[i]);
        }
        free(sels);
}

int cscp_pcrsel_to_wire(const TPML_PCR_SELECTION *sel, Cscp__PcrSelection ***ret, size_t *ret_n)
{
        Cscp__PcrSelection **out;
        size_t n = sel->count < TPM2_NUM_PCR_BANKS ? sel->count : TPM2_NUM_PCR_BANKS;

        out = calloc(n ? n : 1, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t b = 0; b < n; b++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[b];
                Cscp__PcrSelection *w = calloc(1, sizeof(*w));
                if (!w)
                        goto oom;
                out[b] = w;
                cscp__pcr_selection__init(w);
                w->hash_alg = s->hash;
                w->pcrs = calloc(8u * TPM2_PCR_SELECT_MAX, sizeof(*w->pcrs));
                if (!w->pcrs)
                        goto oom;
                for (unsigned i = 0; i < 8u * TPM2_PCR_SELECT_MAX; i++)
                        if (cscp_pcrsel_is_set(s, i))
                                w->pcrs[w->n_pcrs++] = i;
        }
        *ret = out;
        *ret_n = n;
        return 0;
oom:
        cscp_pcrsel_wire_free(out, n);
        return -ENOMEM;
}
