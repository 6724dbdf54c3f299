"""The ``nie`` command: argument parsing (``main``) and the commands that compose the packages
below it (``demo``, ``serve``, ``enhance``, ``evaluate``, ``zoo``), with the terminal's log
(``console``) and Ctrl-C handling (``interrupt``).

The top layer: it imports ``ray_jobs``, ``serve_app``, ``nie_tracking`` and ``nie_core``; none of
them imports it. ``python -m nie_cli ARGS`` is ``nie ARGS`` (what ``ray job submit`` runs).
"""
