/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"
#include "verdict.h"

/* Growth is bounded by the verifier's fixed set of claims; this caps a runaway caller. */
#define MAX_ENTRIES 4096

void cscp_verdict_init(cscp_verdict_t *v)
{
        memset(v, 0, sizeof(*v));
}

void cscp_verdict_clear(cscp_verdict_t *v)
{
        if (!v)
                return;
        for (size_t i = 0; i < v->n_claims; i++) {
                free(v->claims[i].name);
                free(v->claims[i].detail);
        }
        for (size_t i = 0; i < v->n_facts; i++) {
                free(v->facts[i].key);
                free(v->facts[i].value);
        }
        free(v->claims);
        free(v->facts);
        free(v->error);
        memset(v, 0, sizeof(*v));
}

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
        char *s = NULL;

        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return cscp_text_sanitize(s);
}

static void set_error_str(cscp_verdict_t *v, char *msg)
{
        if (v->error) {
                free(msg);
                return;
        }
        v->error = msg ? msg : strdup("out of memory");
}

bool cscp_verdict_claim(cscp_verdict_t *v, const char *name, bool pass, const char *fmt, ...)
{
        cscp_claim_t *grown;
        va_list ap;
        char *detail, *n;

        va_start(ap, fmt);
        detail = vformat(fmt, ap);
        va_end(ap);
        n = cscp_text_sanitize(strdup(name));
        if (!detail || !n || v->n_claims >= MAX_ENTRIES)
                goto fail;
        grown = realloc(v->claims, (v->n_claims + 1) * sizeof(*grown));
        if (!grown)
                goto fail;
        v->claims = grown;
        v->claims[v->n_claims++] = (cscp_claim_t){.name = n, .pass = pass, .detail = detail};
        return pass;
fail:
        free(detail);
        free(n);
        set_error_str(v, strdup("out of memory recording a claim"));
        return pass;
}

void cscp_verdict_fact(cscp_verdict_t *v, const char *key, const char *fmt, ...)
{
        cscp_fact_t *grown;
        va_list ap;
        char *value, *k;

        va_start(ap, fmt);
        value = vformat(fmt, ap);
        va_end(ap);
        k = cscp_text_sanitize(strdup(key));
        if (!value || !k || v->n_facts >= MAX_ENTRIES)
                goto fail;
        /* A later fact with the same key replaces the earlier one. */
        for (size_t i = 0; i < v->n_facts; i++)
                if (strcmp(v->facts[i].key, key) == 0) {
                        free(v->facts[i].value);
                        v->facts[i].value = value;
                        free(k);
                        return;
                }
        grown = realloc(v->facts, (v->n_facts + 1) * sizeof(*grown));
        if (!grown)
                goto fail;
        v->facts = grown;
        v->facts[v->n_facts++] = (cscp_fact_t){.key = k, .value = value};
        return;
fail:
        free(value);
        free(k);
        set_error_str(v, strdup("out of memory recording a fact"));
}

void cscp_verdict_error(cscp_verdict_t *v, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        set_error_str(v, vformat(fmt, ap));
        va_end(ap);
}

cscp_verdict_result_t cscp_verdict_result(const cscp_verdict_t *v)
{
        if (v->error || v->n_claims == 0)
                return CSCP_VERDICT_ERROR;
        for (size_t i = 0; i < v->n_claims; i++)
                if (!v->claims[i].pass)
                        return CSCP_VERDICT_UNTRUSTED;
        return CSCP_VERDICT_TRUSTED;
}

const char *cscp_verdict_result_name(cscp_verdict_result_t r)
{
        switch (r) {
        case CSCP_VERDICT_TRUSTED:
                return "trusted";
        case CSCP_VERDICT_UNTRUSTED:
                return "untrusted";
        case CSCP_VERDICT_ERROR:
                return "error";
        }
        return "error";
}

const cscp_claim_t *cscp_verdict_find(const cscp_verdict_t *v, const char *name)
{
        for (size_t i = 0; i < v->n_claims; i++)
                if (strcmp(v->claims[i].name, name) == 0)
                        return &v->claims[i];
        return NULL;
}

void cscp_verdict_print(const cscp_verdict_t *v, FILE *f)
{
        cscp_verdict_result_t r = cscp_verdict_result(v);
        size_t failed = 0;

        for (size_t i = 0; i < v->n_claims; i++)
                failed += !v->claims[i].pass;
        fprintf(f, "verdict: %s", cscp_verdict_result_name(r));
        if (v->error)
                fprintf(f, " (%s)", v->error);
        else if (v->n_claims == 0)
                fprintf(f, " (no claims were checked)");
        else if (failed)
                fprintf(f, " (%zu of %zu claims failed)", failed, v->n_claims);
        else
                fprintf(f, " (%zu claims passed)", v->n_claims);
        fputc('\n', f);
        for (size_t i = 0; i < v->n_claims; i++)
                fprintf(f, "  %s %-22s %s\n", v->claims[i].pass ? "ok  " : "FAIL", v->claims[i].name,
                        v->claims[i].detail);
        for (size_t i = 0; i < v->n_facts; i++)
                fprintf(f, "  %-27s %s\n", v->facts[i].key, v->facts[i].value);
}

int cscp_verdict_print_json(const cscp_verdict_t *v, FILE *f)
{
        json_object *root = json_object_new_object(), *claims = json_object_new_array(),
                    *facts = json_object_new_object();
        int r = -ENOMEM;

        if (!root || !claims || !facts)
                goto out;
        json_object_object_add(root, "verdict",
                               json_object_new_string(cscp_verdict_result_name(cscp_verdict_result(v))));
        for (size_t i = 0; i < v->n_claims; i++) {
                json_object *c = json_object_new_object();
                if (!c)
                        goto out;
                json_object_object_add(c, "name", json_object_new_string(v->claims[i].name));
                json_object_object_add(c, "pass", json_object_new_boolean(v->claims[i].pass));
                json_object_object_add(c, "detail", json_object_new_string(v->claims[i].detail));
                json_object_array_add(claims, c);
        }
        json_object_object_add(root, "claims", claims);
        claims = NULL;
        for (size_t i = 0; i < v->n_facts; i++)
                json_object_object_add(facts, v->facts[i].key, json_object_new_string(v->facts[i].value));
        json_object_object_add(root, "facts", facts);
        facts = NULL;
        json_object_object_add(root, "error", v->error ? json_object_new_string(v->error) : NULL);
        if (fprintf(f, "%s\n",
                    json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                r = -EIO;
        else
                r = 0;
out:
        json_object_put(root);
        json_object_put(claims);
        json_object_put(facts);
        return r;
}
