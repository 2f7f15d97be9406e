/* clnet — data-parallel training, private to src/dist: the dist object,
 * attached models and their gradient buckets, and the helpers fit.c shares
 * with dist.c. Built only with MPI. */
#ifndef CLNET_DIST_IMPL_H
#define CLNET_DIST_IMPL_H

#include <mpi.h>

#include "clnet/dist.h"
#include "nn/nn_impl.h"
#include "runtime/runtime.h"

/* Models one dist can hold at once (a GAN needs two). */
#define MAX_ATTACHED 8

/* Layers [lo, hi]'s trained gradients, reduced together. Bucket 0 (the last
 * layers, finished first) carries one more float: the rows this rank
 * contributes, so the sum of rows comes with the sum of gradients. */
typedef struct bucket {
    int lo, hi;
    size_t floats;
    float *host;
    MPI_Request req;
    int started;
} bucket;

/* One attached model: its bucket plan and counters. */
typedef struct attachment {
    clnet_dist *d;
    clnet_model *m;
    int nbuckets;
    bucket *buckets;
    uint64_t plan_key; /* which layers were trained when planned */
    int skip;          /* next step: no rows on this rank */
    clnet_dist_stats stats;
} attachment;

struct clnet_dist {
    MPI_Comm comm;
    int rank, size, local_rank;
    int finalize; /* clnet_dist_create called MPI_Init_thread */
    int broken;   /* a collective failed: MPI_Finalize could wait forever */
    double timeout;
    size_t bucket_bytes;
    int equal_weights;
    attachment *att[MAX_ATTACHED];
    char err[2048];
};

/* Records a message on d (and on ctx when given); returns status. */
clnet_status clnet__dist_fail(clnet_dist *d, const clnet_context *ctx, clnet_status status,
                              const char *fmt, ...) CLNET_PRINTF(4, 5);
/* In-place MPI_Iallreduce waited for with d's deadline. */
clnet_status clnet__dist_allreduce(clnet_dist *d, const clnet_context *ctx, void *buf, int count,
                                   MPI_Datatype type, MPI_Op op, const char *what);
/* clnet_dist_agree, also recording the message on ctx. */
clnet_status clnet__dist_agree(clnet_dist *d, const clnet_context *ctx, clnet_status local,
                               const char *what, const char *message);
/* The attachment of m, or NULL. */
attachment *clnet__dist_find(const clnet_dist *d, const clnet_model *m);
/* Copies n of m's tensors from rank 0 to every rank. */
clnet_status clnet__dist_bcast_tensors(clnet_dist *d, const clnet_model *m, clnet_tensor **t, int n,
                                       const char *what);

#endif
