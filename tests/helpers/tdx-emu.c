/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdx-emu: a TEST emulator of the Linux files of a TDX guest.
 *
 *   THIS IS NOT TDX AND PROVES NOTHING ABOUT TDX. There is no TD, no TDX
 *   module, no Intel quoting enclave and no Intel key here. The "quotes" it
 *   serves are signed with keys it generates itself under a TEST CA, and its
 *   "RTMRs" are numbers in this process. It exercises the FILE PROTOCOL that
 *   lib/tdx/guest.c speaks (configfs-tsm reports, the TSM measurement
 *   registers) and the quote verifier (lib/tdx/verify.c) with a test CA; a
 *   test passing against it says nothing about real TDX hardware.
 *
 * Usage (tests start it through harness_tdx_emu_start, tests/helpers/harness.h):
 *   tdx-emu MOUNTPOINT --state DIR [--mrtd HEX] [--rtmr0 HEX] [--rtmr1 HEX]
 *           [--rtmr2 HEX] [--rtmr3 HEX] [--ready-file F] [--race N]
 *           [--provider NAME] [--outblob-file F]
 *
 *   MOUNTPOINT/tsm/report/        configfs-tsm report ABI (what is under
 *                                 /sys/kernel/config/tsm): mkdir NAME makes an
 *                                 instance with provider ("tdx_guest\n", or
 *                                 --provider NAME), generation (decimal, "\n"),
 *                                 inblob (write, at most 64 bytes; every write
 *                                 bumps generation), outblob (read: a TDX quote
 *                                 v4 made at open with REPORTDATA = inblob, zero
 *                                 padded; --outblob-file F: F's bytes instead);
 *                                 rmdir NAME removes it.
 *   MOUNTPOINT/measurements/      rtmr0..3:sha384 (read: 48 bytes; write 48
 *                                 bytes at offset 0: RTMR = SHA-384(RTMR || data);
 *                                 rtmr0/1 refuse writes with EPERM: a test
 *                                 policy, the Linux driver itself lets all four
 *                                 be extended), mrtd:sha384 (read only).
 *   DIR/root.pem                  the TEST root CA (P-256, self-signed): the
 *                                 trust anchor tests pass as --tdx-root. DIR also
 *                                 holds root-key.pem, pck.pem, pck-key.pem (the
 *                                 "PCK" leaf, signed by the root) and ak-key.pem
 *                                 (the attestation key), made on first start and
 *                                 reused after.
 *   --mrtd, --rtmrN               initial values, 96 hex digits (default zeros).
 *   --ready-file F                written once the mount answers.
 *   --race N                      the first N outblob opens bump generation an
 *                                 extra time (as if another writer had written
 *                                 inblob): tests the concurrent-writer check.
 *
 * The quote: header (version 4, attestation key type 2, TEE type 0x81, Intel's
 * QE vendor id), TD report body (MRSEAM = SHA-384 of a text saying this is an
 * emulator, MRTD, RTMR0..3, REPORTDATA), signature data: ECDSA-P256 over
 * header + body with the attestation key, certification data type 6: a QE
 * report whose REPORTDATA[0:32] = SHA-256(attestation key || QE auth data),
 * signed by the PCK leaf key, QE auth data, and type 5: the PEM chain "PCK
 * leaf, root".
 *
 * Runs single-threaded in the foreground; SIGTERM / SIGINT / SIGHUP unmount and
 * exit 0 (1 when the mount or the loop failed).
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "le.h"
#include "util.h"

#define MAX_INSTANCES 64
#define MR_SIZE       48
#define INBLOB_MAX    64
#define QE_AUTH_LEN   32
#define FILE_MAX      (1u << 20) /* --outblob-file */

static const uint8_t intel_qe_vendor_id[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

typedef struct instance {
        bool used;
        char name[NAME_MAX + 1];
        uint64_t generation;
        uint8_t inblob[INBLOB_MAX];
        size_t inblob_len;
} instance_t;

/* An outblob opened: the bytes it serves. */
typedef struct blob {
        uint8_t *p;
        size_t len;
} blob_t;

static struct {
        instance_t inst[MAX_INSTANCES];
        uint8_t rtmr[4][MR_SIZE];
        uint8_t mrtd[MR_SIZE];
        EVP_PKEY *ak, *pck_key;
        char *chain; /* PEM: PCK leaf, root */
        size_t chain_len;
        const char *provider;
        uint8_t *outblob_fixed;
        size_t outblob_fixed_len;
        unsigned race_left;
        const char *ready_file;
} emu;

/*
 * LeakSanitizer (ASan builds): libfuse3 can leave a request it had read when a
 * signal ends its loop (timing dependent); that is the library's, not ours.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
        return "leak:libfuse3.so\n";
}

static void die(const char *what)
{
        fprintf(stderr, "tdx-emu: %s\n", what);
        exit(1);
}

/* --- keys and certificates ----------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name)
{
        char *p;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                die("out of memory");
        return p;
}

static EVP_PKEY *load_key(const char *path)
{
        FILE *f = fopen(path, "r");
        EVP_PKEY *k;

        if (!f)
                return NULL;
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return k;
}

static X509 *load_cert(const char *path)
{
        FILE *f = fopen(path, "r");
        X509 *x;

        if (!f)
                return NULL;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        return x;
}

/* Writes path via path.tmp + rename; key: a private key (mode 0600), else a certificate. */
static void store_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
        char *tmp;
        FILE *f;
        int fd, ok;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                die("out of memory");
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
        if (fd < 0 || !(f = fdopen(fd, "w")))
                die("cannot write a state file");
        ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
        if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
                die("cannot write a state file");
        free(tmp);
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

        if (!e || !X509_add_ext(x, e, -1))
                die("cannot add a certificate extension");
        X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *issuer_key, X509 *issuer, const char *cn, bool ca, long serial)
{
        X509 *x = X509_new();
        X509_NAME *name;
        X509V3_CTX ctx;

        if (!x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400) || !X509_set_pubkey(x, key))
                die("cannot make a certificate");
        name = X509_get_subject_name(x);
        if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        (const unsigned char *)"CSCP tdx-emu TEST CA, not Intel, not TDX", -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
                die("cannot make a certificate name");
        if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
                die("cannot set the issuer");
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        add_ext(x, &ctx, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
        add_ext(x, &ctx, NID_subject_key_identifier, "hash");
        if (issuer)
                add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
        if (!X509_sign(x, issuer_key, EVP_sha256()))
                die("cannot sign a certificate");
        return x;
}

static char *pem_of(X509 *x, size_t *len)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *out;
        long n;

        if (!b || !PEM_write_bio_X509(b, x))
                die("cannot write PEM");
        n = BIO_get_mem_data(b, &data);
        out = malloc((size_t)n + 1);
        if (!out)
                die("out of memory");
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
        BIO_free(b);
        return out;
}

/* Loads the keys from dir, or makes them (root.pem last: its presence means the set is complete). */
static void keys_init(const char *dir)
{
        char *root_pem = path_in(dir, "root.pem"), *root_key = path_in(dir, "root-key.pem"),
             *pck_pem = path_in(dir, "pck.pem"), *pck_key = path_in(dir, "pck-key.pem"),
             *ak_key = path_in(dir, "ak-key.pem");
        X509 *root = load_cert(root_pem), *pck = NULL;
        EVP_PKEY *rkey = NULL;
        char *a, *b;
        size_t alen, blen;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                die("cannot make the state directory");
        if (root) {
                pck = load_cert(pck_pem);
                emu.pck_key = load_key(pck_key);
                emu.ak = load_key(ak_key);
                if (!pck || !emu.pck_key || !emu.ak)
                        die("state directory holds root.pem but not pck.pem, pck-key.pem, ak-key.pem");
        } else {
                if (!(rkey = EVP_EC_gen("P-256")) || !(emu.pck_key = EVP_EC_gen("P-256")) ||
                    !(emu.ak = EVP_EC_gen("P-256")))
                        die("cannot generate P-256 keys");
                root = make_cert(rkey, rkey, NULL, "tdx-emu test root CA", true, 1);
                pck = make_cert(emu.pck_key, rkey, root, "tdx-emu test PCK leaf", false, 2);
                store_pem(root_key, rkey, NULL);
                store_pem(pck_key, emu.pck_key, NULL);
                store_pem(ak_key, emu.ak, NULL);
                store_pem(pck_pem, NULL, pck);
                store_pem(root_pem, NULL, root);
        }
        a = pem_of(pck, &alen);
        b = pem_of(root, &blen);
        emu.chain = malloc(alen + blen + 1);
        if (!emu.chain)
                die("out of memory");
        memcpy(emu.chain, a, alen);
        memcpy(emu.chain + alen, b, blen + 1);
        emu.chain_len = alen + blen;
        free(a);
        free(b);
        X509_free(root);
        X509_free(pck);
        EVP_PKEY_free(rkey);
        free(root_pem);
        free(root_key);
        free(pck_pem);
        free(pck_key);
        free(ak_key);
}

/* --- the quote ------------------------------------------------------------------------------ */

/* ECDSA-P256-SHA256 over msg as raw r || s (64 bytes). */
static int sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t out[64])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char der[80];
        const unsigned char *p = der;
        size_t der_len = sizeof(der);
        ECDSA_SIG *sig = NULL;
        const BIGNUM *r, *s;
        int ok = -1;

        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, der, &der_len, msg, len) != 1)
                goto out;
        sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (!sig)
                goto out;
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32)
                goto out;
        ok = 0;
out:
        ECDSA_SIG_free(sig);
        EVP_MD_CTX_free(md);
        return ok;
}

static int pub_raw(EVP_PKEY *key, uint8_t out[64])
{
        uint8_t pt[65];
        size_t n = 0;

        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n) != 1 || n != 65 ||
            pt[0] != 0x04)
                return -1;
        memcpy(out, pt + 1, 64);
        return 0;
}

static int digest(const char *alg, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok = md && EVP_DigestInit_ex(md, EVP_get_digestbyname(alg), NULL) == 1 &&
                 EVP_DigestUpdate(md, a, alen) == 1 && (!blen || EVP_DigestUpdate(md, b, blen) == 1) &&
                 EVP_DigestFinal_ex(md, out, NULL) == 1;

        EVP_MD_CTX_free(md);
        return ok ? 0 : -1;
}

#define HEADER    48
#define BODY      584
#define QE_REPORT 384

static int build_quote(const instance_t *in, blob_t *ret)
{
        size_t cert_inner = QE_REPORT + 64 + 2 + QE_AUTH_LEN + 2 + 4 + emu.chain_len;
        size_t sig_len = 64 + 64 + 2 + 4 + cert_inner;
        size_t total = HEADER + BODY + 4 + sig_len;
        uint8_t *q = calloc(1, total), *body, *sd, *c, ak_pub[64], auth[QE_AUTH_LEN];
        static const char seam_text[] = "cscp tdx-emu: NOT a TDX module, NOT TDX";

        if (!q)
                return -ENOMEM;
        /* header */
        le16_put(q + 0, 4);
        le16_put(q + 2, 2);
        le32_put(q + 4, 0x81);
        memcpy(q + 12, intel_qe_vendor_id, 16);
        /* TD report body */
        body = q + HEADER;
        if (digest("SHA384", (const uint8_t *)seam_text, sizeof(seam_text) - 1, NULL, 0, body + 16) < 0)
                goto fail;
        body[128] = 0xe7; /* XFAM: x87, SSE, AVX, AVX-512 state as on real TDs */
        body[129] = 0x18;
        body[130] = 0x06;
        memcpy(body + 136, emu.mrtd, MR_SIZE);
        memcpy(body + 328, emu.rtmr, sizeof(emu.rtmr));
        memcpy(body + 520, in->inblob, in->inblob_len);
        /* signature data */
        le32_put(q + HEADER + BODY, (uint32_t)sig_len);
        sd = q + HEADER + BODY + 4;
        if (sign_raw(emu.ak, q, HEADER + BODY, sd) < 0 || pub_raw(emu.ak, ak_pub) < 0)
                goto fail;
        memcpy(sd + 64, ak_pub, 64);
        le16_put(sd + 128, 6);
        le32_put(sd + 130, (uint32_t)cert_inner);
        c = sd + 134;
        /* QE report (SGX report body): ISVPRODID 2 (TD QE), REPORTDATA binds the attestation key */
        for (size_t i = 0; i < QE_AUTH_LEN; i++)
                auth[i] = (uint8_t)i;
        if (digest("SHA256", (const uint8_t *)"tdx-emu QE", 10, NULL, 0, c + 64) < 0 ||
            digest("SHA256", (const uint8_t *)"tdx-emu QE signer", 17, NULL, 0, c + 128) < 0)
                goto fail;
        le16_put(c + 256, 2);
        if (digest("SHA256", ak_pub, 64, auth, QE_AUTH_LEN, c + 320) < 0 ||
            sign_raw(emu.pck_key, c, QE_REPORT, c + QE_REPORT) < 0)
                goto fail;
        c += QE_REPORT + 64;
        le16_put(c, QE_AUTH_LEN);
        memcpy(c + 2, auth, QE_AUTH_LEN);
        c += 2 + QE_AUTH_LEN;
        le16_put(c, 5);
        le32_put(c + 2, (uint32_t)emu.chain_len);
        memcpy(c + 6, emu.chain, emu.chain_len);
        ret->p = q;
        ret->len = total;
        return 0;
fail:
        free(q);
        return -EIO;
}

/* --- the file system ------------------------------------------------------------------------ */

typedef enum {
        N_NONE,
        N_ROOT,
        N_TSM,
        N_REPORT,
        N_INST,
        N_PROVIDER,
        N_GENERATION,
        N_INBLOB,
        N_OUTBLOB,
        N_MEAS,
        N_RTMR,
        N_MRTD,
} node_t;

static instance_t *inst_find(const char *name, size_t len)
{
        for (size_t i = 0; i < MAX_INSTANCES; i++)
                if (emu.inst[i].used && strlen(emu.inst[i].name) == len && memcmp(emu.inst[i].name, name, len) == 0)
                        return &emu.inst[i];
        return NULL;
}

/* What path names; *in for instance nodes, *idx for RTMRs. */
static node_t resolve(const char *path, instance_t **in, unsigned *idx)
{
        static const char rep[] = "/tsm/report/", meas[] = "/measurements/";
        const char *name, *slash;

        if (strcmp(path, "/") == 0)
                return N_ROOT;
        if (strcmp(path, "/tsm") == 0)
                return N_TSM;
        if (strcmp(path, "/tsm/report") == 0)
                return N_REPORT;
        if (strcmp(path, "/measurements") == 0)
                return N_MEAS;
        if (strncmp(path, meas, sizeof(meas) - 1) == 0) {
                name = path + sizeof(meas) - 1;
                if (strcmp(name, "mrtd:sha384") == 0)
                        return N_MRTD;
                if (strncmp(name, "rtmr", 4) == 0 && name[4] >= '0' && name[4] <= '3' &&
                    strcmp(name + 5, ":sha384") == 0) {
                        *idx = (unsigned)(name[4] - '0');
                        return N_RTMR;
                }
                return N_NONE;
        }
        if (strncmp(path, rep, sizeof(rep) - 1) != 0)
                return N_NONE;
        name = path + sizeof(rep) - 1;
        slash = strchr(name, '/');
        *in = inst_find(name, slash ? (size_t)(slash - name) : strlen(name));
        if (!*in)
                return N_NONE;
        if (!slash)
                return N_INST;
        if (strcmp(slash, "/provider") == 0)
                return N_PROVIDER;
        if (strcmp(slash, "/generation") == 0)
                return N_GENERATION;
        if (strcmp(slash, "/inblob") == 0)
                return N_INBLOB;
        if (strcmp(slash, "/outblob") == 0)
                return N_OUTBLOB;
        return N_NONE;
}

static int emu_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
        instance_t *in = NULL;
        unsigned idx = 0;
        node_t n = resolve(path, &in, &idx);

        (void)fi;
        memset(st, 0, sizeof(*st));
        st->st_uid = getuid();
        st->st_gid = getgid();
        switch (n) {
        case N_ROOT:
        case N_TSM:
        case N_REPORT:
        case N_INST:
        case N_MEAS:
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
                return 0;
        case N_PROVIDER:
        case N_GENERATION:
        case N_OUTBLOB:
        case N_MRTD:
                st->st_mode = S_IFREG | 0444;
                break;
        case N_INBLOB:
                st->st_mode = S_IFREG | 0200;
                break;
        case N_RTMR:
                st->st_mode = S_IFREG | 0644;
                st->st_size = MR_SIZE;
                break;
        case N_NONE:
                return -ENOENT;
        }
        if (n == N_MRTD)
                st->st_size = MR_SIZE;
        st->st_nlink = 1;
        return 0;
}

static int emu_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                       enum fuse_readdir_flags flags)
{
        instance_t *in = NULL;
        unsigned idx = 0;
        char name[32];

        (void)off;
        (void)fi;
        (void)flags;
        fill(buf, ".", NULL, 0, 0);
        fill(buf, "..", NULL, 0, 0);
        switch (resolve(path, &in, &idx)) {
        case N_ROOT:
                fill(buf, "tsm", NULL, 0, 0);
                fill(buf, "measurements", NULL, 0, 0);
                return 0;
        case N_TSM:
                fill(buf, "report", NULL, 0, 0);
                return 0;
        case N_REPORT:
                for (size_t i = 0; i < MAX_INSTANCES; i++)
                        if (emu.inst[i].used)
                                fill(buf, emu.inst[i].name, NULL, 0, 0);
                return 0;
        case N_INST:
                fill(buf, "provider", NULL, 0, 0);
                fill(buf, "generation", NULL, 0, 0);
                fill(buf, "inblob", NULL, 0, 0);
                fill(buf, "outblob", NULL, 0, 0);
                return 0;
        case N_MEAS:
                fill(buf, "mrtd:sha384", NULL, 0, 0);
                for (unsigned i = 0; i < 4; i++) {
                        snprintf(name, sizeof(name), "rtmr%u:sha384", i);
                        fill(buf, name, NULL, 0, 0);
                }
                return 0;
        case N_NONE:
                return -ENOENT;
        case N_PROVIDER:
        case N_GENERATION:
        case N_INBLOB:
        case N_OUTBLOB:
        case N_RTMR:
        case N_MRTD:
                return -ENOTDIR;
        }
        return -ENOENT;
}

static int emu_mkdir(const char *path, mode_t mode)
{
        static const char rep[] = "/tsm/report/";
        const char *name = path + sizeof(rep) - 1;
        instance_t *in = NULL;
        unsigned idx = 0;

        (void)mode;
        if (resolve(path, &in, &idx) != N_NONE)
                return -EEXIST;
        if (strncmp(path, rep, sizeof(rep) - 1) != 0 || !*name || strchr(name, '/') || strlen(name) > NAME_MAX)
                return -EPERM;
        for (size_t i = 0; i < MAX_INSTANCES; i++)
                if (!emu.inst[i].used) {
                        memset(&emu.inst[i], 0, sizeof(emu.inst[i]));
                        emu.inst[i].used = true;
                        snprintf(emu.inst[i].name, sizeof(emu.inst[i].name), "%s", name);
                        fprintf(stderr, "tdx-emu: mkdir %s\n", name);
                        return 0;
                }
        return -ENOSPC;
}

static int emu_rmdir(const char *path)
{
        instance_t *in = NULL;
        unsigned idx = 0;

        switch (resolve(path, &in, &idx)) {
        case N_INST:
                fprintf(stderr, "tdx-emu: rmdir %s\n", in->name);
                memset(in, 0, sizeof(*in));
                return 0;
        case N_NONE:
                return -ENOENT;
        case N_ROOT:
        case N_TSM:
        case N_REPORT:
        case N_MEAS:
                return -EPERM;
        case N_PROVIDER:
        case N_GENERATION:
        case N_INBLOB:
        case N_OUTBLOB:
        case N_RTMR:
        case N_MRTD:
                return -ENOTDIR;
        }
        return -ENOENT;
}

static int emu_open(const char *path, struct fuse_file_info *fi)
{
        instance_t *in = NULL;
        unsigned idx = 0;
        int acc = fi->flags & O_ACCMODE;
        node_t n = resolve(path, &in, &idx);
        blob_t *b;

        fi->direct_io = 1; /* every read and write reaches us: nothing cached */
        switch (n) {
        case N_PROVIDER:
        case N_GENERATION:
        case N_MRTD:
                return acc == O_RDONLY ? 0 : -EACCES;
        case N_INBLOB:
                return acc == O_WRONLY ? 0 : -EACCES;
        case N_RTMR:
                if (acc != O_RDONLY && idx < 2)
                        return -EPERM;
                return 0;
        case N_OUTBLOB:
                if (acc != O_RDONLY)
                        return -EACCES;
                if (emu.race_left > 0) {
                        emu.race_left--;
                        in->generation++; /* "another writer" */
                        fprintf(stderr, "tdx-emu: %s: generation bumped (--race)\n", in->name);
                }
                b = calloc(1, sizeof(*b));
                if (!b)
                        return -ENOMEM;
                if (emu.outblob_fixed) {
                        b->p = malloc(emu.outblob_fixed_len ? emu.outblob_fixed_len : 1);
                        if (!b->p) {
                                free(b);
                                return -ENOMEM;
                        }
                        memcpy(b->p, emu.outblob_fixed, emu.outblob_fixed_len);
                        b->len = emu.outblob_fixed_len;
                } else if (build_quote(in, b) < 0) {
                        free(b);
                        return -EIO;
                }
                fi->fh = (uint64_t)(uintptr_t)b;
                return 0;
        case N_ROOT:
        case N_TSM:
        case N_REPORT:
        case N_INST:
        case N_MEAS:
                return -EISDIR;
        case N_NONE:
                return -ENOENT;
        }
        return -ENOENT;
}

static int emu_release(const char *path, struct fuse_file_info *fi)
{
        blob_t *b = (blob_t *)(uintptr_t)fi->fh;

        (void)path;
        if (b) {
                free(b->p);
                free(b);
                fi->fh = 0;
        }
        return 0;
}

static int serve(const void *data, size_t len, char *buf, size_t size, off_t off)
{
        if (off < 0)
                return -EINVAL;
        if ((size_t)off >= len)
                return 0;
        if (size > len - (size_t)off)
                size = len - (size_t)off;
        memcpy(buf, (const uint8_t *)data + off, size);
        return (int)size;
}

static int emu_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
        instance_t *in = NULL;
        unsigned idx = 0;
        char text[64];
        blob_t *b;

        switch (resolve(path, &in, &idx)) {
        case N_PROVIDER:
                snprintf(text, sizeof(text), "%s\n", emu.provider);
                return serve(text, strlen(text), buf, size, off);
        case N_GENERATION:
                snprintf(text, sizeof(text), "%llu\n", (unsigned long long)in->generation);
                return serve(text, strlen(text), buf, size, off);
        case N_OUTBLOB:
                b = (blob_t *)(uintptr_t)fi->fh;
                return b ? serve(b->p, b->len, buf, size, off) : -EIO;
        case N_RTMR:
                return serve(emu.rtmr[idx], MR_SIZE, buf, size, off);
        case N_MRTD:
                return serve(emu.mrtd, MR_SIZE, buf, size, off);
        case N_INBLOB:
                return -EACCES;
        case N_ROOT:
        case N_TSM:
        case N_REPORT:
        case N_INST:
        case N_MEAS:
                return -EISDIR;
        case N_NONE:
                return -ENOENT;
        }
        return -ENOENT;
}

static int emu_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
        instance_t *in = NULL;
        unsigned idx = 0;
        uint8_t next[MR_SIZE];

        (void)fi;
        switch (resolve(path, &in, &idx)) {
        case N_INBLOB:
                if (off < 0 || (size_t)off > INBLOB_MAX || size > INBLOB_MAX - (size_t)off)
                        return -EFBIG;
                memcpy(in->inblob + off, buf, size);
                if ((size_t)off + size > in->inblob_len)
                        in->inblob_len = (size_t)off + size;
                in->generation++;
                return (int)size;
        case N_RTMR:
                if (idx < 2)
                        return -EPERM;
                if (off != 0 || size != MR_SIZE)
                        return -EINVAL; /* like the kernel: exactly 48 bytes at offset 0 */
                if (digest("SHA384", emu.rtmr[idx], MR_SIZE, (const uint8_t *)buf, MR_SIZE, next) < 0)
                        return -EIO;
                memcpy(emu.rtmr[idx], next, MR_SIZE);
                return (int)size;
        case N_PROVIDER:
        case N_GENERATION:
        case N_OUTBLOB:
        case N_MRTD:
                return -EACCES;
        case N_ROOT:
        case N_TSM:
        case N_REPORT:
        case N_INST:
        case N_MEAS:
                return -EISDIR;
        case N_NONE:
                return -ENOENT;
        }
        return -ENOENT;
}

/* open(O_TRUNC) of inblob (a shell's `>`) arrives as a truncate: nothing to do. */
static int emu_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
        instance_t *in = NULL;
        unsigned idx = 0;

        (void)size;
        (void)fi;
        return resolve(path, &in, &idx) == N_INBLOB ? 0 : -EACCES;
}

static void *emu_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
        (void)conn;
        cfg->direct_io = 1;
        cfg->attr_timeout = 0;
        cfg->entry_timeout = 0;
        cfg->negative_timeout = 0;
        cfg->use_ino = 0;
        if (emu.ready_file && cscp_file_write_atomic(emu.ready_file, "mounted\n", 8, 0644) < 0)
                fprintf(stderr, "tdx-emu: cannot write %s\n", emu.ready_file);
        return NULL;
}

static const struct fuse_operations ops = {
        .getattr = emu_getattr,
        .readdir = emu_readdir,
        .mkdir = emu_mkdir,
        .rmdir = emu_rmdir,
        .open = emu_open,
        .release = emu_release,
        .read = emu_read,
        .write = emu_write,
        .truncate = emu_truncate,
        .init = emu_init,
};

/* --- options ---------------------------------------------------------------------------------- */

static void hex48(const char *opt, const char *hex, uint8_t out[MR_SIZE])
{
        size_t n = 0;

        if (cscp_hex_decode(hex, out, MR_SIZE, &n) < 0 || n != MR_SIZE) {
                fprintf(stderr, "tdx-emu: %s: 96 hex digits wanted\n", opt);
                exit(2);
        }
}

static void usage(void)
{
        fprintf(stderr, "usage: tdx-emu MOUNTPOINT --state DIR [--mrtd HEX] [--rtmr0..3 HEX] [--ready-file F] "
                        "[--race N] [--provider NAME] [--outblob-file F]\n"
                        "A TEST emulator of the TDX guest files (configfs-tsm, RTMRs): NOT TDX.\n");
        exit(2);
}

int main(int argc, char **argv)
{
        const char *mnt = NULL, *state = NULL, *outblob_file = NULL;
        struct fuse_args args;
        struct fuse *f;
        char *fargv[8];
        int fargc = 0, r;

        emu.provider = "tdx_guest";
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (a[0] != '-') {
                        if (mnt)
                                usage();
                        mnt = a;
                        continue;
                }
                if (!v)
                        usage();
                i++;
                if (strcmp(a, "--state") == 0)
                        state = v;
                else if (strcmp(a, "--mrtd") == 0)
                        hex48(a, v, emu.mrtd);
                else if (strncmp(a, "--rtmr", 6) == 0 && a[6] >= '0' && a[6] <= '3' && a[7] == '\0')
                        hex48(a, v, emu.rtmr[a[6] - '0']);
                else if (strcmp(a, "--ready-file") == 0)
                        emu.ready_file = v;
                else if (strcmp(a, "--race") == 0)
                        emu.race_left = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--provider") == 0)
                        emu.provider = v;
                else if (strcmp(a, "--outblob-file") == 0)
                        outblob_file = v;
                else
                        usage();
        }
        if (!mnt || !state)
                usage();
        if (outblob_file) {
                r = cscp_file_read(outblob_file, FILE_MAX, &emu.outblob_fixed, &emu.outblob_fixed_len);
                if (r < 0) {
                        fprintf(stderr, "tdx-emu: %s: %s\n", outblob_file, strerror(-r));
                        return 1;
                }
        }
        keys_init(state);
        fprintf(stderr, "tdx-emu: TEST emulator, NOT TDX: mounting on %s, test root CA %s/root.pem\n", mnt, state);

        /* single-threaded loop in the foreground (what -f -s give fuse_main), with an exit status of our own */
        fargv[fargc++] = argv[0];
        fargv[fargc++] = "-o";
        fargv[fargc++] = "fsname=tdx-emu,subtype=tdx-emu";
        fargv[fargc] = NULL;
        args = (struct fuse_args)FUSE_ARGS_INIT(fargc, fargv);
        f = fuse_new(&args, &ops, sizeof(ops), NULL);
        if (!f) {
                fprintf(stderr, "tdx-emu: fuse: fuse_new failed\n");
                return 1;
        }
        if (fuse_mount(f, mnt) != 0) {
                fprintf(stderr, "tdx-emu: fuse: cannot mount %s\n", mnt);
                fuse_destroy(f);
                return 1;
        }
        if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
                fprintf(stderr, "tdx-emu: fuse: cannot set signal handlers\n");
                r = -1;
        } else {
                /* 0: unmounted from outside; a signal number: SIGTERM / SIGINT / SIGHUP; negative: an error */
                r = fuse_loop(f);
                fuse_remove_signal_handlers(fuse_get_session(f));
        }
        fuse_unmount(f);
        fuse_destroy(f);
        fuse_opt_free_args(&args);
        if (r < 0)
                fprintf(stderr, "tdx-emu: fuse loop: %s\n", strerror(-r));

        for (size_t i = 0; i < MAX_INSTANCES; i++)
                if (emu.inst[i].used)
                        fprintf(stderr, "tdx-emu: instance %s still there at exit\n", emu.inst[i].name);
        EVP_PKEY_free(emu.ak);
        EVP_PKEY_free(emu.pck_key);
        free(emu.chain);
        free(emu.outblob_fixed);
        return r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? 0 : 1;
}
