/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets at rest. Each instance has a 64-byte secret: the AES-256 key swtpm
 * encrypts its state files with (--key fd=3,mode=aes-256-cbc,format=binary)
 * and the platform hierarchy auth vtpmd sets at manufacture. It is stored
 * wrapped with AES-256-GCM under the vtpmd master key (<state>/master.key,
 * 0600), the instance uid as additional data, so an instance directory
 * copied elsewhere is useless without the master key. The master key itself
 * is a plain file: whoever reads the whole --state-dir as root can decrypt
 * (sealing it to the host TPM is future work; README.md says so).
 *
 * Wrapped file: "CSCPVK1\n" (8) || iv (12) || ciphertext (64) || tag (16).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core.h"
#include "error.h"
#include "util.h"

#define WRAP_MAGIC     "CSCPVK1\n"
#define WRAP_MAGIC_LEN 8
#define WRAP_IV_LEN    12
#define WRAP_TAG_LEN   16
#define WRAP_LEN       (WRAP_MAGIC_LEN + WRAP_IV_LEN + VTPMD_SECRET_LEN + WRAP_TAG_LEN)
#define WRAP_AAD       "cscp-vtpmd-instance-secret-v1:"

int keys_master_load_or_create(const char *state_dir, uint8_t ret[VTPMD_MASTER_KEY_LEN])
{
        char path[PATH_MAX];
        uint8_t *buf = NULL, key[VTPMD_MASTER_KEY_LEN];
        size_t len = 0;
        struct stat st;
        int r;

        if ((size_t)snprintf(path, sizeof(path), "%s/master.key", state_dir) >= sizeof(path))
                return -ENAMETOOLONG;
        if (lstat(path, &st) == 0) {
                if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid())
                        return CSCP_E_STATE; /* a link, or readable by others: refuse rather than use */
                r = cscp_file_read(path, VTPMD_MASTER_KEY_LEN, &buf, &len);
                if (r < 0)
                        return r;
                if (len != VTPMD_MASTER_KEY_LEN) {
                        OPENSSL_cleanse(buf, len);
                        free(buf);
                        return CSCP_E_STATE;
                }
                memcpy(ret, buf, VTPMD_MASTER_KEY_LEN);
                OPENSSL_cleanse(buf, len);
                free(buf);
                return 0;
        }
        if (errno != ENOENT)
                return -errno;
        if (RAND_priv_bytes(key, sizeof(key)) != 1)
                return CSCP_E_CRYPTO;
        r = cscp_file_write_atomic(path, key, sizeof(key), 0600);
        if (r >= 0)
                memcpy(ret, key, sizeof(key));
        OPENSSL_cleanse(key, sizeof(key));
        return r < 0 ? r : 1;
}

static int gcm(bool enc, const uint8_t master[VTPMD_MASTER_KEY_LEN], const char *uid, const uint8_t *iv,
               const uint8_t *in, uint8_t *out, uint8_t *tag)
{
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        char aad[sizeof(WRAP_AAD) + VTPMD_UID_LEN + 1];
        int n = 0, r = CSCP_E_CRYPTO;

        if (!ctx)
                return -ENOMEM;
        snprintf(aad, sizeof(aad), "%s%s", WRAP_AAD, uid);
        if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, WRAP_IV_LEN, NULL) != 1 ||
            EVP_CipherInit_ex(ctx, NULL, NULL, master, iv, enc) != 1 ||
            EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
            EVP_CipherUpdate(ctx, out, &n, in, VTPMD_SECRET_LEN) != 1 || n != VTPMD_SECRET_LEN)
                goto out;
        if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WRAP_TAG_LEN, tag) != 1)
                goto out;
        if (EVP_CipherFinal_ex(ctx, out + n, &n) != 1) {
                r = enc ? CSCP_E_CRYPTO : CSCP_E_STATE; /* wrong master key or tampered file */
                goto out;
        }
        if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WRAP_TAG_LEN, tag) != 1)
                goto out;
        r = 0;
out:
        EVP_CIPHER_CTX_free(ctx);
        return r;
}

int keys_secret_save(const uint8_t master[VTPMD_MASTER_KEY_LEN], const char *uid,
                     const uint8_t secret[VTPMD_SECRET_LEN], const char *path)
{
        uint8_t buf[WRAP_LEN];
        uint8_t *iv = buf + WRAP_MAGIC_LEN, *ct = iv + WRAP_IV_LEN, *tag = ct + VTPMD_SECRET_LEN;
        int r;

        memcpy(buf, WRAP_MAGIC, WRAP_MAGIC_LEN);
        if (RAND_bytes(iv, WRAP_IV_LEN) != 1)
                return CSCP_E_CRYPTO;
        r = gcm(true, master, uid, iv, secret, ct, tag);
        if (r < 0)
                return r;
        return cscp_file_write_atomic(path, buf, sizeof(buf), 0600);
}

int keys_secret_load(const uint8_t master[VTPMD_MASTER_KEY_LEN], const char *uid, const char *path,
                     uint8_t ret[VTPMD_SECRET_LEN])
{
        uint8_t *buf = NULL, out[VTPMD_SECRET_LEN];
        size_t len = 0;
        int r;

        r = cscp_file_read(path, WRAP_LEN, &buf, &len);
        if (r < 0)
                return r;
        if (len != WRAP_LEN || memcmp(buf, WRAP_MAGIC, WRAP_MAGIC_LEN) != 0) {
                free(buf);
                return CSCP_E_STATE;
        }
        r = gcm(false, master, uid, buf + WRAP_MAGIC_LEN, buf + WRAP_MAGIC_LEN + WRAP_IV_LEN, out,
                buf + WRAP_MAGIC_LEN + WRAP_IV_LEN + VTPMD_SECRET_LEN);
        if (r == 0)
                memcpy(ret, out, VTPMD_SECRET_LEN);
        OPENSSL_cleanse(out, sizeof(out));
        free(buf);
        return r;
}
