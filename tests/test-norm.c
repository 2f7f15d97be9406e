/* clnet tests — norm primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_norm(void)
{
    return suite_create("norm");
}
