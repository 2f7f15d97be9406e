/* clnet — act primitives (cl/act.cl); being written. */
#include "clnet/act.h"
#include "tensor/tensor_impl.h"
