/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCR replay over parsed events, checkpoints for incremental replay, and
 * output in tpm2_pcrread's format.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cscp/error.h"
#include "internal.h"

static const uint16_t replay_banks[CSCP_EVENT_MAX_DIGESTS] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384,
                                                              TPM2_ALG_SHA512};

static int bank_slot(uint16_t alg)
{
        for (int i = 0; i < CSCP_EVENT_MAX_DIGESTS; i++)
                if (replay_banks[i] == alg)
                        return i;
        return -1;
}

/* TCG PC Client: PCR 17–22 (DRTM) reset to all 0xFF, the others to zero. */
static void initial_value(uint8_t *v, size_t size, unsigned pcr)
{
        memset(v, pcr >= 17 && pcr <= 22 ? 0xff : 0x00, size);
}

void cscp_replay_init(cscp_replay_t *rp)
{
        memset(rp, 0, sizeof(*rp));
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                size_t size = cscp_hash_alg_size(replay_banks[b]);
                rp->banks[b] = replay_banks[b];
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                        initial_value(rp->pcr[b][p], size, p);
        }
}

int cscp_replay_extend(cscp_replay_t *rp, const cscp_event_t *ev)
{
        if (!rp || !ev)
                return -EINVAL;
        if (ev->startup_locality >= 0 && ev->reg == CSCP_EVENT_PCR && ev->pcr == 0) {
                /* Only meaningful before anything was extended into PCR 0. */
                for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                        if (rp->extended[b] & 1u)
                                continue;
                        size_t size = cscp_hash_alg_size(rp->banks[b]);
                        rp->pcr[b][0][size - 1] = (uint8_t)ev->startup_locality;
                }
        }
        if (!ev->extend || ev->reg != CSCP_EVENT_PCR)
                return 0;
        if (ev->pcr >= CSCP_PCR_COUNT)
                return CSCP_E_PCRSEL;
        for (size_t i = 0; i < ev->n_digests; i++) {
                const cscp_event_digest_t *d = &ev->digests[i];
                int b = bank_slot(d->alg);
                uint8_t out[CSCP_EVENT_MAX_DIGEST];
                int r;

                if (b < 0 || d->size != cscp_hash_alg_size(d->alg))
                        return CSCP_E_UNSUPPORTED;
                r = evlog_hash2(d->alg, rp->pcr[b][ev->pcr], d->size, d->digest, d->size, out);
                if (r < 0)
                        return r;
                memcpy(rp->pcr[b][ev->pcr], out, d->size);
                rp->extended[b] |= 1u << ev->pcr;
                rp->bank_present[b] = true;
        }
        return 0;
}

int cscp_replay_checkpoint(cscp_replay_t *rp, const cscp_eventlog_t *l)
{
        size_t len = sizeof(rp->parser_state);

        if (!rp || !l || !l->ops)
                return -EINVAL;
        rp->format = l->ops->format;
        rp->next_index = l->next_index;
        rp->next_offset = l->in.consumed;
        rp->tail_len = 0;
        {
                uint8_t tail[256];
                size_t tl = rp->next_offset < sizeof(tail) ? (size_t)rp->next_offset : sizeof(tail);
                if (tl && evlog_in_tail(&l->in, rp->next_offset, tail, tl) == 0) {
                        int r = evlog_hash(TPM2_ALG_SHA256, tail, tl, rp->tail_sha256);
                        if (r < 0)
                                return r;
                        rp->tail_len = (uint16_t)tl;
                }
        }
        rp->parser_state_len = 0;
        if (l->ops->save) {
                int r = l->ops->save(l, rp->parser_state, &len);
                if (r < 0)
                        return r;
                rp->parser_state_len = len;
        }
        return 0;
}

int cscp_replay_pcr(const cscp_replay_t *rp, uint16_t alg, unsigned pcr, uint8_t *ret_value, size_t *ret_len)
{
        int b = bank_slot(alg);

        if (!rp || !ret_value || !ret_len || pcr >= CSCP_PCR_COUNT)
                return -EINVAL;
        if (b < 0 || !rp->bank_present[b])
                return -ENOENT;
        *ret_len = cscp_hash_alg_size(alg);
        memcpy(ret_value, rp->pcr[b][pcr], *ret_len);
        return 0;
}

int cscp_replay_print(const cscp_replay_t *rp, uint16_t only_alg, uint32_t pcrs, FILE *out)
{
        if (!rp || !out)
                return -EINVAL;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                uint32_t which = pcrs ? pcrs : rp->extended[b];
                size_t size = cscp_hash_alg_size(rp->banks[b]);

                if (only_alg && rp->banks[b] != only_alg)
                        continue;
                if (!rp->bank_present[b] || !which)
                        continue;
                fprintf(out, "  %s:\n", cscp_hash_alg_name(rp->banks[b]));
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++) {
                        if (!(which & (1u << p)))
                                continue;
                        fprintf(out, "    %-2u: 0x", p);
                        for (size_t k = 0; k < size; k++)
                                fprintf(out, "%02X", rp->pcr[b][p][k]);
                        fputc('\n', out);
                }
        }
        return ferror(out) ? -EIO : 0;
}

/*
 * Saved form (all integers big-endian):
 *   "CSCPRPL2" | u32 format | u64 next_index | u64 next_offset | u32 state_len | state
 *   | u16 tail_len | 32 bytes tail SHA-256
 *   | for each of the 4 banks: u16 alg | u8 present | u32 extended | 24 × size bytes
 *   | SHA-256 of everything before (corruption check, not a signature).
 */
#define MAGIC "CSCPRPL2"

static void put_be(uint8_t **p, uint64_t v, int bytes)
{
        for (int i = bytes - 1; i >= 0; i--)
                *(*p)++ = (uint8_t)(v >> (8 * i));
}

static uint64_t get_be(const uint8_t **p, int bytes)
{
        uint64_t v = 0;
        for (int i = 0; i < bytes; i++)
                v = v << 8 | *(*p)++;
        return v;
}

static size_t saved_size(size_t state_len)
{
        size_t n = 8 + 4 + 8 + 8 + 4 + state_len + 2 + 32 + 32;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++)
                n += 2 + 1 + 4 + CSCP_PCR_COUNT * cscp_hash_alg_size(replay_banks[b]);
        return n;
}

int cscp_replay_save(const cscp_replay_t *rp, uint8_t **ret, size_t *ret_len)
{
        uint8_t *buf, *p;
        size_t n;
        unsigned dl = 0;

        if (!rp || !ret || !ret_len || rp->parser_state_len > sizeof(rp->parser_state))
                return -EINVAL;
        n = saved_size(rp->parser_state_len);
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        p = buf;
        memcpy(p, MAGIC, 8);
        p += 8;
        put_be(&p, (uint64_t)rp->format, 4);
        put_be(&p, rp->next_index, 8);
        put_be(&p, rp->next_offset, 8);
        put_be(&p, rp->parser_state_len, 4);
        memcpy(p, rp->parser_state, rp->parser_state_len);
        p += rp->parser_state_len;
        put_be(&p, rp->tail_len, 2);
        memcpy(p, rp->tail_sha256, 32);
        p += 32;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                size_t size = cscp_hash_alg_size(rp->banks[b]);
                put_be(&p, rp->banks[b], 2);
                *p++ = rp->bank_present[b] ? 1 : 0;
                put_be(&p, rp->extended[b], 4);
                for (unsigned i = 0; i < CSCP_PCR_COUNT; i++) {
                        memcpy(p, rp->pcr[b][i], size);
                        p += size;
                }
        }
        if (EVP_Digest(buf, (size_t)(p - buf), p, &dl, EVP_sha256(), NULL) != 1) {
                free(buf);
                return CSCP_E_CRYPTO;
        }
        *ret = buf;
        *ret_len = n;
        return 0;
}

int cscp_replay_load(const uint8_t *buf, size_t len, cscp_replay_t *ret)
{
        const uint8_t *p = buf;
        uint8_t sum[32];
        unsigned dl = 0;
        cscp_replay_t rp;
        uint64_t fmt, slen;

        if (!buf || !ret)
                return -EINVAL;
        if (len < 8 + 4 + 8 + 8 + 4 || memcmp(p, MAGIC, 8) != 0)
                return CSCP_E_STATE;
        p += 8;
        memset(&rp, 0, sizeof(rp));
        fmt = get_be(&p, 4);
        rp.next_index = get_be(&p, 8);
        rp.next_offset = get_be(&p, 8);
        slen = get_be(&p, 4);
        if (fmt == CSCP_EVENTLOG_AUTO || fmt >= _CSCP_EVENTLOG_FORMAT_MAX || slen > sizeof(rp.parser_state) ||
            len != saved_size((size_t)slen))
                return CSCP_E_STATE;
        if (EVP_Digest(buf, len - 32, sum, &dl, EVP_sha256(), NULL) != 1)
                return CSCP_E_CRYPTO;
        if (CRYPTO_memcmp(sum, buf + len - 32, 32) != 0)
                return CSCP_E_STATE;
        rp.format = (cscp_eventlog_format_t)fmt;
        rp.parser_state_len = (size_t)slen;
        memcpy(rp.parser_state, p, rp.parser_state_len);
        p += rp.parser_state_len;
        rp.tail_len = (uint16_t)get_be(&p, 2);
        if (rp.tail_len > 256 || rp.tail_len > rp.next_offset)
                return CSCP_E_STATE;
        memcpy(rp.tail_sha256, p, 32);
        p += 32;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                size_t size = cscp_hash_alg_size(replay_banks[b]);
                if (get_be(&p, 2) != replay_banks[b])
                        return CSCP_E_STATE;
                rp.banks[b] = replay_banks[b];
                rp.bank_present[b] = *p++ != 0;
                rp.extended[b] = (uint32_t)get_be(&p, 4);
                for (unsigned i = 0; i < CSCP_PCR_COUNT; i++) {
                        memcpy(rp.pcr[b][i], p, size);
                        p += size;
                }
        }
        *ret = rp;
        return 0;
}
