/* clnet tests — recurrent primitives against the float64 reference; being written. */
#include "harness.h"
#include "ref.h"

Suite *suite_rnn(void)
{
    return suite_create("rnn");
}
