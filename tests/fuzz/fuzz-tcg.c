/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the TCG PC Client event-log parser (lib/eventlog/tcg.c):
 * every event is read, described and replayed; halfway through, the replay is
 * checkpointed, saved, loaded and resumed, and must end where one pass ends.
 *
 * Input: the log bytes as they are. tests/unit/test-eventlog-tcg.c writes seeds
 * to <build>/fuzz-seeds/tcg/; the real logs under ../shared/fixtures/eventlog
 * make good seeds too.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/eventlog.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        setenv("TSS2_LOG", "all+none", 0);
        return 0;
}

/* Valid UTF-8 without control characters: what describe promises. */
static bool clean_utf8(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                size_t n;
                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if (*p >= 0xc2 && *p <= 0xdf)
                        n = 1;
                else if (*p >= 0xe0 && *p <= 0xf4)
                        n = *p >= 0xf0 ? 3 : 2;
                else
                        return false;
                for (size_t i = 1; i <= n; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                p += n + 1;
        }
        return true;
}

/* Reads up to stop events (all when stop is 0); returns the last next() result. */
static int consume(cscp_eventlog_t *l, cscp_replay_t *rp, uint64_t stop, uint64_t *ret_count)
{
        const cscp_event_t *ev;
        uint64_t n = 0;
        int r;

        while ((stop == 0 || n < stop) && (r = cscp_eventlog_next(l, &ev)) > 0) {
                char *line = NULL;

                if (ev->data_len > 0 && !ev->data)
                        abort();
                if (cscp_event_describe(l, ev, &line) == 0) {
                        if (!clean_utf8(line) || !clean_utf8(ev->text))
                                abort();
                        free(line);
                }
                (void)cscp_replay_extend(rp, ev);
                n++;
        }
        *ret_count = n;
        return stop && n == stop ? 1 : r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* A private copy of exactly size bytes, so ASan sees any read past the end. */
        uint8_t *buf = malloc(size ? size : 1);
        cscp_eventlog_opts_t opts = {.max_record = 1 << 16, .max_events = 4096};
        cscp_eventlog_t *l = NULL;
        cscp_replay_t whole, half, loaded;
        uint64_t count = 0, first = 0, rest = 0;
        uint8_t *saved = NULL;
        size_t saved_len = 0;
        int r;

        if (!buf)
                return 0;
        if (size)
                memcpy(buf, data, size);

        cscp_replay_init(&whole);
        if (cscp_eventlog_open_mem(buf, size, CSCP_EVENTLOG_TCG, &opts, NULL, &l) < 0)
                goto out;
        r = consume(l, &whole, 0, &count);
        if (r < 0 && cscp_eventlog_error(l)[0] == '\0')
                abort(); /* every error explains itself */
        cscp_eventlog_free(l);
        l = NULL;
        if (r < 0 || count < 2)
                goto out;

        /* Checkpoint halfway, round-trip the checkpoint, resume: same PCRs as one pass. */
        cscp_replay_init(&half);
        if (cscp_eventlog_open_mem(buf, size, CSCP_EVENTLOG_TCG, &opts, NULL, &l) < 0)
                abort();
        if (consume(l, &half, count / 2, &first) != 1 || cscp_replay_checkpoint(&half, l) < 0)
                abort();
        cscp_eventlog_free(l);
        l = NULL;
        if (cscp_replay_save(&half, &saved, &saved_len) < 0 || cscp_replay_load(saved, saved_len, &loaded) < 0)
                abort();
        if (cscp_eventlog_open_mem(buf, size, CSCP_EVENTLOG_AUTO, &opts, &loaded, &l) < 0)
                abort();
        if (consume(l, &loaded, 0, &rest) < 0 || first + rest != count)
                abort();
        if (memcmp(loaded.pcr, whole.pcr, sizeof(whole.pcr)) != 0 ||
            memcmp(loaded.extended, whole.extended, sizeof(whole.extended)) != 0)
                abort();
out:
        cscp_eventlog_free(l);
        free(saved);
        free(buf);
        return 0;
}
