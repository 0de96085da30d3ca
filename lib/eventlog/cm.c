/* SPDX-License-Identifier: Apache-2.0 */
/* CEL-TLV record encoding and CM_TLV content: placeholder until it lands. */

#include <errno.h>

#include "cscp/cel.h"

int cscp_cm_encode(cscp_cm_kind_t kind, const cscp_cm_field_value_t *fields, size_t n_fields, uint8_t **ret,
                   size_t *ret_len)
{
        (void)kind, (void)fields, (void)n_fields, (void)ret, (void)ret_len;
        return -ENOSYS;
}

int cscp_cm_decode(const uint8_t *buf, size_t len, cscp_cm_record_t *ret)
{
        (void)buf, (void)len, (void)ret;
        return -ENOSYS;
}
