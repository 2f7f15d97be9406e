#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/hello.c
# against it with `cc $(pkg-config --cflags --libs clnet)`, as a user would.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --quiet
pc=$(dirname "$(find "$tmp" -name clnet.pc | head -n 1)")
# The sysroot maps the installed prefix into the temporary root.
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp
flags=$(pkg-config --cflags --libs clnet)
cc -std=c11 -Wall -Wextra -Werror "$root/examples/hello.c" -o "$tmp/hello" $flags
libdir=$(dirname "$(find "$tmp" -name libclnet.so | head -n 1)")
LD_LIBRARY_PATH=$libdir "$tmp/hello"
# Only the documented API is exported: every dynamic symbol starts with clnet_.
bad=$(nm -D --defined-only "$libdir/libclnet.so" | awk '{print $3}' | grep -v '^clnet_' || true)
if [ -n "$bad" ]; then
  echo "pkgconfig-check: symbols outside the clnet_ API are exported:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "pkgconfig-check: an outside program built and ran against the installed clnet"
