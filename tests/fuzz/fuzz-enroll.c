/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the challenger's checks of an EnrollInfo from the network
 * (cscp_enroll_check_info: TPMT_PUBLIC of EK and AK, the EK certificate's DER,
 * its SubjectAltName). The input is a Frame payload; whatever the bytes, no
 * crash, no out-of-bounds access, and a verdict that is "enrolled" only with
 * a parsed AK Name.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cscp/enroll.h"
#include "cscp/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cscp_enroll_opts_t o = {.tofu = true};
        cscp_enroll_result_t res;
        Cscp__Frame *f = NULL;
        char err[256];
        int r;

        if (cscp_frame_unpack(data, size, &f) < 0)
                return 0;
        if (f->body_case == CSCP__FRAME__BODY_ENROLL_INFO) {
                r = cscp_enroll_check_info(f->enroll_info, &o, &res, err, sizeof(err));
                if (r == CSCP_ENROLL_ENROLLED && (res.ak_name_len <= 2 || !res.method))
                        abort();
                if (r == CSCP_ENROLL_REFUSED && res.reason[0] == '\0')
                        abort();
        }
        cscp__frame__free_unpacked(f, NULL);
        return 0;
}
