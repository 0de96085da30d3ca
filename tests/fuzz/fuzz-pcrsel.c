/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: cscp_pcrsel_parse, then format, parse again, and the
 * wire round trip; each step must agree with the first parse.
 * Seeds: the unit test pcrsel_seeds writes them to $BUILD/fuzz-seeds/pcrsel/.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cscp/pcr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_abort(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b)
{
        uint32_t i;
        unsigned p;

        if (a->count != b->count)
                abort();
        for (i = 0; i < a->count; i++) {
                if (a->pcrSelections[i].hash != b->pcrSelections[i].hash)
                        abort();
                for (p = 0; p < CSCP_PCR_COUNT; p++)
                        if (cscp_pcrsel_is_set(&a->pcrSelections[i], p) != cscp_pcrsel_is_set(&b->pcrSelections[i], p))
                                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        TPML_PCR_SELECTION sel, again, wire_back;
        Cscp__PcrSelection **w = NULL;
        size_t n = 0, count;
        char out[1024], tiny[8];
        char *text;

        if (size > 4096)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        if (cscp_pcrsel_parse(text, &sel) != 0)
                goto out;

        count = cscp_pcrsel_count(&sel);
        if (sel.count > TPM2_NUM_PCR_BANKS || count > (size_t)sel.count * CSCP_PCR_COUNT)
                abort();
        if (!cscp_pcrsel_covers(&sel, &sel))
                abort();

        if (cscp_pcrsel_format(&sel, out, sizeof(out)) < 0)
                abort(); /* 4 banks of 24 PCRs fit easily */
        if (memchr(out, '\0', sizeof(out)) == NULL)
                abort();
        if (cscp_pcrsel_parse(out, &again) != 0)
                abort();
        same_or_abort(&sel, &again);
        (void)cscp_pcrsel_format(&sel, tiny, sizeof(tiny)); /* must not overflow */

        if (cscp_pcrsel_to_wire(&sel, &w, &n) != 0)
                abort();
        if (n != sel.count)
                abort();
        if (cscp_pcrsel_from_wire(w, n, &wire_back) != 0)
                abort();
        same_or_abort(&sel, &wire_back);
        cscp_pcrsel_wire_free(w, n);
out:
        free(text);
        return 0;
}
