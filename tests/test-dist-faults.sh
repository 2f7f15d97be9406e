#!/usr/bin/env bash
# Fault scenarios of data-parallel training (tests/test-dist.c --scenario):
# a rank that cannot create its device, a rank that hangs and a rank that
# is killed must each end the 2-rank job with a non-zero status, within a
# bounded time, and with a message that names the rank.
# Usage: test-dist-faults.sh MPIRUN TEST-DIST-BINARY
set -u
mpirun=$1
bin=$2
failures=0

# run NAME LIMIT_S PATTERN [ENV=VALUE...]: expects failure within LIMIT_S
# seconds and PATTERN (grep -E) in the combined output.
run() {
  local name=$1 limit=$2 pattern=$3
  shift 3
  local start end rc out
  start=$(date +%s)
  # The outer timeout only guards this script; the job must end well before.
  out=$(env "$@" timeout 300 "$mpirun" -np 2 "$bin" --scenario "$name" 2>&1)
  rc=$?
  end=$(date +%s)
  local secs=$((end - start))
  if [ "$rc" -eq 0 ]; then
    echo "FAIL $name: the job succeeded" >&2; failures=$((failures + 1))
  elif [ "$rc" -eq 124 ]; then
    echo "FAIL $name: the job hung (killed after 300 s)" >&2; failures=$((failures + 1))
  elif [ "$secs" -gt "$limit" ]; then
    echo "FAIL $name: the job took $secs s (limit $limit s)" >&2; failures=$((failures + 1))
  elif ! grep -Eq "$pattern" <<<"$out"; then
    echo "FAIL $name: no message matching /$pattern/" >&2; failures=$((failures + 1))
  else
    echo "ok   $name: exit $rc after $secs s"
  fi
  echo "---- $name output:"; echo "$out" | head -n 30; echo "----"
}

dev=${CLNET_TEST_DEVICE:-cpu}
run device 120 "rank 1: creating its device \(spec \"no-such-device\"\)" \
  CLNET_DEVICE="$dev,no-such-device"
run hang 120 "rank 0: gradient allreduce .* did not complete within 5 s" \
  CLNET_DEVICE="$dev" CLNET_DIST_TIMEOUT=5
run kill 120 "rank 1.*(killed|signal 9)|process rank 1 .*exited on signal 9" \
  CLNET_DEVICE="$dev" CLNET_DIST_TIMEOUT=60
exit $((failures > 0))
