"""``python -m fastconv COMMAND``: the command-line tools (now ``bench``)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from fastconv import _bench

    parser = argparse.ArgumentParser(prog="python -m fastconv", description="fastconv's command-line tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser("bench", help="time fastconv on the built-in layer suite against plain numpy")
    _bench.add_arguments(bench).set_defaults(run=_bench.run)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
