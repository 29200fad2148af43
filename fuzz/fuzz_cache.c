/* libFuzzer harness for the warm-start cache reader (hc_cache_parse): the
 * first byte picks the model (bit 1: the MLP) and whether the harness
 * rewrites the trailing CRC-32 to match (bit 0), so that mutations reach the
 * checks behind the checksum. Any bytes must be loaded or refused, never
 * crash; a refused file leaves the model exactly as it was, a loaded one
 * holds only finite values within the bound. */
#include "fuzz_cache.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    hc_model m;
    hc_cache_key k;
    if (fc_open(&m, &k, data[0] >> 1 & 1))
        return 0;
    for (int i = 0; i < m.n_params; i++)
        for (size_t j = 0; j < m.size[i]; j++)
            m.theta[i][j] = 7;
    size_t n = size - 1;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    memcpy(buf, data + 1, n);
    if ((data[0] & 1) && n >= 4) {
        uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(n - 4));
        memcpy(buf + n - 4, &crc, sizeof crc);
    }
    char err[256] = "";
    int rc = hc_cache_parse(buf, n, &k, &m, err, sizeof err);
    if (rc != HC_CACHE_LOADED && (rc != HC_CACHE_REJECTED || !err[0]))
        abort();
    for (int i = 0; i < m.n_params; i++)
        for (size_t j = 0; j < m.size[i]; j++) {
            double v = m.theta[i][j];
            if (rc == HC_CACHE_REJECTED ? v != 7 : !(isfinite(v) && fabs(v) <= HC_CACHE_MAX_ABS))
                abort();
        }
    free(buf);
    hc_model_free(&m);
    return 0;
}
