/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The challenger's SQLite store (include/cscp/store.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cscp/error.h"
#include "cscp/store.h"

#define SCHEMA_VERSION 1
#define BUSY_MS        10000
#define MAX_TEXT       4096

struct cscp_store {
        sqlite3 *db;
        char err[256];
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS host ("
                             "  name TEXT PRIMARY KEY,"
                             "  ak_name BLOB NOT NULL,"
                             "  ak_public BLOB NOT NULL,"
                             "  method TEXT NOT NULL CHECK (method IN ('credential', 'tofu')),"
                             "  enrolled_at INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS clock ("
                             "  ak_name BLOB PRIMARY KEY,"
                             "  clock INTEGER NOT NULL,"
                             "  reset_count INTEGER NOT NULL,"
                             "  restart_count INTEGER NOT NULL,"
                             "  safe INTEGER NOT NULL,"
                             "  seen_at INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS checkpoint ("
                             "  host TEXT NOT NULL,"
                             "  log TEXT NOT NULL,"
                             "  state BLOB NOT NULL,"
                             "  updated_at INTEGER NOT NULL,"
                             "  PRIMARY KEY (host, log));"
                             "CREATE TABLE IF NOT EXISTS verdict ("
                             "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             "  host TEXT NOT NULL,"
                             "  container TEXT,"
                             "  result INTEGER NOT NULL CHECK (result BETWEEN 0 AND 2),"
                             "  verdict TEXT NOT NULL,"
                             "  at INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS verdict_host ON verdict (host);";

static int fail(cscp_store_t *s, int rc, int code)
{
        snprintf(s->err, sizeof(s->err), "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        switch (rc & 0xff) {
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
                return CSCP_E_STATE;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        default:
                return code;
        }
}

static int exec(cscp_store_t *s, const char *sql)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : fail(s, rc, -EIO);
}

/* mkdir -p with 0700 for what is missing; an existing non-directory is -ENOTDIR. */
static int mkdir_parents(char *path)
{
        struct stat st;

        for (char *p = path + 1;; p++) {
                char c = *p;

                if (c != '/' && c != '\0')
                        continue;
                *p = '\0';
                if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                        int r = -errno;
                        *p = c;
                        return r;
                }
                if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        *p = c;
                        return -ENOTDIR;
                }
                *p = c;
                if (c == '\0')
                        return 0;
        }
}

int cscp_store_default_path(char **ret)
{
        const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        char *dir = NULL, *path = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (xdg && xdg[0] == '/')
                r = asprintf(&dir, "%s/cscp", xdg);
        else {
                if (!home || home[0] != '/') {
                        struct passwd *pw = getpwuid(getuid());
                        home = pw ? pw->pw_dir : NULL;
                }
                if (!home || home[0] != '/')
                        return -ENOENT;
                r = asprintf(&dir, "%s/.local/state/cscp", home);
        }
        if (r < 0)
                return -ENOMEM;
        r = mkdir_parents(dir);
        if (r == 0 && asprintf(&path, "%s/store.db", dir) < 0)
                r = -ENOMEM;
        free(dir);
        if (r < 0)
                return r;
        *ret = path;
        return 0;
}

const char *cscp_store_error(const cscp_store_t *s)
{
        return s ? s->err : "";
}

void cscp_store_close(cscp_store_t *s)
{
        if (!s)
                return;
        sqlite3_close_v2(s->db);
        free(s);
}

int cscp_store_open(const char *path, cscp_store_t **ret)
{
        cscp_store_t *s;
        sqlite3_stmt *st = NULL;
        int rc, r, version = -1;

        if (!path || !ret)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                r = fail(s, rc, -EIO);
                goto fail;
        }
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, BUSY_MS);
        /* WAL + FULL: a commit is on disk when it returns; readers never block the writer. */
        if ((r = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")) < 0)
                goto fail;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
                r = fail(s, rc, CSCP_E_STATE);
                goto fail;
        }
        version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (version != 0 && version != SCHEMA_VERSION) {
                snprintf(s->err, sizeof(s->err), "store schema version %d, this cscp knows %d", version,
                         SCHEMA_VERSION);
                r = CSCP_E_STATE;
                goto fail;
        }
        if (version == 0) {
                char sql[sizeof(schema) + 96];
                snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; %s PRAGMA user_version=%d; COMMIT;", schema,
                         SCHEMA_VERSION);
                if ((r = exec(s, sql)) < 0) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        goto fail;
                }
        }
        *ret = s;
        return 0;
fail:
        sqlite3_finalize(st);
        if (s->err[0] == '\0')
                snprintf(s->err, sizeof(s->err), "%s", cscp_strerror(r));
        /* The message is lost with s; callers get the code. */
        cscp_store_close(s);
        return r;
}

static int prepare(cscp_store_t *s, const char *sql, sqlite3_stmt **st)
{
        int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
        return rc == SQLITE_OK ? 0 : fail(s, rc, -EIO);
}

static bool text_ok(const char *t)
{
        return t && *t && strlen(t) <= MAX_TEXT;
}

int cscp_store_enroll(cscp_store_t *s, const char *host, const uint8_t *ak_name, size_t ak_name_len,
                      const uint8_t *ak_public, size_t ak_public_len, const char *method)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !text_ok(host) || !ak_name || !ak_name_len || ak_name_len > 66 || !ak_public || !ak_public_len ||
            ak_public_len > CSCP_STORE_MAX_BLOB || !method)
                return -EINVAL;
        r = prepare(s,
                    "INSERT INTO host (name, ak_name, ak_public, method, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                    "ON CONFLICT(name) DO UPDATE SET ak_name = ?2, ak_public = ?3, method = ?4, enrolled_at = ?5",
                    &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, ak_name, (int)ak_name_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, ak_public, (int)ak_public_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, method, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? 0 : fail(s, rc, rc == SQLITE_CONSTRAINT_CHECK ? -EINVAL : -EIO);
        sqlite3_finalize(st);
        return r;
}

int cscp_store_enrolled_ak(cscp_store_t *s, const char *host, uint8_t *ret, size_t *ret_len)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !text_ok(host) || !ret || !ret_len)
                return -EINVAL;
        if ((r = prepare(s, "SELECT ak_name FROM host WHERE name = ?1", &st)) < 0)
                return r;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int n = sqlite3_column_bytes(st, 0);
                if (n <= 0 || n > 66)
                        r = CSCP_E_STATE;
                else {
                        memcpy(ret, sqlite3_column_blob(st, 0), (size_t)n);
                        *ret_len = (size_t)n;
                        r = 0;
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : fail(s, rc, -EIO);
        sqlite3_finalize(st);
        return r;
}

static bool newer(const cscp_clock_t *a, const cscp_clock_t *b)
{
        if (a->reset_count != b->reset_count)
                return a->reset_count > b->reset_count;
        if (a->restart_count != b->restart_count)
                return a->restart_count > b->restart_count;
        return a->clock >= b->clock;
}

int cscp_store_clock_swap(cscp_store_t *s, const uint8_t *ak_name, size_t ak_name_len, const cscp_clock_t *now,
                          cscp_clock_t *ret_last, bool *ret_had_last)
{
        sqlite3_stmt *st = NULL;
        cscp_clock_t last = {0};
        bool had = false;
        int r, rc;

        if (!s || !ak_name || !ak_name_len || ak_name_len > 66 || !now || !ret_last || !ret_had_last ||
            now->clock > INT64_MAX)
                return -EINVAL;
        /* IMMEDIATE: the write lock is taken before the read, so two challengers serialise here. */
        if ((r = exec(s, "BEGIN IMMEDIATE")) < 0)
                return r;
        if ((r = prepare(s, "SELECT clock, reset_count, restart_count, safe FROM clock WHERE ak_name = ?1", &st)) < 0)
                goto rollback;
        sqlite3_bind_blob(st, 1, ak_name, (int)ak_name_len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                had = true;
                last.clock = (uint64_t)sqlite3_column_int64(st, 0);
                last.reset_count = (uint32_t)sqlite3_column_int64(st, 1);
                last.restart_count = (uint32_t)sqlite3_column_int64(st, 2);
                last.safe = sqlite3_column_int(st, 3) != 0;
        } else if (rc != SQLITE_DONE) {
                r = fail(s, rc, -EIO);
                goto rollback;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (!had || newer(now, &last)) {
                if ((r = prepare(s,
                                 "INSERT INTO clock (ak_name, clock, reset_count, restart_count, safe, seen_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(ak_name) DO UPDATE SET clock = ?2, "
                                 "reset_count = ?3, restart_count = ?4, safe = ?5, seen_at = ?6",
                                 &st)) < 0)
                        goto rollback;
                sqlite3_bind_blob(st, 1, ak_name, (int)ak_name_len, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)now->clock);
                sqlite3_bind_int64(st, 3, now->reset_count);
                sqlite3_bind_int64(st, 4, now->restart_count);
                sqlite3_bind_int(st, 5, now->safe ? 1 : 0);
                sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
                rc = sqlite3_step(st);
                if (rc != SQLITE_DONE) {
                        r = fail(s, rc, -EIO);
                        goto rollback;
                }
                sqlite3_finalize(st);
                st = NULL;
        }
        if ((r = exec(s, "COMMIT")) < 0)
                goto rollback;
        *ret_last = last;
        *ret_had_last = had;
        return 0;
rollback:
        sqlite3_finalize(st);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

int cscp_store_checkpoint_put(cscp_store_t *s, const char *host, const char *log, const uint8_t *buf, size_t len)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !text_ok(host) || !text_ok(log) || !buf || !len || len > CSCP_STORE_MAX_BLOB)
                return -EINVAL;
        r = prepare(s,
                    "INSERT INTO checkpoint (host, log, state, updated_at) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT(host, log) DO UPDATE SET state = ?3, updated_at = ?4",
                    &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, log, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? 0 : fail(s, rc, -EIO);
        sqlite3_finalize(st);
        return r;
}

int cscp_store_checkpoint_get(cscp_store_t *s, const char *host, const char *log, uint8_t **ret, size_t *ret_len)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !text_ok(host) || !text_ok(log) || !ret || !ret_len)
                return -EINVAL;
        if ((r = prepare(s, "SELECT state FROM checkpoint WHERE host = ?1 AND log = ?2", &st)) < 0)
                return r;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, log, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int n = sqlite3_column_bytes(st, 0);
                uint8_t *b = n > 0 && (size_t)n <= CSCP_STORE_MAX_BLOB ? malloc((size_t)n) : NULL;
                if (n <= 0 || (size_t)n > CSCP_STORE_MAX_BLOB)
                        r = CSCP_E_STATE;
                else if (!b)
                        r = -ENOMEM;
                else {
                        memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
                        *ret = b;
                        *ret_len = (size_t)n;
                        r = 0;
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : fail(s, rc, -EIO);
        sqlite3_finalize(st);
        return r;
}

int cscp_store_verdict_add(cscp_store_t *s, const char *host, const char *container, int result, const char *json)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !text_ok(host) || (container && !text_ok(container)) || result < 0 || result > 2 || !json ||
            strlen(json) > CSCP_STORE_MAX_BLOB)
                return -EINVAL;
        r = prepare(s, "INSERT INTO verdict (host, container, result, verdict, at) VALUES (?1, ?2, ?3, ?4, ?5)", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        if (container)
                sqlite3_bind_text(st, 2, container, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 2);
        sqlite3_bind_int(st, 3, result);
        sqlite3_bind_text(st, 4, json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? 0 : fail(s, rc, -EIO);
        sqlite3_finalize(st);
        return r;
}

int cscp_store_verdict_count(cscp_store_t *s, const char *host, uint64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!s || !ret || (host && !text_ok(host)))
                return -EINVAL;
        r = prepare(s, host ? "SELECT count(*) FROM verdict WHERE host = ?1" : "SELECT count(*) FROM verdict", &st);
        if (r < 0)
                return r;
        if (host)
                sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
                r = 0;
        } else
                r = fail(s, rc, -EIO);
        sqlite3_finalize(st);
        return r;
}
