"""Where ``python -m ray_jobs.cli`` used to be: the ``nie`` command moved to the ``nie_cli``
package (the layer above ``ray_jobs`` and ``serve_app``). Running this module says so and exits
with status 2; ``ray_jobs`` itself never imports the command line."""

import sys

MOVED = (
    "nie: `python -m ray_jobs.cli` moved to `python -m nie_cli` (or the `nie` command); "
    "run the same arguments with that"
)

if __name__ == "__main__":
    print(MOVED, file=sys.stderr)
    sys.exit(2)
