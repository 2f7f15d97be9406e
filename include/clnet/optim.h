/* clnet — optim primitives (being written). */
#ifndef CLNET_OPTIM_H
#define CLNET_OPTIM_H

#include "tensor.h"

#endif
