/* clnet — data (being written). */
#ifndef CLNET_DATA_H
#define CLNET_DATA_H

#include "tensor.h"

#endif
