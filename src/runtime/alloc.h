/* clnet — host allocations. Every malloc, calloc, realloc, aligned_alloc and
 * free in src/ goes through these wrappers, so tests can count the live
 * blocks and make the n-th allocation fail (src/runtime/fault.h). No OpenCL
 * here: the safetensors parser and its fuzzer use them on their own. */
#ifndef CLNET_ALLOC_H
#define CLNET_ALLOC_H

#include <stddef.h>

/* As the C library's functions. A block from any of them is freed with
 * clnet__free, never free(); memory from other allocators (cJSON's) is never
 * passed to clnet__free. realloc(NULL, n) allocates; a failed realloc leaves
 * the old block as it was. */
void *clnet__malloc(size_t n);
void *clnet__calloc(size_t count, size_t size);
void *clnet__realloc(void *p, size_t n);
void *clnet__aligned_alloc(size_t alignment, size_t n);
void clnet__free(void *p);

#endif
