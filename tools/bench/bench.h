/* clnet-bench — the pieces shared by the tool's files: the suite table, one
 * result row, the peak measurement and the report writers. Public API only. */
#ifndef CLNET_BENCH_H
#define CLNET_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <clnet/clnet.h>

/* ---- Suites ---------------------------------------------------------------
 * A suite is a name, a list of cases and five functions. Adding one (conv,
 * pool, act, ...) is a file tools/bench/suite-NAME.c that defines a
 * bench_suite, one line in bench_suites[] (clnet-bench.c) and one in
 * tools/meson.build. Case names follow docs/bench.md so that the peers in
 * tools/peers/ run the very same workloads under the same names. */

#define BENCH_NAME_MAX 64

typedef struct bench_case {
    char name[BENCH_NAME_MAX]; /* unique across suites: "gemm_n1024" */
    const char *about;         /* what the workload stands for */
    int quick;                 /* part of the --quick set */
    double flops;              /* per operation, by the op's formula; 0: n/a */
    double bytes;              /* minimal memory traffic per operation; 0: n/a */
    int64_t p[8];              /* the suite's own parameters (shape, direction) */
} bench_case;

/* The outcome of comparing one device's output with the float64 reference. */
typedef struct bench_check {
    int done; /* 0: not checked */
    int pass;
    size_t count, bad; /* elements compared, elements out of tolerance */
    double max_err;    /* max |got - ref| over every element compared */
    double max_ratio;  /* max |got - ref| / bound where the bound is > 0 */
    size_t first_bad;  /* index of the first bad element */
    double first_ref, first_got;
    char method[48]; /* "exact (integers, tolerance 0)" */
    char note[96];   /* printed under the row when set: "batch 2 of 8 checked" */
} bench_check;

typedef struct bench_suite {
    const char *name;
    const char *about;
    /* Writes the cases (the quick set if quick) to out[0..max-1]; returns
     * how many. */
    int (*list)(int quick, bench_case *out, int max);
    /* Creates the case's tensors on ctx and uploads its inputs (the same on
     * every device). On success *state is owned by the caller: free it with
     * teardown. On failure the context's message says why. */
    clnet_status (*setup)(clnet_context *ctx, const bench_case *c, void **state);
    /* Queues one operation; does not wait. */
    clnet_status (*run)(void *state);
    /* Downloads the output of the last run and compares it with the float64
     * reference (tests/ref.c). *ref_cache lets a suite keep the reference
     * between devices: NULL at first, owned by the caller afterwards (one
     * block, freed with free()). inject_fault: perturb one output element
     * before comparing (proves that a wrong answer is flagged). NULL when the
     * suite cannot check. */
    clnet_status (*check)(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                          bench_check *out);
    void (*teardown)(void *state);
} bench_suite;

extern const bench_suite bench_suite_gemm;
extern const bench_suite bench_suite_conv;
extern const bench_suite bench_suite_pool;
extern const bench_suite bench_suite_act;
extern const bench_suite bench_suite_cnn;
extern const bench_suite bench_suite_lstm;
extern const bench_suite bench_suite_gan;
extern const bench_suite bench_suite_vae;
extern const bench_suite bench_suite_onnx;

/* The onnx suite's model (clnet-bench --onnx FILE --batch N; batch 0: the
 * file's fixed batch, else 1), read once on the host. Returns 0, or 1 after
 * a message. Without it the suite has no cases. */
int bench_onnx_configure(const char *path, int batch);
void bench_onnx_release(void);

/* ---- Peak -------------------------------------------------------------- */

/* The device's own fp32 FMA rate and copy bandwidth, measured with two tiny
 * OpenCL kernels built by the tool (not by clnet) on the context's queue. */
typedef struct bench_peak {
    int measured;
    double gflops;   /* best FMA-chain rate, GFLOP/s */
    double gbps;     /* best copy rate, GB/s (bytes read + written) */
    int flops_width; /* the vector width that reached it */
    int copy_width;
    double seconds;  /* what measuring cost */
    char error[256]; /* why not measured, when measured == 0 */
} bench_peak;

void bench_peak_measure(clnet_context *ctx, int quick, bench_peak *out);

/* ---- Results ----------------------------------------------------------- */

typedef struct bench_result {
    int device;             /* index into the chosen devices */
    char device_label[200]; /* "pthread-haswell-AMD EPYC [0:0]" */
    const char *suite;
    bench_case c;
    int ok; /* 0: setup or a run failed; error says why */
    char error[512];
    int reps, inner; /* reps repetitions of inner back-to-back operations */
    double median_ms, min_ms, max_ms, q1_ms, q3_ms; /* per operation, wall clock */
    double event_ms;      /* median by profiling markers; < 0: not available */
    double first_ms;      /* the first call in a fresh context (compile included) */
    double first_warm_ms; /* the same with the disk caches filled; < 0: not measured */
    bench_peak peak;      /* of the result's device */
    bench_check check;
} bench_result;

/* Per device and suite: what compiling cost, apart from the run times. */
typedef struct bench_compile {
    int device;
    const char *suite;
    double first_s, warm_s; /* sum over cases of (first call - median); warm_s < 0: n/a */
    uint64_t built, loaded, built_warm, loaded_warm; /* clnet's own programs */
    double build_s, build_warm_s;                    /* clnet's own build time */
} bench_compile;

typedef struct bench_run_info {
    int device_count;
    char devices[16][200]; /* labels */
    int cold;              /* caches started empty (--cold) */
    int checked;
    const char *date; /* "2026-11-29 10:31 UTC" */
    const char *host;
} bench_run_info;

/* Device `device`'s result of case `name` among rs[0..n); NULL if none. */
const bench_result *bench_find(const bench_result *rs, int n, int device, const char *name);

/* Derived numbers, NAN where not applicable. */
double bench_gflops(const bench_result *r);
double bench_gbps(const bench_result *r);
/* Share of the roofline (min(peak FLOP/s, intensity * peak bandwidth)), in
 * percent; *bound is 'C' (compute) or 'M' (memory). NAN without a peak. */
double bench_peak_pct(const bench_result *r, char *bound);
/* "pass", "fail" or NULL (not checked). */
const char *bench_check_word(const bench_result *r);

void bench_print_device_table(FILE *f, const bench_run_info *info, const bench_result *rs, int n,
                              int device);
void bench_print_side_by_side(FILE *f, const bench_run_info *info, const bench_result *rs, int n);
void bench_print_compile(FILE *f, const bench_run_info *info, const bench_compile *cs, int n);
int bench_write_json(const char *path, const bench_run_info *info, const bench_result *rs, int n);
int bench_write_csv(const char *path, const bench_run_info *info, const bench_result *rs, int n);
/* Grouped bars of GFLOP/s (or GB/s), one group per workload, one bar per
 * device, and with several devices each one's speed-up over device 0, to
 * path (PNG, or SVG/PDF by its extension; NULL: none); the numbers drawn
 * as CSV to data_path (NULL: none). Returns 0 on success; 1 after a
 * message. */
int bench_write_plot(const char *path, const char *data_path, const bench_run_info *info,
                     const bench_result *rs, int n);

/* ---- Measuring one case ------------------------------------------------ */

typedef struct bench_options {
    int quick, check, cold, no_peak;
    int reps;             /* repetitions timed */
    double target_s;      /* a repetition runs the op back to back this long at least */
    double case_budget_s; /* fewer reps (3 at least) for a case slower than this */
} bench_options;

/* Runs case c of suite s on ctx into r: setup, the first call (timed: it
 * includes compiling), one warm-up call, reps timed repetitions of `inner`
 * operations each ended by clnet_context_finish, then, with o->check, the
 * comparison of the last output with the float64 reference. r->ok = 0 and
 * r->error on failure. The caller fills r's device fields first. */
void bench_run_case(clnet_context *ctx, const bench_suite *s, const bench_case *c,
                    const bench_options *o, void **ref_cache, int inject_fault, bench_result *r);
/* Only the first call of case c on ctx, in ms; < 0 on failure. */
double bench_first_call(clnet_context *ctx, const bench_suite *s, const bench_case *c);

/* ---- Small helpers ----------------------------------------------------- */

double bench_now(void); /* monotonic seconds */

/* For the suites' check functions (check.c). A check compares one or more
 * downloaded float32 outputs with their float64 references, span by span,
 * into one bench_check; element indices run on across the spans.
 * begin clears out and records the method; span compares got[0..count) with
 * ref: element i passes when |got[i] - ref[i]| <= bound[i] (bound NULL: the
 * bound is 0, equal values only); a NaN on either side always fails; end
 * sets pass. */
void bench_check_begin(bench_check *out, const char *method);
void bench_check_span(bench_check *out, const float *got, const double *ref, const double *bound,
                      size_t count);
void bench_check_end(bench_check *out);
/* Uploads count doubles to t, rounded to float32 (exact for the small
 * integers and float-rounded values the suites use). */
clnet_status bench_upload(clnet_tensor *t, const double *x, size_t count);
/* Downloads float32 tensor t into a new array: *out is caller-owned (free)
 * on success and NULL on failure. */
clnet_status bench_download(const clnet_tensor *t, float **out);
/* x[i] = (double)(float)x[i]: the values the device really holds. */
void bench_round_to_float(double *x, size_t count);
/* Creates a float32 tensor of the given shape, filled with NaN (an output a
 * run must write completely) or uploaded from x (rounded to float32). On
 * success *out is caller-owned (clnet_tensor_destroy); on failure NULL. */
clnet_status bench_tensor_nan(clnet_context *ctx, int ndim, const int64_t *shape,
                              clnet_tensor **out);
clnet_status bench_tensor_from(clnet_context *ctx, int ndim, const int64_t *shape, const double *x,
                               clnet_tensor **out);

/* ---- Whole-model checks (model-check.c) --------------------------------------- */

/* batch labels in [0, 10) from a fixed seed: the same on every device. */
clnet_status bench_upload_labels(clnet_tensor *t, int batch, uint64_t seed);

/* One parameter as clnet_model_save names and shapes it. */
typedef struct bench_param {
    const char *name;
    int ndim;
    int64_t shape[4];
} bench_param;

#define BENCH_MAX_PARAMS 32

/* A model's parameters as float64 values and magnitudes, in bench_param order. */
typedef struct bench_weights {
    int n;
    double *p[BENCH_MAX_PARAMS], *abs[BENCH_MAX_PARAMS];
} bench_weights;

/* Reads m's parameters back through clnet_model_save (a temporary file),
 * each checked against d's name and shape; `suite` names the caller in
 * messages. On failure *w holds nothing. */
clnet_status bench_weights_load(clnet_model *m, const char *suite, const bench_param *d, int n,
                                bench_weights *w);
void bench_weights_free(bench_weights *w);

/* An inference forward of m on rows 0..rows-1 of x: *logits (the values
 * before a fused softmax or sigmoid) and *x_rows (those rows of x), both
 * malloc'd float32 copies the caller frees; NULL on failure. */
clnet_status bench_model_logits(clnet_model *m, const clnet_tensor *x, int rows, float **logits,
                                float **x_rows);

#endif
