/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts: result rules, lookup, human and JSON output (include/cscp/verdict.h). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "cscp/verdict.h"

/* ---- helpers ---------------------------------------------------------- */

/* Runs a printer into memory; returns the NUL-terminated text. */
static char *capture(const cscp_verdict_t *v, bool json)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        cr_assert_not_null(f);
        if (json)
                cr_assert_geq(cscp_verdict_print_json(v, f), 0);
        else
                cscp_verdict_print(v, f);
        cr_assert_eq(fclose(f), 0);
        cr_assert_not_null(buf);
        return buf;
}

/*
 * JSON forbids raw control characters inside strings; json-c accepts them
 * even in strict mode, so check separately.
 */
static void assert_no_raw_controls_in_strings(const char *s)
{
        bool in_str = false, esc = false;
        size_t i;

        for (i = 0; s[i]; i++) {
                unsigned char c = (unsigned char)s[i];

                if (!in_str) {
                        if (c == '"')
                                in_str = true;
                        continue;
                }
                cr_assert_geq(c, 0x20, "raw control byte 0x%02x inside a JSON string at offset %zu: %s", c, i, s);
                if (esc)
                        esc = false;
                else if (c == '\\')
                        esc = true;
                else if (c == '"')
                        in_str = false;
        }
        cr_assert_not(in_str, "unterminated string: %s", s);
}

/* Parses the whole text strictly: one object, nothing but whitespace after it. */
static json_object *parse_json(const char *text)
{
        struct json_tokener *tok = json_tokener_new();
        json_object *o;
        size_t len = strlen(text), end;

        cr_assert_not_null(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, text, (int)len);
        cr_assert_not_null(o, "not JSON (%s): %s", json_tokener_error_desc(json_tokener_get_error(tok)), text);
        end = json_tokener_get_parse_end(tok);
        for (; end < len; end++)
                cr_assert(strchr(" \t\r\n", text[end]), "trailing garbage after the JSON object: %s", text + end);
        json_tokener_free(tok);
        cr_assert(json_object_is_type(o, json_type_object), "not an object: %s", text);
        assert_no_raw_controls_in_strings(text);

        /* Cross-check with the plain entry point the brief names. */
        json_object *o2 = json_tokener_parse(text);
        cr_assert_not_null(o2);
        json_object_put(o2);
        return o;
}

static json_object *get(json_object *o, const char *key, json_type type)
{
        json_object *m = NULL;

        cr_assert(json_object_object_get_ex(o, key, &m), "no \"%s\" in %s", key, json_object_to_json_string(o));
        cr_assert(json_object_is_type(m, type), "\"%s\" has type %s", key, json_type_to_name(json_object_get_type(m)));
        return m;
}

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing over U+10FFFF. */
static bool valid_utf8(const char *str, size_t *ret_bad)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0;

        while (s[i]) {
                unsigned char c = s[i];
                size_t n, k;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        goto bad;
                for (k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                goto bad;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        goto bad;
                i += n + 1;
        }
        return true;
bad:
        *ret_bad = i;
        return false;
}

static size_t count_lines(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                if (*s == '\n')
                        n++;
        return n;
}

/* ---- result rules ----------------------------------------------------- */

Test(verdict, empty_is_not_trusted)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cr_assert_eq(v.n_claims, 0);
        cr_assert_null(v.error);
        cr_assert_neq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED, "nothing was checked, yet trusted");
        cscp_verdict_clear(&v);
}

Test(verdict, all_pass_trusted)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cr_assert(cscp_verdict_claim(&v, "signature", true, "RSASSA %s", "sha256"));
        cr_assert(cscp_verdict_claim(&v, "nonce", true, "32 bytes"));
        cr_assert_eq(v.n_claims, 2);
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);
}

Test(verdict, one_failed_untrusted)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cr_assert(cscp_verdict_claim(&v, "signature", true, "ok"));
        cr_assert_not(cscp_verdict_claim(&v, "pcr-digest", false, "digest %s != %s", "aa", "bb"));
        cr_assert(cscp_verdict_claim(&v, "nonce", true, "ok"));
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_UNTRUSTED);
        cscp_verdict_clear(&v);
}

Test(verdict, error_wins)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        cscp_verdict_error(&v, "log %s unreadable", "ima");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR, "error set but claims decided");
        cr_assert_not_null(v.error);
        cr_assert_str_eq(v.error, "log ima unreadable");
        cscp_verdict_clear(&v);

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", false, "bad");
        cscp_verdict_error(&v, "x");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR, "error set, result follows failed claim");
        cscp_verdict_clear(&v);

        cscp_verdict_init(&v);
        cscp_verdict_error(&v, "no claims at all");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_ERROR);
        cscp_verdict_clear(&v);
}

Test(verdict, first_error_wins)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cscp_verdict_error(&v, "first %d", 1);
        cscp_verdict_error(&v, "second %d", 2);
        cr_assert_str_eq(v.error, "first 1");
        cscp_verdict_clear(&v);
}

Test(verdict, result_names)
{
        cr_assert_str_eq(cscp_verdict_result_name(CSCP_VERDICT_TRUSTED), "trusted");
        cr_assert_str_eq(cscp_verdict_result_name(CSCP_VERDICT_UNTRUSTED), "untrusted");
        cr_assert_str_eq(cscp_verdict_result_name(CSCP_VERDICT_ERROR), "error");
        cr_assert_eq(CSCP_VERDICT_TRUSTED, 0);
        cr_assert_eq(CSCP_VERDICT_UNTRUSTED, 1);
        cr_assert_eq(CSCP_VERDICT_ERROR, 2);
}

Test(verdict, find_and_facts)
{
        cscp_verdict_t v;
        const cscp_claim_t *c;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "checked with %s", "ak");
        cscp_verdict_claim(&v, "pcr-digest", false, "mismatch at PCR %d", 10);
        cscp_verdict_fact(&v, "ak-name", "000b%s", "abcd");
        cscp_verdict_fact(&v, "clock", "%llu", 12345ULL);

        c = cscp_verdict_find(&v, "pcr-digest");
        cr_assert_not_null(c);
        cr_assert_str_eq(c->name, "pcr-digest");
        cr_assert_not(c->pass);
        cr_assert_str_eq(c->detail, "mismatch at PCR 10");
        c = cscp_verdict_find(&v, "signature");
        cr_assert_not_null(c);
        cr_assert(c->pass);
        cr_assert_str_eq(c->detail, "checked with ak");
        cr_assert_null(cscp_verdict_find(&v, "nonce"));
        cr_assert_null(cscp_verdict_find(&v, "pcr"), "prefix matched");
        cr_assert_null(cscp_verdict_find(&v, ""));

        cr_assert_eq(v.n_facts, 2);
        cr_assert_str_eq(v.facts[0].key, "ak-name");
        cr_assert_str_eq(v.facts[0].value, "000babcd");
        cr_assert_str_eq(v.facts[1].key, "clock");
        cr_assert_str_eq(v.facts[1].value, "12345");
        cscp_verdict_clear(&v);
}

Test(verdict, many_claims_and_long_detail)
{
        cscp_verdict_t v;
        char *long_detail = malloc(5001);
        size_t i;

        cr_assert_not_null(long_detail);
        memset(long_detail, 'd', 5000);
        long_detail[5000] = '\0';
        cscp_verdict_init(&v);
        for (i = 0; i < 200; i++) {
                char name[32];

                snprintf(name, sizeof(name), "claim-%zu", i);
                cscp_verdict_claim(&v, name, true, "%zu", i);
        }
        cscp_verdict_claim(&v, "long", true, "%s", long_detail);
        cr_assert_eq(v.n_claims, 201);
        cr_assert_str_eq(cscp_verdict_find(&v, "claim-150")->detail, "150");
        cr_assert_eq(strlen(cscp_verdict_find(&v, "long")->detail), 5000, "detail truncated");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);
        free(long_detail);
}

Test(verdict, clear_and_reuse)
{
        cscp_verdict_t v;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "a", false, "x");
        cscp_verdict_fact(&v, "k", "v");
        cscp_verdict_error(&v, "e");
        cscp_verdict_clear(&v);
        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "a", true, "x");
        cr_assert_eq(cscp_verdict_result(&v), CSCP_VERDICT_TRUSTED);
        cscp_verdict_clear(&v);
}

/* ---- human output ----------------------------------------------------- */

Test(verdict_print, human)
{
        cscp_verdict_t v;
        char *out, *nl;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        cscp_verdict_claim(&v, "pcr-digest", false, "digest differs");
        cscp_verdict_claim(&v, "clock", false, "reset since last challenge");
        cscp_verdict_claim(&v, "nonce", true, "ok");
        out = capture(&v, false);

        nl = strchr(out, '\n');
        cr_assert_not_null(nl, "no verdict line: %s", out);
        *nl = '\0';
        cr_assert_not_null(strstr(out, "untrusted"), "first line is not the verdict: %s", out);
        *nl = '\n';
        cr_assert_not_null(strstr(out, "pcr-digest"), "failed claim not named: %s", out);
        cr_assert_not_null(strstr(out, "clock"), "failed claim not named: %s", out);
        cr_assert_not_null(strstr(out, "digest differs"), "reason missing: %s", out);
        cr_assert_not_null(strstr(out, "reset since last challenge"), "reason missing: %s", out);
        cr_assert_not_null(strstr(out, "signature"), "passed claim not listed: %s", out);
        cr_assert_geq(count_lines(out), 1 + v.n_claims, "one line per claim expected: %s", out);
        free(out);
        cscp_verdict_clear(&v);
}

Test(verdict_print, human_trusted_and_error)
{
        cscp_verdict_t v;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        out = capture(&v, false);
        cr_assert_not_null(strstr(out, "trusted"), "%s", out);
        cr_assert_null(strstr(out, "untrusted"), "%s", out);
        free(out);

        cscp_verdict_error(&v, "TPM unreachable");
        out = capture(&v, false);
        cr_assert_not_null(strstr(out, "error"), "%s", out);
        cr_assert_not_null(strstr(out, "TPM unreachable"), "error reason missing: %s", out);
        free(out);
        cscp_verdict_clear(&v);
}

/* ---- JSON output ------------------------------------------------------ */

Test(verdict_json, structure)
{
        cscp_verdict_t v;
        json_object *o, *claims, *c, *facts;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        cscp_verdict_claim(&v, "pcr-digest", false, "digest differs");
        cscp_verdict_fact(&v, "ak-name", "000b1234");
        cscp_verdict_fact(&v, "reset-count", "3");
        out = capture(&v, true);
        o = parse_json(out);

        cr_assert_str_eq(json_object_get_string(get(o, "verdict", json_type_string)), "untrusted");
        claims = get(o, "claims", json_type_array);
        cr_assert_eq(json_object_array_length(claims), 2);
        c = json_object_array_get_idx(claims, 0);
        cr_assert_str_eq(json_object_get_string(get(c, "name", json_type_string)), "signature");
        cr_assert_eq(json_object_get_boolean(get(c, "pass", json_type_boolean)), 1);
        cr_assert_str_eq(json_object_get_string(get(c, "detail", json_type_string)), "ok");
        c = json_object_array_get_idx(claims, 1);
        cr_assert_str_eq(json_object_get_string(get(c, "name", json_type_string)), "pcr-digest");
        cr_assert_eq(json_object_get_boolean(get(c, "pass", json_type_boolean)), 0);
        cr_assert_str_eq(json_object_get_string(get(c, "detail", json_type_string)), "digest differs");
        facts = get(o, "facts", json_type_object);
        cr_assert_eq(json_object_object_length(facts), 2);
        cr_assert_str_eq(json_object_get_string(get(facts, "ak-name", json_type_string)), "000b1234");
        cr_assert_str_eq(json_object_get_string(get(facts, "reset-count", json_type_string)), "3");

        /* No error: "error" absent or null. */
        {
                json_object *e = NULL;

                if (json_object_object_get_ex(o, "error", &e))
                        cr_assert(e == NULL || json_object_is_type(e, json_type_null), "error: %s",
                                  json_object_to_json_string(e));
        }
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

Test(verdict_json, trusted_empty_facts)
{
        cscp_verdict_t v;
        json_object *o;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        out = capture(&v, true);
        o = parse_json(out);
        cr_assert_str_eq(json_object_get_string(get(o, "verdict", json_type_string)), "trusted");
        cr_assert_eq(json_object_object_length(get(o, "facts", json_type_object)), 0);
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

Test(verdict_json, no_claims)
{
        cscp_verdict_t v;
        json_object *o;
        char *out;

        cscp_verdict_init(&v);
        out = capture(&v, true);
        o = parse_json(out);
        cr_assert_str_neq(json_object_get_string(get(o, "verdict", json_type_string)), "trusted");
        cr_assert_eq(json_object_array_length(get(o, "claims", json_type_array)), 0);
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

Test(verdict_json, error)
{
        cscp_verdict_t v;
        json_object *o;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "signature", true, "ok");
        cscp_verdict_error(&v, "connection \"closed\"\n");
        out = capture(&v, true);
        o = parse_json(out);
        cr_assert_str_eq(json_object_get_string(get(o, "verdict", json_type_string)), "error");
        cr_assert_str_eq(json_object_get_string(get(o, "error", json_type_string)), "connection \"closed\"\n");
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

Test(verdict_json, escaping)
{
        /* Printable specials: must come back byte for byte. */
        static const char kept[] = "quote \" backslash \\ nl \n tab \t utf8 \xc3\xa9 slash / braces {}[] end";
        /* Control characters: a verdict may store them or replace them, but the JSON must escape what it holds. */
        static const char ctl[] = "cr \r bs \b ff \f ctl \x01\x1f del \x7f end";
        cscp_verdict_t v;
        json_object *o, *claims, *c, *facts;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "name \"with\" quotes\n", false, "%s", kept);
        cscp_verdict_claim(&v, "controls", false, "%s", ctl);
        cscp_verdict_fact(&v, "key\"\\\n", "%s", kept);
        cscp_verdict_fact(&v, "ctl-key\x02", "%s", ctl);
        cscp_verdict_error(&v, "%s", ctl);
        out = capture(&v, true);
        o = parse_json(out); /* also: no raw control byte inside any string */

        claims = get(o, "claims", json_type_array);
        c = json_object_array_get_idx(claims, 0);
        cr_assert_not_null(c);
        cr_assert_str_eq(json_object_get_string(get(c, "name", json_type_string)), v.claims[0].name);
        cr_assert_str_eq(json_object_get_string(get(c, "detail", json_type_string)), kept);
        c = json_object_array_get_idx(claims, 1);
        cr_assert_not_null(c);
        cr_assert_str_eq(json_object_get_string(get(c, "detail", json_type_string)), v.claims[1].detail,
                         "JSON does not carry the stored detail");
        cr_assert_str_eq(json_object_get_string(get(o, "error", json_type_string)), v.error);

        facts = get(o, "facts", json_type_object);
        cr_assert_eq(v.n_facts, 2);
        cr_assert_str_eq(json_object_get_string(get(facts, v.facts[0].key, json_type_string)), kept);
        cr_assert_str_eq(json_object_get_string(get(facts, v.facts[1].key, json_type_string)), v.facts[1].value);
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

/* Whatever a verdict does with control characters, none reaches the human output raw but newline and tab. */
Test(verdict_print, human_no_raw_controls)
{
        cscp_verdict_t v;
        char *out;
        size_t i;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "pcr-digest", false, "evil \x1b[2J\x1b]0;title\x07 \r ok   signature \x9b end");
        out = capture(&v, false);
        for (i = 0; out[i]; i++) {
                unsigned char ch = (unsigned char)out[i];

                cr_assert(ch >= 0x20 || ch == '\n' || ch == '\t', "raw control 0x%02x at %zu in human output", ch, i);
                cr_assert_neq(ch, 0x7f);
        }
        free(out);
        cscp_verdict_clear(&v);
}

/*
 * JSON text must be UTF-8 (RFC 8259 section 8.1). Details can carry bytes
 * from the evidence (IMA paths, container ids); invalid sequences must not
 * reach the output raw.
 */
Test(verdict_json, invalid_utf8_in_detail)
{
        static const char bad[] = "path /bin/\xff\xfe-x overlong \xc0\xaf surrogate \xed\xa0\x80 cut \xe2\x82";
        cscp_verdict_t v;
        json_object *o, *c;
        const char *detail;
        size_t at = 0;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "ima-replay", false, "%s", bad);
        cscp_verdict_fact(&v, "container-id", "%s", "id-\xff");
        out = capture(&v, true);
        cr_assert(valid_utf8(out, &at), "verdict JSON is not UTF-8 at byte %zu (0x%02x): %s", at,
                  (unsigned char)out[at], out);
        o = parse_json(out);
        c = json_object_array_get_idx(get(o, "claims", json_type_array), 0);
        detail = json_object_get_string(get(c, "detail", json_type_string));
        cr_assert_not_null(strstr(detail, "path /bin/"), "%s", detail);
        cr_assert_not_null(strstr(detail, "-x overlong"), "%s", detail);
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}

/* Valid non-ASCII text passes through unchanged. */
Test(verdict_json, valid_utf8_kept)
{
        static const char text[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92";
        cscp_verdict_t v;
        json_object *o, *c;
        char *out;

        cscp_verdict_init(&v);
        cscp_verdict_claim(&v, "x", true, "%s", text);
        out = capture(&v, true);
        o = parse_json(out);
        c = json_object_array_get_idx(get(o, "claims", json_type_array), 0);
        cr_assert_str_eq(json_object_get_string(get(c, "detail", json_type_string)), text);
        json_object_put(o);
        free(out);
        cscp_verdict_clear(&v);
}
