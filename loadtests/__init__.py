"""Locust load tests of the live federation (``ogsim up``), with exact billing reconciliation.

``locustfile.py`` holds the user classes; the modules beside it are plain code it and
``ogsim loadtest`` share: the descriptor and its subscribers (:mod:`.federation_view`), the
expected answers (:mod:`.answers`), what a call's outcome is (:mod:`.outcomes`), the
applications a run registers (:mod:`.provisioning`), the exact counters (:mod:`.tally`), the
comparison with metering and settlement (:mod:`.reconciliation`) and the load shapes
(:mod:`.shapes`).
"""
