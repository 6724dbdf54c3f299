"""Benchmarks of NIE (not tests): inference, training, serving, memory and data loading.

Each module measures ratios taken within one run (so that they hold on a noisy shared machine),
writes ``bench/results/<name>.json`` and ``<name>.md``, and checks the issue's targets.
``python -m bench.run_all`` (``make bench``) runs them all; see ``bench/README.md``.
"""
