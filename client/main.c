/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define LOGMODULE cscp
#include "commands.h"
#include "log.h"

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} commands[] = {
        {"challenge", cmd_challenge, "challenge an attestd with a fresh nonce and verify its evidence"},
        {"enroll", cmd_enroll, "enroll a host's attestation key: EK certificate, AK, credential activation"},
        {"verify", cmd_verify, "verify saved evidence offline against the nonce it answered"},
        {"eventlog", cmd_eventlog, "show or replay a measurement list (TCG boot log, IMA, CEL)"},
        {"policy", cmd_policy, "appraise measurement lists against a policy, or validate a policy"},
        {"tdx", cmd_tdx, "inspect or verify an Intel TDX quote"},
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: cscp COMMAND [OPTIONS]\n"
                   "The CSCP challenger: asks a host to prove what it runs, and checks the answer.\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\n'cscp COMMAND --help' describes a command's options.\n"
                   "Exit status: 0 trusted, enrolled or done; 1 untrusted or refused; 2 error.\n");
}

int main(int argc, char **argv)
{
        cscp_log_set_ident("cscp");
        signal(SIGPIPE, SIG_IGN);
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
                if (argc > 2 && strcmp(argv[1], "help") == 0)
                        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                                if (strcmp(argv[2], commands[i].name) == 0) {
                                        char *args[] = {argv[2], (char *)"--help", NULL};
                                        return commands[i].run(2, args);
                                }
                usage(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("cscp 0.1.0\n");
                return 0;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "cscp: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
}
