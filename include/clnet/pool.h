/* clnet — pool primitives (being written). */
#ifndef CLNET_POOL_H
#define CLNET_POOL_H

#include "tensor.h"

#endif
