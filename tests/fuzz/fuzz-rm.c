/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: vtpmd's resource manager (vtpmd/rm.c), the code that sees
 * every byte a container sends to its vTPM, and every byte swtpm answers.
 *
 * Input: u16 (big-endian) length L, then L bytes of client command, then the
 * backend's answers: each a u16 length and that many bytes (the backend fails
 * with -EIO when the input runs out). The command goes through
 * rm_command_check and rm_execute on one space; then a second command (the
 * next L' bytes, same format) runs on the same space, so saved contexts, the
 * virtual handles and the GetCapability rewriting are exercised with state.
 * Invariants: every answer is a well-formed TPM response of at most
 * RM_MAX_RESPONSE bytes whose size field equals its length; a refused command
 * never reaches the backend.
 */
#include <errno.h>
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
        rm_space_t *s = rm_space_new();

        if (!s)
                return 0;
        for (int round = 0; round < 2; round++) {
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
                (void)rm_execute(s, &pol, backend, &f, cmd, len, resp, &rlen);
                check_answer(resp, rlen);
                if (rm_command_check(&pol, cmd, len, &c) != 0 && f.calls != before)
                        abort();
        }
        rm_space_flush(s, backend, &f);
        rm_space_free(s);
        return 0;
}
