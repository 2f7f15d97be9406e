/* clnet — the data-parallel API in a build without MPI: clnet_dist_create
 * fails with CLNET_ERR_UNSUPPORTED, so no clnet_dist exists, and every other
 * call returns CLNET_ERR_UNSUPPORTED or a neutral value (include/clnet/dist.h). */
#include <stdio.h>
#include <stdlib.h>

#include "clnet/dist.h"

CLNET_API int clnet_dist_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

#define NO_MPI "clnet was built without MPI (install an MPI and configure with -Dmpi=enabled)"

static clnet_status unsupported(char *err, size_t err_size)
{
    if (err && err_size)
        snprintf(err, err_size, "%s", NO_MPI);
    return CLNET_ERR_UNSUPPORTED;
}

CLNET_API int clnet_dist_available(void)
{
    return 0;
}
CLNET_API clnet_status clnet_dist_create(const clnet_dist_params *p, clnet_dist **out, char *err,
                                         size_t n)
{
    (void)p;
    if (out)
        *out = NULL;
    return unsupported(err, n);
}
CLNET_API void clnet_dist_destroy(clnet_dist *d)
{
    (void)d;
}
CLNET_API int clnet_dist_rank(const clnet_dist *d)
{
    (void)d;
    return 0;
}
CLNET_API int clnet_dist_size(const clnet_dist *d)
{
    (void)d;
    return 1;
}
CLNET_API int clnet_dist_local_rank(const clnet_dist *d)
{
    (void)d;
    return 0;
}
CLNET_API const char *clnet_dist_errmsg(const clnet_dist *d)
{
    (void)d;
    return NO_MPI;
}
CLNET_API void clnet_dist_abort(clnet_dist *d, int code)
{
    (void)d;
    (void)code;
}
CLNET_API clnet_status clnet_dist_agree(clnet_dist *d, clnet_status local, const char *what,
                                        const char *message, char *err, size_t n)
{
    (void)d, (void)local, (void)what, (void)message;
    return unsupported(err, n);
}
CLNET_API clnet_status clnet_dist_context_create(clnet_dist *d, const clnet_context_params *p,
                                                 clnet_context **out, char *err, size_t n)
{
    (void)d, (void)p;
    if (out)
        *out = NULL;
    return unsupported(err, n);
}
CLNET_API clnet_status clnet_dist_allreduce_sum(clnet_dist *d, double *v, int n)
{
    (void)d, (void)v, (void)n;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_attach(clnet_dist *d, clnet_model *m)
{
    (void)d, (void)m;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_detach(clnet_dist *d, clnet_model *m)
{
    (void)d, (void)m;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_skip_batch(clnet_dist *d, clnet_model *m)
{
    (void)d, (void)m;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_check_params(clnet_dist *d, const clnet_model *m)
{
    (void)d, (void)m;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_fit(clnet_dist *d, clnet_model *m, const clnet_fit_params *p,
                                      const clnet_dataset_view *data)
{
    (void)d, (void)m, (void)p, (void)data;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_evaluate(clnet_dist *d, clnet_model *m,
                                           const clnet_dataset_view *data, int batch_size,
                                           double *loss, double *accuracy)
{
    (void)d, (void)m, (void)data, (void)batch_size, (void)loss, (void)accuracy;
    return CLNET_ERR_UNSUPPORTED;
}
CLNET_API clnet_status clnet_dist_get_stats(const clnet_dist *d, const clnet_model *m,
                                            clnet_dist_stats *out)
{
    (void)d, (void)m, (void)out;
    return CLNET_ERR_UNSUPPORTED;
}
