"""The handler of ``nie report`` (parsed by ``nie_cli.main``): build the report, print its files."""

from __future__ import annotations

import argparse
import sys

from .page import build_report

__all__ = ["run_cli"]


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie report``: writes the report and prints the files."""
    result = build_report(args.out, args.tracking_uri)
    for path in result.figures.values():
        print(path)
    print(result.markdown)
    print(f"[nie] report: {result.markdown}", file=sys.stderr)
    return 0
