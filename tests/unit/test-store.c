/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The challenger's SQLite store: contents, the clock's never-backwards rule,
 * two processes writing at once, a writer killed mid-transaction, and files
 * that are not a store.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "cscp/error.h"
#include "cscp/store.h"
#include "cscp/util.h"
#include "harness.h"

static char *db;

static void setup(void)
{
        db = harness_path(harness_keep(harness_tmpdir()), "store.db");
}

TestSuite(store, .init = setup, .timeout = 60);

static cscp_store_t *open_ok(void)
{
        cscp_store_t *s = NULL;
        int r = cscp_store_open(db, &s);

        cr_assert_eq(r, 0, "open: %s", cscp_strerror(r));
        return s;
}

Test(store, enroll_and_read_back)
{
        cscp_store_t *s = open_ok();
        uint8_t name[34] = {0x00, 0x0b, 0xaa}, pub[100] = {1, 2, 3}, got[66];
        size_t len;

        cr_assert_eq(cscp_store_enrolled_ak(s, "host-a:7420", got, &len), -ENOENT);
        cr_assert_eq(cscp_store_enroll(s, "host-a:7420", name, sizeof(name), pub, sizeof(pub), "credential"), 0);
        cr_assert_eq(cscp_store_enrolled_ak(s, "host-a:7420", got, &len), 0);
        cr_assert_eq(len, sizeof(name));
        cr_assert_arr_eq(got, name, sizeof(name));
        /* Re-enrolment replaces; an unknown method is refused by the schema. */
        name[2] = 0xbb;
        cr_assert_eq(cscp_store_enroll(s, "host-a:7420", name, sizeof(name), pub, sizeof(pub), "tofu"), 0);
        cr_assert_eq(cscp_store_enrolled_ak(s, "host-a:7420", got, &len), 0);
        cr_assert_eq(got[2], 0xbb);
        cr_assert_eq(cscp_store_enroll(s, "host-b", name, sizeof(name), pub, sizeof(pub), "guess"), -EINVAL);
        cr_assert_eq(cscp_store_enroll(s, "", name, sizeof(name), pub, sizeof(pub), "tofu"), -EINVAL);
        cr_assert_eq(cscp_store_enroll(s, "h", name, 67, pub, sizeof(pub), "tofu"), -EINVAL);
        cscp_store_close(s);

        /* Reopened: still there. */
        s = open_ok();
        cr_assert_eq(cscp_store_enrolled_ak(s, "host-a:7420", got, &len), 0);
        cr_assert_eq(got[2], 0xbb);
        cscp_store_close(s);
        cscp_store_close(NULL);
}

Test(store, clock_never_moves_backwards)
{
        cscp_store_t *s = open_ok();
        uint8_t ak[34] = {0x00, 0x0b, 7};
        cscp_clock_t last, c1 = {.clock = 1000, .reset_count = 3, .restart_count = 1, .safe = true};
        cscp_clock_t older = {.clock = 5000, .reset_count = 3, .restart_count = 0, .safe = true};
        cscp_clock_t reboot = {.clock = 10, .reset_count = 4, .restart_count = 0, .safe = true};
        bool had;

        cr_assert_eq(cscp_store_clock_swap(s, ak, sizeof(ak), &c1, &last, &had), 0);
        cr_assert_not(had);
        /* A lower (reset, restart) pair is reported as last-seen but not stored. */
        cr_assert_eq(cscp_store_clock_swap(s, ak, sizeof(ak), &older, &last, &had), 0);
        cr_assert(had);
        cr_assert_eq(last.clock, 1000);
        cr_assert_eq(last.restart_count, 1);
        cr_assert_eq(cscp_store_clock_swap(s, ak, sizeof(ak), &c1, &last, &had), 0);
        cr_assert_eq(last.clock, 1000, "the rollback was stored");
        /* A reboot (higher resetCount, restartCount back to 0, clock small) is newer. */
        cr_assert_eq(cscp_store_clock_swap(s, ak, sizeof(ak), &reboot, &last, &had), 0);
        cr_assert_eq(cscp_store_clock_swap(s, ak, sizeof(ak), &reboot, &last, &had), 0);
        cr_assert_eq(last.reset_count, 4);
        cr_assert_eq(last.clock, 10);
        cscp_store_close(s);
}

Test(store, checkpoints_and_verdicts)
{
        cscp_store_t *s = open_ok();
        uint8_t *b;
        size_t len;
        uint64_t n;

        cr_assert_eq(cscp_store_checkpoint_get(s, "h", "ima", &b, &len), -ENOENT);
        cr_assert_eq(cscp_store_checkpoint_put(s, "h", "ima", (const uint8_t *)"abc", 3), 0);
        cr_assert_eq(cscp_store_checkpoint_put(s, "h", "ima", (const uint8_t *)"abcd", 4), 0);
        cr_assert_eq(cscp_store_checkpoint_get(s, "h", "ima", &b, &len), 0);
        cr_assert_eq(len, 4);
        cr_assert_arr_eq(b, "abcd", 4);
        free(b);
        cr_assert_eq(cscp_store_verdict_add(s, "h", NULL, 0, "{\"verdict\":\"trusted\"}"), 0);
        cr_assert_eq(cscp_store_verdict_add(s, "h", "c1", 1, "{}"), 0);
        cr_assert_eq(cscp_store_verdict_add(s, "h", "c1", 3, "{}"), -EINVAL);
        cr_assert_eq(cscp_store_verdict_count(s, "h", &n), 0);
        cr_assert_eq(n, 2);
        cscp_store_close(s);
}

/* Two processes, 300 transactions each, on one store: every row arrives, the file stays sound. */
Test(store, two_writers)
{
        pid_t kids[2];
        cscp_store_t *s = open_ok();
        uint64_t n;
        uint8_t ak[34] = {0x00, 0x0b, 9};

        cscp_store_close(s);
        for (int k = 0; k < 2; k++) {
                kids[k] = fork();
                cr_assert_geq(kids[k], 0);
                if (kids[k] == 0) {
                        cscp_store_t *c = NULL;
                        if (cscp_store_open(db, &c) < 0)
                                _exit(10);
                        for (int i = 0; i < 300; i++) {
                                cscp_clock_t now = {.clock = (uint64_t)(k * 100000 + i), .reset_count = 1};
                                cscp_clock_t last;
                                bool had;
                                if (cscp_store_verdict_add(c, k ? "b" : "a", NULL, 0, "{}") < 0)
                                        _exit(11);
                                if (cscp_store_clock_swap(c, ak, sizeof(ak), &now, &last, &had) < 0)
                                        _exit(12);
                        }
                        cscp_store_close(c);
                        _exit(0);
                }
        }
        for (int k = 0; k < 2; k++) {
                int st;
                cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed (%d)", k, st);
        }
        s = open_ok();
        cr_assert_eq(cscp_store_verdict_count(s, NULL, &n), 0);
        cr_assert_eq(n, 600);
        cscp_store_close(s);
        {
                sqlite3 *raw;
                sqlite3_stmt *st;
                cr_assert_eq(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                cr_assert_eq(sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
                cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
                cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
                sqlite3_finalize(st);
                sqlite3_close(raw);
        }
}

/* A writer killed (SIGKILL) mid-run: what it committed is there, its open transaction is not, the store opens. */
Test(store, killed_writer_loses_nothing_committed)
{
        cscp_store_t *s = open_ok();
        int pipefd[2];
        pid_t kid;
        uint64_t n;
        char c;

        cscp_store_close(s);
        cr_assert_eq(pipe(pipefd), 0);
        kid = fork();
        cr_assert_geq(kid, 0);
        if (kid == 0) {
                cscp_store_t *w = NULL;
                sqlite3 *raw;
                close(pipefd[0]);
                if (cscp_store_open(db, &w) < 0)
                        _exit(10);
                for (int i = 0; i < 50; i++)
                        if (cscp_store_verdict_add(w, "committed", NULL, 0, "{}") < 0)
                                _exit(11);
                /* An uncommitted transaction, then wait to be killed. */
                if (sqlite3_open_v2(db, &raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
                    sqlite3_exec(raw,
                                 "BEGIN; INSERT INTO verdict (host, result, verdict, at) VALUES ('lost', 0, '{}', 0);",
                                 NULL, NULL, NULL) != SQLITE_OK)
                        _exit(12);
                if (write(pipefd[1], "x", 1) != 1)
                        _exit(13);
                pause();
                _exit(0);
        }
        close(pipefd[1]);
        cr_assert_eq(read(pipefd[0], &c, 1), 1, "writer did not get going");
        kill(kid, SIGKILL);
        waitpid(kid, NULL, 0);
        close(pipefd[0]);

        s = open_ok();
        cr_assert_eq(cscp_store_verdict_count(s, "committed", &n), 0);
        cr_assert_eq(n, 50);
        cr_assert_eq(cscp_store_verdict_count(s, "lost", &n), 0);
        cr_assert_eq(n, 0);
        /* And it takes writes again (the dead writer's lock is gone). */
        cr_assert_eq(cscp_store_verdict_add(s, "after", NULL, 0, "{}"), 0);
        cscp_store_close(s);
}

Test(store, not_a_store)
{
        cscp_store_t *s = NULL;
        char *junk = harness_path(harness_keep(harness_tmpdir()), "junk.db");

        cr_assert_eq(
                cscp_file_write_atomic(junk, "this is not a database file at all, not even close........", 58, 0600),
                0);
        cr_assert_eq(cscp_store_open(junk, &s), CSCP_E_STATE);
        cr_assert_null(s);
        cr_assert_lt(cscp_store_open("/nonexistent-dir/store.db", &s), 0);

        /* A store from a future schema is refused, not reinterpreted. */
        {
                sqlite3 *raw;
                cr_assert_eq(sqlite3_open(db, &raw), SQLITE_OK);
                cr_assert_eq(sqlite3_exec(raw, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
                sqlite3_close(raw);
        }
        cr_assert_eq(cscp_store_open(db, &s), CSCP_E_STATE);
}
