/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Logging with per-module levels read at run time from CSCP_LOG, in the style
 * of tpm2-tss: CSCP_LOG=all+warn,server+trace. Every file that logs defines
 * LOGMODULE before including this header. Library code logs at debug at most.
 */

#include <stdarg.h>

typedef enum {
        CSCP_LOG_NONE = 0,
        CSCP_LOG_ERROR = 1,
        CSCP_LOG_WARN = 2,
        CSCP_LOG_INFO = 3,
        CSCP_LOG_DEBUG = 4,
        CSCP_LOG_TRACE = 5,
} cscp_log_level_t;

/* Program name used as the line prefix; defaults to "cscp". */
void cscp_log_set_ident(const char *ident);
/* Re-reads CSCP_LOG (done lazily on first use). */
void cscp_log_reload(void);
int cscp_log_enabled(const char *module, cscp_log_level_t level);
void cscp_log_write(const char *module, cscp_log_level_t level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#ifndef LOGMODULE
#error "define LOGMODULE before including cscp/log.h"
#endif
#define CSCP_LOG_STR_(x) #x
#define CSCP_LOG_STR(x)  CSCP_LOG_STR_(x)
#define log_at(lvl, ...)                                                             \
        do {                                                                         \
                if (cscp_log_enabled(CSCP_LOG_STR(LOGMODULE), (lvl)))                \
                        cscp_log_write(CSCP_LOG_STR(LOGMODULE), (lvl), __VA_ARGS__); \
        } while (0)
#define log_error(...) log_at(CSCP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(CSCP_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(CSCP_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(CSCP_LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) log_at(CSCP_LOG_TRACE, __VA_ARGS__)
