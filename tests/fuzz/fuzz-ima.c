/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the Linux IMA list parsers (lib/eventlog/ima.c). The
 * first input byte selects: bit 0 binary (else ascii), bits 1-2 ima_endian
 * (0 detect, 1 LE, 2 BE), bit 3 no template-hash check, bit 4 a small
 * max_record (256). The rest is the list: every event is replayed and
 * described; the replay is also done in two halves through a saved
 * checkpoint and must come out the same. Seeds: written by
 * tests/unit/test-eventlog-ima.c into <build>/fuzz-seeds/ima/.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replays from l; stops after `stop` events (0 = all). Returns events seen, or -1 on a parser error. */
static long run(cscp_eventlog_t *l, cscp_replay_t *rp, long stop)
{
        const cscp_event_t *ev;
        long n = 0;
        int r;

        while ((stop == 0 || n < stop) && (r = cscp_eventlog_next(l, &ev)) > 0) {
                char *line = NULL;

                if (cscp_replay_extend(rp, ev) < 0)
                        abort(); /* the parser hands out only PCRs 0..23 and known banks */
                if (cscp_event_describe(l, ev, &line) < 0)
                        abort();
                /* The description is a string of the claimed length. */
                if (strlen(line) == 0 || ev->text == NULL || ev->kind == NULL || (ev->data_len && !ev->data))
                        abort();
                free(line);
                n++;
        }
        if (stop && n == stop)
                return n;
        return r < 0 ? -1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_eventlog_opts_t opts = {0};
        cscp_eventlog_format_t fmt;
        cscp_eventlog_t *l = NULL;
        cscp_replay_t full, half, loaded;
        uint8_t *saved;
        size_t saved_len;
        long n, k;

        if (size < 1)
                return 0;
        fmt = data[0] & 1 ? CSCP_EVENTLOG_IMA_BINARY : CSCP_EVENTLOG_IMA;
        opts.ima_endian = (data[0] >> 1) & 3;
        if (opts.ima_endian == 3)
                opts.ima_endian = 0;
        opts.ima_no_template_check = (data[0] >> 3) & 1;
        if ((data[0] >> 4) & 1)
                opts.max_record = 256;
        data++;
        size--;

        if (cscp_eventlog_open_mem(data, size, fmt, &opts, NULL, &l) < 0)
                return 0;
        cscp_replay_init(&full);
        n = run(l, &full, 0);
        cscp_eventlog_free(l);
        if (n < 2)
                return 0;

        /* Half, checkpoint, save, load, resume: the same PCRs. */
        if (cscp_eventlog_open_mem(data, size, fmt, &opts, NULL, &l) < 0)
                abort();
        cscp_replay_init(&half);
        k = run(l, &half, n / 2);
        if (k != n / 2 || cscp_replay_checkpoint(&half, l) < 0)
                abort();
        cscp_eventlog_free(l);
        if (cscp_replay_save(&half, &saved, &saved_len) < 0)
                abort();
        if (cscp_replay_load(saved, saved_len, &loaded) < 0)
                abort();
        free(saved);
        if (cscp_eventlog_open_mem(data, size, CSCP_EVENTLOG_AUTO, &opts, &loaded, &l) < 0)
                abort();
        if (run(l, &loaded, 0) != n - n / 2)
                abort();
        cscp_eventlog_free(l);
        if (memcmp(loaded.pcr, full.pcr, sizeof(full.pcr)) != 0 ||
            memcmp(loaded.extended, full.extended, sizeof(full.extended)) != 0)
                abort();
        return 0;
}
