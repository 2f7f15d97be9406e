/* clnet-train gan — the reference DCGAN (being written). */
#include "train.h"

int train_gan(clnet_context *ctx, const options *o)
{
    (void)o;
    fprintf(stderr, "clnet-train: gan is being written (issue 6)\n");
    (void)ctx;
    return 2;
}
