/* clnet — recurrent primitives (cl/rnn.cl); being written. */
#include "clnet/rnn.h"
#include "tensor/tensor_impl.h"
