/* clnet tests: float64 reference of the recurrent primitives (being written). */
#include "ref-rnn.h"

typedef int ref_rnn_placeholder;
