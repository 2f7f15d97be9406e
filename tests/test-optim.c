/* clnet tests — optim primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_optim(void)
{
    return suite_create("optim");
}
