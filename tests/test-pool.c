/* clnet tests — pool primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_pool(void)
{
    return suite_create("pool");
}
