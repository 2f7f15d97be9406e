/* clnet tests — loss primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_loss(void)
{
    return suite_create("loss");
}
