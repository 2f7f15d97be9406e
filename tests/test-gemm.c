/* clnet tests — gemm primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_gemm(void)
{
    return suite_create("gemm");
}
