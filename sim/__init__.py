"""The SimPy world and the ``ogsim`` command line.

``sim.tiers`` realises an operator and the aggregator in virtual time, the operators' network
functions in ``sim.tiers.network_function``; ``sim.queueing`` and ``sim.validate`` hold the
theory those are checked against, ``sim.scenario`` and ``sim.engine`` run scenario files,
and ``sim.cli`` wires the commands. ``sim`` imports ``operators`` and ``federation``; neither
imports ``sim``.
"""
