/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Appraisal and measurement policies: strict YAML loading (libyaml's
 * document API), and the appraiser that holds replayed logs to the policy.
 */

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/policy.h"
#include "cscp/tdx.h"
#include "cscp/util.h"

#define MAX_STRING 4096

/* ------------------------------------------------------------- structures */

typedef struct digest_ref {
        uint16_t alg;
        uint8_t len;
        uint8_t d[CSCP_EVENT_MAX_DIGEST];
} digest_ref_t;

typedef struct strlist {
        char **v;
        size_t n;
} strlist_t;

typedef struct ima_allow {
        char *path;
        digest_ref_t *digests;
        size_t n;
} ima_allow_t;

typedef struct boot_event_rule {
        uint32_t pcr;
        digest_ref_t *digests;
        size_t n;
} boot_event_rule_t;

/* TDX measurement registers the tdx section can name (SHA-384, 48 bytes each). */
#define TDX_MR_SIZE 48
typedef struct mr_list {
        uint8_t (*v)[TDX_MR_SIZE];
        size_t n;
} mr_list_t;

enum {
        TDX_MRTD,
        TDX_MRSEAM,
        TDX_MRSIGNERSEAM,
        TDX_MRCONFIGID,
        TDX_MROWNER,
        TDX_MROWNERCONFIG,
        TDX_RTMR0,
        TDX_N = TDX_RTMR0 + 4,
};

static const struct {
        const char *key;  /* policy key (RTMRs: index under tdx.rtmrs) */
        const char *rule; /* violation rule */
        const char *name; /* register name in violations */
        size_t off;       /* in cscp_tdx_quote_t */
} tdx_regs[TDX_N] = {
        [TDX_MRTD] = {"mrtd", "tdx.mrtd", "MRTD", offsetof(cscp_tdx_quote_t, mrtd)},
        [TDX_MRSEAM] = {"mrseam", "tdx.mrseam", "MRSEAM", offsetof(cscp_tdx_quote_t, mrseam)},
        [TDX_MRSIGNERSEAM] = {"mrsignerseam", "tdx.mrsignerseam", "MRSIGNERSEAM",
                              offsetof(cscp_tdx_quote_t, mrsignerseam)},
        [TDX_MRCONFIGID] = {"mrconfigid", "tdx.mrconfigid", "MRCONFIGID", offsetof(cscp_tdx_quote_t, mrconfigid)},
        [TDX_MROWNER] = {"mrowner", "tdx.mrowner", "MROWNER", offsetof(cscp_tdx_quote_t, mrowner)},
        [TDX_MROWNERCONFIG] = {"mrownerconfig", "tdx.mrownerconfig", "MROWNERCONFIG",
                               offsetof(cscp_tdx_quote_t, mrownerconfig)},
        [TDX_RTMR0 + 0] = {"0", "tdx.rtmrs", "RTMR0", offsetof(cscp_tdx_quote_t, rtmr[0])},
        [TDX_RTMR0 + 1] = {"1", "tdx.rtmrs", "RTMR1", offsetof(cscp_tdx_quote_t, rtmr[1])},
        [TDX_RTMR0 + 2] = {"2", "tdx.rtmrs", "RTMR2", offsetof(cscp_tdx_quote_t, rtmr[2])},
        [TDX_RTMR0 + 3] = {"3", "tdx.rtmrs", "RTMR3", offsetof(cscp_tdx_quote_t, rtmr[3])},
};

/* The CCEL (and our host CEL logs on TDX) number RTMRn as CC measurement register index n + 1. */
#define TDX_CC_RTMR0 1

static const uint16_t banks[CSCP_EVENT_MAX_DIGESTS] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384,
                                                       TPM2_ALG_SHA512};

struct cscp_policy {
        bool has_boot, has_ima, has_container, has_resets, has_tdx;
        struct {
                bool set;
                uint8_t v[CSCP_EVENT_MAX_DIGEST];
        } boot_pcr[CSCP_EVENT_MAX_DIGESTS][CSCP_PCR_COUNT];
        boot_event_rule_t *boot_events;
        size_t n_boot_events;
        ima_allow_t *ima_allow; /* sorted by path */
        size_t n_ima_allow;
        strlist_t ima_exclude, ima_require_sig;
        uint32_t *ima_keyids;
        size_t n_ima_keyids;
        bool ima_allow_unknown;
        strlist_t configs, layers, args, env, runtimes;
        bool allow_reboot, allow_restart;
        mr_list_t tdx_mr[TDX_N]; /* n == 0: the register is not checked */
        mr_list_t tdx_ccel[4];   /* tdx.ccel_rtmrs: what the CCEL alone replays RTMR0..3 to */
        bool tdx_allow_debug;
        bool tdx_has_tcb;
        strlist_t tdx_tcb; /* tdx.tcb_status as given (validated names) */
};

/* ----------------------------------------------------------- YAML walking */

typedef struct yctx {
        yaml_document_t doc;
        char *err;
        size_t err_len;
        size_t entries;
} yctx_t;

static int yfail(yctx_t *y, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int yfail(yctx_t *y, const yaml_node_t *n, const char *fmt, ...)
{
        va_list ap;
        int k = 0;

        if (!y->err || y->err_len == 0)
                return CSCP_E_PROTO;
        if (n)
                k = snprintf(y->err, y->err_len, "line %zu, column %zu: ", (size_t)n->start_mark.line + 1,
                             (size_t)n->start_mark.column + 1);
        if (k < 0 || (size_t)k >= y->err_len)
                k = 0;
        va_start(ap, fmt);
        vsnprintf(y->err + k, y->err_len - (size_t)k, fmt, ap);
        va_end(ap);
        return CSCP_E_PROTO;
}

static yaml_node_t *node(yctx_t *y, int id)
{
        return yaml_document_get_node(&y->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_string(yctx_t *y, const yaml_node_t *n, const char *what, char **ret)
{
        const char *s = scalar(n);
        char *c;

        if (!s)
                return yfail(y, n, "%s: expected a string", what);
        if (n->data.scalar.length > MAX_STRING || strlen(s) != n->data.scalar.length)
                return yfail(y, n, "%s: string too long or contains NUL", what);
        c = strdup(s);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

static int get_bool(yctx_t *y, const yaml_node_t *n, const char *what, bool *ret)
{
        const char *s = scalar(n);

        if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
                *ret = true;
        else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
                *ret = false;
        else
                return yfail(y, n, "%s: expected true or false", what);
        return 0;
}

static int get_uint(yctx_t *y, const yaml_node_t *n, const char *what, unsigned long max, unsigned long *ret)
{
        const char *s = scalar(n);
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return yfail(y, n, "%s: expected a whole number", what);
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > max)
                return yfail(y, n, "%s: expected a whole number up to %lu", what, max);
        *ret = v;
        return 0;
}

/* "sha256:<hex>" with the right length for the algorithm. */
static int parse_digest(yctx_t *y, const yaml_node_t *n, const char *what, digest_ref_t *ret)
{
        const char *s = scalar(n), *colon;
        char alg[16];
        size_t len;

        if (!s || !(colon = strchr(s, ':')) || (size_t)(colon - s) >= sizeof(alg))
                return yfail(y, n, "%s: expected \"<alg>:<hex>\" (e.g. sha256:...)", what);
        memcpy(alg, s, (size_t)(colon - s));
        alg[colon - s] = '\0';
        ret->alg = cscp_hash_alg_from_name(alg);
        if (!ret->alg)
                return yfail(y, n, "%s: unknown hash algorithm '%s'", what, alg);
        if (cscp_hex_decode(colon + 1, ret->d, sizeof(ret->d), &len) < 0 || len != cscp_hash_alg_size(ret->alg))
                return yfail(y, n, "%s: '%s' is not a %s digest (%zu hex characters)", what, colon + 1, alg,
                             2 * cscp_hash_alg_size(ret->alg));
        ret->len = (uint8_t)len;
        return 0;
}

static int check_count(yctx_t *y, const yaml_node_t *n, size_t add)
{
        y->entries += add;
        if (y->entries > CSCP_POLICY_MAX_ENTRIES)
                return yfail(y, n, "more than %u entries", CSCP_POLICY_MAX_ENTRIES);
        return 0;
}

#define SEQ_LEN(n) ((size_t)((n)->data.sequence.items.top - (n)->data.sequence.items.start))
#define MAP_LEN(n) ((size_t)((n)->data.mapping.pairs.top - (n)->data.mapping.pairs.start))

static int expect(yctx_t *y, const yaml_node_t *n, yaml_node_type_t t, const char *what)
{
        if (!n || n->type != t)
                return yfail(y, n, "%s: expected a %s", what,
                             t == YAML_MAPPING_NODE    ? "mapping"
                             : t == YAML_SEQUENCE_NODE ? "list"
                                                       : "scalar");
        return 0;
}

/* A list of strings; patterns are checked with fnmatch on a sample to catch syntax errors early. */
static int get_strlist(yctx_t *y, const yaml_node_t *n, const char *what, strlist_t *ret)
{
        int r = expect(y, n, YAML_SEQUENCE_NODE, what);
        size_t cnt;

        if (r < 0)
                return r;
        cnt = SEQ_LEN(n);
        if ((r = check_count(y, n, cnt)) < 0)
                return r;
        ret->v = calloc(cnt ? cnt : 1, sizeof(char *));
        if (!ret->v)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                r = get_string(y, node(y, n->data.sequence.items.start[i]), what, &ret->v[i]);
                if (r < 0)
                        return r;
                ret->n++;
        }
        return 0;
}

static int get_digests(yctx_t *y, const yaml_node_t *n, const char *what, digest_ref_t **ret, size_t *ret_n)
{
        int r = expect(y, n, YAML_SEQUENCE_NODE, what);
        size_t cnt;

        if (r < 0)
                return r;
        cnt = SEQ_LEN(n);
        if (cnt == 0)
                return yfail(y, n, "%s: empty list (nothing could match)", what);
        if ((r = check_count(y, n, cnt)) < 0)
                return r;
        *ret = calloc(cnt, sizeof(digest_ref_t));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                r = parse_digest(y, node(y, n->data.sequence.items.start[i]), what, &(*ret)[i]);
                if (r < 0)
                        return r;
                (*ret_n)++;
        }
        return 0;
}

/* Iterates a mapping, calling fn(key, value) for each pair; keys must be strings. */
typedef int (*pair_fn)(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud);
static int each_pair(yctx_t *y, const yaml_node_t *n, const char *what, pair_fn fn, void *ud)
{
        int r = expect(y, n, YAML_MAPPING_NODE, what);

        if (r < 0)
                return r;
        /* No mapping in either policy has more than a few dozen keys; refuse before the quadratic check. */
        if (MAP_LEN(n) > 256)
                return yfail(y, n, "%s: more than 256 keys", what);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
                const char *key = scalar(k);
                if (!key)
                        return yfail(y, k, "%s: keys must be strings", what);
                for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
                        if (scalar(node(y, q->key)) && strcmp(scalar(node(y, q->key)), key) == 0)
                                return yfail(y, k, "%s: duplicate key '%s'", what, key);
                r = fn(y, key, k, v, ud);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_document(const char *text, size_t len, yctx_t *y)
{
        yaml_parser_t parser;
        yaml_node_t *root;

        if (len > CSCP_POLICY_MAX_BYTES)
                return yfail(y, NULL, "policy larger than %u bytes", CSCP_POLICY_MAX_BYTES);
        if (memchr(text, '\0', len))
                return yfail(y, NULL, "policy contains a NUL byte");
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &y->doc)) {
                int r = yfail(y, NULL, "line %zu, column %zu: %s", (size_t)parser.problem_mark.line + 1,
                              (size_t)parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
                yaml_parser_delete(&parser);
                return r;
        }
        yaml_parser_delete(&parser);
        root = yaml_document_get_root_node(&y->doc);
        if (!root) {
                yaml_document_delete(&y->doc);
                return yfail(y, NULL, "empty policy");
        }
        return 0;
}

/* ------------------------------------------------------- appraisal policy */

static void strlist_clear(strlist_t *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

void cscp_policy_free(cscp_policy_t *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_boot_events; i++)
                free(p->boot_events[i].digests);
        free(p->boot_events);
        for (size_t i = 0; i < p->n_ima_allow; i++) {
                free(p->ima_allow[i].path);
                free(p->ima_allow[i].digests);
        }
        free(p->ima_allow);
        strlist_clear(&p->ima_exclude);
        strlist_clear(&p->ima_require_sig);
        free(p->ima_keyids);
        strlist_clear(&p->configs);
        strlist_clear(&p->layers);
        strlist_clear(&p->args);
        strlist_clear(&p->env);
        strlist_clear(&p->runtimes);
        for (size_t i = 0; i < TDX_N; i++)
                free(p->tdx_mr[i].v);
        for (size_t i = 0; i < 4; i++)
                free(p->tdx_ccel[i].v);
        strlist_clear(&p->tdx_tcb);
        free(p);
}

static int bank_slot(uint16_t alg)
{
        for (int i = 0; i < CSCP_EVENT_MAX_DIGESTS; i++)
                if (banks[i] == alg)
                        return i;
        return -1;
}

static int boot_pcr_values(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        struct {
                cscp_policy_t *p;
                int slot;
        } *c = ud;
        unsigned long pcr = 0;
        size_t len;
        const char *s = scalar(v);
        int r = get_uint(y, k, "boot.pcrs index", CSCP_PCR_COUNT - 1, &pcr);

        (void)key;
        if (r < 0)
                return r;
        if (!s || cscp_hex_decode(s, c->p->boot_pcr[c->slot][pcr].v, CSCP_EVENT_MAX_DIGEST, &len) < 0 ||
            len != cscp_hash_alg_size(banks[c->slot]))
                return yfail(y, v, "boot.pcrs: PCR %lu: expected %zu hex characters", pcr,
                             2 * cscp_hash_alg_size(banks[c->slot]));
        c->p->boot_pcr[c->slot][pcr].set = true;
        return 0;
}

static int boot_pcr_banks(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        struct {
                cscp_policy_t *p;
                int slot;
        } c = {ud, bank_slot(cscp_hash_alg_from_name(key))};

        if (c.slot < 0)
                return yfail(y, k, "boot.pcrs: unknown bank '%s' (sha1, sha256, sha384, sha512)", key);
        return each_pair(y, v, "boot.pcrs", boot_pcr_values, &c);
}

static int boot_event_fields(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        boot_event_rule_t *e = ud;
        unsigned long pcr;
        int r;

        if (strcmp(key, "pcr") == 0) {
                r = get_uint(y, v, "boot.events.pcr", CSCP_PCR_COUNT - 1, &pcr);
                e->pcr = (uint32_t)pcr;
                return r;
        }
        if (strcmp(key, "digests") == 0)
                return get_digests(y, v, "boot.events.digests", &e->digests, &e->n);
        return yfail(y, k, "boot.events: unknown key '%s' (pcr, digests)", key);
}

static int boot_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;
        int r;

        if (strcmp(key, "pcrs") == 0)
                return each_pair(y, v, "boot.pcrs", boot_pcr_banks, p);
        if (strcmp(key, "events") == 0) {
                if ((r = expect(y, v, YAML_SEQUENCE_NODE, "boot.events")) < 0)
                        return r;
                size_t cnt = SEQ_LEN(v);
                if ((r = check_count(y, v, cnt)) < 0)
                        return r;
                p->boot_events = calloc(cnt ? cnt : 1, sizeof(*p->boot_events));
                if (!p->boot_events)
                        return -ENOMEM;
                for (size_t i = 0; i < cnt; i++) {
                        const yaml_node_t *item = node(y, v->data.sequence.items.start[i]);
                        boot_event_rule_t *e = &p->boot_events[p->n_boot_events++];
                        e->pcr = UINT32_MAX;
                        if ((r = each_pair(y, item, "boot.events", boot_event_fields, e)) < 0)
                                return r;
                        if (e->pcr == UINT32_MAX || !e->n)
                                return yfail(y, item, "boot.events: each entry needs pcr and digests");
                }
                return 0;
        }
        return yfail(y, k, "boot: unknown key '%s' (pcrs, events)", key);
}

static int ima_allow_fields(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        ima_allow_t *a = ud;

        if (strcmp(key, "path") == 0) {
                if (a->path)
                        return yfail(y, k, "ima.allow: duplicate path");
                return get_string(y, v, "ima.allow.path", &a->path);
        }
        if (strcmp(key, "digests") == 0)
                return get_digests(y, v, "ima.allow.digests", &a->digests, &a->n);
        return yfail(y, k, "ima.allow: unknown key '%s' (path, digests)", key);
}

static int cmp_allow(const void *a, const void *b)
{
        return strcmp(((const ima_allow_t *)a)->path, ((const ima_allow_t *)b)->path);
}

static int ima_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;
        int r;

        if (strcmp(key, "allow") == 0) {
                if ((r = expect(y, v, YAML_SEQUENCE_NODE, "ima.allow")) < 0)
                        return r;
                size_t cnt = SEQ_LEN(v);
                if ((r = check_count(y, v, cnt)) < 0)
                        return r;
                p->ima_allow = calloc(cnt ? cnt : 1, sizeof(*p->ima_allow));
                if (!p->ima_allow)
                        return -ENOMEM;
                for (size_t i = 0; i < cnt; i++) {
                        const yaml_node_t *item = node(y, v->data.sequence.items.start[i]);
                        ima_allow_t *a = &p->ima_allow[p->n_ima_allow++];
                        if ((r = each_pair(y, item, "ima.allow", ima_allow_fields, a)) < 0)
                                return r;
                        if (!a->path || !a->n)
                                return yfail(y, item, "ima.allow: each entry needs path and digests");
                }
                qsort(p->ima_allow, p->n_ima_allow, sizeof(*p->ima_allow), cmp_allow);
                for (size_t i = 1; i < p->n_ima_allow; i++)
                        if (strcmp(p->ima_allow[i - 1].path, p->ima_allow[i].path) == 0)
                                return yfail(y, v,
                                             "ima.allow: path '%s' listed twice (give all its digests in one "
                                             "entry)",
                                             p->ima_allow[i].path);
                return 0;
        }
        if (strcmp(key, "exclude") == 0)
                return get_strlist(y, v, "ima.exclude", &p->ima_exclude);
        if (strcmp(key, "require_signature") == 0)
                return get_strlist(y, v, "ima.require_signature", &p->ima_require_sig);
        if (strcmp(key, "unknown") == 0) {
                const char *s = scalar(v);
                if (s && strcmp(s, "allow") == 0)
                        p->ima_allow_unknown = true;
                else if (s && strcmp(s, "deny") == 0)
                        p->ima_allow_unknown = false;
                else
                        return yfail(y, v, "ima.unknown: expected allow or deny");
                return 0;
        }
        if (strcmp(key, "keyids") == 0) {
                strlist_t l = {0};
                r = get_strlist(y, v, "ima.keyids", &l);
                if (r >= 0) {
                        p->ima_keyids = calloc(l.n ? l.n : 1, sizeof(uint32_t));
                        if (!p->ima_keyids)
                                r = -ENOMEM;
                }
                for (size_t i = 0; r >= 0 && i < l.n; i++) {
                        uint8_t b[4];
                        size_t bl;
                        if (cscp_hex_decode(l.v[i], b, sizeof(b), &bl) < 0 || bl != 4)
                                r = yfail(y, v, "ima.keyids: '%s' is not a 4-byte key id in hex", l.v[i]);
                        else
                                p->ima_keyids[p->n_ima_keyids++] =
                                        (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
                }
                strlist_clear(&l);
                return r;
        }
        return yfail(y, k, "ima: unknown key '%s' (allow, exclude, unknown, require_signature, keyids)", key);
}

static int container_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;
        static const char *const names[] = {"configs", "layers", "args", "env", "runtimes"};
        strlist_t *lists[] = {&p->configs, &p->layers, &p->args, &p->env, &p->runtimes};

        for (size_t i = 0; i < 5; i++)
                if (strcmp(key, names[i]) == 0) {
                        char what[32];
                        int r;
                        snprintf(what, sizeof(what), "container.%s", names[i]);
                        r = get_strlist(y, v, what, lists[i]);
                        if (r < 0)
                                return r;
                        if (lists[i]->n == 0)
                                return yfail(y, v,
                                             "%s: empty list (nothing could match; leave the key out to "
                                             "allow any)",
                                             what);
                        if (i < 2)
                                for (size_t j = 0; j < lists[i]->n; j++) {
                                        digest_ref_t d;
                                        yaml_node_t fake = *v;
                                        fake.type = YAML_SCALAR_NODE;
                                        fake.data.scalar.value = (yaml_char_t *)lists[i]->v[j];
                                        fake.data.scalar.length = strlen(lists[i]->v[j]);
                                        if ((r = parse_digest(y, &fake, what, &d)) < 0)
                                                return r;
                                }
                        return 0;
                }
        return yfail(y, k, "container: unknown key '%s' (configs, layers, args, env, runtimes)", key);
}

static int resets_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;

        if (strcmp(key, "allow_reboot") == 0)
                return get_bool(y, v, "resets.allow_reboot", &p->allow_reboot);
        if (strcmp(key, "allow_restart") == 0)
                return get_bool(y, v, "resets.allow_restart", &p->allow_restart);
        return yfail(y, k, "resets: unknown key '%s' (allow_reboot, allow_restart)", key);
}

/* One register's allowed values: a hex string, or a non-empty list of them (any one matches). */
static int get_mr_list(yctx_t *y, const yaml_node_t *n, const char *what, mr_list_t *ret)
{
        size_t cnt;
        int r;

        if (ret->v)
                return yfail(y, n, "%s: given twice", what);
        if (scalar(n))
                cnt = 1;
        else {
                if ((r = expect(y, n, YAML_SEQUENCE_NODE, what)) < 0)
                        return r;
                cnt = SEQ_LEN(n);
                if (cnt == 0)
                        return yfail(y, n, "%s: empty list (nothing could match; leave the key out to allow any)",
                                     what);
        }
        if ((r = check_count(y, n, cnt)) < 0)
                return r;
        ret->v = calloc(cnt, sizeof(*ret->v));
        if (!ret->v)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                const yaml_node_t *item = scalar(n) ? n : node(y, n->data.sequence.items.start[i]);
                const char *s = scalar(item);
                size_t len = 0;

                if (!s)
                        return yfail(y, item, "%s: expected %u hex characters (a SHA-384 value)", what,
                                     2 * TDX_MR_SIZE);
                if (strlen(s) != item->data.scalar.length ||
                    cscp_hex_decode(s, ret->v[ret->n], TDX_MR_SIZE, &len) < 0 || len != TDX_MR_SIZE)
                        return yfail(y, item, "%s: '%.16s%s' is not %u hex characters (a SHA-384 value)", what, s,
                                     item->data.scalar.length > 16 ? "..." : "", 2 * TDX_MR_SIZE);
                ret->n++;
        }
        return 0;
}

/* tdx.rtmrs / tdx.ccel_rtmrs: RTMR index 0..3 -> allowed value(s). */
static int tdx_rtmr_values(yctx_t *y, const yaml_node_t *k, const yaml_node_t *v, const char *what, mr_list_t *lists)
{
        unsigned long i = 0;
        char idx[48], w[48];
        int r;

        snprintf(idx, sizeof(idx), "%s index", what);
        if ((r = get_uint(y, k, idx, 3, &i)) < 0)
                return r;
        snprintf(w, sizeof(w), "%s: RTMR%lu", what, i);
        return get_mr_list(y, v, w, &lists[i]);
}

static int tdx_rtmrs(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        (void)key;
        return tdx_rtmr_values(y, k, v, "tdx.rtmrs", &((cscp_policy_t *)ud)->tdx_mr[TDX_RTMR0]);
}

static int tdx_ccel_rtmrs(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        (void)key;
        return tdx_rtmr_values(y, k, v, "tdx.ccel_rtmrs", ((cscp_policy_t *)ud)->tdx_ccel);
}

/* tdx.tcb_status: Intel status names (a string or a list); Revoked is never acceptable. */
static int tdx_tcb_status(yctx_t *y, const yaml_node_t *v, cscp_policy_t *p)
{
        size_t cnt;
        int r;

        if (scalar(v))
                cnt = 1;
        else {
                if ((r = expect(y, v, YAML_SEQUENCE_NODE, "tdx.tcb_status")) < 0)
                        return r;
                cnt = SEQ_LEN(v);
                if (cnt == 0)
                        return yfail(y, v, "tdx.tcb_status: empty list (leave the key out: UpToDate only)");
        }
        if ((r = check_count(y, v, cnt)) < 0)
                return r;
        p->tdx_tcb.v = calloc(cnt, sizeof(char *));
        if (!p->tdx_tcb.v)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                const yaml_node_t *item = scalar(v) ? v : node(y, v->data.sequence.items.start[i]);
                cscp_tdx_tcb_status_t st;
                char names[512];
                size_t nl = 0;

                if ((r = get_string(y, item, "tdx.tcb_status", &p->tdx_tcb.v[p->tdx_tcb.n])) < 0)
                        return r;
                p->tdx_tcb.n++;
                if (cscp_tdx_tcb_status_from_name(p->tdx_tcb.v[i], &st) == 0 && st != CSCP_TDX_TCB_REVOKED)
                        continue;
                if (cscp_tdx_tcb_status_from_name(p->tdx_tcb.v[i], &st) == 0)
                        return yfail(y, item, "tdx.tcb_status: Revoked is never acceptable");
                names[0] = '\0';
                for (unsigned s = 0; s <= CSCP_TDX_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED; s++)
                        if (s != CSCP_TDX_TCB_REVOKED && nl < sizeof(names))
                                nl += (size_t)snprintf(names + nl, sizeof(names) - nl, "%s%s", nl ? ", " : "",
                                                       cscp_tdx_tcb_status_name((cscp_tdx_tcb_status_t)s));
                return yfail(y, item, "tdx.tcb_status: unknown status '%.64s' (%s; exact case)", p->tdx_tcb.v[i],
                             names);
        }
        p->tdx_has_tcb = true;
        return 0;
}

static int tdx_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;

        for (size_t i = 0; i < TDX_RTMR0; i++)
                if (strcmp(key, tdx_regs[i].key) == 0) {
                        char what[32];
                        snprintf(what, sizeof(what), "tdx.%s", tdx_regs[i].key);
                        return get_mr_list(y, v, what, &p->tdx_mr[i]);
                }
        if (strcmp(key, "rtmrs") == 0)
                return each_pair(y, v, "tdx.rtmrs", tdx_rtmrs, p);
        if (strcmp(key, "ccel_rtmrs") == 0)
                return each_pair(y, v, "tdx.ccel_rtmrs", tdx_ccel_rtmrs, p);
        if (strcmp(key, "allow_debug") == 0)
                return get_bool(y, v, "tdx.allow_debug", &p->tdx_allow_debug);
        if (strcmp(key, "tcb_status") == 0)
                return tdx_tcb_status(y, v, p);
        return yfail(y, k,
                     "tdx: unknown key '%s' (mrtd, rtmrs, ccel_rtmrs, mrseam, mrsignerseam, mrconfigid, mrowner, "
                     "mrownerconfig, allow_debug, tcb_status)",
                     key);
}

static int top_section(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_policy_t *p = ud;
        unsigned long ver;
        int r;

        if (strcmp(key, "version") == 0) {
                if ((r = get_uint(y, v, "version", 1000, &ver)) < 0)
                        return r;
                return ver == 1 ? 0 : yfail(y, v, "version: %lu is not supported (1)", ver);
        }
        if (strcmp(key, "boot") == 0) {
                p->has_boot = true;
                return each_pair(y, v, "boot", boot_section, p);
        }
        if (strcmp(key, "ima") == 0) {
                p->has_ima = true;
                return each_pair(y, v, "ima", ima_section, p);
        }
        if (strcmp(key, "container") == 0) {
                p->has_container = true;
                return each_pair(y, v, "container", container_section, p);
        }
        if (strcmp(key, "resets") == 0) {
                p->has_resets = true;
                return each_pair(y, v, "resets", resets_section, p);
        }
        if (strcmp(key, "tdx") == 0) {
                p->has_tdx = true;
                return each_pair(y, v, "tdx", tdx_section, p);
        }
        return yfail(y, k, "unknown key '%s' (version, boot, ima, container, resets, tdx)", key);
}

/* Loads YAML text and walks its root mapping with top into obj (both policy kinds). */
static int parse_into(const char *text, size_t len, char *err, size_t err_len, const char *what, pair_fn top, void *obj)
{
        yctx_t y = {.err = err, .err_len = err_len};
        int r;

        if (err && err_len)
                err[0] = '\0';
        r = load_document(text, len, &y);
        if (r < 0)
                return r;
        r = each_pair(&y, yaml_document_get_root_node(&y.doc), what, top, obj);
        yaml_document_delete(&y.doc);
        return r;
}

int cscp_policy_parse(const char *text, size_t len, cscp_policy_t **ret, char *err, size_t err_len)
{
        cscp_policy_t *p;
        int r;

        if (!text || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        r = parse_into(text, len, err, err_len, "policy", top_section, p);
        if (r < 0) {
                cscp_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

static int load_file(const char *path, char **ret, size_t *ret_len, char *err, size_t err_len)
{
        uint8_t *buf;
        size_t len;
        int r = cscp_file_read(path, CSCP_POLICY_MAX_BYTES, &buf, &len);

        if (r < 0) {
                if (err && err_len)
                        snprintf(err, err_len, "%s: %s", path, cscp_strerror(r));
                return r;
        }
        *ret = (char *)buf;
        *ret_len = len;
        return 0;
}

int cscp_policy_load(const char *path, cscp_policy_t **ret, char *err, size_t err_len)
{
        char *text;
        size_t len;
        int r = load_file(path, &text, &len, err, err_len);

        if (r < 0)
                return r;
        r = cscp_policy_parse(text, len, ret, err, err_len);
        free(text);
        return r;
}

/* -------------------------------------------------------------- IMA fields */

static uint32_t rd32(const uint8_t *p, bool swap)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return swap ? __builtin_bswap32(v) : v;
}

/* Splits template data into its u32-length-prefixed fields; false if they do not tile the data exactly. */
static bool split_fields(const uint8_t *d, size_t len, bool swap, const uint8_t **f, size_t *fl, size_t max,
                         size_t *ret_n)
{
        size_t off = 0, n = 0;

        while (off < len) {
                if (n == max || len - off < 4)
                        return false;
                uint32_t l = rd32(d + off, swap);
                off += 4;
                if (l > len - off)
                        return false;
                f[n] = d + off;
                fl[n] = l;
                n++;
                off += l;
        }
        *ret_n = n;
        return true;
}

static int set_path(cscp_ima_entry_t *e, size_t at, const uint8_t *s, size_t len, const char **ret)
{
        if (len && s[len - 1] == '\0')
                len--;
        if (memchr(s, '\0', len) || at + len + 1 > sizeof(e->buf))
                return CSCP_E_PROTO;
        memcpy(e->buf + at, s, len);
        e->buf[at + len] = '\0';
        *ret = e->buf + at;
        return (int)(len + 1);
}

int cscp_ima_entry_parse(const cscp_event_t *ev, cscp_ima_entry_t *ret)
{
        const uint8_t *f[8];
        size_t fl[8], n = 0, di, ni, si = SIZE_MAX, ci = SIZE_MAX;
        const char *t;
        cscp_ima_entry_t *e = ret;
        int r;

        if (!ev || !ret || !ev->kind)
                return -EINVAL;
        t = ev->kind;
        memset(e, 0, offsetof(cscp_ima_entry_t, buf));
        e->template_name = t;
        if (strcmp(t, "ima") == 0) {
                /* d (20 bytes, no length) || u32 length || name. */
                bool ok = false;
                for (int swap = 0; swap < 2 && !ok; swap++) {
                        if (ev->data_len < 24)
                                break;
                        uint32_t l = rd32(ev->data + 20, swap);
                        if (l == ev->data_len - 24) {
                                ok = true;
                                f[1] = ev->data + 24;
                                fl[1] = l;
                        }
                }
                if (!ok)
                        return CSCP_E_PROTO;
                e->hash_alg = TPM2_ALG_SHA1;
                e->digest = ev->data;
                e->digest_len = 20;
                r = set_path(e, 0, f[1], fl[1], &e->path);
                return r < 0 ? r : 0;
        }
        if (strcmp(t, "ima-ng") == 0 || strcmp(t, "ima-ngv2") == 0)
                di = 0, ni = 1;
        else if (strcmp(t, "ima-sig") == 0 || strcmp(t, "ima-sigv2") == 0 || strcmp(t, "ima-modsig") == 0)
                di = 0, ni = 1, si = 2;
        else if (strcmp(t, "ima-buf") == 0)
                di = 0, ni = 1;
        else if (strcmp(t, "ima-cgpath") == 0 || strcmp(t, "ima-dep-cgn") == 0)
                ci = 1, di = 2, ni = 3;
        else
                return CSCP_E_UNSUPPORTED;
        if (!split_fields(ev->data, ev->data_len, false, f, fl, 8, &n) &&
            !split_fields(ev->data, ev->data_len, true, f, fl, 8, &n))
                return CSCP_E_PROTO;
        if (n <= ni || (si != SIZE_MAX && n <= si))
                return CSCP_E_PROTO;
        /* d-ng: "<alg>:\0<digest>"; d-ngv2: "<ima|verity>:<alg>:\0<digest>". */
        {
                const uint8_t *d = f[di];
                const uint8_t *nul = memchr(d, '\0', fl[di]);
                char prefix[32];
                size_t pl;
                if (!nul || (pl = (size_t)(nul - d)) < 2 || pl >= sizeof(prefix) || d[pl - 1] != ':')
                        return CSCP_E_PROTO;
                memcpy(prefix, d, pl - 1);
                prefix[pl - 1] = '\0';
                const char *alg = strrchr(prefix, ':');
                alg = alg ? alg + 1 : prefix;
                e->hash_alg = cscp_hash_alg_from_name(alg);
                if (!e->hash_alg && strcmp(alg, "md5") != 0)
                        return CSCP_E_UNSUPPORTED;
                e->digest = nul + 1;
                e->digest_len = fl[di] - pl - 1;
        }
        r = set_path(e, 0, f[ni], fl[ni], &e->path);
        if (r < 0)
                return r;
        if (ci != SIZE_MAX) {
                int r2 = set_path(e, (size_t)r, f[ci], fl[ci], &e->cgroup);
                if (r2 < 0)
                        return r2;
        }
        if (si != SIZE_MAX && fl[si] > 0) {
                e->sig = f[si];
                e->sig_len = fl[si];
        }
        return 0;
}

/* --------------------------------------------------------------- appraisal */

struct cscp_appraisal {
        const cscp_policy_t *p;
        cscp_violation_t *v;
        size_t n, cap;
        char *log;
        cscp_eventlog_format_t format;
};

void cscp_policy_resets(const cscp_policy_t *p, bool *ret_allow_reboot, bool *ret_allow_restart)
{
        *ret_allow_reboot = p && p->allow_reboot;
        *ret_allow_restart = p && p->allow_restart;
}

int cscp_appraisal_new(const cscp_policy_t *p, cscp_appraisal_t **ret)
{
        cscp_appraisal_t *a;

        if (!p || !ret)
                return -EINVAL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->p = p;
        *ret = a;
        return 0;
}

void cscp_appraisal_free(cscp_appraisal_t *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n; i++) {
                free(a->v[i].rule);
                free(a->v[i].log);
                free(a->v[i].detail);
        }
        free(a->v);
        free(a->log);
        free(a);
}

static int vviolate(cscp_appraisal_t *a, const char *log, const char *rule, const cscp_event_t *ev, const char *fmt,
                    va_list ap) __attribute__((format(printf, 5, 0)));
static int vviolate(cscp_appraisal_t *a, const char *log, const char *rule, const cscp_event_t *ev, const char *fmt,
                    va_list ap)
{
        cscp_violation_t *v;
        int k;

        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 16;
                cscp_violation_t *nv;
                if (cap > CSCP_POLICY_MAX_ENTRIES)
                        return CSCP_E_TOO_BIG;
                nv = realloc(a->v, cap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                a->v = nv;
                a->cap = cap;
        }
        v = &a->v[a->n];
        memset(v, 0, sizeof(*v));
        v->rule = strdup(rule);
        v->log = strdup(log ? log : "");
        v->event = ev ? (int64_t)ev->index : -1;
        v->offset = ev ? ev->offset : 0;
        k = vasprintf(&v->detail, fmt, ap);
        if (k >= 0)
                v->detail = cscp_text_sanitize(v->detail); /* details quote log contents */
        if (!v->rule || !v->log || k < 0 || !v->detail) {
                free(v->rule);
                free(v->log);
                if (k >= 0)
                        free(v->detail);
                return -ENOMEM;
        }
        a->n++;
        return 0;
}

/* A violation in the current log. */
static int violate(cscp_appraisal_t *a, const char *rule, const cscp_event_t *ev, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int violate(cscp_appraisal_t *a, const char *rule, const cscp_event_t *ev, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vviolate(a, a->log, rule, ev, fmt, ap);
        va_end(ap);
        return r;
}

/* A violation about a whole object named log (not an event of the current log). */
static int violate_in(cscp_appraisal_t *a, const char *log, const char *rule, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int violate_in(cscp_appraisal_t *a, const char *log, const char *rule, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vviolate(a, log, rule, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int cscp_appraisal_log(cscp_appraisal_t *a, const char *name, cscp_eventlog_format_t format)
{
        char *n;

        if (!a || !name)
                return -EINVAL;
        n = strdup(name);
        if (!n)
                return -ENOMEM;
        free(a->log);
        a->log = n;
        a->format = format;
        return 0;
}

static bool digest_in(const digest_ref_t *list, size_t n, uint16_t alg, const uint8_t *d, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (list[i].alg == alg && list[i].len == len && memcmp(list[i].d, d, len) == 0)
                        return true;
        return false;
}

static bool matches_any(const strlist_t *l, const char *s)
{
        for (size_t i = 0; i < l->n; i++)
                if (fnmatch(l->v[i], s, 0) == 0)
                        return true;
        return false;
}

static int appraise_boot(cscp_appraisal_t *a, const cscp_event_t *ev)
{
        const cscp_policy_t *p = a->p;

        if (!ev->extend || ev->reg != CSCP_EVENT_PCR)
                return 0;
        for (size_t i = 0; i < p->n_boot_events; i++) {
                const boot_event_rule_t *rule = &p->boot_events[i];
                bool checked = false, ok = false;
                if (rule->pcr != ev->pcr)
                        continue;
                for (size_t k = 0; k < ev->n_digests; k++)
                        for (size_t j = 0; j < rule->n; j++)
                                if (rule->digests[j].alg == ev->digests[k].alg) {
                                        checked = true;
                                        if (digest_in(rule->digests, rule->n, ev->digests[k].alg, ev->digests[k].digest,
                                                      ev->digests[k].size))
                                                ok = true;
                                }
                if (!checked || !ok) {
                        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1] = "";
                        if (ev->n_digests)
                                cscp_hex_encode(ev->digests[0].digest, ev->digests[0].size, hex);
                        return violate(a, "boot.events", ev, "PCR %u event %s (%s:%s) is not an allowed digest",
                                       ev->pcr, ev->kind,
                                       ev->n_digests ? cscp_hash_alg_name(ev->digests[0].alg) : "none", hex);
                }
        }
        return 0;
}

static int appraise_ima(cscp_appraisal_t *a, const cscp_event_t *ev)
{
        const cscp_policy_t *p = a->p;
        cscp_ima_entry_t *e;
        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1];
        bool zero = true;
        int r;

        e = malloc(sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = cscp_ima_entry_parse(ev, e);
        if (r < 0) {
                r = violate(a, "ima.entry", ev, "template %s: entry cannot be read (%s)", ev->kind, cscp_strerror(r));
                goto out;
        }
        if (matches_any(&p->ima_exclude, e->path))
                goto out;
        for (size_t i = 0; i < e->digest_len; i++)
                zero = zero && e->digest[i] == 0;
        if (zero) {
                r = violate(a, "ima.violation", ev,
                            "%s: measurement violation (file changed or open for write "
                            "while measured)",
                            e->path);
                goto out;
        }
        if (e->digest_len <= CSCP_EVENT_MAX_DIGEST)
                cscp_hex_encode(e->digest, e->digest_len, hex);
        else
                snprintf(hex, sizeof(hex), "(%zu bytes)", e->digest_len);
        {
                ima_allow_t key = {.path = (char *)e->path};
                const ima_allow_t *found =
                        p->n_ima_allow ? bsearch(&key, p->ima_allow, p->n_ima_allow, sizeof(*p->ima_allow), cmp_allow)
                                       : NULL;
                if (found && !digest_in(found->digests, found->n, e->hash_alg, e->digest, e->digest_len))
                        r = violate(a, "ima.allow", ev, "%s: digest %s:%s is not one of the %zu allowed", e->path,
                                    e->hash_alg ? cscp_hash_alg_name(e->hash_alg) : "md5", hex, found->n);
                else if (!found && !p->ima_allow_unknown)
                        r = violate(a, "ima.allow", ev, "%s (%s:%s) is not in the allowlist", e->path,
                                    e->hash_alg ? cscp_hash_alg_name(e->hash_alg) : "md5", hex);
                if (r < 0)
                        goto out;
        }
        if (matches_any(&p->ima_require_sig, e->path)) {
                if (!e->sig) {
                        r = violate(a, "ima.signature", ev, "%s: no signature (template %s)", e->path,
                                    e->template_name);
                        goto out;
                }
                /* security.ima v2 signature: type 0x03, version 2, hash algo, u32 BE keyid, u16 size, sig. */
                if (p->n_ima_keyids) {
                        bool known = false;
                        uint32_t keyid = 0;
                        if (e->sig_len >= 9 && e->sig[0] == 0x03 && e->sig[1] == 2) {
                                keyid = (uint32_t)e->sig[3] << 24 | (uint32_t)e->sig[4] << 16 |
                                        (uint32_t)e->sig[5] << 8 | e->sig[6];
                                for (size_t i = 0; i < p->n_ima_keyids; i++)
                                        known = known || p->ima_keyids[i] == keyid;
                        }
                        if (!known)
                                r = violate(a, "ima.keyids", ev, "%s: signed by key id %08x, not an accepted key",
                                            e->path, keyid);
                }
        }
out:
        free(e);
        return r;
}

static int appraise_cm(cscp_appraisal_t *a, const cscp_event_t *ev)
{
        const cscp_policy_t *p = a->p;
        cscp_cm_record_t rec;
        char *s = NULL;
        int r = 0;

        if (ev->type != CSCP_CEL_CM_TLV || !ev->data)
                return 0;
        if (cscp_cm_decode(ev->data, ev->data_len, &rec) < 0)
                return violate(a, "container.record", ev, "CM_TLV content cannot be decoded");
#define FIELD(i) (int)rec.f[i].len, (rec.f[i].data ? (const char *)rec.f[i].data : "")
        switch (rec.kind) {
        case CSCP_CM_CONFIG:
        case CSCP_CM_LAYER: {
                const strlist_t *l = rec.kind == CSCP_CM_CONFIG ? &p->configs : &p->layers;
                const char *rule = rec.kind == CSCP_CM_CONFIG ? "container.configs" : "container.layers";
                if (!l->n)
                        break;
                if (!rec.f[CSCP_CM_F_DIGEST].data)
                        return violate(a, rule, ev, "record has no digest");
                if (asprintf(&s, "%.*s", FIELD(CSCP_CM_F_DIGEST)) < 0)
                        return -ENOMEM;
                bool ok = false;
                for (size_t i = 0; i < l->n; i++)
                        ok = ok || strcmp(l->v[i], s) == 0;
                if (!ok)
                        r = violate(a, rule, ev, "%s is not an allowed digest", s);
                break;
        }
        case CSCP_CM_PROCESS: {
                const char *what = rec.f[CSCP_CM_F_EVENT].data ? (const char *)rec.f[CSCP_CM_F_EVENT].data : "";
                size_t wl = rec.f[CSCP_CM_F_EVENT].len;
                bool is_env = wl == 3 && memcmp(what, "env", 3) == 0;
                const strlist_t *l = is_env ? &p->env : &p->args;
                if (!l->n)
                        break;
                if (rec.f[CSCP_CM_F_NAME].data && is_env) {
                        if (asprintf(&s, "%.*s=%.*s", FIELD(CSCP_CM_F_NAME), FIELD(CSCP_CM_F_VALUE)) < 0)
                                return -ENOMEM;
                } else if (asprintf(&s, "%.*s", FIELD(CSCP_CM_F_VALUE)) < 0)
                        return -ENOMEM;
                if (strlen(s) != (is_env && rec.f[CSCP_CM_F_NAME].data
                                          ? rec.f[CSCP_CM_F_NAME].len + 1 + rec.f[CSCP_CM_F_VALUE].len
                                          : rec.f[CSCP_CM_F_VALUE].len))
                        r = violate(a, is_env ? "container.env" : "container.args", ev, "value contains NUL");
                else if (!matches_any(l, s))
                        r = violate(a, is_env ? "container.env" : "container.args", ev, "'%s' is not allowed", s);
                break;
        }
        case CSCP_CM_VERSION:
                if (!p->runtimes.n)
                        break;
                if (asprintf(&s, "%.*s %.*s", FIELD(CSCP_CM_F_NAME), FIELD(CSCP_CM_F_VALUE)) < 0)
                        return -ENOMEM;
                if (!matches_any(&p->runtimes, s))
                        r = violate(a, "container.runtimes", ev, "'%s' is not an allowed runtime", s);
                break;
        case CSCP_CM_CONTAINER:
        case CSCP_CM_POD:
        case CSCP_CM_CLUSTER:
        default:
                break;
        }
#undef FIELD
        free(s);
        return r;
}

int cscp_appraisal_event(cscp_appraisal_t *a, const cscp_event_t *ev)
{
        if (!a || !ev)
                return -EINVAL;
        switch (a->format) {
        case CSCP_EVENTLOG_TCG:
                return a->p->has_boot ? appraise_boot(a, ev) : 0;
        case CSCP_EVENTLOG_IMA:
        case CSCP_EVENTLOG_IMA_BINARY:
                return a->p->has_ima ? appraise_ima(a, ev) : 0;
        case CSCP_EVENTLOG_CEL_TLV:
        case CSCP_EVENTLOG_CEL_JSON:
                return a->p->has_container ? appraise_cm(a, ev) : 0;
        case CSCP_EVENTLOG_AUTO:
        case _CSCP_EVENTLOG_FORMAT_MAX:
        default:
                return -EINVAL;
        }
}

int cscp_appraisal_end_log(cscp_appraisal_t *a, const cscp_replay_t *rp)
{
        int r = 0;

        if (!a)
                return -EINVAL;
        if (!rp || a->format != CSCP_EVENTLOG_TCG)
                return 0;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS && r >= 0; b++)
                for (unsigned i = 0; i < CSCP_PCR_COUNT && r >= 0; i++) {
                        uint8_t v[CSCP_EVENT_MAX_DIGEST];
                        size_t len;
                        char want[2 * CSCP_EVENT_MAX_DIGEST + 1], got[2 * CSCP_EVENT_MAX_DIGEST + 1];
                        if (!a->p->boot_pcr[b][i].set)
                                continue;
                        if (cscp_replay_pcr(rp, banks[b], i, v, &len) < 0) {
                                r = violate(a, "boot.pcrs", NULL, "the log has no %s bank",
                                            cscp_hash_alg_name(banks[b]));
                                break;
                        }
                        if (memcmp(v, a->p->boot_pcr[b][i].v, len) != 0) {
                                cscp_hex_encode(a->p->boot_pcr[b][i].v, len, want);
                                cscp_hex_encode(v, len, got);
                                r = violate(a, "boot.pcrs", NULL, "%s PCR %u replays to %s, the policy expects %s",
                                            cscp_hash_alg_name(banks[b]), i, got, want);
                        }
                }
        return r;
}

int cscp_appraisal_resets(cscp_appraisal_t *a, uint32_t last_reset, uint32_t last_restart, uint32_t reset,
                          uint32_t restart)
{
        if (!a)
                return -EINVAL;
        if (reset < last_reset || (reset == last_reset && restart < last_restart))
                return violate(a, "resets", NULL,
                               "counters went back: (resetCount %u, restartCount %u) after (%u, %u): rollback or "
                               "another TPM",
                               reset, restart, last_reset, last_restart);
        if (reset > last_reset && !a->p->allow_reboot)
                return violate(a, "resets.allow_reboot", NULL, "the TPM was reset (resetCount %u -> %u)", last_reset,
                               reset);
        if (reset == last_reset && restart > last_restart && !a->p->allow_restart)
                return violate(a, "resets.allow_restart", NULL, "the TPM was restarted (restartCount %u -> %u)",
                               last_restart, restart);
        return 0;
}

bool cscp_policy_has_tdx(const cscp_policy_t *p)
{
        return p && p->has_tdx;
}

bool cscp_policy_has_host_pcrs(const cscp_policy_t *p)
{
        if (!p)
                return false;
        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++)
                for (unsigned i = 0; i < CSCP_PCR_COUNT; i++)
                        if (p->boot_pcr[b][i].set)
                                return true;
        return false;
}

bool cscp_policy_tdx_tcb_allowed(const cscp_policy_t *p, const char *const **ret, size_t *ret_n)
{
        bool set = p && p->tdx_has_tcb;

        if (ret)
                *ret = set ? (const char *const *)p->tdx_tcb.v : NULL;
        if (ret_n)
                *ret_n = set ? p->tdx_tcb.n : 0;
        return set;
}

/* At most this many allowed values are spelled out in a violation. */
#define TDX_LISTED_MAX 4

/* One register against its allowed values: a violation naming it, its value and the allowed ones. */
static int check_mr(cscp_appraisal_t *a, const char *log, const char *rule, const char *reg, const char *verb,
                    const mr_list_t *l, const uint8_t *got)
{
        char hex[2 * TDX_MR_SIZE + 1], want[TDX_LISTED_MAX * (2 * TDX_MR_SIZE + 2) + 32];
        size_t wl = 0;

        if (!l->n)
                return 0;
        for (size_t j = 0; j < l->n; j++)
                if (memcmp(l->v[j], got, TDX_MR_SIZE) == 0)
                        return 0;
        cscp_hex_encode(got, TDX_MR_SIZE, hex);
        for (size_t j = 0; j < l->n && j < TDX_LISTED_MAX; j++) {
                cscp_hex_encode(l->v[j], TDX_MR_SIZE, want + wl);
                wl += 2 * TDX_MR_SIZE;
                if (j + 1 < l->n && j + 1 < TDX_LISTED_MAX)
                        want[wl++] = ',', want[wl++] = ' ';
        }
        want[wl] = '\0';
        if (l->n > TDX_LISTED_MAX)
                snprintf(want + wl, sizeof(want) - wl, ", ... (%zu more)", l->n - TDX_LISTED_MAX);
        return l->n == 1 ? violate_in(a, log, rule, "%s %s %s, the policy expects %s", reg, verb, hex, want)
                         : violate_in(a, log, rule, "%s %s %s, not one of the %zu the policy allows: %s", reg, verb,
                                      hex, l->n, want);
}

int cscp_appraisal_tdx(cscp_appraisal_t *a, const char *name, const cscp_tdx_quote_t *q)
{
        const cscp_policy_t *p;
        int r = 0;

        if (!a)
                return -EINVAL;
        p = a->p;
        if (!name)
                name = "tdx-quote";
        if (!p->has_tdx)
                return 0;
        if (!q)
                return violate_in(a, name, "tdx",
                                  "the policy names TD reference values (tdx), and the host gave no TD quote");
        for (size_t i = 0; i < TDX_N && r >= 0; i++)
                r = check_mr(a, name, tdx_regs[i].rule, tdx_regs[i].name, "is", &p->tdx_mr[i],
                             (const uint8_t *)q + tdx_regs[i].off);
        if (r >= 0 && (q->td_attributes[0] & 0x01) && !p->tdx_allow_debug) {
                char hex[2 * sizeof(q->td_attributes) + 1];
                cscp_hex_encode(q->td_attributes, sizeof(q->td_attributes), hex);
                r = violate_in(a, name, "tdx.allow_debug",
                               "the TD runs in debug mode (TDATTRIBUTES %s, DEBUG bit 0 set): its host can read and "
                               "change its memory and registers, so its measurements prove nothing; the policy does "
                               "not allow debug TDs",
                               hex);
        }
        return r;
}

int cscp_appraisal_tdx_ccel(cscp_appraisal_t *a, const char *name, const cscp_replay_t *rp)
{
        const cscp_policy_t *p;
        bool any = false;
        int r = 0;

        if (!a)
                return -EINVAL;
        p = a->p;
        if (!name)
                name = a->log ? a->log : "ccel";
        for (size_t i = 0; i < 4; i++)
                any = any || p->tdx_ccel[i].n;
        if (!any)
                return 0;
        if (!rp)
                return violate_in(a, name, "tdx.ccel_rtmrs",
                                  "the policy names the values the CCEL replays to (tdx.ccel_rtmrs), and the host "
                                  "sent no CCEL");
        for (unsigned i = 0; i < 4 && r >= 0; i++) {
                uint8_t v[CSCP_EVENT_MAX_DIGEST];
                size_t len = 0;
                char reg[40];

                if (!p->tdx_ccel[i].n)
                        continue;
                if (cscp_replay_pcr(rp, TPM2_ALG_SHA384, TDX_CC_RTMR0 + i, v, &len) < 0 || len != TDX_MR_SIZE)
                        memset(v, 0, sizeof(v)); /* never extended: an RTMR starts at zero */
                snprintf(reg, sizeof(reg), "RTMR%u (CC index %u)", i, TDX_CC_RTMR0 + i);
                r = check_mr(a, name, "tdx.ccel_rtmrs", reg, "replays from the CCEL to", &p->tdx_ccel[i], v);
        }
        return r;
}

const cscp_violation_t *cscp_appraisal_violations(const cscp_appraisal_t *a, size_t *ret_n)
{
        if (!a || !ret_n)
                return NULL;
        *ret_n = a->n;
        return a->v;
}

/* ------------------------------------------------------ measurement policy */

void cscp_measure_policy_free(cscp_measure_policy_t *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_processes; i++)
                free(p->processes[i].path);
        free(p->processes);
        free(p);
}

static int mp_process(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_measure_process_t *pr = ud;

        if (strcmp(key, "path") == 0 || strcmp(key, "name") == 0) {
                if (pr->path)
                        return yfail(y, k, "measure.system.processes: give path once");
                int r = get_string(y, v, "measure.system.processes.path", &pr->path);
                if (r < 0)
                        return r;
                if (pr->path[0] != '/')
                        return yfail(y, v, "measure.system.processes.path: '%s' is not an absolute path", pr->path);
                return 0;
        }
        if (strcmp(key, "withParameter") == 0)
                return get_bool(y, v, "measure.system.processes.withParameter", &pr->with_parameter);
        return yfail(y, k, "measure.system.processes: unknown key '%s' (path, withParameter)", key);
}

static int mp_system(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_measure_policy_t *p = ud;
        int r;

        if (strcmp(key, "processes") != 0)
                return yfail(y, k, "measure.system: unknown key '%s' (processes)", key);
        if ((r = expect(y, v, YAML_SEQUENCE_NODE, "measure.system.processes")) < 0)
                return r;
        size_t cnt = SEQ_LEN(v);
        if ((r = check_count(y, v, cnt)) < 0)
                return r;
        p->processes = calloc(cnt ? cnt : 1, sizeof(*p->processes));
        if (!p->processes)
                return -ENOMEM;
        for (size_t i = 0; i < cnt; i++) {
                const yaml_node_t *item = node(y, v->data.sequence.items.start[i]);
                cscp_measure_process_t *pr = &p->processes[p->n_processes++];
                if (scalar(item)) {
                        if ((r = get_string(y, item, "measure.system.processes", &pr->path)) < 0)
                                return r;
                        if (pr->path[0] != '/')
                                return yfail(y, item, "measure.system.processes: '%s' is not an absolute path",
                                             pr->path);
                        continue;
                }
                if ((r = each_pair(y, item, "measure.system.processes", mp_process, pr)) < 0)
                        return r;
                if (!pr->path)
                        return yfail(y, item, "measure.system.processes: each entry needs a path");
        }
        return 0;
}

static int mp_container(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        if (strcmp(key, "isolated") == 0)
                return get_bool(y, v, "measure.container.isolated", &((cscp_measure_policy_t *)ud)->container_isolated);
        return yfail(y, k, "measure.container: unknown key '%s' (isolated)", key);
}

static int mp_kubernetes(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        if (strcmp(key, "pods") == 0)
                return get_bool(y, v, "measure.kubernetes.pods", &((cscp_measure_policy_t *)ud)->kubernetes_pods);
        return yfail(y, k, "measure.kubernetes: unknown key '%s' (pods)", key);
}

static int mp_measure(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        if (strcmp(key, "system") == 0)
                return each_pair(y, v, "measure.system", mp_system, ud);
        if (strcmp(key, "container") == 0)
                return each_pair(y, v, "measure.container", mp_container, ud);
        if (strcmp(key, "kubernetes") == 0)
                return each_pair(y, v, "measure.kubernetes", mp_kubernetes, ud);
        return yfail(y, k, "measure: unknown key '%s' (system, container, kubernetes)", key);
}

static int mp_top(yctx_t *y, const char *key, const yaml_node_t *k, const yaml_node_t *v, void *ud)
{
        cscp_measure_policy_t *p = ud;
        const char *s = scalar(v);

        if (strcmp(key, "backend") == 0) {
                if (!s || (strcmp(s, "tpm") != 0 && strcmp(s, "tdx") != 0))
                        return yfail(y, v, "backend: expected tpm or tdx");
                snprintf(p->backend, sizeof(p->backend), "%s", s);
                return 0;
        }
        if (strcmp(key, "hashAlgorithm") == 0) {
                uint16_t alg = s ? cscp_hash_alg_from_name(s) : 0;
                if (!alg)
                        return yfail(y, v, "hashAlgorithm: expected sha256, sha384 or sha512");
                if (alg == TPM2_ALG_SHA1)
                        return yfail(y, v, "hashAlgorithm: sha1 is refused (collisions are practical)");
                p->hash_alg = alg;
                return 0;
        }
        if (strcmp(key, "measure") == 0)
                return each_pair(y, v, "measure", mp_measure, p);
        return yfail(y, k, "unknown key '%s' (backend, hashAlgorithm, measure)", key);
}

int cscp_measure_policy_parse(const char *text, size_t len, cscp_measure_policy_t **ret, char *err, size_t err_len)
{
        cscp_measure_policy_t *p;
        int r;

        if (!text || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        snprintf(p->backend, sizeof(p->backend), "tpm");
        p->hash_alg = TPM2_ALG_SHA256;
        r = parse_into(text, len, err, err_len, "measurement policy", mp_top, p);
        if (r < 0) {
                cscp_measure_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int cscp_measure_policy_load(const char *path, cscp_measure_policy_t **ret, char *err, size_t err_len)
{
        char *text;
        size_t len;
        int r = load_file(path, &text, &len, err, err_len);

        if (r < 0)
                return r;
        r = cscp_measure_policy_parse(text, len, ret, err, err_len);
        free(text);
        return r;
}
