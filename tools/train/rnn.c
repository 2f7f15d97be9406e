/* clnet-train lstm / rnn — the reference recurrent stacks (being written). */
#include "train.h"

int train_rnn(clnet_context *ctx, const options *o)
{
    (void)ctx;
    fprintf(stderr, "clnet-train: %s is being written (issue 5)\n", o->model);
    return 2;
}
