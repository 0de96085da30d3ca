/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "error.h"
#include "quote.h"
#include "vtpmc.h"

void vtpmc_result_clear(vtpmc_result_t *res)
{
        if (!res)
                return;
        if (res->resp)
                vtpmd__vtpm_response__free_unpacked(res->resp, NULL);
        memset(res, 0, sizeof(*res));
}

static Cscp__ErrorCode map_code(Vtpmd__ErrorCode c)
{
        switch (c) {
        case VTPMD__ERROR_CODE__ERR_NOT_FOUND:
                return CSCP__ERROR_CODE__ERR_NOT_FOUND;
        case VTPMD__ERROR_CODE__ERR_BAD_REQUEST:
                return CSCP__ERROR_CODE__ERR_BAD_REQUEST;
        case VTPMD__ERROR_CODE__ERR_TOO_LARGE:
                return CSCP__ERROR_CODE__ERR_TOO_LARGE;
        case VTPMD__ERROR_CODE__ERR_BUSY:
        case VTPMD__ERROR_CODE__ERR_LIMIT:
                return CSCP__ERROR_CODE__ERR_BUSY;
        case VTPMD__ERROR_CODE__ERR_TPM:
        case VTPMD__ERROR_CODE__ERR_SWTPM:
                return CSCP__ERROR_CODE__ERR_TPM;
        case VTPMD__ERROR_CODE__ERR_UNSPECIFIED:
        case VTPMD__ERROR_CODE__ERR_VERSION:
        case VTPMD__ERROR_CODE__ERR_EXISTS:
        case VTPMD__ERROR_CODE__ERR_PERMISSION_DENIED: /* attestd itself is not allowed on vtpmd: a setup error */
        case VTPMD__ERROR_CODE__ERR_NO_SPACE:
        case VTPMD__ERROR_CODE__ERR_INTERNAL:
        case _VTPMD__ERROR_CODE_IS_INT_SIZE:
        default:
                return CSCP__ERROR_CODE__ERR_INTERNAL;
        }
}

static int fail(vtpmc_result_t *res, Cscp__ErrorCode code, int r, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(vtpmc_result_t *res, Cscp__ErrorCode code, int r, const char *fmt, ...)
{
        va_list ap;

        res->code = code;
        va_start(ap, fmt);
        vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
        va_end(ap);
        return r;
}

int vtpmc_quote(const char *socket, int timeout_ms, const char *container_id, const uint8_t *nonce, size_t nonce_len,
                Cscp__PcrSelection **pcrs, size_t n_pcrs, bool want_log, uint64_t log_offset, vtpmc_result_t *res)
{
        Vtpmd__VtpmRequest req = VTPMD__VTPM_REQUEST__INIT;
        Vtpmd__Quote q = VTPMD__QUOTE__INIT;
        Vtpmd__VtpmResponse *resp = NULL;
        vtpmd_client_t *c = NULL;
        const Vtpmd__QuoteReply *qr;
        TPM2B_NAME name;
        int r;

        memset(res, 0, sizeof(*res));
        q.container_id = (char *)container_id;
        q.nonce = (ProtobufCBinaryData){.data = (uint8_t *)nonce, .len = nonce_len};
        q.pcrs = pcrs;
        q.n_pcrs = n_pcrs;
        q.want_log = want_log;
        q.log_offset = log_offset;
        req.body_case = VTPMD__VTPM_REQUEST__BODY_QUOTE;
        req.quote = &q;
        r = vtpmd_client_connect(socket, timeout_ms, &c);
        if (r < 0)
                return fail(res, CSCP__ERROR_CODE__ERR_INTERNAL, r,
                            "container quotes are not available: vtpmd at %s cannot be reached (%s)", socket,
                            cscp_strerror(r));
        r = vtpmd_client_call(c, &req, &resp);
        vtpmd_client_free(c);
        if (r == CSCP_E_TIMEOUT)
                return fail(res, CSCP__ERROR_CODE__ERR_BUSY, r, "vtpmd at %s did not answer within %d ms; retry",
                            socket, timeout_ms);
        if (r < 0)
                return fail(res, CSCP__ERROR_CODE__ERR_INTERNAL, r, "no answer from vtpmd at %s: %s", socket,
                            cscp_strerror(r));
        if (resp->body_case == VTPMD__VTPM_RESPONSE__BODY_ERROR) {
                Cscp__ErrorCode code = map_code(resp->error->code);
                /* vtpmd's messages name only the container asked for; passed on as they are */
                if (code == CSCP__ERROR_CODE__ERR_NOT_FOUND)
                        fail(res, code, -ENOENT, "no container '%s' on this host", container_id);
                else
                        fail(res, code, CSCP_E_PEER, "vtpmd: %s (%s)", resp->error->message,
                             vtpmd_error_code_name(resp->error->code));
                vtpmd__vtpm_response__free_unpacked(resp, NULL);
                return code == CSCP__ERROR_CODE__ERR_NOT_FOUND ? -ENOENT : CSCP_E_PEER;
        }
        qr = resp->body_case == VTPMD__VTPM_RESPONSE__BODY_QUOTE ? resp->quote : NULL;
        if (!qr || !qr->quote || !qr->quote->attest.len || !qr->quote->signature.len || !qr->quote->ak_public.len ||
            !qr->ek_public.len || (want_log && qr->log_offset != log_offset)) {
                r = fail(res, CSCP__ERROR_CODE__ERR_INTERNAL, CSCP_E_PROTO,
                         "vtpmd answered Quote without a complete QuoteReply");
                goto fail;
        }
        r = cscp_tpm_public_name(qr->quote->ak_public.data, qr->quote->ak_public.len, &name);
        if (r < 0 || name.size > sizeof(res->vak_name)) {
                r = fail(res, CSCP__ERROR_CODE__ERR_INTERNAL, r < 0 ? r : CSCP_E_PROTO,
                         "vtpmd's vAK public does not parse: %s", cscp_strerror(r < 0 ? r : CSCP_E_PROTO));
                goto fail;
        }
        memcpy(res->vak_name, name.name, name.size);
        res->vak_name_len = name.size;
        res->resp = resp;
        return 0;
fail:
        vtpmd__vtpm_response__free_unpacked(resp, NULL);
        return r;
}
