/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp policy check: appraise measurement lists offline against an appraisal
 * policy; cscp policy validate: check a policy or measurement policy file.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define LOGMODULE cscp
#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "cscp/policy.h"
#include "commands.h"
#include "log.h"

#define MAX_LOGS 64

static void usage(FILE *f)
{
        fprintf(f, "Usage: cscp policy check --policy FILE --log [FORMAT:]FILE [--log ...] [--json]\n"
                   "       cscp policy validate (--policy FILE | --measurement-policy FILE)\n"
                   "\n"
                   "check     replays each log and holds every event to the appraisal policy (boot log reference\n"
                   "          values, IMA allowlist and signatures, container configs, layers, args, env,\n"
                   "          runtimes); prints every violation with the log, event number and byte offset.\n"
                   "          FORMAT (tcg, ima, ima-binary, cel-tlv, cel-json) is detected when not given.\n"
                   "validate  loads a policy and reports the first error with its line and column.\n"
                   "\n"
                   "Options:\n"
                   "  --policy FILE              appraisal policy (YAML; docs/policy.md)\n"
                   "  --measurement-policy FILE  measurement policy (YAML; validate only)\n"
                   "  --log [FORMAT:]FILE        a measurement list (repeatable, up to 64)\n"
                   "  --json                     JSON output\n"
                   "  -h, --help                 this text\n"
                   "\n"
                   "Exit status: 0 the logs satisfy the policy (or the policy is valid), 1 violations, 2 error.\n");
}

enum { OPT_POLICY = 0x100, OPT_MPOLICY, OPT_LOG, OPT_JSON };

static const struct option long_opts[] = {
        {"policy", required_argument, NULL, OPT_POLICY},
        {"measurement-policy", required_argument, NULL, OPT_MPOLICY},
        {"log", required_argument, NULL, OPT_LOG},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

/* Appraises one log; returns 0, or 2 after printing an error. */
static int appraise_log(cscp_appraisal_t *a, const char *spec)
{
        cscp_eventlog_format_t fmt = CSCP_EVENTLOG_AUTO;
        const char *path = spec, *colon = strchr(spec, ':');
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t rp;
        int fd, r;

        if (colon) {
                char name[16];
                size_t n = (size_t)(colon - spec);
                if (n < sizeof(name)) {
                        memcpy(name, spec, n);
                        name[n] = '\0';
                        int f = cscp_eventlog_format_from_name(name);
                        if (f >= 0) {
                                fmt = (cscp_eventlog_format_t)f;
                                path = colon + 1;
                        }
                }
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "cscp policy: %s: %s\n", path, strerror(errno));
                return 2;
        }
        r = cscp_eventlog_open_fd(fd, fmt, NULL, NULL, &l);
        if (r < 0) {
                fprintf(stderr, "cscp policy: %s: %s\n", path,
                        r == CSCP_E_PROTO ? "empty, or not a log format this program knows (give FORMAT:)"
                                          : cscp_strerror(r));
                close(fd);
                return 2;
        }
        cscp_replay_init(&rp);
        r = cscp_appraisal_log(a, path, cscp_eventlog_format(l));
        while (r >= 0 && (r = cscp_eventlog_next(l, &ev)) > 0) {
                r = cscp_replay_extend(&rp, ev);
                if (r >= 0)
                        r = cscp_appraisal_event(a, ev);
        }
        if (r >= 0)
                r = cscp_appraisal_end_log(a, &rp);
        if (r < 0)
                fprintf(stderr, "cscp policy: %s: %s\n", path,
                        *cscp_eventlog_error(l) ? cscp_eventlog_error(l) : cscp_strerror(r));
        cscp_eventlog_free(l);
        close(fd);
        return r < 0 ? 2 : 0;
}

static int check(const char *policy, const char *const *logs, size_t n_logs, bool json)
{
        cscp_policy_t *p = NULL;
        cscp_appraisal_t *a = NULL;
        const cscp_violation_t *v;
        char err[512];
        size_t n = 0;
        int rc = 0;

        if (cscp_policy_load(policy, &p, err, sizeof(err)) < 0) {
                fprintf(stderr, "cscp policy: %s: %s\n", policy, err);
                return 2;
        }
        if (cscp_appraisal_new(p, &a) < 0) {
                cscp_policy_free(p);
                return 2;
        }
        for (size_t i = 0; i < n_logs && rc == 0; i++)
                rc = appraise_log(a, logs[i]);
        if (rc == 0) {
                v = cscp_appraisal_violations(a, &n);
                if (json) {
                        json_object *root = json_object_new_object(), *arr = json_object_new_array();
                        json_object_object_add(root, "verdict", json_object_new_string(n ? "violations" : "satisfied"));
                        for (size_t i = 0; i < n; i++) {
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "rule", json_object_new_string(v[i].rule));
                                json_object_object_add(o, "log", json_object_new_string(v[i].log));
                                json_object_object_add(o, "event", json_object_new_int64(v[i].event));
                                json_object_object_add(o, "offset", json_object_new_int64((int64_t)v[i].offset));
                                json_object_object_add(o, "detail", json_object_new_string(v[i].detail));
                                json_object_array_add(arr, o);
                        }
                        json_object_object_add(root, "violations", arr);
                        puts(json_object_to_json_string_ext(root,
                                                            JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                        json_object_put(root);
                } else {
                        printf("policy: %s (%zu log%s, %zu violation%s)\n", n ? "violated" : "satisfied", n_logs,
                               n_logs == 1 ? "" : "s", n, n == 1 ? "" : "s");
                        for (size_t i = 0; i < n; i++) {
                                if (v[i].event >= 0)
                                        printf("  FAIL %-22s %s event %lld at byte %llu: %s\n", v[i].rule, v[i].log,
                                               (long long)v[i].event, (unsigned long long)v[i].offset, v[i].detail);
                                else
                                        printf("  FAIL %-22s %s: %s\n", v[i].rule, v[i].log, v[i].detail);
                        }
                }
                rc = n ? 1 : 0;
        }
        cscp_appraisal_free(a);
        cscp_policy_free(p);
        if (fflush(stdout) != 0)
                return 2;
        return rc;
}

int cmd_policy(int argc, char **argv)
{
        const char *policy = NULL, *mpolicy = NULL, *logs[MAX_LOGS];
        size_t n_logs = 0;
        bool json = false, validate;
        char err[512];
        int c;

        if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "validate") != 0) {
                fprintf(stderr, "cscp policy: unknown subcommand '%s' (check, validate; see --help)\n", argv[1]);
                return 2;
        }
        validate = strcmp(argv[1], "validate") == 0;
        argc--;
        argv++;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_POLICY:
                        policy = optarg;
                        break;
                case OPT_MPOLICY:
                        mpolicy = optarg;
                        break;
                case OPT_LOG:
                        if (n_logs == MAX_LOGS) {
                                fprintf(stderr, "cscp policy: at most %d --log\n", MAX_LOGS);
                                return 2;
                        }
                        logs[n_logs++] = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cscp policy: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (validate) {
                if (!!policy == !!mpolicy) {
                        fprintf(stderr, "cscp policy validate: give exactly one of --policy, --measurement-policy\n");
                        return 2;
                }
                if (policy) {
                        cscp_policy_t *p;
                        if (cscp_policy_load(policy, &p, err, sizeof(err)) < 0) {
                                fprintf(stderr, "cscp policy: %s: %s\n", policy, err);
                                return 2;
                        }
                        cscp_policy_free(p);
                } else {
                        cscp_measure_policy_t *m;
                        if (cscp_measure_policy_load(mpolicy, &m, err, sizeof(err)) < 0) {
                                fprintf(stderr, "cscp policy: %s: %s\n", mpolicy, err);
                                return 2;
                        }
                        printf("backend %s, hashAlgorithm %s, %zu host process%s, container isolated: %s, "
                               "kubernetes pods: %s\n",
                               m->backend, cscp_hash_alg_name(m->hash_alg), m->n_processes,
                               m->n_processes == 1 ? "" : "es", m->container_isolated ? "yes" : "no",
                               m->kubernetes_pods ? "yes" : "no");
                        cscp_measure_policy_free(m);
                }
                printf("%s: valid\n", policy ? policy : mpolicy);
                return 0;
        }
        if (!policy || n_logs == 0) {
                fprintf(stderr, "cscp policy check: --policy FILE and at least one --log FILE are required\n");
                return 2;
        }
        return check(policy, logs, n_logs, json);
}
