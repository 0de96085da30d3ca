/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container challenges end to end, server side: a real swtpm as the host TPM
 * behind a real tpm2-abrmd (attestd holds a TPM context for its whole life;
 * vtpmd opens the host TPM per operation; swtpm serves one connection at a
 * time, so both go through abrmd), the real vtpmd with its own swtpm vTPMs,
 * the real attestd, and a raw client (cscp_conn_roundtrip). Checks the raw
 * Evidence fields only; verification claims are tested with the verifier.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "cel.h"
#include "client.h"
#include "core.h"
#include "error.h"
#include "eventlog.h"
#include "frame.h"
#include "harness.h"
#include "rig.h"
#include "merkle.h"
#include "pcr.h"
#include "quote.h"
#include "util.h"

#define TOOL_MS     60000
#define TABRMD_TCTI "tabrmd:bus_type=session"
#define CTR_A       "ctr-a"
#define CTR_B       "ctr-b"

/* The rig (tests/helpers/rig.c): host swtpm + tpm2-abrmd + vtpmd + attestd. */
static void setup(void)
{
        rig_setup(NULL);
        rig_create_container(CTR_A);
        rig_create_container(CTR_B);
}

/* ---- the client ---------------------------------------------------------------- */

/* A Challenge for the host PCRs 0-7, 10, 11, 15 (set by challenge()). */
typedef harness_challenge_t req_spec_t;

/* Sends one Challenge; returns the answer (Evidence or Error; the caller frees) and the nonce used. */
static Cscp__Frame *challenge(cscp_conn_t *c, const req_spec_t *spec, uint8_t nonce[32])
{
        req_spec_t s = *spec;

        s.host_pcrs = "sha256:0-7,10,11,15";
        return harness_challenge(c, &s, nonce);
}

static Cscp__ErrorCode error_of(const Cscp__Frame *f)
{
        return f->body_case == CSCP__FRAME__BODY_ERROR ? f->error->code : CSCP__ERROR_CODE__ERR_UNSPECIFIED;
}

static const Cscp__Log *find_log(const Cscp__Evidence *ev, Cscp__LogKind k)
{
        for (size_t i = 0; i < ev->n_logs; i++)
                if (ev->logs[i]->kind == k)
                        return ev->logs[i];
        return NULL;
}

static TPMS_ATTEST attest_of(const Cscp__Quote *q)
{
        TPMS_ATTEST a;
        size_t off = 0;

        memset(&a, 0, sizeof(a));
        cr_assert_eq(Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest.data, q->attest.len, &off, &a), TSS2_RC_SUCCESS);
        cr_assert_eq(off, q->attest.len, "trailing bytes after TPMS_ATTEST");
        return a;
}

/* data holds exactly `count` whole CEL-TLV records (it parses on its own, nothing left over). */
static void assert_whole_records(const ProtobufCBinaryData *data, uint64_t *ret_count)
{
        size_t start = 0, len = 0;
        uint64_t count = 0;

        int r = cscp_eventlog_slice(data->data, data->len, CSCP_EVENTLOG_CEL_TLV, 0, 0, &start, &len, &count);

        cr_assert_eq(r, 0, "the log (%zu bytes) does not parse as CEL-TLV: %s", data->len, cscp_strerror(r));
        cr_assert_eq(start, 0);
        cr_assert_eq(len, data->len, "bytes after the last whole record (%zu of %zu)", len, data->len);
        *ret_count = count;
}

/*
 * The bytes a file holds from record `from` on, as the server should have cut them: whole records (a CEL-TLV
 * slice from record N > 0 does not parse on its own: its recnums start at N, a reader resumes there), returns
 * how many.
 */
static uint64_t assert_file_slice(const char *path, uint64_t from, const ProtobufCBinaryData *got)
{
        size_t len = 0, s_start = 0, s_len = 0;
        uint64_t count = 0;
        uint8_t *file = (uint8_t *)harness_slurp(path, &len);

        cr_assert(file, "cannot read %s", path);
        cr_assert_eq(cscp_eventlog_slice(file, len, CSCP_EVENTLOG_CEL_TLV, from, 0, &s_start, &s_len, &count), 0);
        /* Logs are read after the quotes: they may run ahead, never behind; here nothing was appended since. */
        cr_assert_eq(got->len, s_len, "%s from record %llu: %zu bytes sent, the file has %zu", path,
                     (unsigned long long)from, got->len, s_len);
        cr_assert(got->len == 0 || memcmp(got->data, file + s_start, s_len) == 0, "%s: bytes differ", path);
        return count;
}

/* ---- tests ------------------------------------------------------------------- */

/* One suite (criterion 2.4 leaks a little in its runner with two); the start-up test needs no rig. */
TestSuite(attestd_container, .fini = rig_teardown, .timeout = 300);

Test(attestd_container, evidence_carries_both_quotes_bound_by_the_leaf, .init = setup)
{
        req_spec_t spec = {.container = CTR_A,
                           .container_pcrs = "sha256:0-23",
                           .kinds = {CSCP__LOG_KIND__LOG_CONTAINER_CEL, CSCP__LOG_KIND__LOG_HOST_CEL,
                                     CSCP__LOG_KIND__LOG_BOOT, CSCP__LOG_KIND__LOG_IMA, CSCP__LOG_KIND__LOG_SYSTEMD_CEL,
                                     CSCP__LOG_KIND__LOG_HOST_PROC_CEL},
                           .n_logs = 6};
        Vtpmd__VtpmResponse *st = rig_status(CTR_A);
        const Vtpmd__Instance *inst = st->status->instance;
        uint8_t nonce[32], leaf[32], root[32], ek_sha[32];
        cscp_merkle_hash_t path[CSCP_MERKLE_MAX_DEPTH];
        const Cscp__Evidence *ev;
        const Cscp__Log *clog, *hlog;
        TPMS_ATTEST ca, ha;
        TPM2B_NAME vak;
        uint64_t n_ctr = 0, n_host = 0, n_later = 0;
        Cscp__Frame *resp;
        cscp_conn_t *c;

        rig_start_attestd(NULL);
        c = rig_connect();
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "no evidence: %s",
                     resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "?");
        ev = resp->evidence;
        cr_assert_str_eq(ev->container_id, CTR_A);
        cr_assert_eq(ev->nonce.len, 32);
        cr_assert_eq(memcmp(ev->nonce.data, nonce, 32), 0);
        cr_assert(ev->host_quote && ev->host_quote->attest.len && ev->host_quote->signature.len &&
                  ev->host_quote->ak_public.len && ev->host_quote->n_pcrs == 11);
        cr_assert(ev->container_quote && ev->container_quote->attest.len && ev->container_quote->signature.len &&
                  ev->container_quote->ak_public.len);
        cr_assert_eq(ev->container_quote->n_pcrs, 24, "container PCR values: %zu", ev->container_quote->n_pcrs);
        cr_assert(ev->vtpm_ek_certificate.len > 0, "no vTPM EK certificate");

        /* The container quote's extraData is the challenger's nonce, as given. */
        ca = attest_of(ev->container_quote);
        cr_assert_eq(ca.type, TPM2_ST_ATTEST_QUOTE);
        cr_assert_eq(ca.extraData.size, 32);
        cr_assert_eq(memcmp(ca.extraData.buffer, nonce, 32), 0, "container quote not over the nonce");

        /* The vAK that signed it is the one vtpmd bound (its Name), the vEK is the one the bind record hashes. */
        cr_assert_eq(
                cscp_tpm_public_name(ev->container_quote->ak_public.data, ev->container_quote->ak_public.len, &vak), 0);
        cr_assert_eq(vak.size, inst->ak_name.len);
        cr_assert_eq(memcmp(vak.name, inst->ak_name.data, vak.size), 0, "vAK Name differs from vtpmd's");
        cr_assert(ev->vtpm_ek_public.len > 0, "no vTPM EK public");
        EVP_Digest(ev->vtpm_ek_public.data, ev->vtpm_ek_public.len, ek_sha, NULL, EVP_sha256(), NULL);
        cr_assert_eq(inst->ek_sha256.len, 32);
        cr_assert_eq(memcmp(ek_sha, inst->ek_sha256.data, 32), 0, "vEK public does not hash to vtpmd's ek_sha256");

        /* The host quote's extraData is the Merkle root over leaf(nonce, id, container attest, vAK Name). */
        cr_assert_eq(cscp_merkle_leaf(TPM2_ALG_SHA256, nonce, 32, CTR_A, ev->container_quote->attest.data,
                                      ev->container_quote->attest.len, vak.name, vak.size, leaf),
                     0);
        cr_assert(ev->host_batch, "no batch proof");
        cr_assert_leq(ev->host_batch->n_siblings, CSCP_MERKLE_MAX_DEPTH);
        for (size_t i = 0; i < ev->host_batch->n_siblings; i++) {
                cr_assert_eq(ev->host_batch->siblings[i].len, 32);
                memcpy(path[i], ev->host_batch->siblings[i].data, 32);
        }
        cr_assert_eq(cscp_merkle_root_from_proof(TPM2_ALG_SHA256, leaf, ev->host_batch->leaf_index,
                                                 ev->host_batch->leaf_count, path, ev->host_batch->n_siblings, root),
                     0);
        ha = attest_of(ev->host_quote);
        cr_assert_eq(ha.extraData.size, 32);
        cr_assert_eq(memcmp(ha.extraData.buffer, root, 32), 0, "host quote not over the Merkle root of the leaf");

        /* Logs: the container log and the host CEL from event 0, whole records; absent files left out. */
        clog = find_log(ev, CSCP__LOG_KIND__LOG_CONTAINER_CEL);
        hlog = find_log(ev, CSCP__LOG_KIND__LOG_HOST_CEL);
        cr_assert(clog && hlog, "container or host CEL log missing");
        cr_assert_eq(clog->offset, 0);
        cr_assert_eq(hlog->offset, 0);
        assert_whole_records(&clog->data, &n_ctr);
        assert_whole_records(&hlog->data, &n_host);
        cr_assert_geq(n_ctr, 7, "container log: %llu records", (unsigned long long)n_ctr);
        cr_assert_geq(n_host, 2, "host log: %llu records (two vtpm-bind)", (unsigned long long)n_host);
        assert_file_slice(inst->log, 0, &clog->data);
        assert_file_slice(harness_path(rig.state, "host.log"), 0, &hlog->data);
        cr_assert_null(find_log(ev, CSCP__LOG_KIND__LOG_BOOT), "a boot log that does not exist was sent");
        cr_assert_null(find_log(ev, CSCP__LOG_KIND__LOG_IMA));
        cr_assert_null(find_log(ev, CSCP__LOG_KIND__LOG_SYSTEMD_CEL));
        cr_assert_null(find_log(ev, CSCP__LOG_KIND__LOG_HOST_PROC_CEL));
        cscp__frame__free_unpacked(resp, NULL);

        /* From later offsets: exactly the records from there on, on the same connection. */
        spec = (req_spec_t){.container = CTR_A,
                            .container_pcrs = "sha256:0-23",
                            .kinds = {CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                            .offsets = {1, 3},
                            .n_logs = 2};
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "no evidence: %s",
                     resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "?");
        ev = resp->evidence;
        cr_assert_eq(ev->n_logs, 2);
        cr_assert_eq(ev->logs[0]->kind, CSCP__LOG_KIND__LOG_HOST_CEL, "logs not in request order");
        clog = find_log(ev, CSCP__LOG_KIND__LOG_CONTAINER_CEL);
        hlog = find_log(ev, CSCP__LOG_KIND__LOG_HOST_CEL);
        cr_assert_eq(hlog->offset, 1);
        cr_assert_eq(clog->offset, 3);
        n_later = assert_file_slice(harness_path(rig.state, "host.log"), 1, &hlog->data);
        cr_assert_eq(n_later, n_host - 1);
        n_later = assert_file_slice(inst->log, 3, &clog->data);
        cr_assert_eq(n_later, n_ctr - 3);
        cscp__frame__free_unpacked(resp, NULL);

        /* At the end: an empty log from there. */
        spec.offsets[0] = n_host;
        spec.offsets[1] = n_ctr;
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);
        cr_assert_eq(find_log(resp->evidence, CSCP__LOG_KIND__LOG_HOST_CEL)->data.len, 0);
        cr_assert_eq(find_log(resp->evidence, CSCP__LOG_KIND__LOG_CONTAINER_CEL)->data.len, 0);
        cscp__frame__free_unpacked(resp, NULL);
        /* A host log offset past its end (the host rebooted, the log started over): the whole log, offset 0. */
        spec.offsets[0] = n_host + 5;
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "host log offset past its end: %d", error_of(resp));
        hlog = find_log(resp->evidence, CSCP__LOG_KIND__LOG_HOST_CEL);
        cr_assert_eq(hlog->offset, 0);
        cr_assert_eq(assert_file_slice(harness_path(rig.state, "host.log"), 0, &hlog->data), n_host);
        cscp__frame__free_unpacked(resp, NULL);
        spec.offsets[0] = 0;
        spec.offsets[1] = n_ctr + 5;
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_BAD_REQUEST, "container log offset past its end: %d",
                     error_of(resp));
        cr_assert(strstr(resp->error->message, "past the end"), "%s", resp->error->message);
        cscp__frame__free_unpacked(resp, NULL);

        /* Another container's evidence: its own quote and log, never A's. */
        spec = (req_spec_t){.container = CTR_B,
                            .container_pcrs = "sha256:0-23",
                            .kinds = {CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                            .n_logs = 1};
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);
        cr_assert_str_eq(resp->evidence->container_id, CTR_B);
        cr_assert_eq(cscp_tpm_public_name(resp->evidence->container_quote->ak_public.data,
                                          resp->evidence->container_quote->ak_public.len, &vak),
                     0);
        cr_assert_neq(memcmp(vak.name, inst->ak_name.data, vak.size), 0, "B's quote signed by A's vAK");
        {
                Vtpmd__VtpmResponse *stb = rig_status(CTR_B);
                assert_file_slice(stb->status->instance->log, 0,
                                  &find_log(resp->evidence, CSCP__LOG_KIND__LOG_CONTAINER_CEL)->data);
                vtpmd__vtpm_response__free_unpacked(stb, NULL);
        }
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
        vtpmd__vtpm_response__free_unpacked(st, NULL);
        rig_stop_vtpmd();
}

Test(attestd_container, bad_and_unknown_requests_get_clear_errors, .init = setup)
{
        uint8_t nonce[32];
        Cscp__Frame *resp;
        cscp_conn_t *c;
        struct {
                req_spec_t spec;
                Cscp__ErrorCode code;
                const char *what;
        } cases[] = {
                {{.container = "no-such-ctr", .container_pcrs = "sha256:0-7"},
                 CSCP__ERROR_CODE__ERR_NOT_FOUND,
                 "unknown"},
                {{.container = "../etc", .container_pcrs = "sha256:0-7"}, CSCP__ERROR_CODE__ERR_BAD_REQUEST, "bad id"},
                {{.container = CTR_A}, CSCP__ERROR_CODE__ERR_BAD_REQUEST, "no container_pcrs"},
                {{.container_pcrs = "sha256:0-7"}, CSCP__ERROR_CODE__ERR_BAD_REQUEST, "container_pcrs, no id"},
                {{.kinds = {CSCP__LOG_KIND__LOG_CONTAINER_CEL}, .n_logs = 1},
                 CSCP__ERROR_CODE__ERR_BAD_REQUEST,
                 "container log of the host"},
                {{.kinds = {CSCP__LOG_KIND__LOG_HOST_CEL, CSCP__LOG_KIND__LOG_HOST_CEL}, .n_logs = 2},
                 CSCP__ERROR_CODE__ERR_BAD_REQUEST,
                 "a log twice"},
                {{.kinds = {(Cscp__LogKind)99}, .n_logs = 1}, CSCP__ERROR_CODE__ERR_UNSUPPORTED, "unknown kind"},
        };

        rig_start_attestd(NULL);
        c = rig_connect();
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                resp = challenge(c, &cases[i].spec, nonce);
                cr_assert_eq(error_of(resp), cases[i].code, "%s: got %d (%s)", cases[i].what, error_of(resp),
                             resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "evidence");
                cscp__frame__free_unpacked(resp, NULL);
        }
        /* The connection still answers a good challenge after all of them. */
        resp = challenge(c, &(req_spec_t){.container = CTR_A, .container_pcrs = "sha256:0-7"}, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE);
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
}

/* A log that exists but cannot be read is an internal error naming the file (a directory stands in). */
Test(attestd_container, unreadable_log_is_named, .init = setup)
{
        char *bad = harness_path(rig.dir, "systemd-log-dir");
        char *extra[] = {"--systemd-log", bad, NULL};
        req_spec_t spec = {.kinds = {CSCP__LOG_KIND__LOG_SYSTEMD_CEL}, .n_logs = 1};
        uint8_t nonce[32];
        Cscp__Frame *resp;
        cscp_conn_t *c;

        cr_assert_eq(mkdir(bad, 0700), 0);
        rig_start_attestd(extra);
        c = rig_connect();
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_INTERNAL);
        cr_assert(strstr(resp->error->message, bad), "message does not name the file: %s", resp->error->message);
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
}

static void fingerprint_hex(const char *pem, char out[65])
{
        FILE *f = fopen(pem, "r");
        X509 *x;
        unsigned char *der = NULL, md[32];
        unsigned int mdlen = 0;
        int n;

        cr_assert(f);
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        cr_assert(x);
        n = i2d_X509(x, &der);
        cr_assert_gt(n, 0);
        cr_assert_eq(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);
        X509_free(x);
        cscp_hex_encode(md, 32, out);
}

static void write_acl(const char *path, const char *text)
{
        cr_assert_eq(cscp_file_write_atomic(path, text, strlen(text), 0600), 0);
}

/* Three challenges: host, A, B; each answered with evidence (1) or refused with ERR_PERMISSION_DENIED (0). */
static void assert_acl(int host_ok, int a_ok, int b_ok)
{
        const req_spec_t specs[3] = {
                {.kinds = {CSCP__LOG_KIND__LOG_HOST_CEL}, .n_logs = 1},
                {.container = CTR_A,
                 .container_pcrs = "sha256:0-7",
                 .kinds = {CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                 .n_logs = 1},
                {.container = CTR_B,
                 .container_pcrs = "sha256:0-7",
                 .kinds = {CSCP__LOG_KIND__LOG_CONTAINER_CEL},
                 .n_logs = 1},
        };
        const int want[3] = {host_ok, a_ok, b_ok};
        cscp_conn_t *c = rig_connect();
        uint8_t nonce[32];

        for (size_t i = 0; i < 3; i++) {
                Cscp__Frame *resp = challenge(c, &specs[i], nonce);
                if (want[i])
                        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "challenge %zu refused: %s", i,
                                     resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "?");
                else {
                        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_PERMISSION_DENIED, "challenge %zu: %d", i,
                                     error_of(resp));
                        cr_assert_null(strstr(resp->error->message, "ctr-"), "the refusal names a container: %s",
                                       resp->error->message);
                }
                cscp__frame__free_unpacked(resp, NULL);
        }
        /* Enrollment uses the host TPM: only a client allowed the host may ask for it. */
        {
                Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
                Cscp__EnrollRequest er = CSCP__ENROLL_REQUEST__INIT;
                char err[512];

                er.version = CSCP_PROTOCOL_VERSION;
                req.body_case = CSCP__FRAME__BODY_ENROLL_REQUEST;
                req.enroll_request = &er;
                cr_assert_eq(cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err)), 0, "%s", err);
                if (host_ok)
                        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_ENROLL_INFO);
                else
                        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_PERMISSION_DENIED, "enroll: %d",
                                     error_of(resp));
                cscp__frame__free_unpacked(resp, NULL);
        }
        /* Unknown containers get the same refusal as existing ones: nothing leaks. */
        if (!want[1] && !want[2]) {
                Cscp__Frame *resp =
                        challenge(c, &(req_spec_t){.container = "no-such-ctr", .container_pcrs = "sha256:0-7"}, nonce);
                cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_PERMISSION_DENIED);
                cscp__frame__free_unpacked(resp, NULL);
        }
        cscp_conn_free(c);
}

Test(attestd_container, acl_isolates_containers_and_host, .init = setup)
{
        char fp[65], text[512], *acl = harness_path(rig.dir, "acl");
        char *extra[] = {"--acl", acl, NULL};

        fingerprint_hex(harness_path(rig.pki, "client.pem"), fp);

        /* Only container A. */
        snprintf(text, sizeof(text), "# challenger of A\n%s container:" CTR_A "\n", fp);
        write_acl(acl, text);
        rig_start_attestd(extra);
        assert_acl(0, 1, 0);
        rig_stop_attestd();

        /* Only the host (colon form of the fingerprint, upper case). */
        {
                char colon[96];
                size_t k = 0;
                for (size_t i = 0; i < 64; i += 2) {
                        colon[k++] = (char)(fp[i] >= 'a' ? fp[i] - 32 : fp[i]);
                        colon[k++] = (char)(fp[i + 1] >= 'a' ? fp[i + 1] - 32 : fp[i + 1]);
                        if (i < 62)
                                colon[k++] = ':';
                }
                colon[k] = '\0';
                snprintf(text, sizeof(text), "%s host\n", colon);
        }
        write_acl(acl, text);
        rig_start_attestd(extra);
        assert_acl(1, 0, 0);
        rig_stop_attestd();

        /* Everything: host on one line, every container on another. */
        snprintf(text, sizeof(text), "%s host\n\n%s container:*   # all\n", fp, fp);
        write_acl(acl, text);
        rig_start_attestd(extra);
        assert_acl(1, 1, 1);
        rig_stop_attestd();

        /* Another client's fingerprint: nothing. */
        write_acl(acl, "0000000000000000000000000000000000000000000000000000000000000000 host container:*\n");
        rig_start_attestd(extra);
        assert_acl(0, 0, 0);
}

Test(attestd_container, vtpmd_down_is_a_clear_error_and_attestd_keeps_serving, .init = setup)
{
        req_spec_t cspec = {.container = CTR_A, .container_pcrs = "sha256:0-7"};
        req_spec_t hspec = {.kinds = {CSCP__LOG_KIND__LOG_HOST_CEL}, .n_logs = 1};
        uint8_t nonce[32];
        Cscp__Frame *resp;
        cscp_conn_t *c;

        rig_start_attestd(NULL);
        harness_stop(&rig.vd, SIGTERM, 20000);
        rig.vd.pid = 0;
        rig_kill_leftovers();
        c = rig_connect();
        resp = challenge(c, &cspec, nonce);
        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_INTERNAL, "got %d", error_of(resp));
        cr_assert(strstr(resp->error->message, "vtpmd") && strstr(resp->error->message, rig.sock), "message: %s",
                  resp->error->message);
        cscp__frame__free_unpacked(resp, NULL);
        resp = challenge(c, &hspec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "host challenge after vtpmd went away: %s",
                     resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "?");
        cr_assert(find_log(resp->evidence, CSCP__LOG_KIND__LOG_HOST_CEL), "host CEL missing");
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
        cr_assert(harness_alive(&rig.ad.proc), "attestd died");
}

#define N_PAR 6

static void *par_challenge(void *arg)
{
        unsigned *leaf_count = arg;
        cscp_conn_t *c = rig_connect();
        uint8_t nonce[32];
        Cscp__Frame *resp = challenge(c, &(req_spec_t){.container = CTR_A, .container_pcrs = "sha256:0-7"}, nonce);

        *leaf_count = resp->body_case == CSCP__FRAME__BODY_EVIDENCE && resp->evidence->host_batch
                              ? resp->evidence->host_batch->leaf_count
                              : 0;
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
        return NULL;
}

Test(attestd_container, max_batch_1_quotes_each_challenge_alone, .init = setup)
{
        char *extra[] = {"--max-batch", "1", NULL};
        pthread_t t[N_PAR];
        unsigned counts[N_PAR];

        rig_start_attestd(extra);
        for (size_t i = 0; i < N_PAR; i++)
                cr_assert_eq(pthread_create(&t[i], NULL, par_challenge, &counts[i]), 0);
        for (size_t i = 0; i < N_PAR; i++) {
                pthread_join(t[i], NULL);
                cr_assert_eq(counts[i], 1, "challenge %zu: batch of %u with --max-batch 1", i, counts[i]);
        }
}

/* Start-up refusals: no TPM or vtpmd needed, attestd must stop before it listens. */
static void assert_refused(char *const *opts, const char *needle)
{
        char *argv[24];
        size_t n = 0;
        int code = -1;
        char *o = NULL, *e = NULL;

        argv[n++] = harness_path(harness_build_dir(), "attestd");
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--state-dir";
        argv[n++] = harness_path(rig.dir, "st");
        for (; *opts && n < 23; opts++)
                argv[n++] = *opts;
        argv[n] = NULL;
        cr_assert_eq(harness_run(argv, 30000, &code, &o, &e), 0);
        cr_assert_neq(code, 0, "attestd started with a bad configuration");
        cr_assert(strstr(e, needle) || strstr(o, needle), "expected '%s' in:\n%s%s", needle, o, e);
        free(o);
        free(e);
}

Test(attestd_container, bad_acl_and_options_refused_at_start, .init = rig_setup_pki)
{
        char *acl = harness_path(rig.dir, "acl");
        char *cert = harness_path(rig.pki, "server.pem"), *key = harness_path(rig.pki, "server-key.pem"),
             *ca = harness_path(rig.pki, "ca.pem");

        write_acl(acl, "# ok\n0000000000000000000000000000000000000000000000000000000000000000 host\nnot-a-fp host\n");
        {
                char *opts[] = {"--cert", cert, "--key", key, "--client-ca", ca, "--acl", acl, NULL};
                assert_refused(opts, "line 3");
        }
        write_acl(acl, "0000000000000000000000000000000000000000000000000000000000000000 container:../x\n");
        {
                char *opts[] = {"--cert", cert, "--key", key, "--client-ca", ca, "--acl", acl, NULL};
                assert_refused(opts, "line 1");
        }
        write_acl(acl, "0000000000000000000000000000000000000000000000000000000000000000 host\n");
        {
                char *opts[] = {"--insecure-plaintext", "--acl", acl, NULL};
                assert_refused(opts, "--insecure-plaintext");
        }
        {
                char *opts[] = {"--cert", cert, "--key", key, "--no-client-auth", "--acl", acl, NULL};
                assert_refused(opts, "--no-client-auth");
        }
        {
                char *opts[] = {"--insecure-plaintext", "--max-batch", "0", NULL};
                assert_refused(opts, "--max-batch");
        }
        {
                char *opts[] = {"--cert", cert, "--key", key, "--client-ca", ca, "--acl", harness_path(rig.dir, "none"),
                                NULL};
                assert_refused(opts, "--acl");
        }
}

/* Writes a CEL-TLV log of n records of `size`-byte CM_TLV values (sha256 digests of the content). */
static void write_big_cel(const char *path, size_t n, size_t size)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA256, 0};
        uint8_t *value = calloc(1, size), *all = NULL;
        size_t all_len = 0;

        cr_assert(value);
        for (size_t i = 0; i < n; i++) {
                cscp_cm_field_value_t f[] = {{CSCP_CM_F_EVENT, "bulk", 4}, {CSCP_CM_F_VALUE, value, size}};
                cscp_event_digest_t d[4];
                size_t nd = 0, cl = 0, rl = 0;
                uint8_t *content = NULL, *rec = NULL;

                value[0] = (uint8_t)i;
                cr_assert_eq(cscp_cm_encode(CSCP_CM_CONTAINER, f, 2, &content, &cl), 0);
                cr_assert_eq(cscp_cm_digests(content, cl, banks, d, &nd), 0);
                cr_assert_eq(cscp_cel_tlv_encode(i, 15, false, d, nd, CSCP_CEL_CM_TLV, content, cl, &rec, &rl), 0);
                all = realloc(all, all_len + rl);
                cr_assert(all);
                memcpy(all + all_len, rec, rl);
                all_len += rl;
                free(content);
                free(rec);
        }
        cr_assert_eq(cscp_file_write_atomic(path, all, all_len, 0644), 0);
        free(all);
        free(value);
}

/* Logs that do not fit one Evidence frame (4 MiB): ERR_TOO_LARGE saying to ask from a later offset; from there it
 * fits. */
Test(attestd_container, oversized_evidence_asks_for_a_later_offset, .init = setup)
{
        char *big = harness_path(rig.dir, "big.cel");
        char *extra[] = {"--host-proc-log", big, NULL};
        req_spec_t spec = {.kinds = {CSCP__LOG_KIND__LOG_HOST_PROC_CEL}, .n_logs = 1};
        uint8_t nonce[32];
        Cscp__Frame *resp;
        cscp_conn_t *c;

        write_big_cel(big, 80, 64 * 1024); /* about 5 MiB */
        rig_start_attestd(extra);
        c = rig_connect();
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(error_of(resp), CSCP__ERROR_CODE__ERR_TOO_LARGE, "got %d", error_of(resp));
        cr_assert(strstr(resp->error->message, "later offset"), "%s", resp->error->message);
        cscp__frame__free_unpacked(resp, NULL);
        spec.offsets[0] = 40;
        resp = challenge(c, &spec, nonce);
        cr_assert_eq(resp->body_case, CSCP__FRAME__BODY_EVIDENCE, "from event 40: %s",
                     resp->body_case == CSCP__FRAME__BODY_ERROR ? resp->error->message : "?");
        cr_assert_eq(find_log(resp->evidence, CSCP__LOG_KIND__LOG_HOST_PROC_CEL)->offset, 40);
        cr_assert_eq(assert_file_slice(big, 40, &find_log(resp->evidence, CSCP__LOG_KIND__LOG_HOST_PROC_CEL)->data),
                     40);
        cscp__frame__free_unpacked(resp, NULL);
        cscp_conn_free(c);
}
