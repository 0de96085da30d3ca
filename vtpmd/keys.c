/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets at rest. Each instance has a 64-byte secret: the AES-256 key swtpm
 * encrypts its state files with (--key fd=3,mode=aes-256-cbc,format=binary)
 * and the platform hierarchy auth vtpmd sets at manufacture. It is stored
 * wrapped with AES-256-GCM under the vtpmd master key, the instance uid as
 * additional data, so an instance directory copied elsewhere is useless
 * without the master key.
 *
 * The master key (32 random bytes) is sealed to the host TPM in
 * <state>/master.sealed (lib/tpm/seal.c: a sealed-data object under the
 * owner hierarchy's SRK, fixedTPM), so the state directory alone, copied
 * off the host, opens nothing. No PCR policy: vtpmd itself extends host
 * PCRs 11 and 15 at run time, and a policy on boot PCRs would make every
 * instance unrecoverable after a firmware or kernel update (README.md,
 * "Secrets, honestly"). Versions before it kept the key in a plain 0600
 * <state>/master.key; such a file is sealed, the sealed file made durable,
 * and only then the plain file removed.
 *
 * Wrapped file: "CSCPVK1\n" (8) || iv (12) || ciphertext (64) || tag (16).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
#include "seal.h"
#include "tpm.h"
#include "util.h"

#define WRAP_MAGIC     "CSCPVK1\n"
#define WRAP_MAGIC_LEN 8
#define WRAP_IV_LEN    12
#define WRAP_TAG_LEN   16
#define WRAP_LEN       (WRAP_MAGIC_LEN + WRAP_IV_LEN + VTPMD_SECRET_LEN + WRAP_TAG_LEN)
#define WRAP_AAD       "cscp-vtpmd-instance-secret-v1:"

static void msg_set(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg_set(char *msg, size_t len, const char *fmt, ...)
{
        va_list ap;

        if (!msg || len == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
}

/* The plain master.key of older versions: 0 and the key, -ENOENT, or an error with msg set. */
static int plain_read(const char *path, uint8_t key[VTPMD_MASTER_KEY_LEN], char *msg, size_t msg_len)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                r = -errno;
                msg_set(msg, msg_len, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid()) {
                /* a link, or readable by others: refuse rather than use */
                msg_set(msg, msg_len, "%s: not a 0600 regular file owned by us", path);
                return CSCP_E_STATE;
        }
        r = cscp_file_read(path, VTPMD_MASTER_KEY_LEN, &buf, &len);
        if (r < 0 && r != -EFBIG) {
                msg_set(msg, msg_len, "%s: %s", path, cscp_strerror(r));
                return r;
        }
        if (r == -EFBIG || len != VTPMD_MASTER_KEY_LEN) {
                msg_set(msg, msg_len, "%s: not a master key of %d bytes", path, VTPMD_MASTER_KEY_LEN);
                r = CSCP_E_STATE;
                goto out;
        }
        memcpy(key, buf, VTPMD_MASTER_KEY_LEN);
        r = 0;
out:
        if (buf) {
                OPENSSL_cleanse(buf, len);
                free(buf);
        }
        return r;
}

static int fsync_dir(const char *dir)
{
        int fd, r = 0;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Removes the plain key file once the sealed one is durable; the removal itself is made durable too. */
static int plain_remove(const char *state_dir, const char *path, char *msg, size_t msg_len)
{
        int r;

        if (unlink(path) < 0 && errno != ENOENT) {
                r = -errno;
                msg_set(msg, msg_len, "cannot remove %s: %s", path, strerror(-r));
                return r;
        }
        r = fsync_dir(state_dir);
        if (r < 0)
                msg_set(msg, msg_len, "%s removed, but fsync of %s failed: %s", path, state_dir, strerror(-r));
        return r;
}

/* Whether root/<entry>/key.wrapped exists for some entry: wrapped instance secrets a new master key would orphan. */
static int wrapped_secret_exists(const char *root, char *found, size_t found_len)
{
        DIR *d = opendir(root);
        struct dirent *e;
        struct stat st;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((e = readdir(d))) {
                char path[PATH_MAX];

                if (e->d_name[0] == '.')
                        continue;
                if ((size_t)snprintf(path, sizeof(path), "%s/%s/key.wrapped", root, e->d_name) >= sizeof(path))
                        continue;
                if (lstat(path, &st) == 0) {
                        snprintf(found, found_len, "%s", path);
                        r = 1;
                        break;
                }
        }
        closedir(d);
        return r;
}

/* Seals key into path, then reads the file back and unseals it: the file is known to work before anything relies on it.
 */
static int seal_and_check(cscp_tpm_t *t, const char *path, const uint8_t key[VTPMD_MASTER_KEY_LEN], char *msg,
                          size_t msg_len)
{
        uint8_t back[VTPMD_MASTER_KEY_LEN];
        size_t back_len = 0;
        const char *why = NULL;
        int r;

        r = cscp_tpm_seal_file(t, path, key, VTPMD_MASTER_KEY_LEN);
        if (r < 0) {
                msg_set(msg, msg_len, "cannot seal the master key to the host TPM into %s: %s", path, cscp_strerror(r));
                return r;
        }
        r = cscp_tpm_unseal_file(t, path, back, sizeof(back), &back_len, &why);
        if (r == 0 && (back_len != VTPMD_MASTER_KEY_LEN || CRYPTO_memcmp(back, key, VTPMD_MASTER_KEY_LEN) != 0))
                r = CSCP_E_TPM;
        OPENSSL_cleanse(back, sizeof(back));
        if (r < 0) {
                msg_set(msg, msg_len, "%s was written but does not unseal to the same key (%s): removed again", path,
                        why ? why : cscp_strerror(r));
                (void)unlink(path);
                return r;
        }
        return 0;
}

int keys_master_load_or_create(const char *state_dir, const char *tcti, uint8_t ret[VTPMD_MASTER_KEY_LEN], char *msg,
                               size_t msg_len)
{
        char sealed[PATH_MAX], plain[PATH_MAX], other[PATH_MAX], found[PATH_MAX];
        uint8_t key[VTPMD_MASTER_KEY_LEN], old[VTPMD_MASTER_KEY_LEN];
        const char *why = NULL;
        bool have_sealed, have_plain;
        cscp_tpm_t *t = NULL;
        struct stat st;
        size_t len = 0;
        int r, result;

        msg_set(msg, msg_len, "%s", "");
        if ((size_t)snprintf(sealed, sizeof(sealed), "%s/master.sealed", state_dir) >= sizeof(sealed) ||
            (size_t)snprintf(plain, sizeof(plain), "%s/master.key", state_dir) >= sizeof(plain)) {
                msg_set(msg, msg_len, "%s: path too long", state_dir);
                return -ENAMETOOLONG;
        }
        if (lstat(sealed, &st) == 0) {
                have_sealed = true;
        } else if (errno == ENOENT) {
                have_sealed = false;
        } else {
                r = -errno;
                msg_set(msg, msg_len, "%s: %s", sealed, strerror(-r));
                return r;
        }
        r = plain_read(plain, old, msg, msg_len);
        if (r < 0 && r != -ENOENT)
                return r;
        have_plain = r == 0;

        r = cscp_tpm_open(tcti, &t);
        if (r < 0) {
                msg_set(msg, msg_len, "cannot open the host TPM (tcti %s) for %s: %s", tcti ? tcti : "default",
                        have_sealed  ? sealed
                        : have_plain ? plain
                                     : "a new master key",
                        cscp_strerror(r));
                goto out;
        }

        if (have_sealed) {
                r = cscp_tpm_unseal_file(t, sealed, key, sizeof(key), &len, &why);
                if (r < 0) {
                        msg_set(msg, msg_len, "%s: %s (%s)", sealed, why ? why : "cannot unseal", cscp_strerror(r));
                        goto out;
                }
                if (len != VTPMD_MASTER_KEY_LEN) {
                        msg_set(msg, msg_len, "%s: the sealed secret is %zu bytes, not a %d-byte master key", sealed,
                                len, VTPMD_MASTER_KEY_LEN);
                        r = CSCP_E_STATE;
                        goto out;
                }
                result = KEYS_MASTER_UNSEALED;
                if (have_plain) {
                        /* A migration cut short leaves both, with the same key. Different keys: not ours to pick. */
                        if (CRYPTO_memcmp(key, old, sizeof(key)) != 0) {
                                msg_set(msg, msg_len,
                                        "%s and %s hold different master keys; refusing to pick one: move away the "
                                        "one that does not open the instances' key.wrapped files",
                                        sealed, plain);
                                r = CSCP_E_STATE;
                                goto out;
                        }
                        r = plain_remove(state_dir, plain, msg, msg_len);
                        if (r < 0)
                                goto out;
                        result = KEYS_MASTER_PLAIN_REMOVED;
                }
        } else if (have_plain) {
                /* Sealed file durable (written, fsynced, renamed, dir fsynced, read back) before the plain one goes. */
                r = seal_and_check(t, sealed, old, msg, msg_len);
                if (r < 0)
                        goto out;
                r = plain_remove(state_dir, plain, msg, msg_len);
                if (r < 0)
                        goto out;
                memcpy(key, old, sizeof(key));
                result = KEYS_MASTER_MIGRATED;
        } else {
                /* No key at all: fine on a first start, fatal when wrapped secrets exist (a new key orphans them). */
                if ((size_t)snprintf(other, sizeof(other), "%s/instances", state_dir) >= sizeof(other)) {
                        r = -ENAMETOOLONG;
                        goto out;
                }
                r = wrapped_secret_exists(other, found, sizeof(found));
                if (r == 0) {
                        if ((size_t)snprintf(other, sizeof(other), "%s/kept", state_dir) >= sizeof(other)) {
                                r = -ENAMETOOLONG;
                                goto out;
                        }
                        r = wrapped_secret_exists(other, found, sizeof(found));
                }
                if (r < 0) {
                        msg_set(msg, msg_len, "cannot read %s: %s", other, strerror(-r));
                        goto out;
                }
                if (r > 0) {
                        msg_set(msg, msg_len,
                                "neither %s nor %s exists, but %s does: a new master key would orphan every "
                                "instance; restore %s",
                                sealed, plain, found, sealed);
                        r = CSCP_E_STATE;
                        goto out;
                }
                if (RAND_priv_bytes(key, sizeof(key)) != 1) {
                        msg_set(msg, msg_len, "cannot draw a master key: %s", cscp_strerror(CSCP_E_CRYPTO));
                        r = CSCP_E_CRYPTO;
                        goto out;
                }
                r = seal_and_check(t, sealed, key, msg, msg_len);
                if (r < 0)
                        goto out;
                result = KEYS_MASTER_CREATED;
        }
        memcpy(ret, key, sizeof(key));
        r = result;
out:
        cscp_tpm_free(t);
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(old, sizeof(old));
        return r;
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
