/* clnet tests — the runtime: device choice, contexts, errors, build logs. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/opencl.h"
#include "harness.h"
#include "runtime/context_impl.h"
#include "runtime/fault.h"
#include "runtime/runtime.h"

static clnet_status create(const char *spec, clnet_context **ctx, char *err, size_t n)
{
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = spec;
    return clnet_context_create(&p, ctx, err, n);
}

START_TEST(default_device_works)
{
    clnet_context *ctx = test_context();
    const clnet_device_info *d = clnet_context_device(ctx);
    ck_assert_ptr_nonnull(d);
    ck_assert(d->name[0] != 0);
    ck_assert_uint_gt(d->max_alloc_bytes, 0);
    ck_assert_uint_gt(d->max_work_group_size, 0);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(specs_select_devices)
{
    char err[2048];
    clnet_system *sys;
    ck_assert_int_eq(clnet_system_query(&sys, err, sizeof err), CLNET_OK);
    const clnet_device_info *first = NULL;
    for (int p = 0; p < sys->platform_count && !first; p++)
        if (sys->platforms[p].device_count)
            first = &sys->platforms[p].devices[0];
    ck_assert_ptr_nonnull(first);
    char pd[32];
    snprintf(pd, sizeof pd, "%d:%d", first->platform_index, first->device_index);
    /* The device name in upper case, to prove matching ignores case. */
    char upper[128];
    snprintf(upper, sizeof upper, "%s", first->name);
    for (char *c = upper; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    const char *specs[] = { pd, upper, first->platform_name,
                            first->type == CLNET_DEVICE_CPU ? "cpu" : "gpu" };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        clnet_context *ctx = NULL;
        clnet_status st = create(specs[i], &ctx, err, sizeof err);
        ck_assert_msg(st == CLNET_OK, "spec \"%s\": %s", specs[i], err);
        ck_assert_str_eq(clnet_context_device(ctx)->name, first->name);
        clnet_context_destroy(ctx);
    }
    clnet_system_free(sys);
}
END_TEST

START_TEST(bad_spec_lists_devices)
{
    char err[2048];
    clnet_context *ctx = (clnet_context *)1;
    /* 4294967296:0 and 0:4294967296 wrapped to 0:0 under sscanf's %d. */
    const char *bad[] = { "no-such-device-xyz", "9:9",          "0:99",
                          "accelerator-nope",   "4294967296:0", "0:4294967296" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(create(bad[i], &ctx, err, sizeof err), CLNET_ERR_NO_DEVICE);
        ck_assert_ptr_null(ctx);
        ck_assert_msg(strstr(err, bad[i]) != NULL, "message lacks the spec: %s", err);
        ck_assert_msg(strstr(err, "0:0") != NULL, "message does not list devices: %s", err);
    }
}
END_TEST

START_TEST(env_spec_is_used_and_named)
{
    char err[2048];
    clnet_context *ctx = NULL;
    setenv("CLNET_DEVICE", "no-such-device-env", 1);
    ck_assert_int_eq(create(NULL, &ctx, err, sizeof err), CLNET_ERR_NO_DEVICE);
    ck_assert_msg(strstr(err, "CLNET_DEVICE") && strstr(err, "no-such-device-env"), "%s", err);
    /* An explicit spec wins over the environment. */
    ck_assert_int_eq(create("0:0", &ctx, err, sizeof err), CLNET_OK);
    clnet_context_destroy(ctx);
    unsetenv("CLNET_DEVICE");
}
END_TEST

START_TEST(missing_icd_says_how_to_install)
{
    /* The ICD loader reads OCL_ICD_VENDORS on first use, so this needs a
     * fresh (forked) process. */
    if (getenv("CK_FORK") && !strcmp(getenv("CK_FORK"), "no"))
        return;
    char dir[] = "/tmp/clnet-no-icd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("OCL_ICD_VENDORS", dir, 1);
    char err[2048];
    clnet_context *ctx = NULL;
    ck_assert_int_eq(create(NULL, &ctx, err, sizeof err), CLNET_ERR_NO_PLATFORM);
    ck_assert_msg(strstr(err, "pocl-opencl-icd") != NULL, "%s", err);
    clnet_system *sys = (clnet_system *)1;
    ck_assert_int_eq(clnet_system_query(&sys, err, sizeof err), CLNET_ERR_NO_PLATFORM);
    ck_assert_ptr_null(sys);
    rmdir(dir);
}
END_TEST

START_TEST(null_arguments)
{
    char err[256];
    ck_assert_int_eq(clnet_context_create(NULL, NULL, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert(strstr(err, "out") != NULL);
    ck_assert_int_eq(clnet_system_query(NULL, NULL, 0), CLNET_ERR_INVALID_ARG);
    clnet_context_destroy(NULL);
    clnet_system_free(NULL);
    ck_assert_int_eq(clnet_context_finish(NULL), CLNET_ERR_INVALID_ARG);
    ck_assert_str_eq(clnet_status_name(CLNET_ERR_BUILD), "CLNET_ERR_BUILD");
    ck_assert_str_eq(clnet_status_name((clnet_status)999), "CLNET_ERR_UNKNOWN");
}
END_TEST

START_TEST(several_contexts_at_once)
{
    clnet_context *a = test_context(), *b = test_context();
    int64_t n = 33;
    clnet_tensor *ta, *tb;
    CK_OK(a, clnet_tensor_create(a, CLNET_F32, 1, &n, &ta));
    CK_OK(b, clnet_tensor_create(b, CLNET_F32, 1, &n, &tb));
    CK_OK(a, clnet_tensor_fill(ta, 1.5));
    CK_OK(b, clnet_tensor_fill(tb, -2.0));
    float x[33], y[33];
    download(a, ta, x, 33);
    download(b, tb, y, 33);
    for (int i = 0; i < 33; i++)
        ck_assert(x[i] == 1.5f && y[i] == -2.0f);
    /* A tensor of one context is refused by another's op. */
    CK_FAILS(a, CLNET_ERR_INVALID_ARG, "another context", clnet_add(ta, tb, ta));
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_context_destroy(a);
    clnet_context_destroy(b);
}
END_TEST

static int log_calls;
static void count_log(void *user, clnet_status st, const char *msg)
{
    (void)user;
    (void)msg;
    if (st != CLNET_OK)
        log_calls++;
}

START_TEST(broken_kernel_reports_build_log)
{
    clnet_context *ctx = test_context();
    clnet_context_destroy(ctx);
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    p.log = count_log;
    char err[1024];
    ck_assert_int_eq(clnet_context_create(&p, &ctx, err, sizeof err), CLNET_OK);
    const char *src = "__kernel void broken(__global float *x) { x[0] = undeclared_thing; }\n";
    cl_kernel k;
    CK_FAILS(ctx, CLNET_ERR_BUILD, "undeclared_thing",
             clnet__kernel_from_source(ctx, "broken", src, "-DBROKEN_TEST=1", "broken", &k));
    const char *msg = clnet_context_errmsg(ctx);
    ck_assert_msg(strstr(msg, "build log") && strstr(msg, "-DBROKEN_TEST=1") &&
                      strstr(msg, "\"broken\"") && strstr(msg, "CL_BUILD_PROGRAM_FAILURE"),
                  "%s", msg);
    ck_assert_int_eq(log_calls, 1);
    /* The context stays usable. */
    int64_t n = 7;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_fill(t, 3.0));
    float v[7];
    download(ctx, t, v, 7);
    ck_assert(v[6] == 3.0f);
    /* A missing kernel name in a good program is named too. */
    CK_FAILS(ctx, CLNET_ERR_OPENCL, "no_such_kernel",
             clnet__kernel(ctx, "tensor", NULL, "no_such_kernel", &k));
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(kernels_are_cached_in_memory)
{
    clnet_context *ctx = test_context();
    cl_kernel k1, k2;
    CK_OK(ctx, clnet__kernel(ctx, "tensor", NULL, "fill_f32", &k1));
    CK_OK(ctx, clnet__kernel(ctx, "tensor", NULL, "fill_f32", &k2));
    ck_assert_ptr_eq(k1, k2);
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    ck_assert_uint_eq(s.programs_built + s.programs_loaded, 1);
    /* Other options are another program. */
    CK_OK(ctx, clnet__kernel(ctx, "tensor", "-DVARIANT=2", "fill_f32", &k2));
    ck_assert_ptr_ne(k1, k2);
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    ck_assert_uint_eq(s.programs_built + s.programs_loaded, 2);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(wrap_user_opencl_objects)
{
    clnet_context *own = test_context();
    cl_device_id dev = clnet_context_cl_device(own);
    cl_int e;
    cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_command_queue q = clCreateCommandQueue(cl, dev, 0, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    char err[512];
    clnet_context *ctx;
    ck_assert_int_eq(clnet_context_wrap(dev, cl, q, NULL, &ctx, err, sizeof err), CLNET_OK);
    ck_assert_ptr_eq(clnet_context_cl_context(ctx), cl);
    ck_assert_ptr_eq(clnet_context_cl_queue(ctx), q);
    int64_t n = 5;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_fill(t, 4.0));
    float v[5];
    /* The user's queue and buffer are usable directly. */
    ck_assert_int_eq(
        clEnqueueReadBuffer(q, clnet_tensor_cl_mem(t), CL_TRUE, 0, sizeof v, v, 0, NULL, NULL),
        CL_SUCCESS);
    ck_assert(v[4] == 4.0f);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
    /* Our references are still valid after clnet released its own. */
    ck_assert_int_eq(clReleaseCommandQueue(q), CL_SUCCESS);
    ck_assert_int_eq(clReleaseContext(cl), CL_SUCCESS);
    ck_assert_int_eq(clnet_context_wrap(NULL, cl, q, NULL, &ctx, err, sizeof err),
                     CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(ctx);
    clnet_context_destroy(own);
}
END_TEST

static int forked(void)
{
    const char *f = getenv("CK_FORK");
    return !(f && !strcmp(f, "no"));
}

/* Index of pocl's platform, or -1 (then the pocl-specific tests skip). */
static int pocl_platform(const clnet_system *sys)
{
    for (int p = 0; p < sys->platform_count; p++)
        if (strstr(sys->platforms[p].name, "Portable Computing Language"))
            return p;
    return -1;
}

START_TEST(several_devices_are_listed_and_chosen)
{
    if (!forked())
        return; /* pocl reads POCL_DEVICES once per process */
    setenv("POCL_DEVICES", "pthread pthread", 1);
    char err[2048];
    clnet_system *sys;
    ck_assert_int_eq(clnet_system_query(&sys, err, sizeof err), CLNET_OK);
    int p = pocl_platform(sys);
    if (p < 0) {
        clnet_system_free(sys);
        return;
    }
    ck_assert_int_ge(sys->platforms[p].device_count, 2);
    char spec[16];
    snprintf(spec, sizeof spec, "%d:1", p);
    clnet_context *a, *b;
    ck_assert_msg(create(spec, &b, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(clnet_context_device(b)->device_index, 1);
    snprintf(spec, sizeof spec, "%d:0", p);
    ck_assert_msg(create(spec, &a, err, sizeof err) == CLNET_OK, "%s", err);
    int64_t n = 65;
    clnet_tensor *ta, *tb;
    CK_OK(a, clnet_tensor_create(a, CLNET_F32, 1, &n, &ta));
    CK_OK(b, clnet_tensor_create(b, CLNET_F32, 1, &n, &tb));
    CK_OK(a, clnet_tensor_fill(ta, 1.0));
    CK_OK(b, clnet_tensor_fill(tb, 2.0));
    float sa, sb;
    CK_OK(a, clnet_sum_host(ta, &sa));
    CK_OK(b, clnet_sum_host(tb, &sb));
    ck_assert(sa == 65.0f && sb == 130.0f);
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_context_destroy(a);
    clnet_context_destroy(b);
    clnet_system_free(sys);
}
END_TEST

START_TEST(tiny_work_group_limit)
{
    if (!forked())
        return;
    setenv("POCL_MAX_WORK_GROUP_SIZE", "8", 1);
    clnet_context *ctx = test_context();
    const clnet_device_info *d = clnet_context_device(ctx);
    if (!strstr(d->platform_name, "Portable Computing Language")) {
        clnet_context_destroy(ctx);
        return;
    }
    ck_assert_uint_le(d->max_work_group_size, 8);
    /* The reduction's local arrays follow the profile's work-group size. */
    int64_t n = 100003;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_fill(t, 0.5));
    float s;
    CK_OK(ctx, clnet_sum_host(t, &s));
    ck_assert_msg(s == 50001.5f, "sum %.9g", s);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

static void copy_file(const char *from, const char *to, const char *find, const char *repl)
{
    FILE *f = fopen(from, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", from);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    FILE *o = fopen(to, "wb");
    ck_assert_ptr_nonnull(o);
    char *hit = find ? strstr(buf, find) : NULL;
    if (hit) {
        fwrite(buf, 1, (size_t)(hit - buf), o);
        fputs(repl, o);
        fputs(hit + strlen(find), o);
    } else {
        fwrite(buf, 1, n, o);
    }
    fclose(o);
}

START_TEST(kernel_dir_overrides_embedded_sources)
{
    const char *src = getenv("CLNET_SOURCE_CL_DIR");
    ck_assert_msg(src != NULL, "CLNET_SOURCE_CL_DIR is set by meson test");
    char dir[] = "/tmp/clnet-kdir-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/prelude.cl", src);
    snprintf(to, sizeof to, "%s/prelude.cl", dir);
    copy_file(from, to, NULL, NULL);
    /* A fill that writes twice the value proves the file on disk is used. */
    snprintf(from, sizeof from, "%s/tensor.cl", src);
    snprintf(to, sizeof to, "%s/tensor.cl", dir);
    copy_file(from, to, "x[off + i] = value;", "x[off + i] = 2.0f * value;");
    setenv("CLNET_KERNEL_DIR", dir, 1);
    clnet_context *ctx = test_context();
    int64_t n = 3;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_fill(t, 1.5));
    float v[3];
    download(ctx, t, v, 3);
    ck_assert_msg(v[2] == 3.0f, "fill gave %g: the kernel directory was not read", v[2]);
    /* A program missing from the directory is a clear I/O error. */
    cl_kernel k;
    CK_FAILS(ctx, CLNET_ERR_IO, "elementwise.cl",
             clnet__kernel(ctx, "elementwise", NULL, "add", &k));
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
    unsetenv("CLNET_KERNEL_DIR");
    unlink(to);
    snprintf(to, sizeof to, "%s/prelude.cl", dir);
    unlink(to);
    rmdir(dir);
}
END_TEST

/* ---- Feature detection ---------------------------------------------------- */

static int is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

START_TEST(profile_records_device_features)
{
    clnet_context *ctx = test_context();
    const clnet__profile *prof = clnet__context_profile(ctx);
    const clnet_device_info *d = &prof->info;
    /* The fp flags agree with the device's own extension string. */
    cl_device_id dev = clnet_context_cl_device(ctx);
    char ext[8192] = "";
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL),
                     CL_SUCCESS);
    ck_assert_int_eq(d->has_fp16, (d->features & CLNET_FEATURE_FP16) != 0);
    ck_assert_int_eq(d->has_fp64, (d->features & CLNET_FEATURE_FP64) != 0);
    if (strstr(ext, "cl_khr_fp64"))
        ck_assert(d->has_fp64);
    if (strstr(ext, "cl_khr_fp16"))
        ck_assert(d->has_fp16);
    ck_assert_int_ge(d->opencl_major, 1);
    /* Work-group collectives need OpenCL C 2.x or the 3.0 feature. */
    if (d->features & CLNET_FEATURE_WORK_GROUP_COLLECTIVES)
        ck_assert(d->opencl_c_major == 2 || (d->features & CLNET_FEATURE_OPENCL_C_30));
    if (d->features & CLNET_FEATURE_OPENCL_C_30)
        ck_assert_int_ge(d->opencl_major, 3);
    /* One power-of-two work-group size within every limit. */
    ck_assert(is_pow2(prof->wg_size));
    ck_assert_uint_le(prof->wg_size, d->max_work_group_size);
    ck_assert_uint_le(prof->wg_size * CLNET_LOCAL_BYTES_PER_ITEM, d->local_mem_bytes);
    /* Base options: OpenCL C 1.2 from the device's C version, never more. */
    ck_assert_int_eq(strstr(prof->options, "-cl-std=CL1.2") != NULL, prof->cl12);
    ck_assert_ptr_null(strstr(prof->options, "-cl-std=CL2"));
    ck_assert_ptr_null(strstr(prof->options, "-cl-std=CL3"));
    if (d->opencl_c_major != 2 && (d->features & CLNET_FEATURE_OPENCL_C_30))
        ck_assert_ptr_nonnull(strstr(prof->feature_options, "-cl-std=CL3.0"));
    if (strstr(d->platform_name, "Portable Computing Language"))
        /* pocl 3.1's CPU device: OpenCL C 1.2 by its version string, 3.0 by its
         * version list, fp64, no sub-groups (clinfo agrees). */
        ck_assert(prof->cl12 && (d->features & CLNET_FEATURE_OPENCL_C_30) && d->has_fp64 &&
                  !(d->features & CLNET_FEATURE_SUBGROUPS));
    clnet_context_destroy(ctx);
}
END_TEST

/* Sums x sequentially in double where the device has fp64, else in float:
 * 2^24 + 1 + 1 + 1 + 1 is 2^24 + 4 in double and 2^24 in float. */
static const char dsum_source[] =
    "#ifdef CLNET_HAS_FP64\n"
    "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "typedef double acc_t;\n"
    "#else\n"
    "typedef float acc_t;\n"
    "#endif\n"
    "__kernel void seq_sum(__global const float *x, __global float *out, const int n)\n"
    "{\n"
    "    if (get_global_id(0) != 0)\n"
    "        return;\n"
    "    acc_t s = 0;\n"
    "    for (int i = 0; i < n; i++)\n"
    "        s += x[i];\n"
    "    out[0] = (float)s;\n"
    "}\n";

static float run_seq_sum(clnet_context *ctx, cl_kernel k)
{
    const float x[5] = { 16777216.0f, 1, 1, 1, 1 };
    clnet_tensor *tx = tensor_from(ctx, 1, (int64_t[]){ 5 }, x), *out;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, (int64_t[]){ 1 }, &out));
    clnet__arg a[] = { CLNET_ARG_MEM(clnet_tensor_cl_mem(tx)),
                       CLNET_ARG_MEM(clnet_tensor_cl_mem(out)), CLNET_ARG_INT(5) };
    CK_OK(ctx, clnet__launch1d(ctx, k, "seq_sum", 3, a, 1));
    float s;
    download(ctx, out, &s, 1);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(out);
    return s;
}

START_TEST(feature_variant_builds_or_falls_back)
{
    clnet_context *ctx = test_context();
    const clnet__profile *prof = clnet__context_profile(ctx);
    char base[sizeof prof->options];
    memcpy(base, prof->options, sizeof base);
    cl_kernel k;
    /* A device without fp64 (rusticl on llvmpipe) refuses the variant: an
     * error this test expects, announced to the strict log handler. */
    int prev = expect_errors(!clnet__has_features(ctx, CLNET_FEATURE_FP64));
    clnet_status st =
        clnet__kernel_features(ctx, CLNET_FEATURE_FP64, "dsum", dsum_source, NULL, "seq_sum", &k);
    expect_errors(prev);
    if (clnet__has_features(ctx, CLNET_FEATURE_FP64)) {
        /* Built with the feature options (OpenCL C 3.0 on pocl): the prelude's
         * CLNET_HAS_FP64 is defined there and the double path runs. */
        CK_OK(ctx, st);
        ck_assert_msg(run_seq_sum(ctx, k) == 16777220.0f, "the fp64 variant summed in float");
    } else {
        CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, "fallback", st);
    }
    ck_assert_str_eq(prof->options, base); /* the base options are restored */
    /* The fallback: the same source as OpenCL C 1.2, where fp64 is only used
     * if the device's compiler defines cl_khr_fp64 by itself. */
    CK_OK(ctx,
          clnet__kernel_from_source(ctx, "dsum", dsum_source, "-DDSUM_FALLBACK=1", "seq_sum", &k));
    float s = run_seq_sum(ctx, k);
    ck_assert_msg(s == (prof->info.has_fp64 ? 16777220.0f : 16777216.0f), "fallback sum %.9g", s);
    /* A feature no CPU driver here has: refused with the missing flag named. */
    unsigned all = CLNET_FEATURE_FP16 | CLNET_FEATURE_FP64 | CLNET_FEATURE_SUBGROUPS |
                   CLNET_FEATURE_WORK_GROUP_COLLECTIVES | CLNET_FEATURE_NON_UNIFORM_WORK_GROUPS |
                   CLNET_FEATURE_OPENCL_C_30;
    if (!clnet__has_features(ctx, all)) {
        char flags[32];
        snprintf(flags, sizeof flags, "0x%x", all & ~prof->info.features);
        CK_FAILS(ctx, CLNET_ERR_UNSUPPORTED, flags,
                 clnet__kernel_features(ctx, all, "dsum", dsum_source, NULL, "seq_sum", &k));
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The probe and the default choice ---------------------------------------- */

START_TEST(probe_passes_and_reports_failures)
{
    clnet_context *ctx = test_context();
    char err[4096];
    ck_assert_msg(clnet__probe(ctx, err, sizeof err) == CLNET_OK, "%s", err);
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    ck_assert_uint_eq(s.programs_built + s.programs_loaded + s.buffers_live, 0); /* no trace */
    const char *broken = "__kernel void clnet_probe(__global float *x, const int n)\n"
                         "{ x[0] = undeclared_probe_thing; }\n";
    ck_assert_int_eq(clnet__probe_source(ctx, broken, err, sizeof err), CLNET_ERR_BUILD);
    ck_assert_msg(strstr(err, "undeclared_probe_thing") && strstr(err, "build log") &&
                      strstr(err, "-DCLNET_WG="),
                  "%s", err);
    const char *wrong = "__kernel void clnet_probe(__global float *x, const int n)\n"
                        "{ int i = get_global_id(0); if (i < n) x[i] = 2.0f; }\n";
    ck_assert_int_eq(clnet__probe_source(ctx, wrong, err, sizeof err), CLNET_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err, "wrote 2"), "%s", err);
    const char *unnamed = "__kernel void other(__global float *x) { x[0] = 1.0f; }\n";
    ck_assert_int_eq(clnet__probe_source(ctx, unnamed, err, sizeof err), CLNET_ERR_OPENCL);
    ck_assert_msg(strstr(err, "clCreateKernel"), "%s", err);
    clnet_context_destroy(ctx);
}
END_TEST

/* Points the ICD loader at a directory holding copies of the named vendor
 * files from /etc/OpenCL/vendors (only those present). Returns how many were
 * found; dir receives the directory (remove with drop_vendors). */
static int only_vendors(char *dir, const char *const *names, int n)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int found = 0;
    for (int i = 0; i < n; i++) {
        char from[256], to[256];
        snprintf(from, sizeof from, "/etc/OpenCL/vendors/%s", names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        FILE *f = fopen(from, "rb");
        if (!f)
            continue;
        char line[512] = "";
        size_t len = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        FILE *o = fopen(to, "wb");
        ck_assert_ptr_nonnull(o);
        fwrite(line, 1, len, o);
        fclose(o);
        found++;
    }
    setenv("OCL_ICD_VENDORS", dir, 1);
    return found;
}

static void drop_vendors(const char *dir, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        char to[256];
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        unlink(to);
    }
    rmdir(dir);
}

static int probe_calls;
static unsigned probe_fail_mask; /* bit d: fail on device index d */
static clnet_status probe_fail_status;

static clnet_status fake_probe(clnet_context *ctx, char *err, size_t err_size)
{
    int d = clnet_context_device(ctx)->device_index;
    probe_calls++;
    if (!(probe_fail_mask >> d & 1))
        return CLNET_OK;
    snprintf(err, err_size, "fake probe failure on device %d", d);
    return probe_fail_status;
}

static clnet_status create_probed(const char *spec, clnet_context **ctx, char *err, size_t n)
{
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = spec;
    p.log = count_log;
    return clnet__context_create_probed(&p, fake_probe, ctx, err, n);
}

START_TEST(default_choice_skips_a_device_whose_probe_fails)
{
    if (!forked())
        return; /* the ICD loader and pocl read their variables once */
    static const char *const pocl[] = { "pocl.icd" };
    char dir[] = "/tmp/clnet-icd-XXXXXX";
    if (!only_vendors(dir, pocl, 1)) {
        fprintf(stderr, "default_choice_skips...: no /etc/OpenCL/vendors/pocl.icd: skipped\n");
        drop_vendors(dir, pocl, 1);
        return;
    }
    setenv("POCL_DEVICES", "pthread pthread", 1);
    unsetenv("CLNET_DEVICE");
    char err[8192];
    clnet_context *ctx = NULL;
    /* Device 0 fails: the choice takes device 1 and says why. */
    probe_fail_mask = 1;
    probe_fail_status = CLNET_ERR_BUILD;
    log_calls = probe_calls = 0;
    ck_assert_msg(create_probed(NULL, &ctx, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(clnet_context_device(ctx)->device_index, 1);
    ck_assert_int_eq(probe_calls, 2);
    const char *note = clnet_context_errmsg(ctx);
    ck_assert_msg(strstr(note, "chose 0:1") && strstr(note, "skipping 0:0") &&
                      strstr(note, "fake probe failure on device 0"),
                  "%s", note);
    ck_assert_int_eq(log_calls, 1);
    clnet_context_destroy(ctx);
    /* A spec that fits one device takes it without probing. */
    probe_fail_mask = 3;
    probe_calls = 0;
    ck_assert_msg(create_probed("0:0", &ctx, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(probe_calls, 0);
    ck_assert_str_eq(clnet_context_errmsg(ctx), "");
    clnet_context_destroy(ctx);
    /* Every device fails: no context, and the message names each. */
    ctx = (clnet_context *)1;
    ck_assert_int_eq(create_probed(NULL, &ctx, err, sizeof err), CLNET_ERR_BUILD);
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, "no usable OpenCL device") && strstr(err, "0:0") &&
                      strstr(err, "0:1") && strstr(err, "failure on device 1"),
                  "%s", err);
    /* A host failure is not the device's fault: no second try. */
    probe_fail_status = CLNET_ERR_HOST_MEMORY;
    probe_calls = 0;
    ck_assert_int_eq(create_probed(NULL, &ctx, err, sizeof err), CLNET_ERR_HOST_MEMORY);
    ck_assert_int_eq(probe_calls, 1);
    /* The real probe passes on both and the default stays device 0. */
    ck_assert_msg(create(NULL, &ctx, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(clnet_context_device(ctx)->device_index, 0);
    ck_assert_str_eq(clnet_context_errmsg(ctx), "");
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    ck_assert_uint_eq(s.programs_built + s.programs_loaded, 0);
    clnet_context_destroy(ctx);
    drop_vendors(dir, pocl, 1);
}
END_TEST

START_TEST(empty_platforms_are_listed_with_a_reason)
{
    if (!forked())
        return;
    if (getenv("OCL_ICD_VENDORS")) {
        /* The caller chose the drivers (e.g. pocl only under AddressSanitizer:
         * Mesa 22.3's OpenCL libraries leak when loaded). */
        fprintf(stderr, "empty_platforms...: OCL_ICD_VENDORS is set: skipped\n");
        return;
    }
    static const char *const icds[] = { "pocl.icd", "mesa.icd", "rusticl.icd" };
    char dir[] = "/tmp/clnet-icd-XXXXXX";
    int found = only_vendors(dir, icds, 3);
    if (found < 3) {
        fprintf(stderr, "empty_platforms...: needs pocl-opencl-icd and mesa-opencl-icd: skipped\n");
        drop_vendors(dir, icds, 3);
        return;
    }
    unsetenv("RUSTICL_ENABLE");
    unsetenv("CLNET_DEVICE");
    char err[4096];
    clnet_system *sys;
    ck_assert_msg(clnet_system_query(&sys, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_int_eq(sys->platform_count, 3);
    int with_devices = 0, clover = 0, rusticl = 0;
    for (int p = 0; p < sys->platform_count; p++) {
        const clnet_platform_info *pi = &sys->platforms[p];
        if (pi->device_count) {
            with_devices++;
            ck_assert_str_eq(pi->note, "");
        } else if (!strcmp(pi->name, "Clover")) {
            clover = strstr(pi->note, "no devices") && strstr(pi->note, "AMD GPUs");
        } else if (!strcmp(pi->name, "rusticl")) {
            rusticl = strstr(pi->note, "RUSTICL_ENABLE=llvmpipe") != NULL;
        }
    }
    ck_assert_int_eq(with_devices, 1);
    ck_assert_msg(clover && rusticl, "notes do not say why a platform is empty");
    /* The default choice and a spec error both cope with the empty ones. */
    clnet_context *ctx;
    ck_assert_msg(create(NULL, &ctx, err, sizeof err) == CLNET_OK, "%s", err);
    ck_assert_str_eq(clnet_context_device(ctx)->platform_name, "Portable Computing Language");
    clnet_context_destroy(ctx);
    ck_assert_int_eq(create("no-such-device-xyz", &ctx, err, sizeof err), CLNET_ERR_NO_DEVICE);
    ck_assert_msg(strstr(err, "\"Clover\": no devices"), "%s", err);
    ck_assert_msg(create("pocl", &ctx, err, sizeof err) == CLNET_OK, "spec pocl: %s", err);
    clnet_context_destroy(ctx);
    clnet_system_free(sys);
    drop_vendors(dir, icds, 3);
}
END_TEST

/* Kernel timing: every launch lands in its kernel's row (by name), the rows
 * add up to the launch counter, a reset clears them, nothing leaks, and a
 * context without timing says how to turn it on. */
START_TEST(kernel_times_count_every_launch)
{
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    p.profiling = CLNET_PROFILE_KERNELS;
    clnet_context *ctx;
    clnet__live live0, live1;
    clnet__fault_live(&live0);
    ck_assert_int_eq(clnet_context_create(&p, &ctx, err, sizeof err), CLNET_OK);
    int64_t n = 1000;
    clnet_tensor *a, *b;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &a));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &b));
    CK_OK(ctx, clnet_tensor_fill(a, 1.0));
    CK_OK(ctx, clnet_tensor_fill(b, 2.0));
    for (int i = 0; i < 5; i++)
        CK_OK(ctx, clnet_add(a, b, a));
    clnet_kernel_time rows[32];
    int count = -1;
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_kernel_times(ctx, rows, 32, &count));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    ck_assert_int_ge(count, 2);
    uint64_t launches = 0;
    for (int i = 0; i < count; i++) {
        ck_assert_msg(rows[i].name[0] && strcmp(rows[i].name, "?"), "row %d has no name", i);
        ck_assert(rows[i].ms >= 0 && (i == 0 || rows[i].ms <= rows[i - 1].ms));
        launches += rows[i].launches;
    }
    ck_assert_uint_eq(launches, s.kernel_launches);
    int found = 0;
    for (int i = 0; i < count; i++)
        found += rows[i].launches == 5; /* the add kernel, whatever its name */
    ck_assert_int_ge(found, 1);
    /* cap smaller than the rows: count still says how many there are. */
    int count2 = 0;
    CK_OK(ctx, clnet_context_kernel_times(ctx, rows, 1, &count2));
    ck_assert_int_eq(count2, count);
    CK_OK(ctx, clnet_context_kernel_times_reset(ctx));
    CK_OK(ctx, clnet_context_kernel_times(ctx, NULL, 0, &count));
    ck_assert_int_eq(count, 0);
    clnet_tensor_destroy(a);
    clnet_tensor_destroy(b);
    clnet_context_destroy(ctx);
    clnet__fault_live(&live1);
    ck_assert_int_eq(live1.events, live0.events);
    ck_assert_int_eq(live1.host_blocks, live0.host_blocks);

    clnet_context *off = test_context();
    CK_FAILS(off, CLNET_ERR_INVALID_ARG, "CLNET_PROFILE",
             clnet_context_kernel_times(off, rows, 32, &count));
    clnet_context_destroy(off);
}
END_TEST

/* Every environment knob is checked when a context is created: an unknown
 * value fails with a message naming the variable and the values it takes
 * (CLNET_GEMM_KERNEL=garbage used to be ignored, CLNET_PROFILE=garbage read
 * as on). */
static const struct {
    const char *var, *bad, *says;
} bad_knobs[] = {
    { "CLNET_GEMM_KERNEL", "garbage", "own, packed or clblast" },
    { "CLNET_GEMM_KERNEL", "OWN", "own, packed or clblast" },
    { "CLNET_PROFILE", "garbage", "0 or 1" },
    { "CLNET_PROFILE", "yes", "0 or 1" },
    { "CLNET_CHECK_NUMERICS", "on", "0 or 1" },
    { "CLNET_KERNEL_DIR", "/nonexistent/clnet-kernels", "not a directory" },
    { "CLNET_KERNEL_DIR", "/dev/null", "not a directory" },
    { "CLNET_DIST_TIMEOUT", "ten", "positive number of seconds" },
    { "CLNET_DIST_TIMEOUT", "-5", "positive number of seconds" },
    { "CLNET_DIST_BUCKET_KB", "inf", "positive number of KiB" },
};

START_TEST(bad_environment_values_fail_creation)
{
    char err[2048];
    clnet_context *ctx = (clnet_context *)1;
    setenv(bad_knobs[_i].var, bad_knobs[_i].bad, 1);
    ck_assert_int_eq(create(getenv("CLNET_TEST_DEVICE"), &ctx, err, sizeof err),
                     CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, bad_knobs[_i].var) && strstr(err, bad_knobs[_i].says), "%s=%s: %s",
                  bad_knobs[_i].var, bad_knobs[_i].bad, err);
    unsetenv(bad_knobs[_i].var);
}
END_TEST

/* The values the knobs take are read once, into the context's profile. */
START_TEST(good_environment_values_are_read)
{
    static const char *const gemm[] = { "own", "packed", "clblast" };
    for (int i = 0; i < 3; i++) {
        setenv("CLNET_GEMM_KERNEL", gemm[i], 1);
        clnet_context *ctx = test_context();
        ck_assert_int_eq(clnet__context_profile(ctx)->env.gemm_kernel, i);
        clnet_context_destroy(ctx);
    }
    setenv("CLNET_GEMM_KERNEL", "", 1); /* empty: the default */
    setenv("CLNET_PROFILE", "0", 1);
    clnet_context *ctx = test_context();
    ck_assert_int_eq(clnet__context_profile(ctx)->env.gemm_kernel, -1);
    ck_assert_int_eq(clnet__context_profile(ctx)->env.profile, 0);
    clnet_context_destroy(ctx);
    unsetenv("CLNET_GEMM_KERNEL");
    unsetenv("CLNET_PROFILE");
}
END_TEST

static char profile_log[65536];
static void keep_report(void *user, clnet_status st, const char *msg)
{
    (void)user;
    if (st == CLNET_OK)
        snprintf(profile_log, sizeof profile_log, "%s", msg);
}

/* CLNET_PROFILE=1 sends the kernel-time table to the log callback when the
 * context goes; the library itself writes nothing to stderr (it used to
 * print the table there). */
START_TEST(profile_table_goes_to_the_log)
{
    char path[] = "/tmp/clnet-stderr-XXXXXX", err[2048];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    setenv("CLNET_PROFILE", "1", 1);
    for (int with_log = 0; with_log < 2; with_log++) {
        ck_assert_int_eq(dup2(fd, 2), 2);
        clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
        p.device = getenv("CLNET_TEST_DEVICE");
        p.log = with_log ? keep_report : NULL;
        clnet_context *ctx = NULL;
        ck_assert_int_eq(clnet_context_create(&p, &ctx, err, sizeof err), CLNET_OK);
        int64_t n = 33;
        clnet_tensor *t;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
        CK_OK(ctx, clnet_tensor_fill(t, 3.0));
        CK_OK(ctx, clnet_context_finish(ctx));
        clnet_tensor_destroy(t);
        clnet_context_destroy(ctx);
        fflush(stderr);
        ck_assert_int_eq(dup2(saved, 2), 2);
    }
    unsetenv("CLNET_PROFILE");
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    close(fd);
    close(saved);
    unlink(path);
    ck_assert_msg(st.st_size == 0, "the library wrote %lld bytes to stderr", (long long)st.st_size);
    ck_assert_msg(strstr(profile_log, "clnet profile:") && strstr(profile_log, "fill_f32"),
                  "report: %s", profile_log);
}
END_TEST

/* Distinct contexts may be created and used from different threads at once
 * (context.h). Device discovery used to race inside the ICD loader and pocl
 * (SIGSEGV in strlen under clGetDeviceInfo, most runs with only pocl's ICD
 * registered): meson runs this case again with OCL_ICD_VENDORS naming pocl's
 * ICD alone (test "runtime-threads"). */
enum { THREADS = 8, ROUNDS = 3 };

/* Under AddressSanitizer a thread that created a pocl context fails at its
 * exit, inside ASan, to unmap its alternate signal stack ("unable to
 * unmap", every run; not with use_sigaltstack=0): the stack ASan finds
 * installed there is no longer its own. ASAN_OPTIONS still overrides this
 * default. Without ASan the function is unused. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "use_sigaltstack=0";
}

typedef struct {
    int index;
    char err[512];
} thread_job;

static void *thread_body(void *arg)
{
    thread_job *job = arg;
    for (int r = 0; r < ROUNDS; r++) {
        clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
        p.device = getenv("CLNET_TEST_DEVICE");
        clnet_context *ctx = NULL;
        clnet_tensor *t = NULL;
        int64_t n = 7;
        float v[7];
        float want = (float)(job->index * 10 + r);
        if (clnet_context_create(&p, &ctx, job->err, sizeof job->err) != CLNET_OK)
            return NULL;
        if (clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t) || clnet_tensor_fill(t, want) ||
            clnet_tensor_download(t, v, sizeof v)) {
            snprintf(job->err, sizeof job->err, "thread %d: %s", job->index,
                     clnet_context_errmsg(ctx));
        } else {
            for (int i = 0; i < 7; i++)
                if (v[i] != want) {
                    snprintf(job->err, sizeof job->err, "thread %d: read %g at [%d], not %g",
                             job->index, v[i], i, want);
                    break;
                }
        }
        clnet_tensor_destroy(t);
        clnet_context_destroy(ctx);
        if (job->err[0])
            return NULL;
    }
    return NULL;
}

START_TEST(threads_create_contexts_at_once)
{
    pthread_t th[THREADS];
    thread_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i].index = i;
        jobs[i].err[0] = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_body, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(jobs[i].err[0] == 0, "thread %d: %s", i, jobs[i].err);
}
END_TEST

START_TEST(version_matches_headers)
{
    ck_assert_str_eq(clnet_version(), CLNET_VERSION_STRING);
}
END_TEST

Suite *suite_runtime(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("devices");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, default_device_works);
    tcase_add_test(tc, specs_select_devices);
    tcase_add_test(tc, bad_spec_lists_devices);
    tcase_add_test(tc, env_spec_is_used_and_named);
    tcase_add_test(tc, missing_icd_says_how_to_install);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, several_contexts_at_once);
    tcase_add_test(tc, wrap_user_opencl_objects);
    tcase_add_test(tc, version_matches_headers);
    tcase_add_test(tc, kernel_times_count_every_launch);
    tcase_add_test(tc, several_devices_are_listed_and_chosen);
    tcase_add_test(tc, tiny_work_group_limit);
    tcase_add_test(tc, profile_records_device_features);
    tcase_add_test(tc, default_choice_skips_a_device_whose_probe_fails);
    tcase_add_test(tc, empty_platforms_are_listed_with_a_reason);
    tcase_add_loop_test(tc, bad_environment_values_fail_creation, 0,
                        (int)(sizeof bad_knobs / sizeof bad_knobs[0]));
    tcase_add_test(tc, good_environment_values_are_read);
    tcase_add_test(tc, profile_table_goes_to_the_log);
    suite_add_tcase(s, tc);
    tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, broken_kernel_reports_build_log);
    tcase_add_test(tc, kernels_are_cached_in_memory);
    tcase_add_test(tc, kernel_dir_overrides_embedded_sources);
    tcase_add_test(tc, feature_variant_builds_or_falls_back);
    tcase_add_test(tc, probe_passes_and_reports_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, threads_create_contexts_at_once);
    suite_add_tcase(s, tc);
    return s;
}
