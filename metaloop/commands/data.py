"""``metaloop data check NAME --root DIR``: verify a dataset's files, counts and checksums."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="inspect and verify datasets")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = actions.add_parser("check", help="verify files, counts and checksums; one-line verdict")
    check.add_argument("name", help="dataset name: omniglot or mini_imagenet")
    check.add_argument("--root", default=None,
                       help="dataset folder (default: $METALOOP_DATA/<name> or ../shared/data/<name>)")
    check.add_argument("--verbose", "-v", action="store_true", help="print every check, not just the verdict")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_check(args: argparse.Namespace) -> int:
    from metaloop.data.check import check_dataset

    ok, verdict, details = check_dataset(args.name, args.root)
    if args.verbose:
        for line in details:
            print(f"  {line}")
    print(verdict)
    return 0 if ok else 1
