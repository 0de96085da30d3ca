/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

const char *cscp_strerror(int r)
{
        switch (r) {
#define CSCP_X_CASE(name, value, text) \
        case name:                     \
                return text;
                CSCP_ERRORS(CSCP_X_CASE)
#undef CSCP_X_CASE
        default:
                break;
        }
        if (r == 0)
                return "success";
        if (r < 0 && r > -4096)
                return strerror(-r);
        return "unknown error";
}

const char *cscp_err_name(int r)
{
        switch (r) {
#define CSCP_X_NAME(name, value, text) \
        case name:                     \
                return #name;
                CSCP_ERRORS(CSCP_X_NAME)
#undef CSCP_X_NAME
        default:
                break;
        }
        if (r == 0)
                return "OK";
        if (r < 0 && r > -4096) {
                const char *n = strerrorname_np(-r);
                return n ? n : "?";
        }
        return "?";
}

int cscp_err_set(char *err, size_t err_len, int code, const char *fmt, ...)
{
        va_list ap;

        if (err && err_len) {
                va_start(ap, fmt);
                vsnprintf(err, err_len, fmt, ap);
                va_end(ap);
        }
        return code;
}
