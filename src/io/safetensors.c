/* clnet — safetensors weights (being written). */
#include "clnet/safetensors.h"
