/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-vTPM resource manager (rm.h): command parsing, the deny list,
 * per-client handle virtualization with context save/load around every
 * command, and the rewriting of responses. Modelled on the kernel's
 * drivers/char/tpm/tpm2-space.c (reference.md §10.2); the deny list follows
 * reference.md §10.1. No I/O of its own: the backend is a callback.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "rm.h"

#define HDR 10 /* tag, size, code */

#define HT(h)           ((uint8_t)((h) >> 24))
#define IS_TRANSIENT(h) (HT(h) == TPM2_HT_TRANSIENT)
#define IS_SESSION(h)   (HT(h) == TPM2_HT_HMAC_SESSION || HT(h) == TPM2_HT_POLICY_SESSION)
#define RC_N(n)         ((uint32_t)(n) << 8) /* TPM2_RC_1 .. for handle / session n (1-based) */

typedef struct rm_object {
        bool used, loaded;
        uint32_t phandle; /* valid while loaded */
        uint8_t ctx[RM_CONTEXT_MAX];
        size_t ctx_len;
} rm_object_t;

typedef struct rm_session {
        bool used, loaded, saved;
        uint32_t handle;
        uint8_t ctx[RM_CONTEXT_MAX];
        size_t ctx_len;
} rm_session_t;

struct rm_space {
        rm_object_t obj[RM_MAX_OBJECTS];
        rm_session_t ses[RM_MAX_SESSIONS];
        /* the client's reference and rm_tpm_t.owner's; dead: the client is gone (its contexts are flushed, not saved)
         */
        atomic_uint refs;
        atomic_bool dead;
};

/* ---- the command table (TPM 2.0 Part 3; handle counts from libtpms *_fp.h) ---- */

#define D RM_CC_DENY
#define R RM_CC_RESP_HANDLE
static const rm_cc_info_t cc_table[] = {
        {TPM2_CC_NV_UndefineSpaceSpecial, 2, D},
        {TPM2_CC_EvictControl, 2, 0},
        {TPM2_CC_HierarchyControl, 1, D},
        {TPM2_CC_NV_UndefineSpace, 2, 0},
        {TPM2_CC_ChangeEPS, 1, D},
        {TPM2_CC_ChangePPS, 1, D},
        {TPM2_CC_Clear, 1, D},
        {TPM2_CC_ClearControl, 1, D},
        {TPM2_CC_ClockSet, 1, D},
        {TPM2_CC_HierarchyChangeAuth, 1, 0},
        {TPM2_CC_NV_DefineSpace, 1, 0},
        {TPM2_CC_PCR_Allocate, 1, D},
        {TPM2_CC_PCR_SetAuthPolicy, 1, D},
        {TPM2_CC_PP_Commands, 1, D},
        {TPM2_CC_SetPrimaryPolicy, 1, 0},
        {TPM2_CC_FieldUpgradeStart, 2, D},
        {TPM2_CC_ClockRateAdjust, 1, D},
        {TPM2_CC_CreatePrimary, 1, R},
        {TPM2_CC_NV_GlobalWriteLock, 1, D},
        {TPM2_CC_GetCommandAuditDigest, 2, 0},
        {TPM2_CC_NV_Increment, 2, 0},
        {TPM2_CC_NV_SetBits, 2, 0},
        {TPM2_CC_NV_Extend, 2, 0},
        {TPM2_CC_NV_Write, 2, 0},
        {TPM2_CC_NV_WriteLock, 2, 0},
        {TPM2_CC_DictionaryAttackLockReset, 1, 0},
        {TPM2_CC_DictionaryAttackParameters, 1, 0},
        {TPM2_CC_NV_ChangeAuth, 1, 0},
        {TPM2_CC_PCR_Event, 1, 0},
        {TPM2_CC_PCR_Reset, 1, D},
        {TPM2_CC_SequenceComplete, 1, 0},
        {TPM2_CC_SetAlgorithmSet, 1, D},
        {TPM2_CC_SetCommandCodeAuditStatus, 1, D},
        {TPM2_CC_FieldUpgradeData, 0, D},
        {TPM2_CC_IncrementalSelfTest, 0, 0},
        {TPM2_CC_SelfTest, 0, 0},
        {TPM2_CC_Startup, 0, D},
        {TPM2_CC_Shutdown, 0, D},
        {TPM2_CC_StirRandom, 0, 0},
        {TPM2_CC_ActivateCredential, 2, 0},
        {TPM2_CC_Certify, 2, 0},
        {TPM2_CC_PolicyNV, 3, 0},
        {TPM2_CC_CertifyCreation, 2, 0},
        {TPM2_CC_Duplicate, 2, 0},
        {TPM2_CC_GetTime, 2, 0},
        {TPM2_CC_GetSessionAuditDigest, 3, 0},
        {TPM2_CC_NV_Read, 2, 0},
        {TPM2_CC_NV_ReadLock, 2, 0},
        {TPM2_CC_ObjectChangeAuth, 2, 0},
        {TPM2_CC_PolicySecret, 2, 0},
        {TPM2_CC_Rewrap, 2, 0},
        {TPM2_CC_Create, 1, 0},
        {TPM2_CC_ECDH_ZGen, 1, 0},
        {TPM2_CC_HMAC, 1, 0},
        {TPM2_CC_Import, 1, 0},
        {TPM2_CC_Load, 1, R},
        {TPM2_CC_Quote, 1, 0},
        {TPM2_CC_RSA_Decrypt, 1, 0},
        {TPM2_CC_HMAC_Start, 1, R},
        {TPM2_CC_SequenceUpdate, 1, 0},
        {TPM2_CC_Sign, 1, 0},
        {TPM2_CC_Unseal, 1, 0},
        {TPM2_CC_PolicySigned, 2, 0},
        {TPM2_CC_ContextLoad, 0, R},
        {TPM2_CC_ContextSave, 1, 0},
        {TPM2_CC_ECDH_KeyGen, 1, 0},
        {TPM2_CC_EncryptDecrypt, 1, 0},
        {TPM2_CC_FlushContext, 0, 0},
        {TPM2_CC_LoadExternal, 0, R},
        {TPM2_CC_MakeCredential, 1, 0},
        {TPM2_CC_NV_ReadPublic, 1, 0},
        {TPM2_CC_PolicyAuthorize, 1, 0},
        {TPM2_CC_PolicyAuthValue, 1, 0},
        {TPM2_CC_PolicyCommandCode, 1, 0},
        {TPM2_CC_PolicyCounterTimer, 1, 0},
        {TPM2_CC_PolicyCpHash, 1, 0},
        {TPM2_CC_PolicyLocality, 1, 0},
        {TPM2_CC_PolicyNameHash, 1, 0},
        {TPM2_CC_PolicyOR, 1, 0},
        {TPM2_CC_PolicyTicket, 1, 0},
        {TPM2_CC_ReadPublic, 1, 0},
        {TPM2_CC_RSA_Encrypt, 1, 0},
        {TPM2_CC_StartAuthSession, 2, R},
        {TPM2_CC_VerifySignature, 1, 0},
        {TPM2_CC_ECC_Parameters, 0, 0},
        {TPM2_CC_FirmwareRead, 0, D},
        {TPM2_CC_GetCapability, 0, 0},
        {TPM2_CC_GetRandom, 0, 0},
        {TPM2_CC_GetTestResult, 0, 0},
        {TPM2_CC_Hash, 0, 0},
        {TPM2_CC_PCR_Read, 0, 0},
        {TPM2_CC_PolicyPCR, 1, 0},
        {TPM2_CC_PolicyRestart, 1, 0},
        {TPM2_CC_ReadClock, 0, 0},
        {TPM2_CC_PCR_Extend, 1, 0},
        {TPM2_CC_PCR_SetAuthValue, 1, D},
        {TPM2_CC_NV_Certify, 3, 0},
        {TPM2_CC_EventSequenceComplete, 2, 0},
        {TPM2_CC_HashSequenceStart, 0, R},
        {TPM2_CC_PolicyPhysicalPresence, 1, 0},
        {TPM2_CC_PolicyDuplicationSelect, 1, 0},
        {TPM2_CC_PolicyGetDigest, 1, 0},
        {TPM2_CC_TestParms, 0, 0},
        {TPM2_CC_Commit, 1, 0},
        {TPM2_CC_PolicyPassword, 1, 0},
        {TPM2_CC_ZGen_2Phase, 1, 0},
        {TPM2_CC_EC_Ephemeral, 0, 0},
        {TPM2_CC_PolicyNvWritten, 1, 0},
        {TPM2_CC_PolicyTemplate, 1, 0},
        {TPM2_CC_CreateLoaded, 1, R},
        {TPM2_CC_PolicyAuthorizeNV, 3, 0},
        {TPM2_CC_EncryptDecrypt2, 1, 0},
        {TPM2_CC_CertifyX509, 2, 0},
};
#undef D
#undef R

const rm_cc_info_t *rm_cc_lookup(uint32_t cc)
{
        for (size_t i = 0; i < sizeof(cc_table) / sizeof(cc_table[0]); i++)
                if (cc_table[i].cc == cc)
                        return &cc_table[i];
        return NULL;
}

/* ---- byte helpers (fixed-size fields of buffers already bounds-checked) ---- */

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static void put_header(uint8_t *out, uint16_t tag, uint32_t size, uint32_t code)
{
        out[0] = (uint8_t)(tag >> 8);
        out[1] = (uint8_t)tag;
        put32(out + 2, size);
        put32(out + 6, code);
}

size_t rm_error_response(uint32_t rc, uint8_t *out)
{
        put_header(out, TPM2_ST_NO_SESSIONS, HDR, rc);
        return HDR;
}

/* ---- the deny list ----------------------------------------------------------- */

static bool protected_persistent(const rm_policy_t *p, uint32_t h)
{
        /* TCG EK range, the platform range (the AK lives there), and the AK wherever it is. */
        return (h >= 0x81010000u && h <= 0x8101FFFFu) || (h >= 0x81800000u && h <= 0x81FFFFFFu) ||
               (p && p->ak_handle && h == p->ak_handle);
}

static bool protected_nv(uint32_t h)
{
        /* Platform (0x0140xxxx..) and TCG/manufacturer (0x01C0xxxx: EK certificates) NV ranges. */
        return HT(h) == TPM2_HT_NV_INDEX && (h & 0x00FFFFFFu) >= 0x00400000u;
}

uint32_t rm_command_check(const rm_policy_t *p, const uint8_t *cmd, size_t len, rm_cmd_t *ret)
{
        rm_cmd_t c;
        size_t off = 0;
        TPM2_ST tag;

        memset(&c, 0, sizeof(c));
        if (len < HDR || len > RM_MAX_COMMAND)
                return TPM2_RC_COMMAND_SIZE;
        if (Tss2_MU_TPM2_ST_Unmarshal(cmd, len, &off, &tag) != TSS2_RC_SUCCESS ||
            Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &c.size) != TSS2_RC_SUCCESS ||
            Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &c.cc) != TSS2_RC_SUCCESS)
                return TPM2_RC_COMMAND_SIZE;
        c.tag = tag;
        if (tag != TPM2_ST_NO_SESSIONS && tag != TPM2_ST_SESSIONS)
                return TPM2_RC_BAD_TAG;
        if (c.size != len)
                return TPM2_RC_COMMAND_SIZE;
        c.info = rm_cc_lookup(c.cc);
        if (!c.info || (c.info->flags & RM_CC_DENY))
                return TPM2_RC_COMMAND_CODE;
        c.n_handles = c.info->n_handles;
        for (unsigned i = 0; i < c.n_handles; i++)
                if (Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &c.handles[i]) != TSS2_RC_SUCCESS)
                        return TPM2_RC_COMMAND_SIZE;
        if (tag == TPM2_ST_SESSIONS) {
                uint32_t auth_size;
                size_t end;
                if (Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &auth_size) != TSS2_RC_SUCCESS || auth_size < 9 ||
                    auth_size > len - off)
                        return TPM2_RC_AUTHSIZE;
                end = off + auth_size;
                while (off < end) {
                        TPMS_AUTH_COMMAND ac;
                        if (c.n_sessions == 3 ||
                            Tss2_MU_TPMS_AUTH_COMMAND_Unmarshal(cmd, end, &off, &ac) != TSS2_RC_SUCCESS)
                                return TPM2_RC_AUTHSIZE;
                        c.session_attrs[c.n_sessions] = ac.sessionAttributes;
                        c.sessions[c.n_sessions++] = ac.sessionHandle;
                }
        }
        c.params_off = off;

        for (unsigned i = 0; i < c.n_handles; i++)
                if (c.handles[i] == TPM2_RH_PLATFORM || c.handles[i] == TPM2_RH_PLATFORM_NV)
                        return TPM2_RC_HIERARCHY + RC_N(i + 1);
        switch (c.cc) {
        case TPM2_CC_EvictControl:
                if (IS_TRANSIENT(c.handles[1]) == false && protected_persistent(p, c.handles[1]))
                        return TPM2_RC_HANDLE + RC_N(2);
                if (len - off < 4)
                        return TPM2_RC_COMMAND_SIZE;
                if (protected_persistent(p, get32(cmd + off)))
                        return TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1;
                break;
        case TPM2_CC_HierarchyChangeAuth:
                if (c.handles[0] == TPM2_RH_LOCKOUT || c.handles[0] == TPM2_RH_ENDORSEMENT)
                        return TPM2_RC_HIERARCHY + RC_N(1);
                break;
        case TPM2_CC_SetPrimaryPolicy:
                if (c.handles[0] != TPM2_RH_OWNER)
                        return TPM2_RC_HIERARCHY + RC_N(1);
                break;
        case TPM2_CC_NV_UndefineSpace:
        case TPM2_CC_NV_Write:
        case TPM2_CC_NV_WriteLock:
        case TPM2_CC_NV_Increment:
        case TPM2_CC_NV_SetBits:
        case TPM2_CC_NV_Extend:
                for (unsigned i = 0; i < 2; i++)
                        if (protected_nv(c.handles[i]))
                                return TPM2_RC_HANDLE + RC_N(i + 1);
                break;
        case TPM2_CC_NV_ChangeAuth:
                if (protected_nv(c.handles[0]))
                        return TPM2_RC_HANDLE + RC_N(1);
                break;
        case TPM2_CC_PCR_Extend:
        case TPM2_CC_PCR_Event:
                /* PCRs 0-15 carry what vtpmd measured (and replays from its log); 16-23 are the tenant's. */
                if (c.handles[0] < 16)
                        return TPM2_RC_HANDLE + RC_N(1);
                break;
        case TPM2_CC_FlushContext:
                if (len - off < 4)
                        return TPM2_RC_COMMAND_SIZE;
                break;
        case TPM2_CC_GetCapability:
                if (len - off < 12)
                        return TPM2_RC_COMMAND_SIZE;
                break;
        default:
                break;
        }
        *ret = c;
        return TPM2_RC_SUCCESS;
}

/* ---- spaces ----------------------------------------------------------------------- */

rm_space_t *rm_space_new(void)
{
        rm_space_t *s = calloc(1, sizeof(rm_space_t));

        if (s) {
                atomic_init(&s->refs, 1);
                atomic_init(&s->dead, false);
        }
        return s;
}

static void space_unref(rm_space_t *s)
{
        if (atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        /* Saved contexts are not secret (TPM-encrypted), but there is no reason to leave them around. */
        memset(s->obj, 0, sizeof(s->obj));
        memset(s->ses, 0, sizeof(s->ses));
        free(s);
}

void rm_space_free(rm_space_t *s)
{
        if (!s)
                return;
        atomic_store(&s->dead, true);
        space_unref(s);
}

void rm_space_reset(rm_space_t *s)
{
        memset(s->obj, 0, sizeof(s->obj));
        memset(s->ses, 0, sizeof(s->ses));
}

unsigned rm_space_n_sessions(const rm_space_t *s)
{
        unsigned n = 0;
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++)
                n += s->ses[i].used;
        return n;
}

static uint32_t vhandle(unsigned slot)
{
        return RM_VHANDLE_FIRST - slot;
}

static rm_object_t *obj_find(rm_space_t *s, uint32_t vh)
{
        uint32_t slot = RM_VHANDLE_FIRST - vh;

        if (!IS_TRANSIENT(vh) || vh > RM_VHANDLE_FIRST || slot >= RM_MAX_OBJECTS || !s->obj[slot].used)
                return NULL;
        return &s->obj[slot];
}

static rm_session_t *ses_find(rm_space_t *s, uint32_t h)
{
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++)
                if (s->ses[i].used && s->ses[i].handle == h)
                        return &s->ses[i];
        return NULL;
}

/* ---- TPM round trips of the RM itself ------------------------------------------------ */

typedef struct io {
        rm_io_fn fn;
        void *ctx;
        uint8_t resp[RM_MAX_RESPONSE];
        size_t len;
} io_t;

/* Sends cmd; *ret_rc = the TPM's response code. Negative errno when the backend failed or answered garbage. */
static int call(io_t *io, const uint8_t *cmd, size_t len, uint32_t *ret_rc)
{
        int r = io->fn(io->ctx, cmd, len, io->resp, sizeof(io->resp), &io->len);

        if (r < 0)
                return r;
        if (io->len < HDR || io->len > sizeof(io->resp) || get32(io->resp + 2) != io->len)
                return -EPROTO;
        *ret_rc = get32(io->resp + 6);
        return 0;
}

static int handle_cmd(io_t *io, uint32_t cc, uint32_t h, uint32_t *ret_rc)
{
        uint8_t cmd[HDR + 4];

        put_header(cmd, TPM2_ST_NO_SESSIONS, sizeof(cmd), cc);
        put32(cmd + HDR, h);
        return call(io, cmd, sizeof(cmd), ret_rc);
}

/* ContextLoad: *ret_handle, or a TPM rc in *ret_rc. */
static int ctx_load(io_t *io, const uint8_t *ctx, size_t ctx_len, uint32_t *ret_rc, uint32_t *ret_handle)
{
        uint8_t cmd[HDR + RM_CONTEXT_MAX];
        int r;

        if (ctx_len > RM_CONTEXT_MAX - HDR)
                return -EOVERFLOW;
        put_header(cmd, TPM2_ST_NO_SESSIONS, (uint32_t)(HDR + ctx_len), TPM2_CC_ContextLoad);
        memcpy(cmd + HDR, ctx, ctx_len);
        r = call(io, cmd, HDR + ctx_len, ret_rc);
        if (r < 0 || *ret_rc != TPM2_RC_SUCCESS)
                return r;
        if (io->len < HDR + 4)
                return -EPROTO;
        *ret_handle = get32(io->resp + HDR);
        return 0;
}

/* ContextSave of h into ctx: the marshalled TPMS_CONTEXT, checked with tss2-mu. */
static int ctx_save(io_t *io, uint32_t h, uint8_t *ctx, size_t *ctx_len, uint32_t *ret_rc)
{
        TPMS_CONTEXT c;
        size_t off = HDR;
        int r = handle_cmd(io, TPM2_CC_ContextSave, h, ret_rc);

        if (r < 0 || *ret_rc != TPM2_RC_SUCCESS)
                return r;
        if (Tss2_MU_TPMS_CONTEXT_Unmarshal(io->resp, io->len, &off, &c) != TSS2_RC_SUCCESS ||
            off - HDR > RM_CONTEXT_MAX - HDR)
                return -EPROTO;
        memcpy(ctx, io->resp + HDR, off - HDR);
        *ctx_len = off - HDR;
        return 0;
}

static void drop_object(rm_object_t *o)
{
        memset(o, 0, sizeof(*o));
}

static void drop_session(rm_session_t *se)
{
        memset(se, 0, sizeof(*se));
}

static int obj_load(io_t *io, rm_object_t *o, uint32_t *ret_rc)
{
        uint32_t h = 0;
        int r;

        *ret_rc = TPM2_RC_SUCCESS;
        if (o->loaded)
                return 0;
        r = ctx_load(io, o->ctx, o->ctx_len, ret_rc, &h);
        if (r < 0 || *ret_rc != TPM2_RC_SUCCESS)
                return r;
        o->phandle = h;
        o->loaded = true;
        return 0;
}

static int ses_load(io_t *io, rm_session_t *se, uint32_t *ret_rc)
{
        uint32_t h = 0, rc2;
        int r;

        *ret_rc = TPM2_RC_SUCCESS;
        if (se->loaded || !se->saved)
                return 0;
        r = ctx_load(io, se->ctx, se->ctx_len, ret_rc, &h);
        if (r < 0 || *ret_rc != TPM2_RC_SUCCESS)
                return r;
        if (h != se->handle) {
                /* A session must come back under its own handle (tpm2-space.c does the same). */
                (void)handle_cmd(io, TPM2_CC_FlushContext, h, &rc2);
                *ret_rc = TPM2_RC_HANDLE;
                return 0;
        }
        se->loaded = true;
        return 0;
}

/* Object o out of the TPM: saved and flushed; dropped when the TPM no longer has it (flushed by the command). */
static int obj_evict(io_t *io, rm_object_t *o)
{
        uint32_t rc;
        int r;

        if (!o->used || !o->loaded)
                return 0;
        r = ctx_save(io, o->phandle, o->ctx, &o->ctx_len, &rc);
        if (r < 0)
                return r;
        if (rc != TPM2_RC_SUCCESS) {
                /* Flushed by the command (FlushContext, SequenceComplete) or not saveable: gone. */
                (void)handle_cmd(io, TPM2_CC_FlushContext, o->phandle, &rc);
                drop_object(o);
                return 0;
        }
        r = handle_cmd(io, TPM2_CC_FlushContext, o->phandle, &rc);
        if (r < 0)
                return r;
        o->loaded = false;
        o->phandle = 0;
        return 0;
}

/* Session se saved (it keeps its handle); dropped when the TPM no longer has it loaded. */
static int ses_evict(io_t *io, rm_session_t *se)
{
        uint32_t rc;
        int r;

        if (!se->used || !se->loaded)
                return 0;
        r = ctx_save(io, se->handle, se->ctx, &se->ctx_len, &rc);
        if (r < 0)
                return r;
        if (rc != TPM2_RC_SUCCESS) {
                drop_session(se); /* continueSession was clear, or the client saved it itself */
                return 0;
        }
        se->loaded = false;
        se->saved = true;
        return 0;
}

/* Every loaded object saved and flushed, every loaded session saved: the TPM holds nothing of s. */
static int save_all(rm_space_t *s, io_t *io)
{
        int r;

        for (unsigned i = 0; i < RM_MAX_OBJECTS; i++) {
                r = obj_evict(io, &s->obj[i]);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++) {
                r = ses_evict(io, &s->ses[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The client is gone: its loaded objects (resident: s holds the TPM) and all its sessions flushed, s emptied. */
static int space_flush_io(rm_space_t *s, io_t *io, bool resident)
{
        uint32_t rc;
        int r = 0, k;

        for (unsigned i = 0; resident && i < RM_MAX_OBJECTS; i++)
                if (s->obj[i].used && s->obj[i].loaded) {
                        k = handle_cmd(io, TPM2_CC_FlushContext, s->obj[i].phandle, &rc);
                        r = r < 0 ? r : k;
                }
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++)
                if (s->ses[i].used) {
                        k = handle_cmd(io, TPM2_CC_FlushContext, s->ses[i].handle, &rc);
                        r = r < 0 ? r : k;
                }
        rm_space_reset(s);
        return r;
}

/* After a backend failure: every transient object the TPM holds is flushed (whoever's it was: the RM forgot it). */
static int flush_transients(io_t *io)
{
        TPMS_CAPABILITY_DATA cd;
        uint8_t cmd[HDR + 12];
        size_t off = HDR + 1;
        uint32_t rc;
        int r;

        put_header(cmd, TPM2_ST_NO_SESSIONS, sizeof(cmd), TPM2_CC_GetCapability);
        put32(cmd + HDR, TPM2_CAP_HANDLES);
        put32(cmd + HDR + 4, 0x80000000u);
        put32(cmd + HDR + 8, TPM2_MAX_CAP_HANDLES);
        r = call(io, cmd, sizeof(cmd), &rc);
        if (r < 0)
                return r;
        if (rc != TPM2_RC_SUCCESS ||
            Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(io->resp, io->len, &off, &cd) != TSS2_RC_SUCCESS ||
            cd.capability != TPM2_CAP_HANDLES || cd.data.handles.count > TPM2_MAX_CAP_HANDLES)
                return -EPROTO;
        for (uint32_t i = 0; i < cd.data.handles.count; i++) {
                if (!IS_TRANSIENT(cd.data.handles.handle[i]))
                        continue;
                r = handle_cmd(io, TPM2_CC_FlushContext, cd.data.handles.handle[i], &rc);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void tpm_disown(rm_tpm_t *t)
{
        rm_space_t *o = t->owner;

        t->owner = NULL;
        if (o)
                space_unref(o);
}

/*
 * The TPM for s (NULL: vtpmd itself): the previous owner's objects and sessions saved and flushed first.
 * t->unknown is set only with no owner, so flushing every transient object never pulls one from under a space.
 */
static int tpm_acquire(rm_tpm_t *t, rm_space_t *s, io_t *io)
{
        rm_space_t *o = t->owner;
        int r;

        if (t->unknown) {
                r = flush_transients(io);
                if (r < 0)
                        return r;
                t->unknown = false;
        }
        if (o == s)
                return 0;
        if (o) {
                if (atomic_load(&o->dead)) {
                        r = space_flush_io(o, io, true);
                } else {
                        r = save_all(o, io);
                        if (r < 0)
                                rm_space_reset(o);
                }
                tpm_disown(t);
                if (r < 0) {
                        t->unknown = true; /* some of o's objects may still be loaded */
                        return r;
                }
        }
        if (s) {
                atomic_fetch_add(&s->refs, 1);
                t->owner = s;
        } else {
                /* vtpmd's conversation flushes its own objects; should one stay behind (an error path), the next
                 * acquire frees the slot. */
                t->unknown = true;
        }
        return 0;
}

int rm_tpm_acquire(rm_tpm_t *t, rm_space_t *s, rm_io_fn fn, void *io_ctx)
{
        io_t *io;
        int r;

        if (t->owner == s && !t->unknown)
                return 0;
        io = malloc(sizeof(*io));
        if (!io)
                return -ENOMEM;
        io->fn = fn;
        io->ctx = io_ctx;
        r = tpm_acquire(t, s, io);
        free(io);
        return r;
}

void rm_tpm_release(rm_tpm_t *t)
{
        if (t)
                tpm_disown(t);
}

void rm_space_flush(rm_tpm_t *t, rm_space_t *s, rm_io_fn fn, void *io_ctx)
{
        bool resident = t && t->owner == s;
        io_t *io;

        if (!resident && rm_space_n_sessions(s) == 0) {
                rm_space_reset(s); /* only saved object contexts: forgetting them is the flush */
                return;
        }
        io = malloc(sizeof(*io));
        if (io) {
                io->fn = fn;
                io->ctx = io_ctx;
                if (space_flush_io(s, io, resident) < 0 && resident)
                        t->unknown = true;
                free(io);
        } else if (resident) {
                t->unknown = true;
        }
        rm_space_reset(s);
        if (resident)
                tpm_disown(t);
}

/*
 * Frees swtpm slots for command c of s, which stays the owner: s's loaded objects (sessions) that c does not name
 * are evicted until the ones c names or makes (a persistent handle is loaded for the command too) fit.
 */
static int make_room(rm_space_t *s, io_t *io, const rm_cmd_t *c)
{
        bool named_obj[RM_MAX_OBJECTS] = {false}, named_ses[RM_MAX_SESSIONS] = {false};
        unsigned need = 0, need_s = 0, loaded = 0, loaded_s = 0;
        int r;

        for (unsigned i = 0; i < c->n_handles; i++) {
                uint32_t h = c->handles[i];
                if (IS_TRANSIENT(h) || HT(h) == TPM2_HT_PERSISTENT)
                        need++;
                if (IS_TRANSIENT(h) && obj_find(s, h))
                        named_obj[RM_VHANDLE_FIRST - h] = true;
        }
        if (c->info->flags & RM_CC_RESP_HANDLE) {
                need++; /* the object it makes (for StartAuthSession / ContextLoad possibly a session) */
                need_s++;
        }
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++) {
                bool named = false;
                if (!s->ses[i].used)
                        continue;
                for (unsigned k = 0; k < c->n_handles; k++)
                        named = named || c->handles[k] == s->ses[i].handle;
                for (unsigned k = 0; k < c->n_sessions; k++)
                        named = named || c->sessions[k] == s->ses[i].handle;
                named_ses[i] = named;
                need_s += named;
        }
        for (unsigned i = 0; i < RM_MAX_OBJECTS; i++)
                loaded += s->obj[i].used && s->obj[i].loaded && !named_obj[i];
        for (unsigned i = 0; i < RM_MAX_SESSIONS; i++)
                loaded_s += s->ses[i].used && s->ses[i].loaded && !named_ses[i];
        for (unsigned i = 0; i < RM_MAX_OBJECTS && loaded + need > RM_TPM_OBJECTS; i++) {
                if (!s->obj[i].used || !s->obj[i].loaded || named_obj[i])
                        continue;
                r = obj_evict(io, &s->obj[i]);
                if (r < 0)
                        return r;
                loaded--;
        }
        for (unsigned i = 0; i < RM_MAX_SESSIONS && loaded_s + need_s > RM_TPM_SESSIONS; i++) {
                if (!s->ses[i].used || !s->ses[i].loaded || named_ses[i])
                        continue;
                r = ses_evict(io, &s->ses[i]);
                if (r < 0)
                        return r;
                loaded_s--;
        }
        return 0;
}

/*
 * After command c (lazy: s's contexts stay loaded): what the command may have flushed is checked the way
 * save_all would, so no entry names a handle the TPM may give to someone else.
 */
static int after_command(rm_space_t *s, io_t *io, const rm_cmd_t *c, uint32_t rc)
{
        int r;

        /* Sessions whose continueSession was clear (the TPM ends them), or that the client saved itself. */
        for (unsigned i = 0; i < c->n_sessions; i++) {
                rm_session_t *se = c->sessions[i] == TPM2_RH_PW ? NULL : ses_find(s, c->sessions[i]);
                if (se && !(c->session_attrs[i] & TPMA_SESSION_CONTINUESESSION)) {
                        r = ses_evict(io, se);
                        if (r < 0)
                                return r;
                }
        }
        if (c->cc == TPM2_CC_ContextSave && rc == TPM2_RC_SUCCESS && IS_SESSION(c->handles[0])) {
                rm_session_t *se = ses_find(s, c->handles[0]);
                if (se) {
                        r = ses_evict(io, se);
                        if (r < 0)
                                return r;
                }
        }
        /* Sequence objects end with (Event)SequenceComplete. */
        if (c->cc == TPM2_CC_SequenceComplete || c->cc == TPM2_CC_EventSequenceComplete) {
                for (unsigned i = 0; i < c->n_handles; i++) {
                        rm_object_t *o = IS_TRANSIENT(c->handles[i]) ? obj_find(s, c->handles[i]) : NULL;
                        if (!o)
                                continue;
                        r = obj_evict(io, o);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- GetCapability(TPM_CAP_HANDLES) for transient and session ranges: answered from the space ---- */

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

static size_t cap_handles(const rm_space_t *s, uint32_t property, uint32_t count, uint8_t *resp)
{
        TPMS_CAPABILITY_DATA cd;
        uint32_t list[RM_MAX_OBJECTS + RM_MAX_SESSIONS];
        size_t n = 0, off = HDR + 1;
        uint8_t ht = HT(property);

        memset(&cd, 0, sizeof(cd));
        if (ht == TPM2_HT_TRANSIENT) {
                for (unsigned i = 0; i < RM_MAX_OBJECTS; i++)
                        if (s->obj[i].used && vhandle(i) >= property)
                                list[n++] = vhandle(i);
        } else if (ht == TPM2_HT_SAVED_SESSION) {
                /* Every session of the space is reported saved (none "loaded"), as when they were saved after every
                 * command: the client's view does not depend on whether lazy eviction left them in the TPM. */
                for (unsigned i = 0; i < RM_MAX_SESSIONS; i++)
                        if (s->ses[i].used && (s->ses[i].handle & 0x00FFFFFFu) >= (property & 0x00FFFFFFu))
                                list[n++] = s->ses[i].handle;
        }
        qsort(list, n, sizeof(list[0]), cmp_u32);
        if (count > TPM2_MAX_CAP_HANDLES)
                count = TPM2_MAX_CAP_HANDLES;
        cd.capability = TPM2_CAP_HANDLES;
        cd.data.handles.count = (uint32_t)(n < count ? n : count);
        memcpy(cd.data.handles.handle, list, cd.data.handles.count * sizeof(list[0]));
        resp[HDR] = n > cd.data.handles.count ? 1 : 0;
        if (Tss2_MU_TPMS_CAPABILITY_DATA_Marshal(&cd, resp, RM_MAX_RESPONSE, &off) != TSS2_RC_SUCCESS)
                return rm_error_response(TPM2_RC_FAILURE, resp);
        put_header(resp, TPM2_ST_NO_SESSIONS, (uint32_t)off, TPM2_RC_SUCCESS);
        return off;
}

/* ---- one command ------------------------------------------------------------------------- */

static size_t answer(uint8_t *resp, uint32_t rc)
{
        return rm_error_response(rc, resp);
}

int rm_execute(rm_tpm_t *t, rm_space_t *s, const rm_policy_t *p, rm_io_fn fn, void *io_ctx, const uint8_t *cmd,
               size_t len, uint8_t *resp, size_t *ret_len)
{
        rm_cmd_t c;
        uint8_t *buf = NULL;
        io_t *io = NULL;
        rm_session_t *flush_ses = NULL;
        rm_object_t *flush_obj = NULL;
        uint32_t rc;
        int r = 0;

        rc = rm_command_check(p, cmd, len, &c);
        if (rc != TPM2_RC_SUCCESS) {
                *ret_len = answer(resp, rc);
                return 0;
        }
        if (c.cc == TPM2_CC_GetCapability) {
                uint32_t cap = get32(cmd + c.params_off), prop = get32(cmd + c.params_off + 4);
                uint8_t ht = HT(prop);
                if (cap == TPM2_CAP_HANDLES &&
                    (ht == TPM2_HT_TRANSIENT || ht == TPM2_HT_LOADED_SESSION || ht == TPM2_HT_SAVED_SESSION)) {
                        *ret_len = cap_handles(s, prop, get32(cmd + c.params_off + 8), resp);
                        return 0;
                }
        }
        if (c.cc == TPM2_CC_FlushContext) {
                uint32_t h = get32(cmd + c.params_off);
                if (IS_TRANSIENT(h)) {
                        rm_object_t *o = obj_find(s, h);
                        if (!o) {
                                *ret_len = answer(resp, TPM2_RC_HANDLE + TPM2_RC_P + TPM2_RC_1);
                                return 0;
                        }
                        if (!o->loaded) {
                                /* Saved: forgetting the context is the flush. */
                                drop_object(o);
                                *ret_len = answer(resp, TPM2_RC_SUCCESS);
                                return 0;
                        }
                        flush_obj = o; /* still loaded (s holds the TPM): flushed there below */
                }
                if (IS_SESSION(h)) {
                        flush_ses = ses_find(s, h);
                        if (!flush_ses) {
                                *ret_len = answer(resp, TPM2_RC_HANDLE + TPM2_RC_P + TPM2_RC_1);
                                return 0;
                        }
                }
        }
        buf = malloc(RM_MAX_COMMAND);
        io = malloc(sizeof(*io));
        if (!buf || !io) {
                *ret_len = answer(resp, TPM2_RC_MEMORY);
                goto out;
        }
        io->fn = fn;
        io->ctx = io_ctx;
        memcpy(buf, cmd, len);

        /* Authorization sessions: the password session, or this client's own. */
        for (unsigned i = 0; i < c.n_sessions; i++) {
                rm_session_t *se;
                if (c.sessions[i] == TPM2_RH_PW)
                        continue;
                se = IS_SESSION(c.sessions[i]) ? ses_find(s, c.sessions[i]) : NULL;
                if (!se) {
                        *ret_len = answer(resp, TPM2_RC_HANDLE + TPM2_RC_S + RC_N(i + 1));
                        goto out;
                }
        }
        /* The TPM is s's from here: another client's contexts (or nothing of vtpmd's) are in it no more. */
        r = tpm_acquire(t, s, io);
        if (r < 0)
                goto fail;
        if (flush_obj) {
                r = handle_cmd(io, TPM2_CC_FlushContext, flush_obj->phandle, &rc);
                if (r < 0)
                        goto fail;
                drop_object(flush_obj);
                *ret_len = answer(resp, TPM2_RC_SUCCESS);
                goto save;
        }
        r = make_room(s, io, &c);
        if (r < 0)
                goto fail;
        /* Handle area: virtual transient handles are translated; sessions must be this client's. */
        for (unsigned i = 0; i < c.n_handles; i++) {
                uint32_t h = c.handles[i];
                if (IS_TRANSIENT(h)) {
                        rm_object_t *o = obj_find(s, h);
                        if (!o) {
                                *ret_len = answer(resp, TPM2_RC_HANDLE + RC_N(i + 1));
                                goto save;
                        }
                        r = obj_load(io, o, &rc);
                        if (r < 0)
                                goto fail;
                        if (rc != TPM2_RC_SUCCESS) {
                                /* The saved context no longer loads (the vTPM was reset): the handle is gone. */
                                drop_object(o);
                                *ret_len = answer(resp, TPM2_RC_HANDLE + RC_N(i + 1));
                                goto save;
                        }
                        put32(buf + HDR + 4 * i, o->phandle);
                } else if (IS_SESSION(h)) {
                        rm_session_t *se = ses_find(s, h);
                        if (!se) {
                                *ret_len = answer(resp, TPM2_RC_HANDLE + RC_N(i + 1));
                                goto save;
                        }
                        r = ses_load(io, se, &rc);
                        if (r < 0)
                                goto fail;
                        if (rc != TPM2_RC_SUCCESS) {
                                drop_session(se);
                                *ret_len = answer(resp, TPM2_RC_HANDLE + RC_N(i + 1));
                                goto save;
                        }
                }
        }
        for (unsigned i = 0; i < c.n_sessions; i++) {
                rm_session_t *se = c.sessions[i] == TPM2_RH_PW ? NULL : ses_find(s, c.sessions[i]);
                if (!se)
                        continue;
                r = ses_load(io, se, &rc);
                if (r < 0)
                        goto fail;
                if (rc != TPM2_RC_SUCCESS) {
                        drop_session(se);
                        *ret_len = answer(resp, TPM2_RC_HANDLE + TPM2_RC_S + RC_N(i + 1));
                        goto save;
                }
        }

        r = call(io, buf, len, &rc);
        if (r < 0)
                goto fail;
        memcpy(resp, io->resp, io->len);
        *ret_len = io->len;
        if (rc == TPM2_RC_SUCCESS && flush_ses)
                drop_session(flush_ses);
        if (rc == TPM2_RC_SUCCESS && (c.info->flags & RM_CC_RESP_HANDLE) && *ret_len >= HDR + 4) {
                uint32_t h = get32(resp + HDR), rc2;
                if (IS_TRANSIENT(h)) {
                        unsigned i;
                        for (i = 0; i < RM_MAX_OBJECTS && s->obj[i].used; i++)
                                ;
                        if (i == RM_MAX_OBJECTS) {
                                r = handle_cmd(io, TPM2_CC_FlushContext, h, &rc2);
                                if (r < 0)
                                        goto fail;
                                *ret_len = answer(resp, TPM2_RC_OBJECT_MEMORY);
                        } else {
                                s->obj[i] = (rm_object_t){.used = true, .loaded = true, .phandle = h};
                                put32(resp + HDR, vhandle(i));
                        }
                } else if (IS_SESSION(h)) {
                        unsigned i;
                        for (i = 0; i < RM_MAX_SESSIONS && s->ses[i].used; i++)
                                ;
                        if (i == RM_MAX_SESSIONS) {
                                r = handle_cmd(io, TPM2_CC_FlushContext, h, &rc2);
                                if (r < 0)
                                        goto fail;
                                *ret_len = answer(resp, TPM2_RC_SESSION_MEMORY);
                        } else {
                                s->ses[i] = (rm_session_t){.used = true, .loaded = true, .handle = h};
                        }
                }
        }
        r = t->eager ? 0 : after_command(s, io, &c, rc);
        if (r < 0)
                goto fail;
save:
        /* Eager (the behaviour before lazy eviction): nothing of s stays loaded between commands. */
        r = t->eager ? save_all(s, io) : 0;
        if (r < 0)
                goto fail;
        r = 0;
        goto out;
fail:
        rm_space_reset(s);
        if (t->owner == s)
                tpm_disown(t);
        t->unknown = true; /* what of s was loaded is forgotten but may still be there */
        *ret_len = answer(resp, TPM2_RC_FAILURE);
out:
        free(buf);
        free(io);
        return r;
}
