/* clnet tests — IDX and safetensors readers and writers; being written. */
#include "harness.h"

Suite *suite_io(void)
{
    return suite_create("io");
}
