/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vtpm-endpoint-client: N TPM2_Quote calls over one ESYS context (one TCTI)
 * with a transient ECC P-256 signing key, timing each Quote alone. Used by
 * bench/vtpm-endpoint to compare vtpmd's mediated endpoint (resource manager;
 * with lazy eviction the key stays loaded between this client's calls) with
 * swtpm's own socket. With several TCTIs (at most 4) the Quotes rotate
 * between them (A, B, A, B, ...; who goes first rotates too), so every path
 * sees the same load on a shared machine. Prints "n p50_us p99_us mean_us",
 * one line per TCTI, in the order given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

typedef struct path {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *ctx;
        ESYS_TR key;
        uint64_t *t;
        double mean;
} path_t;

static int path_open(path_t *p, const char *conf, unsigned n)
{
        TPM2B_SENSITIVE_CREATE in_s = {0};
        TPM2B_PUBLIC in_p = {
                .publicArea = {.type = TPM2_ALG_ECC,
                               .nameAlg = TPM2_ALG_SHA256,
                               .objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT |
                                                   TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                                   TPMA_OBJECT_SENSITIVEDATAORIGIN,
                               .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_NULL},
                                                        .scheme = {.scheme = TPM2_ALG_ECDSA,
                                                                   .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
                                                        .curveID = TPM2_ECC_NIST_P256,
                                                        .kdf = {.scheme = TPM2_ALG_NULL}}},
        };
        TPM2B_DATA outside = {0};
        TPML_PCR_SELECTION creation = {0};

        p->t = calloc(n, sizeof(*p->t));
        if (!p->t || Tss2_TctiLdr_Initialize(conf, &p->tcti) != TSS2_RC_SUCCESS ||
            Esys_Initialize(&p->ctx, p->tcti, NULL) != TSS2_RC_SUCCESS) {
                fprintf(stderr, "vtpm-endpoint-client: cannot reach %s\n", conf);
                return -1;
        }
        if (Esys_CreatePrimary(p->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in_s, &in_p,
                               &outside, &creation, &p->key, NULL, NULL, NULL, NULL) != TSS2_RC_SUCCESS) {
                fprintf(stderr, "vtpm-endpoint-client: CreatePrimary failed on %s\n", conf);
                return -1;
        }
        return 0;
}

static int quote(path_t *p, unsigned i)
{
        TPM2B_DATA qual = {.size = 32};
        TPML_PCR_SELECTION sel = {
                .count = 1, .pcrSelections = {{.hash = TPM2_ALG_SHA256, .sizeofSelect = 3, .pcrSelect = {0, 0x18, 0}}}};
        TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
        TPM2B_ATTEST *att = NULL;
        TPMT_SIGNATURE *sig = NULL;
        uint64_t t0;

        qual.buffer[0] = (uint8_t)i;
        t0 = now_us();
        if (Esys_Quote(p->ctx, p->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qual, &scheme, &sel, &att,
                       &sig) != TSS2_RC_SUCCESS) {
                fprintf(stderr, "vtpm-endpoint-client: Quote %u failed\n", i);
                return -1;
        }
        p->t[i] = now_us() - t0;
        p->mean += (double)p->t[i];
        free(att);
        free(sig);
        return 0;
}

static void path_close(path_t *p, unsigned n)
{
        Esys_FlushContext(p->ctx, p->key);
        Esys_Finalize(&p->ctx);
        Tss2_TctiLdr_Finalize(&p->tcti);
        qsort(p->t, n, sizeof(*p->t), cmp);
        printf("%u %llu %llu %.0f\n", n, (unsigned long long)p->t[n / 2],
               (unsigned long long)p->t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], p->mean / n);
        free(p->t);
}

int main(int argc, char **argv)
{
        path_t path[4] = {{0}};
        unsigned n, np = (unsigned)argc - 2;

        if (argc < 3 || argc > 6 || (n = (unsigned)strtoul(argv[argc - 1], NULL, 10)) < 1 || n > 100000) {
                fprintf(stderr, "Usage: vtpm-endpoint-client TCTI [TCTI2 [TCTI3 [TCTI4]]] N\n");
                return 2;
        }
        for (unsigned k = 0; k < np; k++)
                if (path_open(&path[k], argv[1 + k], n) < 0)
                        return 1;
        for (unsigned i = 0; i < n; i++)
                for (unsigned k = 0; k < np; k++)
                        if (quote(&path[(i + k) % np], i) < 0) /* who goes first rotates too */
                                return 1;
        for (unsigned k = 0; k < np; k++)
                path_close(&path[k], n);
        return 0;
}
