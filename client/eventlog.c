/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cscp eventlog show|replay: read any measurement list the chain of trust
 * rests on (TCG boot log, IMA list, CEL-TLV / CEL-JSON), print its events, or
 * replay it into PCR values printed exactly as tpm2_pcrread prints them.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define LOGMODULE cscp
#include "cscp/error.h"
#include "cscp/eventlog.h"
#include "cscp/util.h"
#include "commands.h"
#include "log.h"

#define CHECKPOINT_MAX (64u * 1024)

enum {
        OPT_FORMAT = 0x100,
        OPT_JSON,
        OPT_BANK,
        OPT_PCR,
        OPT_CHECKPOINT,
        OPT_MAX_RECORD,
        OPT_IMA_ENDIAN,
        OPT_NO_TEMPLATE_CHECK,
};

static const struct option long_opts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"json", no_argument, NULL, OPT_JSON},
        {"bank", required_argument, NULL, OPT_BANK},
        {"pcr", required_argument, NULL, OPT_PCR},
        {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
        {"max-record", required_argument, NULL, OPT_MAX_RECORD},
        {"ima-endian", required_argument, NULL, OPT_IMA_ENDIAN},
        {"no-template-check", no_argument, NULL, OPT_NO_TEMPLATE_CHECK},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: cscp eventlog show FILE [--format F] [--json]\n"
                   "       cscp eventlog replay FILE [--format F] [--bank ALG[,ALG...]] [--pcr N[,N...]] [--json]\n"
                   "                                 [--checkpoint FILE]\n"
                   "Reads a measurement list: the TCG PC Client boot log (binary_bios_measurements), a Linux\n"
                   "IMA list (ascii or binary_runtime_measurements), or a TCG Canonical Event Log (TLV, or\n"
                   "JSON incl. systemd's tpm2-measure.log). FILE '-' is standard input.\n"
                   "\n"
                   "  show     one line per event (index, register, type, digest, description), or JSON\n"
                   "  replay   the PCR values the log produces, printed as tpm2_pcrread prints them, so the\n"
                   "           two can be diffed; --json prints {\"sha256\": {\"10\": \"<hex>\"}, ...}\n"
                   "\n"
                   "Options:\n"
                   "  --format F            auto (default), tcg, ima, ima-binary, cel-tlv, cel-json\n"
                   "  --bank ALG[,ALG...]   replay: only these banks (sha1, sha256, sha384, sha512; default all\n"
                   "                        the log carries). For IMA lists only these banks' digests are computed\n"
                   "  --pcr N[,N...]        replay: only these PCRs (repeatable; default: every PCR the log extends)\n"
                   "  --checkpoint FILE     replay: resume from FILE if it exists (only the events after it are\n"
                   "                        read), then store the new state there (incremental replay of a log\n"
                   "                        that only grows, such as IMA's)\n"
                   "  --max-record BYTES    largest single record accepted (default 16777216)\n"
                   "  --ima-endian E        IMA binary lists: host (default), little (ima_canonical_fmt), big\n"
                   "  --no-template-check   IMA: do not recompute each entry's template hash\n"
                   "  --json                JSON output\n"
                   "  -h, --help            this text\n"
                   "\n"
                   "Errors name the event number and byte offset. Exit status: 0 ok, 2 error.\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
        va_list ap;

        fputs("cscp eventlog: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 2;
}

typedef struct args {
        const char *file;
        cscp_eventlog_format_t format;
        bool json;
        uint16_t banks[CSCP_EVENT_MAX_DIGESTS + 1]; /* 0-terminated; empty = all */
        uint32_t pcrs;
        const char *checkpoint;
        cscp_eventlog_opts_t opts;
} args_t;

static int parse_pcrs(const char *s, uint32_t *mask)
{
        char *copy = strdup(s), *save = NULL, *tok;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *end;
                unsigned long v = strtoul(tok, &end, 10);
                if (*tok == '\0' || *end != '\0' || v >= CSCP_PCR_COUNT) {
                        r = -EINVAL;
                        break;
                }
                *mask |= 1u << v;
        }
        free(copy);
        return r;
}

static int parse_banks(const char *s, uint16_t *banks)
{
        char *copy = strdup(s), *save = NULL, *tok;
        size_t n = 0;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        memset(banks, 0, (CSCP_EVENT_MAX_DIGESTS + 1) * sizeof(*banks));
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint16_t alg = cscp_hash_alg_from_name(tok);
                bool dup = false;
                for (size_t i = 0; i < n; i++)
                        dup = dup || banks[i] == alg;
                if (!alg || dup || n == CSCP_EVENT_MAX_DIGESTS) {
                        r = -EINVAL;
                        break;
                }
                banks[n++] = alg;
        }
        free(copy);
        return r < 0 || n == 0 ? -EINVAL : 0;
}

/* Parses options after the subcommand; returns -1 to continue, else an exit status. */
static int parse_args(int argc, char **argv, bool replay, args_t *a)
{
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_FORMAT: {
                        int f = cscp_eventlog_format_from_name(optarg);
                        if (f < 0)
                                return fail("--format: unknown format '%s' (auto, tcg, ima, ima-binary, cel-tlv, "
                                            "cel-json)",
                                            optarg);
                        a->format = (cscp_eventlog_format_t)f;
                        break;
                }
                case OPT_JSON:
                        a->json = true;
                        break;
                case OPT_BANK:
                        if (!replay)
                                return fail("--bank is a replay option");
                        if (parse_banks(optarg, a->banks) < 0)
                                return fail("--bank: '%s' is not a list of sha1, sha256, sha384, sha512", optarg);
                        memcpy(a->opts.ima_banks, a->banks, sizeof(a->banks));
                        break;
                case OPT_PCR:
                        if (!replay)
                                return fail("--pcr is a replay option");
                        if (parse_pcrs(optarg, &a->pcrs) < 0)
                                return fail("--pcr: '%s' is not a list of PCR indices 0..23", optarg);
                        break;
                case OPT_CHECKPOINT:
                        if (!replay)
                                return fail("--checkpoint is a replay option");
                        a->checkpoint = optarg;
                        break;
                case OPT_MAX_RECORD: {
                        char *end;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (*optarg == '\0' || *end != '\0' || v < 64 || v > (1ull << 30))
                                return fail("--max-record: '%s' is not a size between 64 and 1073741824", optarg);
                        a->opts.max_record = (size_t)v;
                        break;
                }
                case OPT_IMA_ENDIAN:
                        if (strcmp(optarg, "host") == 0)
                                a->opts.ima_endian = 0;
                        else if (strcmp(optarg, "little") == 0)
                                a->opts.ima_endian = 1;
                        else if (strcmp(optarg, "big") == 0)
                                a->opts.ima_endian = 2;
                        else
                                return fail("--ima-endian: '%s' is not host, little or big", optarg);
                        break;
                case OPT_NO_TEMPLATE_CHECK:
                        a->opts.ima_no_template_check = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc)
                return fail("FILE is required (see --help)");
        if (optind + 1 < argc)
                return fail("unexpected argument '%s'", argv[optind + 1]);
        a->file = argv[optind];
        return -1;
}

static int open_file(const char *path)
{
        int fd;

        if (strcmp(path, "-") == 0)
                return dup(STDIN_FILENO);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

static const char *open_error(int r)
{
        switch (r) {
        case CSCP_E_PROTO:
                return "empty, or not a log format this program knows (give --format)";
        case -EINVAL:
                return "the checkpoint does not belong to a log of this format";
        case -ENODATA:
                return "the log is shorter than the checkpoint (was it replaced or truncated?)";
        case -ESTALE:
                return "the log does not continue the checkpoint (it was replaced or rotated): replay it without "
                       "--checkpoint";
        default:
                return cscp_strerror(r);
        }
}

static json_object *event_json(const cscp_event_t *ev)
{
        json_object *o = json_object_new_object(), *d = json_object_new_array();
        static const char *const regs[] = {"pcr", "nv_index", "rtmr"};

        json_object_object_add(o, "index", json_object_new_int64((int64_t)ev->index));
        json_object_object_add(o, "offset", json_object_new_int64((int64_t)ev->offset));
        json_object_object_add(o, regs[ev->reg <= CSCP_EVENT_RTMR ? ev->reg : 0], json_object_new_int64(ev->pcr));
        json_object_object_add(o, "type", json_object_new_int64(ev->type));
        json_object_object_add(o, "kind", json_object_new_string(ev->kind));
        json_object_object_add(o, "extended", json_object_new_boolean(ev->extend));
        for (size_t i = 0; i < ev->n_digests; i++) {
                char hex[2 * CSCP_EVENT_MAX_DIGEST + 1];
                json_object *e = json_object_new_object();
                cscp_hex_encode(ev->digests[i].digest, ev->digests[i].size, hex);
                json_object_object_add(e, "hashAlg", json_object_new_string(cscp_hash_alg_name(ev->digests[i].alg)));
                json_object_object_add(e, "digest", json_object_new_string(hex));
                json_object_array_add(d, e);
        }
        json_object_object_add(o, "digests", d);
        if (ev->startup_locality >= 0)
                json_object_object_add(o, "startup_locality", json_object_new_int(ev->startup_locality));
        json_object_object_add(o, "text", json_object_new_string(ev->text));
        return o;
}

static int show(const args_t *a)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        bool first = true;
        int fd, r;

        fd = open_file(a->file);
        if (fd < 0)
                return fail("%s: %s", a->file, strerror(-fd));
        r = cscp_eventlog_open_fd(fd, a->format, &a->opts, NULL, &l);
        if (r < 0) {
                close(fd);
                return fail("%s: %s", a->file, open_error(r));
        }
        if (a->json)
                fputs("[", stdout);
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                if (a->json) {
                        json_object *o = event_json(ev);
                        printf("%s\n  %s", first ? "" : ",",
                               json_object_to_json_string_ext(o,
                                                              JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                        json_object_put(o);
                } else {
                        char *line = NULL;
                        if (cscp_event_describe(l, ev, &line) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        puts(line);
                        free(line);
                }
                first = false;
        }
        if (a->json)
                fputs(first ? "]\n" : "\n]\n", stdout);
        if (r < 0) {
                fflush(stdout);
                fail("%s: %s", a->file, *cscp_eventlog_error(l) ? cscp_eventlog_error(l) : cscp_strerror(r));
        }
        cscp_eventlog_free(l);
        close(fd);
        if (fflush(stdout) != 0 || ferror(stdout))
                return fail("writing the output failed");
        return r < 0 ? 2 : 0;
}

static bool wanted(const uint16_t *banks, uint16_t alg)
{
        if (!banks[0])
                return true;
        for (size_t i = 0; banks[i]; i++)
                if (banks[i] == alg)
                        return true;
        return false;
}

static void print_json(const cscp_replay_t *rp, const uint16_t *only, uint32_t pcrs)
{
        json_object *root = json_object_new_object();

        for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++) {
                uint32_t which = pcrs ? pcrs : rp->extended[b];
                json_object *bank;

                if (!rp->bank_present[b] || !wanted(only, rp->banks[b]) || !which)
                        continue;
                bank = json_object_new_object();
                for (unsigned p = 0; p < CSCP_PCR_COUNT; p++) {
                        uint8_t v[CSCP_EVENT_MAX_DIGEST];
                        char hex[2 * CSCP_EVENT_MAX_DIGEST + 1], key[4];
                        size_t len;
                        if (!(which & (1u << p)) || cscp_replay_pcr(rp, rp->banks[b], p, v, &len) < 0)
                                continue;
                        cscp_hex_encode(v, len, hex);
                        snprintf(key, sizeof(key), "%u", p);
                        json_object_object_add(bank, key, json_object_new_string(hex));
                }
                json_object_object_add(root, cscp_hash_alg_name(rp->banks[b]), bank);
        }
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(root);
}

static int replay(const args_t *a)
{
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        cscp_replay_t rp;
        bool resumed = false;
        int fd, r;

        cscp_replay_init(&rp);
        if (a->checkpoint) {
                uint8_t *buf;
                size_t len;
                r = cscp_file_read(a->checkpoint, CHECKPOINT_MAX, &buf, &len);
                if (r == 0) {
                        r = cscp_replay_load(buf, len, &rp);
                        free(buf);
                        if (r < 0)
                                return fail("%s: not a valid checkpoint (%s)", a->checkpoint, cscp_strerror(r));
                        resumed = true;
                } else if (r != -ENOENT)
                        return fail("%s: %s", a->checkpoint, cscp_strerror(r));
        }
        fd = open_file(a->file);
        if (fd < 0)
                return fail("%s: %s", a->file, strerror(-fd));
        r = cscp_eventlog_open_fd(fd, a->format, &a->opts, resumed ? &rp : NULL, &l);
        if (r < 0) {
                close(fd);
                return fail("%s: %s", a->file, open_error(r));
        }
        while ((r = cscp_eventlog_next(l, &ev)) > 0) {
                r = cscp_replay_extend(&rp, ev);
                if (r < 0) {
                        fail("%s: event %llu at byte %llu: cannot replay (%s)", a->file, (unsigned long long)ev->index,
                             (unsigned long long)ev->offset, cscp_strerror(r));
                        goto out;
                }
        }
        if (r < 0) {
                fail("%s: %s", a->file, *cscp_eventlog_error(l) ? cscp_eventlog_error(l) : cscp_strerror(r));
                goto out;
        }
        if (a->checkpoint) {
                uint8_t *buf;
                size_t len;
                r = cscp_replay_checkpoint(&rp, l);
                if (r >= 0)
                        r = cscp_replay_save(&rp, &buf, &len);
                if (r >= 0) {
                        r = cscp_file_write_atomic(a->checkpoint, buf, len, 0600);
                        free(buf);
                }
                if (r < 0) {
                        fail("%s: cannot store the checkpoint: %s", a->checkpoint, cscp_strerror(r));
                        goto out;
                }
        }
        if (a->json)
                print_json(&rp, a->banks, a->pcrs);
        else
                for (int b = 0; b < CSCP_EVENT_MAX_DIGESTS; b++)
                        if (wanted(a->banks, rp.banks[b]))
                                cscp_replay_print(&rp, rp.banks[b], a->pcrs, stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                r = fail("writing the output failed");
                r = -EIO;
        }
out:
        cscp_eventlog_free(l);
        close(fd);
        return r < 0 ? 2 : 0;
}

int cmd_eventlog(int argc, char **argv)
{
        args_t a = {0};
        int r;

        if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (strcmp(argv[1], "show") == 0) {
                r = parse_args(argc - 1, argv + 1, false, &a);
                return r >= 0 ? r : show(&a);
        }
        if (strcmp(argv[1], "replay") == 0) {
                r = parse_args(argc - 1, argv + 1, true, &a);
                return r >= 0 ? r : replay(&a);
        }
        return fail("unknown subcommand '%s' (show, replay; see --help)", argv[1]);
}
