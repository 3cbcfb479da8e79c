"""Formulas against textbook values (Gross & Harris; Kleinrock; Erlang B tables)."""

from __future__ import annotations

import pytest

from sim.queueing import erlang_b, erlang_c, mm1, mmc, mmck


def test_erlang_b_against_tables() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)
    assert erlang_b(5, 3.0) == pytest.approx(0.11005, abs=1e-5)
    assert erlang_b(0, 4.0) == 1.0


def test_erlang_c() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert erlang_c(3, 3.0) == 1.0


def test_mm1() -> None:
    metrics = mm1(0.5, 1.0)
    assert (metrics.l, metrics.w, metrics.wq, metrics.lq) == pytest.approx((1, 2, 1, 0.5))


def test_mm3_textbook_example() -> None:
    metrics = mmc(2.0, 1.0, 3)  # rho = 2/3, P0 = 1/9
    assert metrics.lq == pytest.approx(8 / 9)
    assert metrics.wq == pytest.approx(4 / 9)
    assert metrics.p_wait == pytest.approx(4 / 9)
    assert metrics.l == pytest.approx(8 / 9 + 2)


def test_mmc_refuses_an_unstable_load() -> None:
    with pytest.raises(ValueError, match="unstable"):
        mmc(4.0, 1.0, 4)


def test_mmck_loss_formula() -> None:
    assert mmck(1.0, 1.0, 1, 3).p_block == pytest.approx(1 / 4)  # rho = 1: 1/(K+1)
    assert mmck(0.5, 1.0, 1, 2).p_block == pytest.approx(0.125 / 0.875)
    assert mmck(5.0, 1.0, 10, 10).p_block == pytest.approx(erlang_b(10, 5.0))
    assert mmck(9.0, 1.0, 4, 4).wq == 0.0


def test_mmck_tends_to_mmc_as_the_waiting_room_grows() -> None:
    bounded, unbounded = mmck(3.2, 1.0, 4, 500), mmc(3.2, 1.0, 4)
    assert bounded.wq == pytest.approx(unbounded.wq, rel=1e-9)
    assert bounded.p_wait == pytest.approx(unbounded.p_wait, rel=1e-9)
    assert bounded.l == pytest.approx(unbounded.l, rel=1e-9)


def test_mmck_obeys_littles_law() -> None:
    metrics = mmck(3.0, 1.0, 3, 6)
    assert metrics.l == pytest.approx(metrics.throughput * metrics.w)
