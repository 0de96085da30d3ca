/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manufacturing a fresh vTPM, as a TPM vendor would, so that the container
 * gets a TPM with a certified EK and an AK it cannot get rid of:
 *
 *   1. platform hierarchy auth := o->platform_auth (kept by vtpmd only), and
 *      disableClear set by the platform, so the container (lockout or owner
 *      auth, both empty) can neither TPM2_Clear (which would evict the EK
 *      and flush the owner's NV indices) nor re-enable Clear;
 *   2. EK from the TCG template (L-2 ECC P-256 or L-1 RSA 2048, the same
 *      template lib/tpm uses), persisted at the TCG handle (owner range:
 *      the EK is re-derivable from the EPS, so an eviction by the container
 *      changes nothing);
 *   3. an X.509 EK certificate signed by the vTPM manufacturer CA, stored at
 *      the TCG NV index in an index the platform defined and alone can write
 *      (PPWRITE) but anyone can read (AUTHREAD with an empty auth,
 *      OWNERREAD, PPREAD) -- how swtpm_setup stores its EK certificates;
 *   4. the AK (restricted ECDSA P-256 / SHA-256, lib/tpm's template), a
 *      primary key of the platform hierarchy made persistent by the platform
 *      at VTPM_AK_HANDLE: only platform auth can evict it (see ak_make).
 *
 * A failure part-way leaves a half-made vTPM: the caller throws the instance
 * away (it cannot be manufactured twice: the platform auth is already set).
 *
 * This file is a TPM boundary like lib/tpm: TSS2_RC values are decoded into
 * debug logs and mapped to CSCP_E_*.
 *
 * Identity file (vtpm_identity_save/load), all integers big-endian:
 *   magic       8 bytes "CSCPVID\1" (last byte = format version 1)
 *   ek_alg      u16   TPM2_ALG_ECC or TPM2_ALG_RSA
 *   ek_public   u16 length + marshalled TPMT_PUBLIC
 *   ek_sha256   32 bytes
 *   ek_cert     u32 length + DER
 *   ak_handle   u32
 *   ak_public   u16 length + marshalled TPMT_PUBLIC
 *   ak_name     u16 length + TPM2B_NAME.name
 *   digest      32 bytes: SHA-256 of everything before it
 * and nothing after it. Load checks every length against its limit and the
 * digests and names against the public areas they are made from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "cscp/error.h"
#include "cscp/quote.h"
#include "cscp/tpm.h"
#include "cscp/util.h"
#include "vtpm.h"

#define LOGMODULE manufacture
#include "cscp/log.h"

#define ID_MAGIC     "CSCPVID\1"
#define ID_MAGIC_LEN 8
#define ID_MAX_FILE                                                                                         \
        (ID_MAGIC_LEN + 2 + 2 + VTPM_MAX_PUBLIC + 32 + 4 + VTPM_MAX_EK_CERT + 4 + 2 + VTPM_MAX_PUBLIC + 2 + \
         VTPM_MAX_NAME + 32)
#define SERIAL_LABEL_MAX 64
#define CA_FILE_MAX      (64 * 1024)

/* EK certificate NV index: written by the platform only, readable by everyone (reference.md 2.4). */
#define EK_CERT_NV_ATTRS                                                                                    \
        (TPMA_NV_PPWRITE | TPMA_NV_PPREAD | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_PLATFORMCREATE | \
         TPMA_NV_NO_DA)

/* TCG OIDs (EK Credential Profile): SAN directoryName attributes, tpmSpecification, EK certificate EKU. */
#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL        "2.23.133.2.2"
#define OID_TPM_VERSION      "2.23.133.2.3"
#define OID_TPM_SPEC         "2.23.133.2.16"
#define OID_EK_CERTIFICATE   "2.23.133.8.1"

static int tss_fail(const char *what, TSS2_RC rc)
{
        log_debug("%s: 0x%08x %s", what, (unsigned)rc, Tss2_RC_Decode(rc));
        if (rc == TSS2_ESYS_RC_MEMORY || rc == TSS2_TCTI_RC_MEMORY)
                return -ENOMEM;
        return CSCP_E_TPM;
}

/* A format-one TPM response code (the TPM refused a handle, session or parameter) of the given kind. */
static bool tpm_rc_is(TSS2_RC rc, TSS2_RC code)
{
        return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && (rc & TPM2_RC_FMT1) &&
               (rc & (TPM2_RC_FMT1 | 0x3f)) == code;
}

static void flush(ESYS_CONTEXT *esys, ESYS_TR *h)
{
        if (*h != ESYS_TR_NONE)
                (void)Esys_FlushContext(esys, *h);
        *h = ESYS_TR_NONE;
}

static void tr_close(ESYS_CONTEXT *esys, ESYS_TR *h)
{
        if (*h != ESYS_TR_NONE)
                (void)Esys_TR_Close(esys, h);
        *h = ESYS_TR_NONE;
}

static int sha256(const void *data, size_t len, uint8_t out[32])
{
        unsigned n = 0;

        if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return CSCP_E_CRYPTO;
        return 0;
}

/* --- TPM facts for the certificate ------------------------------------------------------ */

typedef struct tpm_info {
        uint32_t manufacturer, fw1, fw2, level, revision;
        char family[5];
        char model[17]; /* TPM_PT_VENDOR_STRING_1..4 */
        uint32_t nv_buffer_max, nv_index_max;
} tpm_info_t;

static int get_prop(ESYS_CONTEXT *esys, uint32_t prop, uint32_t *ret)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc;
        int r = 0;

        rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES, prop, 1, &more,
                                &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("GetCapability(TPM_PROPERTIES)", rc);
        if (cap->capability != TPM2_CAP_TPM_PROPERTIES || cap->data.tpmProperties.count < 1 ||
            cap->data.tpmProperties.tpmProperty[0].property != prop) {
                log_debug("GetCapability: property 0x%x missing", (unsigned)prop);
                r = CSCP_E_TPM;
        } else {
                *ret = cap->data.tpmProperties.tpmProperty[0].value;
        }
        Esys_Free(cap);
        return r;
}

/* Four big-endian bytes as text, trailing NULs and spaces dropped, unprintable bytes refused. */
static void be32_text(uint32_t v, char *out, size_t *pos)
{
        for (int i = 3; i >= 0; i--) {
                char c = (char)((v >> (8 * i)) & 0xff);

                if (c >= 0x20 && c < 0x7f)
                        out[(*pos)++] = c;
        }
}

static int tpm_info(ESYS_CONTEXT *esys, tpm_info_t *ret)
{
        uint32_t fam = 0, vs[4] = {0};
        size_t n = 0;
        int r;

        memset(ret, 0, sizeof(*ret));
        if ((r = get_prop(esys, TPM2_PT_FAMILY_INDICATOR, &fam)) < 0 ||
            (r = get_prop(esys, TPM2_PT_LEVEL, &ret->level)) < 0 ||
            (r = get_prop(esys, TPM2_PT_REVISION, &ret->revision)) < 0 ||
            (r = get_prop(esys, TPM2_PT_MANUFACTURER, &ret->manufacturer)) < 0 ||
            (r = get_prop(esys, TPM2_PT_FIRMWARE_VERSION_1, &ret->fw1)) < 0 ||
            (r = get_prop(esys, TPM2_PT_FIRMWARE_VERSION_2, &ret->fw2)) < 0 ||
            (r = get_prop(esys, TPM2_PT_NV_BUFFER_MAX, &ret->nv_buffer_max)) < 0 ||
            (r = get_prop(esys, TPM2_PT_NV_INDEX_MAX, &ret->nv_index_max)) < 0)
                return r;
        for (unsigned i = 0; i < 4; i++)
                if ((r = get_prop(esys, TPM2_PT_VENDOR_STRING_1 + i, &vs[i])) < 0)
                        return r;
        be32_text(fam, ret->family, &n);
        ret->family[n] = '\0';
        n = 0;
        for (unsigned i = 0; i < 4; i++)
                be32_text(vs[i], ret->model, &n);
        while (n > 0 && ret->model[n - 1] == ' ')
                n--;
        ret->model[n] = '\0';
        if (ret->model[0] == '\0')
                snprintf(ret->model, sizeof(ret->model), "unknown");
        if (ret->family[0] == '\0')
                snprintf(ret->family, sizeof(ret->family), "2.0");
        if (ret->nv_buffer_max == 0) {
                log_debug("TPM reports NV buffer size 0");
                return CSCP_E_TPM;
        }
        return 0;
}

/* --- the EK certificate ------------------------------------------------------------------ */

static int load_ca(const char *cert_path, const char *key_path, X509 **ret_cert, EVP_PKEY **ret_key)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int r;

        r = cscp_file_read(cert_path, CA_FILE_MAX, &buf, &len);
        if (r < 0) {
                log_debug("reading %s: %s", cert_path, cscp_strerror(r));
                return r;
        }
        bio = BIO_new_mem_buf(buf, (int)len);
        cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        free(buf);
        buf = NULL;
        if (!cert) {
                log_debug("%s: not a PEM certificate", cert_path);
                return -EINVAL;
        }
        r = cscp_file_read(key_path, CA_FILE_MAX, &buf, &len);
        if (r < 0) {
                log_debug("reading %s: %s", key_path, cscp_strerror(r));
                goto fail;
        }
        bio = BIO_new_mem_buf(buf, (int)len);
        key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        OPENSSL_cleanse(buf, len);
        free(buf);
        if (!key) {
                log_debug("%s: not a PEM private key", key_path);
                r = -EINVAL;
                goto fail;
        }
        if (X509_check_private_key(cert, key) != 1) {
                log_debug("%s does not belong to %s", key_path, cert_path);
                r = -EINVAL;
                goto fail;
        }
        *ret_cert = cert;
        *ret_key = key;
        return 0;
fail:
        EVP_PKEY_free(key);
        X509_free(cert);
        return r;
}

static int add_ext(X509 *x, int nid, bool critical, void *value)
{
        return X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) == 1 ? 0 : CSCP_E_CRYPTO;
}

static int add_ext_oid_der(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *ext = NULL;
        int r = CSCP_E_CRYPTO;

        if (obj && os && ASN1_OCTET_STRING_set(os, der, (int)len) == 1)
                ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        if (ext && X509_add_ext(x, ext, -1) == 1)
                r = 0;
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
        return r;
}

/* subjectAltName: directoryName { tpmManufacturer, tpmModel, tpmVersion } (EK Credential Profile). */
static int add_san(X509 *x, const tpm_info_t *ti)
{
        static const char *const oids[3] = {OID_TPM_MANUFACTURER, OID_TPM_MODEL, OID_TPM_VERSION};
        char vals[3][32];
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        GENERAL_NAME *gen = GENERAL_NAME_new();
        X509_NAME *dn = X509_NAME_new();
        int r = CSCP_E_CRYPTO;

        snprintf(vals[0], sizeof(vals[0]), "id:%08X", (unsigned)ti->manufacturer);
        snprintf(vals[1], sizeof(vals[1]), "%s", ti->model);
        snprintf(vals[2], sizeof(vals[2]), "id:%08X", (unsigned)ti->fw1);
        if (!gens || !gen || !dn)
                goto out;
        for (int i = 0; i < 3; i++) {
                ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
                int ok = obj && X509_NAME_add_entry_by_OBJ(dn, obj, MBSTRING_UTF8, (const unsigned char *)vals[i], -1,
                                                           -1, 0) == 1;

                ASN1_OBJECT_free(obj);
                if (!ok)
                        goto out;
        }
        GENERAL_NAME_set0_value(gen, GEN_DIRNAME, dn);
        dn = NULL;
        if (sk_GENERAL_NAME_push(gens, gen) <= 0)
                goto out;
        gen = NULL;
        r = add_ext(x, NID_subject_alt_name, false, gens);
out:
        X509_NAME_free(dn);
        GENERAL_NAME_free(gen);
        GENERAL_NAMES_free(gens);
        return r;
}

/* DER helpers for the one structure OpenSSL has no type for (all lengths < 128 here). */
static size_t der_int(uint8_t *p, uint32_t v)
{
        uint8_t b[5];
        size_t n = 0, k = 0;

        for (int i = 3; i >= 0; i--) {
                uint8_t c = (uint8_t)(v >> (8 * i));
                if (n == 0 && c == 0 && i > 0)
                        continue;
                if (n == 0 && (c & 0x80))
                        b[n++] = 0;
                b[n++] = c;
        }
        p[k++] = 0x02;
        p[k++] = (uint8_t)n;
        memcpy(p + k, b, n);
        return k + n;
}

/*
 * subjectDirectoryAttributes: SEQUENCE { Attribute { tpmSpecification,
 * SET { SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } } } }
 */
static int add_tpm_spec(X509 *x, const tpm_info_t *ti)
{
        static const uint8_t oid_spec[] = {0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10}; /* 2.23.133.2.16 */
        uint8_t spec[32], attr[64], out[80];
        size_t fam = strlen(ti->family), n = 0, a = 0, o = 0;

        spec[n++] = 0x30;
        spec[n++] = 0; /* length below */
        spec[n++] = 0x0c;
        spec[n++] = (uint8_t)fam;
        memcpy(spec + n, ti->family, fam);
        n += fam;
        n += der_int(spec + n, ti->level);
        n += der_int(spec + n, ti->revision);
        spec[1] = (uint8_t)(n - 2);

        attr[a++] = 0x30;
        attr[a++] = (uint8_t)(sizeof(oid_spec) + 2 + n);
        memcpy(attr + a, oid_spec, sizeof(oid_spec));
        a += sizeof(oid_spec);
        attr[a++] = 0x31;
        attr[a++] = (uint8_t)n;
        memcpy(attr + a, spec, n);
        a += n;

        out[o++] = 0x30;
        out[o++] = (uint8_t)a;
        memcpy(out + o, attr, a);
        o += a;
        return add_ext_oid_der(x, "2.5.29.9", out, o);
}

static int add_serial(X509 *x)
{
        uint8_t rnd[16];
        BIGNUM *bn = NULL;
        int r = CSCP_E_CRYPTO;

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return CSCP_E_CRYPTO;
        rnd[0] &= 0x7f; /* positive */
        rnd[0] |= 0x01; /* and 16 bytes long */
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
        if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                r = 0;
        BN_free(bn);
        return r;
}

static int ek_cert_issue(const vtpm_manufacture_opts_t *o, X509 *ca, EVP_PKEY *ca_key, const uint8_t *ek_pub,
                         size_t ek_pub_len, const tpm_info_t *ti, uint8_t **ret, size_t *ret_len)
{
        X509 *x = X509_new();
        EVP_PKEY *pk = NULL;
        X509_NAME *subj = X509_NAME_new();
        ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
        ASN1_OBJECT *eku_obj = OBJ_txt2obj(OID_EK_CERTIFICATE, 1);
        X509_EXTENSION *aki = NULL;
        X509V3_CTX v3;
        const EVP_MD *md;
        uint8_t *der = NULL;
        int len, r;

        if (!x || !subj || !ku || !bc || !eku || !eku_obj) {
                r = -ENOMEM;
                goto out;
        }
        r = cscp_tpm_public_to_pkey(ek_pub, ek_pub_len, &pk);
        if (r < 0)
                goto out;
        r = CSCP_E_CRYPTO;
        if (X509_set_version(x, X509_VERSION_3) != 1 || add_serial(x) < 0 ||
            X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z") != 1 || /* RFC 5280 4.1.2.5 */
            X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)o->serial_label, -1, -1, 0) !=
                    1 ||
            X509_set_subject_name(x, subj) != 1 || X509_set_pubkey(x, pk) != 1)
                goto out;

        /* keyEncipherment for an RSA EK, keyAgreement for an ECC EK (EK Credential Profile). */
        if (ASN1_BIT_STRING_set_bit(ku, o->ek_alg == CSCP_KEY_RSA_2048 ? 2 : 4, 1) != 1)
                goto out;
        bc->ca = 0;
        if (add_ext(x, NID_basic_constraints, true, bc) < 0 || add_ext(x, NID_key_usage, true, ku) < 0)
                goto out;
        if (sk_ASN1_OBJECT_push(eku, eku_obj) <= 0)
                goto out;
        eku_obj = NULL;
        if (add_ext(x, NID_ext_key_usage, false, eku) < 0 || add_san(x, ti) < 0 || add_tpm_spec(x, ti) < 0)
                goto out;
        X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
        if (X509_get_ext_by_NID(ca, NID_subject_key_identifier, -1) >= 0) {
                aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
                if (!aki || X509_add_ext(x, aki, -1) != 1)
                        goto out;
        }

        md = (EVP_PKEY_is_a(ca_key, "ED25519") || EVP_PKEY_is_a(ca_key, "ED448")) ? NULL : EVP_sha256();
        if (X509_sign(x, ca_key, md) <= 0)
                goto out;
        len = i2d_X509(x, &der);
        if (len <= 0)
                goto out;
        if ((size_t)len > VTPM_MAX_EK_CERT || (ti->nv_index_max && (uint32_t)len > ti->nv_index_max)) {
                log_debug("EK certificate of %d bytes does not fit the NV index", len);
                OPENSSL_free(der);
                r = CSCP_E_TOO_BIG;
                goto out;
        }
        *ret = malloc((size_t)len);
        if (!*ret) {
                OPENSSL_free(der);
                r = -ENOMEM;
                goto out;
        }
        memcpy(*ret, der, (size_t)len);
        *ret_len = (size_t)len;
        OPENSSL_free(der);
        r = 0;
out:
        X509_EXTENSION_free(aki);
        ASN1_OBJECT_free(eku_obj);
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        BASIC_CONSTRAINTS_free(bc);
        ASN1_BIT_STRING_free(ku);
        X509_NAME_free(subj);
        EVP_PKEY_free(pk);
        X509_free(x);
        return r;
}

/* --- TPM steps -------------------------------------------------------------------------------- */

static int nv_store(ESYS_CONTEXT *esys, uint32_t index, const uint8_t *data, size_t len, uint32_t chunk)
{
        TPM2B_AUTH empty = {0};
        TPM2B_NV_PUBLIC pub = {0};
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc;
        int r = 0;

        pub.nvPublic.nvIndex = index;
        pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
        pub.nvPublic.attributes = EK_CERT_NV_ATTRS;
        pub.nvPublic.dataSize = (uint16_t)len;
        rc = Esys_NV_DefineSpace(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &pub,
                                 &nv);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("NV_DefineSpace(EK certificate)", rc);
        if (chunk > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))
                chunk = sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer);
        for (size_t off = 0; off < len; off += chunk) {
                TPM2B_MAX_NV_BUFFER buf;
                size_t n = len - off < chunk ? len - off : chunk;

                buf.size = (uint16_t)n;
                memcpy(buf.buffer, data + off, n);
                rc = Esys_NV_Write(esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
                                   (uint16_t)off);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tss_fail("NV_Write(EK certificate)", rc);
                        break;
                }
        }
        tr_close(esys, &nv);
        return r;
}

/*
 * The AK: a primary key of the platform hierarchy with lib/tpm's AK template,
 * made persistent by the platform at VTPM_AK_HANDLE. It cannot be a child of
 * the EK: TPM2_EvictControl under platform auth only takes objects of the
 * platform hierarchy (TPM_RC_HIERARCHY otherwise; TPM 2.0 Part 3,
 * EvictControl), and under owner auth the container could evict it. The EK
 * still vouches for it: MakeCredential/ActivateCredential only need the AK
 * loaded in the same TPM and check its Name, not its parent. A platform key
 * is also untouched by TPM2_Clear and by the container disabling the
 * endorsement or storage hierarchy.
 */
static int ak_make(ESYS_CONTEXT *esys, TPM2B_PUBLIC *ret_pub)
{
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC tmpl;
        TPM2B_PUBLIC *pub = NULL;
        ESYS_TR ak = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        cscp_tpm_ak_template(CSCP_KEY_ECC_P256, &tmpl);
        rc = Esys_CreatePrimary(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                                &outside, &creation_pcr, &ak, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("CreatePrimary(platform, AK)", rc);
        rc = Esys_EvictControl(esys, ESYS_TR_RH_PLATFORM, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               VTPM_AK_HANDLE, &persistent);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("EvictControl(platform, AK)", rc);
                goto out;
        }
        *ret_pub = *pub;
        r = 0;
out:
        tr_close(esys, &persistent);
        flush(esys, &ak);
        Esys_Free(pub);
        return r;
}

static int marshal_public(const TPMT_PUBLIC *p, uint8_t *out, size_t *ret_len)
{
        size_t off = 0;
        TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(p, out, VTPM_MAX_PUBLIC, &off);

        if (rc != TSS2_RC_SUCCESS)
                return tss_fail("marshal TPMT_PUBLIC", rc);
        *ret_len = off;
        return 0;
}

static bool label_ok(const char *s)
{
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n > SERIAL_LABEL_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

int vtpm_manufacture(const char *tcti, const vtpm_manufacture_opts_t *o, vtpm_identity_t *ret)
{
        vtpm_identity_t id = {0};
        cscp_tpm_t *t = NULL;
        ESYS_CONTEXT *esys;
        X509 *ca = NULL;
        EVP_PKEY *ca_key = NULL;
        TPM2B_AUTH auth = {0}, empty = {0};
        TPM2B_SENSITIVE_CREATE sens = {0};
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation_pcr = {0};
        TPM2B_PUBLIC tmpl, *ek_pub = NULL, ak_pub;
        TPM2B_NAME name;
        ESYS_TR ek = ESYS_TR_NONE, ek_persistent = ESYS_TR_NONE;
        tpm_info_t ti;
        bool auth_set = false;
        TSS2_RC rc;
        int r;

        if (!tcti || !o || !ret || !o->ca_cert || !o->ca_key || !o->platform_auth)
                return -EINVAL;
        if (o->ek_alg != CSCP_KEY_ECC_P256 && o->ek_alg != CSCP_KEY_RSA_2048)
                return CSCP_E_UNSUPPORTED;
        if (!label_ok(o->serial_label))
                return -EINVAL;
        r = load_ca(o->ca_cert, o->ca_key, &ca, &ca_key);
        if (r < 0)
                return r;
        r = cscp_tpm_open(tcti, &t);
        if (r < 0)
                goto out;
        esys = cscp_tpm_esys(t);
        r = tpm_info(esys, &ti);
        if (r < 0)
                goto out;

        /* 1. Platform hierarchy: our secret, and no TPM2_Clear for anyone else. */
        auth.size = VTPM_PLATFORM_AUTH_LEN;
        memcpy(auth.buffer, o->platform_auth, VTPM_PLATFORM_AUTH_LEN);
        rc = Esys_HierarchyChangeAuth(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("HierarchyChangeAuth(platform)", rc);
                if (tpm_rc_is(rc, TPM2_RC_BAD_AUTH) || tpm_rc_is(rc, TPM2_RC_AUTH_FAIL)) {
                        log_debug("the vTPM's platform auth is already set: not a fresh vTPM");
                        r = CSCP_E_STATE;
                }
                goto out;
        }
        auth_set = true;
        rc = Esys_TR_SetAuth(esys, ESYS_TR_RH_PLATFORM, &auth);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("TR_SetAuth(platform)", rc);
                goto out;
        }
        rc = Esys_ClearControl(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_YES);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("ClearControl(platform, disable)", rc);
                goto out;
        }

        /* 2. EK. */
        cscp_tpm_ek_template(o->ek_alg, &tmpl);
        rc = Esys_CreatePrimary(esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                &tmpl, &outside, &creation_pcr, &ek, &ek_pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("CreatePrimary(EK)", rc);
                goto out;
        }
        rc = Esys_EvictControl(esys, ESYS_TR_RH_OWNER, ek, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               o->ek_alg == CSCP_KEY_RSA_2048 ? VTPM_EK_HANDLE_RSA : VTPM_EK_HANDLE_ECC,
                               &ek_persistent);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("EvictControl(owner, EK)", rc);
                goto out;
        }
        id.ek_alg = o->ek_alg;
        r = marshal_public(&ek_pub->publicArea, id.ek_public, &id.ek_public_len);
        if (r < 0)
                goto out;
        r = sha256(id.ek_public, id.ek_public_len, id.ek_sha256);
        if (r < 0)
                goto out;

        /* 3. EK certificate into its NV index. */
        r = ek_cert_issue(o, ca, ca_key, id.ek_public, id.ek_public_len, &ti, &id.ek_cert, &id.ek_cert_len);
        if (r < 0)
                goto out;
        r = nv_store(esys, o->ek_alg == CSCP_KEY_RSA_2048 ? VTPM_EK_CERT_NV_RSA : VTPM_EK_CERT_NV_ECC, id.ek_cert,
                     id.ek_cert_len, ti.nv_buffer_max);
        if (r < 0)
                goto out;

        /* 4. AK. */
        r = ak_make(esys, &ak_pub);
        if (r < 0)
                goto out;
        id.ak_handle = VTPM_AK_HANDLE;
        r = marshal_public(&ak_pub.publicArea, id.ak_public, &id.ak_public_len);
        if (r < 0)
                goto out;
        r = cscp_tpm_public_name(id.ak_public, id.ak_public_len, &name);
        if (r < 0)
                goto out;
        if (name.size > VTPM_MAX_NAME) {
                r = CSCP_E_TPM;
                goto out;
        }
        memcpy(id.ak_name, name.name, name.size);
        id.ak_name_len = name.size;
        log_debug("manufactured vTPM %s: EK %s, AK 0x%08x", o->serial_label,
                  o->ek_alg == CSCP_KEY_RSA_2048 ? "RSA 2048" : "ECC P-256", (unsigned)id.ak_handle);
        *ret = id;
        id = (vtpm_identity_t){0};
        r = 0;
out:
        if (t) {
                esys = cscp_tpm_esys(t);
                tr_close(esys, &ek_persistent);
                flush(esys, &ek);
                if (auth_set)
                        (void)Esys_TR_SetAuth(esys, ESYS_TR_RH_PLATFORM, &empty); /* no copy left in ESYS */
        }
        cscp_tpm_free(t);
        Esys_Free(ek_pub);
        OPENSSL_cleanse(&auth, sizeof(auth));
        vtpm_identity_clear(&id);
        EVP_PKEY_free(ca_key);
        X509_free(ca);
        return r;
}

/* --- platform auth after a restart ------------------------------------------------------------ */

int vtpm_platform_auth_set(const char *tcti, const uint8_t *platform_auth)
{
        cscp_tpm_t *t = NULL;
        ESYS_CONTEXT *esys;
        TPM2B_AUTH auth = {0}, empty = {0};
        bool auth_used = false;
        TSS2_RC rc;
        int r;

        if (!tcti || !platform_auth)
                return -EINVAL;
        r = cscp_tpm_open(tcti, &t);
        if (r < 0)
                return r;
        esys = cscp_tpm_esys(t);
        auth.size = VTPM_PLATFORM_AUTH_LEN;
        memcpy(auth.buffer, platform_auth, VTPM_PLATFORM_AUTH_LEN);
        /* After TPM2_Startup(CLEAR) the platform auth is empty: set it. */
        rc = Esys_HierarchyChangeAuth(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth);
        if (rc == TSS2_RC_SUCCESS) {
                log_debug("platform auth was empty (the vTPM was restarted or reset): set again");
                r = 1;
                goto out;
        }
        if (!tpm_rc_is(rc, TPM2_RC_BAD_AUTH) && !tpm_rc_is(rc, TPM2_RC_AUTH_FAIL)) {
                /* e.g. TPM_RC_HIERARCHY: someone disabled the platform hierarchy while its auth was empty. */
                (void)tss_fail("HierarchyChangeAuth(platform, from empty)", rc);
                r = CSCP_E_STATE;
                goto out;
        }
        /* Already set: to ours? Changing it to itself succeeds only with the right auth (no DA for platform). */
        rc = Esys_TR_SetAuth(esys, ESYS_TR_RH_PLATFORM, &auth);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail("TR_SetAuth(platform)", rc);
                goto out;
        }
        auth_used = true;
        rc = Esys_HierarchyChangeAuth(esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth);
        if (rc != TSS2_RC_SUCCESS) {
                (void)tss_fail("HierarchyChangeAuth(platform, with our auth)", rc);
                log_debug("the vTPM's platform auth is set, and not to ours");
                r = CSCP_E_STATE;
                goto out;
        }
        r = 0;
out:
        if (auth_used)
                (void)Esys_TR_SetAuth(esys, ESYS_TR_RH_PLATFORM, &empty); /* no copy left in ESYS */
        cscp_tpm_free(t);
        OPENSSL_cleanse(&auth, sizeof(auth));
        return r;
}

void vtpm_identity_clear(vtpm_identity_t *id)
{
        if (!id)
                return;
        free(id->ek_cert);
        memset(id, 0, sizeof(*id));
}

/* --- quote ----------------------------------------------------------------------------------- */

int vtpm_quote(const char *tcti, const vtpm_identity_t *id, const uint8_t *nonce, size_t nonce_len,
               const TPML_PCR_SELECTION *sel, cscp_tpm_quote_t *ret)
{
        cscp_tpm_t *t = NULL;
        const uint8_t *pub;
        size_t pub_len;
        int r;

        if (!tcti || !id || !sel || !ret)
                return -EINVAL;
        r = cscp_tpm_open(tcti, &t);
        if (r < 0)
                return r;
        r = cscp_tpm_ak_use_persistent(t, id->ak_handle, CSCP_KEY_ECC_P256);
        if (r < 0)
                goto out;
        r = cscp_tpm_ak_public(t, &pub, &pub_len);
        if (r < 0)
                goto out;
        if (pub_len != id->ak_public_len || CRYPTO_memcmp(pub, id->ak_public, pub_len) != 0) {
                log_debug("the AK at 0x%08x is not the one manufactured", (unsigned)id->ak_handle);
                r = CSCP_E_STATE;
                goto out;
        }
        r = cscp_tpm_quote(t, nonce, nonce_len, sel, ret);
out:
        cscp_tpm_free(t);
        return r;
}

/* --- identity file --------------------------------------------------------------------------- */

typedef struct wbuf {
        uint8_t *p;
        size_t len, cap;
        bool overflow;
} wbuf_t;

static void put(wbuf_t *w, const void *data, size_t n)
{
        if (w->overflow || n > w->cap - w->len) {
                w->overflow = true;
                return;
        }
        memcpy(w->p + w->len, data, n);
        w->len += n;
}

static void put_be(wbuf_t *w, uint32_t v, size_t bytes)
{
        uint8_t b[4];

        for (size_t i = 0; i < bytes; i++)
                b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
        put(w, b, bytes);
}

typedef struct rbuf {
        const uint8_t *p;
        size_t len, off;
        bool bad;
} rbuf_t;

static const uint8_t *take(rbuf_t *r, size_t n)
{
        const uint8_t *p;

        if (r->bad || n > r->len - r->off) {
                r->bad = true;
                return NULL;
        }
        p = r->p + r->off;
        r->off += n;
        return p;
}

static uint32_t take_be(rbuf_t *r, size_t bytes)
{
        const uint8_t *p = take(r, bytes);
        uint32_t v = 0;

        for (size_t i = 0; p && i < bytes; i++)
                v = (v << 8) | p[i];
        return v;
}

/* A length-prefixed field of at most max bytes, copied into out. */
static void take_field(rbuf_t *r, size_t prefix, size_t max, uint8_t *out, size_t *ret_len)
{
        uint32_t n = take_be(r, prefix);
        const uint8_t *p;

        if (r->bad || n > max) {
                r->bad = true;
                return;
        }
        p = take(r, n);
        if (!p)
                return;
        memcpy(out, p, n);
        *ret_len = n;
}

int vtpm_identity_save(const vtpm_identity_t *id, const char *path)
{
        uint8_t *buf, digest[32];
        wbuf_t w = {0};
        int r;

        if (!id || !path)
                return -EINVAL;
        if (id->ek_public_len == 0 || id->ek_public_len > VTPM_MAX_PUBLIC || id->ak_public_len == 0 ||
            id->ak_public_len > VTPM_MAX_PUBLIC || id->ak_name_len == 0 || id->ak_name_len > VTPM_MAX_NAME ||
            !id->ek_cert || id->ek_cert_len == 0 || id->ek_cert_len > VTPM_MAX_EK_CERT)
                return -EINVAL;
        buf = malloc(ID_MAX_FILE);
        if (!buf)
                return -ENOMEM;
        w.p = buf;
        w.cap = ID_MAX_FILE;
        put(&w, ID_MAGIC, ID_MAGIC_LEN);
        put_be(&w, id->ek_alg == CSCP_KEY_RSA_2048 ? TPM2_ALG_RSA : TPM2_ALG_ECC, 2);
        put_be(&w, (uint32_t)id->ek_public_len, 2);
        put(&w, id->ek_public, id->ek_public_len);
        put(&w, id->ek_sha256, 32);
        put_be(&w, (uint32_t)id->ek_cert_len, 4);
        put(&w, id->ek_cert, id->ek_cert_len);
        put_be(&w, id->ak_handle, 4);
        put_be(&w, (uint32_t)id->ak_public_len, 2);
        put(&w, id->ak_public, id->ak_public_len);
        put_be(&w, (uint32_t)id->ak_name_len, 2);
        put(&w, id->ak_name, id->ak_name_len);
        r = w.overflow ? -ENOBUFS : sha256(buf, w.len, digest);
        if (r == 0) {
                put(&w, digest, sizeof(digest));
                r = w.overflow ? -ENOBUFS : cscp_file_write_atomic(path, buf, w.len, 0600);
        }
        free(buf);
        return r;
}

int vtpm_identity_load(const char *path, vtpm_identity_t *ret)
{
        vtpm_identity_t id = {0};
        uint8_t *file = NULL, digest[32], ek_sha[32];
        const uint8_t *p;
        size_t len = 0;
        uint16_t alg;
        uint32_t cert_len;
        TPM2B_NAME name;
        TPMT_PUBLIC ek;
        size_t off = 0;
        rbuf_t rb;
        int r;

        if (!path || !ret)
                return -EINVAL;
        r = cscp_file_read(path, ID_MAX_FILE, &file, &len);
        if (r == -EFBIG)
                return CSCP_E_STATE;
        if (r < 0)
                return r;
        r = CSCP_E_STATE;
        rb = (rbuf_t){.p = file, .len = len};
        p = take(&rb, ID_MAGIC_LEN);
        if (!p || memcmp(p, ID_MAGIC, ID_MAGIC_LEN) != 0) {
                log_debug("%s: not a vTPM identity file (magic or version)", path);
                goto out;
        }
        alg = (uint16_t)take_be(&rb, 2);
        take_field(&rb, 2, VTPM_MAX_PUBLIC, id.ek_public, &id.ek_public_len);
        p = take(&rb, 32);
        if (p)
                memcpy(id.ek_sha256, p, 32);
        cert_len = take_be(&rb, 4);
        if (rb.bad || cert_len == 0 || cert_len > VTPM_MAX_EK_CERT) {
                log_debug("%s: bad EK certificate length", path);
                goto out;
        }
        p = take(&rb, cert_len);
        if (!p)
                goto out;
        id.ek_cert = malloc(cert_len);
        if (!id.ek_cert) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(id.ek_cert, p, cert_len);
        id.ek_cert_len = cert_len;
        id.ak_handle = take_be(&rb, 4);
        take_field(&rb, 2, VTPM_MAX_PUBLIC, id.ak_public, &id.ak_public_len);
        take_field(&rb, 2, VTPM_MAX_NAME, id.ak_name, &id.ak_name_len);
        if (rb.bad || rb.len - rb.off != 32) {
                log_debug("%s: truncated or trailing bytes", path);
                goto out;
        }
        if (sha256(file, rb.off, digest) < 0 || CRYPTO_memcmp(digest, file + rb.off, 32) != 0) {
                log_debug("%s: checksum mismatch", path);
                goto out;
        }
        /* What the fields claim about each other. */
        if (alg == TPM2_ALG_ECC)
                id.ek_alg = CSCP_KEY_ECC_P256;
        else if (alg == TPM2_ALG_RSA)
                id.ek_alg = CSCP_KEY_RSA_2048;
        else
                goto out;
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(id.ek_public, id.ek_public_len, &off, &ek) != TSS2_RC_SUCCESS ||
            off != id.ek_public_len || ek.type != alg) {
                log_debug("%s: EK public area does not parse or is not %s", path, alg == TPM2_ALG_ECC ? "ECC" : "RSA");
                goto out;
        }
        if (sha256(id.ek_public, id.ek_public_len, ek_sha) < 0 || CRYPTO_memcmp(ek_sha, id.ek_sha256, 32) != 0) {
                log_debug("%s: EK digest does not match the EK public area", path);
                goto out;
        }
        if (id.ak_handle < 0x81800000u || id.ak_handle > 0x81FFFFFFu) {
                log_debug("%s: AK handle 0x%08x is not in the platform range", path, (unsigned)id.ak_handle);
                goto out;
        }
        if (cscp_tpm_public_name(id.ak_public, id.ak_public_len, &name) < 0 || name.size != id.ak_name_len ||
            memcmp(name.name, id.ak_name, name.size) != 0) {
                log_debug("%s: AK name does not match the AK public area", path);
                goto out;
        }
        *ret = id;
        id = (vtpm_identity_t){0};
        r = 0;
out:
        vtpm_identity_clear(&id);
        free(file);
        return r;
}
