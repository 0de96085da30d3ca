/* SPDX-License-Identifier: Apache-2.0 */
/* TCG Canonical Event Log (TLV, JSON): placeholder until the parser lands. */

#include <errno.h>

#include "cscp/cel.h"
#include "cscp/error.h"
#include "internal.h"

static int cel_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        (void)ev;
        return evlog_fail(l, CSCP_E_UNSUPPORTED, l->ev.offset, "CEL logs are not supported yet");
}

const evlog_ops_t evlog_cel_tlv_ops = {.format = CSCP_EVENTLOG_CEL_TLV, .next = cel_next};
const evlog_ops_t evlog_cel_json_ops = {.format = CSCP_EVENTLOG_CEL_JSON, .next = cel_next};
