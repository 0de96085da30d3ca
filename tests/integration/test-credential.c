/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MakeCredential in software against a real TPM: a credential we wrap to a
 * swtpm's EK (RSA and ECC) for an AK's Name must come back out of
 * TPM2_ActivateCredential (tpm2-tools) byte for byte, and must not for any
 * other Name.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <openssl/rand.h>

#include "cscp/credential.h"
#include "cscp/error.h"
#include "cscp/util.h"
#include "harness.h"

static char *dir;
static harness_swtpm_t tpm;

static void setup(void)
{
        dir = harness_keep(harness_tmpdir());
        cr_assert_eq(harness_swtpm_start(harness_path(dir, "swtpm"), &tpm), 0, "swtpm did not start");
        setenv("TPM2TOOLS_TCTI", tpm.tcti, 1);
}

static void teardown(void)
{
        harness_swtpm_stop(&tpm);
}

TestSuite(credential, .init = setup, .fini = teardown, .timeout = 120);

static int tool(const char *first, ...)
{
        char *argv[24], *out = NULL, *err = NULL;
        size_t n = 0;
        va_list ap;
        int code = -1;

        argv[n++] = (char *)first;
        va_start(ap, first);
        for (const char *a; n < 23 && (a = va_arg(ap, const char *));)
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        cr_assert_eq(harness_run(argv, 60000, &code, &out, &err), 0, "%s did not run", first);
        if (code != 0)
                cr_log_info("%s exited %d: %s", first, code, err);
        free(out);
        free(err);
        return code;
}

static uint8_t *slurp(const char *path, size_t *len)
{
        uint8_t *b;

        cr_assert_eq(cscp_file_read(path, 1 << 16, &b, len), 0, "cannot read %s", path);
        return harness_keep(b);
}

/* tpm2-tools' credential file: u32 BE 0xBADCC0DE, u32 BE 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
static void write_tools_file(const char *path, const cscp_credential_t *c)
{
        uint8_t buf[8 + 2 + sizeof(c->blob) + 2 + sizeof(c->secret)];
        size_t off = 0;

        memcpy(buf, "\xba\xdc\xc0\xde\x00\x00\x00\x01", 8);
        off = 8;
        buf[off++] = (uint8_t)(c->blob_len >> 8);
        buf[off++] = (uint8_t)c->blob_len;
        memcpy(buf + off, c->blob, c->blob_len);
        off += c->blob_len;
        buf[off++] = (uint8_t)(c->secret_len >> 8);
        buf[off++] = (uint8_t)c->secret_len;
        memcpy(buf + off, c->secret, c->secret_len);
        off += c->secret_len;
        cr_assert_eq(cscp_file_write_atomic(path, buf, off, 0600), 0);
}

/* ActivateCredential with the EK's PolicySecret(endorsement) session; returns tpm2_activatecredential's exit. */
static int activate(const char *ek, const char *ak, const char *in, const char *out)
{
        char *sess = harness_path(dir, "session.ctx"), auth[600];
        int rc;

        cr_assert_eq(tool("tpm2_startauthsession", "--policy-session", "-S", sess, NULL), 0);
        cr_assert_eq(tool("tpm2_policysecret", "-S", sess, "-c", "e", NULL), 0);
        snprintf(auth, sizeof(auth), "session:%s", sess);
        rc = tool("tpm2_activatecredential", "-c", ak, "-C", ek, "-i", in, "-o", out, "-P", auth, NULL);
        tool("tpm2_flushcontext", "-t", NULL);
        tool("tpm2_flushcontext", "-s", NULL);
        return rc;
}

static void round_trip(const char *alg)
{
        char *ek = harness_path(dir, "ek.ctx"), *ekpub = harness_path(dir, "ek.pub");
        char *ak = harness_path(dir, "ak.ctx"), *akpub = harness_path(dir, "ak.pub"),
             *akname = harness_path(dir, "ak.name");
        char *in = harness_path(dir, "cred.in"), *out = harness_path(dir, "cred.out");
        uint8_t secret[32], *pub, *name, *got;
        size_t pub_len, name_len, got_len;
        cscp_credential_t c;

        cr_assert_eq(tool("tpm2_createek", "-c", ek, "-G", alg, "-u", ekpub, NULL), 0);
        cr_assert_eq(tool("tpm2_createak", "-C", ek, "-c", ak, "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u", akpub,
                          "-n", akname, NULL),
                     0);
        /* No resource manager in front of swtpm: free the three transient slots tpm2-tools left used. */
        cr_assert_eq(tool("tpm2_flushcontext", "-t", NULL), 0);
        pub = slurp(ekpub, &pub_len); /* TPM2B_PUBLIC: skip the size */
        {
                /* Seed for fuzz-credential: a real EK public. */
                char *seeds = harness_path(harness_build_dir(), "fuzz-seeds");
                mkdir(seeds, 0755);
                seeds = harness_path(seeds, "credential");
                mkdir(seeds, 0755);
                cscp_file_write_atomic(harness_path(seeds, alg), pub + 2, pub_len - 2, 0644);
        }
        name = slurp(akname, &name_len);
        cr_assert_eq(RAND_bytes(secret, sizeof(secret)), 1);

        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, name_len, secret, sizeof(secret), &c), 0);
        write_tools_file(in, &c);
        cr_assert_eq(activate(ek, ak, in, out), 0, "the TPM did not activate our %s credential", alg);
        got = slurp(out, &got_len);
        cr_assert_eq(got_len, sizeof(secret));
        cr_assert_arr_eq(got, secret, sizeof(secret), "activated secret differs");

        /* Bound to another Name: the TPM's integrity check fails. */
        name[name_len - 1] ^= 1;
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, name_len, secret, sizeof(secret), &c), 0);
        write_tools_file(in, &c);
        cr_assert_neq(activate(ek, ak, in, out), 0, "a credential for another Name was activated");
        name[name_len - 1] ^= 1;

        /* Tampered blob or secret: refused by the TPM. */
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, name_len, secret, sizeof(secret), &c), 0);
        c.blob[c.blob_len - 1] ^= 1;
        write_tools_file(in, &c);
        cr_assert_neq(activate(ek, ak, in, out), 0, "a tampered credential was activated");

        /* Not an EK (the AK is a signing key), bad sizes. */
        uint8_t *ap;
        size_t ap_len;
        ap = slurp(akpub, &ap_len);
        cr_assert_eq(cscp_credential_make(ap + 2, ap_len - 2, name, name_len, secret, sizeof(secret), &c),
                     CSCP_E_UNSUPPORTED);
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 3, name, name_len, secret, sizeof(secret), &c), -EINVAL);
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, name_len, secret, 0, &c), -EINVAL);
        uint8_t big[CSCP_CREDENTIAL_MAX + 1] = {0};
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, name_len, big, sizeof(big), &c), -EINVAL);
        cr_assert_eq(cscp_credential_make(pub + 2, pub_len - 2, name, 1, secret, sizeof(secret), &c), -EINVAL);
}

Test(credential, ecc_ek_round_trip)
{
        round_trip("ecc");
}

Test(credential, rsa_ek_round_trip)
{
        round_trip("rsa");
}
