/* clnet — recurrent kernels; being written. */
#pragma OPENCL FP_CONTRACT OFF
