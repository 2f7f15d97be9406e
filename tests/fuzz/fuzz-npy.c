/* clnet fuzzing — libFuzzer target for the .npy reader (src/io/npy.c). No
 * OpenCL. Every input is parsed or rejected with a message; an accepted
 * array must keep the reader's promises (numel the product of the shape,
 * exactly 4 * numel data bytes in the input). */
#include <stdint.h>
#include <stdlib.h>

#include "clnet/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clnet_npy *a = NULL;
    char err[512];
    err[0] = 0;
    if (clnet_npy_parse(data, size, &a, err, sizeof err) != CLNET_OK) {
        if (a || !err[0])
            abort(); /* a failure leaves no result and always says why */
        return 0;
    }
    size_t numel = 1;
    for (int i = 0; i < a->ndim; i++)
        numel *= (size_t)a->shape[i];
    if (a->ndim < 0 || a->ndim > CLNET_MAX_DIMS || numel != a->numel || 4 * numel > size)
        abort();
    volatile float sink = 0;
    for (size_t i = 0; i < a->numel; i++)
        sink += a->data[i]; /* every element readable */
    (void)sink;
    clnet_npy_free(a);
    return 0;
}
