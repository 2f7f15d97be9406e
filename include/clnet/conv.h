/* clnet — conv primitives (being written). */
#ifndef CLNET_CONV_H
#define CLNET_CONV_H

#include "tensor.h"

#endif
