"""Live rows of a scan from the IOC's PV Access group ``$(P)Tail``.

The IOC posts the points that arrived since its last tick in the ``Tail:*`` records, every tick,
and QSRV serves them as one group (``index``, ``position``, ``timestamp``, ``live_time``,
``flags``, ``energy``, ``energy_start``, ``energy_centre``, ``ch<N>``) updated atomically when
``Tail:Index`` is posted. Following that group gives every point once, within a tick, at a cost
proportional to the points — where re-reading the full waveforms at each collect costs the whole
scan every time.

A PV Access monitor may squash updates when its client falls behind; the rows then arrive with
a hole, which `TailFeed` reports (`has_gap`) so that the caller reads those points from the full
waveforms instead. Nothing is ever guessed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import numpy as np

#: Columns every tail update carries besides the channels.
COLUMNS = (
    "position",
    "timestamp",
    "live_time",
    "flags",
    "energy",
    "energy_start",
    "energy_centre",
)


_CHANNEL = re.compile(r"ch\d+")


class TailFeed:
    """Rows of the current scan, in index order, from the ``$(P)Tail`` group."""

    def __init__(self, pv: str) -> None:
        self._pv = pv
        self._ctx: Any = None
        self._sub: Any = None
        self._first_update: asyncio.Event | None = None
        self._initial_pending = True
        self._next = 0
        # Rows received in order and not yet taken: list of (first index, columns).
        self._rows: list[tuple[int, dict[str, np.ndarray]]] = []
        self._gap = False
        self.updates = 0
        #: Why the feed last lost its place (for logs and tests).
        self.gap_reason = ""
        self._arrived = asyncio.Event()

    @property
    def frontier(self) -> int:
        """Index after the last point received in order (every point before it is held or was
        taken)."""
        return self._next

    @property
    def has_gap(self) -> bool:
        """An update was missed: points after `frontier` must come from the full waveforms."""
        return self._gap

    async def start(self, timeout: float = 5.0) -> bool:
        """Subscribes (if not yet) and forgets every row: a new scan starts at index 0. Returns
        False when PV Access is not available here (the caller then reads full waveforms)."""
        self._next = 0
        self._rows.clear()
        self._gap = False
        if self._sub is not None:
            return True
        try:
            from p4p.client.asyncio import Context
        except ImportError:
            return False
        self._ctx = Context("pva")
        self._first_update = asyncio.Event()
        self._initial_pending = True
        self._sub = self._ctx.monitor(self._pv, self._on_update, notify_disconnect=True)
        try:
            # The subscription's first update is the group as it was before this scan: wait for
            # it, so that every later update is this scan's (the caller arms only after this).
            await asyncio.wait_for(self._first_update.wait(), timeout)
        except TimeoutError:
            self.close()
            return False
        return True

    def close(self) -> None:
        """Ends the subscription."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    async def _on_update(self, value: Any) -> None:
        try:
            self._update(value)
        except Exception as e:  # a malformed update must not end the subscription
            self._lost(f"update not understood: {e!r}")

    def _update(self, value: Any) -> None:
        if isinstance(value, Exception):
            # Disconnected: whatever comes after reconnecting may have skipped points.
            if not self._initial_pending:
                self._lost(f"subscription interrupted: {value!r}")
            return
        if self._initial_pending:
            self._initial_pending = False
            if self._first_update is not None:
                self._first_update.set()
            return
        self.updates += 1
        index = np.asarray(value["index"], dtype=np.float64)
        if index.size == 0:
            return
        first = int(index[0])
        contiguous = bool(np.all(index == first + np.arange(index.size)))
        if not contiguous or first > self._next:
            self._lost(f"update from index {first} ({index.size} points), expected {self._next}")
            return
        if first < self._next:
            # Already held (a repeated post): keep the first copy.
            return
        columns = {}
        # The group's columns (QSRV adds others, e.g. `record`, which are not rows).
        for name in value.keys():
            if name not in COLUMNS and not _CHANNEL.fullmatch(name):
                continue
            a = np.asarray(value[name])
            if a.size != index.size and name in COLUMNS:
                # A column of another post than the index's: refuse the whole update.
                self._lost(f"column {name} holds {a.size} points, the index {index.size}")
                return
            columns[name] = a
        self._rows.append((first, columns))
        self._next = first + index.size
        self._arrived.set()

    def take(self, start: int, end: int, channels: list[int]) -> dict[str, np.ndarray] | None:
        """Rows ``start`` … ``end - 1`` (``end`` ≤ `frontier`) as columns, or None when the feed
        does not hold them all (in every column and each of ``channels``). Nothing is dropped:
        see `drop_before`."""
        names = [*COLUMNS, *(f"ch{n}" for n in channels)]
        parts: dict[str, list[np.ndarray]] = {c: [] for c in names}
        for first, cols in self._rows:
            last = first + len(cols.get("position", ()))
            if last <= start or first >= end:
                continue
            lo, hi = max(start, first) - first, min(end, last) - first
            for name, acc in parts.items():
                col = cols.get(name)
                if col is None or col.size < hi:
                    return None
                acc.append(col[lo:hi])
        out = {name: np.concatenate(acc) if acc else np.zeros(0) for name, acc in parts.items()}
        if any(len(v) != end - start for v in out.values()):
            return None
        return out

    async def wait_for(self, frontier: int, timeout: float) -> bool:
        """Waits until the rows up to ``frontier`` (exclusive) have arrived in order; False on
        a hole or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._next < frontier and not self._gap:
            self._arrived.clear()
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return self._next >= frontier
        return self._next >= frontier and not self._gap

    def give_up(self, why: str) -> None:
        """The rest comes from the full waveforms (as after a hole), because ``why``."""
        self._lost(why)

    def _lost(self, why: str) -> None:
        if not self._gap:
            self.gap_reason = why
        self._gap = True

    def drop_before(self, index: int) -> None:
        """Forgets the rows before ``index`` (collected): the feed holds only what is pending."""
        self._rows = [(f, c) for f, c in self._rows if f + len(c.get("position", ())) > index]

    def resume_at(self, index: int) -> None:
        """After a hole: the points before ``index`` came from elsewhere; updates starting at
        ``index`` are taken again."""
        self._rows.clear()
        self._next = index
        self._gap = False
