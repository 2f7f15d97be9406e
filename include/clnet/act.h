/* clnet — act primitives (being written). */
#ifndef CLNET_ACT_H
#define CLNET_ACT_H

#include "tensor.h"

#endif
