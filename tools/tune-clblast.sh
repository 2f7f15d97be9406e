#!/bin/sh
# clnet — runs CLBlast's own tuners (Debian package clblast-utils) for one
# OpenCL device and prints the fastest parameter sets as candidate rows for
# src/ops/gemm_params.h. The recipe and the choices are in docs/gemm.md.
#
# A candidate is only a candidate: CLBlast's tuner checks each kernel on its
# own, but its fastest Xgemm set on pocl gave wrong answers through
# CLBlastSgemm. Put a set in gemm_params.h, then run the gemm suite
# (`./build/tests/clnet-tests gemm`), which checks the tuned and the default
# sets in exact and real mode, before committing it.
#
# Usage: tools/tune-clblast.sh [-p PLATFORM] [-d DEVICE] [-o DIR] [-t SECONDS]
#                              [-s SIZE] [KERNEL...]
#   -p, -d   OpenCL platform and device index (as the tuners count them; 0 0)
#   -o DIR   where the tuners' JSON files and logs go (default: a new
#            directory under /tmp); an existing DIR is summarized again
#            without tuning when no KERNEL is given
#   -t SECS  wall-time limit per tuner (default 480); a tuner cut short keeps
#            the JSON files of the stages it finished
#   -s SIZE  m = n = k for the Xgemm tuner (default 512; the direct kernel is
#            tuned at 256, the copy kernels at their defaults)
#   -f FRAC  Xgemm tuner's -fraction (default 4): its first stage then tries
#            a random quarter of its 578 fixed sets, and its second stage
#            samples the large space (VWM=8, STRM, ...) until -t runs out
#   KERNEL   any of: direct xgemm copy pad transpose padtranspose
#            (default: direct xgemm — the two GEMM kernels), or `defaults`:
#            print the parameters CLBlast's own database gives the device
#            (the `defaults` column of gemm_params.h; needs g++ and
#            libclblast-dev, since only CLBlast's C++ API can read them)
# The tuners run under `nice -n 10`: they load every core for minutes.
set -eu

platform=0
device=0
outdir=
limit=480
size=512
fraction=4
while getopts p:d:o:t:s:f:h opt; do
    case $opt in
    p) platform=$OPTARG ;;
    d) device=$OPTARG ;;
    o) outdir=$OPTARG ;;
    t) limit=$OPTARG ;;
    s) size=$OPTARG ;;
    f) fraction=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed '$d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

summarize_only=0
if [ -n "$outdir" ] && [ -d "$outdir" ] && [ $# -eq 0 ]; then
    summarize_only=1
fi
[ -n "$outdir" ] || outdir=$(mktemp -d /tmp/clblast-tune.XXXXXX)
mkdir -p "$outdir"
[ $# -gt 0 ] || [ $summarize_only -eq 1 ] || set -- direct xgemm

common="-platform $platform -device $device -precision 32"
run_tuner() { # name, binary, extra arguments
    name=$1
    bin=$2
    shift 2
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "tune-clblast: $bin not found (apt-get install clblast-utils)" >&2
        exit 1
    fi
    echo "tune-clblast: $bin $common $* (limit ${limit}s, log $outdir/$name.log)" >&2
    start=$(date +%s)
    # shellcheck disable=SC2086 # $common is a list of words
    (cd "$outdir" && timeout "$limit" nice -n 10 "$bin" $common "$@" >"$name.log" 2>&1) ||
        echo "tune-clblast: $name stopped (status $?); finished stages are kept" >&2
    echo "tune-clblast: $name took $(($(date +%s) - start)) s" >&2
}

print_defaults() {
    cat >"$outdir/defaults.cpp" <<'EOF'
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast.h>
#include <cstdio>
#include <cstdlib>
#include <map>
int main(int argc, char **argv) {
  cl_uint np = 0, nd = 0;
  cl_platform_id ps[16]; cl_device_id ds[16];
  clGetPlatformIDs(16, ps, &np);
  unsigned p = std::atoi(argv[1]), d = std::atoi(argv[2]);
  if (p >= np || clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) || d >= nd) return 1;
  for (const char *k : {"Xgemm", "XgemmDirect", "GemmRoutine", "Copy", "Pad", "Transpose", "Padtranspose"}) {
    std::unordered_map<std::string, size_t> got;
    if (clblast::RetrieveParameters(ds[d], k, clblast::Precision::kSingle, got) != clblast::StatusCode::kSuccess) return 1;
    std::printf("%s:", k);
    for (const auto &kv : std::map<std::string, size_t>(got.begin(), got.end()))
      std::printf(" %s=%zu", kv.first.c_str(), kv.second);
    std::printf("\n");
  }
}
EOF
    g++ -O1 -o "$outdir/defaults" "$outdir/defaults.cpp" -lclblast -lOpenCL
    echo "CLBlast's own parameters for platform $platform device $device:"
    "$outdir/defaults" "$platform" "$device"
}

for kernel in "$@"; do
    case $kernel in
    defaults) print_defaults; continue ;;
    direct) run_tuner direct clblast_tuner_xgemm_direct -m 256 -n 256 -k 256 ;;
    xgemm) run_tuner xgemm clblast_tuner_xgemm -m "$size" -n "$size" -k "$size" -fraction "$fraction" ;;
    copy) run_tuner copy clblast_tuner_copy_fast ;;
    pad) run_tuner pad clblast_tuner_copy_pad ;;
    transpose) run_tuner transpose clblast_tuner_transpose_fast ;;
    padtranspose) run_tuner padtranspose clblast_tuner_transpose_pad ;;
    *) echo "tune-clblast: unknown kernel '$kernel'" >&2; exit 2 ;;
    esac
done

# The five fastest correct results of every stage each tuner finished or
# started, read from its log (a stage cut short writes no JSON file), with
# the parameters named as CLBlastOverrideParameters takes them.
python3 - "$outdir" <<'EOF'
import glob, os, re, sys
logs = sorted(glob.glob(os.path.join(sys.argv[1], "*.log")))
if not logs:
    sys.exit(0)  # only `defaults` was asked for
for path in logs:
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(path, errors="replace").read())
    for stage, part in enumerate(text.split("* Parameters explored:")[1:], 1):
        names = part.splitlines()[0].split()
        rows = []
        for line in part.splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) < 10 or "results match" not in line:
                continue
            values = cells[3].split()
            time_ms = float(cells[7].split()[0])
            if len(values) == len(names):
                rows.append((time_ms, cells[8], values))
        rows.sort(key=lambda r: r[0])
        print("%s, stage %d: %d correct results" % (os.path.basename(path), stage, len(rows)))
        for time_ms, gflops, values in rows[:5]:
            params = " ".join("%s=%s" % nv for nv in sorted(zip(names, values)))
            print("  %9.2f ms %7s GFLOP/s  %s" % (time_ms, gflops, params))
EOF
