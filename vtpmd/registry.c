/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry: one directory per instance under <state>/instances/<uid>,
 * described by its `meta` file (key=value lines, written atomically). The
 * state in meta says how far the instance got:
 *   new      provisioning started (key, swtpm, manufacture); never acknowledged
 *   pool     manufactured, waiting in the warm pool
 *   binding  being given to container_id (measurements, vtpm-bind); not yet acknowledged
 *   ready    bound to container_id; Create was acknowledged after this was on disk
 * At start, `ready` and `pool` instances are re-adopted (their swtpm still
 * runs: pid file, /proc, control socket) or restarted from their state and
 * re-extended; `new` and `binding` ones are wiped (a `binding` one also gets
 * a vtpm-destroy record, since its vtpm-bind may have reached the host log).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGMODULE registry
#include "core.h"
#include "endpoint.h"
#include "error.h"
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

static void recover_one(vtpmd_t *d, const char *uid)
{
        instance_t *inst;
        meta_t m;
        char path[PATH_MAX], ep[PATH_MAX];
        int r;

        vtpmd_fmt(path, sizeof(path), "%s/%s/meta", d->inst_root, uid);
        inst = instance_new(d, uid);
        if (!inst) {
                log_error("%s: out of memory", uid);
                return;
        }
        r = meta_load(path, &m);
        if (r < 0 || strcmp(m.uid, uid) != 0) {
                /* No meta yet: provisioning died before its first write. */
                wipe_half_made(d, inst, r == -ENOENT ? "no record" : "unreadable record");
                goto drop;
        }
        vtpmd_fmt(inst->id, sizeof(inst->id), "%s", m.id);
        inst->from_pool = m.from_pool;
        inst->created = m.created;
        inst->restarts = m.restarts;
        if (strcmp(m.state, "new") == 0) {
                wipe_half_made(d, inst, "provisioning was interrupted");
                goto drop;
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
        if (strcmp(m.state, "pool") != 0 && strcmp(m.state, "ready") != 0) {
                log_error("%s: unknown state '%s' in %s; leaving it alone", uid, m.state, path);
                goto drop;
        }
        bool pool = strcmp(m.state, "pool") == 0;
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

int registry_recover(vtpmd_t *d)
{
        DIR *dir = opendir(d->inst_root);
        struct dirent *e;
        unsigned n = 0;

        if (!dir)
                return -errno;
        while ((e = readdir(dir))) {
                if (!is_uid(e->d_name))
                        continue;
                if (++n > VTPMD_MAX_INSTANCES + VTPMD_MAX_POOL) {
                        log_error("more than %u instance directories in %s; ignoring the rest",
                                  VTPMD_MAX_INSTANCES + VTPMD_MAX_POOL, d->inst_root);
                        break;
                }
                recover_one(d, e->d_name);
        }
        closedir(dir);
        log_info("%u bound instance(s), %u in the pool", d->n_bound, d->pool_ready);
        return 0;
}
