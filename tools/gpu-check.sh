#!/usr/bin/env bash
# clnet on a GPU machine: registers the GPU's OpenCL driver if needed, builds,
# lists the devices, runs the device test suites on the GPU and compares every
# device with the float64 reference through clnet-bench --check.
#
#   tools/gpu-check.sh [BUILD_DIR]      (default: build-gpu)
#
# Logs go to $OUT when it is set (the device runner fetches it), else to
# ./gpu-check-logs. FULL=1 runs the full bench set instead of --quick;
# DEVICE=SPEC tests another device than the first GPU (a dry run on a CPU). Exit
# status: 0 all passed, 1 a step failed, 2 no GPU or a prerequisite missing.
# Every step runs even after a failure, so one run reports everything.
set -u
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
logs=${OUT:-$PWD/gpu-check-logs}
mkdir -p "$logs"
failed=0

step() {
  local name=$1
  shift
  echo "== $name: $*"
  local t0=$SECONDS
  if "$@" >"$logs/$name.log" 2>&1; then
    echo "   ok ($((SECONDS - t0)) s)"
  else
    echo "   FAILED (rc $?, $((SECONDS - t0)) s); last lines of $logs/$name.log:"
    tail -n 40 "$logs/$name.log" | sed 's/^/   | /'
    failed=1
  fi
}

# NVIDIA's driver ships libnvidia-opencl.so.1, but containers often lack the
# ICD file that tells the loader about it.
if ! grep -qs . /etc/OpenCL/vendors/nvidia*.icd && ldconfig -p 2>/dev/null | grep -q libnvidia-opencl.so.1; then
  if mkdir -p /etc/OpenCL/vendors 2>/dev/null && echo libnvidia-opencl.so.1 >/etc/OpenCL/vendors/nvidia.icd; then
    echo "gpu-check: created /etc/OpenCL/vendors/nvidia.icd"
  else
    # Not root: a private vendor directory with the system's ICDs plus NVIDIA's.
    vendors=$logs/vendors
    mkdir -p "$vendors"
    cp /etc/OpenCL/vendors/*.icd "$vendors"/ 2>/dev/null
    echo libnvidia-opencl.so.1 >"$vendors/nvidia.icd"
    export OCL_ICD_VENDORS=$vendors
    echo "gpu-check: OCL_ICD_VENDORS=$vendors (with nvidia.icd)"
  fi
fi

missing=()
for tool in cc meson ninja pkg-config; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
for lib in OpenCL clblast check zlib libcjson; do
  pkg-config --exists "$lib" 2>/dev/null || missing+=("$lib (pkg-config)")
done
if [ ${#missing[@]} -gt 0 ] && [ ! -x "$build/tools/clnet-bench" ]; then
  echo "gpu-check: missing ${missing[*]}; on Debian: ./quickstart test installs them" >&2
  exit 2
fi

command -v clinfo >/dev/null && clinfo -l | tee "$logs/clinfo.log"

if [ ! -f "$build/build.ninja" ]; then
  step setup meson setup "$build" -Dbuildtype=debugoptimized
fi
step build ninja -C "$build"
[ -x "$build/tools/clnet-bench" ] || exit 1

step list "$build/tools/clnet-bench" --list
cat "$logs/list.log"
device=${DEVICE:-gpu}
if [ "$device" = gpu ] && ! grep -q 'type GPU' "$logs/list.log"; then
  echo "gpu-check: no GPU among the OpenCL devices (see above); nothing more to check" >&2
  exit 2
fi

# The device suites on the first GPU, then every device against the reference.
step tests env CLNET_TEST_DEVICE="$device" meson test -C "$build" --print-errorlogs --suite device
quick=(--quick)
[ "${FULL:-0}" = 1 ] && quick=()
step bench-check "$build/tools/clnet-bench" --device all --check "${quick[@]}" \
  --json "$logs/bench.json"
tail -n 30 "$logs/bench-check.log"

cp "$build/meson-logs/testlog.txt" "$logs/" 2>/dev/null
[ $failed = 0 ] && echo "gpu-check: all passed" || echo "gpu-check: FAILED (logs in $logs)"
exit $failed
