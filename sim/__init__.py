"""The SimPy world and the ``ogsim`` command line.

``sim.core`` realises the operators' network functions in virtual time, ``sim.queueing`` and
``sim.validate`` hold the theory they are checked against, ``sim.scenario`` and ``sim.engine``
run scenario files, and ``sim.cli`` wires the commands. ``sim`` imports ``operators`` and
``federation``; neither imports ``sim``.
"""
