/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOGMODULE log
#include "log.h"

#define MAX_RULES       32
#define MODULE_NAME_MAX 32

typedef struct rule {
        char module[MODULE_NAME_MAX];
        cscp_log_level_t level;
} rule_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static rule_t rules[MAX_RULES];
static size_t n_rules;
static cscp_log_level_t default_level = CSCP_LOG_WARN;
static const char *ident = "cscp";

static const char *const level_names[] = {"none", "error", "warn", "info", "debug", "trace"};

static int level_from_name(const char *s, cscp_log_level_t *ret)
{
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
                if (strcasecmp(s, level_names[i]) == 0) {
                        *ret = (cscp_log_level_t)i;
                        return 0;
                }
        return -1;
}

/* CSCP_LOG=all+warn,server+trace: "all" sets the default; unknown words are ignored. */
static void parse_env(void)
{
        const char *env = getenv("CSCP_LOG");
        char buf[512];

        n_rules = 0;
        default_level = CSCP_LOG_WARN;
        if (!env || strlen(env) >= sizeof(buf))
                return;
        strcpy(buf, env);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *plus = strchr(tok, '+');
                cscp_log_level_t lvl;
                if (!plus || level_from_name(plus + 1, &lvl) < 0)
                        continue;
                *plus = '\0';
                if (strcmp(tok, "all") == 0)
                        default_level = lvl;
                else if (n_rules < MAX_RULES && strlen(tok) < MODULE_NAME_MAX) {
                        strcpy(rules[n_rules].module, tok);
                        rules[n_rules].level = lvl;
                        n_rules++;
                }
        }
}

static void init_once(void)
{
        parse_env();
}

void cscp_log_reload(void)
{
        pthread_once(&once, init_once);
        pthread_mutex_lock(&lock);
        parse_env();
        pthread_mutex_unlock(&lock);
}

void cscp_log_set_ident(const char *id)
{
        ident = id ? id : "cscp";
}

int cscp_log_enabled(const char *module, cscp_log_level_t level)
{
        cscp_log_level_t limit;

        pthread_once(&once, init_once);
        pthread_mutex_lock(&lock);
        limit = default_level;
        for (size_t i = 0; i < n_rules; i++)
                if (strcmp(rules[i].module, module) == 0)
                        limit = rules[i].level;
        pthread_mutex_unlock(&lock);
        return level != CSCP_LOG_NONE && level <= limit;
}

void cscp_log_write(const char *module, cscp_log_level_t level, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* One fprintf per line so lines from threads do not interleave. */
        fprintf(stderr, "%s[%s] %s: %s\n", ident, level_names[level < 6 ? level : 5], module, msg);
}
