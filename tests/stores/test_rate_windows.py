"""Every backend: shared rate limits, sliding 60-second windows in the store."""

from __future__ import annotations

import pytest

from llm_toll.store import BaseStore
from tests.stores.helpers import (
    T0,
)

# -- shared rate limits ---------------------------------------------------------------------


def test_shared_rpm_admits_up_to_the_limit_then_tells_when(store: BaseStore) -> None:
    assert store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0).admitted
    assert store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 10).admitted
    refused = store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 20)
    assert (refused.admitted, refused.limit_type) == (False, "rpm")
    assert refused.retry_after == pytest.approx(40.0)  # the first request leaves at T0 + 60
    assert store.acquire_rate(
        "other", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 20
    ).admitted  # scopes are apart
    assert not store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 59.5).admitted
    assert store.acquire_rate(
        "s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 60
    ).admitted  # gone at exactly T0 + 60
    refused = store.acquire_rate("s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 61)
    assert refused.retry_after == pytest.approx(9.0)
    assert store.acquire_rate(
        "s", rpm=2, tpm=None, estimated_tokens=0, now=T0 + 200
    ).admitted  # the window emptied


def test_shared_tpm_reserves_settles_and_releases(store: BaseStore) -> None:
    first = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=60, now=T0)
    assert first.admitted and first.lease_id is not None
    refused = store.acquire_rate(
        "t", rpm=None, tpm=100, estimated_tokens=60, now=T0 + 1
    )  # 60 held + 60 > 100
    assert (refused.admitted, refused.limit_type) == (False, "tpm")
    assert refused.retry_after == pytest.approx(59.0)
    store.settle_rate("t", first.lease_id, 30, T0 + 5)  # it really used 30, counted from T0 + 5
    second = store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=60, now=T0 + 6)
    assert second.admitted and second.lease_id is not None
    refused = store.acquire_rate(
        "t", rpm=None, tpm=100, estimated_tokens=20, now=T0 + 7
    )  # 30 + 60 + 20 > 100
    assert refused.retry_after == pytest.approx(58.0)  # when the settled 30 leave
    store.settle_rate("t", second.lease_id, 0, T0 + 8)  # a release gives the 60 back
    assert store.acquire_rate("t", rpm=None, tpm=100, estimated_tokens=20, now=T0 + 8).admitted
    # Both limits: the one that frees up last is reported.
    assert store.acquire_rate("both", rpm=1, tpm=10, estimated_tokens=10, now=T0).admitted
    refused = store.acquire_rate("both", rpm=1, tpm=10, estimated_tokens=10, now=T0 + 30)
    assert refused.retry_after == pytest.approx(30.0)
    # An estimate above the whole limit needs an empty window, not forever.
    assert store.acquire_rate("huge", rpm=None, tpm=10, estimated_tokens=500, now=T0).admitted


def test_shared_rate_arguments_are_checked(store: BaseStore) -> None:
    with pytest.raises(ValueError, match="scope"):
        store.acquire_rate("", rpm=1, tpm=None, estimated_tokens=0, now=T0)
    with pytest.raises(ValueError, match="rpm"):
        store.acquire_rate("s", rpm=0, tpm=None, estimated_tokens=0, now=T0)
    with pytest.raises(ValueError, match="estimated_tokens"):
        store.acquire_rate("s", rpm=1, tpm=None, estimated_tokens=-1, now=T0)
    with pytest.raises(ValueError, match="actual_tokens"):
        store.settle_rate("s", 1, -5, T0)


def test_shared_rate_events_are_pruned_as_the_window_moves(store: BaseStore) -> None:
    for n in range(50):
        assert store.acquire_rate(
            "p", rpm=1_000, tpm=None, estimated_tokens=0, now=T0 + n * 10
        ).admitted
    # Only the last 6 (within 60 s of T0 + 490) are left: the window is all that is read.
    refused = store.acquire_rate("p", rpm=6, tpm=None, estimated_tokens=0, now=T0 + 490)
    assert refused.retry_after == pytest.approx(10.0)
