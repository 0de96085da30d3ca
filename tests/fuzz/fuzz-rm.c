/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: vtpmd's resource manager (vtpmd/rm.c), the code that sees
 * every byte a container sends to its vTPM, and every byte swtpm answers.
 *
 * Input: u16 (big-endian) length L, then L bytes of client command, then the
 * backend's answers: each a u16 length and that many bytes (the backend fails
 * with -EIO when the input runs out). The command goes through
 * rm_command_check and rm_execute on space A; then up to three more commands
 * (the next L' bytes, same format) run on spaces B, A, A of the same TPM, so
 * saved and still-loaded contexts, lazy eviction when the owner changes, the
 * virtual handles and the GetCapability rewriting are exercised with state.
 * The first input byte's low bit chooses eager mode (the old behaviour).
 * Invariants: every answer is a well-formed TPM response of at most
 * RM_MAX_RESPONSE bytes whose size field equals its length; a refused command
 * never reaches the backend.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct feed {
        const uint8_t *p;
        size_t n;
        unsigned calls;
} feed_t;

static int take(feed_t *f, size_t *ret_len, const uint8_t **ret)
{
        size_t l;

        if (f->n < 2)
                return -EIO;
        l = (size_t)f->p[0] << 8 | f->p[1];
        if (l > f->n - 2)
                return -EIO;
        *ret = f->p + 2;
        *ret_len = l;
        f->p += 2 + l;
        f->n -= 2 + l;
        return 0;
}

static int backend(void *ctx, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap, size_t *ret_len)
{
        feed_t *f = ctx;
        const uint8_t *r;
        size_t l;

        (void)cmd;
        if (len < 10 || len > RM_MAX_COMMAND)
                abort(); /* the RM never sends what it would not accept */
        f->calls++;
        if (take(f, &l, &r) < 0 || l > cap)
                return -EIO;
        memcpy(resp, r, l);
        *ret_len = l;
        return 0;
}

/* vtpmd's own conversation: true when the acquire succeeded. */
static bool round_trip_acquire(rm_tpm_t *t, feed_t *f)
{
        return rm_tpm_acquire(t, NULL, backend, f) == 0;
}

static void check_answer(const uint8_t *resp, size_t len)
{
        if (len < 10 || len > RM_MAX_RESPONSE)
                abort();
        if (((size_t)resp[2] << 24 | (size_t)resp[3] << 16 | (size_t)resp[4] << 8 | resp[5]) != len)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t resp[RM_MAX_RESPONSE];
        rm_policy_t pol = {.ak_handle = 0x81800001u};
        feed_t f = {.p = data, .n = size};
        rm_tpm_t tpm = {.eager = size > 0 && (data[0] & 1)};
        rm_space_t *sp[2] = {rm_space_new(), rm_space_new()};
        static const int which[4] = {0, 1, 0, 0};

        if (!sp[0] || !sp[1])
                goto out;
        for (int round = 0; round < 4; round++) {
                rm_space_t *s = sp[which[round]];
                const uint8_t *cmd;
                size_t len, rlen = 0;
                rm_cmd_t c;
                unsigned before;

                if (take(&f, &len, &cmd) < 0)
                        break;
                before = f.calls;
                if (rm_command_check(&pol, cmd, len, &c) == 0 &&
                    (c.n_handles > RM_MAX_HANDLES || c.n_sessions > 3 || c.params_off > len))
                        abort();
                (void)rm_execute(&tpm, s, &pol, backend, &f, cmd, len, resp, &rlen);
                check_answer(resp, rlen);
                if (rm_command_check(&pol, cmd, len, &c) != 0 && f.calls != before)
                        abort();
        }
        if (round_trip_acquire(&tpm, &f) && tpm.owner)
                abort(); /* vtpmd's acquire leaves no client owning the TPM */
        rm_space_flush(&tpm, sp[1], backend, &f);
        rm_space_free(sp[1]);
        sp[1] = NULL;
out:
        rm_space_free(sp[0]); /* possibly still the owner: the reference keeps it */
        rm_space_free(sp[1]);
        rm_tpm_release(&tpm);
        return 0;
}
