/* SPDX-License-Identifier: Apache-2.0 */
/* Linux IMA measurement lists: placeholder until the parser lands. */

#include "cscp/error.h"
#include "internal.h"

static int ima_next(cscp_eventlog_t *l, cscp_event_t *ev)
{
        (void)ev;
        return evlog_fail(l, CSCP_E_UNSUPPORTED, l->ev.offset, "IMA lists are not supported yet");
}

const evlog_ops_t evlog_ima_ops = {.format = CSCP_EVENTLOG_IMA, .next = ima_next};
const evlog_ops_t evlog_ima_binary_ops = {.format = CSCP_EVENTLOG_IMA_BINARY, .next = ima_next};
