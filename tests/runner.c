/* clnet tests — the Check runner: an explicit suite list; `runner NAME...`
 * runs the named suites, no argument runs all. No OpenCL in main: Check forks
 * each test and a child of a process that touched OpenCL inherits a broken
 * runtime. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
    { "harness", suite_harness },
    { "op", suite_op },
    { "ref", suite_ref },
    { "runtime", suite_runtime },
    { "cache", suite_cache },
    { "tensor", suite_tensor },
    { "rng", suite_rng },
    { "elementwise", suite_elementwise },
    { "gemm", suite_gemm },
    { "conv", suite_conv },
    { "pool", suite_pool },
    { "act", suite_act },
    { "loss", suite_loss },
    { "norm", suite_norm },
    { "optim", suite_optim },
    { "io", suite_io },
    { "rnn", suite_rnn },
    { "nn", suite_nn },
    { "faults", suite_faults },
    { "limits", suite_limits },
    { "gan", suite_gan },
    { "vae", suite_vae },
    { "step", suite_step },
    { "semantics", suite_semantics },
    { "merge", suite_merge },
    { "graph", suite_graph },
    { "onnx", suite_onnx },
    { "callbacks", suite_callbacks },
    { "hardening", suite_hardening },
    { "conv-grouped", suite_conv_grouped },
    { "npy", suite_npy },
    { "onnx-run", suite_onnx_run },
    { "onnx-export", suite_onnx_export },
};

#define NSUITES (sizeof suites / sizeof suites[0])

/* Suites that provoke library errors outside CK_FAILS by design (fault
 * injection, device limits): every other suite runs with the log handler
 * that fails a test on an unexpected error (harness.h). */
static const char *const lenient[] = { "faults", "limits" };

static int is_lenient(const char *name)
{
    for (size_t i = 0; i < sizeof lenient / sizeof lenient[0]; i++)
        if (!strcmp(name, lenient[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    int strict = 1;
    for (size_t i = 0; i < NSUITES; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= !strcmp(argv[a], suites[i].name);
        if (!wanted)
            continue;
        strict &= !is_lenient(suites[i].name);
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr) {
        fprintf(stderr, "runner: no suite named");
        for (int a = 1; a < argc; a++)
            fprintf(stderr, " %s", argv[a]);
        fprintf(stderr, "; suites:");
        for (size_t i = 0; i < NSUITES; i++)
            fprintf(stderr, " %s", suites[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    /* A flag in this process, before Check forks: no OpenCL here. */
    if (strict)
        strict_by_default();
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
