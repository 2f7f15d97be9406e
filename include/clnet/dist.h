/* clnet — data-parallel training over MPI: one process ("rank") per device,
 * each taking its shard of every global batch; gradients are averaged with
 * MPI_Iallreduce in buckets before every optimizer step (docs/dist.md).
 *
 * Availability: the API is always declared and always linked. In a build
 * without MPI (meson -Dmpi=disabled, or no MPI found) clnet_dist_create fails
 * with CLNET_ERR_UNSUPPORTED, so no clnet_dist object can exist and the other
 * calls return CLNET_ERR_UNSUPPORTED (or 0 / 1 / "" for the queries);
 * clnet_dist_available() tells which build this is.
 *
 * Collectives: a call marked "collective" must be made by every rank, in the
 * same order, with the same arguments (except the documented per-rank ones);
 * the implicit ones are the gradient reductions inside clnet_model_backward /
 * clnet_model_step of an attached model. No collective waits forever: each
 * one fails with CLNET_ERR_IO after the timeout (clnet_dist_params), naming
 * this rank, the collective and the reason. An MPI failure is CLNET_ERR_IO
 * too. After such a failure the job cannot continue: call clnet_dist_abort.
 *
 * Thread-safety: a clnet_dist is used by one thread at a time, the thread
 * that created it (MPI_THREAD_FUNNELED), together with the contexts and
 * models it works on.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_DIST_H
#define CLNET_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"
#include "nn.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A process's membership in a data-parallel job: its rank, the number of
 * ranks, its own MPI communicator, the timeout and the models attached. */
typedef struct clnet_dist clnet_dist;

typedef struct clnet_dist_params {
    /* Seconds any one collective may take before it fails (waiting for a
     * rank that died, hung or never called it). 0: the CLNET_DIST_TIMEOUT
     * environment variable, else 300 (room for a cold kernel compile). */
    double timeout_s;
    /* Gradient bucket size: consecutive layers' gradients are reduced
     * together until a bucket holds at least this many bytes. 0: the
     * CLNET_DIST_BUCKET_KB environment variable (KiB), else 256 KiB. */
    size_t bucket_bytes;
    /* Nonzero: average the ranks' per-shard mean gradients with equal
     * weights, as PyTorch's DistributedDataParallel does. That is biased
     * when shards differ in size (an uneven last batch); the default
     * weights each rank by its shard size and so matches one process. */
    int equal_weights;
    /* Optional: the address of an MPI_Comm to duplicate (an application that
     * runs MPI itself); NULL: MPI_COMM_WORLD. */
    const void *mpi_comm;
} clnet_dist_params;
#define CLNET_DIST_PARAMS_INIT                                                                     \
    {                                                                                              \
        .timeout_s = 0                                                                             \
    }
#define CLNET_DIST_PARAMS_DEFAULT ((clnet_dist_params)CLNET_DIST_PARAMS_INIT)

/* 1 when clnet was built with MPI, else 0. */
CLNET_API int clnet_dist_available(void);

/* 1 when the environment says this process was started by an MPI launcher
 * (mpirun / mpiexec / srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK is
 * set); reads the environment only, works in any build. */
CLNET_API int clnet_dist_launched(void);

/* Collective. Joins the job: initializes MPI (MPI_THREAD_FUNNELED) unless
 * the application already has, duplicates the communicator and makes its
 * errors return instead of abort (MPI_ERRORS_RETURN). params may be NULL.
 * On success *out is caller-owned: free with clnet_dist_destroy. On failure
 * *out is NULL and err (optional) receives the message.
 * CLNET_ERR_UNSUPPORTED: built without MPI. CLNET_ERR_IO: MPI failed. */
CLNET_API clnet_status clnet_dist_create(const clnet_dist_params *params, clnet_dist **out,
                                         char *err, size_t err_size);
/* Detaches every model still attached (they must still exist), frees the
 * communicator and finalizes MPI if clnet_dist_create initialized it (every
 * rank should then destroy its dist: MPI_Finalize is collective). After a
 * failed collective it does neither, since they could wait for the rank
 * that failed: call clnet_dist_abort instead. NULL is a no-op. */
CLNET_API void clnet_dist_destroy(clnet_dist *d);

/* This process's rank in [0, size); the number of ranks; the rank among the
 * ranks on this host (for a rank-to-device rule). NULL: 0, 1, 0. */
CLNET_API int clnet_dist_rank(const clnet_dist *d);
CLNET_API int clnet_dist_size(const clnet_dist *d);
CLNET_API int clnet_dist_local_rank(const clnet_dist *d);

/* The message of the last failure of a dist call ("" if none). Borrowed:
 * valid until the next call on d. Calls that take a model also record it on
 * the model's context. */
CLNET_API const char *clnet_dist_errmsg(const clnet_dist *d);

/* Collective. Every rank passes its own outcome of a step that can fail on
 * some ranks only (creating its device, loading a file): local is its
 * status, what a short description ("loading weights"), message its error
 * message (ignored when local is CLNET_OK; may be NULL). Returns CLNET_OK on
 * every rank when every rank passed CLNET_OK; otherwise, on every rank, the
 * status of the lowest failing rank, with "rank R: <what>: <message>" as
 * this dist's message and in err (optional). */
CLNET_API clnet_status clnet_dist_agree(clnet_dist *d, clnet_status local, const char *what,
                                        const char *message, char *err, size_t err_size);

/* Collective. Creates this rank's context, then agrees (clnet_dist_agree)
 * so that a rank whose device fails makes every rank fail with "rank R:
 * creating its device: <reason>". The device: params->device if set, else
 * CLNET_DEVICE; a comma-separated list ("0:0,0:1") gives each rank the entry
 * at its local rank modulo the list's length. With no spec at all, the
 * local rank's GPU (local rank modulo the number of GPUs) when there are
 * GPUs, else the default device. params may be NULL. On success *out is
 * caller-owned (clnet_context_destroy); on failure *out is NULL. */
CLNET_API clnet_status clnet_dist_context_create(clnet_dist *d, const clnet_context_params *params,
                                                 clnet_context **out, char *err, size_t err_size);

/* Collective. Sums n doubles over all ranks in place (host memory; the
 * result is the same on every rank). n >= 0. */
CLNET_API clnet_status clnet_dist_allreduce_sum(clnet_dist *d, double *values, int n);

/* ---- Models ---------------------------------------------------------------- */

/* Collective. Makes a compiled model data-parallel: copies every parameter
 * (running statistics too), the optimizer's moments and its step count
 * from rank 0 to the other ranks, so all begin identical (attach after
 * loading weights), and from now on averages the trainable gradients over the ranks
 * between clnet_model_backward and clnet_model_step. Every rank attaches
 * the same architecture in the same order (checked: CLNET_ERR_SHAPE names
 * the first parameter whose shape differs). Reduction: each rank's gradient
 * (the mean over its n_r rows) is multiplied by n_r, summed over the ranks
 * and divided by the sum of the n_r (equal_weights: averaged), in buckets
 * that start as soon as backward has finished their layers. A NaN or Inf
 * gradient on any rank reaches every rank's average, as it would reach one
 * process's mean. Contract while
 * attached: every rank calls backward and step in the same sequence; a rank
 * without rows in a global batch calls clnet_dist_skip_batch then
 * clnet_model_step instead. The model is borrowed: detach (or destroy d)
 * before destroying it. */
CLNET_API clnet_status clnet_dist_attach(clnet_dist *d, clnet_model *m);
/* Stops averaging m's gradients; not collective. A model not attached is
 * CLNET_ERR_INVALID_ARG. */
CLNET_API clnet_status clnet_dist_detach(clnet_dist *d, clnet_model *m);

/* This rank has no rows in the current global batch (the last batch has
 * fewer rows than there are ranks): its next clnet_model_step contributes
 * zero gradients with weight 0, and needs no backward before it. */
CLNET_API clnet_status clnet_dist_skip_batch(clnet_dist *d, clnet_model *m);

/* Collective. Checks that every rank holds bitwise the same parameters as
 * rank 0 (hashes, exchanged). CLNET_ERR_INTERNAL names the lowest rank and
 * the first parameter ("layers.3.kernel") that differ. */
CLNET_API clnet_status clnet_dist_check_params(clnet_dist *d, const clnet_model *m);

/* Collective. clnet_model_fit over the ranks of an attached model, giving
 * what one process gives with the same params and data, up to float32
 * rounding: every rank computes the same epoch order (shuffle_seed),
 * global batch s is rows [s*B, s*B + n) of it (B = batch_size; the last
 * batch may be shorter), and rank r trains on its contiguous part of them,
 * rows [n*r/N, n*(r+1)/N): it gathers only those rows of data on the host
 * and uploads them. Every rank passes the same params and a view of the
 * same dataset (data may be a mapped file: only its own rows are read).
 * Loss and accuracy are reduced over the ranks; p->progress is called on
 * rank 0 only (validation: clnet_dist_evaluate). At the end of each epoch
 * the non-trained parameters (BatchNorm's running statistics, which each
 * rank computes from its own shard) are copied from rank 0. p->history,
 * if set, gets each epoch's row on every rank (the reduced metrics, the
 * same on all; seconds are the rank's own). p->callbacks run on rank 0
 * only (one set of files, one decision; their event's history is rank
 * 0's): every rank then takes rank 0's learning rate after epoch_begin,
 * stops when it stops, and after train_end takes rank 0's weights (early
 * stopping's restored best ones). A hook's error fails every rank.
 * validation_split, initial_epoch and callbacks with batch_end are
 * clnet_model_fit's only for now: CLNET_ERR_UNSUPPORTED, naming them. */
CLNET_API clnet_status clnet_dist_fit(clnet_dist *d, clnet_model *m, const clnet_fit_params *p,
                                      const clnet_dataset_view *data);

/* Collective. clnet_model_evaluate over the ranks: rank r evaluates rows
 * [count*r/N, count*(r+1)/N) of data; the loss and accuracy returned on
 * every rank are the means over all count rows. loss, accuracy may be NULL. */
CLNET_API clnet_status clnet_dist_evaluate(clnet_dist *d, clnet_model *m,
                                           const clnet_dataset_view *data, int batch_size,
                                           double *loss, double *accuracy);

/* What the gradient reductions cost on this rank, since attach. */
typedef struct clnet_dist_stats {
    int64_t steps;         /* optimizer steps with a reduction */
    int buckets;           /* buckets per step */
    size_t bytes_per_step; /* gradient bytes one rank contributes per step */
    double download_s;     /* reading gradients into host buckets */
    double wait_s;         /* waiting for reductions to finish in step (exposed) */
    double upload_s;       /* writing averaged gradients back */
} clnet_dist_stats;

/* The counters of model m; CLNET_ERR_INVALID_ARG (no message) when m is
 * not attached to d. */
CLNET_API clnet_status clnet_dist_get_stats(const clnet_dist *d, const clnet_model *m,
                                            clnet_dist_stats *out);

/* Ends the whole job now (MPI_Abort with this exit code; mpirun prints
 * which rank called it): for an application that got a failure from a
 * collective, or failed on its own while the other ranks may be waiting for
 * it. Does not return in an MPI build; without MPI, or with d NULL, it does
 * nothing and returns. */
CLNET_API void clnet_dist_abort(clnet_dist *d, int exit_code);

#ifdef __cplusplus
}
#endif
#endif
