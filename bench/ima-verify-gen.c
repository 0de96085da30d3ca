/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ima-verify-gen: a synthetic IMA measurement list that a TPM agrees with,
 * for bench/ima-verify.
 *
 * Appends N ima-ng entries (binary_runtime_measurements format, little-endian:
 * u32 PCR, SHA-1 template hash, u32 name length, "ima-ng", u32 template data
 * length, template data = u32 40, "sha256:" NUL file digest, u32 length, file
 * name NUL) to FILE, and extends PCR 10 of the TPM with each entry the way the
 * kernel does since Linux 5.8: every allocated bank with that bank's hash of
 * the template data. The list then replays to the TPM's PCR 10 (given that
 * the list and PCR 10 agreed before).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#define IMA_PCR   10
#define MAX_COUNT 10000000UL
#define NAME_FMT  "/usr/lib/cscp-bench/synthetic/file-%08" PRIu64

static const EVP_MD *md_of(TPMI_ALG_HASH alg)
{
        switch (alg) {
        case TPM2_ALG_SHA1:
                return EVP_sha1();
        case TPM2_ALG_SHA256:
                return EVP_sha256();
        case TPM2_ALG_SHA384:
                return EVP_sha384();
        case TPM2_ALG_SHA512:
                return EVP_sha512();
        default:
                return NULL;
        }
}

static void put32le(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

/* The banks with PCR 10 allocated, as one TPML_DIGEST_VALUES skeleton. */
static int banks_of(ESYS_CONTEXT *ctx, TPML_DIGEST_VALUES *ret)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;

        rc = Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS) {
                fprintf(stderr, "ima-verify-gen: GetCapability(PCRS): 0x%08x\n", rc);
                return -EIO;
        }
        memset(ret, 0, sizeof(*ret));
        for (uint32_t i = 0; i < cap->data.assignedPCR.count; i++) {
                const TPMS_PCR_SELECTION *s = &cap->data.assignedPCR.pcrSelections[i];

                if (s->sizeofSelect < 2 || !(s->pcrSelect[IMA_PCR / 8] & (1u << (IMA_PCR % 8))) || !md_of(s->hash))
                        continue;
                if (ret->count == TPM2_NUM_PCR_BANKS)
                        break;
                ret->digests[ret->count++].hashAlg = s->hash;
        }
        Esys_Free(cap);
        if (ret->count == 0) {
                fprintf(stderr, "ima-verify-gen: the TPM has no SHA-1/2 bank with PCR %d\n", IMA_PCR);
                return -ENOENT;
        }
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: ima-verify-gen --tcti CONF --out FILE --count N [--first K]\n"
                "Appends N synthetic ima-ng entries (binary_runtime_measurements format) to FILE and\n"
                "extends PCR %d of the TPM at CONF with each, in every allocated SHA-1/SHA-2 bank, as\n"
                "the kernel does; entry k measures /usr/lib/cscp-bench/synthetic/file-<k, 8 digits>\n"
                "with file digest SHA-256(k as 8 little-endian bytes).\n"
                "\n"
                "  --tcti CONF     the TPM (e.g. swtpm:path=/tmp/tpm.sock); a TPM without a resource\n"
                "                  manager is fine (no objects are loaded)\n"
                "  --out FILE      the list, created if missing, appended to otherwise\n"
                "  --count N       entries to add, 1..%lu\n"
                "  --first K       number of the first entry (default 0; use the count so far when\n"
                "                  appending, so names stay unique)\n"
                "  -h, --help      this text\n"
                "\n"
                "The list and the TPM's PCR %d must agree before (both empty: a fresh TPM and no file).\n"
                "Exit status: 0 done, 1 error, 2 usage error.\n",
                IMA_PCR, MAX_COUNT, IMA_PCR);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"tcti", required_argument, NULL, 't'},  {"out", required_argument, NULL, 'o'},
                {"count", required_argument, NULL, 'n'}, {"first", required_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},        {},
        };
        const char *tcti_conf = NULL, *out = NULL;
        unsigned long long count = 0, first = 0;
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *ctx = NULL;
        TPML_DIGEST_VALUES banks;
        FILE *f = NULL;
        char *end;
        int c, ret = 1;
        TSS2_RC rc;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        tcti_conf = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'n':
                case 'f': {
                        unsigned long long v;

                        errno = 0;
                        v = strtoull(optarg, &end, 10);
                        if (errno || *end || optarg[0] < '0' || optarg[0] > '9' ||
                            (c == 'n' && (v < 1 || v > MAX_COUNT)) || (c == 'f' && v > UINT32_MAX)) {
                                fprintf(stderr, "ima-verify-gen: --%s: '%s' is out of range\n",
                                        c == 'n' ? "count" : "first", optarg);
                                return 2;
                        }
                        if (c == 'n')
                                count = v;
                        else
                                first = v;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc || !tcti_conf || !out || count == 0) {
                fprintf(stderr, "ima-verify-gen: --tcti, --out and --count are required (see --help)\n");
                return 2;
        }

        rc = Tss2_TctiLdr_Initialize(tcti_conf, &tcti);
        if (rc != TSS2_RC_SUCCESS) {
                fprintf(stderr, "ima-verify-gen: TCTI %s: 0x%08x\n", tcti_conf, rc);
                return 1;
        }
        rc = Esys_Initialize(&ctx, tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                fprintf(stderr, "ima-verify-gen: Esys_Initialize: 0x%08x\n", rc);
                goto out;
        }
        if (banks_of(ctx, &banks) < 0)
                goto out;
        f = fopen(out, "abe");
        if (!f) {
                fprintf(stderr, "ima-verify-gen: %s: %s\n", out, strerror(errno));
                goto out;
        }

        for (uint64_t k = first; k < first + count; k++) {
                uint8_t data[4 + 8 + 32 + 4 + 64], entry[4 + 20 + 4 + 6 + 4 + sizeof(data)], idx[8];
                char name[64];
                size_t name_len, dlen = 0, elen = 0;
                unsigned int sha1_len = 20;
                int nl = snprintf(name, sizeof(name), NAME_FMT, k);

                if (nl < 0 || (size_t)nl >= sizeof(name))
                        goto out;
                name_len = (size_t)nl + 1; /* with its NUL */
                /* d-ng: "sha256:" NUL digest; the digest stands for the file's content */
                for (int i = 0; i < 8; i++)
                        idx[i] = (uint8_t)(k >> (8 * i));
                put32le(data, 8 + 32);
                memcpy(data + 4, "sha256:\0", 8);
                if (EVP_Digest(idx, sizeof(idx), data + 12, NULL, EVP_sha256(), NULL) != 1)
                        goto out;
                dlen = 4 + 8 + 32;
                put32le(data + dlen, (uint32_t)name_len);
                memcpy(data + dlen + 4, name, name_len);
                dlen += 4 + name_len;

                put32le(entry, IMA_PCR);
                if (EVP_Digest(data, dlen, entry + 4, &sha1_len, EVP_sha1(), NULL) != 1)
                        goto out;
                put32le(entry + 24, 6);
                memcpy(entry + 28, "ima-ng", 6);
                put32le(entry + 34, (uint32_t)dlen);
                memcpy(entry + 38, data, dlen);
                elen = 38 + dlen;

                for (uint32_t b = 0; b < banks.count; b++) {
                        unsigned int len;

                        if (EVP_Digest(data, dlen, (uint8_t *)&banks.digests[b].digest, &len,
                                       md_of(banks.digests[b].hashAlg), NULL) != 1)
                                goto out;
                }
                rc = Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + IMA_PCR, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &banks);
                if (rc != TSS2_RC_SUCCESS) {
                        fprintf(stderr, "ima-verify-gen: PCR_Extend: 0x%08x\n", rc);
                        goto out;
                }
                if (fwrite(entry, 1, elen, f) != elen) {
                        fprintf(stderr, "ima-verify-gen: %s: %s\n", out, strerror(errno));
                        goto out;
                }
        }
        if (fflush(f) != 0) {
                fprintf(stderr, "ima-verify-gen: %s: %s\n", out, strerror(errno));
                goto out;
        }
        ret = 0;
out:
        if (f && fclose(f) != 0 && ret == 0) {
                fprintf(stderr, "ima-verify-gen: %s: %s\n", out, strerror(errno));
                ret = 1;
        }
        Esys_Finalize(&ctx);
        Tss2_TctiLdr_Finalize(&tcti);
        return ret;
}
