/* clnet — the prelude: passed as the first source string of every program.
 * Each kernel file also compiles on its own (every -D constant has a default). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLNET_WG
#define CLNET_WG 64
#endif
