/* clnet tests — act primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_act(void)
{
    return suite_create("act");
}
