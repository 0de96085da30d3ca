/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the OCI state and config.json for cscp-oci-hook (hook-oci.h).
 * json-c with a depth limit; every size, count and string length is checked
 * before it is kept; strings with an embedded NUL are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core.h"
#include "hook-oci.h"

static int fail(char *err, size_t err_len, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_len, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
        return r;
}

static int parse_json(const char *buf, size_t len, const char *what, struct json_object **ret, char *err,
                      size_t err_len)
{
        struct json_tokener *tok = json_tokener_new_ex(HOOK_JSON_DEPTH);
        struct json_object *j;
        enum json_tokener_error e;
        size_t used;

        if (!tok)
                return -ENOMEM;
        if (len > (size_t)INT32_MAX)
                return fail(err, err_len, -EFBIG, "%s is too large", what);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        j = json_tokener_parse_ex(tok, buf, (int)len);
        e = json_tokener_get_error(tok);
        used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!j || e != json_tokener_success) {
                json_object_put(j);
                return fail(err, err_len, -EINVAL, "%s is not valid JSON: %s (at byte %zu)", what,
                            e == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(e), used);
        }
        for (; used < len; used++)
                if (buf[used] != ' ' && buf[used] != '\n' && buf[used] != '\t' && buf[used] != '\r') {
                        json_object_put(j);
                        return fail(err, err_len, -EINVAL, "%s: trailing bytes after the JSON value (at byte %zu)",
                                    what, used);
                }
        if (!json_object_is_type(j, json_type_object)) {
                json_object_put(j);
                return fail(err, err_len, -EINVAL, "%s is not a JSON object", what);
        }
        *ret = j;
        return 0;
}

/* A string member (NULL when absent); -EINVAL when present but not a string, too long or holding a NUL. */
static int get_str(struct json_object *o, const char *key, const char *what, const char **ret, char *err,
                   size_t err_len)
{
        struct json_object *v;
        const char *s;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return fail(err, err_len, -EINVAL, "%s: \"%s\" is not a string", what, key);
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s))
                return fail(err, err_len, -EINVAL, "%s: \"%s\" contains a NUL character", what, key);
        if (strlen(s) > VTPMD_MAX_STRING)
                return fail(err, err_len, -E2BIG, "%s: \"%s\" is longer than %d bytes", what, key, VTPMD_MAX_STRING);
        *ret = s;
        return 0;
}

static int dup_str(const char *s, char **ret)
{
        *ret = strdup(s ? s : "");
        return *ret ? 0 : -ENOMEM;
}

static void strv_free(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* ---- state ---------------------------------------------------------------- */

void hook_state_free(hook_state_t *s)
{
        if (!s)
                return;
        free(s->oci_version);
        free(s->id);
        free(s->status);
        free(s->bundle);
        *s = (hook_state_t){0};
}

int hook_state_parse(const char *buf, size_t len, size_t id_max, hook_state_t *ret, char *err, size_t err_len)
{
        struct json_object *j = NULL, *v;
        const char *ver, *id, *status, *bundle;
        hook_state_t s = {0};
        int r;

        if (len == 0)
                return fail(err, err_len, -EINVAL, "no OCI state on stdin (the runtime passes it to the hook)");
        if (len > HOOK_STATE_MAX)
                return fail(err, err_len, -E2BIG, "the OCI state on stdin is over %u bytes", HOOK_STATE_MAX);
        r = parse_json(buf, len, "the OCI state on stdin", &j, err, err_len);
        if (r < 0)
                return r;
        if ((r = get_str(j, "ociVersion", "OCI state", &ver, err, err_len)) < 0 ||
            (r = get_str(j, "id", "OCI state", &id, err, err_len)) < 0 ||
            (r = get_str(j, "status", "OCI state", &status, err, err_len)) < 0 ||
            (r = get_str(j, "bundle", "OCI state", &bundle, err, err_len)) < 0)
                goto out;
        if (!id) {
                r = fail(err, err_len, -EINVAL, "OCI state has no \"id\"");
                goto out;
        }
        if (vtpmd_container_id_check(id, id_max) < 0) {
                r = fail(err, err_len, -EINVAL,
                         "OCI state: container id '%.80s' is not 1..%zu characters [A-Za-z0-9_.+-] starting with a "
                         "letter or digit",
                         id, id_max);
                goto out;
        }
        if (!bundle || bundle[0] != '/') {
                r = fail(err, err_len, -EINVAL, "OCI state has no absolute \"bundle\" path");
                goto out;
        }
        if (json_object_object_get_ex(j, "pid", &v) && !json_object_is_type(v, json_type_null)) {
                int64_t pid;
                if (!json_object_is_type(v, json_type_int)) {
                        r = fail(err, err_len, -EINVAL, "OCI state: \"pid\" is not an integer");
                        goto out;
                }
                pid = json_object_get_int64(v);
                if (pid < 0 || pid > 4194304) {
                        r = fail(err, err_len, -EINVAL, "OCI state: \"pid\" %lld is out of range", (long long)pid);
                        goto out;
                }
                s.pid = (pid_t)pid;
        }
        if ((r = dup_str(ver, &s.oci_version)) < 0 || (r = dup_str(id, &s.id)) < 0 ||
            (r = dup_str(status, &s.status)) < 0 || (r = dup_str(bundle, &s.bundle)) < 0)
                goto out;
        *ret = s;
        s = (hook_state_t){0};
out:
        hook_state_free(&s);
        json_object_put(j);
        return r;
}

int hook_state_read(int fd, size_t id_max, hook_state_t *ret, char *err, size_t err_len)
{
        char *buf = malloc(HOOK_STATE_MAX + 1);
        size_t len = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, HOOK_STATE_MAX + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = fail(err, err_len, -errno, "cannot read the OCI state from stdin: %s", strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > HOOK_STATE_MAX) {
                        r = fail(err, err_len, -E2BIG, "the OCI state on stdin is over %u bytes", HOOK_STATE_MAX);
                        goto out;
                }
        }
        r = hook_state_parse(buf, len, id_max, ret, err, err_len);
out:
        free(buf);
        return r;
}

/* ---- config.json ------------------------------------------------------------ */

void hook_config_free(hook_config_t *c)
{
        if (!c)
                return;
        free(c->oci_version);
        strv_free(c->args, c->n_args);
        strv_free(c->env, c->n_env);
        free(c->root);
        strv_free(c->ann_keys, c->n_ann);
        strv_free(c->ann_values, c->n_ann);
        strv_free(c->layers, c->n_layers);
        strv_free(c->cc_hooks, c->n_cc_hooks);
        free(c->dev_rules);
        *c = (hook_config_t){0};
}

const char *hook_mode_name(hook_mode_t m)
{
        switch (m) {
        case HOOK_MODE_REQUIRED:
                return "required";
        case HOOK_MODE_OPTIONAL:
                return "optional";
        case HOOK_MODE_DISABLED:
                return "disabled";
        }
        return "?";
}

/* process.args / process.env: an array of strings, at most max. */
static int get_strv(struct json_object *o, const char *key, size_t max, char ***ret, size_t *ret_n, char *err,
                    size_t err_len)
{
        struct json_object *a;
        size_t n;
        char **v;

        *ret = NULL;
        *ret_n = 0;
        if (!o || !json_object_object_get_ex(o, key, &a) || json_object_is_type(a, json_type_null))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return fail(err, err_len, -EINVAL, "config.json: process.%s is not an array", key);
        n = json_object_array_length(a);
        if (n > max)
                return fail(err, err_len, -E2BIG, "config.json: process.%s has %zu entries (limit %zu)", key, n, max);
        v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(a, i);
                const char *s;
                if (!json_object_is_type(e, json_type_string)) {
                        strv_free(v, i);
                        return fail(err, err_len, -EINVAL, "config.json: process.%s[%zu] is not a string", key, i);
                }
                s = json_object_get_string(e);
                if ((size_t)json_object_get_string_len(e) != strlen(s) || strlen(s) > VTPMD_MAX_STRING) {
                        strv_free(v, i);
                        return fail(err, err_len, -EINVAL,
                                    "config.json: process.%s[%zu] holds a NUL or is longer than %d bytes", key, i,
                                    VTPMD_MAX_STRING);
                }
                v[i] = strdup(s);
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Annotations the hook measures: the OCI image ones and the CRI runtimes' image keys. */
static bool ann_measured(const char *key)
{
        static const char *const cri[] = {
                "io.kubernetes.cri.image-name",  /* containerd */
                "io.kubernetes.cri-o.ImageName", /* CRI-O */
                "io.kubernetes.cri-o.ImageRef",  /* CRI-O: the image id (its config digest) */
                "io.kubernetes.cri-o.Image",
        };
        if (strncmp(key, "org.opencontainers.image.", 25) == 0)
                return true;
        for (size_t i = 0; i < sizeof(cri) / sizeof(cri[0]); i++)
                if (strcmp(key, cri[i]) == 0)
                        return true;
        return false;
}

static bool is_hex64(const char *s)
{
        for (size_t i = 0; i < 64; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[64] == '\0';
}

/* "sha256:<hex>", "<name>@sha256:<hex>", or (CRI-O ImageRef) a bare 64-hex image id -> "sha256:<hex>". */
static bool ann_digest(const char *key, const char *v, char out[HOOK_DIGEST_LEN + 1])
{
        const char *at = strrchr(v, '@');
        const char *d = at ? at + 1 : v;

        if (strncmp(d, "sha256:", 7) == 0 && is_hex64(d + 7)) {
                memcpy(out, d, HOOK_DIGEST_LEN + 1);
                return true;
        }
        if (strcmp(key, "io.kubernetes.cri-o.ImageRef") == 0 && is_hex64(v)) {
                snprintf(out, HOOK_DIGEST_LEN + 1, "sha256:%s", v);
                return true;
        }
        return false;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int get_annotations(struct json_object *j, hook_config_t *c, char *err, size_t err_len)
{
        static const char *const name_keys[] = {"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName",
                                                "org.opencontainers.image.ref.name",
                                                "org.opencontainers.image.base.name"};
        struct json_object *a;
        size_t n = 0, k = 0;
        char **keys;

        if (!json_object_object_get_ex(j, "annotations", &a) || json_object_is_type(a, json_type_null))
                return 0;
        if (!json_object_is_type(a, json_type_object))
                return fail(err, err_len, -EINVAL, "config.json: \"annotations\" is not an object");
        if ((size_t)json_object_object_length(a) > HOOK_MAX_ANNOTATIONS)
                return fail(err, err_len, -E2BIG, "config.json: more than %d annotations", HOOK_MAX_ANNOTATIONS);
        json_object_object_foreach(a, key, val)
        {
                const char *s;
                if (!json_object_is_type(val, json_type_string))
                        return fail(err, err_len, -EINVAL, "config.json: annotation \"%.80s\" is not a string", key);
                s = json_object_get_string(val);
                if ((size_t)json_object_get_string_len(val) != strlen(s) || strlen(s) > VTPMD_MAX_STRING ||
                    strlen(key) > VTPMD_MAX_STRING)
                        return fail(err, err_len, -EINVAL,
                                    "config.json: annotation \"%.80s\" holds a NUL or is longer than %d bytes", key,
                                    VTPMD_MAX_STRING);
                if (strcmp(key, HOOK_ANNOTATION) == 0) {
                        if (strcmp(s, "required") == 0)
                                c->mode = HOOK_MODE_REQUIRED;
                        else if (strcmp(s, "optional") == 0)
                                c->mode = HOOK_MODE_OPTIONAL;
                        else if (strcmp(s, "disabled") == 0)
                                c->mode = HOOK_MODE_DISABLED;
                        else
                                return fail(err, err_len, -EINVAL,
                                            "config.json: annotation %s is '%.80s'; it takes required, optional or "
                                            "disabled",
                                            HOOK_ANNOTATION, s);
                }
                if (ann_measured(key))
                        n++;
        }
        if (n == 0)
                return 0;
        keys = calloc(n, sizeof(*keys));
        c->ann_values = calloc(n, sizeof(*c->ann_values));
        c->layers = calloc(n, sizeof(*c->layers));
        c->ann_keys = keys;
        if (!keys || !c->ann_values || !c->layers)
                return -ENOMEM;
        json_object_object_foreach(a, key2, val2)
        {
                if (!ann_measured(key2))
                        continue;
                keys[k] = strdup(key2);
                c->n_ann = ++k;
                if (!keys[k - 1])
                        return -ENOMEM;
                (void)val2;
        }
        qsort(keys, n, sizeof(*keys), cmp_str);
        for (size_t i = 0; i < n; i++) {
                struct json_object *v;
                char d[HOOK_DIGEST_LEN + 1];
                bool dup = false;

                json_object_object_get_ex(a, keys[i], &v);
                c->ann_values[i] = strdup(json_object_get_string(v));
                if (!c->ann_values[i])
                        return -ENOMEM;
                if (!ann_digest(keys[i], c->ann_values[i], d))
                        continue;
                for (size_t l = 0; l < c->n_layers; l++)
                        dup = dup || strcmp(c->layers[l], d) == 0;
                if (dup)
                        continue;
                if (c->n_layers >= VTPMD_MAX_LAYERS)
                        return fail(err, err_len, -E2BIG, "config.json: more than %d image digests", VTPMD_MAX_LAYERS);
                c->layers[c->n_layers] = strdup(d);
                if (!c->layers[c->n_layers])
                        return -ENOMEM;
                c->n_layers++;
        }
        for (size_t k2 = 0; k2 < sizeof(name_keys) / sizeof(name_keys[0]) && !c->image_name; k2++)
                for (size_t i = 0; i < c->n_ann; i++)
                        if (strcmp(c->ann_keys[i], name_keys[k2]) == 0 && c->ann_values[i][0]) {
                                c->image_name = c->ann_values[i];
                                break;
                        }
        return 0;
}

/* -1 when absent or null; -EINVAL when not an integer in 0..UINT32_MAX. */
static int get_dev_num(struct json_object *o, const char *key, long *ret)
{
        struct json_object *v;
        int64_t n;

        *ret = -1;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        n = json_object_get_int64(v);
        if (n < 0 || n > (int64_t)UINT32_MAX)
                return -EINVAL;
        *ret = (long)n;
        return 0;
}

/* linux.resources.devices (config-linux.md): kept for the vtpm-proxy frontend's check. */
static int get_device_rules(struct json_object *j, hook_config_t *c, char *err, size_t err_len)
{
        struct json_object *linux_, *res, *devs;
        size_t n;

        if (!json_object_object_get_ex(j, "linux", &linux_) || !json_object_is_type(linux_, json_type_object) ||
            !json_object_object_get_ex(linux_, "resources", &res) || !json_object_is_type(res, json_type_object) ||
            !json_object_object_get_ex(res, "devices", &devs) || json_object_is_type(devs, json_type_null))
                return 0;
        if (!json_object_is_type(devs, json_type_array))
                return fail(err, err_len, -EINVAL, "config.json: linux.resources.devices is not an array");
        n = json_object_array_length(devs);
        if (n > HOOK_MAX_DEVICE_RULES)
                return fail(err, err_len, -E2BIG, "config.json: linux.resources.devices has %zu entries (limit %d)", n,
                            HOOK_MAX_DEVICE_RULES);
        c->dev_rules = calloc(n ? n : 1, sizeof(*c->dev_rules));
        if (!c->dev_rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(devs, i), *v;
                hook_device_rule_t *rule = &c->dev_rules[i];
                const char *type = NULL, *access = NULL;

                if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "allow", &v) ||
                    !json_object_is_type(v, json_type_boolean))
                        return fail(err, err_len, -EINVAL,
                                    "config.json: linux.resources.devices[%zu] is not an object with a boolean "
                                    "\"allow\"",
                                    i);
                rule->allow = json_object_get_boolean(v);
                if (get_str(e, "type", "config.json device rule", &type, err, err_len) < 0 ||
                    get_str(e, "access", "config.json device rule", &access, err, err_len) < 0)
                        return -EINVAL;
                if (type && type[0] && (strlen(type) != 1 || !strchr("acb", type[0])))
                        return fail(err, err_len, -EINVAL,
                                    "config.json: linux.resources.devices[%zu].type '%.8s' is not a, c or b", i, type);
                rule->type = type && type[0] ? type[0] : 'a';
                if (access && (strlen(access) > 3 || strspn(access, "rwm") != strlen(access)))
                        return fail(err, err_len, -EINVAL,
                                    "config.json: linux.resources.devices[%zu].access '%.8s' is not a subset of rwm", i,
                                    access);
                snprintf(rule->access, sizeof(rule->access), "%s", access ? access : "rwm");
                if (get_dev_num(e, "major", &rule->major) < 0 || get_dev_num(e, "minor", &rule->minor) < 0)
                        return fail(err, err_len, -EINVAL,
                                    "config.json: linux.resources.devices[%zu]: major/minor is not a device number", i);
                c->n_dev_rules = i + 1;
        }
        return 0;
}

/*
 * hooks.createContainer: the path of every entry whose args name the
 * createContainer hook point (ours, or another hook's that takes the same
 * word: the caller compares paths). Entries that are not objects with a
 * string path are skipped (the runtime validated them; they are not ours).
 */
static int get_cc_hooks(struct json_object *j, hook_config_t *c, char *err, size_t err_len)
{
        struct json_object *hooks, *a;
        size_t n;

        if (!json_object_object_get_ex(j, "hooks", &hooks) || !json_object_is_type(hooks, json_type_object) ||
            !json_object_object_get_ex(hooks, "createContainer", &a) || !json_object_is_type(a, json_type_array))
                return 0;
        n = json_object_array_length(a);
        if (n > HOOK_MAX_HOOKS)
                return fail(err, err_len, -E2BIG, "config.json: hooks.createContainer has %zu entries (limit %d)", n,
                            HOOK_MAX_HOOKS);
        c->cc_hooks = calloc(n ? n : 1, sizeof(*c->cc_hooks));
        if (!c->cc_hooks)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(a, i), *path, *args;
                bool named = false;

                if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "path", &path) ||
                    !json_object_is_type(path, json_type_string) ||
                    (size_t)json_object_get_string_len(path) > VTPMD_MAX_STRING ||
                    !json_object_object_get_ex(e, "args", &args) || !json_object_is_type(args, json_type_array))
                        continue;
                for (size_t k = 0; k < json_object_array_length(args) && k < HOOK_MAX_HOOKS; k++) {
                        struct json_object *s = json_object_array_get_idx(args, k);
                        named |= json_object_is_type(s, json_type_string) &&
                                 strcmp(json_object_get_string(s), "createContainer") == 0;
                }
                if (!named)
                        continue;
                c->cc_hooks[c->n_cc_hooks] = strdup(json_object_get_string(path));
                if (!c->cc_hooks[c->n_cc_hooks])
                        return -ENOMEM;
                c->n_cc_hooks++;
        }
        return 0;
}

int hook_config_parse(const char *buf, size_t len, const char *bundle, hook_config_t *ret, char *err, size_t err_len)
{
        struct json_object *j = NULL, *process = NULL, *root;
        hook_config_t c = {0};
        const char *ver, *path = NULL;
        uint8_t md[32];
        unsigned mdlen = 0;
        EVP_MD *sha256;
        bool ok;
        int r;

        if (len > HOOK_CONFIG_MAX)
                return fail(err, err_len, -E2BIG, "config.json is over %u bytes", HOOK_CONFIG_MAX);
        /*
         * Fetched by name from the default provider, not EVP_sha256(): that legacy accessor makes OpenSSL 3 fill
         * its name map with every legacy cipher and digest name first (~0.5 ms in each hook process, and more to
         * free them at exit; docs/performance.md, issue 5). Same algorithm, same digest.
         */
        sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
        ok = sha256 && EVP_Digest(buf, len, md, &mdlen, sha256, NULL) == 1 && mdlen == sizeof(md);
        EVP_MD_free(sha256);
        if (!ok)
                return fail(err, err_len, -EIO, "SHA-256 of config.json failed");
        memcpy(c.digest, "sha256:", 7);
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(c.digest + 7 + 2 * i, 3, "%02x", md[i]);
        r = parse_json(buf, len, "config.json", &j, err, err_len);
        if (r < 0)
                return r;
        if ((r = get_str(j, "ociVersion", "config.json", &ver, err, err_len)) < 0)
                goto out;
        if ((r = dup_str(ver, &c.oci_version)) < 0)
                goto out;
        if (json_object_object_get_ex(j, "process", &process) && !json_object_is_type(process, json_type_object)) {
                if (json_object_is_type(process, json_type_null)) {
                        process = NULL;
                } else {
                        r = fail(err, err_len, -EINVAL, "config.json: \"process\" is not an object");
                        goto out;
                }
        }
        if ((r = get_strv(process, "args", VTPMD_MAX_ARGS, &c.args, &c.n_args, err, err_len)) < 0 ||
            (r = get_strv(process, "env", VTPMD_MAX_ENV, &c.env, &c.n_env, err, err_len)) < 0)
                goto out;
        if (json_object_object_get_ex(j, "root", &root) && json_object_is_type(root, json_type_object) &&
            (r = get_str(root, "path", "config.json root", &path, err, err_len)) < 0)
                goto out;
        if (!path || !path[0]) {
                r = fail(err, err_len, -EINVAL, "config.json has no root.path");
                goto out;
        }
        if (path[0] == '/') {
                r = dup_str(path, &c.root);
        } else {
                c.root = malloc(strlen(bundle) + 1 + strlen(path) + 1);
                r = c.root ? 0 : -ENOMEM;
                if (c.root)
                        sprintf(c.root, "%s/%s", bundle, path);
        }
        if (r < 0)
                goto out;
        r = get_annotations(j, &c, err, err_len);
        if (r < 0)
                goto out;
        r = get_device_rules(j, &c, err, err_len);
        if (r < 0)
                goto out;
        r = get_cc_hooks(j, &c, err, err_len);
        if (r < 0)
                goto out;
        *ret = c;
        c = (hook_config_t){0};
out:
        if (r == -ENOMEM)
                fail(err, err_len, r, "out of memory reading config.json");
        hook_config_free(&c);
        json_object_put(j);
        return r;
}

int hook_config_load(const char *bundle, hook_config_t *ret, char *err, size_t err_len)
{
        char path[PATH_MAX];
        struct stat st;
        char *buf = NULL;
        size_t len = 0;
        int fd, r;

        if (vtpmd_fmt(path, sizeof(path), "%s/config.json", bundle) < 0)
                return fail(err, err_len, -ENAMETOOLONG, "bundle path '%.80s...' is too long", bundle);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return fail(err, err_len, -errno, "cannot open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = fail(err, err_len, -EINVAL, "%s is not a regular file", path);
                goto out;
        }
        if ((uint64_t)st.st_size > HOOK_CONFIG_MAX) {
                r = fail(err, err_len, -E2BIG, "%s is %lld bytes (limit %u)", path, (long long)st.st_size,
                         HOOK_CONFIG_MAX);
                goto out;
        }
        buf = malloc(HOOK_CONFIG_MAX + 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, HOOK_CONFIG_MAX + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = fail(err, err_len, -errno, "cannot read %s: %s", path, strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > HOOK_CONFIG_MAX) {
                        r = fail(err, err_len, -E2BIG, "%s grew over %u bytes while read", path, HOOK_CONFIG_MAX);
                        goto out;
                }
        }
        r = hook_config_parse(buf, len, bundle, ret, err, err_len);
out:
        free(buf);
        close(fd);
        return r;
}

/* ---- --frontend vtpm-proxy ------------------------------------------------------ */

bool hook_devices_allowed(const hook_config_t *c, char type, unsigned major, unsigned minor, const char *need)
{
        for (const char *a = need; *a; a++) {
                bool allowed = false;
                for (size_t i = 0; i < c->n_dev_rules; i++) {
                        const hook_device_rule_t *rule = &c->dev_rules[i];
                        if ((rule->type != 'a' && rule->type != type) ||
                            (rule->major >= 0 && (unsigned long)rule->major != major) ||
                            (rule->minor >= 0 && (unsigned long)rule->minor != minor) || !strchr(rule->access, *a))
                                continue;
                        allowed = rule->allow;
                }
                if (!allowed)
                        return false;
        }
        return true;
}

int hook_dev_node(int dirfd, const char *name, unsigned major, unsigned minor, char *err, size_t err_len)
{
        dev_t want = makedev(major, minor);
        struct stat st;

        if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return fail(err, err_len, -EINVAL, "device node name '%.80s' is not a plain name", name);
        if (mknodat(dirfd, name, S_IFCHR | 0600, want) < 0) {
                int e = errno;
                if (e != EEXIST)
                        return fail(err, err_len, -e, "cannot make the device node %s (%u:%u): %s", name, major, minor,
                                    strerror(e));
                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(err, err_len, -errno, "cannot stat %s: %s", name, strerror(errno));
                if (!S_ISCHR(st.st_mode) || st.st_rdev != want)
                        return fail(err, err_len, -EEXIST,
                                    "%s already exists in the container and is not the character device %u:%u", name,
                                    major, minor);
                return 1;
        }
        /* Owner and mode explicitly: the umask does not decide, and no other user gets the vTPM. */
        if (fchownat(dirfd, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 || fchmodat(dirfd, name, 0660, 0) < 0) {
                int e = errno;
                (void)unlinkat(dirfd, name, 0);
                return fail(err, err_len, -e, "cannot set owner/mode of %s: %s", name, strerror(e));
        }
        return 0;
}

int hook_cgroup_devices_version(const char *mount)
{
        char path[PATH_MAX];
        struct statfs sf;

        if (statfs(mount, &sf) < 0)
                return -errno;
        if (sf.f_type == CGROUP2_SUPER_MAGIC)
                return 2;
        /* v1 or hybrid: a devices controller of its own decides. */
        if (vtpmd_fmt(path, sizeof(path), "%s/devices", mount) < 0)
                return -ENAMETOOLONG;
        if (statfs(path, &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC)
                return 1;
        return -ENOENT;
}

int hook_cgroup_v1_devices_dir(const char *proc_cgroup, const char *devices_mount, char *ret, size_t ret_len, char *err,
                               size_t err_len)
{
        FILE *f = fopen(proc_cgroup, "re");
        char line[PATH_MAX + 64];
        int r = -ENOENT;

        if (!f)
                return fail(err, err_len, -errno, "cannot read %s: %s", proc_cgroup, strerror(errno));
        while (fgets(line, sizeof(line), f)) {
                /* hierarchy-ID:controller-list:path */
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *ctl, *save = NULL, *path;
                bool devices = false;
                if (!c2)
                        continue;
                *c2 = '\0';
                path = c2 + 1;
                path[strcspn(path, "\n")] = '\0';
                for (ctl = strtok_r(c1 + 1, ",", &save); ctl; ctl = strtok_r(NULL, ",", &save))
                        devices = devices || strcmp(ctl, "devices") == 0;
                if (!devices)
                        continue;
                if (path[0] != '/' || strstr(path, "/../") ||
                    (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))
                        r = fail(err, err_len, -EINVAL, "%s: unusable devices cgroup path '%.200s'", proc_cgroup, path);
                else if (vtpmd_fmt(ret, ret_len, "%s%s", devices_mount, strcmp(path, "/") == 0 ? "" : path) < 0)
                        r = fail(err, err_len, -ENAMETOOLONG, "the devices cgroup path is too long");
                else
                        r = 0;
                break;
        }
        fclose(f);
        if (r == -ENOENT)
                fail(err, err_len, r, "%s names no devices cgroup (cgroup v1)", proc_cgroup);
        return r;
}

int hook_devices_allow(const char *dir, unsigned major, unsigned minor, const char *access, char *err, size_t err_len)
{
        char path[PATH_MAX], rule[64];
        int fd, n;

        if (vtpmd_fmt(path, sizeof(path), "%s/devices.allow", dir) < 0)
                return fail(err, err_len, -ENAMETOOLONG, "the devices cgroup path is too long");
        n = snprintf(rule, sizeof(rule), "c %u:%u %s\n", major, minor, access);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return fail(err, err_len, -errno, "cannot open %s: %s", path, strerror(errno));
        if (write(fd, rule, (size_t)n) != n) {
                int e = errno ? errno : EIO;
                close(fd);
                return fail(err, err_len, -e, "cannot allow c %u:%u in %s: %s", major, minor, path, strerror(e));
        }
        if (close(fd) < 0)
                return fail(err, err_len, -errno, "cannot allow c %u:%u in %s: %s", major, minor, path,
                            strerror(errno));
        return 0;
}
