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
 *   6. CONTAINER event "create", container_id: the create measurements are complete
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

/* Appends items as records (one write, one fsync), then extends them in order. */
static int measure_items(const char *tcti, const char *log_path, const item_t *items, size_t n_items)
{
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1] = {0};
        cscp_event_digest_t(*dig)[CSCP_EVENT_MAX_DIGESTS] = NULL;
        size_t *n_dig = NULL, n_banks = 0, len = 0, cap = 0;
        uint8_t *buf = NULL;
        uint64_t recnum = 0;
        cscp_tpm_t *t = NULL;
        off_t start = 0;
        int fd = -1, r;

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
        dig = calloc(n_items, sizeof(*dig));
        n_dig = calloc(n_items, sizeof(*n_dig));
        if (!dig || !n_dig) {
                r = -ENOMEM;
                goto out;
        }
        fd = log_open_locked(log_path, O_RDWR | O_CREAT | O_APPEND, &recnum, NULL, NULL);
        if (fd < 0) {
                r = fd;
                goto out;
        }
        for (size_t i = 0; i < n_items; i++) {
                uint8_t *rec = NULL;
                size_t rec_len = 0;

                r = vtpm_log_record(recnum + i, items[i].pcr, banks, items[i].kind, items[i].f, items[i].n, dig[i],
                                    &n_dig[i], &rec, &rec_len);
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

        start = lseek(fd, 0, SEEK_END);
        if (start < 0) {
                r = -errno;
                goto out;
        }
        r = write_all(fd, buf, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Nothing was extended yet: take the records back. */
                if (ftruncate(fd, start) == 0)
                        (void)fsync(fd);
                goto out;
        }
        for (size_t i = 0; i < n_items; i++)
                for (size_t k = 0; k < n_dig[i]; k++) {
                        r = cscp_tpm_pcr_extend(t, items[i].pcr, dig[i][k].alg, dig[i][k].digest, dig[i][k].size);
                        if (r < 0) {
                                log_debug("%s: record %" PRIu64 " logged but not extended: %s", log_path, recnum + i,
                                          cscp_strerror(r));
                                goto out;
                        }
                }
        r = 0;
out:
        if (fd >= 0)
                close(fd); /* drops the lock */
        cscp_tpm_free(t);
        free(buf);
        free(dig);
        free(n_dig);
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

int vtpm_measure_create(const char *vtpm_tcti, const char *log_path, const vtpm_create_measurements_t *m)
{
        item_t *items = NULL;
        size_t n = 0, total = 0, max;
        int r;

        if (!m || !m->container_id || (m->n_args && !m->args) || (m->n_env && !m->env) || (m->n_layers && !m->layers))
                return -EINVAL;
        if (m->n_args > CREATE_MAX_ITEMS || m->n_env > CREATE_MAX_ITEMS || m->n_layers > CREATE_MAX_ITEMS)
                return CSCP_E_TOO_BIG;
        max = 3 + m->n_args + m->n_env + m->n_layers;
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
        {
                item_t *it = &items[n++];

                *it = (item_t){.pcr = PCR_CONTAINER, .kind = CSCP_CM_CONTAINER};
                item_add_str(it, CSCP_CM_F_EVENT, "create");
                item_add_str(it, CSCP_CM_F_CONTAINER_ID, m->container_id);
        }
        r = measure_items(vtpm_tcti, log_path, items, n);
        free(items);
        return r;
}

/* --- re-extension after a vTPM restart ---------------------------------------------------------- */

typedef enum { PCRS_RESET, PCRS_REPLAYED, PCRS_OTHER } pcrs_state_t;

/* Compares the vTPM's PCRs that the log uses with their reset values and with the replay. */
static int pcrs_compare(cscp_tpm_t *t, const cscp_replay_t *rp, uint32_t used, pcrs_state_t *ret)
{
        TPML_PCR_SELECTION sel = {0};
        cscp_pcr_value_t *vals = NULL;
        bool reset = true, replayed = true;
        size_t n = 0;
        int r;

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
        r = cscp_tpm_pcr_read(t, &sel, &vals, &n);
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

int vtpm_log_reextend(const char *vtpm_tcti, const char *log_path)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t *rp = NULL;
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
        if (st != PCRS_RESET) {
                log_debug("%s: the vTPM's PCRs are neither reset nor the log's replay: refusing to extend", log_path);
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
                        int e = cscp_tpm_pcr_extend(t, ev->pcr, ev->digests[k].alg, ev->digests[k].digest,
                                                    ev->digests[k].size);
                        if (e < 0)
                                r = e;
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                log_debug("%s: re-extending: %s %s", log_path, cscp_strerror(r), cscp_eventlog_error(l));
                goto out;
        }
        r = pcrs_compare(t, rp, s.pcrs_used, &st);
        if (r == 0 && st != PCRS_REPLAYED)
                r = CSCP_E_STATE; /* something else extended meanwhile */
out:
        cscp_eventlog_free(l);
        cscp_tpm_free(t);
        close(fd);
        free(rp);
        return r;
}
