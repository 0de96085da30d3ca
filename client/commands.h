/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Each command returns the process exit status: 0 trusted/ok, 1 untrusted, 2 error. */
int cmd_challenge(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_policy(int argc, char **argv);
