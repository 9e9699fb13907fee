"""`python -m tidelog._codec._accelerate`: compile the record decoder with mypyc (optional, about 3x faster).

Copies ``tidelog/_codec/_decode.py`` to ``_decode_native.py`` beside it with the SHA-256 of its source
appended, compiles that with mypyc (mypy ships it; the broker's ``dev`` extra has it; it needs a C
compiler and the Python headers) into ``tidelog/_codec/_decode_native.<abi>.so`` plus mypyc's runtime
for it, and removes the copy.
``tidelog._codec.decoder`` loads the compiled module only while its recorded hash matches the current
``_decode.py``, so a later edit of the source falls back to Python instead of running stale code.
``--remove`` deletes the build.

Nothing in the install or the tests depends on it (installing tidelog-client needs no compiler):
without a compiled copy the same source runs as Python. Run from anywhere; it works in the tree that
holds this file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCE = PACKAGE / "_decode.py"
NATIVE = "_decode_native"


def built_files(directory: Path = PACKAGE) -> list[Path]:
    """The compiled decoder files in ``directory``: the module and mypyc's runtime for it."""
    prefixes = (f"{NATIVE}.", f"{NATIVE}__mypyc.")
    return sorted(p for p in directory.iterdir() if p.name.startswith(prefixes) and p.suffix != ".py")


def build(directory: Path = PACKAGE) -> Path:
    """Compile the decoder into the package at ``directory`` (default: ``tidelog._codec``); return the module.

    Another directory (a package of its own) lets the tests compile a copy without touching the
    checkout.
    """
    from mypyc.build import mypycify  # the dev extra's mypy ships mypyc

    # setuptools ships no type stubs. Its Distribution is driven directly rather than through setup(),
    # which would read (and, with an older setuptools than the build's, refuse) the pyproject.toml of
    # the directory it runs in.
    distribution = importlib.import_module("setuptools").Distribution

    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    copy = directory / f"{NATIVE}.py"
    copy.write_bytes(source + f'\n\nSOURCE_SHA256 = "{digest}"\n'.encode())
    for old in built_files(directory):
        old.unlink()
    here = Path.cwd()
    search_path = os.environ.get("MYPYPATH")
    # mypy must see the real ``tidelog`` package (which the decoder imports) from any directory.
    os.environ["MYPYPATH"] = os.pathsep.join(p for p in (str(PACKAGE.parents[1]), search_path) if p)
    # mypyc names the module after its path, so build from the directory above the top package.
    top = directory
    while (top.parent / "__init__.py").exists():
        top = top.parent
    module_path = directory.relative_to(top.parent) / f"{NATIVE}.py"
    try:
        with tempfile.TemporaryDirectory(prefix="tidelog-mypyc-") as tmp:
            os.chdir(top.parent)
            # Imported modules are type-checked for their signatures, their own findings left to mypy.
            options = ["--follow-imports=silent"]
            extensions = mypycify([*options, str(module_path)], opt_level="3", target_dir=tmp)
            dist = distribution({"name": "tidelog-decode-native", "ext_modules": extensions})
            dist.script_args = ["build_ext", "--inplace", "--build-temp", tmp, "--build-lib", tmp, "--quiet"]
            dist.parse_command_line()
            dist.run_commands()
    finally:
        os.chdir(here)
        if search_path is None:
            del os.environ["MYPYPATH"]
        else:
            os.environ["MYPYPATH"] = search_path
        copy.unlink(missing_ok=True)
    module = [p for p in built_files(directory) if p.name.startswith(f"{NATIVE}.")]
    if len(module) != 1:
        raise SystemExit(f"expected one compiled {NATIVE} module in {directory}, found {module}")
    return module[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tidelog._codec._accelerate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--remove", action="store_true", help="delete the compiled decoder instead")
    args = parser.parse_args(argv)
    if args.remove:
        for path in built_files():
            path.unlink()
            print(f"removed {path}")
        return 0
    path = build()
    print(f"built {path}; tidelog._codec.decoder will use it while _decode.py is unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
