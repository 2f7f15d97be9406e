/* clnet fuzzing — libFuzzer target for the safetensors parser. No OpenCL:
 * the parser, cJSON and the host allocation wrappers only. Every input must
 * be parsed or rejected with a message; an accepted file must satisfy the
 * parser's promises (entries inside the data section, sizes that add up). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clnet_safetensors *st = NULL;
    char err[512];
    err[0] = 0;
    clnet_status s = clnet_safetensors_parse(data, size, &st, err, sizeof err);
    if (s != CLNET_OK) {
        if (st || !err[0])
            abort(); /* a failure leaves no result and always says why */
        return 0;
    }
    size_t covered = 0;
    for (size_t i = 0; i < st->count; i++) {
        const clnet_safetensors_entry *e = &st->entries[i];
        if (e->offset > st->data_size || e->size > st->data_size - e->offset ||
            e->size != e->numel * e->elem_size || !e->name[0] ||
            clnet_safetensors_find(st, e->name) != e)
            abort();
        covered += e->size;
        volatile unsigned char sink = 0;
        for (size_t b = 0; b < e->size; b += 64) /* every byte is readable */
            sink ^= ((const unsigned char *)e->data)[b];
        (void)sink;
    }
    if (covered != st->data_size)
        abort();
    for (size_t i = 0; i < st->metadata_count; i++)
        if (clnet_safetensors_metadata(st, st->metadata[i].key) == NULL)
            abort();
    clnet_safetensors_free(st);
    return 0;
}
