/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX TCB collateral: Intel PCS TCB info (TDX, version 3) and QE identity
 * (TD_QE, version 2) responses, the PCK certificate's SGX extension, and the
 * TCB status evaluation.
 *
 * Signed bytes: each response is {"tcbInfo":<object>,"signature":"<hex>"}
 * (resp. "enclaveIdentity"); Intel signs the bytes of <object> exactly as they
 * appear in the body. The top level is scanned by hand (exactly those two
 * members, no escapes in their names) and the object is parsed by json-c from
 * its first byte; json_tokener_get_parse_end() gives where it ends, so the
 * span that is verified is the span that is parsed.
 *
 * Evaluation follows Intel's Quote Verification Library (TDX path:
 * QuoteVerifier.cpp 4.1.2.4.9-17, TcbLevelCheck.cpp, TdxModuleCheck.cpp,
 * TDRelaunchCheck.cpp, EnclaveReportVerifier.cpp) and go-tdx-guest
 * verify/verify.go; docs/tdx.md "Collateral" states every rule.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "tdx.h"
#include "util.h"

#define JSON_DEPTH_MAX 16 /* the deepest Intel document nests 6 levels */
#define SGX_EXT_OID    "1.2.840.113741.1.13.1"

/* ------------------------------------------------------------------ status names */

static const char *const STATUS_NAMES[] = {
        [CSCP_TDX_TCB_UP_TO_DATE] = "UpToDate",
        [CSCP_TDX_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
        [CSCP_TDX_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
        [CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
        [CSCP_TDX_TCB_OUT_OF_DATE] = "OutOfDate",
        [CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
        [CSCP_TDX_TCB_REVOKED] = "Revoked",
        [CSCP_TDX_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
        [CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] = "TDRelaunchAdvisedConfigurationNeeded",
        [CSCP_TDX_TCB_NO_MATCH] = "no matching TCB level",
        [CSCP_TDX_TCB_MISMATCH] = "collateral mismatch",
};

const char *cscp_tdx_tcb_status_name(cscp_tdx_tcb_status_t s)
{
        if ((unsigned)s >= sizeof(STATUS_NAMES) / sizeof(STATUS_NAMES[0]))
                return "?";
        return STATUS_NAMES[s];
}

int cscp_tdx_tcb_status_from_name(const char *name, cscp_tdx_tcb_status_t *ret)
{
        if (!name)
                return -EINVAL;
        for (unsigned i = 0; i <= CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED; i++)
                if (strcmp(STATUS_NAMES[i], name) == 0) {
                        *ret = (cscp_tdx_tcb_status_t)i;
                        return 0;
                }
        return -EINVAL;
}

/* ------------------------------------------------------------------ JSON helpers */

typedef struct jctx {
        char *err;
        size_t err_len;
} jctx_t;

__attribute__((format(printf, 2, 3))) static int jfail(jctx_t *c, const char *fmt, ...)
{
        va_list ap;

        if (c->err && c->err_len) {
                va_start(ap, fmt);
                vsnprintf(c->err, c->err_len, fmt, ap);
                va_end(ap);
        }
        return CSCP_E_PROTO;
}

static const char *type_name(json_object *o)
{
        return o ? json_type_to_name(json_object_get_type(o)) : "null";
}

/* obj[name] of type t into *ret; missing -> error when required, else *ret = NULL. */
static int jget(jctx_t *c, json_object *obj, const char *path, const char *name, json_type t, bool required,
                json_object **ret)
{
        json_object *m = NULL;

        *ret = NULL;
        if (!json_object_object_get_ex(obj, name, &m)) {
                if (!required)
                        return 0;
                return jfail(c, "%s: missing member \"%s\"", path, name);
        }
        if (!json_object_is_type(m, t))
                return jfail(c, "%s.%s: %s, not %s", path, name, type_name(m), json_type_to_name(t));
        *ret = m;
        return 0;
}

static int jint(jctx_t *c, json_object *obj, const char *path, const char *name, int64_t min, int64_t max, int64_t *ret)
{
        json_object *m;
        int64_t x;
        int k = jget(c, obj, path, name, json_type_int, true, &m);

        if (k < 0)
                return k;
        errno = 0;
        x = json_object_get_int64(m);
        if (errno || x < min || x > max)
                return jfail(c, "%s.%s: %s out of range %lld..%lld", path, name, json_object_get_string(m),
                             (long long)min, (long long)max);
        *ret = x;
        return 0;
}

static int jstr(jctx_t *c, json_object *obj, const char *path, const char *name, const char **ret)
{
        json_object *m;
        int k = jget(c, obj, path, name, json_type_string, true, &m);

        if (k < 0)
                return k;
        *ret = json_object_get_string(m);
        return 0;
}

/* A hex string of exactly n bytes (either case). */
static int jhex(jctx_t *c, json_object *obj, const char *path, const char *name, uint8_t *out, size_t n)
{
        const char *s;
        size_t got = 0;
        int k = jstr(c, obj, path, name, &s);

        if (k < 0)
                return k;
        if (strlen(s) != 2 * n || cscp_hex_decode(s, out, n, &got) < 0 || got != n)
                return jfail(c, "%s.%s: \"%.80s\" is not %zu bytes of hex", path, name, s, n);
        return 0;
}

static bool digits(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

static int num(const char *s, size_t n)
{
        int v = 0;

        for (size_t i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0');
        return v;
}

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC), strictly. */
static int parse_time(const char *s, time_t *ret)
{
        static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        struct tm tm;
        int y, mo, d, h, mi, se;

        if (strlen(s) != 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
            s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
            !digits(s + 17, 2) || s[19] != 'Z')
                return -EINVAL;
        y = num(s, 4);
        mo = num(s + 5, 2);
        d = num(s + 8, 2);
        h = num(s + 11, 2);
        mi = num(s + 14, 2);
        se = num(s + 17, 2);
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
                return -EINVAL;
        if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
                return -EINVAL;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se;
        *ret = timegm(&tm);
        return 0;
}

static int jtime(jctx_t *c, json_object *obj, const char *path, const char *name, time_t *ret, char *copy)
{
        const char *s;
        int k = jstr(c, obj, path, name, &s);

        if (k < 0)
                return k;
        if (parse_time(s, ret) < 0)
                return jfail(c, "%s.%s: \"%.40s\" is not YYYY-MM-DDTHH:MM:SSZ", path, name, s);
        if (copy)
                memcpy(copy, s, 21);
        return 0;
}

/* An array member with 1..max elements. */
static int jarray(jctx_t *c, json_object *obj, const char *path, const char *name, size_t max, bool required,
                  json_object **ret, size_t *n)
{
        int k = jget(c, obj, path, name, json_type_array, required, ret);

        *n = 0;
        if (k < 0 || !*ret)
                return k;
        *n = json_object_array_length(*ret);
        if (*n == 0)
                return jfail(c, "%s.%s: empty", path, name);
        if (*n > max)
                return jfail(c, "%s.%s: %zu entries, over the limit of %zu", path, name, *n, max);
        return 0;
}

/* ------------------------------------------------------------------ top level: {"<key>":{...},"signature":"hex"} */

static size_t skip_ws(const uint8_t *b, size_t len, size_t pos)
{
        while (pos < len && (b[pos] == ' ' || b[pos] == '\t' || b[pos] == '\n' || b[pos] == '\r'))
                pos++;
        return pos;
}

/*
 * Splits the response. On success *body_obj (caller puts it) is the parsed
 * object whose raw bytes are [*body, *body + *body_len).
 */
static int split_top(jctx_t *c, const uint8_t *b, size_t len, const char *key, json_object **body_obj,
                     const uint8_t **body, size_t *body_len, uint8_t sig[64])
{
        bool have_body = false, have_sig = false;
        json_tokener *tok = NULL;
        size_t pos;
        int k = CSCP_E_PROTO;

        *body_obj = NULL;
        if (len > CSCP_TDX_COLLATERAL_JSON_MAX)
                return cscp_err_set(c->err, c->err_len, CSCP_E_TOO_BIG, "%zu bytes, over the %u-byte limit", len,
                                    CSCP_TDX_COLLATERAL_JSON_MAX);
        if (len && memchr(b, '\0', len))
                return jfail(c, "NUL byte at offset %zu", (size_t)((const uint8_t *)memchr(b, '\0', len) - b));
        pos = skip_ws(b, len, 0);
        if (pos >= len)
                return jfail(c, "empty (no JSON object)");
        if (b[pos] != '{')
                return jfail(c, "offset %zu: expected '{' (a JSON object)", pos);
        pos++;
        for (int member = 0;; member++) {
                char name[32];
                size_t n = 0, start;

                pos = skip_ws(b, len, pos);
                if (pos >= len)
                        return jfail(c, "truncated at offset %zu", pos);
                if (b[pos] != '"')
                        return jfail(c, "offset %zu: expected a member name", pos);
                for (start = ++pos; pos < len && b[pos] != '"'; pos++) {
                        if (b[pos] == '\\' || b[pos] < 0x20 || pos - start >= sizeof(name) - 1)
                                return jfail(c, "offset %zu: unexpected member name (only \"%s\" and \"signature\")",
                                             start - 1, key);
                        name[n++] = (char)b[pos];
                }
                if (pos >= len)
                        return jfail(c, "truncated at offset %zu", pos);
                name[n] = '\0';
                pos = skip_ws(b, len, pos + 1);
                if (pos >= len || b[pos] != ':')
                        return jfail(c, "offset %zu: expected ':' after \"%s\"", pos, name);
                pos = skip_ws(b, len, pos + 1);
                if (pos >= len)
                        return jfail(c, "truncated at offset %zu", pos);

                if (strcmp(name, key) == 0) {
                        enum json_tokener_error je;
                        json_object *o;

                        if (have_body)
                                return jfail(c, "offset %zu: member \"%s\" given twice", start - 1, key);
                        if (b[pos] != '{')
                                return jfail(c, "%s: not an object (offset %zu)", key, pos);
                        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
                        if (!tok)
                                return cscp_err_set(c->err, c->err_len, -ENOMEM, "out of memory");
                        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                                            JSON_TOKENER_VALIDATE_UTF8);
                        o = json_tokener_parse_ex(tok, (const char *)b + pos, (int)(len - pos));
                        je = json_tokener_get_error(tok);
                        if (!o || je != json_tokener_success) {
                                size_t at = pos + json_tokener_get_parse_end(tok);

                                json_object_put(o);
                                k = jfail(c, "%s: %s at offset %zu", key,
                                          je == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(je),
                                          at);
                                goto out;
                        }
                        *body = b + pos;
                        *body_len = json_tokener_get_parse_end(tok);
                        json_tokener_free(tok);
                        tok = NULL;
                        pos += *body_len;
                        /* json-c also consumes whitespace after the value: not part of the signed bytes */
                        while (*body_len > 0 &&
                               (b[pos - 1] == ' ' || b[pos - 1] == '\t' || b[pos - 1] == '\n' || b[pos - 1] == '\r')) {
                                (*body_len)--;
                                pos--;
                        }
                        if (*body_len == 0 || b[pos - 1] != '}') {
                                json_object_put(o);
                                return jfail(c, "%s: not an object (offset %zu)", key, pos);
                        }
                        *body_obj = o;
                        have_body = true;
                } else if (strcmp(name, "signature") == 0) {
                        size_t s0, got = 0;
                        char hex[129];

                        if (have_sig)
                                return jfail(c, "offset %zu: member \"signature\" given twice", start - 1);
                        if (b[pos] != '"')
                                return jfail(c, "signature: not a string (offset %zu)", pos);
                        s0 = ++pos;
                        while (pos < len && pos - s0 <= 128 && b[pos] != '"')
                                pos++;
                        if (pos >= len)
                                return jfail(c, "signature: truncated at offset %zu", pos);
                        if (pos - s0 != 128)
                                return jfail(c, "signature: not 128 hex digits (64 bytes, ECDSA r || s)");
                        memcpy(hex, b + s0, 128);
                        hex[128] = '\0';
                        if (cscp_hex_decode(hex, sig, 64, &got) < 0 || got != 64)
                                return jfail(c, "signature: not 128 hex digits (64 bytes, ECDSA r || s)");
                        pos++;
                        have_sig = true;
                } else
                        return jfail(c, "offset %zu: unexpected member \"%s\" (only \"%s\" and \"signature\")",
                                     start - 1, name, key);

                pos = skip_ws(b, len, pos);
                if (pos >= len)
                        return jfail(c, "truncated at offset %zu", pos);
                if (b[pos] == '}') {
                        pos++;
                        break;
                }
                if (b[pos] != ',' || member >= 1)
                        return jfail(c, "offset %zu: expected '}'%s", pos, member >= 1 ? "" : " or ','");
                pos++;
        }
        pos = skip_ws(b, len, pos);
        if (pos != len)
                return jfail(c, "trailing data at offset %zu", pos);
        if (!have_body)
                return jfail(c, "missing member \"%s\"", key);
        if (!have_sig)
                return jfail(c, "missing member \"signature\"");
        return 0;
out:
        json_tokener_free(tok);
        return k;
}

/* ------------------------------------------------------------------ levels */

typedef enum level_kind {
        LEVEL_PLATFORM, /* tcb: sgxtcbcomponents[16], pcesvn, tdxtcbcomponents[16] */
        LEVEL_ISVSVN,   /* tcb: isvsvn (QE identity, TDX module identity) */
} level_kind_t;

static int components(jctx_t *c, json_object *tcb, const char *path, const char *name, uint8_t out[16])
{
        json_object *arr;
        size_t n;
        char p[160];
        int k = jarray(c, tcb, path, name, 16, true, &arr, &n);

        if (k < 0)
                return k;
        if (n != 16)
                return jfail(c, "%s.%s: %zu entries (needs 16)", path, name, n);
        for (size_t i = 0; i < 16; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                int64_t svn;

                snprintf(p, sizeof(p), "%s.%s[%zu]", path, name, i);
                if (!json_object_is_type(e, json_type_object))
                        return jfail(c, "%s: %s, not object", p, type_name(e));
                if ((k = jint(c, e, p, "svn", 0, 255, &svn)) < 0)
                        return k;
                out[i] = (uint8_t)svn;
        }
        return 0;
}

static int advisory_ids(jctx_t *c, json_object *lvl, const char *path, char **ret)
{
        json_object *arr;
        size_t n, total = 0;
        char *s;
        int k = jget(c, lvl, path, "advisoryIDs", json_type_array, false, &arr);

        *ret = NULL;
        if (k < 0 || !arr)
                return k;
        n = json_object_array_length(arr);
        if (n > CSCP_TDX_ADVISORIES_MAX)
                return jfail(c, "%s.advisoryIDs: %zu entries, over the limit of %d", path, n, CSCP_TDX_ADVISORIES_MAX);
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *id;
                size_t l;

                if (!json_object_is_type(e, json_type_string))
                        return jfail(c, "%s.advisoryIDs[%zu]: %s, not string", path, i, type_name(e));
                id = json_object_get_string(e);
                l = strlen(id);
                if (l == 0 || l > 32)
                        return jfail(c, "%s.advisoryIDs[%zu]: %zu characters (1..32)", path, i, l);
                for (size_t j = 0; j < l; j++)
                        if (!isalnum((unsigned char)id[j]) && id[j] != '-' && id[j] != '_')
                                return jfail(c, "%s.advisoryIDs[%zu]: \"%.32s\" is not an advisory ID", path, i, id);
                total += l + 1;
        }
        s = malloc(total);
        if (!s)
                return cscp_err_set(c->err, c->err_len, -ENOMEM, "out of memory");
        s[0] = '\0';
        for (size_t i = 0, off = 0; i < n; i++) {
                const char *id = json_object_get_string(json_object_array_get_idx(arr, i));
                size_t l = strlen(id);

                if (i)
                        s[off++] = ',';
                memcpy(s + off, id, l + 1);
                off += l;
        }
        *ret = s;
        return 0;
}

static void levels_free(cscp_tdx_tcb_level_t *l, size_t n)
{
        if (!l)
                return;
        for (size_t i = 0; i < n; i++)
                free(l[i].advisories);
        free(l);
}

/* Statuses a level may carry: all seven for platform levels, UpToDate/OutOfDate/Revoked for identities. */
static bool status_allowed(level_kind_t kind, cscp_tdx_tcb_status_t s)
{
        if (kind == LEVEL_PLATFORM)
                return s <= CSCP_TDX_TCB_REVOKED;
        return s == CSCP_TDX_TCB_UP_TO_DATE || s == CSCP_TDX_TCB_OUT_OF_DATE || s == CSCP_TDX_TCB_REVOKED;
}

static int parse_levels(jctx_t *c, json_object *obj, const char *path, level_kind_t kind, cscp_tdx_tcb_level_t **ret,
                        size_t *ret_n)
{
        json_object *arr;
        cscp_tdx_tcb_level_t *lv;
        size_t n;
        int k = jarray(c, obj, path, "tcbLevels", CSCP_TDX_TCB_LEVELS_MAX, true, &arr, &n);

        *ret = NULL;
        *ret_n = 0;
        if (k < 0)
                return k;
        lv = calloc(n, sizeof(*lv));
        if (!lv)
                return cscp_err_set(c->err, c->err_len, -ENOMEM, "out of memory");
        *ret = lv;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i), *tcb;
                const char *st;
                char p[128], pt[140];
                int64_t x;

                snprintf(p, sizeof(p), "%s.tcbLevels[%zu]", path, i);
                snprintf(pt, sizeof(pt), "%s.tcb", p);
                if (!json_object_is_type(e, json_type_object))
                        return jfail(c, "%s: %s, not object", p, type_name(e));
                if ((k = jget(c, e, p, "tcb", json_type_object, true, &tcb)) < 0)
                        return k;
                if (kind == LEVEL_PLATFORM) {
                        if ((k = components(c, tcb, pt, "sgxtcbcomponents", lv[i].sgx_svn)) < 0 ||
                            (k = jint(c, tcb, pt, "pcesvn", 0, 65535, &x)) < 0)
                                return k;
                        lv[i].pce_svn = (uint16_t)x;
                        if ((k = components(c, tcb, pt, "tdxtcbcomponents", lv[i].tdx_svn)) < 0)
                                return k;
                } else {
                        if ((k = jint(c, tcb, pt, "isvsvn", 0, 65535, &x)) < 0)
                                return k;
                        lv[i].isv_svn = (uint16_t)x;
                }
                {
                        time_t ignored;

                        if ((k = jtime(c, e, p, "tcbDate", &ignored, lv[i].tcb_date)) < 0)
                                return k;
                }
                if ((k = jstr(c, e, p, "tcbStatus", &st)) < 0)
                        return k;
                if (cscp_tdx_tcb_status_from_name(st, &lv[i].status) < 0 || !status_allowed(kind, lv[i].status))
                        return jfail(c, "%s.tcbStatus: \"%.48s\" is not a %s status", p, st,
                                     kind == LEVEL_PLATFORM ? "TCB level" : "QE / TDX module identity level");
                if ((k = advisory_ids(c, e, p, &lv[i].advisories)) < 0)
                        return k;
        }
        return 0;
}

/* ------------------------------------------------------------------ TCB info */

void cscp_tdx_tcb_info_free(cscp_tdx_tcb_info_t *ti)
{
        if (!ti)
                return;
        levels_free(ti->levels, ti->n_levels);
        for (size_t i = 0; ti->module_ids && i < ti->n_module_ids; i++)
                levels_free(ti->module_ids[i].levels, ti->module_ids[i].n_levels);
        free(ti->module_ids);
        memset(ti, 0, sizeof(*ti));
}

static int module_identities(jctx_t *c, json_object *o, cscp_tdx_tcb_info_t *ti)
{
        json_object *arr;
        size_t n;
        int k = jarray(c, o, "tcbInfo", "tdxModuleIdentities", CSCP_TDX_MODULE_IDS_MAX, false, &arr, &n);

        if (k < 0 || !arr)
                return k;
        ti->module_ids = calloc(n, sizeof(*ti->module_ids));
        if (!ti->module_ids)
                return cscp_err_set(c->err, c->err_len, -ENOMEM, "out of memory");
        ti->n_module_ids = n;
        for (size_t i = 0; i < n; i++) {
                cscp_tdx_module_identity_t *m = &ti->module_ids[i];
                json_object *e = json_object_array_get_idx(arr, i);
                const char *id;
                char p[64];

                snprintf(p, sizeof(p), "tcbInfo.tdxModuleIdentities[%zu]", i);
                if (!json_object_is_type(e, json_type_object))
                        return jfail(c, "%s: %s, not object", p, type_name(e));
                if ((k = jstr(c, e, p, "id", &id)) < 0)
                        return k;
                if (strlen(id) != 6 || strncmp(id, "TDX_", 4) != 0 || !isxdigit((unsigned char)id[4]) ||
                    !isxdigit((unsigned char)id[5]))
                        return jfail(c, "%s.id: \"%.16s\" is not TDX_<2 hex digits>", p, id);
                for (int j = 0; j < 6; j++)
                        m->id[j] = (char)toupper((unsigned char)id[j]);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(ti->module_ids[j].id, m->id) == 0)
                                return jfail(c, "%s.id: \"%s\" given twice", p, m->id);
                if ((k = jhex(c, e, p, "mrsigner", m->mrsigner, 48)) < 0 ||
                    (k = jhex(c, e, p, "attributes", m->attributes, 8)) < 0 ||
                    (k = jhex(c, e, p, "attributesMask", m->attributes_mask, 8)) < 0 ||
                    (k = parse_levels(c, e, p, LEVEL_ISVSVN, &m->levels, &m->n_levels)) < 0)
                        return k;
        }
        return 0;
}

int cscp_tdx_tcb_info_parse(const uint8_t *buf, size_t len, cscp_tdx_tcb_info_t *ti, char *err, size_t err_len)
{
        jctx_t c = {.err = err, .err_len = err_len};
        json_object *o = NULL, *mod;
        const char *id;
        int64_t x;
        int k;

        memset(ti, 0, sizeof(*ti));
        if (err && err_len)
                err[0] = '\0';
        k = split_top(&c, buf, len, "tcbInfo", &o, &ti->body, &ti->body_len, ti->signature);
        if (k < 0)
                goto out;
        if ((k = jstr(&c, o, "tcbInfo", "id", &id)) < 0)
                goto out;
        if (strcmp(id, "TDX") != 0) {
                k = cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "tcbInfo.id: \"%.16s\" (only \"TDX\")", id);
                goto out;
        }
        if ((k = jint(&c, o, "tcbInfo", "version", 0, 1000, &x)) < 0)
                goto out;
        ti->version = (unsigned)x;
        if (x != 3) {
                k = cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "tcbInfo.version: %u (only 3)", ti->version);
                goto out;
        }
        if ((k = jtime(&c, o, "tcbInfo", "issueDate", &ti->issue_date, NULL)) < 0 ||
            (k = jtime(&c, o, "tcbInfo", "nextUpdate", &ti->next_update, NULL)) < 0 ||
            (k = jhex(&c, o, "tcbInfo", "fmspc", ti->fmspc, 6)) < 0 ||
            (k = jhex(&c, o, "tcbInfo", "pceId", ti->pce_id, 2)) < 0)
                goto out;
        if ((k = jint(&c, o, "tcbInfo", "tcbType", 0, UINT32_MAX, &x)) < 0)
                goto out;
        ti->tcb_type = (uint32_t)x;
        if ((k = jint(&c, o, "tcbInfo", "tcbEvaluationDataNumber", 0, UINT32_MAX, &x)) < 0)
                goto out;
        ti->eval_number = (uint32_t)x;
        if ((k = jget(&c, o, "tcbInfo", "tdxModule", json_type_object, true, &mod)) < 0 ||
            (k = jhex(&c, mod, "tcbInfo.tdxModule", "mrsigner", ti->module_mrsigner, 48)) < 0 ||
            (k = jhex(&c, mod, "tcbInfo.tdxModule", "attributes", ti->module_attributes, 8)) < 0 ||
            (k = jhex(&c, mod, "tcbInfo.tdxModule", "attributesMask", ti->module_attributes_mask, 8)) < 0 ||
            (k = module_identities(&c, o, ti)) < 0 ||
            (k = parse_levels(&c, o, "tcbInfo", LEVEL_PLATFORM, &ti->levels, &ti->n_levels)) < 0)
                goto out;
        k = 0;
out:
        json_object_put(o);
        if (k < 0)
                cscp_tdx_tcb_info_free(ti);
        return k;
}

/* ------------------------------------------------------------------ QE identity */

void cscp_tdx_qe_identity_free(cscp_tdx_qe_identity_t *qe)
{
        if (!qe)
                return;
        levels_free(qe->levels, qe->n_levels);
        memset(qe, 0, sizeof(*qe));
}

int cscp_tdx_qe_identity_parse(const uint8_t *buf, size_t len, cscp_tdx_qe_identity_t *qe, char *err, size_t err_len)
{
        jctx_t c = {.err = err, .err_len = err_len};
        static const char *const P = "enclaveIdentity";
        json_object *o = NULL;
        const char *id;
        int64_t x;
        int k;

        memset(qe, 0, sizeof(*qe));
        if (err && err_len)
                err[0] = '\0';
        k = split_top(&c, buf, len, P, &o, &qe->body, &qe->body_len, qe->signature);
        if (k < 0)
                goto out;
        if ((k = jstr(&c, o, P, "id", &id)) < 0)
                goto out;
        if (strcmp(id, "TD_QE") != 0) {
                k = cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "enclaveIdentity.id: \"%.16s\" (only \"TD_QE\")",
                                 id);
                goto out;
        }
        if ((k = jint(&c, o, P, "version", 0, 1000, &x)) < 0)
                goto out;
        qe->version = (unsigned)x;
        if (x != 2) {
                k = cscp_err_set(err, err_len, CSCP_E_UNSUPPORTED, "enclaveIdentity.version: %u (only 2)", qe->version);
                goto out;
        }
        if ((k = jtime(&c, o, P, "issueDate", &qe->issue_date, NULL)) < 0 ||
            (k = jtime(&c, o, P, "nextUpdate", &qe->next_update, NULL)) < 0)
                goto out;
        if ((k = jint(&c, o, P, "tcbEvaluationDataNumber", 0, UINT32_MAX, &x)) < 0)
                goto out;
        qe->eval_number = (uint32_t)x;
        if ((k = jhex(&c, o, P, "miscselect", qe->miscselect, 4)) < 0 ||
            (k = jhex(&c, o, P, "miscselectMask", qe->miscselect_mask, 4)) < 0 ||
            (k = jhex(&c, o, P, "attributes", qe->attributes, 16)) < 0 ||
            (k = jhex(&c, o, P, "attributesMask", qe->attributes_mask, 16)) < 0 ||
            (k = jhex(&c, o, P, "mrsigner", qe->mrsigner, 32)) < 0)
                goto out;
        if ((k = jint(&c, o, P, "isvprodid", 0, 65535, &x)) < 0)
                goto out;
        qe->isv_prod_id = (uint16_t)x;
        k = parse_levels(&c, o, P, LEVEL_ISVSVN, &qe->levels, &qe->n_levels);
out:
        json_object_put(o);
        if (k < 0)
                cscp_tdx_qe_identity_free(qe);
        return k;
}

/* ------------------------------------------------------------------ PCK certificate SGX extension */

/* One SEQUENCE { OID, value } of the extension: the OID's last arc below prefix, and the value. */
static int ext_pair(const ASN1_TYPE *t, const char *prefix, long *arc, const ASN1_TYPE **val,
                    STACK_OF(ASN1_TYPE) * *hold, char *err, size_t err_len)
{
        const unsigned char *p;
        STACK_OF(ASN1_TYPE) * inner;
        const ASN1_TYPE *o;
        char txt[80], *end;
        size_t pl = strlen(prefix);

        *hold = NULL;
        if (ASN1_TYPE_get(t) != V_ASN1_SEQUENCE)
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: an entry is not a SEQUENCE", prefix);
        p = t->value.sequence->data;
        inner = d2i_ASN1_SEQUENCE_ANY(NULL, &p, t->value.sequence->length);
        if (!inner || p != t->value.sequence->data + t->value.sequence->length || sk_ASN1_TYPE_num(inner) != 2) {
                sk_ASN1_TYPE_pop_free(inner, ASN1_TYPE_free);
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: an entry is not SEQUENCE { OID, value }", prefix);
        }
        *hold = inner;
        o = sk_ASN1_TYPE_value(inner, 0);
        if (ASN1_TYPE_get(o) != V_ASN1_OBJECT || OBJ_obj2txt(txt, sizeof(txt), o->value.object, 1) <= 0 ||
            strlen(txt) >= sizeof(txt) - 1)
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "%s: an entry does not start with an OID", prefix);
        *val = sk_ASN1_TYPE_value(inner, 1);
        *arc = -1;
        if (strncmp(txt, prefix, pl) == 0 && txt[pl] == '.' && txt[pl + 1] >= '1' && txt[pl + 1] <= '9') {
                errno = 0;
                *arc = strtol(txt + pl + 1, &end, 10);
                if (errno || *end || *arc > 1000)
                        *arc = -1; /* deeper or odd: not ours */
        }
        return 0;
}

static STACK_OF(ASN1_TYPE) * d2i_seq_exact(const unsigned char *der, long len)
{
        const unsigned char *p = der;
        STACK_OF(ASN1_TYPE) *s = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);

        if (s && p != der + len) {
                sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
                s = NULL;
        }
        return s;
}

static int ext_integer(const ASN1_TYPE *v, int64_t max, int64_t *ret)
{
        int64_t x;

        if (ASN1_TYPE_get(v) != V_ASN1_INTEGER || ASN1_INTEGER_get_int64(&x, v->value.integer) != 1 || x < 0 || x > max)
                return -1;
        *ret = x;
        return 0;
}

static int ext_octets(const ASN1_TYPE *v, uint8_t *out, int n)
{
        if (ASN1_TYPE_get(v) != V_ASN1_OCTET_STRING || ASN1_STRING_length(v->value.octet_string) != n)
                return -1;
        memcpy(out, ASN1_STRING_get0_data(v->value.octet_string), (size_t)n);
        return 0;
}

static int ext_tcb(const ASN1_TYPE *v, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len)
{
        static const char *const PREFIX = SGX_EXT_OID ".2";
        STACK_OF(ASN1_TYPE) *s = NULL;
        uint32_t seen = 0;
        int k = 0, n;

        if (ASN1_TYPE_get(v) != V_ASN1_SEQUENCE ||
            !(s = d2i_seq_exact(v->value.sequence->data, v->value.sequence->length)))
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension TCB (%s): not a SEQUENCE", PREFIX);
        n = sk_ASN1_TYPE_num(s);
        if (n > 32) {
                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension TCB: %d entries", n);
                goto out;
        }
        for (int i = 0; i < n; i++) {
                STACK_OF(ASN1_TYPE) *hold = NULL;
                const ASN1_TYPE *val = NULL;
                long arc;
                int64_t x;

                k = ext_pair(sk_ASN1_TYPE_value(s, i), PREFIX, &arc, &val, &hold, err, err_len);
                if (k == 0 && arc >= 1 && arc <= 18) {
                        if (seen & (1u << arc))
                                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %s.%ld given twice",
                                                 PREFIX, arc);
                        else if (arc <= 16 && ext_integer(val, 255, &x) == 0)
                                ext->sgx_svn[arc - 1] = (uint8_t)x;
                        else if (arc == 17 && ext_integer(val, 65535, &x) == 0)
                                ext->pce_svn = (uint16_t)x;
                        else if (arc == 18 && ext_octets(val, ext->cpu_svn, 16) == 0)
                                ;
                        else
                                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %s.%ld: %s", PREFIX, arc,
                                                 arc <= 16   ? "not an INTEGER 0..255"
                                                 : arc == 17 ? "not an INTEGER 0..65535"
                                                             : "not a 16-byte OCTET STRING");
                        seen |= 1u << arc;
                }
                sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
                if (k < 0)
                        goto out;
        }
        for (long arc = 1; arc <= 18; arc++)
                if (!(seen & (1u << arc))) {
                        k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %s.%ld missing", PREFIX, arc);
                        goto out;
                }
        k = 0;
out:
        sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
        return k;
}

int cscp_tdx_sgx_ext_parse(const uint8_t *der, size_t len, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len)
{
        STACK_OF(ASN1_TYPE) *top = NULL;
        bool tcb = false, pce = false, fmspc = false;
        int k = 0, n;

        memset(ext, 0, sizeof(*ext));
        if (err && err_len)
                err[0] = '\0';
        if (len > CSCP_TDX_SGX_EXT_MAX)
                return cscp_err_set(err, err_len, CSCP_E_TOO_BIG, "SGX extension: %zu bytes, over the %u-byte limit",
                                    len, CSCP_TDX_SGX_EXT_MAX);
        if (!der || len == 0 || !(top = d2i_seq_exact(der, (long)len))) {
                ERR_clear_error();
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: not one DER SEQUENCE");
        }
        n = sk_ASN1_TYPE_num(top);
        if (n > 32) {
                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %d entries", n);
                goto out;
        }
        for (int i = 0; i < n && k == 0; i++) {
                STACK_OF(ASN1_TYPE) *hold = NULL;
                const ASN1_TYPE *val = NULL;
                long arc;

                k = ext_pair(sk_ASN1_TYPE_value(top, i), SGX_EXT_OID, &arc, &val, &hold, err, err_len);
                if (k == 0) {
                        bool *seen = arc == 2 ? &tcb : arc == 3 ? &pce : arc == 4 ? &fmspc : NULL;

                        if (seen && *seen)
                                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %s.%ld given twice",
                                                 SGX_EXT_OID, arc);
                        else if (arc == 2)
                                k = ext_tcb(val, ext, err, err_len);
                        else if (arc == 3 && ext_octets(val, ext->pce_id, 2) < 0)
                                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension PCE-ID (%s.3): not 2 bytes",
                                                 SGX_EXT_OID);
                        else if (arc == 4 && ext_octets(val, ext->fmspc, 6) < 0)
                                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension FMSPC (%s.4): not 6 bytes",
                                                 SGX_EXT_OID);
                        if (seen)
                                *seen = true;
                }
                sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
        }
        if (k == 0 && (!tcb || !pce || !fmspc))
                k = cscp_err_set(err, err_len, CSCP_E_PROTO, "SGX extension: %s missing",
                                 !tcb   ? "TCB (" SGX_EXT_OID ".2)"
                                 : !pce ? "PCE-ID (" SGX_EXT_OID ".3)"
                                        : "FMSPC (" SGX_EXT_OID ".4)");
out:
        ERR_clear_error();
        sk_ASN1_TYPE_pop_free(top, ASN1_TYPE_free);
        return k;
}

int cscp_tdx_pck_ext_from_x509(const struct x509_st *cx, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len)
{
        const X509 *x = (const X509 *)cx;
        ASN1_OBJECT *oid = OBJ_txt2obj(SGX_EXT_OID, 1);
        const ASN1_OCTET_STRING *data;
        int idx, k;

        memset(ext, 0, sizeof(*ext));
        if (!oid)
                return cscp_err_set(err, err_len, -ENOMEM, "out of memory");
        idx = X509_get_ext_by_OBJ(x, oid, -1);
        if (idx < 0 || X509_get_ext_by_OBJ(x, oid, idx) >= 0) {
                ASN1_OBJECT_free(oid);
                ERR_clear_error();
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "PCK certificate: %s SGX extension (%s)",
                                    idx < 0 ? "no" : "more than one", SGX_EXT_OID);
        }
        ASN1_OBJECT_free(oid);
        data = X509_EXTENSION_get_data(X509_get_ext(x, idx));
        k = cscp_tdx_sgx_ext_parse(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data), ext, err, err_len);
        ERR_clear_error();
        return k;
}

int cscp_tdx_pck_ext_from_pem(const uint8_t *pem, size_t len, cscp_tdx_pck_ext_t *ext, char *err, size_t err_len)
{
        BIO *bio;
        X509 *x;
        int k;

        memset(ext, 0, sizeof(*ext));
        if (len > CSCP_TDX_CERT_CHAIN_MAX)
                return cscp_err_set(err, err_len, CSCP_E_TOO_BIG, "PCK chain: %zu bytes, over the limit", len);
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return cscp_err_set(err, err_len, -ENOMEM, "out of memory");
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!x) {
                ERR_clear_error();
                return cscp_err_set(err, err_len, CSCP_E_PROTO, "PCK chain: no PEM certificate");
        }
        k = cscp_tdx_pck_ext_from_x509(x, ext, err, err_len);
        X509_free(x);
        return k;
}

/* ------------------------------------------------------------------ evaluation */

static void hexs(char *out, const uint8_t *b, size_t n)
{
        cscp_hex_encode(b, n, out);
}

static void add_advisories(cscp_tdx_tcb_eval_t *r, const char *csv)
{
        const char *p = csv;

        while (p && *p) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p), have = strlen(r->advisories);
                bool dup = false;

                for (const char *q = r->advisories; *q;) {
                        const char *qe = strchr(q, ',');
                        size_t ql = qe ? (size_t)(qe - q) : strlen(q);

                        if (ql == l && strncmp(q, p, l) == 0)
                                dup = true;
                        q += ql + (qe ? 1 : 0);
                }
                if (!dup) {
                        if (have + l + 2 + 4 >= sizeof(r->advisories)) {
                                if (!strstr(r->advisories, ",..."))
                                        strcat(r->advisories, ",...");
                                return;
                        }
                        if (have)
                                r->advisories[have++] = ',';
                        memcpy(r->advisories + have, p, l);
                        r->advisories[have + l] = '\0';
                }
                p = e ? e + 1 : NULL;
        }
}

static bool config_needed(cscp_tdx_tcb_status_t s)
{
        return s == CSCP_TDX_TCB_CONFIGURATION_NEEDED || s == CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
               s == CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
               s == CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/* A level status combined with an identity level's OutOfDate / Revoked (TDX module, QE). */
static cscp_tdx_tcb_status_t converge(cscp_tdx_tcb_status_t level, cscp_tdx_tcb_status_t identity)
{
        if (identity == CSCP_TDX_TCB_OUT_OF_DATE) {
                if (level == CSCP_TDX_TCB_UP_TO_DATE || level == CSCP_TDX_TCB_SW_HARDENING_NEEDED)
                        return CSCP_TDX_TCB_OUT_OF_DATE;
                if (level == CSCP_TDX_TCB_CONFIGURATION_NEEDED ||
                    level == CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
                        return CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
        }
        if (identity == CSCP_TDX_TCB_REVOKED)
                return CSCP_TDX_TCB_REVOKED;
        return level;
}

static int find_module(const cscp_tdx_tcb_info_t *ti, uint8_t version)
{
        char id[8];

        snprintf(id, sizeof(id), "TDX_%02X", version);
        for (size_t i = 0; i < ti->n_module_ids; i++)
                if (strcmp(ti->module_ids[i].id, id) == 0)
                        return (int)i;
        return -1;
}

/* First level whose ISVSVN is <= svn, or -1. */
static int isv_level(const cscp_tdx_tcb_level_t *l, size_t n, unsigned svn)
{
        for (size_t i = 0; i < n; i++)
                if (svn >= l[i].isv_svn)
                        return (int)i;
        return -1;
}

static bool qe_matches(const cscp_tdx_quote_t *q, const cscp_tdx_qe_identity_t *qe, char *why, size_t why_len)
{
        const uint8_t *rep = q->qe_report;
        char a[65], b[65];

        /* SGX report body: MISCSELECT @16 (u32 LE; Intel's hex is those 4 bytes in that order), ATTRIBUTES @48 */
        for (int i = 0; i < 4; i++)
                if ((rep[16 + i] & qe->miscselect_mask[i]) != qe->miscselect[i]) {
                        hexs(a, rep + 16, 4);
                        hexs(b, qe->miscselect, 4);
                        snprintf(why, why_len, "QE MISCSELECT %s under mask does not give the identity's %s", a, b);
                        return false;
                }
        for (int i = 0; i < 16; i++)
                if ((rep[48 + i] & qe->attributes_mask[i]) != qe->attributes[i]) {
                        hexs(a, rep + 48, 16);
                        hexs(b, qe->attributes, 16);
                        snprintf(why, why_len, "QE ATTRIBUTES %s under mask do not give the identity's %s", a, b);
                        return false;
                }
        if (CRYPTO_memcmp(q->qe_mrsigner, qe->mrsigner, 32) != 0) {
                hexs(a, q->qe_mrsigner, 32);
                hexs(b, qe->mrsigner, 32);
                snprintf(why, why_len, "QE MRSIGNER %s is not the identity's %s", a, b);
                return false;
        }
        if (q->qe_isv_prod_id != qe->isv_prod_id) {
                snprintf(why, why_len, "QE ISVPRODID %u is not the identity's %u", q->qe_isv_prod_id, qe->isv_prod_id);
                return false;
        }
        return true;
}

void cscp_tdx_tcb_evaluate(const cscp_tdx_quote_t *q, const cscp_tdx_pck_ext_t *ext, const cscp_tdx_tcb_info_t *ti,
                           const cscp_tdx_qe_identity_t *qe, cscp_tdx_tcb_eval_t *r)
{
        const uint8_t *mrsigner, *attr, *mask;
        const uint8_t *tee = q->tee_tcb_svn;
        cscp_tdx_tcb_status_t level_status;
        char a[129], b[129];
        size_t from;

        memset(r, 0, sizeof(*r));
        r->level = r->sgx_level = r->module_id = r->module_level = r->qe_level = -1;
        r->status = r->sgx_status = r->tdx_status = r->module_status = r->qe_status = CSCP_TDX_TCB_MISMATCH;

        /* QE identity first: tdx-qe-identity reports it whatever the platform's outcome. */
        r->qe_identity_ok = qe_matches(q, qe, r->qe_why, sizeof(r->qe_why));
        if (r->qe_identity_ok) {
                r->qe_level = isv_level(qe->levels, qe->n_levels, q->qe_isv_svn);
                r->qe_status = r->qe_level < 0 ? CSCP_TDX_TCB_NO_MATCH : qe->levels[r->qe_level].status;
                hexs(a, qe->mrsigner, 32);
                snprintf(r->qe_why, sizeof(r->qe_why),
                         "QE report matches the TD_QE identity (MRSIGNER %.16s..., ISVPRODID %u, MISCSELECT and "
                         "ATTRIBUTES under mask); QE ISVSVN %u: %s",
                         a, qe->isv_prod_id, q->qe_isv_svn,
                         r->qe_level < 0 ? "below every QE identity level" : cscp_tdx_tcb_status_name(r->qe_status));
        }

        if (!ti || !ext) {
                snprintf(r->why, sizeof(r->why), "%s", !ti ? "no TCB info" : "no PCK certificate SGX extension");
                return;
        }

        /* 1. the TCB info is for this platform */
        if (memcmp(ti->fmspc, ext->fmspc, 6) != 0 || memcmp(ti->pce_id, ext->pce_id, 2) != 0) {
                bool f = memcmp(ti->fmspc, ext->fmspc, 6) != 0;

                hexs(a, f ? ti->fmspc : ti->pce_id, f ? 6 : 2);
                hexs(b, f ? ext->fmspc : ext->pce_id, f ? 6 : 2);
                snprintf(r->why, sizeof(r->why), "the TCB info is for %s %s, the PCK certificate's is %s",
                         f ? "FMSPC" : "PCE-ID", a, b);
                return;
        }

        /* 2. TDX module identity: TEE_TCB_SVN[1] > 0 names a versioned module (TDX 1.5) */
        mrsigner = ti->module_mrsigner;
        attr = ti->module_attributes;
        mask = ti->module_attributes_mask;
        if (q->version > 3 && tee[1] > 0) {
                r->module_id = find_module(ti, tee[1]);
                if (r->module_id < 0) {
                        snprintf(r->why, sizeof(r->why),
                                 "TEE_TCB_SVN[1] = %u names TDX module TDX_%02X, which the TCB info has no identity "
                                 "for",
                                 tee[1], tee[1]);
                        return;
                }
                mrsigner = ti->module_ids[r->module_id].mrsigner;
                attr = ti->module_ids[r->module_id].attributes;
                mask = ti->module_ids[r->module_id].attributes_mask;
        }
        if (CRYPTO_memcmp(mrsigner, q->mrsignerseam, 48) != 0) {
                hexs(a, q->mrsignerseam, 48);
                hexs(b, mrsigner, 48);
                snprintf(r->why, sizeof(r->why), "MRSIGNERSEAM %s is not the TDX module signer %s of the TCB info", a,
                         b);
                return;
        }
        for (int i = 0; i < 8; i++)
                if ((q->seam_attributes[i] & mask[i]) != attr[i]) {
                        hexs(a, q->seam_attributes, 8);
                        hexs(b, attr, 8);
                        snprintf(r->why, sizeof(r->why),
                                 "SEAMATTRIBUTES %s under the TCB info's mask are not its attributes %s", a, b);
                        return;
                }

        /* 3. TCB level: the first whose SGX components and PCESVN the PCK certificate reaches, and whose TDX
         * components TEE_TCB_SVN reaches (from index 2 when TEE_TCB_SVN[1] names a module version) */
        from = tee[1] > 0 ? 2 : 0;
        for (size_t i = 0; i < ti->n_levels && r->level < 0; i++) {
                const cscp_tdx_tcb_level_t *l = &ti->levels[i];
                bool ok = ext->pce_svn >= l->pce_svn;

                for (int j = 0; j < 16 && ok; j++)
                        ok = ext->sgx_svn[j] >= l->sgx_svn[j];
                if (!ok)
                        continue;
                if (r->sgx_level < 0)
                        r->sgx_level = (int)i;
                for (size_t j = from; j < 16 && ok; j++)
                        ok = tee[j] >= l->tdx_svn[j];
                if (ok)
                        r->level = (int)i;
        }
        if (r->sgx_level < 0) {
                hexs(a, ext->sgx_svn, 16);
                r->status = CSCP_TDX_TCB_NO_MATCH;
                snprintf(r->why, sizeof(r->why),
                         "the PCK certificate's SGX TCB components %s / PCESVN %u are below every one of the %zu TCB "
                         "levels",
                         a, ext->pce_svn, ti->n_levels);
                return;
        }
        r->sgx_status = ti->levels[r->sgx_level].status;
        if (r->level < 0) {
                hexs(a, tee, 16);
                r->status = CSCP_TDX_TCB_NO_MATCH;
                snprintf(r->why, sizeof(r->why),
                         "TEE_TCB_SVN %s is below the TDX components of every TCB level the SGX TCB reaches "
                         "(levels %d..%zu)",
                         a, r->sgx_level + 1, ti->n_levels);
                return;
        }
        level_status = ti->levels[r->level].status;
        add_advisories(r, ti->levels[r->level].advisories);

        /* 4. TDX module level by TEE_TCB_SVN[0] */
        r->module_status = CSCP_TDX_TCB_UP_TO_DATE;
        if (r->module_id >= 0) {
                const cscp_tdx_module_identity_t *m = &ti->module_ids[r->module_id];

                r->module_level = isv_level(m->levels, m->n_levels, tee[0]);
                if (r->module_level < 0) {
                        r->status = r->module_status = CSCP_TDX_TCB_NO_MATCH;
                        snprintf(r->why, sizeof(r->why),
                                 "TDX module ISVSVN %u (TEE_TCB_SVN[0]) is below every level of %s", tee[0], m->id);
                        return;
                }
                r->module_status = m->levels[r->module_level].status;
                add_advisories(r, m->levels[r->module_level].advisories);
        }
        r->tdx_status = converge(level_status, r->module_status);

        /* 5. TDX 1.5 body: TD relaunch advised when TEE_TCB_SVN2 (the TDX module the TD could be relaunched on)
         * reaches the newest level although the running module is out of date */
        if (q->tdx15 && r->tdx_status != CSCP_TDX_TCB_REVOKED &&
            (r->qe_identity_ok && r->qe_status != CSCP_TDX_TCB_OUT_OF_DATE && r->qe_status != CSCP_TDX_TCB_REVOKED &&
             r->qe_status != CSCP_TDX_TCB_NO_MATCH) &&
            (r->sgx_status == CSCP_TDX_TCB_UP_TO_DATE || r->sgx_status == CSCP_TDX_TCB_SW_HARDENING_NEEDED ||
             r->sgx_status == CSCP_TDX_TCB_CONFIGURATION_NEEDED ||
             r->sgx_status == CSCP_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED) &&
            (r->tdx_status == CSCP_TDX_TCB_OUT_OF_DATE ||
             r->tdx_status == CSCP_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) &&
            r->module_status == CSCP_TDX_TCB_OUT_OF_DATE) {
                const uint8_t *svn2 = q->tee_tcb_svn2;
                const cscp_tdx_tcb_level_t *latest = &ti->levels[0];
                bool relaunch = false;

                if (svn2[1] == 0)
                        relaunch = svn2[0] >= latest->tdx_svn[0] && svn2[2] >= latest->tdx_svn[2];
                else {
                        int m2 = find_module(ti, svn2[1]);

                        if (m2 < 0 || ti->module_ids[m2].n_levels == 0) {
                                r->status = CSCP_TDX_TCB_MISMATCH;
                                snprintf(r->why, sizeof(r->why),
                                         "TEE_TCB_SVN2[1] = %u names TDX module TDX_%02X, which the TCB info has no "
                                         "identity for",
                                         svn2[1], svn2[1]);
                                return;
                        }
                        relaunch = svn2[0] >= ti->module_ids[m2].levels[0].isv_svn && svn2[2] >= latest->tdx_svn[2];
                }
                if (relaunch)
                        r->tdx_status = config_needed(r->sgx_status) || config_needed(r->tdx_status)
                                                ? CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
                                                : CSCP_TDX_TCB_TD_RELAUNCH_ADVISED;
        }

        /* 6. the QE */
        if (!r->qe_identity_ok) {
                r->status = CSCP_TDX_TCB_MISMATCH;
                snprintf(r->why, sizeof(r->why), "the QE is not the TD_QE identity's: %.300s", r->qe_why);
                return;
        }
        if (r->qe_status == CSCP_TDX_TCB_NO_MATCH) {
                r->status = CSCP_TDX_TCB_NO_MATCH;
                snprintf(r->why, sizeof(r->why), "QE ISVSVN %u is below every QE identity level", q->qe_isv_svn);
                return;
        }
        add_advisories(r, qe->levels[r->qe_level].advisories);
        r->status = converge(r->tdx_status, r->qe_status);
}

/* ------------------------------------------------------------------ the directory */

void cscp_tdx_collateral_free(cscp_tdx_collateral_t *c)
{
        if (!c)
                return;
        cscp_tdx_tcb_info_free(&c->tcb_info);
        cscp_tdx_qe_identity_free(&c->qe_identity);
        free(c->tcb_info_raw);
        free(c->qe_identity_raw);
        free(c->chain_pem);
        for (size_t i = 0; i < c->n_crls; i++)
                free(c->crl_paths[i]);
        memset(c, 0, sizeof(*c));
}

static char *join(const char *dir, const char *name)
{
        size_t l = strlen(dir) + 1 + strlen(name) + 1;
        char *p = malloc(l);

        if (p)
                snprintf(p, l, "%s/%s", dir, name);
        return p;
}

/* Reads dir/name (max bytes). Hard errors negative; oversize recorded in why and 0 with *ret NULL. */
static int read_one(const char *dir, const char *name, size_t max, uint8_t **ret, size_t *ret_len, char *why,
                    size_t why_len, char *err, size_t err_len)
{
        char *path = join(dir, name);
        int k;

        *ret = NULL;
        *ret_len = 0;
        if (!path)
                return cscp_err_set(err, err_len, -ENOMEM, "out of memory");
        k = cscp_file_read(path, max, ret, ret_len);
        if (k == -EFBIG) {
                snprintf(why, why_len, "%s: over the %zu-byte limit", name, max);
                k = 0;
        } else if (k < 0)
                cscp_err_set(err, err_len, k, "%s: %s%s", path, cscp_strerror(k),
                             k == -ENOENT ? " (a collateral directory holds " CSCP_TDX_COLLATERAL_TCB_INFO
                                            ", " CSCP_TDX_COLLATERAL_QE_IDENTITY " and " CSCP_TDX_COLLATERAL_CHAIN ")"
                                          : "");
        free(path);
        return k;
}

int cscp_tdx_collateral_load(const char *dir, cscp_tdx_collateral_t *c, char *err, size_t err_len)
{
        static const char *const crls[2] = {CSCP_TDX_COLLATERAL_PCK_CRL, CSCP_TDX_COLLATERAL_ROOT_CRL};
        char e[300];
        int k;

        memset(c, 0, sizeof(*c));
        if (err && err_len)
                err[0] = '\0';
        if (!dir)
                return cscp_err_set(err, err_len, -EINVAL, "no collateral directory");
        if ((k = read_one(dir, CSCP_TDX_COLLATERAL_TCB_INFO, CSCP_TDX_COLLATERAL_JSON_MAX, &c->tcb_info_raw,
                          &c->tcb_info_len, c->tcb_info_err, sizeof(c->tcb_info_err), err, err_len)) < 0 ||
            (k = read_one(dir, CSCP_TDX_COLLATERAL_QE_IDENTITY, CSCP_TDX_COLLATERAL_JSON_MAX, &c->qe_identity_raw,
                          &c->qe_identity_len, c->qe_identity_err, sizeof(c->qe_identity_err), err, err_len)) < 0 ||
            (k = read_one(dir, CSCP_TDX_COLLATERAL_CHAIN, CSCP_TDX_COLLATERAL_PEM_MAX, &c->chain_pem, &c->chain_len,
                          c->chain_err, sizeof(c->chain_err), err, err_len)) < 0)
                goto fail;
        for (int i = 0; i < 2; i++) {
                char *path = join(dir, crls[i]);
                struct stat st;

                if (!path) {
                        k = cscp_err_set(err, err_len, -ENOMEM, "out of memory");
                        goto fail;
                }
                if (lstat(path, &st) < 0 && errno == ENOENT) {
                        free(path);
                        continue;
                }
                c->crl_paths[c->n_crls++] = path; /* read (and refused if odd) with the other CRLs */
        }
        if (c->tcb_info_raw) {
                k = cscp_tdx_tcb_info_parse(c->tcb_info_raw, c->tcb_info_len, &c->tcb_info, e, sizeof(e));
                if (k == -ENOMEM)
                        goto oom;
                c->have_tcb_info = k == 0;
                if (k < 0)
                        snprintf(c->tcb_info_err, sizeof(c->tcb_info_err), CSCP_TDX_COLLATERAL_TCB_INFO ": %s", e);
        }
        if (c->qe_identity_raw) {
                k = cscp_tdx_qe_identity_parse(c->qe_identity_raw, c->qe_identity_len, &c->qe_identity, e, sizeof(e));
                if (k == -ENOMEM)
                        goto oom;
                c->have_qe_identity = k == 0;
                if (k < 0)
                        snprintf(c->qe_identity_err, sizeof(c->qe_identity_err), CSCP_TDX_COLLATERAL_QE_IDENTITY ": %s",
                                 e);
        }
        return 0;
oom:
        k = cscp_err_set(err, err_len, -ENOMEM, "out of memory");
fail:
        cscp_tdx_collateral_free(c);
        return k;
}
