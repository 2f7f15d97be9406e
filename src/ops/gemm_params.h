/* clnet — CLBlast parameter sets per device, given to CLBlast through
 * CLBlastOverrideParameters by src/ops/gemm.c (its only includer). How they
 * were found, measured and checked: docs/gemm.md and tools/tune-clblast.sh. */
#ifndef CLNET_OPS_GEMM_PARAMS_H
#define CLNET_OPS_GEMM_PARAMS_H

#include <stddef.h>

#include "clnet/context.h"

#define CLNET_GEMM_MAX_PARAMS 16
#define CLNET_GEMM_MAX_KERNELS 3

/* Every parameter of one CLBlast kernel (CLBlast refuses a partial set), with
 * two values each: the tuned one, and the one CLBlast's own database gives
 * the device. CLBlast keeps an override per device for the whole process and
 * has no call that undoes one (CLBlastClearCache drops compiled programs,
 * not overrides), so the default set is restored by overriding with it. */
typedef struct clnet__gemm_kernel_params {
    const char *kernel; /* "Xgemm", "XgemmDirect", "GemmRoutine" */
    size_t count;
    const char *names[CLNET_GEMM_MAX_PARAMS];
    size_t tuned[CLNET_GEMM_MAX_PARAMS];
    size_t defaults[CLNET_GEMM_MAX_PARAMS]; /* CLBlast 1.5.3's choice */
} clnet__gemm_kernel_params;

/* The sets for one kind of device: a device matches when its platform name
 * contains `platform` and its type is `type`. */
typedef struct clnet__gemm_params {
    const char *platform;
    clnet_device_type type;
    const char *label; /* for docs and test output */
    size_t nkernels;
    clnet__gemm_kernel_params kernels[CLNET_GEMM_MAX_KERNELS];
} clnet__gemm_params;

/* pocl's CPU device. Matched on the platform and the device type, not on the
 * device name ("pthread-skylake-avx512-AMD EPYC" here, "pthread-haswell-..."
 * or "cpu-znver3-..." elsewhere): the parameters only shape the OpenCL C that
 * pocl compiles for whatever CPU it finds, so they are correct on any of them
 * or they are not, and the gemm suite checks them in exact and real mode on
 * the machine it runs on. Defaults: what CLBlast 1.5.3 gives pocl on the AMD
 * EPYC CI machine (read with clblast::RetrieveParameters). */
static const clnet__gemm_params clnet__gemm_param_table[] = {
    { "Portable Computing Language",
      CLNET_DEVICE_CPU,
      "pocl CPU",
      3,
      {
          /* The indirect kernel (Xgemm after CLBlast's copy/pad/transpose
           * kernels): docs/baselines.md's best correct set, 3-5x CLBlast's own at
           * n = 512 and 1024; the tuner's one faster-looking set (KWG=16
           * MWG=NWG=128 VWN=4 STRN=1) was no faster through the routine. */
          { "Xgemm",
            16,
            { "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA",
              "SB", "STRM", "STRN", "VWM", "VWN" },
            { 0, 1, 32, 2, 8, 8, 64, 8, 8, 128, 0, 0, 1, 0, 8, 2 },
            { 0, 1, 32, 2, 8, 8, 32, 16, 16, 32, 1, 1, 0, 0, 4, 2 } },
          /* The direct kernel, now only for GEMMs under 128^3 multiply-adds:
           * the tuner's best exhaustive-stage set (WGD=32), 1.5-3x CLBlast's
           * own from 64x121x288 to 512^3 and no worse below. */
          { "XgemmDirect",
            10,
            { "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND",
              "WGD" },
            { 2, 16, 16, 8, 8, 1, 1, 1, 1, 32 },
            { 2, 8, 8, 8, 8, 1, 1, 1, 1, 16 } },
          /* CLBlast runs the direct kernel while m * n * k < this^3. Tuned,
           * the indirect kernel wins from ~128^3 on (the conv 32->64 layer's
           * 64x121x288 per image: 20-24 vs 5-8 GFLOP/s); CLBlast's 896 kept
           * everything up to 896^3 on its slow direct kernel. */
          { "GemmRoutine", 1, { "XGEMM_MIN_INDIRECT_SIZE" }, { 128 }, { 896 } },
      } },
};

#endif
