/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp-bench: load generator for attestd.
 *
 * N threads share a budget of M challenges. Each thread keeps one connection
 * (or, with --no-reuse, opens one per challenge), sends a Challenge with a
 * fresh 32-byte nonce, and verifies the Evidence fully (cscp_evidence_verify).
 * Latency runs from just before the send to the end of verification.
 * Output: one line (or one JSON object) on stdout; exit 0 when every
 * challenge was trusted, 1 when any failed, 2 on usage errors.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cscp/client.h"
#include "cscp/error.h"
#include "cscp/evidence.h"
#include "cscp/frame.h"
#include "cscp/pcr.h"
#include "cscp/util.h"
#include "cscp/verdict.h"

#define BENCH_MAX_CONCURRENCY 1024
#define BENCH_MAX_COUNT       1000000UL
#define BENCH_DEFAULT_PCRS    "sha256:0-7,10"
#define BENCH_MAX_TIMEOUT     3600

typedef struct bench {
        cscp_client_opts_t opts;
        TPML_PCR_SELECTION pcrs;
        bool allow_sha1;
        bool reuse;
        uint8_t ak_name[sizeof(TPMU_NAME)]; /* the host AK pinned with --ak-name */
        size_t ak_name_len;
        size_t count;
        atomic_size_t next; /* tickets handed out */
        atomic_size_t ok;
        atomic_size_t failed;
        atomic_bool reported; /* first failure reason printed */
        double *lat_ms;       /* one slot per ticket; < 0: no answer */
        /* --connect-first: every thread connects, then all start together */
        bool connect_first;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t ready; /* threads connected (or failed to) */
        bool go;
} bench_t;

typedef struct worker {
        bench_t *b;
        pthread_t tid;
} worker_t;

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void report_once(bench_t *b, const char *what, const char *detail)
{
        if (atomic_exchange(&b->reported, true))
                return;
        fprintf(stderr, "cscp-bench: first failure: %s%s%s\n", what, detail && *detail ? ": " : "",
                detail ? detail : "");
}

static bool sel_has_sha1(const TPML_PCR_SELECTION *s)
{
        for (uint32_t i = 0; i < s->count; i++)
                if (s->pcrSelections[i].hash == TPM2_ALG_SHA1)
                        return true;
        return false;
}

/*
 * One challenge on an open connection. Returns 1 trusted, 0 answered but not
 * trusted, < 0 transport failure (the connection should be dropped).
 */
static int one_challenge(bench_t *b, cscp_conn_t *c, size_t ticket)
{
        Cscp__Frame req = CSCP__FRAME__INIT, *resp = NULL;
        Cscp__Challenge ch = CSCP__CHALLENGE__INIT;
        Cscp__PcrSelection **wire = NULL;
        size_t n_wire = 0;
        uint8_t nonce[CSCP_NONCE_DEFAULT];
        cscp_verdict_t v;
        cscp_expect_t want = {0};
        char err[256] = "";
        double t0;
        int r, ret;

        r = cscp_nonce_draw(nonce, sizeof(nonce));
        if (r < 0) {
                report_once(b, "nonce", cscp_strerror(r));
                return 0;
        }
        r = cscp_pcrsel_to_wire(&b->pcrs, &wire, &n_wire);
        if (r < 0) {
                report_once(b, "pcr selection", cscp_strerror(r));
                return 0;
        }
        ch.version = CSCP_PROTOCOL_VERSION;
        ch.nonce.data = nonce;
        ch.nonce.len = sizeof(nonce);
        ch.host_pcrs = wire;
        ch.n_host_pcrs = n_wire;
        req.body_case = CSCP__FRAME__BODY_CHALLENGE;
        req.challenge = &ch;

        t0 = now_ms();
        r = cscp_conn_roundtrip(c, &req, &resp, err, sizeof(err));
        cscp_pcrsel_wire_free(wire, n_wire);
        if (r < 0) {
                report_once(b, cscp_strerror(r), err);
                return r;
        }

        if (resp->body_case != CSCP__FRAME__BODY_EVIDENCE || !resp->evidence) {
                if (resp->body_case == CSCP__FRAME__BODY_ERROR && resp->error)
                        report_once(b, "server error", resp->error->message);
                else
                        report_once(b, "unexpected answer", NULL);
                ret = 0;
                goto done;
        }

        want.nonce = nonce;
        want.nonce_len = sizeof(nonce);
        want.host_pcrs = &b->pcrs;
        want.allow_sha1 = b->allow_sha1;
        if (b->ak_name_len) {
                want.host_ak_name = b->ak_name;
                want.host_ak_name_len = b->ak_name_len;
        }
        cscp_verdict_init(&v);
        r = cscp_evidence_verify(resp->evidence, &want, &v);
        if (r >= 0 && cscp_verdict_result(&v) == CSCP_VERDICT_TRUSTED)
                ret = 1;
        else {
                const cscp_claim_t *bad = NULL;

                for (size_t i = 0; i < v.n_claims; i++)
                        if (!v.claims[i].pass) {
                                bad = &v.claims[i];
                                break;
                        }
                if (r < 0)
                        report_once(b, "verify", cscp_strerror(r));
                else if (v.error)
                        report_once(b, "verify error", v.error);
                else if (bad)
                        report_once(b, bad->name, bad->detail);
                else
                        report_once(b, "verdict", cscp_verdict_result_name(cscp_verdict_result(&v)));
                ret = 0;
        }
        cscp_verdict_clear(&v);
done:
        b->lat_ms[ticket] = now_ms() - t0;
        cscp__frame__free_unpacked(resp, NULL);
        return ret;
}

static void *worker_main(void *arg)
{
        worker_t *w = arg;
        bench_t *b = w->b;
        cscp_conn_t *c = NULL;

        if (b->connect_first) {
                char err[256] = "";

                if (cscp_conn_open(&b->opts, &c, err, sizeof(err)) < 0) {
                        report_once(b, "connect", err);
                        c = NULL; /* the loop below tries again, and counts a failure if it fails again */
                }
                pthread_mutex_lock(&b->lock);
                b->ready++;
                pthread_cond_broadcast(&b->cond);
                while (!b->go)
                        pthread_cond_wait(&b->cond, &b->lock);
                pthread_mutex_unlock(&b->lock);
        }
        for (;;) {
                size_t ticket = atomic_fetch_add(&b->next, 1);
                char err[256] = "";
                int r;

                if (ticket >= b->count)
                        break;
                if (!c) {
                        r = cscp_conn_open(&b->opts, &c, err, sizeof(err));
                        if (r < 0) {
                                report_once(b, cscp_strerror(r), err);
                                atomic_fetch_add(&b->failed, 1);
                                c = NULL;
                                continue;
                        }
                }
                r = one_challenge(b, c, ticket);
                if (r > 0)
                        atomic_fetch_add(&b->ok, 1);
                else
                        atomic_fetch_add(&b->failed, 1);
                if (r < 0 || !b->reuse) {
                        cscp_conn_free(c);
                        c = NULL;
                }
        }
        cscp_conn_free(c);
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted[0..n). */
static double percentile(const double *sorted, size_t n, double p)
{
        size_t rank;

        if (n == 0)
                return 0.0;
        rank = (size_t)((p / 100.0) * (double)n + 0.999999999);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return sorted[rank - 1];
}

static void help(FILE *f)
{
        fprintf(f,
                "Usage: cscp-bench --server HOST:PORT [--ca FILE --cert FILE --key FILE | --insecure-plaintext]\n"
                "                  [--pcrs SEL] [--ak-name HEX] --concurrency N --count M [--no-reuse] [--timeout "
                "SEC]\n"
                "                  [--json]\n"
                "\n"
                "Load generator for attestd: N threads issue M challenges in total and verify\n"
                "every answer fully.\n"
                "\n"
                "  --server HOST:PORT     attestd address\n"
                "  --ca FILE              CA bundle the server certificate must chain to\n"
                "  --cert FILE, --key FILE  client certificate and key (mutual TLS)\n"
                "  --insecure-plaintext   no TLS (the server must be plaintext too)\n"
                "  --pcrs SEL             host PCR selection (default %s)\n"
                "  --ak-name HEX          the host AK Name to trust (pinned); without it every answer fails\n"
                "                         the claim host-ak-enrolled and counts as failed\n"
                "  --concurrency N        threads, 1..%d (default 1)\n"
                "  --count M              challenges in total, 1..%lu (default 100)\n"
                "  --no-reuse             a new connection for every challenge\n"
                "  --connect-first        every thread opens its connection (TLS handshake) first; the\n"
                "                         clock for per_s starts when all are connected, and connect_ms\n"
                "                         (the time that took) is printed too\n"
                "  --timeout SEC          connect, and wait for each answer, at most SEC, 1..%d (default 30;\n"
                "                         raise it when challenges queue behind a slow TPM)\n"
                "  --json                 print a JSON object instead of the summary line\n"
                "  --help                 this text\n"
                "\n"
                "Prints: concurrency=N count=M ok=K failed=F p50_ms=X p99_ms=Y per_s=Z connect_ms=C\n"
                "(latency from send to verified, over answered challenges; per_s = trusted\n"
                "answers per second of wall time; connect_ms = -1.0 without --connect-first)\n"
                "Exit status: 0 all trusted, 1 any failed, 2 usage error.\n",
                BENCH_DEFAULT_PCRS, BENCH_MAX_CONCURRENCY, BENCH_MAX_COUNT, BENCH_MAX_TIMEOUT);
}

static int parse_size(const char *s, unsigned long lo, unsigned long hi, unsigned long *ret)
{
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < lo || v > hi)
                return -ERANGE;
        *ret = v;
        return 0;
}

int main(int argc, char **argv)
{
        enum {
                OPT_CA = 0x100,
                OPT_CERT,
                OPT_KEY,
                OPT_PLAIN,
                OPT_PCRS,
                OPT_CONC,
                OPT_COUNT,
                OPT_NOREUSE,
                OPT_JSON,
                OPT_TIMEOUT,
                OPT_AK_NAME,
                OPT_CONNECT_FIRST
        };
        static const struct option longopts[] = {
                {"server", required_argument, NULL, 's'},
                {"ca", required_argument, NULL, OPT_CA},
                {"cert", required_argument, NULL, OPT_CERT},
                {"key", required_argument, NULL, OPT_KEY},
                {"insecure-plaintext", no_argument, NULL, OPT_PLAIN},
                {"pcrs", required_argument, NULL, OPT_PCRS},
                {"concurrency", required_argument, NULL, OPT_CONC},
                {"count", required_argument, NULL, OPT_COUNT},
                {"no-reuse", no_argument, NULL, OPT_NOREUSE},
                {"json", no_argument, NULL, OPT_JSON},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"ak-name", required_argument, NULL, OPT_AK_NAME},
                {"connect-first", no_argument, NULL, OPT_CONNECT_FIRST},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *pcrs = BENCH_DEFAULT_PCRS;
        unsigned long conc = 1, count = 100, timeout_s = 30;
        bool json = false;
        bench_t b;
        worker_t *workers = NULL;
        double *sorted = NULL, t0, elapsed, p50, p99, per_s, connect_ms = -1.0;
        size_t n_lat = 0, i, started = 0, ok, failed;
        int c, r, ret = 2;

        memset(&b, 0, sizeof(b));
        b.reuse = true;
        pthread_mutex_init(&b.lock, NULL);
        pthread_cond_init(&b.cond, NULL);
        while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        b.opts.server = optarg;
                        break;
                case OPT_CA:
                        b.opts.ca = optarg;
                        break;
                case OPT_CERT:
                        b.opts.cert = optarg;
                        break;
                case OPT_KEY:
                        b.opts.key = optarg;
                        break;
                case OPT_PLAIN:
                        b.opts.insecure_plaintext = true;
                        break;
                case OPT_PCRS:
                        pcrs = optarg;
                        break;
                case OPT_CONC:
                        if (parse_size(optarg, 1, BENCH_MAX_CONCURRENCY, &conc) < 0) {
                                fprintf(stderr, "cscp-bench: --concurrency must be 1..%d\n", BENCH_MAX_CONCURRENCY);
                                return 2;
                        }
                        break;
                case OPT_COUNT:
                        if (parse_size(optarg, 1, BENCH_MAX_COUNT, &count) < 0) {
                                fprintf(stderr, "cscp-bench: --count must be 1..%lu\n", BENCH_MAX_COUNT);
                                return 2;
                        }
                        break;
                case OPT_NOREUSE:
                        b.reuse = false;
                        break;
                case OPT_CONNECT_FIRST:
                        b.connect_first = true;
                        break;
                case OPT_AK_NAME:
                        if (cscp_hex_decode(optarg, b.ak_name, sizeof(b.ak_name), &b.ak_name_len) < 0 ||
                            b.ak_name_len < 2) {
                                fprintf(stderr, "cscp-bench: --ak-name: '%s' is not a TPM Name in hex\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_TIMEOUT:
                        if (parse_size(optarg, 1, BENCH_MAX_TIMEOUT, &timeout_s) < 0) {
                                fprintf(stderr, "cscp-bench: --timeout must be 1..%d\n", BENCH_MAX_TIMEOUT);
                                return 2;
                        }
                        b.opts.timeout_ms = (int)timeout_s * 1000;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        help(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cscp-bench: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (!b.opts.server) {
                fprintf(stderr, "cscp-bench: --server is required\n");
                return 2;
        }
        if (b.opts.insecure_plaintext && (b.opts.ca || b.opts.cert || b.opts.key)) {
                fprintf(stderr, "cscp-bench: --insecure-plaintext excludes --ca/--cert/--key\n");
                return 2;
        }
        if (!b.opts.insecure_plaintext && !b.opts.ca) {
                fprintf(stderr, "cscp-bench: --ca is required (or --insecure-plaintext)\n");
                return 2;
        }
        if (!b.opts.cert != !b.opts.key) {
                fprintf(stderr, "cscp-bench: --cert and --key go together\n");
                return 2;
        }
        r = cscp_pcrsel_parse(pcrs, &b.pcrs);
        if (r < 0) {
                fprintf(stderr, "cscp-bench: --pcrs '%s': %s\n", pcrs, cscp_strerror(r));
                return 2;
        }
        b.allow_sha1 = sel_has_sha1(&b.pcrs);
        b.count = count;
        atomic_init(&b.next, 0);
        atomic_init(&b.ok, 0);
        atomic_init(&b.failed, 0);
        atomic_init(&b.reported, false);

        /* A peer that hangs up must not kill the process. */
        signal(SIGPIPE, SIG_IGN);

        b.lat_ms = malloc(count * sizeof(double));
        workers = calloc(conc, sizeof(worker_t));
        if (!b.lat_ms || !workers) {
                fprintf(stderr, "cscp-bench: out of memory\n");
                goto free_mem;
        }
        for (i = 0; i < count; i++)
                b.lat_ms[i] = -1.0;

        t0 = now_ms();
        for (i = 0; i < conc; i++) {
                workers[i].b = &b;
                r = pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
                if (r != 0) {
                        fprintf(stderr, "cscp-bench: pthread_create: %s\n", strerror(r));
                        break;
                }
                started++;
        }
        if (b.connect_first) {
                pthread_mutex_lock(&b.lock);
                while (b.ready < started)
                        pthread_cond_wait(&b.cond, &b.lock);
                connect_ms = now_ms() - t0;
                t0 = now_ms();
                b.go = true;
                pthread_cond_broadcast(&b.cond);
                pthread_mutex_unlock(&b.lock);
        }
        for (i = 0; i < started; i++)
                pthread_join(workers[i].tid, NULL);
        elapsed = now_ms() - t0;
        if (started == 0)
                goto free_mem;

        /* Threads that never started leave their share to the others; nothing is lost. */
        ok = atomic_load(&b.ok);
        failed = atomic_load(&b.failed);

        sorted = malloc(count * sizeof(double));
        if (!sorted) {
                fprintf(stderr, "cscp-bench: out of memory\n");
                goto free_mem;
        }
        for (i = 0; i < count; i++)
                if (b.lat_ms[i] >= 0)
                        sorted[n_lat++] = b.lat_ms[i];
        qsort(sorted, n_lat, sizeof(double), cmp_double);
        p50 = percentile(sorted, n_lat, 50.0);
        p99 = percentile(sorted, n_lat, 99.0);
        per_s = elapsed > 0 ? (double)ok * 1000.0 / elapsed : 0.0;

        if (json)
                printf("{\"concurrency\":%lu,\"count\":%lu,\"ok\":%zu,\"failed\":%zu,\"p50_ms\":%.3f,"
                       "\"p99_ms\":%.3f,\"per_s\":%.1f,\"reuse\":%s,\"connect_ms\":%.1f}\n",
                       conc, count, ok, failed, p50, p99, per_s, b.reuse ? "true" : "false", connect_ms);
        else
                printf("concurrency=%lu count=%lu ok=%zu failed=%zu p50_ms=%.3f p99_ms=%.3f per_s=%.1f "
                       "connect_ms=%.1f\n",
                       conc, count, ok, failed, p50, p99, per_s, connect_ms);
        fflush(stdout);
        ret = (failed == 0 && ok == count) ? 0 : 1;

free_mem:
        pthread_cond_destroy(&b.cond);
        pthread_mutex_destroy(&b.lock);
        free(sorted);
        free(workers);
        free(b.lat_ms);
        return ret;
}
