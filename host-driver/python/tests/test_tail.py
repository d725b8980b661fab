"""The live feed of a scan's rows from the $(P)Tail group (`flyscan_bluesky.tail`), offline:
updates are fed as a PV Access client would deliver them."""
import asyncio

import numpy as np

from flyscan_bluesky.tail import COLUMNS, TailFeed


def update(first: int, n: int, channels=(0, 2), **override):
    """A Tail group update of points first … first + n - 1 (QSRV also sends `record`)."""
    idx = np.arange(first, first + n, dtype=np.float64)
    v = {"index": idx, "record": {"_options": {}}}
    for c in COLUMNS:
        v[c] = idx * 10 + COLUMNS.index(c)
    for ch in channels:
        v[f"ch{ch}"] = idx + 1000 * (ch + 1)
    v.update(override)
    return v


def feed_of(*updates) -> TailFeed:
    f = TailFeed("X:Tail")
    f._initial_pending = False  # noqa: SLF001 - as after the subscription's first value

    async def go():
        for u in updates:
            await f._on_update(u)  # noqa: SLF001

    asyncio.run(go())
    return f


def test_rows_in_order_are_taken_and_dropped():
    f = feed_of(update(0, 5), update(5, 3))
    assert (f.frontier, f.has_gap) == (8, False)
    rows = f.take(2, 8, [0, 2])
    assert list(rows["position"]) == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert list(rows["ch2"]) == [3002.0, 3003.0, 3004.0, 3005.0, 3006.0, 3007.0]
    f.drop_before(5)
    assert f.take(2, 8, [0]) is None, "rows before 5 were dropped"
    assert list(f.take(5, 8, [0])["ch0"]) == [1005.0, 1006.0, 1007.0]


def test_a_missed_update_is_a_gap_until_resumed():
    f = feed_of(update(0, 5), update(9, 3))
    assert f.has_gap and f.frontier == 5 and "expected 5" in f.gap_reason
    f.resume_at(12)
    assert not f.has_gap
    asyncio.run(f._on_update(update(12, 2)))  # noqa: SLF001
    assert f.frontier == 14 and list(f.take(12, 14, [0])["position"]) == [120.0, 130.0]


def test_a_column_of_another_post_refuses_the_update():
    f = feed_of(update(0, 4, position=np.arange(3.0)))
    assert f.has_gap and f.frontier == 0 and "position" in f.gap_reason


def test_a_channel_not_held_is_not_invented():
    f = feed_of(update(0, 4, channels=(0,)))
    assert not f.has_gap
    assert f.take(0, 4, [0, 1]) is None


def test_waiting_for_the_last_rows():
    f = feed_of(update(0, 4))

    async def go():
        waiter = asyncio.ensure_future(f.wait_for(6, timeout=5.0))
        await asyncio.sleep(0)
        await f._on_update(update(4, 2))  # noqa: SLF001
        return await waiter

    assert asyncio.run(go()) is True
    assert asyncio.run(f.wait_for(7, timeout=0.05)) is False
