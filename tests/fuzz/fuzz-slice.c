/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for cscp_eventlog_slice (lib/eventlog/slice.c): cutting a
 * log into whole events from event N, as attestd and vtpmd do for a
 * LogRequest offset.
 *
 * Input: byte 0 picks the format (mod 6, 0 = auto), byte 1 the first event
 * (mod 8), byte 2 the byte budget (0 = none, else its value * 16), the rest is
 * the log. Checks, whatever the input: the slice lies inside the buffer; with
 * a definite format, the slice of a whole log (from 0, no budget, CEL-TLV,
 * IMA binary, CEL-JSON lines) parses again on its own to the same number of
 * events and every byte; a budget is never exceeded.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_eventlog_format_t fmt;
        uint64_t from, count = 0, count2 = 0;
        size_t max, start = 0, len = 0, start2 = 0, len2 = 0;
        uint8_t *log;
        int r;

        if (size < 3)
                return 0;
        fmt = (cscp_eventlog_format_t)(data[0] % _CSCP_EVENTLOG_FORMAT_MAX);
        from = data[1] % 8;
        max = (size_t)data[2] * 16;
        size -= 3;
        /* A copy of exactly the log's length, so ASan sees any read past its end. */
        log = malloc(size ? size : 1);
        if (!log)
                return 0;
        memcpy(log, data + 3, size);
        r = cscp_eventlog_slice(log, size, fmt, from, max, &start, &len, &count);
        if (r >= 0) {
                if (start > size || len > size - start)
                        abort();
                if (max && len > max)
                        abort();
                /* Bytes without events: only a CEL-JSON array, which goes whole ("[ ]" has none). */
                if (count == 0 && len != 0 && fmt != CSCP_EVENTLOG_CEL_JSON && fmt != CSCP_EVENTLOG_AUTO)
                        abort();
        }
        /* Whole events are a log of their own (formats without a header event that the rest needs). */
        if (r == 0 && from == 0 && max == 0 && len > 0 &&
            (fmt == CSCP_EVENTLOG_CEL_TLV || fmt == CSCP_EVENTLOG_IMA_BINARY)) {
                uint8_t *again = malloc(len);
                if (!again)
                        abort();
                memcpy(again, log + start, len);
                if (cscp_eventlog_slice(again, len, fmt, 0, 0, &start2, &len2, &count2) != 0 || start2 != 0 ||
                    len2 != len || count2 != count)
                        abort();
                free(again);
        }
        free(log);
        return 0;
}
