/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CEL-JSON parser (array, JSON lines, JSON-SEQ) and
 * cscp_cel_json_to_tlv (lib/eventlog/cel.c).
 *
 * Input: one mode byte, then the text.
 *   'R' (and any byte but 'L'): one record for cscp_cel_json_to_tlv; what it
 *       accepts must parse as a CEL-TLV record, convert back to JSON, and
 *       convert to the same TLV bytes again.
 *   'L': a log; every event describes, and a checkpoint after event k (k from
 *       the last input byte) resumes to the same PCR values as a full pass.
 * tests/unit/test-eventlog-cel.c writes seeds to <build>/fuzz-seeds/cel-json/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const cscp_eventlog_opts_t opts = {.max_record = 8192, .max_events = 64};

static void one_record(const char *text, size_t len)
{
        uint8_t *tlv = NULL, *tlv2 = NULL;
        size_t tl = 0, tl2 = 0;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t rp;
        cscp_eventlog_opts_t any = {.max_events = UINT64_MAX};
        char *j = NULL;

        if (cscp_cel_json_to_tlv(text, len, &tlv, &tl) < 0)
                return;
        /* The record's recnum need not be 0: parse it as the continuation of a log at that index. */
        cscp_replay_init(&rp);
        rp.format = CSCP_EVENTLOG_CEL_TLV;
        for (int i = 0; i < 8; i++)
                rp.next_index = rp.next_index << 8 | tlv[5 + i];
        rp.next_offset = 0;
        rp.parser_state_len = 11;
        rp.parser_state[0] = 1;
        memcpy(rp.parser_state + 3, tlv + 5, 8);
        if (cscp_eventlog_open_mem(tlv, tl, CSCP_EVENTLOG_CEL_TLV, &any, &rp, &l) < 0 ||
            cscp_eventlog_next(l, &ev) != 1)
                abort();
        if (cscp_cel_event_to_json(ev, &j) < 0 || cscp_cel_json_to_tlv(j, strlen(j), &tlv2, &tl2) < 0)
                abort();
        if (tl2 != tl || memcmp(tlv, tlv2, tl) != 0)
                abort();
        free(j);
        free(tlv2);
        cscp_eventlog_free(l);
        free(tlv);
}

static void log_run(const uint8_t *log, size_t size, size_t k)
{
        cscp_replay_t full, part;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        size_t total = 0, count = 0;
        int r;

        cscp_replay_init(&full);
        cscp_replay_init(&part);
        if (cscp_eventlog_open_mem(log, size, CSCP_EVENTLOG_CEL_JSON, &opts, NULL, &l) < 0)
                return;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                char *d = NULL;

                if (cscp_event_describe(l, ev, &d) < 0)
                        abort();
                free(d);
                cscp_replay_extend(&full, ev);
                if (++total == k) {
                        part = full;
                        if (cscp_replay_checkpoint(&part, l) < 0)
                                abort();
                }
        }
        cscp_eventlog_free(l);
        if (r < 0 || k == 0 || total < k)
                return;
        if (cscp_eventlog_open_mem(log, size, CSCP_EVENTLOG_AUTO, &opts, &part, &l) < 0)
                abort();
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_replay_extend(&part, ev);
                count++;
        }
        cscp_eventlog_free(l);
        if (r < 0 || count != total - k || memcmp(part.pcr, full.pcr, sizeof(full.pcr)) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *copy;

        if (size < 1)
                return 0;
        copy = malloc(size); /* exact size (after the mode byte), so ASan sees any read past the end */
        if (!copy)
                return 0;
        memcpy(copy, data + 1, size - 1);
        if (data[0] == 'L')
                log_run(copy, size - 1, data[size - 1] % 8);
        else
                one_record((const char *)copy, size - 1);
        free(copy);
        return 0;
}
