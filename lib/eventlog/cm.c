/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CEL-TLV record encoding and the CM_TLV container-measurement content
 * (include/cscp/cel.h; exact bytes in docs/measurements.md).
 *
 * CM_TLV content value = u8 kind || u32 BE length || fields, where fields is a
 * sequence of field TLVs (u8 type || u32 BE length || value) in strictly
 * ascending type order. Encoder and decoder apply the same per-field rules, so
 * whatever decodes is exactly what the encoder would have built:
 *   event, container_id, name, digest  UTF-8 (RFC 3629), no NUL; digest is
 *                                      "<algorithm>:<encoded>" (OCI syntax)
 *   value                              any bytes (may be empty)
 *   index                              4 bytes (u32 BE)
 *   vek_sha256                         32 bytes
 *   vak_name                           u16 BE nameAlg || digest of that algorithm's size
 *   time                               8 bytes (u64 BE)
 * Which kind carries which fields is the writer's business (docs/measurements.md);
 * the decoder does not require any.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/pcr.h"
#include "cscp/util.h"
#include "internal.h"

#define TLV_HEADER 5

static const char *const kind_names[] = {
        [CSCP_CM_VERSION] = "version", [CSCP_CM_CONFIG] = "config",       [CSCP_CM_LAYER] = "layer",
        [CSCP_CM_PROCESS] = "process", [CSCP_CM_CONTAINER] = "container", [CSCP_CM_POD] = "pod",
        [CSCP_CM_CLUSTER] = "cluster",
};

static const char *const field_names[CSCP_CM_MAX_FIELDS] = {
        [CSCP_CM_F_EVENT] = "event",
        [CSCP_CM_F_CONTAINER_ID] = "container_id",
        [CSCP_CM_F_NAME] = "name",
        [CSCP_CM_F_VALUE] = "value",
        [CSCP_CM_F_DIGEST] = "digest",
        [CSCP_CM_F_INDEX] = "index",
        [CSCP_CM_F_VEK_SHA256] = "vek_sha256",
        [CSCP_CM_F_VAK_NAME] = "vak_name",
        [CSCP_CM_F_TIME] = "time",
};

const char *cscp_cm_kind_name(cscp_cm_kind_t kind)
{
        if ((unsigned)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
                return NULL;
        return kind_names[kind];
}

const char *cscp_cm_field_name(cscp_cm_field_t field)
{
        if ((unsigned)field >= CSCP_CM_MAX_FIELDS)
                return NULL;
        return field_names[field];
}

static const struct {
        uint32_t type;
        const char *name;
} content_types[] = {
        {CSCP_CEL_MGT, "cel"},
        {CSCP_CEL_PCCLIENT_STD, "pcclient_std"},
        {CSCP_CEL_IMA_TEMPLATE, "ima_template"},
        {CSCP_CEL_IMA_TLV, "ima_tlv"},
        {CSCP_CEL_CM_TLV, "cm_tlv"},
        {CSCP_CEL_CONTENT_SYSTEMD, "systemd"},
        {CSCP_CEL_CONTENT_TSS2, "tss2"},
};

const char *cscp_cel_content_type_name(uint32_t type)
{
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
                if (content_types[i].type == type)
                        return content_types[i].name;
        return NULL;
}

uint32_t cscp_cel_content_type_from_name(const char *name)
{
        if (!name)
                return 0;
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
                if (strcmp(content_types[i].name, name) == 0)
                        return content_types[i].type;
        return 0;
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        return p + n;
}

static uint8_t *put_tlv(uint8_t *p, uint8_t type, const void *value, size_t len)
{
        *p++ = type;
        p = put_be(p, len, 4);
        if (len)
                memcpy(p, value, len);
        return p + len;
}

static bool is_string_field(cscp_cm_field_t t)
{
        return t == CSCP_CM_F_EVENT || t == CSCP_CM_F_CONTAINER_ID || t == CSCP_CM_F_NAME || t == CSCP_CM_F_DIGEST;
}

/* The per-field rules of the file comment. */
static bool field_ok(cscp_cm_field_t type, const uint8_t *d, size_t len)
{
        switch (type) {
        case CSCP_CM_F_EVENT:
        case CSCP_CM_F_CONTAINER_ID:
        case CSCP_CM_F_NAME:
                return (len == 0 || !memchr(d, 0, len)) && cscp_cel_utf8_valid(d, len);
        case CSCP_CM_F_DIGEST: {
                const uint8_t *colon = len ? memchr(d, ':', len) : NULL;
                if (!colon || colon == d || colon == d + len - 1)
                        return false;
                for (size_t i = 0; i < len; i++)
                        if (d[i] <= 0x20 || d[i] >= 0x7f)
                                return false;
                return true;
        }
        case CSCP_CM_F_VALUE:
                return true;
        case CSCP_CM_F_INDEX:
                return len == 4;
        case CSCP_CM_F_VEK_SHA256:
                return len == 32;
        case CSCP_CM_F_VAK_NAME: {
                size_t size;
                if (len < 2)
                        return false;
                size = cscp_hash_alg_size((uint16_t)get_be(d, 2));
                return size != 0 && len == 2 + size;
        }
        case CSCP_CM_F_TIME:
                return len == 8;
        default:
                return false;
        }
}

int cscp_cm_encode(cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields, uint8_t **ret,
                   size_t *ret_len)
{
        const cscp_cm_field_value_t *by_type[CSCP_CM_MAX_FIELDS] = {0};
        size_t total = TLV_HEADER;
        uint8_t *buf, *p;

        if (!cscp_cm_kind_name(kind) || (n_fields && !fields) || n_fields > CSCP_CM_MAX_FIELDS || !ret || !ret_len)
                return -EINVAL;
        for (size_t i = 0; i < n_fields; i++) {
                const cscp_cm_field_value_t *f = &fields[i];

                if ((unsigned)f->type >= CSCP_CM_MAX_FIELDS || by_type[f->type] || (f->len && !f->data))
                        return -EINVAL;
                if (f->len > CSCP_CM_MAX_CONTENT)
                        return CSCP_E_TOO_BIG;
                if (!field_ok(f->type, f->data, f->len))
                        return -EINVAL;
                by_type[f->type] = f;
                total += TLV_HEADER + f->len;
                if (total > CSCP_CM_MAX_CONTENT)
                        return CSCP_E_TOO_BIG;
        }
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        p = buf;
        *p++ = (uint8_t)kind;
        p = put_be(p, total - TLV_HEADER, 4);
        for (unsigned t = 0; t < CSCP_CM_MAX_FIELDS; t++)
                if (by_type[t])
                        p = put_tlv(p, (uint8_t)t, by_type[t]->data, by_type[t]->len);
        *ret = buf;
        *ret_len = total;
        return 0;
}

int cscp_cm_decode(const uint8_t *buf, size_t len, cscp_cm_record_t *ret)
{
        cscp_cm_record_t rec;
        size_t off = TLV_HEADER;
        int last = -1;

        if ((!buf && len) || !ret)
                return -EINVAL;
        if (len < TLV_HEADER || !cscp_cm_kind_name((cscp_cm_kind_t)buf[0]) || get_be(buf + 1, 4) != len - TLV_HEADER)
                return CSCP_E_PROTO;
        memset(&rec, 0, sizeof(rec));
        rec.kind = (cscp_cm_kind_t)buf[0];
        while (off < len) {
                uint8_t type;
                uint64_t flen;

                if (len - off < TLV_HEADER)
                        return CSCP_E_PROTO;
                type = buf[off];
                flen = get_be(buf + off + 1, 4);
                if (type >= CSCP_CM_MAX_FIELDS || (int)type <= last || flen > len - off - TLV_HEADER)
                        return CSCP_E_PROTO;
                if (!field_ok((cscp_cm_field_t)type, buf + off + TLV_HEADER, (size_t)flen))
                        return CSCP_E_PROTO;
                rec.f[type].data = buf + off + TLV_HEADER;
                rec.f[type].len = (size_t)flen;
                last = type;
                off += TLV_HEADER + (size_t)flen;
        }
        *ret = rec;
        return 0;
}

int cscp_cel_tlv_encode(uint64_t recnum, uint32_t pcr, bool nv_index, const cscp_event_digest_t *digests,
                        size_t n_digests, uint8_t content_type, const uint8_t *content, size_t content_len,
                        uint8_t **ret, size_t *ret_len)
{
        size_t dlen = 0, total;
        uint8_t *buf, *p, be[8];

        if ((n_digests && !digests) || n_digests > CSCP_EVENT_MAX_DIGESTS || content_type < CSCP_CEL_MGT ||
            content_type == CSCP_CEL_CCMR || (content_len && !content) || !ret || !ret_len)
                return -EINVAL;
        for (size_t i = 0; i < n_digests; i++) {
                if (digests[i].alg > 0xff || cscp_hash_alg_size(digests[i].alg) == 0 ||
                    digests[i].size != cscp_hash_alg_size(digests[i].alg))
                        return -EINVAL;
                for (size_t k = 0; k < i; k++)
                        if (digests[k].alg == digests[i].alg)
                                return -EINVAL;
                dlen += TLV_HEADER + digests[i].size;
        }
        if (content_len > UINT32_MAX - 64 || content_len > SIZE_MAX / 2)
                return CSCP_E_TOO_BIG;
        total = (TLV_HEADER + 8) + (TLV_HEADER + 4) + (TLV_HEADER + dlen) + (TLV_HEADER + content_len);
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        put_be(be, recnum, 8);
        p = put_tlv(buf, CSCP_CEL_RECNUM, be, 8);
        put_be(be, pcr, 4);
        p = put_tlv(p, nv_index ? CSCP_CEL_NV_INDEX : CSCP_CEL_PCR, be, 4);
        *p++ = CSCP_CEL_DIGESTS;
        p = put_be(p, dlen, 4);
        for (size_t i = 0; i < n_digests; i++)
                p = put_tlv(p, (uint8_t)digests[i].alg, digests[i].digest, digests[i].size);
        put_tlv(p, content_type, content, content_len);
        *ret = buf;
        *ret_len = total;
        return 0;
}

int cscp_cm_digests(const uint8_t *content, size_t content_len, const uint16_t *banks, cscp_event_digest_t *ret,
                    size_t *ret_n)
{
        cscp_event_digest_t out[CSCP_EVENT_MAX_DIGESTS];
        cscp_cm_record_t rec;
        size_t n = 0;
        int r;

        if ((!content && content_len) || !banks || !ret || !ret_n)
                return -EINVAL;
        r = cscp_cm_decode(content, content_len, &rec);
        if (r < 0)
                return r;
        for (; banks[n]; n++) {
                size_t size = cscp_hash_alg_size(banks[n]);

                if (n >= CSCP_EVENT_MAX_DIGESTS)
                        return -EINVAL;
                for (size_t k = 0; k < n; k++)
                        if (out[k].alg == banks[n])
                                return -EINVAL;
                if (size == 0 || size > CSCP_EVENT_MAX_DIGEST)
                        return CSCP_E_UNSUPPORTED;
                out[n].alg = banks[n];
                out[n].size = (uint16_t)size;
                memset(out[n].digest, 0, sizeof(out[n].digest));
                r = evlog_hash(banks[n], content, content_len, out[n].digest);
                if (r < 0)
                        return r;
        }
        if (n == 0)
                return -EINVAL;
        memcpy(ret, out, n * sizeof(out[0]));
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------------- JSON */

static json_object *hex_string(const uint8_t *d, size_t len)
{
        char *hex = malloc(2 * len + 1);
        json_object *o;

        if (!hex)
                return NULL;
        cscp_hex_encode(d, len, hex);
        o = json_object_new_string_len(hex, (int)(2 * len));
        free(hex);
        return o;
}

/* obj[key] = val, taking val; false (and val released) on failure. */
static bool add(json_object *obj, const char *key, json_object *val)
{
        if (!val)
                return false;
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return false;
        }
        return true;
}

static int take_text(json_object *o, char **ret)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *c = s ? strdup(s) : NULL;

        json_object_put(o);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

static json_object *cm_object(const uint8_t *content, size_t len, int *ret_r)
{
        cscp_cm_record_t rec;
        json_object *o;
        bool ok;

        if (len > INT32_MAX / 2) {
                *ret_r = CSCP_E_TOO_BIG;
                return NULL;
        }
        *ret_r = cscp_cm_decode(content, len, &rec);
        if (*ret_r < 0)
                return NULL;
        *ret_r = -ENOMEM;
        o = json_object_new_object();
        if (!o)
                return NULL;
        ok = add(o, "kind", json_object_new_string(cscp_cm_kind_name(rec.kind)));
        for (unsigned t = 0; ok && t < CSCP_CM_MAX_FIELDS; t++) {
                const uint8_t *d = rec.f[t].data;
                size_t n = rec.f[t].len;
                json_object *v;

                if (!d)
                        continue;
                if (is_string_field((cscp_cm_field_t)t))
                        v = json_object_new_string_len((const char *)d, (int)n);
                else if (t == CSCP_CM_F_VALUE && !memchr(d, 0, n) && cscp_cel_utf8_valid(d, n))
                        v = json_object_new_string_len((const char *)d, (int)n);
                else if (t == CSCP_CM_F_VALUE) {
                        ok = add(o, "value_hex", hex_string(d, n));
                        continue;
                } else if (t == CSCP_CM_F_INDEX || t == CSCP_CM_F_TIME)
                        v = json_object_new_uint64(get_be(d, n));
                else
                        v = hex_string(d, n);
                ok = add(o, field_names[t], v);
        }
        if (ok)
                ok = add(o, "raw", hex_string(content, len));
        if (!ok) {
                json_object_put(o);
                return NULL;
        }
        *ret_r = 0;
        return o;
}

int cscp_cm_to_json(const uint8_t *content, size_t content_len, char **ret)
{
        json_object *o;
        int r;

        if ((!content && content_len) || !ret)
                return -EINVAL;
        o = cm_object(content, content_len, &r);
        if (!o)
                return r;
        return take_text(o, ret);
}

int cscp_cel_event_to_json(const cscp_event_t *ev, char **ret)
{
        json_object *o, *digests, *content;
        const char *name;
        bool ok;
        int r;

        if (!ev || !ret || (ev->data_len && !ev->data) || ev->n_digests > CSCP_EVENT_MAX_DIGESTS)
                return -EINVAL;
        if (ev->type > 0xff || ev->type < CSCP_CEL_MGT || ev->data_len > INT32_MAX / 2)
                return -EINVAL; /* not a CEL-TLV content type */
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        ok = add(o, "recnum", json_object_new_uint64(ev->index));
        if (ok)
                ok = add(o,
                         ev->reg == CSCP_EVENT_NV_INDEX ? "nv_index"
                         : ev->reg == CSCP_EVENT_RTMR   ? "ccmr"
                                                        : "pcr",
                         json_object_new_uint64(ev->pcr));
        digests = ok ? json_object_new_array() : NULL;
        ok = add(o, "digests", digests);
        for (size_t i = 0; ok && i < ev->n_digests; i++) {
                json_object *d = json_object_new_object();
                const char *alg = cscp_hash_alg_name(ev->digests[i].alg);

                if (!alg || ev->digests[i].size != cscp_hash_alg_size(ev->digests[i].alg)) {
                        json_object_put(d);
                        json_object_put(o);
                        return -EINVAL;
                }
                ok = add(d, "hashAlg", json_object_new_string(alg)) &&
                     add(d, "digest", hex_string(ev->digests[i].digest, ev->digests[i].size));
                if (!ok || json_object_array_add(digests, d) < 0) {
                        json_object_put(d);
                        ok = false;
                }
        }
        name = cscp_cel_content_type_name(ev->type);
        if (ok)
                ok = add(o, "content_type", name ? json_object_new_string(name) : json_object_new_int((int)ev->type));
        if (!ok) {
                json_object_put(o);
                return -ENOMEM;
        }
        if (ev->type == CSCP_CEL_CM_TLV) {
                content = cm_object(ev->data, ev->data_len, &r);
                if (!content) {
                        json_object_put(o);
                        return r;
                }
        } else {
                content = json_object_new_object();
                if (!content || !add(content, "raw", hex_string(ev->data, ev->data_len))) {
                        json_object_put(content);
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        if (!add(o, "content", content)) {
                json_object_put(o);
                return -ENOMEM;
        }
        return take_text(o, ret);
}
