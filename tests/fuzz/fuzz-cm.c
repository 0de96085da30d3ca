/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CM_TLV content codec (lib/eventlog/cm.c).
 *
 * Input: a CM_TLV content value. What cscp_cm_decode accepts must encode
 * back to the same bytes (the encoding is canonical), convert to JSON, and
 * hash in every bank; as a CEL-TLV record it must parse and survive
 * TLV -> JSON -> TLV byte for byte. tests/unit/test-eventlog-cel.c writes
 * seeds to <build>/fuzz-seeds/cm/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"
#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint16_t banks[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512, 0};
        uint8_t *in = malloc(size ? size : 1), *enc = NULL, *rec = NULL, *back = NULL;
        cscp_cm_field_value_t f[CSCP_CM_MAX_FIELDS];
        cscp_event_digest_t d[CSCP_EVENT_MAX_DIGESTS];
        cscp_cm_record_t cm;
        size_t n = 0, el = 0, nd = 0, rl = 0, bl = 0;
        cscp_eventlog_t *l = NULL;
        const cscp_event_t *ev;
        char *j = NULL;

        if (!in)
                return 0;
        memcpy(in, data, size);
        if (cscp_cm_decode(in, size, &cm) < 0) {
                if (cscp_cm_digests(in, size, banks, d, &nd) == 0)
                        abort(); /* digests only for content that decodes */
                goto out;
        }
        for (unsigned t = 0; t < CSCP_CM_MAX_FIELDS; t++)
                if (cm.f[t].data)
                        f[n++] = (cscp_cm_field_value_t){(cscp_cm_field_t)t, cm.f[t].data, cm.f[t].len};
        if (cscp_cm_encode(cm.kind, f, n, &enc, &el) < 0) {
                if (size <= CSCP_CM_MAX_CONTENT)
                        abort();
                goto out;
        }
        if (el != size || memcmp(enc, in, size) != 0)
                abort();
        if (cscp_cm_to_json(in, size, &j) < 0)
                abort();
        free(j);
        j = NULL;
        if (cscp_cm_digests(in, size, banks, d, &nd) < 0 || nd != 4)
                abort();
        if (cscp_cel_tlv_encode(0, 15, false, d, nd, CSCP_CEL_CM_TLV, in, size, &rec, &rl) < 0)
                abort();
        if (cscp_eventlog_open_mem(rec, rl, CSCP_EVENTLOG_AUTO, NULL, NULL, &l) < 0 || cscp_eventlog_next(l, &ev) != 1)
                abort();
        if (cscp_cel_event_to_json(ev, &j) < 0 || cscp_cel_json_to_tlv(j, strlen(j), &back, &bl) < 0)
                abort();
        if (bl != rl || memcmp(back, rec, rl) != 0)
                abort();
out:
        cscp_eventlog_free(l);
        free(j);
        free(back);
        free(rec);
        free(enc);
        free(in);
        return 0;
}
