"""The QoS profiles this operator offers, as the QoS Profiles API publishes them."""

from __future__ import annotations

from operators.camara.qos_profiles import Duration, QosProfile, QosProfileStatus, Rate, TimeUnit

__all__ = ["default_profiles"]


def _profile(
    name: str,
    description: str,
    down: int,
    up: int,
    delay_ms: int,
    priority: int,
    status: QosProfileStatus = QosProfileStatus.ACTIVE,
) -> QosProfile:
    return QosProfile(
        name=name,
        description=description,
        status=status,
        targetMinDownstreamRate=Rate(value=down, unit="Mbps"),  # type: ignore[arg-type]
        targetMinUpstreamRate=Rate(value=up, unit="Mbps"),  # type: ignore[arg-type]
        minDuration=Duration(value=1, unit=TimeUnit.SECONDS),
        maxDuration=Duration(value=24, unit=TimeUnit.HOURS),
        packetDelayBudget=Duration(value=delay_ms, unit=TimeUnit.MILLISECONDS),
        priority=priority,
    )


def default_profiles() -> tuple[QosProfile, ...]:
    """Four active profiles in the usual E/S/M/L family and one deprecated legacy profile."""
    return (
        _profile("QOS_E", "low latency for interactive use", 5, 2, 20, 10),
        _profile("QOS_S", "small stable throughput", 2, 1, 100, 30),
        _profile("QOS_M", "medium throughput (HD video)", 10, 5, 100, 40),
        _profile("QOS_L", "large throughput (4K video)", 25, 10, 150, 50),
        _profile("QOS_LEGACY", "kept for old clients", 1, 1, 300, 90, QosProfileStatus.DEPRECATED),
    )
