/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for attestd's --acl parser (attestd/acl.c).
 *
 * Input: the file's bytes. Checks, whatever the input: the parser never
 * reads past the buffer (an exact-length copy), accepts or refuses with a
 * message naming a line, and an accepted ACL answers lookups (the all-zero
 * fingerprint, the host, a container) without crashing; a refused one leaves
 * nothing behind (LeakSanitizer).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t zero[32];
        char err[256] = "";
        char *buf = malloc(size ? size : 1);
        acl_t *a = NULL;
        int r;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        r = acl_parse(buf, size, &a, err, sizeof(err));
        if (r < 0) {
                if (a || strncmp(err, "line ", 5) != 0)
                        abort();
        } else {
                if (!a)
                        abort();
                (void)acl_allows(a, zero, NULL);
                (void)acl_allows(a, zero, "");
                (void)acl_allows(a, zero, "ctr-a");
                (void)acl_rules(a);
                acl_free(a);
        }
        free(buf);
        return 0;
}
