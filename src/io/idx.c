/* clnet — IDX dataset files (being written). */
#include "clnet/data.h"
