/* SPDX-License-Identifier: Apache-2.0 */
/* attestd's access control list: the format is in acl.h and docs/protocol.md. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "core.h" /* vtpmd_container_id_check: the same id rules vtpmd applies */
#include "error.h"
#include "util.h"

typedef struct acl_rule {
        uint8_t fp[32];
        bool host, all_containers;
        char **ids;
        size_t n_ids, cap_ids;
} acl_rule_t;

struct acl {
        acl_rule_t *rules;
        size_t n_rules, cap_rules;
        size_t n_targets;
};

static int fail(char *err, size_t errlen, size_t line, int r, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, size_t line, int r, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (err && errlen)
                snprintf(err, errlen, "line %zu: %s", line, msg);
        return r;
}

void acl_free(acl_t *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n_rules; i++) {
                for (size_t k = 0; k < a->rules[i].n_ids; k++)
                        free(a->rules[i].ids[k]);
                free(a->rules[i].ids);
        }
        free(a->rules);
        free(a);
}

size_t acl_rules(const acl_t *a)
{
        return a ? a->n_rules : 0;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* 64 hex digits, or 32 pairs separated by ':'. */
static int parse_fp(const char *s, size_t n, uint8_t out[32])
{
        bool colons = n == 95;
        size_t k = 0;

        if (n != 64 && n != 95)
                return -EINVAL;
        for (size_t i = 0; i < n; k++) {
                int hi, lo;
                if (k >= 32)
                        return -EINVAL;
                hi = hexval(s[i]);
                lo = i + 1 < n ? hexval(s[i + 1]) : -1;
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[k] = (uint8_t)(hi << 4 | lo);
                i += 2;
                if (colons && i < n) {
                        if (s[i] != ':')
                                return -EINVAL;
                        i++;
                }
        }
        return k == 32 ? 0 : -EINVAL;
}

static acl_rule_t *rule_for(acl_t *a, const uint8_t fp[32])
{
        for (size_t i = 0; i < a->n_rules; i++)
                if (memcmp(a->rules[i].fp, fp, 32) == 0)
                        return &a->rules[i];
        if (a->n_rules == a->cap_rules) {
                size_t cap = a->cap_rules ? a->cap_rules * 2 : 8;
                acl_rule_t *nr = reallocarray(a->rules, cap, sizeof(*nr));
                if (!nr)
                        return NULL;
                a->rules = nr;
                a->cap_rules = cap;
        }
        memset(&a->rules[a->n_rules], 0, sizeof(a->rules[0]));
        memcpy(a->rules[a->n_rules].fp, fp, 32);
        return &a->rules[a->n_rules++];
}

static int rule_add_id(acl_rule_t *r, const char *id, size_t n)
{
        char *copy;

        for (size_t i = 0; i < r->n_ids; i++)
                if (strlen(r->ids[i]) == n && memcmp(r->ids[i], id, n) == 0)
                        return 0;
        if (r->n_ids == r->cap_ids) {
                size_t cap = r->cap_ids ? r->cap_ids * 2 : 4;
                char **ni = reallocarray(r->ids, cap, sizeof(*ni));
                if (!ni)
                        return -ENOMEM;
                r->ids = ni;
                r->cap_ids = cap;
        }
        copy = strndup(id, n);
        if (!copy)
                return -ENOMEM;
        r->ids[r->n_ids++] = copy;
        return 0;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t';
}

static int parse_line(acl_t *a, const char *s, size_t n, size_t line, char *err, size_t errlen)
{
        size_t i = 0, tok, tl;
        uint8_t fp[32];
        acl_rule_t *rule;
        bool any = false;

        while (i < n && is_space(s[i]))
                i++;
        if (i == n || s[i] == '#')
                return 0;
        tok = i;
        while (i < n && !is_space(s[i]))
                i++;
        if (parse_fp(s + tok, i - tok, fp) < 0)
                return fail(err, errlen, line, CSCP_E_PROTO,
                            "'%.*s' is not a SHA-256 certificate fingerprint (64 hex digits, or 32 pairs with ':')",
                            (int)(i - tok > 100 ? 100 : i - tok), s + tok);
        if (a->n_rules >= ACL_MAX_RULES)
                return fail(err, errlen, line, CSCP_E_TOO_BIG, "more than %u client certificates", ACL_MAX_RULES);
        rule = rule_for(a, fp);
        if (!rule)
                return fail(err, errlen, line, -ENOMEM, "out of memory");
        for (;;) {
                char id[ACL_MAX_ID + 1];

                while (i < n && is_space(s[i]))
                        i++;
                if (i == n || s[i] == '#')
                        break;
                tok = i;
                while (i < n && !is_space(s[i]))
                        i++;
                tl = i - tok;
                if (++a->n_targets > ACL_MAX_TARGETS)
                        return fail(err, errlen, line, CSCP_E_TOO_BIG, "more than %u targets in the file",
                                    ACL_MAX_TARGETS);
                any = true;
                if (tl == 4 && memcmp(s + tok, "host", 4) == 0) {
                        rule->host = true;
                        continue;
                }
                if (tl < 10 || memcmp(s + tok, "container:", 10) != 0)
                        return fail(err, errlen, line, CSCP_E_PROTO,
                                    "unknown target '%.*s' (host, container:ID or container:*)",
                                    (int)(tl > 100 ? 100 : tl), s + tok);
                tok += 10;
                tl -= 10;
                if (tl == 1 && s[tok] == '*') {
                        rule->all_containers = true;
                        continue;
                }
                if (tl == 0 || tl > ACL_MAX_ID)
                        return fail(err, errlen, line, CSCP_E_PROTO, "container id of %zu bytes (1..%d)", tl,
                                    ACL_MAX_ID);
                memcpy(id, s + tok, tl);
                id[tl] = '\0';
                if (vtpmd_container_id_check(id, ACL_MAX_ID) < 0)
                        return fail(err, errlen, line, CSCP_E_PROTO,
                                    "'%s' is not a container id ([A-Za-z0-9][A-Za-z0-9_.+-]*)", id);
                if (rule_add_id(rule, id, tl) < 0)
                        return fail(err, errlen, line, -ENOMEM, "out of memory");
        }
        if (!any)
                return fail(err, errlen, line, CSCP_E_PROTO, "a fingerprint without targets (host, container:ID)");
        return 0;
}

int acl_parse(const char *buf, size_t len, acl_t **ret, char *err, size_t errlen)
{
        acl_t *a;
        size_t pos = 0, line = 0;
        int r = 0;

        if ((!buf && len) || !ret)
                return -EINVAL;
        if (len > ACL_MAX_FILE)
                return fail(err, errlen, 0, CSCP_E_TOO_BIG, "the file is over %u bytes", ACL_MAX_FILE);
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        while (pos < len) {
                const char *nl = memchr(buf + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
                size_t adv = n + (nl ? 1 : 0);

                line++;
                if (n > 0 && buf[pos + n - 1] == '\r')
                        n--;
                if (n > ACL_MAX_LINE) {
                        r = fail(err, errlen, line, CSCP_E_TOO_BIG, "longer than %u bytes", ACL_MAX_LINE);
                        goto fail;
                }
                if (memchr(buf + pos, '\0', n)) {
                        r = fail(err, errlen, line, CSCP_E_PROTO, "a NUL byte");
                        goto fail;
                }
                r = parse_line(a, buf + pos, n, line, err, errlen);
                if (r < 0)
                        goto fail;
                pos += adv;
        }
        *ret = a;
        return 0;
fail:
        acl_free(a);
        return r;
}

int acl_load(const char *path, acl_t **ret, char *err, size_t errlen)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        r = cscp_file_read(path, ACL_MAX_FILE, &buf, &len);
        if (r < 0) {
                if (err && errlen)
                        snprintf(err, errlen, "cannot read: %s",
                                 r == -EFBIG ? "over the size limit of 1 MiB" : cscp_strerror(r));
                return r;
        }
        r = acl_parse((const char *)buf, len, ret, err, errlen);
        free(buf);
        return r;
}

bool acl_allows(const acl_t *a, const uint8_t fp[32], const char *container_id)
{
        const acl_rule_t *rule = NULL;

        if (!a || !fp)
                return false;
        for (size_t i = 0; i < a->n_rules; i++)
                if (CRYPTO_memcmp(a->rules[i].fp, fp, 32) == 0)
                        rule = &a->rules[i];
        if (!rule)
                return false;
        if (!container_id || !container_id[0])
                return rule->host;
        if (rule->all_containers)
                return true;
        for (size_t i = 0; i < rule->n_ids; i++)
                if (strcmp(rule->ids[i], container_id) == 0)
                        return true;
        return false;
}
