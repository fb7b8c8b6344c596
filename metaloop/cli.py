"""The ``metaloop`` command. Each subcommand lives in its own module under ``metaloop.commands``.

A command module defines ``register(subparsers)`` which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code. Modules are discovered, so adding a
command is adding one file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    import metaloop
    import metaloop.commands as commands

    parser = argparse.ArgumentParser(
        prog="metaloop",
        description="Meta-learning: meta-train, adapt and evaluate few-shot learners.",
    )
    parser.add_argument("--version", action="version", version=f"metaloop {metaloop.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"metaloop.commands.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, TypeError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"metaloop {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
