/* clnet — loss primitives (being written). */
#ifndef CLNET_LOSS_H
#define CLNET_LOSS_H

#include "tensor.h"

#endif
