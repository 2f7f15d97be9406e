/* clnet — pool primitives (cl/pool.cl); being written. */
#include "clnet/pool.h"
#include "tensor/tensor_impl.h"
