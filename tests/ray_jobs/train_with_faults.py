"""``nie train enhancer --config RECIPE`` with NIE's fault injection, for the tests that need
the driver in a process of their own (the fault tests kill nodes around it):

    python -m tests.ray_jobs.train_with_faults RECIPE '{"pause_at_step": 150}'

The second argument is a :class:`ray_jobs.fault_injection.Faults` as JSON. The command line has
no way to pass faults (they are for NIE's tests only), so this is ``nie train``'s handler with
them added; it prints the result as JSON on stdout, as ``nie train`` does.
"""

from __future__ import annotations

import json
import sys

from nie_core.config import load_config
from ray_jobs.config import EnhancerJobConfig
from ray_jobs.enhancer import train_enhancer
from ray_jobs.fault_injection import Faults


def main(argv: list[str]) -> int:
    recipe, faults = argv
    cfg = load_config(EnhancerJobConfig, recipe, [])
    result = train_enhancer(cfg, faults=Faults.from_dict(json.loads(faults)))
    print(json.dumps(result.__dict__, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
