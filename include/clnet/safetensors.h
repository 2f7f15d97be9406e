/* clnet — safetensors (being written). */
#ifndef CLNET_SAFETENSORS_H
#define CLNET_SAFETENSORS_H

#include "tensor.h"

#endif
