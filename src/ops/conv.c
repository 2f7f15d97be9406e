/* clnet — conv primitives (cl/conv.cl); being written. */
#include "clnet/conv.h"
#include "tensor/tensor_impl.h"
