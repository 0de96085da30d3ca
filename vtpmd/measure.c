/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container measurements: CM_TLV records in the container's CEL-TLV log,
 * each extended into a PCR of the container's vTPM, in every bank the vTPM
 * has allocated (and this library can replay).
 *
 * Write-ahead, like the host log: the records of one call are appended and
 * fsynced before the first of them is extended, so every PCR value is
 * explained by a prefix of the log. (Unlike the host log there is no
 * reconciliation on the next call: a stop between fsync and extend leaves
 * the log ahead of the vTPM; the daemon restarts the vTPM and calls
 * vtpm_log_reextend.)
 *
 * Create measurements (vtpm_measure_create), in this order; PCR 11 unless
 * noted (docs/measurements.md is the reference once written):
 *   1. VERSION   name = runtime_name, value = runtime_version      (if runtime_name)
 *   2. CONFIG    container_id, digest = config_digest              (if config_digest)
 *   3. LAYER     PCR 12: name = image_name (if known), digest, index = position, one per layer
 *   4. PROCESS   event "arg", index = position, value = the argument, one per argument
 *   5. PROCESS   event "env", index = position, name = NAME, value = the value, one per NAME=value
 *                (a variable without '=' is recorded with the whole text as name and an empty value)
 *   6. CONFIG    event "annotation", container_id, name = key, value = the value, one per measured
 *                image annotation, in the order given (the OCI hook sorts them by key)
 *   7. CONTAINER event "create", container_id: the create measurements are complete (vtpmd's
 *                recovery takes a log that ends in it, whole, as the durable Create: see
 *                vtpm_log_create_complete)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "cscp/pcr.h"
#include "cscp/tpm.h"
#include "vtpm.h"

#define LOGMODULE measure
#include "cscp/log.h"

#define PCR_CONTAINER 11
#define PCR_LAYERS    12

/* Limits for one vtpm_measure_create (Linux ARG_MAX for args + env is 2 MiB by default). */
#define CREATE_MAX_ITEMS 8192
#define CREATE_MAX_BYTES (4u * 1024 * 1024)

/* One measurement to make. */
typedef struct item {
        uint32_t pcr;
        cscp_cm_kind_t kind;
        cscp_cm_field_value_t f[CSCP_CM_MAX_FIELDS];
        size_t n;
        uint8_t index_be[4];
} item_t;

static void item_add(item_t *it, cscp_cm_field_t type, const void *data, size_t len)
{
        it->f[it->n++] = (cscp_cm_field_value_t){.type = type, .data = data, .len = len};
}

static void item_add_str(item_t *it, cscp_cm_field_t type, const char *s)
{
        item_add(it, type, s, strlen(s));
}

static void item_add_index(item_t *it, uint32_t index)
{
        it->index_be[0] = (uint8_t)(index >> 24);
        it->index_be[1] = (uint8_t)(index >> 16);
        it->index_be[2] = (uint8_t)(index >> 8);
        it->index_be[3] = (uint8_t)index;
        item_add(it, CSCP_CM_F_INDEX, it->index_be, 4);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Opens (creating) a container log for appending, locked, after checking it holds whole records. */
static int log_open_locked(const char *path, int flags, uint64_t *ret_records, cscp_replay_t *ret_replay,
                           vtpm_log_scan_t *ret_scan)
{
        cscp_replay_t *rp = ret_replay;
        vtpm_log_scan_t s;
        char msg[512];
        int fd, r;

        fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0) {
                r = -errno;
                goto fail;
        }
        if (!rp) {
                rp = malloc(sizeof(*rp));
                if (!rp) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = vtpm_log_scan(fd, rp, NULL, &s, msg, sizeof(msg));
        if (rp != ret_replay)
                free(rp);
        if (r < 0) {
                log_debug("%s: %s", path, msg);
                goto fail;
        }
        if (s.truncated) {
                log_debug("%s: %s", path, msg);
                r = CSCP_E_STATE;
                goto fail;
        }
        if (ret_records)
                *ret_records = s.n_records;
        if (ret_scan)
                *ret_scan = s;
        return fd;
fail:
        close(fd);
        return r;
}

/* What a write-ahead append left to extend: the records' PCRs and digests, in log order. */
struct vtpm_pending {
        int fd;      /* the container log, flock held until the extends are done (or given up) */
        off_t start; /* where the records begin (-1 once they are acknowledged as durable) */
        bool synced;
        uint64_t recnum;
        size_t n;
        uint32_t *pcr;
        cscp_event_digest_t (*dig)[CSCP_EVENT_MAX_DIGESTS];
        size_t *n_dig;
};

void vtpm_pending_free(vtpm_pending_t *p)
{
        if (!p)
                return;
        if (p->fd >= 0 && !p->synced && p->start >= 0 && ftruncate(p->fd, p->start) == 0)
                (void)fsync(p->fd); /* written, never made durable, never extended: taken back */
        if (p->fd >= 0)
                close(p->fd); /* drops the lock */
        free(p->pcr);
        free(p->dig);
        free(p->n_dig);
        free(p);
}

int vtpm_pcr_banks(const char *vtpm_tcti, uint16_t ret[CSCP_EVENT_MAX_DIGESTS + 1])
{
        cscp_tpm_t *t = NULL;
        size_t n = 0;
        int r;

        if (!vtpm_tcti || !ret)
                return -EINVAL;
        r = cscp_tpm_open(vtpm_tcti, &t);
        if (r < 0)
                return r;
        memset(ret, 0, (CSCP_EVENT_MAX_DIGESTS + 1) * sizeof(*ret));
        r = cscp_tpm_pcr_banks(t, ret, CSCP_EVENT_MAX_DIGESTS, &n);
        if (r == 0 && n == 0)
                r = CSCP_E_UNSUPPORTED;
        if (r == 0)
                ret[n] = 0;
        cscp_tpm_free(t);
        return r;
}

/* Appends items as records to the log: one write, and one fsync unless !sync; nothing extended yet. */
static int items_log(const char *log_path, const uint16_t *banks, const item_t *items, size_t n_items, bool sync,
                     vtpm_pending_t **ret)
{
        vtpm_pending_t *p = NULL;
        size_t len = 0, cap = 0;
        uint8_t *buf = NULL;
        uint64_t recnum = 0;
        off_t start = 0;
        int r;

        if (!log_path || !banks || !banks[0] || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -1;
        p->start = -1;
        p->n = n_items;
        p->pcr = calloc(n_items ? n_items : 1, sizeof(*p->pcr));
        p->dig = calloc(n_items ? n_items : 1, sizeof(*p->dig));
        p->n_dig = calloc(n_items ? n_items : 1, sizeof(*p->n_dig));
        if (!p->pcr || !p->dig || !p->n_dig) {
                r = -ENOMEM;
                goto out;
        }
        p->fd = log_open_locked(log_path, O_RDWR | O_CREAT | O_APPEND, &recnum, NULL, NULL);
        if (p->fd < 0) {
                r = p->fd;
                goto out;
        }
        p->recnum = recnum;
        for (size_t i = 0; i < n_items; i++) {
                uint8_t *rec = NULL;
                size_t rec_len = 0;

                p->pcr[i] = items[i].pcr;
                r = vtpm_log_record(recnum + i, items[i].pcr, banks, items[i].kind, items[i].f, items[i].n, p->dig[i],
                                    &p->n_dig[i], &rec, &rec_len);
                if (r < 0)
                        goto out;
                if (rec_len > CREATE_MAX_BYTES - len) {
                        free(rec);
                        r = CSCP_E_TOO_BIG;
                        goto out;
                }
                if (len + rec_len > cap) {
                        size_t ncap = cap ? cap : 4096;
                        uint8_t *nb;

                        while (ncap < len + rec_len)
                                ncap *= 2;
                        nb = realloc(buf, ncap);
                        if (!nb) {
                                free(rec);
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = nb;
                        cap = ncap;
                }
                memcpy(buf + len, rec, rec_len);
                len += rec_len;
                free(rec);
        }

        start = lseek(p->fd, 0, SEEK_END);
        if (start < 0) {
                r = -errno;
                goto out;
        }
        r = write_all(p->fd, buf, len);
        if (r == 0 && sync && fsync(p->fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Nothing was extended yet: take the records back. */
                if (ftruncate(p->fd, start) == 0)
                        (void)fsync(p->fd);
                goto out;
        }
        p->start = start;
        p->synced = sync;
        *ret = p;
        p = NULL;
        r = 0;
out:
        vtpm_pending_free(p);
        free(buf);
        return r;
}

int vtpm_pcr_extend_record(cscp_tpm_t *t, uint32_t pcr, const cscp_event_digest_t *d, size_t n)
{
        TPML_DIGEST_VALUES v = {0};
        TSS2_RC rc;

        if (!t || (n && !d) || n > TPM2_NUM_PCR_BANKS || pcr >= CSCP_PCR_COUNT)
                return -EINVAL;
        for (size_t k = 0; k < n; k++) {
                if (d[k].size != cscp_hash_alg_size(d[k].alg) || d[k].size > sizeof(v.digests[0].digest))
                        return -EINVAL;
                v.digests[k].hashAlg = d[k].alg;
                memcpy(&v.digests[k].digest, d[k].digest, d[k].size);
        }
        v.count = (UINT32)n;
        rc = Esys_PCR_Extend(cscp_tpm_esys(t), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
        if (rc != TSS2_RC_SUCCESS) {
                log_debug("PCR_Extend of PCR %u (%zu banks): 0x%08x", pcr, n, (unsigned)rc);
                return CSCP_E_TPM;
        }
        return 0;
}

/* Extends what items_log wrote, in log order: one TPM2_PCR_Extend per record, every bank in it. */
static int pending_extend(cscp_tpm_t *t, const vtpm_pending_t *p)
{
        for (size_t i = 0; i < p->n; i++) {
                int r = vtpm_pcr_extend_record(t, p->pcr[i], p->dig[i], p->n_dig[i]);
                if (r < 0) {
                        log_debug("record %" PRIu64 " logged but not extended: %s", p->recnum + i, cscp_strerror(r));
                        return r;
                }
        }
        return 0;
}

int vtpm_pending_extend(const char *vtpm_tcti, vtpm_pending_t *p)
{
        cscp_tpm_t *t = NULL;
        int r;

        if (!vtpm_tcti || !p)
                return -EINVAL;
        r = cscp_tpm_open(vtpm_tcti, &t);
        if (r == 0)
                r = pending_extend(t, p);
        cscp_tpm_free(t);
        return r;
}

/* Appends items as records (one write, one fsync), then extends them in order. */
static int measure_items(const char *tcti, const char *log_path, const item_t *items, size_t n_items)
{
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1] = {0};
        vtpm_pending_t *p = NULL;
        cscp_tpm_t *t = NULL;
        size_t n_banks = 0;
        int r;

        if (!tcti || !log_path)
                return -EINVAL;
        r = cscp_tpm_open(tcti, &t);
        if (r < 0)
                return r;
        r = cscp_tpm_pcr_banks(t, banks, CSCP_EVENT_MAX_DIGESTS, &n_banks);
        if (r < 0)
                goto out;
        if (n_banks == 0) {
                r = CSCP_E_UNSUPPORTED;
                goto out;
        }
        banks[n_banks] = 0;
        r = items_log(log_path, banks, items, n_items, true, &p);
        if (r < 0)
                goto out;
        r = pending_extend(t, p);
out:
        vtpm_pending_free(p);
        cscp_tpm_free(t);
        return r;
}

int vtpm_measure(const char *vtpm_tcti, const char *log_path, uint32_t pcr, cscp_cm_kind_t kind,
                 const cscp_cm_field_value_t *fields, size_t n_fields)
{
        item_t it = {.pcr = pcr, .kind = kind};

        if (pcr >= CSCP_PCR_COUNT)
                return CSCP_E_PCRSEL;
        if (n_fields > CSCP_CM_MAX_FIELDS || (n_fields && !fields))
                return -EINVAL;
        memcpy(it.f, fields, n_fields * sizeof(*fields));
        it.n = n_fields;
        return measure_items(vtpm_tcti, log_path, &it, 1);
}

static bool str_ok(const char *s, size_t max)
{
        return s && strnlen(s, max + 1) <= max;
}

static int create_items(const vtpm_create_measurements_t *m, item_t **ret, size_t *ret_n)
{
        item_t *items = NULL;
        size_t n = 0, total = 0, max;

        if (!m || !m->container_id || (m->n_args && !m->args) || (m->n_env && !m->env) || (m->n_layers && !m->layers))
                return -EINVAL;
        if ((m->n_ann && (!m->ann_keys || !m->ann_values)))
                return -EINVAL;
        if (m->n_args > CREATE_MAX_ITEMS || m->n_env > CREATE_MAX_ITEMS || m->n_layers > CREATE_MAX_ITEMS ||
            m->n_ann > CREATE_MAX_ITEMS)
                return CSCP_E_TOO_BIG;
        max = 3 + m->n_args + m->n_env + m->n_layers + m->n_ann;
        if (max > CREATE_MAX_ITEMS)
                return CSCP_E_TOO_BIG;
                /* Every string is bounded, and so is their sum, before anything is allocated for them. */
#define CHECK_STR(s)                                           \
        do {                                                   \
                if (!str_ok((s), VTPM_LOG_MAX_CONTENT / 2))    \
                        return (s) ? CSCP_E_TOO_BIG : -EINVAL; \
                total += strlen(s);                            \
                if (total > CREATE_MAX_BYTES)                  \
                        return CSCP_E_TOO_BIG;                 \
        } while (0)
        CHECK_STR(m->container_id);
        if (m->runtime_name)
                CHECK_STR(m->runtime_name);
        if (m->runtime_version)
                CHECK_STR(m->runtime_version);
        if (m->config_digest)
                CHECK_STR(m->config_digest);
        if (m->image_name)
                CHECK_STR(m->image_name);
        for (size_t i = 0; i < m->n_layers; i++)
                CHECK_STR(m->layers[i]);
        for (size_t i = 0; i < m->n_args; i++)
                CHECK_STR(m->args[i]);
        for (size_t i = 0; i < m->n_env; i++)
                CHECK_STR(m->env[i]);
        for (size_t i = 0; i < m->n_ann; i++) {
                CHECK_STR(m->ann_keys[i]);
                CHECK_STR(m->ann_values[i]);
                if (!m->ann_keys[i][0])
                        return -EINVAL;
        }
#undef CHECK_STR

        items = calloc(max, sizeof(*items));
        if (!items)
                return -ENOMEM;
        if (m->runtime_name) {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_VERSION};
                item_add_str(it, CSCP_CM_F_NAME, m->runtime_name);
                if (m->runtime_version)
                        item_add_str(it, CSCP_CM_F_VALUE, m->runtime_version);
        }
        if (m->config_digest) {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_CONFIG};
                item_add_str(it, CSCP_CM_F_CONTAINER_ID, m->container_id);
                item_add_str(it, CSCP_CM_F_DIGEST, m->config_digest);
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_LAYERS, .kind = CSCP_CM_LAYER};
                if (m->image_name)
                        item_add_str(it, CSCP_CM_F_NAME, m->image_name);
                item_add_str(it, CSCP_CM_F_DIGEST, m->layers[i]);
                item_add_index(it, (uint32_t)i);
        }
        for (size_t i = 0; i < m->n_args; i++) {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_PROCESS};
                item_add_str(it, CSCP_CM_F_EVENT, "arg");
                item_add_str(it, CSCP_CM_F_VALUE, m->args[i]);
                item_add_index(it, (uint32_t)i);
        }
        for (size_t i = 0; i < m->n_env; i++) {
                item_t *it = &items[n++];
                const char *eq = strchr(m->env[i], '=');

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_PROCESS};
                item_add_str(it, CSCP_CM_F_EVENT, "env");
                if (eq) {
                        item_add(it, CSCP_CM_F_NAME, m->env[i], (size_t)(eq - m->env[i]));
                        item_add_str(it, CSCP_CM_F_VALUE, eq + 1);
                } else {
                        item_add_str(it, CSCP_CM_F_NAME, m->env[i]);
                        item_add(it, CSCP_CM_F_VALUE, "", 0);
                }
                item_add_index(it, (uint32_t)i);
        }
        for (size_t i = 0; i < m->n_ann; i++) {
                item_t *it = &items[n++];

                /* The same record the hook's Measure{pcr 11, CONFIG} made for each annotation before. */
                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_CONFIG};
                item_add_str(it, CSCP_CM_F_EVENT, "annotation");
                item_add_str(it, CSCP_CM_F_CONTAINER_ID, m->container_id);
                item_add_str(it, CSCP_CM_F_NAME, m->ann_keys[i]);
                item_add_str(it, CSCP_CM_F_VALUE, m->ann_values[i]);
        }
        {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_CONTAINER};
                item_add_str(it, CSCP_CM_F_EVENT, "create");
                item_add_str(it, CSCP_CM_F_CONTAINER_ID, m->container_id);
        }
        *ret = items;
        *ret_n = n;
        return 0;
}

int vtpm_measure_create(const char *vtpm_tcti, const char *log_path, const vtpm_create_measurements_t *m)
{
        item_t *items = NULL;
        size_t n = 0;
        int r = create_items(m, &items, &n);

        if (r < 0)
                return r;
        r = measure_items(vtpm_tcti, log_path, items, n);
        free(items);
        return r;
}

int vtpm_measure_create_log(const char *log_path, const uint16_t *banks, const vtpm_create_measurements_t *m,
                            vtpm_pending_t **ret)
{
        item_t *items = NULL;
        size_t n = 0;
        int r = create_items(m, &items, &n);

        if (r < 0)
                return r;
        r = items_log(log_path, banks, items, n, false, ret);
        free(items);
        return r;
}

int vtpm_pending_sync(vtpm_pending_t *p)
{
        if (!p || p->fd < 0)
                return -EINVAL;
        if (fsync(p->fd) < 0)
                return -errno;
        p->synced = true;
        return 0;
}

static bool field_eq(const cscp_cm_record_t *rec, cscp_cm_field_t f, const char *s)
{
        return rec->f[f].data && rec->f[f].len == strlen(s) && memcmp(rec->f[f].data, s, rec->f[f].len) == 0;
}

int vtpm_log_create_complete(const char *log_path, const char *container_id)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        struct stat st;
        int fd, r;

        if (!log_path || !container_id)
                return -EINVAL;
        fd = open(log_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        r = 0;
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                goto out;
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l);
        if (r < 0) {
                r = r == -ENOMEM ? r : 0;
                goto out;
        }
        /*
         * The parser checks every CM_TLV digest against its content (lib/eventlog/cel.c). Create's records are
         * one write ending in "create": that record whole means all of them are. Records after it (Measure,
         * later) do not matter here, nor does a torn one among them.
         */
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;

                if (ev->reg != CSCP_EVENT_PCR || !ev->extend || ev->type != CSCP_CEL_CM_TLV ||
                    cscp_cm_decode(ev->data, ev->data_len, &rec) < 0) {
                        r = 0;
                        goto out;
                }
                if (rec.kind == CSCP_CM_CONTAINER && field_eq(&rec, CSCP_CM_F_EVENT, "create") &&
                    field_eq(&rec, CSCP_CM_F_CONTAINER_ID, container_id)) {
                        r = 1;
                        goto out;
                }
        }
        r = 0; /* the end, or a torn or damaged record, before a "create" of this container */
out:
        cscp_eventlog_free(l);
        close(fd);
        return r;
}

/* --- re-extension after a vTPM restart ---------------------------------------------------------- */

typedef enum { PCRS_RESET, PCRS_REPLAYED, PCRS_OTHER } pcrs_state_t;

/* The vTPM's values of the PCRs the log uses, in every bank it has (rp's banks). */
static int pcrs_read(cscp_tpm_t *t, const cscp_replay_t *rp, uint32_t used, cscp_pcr_value_t **ret, size_t *ret_n)
{
        TPML_PCR_SELECTION sel = {0};

        for (size_t b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                TPMS_PCR_SELECTION *s;

                if (!rp->bank_present[b])
                        continue;
                s = &sel.pcrSelections[sel.count++];
                s->hash = rp->banks[b];
                s->sizeofSelect = 3;
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++)
                        if (used & (1u << p))
                                s->pcrSelect[p / 8] |= (uint8_t)(1u << (p % 8));
        }
        return cscp_tpm_pcr_read(t, &sel, ret, ret_n);
}

/* Compares the vTPM's PCRs that the log uses with their reset values and with the replay. */
static int pcrs_compare(cscp_tpm_t *t, const cscp_replay_t *rp, uint32_t used, pcrs_state_t *ret)
{
        cscp_pcr_value_t *vals = NULL;
        bool reset = true, replayed = true;
        size_t n = 0;
        int r;

        r = pcrs_read(t, rp, used, &vals, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                uint8_t want[CSCP_EVENT_MAX_DIGEST], init[CSCP_EVENT_MAX_DIGEST];
                size_t len = 0;

                memset(init, vals[i].index >= 17 && vals[i].index <= 22 ? 0xff : 0, sizeof(init));
                if (cscp_replay_pcr(rp, vals[i].hash_alg, vals[i].index, want, &len) < 0 || len != vals[i].size) {
                        r = CSCP_E_STATE;
                        goto out;
                }
                reset &= CRYPTO_memcmp(vals[i].value, init, len) == 0;
                replayed &= CRYPTO_memcmp(vals[i].value, want, len) == 0;
        }
        *ret = replayed ? PCRS_REPLAYED : reset ? PCRS_RESET : PCRS_OTHER;
        r = 0;
out:
        free(vals);
        return r;
}

/* The index in vals of (alg, pcr), or -1. */
static ssize_t val_index(const cscp_pcr_value_t *vals, size_t n, uint16_t alg, uint32_t pcr)
{
        for (size_t i = 0; i < n; i++)
                if (vals[i].hash_alg == alg && vals[i].index == pcr)
                        return (ssize_t)i;
        return -1;
}

/*
 * Per PCR and bank, how many of the log's records the vTPM already holds:
 * upto[i] = k when vals[i] equals the replay of the first k records (counted
 * over the whole log; records of other PCRs do not change it), -1 when it
 * equals no prefix.
 */
static int prefixes_find(int fd, const cscp_pcr_value_t *vals, size_t n, int64_t *upto)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t *rp = NULL;
        uint64_t i = 0;
        int r;

        for (size_t k = 0; k < n; k++) {
                uint8_t init[CSCP_EVENT_MAX_DIGEST];

                memset(init, vals[k].index >= 17 && vals[k].index <= 22 ? 0xff : 0, sizeof(init));
                upto[k] = CRYPTO_memcmp(vals[k].value, init, vals[k].size) == 0 ? 0 : -1;
        }
        rp = malloc(sizeof(*rp));
        if (!rp)
                return -ENOMEM;
        cscp_replay_init(rp);
        if (lseek(fd, 0, SEEK_SET) < 0) {
                r = -errno;
                goto out;
        }
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l);
        if (r < 0)
                goto out;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                i++;
                r = cscp_replay_extend(rp, ev);
                if (r < 0)
                        break;
                for (size_t k = 0; k < ev->n_digests; k++) {
                        uint8_t v[CSCP_EVENT_MAX_DIGEST];
                        size_t len = 0;
                        ssize_t m = val_index(vals, n, ev->digests[k].alg, ev->pcr);

                        if (m < 0 || cscp_replay_pcr(rp, ev->digests[k].alg, ev->pcr, v, &len) < 0)
                                continue;
                        if (len == vals[m].size && CRYPTO_memcmp(vals[m].value, v, len) == 0)
                                upto[m] = (int64_t)i;
                }
        }
out:
        cscp_eventlog_free(l);
        free(rp);
        return r;
}

int vtpm_log_reextend(const char *vtpm_tcti, const char *log_path)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t *rp = NULL;
        cscp_pcr_value_t *vals = NULL;
        int64_t *upto = NULL;
        size_t n_vals = 0;
        uint64_t i = 0, todo = 0;
        vtpm_log_scan_t s;
        cscp_tpm_t *t = NULL;
        pcrs_state_t st;
        int fd, r;

        if (!vtpm_tcti || !log_path)
                return -EINVAL;
        rp = malloc(sizeof(*rp));
        if (!rp)
                return -ENOMEM;
        fd = log_open_locked(log_path, O_RDONLY, NULL, rp, &s);
        if (fd < 0) {
                free(rp);
                return fd == -ENOENT ? 0 : fd; /* no log: nothing was measured */
        }
        if (s.n_records == 0) {
                r = 0;
                goto out;
        }
        r = cscp_tpm_open(vtpm_tcti, &t);
        if (r < 0)
                goto out;
        r = pcrs_compare(t, rp, s.pcrs_used, &st);
        if (r < 0)
                goto out;
        if (st == PCRS_REPLAYED) {
                log_debug("%s: the vTPM's PCRs already match the log", log_path);
                r = 0;
                goto out;
        }
        /* Reset (a restart), or some records written but not extended (a stop between the two). */
        r = pcrs_read(t, rp, s.pcrs_used, &vals, &n_vals);
        if (r < 0)
                goto out;
        upto = calloc(n_vals ? n_vals : 1, sizeof(*upto));
        if (!upto) {
                r = -ENOMEM;
                goto out;
        }
        r = prefixes_find(fd, vals, n_vals, upto);
        if (r < 0)
                goto out;
        for (size_t k = 0; k < n_vals; k++)
                if (upto[k] < 0) {
                        log_debug("%s: PCR %u bank 0x%04x of the vTPM is no prefix of the log: refusing to extend",
                                  log_path, vals[k].index, vals[k].hash_alg);
                        r = CSCP_E_STATE;
                        goto out;
                }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                r = -errno;
                goto out;
        }
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l);
        if (r < 0)
                goto out;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                for (size_t k = 0; k < ev->n_digests && r > 0; k++) {
                        ssize_t m = val_index(vals, n_vals, ev->digests[k].alg, ev->pcr);
                        int e;

                        if (m >= 0 && (int64_t)i < upto[m])
                                continue; /* the vTPM holds it already */
                        e = cscp_tpm_pcr_extend(t, ev->pcr, ev->digests[k].alg, ev->digests[k].digest,
                                                ev->digests[k].size);
                        todo++;
                        if (e < 0)
                                r = e;
                }
                i++;
                if (r < 0)
                        break;
        }
        if (r < 0) {
                log_debug("%s: re-extending: %s %s", log_path, cscp_strerror(r), cscp_eventlog_error(l));
                goto out;
        }
        log_debug("%s: %" PRIu64 " digests extended again", log_path, todo);
        r = pcrs_compare(t, rp, s.pcrs_used, &st);
        if (r == 0 && st != PCRS_REPLAYED)
                r = CSCP_E_STATE; /* something else extended meanwhile */
out:
        cscp_eventlog_free(l);
        cscp_tpm_free(t);
        close(fd);
        free(vals);
        free(upto);
        free(rp);
        return r;
}
