/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment answers (attestd/enroll.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define LOGMODULE enroll
#include "enroll.h"
#include "error.h"
#include "frame.h"
#include "log.h"

typedef struct enroll_job {
        tpmq_job_t job; /* first member: the tpmq job's address is the enroll job's */
        attestd_enroll_t *e;
        bool activate;
        attestd_enroll_reply_cb reply;
        void *ctx;
        /* Activate */
        uint8_t ek_public[sizeof(TPMT_PUBLIC)];
        size_t ek_public_len;
        uint8_t blob[sizeof(((TPM2B_ID_OBJECT *)0)->credential)];
        size_t blob_len;
        uint8_t secret[sizeof(TPMU_ENCRYPTED_SECRET)];
        size_t secret_len;
        /* out */
        bool ek_mismatch;
        uint8_t cred[sizeof(TPMU_HA)];
        size_t cred_len;
} enroll_job_t;

void attestd_enroll_init(attestd_enroll_t *e, cscp_key_alg_t ak_alg, const uint8_t *ak_public, size_t ak_public_len)
{
        memset(e, 0, sizeof(*e));
        e->ak_alg = ak_alg;
        e->ak_public = ak_public;
        e->ak_public_len = ak_public_len;
}

void attestd_enroll_clear(attestd_enroll_t *e)
{
        if (!e)
                return;
        free(e->ek_cert);
        e->ek_cert = NULL;
        e->have_ek = false;
}

static const char *alg_text(cscp_key_alg_t alg)
{
        return alg == CSCP_KEY_RSA_2048 ? "RSA-2048" : "ECC P-256";
}

/* TPM thread: finds the EK (certificate first) once. */
static int ek_ensure(attestd_enroll_t *e, cscp_tpm_t *tpm)
{
        cscp_key_alg_t order[2] = {e->ak_alg, e->ak_alg == CSCP_KEY_RSA_2048 ? CSCP_KEY_ECC_P256 : CSCP_KEY_RSA_2048};
        cscp_key_alg_t alg = e->ak_alg;
        uint8_t *cert = NULL;
        size_t cert_len = 0;
        int r;

        if (e->have_ek)
                return 0;
        for (size_t i = 0; i < 2; i++) {
                r = cscp_tpm_ek_cert_read(tpm, order[i], &cert, &cert_len);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        log_warn("cannot read the %s EK certificate from NV index 0x%08x: %s", alg_text(order[i]),
                                 (unsigned)cscp_tpm_ek_cert_index(order[i]), cscp_strerror(r));
                        return r;
                }
                alg = order[i];
                break;
        }
        r = cscp_tpm_ek_public(tpm, alg, e->ek_public, sizeof(e->ek_public), &e->ek_public_len);
        if (r < 0) {
                free(cert);
                return r;
        }
        e->ek_alg = alg;
        e->ek_cert = cert;
        e->ek_cert_len = cert ? cert_len : 0;
        e->have_ek = true;
        log_info("enrollment EK: %s, %s", alg_text(alg), cert ? "certificate in NV" : "no EK certificate in NV");
        return 0;
}

static int info_work(tpmq_job_t *job, cscp_tpm_t *tpm)
{
        enroll_job_t *j = (enroll_job_t *)job;

        return ek_ensure(j->e, tpm);
}

static int activate_work(tpmq_job_t *job, cscp_tpm_t *tpm)
{
        enroll_job_t *j = (enroll_job_t *)job;
        attestd_enroll_t *e = j->e;
        int r;

        r = ek_ensure(e, tpm);
        if (r < 0)
                return r;
        if (j->ek_public_len != e->ek_public_len || CRYPTO_memcmp(j->ek_public, e->ek_public, e->ek_public_len) != 0) {
                j->ek_mismatch = true;
                return -EXDEV;
        }
        return cscp_tpm_activate_credential(tpm, e->ek_alg, j->blob, j->blob_len, j->secret, j->secret_len, j->cred,
                                            sizeof(j->cred), &j->cred_len);
}

static void job_free(enroll_job_t *j)
{
        OPENSSL_cleanse(j, sizeof(*j));
        free(j);
}

static void reply_error(enroll_job_t *j, Cscp__ErrorCode code, const char *msg)
{
        j->reply(j->ctx, NULL, 0, code, msg);
}

static void done_cb(tpmq_job_t *job)
{
        enroll_job_t *j = (enroll_job_t *)job;
        attestd_enroll_t *e = j->e;
        Cscp__Frame f = CSCP__FRAME__INIT;
        Cscp__EnrollInfo info = CSCP__ENROLL_INFO__INIT;
        Cscp__Activated act = CSCP__ACTIVATED__INIT;
        uint8_t *buf = NULL;
        size_t len = 0;
        char msg[256];
        int r;

        if (job->r == -EXDEV && j->ek_mismatch) {
                reply_error(j, CSCP__ERROR_CODE__ERR_BAD_REQUEST,
                            "Activate names an EK that is not this TPM's (the one EnrollInfo sent)");
                goto out;
        }
        if (job->r == -EBADMSG) {
                reply_error(j, CSCP__ERROR_CODE__ERR_BAD_REQUEST,
                            "the TPM refused the credential: not made for this TPM's EK and AK, or altered");
                goto out;
        }
        if (job->r < 0) {
                snprintf(msg, sizeof(msg), "host TPM failed during enrollment: %s", cscp_strerror(job->r));
                reply_error(j, CSCP__ERROR_CODE__ERR_TPM, msg);
                goto out;
        }
        if (j->activate) {
                act.version = CSCP_PROTOCOL_VERSION;
                act.credential = (ProtobufCBinaryData){.data = j->cred, .len = j->cred_len};
                f.body_case = CSCP__FRAME__BODY_ACTIVATED;
                f.activated = &act;
        } else {
                info.version = CSCP_PROTOCOL_VERSION;
                info.ek_public = (ProtobufCBinaryData){.data = e->ek_public, .len = e->ek_public_len};
                info.ek_certificate = (ProtobufCBinaryData){.data = e->ek_cert, .len = e->ek_cert_len};
                info.ak_public = (ProtobufCBinaryData){.data = (uint8_t *)e->ak_public, .len = e->ak_public_len};
                f.body_case = CSCP__FRAME__BODY_ENROLL_INFO;
                f.enroll_info = &info;
        }
        r = cscp_frame_pack(&f, CSCP_FRAME_MAX_DEFAULT, &buf, &len);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot encode the answer: %s", cscp_strerror(r));
                reply_error(j, CSCP__ERROR_CODE__ERR_INTERNAL, msg);
                goto out;
        }
        log_debug("%s answered", j->activate ? "Activate" : "EnrollRequest");
        j->reply(j->ctx, buf, len, CSCP__ERROR_CODE__ERR_UNSPECIFIED, NULL);
out:
        job_free(j);
}

void attestd_enroll_handle(attestd_enroll_t *e, tpmq_t *q, const Cscp__Frame *f, attestd_enroll_reply_cb reply,
                           void *ctx)
{
        enroll_job_t *j;

        j = calloc(1, sizeof(*j));
        if (!j) {
                reply(ctx, NULL, 0, CSCP__ERROR_CODE__ERR_INTERNAL, "out of memory");
                return;
        }
        j->e = e;
        j->reply = reply;
        j->ctx = ctx;
        j->job.done = done_cb;
        j->job.data = j;
        if (f->body_case == CSCP__FRAME__BODY_ENROLL_REQUEST) {
                j->job.work = info_work;
        } else if (f->body_case == CSCP__FRAME__BODY_ACTIVATE) {
                const Cscp__Activate *a = f->activate;

                if (a->ek_public.len == 0 || a->ek_public.len > sizeof(j->ek_public) || a->credential_blob.len == 0 ||
                    a->credential_blob.len > sizeof(j->blob) || a->secret.len == 0 ||
                    a->secret.len > sizeof(j->secret)) {
                        reply_error(j, CSCP__ERROR_CODE__ERR_BAD_REQUEST,
                                    "Activate needs ek_public, credential_blob and secret within TPM sizes");
                        job_free(j);
                        return;
                }
                j->activate = true;
                memcpy(j->ek_public, a->ek_public.data, a->ek_public.len);
                j->ek_public_len = a->ek_public.len;
                memcpy(j->blob, a->credential_blob.data, a->credential_blob.len);
                j->blob_len = a->credential_blob.len;
                memcpy(j->secret, a->secret.data, a->secret.len);
                j->secret_len = a->secret.len;
                j->job.work = activate_work;
        } else {
                reply_error(j, CSCP__ERROR_CODE__ERR_BAD_REQUEST, "not an enrollment request");
                job_free(j);
                return;
        }
        tpmq_submit(q, &j->job);
}
