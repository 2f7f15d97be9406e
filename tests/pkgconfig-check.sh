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
# Exactly the documented API is exported: the installed library's dynamic
# symbols equal the CLNET_API declarations of the installed headers.
incdir=$(dirname "$(dirname "$(find "$tmp" -path '*/clnet/clnet.h' | head -n 1)")")
python3 "$root/tools/check-symbols.py" "$libdir/libclnet.so" "$incdir"
echo "pkgconfig-check: an outside program built and ran against the installed clnet"
