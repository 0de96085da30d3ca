/* SPDX-License-Identifier: Apache-2.0 */
/* TCG PC Client crypto-agile event log: placeholder until the parser lands. */

#include "cscp/error.h"
#include "internal.h"

static int tcg_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        (void)ev;
        return evlog_fail(l, CSCP_E_UNSUPPORTED, l->ev.offset, "TCG event logs are not supported yet");
}

const evlog_ops_t evlog_tcg_ops = {.format = CSCP_EVENTLOG_TCG, .next = tcg_next};
