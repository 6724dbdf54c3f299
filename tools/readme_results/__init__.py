"""The results quoted in README.md and bench/README.md, regenerated from the files commands wrote.

    python -m tools.readme_results            # rewrite every results block in place
    python -m tools.readme_results --check    # exit 1 naming each stale block or missing source

A results block is a passage between two HTML comments that name it and its sources::

    <!-- results:demo-summary (from docs/results/demo_summary.md; python -m tools.readme_results) -->
    ...text rendered from the source files, never typed by hand...
    <!-- /results:demo-summary -->

The ``latest`` and ``latest-cuda`` blocks (``<!-- latest:start -->`` ... ``<!-- latest:end -->``)
are written by ``make bench`` (``bench/run_all.py``); this package renders them the same way from
the committed ``bench/results/latest.md``, so that a hand edit there is caught too.

The modules, one idea each:

* ``__main__``: the command line, a pass over every README (rewrite, or ``--check``);
* ``blocks``: the registry of blocks, their markers, and finding and replacing them in a text;
* ``sources``: reading the result files (``nie eval`` tables, model cards, bench runs);
* ``wording``: the fixed rules that turn differences into words;
* ``demo``, ``zoo``, ``faults``, ``bench``: the blocks rendered from each family of sources.

Standard library only, so that ``make readme`` runs without the project's dependencies.
"""
