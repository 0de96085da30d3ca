/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Test harness: temporary directories, real child processes (swtpm, attestd,
 * cscp), waiting for them, and cleaning up even when a test fails.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"

/* Paths given by meson (CSCP_BUILD_DIR, CSCP_SOURCE_DIR). */
const char *harness_build_dir(void);
const char *harness_source_dir(void);
/* ../shared/fixtures when it exists, else NULL (tests then skip with the reason). */
const char *harness_fixtures_dir(void);

/* mkdtemp("/tmp/cscp-test-XXXXXX"); removed recursively at process exit. Aborts on failure. */
char *harness_tmpdir(void);
/* path join (aborts on OOM); the string lives until the test process exits. */
char *harness_path(const char *dir, const char *name);
/* Keeps malloc'd p until the test process exits (then frees it); returns p. */
void *harness_keep(void *p);

/* A running child process; its stdout+stderr go to log (a file). */
typedef struct harness_proc {
        pid_t pid;
        char *log;
} harness_proc_t;

/* fork + exec argv[0] (PATH lookup), stdin /dev/null, output appended to logfile. */
int harness_spawn(char *const argv[], const char *logfile, harness_proc_t *ret);
/* Sends sig, waits up to timeout_ms, then SIGKILL; returns the wait status. */
int harness_stop(harness_proc_t *p, int sig, int timeout_ms);
/* Waits for exit up to timeout_ms: 0 and *ret_status, or -ETIMEDOUT. */
int harness_wait(harness_proc_t *p, int timeout_ms, int *ret_status);
bool harness_alive(const harness_proc_t *p);
/* Runs argv to completion (timeout_ms), capturing stdout and stderr (malloc'd, NUL-terminated). */
int harness_run(char *const argv[], int timeout_ms, int *ret_exit, char **ret_out, char **ret_err);
/* Prints a child's log to stderr (for failing tests). */
void harness_dump_log(const harness_proc_t *p);

/* Waits until path exists (poll every 10 ms). */
int harness_wait_path(const char *path, int timeout_ms);

/* A real swtpm (socket, --tpm2, startup-clear) with state in dir. */
typedef struct harness_swtpm {
        harness_proc_t proc;
        char *dir;
        char *sock; /* data socket; control is sock + ".ctrl" */
        char *tcti; /* "swtpm:path=<sock>" */
} harness_swtpm_t;

int harness_swtpm_start(const char *dir, harness_swtpm_t *ret);
void harness_swtpm_stop(harness_swtpm_t *s);

/*
 * tests/helpers/tdx-emu, a TEST emulator of a TDX guest's Linux files (configfs-tsm reports, TSM measurement
 * registers; NOT TDX), mounted on <dir>/mnt with its state in <dir>/state and its log in <dir>/tdx-emu.log:
 * tsm_root <dir>/mnt/tsm, mr_root <dir>/mnt/measurements, the test trust anchor <dir>/state/root.pem.
 * extra_args: more emulator options (NULL-terminated, may be NULL), e.g. {"--race", "1", NULL}. Skips the test
 * (with the reason) when the emulator was not built (no libfuse3) or cannot mount (no /dev/fuse, no permission).
 * As root the test process first enters a mount namespace of its own, so no mount outlives it.
 */
int harness_tdx_emu_start(const char *dir, const char *const *extra_args, pid_t *ret_pid);
/* SIGTERM + wait (SIGKILL after 5 s), then `fusermount3 -u` / a lazy unmount if <dir>/mnt is still mounted.
 * Returns the emulator's wait status (0: it unmounted and exited cleanly) or a negative errno. */
int harness_tdx_emu_stop(const char *dir, pid_t pid);

/* A PKI from certs/mkcerts in dir: ca.pem, server.pem/-key.pem, client.pem/-key.pem. */
int harness_mkcerts(const char *dir);

/* attestd from the build dir with a TLS or plaintext listener on 127.0.0.1:0. */
typedef struct harness_attestd {
        harness_proc_t proc;
        char *state_dir;
        char *addr; /* "127.0.0.1:PORT", read from --ready-file */
} harness_attestd_t;

/* extra: further arguments (NULL-terminated, may be NULL). certs: dir from harness_mkcerts, NULL = plaintext. */
int harness_attestd_start(const char *dir, const char *tcti, const char *certs, char *const extra[],
                          harness_attestd_t *ret);
void harness_attestd_stop(harness_attestd_t *a);

/*
 * Helpers that assert (Criterion) on failure (tools.c).
 */

#define HARNESS_TABRMD_TCTI "tabrmd:bus_type=session"
#define HARNESS_ARGV_MAX    63

/* A file's bytes (also /proc files, which report size 0), NUL-terminated, kept until exit; NULL if it cannot be
 * opened. */
char *harness_slurp(const char *path, size_t *ret_len);
/* <fixtures>/sub (e.g. "tdx/go-tdx-guest"), kept until exit; skips the test (77) with the reason when
 * ../shared/fixtures or sub is absent. */
const char *harness_fixture_dir(const char *sub);
/* <fixtures>/sub/name (harness_fixture_dir), kept until exit. */
char *harness_fixture_path(const char *sub, const char *name);
/* A file's bytes (at most 1 MiB), kept until exit; asserts the file can be read. */
typedef struct harness_blob {
        uint8_t *p;
        size_t len;
} harness_blob_t;
harness_blob_t harness_load(const char *path);
/* SIGKILLs every swtpm whose command line names needle and none of spare (NULL-terminated, may be NULL): what a
 * failed test left behind. needle NULL: nothing. */
void harness_kill_swtpms(const char *needle, const char *const spare[]);
/* Concatenates NULL-terminated vectors (the list ends with NULL) into one argument vector, kept until exit. */
char **harness_argv(const char *const *part, ...);
/* --server addr --ca --cert --key of the PKI in pki (harness_mkcerts), NULL-terminated, kept until exit. */
const char *const *harness_tls_args(const char *addr, const char *pki);
/* One Challenge (harness_challenge). */
typedef struct harness_challenge {
        const char *container;      /* NULL: a host challenge */
        const char *host_pcrs;      /* host PCR selection ("sha256:0-7,10"); NULL: none */
        const char *container_pcrs; /* container PCR selection; NULL: none */
        Cscp__LogKind kinds[8];     /* log requests: kind and offset each */
        uint64_t offsets[8];
        size_t n_logs;
} harness_challenge_t;
/* Sends rq over c with a fresh 32-byte nonce (into nonce); returns the answer (Evidence or Error), the caller frees
 * it with cscp__frame__free_unpacked. Asserts that the round trip works. */
Cscp__Frame *harness_challenge(cscp_conn_t *c, const harness_challenge_t *rq, uint8_t nonce[32]);
/* harness_run that must run; outputs kept until exit (NULL: not wanted); returns the exit code. */
int harness_run_kept(char *const argv[], int timeout_ms, char **ret_out, char **ret_err);
/* dbus-daemon (a session bus of our own, logs in dir) + tpm2-abrmd in front of host_tcti; sets
 * DBUS_SESSION_BUS_ADDRESS and TPM2TOOLS_TCTI (HARNESS_TABRMD_TCTI) and waits until abrmd answers. */
void harness_abrmd_start(const char *dir, const char *host_tcti, harness_proc_t *dbus, harness_proc_t *abrmd);
/* The lower-case hex value of "<pcr>: 0x..." in tpm2_pcrread's output (kept until exit). */
char *harness_pcr_hex(const char *out, unsigned pcr);
/* tpm2_pcrread sha256:<pcr> through tcti (sets TPM2TOOLS_TCTI): harness_pcr_hex of its output. */
char *harness_pcrread(const char *tcti, unsigned pcr);
/* `cscp eventlog replay LOG --format cel-tlv --json`: the sha256 value of pcr (kept), NULL if the log never
 * extends it. */
char *harness_replay(const char *log, unsigned pcr);
/*
 * Asserts that the quote tpm2_quote wrote into dir (q.attest, q.sig, q.pcrs: sha256 PCRs 11 and 12, -F values)
 * verifies with the AK (marshalled TPMT_PUBLIC) and nonce_hex; what names the quote in the failure message.
 */
void harness_assert_quote_files(const char *dir, const uint8_t *ak, size_t ak_len, const char *nonce_hex,
                                const char *what);
/* A new temporary directory (returned) with a PKI in <dir>/pki (harness_mkcerts; *ret_pki) and a swtpm started in
 * <dir>/<name>. */
char *harness_setup_tpm(const char *name, char **ret_pki, harness_swtpm_t *ret);
