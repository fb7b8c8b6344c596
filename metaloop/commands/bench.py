"""``metaloop bench NAME [--json] [ARGS...]``: run the benchmark script ``benchmarks/bench_NAME.py``.

Benchmarks are standalone scripts in the repository's ``benchmarks/`` folder (not shipped in the
wheel), so this command works from a checkout: it looks in ``./benchmarks`` and beside the installed
package. ``--json`` and any further arguments are passed to the script, which runs as ``__main__``.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def benchmark_dirs() -> list[Path]:
    import metaloop

    dirs = [Path.cwd() / "benchmarks", Path(metaloop.__file__).resolve().parents[1] / "benchmarks"]
    return list(dict.fromkeys(d.resolve() for d in dirs if d.is_dir()))


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in benchmark_dirs():
        for path in sorted(d.glob("bench_*.py")):
            found.setdefault(path.stem.removeprefix("bench_"), path)
    return found


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="run a benchmark script benchmarks/bench_NAME.py (from a checkout)",
        description="Run benchmarks/bench_NAME.py from the current folder or the metaloop checkout; "
                    "without NAME, list the benchmarks found. Extra arguments go to the script.")
    parser.add_argument("name", nargs="?", metavar="NAME", help="benchmark name (bench_NAME.py)")
    parser.add_argument("--json", action="store_true", help="ask the script for JSON output")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = available()
    if args.name is None:
        if not found:
            print("no benchmarks found (they live in benchmarks/bench_*.py of a metaloop checkout)")
        for name, path in found.items():
            print(f"{name:<16} {path}")
        return 0
    if args.name not in found:
        where = ", ".join(str(d) for d in benchmark_dirs()) or "no benchmarks/ folder here"
        raise ValueError(f"unknown benchmark {args.name!r}; available: {', '.join(found) or '(none)'} "
                         f"(searched {where}; run from a metaloop checkout)")
    extra = [a for a in args.args if a != "--"]
    saved = sys.argv
    sys.argv = [str(found[args.name]), *(["--json"] if args.json else []), *extra]
    try:
        runpy.run_path(str(found[args.name]), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return 0
