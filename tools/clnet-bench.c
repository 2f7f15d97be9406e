/* clnet-bench — lists OpenCL devices and compares them on clnet's workloads.
 * Uses only the public API; docs/bench.md explains the output. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <clnet/clnet.h>

#include "bench/bench.h"
#include "cli.h"
#include "outfile.h"

/* Every suite; adding one is a line here (see bench.h). */
static const bench_suite *const bench_suites[] = {
    &bench_suite_gemm, &bench_suite_conv, &bench_suite_pool, &bench_suite_act,  &bench_suite_cnn,
    &bench_suite_lstm, &bench_suite_gan,  &bench_suite_vae,  &bench_suite_onnx,
};
#define NSUITES (sizeof bench_suites / sizeof bench_suites[0])

#define MAX_DEVICES 16
#define MAX_CASES 256

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_CHECK_FAILED = 3 };

typedef struct args {
    int list, list_suites;
    const char *devices[MAX_DEVICES];
    int device_count;
    int all_devices;
    const char *suites[NSUITES];
    int suite_count;
    const char *cases[MAX_CASES]; /* --case: only these (any suite, quick or not) */
    int case_count;
    const char *json, *csv, *plot, *plot_data;
    const char *onnx;   /* --onnx FILE: the onnx suite's model */
    int batch;          /* --batch N (with --onnx); 0: the file's */
    const char *inject; /* NAME[@DEVICE]; NULL or "": none */
    size_t inject_len;  /* of NAME */
    int inject_device;  /* DEVICE, or -1: every device */
    bench_options o;
} args;

/* ---- Listing ---------------------------------------------------------------- */

static const char *type_name(clnet_device_type t)
{
    switch (t) {
    case CLNET_DEVICE_CPU:
        return "CPU";
    case CLNET_DEVICE_GPU:
        return "GPU";
    case CLNET_DEVICE_ACCELERATOR:
        return "accelerator";
    default:
        return "other";
    }
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

static void print_features(unsigned f)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        { CLNET_FEATURE_FP16, "fp16" },
        { CLNET_FEATURE_FP64, "fp64" },
        { CLNET_FEATURE_SUBGROUPS, "subgroups" },
        { CLNET_FEATURE_WORK_GROUP_COLLECTIVES, "work-group-collectives" },
        { CLNET_FEATURE_NON_UNIFORM_WORK_GROUPS, "non-uniform-work-groups" },
        { CLNET_FEATURE_OPENCL_C_30, "opencl-c-3.0" },
    };
    for (int has = 1; has >= 0; has--) {
        printf(has ? "        features:" : "; lacks:");
        int any = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!(f & names[i].flag) == !has) {
                printf(" %s", names[i].name);
                any = 1;
            }
        if (!any)
            printf(" none");
    }
    printf("\n");
}

/* Opens a context on one device and runs a fill there: what the default
 * choice's probe checks, through the public API. */
static void print_probe(const clnet_device_info *di)
{
    char spec[32], err[2048];
    snprintf(spec, sizeof spec, "%d:%d", di->platform_index, di->device_index);
    clnet_context_params params = CLNET_CONTEXT_PARAMS_DEFAULT;
    params.device = spec;
    clnet_context *ctx = NULL;
    clnet_tensor *t = NULL;
    float v[67] = { 0 };
    int64_t n = 67;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clnet_status st = clnet_context_create(&params, &ctx, err, sizeof err);
    if (!st && !(st = clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t)) &&
        !(st = clnet_tensor_fill(t, 0.5)))
        st = clnet_tensor_download(t, v, sizeof v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!st && v[66] != 0.5f)
        printf("        probe: FAILED: a fill of 0.5 read back %g\n", v[66]);
    else if (!st)
        printf("        probe: ok (a kernel built and ran in %.2f s)\n",
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    else
        printf("        probe: FAILED (%s): %.300s\n", clnet_status_name(st),
               ctx ? clnet_context_errmsg(ctx) : err);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}

/* Every platform and device; platforms without devices say why. Each device
 * is probed, and the default choice is made for real, so "*" is what a
 * program without a device spec gets now. */
static int list_devices(void)
{
    char err[2048];
    clnet_system *sys;
    clnet_status st = clnet_system_query(&sys, err, sizeof err);
    if (st) {
        fprintf(stderr, "clnet-bench: %s\n", err);
        return EXIT_ERROR;
    }
    clnet_context *def = NULL;
    char def_err[2048] = "", def_note[2048] = "";
    if (clnet_context_create(NULL, &def, def_err, sizeof def_err) == CLNET_OK)
        snprintf(def_note, sizeof def_note, "%s", clnet_context_errmsg(def));
    const clnet_device_info *chosen = def ? clnet_context_device(def) : NULL;
    for (int p = 0; p < sys->platform_count; p++) {
        const clnet_platform_info *pi = &sys->platforms[p];
        printf("platform %d: %s (%s)\n", p, pi->name, pi->version);
        if (pi->note[0])
            printf("  %s\n", pi->note);
        for (int d = 0; d < pi->device_count; d++) {
            const clnet_device_info *di = &pi->devices[d];
            int star = chosen && chosen->platform_index == p && chosen->device_index == d;
            printf("  %s%d:%d  %s\n", star ? "*" : " ", di->platform_index, di->device_index,
                   di->name);
            printf("        type %s, %u compute units, %u MHz\n", type_name(di->type),
                   di->compute_units, di->clock_mhz);
            printf("        memory %.0f MiB, max allocation %.0f MiB, local memory %.0f KiB%s\n",
                   mib(di->global_mem_bytes), mib(di->max_alloc_bytes),
                   (double)di->local_mem_bytes / 1024.0,
                   di->local_mem_is_global ? " (emulated in global memory)" : "");
            printf("        max work-group %zu, preferred float vector %u\n",
                   di->max_work_group_size, di->preferred_vector_width_float);
            printf("        OpenCL %d.%d device, %s, driver %s\n", di->opencl_major,
                   di->opencl_minor, di->opencl_c_version, di->driver_version);
            print_features(di->features);
            print_probe(di);
        }
    }
    if (def)
        printf("(* = the default device: what a program without a device spec gets now;%s "
               "--device overrides it)\n",
               getenv("CLNET_DEVICE") ? " CLNET_DEVICE and" : "");
    else
        printf("(no default device: %s)\n", def_err);
    if (def_note[0])
        printf("(%s)\n", def_note);
    clnet_context_destroy(def);
    clnet_system_free(sys);
    return EXIT_OK;
}

static void list_suites(int quick)
{
    for (size_t s = 0; s < NSUITES; s++) {
        bench_case cs[MAX_CASES];
        int n = bench_suites[s]->list(quick, cs, MAX_CASES);
        printf("%s: %s\n", bench_suites[s]->name, bench_suites[s]->about);
        for (int i = 0; i < n; i++)
            printf("  %-34s %s%s\n", cs[i].name, cs[i].about, cs[i].quick ? " (quick)" : "");
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clnet-bench --list\n"
            "       clnet-bench [--device SPEC ... | --device all] [--suite NAME ...] [--case NAME "
            "...]\n"
            "                   [--quick] [--check] [--reps N] [--cold] [--no-peak]\n"
            "                   [--json FILE] [--csv FILE] [--plot FILE.png|.svg|.pdf]\n"
            "                   [--plot-data FILE.csv]\n"
            "       clnet-bench --onnx MODEL.onnx [--batch N] [--device ... | --device all]\n"
            "                   [--check] [other options as above]\n"
            "  --list            list every OpenCL platform and device\n"
            "  --list-suites     list the suites and their cases (with --quick: the quick set)\n"
            "  --device SPEC     a device spec (\"0:1\", \"cpu\", \"pocl\"; see --list);\n"
            "                    repeat for several; \"all\": every device. Default: the\n"
            "                    default device (CLNET_DEVICE)\n"
            "  --suite NAME      run only this suite (repeatable); default: all\n"
            "  --case NAME       run only this case (repeatable; from the full set even with\n"
            "                    --quick, which then sets the repetitions only)\n"
            "  --quick           the small set of cases, fewer repetitions\n"
            "  --check           compare every device's outputs with the float64 CPU reference;\n"
            "                    a wrong answer is marked FAIL and not ranked (exit status 3)\n"
            "  --reps N          timed repetitions per case (default 10, 5 with --quick)\n"
            "  --cold            start with empty kernel caches (clnet's and the driver's) in a\n"
            "                    temporary directory, to measure first-run compile cost\n"
            "  --no-peak         do not measure the device's peak FLOP/s and bandwidth\n"
            "  --json FILE       write the results as a JSON array\n"
            "  --csv FILE        write the results as CSV (same columns)\n"
            "  --plot FILE.png   grouped bars of GFLOP/s or GB/s per case and device (log scale\n"
            "                    where they span decades) and, with several devices, each\n"
            "                    one's speed-up over device 0; FILE.svg or FILE.pdf: the same\n"
            "                    drawing as SVG or PDF\n"
            "  --plot-data FILE  the numbers the plot draws, as CSV (panel,case,device,value)\n"
            "  --onnx FILE       time the ONNX model FILE (imported on each device): inference\n"
            "                    and a training step (suite onnx; the only suite unless --suite)\n"
            "  --batch N         the batch --onnx runs (default: the file's, else 1)\n"
            "  --inject-fault NAME[@D]  perturb one output element of suite or case NAME (on\n"
            "                    device index D only) before --check compares it; also\n"
            "                    CLNET_BENCH_INJECT_FAULT. For testing --check.\n"
            "  --version         print clnet's version\n");
}

/* ---- Arguments ------------------------------------------------------------ */

static const bench_suite *find_suite(const char *name)
{
    for (size_t s = 0; s < NSUITES; s++)
        if (!strcmp(bench_suites[s]->name, name))
            return bench_suites[s];
    return NULL;
}

/* Is name a suite or a case of any suite (quick or not)? */
static int known_target(const char *name, size_t len)
{
    for (size_t s = 0; s < NSUITES; s++) {
        static bench_case cs[MAX_CASES];
        int n = bench_suites[s]->list(0, cs, MAX_CASES);
        if (strlen(bench_suites[s]->name) == len && !strncmp(bench_suites[s]->name, name, len))
            return 1;
        for (int i = 0; i < n; i++)
            if (strlen(cs[i].name) == len && !strncmp(cs[i].name, name, len))
                return 1;
    }
    return 0;
}

/* NAME[@D] of --inject-fault (or the variable `from`): NAME a suite or case,
 * D a device index. 0, or an error message and 1. */
static int parse_inject(const char *from, const char *spec, args *a)
{
    const char *at = strchr(spec, '@');
    size_t len = at ? (size_t)(at - spec) : strlen(spec);
    a->inject_len = len;
    a->inject_device = -1;
    if (!known_target(spec, len)) {
        fprintf(stderr, "clnet-bench: %s: no suite or case \"%.*s\" (--list-suites lists them)\n",
                from, (int)len, spec);
        return 1;
    }
    return at && !cli_int_i("clnet-bench", from, at + 1, 0, MAX_DEVICES - 1, &a->inject_device);
}

/* 0: parsed; otherwise the exit status (EXIT_OK after --help and friends). */
static int parse(int argc, char **argv, args *a)
{
    int reps = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(s, "--device") || !strcmp(s, "--suite") || !strcmp(s, "--reps") ||
                    !strcmp(s, "--json") || !strcmp(s, "--csv") || !strcmp(s, "--plot") ||
                    !strcmp(s, "--plot-data") || !strcmp(s, "--onnx") || !strcmp(s, "--batch") ||
                    !strcmp(s, "--inject-fault") || !strcmp(s, "--case");
        if (takes && !v) {
            fprintf(stderr, "clnet-bench: %s needs a value\n", s);
            return EXIT_USAGE;
        }
        if (takes)
            i++;
        if (!strcmp(s, "--list"))
            a->list = 1;
        else if (!strcmp(s, "--list-suites"))
            a->list_suites = 1;
        else if (!strcmp(s, "--version")) {
            printf("clnet %s\n", clnet_version());
            return -1;
        } else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(s, "--device")) {
            if (!cli_device("clnet-bench", s, v))
                return EXIT_USAGE;
            if (!strcmp(v, "all"))
                a->all_devices = 1;
            else if (a->device_count == MAX_DEVICES) {
                fprintf(stderr, "clnet-bench: at most %d devices\n", MAX_DEVICES);
                return EXIT_USAGE;
            } else
                a->devices[a->device_count++] = v;
        } else if (!strcmp(s, "--suite")) {
            if (!find_suite(v)) {
                fprintf(stderr, "clnet-bench: --suite: unknown suite \"%s\"; suites:", v);
                for (size_t k = 0; k < NSUITES; k++)
                    fprintf(stderr, " %s", bench_suites[k]->name);
                fprintf(stderr, "\n");
                return EXIT_USAGE;
            }
            if (a->suite_count < (int)NSUITES)
                a->suites[a->suite_count++] = v;
        } else if (!strcmp(s, "--case")) {
            if (a->case_count == MAX_CASES) {
                fprintf(stderr, "clnet-bench: at most %d cases\n", MAX_CASES);
                return EXIT_USAGE;
            }
            a->cases[a->case_count++] = v;
        } else if (!strcmp(s, "--reps")) {
            if (!cli_int_i("clnet-bench", s, v, 1, 10000, &reps))
                return EXIT_USAGE;
        } else if (!strcmp(s, "--json"))
            a->json = v;
        else if (!strcmp(s, "--csv"))
            a->csv = v;
        else if (!strcmp(s, "--plot"))
            a->plot = v;
        else if (!strcmp(s, "--plot-data"))
            a->plot_data = v;
        else if (!strcmp(s, "--inject-fault"))
            a->inject = v;
        else if (!strcmp(s, "--onnx"))
            a->onnx = v;
        else if (!strcmp(s, "--batch")) {
            if (!cli_int_i("clnet-bench", s, v, 1, 65536, &a->batch))
                return EXIT_USAGE;
        } else if (!strcmp(s, "--quick"))
            a->o.quick = 1;
        else if (!strcmp(s, "--check"))
            a->o.check = 1;
        else if (!strcmp(s, "--cold"))
            a->o.cold = 1;
        else if (!strcmp(s, "--no-peak"))
            a->o.no_peak = 1;
        else {
            fprintf(stderr, "clnet-bench: unknown argument \"%s\"\n", s);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (a->batch && !a->onnx) {
        fprintf(stderr, "clnet-bench: --batch goes with --onnx\n");
        return EXIT_USAGE;
    }
    if (a->onnx) { /* the model read before --inject-fault names its cases */
        if (bench_onnx_configure(a->onnx, a->batch))
            return EXIT_ERROR;
        if (!a->suite_count)
            a->suites[a->suite_count++] = "onnx";
    }
    a->o.reps = reps ? reps : a->o.quick ? 5 : 10;
    a->o.target_s = a->o.quick ? 0.005 : 0.02;
    a->o.case_budget_s = a->o.quick ? 2.0 : 20.0;
    int from_env = !a->inject;
    if (from_env)
        a->inject = getenv("CLNET_BENCH_INJECT_FAULT");
    /* An empty variable means no fault; an empty option is a mistake. */
    if (a->inject && (*a->inject || !from_env) &&
        parse_inject(from_env ? "CLNET_BENCH_INJECT_FAULT" : "--inject-fault", a->inject, a))
        return EXIT_USAGE;
    return 0;
}

/* Does the fault-injection spec (parsed by parse_inject) name this suite or
 * case on device d? */
static int inject_here(const args *a, const char *suite, const char *name, int d)
{
    const char *spec = a->inject;
    size_t len = a->inject_len;
    if (!spec || !*spec || (a->inject_device >= 0 && a->inject_device != d))
        return 0;
    return (strlen(suite) == len && !strncmp(spec, suite, len)) ||
           (strlen(name) == len && !strncmp(spec, name, len));
}

/* ---- Cold caches ------------------------------------------------------------ */

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < sizeof sub)
                remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else
        unlink(path);
}

/* Points clnet's and the drivers' kernel caches at fresh directories under
 * tmp (a mkdtemp template, filled in); before any OpenCL call, since the
 * drivers read these variables when they load. */
static int make_cold_caches(char *tmp, char *clnet_dir, size_t size)
{
    if (!mkdtemp(tmp)) {
        perror("clnet-bench: mkdtemp");
        return 1;
    }
    static const char *const vars[][2] = {
        { "POCL_CACHE_DIR", "pocl" },        /* pocl */
        { "CUDA_CACHE_PATH", "cuda" },       /* NVIDIA's OpenCL */
        { "MESA_SHADER_CACHE_DIR", "mesa" }, /* rusticl */
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", tmp, vars[i][1]);
        if (mkdir(dir, 0700) || setenv(vars[i][0], dir, 1)) {
            perror("clnet-bench: cache directory");
            return 1;
        }
    }
    snprintf(clnet_dir, size, "%s/clnet", tmp);
    return 0;
}

/* ---- Running ---------------------------------------------------------------- */

typedef struct plan {
    const bench_suite *suite[MAX_CASES];
    bench_case cases[MAX_CASES];
    int count;
} plan;

static int case_named(const args *a, const char *name)
{
    for (int k = 0; k < a->case_count; k++)
        if (!strcmp(a->cases[k], name))
            return 1;
    return 0;
}

/* The cases to run; 0, or EXIT_USAGE (with a message) when a --case names
 * no case of the chosen suites. */
static int make_plan(const args *a, plan *p)
{
    p->count = 0;
    for (size_t s = 0; s < NSUITES; s++) {
        const bench_suite *su = bench_suites[s];
        int chosen = a->suite_count == 0;
        for (int k = 0; k < a->suite_count; k++)
            chosen |= !strcmp(a->suites[k], su->name);
        if (!chosen)
            continue;
        int base = p->count;
        int n = su->list(a->o.quick && !a->case_count, p->cases + base, MAX_CASES - base);
        for (int i = 0; i < n; i++) { /* kept in place, the others dropped */
            if (a->case_count && !case_named(a, p->cases[base + i].name))
                continue;
            p->cases[p->count] = p->cases[base + i];
            p->suite[p->count++] = su;
        }
    }
    for (int k = 0; k < a->case_count; k++) {
        int found = 0;
        for (int i = 0; i < p->count && !found; i++)
            found = !strcmp(p->cases[i].name, a->cases[k]);
        if (!found) {
            fprintf(stderr,
                    "clnet-bench: --case: no case \"%s\" in the chosen suites "
                    "(--list-suites)\n",
                    a->cases[k]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static int resolve_devices(args *a)
{
    if (!a->all_devices)
        return 0;
    char err[2048];
    clnet_system *sys;
    if (clnet_system_query(&sys, err, sizeof err)) {
        fprintf(stderr, "clnet-bench: %s\n", err);
        return 1;
    }
    static char specs[MAX_DEVICES][32];
    a->device_count = 0;
    for (int p = 0; p < sys->platform_count; p++)
        for (int d = 0; d < sys->platforms[p].device_count && a->device_count < MAX_DEVICES; d++) {
            snprintf(specs[a->device_count], sizeof specs[0], "%d:%d", p, d);
            a->devices[a->device_count] = specs[a->device_count];
            a->device_count++;
        }
    clnet_system_free(sys);
    if (!a->device_count) {
        fprintf(stderr, "clnet-bench: no OpenCL device found\n");
        return 1;
    }
    return 0;
}

static clnet_context *open_context(const char *spec, const char *cache_dir, char *err, size_t size)
{
    clnet_context_params params = CLNET_CONTEXT_PARAMS_DEFAULT;
    params.device = spec;
    params.cache_dir = cache_dir;
    params.profiling = 1;
    params.log = cli_log_reports;
    clnet_context *ctx = NULL;
    if (clnet_context_create(&params, &ctx, err, size))
        return NULL;
    return ctx;
}

typedef struct session {
    const args *a;
    const plan *p;
    const char *cache_dir;
    bench_run_info info;
    bench_result *results; /* device-major: device * p->count + case */
    bench_compile compile[MAX_DEVICES * NSUITES];
    int compile_count;
    void *refs[MAX_CASES]; /* float64 references, shared by devices */
} session;

/* Every case of suite su on device d, in the measuring context. */
static void run_suite(session *s, clnet_context *ctx, int d, const bench_suite *su,
                      const bench_peak *peak, bench_compile *cc)
{
    clnet_context_stats before = { 0 }, after = { 0 };
    clnet_context_get_stats(ctx, &before);
    for (int i = 0; i < s->p->count; i++) {
        if (s->p->suite[i] != su)
            continue;
        bench_result *r = &s->results[d * s->p->count + i];
        const bench_case *c = &s->p->cases[i];
        r->peak = *peak;
        int inject = inject_here(s->a, su->name, c->name, d);
        bench_run_case(ctx, su, c, &s->a->o, &s->refs[i], inject, r);
        if (r->ok)
            cc->first_s += fmax(0.0, r->first_ms - r->median_ms) * 1e-3;
        fprintf(stderr, "  device %d %-22s %s\n", d, c->name,
                r->ok ? (r->check.done && !r->check.pass ? "FAIL" : "done") : r->error);
    }
    clnet_context_get_stats(ctx, &after);
    cc->built = after.programs_built - before.programs_built;
    cc->loaded = after.programs_loaded - before.programs_loaded;
    cc->build_s = after.build_seconds - before.build_seconds;
}

/* The first calls again, in a new context whose disk caches are now filled. */
static void warm_pass(session *s, int d)
{
    char err[2048];
    clnet_context *ctx = open_context(s->a->devices[d], s->cache_dir, err, sizeof err);
    if (!ctx)
        return;
    for (int k = 0; k < s->compile_count; k++) {
        bench_compile *cc = &s->compile[k];
        if (cc->device != d)
            continue;
        clnet_context_stats before = { 0 }, after = { 0 };
        clnet_context_get_stats(ctx, &before);
        cc->warm_s = 0.0;
        for (int i = 0; i < s->p->count; i++) {
            bench_result *r = &s->results[d * s->p->count + i];
            if (strcmp(s->p->suite[i]->name, cc->suite) || !r->ok)
                continue;
            r->first_warm_ms = bench_first_call(ctx, s->p->suite[i], &s->p->cases[i]);
            if (r->first_warm_ms >= 0)
                cc->warm_s += fmax(0.0, r->first_warm_ms - r->median_ms) * 1e-3;
        }
        clnet_context_get_stats(ctx, &after);
        cc->built_warm = after.programs_built - before.programs_built;
        cc->loaded_warm = after.programs_loaded - before.programs_loaded;
        cc->build_warm_s = after.build_seconds - before.build_seconds;
    }
    clnet_context_destroy(ctx);
}

static void run_device(session *s, int d)
{
    char err[2048];
    const plan *p = s->p;
    for (int i = 0; i < p->count; i++) {
        bench_result *r = &s->results[d * p->count + i];
        r->device = d;
        r->suite = p->suite[i]->name;
        r->c = p->cases[i];
        r->event_ms = r->first_warm_ms = -1.0;
    }
    clnet_context *ctx = open_context(s->a->devices[d], s->cache_dir, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "clnet-bench: device %d: %s\n", d, err);
        err[strcspn(err, "\n")] = 0;
        snprintf(s->info.devices[d], sizeof s->info.devices[d], "%s (not opened: %.150s)",
                 s->a->devices[d] ? s->a->devices[d] : "default", err);
        for (int i = 0; i < p->count; i++)
            snprintf(s->results[d * p->count + i].error, sizeof s->results[0].error,
                     "device not opened");
        return;
    }
    const clnet_device_info *di = clnet_context_device(ctx);
    snprintf(s->info.devices[d], sizeof s->info.devices[d], "%s [%d:%d]", di->name,
             di->platform_index, di->device_index);
    fprintf(stderr, "device %d: %s\n", d, s->info.devices[d]);
    bench_peak peak = { 0 };
    if (!s->a->o.no_peak)
        bench_peak_measure(ctx, s->a->o.quick, &peak);
    else
        snprintf(peak.error, sizeof peak.error, "--no-peak");
    for (size_t k = 0; k < NSUITES; k++) {
        const bench_suite *su = bench_suites[k];
        int used = 0;
        for (int i = 0; i < p->count; i++)
            used |= p->suite[i] == su;
        if (!used)
            continue;
        bench_compile *cc = &s->compile[s->compile_count++];
        *cc = (bench_compile){ .device = d, .suite = su->name, .warm_s = -1.0 };
        run_suite(s, ctx, d, su, &peak, cc);
    }
    clnet_context_destroy(ctx);
    warm_pass(s, d);
}

static int exit_status(const session *s)
{
    int n = s->info.device_count * s->p->count, status = EXIT_OK;
    for (int i = 0; i < n; i++) {
        const bench_result *r = &s->results[i];
        if (!r->ok)
            return EXIT_ERROR;
        if (r->check.done && !r->check.pass)
            status = EXIT_CHECK_FAILED;
    }
    return status;
}

static int write_files(const session *s)
{
    int n = s->info.device_count * s->p->count, bad = 0;
    const args *a = s->a;
    if (a->json && bench_write_json(a->json, &s->info, s->results, n))
        bad = fprintf(stderr, "clnet-bench: could not write %s\n", a->json);
    if (a->csv && bench_write_csv(a->csv, &s->info, s->results, n))
        bad = fprintf(stderr, "clnet-bench: could not write %s\n", a->csv);
    if ((a->plot || a->plot_data) &&
        bench_write_plot(a->plot, a->plot_data, &s->info, s->results, n))
        bad =
            fprintf(stderr, "clnet-bench: could not write %s\n", a->plot ? a->plot : a->plot_data);
    return bad != 0;
}

static void report(const session *s)
{
    const bench_run_info *info = &s->info;
    int n = info->device_count * s->p->count;
    printf("clnet-bench %s, %s, host %s\n", clnet_version(), info->date, info->host);
    printf("times: per operation, median of the repetitions (a repetition queues the operation "
           "`inner` times\nand waits with clnet_context_finish), wall clock; warm-up excluded; "
           "%%peak: share of the roofline\nfrom the peak measured on the device itself (C: "
           "compute-bound, M: memory-bound)\n");
    for (int d = 0; d < info->device_count; d++)
        bench_print_device_table(stdout, info, s->results, n, d);
    if (info->device_count > 1)
        bench_print_side_by_side(stdout, info, s->results, n);
    bench_print_compile(stdout, info, s->compile, s->compile_count);
}

static int run(args *a)
{
    static plan p;
    int status = make_plan(a, &p);
    if (status)
        return status;
    /* The output files' paths, before the run that fills them. */
    if ((a->json && !out_check("clnet-bench", "--json", a->json)) ||
        (a->csv && !out_check("clnet-bench", "--csv", a->csv)) ||
        (a->plot && !out_check("clnet-bench", "--plot", a->plot)) ||
        (a->plot_data && !out_check("clnet-bench", "--plot-data", a->plot_data)))
        return EXIT_USAGE;
    char tmp[] = "/tmp/clnet-bench-XXXXXX", clnet_dir[1100] = "";
    if (a->o.cold && make_cold_caches(tmp, clnet_dir, sizeof clnet_dir))
        return EXIT_ERROR;
    status = EXIT_ERROR;
    session s = { .a = a, .p = &p, .cache_dir = a->o.cold ? clnet_dir : NULL };
    if (resolve_devices(a))
        goto done;
    if (!a->device_count)
        a->devices[a->device_count++] = NULL; /* the default device */
    char date[64], host[256] = "unknown";
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    gethostname(host, sizeof host - 1);
    s.info = (bench_run_info){ .device_count = a->device_count,
                               .cold = a->o.cold,
                               .checked = a->o.check,
                               .date = date,
                               .host = host };
    s.results = calloc((size_t)(a->device_count * (p.count ? p.count : 1)), sizeof *s.results);
    if (!s.results)
        goto done;
    for (int d = 0; d < a->device_count; d++)
        run_device(&s, d);
    report(&s);
    status = exit_status(&s);
    if (write_files(&s) && status == EXIT_OK)
        status = EXIT_ERROR;
done:
    for (int i = 0; i < p.count; i++)
        free(s.refs[i]);
    free(s.results);
    bench_onnx_release();
    if (a->o.cold)
        remove_tree(tmp);
    return status;
}

int main(int argc, char **argv)
{
    static args a;
    int st = parse(argc, argv, &a);
    if (st)
        return st < 0 ? EXIT_OK : st;
    if (a.list)
        return list_devices();
    if (a.list_suites) {
        list_suites(a.o.quick);
        return EXIT_OK;
    }
    return run(&a);
}
