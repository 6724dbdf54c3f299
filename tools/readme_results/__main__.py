"""The results quoted in README.md and bench/README.md, regenerated from the files commands wrote.

``python -m tools.readme_results`` rewrites every results block of the READMEs in place;
``--check`` writes nothing and exits 1 naming each stale block or missing source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .blocks import COMMAND, Report, regenerate
from .sources import Context

ROOT = Path(__file__).resolve().parents[2]
READMES = ("README.md", "bench/README.md")


def run(root: Path = ROOT, check: bool = False) -> Report:
    """Regenerate (with ``check``: only compare) the blocks of every README."""
    report = Report([], [])
    for readme in READMES:
        path = root / readme
        if not path.is_file():
            report.errors.append(f"{readme} is missing")
            continue
        text = path.read_text()
        new_text = regenerate(text, Context(root, readme), report)
        if not check and new_text != text:
            path.write_text(new_text)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 naming each stale block")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    report = run(args.root, check=args.check)
    for line in report.stale:
        print(f"{'stale' if args.check else 'rewritten'}: {line}", file=sys.stderr)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if report.errors or (args.check and report.stale) else 0


if __name__ == "__main__":
    sys.exit(main())
