/* clnet — TensorBoard event files written by clnet itself: scalars, images
 * and histograms as TensorFlow's Event/Summary records in TFRecord framing,
 * and a fit callback that logs the metrics. docs/training.md describes the
 * format.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_TBLOG_H
#define CLNET_TBLOG_H

#include <stddef.h>
#include <stdint.h>

#include "callbacks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One event file. Every record is written whole and flushed to the kernel
 * before the call returns, so a run that crashes leaves a file TensorBoard
 * reads up to the last record. Thread-safety: one thread at a time. */
typedef struct clnet_tblog clnet_tblog;

/* Creates logdir if missing (one level) and opens a new file in it named
 * events.out.tfevents.<seconds>.<host>.<pid>.clnet, starting with the
 * file-version event. *out is caller-owned: clnet_tblog_close. On failure
 * *out is NULL and, when err is not NULL, a message naming the path is in
 * err (err_size bytes at most). */
CLNET_API clnet_status clnet_tblog_open(const char *logdir, clnet_tblog **out, char *err,
                                        size_t err_size);
/* Closes the file; NULL is a no-op. */
CLNET_API void clnet_tblog_close(clnet_tblog *w);
/* The file's path. Borrowed: valid until clnet_tblog_close. */
CLNET_API const char *clnet_tblog_path(const clnet_tblog *w);
/* The message of the last failed call on w ("" if none). Borrowed, as above. */
CLNET_API const char *clnet_tblog_errmsg(const clnet_tblog *w);

/* A scalar (stored as float32, as TensorBoard's simple_value). */
CLNET_API clnet_status clnet_tblog_scalar(clnet_tblog *w, const char *tag, int64_t step,
                                          double value);
/* An image of height x width pixels with 1 (grey), 3 (RGB) or 4 (RGBA)
 * interleaved 8-bit channels, row by row; stored PNG-encoded. */
CLNET_API clnet_status clnet_tblog_image(clnet_tblog *w, const char *tag, int64_t step, int height,
                                         int width, int channels, const uint8_t *pixels);
/* A histogram of n finite values (NaN and Inf are skipped and not counted)
 * in `buckets` equal-width buckets between their min and max (1 to 1000;
 * 0: 30). Stores min, max, count, sum and sum of squares too. */
CLNET_API clnet_status clnet_tblog_histogram(clnet_tblog *w, const char *tag, int64_t step,
                                             const float *values, size_t n, int buckets);

/* What the TensorBoard callback logs. */
typedef struct clnet_tensorboard_params {
    int every_steps; /* > 0: "batch/loss" every this many steps */
    int histograms;  /* nonzero: each parameter's values at each epoch's end */
} clnet_tensorboard_params;
#define CLNET_TENSORBOARD_PARAMS_INIT                                                              \
    {                                                                                              \
        .every_steps = 0, .histograms = 0                                                          \
    }
#define CLNET_TENSORBOARD_PARAMS_DEFAULT ((clnet_tensorboard_params)CLNET_TENSORBOARD_PARAMS_INIT)

/* A fit callback that writes, at each epoch's end, the scalars "epoch/loss",
 * "epoch/accuracy", "epoch/val_loss", "epoch/val_accuracy" (those the run
 * has), "epoch/lr" and "epoch/seconds" at step = the history's epoch
 * number, and what p asks for; parameter histograms are tagged
 * "layers.<i>.<param>" as the weight files name them. w is borrowed: keep
 * it open while the callback is used. *out is caller-owned:
 * clnet_callback_release (which leaves w open). */
CLNET_API clnet_status clnet_callback_tensorboard(clnet_context *ctx, clnet_tblog *w,
                                                  const clnet_tensorboard_params *p,
                                                  clnet_callback *out);

#ifdef __cplusplus
}
#endif
#endif
