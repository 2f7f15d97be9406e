/* clnet example: the README's first program. Sums random numbers on the
 * default device (or CLNET_DEVICE) and prints what ran where. */
#include <stdio.h>

#include <clnet/clnet.h>

int main(void)
{
    char err[2048];
    clnet_context *ctx;
    if (clnet_context_create(NULL, &ctx, err, sizeof err) != CLNET_OK) {
        fprintf(stderr, "hello: %s\n", err);
        return 1;
    }
    clnet_tensor *x = NULL;
    float sum = 0;
    clnet_status st = clnet_tensor_create(ctx, CLNET_F32, 2, (int64_t[]){ 1000, 1000 }, &x);
    if (!st)
        st = clnet_tensor_rand_uniform(x, 42, 0, 0.0f, 1.0f); /* seed 42, stream 0 */
    if (!st)
        st = clnet_sum_host(x, &sum);
    if (st)
        fprintf(stderr, "hello: %s\n", clnet_context_errmsg(ctx));
    else
        printf("clnet %s on %s: the sum of 10^6 uniform numbers in [0, 1) is %.1f\n",
               clnet_version(), clnet_context_device(ctx)->name, sum);
    clnet_tensor_destroy(x);
    clnet_context_destroy(ctx);
    return st ? 1 : 0;
}
