"""``metaloop presets``: the shipped presets, one line each (name and what it reproduces)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("presets", help="list the shipped presets (one per paper row)",
                                   description="List the presets shipped in metaloop/presets.")
    parser.add_argument("--show", metavar="NAME",
                        help="print one preset's YAML (and, for a preset that extends another, the "
                             "merged config that runs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metaloop.config.presets import describe_preset, preset_paths, read_yaml, resolve_extends

    presets = preset_paths()
    if args.show:
        if args.show not in presets:
            raise ValueError(f"unknown preset {args.show!r}; presets: {', '.join(presets)}")
        path = presets[args.show]
        print(path.read_text(), end="")
        data = read_yaml(path)
        if "extends" in data:
            import yaml

            merged = yaml.safe_dump(resolve_extends(data, path), sort_keys=False, width=100)
            print(f"\n# merged with {data['extends']} (what runs):\n{merged}", end="")
        return 0
    width = max((len(n) for n in presets), default=0)
    for name, path in presets.items():
        print(f"{name:<{width}}  {describe_preset(path)}")
    return 0
