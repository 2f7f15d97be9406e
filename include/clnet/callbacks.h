/* clnet — callbacks in clnet_model_fit: a C function at the start and end of
 * training, of each epoch and after each batch that reads the metrics and
 * can stop training; built in: model checkpoints, early stopping and
 * learning-rate schedules. docs/training.md explains the order of events.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults (a checkpoint's defaults have no path, so NULL fails). */
#ifndef CLNET_CALLBACKS_H
#define CLNET_CALLBACKS_H

#include "history.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a callback sees. Borrowed: valid during the call only. */
typedef struct clnet_fit_event {
    int epoch, epochs;               /* 1-based epoch of this fit; epochs as fit was asked */
    const clnet_progress *progress;  /* batch_end: the step and the epoch's running means */
    clnet_epoch_log *log;            /* epoch_end: this epoch's row; a callback may change it,
                                      * later callbacks and the history see the change */
    const clnet_history *history;    /* the fit's history, if the caller gave one; else NULL */
    int stop;                        /* set nonzero to end training after this batch or epoch */
    const clnet_callback *callbacks; /* the fit's callbacks (clnet_fit_params.callbacks) */
    int ncallbacks;
} clnet_fit_event;

typedef clnet_status (*clnet_callback_fn)(void *user, clnet_model *m, clnet_fit_event *ev);

/* A set of hooks; NULL members are skipped. fit calls them in the order of
 * clnet_fit_params.callbacks: train_begin once, then per epoch
 * epoch_begin, batch_end after every optimizer step (only callbacks that set
 * it make fit read the loss after every step, which waits for the device),
 * epoch_end after validation, and train_end once when training ends for any
 * reason but an error. A hook that returns a status other than CLNET_OK
 * stops fit, which returns that status with a message naming the callback,
 * the hook and the epoch, followed by the context's message at the time.
 * A user's own callback fills in the members directly; destroy is for
 * the built-ins (clnet_callback_release calls it). */
struct clnet_callback {
    clnet_callback_fn train_begin, epoch_begin, batch_end, epoch_end, train_end;
    void *user;
    void (*destroy)(void *user);
};

/* Frees what a built-in callback owns (destroy(user)) and zeroes *cb; a
 * user's callback without destroy is only zeroed. NULL is a no-op. */
CLNET_API void clnet_callback_release(clnet_callback *cb);

/* The quantity a built-in callback watches. Losses improve downwards,
 * accuracies upwards. The validation ones need validation data (or a
 * validation split) in fit; fit fails with CLNET_ERR_INVALID_ARG at the first
 * epoch's end otherwise, as it does for an accuracy the loss has none of. */
typedef enum clnet_monitor {
    CLNET_MONITOR_VAL_LOSS = 0,
    CLNET_MONITOR_VAL_ACCURACY,
    CLNET_MONITOR_LOSS,
    CLNET_MONITOR_ACCURACY
} clnet_monitor;

/* ---- Learning rate ------------------------------------------------------------ */

/* The compiled optimizer's learning rate (0 before compile). */
CLNET_API double clnet_model_learning_rate(const clnet_model *m);
/* Sets the compiled optimizer's learning rate (lr >= 0, finite; stored as
 * float32 as the optimizer uses it) for the steps that follow. */
CLNET_API clnet_status clnet_model_set_learning_rate(clnet_model *m, double lr);

typedef enum clnet_lr_schedule_kind {
    CLNET_LR_CONSTANT = 0, /* lr0 */
    CLNET_LR_STEP,         /* lr0 * gamma^floor(k / step_epochs) */
    CLNET_LR_EXPONENTIAL,  /* lr0 * gamma^k */
    CLNET_LR_COSINE,       /* min_lr + (lr0 - min_lr) (1 + cos(pi min(k, T) / T)) / 2,
                            * T = cosine_epochs */
    CLNET_LR_PLATEAU       /* lr0, times factor after `patience` epochs without
                            * improvement of monitor, never below min_lr */
} clnet_lr_schedule_kind;

/* A per-epoch schedule. With warmup_epochs W > 0, epoch e <= W (1-based)
 * uses lr0 * e / W and the schedule proper starts after: k = e - 1 - W is
 * the 0-based epoch it sees. Without warm-up k = e - 1. */
typedef struct clnet_lr_schedule_params {
    clnet_lr_schedule_kind kind;
    double initial_lr;     /* lr0; 0: the compiled optimizer's lr when fit starts */
    int warmup_epochs;     /* >= 0 */
    int step_epochs;       /* STEP: >= 1 */
    double gamma;          /* STEP, EXPONENTIAL: > 0 */
    int cosine_epochs;     /* COSINE: >= 1 */
    double min_lr;         /* COSINE's end, PLATEAU's floor: >= 0 */
    clnet_monitor monitor; /* PLATEAU */
    double factor;         /* PLATEAU: in (0, 1) */
    int patience;          /* PLATEAU: >= 0 */
    double min_delta;      /* PLATEAU: an improvement must beat the best by more */
    int cooldown;          /* PLATEAU: epochs after a reduction before counting again */
} clnet_lr_schedule_params;
#define CLNET_LR_SCHEDULE_PARAMS_INIT                                                              \
    {                                                                                              \
        .kind = CLNET_LR_CONSTANT, .step_epochs = 10, .gamma = 0.1, .cosine_epochs = 10,           \
        .monitor = CLNET_MONITOR_VAL_LOSS, .factor = 0.1, .patience = 10                           \
    }
#define CLNET_LR_SCHEDULE_PARAMS_DEFAULT ((clnet_lr_schedule_params)CLNET_LR_SCHEDULE_PARAMS_INIT)

/* The learning rate a schedule gives epoch `epoch` (1-based) from lr0, for
 * every kind but PLATEAU (which depends on the metrics; this returns its
 * warm-up or lr0). The callback stores it as float32. -1 for invalid params
 * or epoch < 1. */
CLNET_API double clnet_lr_schedule_at(const clnet_lr_schedule_params *p, double lr0, int epoch);

/* A callback that sets the learning rate at each epoch's start. *out is
 * caller-owned: clnet_callback_release. The epochs count from 1 in every
 * fit it is passed to (the state restarts at train_begin). */
CLNET_API clnet_status clnet_callback_lr_schedule(clnet_context *ctx,
                                                  const clnet_lr_schedule_params *p,
                                                  clnet_callback *out);

/* ---- Early stopping -------------------------------------------------------------- */

/* Keras' EarlyStopping: an epoch improves when monitor beats the best so
 * far by more than min_delta; training stops after `patience` epochs in a
 * row without improvement. restore_best_weights: when training ends (early
 * or not) the model gets back its parameters (running statistics too) from
 * the end of the best epoch. */
typedef struct clnet_early_stopping_params {
    clnet_monitor monitor;
    int patience;     /* >= 0; 0 stops at the first epoch without improvement, as 1 does */
    double min_delta; /* >= 0 */
    int restore_best_weights;
} clnet_early_stopping_params;
#define CLNET_EARLY_STOPPING_PARAMS_INIT                                                           \
    {                                                                                              \
        .monitor = CLNET_MONITOR_VAL_LOSS, .patience = 5                                           \
    }
#define CLNET_EARLY_STOPPING_PARAMS_DEFAULT                                                        \
    ((clnet_early_stopping_params)CLNET_EARLY_STOPPING_PARAMS_INIT)

/* *out is caller-owned: clnet_callback_release. After fit,
 * clnet_callback_stopped_epoch tells whether and when it stopped. */
CLNET_API clnet_status clnet_callback_early_stopping(clnet_context *ctx,
                                                     const clnet_early_stopping_params *p,
                                                     clnet_callback *out);
/* The epoch (1-based) after which an early-stopping callback stopped the
 * last fit, its best epoch in *best (optional); 0 when it did not stop or
 * cb is not an early-stopping callback. */
CLNET_API int clnet_callback_stopped_epoch(const clnet_callback *cb, int *best);

/* ---- Checkpoints --------------------------------------------------------------------- */

/* Saves the weights with clnet_model_save (atomic: the old file stays whole
 * until the new one is complete) at each epoch's end, or with save_best_only
 * only when monitor improved on the best so far. "{epoch}" in path is
 * replaced by the epoch number (one file per epoch). With training_state
 * it writes clnet_model_save_training_state's file instead, with the state
 * of the fit's built-in callbacks too (the schedule's plateau, early
 * stopping's best value, wait counter and best weights, the checkpoints'
 * best values) as they are when it runs: list it after them. */
typedef struct clnet_checkpoint_params {
    const char *path; /* copied */
    clnet_monitor monitor;
    int save_best_only;
    int training_state; /* nonzero: clnet_model_save_training_state, to resume */
} clnet_checkpoint_params;
#define CLNET_CHECKPOINT_PARAMS_INIT                                                               \
    {                                                                                              \
        .path = NULL, .monitor = CLNET_MONITOR_VAL_LOSS                                            \
    }
#define CLNET_CHECKPOINT_PARAMS_DEFAULT ((clnet_checkpoint_params)CLNET_CHECKPOINT_PARAMS_INIT)

/* *out is caller-owned: clnet_callback_release. */
CLNET_API clnet_status clnet_callback_checkpoint(clnet_context *ctx,
                                                 const clnet_checkpoint_params *p,
                                                 clnet_callback *out);

/* ---- Resuming ------------------------------------------------------------------------ */

/* Saves what a fit needs to continue exactly where it stopped: every
 * parameter (running statistics too), the optimizer's state (Adam's or
 * RMSprop's moments, SGD's momentum, the step count), the dropout counter,
 * the model's seed, and `epoch`, the epochs done. One safetensors file,
 * written atomically. */
CLNET_API clnet_status clnet_model_save_training_state(const clnet_model *m, const char *path,
                                                       int epoch);
/* Loads such a file into a model built and compiled as the saved one was
 * (the same layers and optimizer; its seed is replaced by the saved one) and
 * sets *epoch to the epochs done. Everything is checked before anything
 * changes. Continue with clnet_fit_params.initial_epoch = *epoch and the
 * same epochs, batch size and shuffle seed: the weights then equal, bit for
 * bit, those of a fit that never stopped. */
CLNET_API clnet_status clnet_model_load_training_state(clnet_model *m, const char *path,
                                                       int *epoch);
/* Restores the state of the built-in callbacks among cbs[0..n) (schedules,
 * early stopping, checkpoints) from a training state that a checkpoint
 * callback with training_state wrote, so that a fit resumed from it stops,
 * lowers the rate and saves as the fit that never stopped would have. The
 * k-th callback of a kind takes the state the k-th of that kind saved; one
 * the file holds no state for starts afresh, users' callbacks are left
 * alone. Call after clnet_model_load_training_state, on callbacks made for
 * the fit that resumes (fit's train_begin keeps what this set, once). The
 * model must be built and compiled as the saved one was. Everything is
 * checked before anything changes. */
CLNET_API clnet_status clnet_callback_load_state(clnet_model *m, const char *path,
                                                 clnet_callback *cbs, int n);

#ifdef __cplusplus
}
#endif
#endif
