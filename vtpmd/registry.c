/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry: one directory per instance under <state>/instances/<uid>,
 * described by its `meta` file (key=value lines, written atomically). The
 * state in meta says how far the instance got:
 *   new      provisioning started (key, swtpm, manufacture); for a Create
 *            without the pool, container_id is already set
 *   pool     manufactured, waiting in the warm pool
 *   binding  (written by versions before the bind-record commit; read only)
 *   ready    bound to container_id
 * A Create is committed by the vtpm-bind record in the host log (fsynced,
 * naming the vTPM's EK) together with a complete, fsynced container log;
 * meta "ready" is written after the acknowledgement (control.c bind_work).
 * So at start the host log is read first (which EKs have a vtpm-bind not
 * followed by a vtpm-destroy, and for which container), then, per instance:
 *   new/pool + a bind record + a complete container log  -> bound (ready):
 *            the Create was acknowledged, or could have been
 *   new/pool + a bind record, container log incomplete   -> vtpm-destroy
 *            recorded, wiped (never acknowledged)
 *   new      without a bind record                       -> wiped
 *   pool     without a bind record, with a container log -> wiped (a Create
 *            stopped before its bind record was durable)
 *   pool     without anything                            -> the pool
 *   binding                                              -> vtpm-destroy, wiped
 *   ready    whose last host log record is vtpm-destroy  -> wiped (a Destroy
 *            stopped after its record, before removing meta)
 *   ready    otherwise                                   -> re-adopted
 * Re-adopted instances (ready and pool) keep their running swtpm (pid file,
 * /proc, control socket) or are restarted from their state and re-extended;
 * either way meta is written again (state ready/pool) once checked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGMODULE registry
#include "cel.h"
#include "core.h"
#include "endpoint.h"
#include "error.h"
#include "eventlog.h"
#include "log.h"
#include "util.h"

#define META_MAX 4096

static const char *state_word(instance_state_t s)
{
        switch (s) {
        case INST_NEW:
                return "new";
        case INST_POOL:
                return "pool";
        case INST_BINDING:
                return "binding";
        case INST_READY:
        case INST_RESTARTING:
        case INST_DESTROYING:
        case INST_FAILED:
                return "ready";
        }
        return "new";
}

int registry_save(const instance_t *inst, instance_state_t state)
{
        char buf[META_MAX];
        int n;

        n = snprintf(buf, sizeof(buf),
                     "version=1\nuid=%s\ncontainer_id=%s\nstate=%s\nfrom_pool=%d\ncreated=%llu\nrestarts=%u\n",
                     inst->uid, inst->id, state_word(state), inst->from_pool ? 1 : 0, (unsigned long long)inst->created,
                     inst->restarts);
        if (n < 0 || (size_t)n >= sizeof(buf))
                return -ENAMETOOLONG;
        return cscp_file_write_atomic(inst->meta, buf, (size_t)n, 0600);
}

instance_t *registry_find(vtpmd_t *d, const char *container_id)
{
        for (instance_t *i = d->instances; i; i = i->next)
                if (i->id[0] && strcmp(i->id, container_id) == 0)
                        return i;
        return NULL;
}

void registry_add(vtpmd_t *d, instance_t *inst)
{
        if (inst->in_list)
                return;
        inst->next = d->instances;
        d->instances = inst;
        inst->in_list = true;
}

void registry_remove(vtpmd_t *d, instance_t *inst)
{
        for (instance_t **p = &d->instances; *p; p = &(*p)->next) {
                if (*p == inst) {
                        *p = inst->next;
                        inst->next = NULL;
                        inst->in_list = false;
                        return;
                }
        }
}

typedef struct meta {
        char uid[VTPMD_UID_LEN + 1];
        char id[VTPMD_ID_MAX + 1];
        char state[16];
        bool from_pool;
        unsigned long long created;
        unsigned restarts;
} meta_t;

static int meta_load(const char *path, meta_t *ret)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        meta_t m = {0};
        bool version = false;
        int r;

        r = cscp_file_read(path, META_MAX, &buf, &len);
        if (r < 0)
                return r;
        for (char *line = (char *)buf, *end; line < (char *)buf + len; line = end + 1) {
                end = memchr(line, '\n', (size_t)((char *)buf + len - line));
                if (!end) {
                        r = CSCP_E_STATE; /* every line ends in \n: a truncated file is not ours */
                        goto out;
                }
                *end = '\0';
                char *eq = strchr(line, '=');
                if (!eq) {
                        r = CSCP_E_STATE;
                        goto out;
                }
                *eq = '\0';
                const char *k = line, *v = eq + 1;
                if (strcmp(k, "version") == 0)
                        version = strcmp(v, "1") == 0;
                else if (strcmp(k, "uid") == 0)
                        vtpmd_fmt(m.uid, sizeof(m.uid), "%s", v);
                else if (strcmp(k, "container_id") == 0) {
                        if (strlen(v) > VTPMD_ID_MAX) {
                                r = CSCP_E_STATE;
                                goto out;
                        }
                        vtpmd_fmt(m.id, sizeof(m.id), "%s", v);
                } else if (strcmp(k, "state") == 0)
                        vtpmd_fmt(m.state, sizeof(m.state), "%s", v);
                else if (strcmp(k, "from_pool") == 0)
                        m.from_pool = strcmp(v, "1") == 0;
                else if (strcmp(k, "created") == 0)
                        m.created = strtoull(v, NULL, 10);
                else if (strcmp(k, "restarts") == 0)
                        m.restarts = (unsigned)strtoul(v, NULL, 10);
        }
        if (!version) {
                r = CSCP_E_STATE;
                goto out;
        }
        *ret = m;
        r = 0;
out:
        free(buf);
        return r;
}

static bool is_uid(const char *s)
{
        if (strlen(s) != VTPMD_UID_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* Kills a leftover swtpm of a half-made instance (only if /proc says it is ours) and wipes it. */
static void wipe_half_made(vtpmd_t *d, instance_t *inst, const char *why)
{
        char pool_ep[PATH_MAX];

        log_warn("%s%s%s: %s: wiping it (it was never acknowledged)", inst->uid, inst->id[0] ? " for " : "", inst->id,
                 why);
        if (instance_adopt(inst) == 0) {
                kill(inst->pid, SIGKILL);
                inst->pid = 0;
        }
        (void)instance_rm_rf(inst->dir);
        vtpmd_fmt(pool_ep, sizeof(pool_ep), "%s/%s", d->pool_run, inst->uid);
        (void)instance_rm_rf(pool_ep);
        if (inst->id[0] && vtpmd_container_id_check(inst->id, d->id_max) == 0) {
                char ep[PATH_MAX];
                vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->vtpm_run, inst->id);
                (void)instance_rm_rf(ep);
        }
}

/* What the host log says about one instance (matched by the SHA-256 of its EK). */
typedef enum bind_last { BIND_NONE, BIND_BOUND, BIND_DESTROYED } bind_last_t;

typedef struct bindinfo {
        char uid[VTPMD_UID_LEN + 1];
        uint8_t ek[32];
        bool have_ek;
        bind_last_t last;
        bool id_ok;                /* the bind record's container id fits and is valid */
        char id[VTPMD_ID_MAX + 1]; /* from the last vtpm-bind */
} bindinfo_t;

/*
 * Binds a new/pool instance whose vtpm-bind record is in the host log: 1 bound
 * (inst->id set, go on as ready), 0 wiped or left alone (done with it).
 */
static int rebind(vtpmd_t *d, instance_t *inst, const bindinfo_t *bi, const char *meta_state, const char *meta_id)
{
        char pool_ep[PATH_MAX];
        int r;

        if (!bi->id_ok || (meta_id[0] && strcmp(meta_id, bi->id) != 0)) {
                log_error("%s: meta says %s for '%s', the host log binds it to '%s'; leaving it alone", inst->uid,
                          meta_state, meta_id, bi->id_ok ? bi->id : "(an invalid container id)");
                return 0;
        }
        vtpmd_fmt(inst->id, sizeof(inst->id), "%s", bi->id);
        r = vtpm_log_create_complete(inst->log, bi->id);
        if (r < 0) {
                log_error("%s: cannot read the container log %s: %s; leaving it alone", inst->uid, inst->log,
                          strerror(-r));
                return 0;
        }
        if (r == 0) {
                /* The bind record reached the host log, the measurements did not all reach the disk: never
                 * acknowledged (Create answers only after both fsyncs). Undo the binding in the host log. */
                if (vtpm_identity_load(inst->identity, &inst->ident) == 0) {
                        inst->have_ident = true;
                        r = control_host_event(d, "vtpm-destroy", inst);
                        if (r < 0)
                                log_error("%s: cannot record vtpm-destroy for the interrupted Create of %s: %s",
                                          inst->uid, inst->id, cscp_strerror(r));
                }
                wipe_half_made(d, inst,
                               "vtpm-bind is in the host log but the container log is incomplete: Create "
                               "was interrupted");
                return 0;
        }
        if (strcmp(meta_state, "pool") == 0) {
                inst->from_pool = true;
                vtpmd_fmt(pool_ep, sizeof(pool_ep), "%s/%s", d->pool_run, inst->uid);
                (void)instance_rm_rf(pool_ep);
        }
        log_info("%s: bound to %s by its vtpm-bind record and complete container log (meta said %s: the instance "
                 "record is written after the acknowledgement)",
                 inst->uid, inst->id, meta_state);
        return 1;
}

static void recover_one(vtpmd_t *d, const char *uid, const bindinfo_t *bi)
{
        instance_t *inst;
        meta_t m;
        char path[PATH_MAX], ep[PATH_MAX];
        bool pool;
        int r;

        vtpmd_fmt(path, sizeof(path), "%s/%s/meta", d->inst_root, uid);
        inst = instance_new(d, uid);
        if (!inst) {
                log_error("%s: out of memory", uid);
                return;
        }
        r = meta_load(path, &m);
        if (r < 0 || strcmp(m.uid, uid) != 0) {
                /* No meta yet: provisioning died before its first write (no identity: never bound either). */
                wipe_half_made(d, inst, r == -ENOENT ? "no record" : "unreadable record");
                goto drop;
        }
        vtpmd_fmt(inst->id, sizeof(inst->id), "%s", m.id);
        inst->from_pool = m.from_pool;
        inst->created = m.created;
        inst->restarts = m.restarts;
        if (strcmp(m.state, "new") == 0 || strcmp(m.state, "pool") == 0) {
                if (bi->last == BIND_BOUND) {
                        if (rebind(d, inst, bi, m.state, m.id) == 0)
                                goto drop;
                        pool = false;
                        goto adopt;
                }
                if (strcmp(m.state, "new") == 0) {
                        wipe_half_made(d, inst, "provisioning was interrupted");
                        goto drop;
                }
                if (bi->last == BIND_DESTROYED || access(inst->log, F_OK) == 0) {
                        inst->id[0] = '\0';
                        wipe_half_made(d, inst,
                                       "a Create from the pool was interrupted before its vtpm-bind record "
                                       "was durable");
                        goto drop;
                }
                pool = true;
                goto adopt;
        }
        if (strcmp(m.state, "binding") == 0) {
                if (vtpm_identity_load(inst->identity, &inst->ident) == 0) {
                        inst->have_ident = true;
                        r = control_host_event(d, "vtpm-destroy", inst);
                        if (r < 0)
                                log_error("%s: cannot record vtpm-destroy for the interrupted Create of %s: %s", uid,
                                          inst->id, cscp_strerror(r));
                }
                wipe_half_made(d, inst, "Create was interrupted");
                goto drop;
        }
        if (strcmp(m.state, "ready") != 0) {
                log_error("%s: unknown state '%s' in %s; leaving it alone", uid, m.state, path);
                goto drop;
        }
        if (bi->last == BIND_DESTROYED) {
                /* Destroy records vtpm-destroy first, then removes meta: it stopped in between. */
                log_warn("%s: the host log records vtpm-destroy of %s: finishing its interrupted Destroy", uid,
                         inst->id);
                if (instance_adopt(inst) == 0) {
                        kill(inst->pid, SIGKILL);
                        inst->pid = 0;
                }
                (void)unlink(inst->meta);
                (void)instance_rm_rf(inst->dir);
                if (vtpmd_container_id_check(inst->id, d->id_max) == 0) {
                        vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->vtpm_run, inst->id);
                        (void)instance_rm_rf(ep);
                }
                goto drop;
        }
        pool = false;
adopt:
        if (!pool && (vtpmd_container_id_check(inst->id, d->id_max) < 0 || registry_find(d, inst->id))) {
                log_error("%s: invalid or duplicate container id '%s' in %s; leaving it alone", uid, inst->id, path);
                goto drop;
        }
        r = vtpm_identity_load(inst->identity, &inst->ident);
        if (r < 0) {
                log_error("%s: cannot load the identity of %s: %s; leaving it alone", uid,
                          pool ? "a pool instance" : inst->id, cscp_strerror(r));
                goto drop;
        }
        inst->have_ident = true;
        if (pool)
                vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->pool_run, uid);
        else
                vtpmd_fmt(ep, sizeof(ep), "%s/%s", d->vtpm_run, inst->id);
        instance_set_endpoint(inst, ep);
        registry_add(d, inst);
        if (pool)
                d->pool_ready++;
        else
                d->n_bound++;
        inst->state = pool ? INST_POOL : INST_READY;
        /* The container's endpoint is vtpmd's (endpoint.c): made anew by every vtpmd; swtpm's sockets stay. */
        if (!pool && endpoint_open(inst) < 0)
                log_error("%s: no endpoint for %s: the container cannot reach its vTPM", uid, inst->id);
        else if (!pool && d->cfg->frontend_proxy) {
                char dev[64];
                if (proxy_open(inst, dev, sizeof(dev)) < 0)
                        log_error("%s: no /dev/tpmN for %s (--frontend vtpm-proxy)", uid, inst->id);
        }
        r = instance_adopt(inst);
        if (r == 0) {
                log_info("%s: re-adopted swtpm %d for %s", uid, (int)inst->pid, pool ? "the pool" : inst->id);
                if (pool) {
                        /* Not takeable until its platform auth is checked: pending, not ready (so Create does not
                         * count on it, and the pool is not refilled meanwhile either). */
                        d->pool_ready--;
                        d->pool_pending++;
                }
                control_instance_verify(inst);
                return;
        }
        log_warn("%s: swtpm for %s is not running (%s); restarting it from its state", uid,
                 pool ? "the pool" : inst->id, cscp_strerror(r));
        if (pool)
                d->pool_ready--;
        control_instance_restart(inst);
        return;
drop:
        instance_release(inst);
}

static int bindinfo_cmp(const void *a, const void *b)
{
        const bindinfo_t *x = a, *y = b;

        if (x->have_ek != y->have_ek)
                return x->have_ek ? -1 : 1; /* those with an EK first: the bsearch range */
        return x->have_ek ? memcmp(x->ek, y->ek, sizeof(x->ek)) : strcmp(x->uid, y->uid);
}

static bool field_eq(const cscp_cm_record_t *rec, cscp_cm_field_t f, const char *s)
{
        return rec->f[f].data && rec->f[f].len == strlen(s) && memcmp(rec->f[f].data, s, rec->f[f].len) == 0;
}

/*
 * Reads the host log (reconciled by hostlog_open already) for the vtpm-bind
 * and vtpm-destroy records of the instances in bi[0..n_ek) (sorted by EK): the
 * last one per EK wins.
 */
static int bindinfo_scan(vtpmd_t *d, bindinfo_t *bi, size_t n_ek)
{
        cscp_eventlog_opts_t opts = {.max_record = VTPM_LOG_MAX_RECORD, .max_events = VTPM_LOG_MAX_RECORDS};
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        int fd, r;

        if (n_ek == 0)
                return 0;
        fd = open(d->hostlog_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (flock(fd, LOCK_SH) < 0) {
                r = -errno;
                goto out;
        }
        r = cscp_eventlog_open_fd(fd, CSCP_EVENTLOG_CEL_TLV, &opts, NULL, &l);
        if (r < 0)
                goto out;
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                cscp_cm_record_t rec;
                bindinfo_t key = {.have_ek = true}, *hit;
                bool bind;

                if (ev->type != CSCP_CEL_CM_TLV || cscp_cm_decode(ev->data, ev->data_len, &rec) < 0 ||
                    rec.kind != CSCP_CM_CONTAINER)
                        continue;
                bind = field_eq(&rec, CSCP_CM_F_EVENT, "vtpm-bind");
                if ((!bind && !field_eq(&rec, CSCP_CM_F_EVENT, "vtpm-destroy")) || !rec.f[CSCP_CM_F_VEK_SHA256].data ||
                    rec.f[CSCP_CM_F_VEK_SHA256].len != sizeof(key.ek))
                        continue;
                memcpy(key.ek, rec.f[CSCP_CM_F_VEK_SHA256].data, sizeof(key.ek));
                hit = bsearch(&key, bi, n_ek, sizeof(*bi), bindinfo_cmp);
                if (!hit)
                        continue;
                hit->last = bind ? BIND_BOUND : BIND_DESTROYED;
                hit->id_ok = false;
                hit->id[0] = '\0';
                if (bind && rec.f[CSCP_CM_F_CONTAINER_ID].data && rec.f[CSCP_CM_F_CONTAINER_ID].len <= VTPMD_ID_MAX) {
                        memcpy(hit->id, rec.f[CSCP_CM_F_CONTAINER_ID].data, rec.f[CSCP_CM_F_CONTAINER_ID].len);
                        hit->id[rec.f[CSCP_CM_F_CONTAINER_ID].len] = '\0';
                        hit->id_ok = vtpmd_container_id_check(hit->id, d->id_max) == 0;
                }
        }
        if (r < 0)
                log_error("%s: %s", d->hostlog_path, cscp_eventlog_error(l));
out:
        cscp_eventlog_free(l);
        close(fd);
        return r < 0 ? r : 0;
}

int registry_recover(vtpmd_t *d)
{
        const size_t max = VTPMD_MAX_INSTANCES + VTPMD_MAX_POOL;
        DIR *dir = opendir(d->inst_root);
        struct dirent *e;
        bindinfo_t *bi = NULL;
        size_t n = 0, n_ek = 0;
        int r;

        if (!dir)
                return -errno;
        bi = calloc(max, sizeof(*bi));
        if (!bi) {
                closedir(dir);
                return -ENOMEM;
        }
        while ((e = readdir(dir))) {
                vtpm_identity_t id;
                char path[PATH_MAX];

                if (!is_uid(e->d_name))
                        continue;
                if (n == max) {
                        log_error("more than %zu instance directories in %s; ignoring the rest", max, d->inst_root);
                        break;
                }
                vtpmd_fmt(bi[n].uid, sizeof(bi[n].uid), "%s", e->d_name);
                vtpmd_fmt(path, sizeof(path), "%s/%s/identity", d->inst_root, e->d_name);
                if (vtpm_identity_load(path, &id) == 0) {
                        memcpy(bi[n].ek, id.ek_sha256, sizeof(bi[n].ek));
                        bi[n].have_ek = true;
                        n_ek++;
                        vtpm_identity_clear(&id);
                }
                n++;
        }
        closedir(dir);
        qsort(bi, n, sizeof(*bi), bindinfo_cmp);
        r = bindinfo_scan(d, bi, n_ek);
        if (r < 0) {
                /* Without it, a bound instance whose meta was not written yet would look like a pool one. */
                log_error("cannot read the vtpm-bind records of the host log %s: %s", d->hostlog_path,
                          cscp_strerror(r));
                free(bi);
                return r;
        }
        for (size_t i = 0; i < n; i++)
                recover_one(d, bi[i].uid, &bi[i]);
        free(bi);
        log_info("%u bound instance(s), %u in the pool", d->n_bound, d->pool_ready);
        return 0;
}
