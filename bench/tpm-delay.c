/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm-delay: a test-rig host TPM that is slow like hardware.
 *
 * Listens where tpm2-tss's swtpm TCTI (`swtpm:path=PATH`) looks: a Unix
 * socket PATH for TPM commands and PATH.ctrl for swtpm's control channel.
 * Every TPM command is forwarded to a real swtpm; its response is held back
 * for a set time before it goes to the client, so that benchmarks see the
 * latency of a discrete TPM (tens to hundreds of milliseconds) instead of a
 * simulator's (about a millisecond). Commands run one at a time, in the order
 * they arrived, as on a TPM; the control channel is relayed byte for byte.
 *
 * One thread, one poll loop. A command is executed synchronously (the TPM is
 * serial, so nothing else could run meanwhile anyway); the control channel is
 * relayed between commands; SIGTERM/SIGINT are watched through a signalfd
 * everywhere, including while a response is held back.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_tpm2_types.h>

#define TPM_HEADER_SIZE       10u
#define DEFAULT_DELAY_MS      100u
#define MAX_DELAY_MS          600000u
#define DEFAULT_MAX_CLIENTS   256u
#define MAX_MAX_CLIENTS       4096u
#define DEFAULT_MAX_COMMAND   65536u /* swtpm's largest buffer size (CMD_SET_BUFFERSIZE) */
#define UPSTREAM_TIMEOUT_MS   300000 /* one command on swtpm (an RSA key generation under load included) */
#define CTRL_WRITE_TIMEOUT_MS 10000
#define CTRL_BUF              4096u
#define CC_TABLE              0x200u /* TPM2 command codes are 0x11F..0x1A0 today */

/* ---- command names (for --commands and the statistics) ----------------------------------- */

#define CC(n)                   \
        {                       \
                TPM2_CC_##n, #n \
        }
static const struct {
        uint32_t cc;
        const char *name;
} cc_names[] = {
        CC(NV_UndefineSpaceSpecial),
        CC(EvictControl),
        CC(HierarchyControl),
        CC(NV_UndefineSpace),
        CC(ChangeEPS),
        CC(ChangePPS),
        CC(Clear),
        CC(ClearControl),
        CC(ClockSet),
        CC(HierarchyChangeAuth),
        CC(NV_DefineSpace),
        CC(PCR_Allocate),
        CC(PCR_SetAuthPolicy),
        CC(PP_Commands),
        CC(SetPrimaryPolicy),
        CC(FieldUpgradeStart),
        CC(ClockRateAdjust),
        CC(CreatePrimary),
        CC(NV_GlobalWriteLock),
        CC(GetCommandAuditDigest),
        CC(NV_Increment),
        CC(NV_SetBits),
        CC(NV_Extend),
        CC(NV_Write),
        CC(NV_WriteLock),
        CC(DictionaryAttackLockReset),
        CC(DictionaryAttackParameters),
        CC(NV_ChangeAuth),
        CC(PCR_Event),
        CC(PCR_Reset),
        CC(SequenceComplete),
        CC(SetAlgorithmSet),
        CC(SetCommandCodeAuditStatus),
        CC(FieldUpgradeData),
        CC(IncrementalSelfTest),
        CC(SelfTest),
        CC(Startup),
        CC(Shutdown),
        CC(StirRandom),
        CC(ActivateCredential),
        CC(Certify),
        CC(PolicyNV),
        CC(CertifyCreation),
        CC(Duplicate),
        CC(GetTime),
        CC(GetSessionAuditDigest),
        CC(NV_Read),
        CC(NV_ReadLock),
        CC(ObjectChangeAuth),
        CC(PolicySecret),
        CC(Rewrap),
        CC(Create),
        CC(ECDH_ZGen),
        CC(HMAC),
        CC(Import),
        CC(Load),
        CC(Quote),
        CC(RSA_Decrypt),
        CC(HMAC_Start),
        CC(SequenceUpdate),
        CC(Sign),
        CC(Unseal),
        CC(PolicySigned),
        CC(ContextLoad),
        CC(ContextSave),
        CC(ECDH_KeyGen),
        CC(EncryptDecrypt),
        CC(FlushContext),
        CC(LoadExternal),
        CC(MakeCredential),
        CC(NV_ReadPublic),
        CC(PolicyAuthorize),
        CC(PolicyAuthValue),
        CC(PolicyCommandCode),
        CC(PolicyCounterTimer),
        CC(PolicyCpHash),
        CC(PolicyLocality),
        CC(PolicyNameHash),
        CC(PolicyOR),
        CC(PolicyTicket),
        CC(ReadPublic),
        CC(RSA_Encrypt),
        CC(StartAuthSession),
        CC(VerifySignature),
        CC(ECC_Parameters),
        CC(FirmwareRead),
        CC(GetCapability),
        CC(GetRandom),
        CC(GetTestResult),
        CC(Hash),
        CC(PCR_Read),
        CC(PolicyPCR),
        CC(PolicyRestart),
        CC(ReadClock),
        CC(PCR_Extend),
        CC(PCR_SetAuthValue),
        CC(NV_Certify),
        CC(EventSequenceComplete),
        CC(HashSequenceStart),
        CC(PolicyPhysicalPresence),
        CC(PolicyDuplicationSelect),
        CC(PolicyGetDigest),
        CC(TestParms),
        CC(Commit),
        CC(PolicyPassword),
        CC(ZGen_2Phase),
        CC(EC_Ephemeral),
        CC(PolicyNvWritten),
        CC(PolicyTemplate),
        CC(CreateLoaded),
        CC(PolicyAuthorizeNV),
        CC(EncryptDecrypt2),
        CC(AC_GetCapability),
        CC(AC_Send),
        CC(Policy_AC_SendSelect),
        CC(CertifyX509),
        CC(ACT_SetTimeout),
};
#undef CC

static const char *cc_name(uint32_t cc)
{
        for (size_t i = 0; i < sizeof(cc_names) / sizeof(cc_names[0]); i++)
                if (cc_names[i].cc == cc)
                        return cc_names[i].name;
        return NULL;
}

static int cc_parse(const char *s, uint32_t *ret)
{
        unsigned long v;
        char *end;

        for (size_t i = 0; i < sizeof(cc_names) / sizeof(cc_names[0]); i++)
                if (strcasecmp(cc_names[i].name, s) == 0) {
                        *ret = cc_names[i].cc;
                        return 0;
                }
        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 0);
        if (errno || *end || v >= CC_TABLE)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* ---- state ---------------------------------------------------------------------------------- */

typedef enum {
        CLIENT_READ,   /* reading a command (header, then body) */
        CLIENT_QUEUED, /* a whole command, waiting for its turn */
        CLIENT_WRITE,  /* writing the response */
} client_state_t;

typedef struct client {
        int fd;
        client_state_t state;
        uint8_t *buf; /* command, then response */
        size_t len;   /* bytes expected (header first) */
        size_t have;  /* bytes read or written */
        uint64_t seq; /* arrival order of the queued command */
        struct client *next;
} client_t;

typedef struct relay {
        int client, upstream;
        struct relay *next;
} relay_t;

typedef struct proxy {
        const char *listen_path, *upstream_path, *upstream_ctrl;
        char *ctrl_path;
        unsigned delay_ms;
        bool delay_all;
        bool delay_cc[CC_TABLE];
        unsigned max_clients;
        size_t max_command;
        int verbose;

        int lfd, lctrl, sfd;
        client_t *clients;
        relay_t *relays;
        unsigned n_clients, n_relays;
        uint64_t seq;
        bool quit;

        /* statistics */
        uint64_t commands, delayed, failed, cc_count[CC_TABLE], cc_other;
        double delayed_ms, upstream_ms;
} proxy_t;

/* ---- small helpers -------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int remaining_ms(int64_t deadline)
{
        int64_t left = deadline - now_ns();

        if (left <= 0)
                return 0;
        left = (left + 999999) / 1000000;
        return left > INT_MAX ? INT_MAX : (int)left;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static int sockaddr_for(const char *path, struct sockaddr_un *sa)
{
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memcpy(sa->sun_path, path, strlen(path) + 1);
        return 0;
}

static void print_stats(const proxy_t *p)
{
        fprintf(stderr,
                "tpm-delay: %" PRIu64 " commands (%" PRIu64 " delayed, %" PRIu64
                " failed); swtpm %.1f ms, held %.1f ms in total\n",
                p->commands, p->delayed, p->failed, p->upstream_ms, p->delayed_ms);
        for (uint32_t cc = 0; cc < CC_TABLE; cc++)
                if (p->cc_count[cc]) {
                        const char *name = cc_name(cc);
                        fprintf(stderr, "tpm-delay:   %-24s %" PRIu64 "\n", name ? name : "(unknown)", p->cc_count[cc]);
                }
        if (p->cc_other)
                fprintf(stderr, "tpm-delay:   %-24s %" PRIu64 "\n", "(other codes)", p->cc_other);
}

/* Reads one signal from the signalfd: SIGUSR1 prints the statistics; returns true for a stop signal. */
static bool take_signal(proxy_t *p)
{
        struct signalfd_siginfo si;

        if (read(p->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
                return false;
        if (si.ssi_signo == SIGUSR1) {
                print_stats(p);
                return false;
        }
        if (p->verbose)
                fprintf(stderr, "tpm-delay: signal %u, stopping\n", si.ssi_signo);
        p->quit = true;
        return true;
}

/*
 * Waits until fd is ready for events or the deadline passes (fd < 0: only
 * waits). Returns 1 ready, 0 deadline, -EINTR when a stop signal arrived
 * (p->quit is then set), another negative errno on error.
 */
static int wait_fd(proxy_t *p, int fd, short events, int64_t deadline)
{
        for (;;) {
                struct pollfd pfd[2] = {{.fd = p->sfd, .events = POLLIN}, {.fd = fd, .events = events}};
                int r = poll(pfd, fd >= 0 ? 2 : 1, remaining_ms(deadline));

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if ((pfd[0].revents & POLLIN) && take_signal(p))
                        return -EINTR;
                if (fd >= 0 && pfd[1].revents)
                        return 1;
                if (r == 0 || now_ns() >= deadline)
                        return 0;
        }
}

/* Writes all of buf to a non-blocking fd before the deadline. */
static int write_all(proxy_t *p, int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
        while (len > 0) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                int r;

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = wait_fd(p, fd, POLLOUT, deadline);
                if (r <= 0)
                        return r == 0 ? -ETIMEDOUT : r;
        }
        return 0;
}

/* Reads exactly len bytes from a non-blocking fd before the deadline; -EPIPE on EOF. */
static int read_exact(proxy_t *p, int fd, uint8_t *buf, size_t len, int64_t deadline)
{
        while (len > 0) {
                ssize_t n = recv(fd, buf, len, 0);
                int r;

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n == 0)
                        return -EPIPE;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = wait_fd(p, fd, POLLIN, deadline);
                if (r <= 0)
                        return r == 0 ? -ETIMEDOUT : r;
        }
        return 0;
}

/*
 * Connects to a Unix socket without blocking the loop: a listener whose
 * backlog is full (swtpm accepts one connection at a time) answers EAGAIN,
 * and the connect is retried every 10 ms until the deadline.
 */
static int connect_unix(proxy_t *p, const char *path, int64_t deadline)
{
        struct sockaddr_un sa;
        int fd, r;

        r = sockaddr_for(path, &sa);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return fd;
                r = -errno;
                if (r == -EINTR)
                        continue;
                if (r != -EAGAIN || now_ns() >= deadline)
                        break;
                r = wait_fd(p, -1, 0, now_ns() + 10000000 < deadline ? now_ns() + 10000000 : deadline);
                if (r < 0)
                        break;
        }
        close(fd);
        return r == -EAGAIN ? -ETIMEDOUT : r;
}

/*
 * A listening socket at path, made under a temporary name and renamed into
 * place once it listens, so that a client that sees the path can connect.
 * An existing socket at path (a previous run's) is replaced; anything else
 * there is an error.
 */
static int listen_unix(const char *path)
{
        struct sockaddr_un sa;
        struct stat st;
        char *tmp = NULL;
        int fd = -1, r;

        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                return -EEXIST;
        if (asprintf(&tmp, "%s.%ld.tmp", path, (long)getpid()) < 0)
                return -ENOMEM;
        r = sockaddr_for(tmp, &sa);
        if (r < 0)
                goto out;
        (void)unlink(tmp);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0 || rename(tmp, path) < 0) {
                r = -errno;
                (void)unlink(tmp);
                close(fd);
                fd = -1;
                goto out;
        }
        r = fd;
out:
        free(tmp);
        return r;
}

/* ---- clients -------------------------------------------------------------------------------- */

static void client_drop(proxy_t *p, client_t *c)
{
        client_t **link;

        for (link = &p->clients; *link; link = &(*link)->next)
                if (*link == c) {
                        *link = c->next;
                        break;
                }
        close(c->fd);
        free(c->buf);
        free(c);
        p->n_clients--;
}

static void relay_drop(proxy_t *p, relay_t *rl)
{
        relay_t **link;

        for (link = &p->relays; *link; link = &(*link)->next)
                if (*link == rl) {
                        *link = rl->next;
                        break;
                }
        close(rl->client);
        if (rl->upstream >= 0)
                close(rl->upstream);
        free(rl);
        p->n_relays--;
}

static void accept_clients(proxy_t *p)
{
        for (;;) {
                int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                client_t *c;

                if (fd < 0)
                        return; /* EAGAIN, or an aborted connection: nothing to do */
                if (p->n_clients + p->n_relays >= p->max_clients) {
                        fprintf(stderr, "tpm-delay: more than %u connections, refusing one\n", p->max_clients);
                        close(fd);
                        continue;
                }
                c = calloc(1, sizeof(*c));
                if (c)
                        c->buf = malloc(TPM_HEADER_SIZE);
                if (!c || !c->buf) {
                        fprintf(stderr, "tpm-delay: out of memory, refusing a connection\n");
                        if (c)
                                free(c);
                        close(fd);
                        continue;
                }
                c->fd = fd;
                c->state = CLIENT_READ;
                c->len = TPM_HEADER_SIZE;
                c->next = p->clients;
                p->clients = c;
                p->n_clients++;
        }
}

/*
 * Control connections queue in arrival order; only the first is relayed (it
 * gets its upstream connection in relay_activate), as swtpm serves one
 * control connection at a time anyway.
 */
static void accept_ctrl(proxy_t *p)
{
        for (;;) {
                int fd = accept4(p->lctrl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                relay_t *rl, **tail;

                if (fd < 0)
                        return;
                if (p->n_clients + p->n_relays >= p->max_clients) {
                        fprintf(stderr, "tpm-delay: more than %u connections, refusing a control connection\n",
                                p->max_clients);
                        close(fd);
                        continue;
                }
                rl = calloc(1, sizeof(*rl));
                if (!rl) {
                        close(fd);
                        continue;
                }
                rl->client = fd;
                rl->upstream = -1;
                for (tail = &p->relays; *tail; tail = &(*tail)->next)
                        ;
                *tail = rl;
                p->n_relays++;
        }
}

/* Gives the first queued control connection its upstream connection; drops it when swtpm cannot be reached. */
static void relay_activate(proxy_t *p)
{
        while (p->relays && p->relays->upstream < 0 && !p->quit) {
                int up = connect_unix(p, p->upstream_ctrl, now_ns() + (int64_t)CTRL_WRITE_TIMEOUT_MS * 1000000);

                if (up >= 0) {
                        p->relays->upstream = up;
                        return;
                }
                if (up != -EINTR)
                        fprintf(stderr, "tpm-delay: control channel %s: %s\n", p->upstream_ctrl, strerror(-up));
                relay_drop(p, p->relays);
        }
}

/* One chunk from `from` to `to`. Returns 0 to keep the relay, < 0 to drop it. */
static int relay_move(proxy_t *p, int from, int to)
{
        uint8_t buf[CTRL_BUF];
        ssize_t n = recv(from, buf, sizeof(buf), 0);

        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -EPIPE;
        return write_all(p, to, buf, (size_t)n, now_ns() + (int64_t)CTRL_WRITE_TIMEOUT_MS * 1000000);
}

/* Answers a command the proxy cannot forward with a TPM error, then the connection is closed. */
static void client_refuse(proxy_t *p, client_t *c, uint32_t rc)
{
        uint8_t resp[TPM_HEADER_SIZE];

        put_be16(resp, TPM2_ST_NO_SESSIONS);
        put_be32(resp + 2, TPM_HEADER_SIZE);
        put_be32(resp + 6, rc);
        (void)write_all(p, c->fd, resp, sizeof(resp), now_ns() + (int64_t)CTRL_WRITE_TIMEOUT_MS * 1000000);
}

/* Reads what is there of the command; 0 keep, < 0 drop the client. */
static int client_read(proxy_t *p, client_t *c)
{
        for (;;) {
                ssize_t n = recv(c->fd, c->buf + c->have, c->len - c->have, 0);

                if (n == 0)
                        return -EPIPE; /* the client is done (the swtpm TCTI closes after each response) */
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
                c->have += (size_t)n;
                if (c->have < c->len)
                        continue;
                if (c->len == TPM_HEADER_SIZE) {
                        uint32_t size = get_be32(c->buf + 2);
                        uint8_t *nb;

                        if (size < TPM_HEADER_SIZE || size > p->max_command) {
                                fprintf(stderr, "tpm-delay: refusing a command of %" PRIu32 " bytes (%u..%zu)\n", size,
                                        TPM_HEADER_SIZE, p->max_command);
                                client_refuse(p, c, TPM2_RC_COMMAND_SIZE);
                                return -EMSGSIZE;
                        }
                        if (size > TPM_HEADER_SIZE) {
                                nb = realloc(c->buf, size);
                                if (!nb) {
                                        client_refuse(p, c, TPM2_RC_MEMORY);
                                        return -ENOMEM;
                                }
                                c->buf = nb;
                                c->len = size;
                                continue;
                        }
                }
                c->state = CLIENT_QUEUED;
                c->seq = p->seq++;
                return 0;
        }
}

/* Writes what it can of the response; when all is written the client may send the next command. */
static int client_write(proxy_t *p, client_t *c)
{
        while (c->have < c->len) {
                ssize_t n = send(c->fd, c->buf + c->have, c->len - c->have, MSG_NOSIGNAL);

                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
                c->have += (size_t)n;
        }
        c->state = CLIENT_READ;
        c->len = TPM_HEADER_SIZE;
        c->have = 0;
        (void)p;
        return 0;
}

/*
 * Runs c's command on the upstream swtpm (one connection per command, as the
 * swtpm TCTI does), holds the response back for the delay, and leaves it in
 * c->buf for writing. Returns 0, or < 0 when the client should be dropped.
 */
static int client_execute(proxy_t *p, client_t *c)
{
        uint32_t cc = get_be32(c->buf + 6), size;
        const char *name = cc_name(cc);
        bool delay = p->delay_ms > 0 && (p->delay_all || (cc < CC_TABLE && p->delay_cc[cc]));
        int64_t t0 = now_ns(), deadline = t0 + (int64_t)UPSTREAM_TIMEOUT_MS * 1000000, t_answer;
        uint8_t hdr[TPM_HEADER_SIZE], *nb;
        int up, r;

        p->commands++;
        if (cc < CC_TABLE)
                p->cc_count[cc]++;
        else
                p->cc_other++;

        up = connect_unix(p, p->upstream_path, deadline);
        if (up < 0) {
                r = up;
                fprintf(stderr, "tpm-delay: upstream %s: %s\n", p->upstream_path, strerror(-r));
                goto fail;
        }
        r = write_all(p, up, c->buf, c->len, deadline);
        if (r == 0)
                r = read_exact(p, up, hdr, sizeof(hdr), deadline);
        if (r < 0) {
                if (r != -EINTR)
                        fprintf(stderr, "tpm-delay: upstream, command 0x%03" PRIx32 ": %s\n", cc, strerror(-r));
                goto fail;
        }
        size = get_be32(hdr + 2);
        if (size < TPM_HEADER_SIZE || size > p->max_command) {
                fprintf(stderr, "tpm-delay: upstream answered with a response of %" PRIu32 " bytes\n", size);
                r = -EPROTO;
                goto fail;
        }
        nb = realloc(c->buf, size);
        if (!nb) {
                r = -ENOMEM;
                goto fail;
        }
        c->buf = nb;
        memcpy(c->buf, hdr, sizeof(hdr));
        r = read_exact(p, up, c->buf + TPM_HEADER_SIZE, size - TPM_HEADER_SIZE, deadline);
        if (r < 0) {
                if (r != -EINTR)
                        fprintf(stderr, "tpm-delay: upstream, command 0x%03" PRIx32 ": %s\n", cc, strerror(-r));
                goto fail;
        }
        close(up);
        up = -1;
        t_answer = now_ns();
        p->upstream_ms += (double)(t_answer - t0) / 1e6;

        if (delay) {
                int64_t until = t_answer + (int64_t)p->delay_ms * 1000000;

                while (now_ns() < until) {
                        r = wait_fd(p, -1, 0, until);
                        if (r < 0)
                                goto fail;
                }
                p->delayed++;
                p->delayed_ms += (double)(now_ns() - t_answer) / 1e6;
        }
        if (p->verbose)
                fprintf(stderr,
                        "tpm-delay: %s (0x%03" PRIx32 ") %zu -> %" PRIu32 " bytes, rc 0x%03" PRIx32
                        ", swtpm %.2f ms, held %.2f ms\n",
                        name ? name : "?", cc, c->len, size, get_be32(c->buf + 6), (double)(t_answer - t0) / 1e6,
                        (double)(now_ns() - t_answer) / 1e6);
        c->state = CLIENT_WRITE;
        c->len = size;
        c->have = 0;
        return 0;
fail:
        if (up >= 0)
                close(up);
        p->failed++;
        return r < 0 ? r : -EIO;
}

static client_t *next_queued(proxy_t *p)
{
        client_t *best = NULL;

        for (client_t *c = p->clients; c; c = c->next)
                if (c->state == CLIENT_QUEUED && (!best || c->seq < best->seq))
                        best = c;
        return best;
}

/* ---- main loop ------------------------------------------------------------------------------ */

static int run(proxy_t *p)
{
        struct pollfd *pfd = NULL;
        size_t cap = 0;
        int r = 0;

        while (!p->quit) {
                size_t n = 0, need = 3 + p->n_clients + 2;
                client_t *c, *cnext;
                relay_t *rl;
                size_t i;

                /* A queued command runs first: the TPM is never idle while a command waits. */
                c = next_queued(p);
                if (c) {
                        if (client_execute(p, c) < 0)
                                client_drop(p, c);
                        else if (client_write(p, c) < 0)
                                client_drop(p, c);
                        continue;
                }

                if (need > cap) {
                        struct pollfd *np = realloc(pfd, need * sizeof(*pfd));
                        if (!np) {
                                r = -ENOMEM;
                                break;
                        }
                        pfd = np;
                        cap = need;
                }
                pfd[n++] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
                pfd[n++] = (struct pollfd){.fd = p->lctrl, .events = POLLIN};
                for (c = p->clients; c; c = c->next)
                        pfd[n++] = (struct pollfd){.fd = c->fd, .events = c->state == CLIENT_WRITE ? POLLOUT : POLLIN};
                relay_activate(p);
                if (p->quit)
                        break;
                rl = p->relays; /* the active control connection, if any */
                if (rl) {
                        pfd[n++] = (struct pollfd){.fd = rl->client, .events = POLLIN};
                        pfd[n++] = (struct pollfd){.fd = rl->upstream, .events = POLLIN};
                }
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if ((pfd[0].revents & POLLIN) && take_signal(p))
                        break;
                /* The lists are walked in the order pfd was filled; new entries come after this pass. */
                i = 3;
                for (c = p->clients; c; c = cnext) {
                        short ev = pfd[i++].revents;

                        cnext = c->next;
                        if (!ev)
                                continue;
                        if (c->state == CLIENT_WRITE)
                                r = (ev & (POLLOUT | POLLERR | POLLHUP)) ? client_write(p, c) : 0;
                        else if (c->state == CLIENT_READ)
                                r = client_read(p, c);
                        else
                                r = 0;
                        if (r < 0 || (ev & POLLERR))
                                client_drop(p, c);
                }
                if (rl) {
                        short evc = pfd[i].revents, evu = pfd[i + 1].revents;

                        r = 0;
                        if (evc)
                                r = relay_move(p, rl->client, rl->upstream);
                        if (r == 0 && evu)
                                r = relay_move(p, rl->upstream, rl->client);
                        if (r < 0)
                                relay_drop(p, rl);
                }
                r = 0;
                if (pfd[1].revents)
                        accept_clients(p);
                if (pfd[2].revents)
                        accept_ctrl(p);
        }
        free(pfd);
        return r;
}

/* ---- options -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: tpm-delay --listen PATH --upstream PATH [OPTIONS]\n"
                "A test-rig host TPM that is slow like hardware: a proxy in front of a real swtpm that\n"
                "holds every TPM response back for a set time.\n"
                "\n"
                "Clients use tpm2-tss's swtpm TCTI at swtpm:path=PATH: TPM commands on the Unix socket\n"
                "PATH, swtpm's control channel on PATH.ctrl. Each TPM command is sent to the swtpm at\n"
                "--upstream (one connection per command); when swtpm has answered, the response is held\n"
                "for --delay-ms and then sent on, so a command takes swtpm's time plus the delay.\n"
                "Commands run one at a time, in the order they arrived, as on a TPM; clients may keep\n"
                "their connection for many commands or open one per command. The control channel is\n"
                "relayed byte for byte, without delay, to --upstream-ctrl: one control connection at a\n"
                "time, in the order they arrived, each with its own upstream connection (as swtpm serves\n"
                "them); file descriptors passed with CMD_SET_DATAFD are not relayed.\n"
                "\n"
                "  --listen PATH            where clients connect: PATH (TPM) and PATH.ctrl (control);\n"
                "                           an old socket there is replaced, any other file is an error\n"
                "  --upstream PATH          the swtpm's TPM socket (swtpm --server type=unixio,path=PATH)\n"
                "  --upstream-ctrl PATH     the swtpm's control socket (default: the upstream PATH.ctrl)\n"
                "  --delay-ms N             hold each response N ms, 0..%u (default %u; 0 = pass-through)\n"
                "  --commands LIST          delay only these commands (comma-separated names such as\n"
                "                           Quote,Sign or codes such as 0x158); default: every command\n"
                "  --max-clients N          open connections (TPM + control), 1..%u (default %u)\n"
                "  --max-command BYTES      largest command or response, %u..%u (default %u); a larger\n"
                "                           command is answered with TPM_RC_COMMAND_SIZE and its\n"
                "                           connection closed\n"
                "  -v, --verbose            one line per command on stderr\n"
                "  -h, --help               this text\n"
                "\n"
                "If swtpm cannot be reached or fails mid-command, the client's connection is closed (its\n"
                "TCTI reports an I/O error) and the proxy goes on. SIGTERM or SIGINT: stops, removes\n"
                "PATH and PATH.ctrl, prints the command counts on stderr and exits 0. SIGUSR1: prints the\n"
                "command counts so far on stderr and goes on.\n"
                "Exit status: 0 after a clean stop, 1 on a runtime error, 2 on a usage error.\n",
                MAX_DELAY_MS, DEFAULT_DELAY_MS, MAX_MAX_CLIENTS, DEFAULT_MAX_CLIENTS, TPM_HEADER_SIZE,
                DEFAULT_MAX_COMMAND * 16, DEFAULT_MAX_COMMAND);
}

static int parse_ulong(const char *opt, const char *s, unsigned long lo, unsigned long hi, unsigned long *ret)
{
        unsigned long v;
        char *end;

        errno = 0;
        if (!s || *s < '0' || *s > '9')
                goto bad;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < lo || v > hi)
                goto bad;
        *ret = v;
        return 0;
bad:
        fprintf(stderr, "tpm-delay: %s: '%s' is not a number in %lu..%lu\n", opt, s ? s : "", lo, hi);
        return -EINVAL;
}

static int parse_commands(proxy_t *p, const char *list)
{
        char *copy = strdup(list), *save = NULL, *tok;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        p->delay_all = false;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint32_t cc;

                if (cc_parse(tok, &cc) < 0) {
                        fprintf(stderr, "tpm-delay: --commands: '%s' is not a TPM2 command name or code\n", tok);
                        r = -EINVAL;
                        break;
                }
                p->delay_cc[cc] = true;
        }
        if (r == 0 && !tok && list[0] == '\0') {
                fprintf(stderr, "tpm-delay: --commands: empty list\n");
                r = -EINVAL;
        }
        free(copy);
        return r;
}

int main(int argc, char **argv)
{
        enum {
                OPT_LISTEN = 0x100,
                OPT_UPSTREAM,
                OPT_UPSTREAM_CTRL,
                OPT_DELAY,
                OPT_COMMANDS,
                OPT_MAX_CLIENTS,
                OPT_MAX_CMD
        };
        static const struct option opts[] = {
                {"listen", required_argument, NULL, OPT_LISTEN},
                {"upstream", required_argument, NULL, OPT_UPSTREAM},
                {"upstream-ctrl", required_argument, NULL, OPT_UPSTREAM_CTRL},
                {"delay-ms", required_argument, NULL, OPT_DELAY},
                {"commands", required_argument, NULL, OPT_COMMANDS},
                {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
                {"max-command", required_argument, NULL, OPT_MAX_CMD},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        proxy_t p;
        char *upstream_ctrl = NULL;
        struct sockaddr_un sa;
        sigset_t mask;
        unsigned long v;
        int c, r, ret = 1;

        memset(&p, 0, sizeof(p));
        p.delay_ms = DEFAULT_DELAY_MS;
        p.delay_all = true;
        p.max_clients = DEFAULT_MAX_CLIENTS;
        p.max_command = DEFAULT_MAX_COMMAND;
        p.lfd = p.lctrl = p.sfd = -1;

        while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
                switch (c) {
                case OPT_LISTEN:
                        p.listen_path = optarg;
                        break;
                case OPT_UPSTREAM:
                        p.upstream_path = optarg;
                        break;
                case OPT_UPSTREAM_CTRL:
                        p.upstream_ctrl = optarg;
                        break;
                case OPT_DELAY:
                        if (parse_ulong("--delay-ms", optarg, 0, MAX_DELAY_MS, &v) < 0)
                                return 2;
                        p.delay_ms = (unsigned)v;
                        break;
                case OPT_COMMANDS:
                        if (parse_commands(&p, optarg) < 0)
                                return 2;
                        break;
                case OPT_MAX_CLIENTS:
                        if (parse_ulong("--max-clients", optarg, 1, MAX_MAX_CLIENTS, &v) < 0)
                                return 2;
                        p.max_clients = (unsigned)v;
                        break;
                case OPT_MAX_CMD:
                        if (parse_ulong("--max-command", optarg, TPM_HEADER_SIZE, DEFAULT_MAX_COMMAND * 16, &v) < 0)
                                return 2;
                        p.max_command = v;
                        break;
                case 'v':
                        p.verbose++;
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
                fprintf(stderr, "tpm-delay: unexpected argument '%s' (see --help)\n", argv[optind]);
                return 2;
        }
        if (!p.listen_path || !p.upstream_path) {
                fprintf(stderr, "tpm-delay: --listen and --upstream are required (see --help)\n");
                return 2;
        }
        if (asprintf(&p.ctrl_path, "%s.ctrl", p.listen_path) < 0)
                return 1;
        if (!p.upstream_ctrl) {
                if (asprintf(&upstream_ctrl, "%s.ctrl", p.upstream_path) < 0)
                        goto free_paths;
                p.upstream_ctrl = upstream_ctrl;
        }
        /* Room for the temporary name listen_unix binds first (".<pid>.tmp"). */
        if (strlen(p.ctrl_path) + 24 >= sizeof(sa.sun_path) || strlen(p.upstream_path) >= sizeof(sa.sun_path) ||
            strlen(p.upstream_ctrl) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tpm-delay: a socket path is too long (at most %zu bytes, %zu for --listen)\n",
                        sizeof(sa.sun_path) - 1, sizeof(sa.sun_path) - 30);
                ret = 2;
                goto free_paths;
        }
        if (strcmp(p.listen_path, p.upstream_path) == 0) {
                fprintf(stderr, "tpm-delay: --listen and --upstream are the same path\n");
                ret = 2;
                goto free_paths;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (p.sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
                fprintf(stderr, "tpm-delay: signalfd: %s\n", strerror(errno));
                goto free_paths;
        }
        signal(SIGPIPE, SIG_IGN);

        /* Control first: once PATH exists, both sockets accept connections. */
        r = listen_unix(p.ctrl_path);
        if (r < 0) {
                fprintf(stderr, "tpm-delay: listen on %s: %s\n", p.ctrl_path, strerror(-r));
                goto close_sfd;
        }
        p.lctrl = r;
        r = listen_unix(p.listen_path);
        if (r < 0) {
                fprintf(stderr, "tpm-delay: listen on %s: %s\n", p.listen_path, strerror(-r));
                goto close_ctrl;
        }
        p.lfd = r;
        if (p.verbose)
                fprintf(stderr, "tpm-delay: %s -> %s, delay %u ms\n", p.listen_path, p.upstream_path, p.delay_ms);

        r = run(&p);
        if (r < 0)
                fprintf(stderr, "tpm-delay: %s\n", strerror(-r));
        else
                ret = 0;

        while (p.clients)
                client_drop(&p, p.clients);
        while (p.relays)
                relay_drop(&p, p.relays);
        print_stats(&p);
        close(p.lfd);
        (void)unlink(p.listen_path);
close_ctrl:
        close(p.lctrl);
        (void)unlink(p.ctrl_path);
close_sfd:
        close(p.sfd);
free_paths:
        free(upstream_ctrl);
        free(p.ctrl_path);
        return ret;
}
