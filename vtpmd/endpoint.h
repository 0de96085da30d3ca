/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * endpoint.c: what a container reaches of its vTPM. vtpmd itself listens on
 * <run>/vtpm/<id>/tpm.sock (TPM commands, one client space per peer process,
 * through the resource manager rm.c) and tpm.sock.ctrl (the harmless subset of
 * the swtpm control channel that tpm2-tss's swtpm TCTI uses); swtpm listens
 * only on private sockets in the instance's state directory (0700).
 * proxy.c: the same RM behind a kernel /dev/tpmN + /dev/tpmrmN (vtpm_proxy).
 * Client commands are served by one thread per endpoint (endpoint.c), not by
 * the loop. These functions: loop thread only, except where noted.
 */

#include "core.h"

/* Listens on inst->sock and inst->ctrl (stale sockets are replaced). */
int endpoint_open(instance_t *inst);
/*
 * Stops listening, closes every connection, forgets every client (their contexts are not flushed: the next
 * acquire does, or the swtpm goes away). The endpoint thread finishes a command in flight first; the loop joins
 * it and frees the endpoint afterwards. NULL-safe.
 */
void endpoint_close(instance_t *inst);
/* The vTPM restarted: every client's saved contexts are void. */
void endpoint_reset(instance_t *inst);
/*
 * Worker, holding inst->lock, before any other conversation with swtpm
 * (vtpmd's own: manufacture, measure, quote, re-extend, platform auth): the
 * last client's loaded objects are saved and flushed and its sessions saved
 * (rm.h, lazy eviction). Works with or without an open endpoint. 0, or
 * negative errno (logged; the conversation will meet the same dead swtpm).
 */
int endpoint_tpm_acquire(instance_t *inst);
/*
 * Serves TPM commands read from fd (one command per read(), one response per
 * write(): the vtpm_proxy protocol) through the RM as one more client, on the
 * endpoint thread. Takes ownership of fd. Used by proxy.c; the endpoint must
 * be open; one such fd at a time (-EBUSY while the thread has not taken it).
 */
int endpoint_attach_fd(instance_t *inst, int fd, const char *name);

/* proxy.c: creates /dev/tpmN for the instance through /dev/vtpmx (VTPM_PROXY_IOC_NEW_DEV, TPM2). */
int proxy_open(instance_t *inst, char *ret_dev, size_t dev_len);
