"""One telco operator of the GSMA Open Gateway, live: the domain that never imports ``sim``.

What other packages use:

* ``operators.config``: ``OperatorConfig`` and its parts (plans, purposes, lifetimes);
* ``operators.operator``: ``Operator.from_config`` and ``create_operator_app``;
* ``operators.subscriber_base``: the seeded subscriber base and its change log;
* ``operators.identity``: the authorization server (``IdentityServer``);
* ``operators.gateway``: the policy enforcement point in front of the CAMARA APIs;
* ``operators.camara`` and ``operators.integrator``: the APIs and their translation to the core;
* ``operators.core``: the network functions, described once and realised with asyncio;
* ``operators.policies``: throttling, circuit breaking, buffering, retries, load shedding;
* ``operators.errors``: the wire errors (OAuth and CAMARA).

Submodules are imported explicitly; this file stays empty of imports so that importing one
part never drags in the others.
"""
