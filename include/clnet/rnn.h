/* clnet — recurrent primitives (being written). */
#ifndef CLNET_RNN_H
#define CLNET_RNN_H

#include "tensor.h"

#endif
