"""The tiers of the federation in virtual time, in front of the SimPy network core.

Each tier drives the live code's own decision objects on the virtual clock: the federation's
global load balancer and health tracker, trust graph and Telco Finder; the gateway's real
Throttle; the identity server (token issuance and CIBA as service times); the integrator's
real BackendGuard and flows. Stations, backends and timeouts are callbacks on one
``simpy.Environment``, so a call costs a few events and no process of its own.
"""

from sim.tiers.aggregator import SimAggregator
from sim.tiers.operator import Answer, Line, SimOperator

__all__ = ["Answer", "Line", "SimAggregator", "SimOperator"]
