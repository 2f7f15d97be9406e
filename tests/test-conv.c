/* clnet tests — conv primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_conv(void)
{
    return suite_create("conv");
}
