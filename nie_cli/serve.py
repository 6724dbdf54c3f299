"""``nie serve``: the service (``serve_app``) on the current or an embedded Ray, until Ctrl-C."""

from __future__ import annotations

import argparse

from serve_app.config import DEFAULT_SERVE_CONFIG, load_service_config
from serve_app.shutdown import say, serve_until_interrupted


def run_serve(args: argparse.Namespace) -> int:
    """``nie serve``: run the service until Ctrl-C."""
    config_path = args.config or DEFAULT_SERVE_CONFIG
    config = load_service_config(config_path, getattr(args, "overrides", None) or ())
    from serve_app.app import start_service

    url = start_service(config, args.host, args.port)
    print(f"NIE service running at {url}/ (API docs at {url}/docs); press Ctrl-C to stop",
          flush=True)  # fmt: skip
    serve_until_interrupted()
    say("nie serve: stopped")
    return 0
