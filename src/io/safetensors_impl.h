/* clnet — what the safetensors reader (src/io/safetensors.c) shares with
 * the writer (src/io/safetensors_write.c). */
#ifndef CLNET_IO_SAFETENSORS_IMPL_H
#define CLNET_IO_SAFETENSORS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "io/diag.h"

/* Shapes and offsets are JSON numbers, which cJSON holds as doubles: only
 * integers below 2^53 are exact, so larger values are refused. */
#define MAX_INT 9007199254740992.0
#define DATA_ALIGN 16
#define META_KEY "__metadata__"

/* ---- Errors ------------------------------------------------------------- */

/* Where messages go and what they start with ("clnet_safetensors_parse" or
 * the path of the file). */
typedef clnet__diag diag;
#define report clnet__diag_report

/* a * b, or 0 with *overflow set when it exceeds limit. */
uint64_t clnet__st_mul_capped(uint64_t a, uint64_t b, uint64_t limit, int *overflow);

/* Whether s is valid UTF-8 (strict: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
int clnet__st_utf8_valid(const char *s);

/* The first string that occurs twice among n, or NULL. Sorts `names`. */
const char *clnet__st_find_duplicate(const char **names, size_t n);

/* n rounded up to a multiple of a. */
size_t clnet__st_round_up(size_t n, size_t a);

#endif
