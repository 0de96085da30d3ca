/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TPM boundary: tctildr + ESYS. TSS2_RC values never leave this file;
 * they are decoded (Tss2_RC_Decode) into debug logs and mapped to CSCP_E_*.
 *
 * AK state file (state_dir/ak-ecc.blob, ak-rsa.blob), all integers big-endian:
 *   magic     8 bytes  "CSCPAK\0\1" (last byte = format version 1)
 *   alg       u16      TPM2_ALG_ECC or TPM2_ALG_RSA (the AK's type)
 *   public    TPM2B_PUBLIC, tss2-mu marshalled
 *   private   TPM2B_PRIVATE, tss2-mu marshalled
 * and nothing after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "error.h"
#include "pcr.h"
#include "quote.h"
#include "tpm.h"
#include "util.h"

#define LOGMODULE tpm
#include "log.h"

#include "internal.h"

#define AK_BLOB_MAGIC     "CSCPAK\0\1"
#define AK_BLOB_MAGIC_LEN 8
#define AK_BLOB_MAX       4096
#define QUOTE_ATTEMPTS    5
#define PCR_READ_ATTEMPTS 5
#define NONCE_MAX         64

#define EK_ATTRS_LOW 0x000300B2u /* TCG EK Credential Profile attribute set A */
#define AK_ATTRS                                                                                              \
        (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH)

/* PolicySecret(TPM_RH_ENDORSEMENT), SHA-256 (reference.md §2.2). */
static const uint8_t policy_a_sha256[32] = {
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
        0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

struct cscp_tpm {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR ak;
        bool ak_persistent; /* ak is a persistent handle: closed, never flushed */
        uint8_t ak_public[sizeof(TPMT_PUBLIC)];
        size_t ak_public_len;
        /*
         * The PCR values behind the last quote and its selection: a later quote whose signed pcrDigest is the
         * digest of these values is answered with them, without reading the PCRs again (the values are then
         * exactly what the TPM signed). On a slow TPM this takes a quote from three commands to one.
         */
        TPML_PCR_SELECTION cache_sel;
        cscp_pcr_value_t *cache;
        size_t n_cache;
};

/* Lets go of the AK: a loaded one is flushed, a persistent one only forgotten by ESYS. */
static void ak_release(cscp_tpm_t *t)
{
        TSS2_RC rc;

        if (t->ak != ESYS_TR_NONE && t->ak_persistent) {
                rc = Esys_TR_Close(t->esys, &t->ak);
                if (rc != TSS2_RC_SUCCESS)
                        log_debug("TR_Close: 0x%08x %s", (unsigned)rc, Tss2_RC_Decode(rc));
                t->ak = ESYS_TR_NONE;
        }
        tpm_flush(t->esys, &t->ak);
        t->ak_persistent = false;
}

int cscp_tpm_open(const char *tcti, cscp_tpm_t **ret)
{
        cscp_tpm_t *t;
        TSS2_RC rc;
        int r;

        if (!ret)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ak = ESYS_TR_NONE;

        rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("Tss2_TctiLdr_Initialize", rc);
                goto fail_free;
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("Esys_Initialize", rc);
                goto fail_tcti;
        }
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
                r = tss_fail("Esys_Startup", rc);
                goto fail_esys;
        }
        log_debug("opened TPM (tcti %s)", tcti ? tcti : "default");
        *ret = t;
        return 0;

fail_esys:
        Esys_Finalize(&t->esys);
fail_tcti:
        Tss2_TctiLdr_Finalize(&t->tcti);
fail_free:
        free(t);
        return r;
}

void cscp_tpm_free(cscp_tpm_t *t)
{
        if (!t)
                return;
        if (t->esys) {
                ak_release(t);
                Esys_Finalize(&t->esys);
        }
        if (t->tcti)
                Tss2_TctiLdr_Finalize(&t->tcti);
        free(t->cache);
        free(t);
}

/* --- templates ------------------------------------------------------------------------- */

/* TCG EK Credential Profile low range: L-2 (ECC P-256) or L-1 (RSA 2048) (reference.md §2.1). */
void cscp_tpm_ek_template(cscp_key_alg_t alg, TPM2B_PUBLIC *ret)
{
        TPMT_PUBLIC *p = &ret->publicArea;

        memset(ret, 0, sizeof(*ret));
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = EK_ATTRS_LOW;
        p->authPolicy.size = sizeof(policy_a_sha256);
        memcpy(p->authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
        switch (alg) {
        case CSCP_KEY_ECC_P256:
                tpm_ecc_p256_parent(p);
                break;
        case CSCP_KEY_RSA_2048:
                p->type = TPM2_ALG_RSA;
                p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
                p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
                p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
                p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                p->parameters.rsaDetail.keyBits = 2048;
                p->parameters.rsaDetail.exponent = 0;
                p->unique.rsa.size = 256; /* zero-filled */
                break;
        }
}

void cscp_tpm_ak_template(cscp_key_alg_t alg, TPM2B_PUBLIC *ret)
{
        TPMT_PUBLIC *p = &ret->publicArea;

        memset(ret, 0, sizeof(*ret));
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = AK_ATTRS;
        switch (alg) {
        case CSCP_KEY_ECC_P256:
                p->type = TPM2_ALG_ECC;
                p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
                p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
                p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
                p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                break;
        case CSCP_KEY_RSA_2048:
                p->type = TPM2_ALG_RSA;
                p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
                p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
                p->parameters.rsaDetail.keyBits = 2048;
                p->parameters.rsaDetail.exponent = 0;
                break;
        }
}

/* Whether a stored AK public area is exactly the kind of key we create. */
static bool ak_public_ok(cscp_key_alg_t alg, const TPMT_PUBLIC *p)
{
        TPM2B_PUBLIC tmpl;
        const TPMT_PUBLIC *w = &tmpl.publicArea;

        cscp_tpm_ak_template(alg, &tmpl);
        if (p->type != w->type || p->nameAlg != w->nameAlg || p->objectAttributes != w->objectAttributes ||
            p->authPolicy.size != 0)
                return false;
        switch (alg) {
        case CSCP_KEY_ECC_P256: {
                const TPMS_ECC_PARMS *e = &p->parameters.eccDetail;
                return e->symmetric.algorithm == TPM2_ALG_NULL && e->scheme.scheme == TPM2_ALG_ECDSA &&
                       e->scheme.details.ecdsa.hashAlg == TPM2_ALG_SHA256 && e->curveID == TPM2_ECC_NIST_P256 &&
                       e->kdf.scheme == TPM2_ALG_NULL && p->unique.ecc.x.size == 32 && p->unique.ecc.y.size == 32;
        }
        case CSCP_KEY_RSA_2048: {
                const TPMS_RSA_PARMS *r = &p->parameters.rsaDetail;
                return r->symmetric.algorithm == TPM2_ALG_NULL && r->scheme.scheme == TPM2_ALG_RSASSA &&
                       r->scheme.details.rsassa.hashAlg == TPM2_ALG_SHA256 && r->keyBits == 2048 && r->exponent == 0 &&
                       p->unique.rsa.size == 256;
        }
        }
        return false;
}

/* --- AK state file --------------------------------------------------------------------- */

static int blob_encode(cscp_key_alg_t alg, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint8_t *buf,
                       size_t size, size_t *ret_len)
{
        size_t off = AK_BLOB_MAGIC_LEN;
        TSS2_RC rc;

        if (size < AK_BLOB_MAGIC_LEN)
                return -ENOBUFS;
        memcpy(buf, AK_BLOB_MAGIC, AK_BLOB_MAGIC_LEN);
        rc = Tss2_MU_UINT16_Marshal(alg == CSCP_KEY_ECC_P256 ? TPM2_ALG_ECC : TPM2_ALG_RSA, buf, size, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, size, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, size, &off);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("marshal AK blob", rc);
        *ret_len = off;
        return 0;
}

/* Parses and validates a whole blob; any defect is CSCP_E_STATE. */
static int blob_decode(const uint8_t *buf, size_t len, cscp_key_alg_t alg, TPM2B_PUBLIC *ret_pub,
                       TPM2B_PRIVATE *ret_priv)
{
        TPM2B_PUBLIC pub = {0};
        TPM2B_PRIVATE priv = {0};
        size_t off = AK_BLOB_MAGIC_LEN;
        uint16_t type;
        TSS2_RC rc;

        if (len < AK_BLOB_MAGIC_LEN || memcmp(buf, AK_BLOB_MAGIC, AK_BLOB_MAGIC_LEN) != 0) {
                log_debug("AK blob: bad magic or version");
                return CSCP_E_STATE;
        }
        rc = Tss2_MU_UINT16_Unmarshal(buf, len, &off, &type);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &priv);
        if (rc != TSS2_RC_SUCCESS) {
                log_debug("AK blob: malformed: 0x%08x %s", (unsigned)rc, Tss2_RC_Decode(rc));
                return CSCP_E_STATE;
        }
        if (off != len) {
                log_debug("AK blob: %zu trailing bytes", len - off);
                return CSCP_E_STATE;
        }
        if (type != (alg == CSCP_KEY_ECC_P256 ? TPM2_ALG_ECC : TPM2_ALG_RSA)) {
                log_debug("AK blob: algorithm 0x%04x does not match the file name", type);
                return CSCP_E_STATE;
        }
        if (!ak_public_ok(alg, &pub.publicArea)) {
                log_debug("AK blob: public area is not an AK of the expected kind");
                return CSCP_E_STATE;
        }
        if (priv.size == 0) {
                log_debug("AK blob: empty private area");
                return CSCP_E_STATE;
        }
        *ret_pub = pub;
        *ret_priv = priv;
        return 0;
}

/* --- AK creation and loading ----------------------------------------------------------- */

static int ek_create(cscp_tpm_t *t, cscp_key_alg_t alg, ESYS_TR *ret)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC tmpl;
        ESYS_TR ek = ESYS_TR_NONE;
        TSS2_RC rc;

        cscp_tpm_ek_template(alg, &tmpl);
        rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                &tmpl, &outside, &creation_pcr, &ek, NULL, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("CreatePrimary(EK)", rc);
        *ret = ek;
        return 0;
}

/* A policy session satisfying the EK's PolicyA: PolicySecret(TPM_RH_ENDORSEMENT). */
static int ek_policy_session(cscp_tpm_t *t, ESYS_TR *ret)
{
        TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
        TPM2B_NONCE nonce_tpm = {0}, policy_ref = {0};
        TPM2B_DIGEST cp_hash = {0};
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("StartAuthSession(policy)", rc);
        rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &nonce_tpm, &cp_hash, &policy_ref, 0, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("PolicySecret(endorsement)", rc);
                tpm_flush(t->esys, &s);
                return r;
        }
        *ret = s;
        return 0;
}

static int ak_set_public(cscp_tpm_t *t, const TPMT_PUBLIC *pub)
{
        size_t off = 0;
        TSS2_RC rc;

        rc = Tss2_MU_TPMT_PUBLIC_Marshal(pub, t->ak_public, sizeof(t->ak_public), &off);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("marshal AK public", rc);
        t->ak_public_len = off;
        return 0;
}

/* Loads pub/priv under a fresh EK; TPM refusals of the blob are CSCP_E_STATE. */
static int ak_load(cscp_tpm_t *t, cscp_key_alg_t alg, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, ESYS_TR *ret)
{
        ESYS_TR ek = ESYS_TR_NONE, s = ESYS_TR_NONE, ak = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        r = ek_create(t, alg, &ek);
        if (r < 0)
                return r;
        r = ek_policy_session(t, &s);
        if (r < 0)
                goto out_ek;
        rc = Esys_Load(t->esys, ek, s, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &ak);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("Load(AK)", rc);
                if (tpm_rejected(rc))
                        r = CSCP_E_STATE;
                goto out_session;
        }
        *ret = ak;
        r = 0;
out_session:
        tpm_flush(t->esys, &s);
out_ek:
        tpm_flush(t->esys, &ek);
        return r;
}

int tpm_create_object(ESYS_CONTEXT *esys, ESYS_TR parent, ESYS_TR s, const TPM2B_SENSITIVE_CREATE *sens,
                      const TPM2B_PUBLIC *tmpl, const char *what, tpm_public_ok_t *public_ok, const void *arg,
                      TPM2B_PUBLIC **ret_pub, TPM2B_PRIVATE **ret_priv)
{
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC *out_pub = NULL;
        TPM2B_PRIVATE *out_priv = NULL;
        TSS2_RC rc;

        rc = Esys_Create(esys, parent, s, ESYS_TR_NONE, ESYS_TR_NONE, sens, tmpl, &outside, &creation_pcr, &out_priv,
                         &out_pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(what, rc);
        if (!public_ok(&out_pub->publicArea, arg)) {
                log_debug("%s: the TPM returned an unexpected public area", what);
                tpm_created_free(out_pub, out_priv);
                return CSCP_E_TPM;
        }
        *ret_pub = out_pub;
        *ret_priv = out_priv;
        return 0;
}

void tpm_created_free(TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv)
{
        Esys_Free(pub);
        if (priv)
                OPENSSL_cleanse(priv, sizeof(*priv));
        Esys_Free(priv);
}

static bool ak_public_check(const TPMT_PUBLIC *p, const void *alg)
{
        return ak_public_ok(*(const cscp_key_alg_t *)alg, p);
}

static int ak_create(cscp_tpm_t *t, cscp_key_alg_t alg, TPM2B_PUBLIC *ret_pub, TPM2B_PRIVATE *ret_priv)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_PUBLIC tmpl;
        TPM2B_PUBLIC *out_pub = NULL;
        TPM2B_PRIVATE *out_priv = NULL;
        ESYS_TR ek = ESYS_TR_NONE, s = ESYS_TR_NONE;
        int r;

        r = ek_create(t, alg, &ek);
        if (r < 0)
                return r;
        r = ek_policy_session(t, &s);
        if (r < 0)
                goto out_ek;
        cscp_tpm_ak_template(alg, &tmpl);
        r = tpm_create_object(t->esys, ek, s, &sens, &tmpl, "Create(AK)", ak_public_check, &alg, &out_pub, &out_priv);
        if (r < 0)
                goto out_session;
        *ret_pub = *out_pub;
        *ret_priv = *out_priv;
        tpm_created_free(out_pub, out_priv);
out_session:
        tpm_flush(t->esys, &s);
out_ek:
        tpm_flush(t->esys, &ek);
        return r;
}

static int state_dir_ensure(const char *dir)
{
        struct stat st;

        if (mkdir(dir, 0700) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        if (stat(dir, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int cscp_tpm_ak_load_or_create(cscp_tpm_t *t, const char *state_dir, cscp_key_alg_t alg, bool *ret_created)
{
        TPM2B_PUBLIC pub = {0};
        TPM2B_PRIVATE priv = {0};
        uint8_t *file = NULL;
        uint8_t blob[AK_BLOB_MAX];
        size_t file_len = 0, blob_len = 0;
        ESYS_TR ak = ESYS_TR_NONE;
        bool created = false;
        char *path = NULL;
        const char *name;
        int r;

        if (!t || !state_dir)
                return -EINVAL;
        switch (alg) {
        case CSCP_KEY_ECC_P256:
                name = "ak-ecc.blob";
                break;
        case CSCP_KEY_RSA_2048:
                name = "ak-rsa.blob";
                break;
        default:
                return CSCP_E_UNSUPPORTED;
        }
        r = state_dir_ensure(state_dir);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/%s", state_dir, name) < 0)
                return -ENOMEM;

        r = cscp_file_read(path, AK_BLOB_MAX, &file, &file_len);
        if (r == 0) {
                r = blob_decode(file, file_len, alg, &pub, &priv);
                if (r < 0)
                        goto out;
                r = ak_load(t, alg, &pub, &priv, &ak);
                if (r < 0) {
                        log_debug("%s does not load on this TPM (%s)", path, cscp_strerror(r));
                        goto out;
                }
        } else if (r == -ENOENT) {
                r = ak_create(t, alg, &pub, &priv);
                if (r < 0)
                        goto out;
                r = ak_load(t, alg, &pub, &priv, &ak);
                if (r == CSCP_E_STATE) /* the TPM refused what it just made */
                        r = CSCP_E_TPM;
                if (r < 0)
                        goto out;
                r = blob_encode(alg, &pub, &priv, blob, sizeof(blob), &blob_len);
                if (r < 0)
                        goto out_flush;
                r = cscp_file_write_atomic(path, blob, blob_len, 0600);
                OPENSSL_cleanse(blob, sizeof(blob));
                if (r < 0) {
                        log_debug("writing %s: %s", path, cscp_strerror(r));
                        goto out_flush;
                }
                created = true;
                log_debug("created AK %s", path);
        } else {
                log_debug("reading %s: %s", path, cscp_strerror(r));
                if (r == -EFBIG || r == -EINVAL || r == -ELOOP)
                        r = CSCP_E_STATE; /* there, but not a file we could have written */
                goto out;
        }

        r = ak_set_public(t, &pub.publicArea);
        if (r < 0)
                goto out_flush;
        ak_release(t); /* a previously loaded AK */
        t->ak = ak;
        ak = ESYS_TR_NONE;
        if (ret_created)
                *ret_created = created;
        r = 0;
out_flush:
        tpm_flush(t->esys, &ak);
out:
        OPENSSL_cleanse(&priv, sizeof(priv));
        if (file) {
                OPENSSL_cleanse(file, file_len);
                free(file);
        }
        free(path);
        return r;
}

int cscp_tpm_ak_public(cscp_tpm_t *t, const uint8_t **ret, size_t *ret_len)
{
        if (!t || !ret || !ret_len)
                return -EINVAL;
        if (t->ak == ESYS_TR_NONE)
                return -ENOENT;
        *ret = t->ak_public;
        *ret_len = t->ak_public_len;
        return 0;
}

ESYS_CONTEXT *cscp_tpm_esys(cscp_tpm_t *t)
{
        return t ? t->esys : NULL;
}

ESYS_TR cscp_tpm_ak_handle(cscp_tpm_t *t)
{
        return t ? t->ak : ESYS_TR_NONE;
}

int cscp_tpm_ak_use_persistent(cscp_tpm_t *t, uint32_t handle, cscp_key_alg_t alg)
{
        TPM2B_PUBLIC *pub = NULL;
        ESYS_TR h = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t)
                return -EINVAL;
        if (alg != CSCP_KEY_ECC_P256 && alg != CSCP_KEY_RSA_2048)
                return CSCP_E_UNSUPPORTED;
        if ((handle >> 24) != TPM2_HT_PERSISTENT)
                return -EINVAL;
        rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("TR_FromTPMPublic(AK)", rc);
                if (tpm_rejected(rc))
                        r = -ENOENT; /* no object at that handle */
                return r;
        }
        rc = Esys_ReadPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("ReadPublic(AK)", rc);
                goto out;
        }
        if (!ak_public_ok(alg, &pub->publicArea)) {
                log_debug("persistent handle 0x%08x is not an AK of the expected kind", (unsigned)handle);
                r = CSCP_E_STATE;
                goto out;
        }
        r = ak_set_public(t, &pub->publicArea);
        if (r < 0)
                goto out;
        ak_release(t);
        t->ak = h;
        t->ak_persistent = true;
        h = ESYS_TR_NONE;
        r = 0;
out:
        Esys_Free(pub);
        if (h != ESYS_TR_NONE)
                (void)Esys_TR_Close(t->esys, &h);
        return r;
}

/* --- PCRs ------------------------------------------------------------------------------ */

static int pcrsel_check(const TPML_PCR_SELECTION *sel)
{
        if (sel->count > TPM2_NUM_PCR_BANKS)
                return CSCP_E_PCRSEL;
        for (uint32_t i = 0; i < sel->count; i++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];

                if (cscp_hash_alg_size(s->hash) == 0 || s->sizeofSelect > TPM2_PCR_SELECT_MAX)
                        return CSCP_E_PCRSEL;
                for (unsigned b = CSCP_PCR_COUNT; b < 8u * s->sizeofSelect; b++)
                        if (cscp_pcrsel_is_set(s, b))
                                return CSCP_E_PCRSEL;
                for (uint32_t j = 0; j < i; j++)
                        if (sel->pcrSelections[j].hash == s->hash)
                                return CSCP_E_PCRSEL;
        }
        return 0;
}

static void sel_clear(TPMS_PCR_SELECTION *s, unsigned pcr)
{
        s->pcrSelect[pcr / 8] &= (uint8_t) ~(1u << (pcr % 8));
}

static bool sel_empty(const TPML_PCR_SELECTION *sel)
{
        for (uint32_t i = 0; i < sel->count; i++)
                for (unsigned k = 0; k < sel->pcrSelections[i].sizeofSelect; k++)
                        if (sel->pcrSelections[i].pcrSelect[k])
                                return false;
        return true;
}

/*
 * One pass over the selection: PCR_Read until everything is read, all answers
 * under the same pcrUpdateCounter. Returns 1 when the counter moved (retry).
 * vals has one slot per [bank][pcr] of sel.
 */
static int pcr_read_pass(cscp_tpm_t *t, const TPML_PCR_SELECTION *sel, cscp_pcr_value_t (*vals)[CSCP_PCR_COUNT])
{
        TPML_PCR_SELECTION remaining = *sel;
        bool have_counter = false;
        uint32_t counter0 = 0;

        while (!sel_empty(&remaining)) {
                TPML_PCR_SELECTION *out_sel = NULL;
                TPML_DIGEST *out_vals = NULL;
                uint32_t counter, used = 0;
                TSS2_RC rc;
                int r = 0;

                rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &remaining, &counter, &out_sel,
                                   &out_vals);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail("PCR_Read", rc);
                if (have_counter && counter != counter0) {
                        r = 1;
                        goto next;
                }
                have_counter = true;
                counter0 = counter;
                if (out_vals->count == 0) {
                        log_debug("PCR_Read: the TPM has none of the remaining PCRs");
                        r = CSCP_E_PCRSEL;
                        goto next;
                }
                for (uint32_t i = 0; i < out_sel->count && r == 0; i++) {
                        const TPMS_PCR_SELECTION *o = &out_sel->pcrSelections[i];
                        uint32_t bank;

                        for (bank = 0; bank < remaining.count; bank++)
                                if (remaining.pcrSelections[bank].hash == o->hash)
                                        break;
                        for (unsigned pcr = 0; pcr < 8u * o->sizeofSelect && r == 0; pcr++) {
                                const TPM2B_DIGEST *d;
                                cscp_pcr_value_t *v;

                                if (!cscp_pcrsel_is_set(o, pcr))
                                        continue;
                                if (bank == remaining.count || pcr >= CSCP_PCR_COUNT ||
                                    !cscp_pcrsel_is_set(&remaining.pcrSelections[bank], pcr) ||
                                    used == out_vals->count) {
                                        log_debug("PCR_Read: answer does not match the request");
                                        r = CSCP_E_TPM;
                                        break;
                                }
                                d = &out_vals->digests[used++];
                                if (d->size != cscp_hash_alg_size(o->hash)) {
                                        log_debug("PCR_Read: digest of %u bytes for bank 0x%04x", d->size, o->hash);
                                        r = CSCP_E_TPM;
                                        break;
                                }
                                v = &vals[bank][pcr];
                                v->hash_alg = o->hash;
                                v->index = (uint16_t)pcr;
                                v->size = d->size;
                                memcpy(v->value, d->buffer, d->size);
                                sel_clear(&remaining.pcrSelections[bank], pcr);
                        }
                }
                if (r == 0 && used != out_vals->count) {
                        log_debug("PCR_Read: %u digests for %u selected PCRs", out_vals->count, used);
                        r = CSCP_E_TPM;
                }
        next:
                Esys_Free(out_sel);
                Esys_Free(out_vals);
                if (r != 0)
                        return r;
        }
        return 0;
}

int cscp_tpm_pcr_read(cscp_tpm_t *t, const TPML_PCR_SELECTION *sel, cscp_pcr_value_t **ret, size_t *ret_n)
{
        cscp_pcr_value_t(*vals)[CSCP_PCR_COUNT] = NULL;
        cscp_pcr_value_t *out = NULL;
        size_t n, k = 0;
        int r;

        if (!t || !sel || !ret || !ret_n)
                return -EINVAL;
        r = pcrsel_check(sel);
        if (r < 0)
                return r;
        n = cscp_pcrsel_count(sel);
        if (sel->count > 0) {
                vals = calloc(sel->count, sizeof(*vals));
                if (!vals)
                        return -ENOMEM;
        }
        for (int attempt = 0;; attempt++) {
                r = pcr_read_pass(t, sel, vals);
                if (r <= 0)
                        break;
                if (attempt + 1 == PCR_READ_ATTEMPTS) {
                        log_debug("PCR_Read: PCRs kept changing while reading");
                        r = CSCP_E_TPM;
                        break;
                }
        }
        if (r < 0)
                goto out;
        out = calloc(n ? n : 1, sizeof(*out));
        if (!out) {
                r = -ENOMEM;
                goto out;
        }
        for (uint32_t i = 0; i < sel->count; i++)
                for (unsigned pcr = 0; pcr < CSCP_PCR_COUNT; pcr++)
                        if (cscp_pcrsel_is_set(&sel->pcrSelections[i], pcr))
                                out[k++] = vals[i][pcr];
        *ret = out;
        *ret_n = k;
        r = 0;
out:
        free(vals);
        return r;
}

int cscp_tpm_pcr_banks(cscp_tpm_t *t, uint16_t *ret, size_t max, size_t *ret_n)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        size_t n = 0;
        TSS2_RC rc;
        int r = 0;

        if (!t || !ret || !ret_n)
                return -EINVAL;
        rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("GetCapability(PCRS)", rc);
        if (cap->capability != TPM2_CAP_PCRS || cap->data.assignedPCR.count > TPM2_NUM_PCR_BANKS) {
                log_debug("GetCapability(PCRS): unexpected answer");
                r = CSCP_E_TPM;
                goto out;
        }
        for (uint32_t i = 0; i < cap->data.assignedPCR.count; i++) {
                const TPMS_PCR_SELECTION *s = &cap->data.assignedPCR.pcrSelections[i];
                bool any = false;

                if (cscp_hash_alg_size(s->hash) == 0)
                        continue; /* a bank we cannot replay (SM3, SHA3) */
                for (unsigned k = 0; k < s->sizeofSelect && k < TPM2_PCR_SELECT_MAX; k++)
                        any |= s->pcrSelect[k] != 0;
                if (!any)
                        continue;
                if (n == max) {
                        r = -ENOBUFS;
                        goto out;
                }
                ret[n++] = s->hash;
        }
        *ret_n = n;
out:
        Esys_Free(cap);
        return r;
}

int cscp_tpm_pcr_extend(cscp_tpm_t *t, unsigned pcr, uint16_t hash_alg, const uint8_t *digest, size_t len)
{
        TPML_DIGEST_VALUES v = {.count = 1};
        TSS2_RC rc;

        if (!t || !digest)
                return -EINVAL;
        if (pcr >= CSCP_PCR_COUNT)
                return CSCP_E_PCRSEL;
        if (cscp_hash_alg_size(hash_alg) == 0)
                return CSCP_E_UNSUPPORTED;
        if (len != cscp_hash_alg_size(hash_alg))
                return -EINVAL;
        v.digests[0].hashAlg = hash_alg;
        memcpy(&v.digests[0].digest, digest, len);
        rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("PCR_Extend", rc);
        return 0;
}

/* --- quotes ---------------------------------------------------------------------------- */

static int sig_hash(const TPMT_SIGNATURE *sig, uint16_t *ret)
{
        switch (sig->sigAlg) {
        case TPM2_ALG_ECDSA:
                *ret = sig->signature.ecdsa.hash;
                return 0;
        case TPM2_ALG_RSASSA:
                *ret = sig->signature.rsassa.hash;
                return 0;
        case TPM2_ALG_RSAPSS:
                *ret = sig->signature.rsapss.hash;
                return 0;
        default:
                log_debug("quote: unexpected signature algorithm 0x%04x", sig->sigAlg);
                return CSCP_E_UNSUPPORTED;
        }
}

/*
 * One TPM2_Quote plus a PCR read of the returned selection. Returns 1 when
 * the values do not give the quoted pcrDigest (a PCR moved: quote again).
 */
static int quote_once(cscp_tpm_t *t, const TPM2B_DATA *qdata, const TPML_PCR_SELECTION *sel, cscp_tpm_quote_t *q)
{
        TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
        TPM2B_ATTEST *quoted = NULL;
        TPMT_SIGNATURE *sig = NULL;
        TPMS_ATTEST attest;
        cscp_pcr_value_t *pcrs = NULL;
        uint8_t sig_buf[sizeof(TPMT_SIGNATURE)];
        uint8_t digest[EVP_MAX_MD_SIZE];
        size_t digest_len = 0;
        size_t n_pcrs = 0, off = 0, sig_len = 0;
        uint16_t halg;
        TSS2_RC rc;
        int r;

        rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, qdata, &scheme, sel, &quoted,
                        &sig);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("Quote", rc);

        memset(&attest, 0, sizeof(attest));
        rc = Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off, &attest);
        if (rc != TSS2_RC_SUCCESS || off != quoted->size) {
                r = tss_fail("Quote: unmarshal TPMS_ATTEST", rc != TSS2_RC_SUCCESS ? rc : TSS2_MU_RC_BAD_SIZE);
                goto out;
        }
        if (attest.magic != TPM2_GENERATED_VALUE || attest.type != TPM2_ST_ATTEST_QUOTE ||
            attest.extraData.size != qdata->size || memcmp(attest.extraData.buffer, qdata->buffer, qdata->size) != 0) {
                log_debug("Quote: the TPM returned an unexpected TPMS_ATTEST");
                r = CSCP_E_TPM;
                goto out;
        }
        r = sig_hash(sig, &halg);
        if (r < 0)
                goto out;
        rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sig_buf, sizeof(sig_buf), &sig_len);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("Quote: marshal TPMT_SIGNATURE", rc);
                goto out;
        }

        /* The values of the last quote, if the TPM signed exactly them (see cache in struct cscp_tpm). */
        if (t->cache && memcmp(&t->cache_sel, &attest.attested.quote.pcrSelect, sizeof(t->cache_sel)) == 0 &&
            cscp_pcr_digest(halg, &t->cache_sel, t->cache, t->n_cache, digest, &digest_len) == 0 &&
            digest_len == attest.attested.quote.pcrDigest.size &&
            CRYPTO_memcmp(digest, attest.attested.quote.pcrDigest.buffer, digest_len) == 0) {
                pcrs = malloc(t->n_cache * sizeof(*pcrs));
                if (!pcrs) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(pcrs, t->cache, t->n_cache * sizeof(*pcrs));
                n_pcrs = t->n_cache;
                goto values;
        }
        /* The returned selection is what was quoted (unimplemented PCRs are cleared by the TPM). */
        r = cscp_tpm_pcr_read(t, &attest.attested.quote.pcrSelect, &pcrs, &n_pcrs);
        if (r < 0)
                goto out;
        r = cscp_pcr_digest(halg, &attest.attested.quote.pcrSelect, pcrs, n_pcrs, digest, &digest_len);
        if (r < 0) {
                log_debug("Quote: PCR digest: %s", cscp_strerror(r));
                goto out;
        }
        if (digest_len != attest.attested.quote.pcrDigest.size ||
            CRYPTO_memcmp(digest, attest.attested.quote.pcrDigest.buffer, digest_len) != 0) {
                log_debug("Quote: PCR values read afterwards do not match pcrDigest");
                r = 1;
                goto out;
        }
        {
                cscp_pcr_value_t *c = malloc(n_pcrs ? n_pcrs * sizeof(*c) : 1);
                if (c) { /* without memory, simply no cache */
                        memcpy(c, pcrs, n_pcrs * sizeof(*c));
                        free(t->cache);
                        t->cache = c;
                        t->n_cache = n_pcrs;
                        t->cache_sel = attest.attested.quote.pcrSelect;
                }
        }
values:

        q->attest = malloc(quoted->size);
        q->sig = malloc(sig_len);
        if (!q->attest || !q->sig) {
                free(q->attest);
                free(q->sig);
                q->attest = q->sig = NULL;
                r = -ENOMEM;
                goto out;
        }
        memcpy(q->attest, quoted->attestationData, quoted->size);
        q->attest_len = quoted->size;
        memcpy(q->sig, sig_buf, sig_len);
        q->sig_len = sig_len;
        q->pcrs = pcrs;
        q->n_pcrs = n_pcrs;
        pcrs = NULL;
        r = 0;
out:
        free(pcrs);
        Esys_Free(quoted);
        Esys_Free(sig);
        return r;
}

int cscp_tpm_quote(cscp_tpm_t *t, const uint8_t *nonce, size_t nonce_len, const TPML_PCR_SELECTION *sel,
                   cscp_tpm_quote_t *ret)
{
        TPM2B_DATA qdata = {0};
        cscp_tpm_quote_t q = {0};
        int r;

        if (!t || !sel || !ret)
                return -EINVAL;
        if (nonce_len < 1 || nonce_len > NONCE_MAX || nonce_len > sizeof(qdata.buffer))
                return CSCP_E_NONCE;
        if (!nonce)
                return -EINVAL;
        if (t->ak == ESYS_TR_NONE)
                return -ENOENT;
        r = pcrsel_check(sel);
        if (r < 0)
                return r;
        qdata.size = (uint16_t)nonce_len;
        memcpy(qdata.buffer, nonce, nonce_len);

        for (int attempt = 1;; attempt++) {
                r = quote_once(t, &qdata, sel, &q);
                if (r <= 0)
                        break;
                if (attempt == QUOTE_ATTEMPTS) {
                        log_debug("Quote: PCRs kept changing, giving up after %d attempts", attempt);
                        r = CSCP_E_TPM;
                        break;
                }
        }
        if (r < 0)
                return r;
        *ret = q;
        return 0;
}

void cscp_tpm_quote_clear(cscp_tpm_quote_t *q)
{
        if (!q)
                return;
        free(q->attest);
        free(q->sig);
        free(q->pcrs);
        memset(q, 0, sizeof(*q));
}
