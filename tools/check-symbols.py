#!/usr/bin/env python3
"""clnet lint: the shared library exports exactly the documented API.

  tools/check-symbols.py LIBCLNET_SO INCLUDE_DIR

The dynamic symbols libclnet.so defines (`nm -D --defined-only`) must be
the set of names declared with CLNET_API in INCLUDE_DIR/clnet/*.h (and
*.h.in): an extra export (an internal clnet__ helper, a static that lost its
`static`, a stray symbol of a dependency) and a declared function the
library does not export (a missing CLNET_API on the definition, a function
never written) both fail, each listed. Run by `meson test --suite lint` on
the built library and by tests/pkgconfig-check.sh on the installed one.
"""
import glob
import os
import re
import subprocess
import sys

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
IDENT = re.compile(r"[A-Za-z_]\w*")


def declared(include_dir):
    """Names declared with CLNET_API: the identifier before the declaration's
    first '(' (a function) or before its ';' (an object)."""
    names = {}
    paths = sorted(glob.glob(os.path.join(include_dir, "clnet", "*.h")) +
                   glob.glob(os.path.join(include_dir, "clnet", "*.h.in")))
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = COMMENT.sub(" ", f.read())
        # Preprocessor lines (the definition of CLNET_API itself) declare nothing.
        text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        for m in re.finditer(r"\bCLNET_API\b", text):
            rest = text[m.end():]
            cut = min(i for i in (rest.find("("), rest.find(";")) if i >= 0)
            idents = IDENT.findall(rest[:cut])
            if not idents:
                raise SystemExit("check-symbols: %s: cannot read the declaration after CLNET_API: %r"
                                 % (path, rest[:80]))
            names[idents[-1]] = os.path.basename(path)
    return names


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms.add(parts[2].split("@")[0])
    return syms


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    lib, include_dir = argv[1], argv[2]
    api = declared(include_dir)
    syms = exported(lib)
    extra = sorted(syms - set(api))
    missing = sorted(set(api) - syms)
    for s in extra:
        print("check-symbols: %s exports %s, which no public header declares with CLNET_API"
              % (os.path.basename(lib), s))
    for s in missing:
        print("check-symbols: %s declares %s with CLNET_API, but %s does not export it"
              % (api[s], s, os.path.basename(lib)))
    if extra or missing:
        return 1
    print("check-symbols: %s exports exactly the %d CLNET_API declarations" % (lib, len(api)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
