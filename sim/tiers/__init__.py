"""The tiers of one operator in virtual time, in front of the SimPy network core.

Each tier drives the live code's own decision objects on the virtual clock: the data-centre
balancer (health checks), the gateway (the real Throttle), the identity server (token
issuance and CIBA as service times) and the integrator (the real BackendGuard and flows).
"""

from sim.tiers.data_centres import DataCentreBalancer, HealthCheckedBalancer
from sim.tiers.operator import Answer, SimOperator

__all__ = ["Answer", "DataCentreBalancer", "HealthCheckedBalancer", "SimOperator"]
