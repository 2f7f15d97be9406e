/* clnet — the hooks clnet_model_fit (train.c) calls around its loop; they
 * run the callbacks, keep the history and split validation data
 * (callbacks.c). Private to src/nn. */
#ifndef CLNET_FIT_HOOKS_H
#define CLNET_FIT_HOOKS_H

#include "clnet/callbacks.h"

typedef struct clnet__fit_run {
    clnet_model *m;
    const clnet_fit_params *p;
    int batch_hooks;                      /* some callback has batch_end */
    int stop;                             /* a callback asked to stop */
    int first_epoch;                      /* the history's epoch number of this fit's epoch 1 */
    double lr;                            /* the learning rate of the current epoch */
    int64_t seen;                         /* samples trained on in the current epoch */
    clnet_dataset_view train, val;        /* after a validation split */
    const clnet_dataset_view *validation; /* &val, p->validation or NULL */
} clnet__fit_run;

/* Checks the new fit params, splits validation data off `data`, runs
 * train_begin. */
clnet_status clnet__fit_begin(clnet__fit_run *r, clnet_model *m, const clnet_fit_params *p,
                              const clnet_dataset_view *data);
/* Advances *state past the sample orders of the initial_epoch epochs
 * already done, as fit would have drawn them. */
clnet_status clnet__fit_skip(clnet__fit_run *r, uint64_t *state, int64_t count);
/* epoch_begin; then reads the learning rate the epoch uses. */
clnet_status clnet__fit_epoch_begin(clnet__fit_run *r, int epoch);
/* batch_end with the running means in *pr. */
clnet_status clnet__fit_batch_end(clnet__fit_run *r, const clnet_progress *pr);
/* epoch_end with the row made from *pr, then appends it to the history. */
clnet_status clnet__fit_epoch_end(clnet__fit_run *r, const clnet_progress *pr);
/* train_end, unless st already is an error; returns the first error. */
clnet_status clnet__fit_end(clnet__fit_run *r, clnet_status st);

/* ---- The built-in callbacks' state in a training-state file (resume.c) ---- */

/* The metadata key of cbs[i]'s state, "callback.KIND.K" (K counts the
 * callbacks of that kind before it); 0 for a callback without state (a
 * user's own). */
int clnet__callback_key(const clnet_callback *cbs, int i, char *key, size_t size);
/* cb's state as text, and the host floats of early stopping's best weights
 * (borrowed from cb; *weights NULL when it holds none). */
void clnet__callback_state(const clnet_callback *cb, char *buf, size_t size, const float **weights,
                           size_t *nweights);
/* Checks text (and the weights) as cb's state; with apply, sets it so that
 * the next train_begin keeps it. */
clnet_status clnet__callback_restore(clnet_model *m, clnet_callback *cb, const char *key,
                                     const char *text, const float *weights, size_t nweights,
                                     int apply);
/* clnet_model_save_training_state with the state of the built-in callbacks
 * among cbs. */
clnet_status clnet__save_training_state(const clnet_model *m, const char *path, int epoch,
                                        const clnet_callback *cbs, int ncbs);

#endif
