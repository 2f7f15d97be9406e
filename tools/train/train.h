/* clnet-train — shared declarations of the training tool's models. */
#ifndef CLNET_TRAIN_H
#define CLNET_TRAIN_H

#include <stdio.h>

#include <clnet/clnet.h>
#include <clnet/dist.h>

#include "../models.h"

typedef struct options {
    const char *model, *device, *data, *save, *load, *out,
        *score;            /* out: gan's grid, vae's prefix */
    const char *save_onnx; /* cnn: --save-onnx FILE */
    int epochs, batch_size, eval_only, quiet, sample;
    long limit;
    double lr;
    double label_smoothing; /* gan: D's real target is 1 - this */
    unsigned long long seed;
    int epochs_set, lr_set, batch_set; /* given on the command line */
    int ranks;                         /* --ranks: data-parallel over MPI ranks */
    clnet_dist *dist;                  /* set in data-parallel runs (cnn only) */
    /* Watching and steering (watch.c): paths or NULL; early_stopping is the
     * patience, -1 for none. */
    const char *logdir, *csv, *checkpoint, *plot, *resume;
    int early_stopping;
    int schedule_set;
    clnet_lr_schedule_params schedule;
} options;

/* Each model's entry point: returns the process exit status. */
int train_cnn(clnet_context *ctx, const options *o);
int train_gan(clnet_context *ctx, const options *o);
int train_rnn(clnet_context *ctx, const options *o); /* "lstm" and "rnn" */
int train_vae(clnet_context *ctx, const options *o);
/* Checks every path the vae run will write: 0 or the exit status. */
int vae_check_outputs(const options *o);
/* Checks every path the gan run will write (check_output): 0 or the exit
 * status. */
int gan_check_outputs(const options *o);

/* Helpers shared by the models (main.c). */
double now(void);
/* Prints the context's last error; in a data-parallel run it names this
 * rank and ends the whole job (clnet_dist_abort), since the other ranks may
 * be waiting for this one. */
int fail(clnet_context *ctx, const char *what);
/* Every model here takes 28x28 images (one channel). */
enum { IMAGE_SIDE = 28 };

/* Loads Fashion-MNIST's train and t10k splits and checks that their images
 * are IMAGE_SIDE square; prints the error (naming the file and the shapes). */
int load_data(const options *o, clnet_dataset **train, clnet_dataset **test);
/* An output path (outfile.h's out_check), before the work: 0, or a message
 * and the exit status 2 (in a data-parallel run, the job ends). */
int check_output(const options *o, const char *option, const char *path);
/* Saves m's weights to path (through a symlink to its target; never over a
 * device node, FIFO or directory): 0, or a message and 1. */
int save_weights(clnet_context *ctx, clnet_model *m, const char *path);
/* --save-onnx: the model as ONNX (clnet_model_save_onnx); 0 or 1 after a message. */
int save_onnx(clnet_context *ctx, clnet_model *m, const char *path);

/* watch.c: --logdir, --csv, --checkpoint, --early-stopping, --lr-schedule,
 * --plot. watch_takes: a is one of them; watch_parse: 1 parsed, 0 a bad
 * value (the message is printed); watch_wanted: any was given. watch_fit
 * trains all epochs in one fit with ev as validation data, prints a line
 * per epoch and leaves the final weights' test loss and accuracy; returns
 * the exit status. */
int watch_takes(const char *a);
int watch_parse(const char *a, const char *v, options *o);
int watch_wanted(const options *o);
int watch_fit(clnet_context *ctx, const options *o, clnet_model *m, const clnet_dataset_view *tv,
              const clnet_dataset_view *ev, double *test_loss, double *test_acc);
/* watch.c: loss and accuracy curves of a history, drawn with tools/plot.c
 * (cairo); PNG, SVG or PDF by the file name's extension. 0 on success, else
 * a message in err. */
int plot_history(const clnet_history *h, const char *path, char *err, size_t err_size);

/* A progress callback that keeps the epoch's running loss and accuracy and
 * draws the live line on a terminal. */
typedef struct epoch_log {
    int quiet;
    double loss, accuracy;
} epoch_log;
void on_progress(void *user, const clnet_progress *p);
/* A fresh permutation of [0, n) in ord for each epoch of the custom loops
 * (gan, vae): splitmix64 Fisher-Yates, continuing *state. */
void train_shuffle(int32_t *ord, int64_t n, unsigned long long *state);

#endif
