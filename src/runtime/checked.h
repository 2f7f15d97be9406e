/* clnet — overflow-checked int64 arithmetic for shape computations: every
 * op's output-shape code goes through these, so a huge dimension, pad or
 * stride gives an error instead of a wrapped size (signed overflow is
 * undefined behaviour in C). */
#ifndef CLNET_CHECKED_H
#define CLNET_CHECKED_H

#include <stdint.h>

/* a + b, a - b and a * b; on overflow the result is 0 and *overflow is set
 * (it is never cleared, so a chain of calls needs one test at its end). */
static inline int64_t clnet__add_i64(int64_t a, int64_t b, int *overflow)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

static inline int64_t clnet__sub_i64(int64_t a, int64_t b, int *overflow)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

static inline int64_t clnet__mul_i64(int64_t a, int64_t b, int *overflow)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

#endif
