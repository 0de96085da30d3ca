/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * rm.c: the per-vTPM resource manager, in the style of the kernel's
 * drivers/char/tpm/tpm2-space.c (reference.md §10.2), plus a deny list
 * (reference.md §10.1) so a container cannot break its own binding.
 *
 * A space is one client (one peer process on the endpoint). Its transient
 * objects appear to it under virtual handles 0x80FFFFFF - slot; its sessions
 * keep their TPM handles and may be used only by it. Before a command the
 * contexts it names are loaded.
 *
 * Lazy eviction: the TPM (rm_tpm_t, one per vTPM) has one owner, the last
 * space that ran a command. Its objects and sessions stay loaded after the
 * command, so a client's next command costs no context round trips. Every
 * conversation with swtpm first acquires the TPM (rm_tpm_acquire, or
 * rm_execute for a client): when the owner changes, the previous owner's
 * loaded objects are saved and flushed and its loaded sessions saved, so a
 * client never has another client's contexts in the TPM (and never a handle
 * naming them: handles are checked against its own space), and vtpmd's own
 * conversations (owner NULL) see a TPM with nothing of any client loaded.
 * Within its own turn a space keeps at most RM_TPM_OBJECTS objects and
 * RM_TPM_SESSIONS sessions loaded, less what the command needs: its other
 * contexts are evicted first. What a command may have flushed (a session with
 * continueSession clear, a session the client saved, a finished sequence) is
 * checked right after it with ContextSave, as before. rm_tpm_t.eager restores
 * the old behaviour (everything saved after every command).
 *
 * Refusals never reach swtpm; they are answered with a 10-byte TPM response:
 *   TPM_RC_COMMAND_CODE   unknown command code, or a command on the deny list
 *   TPM_RC_HIERARCHY + n  handle n names the platform hierarchy, or lockout/endorsement
 *                         for HierarchyChangeAuth / SetPrimaryPolicy
 *   TPM_RC_HANDLE + n     handle n is protected (AK, EK, platform-range persistent,
 *                         platform/TCG NV index, PCR 0-15) or a transient/session
 *                         handle that is not this client's
 *   TPM_RC_VALUE + P1     EvictControl into a protected persistent handle
 *   TPM_RC_COMMAND_SIZE   size field wrong, over RM_MAX_COMMAND, or too short
 *   TPM_RC_BAD_TAG / TPM_RC_AUTHSIZE   malformed header / authorization area
 *   TPM_RC_OBJECT_MEMORY / TPM_RC_SESSION_MEMORY   the client's slots are full
 *   TPM_RC_FAILURE        swtpm could not be reached (restarting, dead)
 *
 * Thread use: the pure functions (rm_command_check, rm_error_response) are
 * reentrant; rm_execute, rm_tpm_* and rm_space_flush/reset run on a worker
 * and the caller serializes them per vTPM (the instance lock): any of them
 * may touch the owner's space, not only the one named. rm_space_new/free may
 * run on any thread (a space is reference counted: the owner keeps it until
 * the next acquire, which then flushes a freed space's contexts instead of
 * saving them).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_MAX_COMMAND   4096 /* TPM_BUFSIZE: every command is checked against it before it is read */
#define RM_MAX_RESPONSE  4096
#define RM_MAX_OBJECTS   8 /* transient objects (incl. sequences) per client */
#define RM_MAX_SESSIONS  4 /* sessions per client */
#define RM_MAX_HANDLES   3 /* largest command handle area */
#define RM_VHANDLE_FIRST 0x80FFFFFFu
#define RM_CONTEXT_MAX   RM_MAX_RESPONSE /* a marshalled TPMS_CONTEXT as ContextSave returned it */
#define RM_TPM_OBJECTS   3 /* swtpm's object slots (libtpms MAX_LOADED_OBJECTS; persistent ones in use count) */
#define RM_TPM_SESSIONS  3 /* swtpm's loaded session slots (libtpms MAX_LOADED_SESSIONS) */

typedef struct rm_policy {
        uint32_t ak_handle; /* the vTPM's AK (persistent): never evicted by a client */
} rm_policy_t;

typedef struct rm_cc_info {
        uint32_t cc;
        uint8_t n_handles; /* command handle area */
        uint8_t flags;     /* RM_CC_* */
} rm_cc_info_t;

#define RM_CC_DENY        0x01 /* refused whatever the handles */
#define RM_CC_RESP_HANDLE 0x02 /* the response carries one handle (object or session) */

/* The command code table entry, or NULL for a code the RM does not know. */
const rm_cc_info_t *rm_cc_lookup(uint32_t cc);

typedef struct rm_cmd {
        uint16_t tag;
        uint32_t size, cc;
        const rm_cc_info_t *info;
        uint32_t handles[RM_MAX_HANDLES];
        unsigned n_handles;
        uint32_t sessions[3]; /* authorization area session handles (TPM_RS_PW included) */
        uint8_t session_attrs[3];
        unsigned n_sessions;
        size_t params_off; /* first parameter byte */
} rm_cmd_t;

/*
 * Parses a complete command (len bytes) and applies the deny list and the
 * handle rules that need no state. Returns TPM2_RC_SUCCESS and fills ret, or
 * the TPM response code to answer with.
 */
uint32_t rm_command_check(const rm_policy_t *p, const uint8_t *cmd, size_t len, rm_cmd_t *ret);
/* A 10-byte response (TPM_ST_NO_SESSIONS, size 10, rc) into out (at least 10 bytes). */
size_t rm_error_response(uint32_t rc, uint8_t *out);

/* One TPM round trip on the backend: 0, or negative errno (the backend is then unusable). */
typedef int (*rm_io_fn)(void *io, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap, size_t *ret_len);

typedef struct rm_space rm_space_t;
rm_space_t *rm_space_new(void);
/* The client is gone (NULL-safe). The space lives on while it is the TPM's owner. */
void rm_space_free(rm_space_t *s);
/* Forget every context (after a vTPM restart: the TPM lost them anyway). */
void rm_space_reset(rm_space_t *s);
unsigned rm_space_n_sessions(const rm_space_t *s);

/* One vTPM: whose contexts it holds. Zero-initialized = nobody's, lazy eviction. Under the instance lock. */
typedef struct rm_tpm {
        rm_space_t *owner; /* the space whose objects and sessions may be loaded (NULL: vtpmd's or nobody's) */
        bool unknown;      /* a backend failure: flush every transient object at the next acquire */
        bool eager;        /* the old behaviour: every context saved after every command */
} rm_tpm_t;

/*
 * The TPM for s (NULL: vtpmd's own conversation): the previous owner's
 * loaded objects saved and flushed, its loaded sessions saved (a freed
 * space's flushed). 0, or negative errno (the backend failed).
 */
int rm_tpm_acquire(rm_tpm_t *t, rm_space_t *s, rm_io_fn io, void *io_ctx);
/* Drops the owner without I/O (the instance goes away). NULL-safe. */
void rm_tpm_release(rm_tpm_t *t);
/* A client went away: its loaded objects and all its sessions flushed from the TPM; errors are ignored. */
void rm_space_flush(rm_tpm_t *t, rm_space_t *s, rm_io_fn io, void *io_ctx);

/*
 * One client command through the RM: check, acquire the TPM for s, load,
 * translate, send, rewrite the response (eager: save). The answer (always a TPM response, possibly an error
 * made here) goes to resp (RM_MAX_RESPONSE bytes), its length to *ret_len.
 * Returns 0, or negative errno when the backend failed (the answer is then
 * TPM_RC_FAILURE and the space was reset).
 */
int rm_execute(rm_tpm_t *t, rm_space_t *s, const rm_policy_t *p, rm_io_fn io, void *io_ctx, const uint8_t *cmd,
               size_t len, uint8_t *resp, size_t *ret_len);
