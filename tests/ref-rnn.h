/* clnet tests: float64 reference of the recurrent primitives (being written). */
#ifndef CLNET_TESTS_REF_RNN_H
#define CLNET_TESTS_REF_RNN_H

#include <stddef.h>

#endif
