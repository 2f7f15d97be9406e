#!/bin/sh
# clnet — cold start: how long the reference models spend compiling kernels
# in their first-ever run (every cache empty) and in the second, and what a
# fresh process pays for its first CLBlast GEMM with pocl's cache cold and
# warm (docs/speed.md, "Cold start").
#
# usage: tools/cold-start.sh [BUILD_DIR [MODEL...]]   (default: build; cnn lstm gan)
#
# Each model runs three times in fresh cache directories under a temporary
# directory (XDG_CACHE_HOME, POCL_CACHE_DIR, CLNET_CACHE_DIR, CUDA_CACHE_PATH,
# MESA_SHADER_CACHE_DIR all point there):
#   cold   every cache empty (the first-ever run);
#   warm   the same caches again (the second run);
#   drv0   clnet's cache kept, the driver's emptied: what clnet's own cache
#          gives on a driver that keeps nothing (pocl compiles again per
#          kernel and work-group size on first enqueue).
# A run is a short training (--epochs 1 --limit 64) plus what the tool does
# around it (test-set evaluation, the GAN's sample grid), the same work each
# time, so run - warm is that run's extra compile time, in wall and in CPU
# seconds; clnet's own figure (programs built or loaded, seconds) comes from
# clnet-train's last line. Every run holds /tmp/clnet-bench.lock, so timings never overlap
# another benchmark. Needs clnet-train built, Fashion-MNIST installed and,
# for the CLBlast probe, cc and libclblast-dev.
set -eu

build=${1:-build}
[ $# -gt 0 ] && shift
models=${*:-cnn lstm gan}
train=$build/tools/clnet-train
[ -x "$train" ] || { echo "cold-start: $train not built (ninja -C $build)" >&2; exit 2; }
lock=/tmp/clnet-bench.lock
tmp=$(mktemp -d /tmp/clnet-cold.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Fresh cache directories for one model: sets the variables for the runs.
fresh_caches() {
    rm -rf "$tmp/c"
    mkdir -p "$tmp/c/xdg" "$tmp/c/pocl" "$tmp/c/clnet" "$tmp/c/cuda" "$tmp/c/mesa"
    export XDG_CACHE_HOME="$tmp/c/xdg" POCL_CACHE_DIR="$tmp/c/pocl" CLNET_CACHE_DIR="$tmp/c/clnet"
    export CUDA_CACHE_PATH="$tmp/c/cuda" MESA_SHADER_CACHE_DIR="$tmp/c/mesa"
}

# Runs one model once under the lock; prints "wall cpu build built loaded":
# wall and CPU seconds (user + system) of the whole process, then clnet's
# own figures. The machine is shared: CPU time moves less than wall time
# when other jobs run.
run_model() {
    extra=
    [ "$1" = gan ] && extra="--out $tmp/gan.png"
    # shellcheck disable=SC2086
    flock "$lock" /usr/bin/time -f '%e %U %S' -o "$tmp/time" \
        "$train" "$1" --epochs 1 --limit 64 --quiet $extra >"$tmp/out" 2>&1 ||
        { cat "$tmp/out" >&2; echo "cold-start: clnet-train $1 failed" >&2; exit 1; }
    # "total 16.4 s, of which 11.9 s building 10 kernel programs (0 loaded from clnet's cache)"
    clnet=$(sed -n 's/^total [0-9.]* s, of which \([0-9.]*\) s building \([0-9]*\) kernel programs (\([0-9]*\) loaded from clnet.s cache).*/\1 \2 \3/p' "$tmp/out")
    awk -v c="$clnet" '{ printf "%s %.2f %s\n", $1, $2 + $3, c }' "$tmp/time"
}

# One table row: model, run name, run_model's numbers, warm's numbers.
row() {
    echo "$3 $4" | awk -v m="$1" -v r="$2" \
        '{ printf "%-5s %-5s %7.1f %7.1f %9.2f %6d %6d %8.1f %8.1f\n", m, r, $1, $2, $3, $4 - $5, $5, $1 - $6, $2 - $7 }'
}

printf '%-5s %-5s %7s %7s %9s %6s %6s %8s %8s\n' model run wall cpu "clnet s" built loaded "+wall" "+cpu"
for m in $models; do
    fresh_caches
    cold=$(run_model "$m")
    warm=$(run_model "$m")
    rm -rf "$POCL_CACHE_DIR" "$CUDA_CACHE_PATH" "$MESA_SHADER_CACHE_DIR"
    mkdir -p "$POCL_CACHE_DIR" "$CUDA_CACHE_PATH" "$MESA_SHADER_CACHE_DIR"
    own=$(run_model "$m")
    row "$m" cold "$cold" "$warm"
    row "$m" warm "$warm" "$warm"
    row "$m" drv0 "$own" "$warm"
done
echo "(seconds; +wall, +cpu: more than the warm run, i.e. compiling; load: $(cut -d' ' -f1-3 /proc/loadavg))"

# ---- CLBlast: the first GEMM of a fresh process, pocl's cache cold and warm ----
cat >"$tmp/probe.c" <<'EOF'
/* First and second CLBlastSgemm of this process: 64^3 (CLBlast's direct
 * kernel) and 512^3 (its indirect kernel), each finished before timing. */
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast_c.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
    cl_platform_id p;
    cl_device_id d;
    cl_int e;
    if (clGetPlatformIDs(1, &p, NULL) || clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL))
        return 1;
    cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
    cl_command_queue q = clCreateCommandQueue(c, d, 0, &e);
    const size_t sizes[2] = { 64, 512 };
    cl_mem a = clCreateBuffer(c, CL_MEM_READ_WRITE, 512 * 512 * 4, NULL, &e);
    cl_mem b = clCreateBuffer(c, CL_MEM_READ_WRITE, 512 * 512 * 4, NULL, &e);
    cl_mem r = clCreateBuffer(c, CL_MEM_READ_WRITE, 512 * 512 * 4, NULL, &e);
    for (int i = 0; i < 2; i++) {
        size_t n = sizes[i];
        for (int call = 0; call < 2; call++) {
            double t0 = now();
            CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                               CLBlastTransposeNo, n, n, n, 1.0f, a, 0, n, b, 0, n,
                                               0.0f, r, 0, n, &q, NULL);
            clFinish(q);
            printf(" %8.3f", s == CLBlastSuccess ? now() - t0 : -1.0);
        }
    }
    printf("\n");
    return 0;
}
EOF
if cc -O1 -o "$tmp/probe" "$tmp/probe.c" -lclblast -lOpenCL 2>"$tmp/cc.log"; then
    fresh_caches
    echo
    echo "CLBlast in a fresh process, seconds (first and second call; 64^3, then 512^3):"
    printf '%-22s %8s %8s %8s %8s\n' "pocl cache" "64 1st" "64 2nd" "512 1st" "512 2nd"
    for r in "cold" "warm (2nd process)" "warm (3rd process)"; do
        printf '%-22s%s\n' "$r" "$(flock "$lock" "$tmp/probe")"
    done
else
    echo "cold-start: no CLBlast probe (cc or libclblast-dev missing):" >&2
    cat "$tmp/cc.log" >&2
fi
