/* clnet — norm primitives (being written). */
#ifndef CLNET_NORM_H
#define CLNET_NORM_H

#include "tensor.h"

#endif
