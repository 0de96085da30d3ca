/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CEL-TLV parser (lib/eventlog/cel.c) and the CEL-JSON
 * conversion of what it accepts (lib/eventlog/cm.c).
 *
 * Input: the log bytes. Checks, whatever the input:
 *  - every event describes and converts to JSON; a record in our own widths
 *    (recnum 8 bytes, register 4 bytes) comes back from JSON byte for byte;
 *  - a checkpoint after event k (k from the last input byte) and a resumed
 *    reader end with the same PCR values as one full pass.
 * tests/unit/test-eventlog-cel.c writes seeds to <build>/fuzz-seeds/cel-tlv/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const cscp_eventlog_opts_t opts = {.max_record = 4096, .max_events = 64};

static void check_json(const uint8_t *log, const cscp_event_t *ev)
{
        const uint8_t *rec = log + ev->offset;
        char *j = NULL;
        uint8_t *back = NULL;
        size_t bl = 0;
        bool ours;

        if (cscp_cel_event_to_json(ev, &j) < 0)
                abort(); /* every accepted event has a JSON form */
        ours = ev->length >= 22 && rec[4] == 8 && rec[13] == 1 && rec[17] == 4; /* recnum 8, pcr 4 */
        if (cscp_cel_json_to_tlv(j, strlen(j), &back, &bl) == 0) {
                if (ours && (bl != ev->length || memcmp(back, rec, bl) != 0))
                        abort();
                free(back);
        } else if (ours && ev->reg == CSCP_EVENT_PCR) {
                abort(); /* our own record must survive the round trip */
        }
        free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *log = malloc(size ? size : 1);
        cscp_replay_t full, part;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        size_t k = size ? data[size - 1] % 8 : 0, count = 0, total = 0;
        int r;

        if (!log)
                return 0;
        memcpy(log, data, size); /* an exact-size copy, so ASan sees any read past the end */
        cscp_replay_init(&full);
        cscp_replay_init(&part);
        if (cscp_eventlog_open_mem(log, size, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l) < 0)
                goto out;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                char *d = NULL;

                if (cscp_event_describe(l, ev, &d) < 0)
                        abort();
                free(d);
                check_json(log, ev);
                cscp_replay_extend(&full, ev);
                if (++total == k) {
                        part = full;
                        if (cscp_replay_checkpoint(&part, l) < 0)
                                abort();
                }
        }
        cscp_eventlog_free(l);
        l = NULL;
        if (r < 0 || k == 0 || total < k)
                goto out;
        /* Resume after event k: the rest must give the same values. */
        if (cscp_eventlog_open_mem(log, size, CSCP_EVENTLOG_AUTO, &opts, &part, &l) < 0)
                abort();
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_replay_extend(&part, ev);
                count++;
        }
        if (r < 0 || count != total - k || memcmp(part.pcr, full.pcr, sizeof(full.pcr)) != 0)
                abort();
out:
        cscp_eventlog_free(l);
        free(log);
        return 0;
}
