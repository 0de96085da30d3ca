/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A verdict is the list of named claims a verifier checked, each passed or
 * failed with a reason. trusted = every claim passed and no error;
 * untrusted = at least one failed; error = the verifier could not decide.
 *
 * Names, details and facts may quote what a peer sent, so they are stored
 * sanitized: invalid UTF-8 becomes U+FFFD, and control characters (C0 other
 * than newline and tab, DEL, C1) become '?', so that neither JSON consumers
 * nor terminals ever see them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
        CSCP_VERDICT_TRUSTED = 0,   /* exit 0 */
        CSCP_VERDICT_UNTRUSTED = 1, /* exit 1 */
        CSCP_VERDICT_ERROR = 2,     /* exit 2 */
} cscp_verdict_result_t;

typedef struct cscp_claim {
        char *name; /* e.g. "signature", "pcr-digest" */
        bool pass;
        char *detail; /* reason (on failure) or what was checked */
} cscp_claim_t;

/* A named fact reported beside the claims (AK name, clock, ...). */
typedef struct cscp_fact {
        char *key;
        char *value;
} cscp_fact_t;

typedef struct cscp_verdict {
        cscp_claim_t *claims;
        size_t n_claims;
        cscp_fact_t *facts;
        size_t n_facts;
        char *error; /* set: the result is ERROR whatever the claims say */
} cscp_verdict_t;

void cscp_verdict_init(cscp_verdict_t *v);
void cscp_verdict_clear(cscp_verdict_t *v);
/* Records a claim; returns pass (so callers can chain). Allocation failure turns into an error. */
bool cscp_verdict_claim(cscp_verdict_t *v, const char *name, bool pass, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void cscp_verdict_fact(cscp_verdict_t *v, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets the error (the first one wins). */
void cscp_verdict_error(cscp_verdict_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cscp_verdict_result_t cscp_verdict_result(const cscp_verdict_t *v);
const char *cscp_verdict_result_name(cscp_verdict_result_t r); /* "trusted", ... */
const cscp_claim_t *cscp_verdict_find(const cscp_verdict_t *v, const char *name);
/* Human form: a verdict line, then one line per claim. */
void cscp_verdict_print(const cscp_verdict_t *v, FILE *f);
/* JSON form: {"verdict":..., "claims":[{"name","pass","detail"}], "facts":{...}, "error":...} */
int cscp_verdict_print_json(const cscp_verdict_t *v, FILE *f);
