/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the TDX collateral parsers (lib/tdx/collateral.c):
 * every input goes to cscp_tdx_tcb_info_parse, cscp_tdx_qe_identity_parse
 * and cscp_tdx_sgx_ext_parse. A TCB info or QE identity that parses is then
 * evaluated (cscp_tdx_tcb_evaluate) against the fixture quotes (SPR_E4 v4 and
 * the v5 sample, their PCK certificates' SGX extensions) with the fixture QE
 * identity / TCB info as the other half, so the evaluation sees arbitrary
 * levels, module identities and masks.
 *
 * Seeds: tests/unit/test-tdx-collateral.c writes the three fixture responses
 * to <build>/fuzz-seeds/tdx-collateral/. Fixtures: $CSCP_FIXTURES/tdx/go-tdx-guest
 * (without them only the parsers run).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "tdx.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fx_quote {
        uint8_t *raw;
        size_t len;
        cscp_tdx_quote_t q;
        cscp_tdx_pck_ext_t ext;
        bool ok;
} fx_quote_t;

static fx_quote_t quotes[2];
static uint8_t *tcb_raw, *qe_raw;
static size_t tcb_len, qe_len;
static cscp_tdx_tcb_info_t fx_tcb;
static cscp_tdx_qe_identity_t fx_qe;
static bool have_fx_tcb, have_fx_qe;

static void load_fixtures(const char *dir)
{
        static const char *const names[2] = {"tdx_prod_quote_SPR_E4.dat", "quote_v5_sample.dat"};
        char path[4096], err[384];

        for (int i = 0; i < 2; i++) {
                fx_quote_t *f = &quotes[i];

                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (cscp_file_read(path, CSCP_TDX_QUOTE_MAX, &f->raw, &f->len) < 0)
                        continue;
                f->ok = cscp_tdx_quote_parse(f->raw, f->len, &f->q, err, sizeof(err)) == 0 &&
                        cscp_tdx_pck_ext_from_pem(f->q.pck_chain, f->q.pck_chain_len, &f->ext, err, sizeof(err)) == 0;
        }
        snprintf(path, sizeof(path), "%s/sample_tcbInfo_response", dir);
        if (cscp_file_read(path, CSCP_TDX_COLLATERAL_JSON_MAX, &tcb_raw, &tcb_len) == 0)
                have_fx_tcb = cscp_tdx_tcb_info_parse(tcb_raw, tcb_len, &fx_tcb, err, sizeof(err)) == 0;
        snprintf(path, sizeof(path), "%s/sample_qeIdentity_response", dir);
        if (cscp_file_read(path, CSCP_TDX_COLLATERAL_JSON_MAX, &qe_raw, &qe_len) == 0)
                have_fx_qe = cscp_tdx_qe_identity_parse(qe_raw, qe_len, &fx_qe, err, sizeof(err)) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *fx = getenv("CSCP_FIXTURES");
        char dir[4096];

        (void)argc;
        (void)argv;
        if (fx) {
                snprintf(dir, sizeof(dir), "%s/tdx/go-tdx-guest", fx);
                load_fixtures(dir);
        }
        return 0;
}

static void check_eval(const cscp_tdx_tcb_eval_t *r)
{
        /* a status, and a reason whenever it is not one Intel defines */
        if (strcmp(cscp_tdx_tcb_status_name(r->status), "?") == 0)
                abort();
        if ((r->status == CSCP_TDX_TCB_NO_MATCH || r->status == CSCP_TDX_TCB_MISMATCH) && r->why[0] == '\0' &&
            r->qe_why[0] == '\0')
                abort();
        if (r->qe_why[0] == '\0' || memchr(r->advisories, '\0', sizeof(r->advisories)) == NULL)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_tdx_tcb_info_t ti;
        cscp_tdx_qe_identity_t qe;
        cscp_tdx_pck_ext_t ext;
        cscp_tdx_tcb_eval_t r;
        uint8_t *copy;
        char err[384];
        int k;

        copy = fuzz_copy(data, size);
        if (!copy)
                return 0;

        k = cscp_tdx_tcb_info_parse(copy, size, &ti, err, sizeof(err));
        if (k < 0 && err[0] == '\0')
                abort(); /* every refusal says why */
        if (k == 0) {
                if (ti.body < copy || ti.body + ti.body_len > copy + size || ti.n_levels == 0)
                        abort();
                for (int i = 0; i < 2; i++)
                        if (quotes[i].ok && have_fx_qe) {
                                cscp_tdx_tcb_evaluate(&quotes[i].q, &quotes[i].ext, &ti, &fx_qe, &r);
                                check_eval(&r);
                        }
        }
        cscp_tdx_tcb_info_free(&ti);

        k = cscp_tdx_qe_identity_parse(copy, size, &qe, err, sizeof(err));
        if (k < 0 && err[0] == '\0')
                abort();
        if (k == 0) {
                if (qe.body < copy || qe.body + qe.body_len > copy + size || qe.n_levels == 0)
                        abort();
                for (int i = 0; i < 2; i++)
                        if (quotes[i].ok && have_fx_tcb) {
                                cscp_tdx_tcb_evaluate(&quotes[i].q, &quotes[i].ext, &fx_tcb, &qe, &r);
                                check_eval(&r);
                        }
        }
        cscp_tdx_qe_identity_free(&qe);

        k = cscp_tdx_sgx_ext_parse(copy, size, &ext, err, sizeof(err));
        if (k < 0 && err[0] == '\0')
                abort();
        free(copy);
        return 0;
}
