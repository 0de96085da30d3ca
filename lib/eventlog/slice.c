/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cutting a log into whole events (cscp_eventlog_slice): what attestd and
 * vtpmd send for a LogRequest{offset}. Built on the streaming parsers, so an
 * event is "whole" exactly when the parser accepts it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cscp/error.h"
#include "cscp/eventlog.h"

/* The parser's errors for a record that runs past the end of the input (lib/eventlog/{tcg,ima,cel}.c). */
static bool ends_inside_a_record(const cscp_eventlog_t *l)
{
        const char *e = cscp_eventlog_error(l);
        return strstr(e, "truncated record") || strstr(e, "truncated log: RS at the end");
}

static bool json_array(const uint8_t *buf, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')
                        continue;
                return buf[i] == '[';
        }
        return false;
}

int cscp_eventlog_slice(const uint8_t *buf, size_t len, cscp_eventlog_format_t fmt, uint64_t from, size_t max_bytes,
                        size_t *ret_start, size_t *ret_len, uint64_t *ret_count)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        uint64_t idx = 0, count = 0, start = 0, end = 0, last_end = 0, prev_end;
        bool cut = false, started = false, whole_only;
        int r;

        if ((!buf && len) || !ret_start || !ret_len || !ret_count || (unsigned)fmt >= _CSCP_EVENTLOG_FORMAT_MAX)
                return -EINVAL;
        if (max_bytes == 0)
                max_bytes = SIZE_MAX;
        if (len == 0) {
                if (from > 0)
                        return -ERANGE;
                *ret_start = *ret_len = 0;
                *ret_count = 0;
                return 0;
        }
        r = cscp_eventlog_open_mem(buf, len, fmt, NULL, NULL, &l);
        if (r < 0)
                return r;
        fmt = cscp_eventlog_format(l);
        /* IMA ascii: a line without its newline is still being written (it may not even parse yet). */
        if (fmt == CSCP_EVENTLOG_IMA && buf[len - 1] != '\n') {
                const uint8_t *nl = memrchr(buf, '\n', len);
                size_t whole = nl ? (size_t)(nl - buf) + 1 : 0;

                cscp_eventlog_free(l);
                l = NULL;
                if (whole == 0) {
                        r = from > 0 ? -ERANGE : 0;
                        if (r == 0) {
                                *ret_start = *ret_len = 0;
                                *ret_count = 0;
                        }
                        return r;
                }
                len = whole;
                r = cscp_eventlog_open_mem(buf, len, fmt, NULL, NULL, &l);
                if (r < 0)
                        return r;
        }
        /* A CEL-JSON array is one document: only whole, never a part of it. */
        whole_only = fmt == CSCP_EVENTLOG_CEL_JSON && json_array(buf, len);
        if (whole_only && from > 0) {
                r = CSCP_E_UNSUPPORTED;
                goto out;
        }
        for (;;) {
                uint64_t ev_end;

                r = cscp_eventlog_next(l, &ev);
                if (r < 0) {
                        /* A writer in the middle of an append: the partial record is not an event yet. */
                        if (!whole_only && ends_inside_a_record(l))
                                r = 0;
                        else
                                goto out;
                }
                if (r == 0)
                        break;
                ev_end = ev->offset + ev->length;
                /* An event's bytes start where the previous one ended: separators before it (JSON-SEQ's RS,
                 * a newline) belong to it, so a slice parses on its own framing. */
                prev_end = last_end;
                last_end = ev_end;
                if (idx++ < from)
                        continue;
                if (!started) {
                        started = true;
                        start = end = prev_end;
                }
                if (ev_end - start > max_bytes) {
                        cut = true; /* more whole events follow */
                        break;
                }
                end = ev_end;
                count++;
        }
        if (idx < from) {
                r = -ERANGE;
                goto out;
        }
        /* Nothing from `from` on: an empty slice where the next event will start. */
        if (!started)
                start = end = last_end;
        /* The array goes whole, or not at all when the budget cannot hold all of it (never a part of it). */
        if (whole_only) {
                if (cut || len > max_bytes) {
                        start = end = 0;
                        count = 0;
                        cut = true;
                } else {
                        start = 0;
                        end = len;
                }
        }
        *ret_start = (size_t)start;
        *ret_len = (size_t)(end - start);
        *ret_count = count;
        r = cut ? 1 : 0;
out:
        cscp_eventlog_free(l);
        return r;
}
