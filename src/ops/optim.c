/* clnet — optim primitives (cl/optim.cl); being written. */
#include "clnet/optim.h"
#include "tensor/tensor_impl.h"
