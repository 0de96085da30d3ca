/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * cscp-oci-hook's reading of what an OCI runtime hands a hook (private to
 * vtpmd/hook*.c and the tests): the container state on stdin (runtime-spec
 * runtime.md "State") and the bundle's config.json (config.md). Both are
 * untrusted input: sizes are checked before reading, counts and string
 * lengths before anything is kept, container ids by the OCI/vtpmd rules.
 * docs/oci-hook.md says what is measured and how the digest is computed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HOOK_STATE_MAX       (64u * 1024)       /* the state JSON on stdin */
#define HOOK_CONFIG_MAX      (4u * 1024 * 1024) /* <bundle>/config.json */
#define HOOK_MAX_ANNOTATIONS 1024               /* annotations kept from config.json */
#define HOOK_JSON_DEPTH      64                 /* nesting accepted by the JSON parser */
#define HOOK_DIGEST_LEN      (7 + 64)           /* "sha256:" + 64 hex */
#define HOOK_ANNOTATION      "org.cscp.vtpm"    /* required (default) | optional | disabled */

#define HOOK_MAX_DEVICE_RULES 1024 /* linux.resources.devices entries kept from config.json */
#define HOOK_MAX_HOOKS        64   /* hooks.createContainer entries (and args looked at per entry) */

/* One linux.resources.devices entry (config-linux.md "Allowed Device Cgroup"); -1 = any. */
typedef struct hook_device_rule {
        bool allow;
        char type;         /* 'a' (all, also when absent), 'c', 'b' */
        long major, minor; /* -1: absent or null (any) */
        char access[4];    /* a subset of "rwm"; "rwm" when absent */
} hook_device_rule_t;

/* What the container's config asks of the hook (annotation org.cscp.vtpm). */
typedef enum hook_mode {
        HOOK_MODE_REQUIRED = 0, /* no vTPM, no container */
        HOOK_MODE_OPTIONAL,     /* run without a vTPM when provisioning fails (a warning on stderr) */
        HOOK_MODE_DISABLED,     /* the hook does nothing for this container */
} hook_mode_t;

/* The OCI state (runtime.md): the fields the hook uses. */
typedef struct hook_state {
        char *oci_version;
        char *id;     /* checked with vtpmd_container_id_check */
        char *status; /* "creating", "created", "running", "stopped" (may be "") */
        pid_t pid;    /* 0 when absent (poststop) */
        char *bundle; /* absolute path */
} hook_state_t;

/* The parts of config.json the hook measures or needs. */
typedef struct hook_config {
        char digest[HOOK_DIGEST_LEN + 1]; /* "sha256:<hex>" of the config.json bytes as read */
        char *oci_version;
        char **args, **env;
        size_t n_args, n_env;
        char *root; /* root.path made absolute (relative paths are relative to the bundle) */
        /* Measured annotations (org.opencontainers.image.*, the CRI image keys), sorted by key. */
        char **ann_keys, **ann_values;
        size_t n_ann;
        const char *image_name; /* points into ann_values, or NULL */
        char **layers;          /* "sha256:<hex>" digests found in the image annotations */
        size_t n_layers;
        hook_mode_t mode;
        hook_device_rule_t *dev_rules; /* linux.resources.devices, in order */
        size_t n_dev_rules;
        char **cc_hooks; /* hooks.createContainer paths whose args say "createContainer" */
        size_t n_cc_hooks;
} hook_config_t;

/* Parses the state JSON (len <= HOOK_STATE_MAX). On failure a message is in err. */
int hook_state_parse(const char *buf, size_t len, size_t id_max, hook_state_t *ret, char *err, size_t err_len);
/* Reads fd to EOF (refusing more than HOOK_STATE_MAX bytes) and parses it. */
int hook_state_read(int fd, size_t id_max, hook_state_t *ret, char *err, size_t err_len);
void hook_state_free(hook_state_t *s);

/* Parses config.json bytes; bundle makes a relative root.path absolute. */
int hook_config_parse(const char *buf, size_t len, const char *bundle, hook_config_t *ret, char *err, size_t err_len);
/* Reads <bundle>/config.json (O_NOFOLLOW, regular file, <= HOOK_CONFIG_MAX) and parses it. */
int hook_config_load(const char *bundle, hook_config_t *ret, char *err, size_t err_len);
void hook_config_free(hook_config_t *c);

const char *hook_mode_name(hook_mode_t m);

/* ---- --frontend vtpm-proxy: device nodes and the device cgroup (docs/oci-hook.md) ---- */

/*
 * Whether the config's device rules give a character device major:minor every
 * access in need ("rwm"): runc's reading (and the kernel's cgroup v1 one) is
 * default deny, later entries override earlier ones.
 */
bool hook_devices_allowed(const hook_config_t *c, char type, unsigned major, unsigned minor, const char *need);

/*
 * Makes the character device name (a plain name) in dirfd with major:minor,
 * mode 0660, owned by root:root. 1 when an identical node is already there (a
 * retried hook), 0 when made; anything else under that name is refused.
 */
int hook_dev_node(int dirfd, const char *name, unsigned major, unsigned minor, char *err, size_t err_len);

/* The cgroup version that governs devices below mount (normally /sys/fs/cgroup): 1, 2, or < 0. */
int hook_cgroup_devices_version(const char *mount);

/*
 * cgroup v1: the devices cgroup directory of a process, from its
 * /proc/<pid>/cgroup (proc_cgroup) and the controller's mount (e.g.
 * /sys/fs/cgroup/devices). The path is refused if it has a ".." component.
 */
int hook_cgroup_v1_devices_dir(const char *proc_cgroup, const char *devices_mount, char *ret, size_t ret_len, char *err,
                               size_t err_len);

/* cgroup v1: appends "c major:minor access" to <dir>/devices.allow (one write per rule, as the kernel wants). */
int hook_devices_allow(const char *dir, unsigned major, unsigned minor, const char *access, char *err, size_t err_len);
