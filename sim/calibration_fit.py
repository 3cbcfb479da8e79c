"""Service-time distributions fitted to Prometheus histograms (or to raw samples).

A Prometheus histogram keeps cumulative counts under fixed bucket bounds plus the exact sum
and count of what it observed. The fit keeps that exact mean and chooses the spread by
maximising the *binned* likelihood (each bucket's count times the log of the probability
the model gives the bucket), so coarse buckets bias nothing: the model is judged only on
what the buckets say. Two families are tried, lognormal (sigma) and gamma (shape; the
exponential is the gamma of shape 1), and the likelier one kept. The scenario language has
no gamma, so a gamma fit becomes the lognormal of the same mean and coefficient of
variation when a :data:`~operators.core.ServiceTime` is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from operators.core import ExponentialServiceTime, LognormalServiceTime, ServiceTime

__all__ = [
    "Fit",
    "Histogram",
    "fit_histogram",
    "gamma_cdf",
    "histogram_of",
    "lognormal_cdf",
    "relative_error",
]


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (``cumulative[i]`` observations at most ``bounds[i]``)."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    count: float
    total: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def minus(self, earlier: Histogram) -> Histogram:
        """What was observed between an earlier scrape and this one."""
        if earlier.bounds != self.bounds:
            raise ValueError("histograms with different bucket bounds")
        return Histogram(
            self.bounds,
            tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def plus(self, other: Histogram) -> Histogram:
        """Two series of the same buckets as one (operations of one tier, say)."""
        if other.bounds != self.bounds:
            raise ValueError("histograms with different bucket bounds")
        return Histogram(
            self.bounds,
            tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)),
            self.count + other.count,
            self.total + other.total,
        )

    def bins(self) -> list[tuple[float, float, float]]:
        """``(low, high, count)`` per bucket, the last one open-ended (high = inf)."""
        found, low, below = [], 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            found.append((low, bound, cumulative - below))
            low, below = bound, cumulative
        found.append((low, math.inf, self.count - below))
        return found

    def quantile(self, q: float) -> float:
        """Prometheus' estimate: linear within the bucket holding the q-th observation."""
        if not self.count:
            return math.nan
        rank = q * self.count
        for low, high, count in self.bins():
            if count and rank <= count:
                return low + (high - low) * rank / count if math.isfinite(high) else low
            rank -= count
        return self.bounds[-1]


def histogram_of(samples: Iterable[float], bounds: Sequence[float]) -> Histogram:
    """The histogram Prometheus would have kept of ``samples``."""
    values = list(samples)
    cumulative = tuple(float(sum(1 for v in values if v <= b)) for b in bounds)
    return Histogram(tuple(bounds), cumulative, float(len(values)), math.fsum(values))


def lognormal_cdf(x: float, mean: float, sigma: float) -> float:
    """P(X <= x) for the lognormal of this mean (not median) and log-deviation."""
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    mu = math.log(mean) - sigma * sigma / 2
    return 0.5 * math.erfc(-(math.log(x) - mu) / (sigma * math.sqrt(2)))


def gamma_cdf(x: float, mean: float, shape: float) -> float:
    """P(X <= x) for the gamma of this mean and shape: the regularised lower incomplete gamma.

    A series below ``shape + 1`` and a continued fraction (modified Lentz) above, the usual
    split where each converges fast.
    """
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    z = x * shape / mean
    log_front = shape * math.log(z) - z - math.lgamma(shape)
    if z < shape + 1:
        term = total = 1.0 / shape
        n = shape
        for _ in range(1000):
            n += 1
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-14:
                break
        return min(1.0, total * math.exp(log_front))
    tiny = 1e-300
    b = z + 1 - shape
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        a = -i * (i - shape)
        b += 2
        d = a * d + b
        d = tiny if abs(d) < tiny else d
        c = b + a / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-14:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


def _binned_log_likelihood(histogram: Histogram, cdf: Callable[[float], float]) -> float:
    total = 0.0
    for low, high, count in histogram.bins():
        if count <= 0:
            continue
        p = cdf(high) - cdf(low)
        total += count * math.log(max(p, 1e-300))
    return total


def _best_on_log_scale(
    score: Callable[[float], float], low: float, high: float, steps: int = 60
) -> float:
    """The argmax of ``score`` on [low, high]: a log-spaced grid, then golden sections."""
    grid = [low * (high / low) ** (i / steps) for i in range(steps + 1)]
    best = max(range(len(grid)), key=lambda i: score(grid[i]))
    a = math.log(grid[max(best - 1, 0)])
    b = math.log(grid[min(best + 1, steps)])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if score(math.exp(c)) >= score(math.exp(d)):
            b = d
        else:
            a = c
    return math.exp((a + b) / 2)


@dataclass(frozen=True)
class Fit:
    """A fitted service time: family, mean, and its spread parameter (sigma or shape)."""

    family: str
    """``lognormal`` or ``gamma`` (``exponential`` when the gamma's shape is 1 within 5 %)."""
    mean: float
    spread: float
    """sigma of log(time) for a lognormal, the shape for a gamma or exponential."""
    log_likelihood: float
    observations: float

    @property
    def cv(self) -> float:
        """Coefficient of variation (standard deviation over mean)."""
        if self.family == "lognormal":
            return math.sqrt(math.expm1(self.spread**2))
        return 1 / math.sqrt(self.spread)

    def service_time(self) -> ServiceTime:
        """The scenario language's nearest form: exponential, or a lognormal of this mean
        and coefficient of variation (a gamma's spread carried over that way)."""
        if self.family == "exponential":
            return ExponentialServiceTime(mean=self.mean)
        lognormal = self.family == "lognormal"
        sigma = self.spread if lognormal else math.sqrt(math.log1p(self.cv**2))
        return LognormalServiceTime(mean=self.mean, sigma=min(max(sigma, 1e-3), 5.0))

    def describe(self) -> str:
        name = {"lognormal": "sigma", "gamma": "shape", "exponential": "shape"}[self.family]
        return f"{self.family}(mean={self.mean * 1000:.2f} ms, {name}={self.spread:.3g})"


def fit_histogram(histogram: Histogram, families: Sequence[str] = ("lognormal", "gamma")) -> Fit:
    """The likelier of a lognormal and a gamma with the histogram's exact mean.

    Raises ValueError for an empty histogram (nothing observed between two scrapes).
    """
    if histogram.count <= 0 or not histogram.total > 0:
        raise ValueError("an empty histogram cannot be fitted (no observations)")
    mean = histogram.mean
    fits: list[Fit] = []
    if "lognormal" in families:

        def lognormal(s: float) -> float:
            return _binned_log_likelihood(histogram, lambda x: lognormal_cdf(x, mean, s))

        sigma = _best_on_log_scale(lognormal, 0.02, 4.0)
        fits.append(Fit("lognormal", mean, sigma, lognormal(sigma), histogram.count))
    if "gamma" in families:

        def gamma(k: float) -> float:
            return _binned_log_likelihood(histogram, lambda x: gamma_cdf(x, mean, k))

        shape = _best_on_log_scale(gamma, 0.1, 400.0)
        family = "exponential" if abs(shape - 1) < 0.05 else "gamma"
        fits.append(Fit(family, mean, shape, gamma(shape), histogram.count))
    if not fits:
        raise ValueError(f"no known family among {list(families)} (lognormal, gamma)")
    return max(fits, key=lambda f: f.log_likelihood)


def relative_error(simulated: float, live: float) -> float:
    """(simulated - live) / live; NaN when live is zero or either is not a number."""
    if not (math.isfinite(simulated) and math.isfinite(live)) or live == 0:
        return math.nan
    return (simulated - live) / live
