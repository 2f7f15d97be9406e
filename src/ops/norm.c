/* clnet — norm primitives (cl/norm.cl); being written. */
#include "clnet/norm.h"
#include "tensor/tensor_impl.h"
