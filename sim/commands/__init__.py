"""Old home of the commands, kept only until the tests that import it move to ``sim.cli``.

The commands live in :mod:`sim.cli` (simulate / live / QA). These modules re-export the three
that ``tests/sim/research/test_reports.py`` and ``tests/sim/scenario/test_{engine,loading}.py``
still import; delete the package once they import :mod:`sim.cli.simulate`.
"""
