#!/usr/bin/env bash
# clnet — checks the committed .clang-format on the C and OpenCL files that
# differ from a base revision (committed on this branch or not yet
# committed), so CI can enforce the format on what a change touches without
# a tree-wide reformat that would conflict with every open branch.
#   tools/format-check.sh [-a] [BASE]
#     BASE  the revision to compare with (default: origin/main if it exists,
#           else main); files are those changed since its merge base with HEAD
#     -a    check every tracked C/OpenCL file instead (what the lint test runs)
# Exit 0 when every checked file matches the format, 1 otherwise (each file
# and clang-format's first complaints are listed), 2 on a usage error.
# Needs clang-format (Debian package clang-format, a test package of ./quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."

all=0
if [ "${1:-}" = -a ]; then
    all=1
    shift
fi
command -v clang-format >/dev/null || { echo "format-check: clang-format not found" >&2; exit 2; }

patterns=('*.c' '*.h' '*.cl')
if [ "$all" = 1 ]; then
    mapfile -t files < <(git ls-files -- "${patterns[@]}")
    what="(all tracked)"
else
    base=${1:-}
    if [ -z "$base" ]; then
        if git rev-parse -q --verify origin/main >/dev/null; then base=origin/main; else base=main; fi
    fi
    git rev-parse -q --verify "$base^{commit}" >/dev/null ||
        { echo "format-check: unknown base revision '$base'" >&2; exit 2; }
    mb=$(git merge-base "$base" HEAD)
    # Added, copied, modified or renamed since the merge base, in commits or
    # in the working tree; deleted files need no format.
    mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$mb" -- "${patterns[@]}")
    what="(changed since $base)"
fi

bad=0
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    if ! out=$(clang-format --dry-run --Werror "$f" 2>&1); then
        bad=$((bad + 1))
        echo "format-check: $f differs from .clang-format (clang-format -i $f fixes it):"
        printf '%s\n' "$out" | head -n 6 || true
    fi
done
echo "format-check: $bad of ${#files[@]} C/OpenCL files $what differ from .clang-format"
[ "$bad" -eq 0 ]
