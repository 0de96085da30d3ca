/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host log: vtpmd's CEL-TLV log of CM_TLV records (vtpm-bind,
 * vtpm-destroy, ...), each extended into one host PCR (default 15) of every
 * configured bank. It is write-ahead: a record is appended and fsynced
 * before it is extended, so every value the PCR ever takes is explained by a
 * prefix of the log.
 *
 * Reconciliation (hostlog_open), per bank, with R(k) = replay of the first
 * k whole records and n = number of whole records:
 *   - PCR == R(n): consistent.
 *   - PCR == R(n-1): vtpmd stopped between the fsync and the extend of the
 *     last record: that record is extended now (and the PCR read again).
 *   - anything else: CSCP_E_STATE with the PCR, the bank, both values and
 *     the record count. Never papered over: the log was edited, another
 *     writer extends the PCR, or the log is from an earlier boot.
 * Banks are looked at one by one: vtpmd extends every bank of a record in one
 * TPM2_PCR_Extend now, but logs written by versions that extended bank by
 * bank may have stopped between two banks (some at R(n-1), some at R(n)).
 *
 * A tail that is not a whole record (a crash in the middle of write(), or
 * damage after the last whole record) is cut off -- ftruncate back to the
 * end of the last whole record -- ONLY when every bank already equals R(n):
 * then none of the tail's bytes reached the PCR. That is the only way it
 * can happen under this protocol: the extend of a record waits for its
 * write and fsync to complete, so a record that was ever extended is whole
 * on disk; if the tail had been extended the PCR would not equal R(n), and
 * that case is reported as above. A tail longer than one record can never
 * come from one torn append and is reported as well, and so is a torn tail
 * behind a last record that was not extended (appends never run ahead of
 * extends by more than one record: after a failed extend the handle refuses
 * further appends until the log is opened, and so reconciled, again).
 *
 * Locking: flock(LOCK_EX) is held for reconciliation and for each append +
 * extend, so a reader that takes LOCK_SH sees a log and a PCR that agree.
 * The host root of trust is opened per operation and closed after it:
 * attestd shares a single-connection TPM (swtpm) with vtpmd.
 *
 * The root of trust (include/cscp/rot.h) is a TPM or a TDX guest. The PCR is
 * named by its number here; each record carries cscp_rot_log_index(pcr) (the
 * PCR on a TPM, the CC register index on TDX: PCR 15 -> RTMR2 -> 3), and
 * R(k) is replayed in that register. On a TPM the register starts at zero
 * (0xFF for PCR 17..22). RTMR2 of a TD does not: the firmware and boot
 * loader measured PCR 8..15 events into it, which the CCEL explains, so on
 * TDX R(0) is the replay of the CCEL's events into that register.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
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
#include "cscp/rot.h"
#include "cscp/tpm.h"
#include "cscp/util.h"
#include "vtpm.h"

#define LOGMODULE hostlog
#include "cscp/log.h"

struct hostlog {
        int fd;
        char *path;
        cscp_rot_config_t rot; /* strings owned (rot_cfg_copy) */
        uint32_t pcr;          /* the PCR extended (TDX: its RTMR) */
        uint32_t index;        /* what records carry: cscp_rot_log_index(pcr) */
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1];
        size_t n_banks;
        uint64_t next_recnum;
        uint64_t size; /* bytes of whole records = where the next one starts */
        bool broken;   /* an append failed after its record may have reached the file */
        bool pending;  /* the last record is written and fsynced, its extend not done yet (lock held) */
};

static void msg_set(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg_set(char *msg, size_t len, const char *fmt, ...)
{
        va_list ap;

        if (!msg || len == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
}

/* --- reading a log ----------------------------------------------------------------------- */

/* vtpm_log_scan, with the registers starting at base's values (NULL: the reset values). */
static int log_scan_from(int fd, const cscp_replay_t *base, cscp_replay_t *ret_all, cscp_replay_t *ret_prev,
                         vtpm_log_scan_t *ret, char *msg, size_t msg_len)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_event_t last = {0};
        vtpm_log_scan_t s = {0};
        bool have_last = false;
        struct stat st;
        int r;

        if (fd < 0 || !ret_all || !ret)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                msg_set(msg, msg_len, "not a regular file");
                return CSCP_E_STATE;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        if (base)
                *ret_all = *base;
        else
                cscp_replay_init(ret_all);
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l);
        if (r < 0) {
                msg_set(msg, msg_len, "cannot read as CEL-TLV: %s", cscp_strerror(r));
                return r == -ENOMEM ? r : CSCP_E_STATE;
        }
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                if (ev->reg != CSCP_EVENT_PCR || ev->pcr >= CSCP_PCR_COUNT || !ev->extend ||
                    ev->type != CSCP_CEL_CM_TLV || ev->n_digests == 0) {
                        msg_set(msg, msg_len,
                                "record %" PRIu64 " at byte %" PRIu64 " is not a CM_TLV measurement of a PCR",
                                ev->index, ev->offset);
                        r = CSCP_E_STATE;
                        goto out;
                }
                if (have_last) {
                        r = cscp_replay_extend(ret_all, &last);
                        if (r < 0)
                                goto out;
                }
                last = *ev;
                last.data = NULL, last.data_len = 0, last.kind = NULL, last.text = NULL;
                have_last = true;
                s.n_records++;
                s.whole_len = ev->offset + ev->length;
                s.pcrs_used |= 1u << ev->pcr;
        }
        if (r < 0) {
                /* Bytes after the last whole record that do not parse: the caller decides (see top). */
                s.truncated = true;
                s.tail_len = (uint64_t)st.st_size - s.whole_len;
                msg_set(msg, msg_len,
                        "%" PRIu64 " bytes after the last whole record (byte %" PRIu64 ") do not parse: %s", s.tail_len,
                        s.whole_len, cscp_eventlog_error(l));
        }
        if (ret_prev)
                *ret_prev = *ret_all;
        if (have_last) {
                r = cscp_replay_extend(ret_all, &last);
                if (r < 0)
                        goto out;
                s.n_last = last.n_digests;
                memcpy(s.last, last.digests, sizeof(s.last));
                s.last_pcr = last.pcr;
        }
        *ret = s;
        r = 0;
out:
        cscp_eventlog_free(l);
        return r;
}

int vtpm_log_scan(int fd, cscp_replay_t *ret_all, cscp_replay_t *ret_prev, vtpm_log_scan_t *ret, char *msg,
                  size_t msg_len)
{
        return log_scan_from(fd, NULL, ret_all, ret_prev, ret, msg, msg_len);
}

/* --- PCR values ------------------------------------------------------------------------------ */

static void initial_value(uint32_t pcr, size_t size, uint8_t *out)
{
        memset(out, pcr >= 17 && pcr <= 22 ? 0xff : 0x00, size);
}

/* Replayed value of pcr in bank alg; the initial value when the log never touched the bank. */
static void replay_value(const cscp_replay_t *rp, uint16_t alg, uint32_t pcr, uint8_t *out)
{
        size_t len = 0;

        if (cscp_replay_pcr(rp, alg, pcr, out, &len) < 0)
                initial_value(pcr, cscp_hash_alg_size(alg), out);
}

static int read_pcr(cscp_rot_t *rot, uint32_t pcr, const uint16_t *banks, size_t n_banks, cscp_pcr_value_t *out)
{
        for (size_t i = 0; i < n_banks; i++) {
                size_t len = 0;
                int r;

                out[i] = (cscp_pcr_value_t){.hash_alg = banks[i], .index = (uint16_t)pcr};
                r = cscp_rot_read(rot, pcr, banks[i], out[i].value, &len);
                if (r < 0)
                        return r;
                if (len != cscp_hash_alg_size(banks[i]))
                        return CSCP_E_TPM;
                out[i].size = (uint16_t)len;
        }
        return 0;
}

/* --- the root of trust's configuration, owned by the log ---------------------------------------- */

static void rot_cfg_clear(cscp_rot_config_t *c)
{
        free((char *)c->tcti);
        free((char *)c->paths.tsm_root);
        free((char *)c->paths.mr_root);
        free((char *)c->paths.ccel_table);
        free((char *)c->paths.ccel_data);
        *c = (cscp_rot_config_t){0};
}

static int str_copy(const char *in, const char **ret)
{
        *ret = NULL;
        if (!in)
                return 0;
        *ret = strdup(in);
        return *ret ? 0 : -ENOMEM;
}

static int rot_cfg_copy(const cscp_rot_config_t *in, cscp_rot_config_t *out)
{
        int r;

        /* The host log needs the registers (and on TDX the CCEL), never a quote: no report instance per open. */
        *out = (cscp_rot_config_t){.kind = in->kind, .registers_only = true};
        if ((r = str_copy(in->tcti, &out->tcti)) < 0 || (r = str_copy(in->paths.tsm_root, &out->paths.tsm_root)) < 0 ||
            (r = str_copy(in->paths.mr_root, &out->paths.mr_root)) < 0 ||
            (r = str_copy(in->paths.ccel_table, &out->paths.ccel_table)) < 0 ||
            (r = str_copy(in->paths.ccel_data, &out->paths.ccel_data)) < 0)
                rot_cfg_clear(out);
        return r;
}

/*
 * R(0): where the register stands before the first record. NULL *ret: the reset values (a TPM). On TDX the
 * replay of the CCEL (every register it names; the host log's register among them).
 */
static int boot_base(hostlog_t *h, cscp_rot_t *rot, cscp_replay_t **ret, char *msg, size_t msg_len)
{
        cscp_eventlog_opts_t opts = {.max_record = CSCP_TDX_CCEL_MAX, .max_events = 1000000};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t *rp = NULL;
        uint8_t *area = NULL;
        size_t area_len = 0;
        int r;

        *ret = NULL;
        if (cscp_rot_kind(rot) != CSCP_ROT_TDX)
                return 0;
        r = cscp_rot_firmware_log(rot, &area, &area_len);
        if (r < 0) {
                msg_set(msg, msg_len,
                        "host log %s: cannot read the CCEL, which explains RTMR%u at boot: %s (the CCEL paths: "
                        "--ccel-table, --ccel-data)",
                        h->path, h->index - 1, cscp_strerror(r));
                return r;
        }
        rp = malloc(sizeof(*rp));
        if (!rp) {
                r = -ENOMEM;
                goto out;
        }
        cscp_replay_init(rp);
        r = cscp_eventlog_open_mem(area, area_len, CSCP_EVENTLOG_TCG, &opts, NULL, &l);
        while (r == 0 && (r = cscp_eventlog_next(l, &ev)) > 0)
                r = cscp_replay_extend(rp, ev) < 0 ? CSCP_E_PROTO : 0;
        if (r < 0) {
                msg_set(msg, msg_len, "host log %s: the CCEL does not replay: %s", h->path,
                        l && cscp_eventlog_error(l)[0] ? cscp_eventlog_error(l) : cscp_strerror(r));
                r = CSCP_E_STATE;
                goto out;
        }
        *ret = rp;
        rp = NULL;
out:
        cscp_eventlog_free(l);
        free(rp);
        free(area);
        return r;
}

static const char *bank_name(uint16_t alg)
{
        const char *n = cscp_hash_alg_name(alg);

        return n ? n : "?";
}

/* --- open / reconcile -------------------------------------------------------------------------- */

static int banks_check(const uint16_t *banks, uint16_t *out, size_t *ret_n)
{
        size_t n = 0;

        if (!banks)
                return -EINVAL;
        for (; banks[n]; n++) {
                if (n == CSCP_EVENT_MAX_DIGESTS || cscp_hash_alg_size(banks[n]) == 0)
                        return CSCP_E_UNSUPPORTED;
                for (size_t j = 0; j < n; j++)
                        if (banks[j] == banks[n])
                                return -EINVAL;
                out[n] = banks[n];
        }
        if (n == 0)
                return -EINVAL;
        out[n] = 0;
        *ret_n = n;
        return 0;
}

static int fsync_parent(const char *path)
{
        char *copy = strdup(path);
        int dfd, r = 0;

        if (!copy)
                return -ENOMEM;
        dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                r = -errno;
        if (dfd >= 0)
                close(dfd);
        free(copy);
        return r;
}

enum { AT_ALL, AT_PREV, AT_NEITHER };

static int reconcile(hostlog_t *h, char *msg, size_t msg_len)
{
        cscp_replay_t *all = NULL, *prev = NULL, *base = NULL;
        cscp_pcr_value_t cur[CSCP_EVENT_MAX_DIGESTS];
        uint8_t want_all[CSCP_EVENT_MAX_DIGEST], want_prev[CSCP_EVENT_MAX_DIGEST], want_base[CSCP_EVENT_MAX_DIGEST];
        bool tdx = h->rot.kind == CSCP_ROT_TDX;
        char tail_msg[512] = "";
        int state[CSCP_EVENT_MAX_DIGESTS];
        bool any_prev = false;
        vtpm_log_scan_t s;
        cscp_rot_t *t = NULL;
        int r;

        all = malloc(sizeof(*all));
        prev = malloc(sizeof(*prev));
        if (!all || !prev) {
                r = -ENOMEM;
                goto out;
        }
        r = cscp_rot_open(&h->rot, &t);
        if (r < 0) {
                msg_set(msg, msg_len, "host log %s: cannot open the host root of trust (%s): %s", h->path,
                        cscp_rot_kind_to_string(h->rot.kind), cscp_strerror(r));
                goto out;
        }
        r = boot_base(h, t, &base, msg, msg_len);
        if (r < 0)
                goto out;
        r = log_scan_from(h->fd, base, all, prev, &s, tail_msg, sizeof(tail_msg));
        if (r < 0) {
                msg_set(msg, msg_len, "host log %s: %s", h->path, tail_msg);
                goto out;
        }
        if (s.n_records > 0 && (s.pcrs_used & ~(1u << h->index))) {
                msg_set(msg, msg_len, "host log %s: records extend %s other than %u (mask 0x%06x)", h->path,
                        tdx ? "registers" : "PCRs", h->index, (unsigned)s.pcrs_used);
                r = CSCP_E_STATE;
                goto out;
        }
        if (s.truncated && s.tail_len > VTPM_LOG_MAX_RECORD) {
                msg_set(msg, msg_len, "host log %s: %s; more than one record's worth, not a torn append", h->path,
                        tail_msg);
                r = CSCP_E_STATE;
                goto out;
        }
        r = read_pcr(t, h->pcr, h->banks, h->n_banks, cur);
        if (r < 0) {
                msg_set(msg, msg_len, "host log %s: cannot read host PCR %u: %s", h->path, h->pcr, cscp_strerror(r));
                goto out;
        }
        for (size_t i = 0; i < h->n_banks; i++) {
                uint16_t alg = h->banks[i];
                size_t size = cscp_hash_alg_size(alg);

                replay_value(all, alg, h->index, want_all);
                replay_value(prev, alg, h->index, want_prev);
                if (cur[i].size == size && CRYPTO_memcmp(cur[i].value, want_all, size) == 0) {
                        state[i] = AT_ALL;
                } else if (s.n_records > 0 && cur[i].size == size &&
                           CRYPTO_memcmp(cur[i].value, want_prev, size) == 0) {
                        state[i] = AT_PREV;
                        any_prev = true;
                } else {
                        char a[2 * CSCP_EVENT_MAX_DIGEST + 1], b[2 * CSCP_EVENT_MAX_DIGEST + 1], reg[48];
                        bool at_boot;

                        /* R(0): zero (TPM) or the CCEL's value (TDX) */
                        replay_value(base ? base : all, alg, h->index, want_base);
                        if (!base)
                                memset(want_base, 0, size);
                        at_boot = cur[i].size == size && CRYPTO_memcmp(cur[i].value, want_base, size) == 0;
                        if (tdx)
                                snprintf(reg, sizeof(reg), "PCR %u (RTMR%u)", h->pcr, h->index - 1);
                        else
                                snprintf(reg, sizeof(reg), "PCR %u", h->pcr);
                        cscp_hex_encode(cur[i].value, cur[i].size < size ? cur[i].size : size, a);
                        cscp_hex_encode(want_all, size, b);
                        msg_set(msg, msg_len,
                                "host log %s and host %s disagree in bank %s: the register is %s, replaying %s"
                                "the log's %" PRIu64 " records gives %s%s%s",
                                h->path, reg, bank_name(alg), a, tdx ? "the CCEL and " : "", s.n_records, b,
                                s.truncated ? " (and the log ends in a torn record)" : "",
                                at_boot && s.n_records > 0
                                        ? (tdx ? "; the register is at its boot value (the CCEL's): is the log from "
                                                 "an earlier boot?"
                                               : "; the PCR is at its reset value: is the log from an earlier boot?")
                                        : "; was the log edited, or does something else extend this register?");
                        r = CSCP_E_STATE;
                        goto out;
                }
        }

        if (any_prev) {
                if (s.truncated) {
                        msg_set(msg, msg_len,
                                "host log %s: the last whole record is not in host PCR %u and %s; appends never "
                                "run two records ahead",
                                h->path, h->pcr, tail_msg);
                        r = CSCP_E_STATE;
                        goto out;
                }
                for (size_t i = 0; i < h->n_banks; i++) {
                        const cscp_event_digest_t *d = NULL;

                        if (state[i] != AT_PREV)
                                continue;
                        for (size_t k = 0; k < s.n_last; k++)
                                if (s.last[k].alg == h->banks[i])
                                        d = &s.last[k];
                        if (!d) { /* cannot be: then R(n) == R(n-1) for this bank */
                                r = CSCP_E_STATE;
                                goto out;
                        }
                        r = cscp_rot_extend(t, h->pcr, d, 1);
                        if (r < 0) {
                                msg_set(msg, msg_len, "host log %s: extending record %" PRIu64 " into PCR %u: %s",
                                        h->path, s.n_records - 1, h->pcr, cscp_strerror(r));
                                goto out;
                        }
                }
                log_debug("%s: extended record %" PRIu64 " (written before a stop, not extended)", h->path,
                          s.n_records - 1);
                /* Check the result like any other state. */
                r = read_pcr(t, h->pcr, h->banks, h->n_banks, cur);
                if (r < 0)
                        goto out;
                for (size_t i = 0; i < h->n_banks; i++) {
                        size_t size = cscp_hash_alg_size(h->banks[i]);

                        replay_value(all, h->banks[i], h->index, want_all);
                        if (cur[i].size != size || CRYPTO_memcmp(cur[i].value, want_all, size) != 0) {
                                msg_set(msg, msg_len,
                                        "host log %s: host PCR %u bank %s moved while it was being reconciled", h->path,
                                        h->pcr, bank_name(h->banks[i]));
                                r = CSCP_E_STATE;
                                goto out;
                        }
                }
        }
        if (s.truncated) {
                /* Every bank is at R(n): none of the tail reached the PCR (see top). */
                if (ftruncate(h->fd, (off_t)s.whole_len) < 0 || fsync(h->fd) < 0) {
                        r = -errno;
                        msg_set(msg, msg_len, "host log %s: cutting the torn tail: %s", h->path, strerror(-r));
                        goto out;
                }
                log_debug("%s: cut %" PRIu64 " bytes of a torn, never extended record", h->path, s.tail_len);
        }
        h->next_recnum = s.n_records;
        h->size = s.whole_len;
        r = 0;
out:
        cscp_rot_free(t);
        free(base);
        free(all);
        free(prev);
        return r;
}

/* The banks of rot (banks NULL: all of them; else banks, each of which the root must have), 0-terminated. */
static int banks_of_rot(const cscp_rot_config_t *cfg, const uint16_t *banks, uint16_t *out, size_t *ret_n, char *msg,
                        size_t msg_len)
{
        uint16_t have[CSCP_EVENT_MAX_DIGESTS + 1] = {0};
        cscp_rot_t *rot = NULL;
        size_t n = 0;
        int r;

        r = cscp_rot_open(cfg, &rot);
        if (r == 0)
                r = cscp_rot_banks(rot, have, CSCP_EVENT_MAX_DIGESTS, &n);
        cscp_rot_free(rot);
        if (r < 0) {
                msg_set(msg, msg_len, "cannot read the banks of the host root of trust (%s): %s",
                        cscp_rot_kind_to_string(cfg->kind), cscp_strerror(r));
                return r;
        }
        have[n] = 0;
        if (!banks)
                banks = have;
        r = banks_check(banks, out, ret_n);
        if (r < 0) {
                msg_set(msg, msg_len, "bad bank list");
                return r;
        }
        for (size_t i = 0; i < *ret_n; i++) {
                bool found = false;
                for (size_t k = 0; k < n; k++)
                        found |= have[k] == out[i];
                if (!found) {
                        msg_set(msg, msg_len, "the host root of trust (%s) has no %s bank",
                                cscp_rot_kind_to_string(cfg->kind), bank_name(out[i]));
                        return CSCP_E_UNSUPPORTED;
                }
        }
        return 0;
}

int hostlog_open(const char *path, const char *host_tcti, uint32_t pcr, const uint16_t *banks, hostlog_t **ret,
                 char *ret_msg, size_t msg_len)
{
        cscp_rot_config_t rot = {.kind = CSCP_ROT_TPM, .tcti = host_tcti};

        if (!banks)
                return -EINVAL;
        return hostlog_open_rot(path, &rot, pcr, banks, ret, ret_msg, msg_len);
}

int hostlog_open_rot(const char *path, const cscp_rot_config_t *rot, uint32_t pcr, const uint16_t *banks,
                     hostlog_t **ret, char *ret_msg, size_t msg_len)
{
        hostlog_t *h;
        int r;

        msg_set(ret_msg, msg_len, "%s", "");
        if (!path || !ret || !rot)
                return -EINVAL;
        if (pcr >= CSCP_PCR_COUNT)
                return CSCP_E_PCRSEL;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->fd = -1;
        h->pcr = pcr;
        h->path = strdup(path);
        if (!h->path || rot_cfg_copy(rot, &h->rot) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = cscp_rot_kind_log_index(rot->kind, pcr, &h->index);
        if (r < 0) {
                msg_set(ret_msg, msg_len, "host PCR %u has no register on the %s root of trust%s", pcr,
                        cscp_rot_kind_to_string(rot->kind),
                        rot->kind == CSCP_ROT_TDX ? " (TDX: PCR 8..15 -> RTMR2 are the ones a log can extend)" : "");
                goto fail;
        }
        r = banks_of_rot(&h->rot, banks, h->banks, &h->n_banks, ret_msg, msg_len);
        if (r < 0)
                goto fail;
        h->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (h->fd < 0) {
                r = -errno;
                msg_set(ret_msg, msg_len, "host log %s: %s", path, strerror(-r));
                goto fail;
        }
        r = fsync_parent(path); /* the log's name is durable before any record depends on it */
        if (r < 0)
                goto fail;
        if (flock(h->fd, LOCK_EX) < 0) {
                r = -errno;
                goto fail;
        }
        r = reconcile(h, ret_msg, msg_len);
        (void)flock(h->fd, LOCK_UN);
        if (r < 0)
                goto fail;
        *ret = h;
        return 0;
fail:
        hostlog_close(h);
        return r;
}

void hostlog_close(hostlog_t *h)
{
        if (!h)
                return;
        if (h->fd >= 0)
                close(h->fd);
        free(h->path);
        rot_cfg_clear(&h->rot);
        free(h);
}

/* --- append -------------------------------------------------------------------------------------- */

int vtpm_log_record(uint64_t recnum, uint32_t pcr, const uint16_t *banks, cscp_cm_kind_t kind,
                    const cscp_cm_field_value_t *fields, size_t n_fields, cscp_event_digest_t *ret_digests,
                    size_t *ret_n, uint8_t **ret, size_t *ret_len)
{
        uint8_t *content = NULL;
        size_t content_len = 0, total = 0;
        int r;

        if (n_fields > CSCP_CM_MAX_FIELDS || (n_fields && !fields))
                return -EINVAL;
        for (size_t i = 0; i < n_fields; i++) {
                if (fields[i].len > VTPM_LOG_MAX_CONTENT - total)
                        return CSCP_E_TOO_BIG;
                total += fields[i].len;
        }
        r = cscp_cm_encode(kind, fields, n_fields, &content, &content_len);
        if (r < 0)
                return r;
        if (content_len > VTPM_LOG_MAX_CONTENT) {
                r = CSCP_E_TOO_BIG;
                goto out;
        }
        r = cscp_cm_digests(content, content_len, banks, ret_digests, ret_n);
        if (r < 0)
                goto out;
        r = cscp_cel_tlv_encode(recnum, pcr, false, ret_digests, *ret_n, CSCP_CEL_CM_TLV, content, content_len, ret,
                                ret_len);
out:
        free(content);
        return r;
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

/* Extends the record the last append wrote (p), then drops the lock append took. */
static int extend_pending(hostlog_t *h, const hostlog_pending_t *p)
{
        cscp_rot_t *t = NULL;
        int r;

        /* From here on the record is in the log; any failure leaves it for the reconciliation. */
        r = cscp_rot_open(&h->rot, &t);
        if (r == 0)
                r = cscp_rot_extend(t, h->pcr, p->d, p->n); /* TPM: every bank in one command */
        if (r < 0) {
                log_debug("%s: record %" PRIu64 " is logged but extending PCR %u failed: %s", h->path, p->recnum,
                          h->pcr, cscp_strerror(r));
                h->broken = true;
        }
        cscp_rot_free(t);
        h->pending = false;
        (void)flock(h->fd, LOCK_UN);
        return r;
}

static int append(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields, bool extend,
                  hostlog_pending_t *ret_pending)
{
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        hostlog_pending_t p = {0};
        uint8_t *rec = NULL;
        size_t n_d = 0, len = 0;
        struct stat st;
        int r;

        if (!h)
                return -EINVAL;
        if (h->broken || h->pending) {
                log_debug("%s: %s", h->path,
                          h->pending ? "the last record is not extended yet"
                                     : "an earlier append failed; reopen the log to reconcile it");
                return CSCP_E_STATE;
        }
        r = vtpm_log_record(h->next_recnum, h->index, h->banks, kind, fields, n_fields, d, &n_d, &rec, &len);
        if (r < 0)
                return r;
        if (flock(h->fd, LOCK_EX) < 0) {
                r = -errno;
                goto out;
        }
        if (fstat(h->fd, &st) < 0) {
                r = -errno;
                goto out_unlock;
        }
        if ((uint64_t)st.st_size != h->size) {
                log_debug("%s: %" PRIu64 " bytes, expected %" PRIu64 ": changed behind our back", h->path,
                          (uint64_t)st.st_size, h->size);
                h->broken = true;
                r = CSCP_E_STATE;
                goto out_unlock;
        }
        r = write_all(h->fd, rec, len);
        if (r == 0 && fsync(h->fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Take back what may have been written; if that fails too, only a reopen can tell. */
                if (ftruncate(h->fd, (off_t)h->size) < 0 || fsync(h->fd) < 0)
                        h->broken = true;
                log_debug("%s: append: %s", h->path, strerror(-r));
                goto out_unlock;
        }
        h->size += len;
        h->next_recnum++;
        if (!extend) {
                h->broken = true; /* as after a crash: only a reopen (reconciliation) goes on from here */
                r = 0;
                goto out_unlock;
        }
        p.n = n_d;
        p.recnum = h->next_recnum - 1;
        memcpy(p.d, d, sizeof(p.d));
        h->pending = true;
        free(rec);
        if (ret_pending) {
                /* The caller extends it (hostlog_extend_pending); the lock stays held until then. */
                *ret_pending = p;
                return 0;
        }
        return extend_pending(h, &p);
out_unlock:
        (void)flock(h->fd, LOCK_UN);
out:
        free(rec);
        return r;
}

int hostlog_append(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields)
{
        return append(h, kind, fields, n_fields, true, NULL);
}

int hostlog_append_deferred(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields,
                            hostlog_pending_t *ret)
{
        if (!ret)
                return -EINVAL;
        return append(h, kind, fields, n_fields, true, ret);
}

int hostlog_extend_pending(hostlog_t *h, const hostlog_pending_t *p)
{
        if (!h || !p || !h->pending)
                return -EINVAL;
        return extend_pending(h, p);
}

int hostlog_append_no_extend(hostlog_t *h, cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields)
{
        return append(h, kind, fields, n_fields, false, NULL);
}
