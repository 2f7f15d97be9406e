/* clnet — loss primitives (cl/loss.cl); being written. */
#include "clnet/loss.h"
#include "tensor/tensor_impl.h"
