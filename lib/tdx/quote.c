/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX quote v4 / v5 parser (Intel TDX DCAP Quoting Library API, "Quote
 * Format"). All integers are little endian. Layout (offsets from the start):
 *
 *   header      0  version u16, attestation key type u16, TEE type u32,
 *                  QE SVN u16, PCE SVN u16, QE vendor id [16], user data [20]
 *   v5 only    48  body type u16, body size u32 (type 2: 584, type 3: 648)
 *   body      48 (v4) / 54 (v5):
 *                0 TEE_TCB_SVN[16]   16 MRSEAM[48]    64 MRSIGNERSEAM[48]
 *              112 SEAMATTRIBUTES[8] 120 TDATTRIBUTES[8] 128 XFAM[8]
 *              136 MRTD[48]  184 MRCONFIGID[48]  232 MROWNER[48]
 *              280 MROWNERCONFIG[48] 328 RTMR0..3[4*48] 520 REPORTDATA[64]
 *              TDX 1.5: 584 TEE_TCB_SVN2[16] 600 MRSERVICETD[48]
 *   then       signature data size u32, signature data:
 *                ECDSA signature r||s [64], attestation key X||Y [64],
 *                certification data type u16 (6), size u32, then:
 *                  QE report [384], QE report signature [64],
 *                  QE auth data size u16, auth data,
 *                  certification data type u16 (5: PEM PCK chain), size u32, data.
 *
 * Bytes after the declared signature data are outside every signature and
 * carry no meaning; they are counted (trailing_len), not read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "tdx.h"

typedef struct rd {
        const uint8_t *b;
        size_t len, off;
        char *err;
        size_t err_len;
} rd_t;

__attribute__((format(printf, 3, 4))) static int fail(rd_t *r, int code, const char *fmt, ...)
{
        va_list ap;

        if (r->err && r->err_len) {
                va_start(ap, fmt);
                vsnprintf(r->err, r->err_len, fmt, ap);
                va_end(ap);
        }
        return code;
}

/* Takes n bytes for field `what`, or fails naming the field and its offset. */
static int take(rd_t *r, const char *what, size_t n, const uint8_t **ret)
{
        if (n > r->len - r->off)
                return fail(r, CSCP_E_PROTO, "%s: truncated at offset %zu (needs %zu bytes, %zu left)", what, r->off, n,
                            r->len - r->off);
        *ret = r->b + r->off;
        r->off += n;
        return 0;
}

static int copy(rd_t *r, const char *what, void *out, size_t n)
{
        const uint8_t *p = NULL;
        int k = take(r, what, n, &p);

        if (k < 0)
                return k;
        memcpy(out, p, n);
        return 0;
}

static int u16(rd_t *r, const char *what, uint16_t *ret)
{
        const uint8_t *p = NULL;
        int k = take(r, what, 2, &p);

        if (k < 0)
                return k;
        *ret = (uint16_t)(p[0] | p[1] << 8);
        return 0;
}

static int u32(rd_t *r, const char *what, uint32_t *ret)
{
        const uint8_t *p = NULL;
        int k = take(r, what, 4, &p);

        if (k < 0)
                return k;
        *ret = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        return 0;
}

static int parse_body(rd_t *r, cscp_tdx_quote_t *q, bool tdx15)
{
        int k;

#define F(field, name)                                                   \
        do {                                                             \
                if ((k = copy(r, name, q->field, sizeof(q->field))) < 0) \
                        return k;                                        \
        } while (0)
        F(tee_tcb_svn, "body.tee_tcb_svn");
        F(mrseam, "body.mrseam");
        F(mrsignerseam, "body.mrsignerseam");
        F(seam_attributes, "body.seam_attributes");
        F(td_attributes, "body.td_attributes");
        F(xfam, "body.xfam");
        F(mrtd, "body.mrtd");
        F(mrconfigid, "body.mrconfigid");
        F(mrowner, "body.mrowner");
        F(mrownerconfig, "body.mrownerconfig");
        F(rtmr, "body.rtmr");
        F(report_data, "body.report_data");
        if (tdx15) {
                F(tee_tcb_svn2, "body.tee_tcb_svn2");
                F(mrservicetd, "body.mrservicetd");
        }
#undef F
        q->tdx15 = tdx15;
        return 0;
}

static void parse_qe_report(cscp_tdx_quote_t *q)
{
        const uint8_t *p = q->qe_report;

        /* SGX report body: MRENCLAVE @64, MRSIGNER @128, ISVPRODID @256, ISVSVN @258, REPORTDATA @320 */
        memcpy(q->qe_mrenclave, p + 64, 32);
        memcpy(q->qe_mrsigner, p + 128, 32);
        q->qe_isv_prod_id = (uint16_t)(p[256] | p[257] << 8);
        q->qe_isv_svn = (uint16_t)(p[258] | p[259] << 8);
        memcpy(q->qe_report_data, p + 320, 64);
}

int cscp_tdx_quote_parse(const uint8_t *buf, size_t len, cscp_tdx_quote_t *q, char *err, size_t err_len)
{
        rd_t r = {.b = buf, .len = len, .err = err, .err_len = err_len};
        uint32_t cert_len, pck_len;
        size_t sig_start, cert_start, off;
        uint16_t auth_len;
        int k;

        if (err && err_len)
                err[0] = '\0';
        memset(q, 0, sizeof(*q));
        if (!buf && len)
                return fail(&r, -EINVAL, "no quote buffer");
        if (len > CSCP_TDX_QUOTE_MAX)
                return fail(&r, CSCP_E_TOO_BIG, "quote: %zu bytes, over the %u-byte limit", len, CSCP_TDX_QUOTE_MAX);

        if ((k = u16(&r, "header.version", &q->version)) < 0)
                return k;
        if (q->version != 4 && q->version != 5)
                return fail(&r, CSCP_E_VERSION, "header.version at offset 0: %u (only 4 and 5 are TDX quotes)",
                            q->version);
        if ((k = u16(&r, "header.attestation_key_type", &q->ak_type)) < 0)
                return k;
        if (q->ak_type != CSCP_TDX_AK_ECDSA_P256)
                return fail(&r, CSCP_E_UNSUPPORTED,
                            "header.attestation_key_type at offset 2: %u (only 2, ECDSA-256-with-P-256)", q->ak_type);
        if ((k = u32(&r, "header.tee_type", &q->tee_type)) < 0)
                return k;
        if (q->tee_type != CSCP_TDX_TEE_TYPE)
                return fail(&r, CSCP_E_UNSUPPORTED, "header.tee_type at offset 4: 0x%x (only 0x81, TDX)", q->tee_type);
        if ((k = u16(&r, "header.qe_svn", &q->qe_svn)) < 0 || (k = u16(&r, "header.pce_svn", &q->pce_svn)) < 0 ||
            (k = copy(&r, "header.qe_vendor_id", q->qe_vendor_id, 16)) < 0 ||
            (k = copy(&r, "header.user_data", q->user_data, 20)) < 0)
                return k;

        if (q->version == 4) {
                q->body_type = 2;
                q->body_size = CSCP_TDX_BODY10_SIZE;
        } else {
                if ((k = u16(&r, "body_descriptor.type", &q->body_type)) < 0)
                        return k;
                if (q->body_type != 2 && q->body_type != 3)
                        return fail(&r, CSCP_E_UNSUPPORTED,
                                    "body_descriptor.type at offset 48: %u (2 = TDX 1.0, 3 = TDX 1.5 TD report)",
                                    q->body_type);
                if ((k = u32(&r, "body_descriptor.size", &q->body_size)) < 0)
                        return k;
                if (q->body_size != (q->body_type == 2 ? CSCP_TDX_BODY10_SIZE : CSCP_TDX_BODY15_SIZE))
                        return fail(&r, CSCP_E_PROTO, "body_descriptor.size at offset 50: %u (type %u needs %u)",
                                    q->body_size, q->body_type,
                                    q->body_type == 2 ? CSCP_TDX_BODY10_SIZE : CSCP_TDX_BODY15_SIZE);
        }
        if ((k = parse_body(&r, q, q->body_type == 3)) < 0)
                return k;
        q->signed_region = buf;
        q->signed_len = r.off;

        if ((k = u32(&r, "signature_data.size", &q->sig_data_len)) < 0)
                return k;
        sig_start = r.off;
        if (q->sig_data_len > len - sig_start)
                return fail(&r, CSCP_E_PROTO, "signature_data.size at offset %zu: %u bytes declared, %zu in the quote",
                            sig_start - 4, q->sig_data_len, len - sig_start);
        /* From here on the reader stops at the declared end of the signature data. */
        r.len = sig_start + q->sig_data_len;
        q->trailing_len = len - r.len;

        if ((k = copy(&r, "signature_data.signature", q->signature, 64)) < 0 ||
            (k = copy(&r, "signature_data.attestation_key", q->attest_key, 64)) < 0 ||
            (k = u16(&r, "certification_data.type", &q->cert_type)) < 0)
                return k;
        if (q->cert_type != 6)
                return fail(&r, CSCP_E_UNSUPPORTED,
                            "certification_data.type at offset %zu: %u (only 6, QE report certification data)",
                            r.off - 2, q->cert_type);
        if ((k = u32(&r, "certification_data.size", &cert_len)) < 0)
                return k;
        cert_start = r.off;
        if (cert_len != r.len - cert_start)
                return fail(&r, CSCP_E_PROTO,
                            "certification_data.size at offset %zu: %u, but the signature data leaves %zu bytes",
                            cert_start - 4, cert_len, r.len - cert_start);

        if ((k = copy(&r, "qe_report", q->qe_report, CSCP_TDX_QE_REPORT_SIZE)) < 0 ||
            (k = copy(&r, "qe_report_signature", q->qe_report_sig, 64)) < 0 ||
            (k = u16(&r, "qe_auth_data.size", &auth_len)) < 0)
                return k;
        if (auth_len > CSCP_TDX_QE_AUTH_MAX)
                return fail(&r, CSCP_E_TOO_BIG, "qe_auth_data.size at offset %zu: %u, over the %u-byte limit",
                            r.off - 2, auth_len, CSCP_TDX_QE_AUTH_MAX);
        q->qe_auth_len = auth_len;
        if ((k = take(&r, "qe_auth_data", auth_len, &q->qe_auth)) < 0)
                return k;
        if ((k = u16(&r, "pck_cert_data.type", &q->pck_cert_type)) < 0)
                return k;
        if (q->pck_cert_type != 5)
                return fail(&r, CSCP_E_UNSUPPORTED,
                            "pck_cert_data.type at offset %zu: %u (only 5, PEM PCK certificate chain)", r.off - 2,
                            q->pck_cert_type);
        if ((k = u32(&r, "pck_cert_data.size", &pck_len)) < 0)
                return k;
        off = r.off;
        if (pck_len > CSCP_TDX_CERT_CHAIN_MAX)
                return fail(&r, CSCP_E_TOO_BIG, "pck_cert_data.size at offset %zu: %u, over the %u-byte limit", off - 4,
                            pck_len, CSCP_TDX_CERT_CHAIN_MAX);
        if (pck_len != r.len - off)
                return fail(&r, CSCP_E_PROTO,
                            "pck_cert_data.size at offset %zu: %u, but the certification data leaves %zu bytes",
                            off - 4, pck_len, r.len - off);
        q->pck_chain_len = pck_len;
        if ((k = take(&r, "pck_cert_data", pck_len, &q->pck_chain)) < 0)
                return k;
        parse_qe_report(q);
        return 0;
}
