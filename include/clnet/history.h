/* clnet — training history: the per-epoch metrics clnet_model_fit records
 * (loss, accuracy, validation loss and accuracy, learning rate, seconds) as
 * plain data, and a CSV writer. */
#ifndef CLNET_HISTORY_H
#define CLNET_HISTORY_H

#include <stddef.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One epoch of a fit. A metric the run does not have (accuracy for a
 * regression loss, validation values without validation data) is -1. */
typedef struct clnet_epoch_log {
    int epoch;                     /* 1-based, counted across fits into one history */
    double loss, accuracy;         /* means over the epoch's training samples */
    double val_loss, val_accuracy; /* on the validation data at the epoch's end */
    double lr;                     /* the learning rate used for the epoch */
    double seconds;                /* wall time, validation included */
} clnet_epoch_log;

/* The epochs of one or more fits, oldest first. Start from
 * CLNET_HISTORY_INIT (all zero; CLNET_HISTORY_DEFAULT in an assignment)
 * and pass it as clnet_fit_params.history:
 * every fit appends one row per epoch it ran. The rows are owned by the
 * history: free them with clnet_history_free. Read count and epochs freely;
 * change them only through these functions.
 * Thread-safety: one thread at a time per history. */
typedef struct clnet_history {
    int count; /* rows in epochs */
    int capacity;
    clnet_epoch_log *epochs;
} clnet_history;
#define CLNET_HISTORY_INIT                                                                         \
    {                                                                                              \
        .count = 0, .capacity = 0, .epochs = NULL                                                  \
    }
#define CLNET_HISTORY_DEFAULT ((clnet_history)CLNET_HISTORY_INIT)

/* Appends a copy of *row (fit does this; exposed for tools that merge
 * histories). CLNET_ERR_HOST_MEMORY leaves the history as it was. */
CLNET_API clnet_status clnet_history_append(clnet_history *h, const clnet_epoch_log *row);

/* Frees the rows and resets *h to CLNET_HISTORY_INIT; NULL is a no-op. */
CLNET_API void clnet_history_free(clnet_history *h);

/* Writes the history as CSV with a header line
 *   epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds
 * and one line per epoch; a metric the run does not have (-1) is an empty
 * field. Atomic: written to a temporary file next to path, synced, then
 * renamed over path, so a reader sees the old file or the whole new one.
 * On failure returns CLNET_ERR_IO (or CLNET_ERR_INVALID_ARG), and when err
 * is not NULL writes a message naming the file and the failing step there
 * (err_size bytes at most, NUL-terminated). */
CLNET_API clnet_status clnet_history_write_csv(const clnet_history *h, const char *path, char *err,
                                               size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
