/* clnet — the hooks clnet_model_fit (train.c) calls around its loop; they
 * run the callbacks, keep the history and split validation data
 * (callbacks.c). Private to src/nn. */
#ifndef CLNET_FIT_HOOKS_H
#define CLNET_FIT_HOOKS_H

#include "clnet/callbacks.h"

typedef struct clnet__fit_run {
    clnet_model *m;
    const clnet_fit_params *p;
    int batch_hooks;                   /* some callback has batch_end */
    int stop;                          /* a callback asked to stop */
    int first_epoch;                   /* the history's epoch number of this fit's epoch 1 */
    double lr;                         /* the learning rate of the current epoch */
    int64_t seen;                      /* samples trained on in the current epoch */
    clnet_dataset_view train, val;     /* after a validation split */
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

#endif
