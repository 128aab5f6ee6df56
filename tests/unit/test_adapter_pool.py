"""Adapters kept between requests: one per connection until its settings change."""

from __future__ import annotations

from clientpay_connect.connect.services import AdapterPool


class Closable:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_the_same_settings_reuse_the_adapter_and_new_settings_close_the_old_one() -> None:
    pool = AdapterPool()
    first = pool.get(1, "a", Closable)
    assert pool.get(1, "a", Closable) is first
    assert pool.holds(first)
    second = pool.get(1, "b", Closable)
    assert second is not first and first.closed and not second.closed
    assert not pool.holds(first)
    other = pool.get(2, "b", Closable)
    assert other is not second
    pool.close()
    assert second.closed and other.closed and not pool.holds(second)
