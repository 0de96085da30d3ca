/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host root of trust (include/cscp/rot.h): a TPM (lib/tpm/) or an Intel
 * TDX guest (lib/tdx/guest.c) behind one set of operations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>

#define LOGMODULE rot
#include "error.h"
#include "log.h"
#include "pcr.h"
#include "rot.h"

struct cscp_rot {
        cscp_rot_kind_t kind;
        /* tpm */
        cscp_tpm_t *tpm;
        char *tcti;
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS];
        size_t n_banks; /* 0: not read yet (the allocation changes only at a TPM reset) */
        /* tdx: copies of the configured paths (NULL members = the Linux defaults) */
        cscp_tdx_guest_paths_t paths;
        char *tsm_root, *mr_root, *ccel_table, *ccel_data;
        bool registers_only;
};

int cscp_rot_kind_from_string(const char *s, cscp_rot_kind_t *ret)
{
        if (!s || !ret)
                return -EINVAL;
        if (strcmp(s, "tpm") == 0)
                *ret = CSCP_ROT_TPM;
        else if (strcmp(s, "tdx") == 0)
                *ret = CSCP_ROT_TDX;
        else
                return -EINVAL;
        return 0;
}

const char *cscp_rot_kind_to_string(cscp_rot_kind_t kind)
{
        switch (kind) {
        case CSCP_ROT_TPM:
                return "tpm";
        case CSCP_ROT_TDX:
                return "tdx";
        default:
                return "?";
        }
}

int cscp_rot_opt(int c, const char *arg, cscp_rot_kind_t *kind, cscp_tdx_guest_paths_t *paths, char *err,
                 size_t err_len)
{
        switch (c) {
        case CSCP_ROT_OPT_ROT:
                if (cscp_rot_kind_from_string(arg, kind) < 0) {
                        snprintf(err, err_len, "--rot must be tpm or tdx, not '%s'", arg ? arg : "");
                        return -EINVAL;
                }
                return 1;
        case CSCP_ROT_OPT_TSM_ROOT:
                paths->tsm_root = arg;
                return 1;
        case CSCP_ROT_OPT_MR_ROOT:
                paths->mr_root = arg;
                return 1;
        case CSCP_ROT_OPT_CCEL_TABLE:
                paths->ccel_table = arg;
                return 1;
        case CSCP_ROT_OPT_CCEL_DATA:
                paths->ccel_data = arg;
                return 1;
        default:
                return 0;
        }
}

int cscp_rot_opts_check(cscp_rot_kind_t kind, const cscp_tdx_guest_paths_t *paths, char *err, size_t err_len)
{
        if (kind != CSCP_ROT_TDX && (paths->tsm_root || paths->mr_root || paths->ccel_table || paths->ccel_data)) {
                snprintf(err, err_len, "--tsm-root, --tdx-mr-root, --ccel-table and --ccel-data need --rot tdx");
                return -EINVAL;
        }
        return 0;
}

static int dup_opt(const char *in, char **ret)
{
        *ret = NULL;
        if (!in)
                return 0;
        *ret = strdup(in);
        return *ret ? 0 : -ENOMEM;
}

int cscp_rot_open(const cscp_rot_config_t *cfg, cscp_rot_t **ret)
{
        cscp_rot_t *rot;
        char why[512] = "";
        int r;

        if (!cfg || !ret)
                return -EINVAL;
        if (cfg->kind != CSCP_ROT_TPM && cfg->kind != CSCP_ROT_TDX)
                return -EINVAL;
        rot = calloc(1, sizeof(*rot));
        if (!rot)
                return -ENOMEM;
        rot->kind = cfg->kind;
        if (cfg->kind == CSCP_ROT_TPM) {
                r = dup_opt(cfg->tcti, &rot->tcti);
                if (r < 0)
                        goto fail;
                r = cscp_tpm_open(cfg->tcti, &rot->tpm);
                if (r < 0)
                        goto fail;
        } else {
                if ((r = dup_opt(cfg->paths.tsm_root, &rot->tsm_root)) < 0 ||
                    (r = dup_opt(cfg->paths.mr_root, &rot->mr_root)) < 0 ||
                    (r = dup_opt(cfg->paths.ccel_table, &rot->ccel_table)) < 0 ||
                    (r = dup_opt(cfg->paths.ccel_data, &rot->ccel_data)) < 0)
                        goto fail;
                rot->paths = (cscp_tdx_guest_paths_t){.tsm_root = rot->tsm_root,
                                                      .mr_root = rot->mr_root,
                                                      .ccel_table = rot->ccel_table,
                                                      .ccel_data = rot->ccel_data};
                rot->registers_only = cfg->registers_only;
                if (rot->registers_only) {
                        uint8_t v[CSCP_TDX_RTMR_SIZE];

                        /* RTMR2 is the one a host log extends: readable means the registers are here. */
                        r = cscp_tdx_guest_rtmr_read(&rot->paths, 2, v);
                        if (r < 0)
                                snprintf(why, sizeof(why), "no TDX guest here: %s/rtmr2:sha384: %s",
                                         rot->paths.mr_root ? rot->paths.mr_root : CSCP_TDX_MR_ROOT, cscp_strerror(r));
                } else
                        r = cscp_tdx_guest_probe(&rot->paths, why, sizeof(why));
                if (r < 0) {
                        if (why[0])
                                log_error("%s", why); /* "no TDX guest here: <path>: <why>" */
                        else
                                log_error("no TDX guest here: %s", cscp_strerror(r));
                        r = CSCP_E_UNSUPPORTED;
                        goto fail;
                }
                rot->banks[0] = TPM2_ALG_SHA384;
                rot->n_banks = 1;
        }
        *ret = rot;
        return 0;
fail:
        cscp_rot_free(rot);
        return r;
}

void cscp_rot_free(cscp_rot_t *rot)
{
        if (!rot)
                return;
        cscp_tpm_free(rot->tpm);
        free(rot->tcti);
        free(rot->tsm_root);
        free(rot->mr_root);
        free(rot->ccel_table);
        free(rot->ccel_data);
        free(rot);
}

cscp_rot_kind_t cscp_rot_kind(const cscp_rot_t *rot)
{
        return rot->kind;
}

cscp_tpm_t *cscp_rot_tpm(cscp_rot_t *rot)
{
        return rot && rot->kind == CSCP_ROT_TPM ? rot->tpm : NULL;
}

uint16_t cscp_rot_merkle_alg(const cscp_rot_t *rot)
{
        return rot->kind == CSCP_ROT_TDX ? TPM2_ALG_SHA512 : TPM2_ALG_SHA256;
}

size_t cscp_rot_data_len(const cscp_rot_t *rot)
{
        return rot->kind == CSCP_ROT_TDX ? 64 : 32;
}

/* --- quotes ----------------------------------------------------------------------------------- */

int cscp_rot_quote(cscp_rot_t *rot, const uint8_t *data, size_t len, const TPML_PCR_SELECTION *sel,
                   cscp_rot_quote_t *ret)
{
        char err[512] = "";
        int r;

        if (!rot || !data || !ret)
                return -EINVAL;
        *ret = (cscp_rot_quote_t){.kind = rot->kind};
        if (len != cscp_rot_data_len(rot))
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM) {
                if (!sel)
                        return -EINVAL;
                return cscp_tpm_quote(rot->tpm, data, len, sel, &ret->tpm);
        }
        if (rot->registers_only)
                return CSCP_E_UNSUPPORTED;
        r = cscp_tdx_guest_quote(&rot->paths, data, &ret->tdx, &ret->tdx_len, err, sizeof(err));
        if (r < 0) {
                log_debug("TDX quote: %s", err[0] ? err : cscp_strerror(r));
                ret->tdx = NULL;
                ret->tdx_len = 0;
        }
        return r;
}

static void *dup_bytes(const void *p, size_t len)
{
        void *d = malloc(len ? len : 1);

        if (d && len)
                memcpy(d, p, len);
        return d;
}

int cscp_rot_quote_dup(const cscp_rot_quote_t *in, cscp_rot_quote_t *out)
{
        if (!in || !out)
                return -EINVAL;
        *out = (cscp_rot_quote_t){.kind = in->kind};
        if (in->kind == CSCP_ROT_TDX) {
                out->tdx = dup_bytes(in->tdx, in->tdx_len);
                if (!out->tdx)
                        return -ENOMEM;
                out->tdx_len = in->tdx_len;
                return 0;
        }
        out->tpm.attest = dup_bytes(in->tpm.attest, in->tpm.attest_len);
        out->tpm.sig = dup_bytes(in->tpm.sig, in->tpm.sig_len);
        out->tpm.pcrs = dup_bytes(in->tpm.pcrs, in->tpm.n_pcrs * sizeof(*in->tpm.pcrs));
        if (!out->tpm.attest || !out->tpm.sig || !out->tpm.pcrs) {
                cscp_rot_quote_clear(out);
                return -ENOMEM;
        }
        out->tpm.attest_len = in->tpm.attest_len;
        out->tpm.sig_len = in->tpm.sig_len;
        out->tpm.n_pcrs = in->tpm.n_pcrs;
        return 0;
}

void cscp_rot_quote_clear(cscp_rot_quote_t *q)
{
        if (!q)
                return;
        cscp_tpm_quote_clear(&q->tpm);
        free(q->tdx);
        *q = (cscp_rot_quote_t){0};
}

/* --- registers ---------------------------------------------------------------------------------- */

static int tpm_banks(cscp_rot_t *rot)
{
        if (rot->n_banks > 0)
                return 0;
        return cscp_tpm_pcr_banks(rot->tpm, rot->banks, CSCP_EVENT_MAX_DIGESTS, &rot->n_banks);
}

int cscp_rot_banks(cscp_rot_t *rot, uint16_t *ret, size_t max, size_t *ret_n)
{
        int r;

        if (!rot || !ret || !ret_n)
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM && (r = tpm_banks(rot)) < 0)
                return r;
        if (rot->n_banks > max)
                return CSCP_E_TOO_BIG;
        memcpy(ret, rot->banks, rot->n_banks * sizeof(*ret));
        *ret_n = rot->n_banks;
        return 0;
}

/* TDVF's PCR -> RTMR mapping (rot.h): RTMR index 0..3, or -EINVAL. */
static int pcr_to_rtmr(unsigned pcr)
{
        if (pcr == 1 || pcr == 7)
                return 0;
        if (pcr >= 2 && pcr <= 6)
                return 1;
        if (pcr >= 8 && pcr <= 15)
                return 2;
        return -EINVAL;
}

int cscp_rot_log_index(const cscp_rot_t *rot, unsigned pcr, uint32_t *ret)
{
        if (!rot)
                return -EINVAL;
        return cscp_rot_kind_log_index(rot->kind, pcr, ret);
}

int cscp_rot_kind_log_index(cscp_rot_kind_t kind, unsigned pcr, uint32_t *ret)
{
        int rtmr;

        if (!ret || (kind != CSCP_ROT_TPM && kind != CSCP_ROT_TDX))
                return -EINVAL;
        if (kind == CSCP_ROT_TPM) {
                if (pcr >= CSCP_PCR_COUNT)
                        return -EINVAL;
                *ret = pcr;
                return 0;
        }
        rtmr = pcr_to_rtmr(pcr);
        if (rtmr < 0)
                return rtmr;
        *ret = (uint32_t)rtmr + 1; /* the CCEL's numbering: 1..4 = RTMR0..3 */
        return 0;
}

int cscp_rot_extend(cscp_rot_t *rot, unsigned pcr, const cscp_event_digest_t *digests, size_t n)
{
        if (!rot || (n && !digests) || n == 0)
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM) {
                TPML_DIGEST_VALUES v = {0};
                TSS2_RC rc;
                int r;

                if (pcr >= CSCP_PCR_COUNT)
                        return -EINVAL;
                r = tpm_banks(rot);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < n; k++) {
                        bool allocated = false;

                        if (digests[k].size != cscp_hash_alg_size(digests[k].alg) ||
                            digests[k].size > sizeof(v.digests[0].digest))
                                return -EINVAL;
                        for (size_t b = 0; b < rot->n_banks; b++)
                                allocated |= rot->banks[b] == digests[k].alg;
                        for (size_t j = 0; j < v.count; j++)
                                if (v.digests[j].hashAlg == digests[k].alg)
                                        return -EINVAL; /* two digests for one bank */
                        if (!allocated)
                                continue;
                        if (v.count == TPM2_NUM_PCR_BANKS)
                                return -EINVAL;
                        v.digests[v.count].hashAlg = digests[k].alg;
                        memcpy(&v.digests[v.count].digest, digests[k].digest, digests[k].size);
                        v.count++;
                }
                if (v.count == 0)
                        return -EINVAL; /* no digest for any bank of this TPM */
                /* Every bank in one command: a crash cannot leave the banks apart. */
                rc = Esys_PCR_Extend(cscp_tpm_esys(rot->tpm), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                     ESYS_TR_NONE, &v);
                if (rc != TSS2_RC_SUCCESS) {
                        log_debug("PCR_Extend of PCR %u (%u banks): 0x%08x", pcr, (unsigned)v.count, (unsigned)rc);
                        return CSCP_E_TPM;
                }
                return 0;
        }
        {
                const cscp_event_digest_t *d = NULL;
                int rtmr = pcr_to_rtmr(pcr);

                if (rtmr < 0)
                        return rtmr;
                if (rtmr < 2)
                        return -EPERM; /* RTMR0 and RTMR1 belong to the firmware */
                for (size_t k = 0; k < n; k++)
                        if (digests[k].alg == TPM2_ALG_SHA384) {
                                if (d || digests[k].size != CSCP_TDX_RTMR_SIZE)
                                        return -EINVAL;
                                d = &digests[k];
                        }
                if (!d)
                        return -EINVAL; /* an RTMR is SHA-384 only */
                return cscp_tdx_guest_rtmr_extend(&rot->paths, (unsigned)rtmr, d->digest);
        }
}

int cscp_rot_read(cscp_rot_t *rot, unsigned pcr, uint16_t alg, uint8_t *ret, size_t *ret_len)
{
        if (!rot || !ret || !ret_len)
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM) {
                TPML_PCR_SELECTION sel = {.count = 1};
                cscp_pcr_value_t *vals = NULL;
                size_t n = 0;
                int r;

                if (pcr >= CSCP_PCR_COUNT)
                        return -EINVAL;
                if (cscp_hash_alg_size(alg) == 0)
                        return CSCP_E_UNSUPPORTED;
                sel.pcrSelections[0].hash = alg;
                sel.pcrSelections[0].sizeofSelect = 3;
                sel.pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
                r = cscp_tpm_pcr_read(rot->tpm, &sel, &vals, &n);
                if (r < 0)
                        return r;
                if (n != 1 || vals[0].hash_alg != alg || vals[0].index != pcr || vals[0].size > CSCP_EVENT_MAX_DIGEST) {
                        free(vals);
                        return n == 0 ? CSCP_E_UNSUPPORTED : CSCP_E_TPM; /* none: the bank is not allocated */
                }
                memcpy(ret, vals[0].value, vals[0].size);
                *ret_len = vals[0].size;
                free(vals);
                return 0;
        }
        {
                int rtmr = pcr_to_rtmr(pcr), r;

                if (rtmr < 0)
                        return rtmr;
                if (alg != TPM2_ALG_SHA384)
                        return CSCP_E_UNSUPPORTED;
                r = cscp_tdx_guest_rtmr_read(&rot->paths, (unsigned)rtmr, ret);
                if (r < 0)
                        return r;
                *ret_len = CSCP_TDX_RTMR_SIZE;
                return 0;
        }
}

int cscp_rot_firmware_log(cscp_rot_t *rot, uint8_t **ret, size_t *ret_len)
{
        char err[512] = "";
        int r;

        if (!rot || !ret || !ret_len)
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM)
                return -ENOENT;
        r = cscp_tdx_guest_ccel_read(&rot->paths, ret, ret_len, err, sizeof(err));
        if (r < 0)
                log_debug("CCEL: %s", err[0] ? err : cscp_strerror(r));
        return r;
}

int cscp_rot_describe(cscp_rot_t *rot, char *buf, size_t len)
{
        int n;

        if (!rot || !buf || len == 0)
                return -EINVAL;
        if (rot->kind == CSCP_ROT_TPM) {
                char banks[64] = "";
                size_t used = 0;
                int r = tpm_banks(rot);

                if (r < 0)
                        return r;
                for (size_t i = 0; i < rot->n_banks && used < sizeof(banks); i++) {
                        const char *name = cscp_hash_alg_name(rot->banks[i]);
                        int k = snprintf(banks + used, sizeof(banks) - used, "%s%s", i ? "," : "", name ? name : "?");
                        if (k < 0)
                                break;
                        used += (size_t)k;
                }
                n = snprintf(buf, len, "tpm: %s, banks %s", rot->tcti ? rot->tcti : "tctildr default",
                             rot->n_banks ? banks : "none");
        } else
                n = snprintf(buf, len, "tdx: configfs-tsm %s/report, RTMRs %s, CCEL %s (table %s), bank sha384",
                             rot->paths.tsm_root ? rot->paths.tsm_root : CSCP_TDX_TSM_ROOT,
                             rot->paths.mr_root ? rot->paths.mr_root : CSCP_TDX_MR_ROOT,
                             rot->paths.ccel_data ? rot->paths.ccel_data : CSCP_TDX_CCEL_DATA,
                             rot->paths.ccel_table ? rot->paths.ccel_table : CSCP_TDX_CCEL_TABLE);
        return n < 0 ? -EIO : (size_t)n >= len ? CSCP_E_TOO_BIG : 0;
}
