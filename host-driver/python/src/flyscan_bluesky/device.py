"""ophyd-async device for the flyscan counter served by the host driver's EPICS IOC.

The device is a `StandardFlyable` (prepare → kickoff → complete, the fly-scan life cycle of
ophyd-async 0.21) that is also `EventPageCollectable`: the counter's data are not files but
live EPICS waveforms (one element per latched point), so `collect_pages` turns the waveform
elements that have arrived since the last collect into one Event per point.

Typical use from a plan::

    counter = FlyScanCounter("FLY:", name="counter")
    yield from bps.prepare(counter, FlyScanInfo.from_positions(positions), wait=True)
    yield from bps.declare_stream(counter, name="primary", collect=True)
    yield from bps.kickoff(counter, wait=True)
    yield from bps.collect_while_completing([counter], [counter], flush_period=0.5,
                                            stream_name="primary")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Self

import numpy as np
from bluesky.protocols import EventPageCollectable, Hints, PartialEventPage
from event_model import DataKey
from ophyd_async.core import (
    Array1D,
    ConfinedModel,
    DeviceVector,
    FlyableLogic,
    SignalR,
    StandardFlyable,
    StandardReadable,
    StandardReadableFormat,
    StrictEnum,
    wait_for_value,
)
from ophyd_async.epics.core import epics_signal_r, epics_signal_rw, epics_signal_w
from pydantic import Field, model_validator

#: Largest channel count the wire protocol allows (the channel mask is 32 bits).
MAX_CHANNELS = 32


class FlyScanError(RuntimeError):
    """A fly scan did not produce a complete, loss-free data set."""


class FlyScanTimeout(FlyScanError, TimeoutError):
    """A fly scan did not end within its timeout."""


#: Longest wait for the driver's Busy/Status updates that follow its Arm reset, seconds.
_SETTLE_S = 5.0


class ScanMode(StrictEnum):
    """How trigger positions are given (`$(P)Mode`)."""

    START_STEP_COUNT = "Start-Step-Count"
    LIST = "List"


class ScanDirection(StrictEnum):
    """Which encoder crossings of a preset fire its trigger (`$(P)Direction`)."""

    POSITIVE = "Positive"
    NEGATIVE = "Negative"
    EITHER = "Either"
    BIDIRECTIONAL = "Bidirectional"


class PointEncoding(StrictEnum):
    """Wire encoding of points between firmware and host (`$(P)Encoding`)."""

    COMPACT = "Compact"
    RAW = "Raw"
    RICE = "Rice"


class ScanStatus(StrictEnum):
    """Life-cycle state the driver publishes (`$(P)Status`)."""

    IDLE = "Idle"
    ARMED = "Armed"
    SCANNING = "Scanning"
    DONE = "Done"
    ABORTED = "Aborted"
    ERROR = "Error"


#: States in which the device is armed or latching points.
_RUNNING = frozenset({ScanStatus.ARMED, ScanStatus.SCANNING})
#: States a scan ends in.
_FINAL = frozenset({ScanStatus.DONE, ScanStatus.ABORTED, ScanStatus.ERROR})


class FlyScanInfo(ConfinedModel):
    """Everything `FlyScanCounter.prepare` needs for one fly scan.

    Build it with `start_step_count` or `from_positions` rather than by hand.
    """

    mode: ScanMode = Field(frozen=True)
    """Start/step/count presets or an explicit list."""
    start: int = Field(default=0, frozen=True)
    """First preset, encoder counts (start/step/count mode)."""
    step: int = Field(default=1, frozen=True)
    """Distance between presets, encoder counts, non-zero (start/step/count mode)."""
    npoints: int = Field(gt=0, frozen=True)
    """Presets per pass (the list length in list mode)."""
    positions: tuple[int, ...] = Field(default=(), frozen=True)
    """Explicit presets, encoder counts (list mode)."""
    direction: ScanDirection = Field(default=ScanDirection.POSITIVE, frozen=True)
    """Which crossings fire."""
    passes: int = Field(default=1, ge=1, frozen=True)
    """Passes over the presets (> 1 only for bidirectional scans)."""
    channel_mask: int = Field(default=1, gt=0, lt=1 << MAX_CHANNELS, frozen=True)
    """Enabled channels, bit N = channel N (`$(P)CH<N>`, numbered from 0)."""
    encoding: PointEncoding = Field(default=PointEncoding.COMPACT, frozen=True)
    """Point encoding on the serial link."""
    timeout: float | None = Field(default=None, gt=0, frozen=True)
    """Longest wait in `complete`, seconds; None waits for as long as the scan runs."""
    arm_timeout: float = Field(default=30.0, gt=0, frozen=True)
    """Longest wait in `kickoff` for the device to be armed (configure + list upload), s."""

    @model_validator(mode="after")
    def _check_consistent(self) -> Self:
        if self.mode is ScanMode.START_STEP_COUNT and self.step == 0:
            raise ValueError("step must not be 0 in start/step/count mode")
        if self.mode is ScanMode.LIST and len(self.positions) != self.npoints:
            raise ValueError(
                f"list mode needs npoints == len(positions), got {self.npoints} "
                f"and {len(self.positions)}"
            )
        if self.mode is ScanMode.START_STEP_COUNT and self.positions:
            raise ValueError("positions are only used in list mode")
        if self.passes > 1 and self.direction is not ScanDirection.BIDIRECTIONAL:
            raise ValueError(
                f"{self.passes} passes need direction Bidirectional, got {self.direction.value}"
            )
        return self

    @classmethod
    def start_step_count(
        cls, start: int, step: int, npoints: int, **kwargs: object
    ) -> FlyScanInfo:
        """Presets at `start + i·step` for i in 0..npoints-1 (extra fields by keyword)."""
        return cls(
            mode=ScanMode.START_STEP_COUNT, start=start, step=step, npoints=npoints, **kwargs
        )

    @classmethod
    def from_positions(cls, positions: Sequence[int], **kwargs: object) -> FlyScanInfo:
        """Presets at explicit encoder positions (extra fields by keyword)."""
        ints = tuple(int(p) for p in positions)
        if any(i != p for i, p in zip(ints, positions, strict=True)):
            raise ValueError("positions must be whole encoder counts")
        return cls(mode=ScanMode.LIST, npoints=len(ints), positions=ints, **kwargs)

    @property
    def channels(self) -> list[int]:
        """Enabled channel numbers (0-based, the mask's bit numbers), ascending."""
        return [n for n in range(MAX_CHANNELS) if self.channel_mask >> n & 1]

    @property
    def expected_points(self) -> int:
        """Points the scan produces when nothing is lost."""
        return self.npoints * self.passes


def channels_from_mask(mask: int, num_channels: int) -> list[int]:
    """Enabled channel numbers of `mask` (0-based: bit N is channel N).

    :raises FlyScanError: if the mask enables no channel or one the device lacks.
    """
    if mask <= 0:
        raise FlyScanError(f"channel mask {mask:#x} enables no channel")
    if mask >> num_channels:
        raise FlyScanError(
            f"channel mask {mask:#x} enables channels beyond the device's {num_channels}"
        )
    return [n for n in range(num_channels) if mask >> n & 1]


@dataclass
class FlyScanCtx:
    """State carried from prepare through kickoff to complete."""

    info: FlyScanInfo
    scan_id_before: int = 0


@dataclass
class FlyScanLogic(FlyableLogic[FlyScanInfo, FlyScanCtx]):
    """Drives the counter's control PVs through one fly scan."""

    device: FlyScanCounter
    #: RunEngine pauses so far (a scan aborted by one is flown again after resume).
    pauses: int = 0

    async def on_prepare(self, value: FlyScanInfo) -> FlyScanCtx:
        """Write the scan configuration; refuse if a scan is running or the link is down."""
        d = self.device
        connected, armed, n_channels, max_points = await asyncio.gather(
            d.connected.get_value(),
            d.arm.get_value(),
            d.num_channels.get_value(),
            d.max_points.get_value(),
        )
        if not connected:
            raise FlyScanError(f"{d.name}: the host driver is not connected to the firmware")
        if armed:
            raise FlyScanError(f"{d.name}: a scan is already armed or running; abort it first")
        if n_channels > len(d.channels):
            raise FlyScanError(
                f"{d.name}: the firmware has {n_channels} channels but the device was built "
                f"for {len(d.channels)}; construct FlyScanCounter(num_channels={n_channels})"
            )
        channels_from_mask(value.channel_mask, n_channels)
        if 0 < max_points < value.npoints:
            raise FlyScanError(
                f"{d.name}: {value.npoints} points per pass exceed the device limit of {max_points}"
            )
        writes = [
            d.mode.set(value.mode),
            d.direction.set(value.direction),
            d.passes.set(value.passes),
            d.channel_mask.set(value.channel_mask),
            d.encoding.set(value.encoding),
            d.npoints.set(value.npoints),
        ]
        if value.mode is ScanMode.LIST:
            writes.append(d.positions.set(np.asarray(value.positions, dtype=np.float64)))
        else:
            writes += [d.start.set(value.start), d.step.set(value.step)]
        await asyncio.gather(*writes)
        return FlyScanCtx(info=value)

    async def on_kickoff(self, ctx: FlyScanCtx) -> FlyScanCtx:
        """Arm the scan and wait until the device is armed (or the driver has given up).

        The driver configures the device and uploads a preset list before arming, so the axis
        must not start before this returns. A refused arm ends with Arm back at 0, which
        `on_complete` then reports.

        :raises FlyScanError: if neither happens within `FlyScanInfo.arm_timeout`.
        """
        d = self.device
        ctx.scan_id_before = await d.scan_id.get_value()
        d._collected = 0  # noqa: SLF001 - a new scan starts a new event sequence
        await d.arm.set(True)
        armed = asyncio.ensure_future(
            wait_for_value(d.status, lambda v: v in _RUNNING, timeout=None)
        )
        dropped = asyncio.ensure_future(wait_for_value(d.arm, False, timeout=None))
        try:
            done, _ = await asyncio.wait(
                {armed, dropped}, timeout=ctx.info.arm_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                message = await d.status_message.get_value()
                raise FlyScanError(
                    f"{d.name}: the device was not armed within {ctx.info.arm_timeout} s "
                    f"(driver says: {message or 'nothing'})"
                )
            for task in done:
                task.result()
        finally:
            for task in (armed, dropped):
                task.cancel()
        return ctx

    async def on_complete(self, ctx: FlyScanCtx) -> None:
        """`complete_once`, through RunEngine pauses: a scan aborted by a pause is flown again
        after resume (the plan rewinds to its checkpoint and kicks off anew), and this status
        then completes with that scan."""
        d = self.device
        while True:
            pauses = self.pauses
            try:
                await self.complete_once(ctx)
                return
            except FlyScanError:
                if self.pauses == pauses:
                    raise
            ctx = FlyScanCtx(info=ctx.info, scan_id_before=await d.scan_id.get_value())
            await wait_for_value(d.arm, True, timeout=None)

    async def complete_once(self, ctx: FlyScanCtx) -> None:
        """Wait until the driver drops Arm — or, sooner, until the scan fails (Status Error)
        or loses points — then check the scan ended Done with no loss.

        :raises FlyScanError: as soon as Status is Error or LostPoints > 0 (naming what the
            driver says happened), on Aborted, or a short scan; `FlyScanTimeout` if
            `FlyScanInfo.timeout` elapses first.
        """
        d = self.device
        ended = asyncio.ensure_future(wait_for_value(d.arm, False, timeout=None))
        failed = asyncio.ensure_future(
            wait_for_value(d.status, ScanStatus.ERROR, timeout=None)
        )
        lossy = asyncio.ensure_future(wait_for_value(d.lost_points, lambda v: v > 0, timeout=None))
        watch = {ended, failed, lossy}
        try:
            done, _ = await asyncio.wait(
                watch, timeout=ctx.info.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in watch:
                task.cancel()
        if not done:
            captured, expected = await asyncio.gather(
                d.num_captured.get_value(), d.num_expected.get_value()
            )
            raise FlyScanTimeout(
                f"{d.name}: the scan did not end within {ctx.info.timeout} s "
                f"({captured} of {expected} points captured)"
            )
        if ended not in done:
            # Failing while the scan may still run: say what happened now, with the driver's
            # words, rather than wait for the end.
            status, message, lost, captured, expected = await asyncio.gather(
                d.status.get_value(),
                d.status_message.get_value(),
                d.lost_points.get_value(),
                d.num_captured.get_value(),
                d.num_expected.get_value(),
            )
            counts = f"{captured} of {expected} points captured"
            detail = f" ({message})" if message else ""
            if status is ScanStatus.ERROR:
                raise FlyScanError(f"{d.name}: the scan failed{detail}; {counts}")
            raise FlyScanError(
                f"{d.name}: the scan lost {lost} points ({counts}){detail}: "
                "the data set has gaps and must not be used as is"
            )
        # The driver publishes Arm=0 just before Busy and Status: let the final state land.
        # (If it never does, the state found is reported below.)
        try:
            await wait_for_value(d.status, lambda v: v in _FINAL, timeout=_SETTLE_S)
            if await d.scan_id.get_value() == ctx.scan_id_before:
                # A "Done" left from the previous scan while this arm's outcome is on its way.
                await wait_for_value(
                    d.status, lambda v: v is not ScanStatus.DONE, timeout=_SETTLE_S
                )
        except TimeoutError:
            pass
        status, message, lost, captured, expected, scan_id = await asyncio.gather(
            d.status.get_value(),
            d.status_message.get_value(),
            d.lost_points.get_value(),
            d.num_captured.get_value(),
            d.num_expected.get_value(),
            d.scan_id.get_value(),
        )
        where = f"{d.name}: scan {scan_id}"
        detail = f" ({message})" if message else ""
        counts = f"{captured} of {expected} points captured"
        if status is ScanStatus.ERROR:
            raise FlyScanError(f"{where} failed{detail}; {counts}")
        if status is ScanStatus.ABORTED:
            raise FlyScanError(f"{where} was aborted{detail}; {counts}")
        if lost > 0:
            raise FlyScanError(
                f"{where} lost {lost} points ({counts}){detail}: "
                "the data set has gaps and must not be used as is"
            )
        if status is not ScanStatus.DONE:
            raise FlyScanError(f"{where} ended in state {status.value}{detail}")
        if scan_id == ctx.scan_id_before:
            raise FlyScanError(
                f"{d.name}: Arm was dropped but no new scan started "
                f"(ScanId still {scan_id}){detail}"
            )
        if captured != expected or expected != ctx.info.expected_points:
            raise FlyScanError(
                f"{where} ended Done with {captured} points captured, driver expected {expected}, "
                f"scan was prepared for {ctx.info.expected_points}"
            )

    async def pause(self) -> None:
        """RunEngine pause: abort the running scan and wait until the driver has stopped it,
        so that resume (which flies the scan again from the plan's checkpoint) finds the
        device idle."""
        d = self.device
        self.pauses += 1
        if await d.arm.get_value():
            await d.abort.set(True)
            await wait_for_value(d.arm, False, timeout=_SETTLE_S)

    async def on_stage(self) -> None:
        """Nothing: a scan armed by someone else is refused in prepare, not aborted."""

    async def stop(self) -> None:
        """Abort a scan still running at unstage (the plan failed or was interrupted)."""
        d = self.device
        if await d.arm.get_value():
            await d.abort.set(True)


class FlyScanCounter(
    StandardFlyable[FlyScanInfo, FlyScanCtx], StandardReadable, EventPageCollectable
):
    """The flyscan counter behind `$(P)…` PVs of the host driver's IOC.

    :param prefix: PV prefix, e.g. ``"FLY:"``.
    :param num_channels: channels the IOC serves (`$(P)CH0` … `$(P)CH<n-1>`).
    :param name: device name; data keys are ``<name>-ch<N>``, ``<name>-position``,
        ``<name>-timestamp``, ``<name>-live_time`` and ``<name>-flags`` (N from 0, as the PVs).
    """

    def __init__(self, prefix: str, num_channels: int = 8, name: str = "") -> None:
        if not 1 <= num_channels <= MAX_CHANNELS:
            raise ValueError(f"num_channels must be in 1..{MAX_CHANNELS}, got {num_channels}")
        # Waveforms: one element per latched point, NORD grows during the scan.
        self.channels = DeviceVector(
            {n: epics_signal_r(Array1D[np.float64], f"{prefix}CH{n}") for n in range(num_channels)}
        )
        self.position = epics_signal_r(Array1D[np.float64], f"{prefix}Position")
        self.timestamp = epics_signal_r(Array1D[np.float64], f"{prefix}Timestamp")
        self.live_time = epics_signal_r(Array1D[np.float64], f"{prefix}LiveTime")
        self.flags = epics_signal_r(Array1D[np.uint8], f"{prefix}Flags")
        # Scan bookkeeping and health.
        self.num_captured = epics_signal_r(int, f"{prefix}NumCaptured")
        self.num_expected = epics_signal_r(int, f"{prefix}NumExpected")
        self.lost_points = epics_signal_r(int, f"{prefix}LostPoints")
        self.quad_errors = epics_signal_r(int, f"{prefix}QuadErrors")
        self.position_jumps = epics_signal_r(int, f"{prefix}PositionJumps")
        self.link_errors = epics_signal_r(int, f"{prefix}LinkErrors")
        self.protocol_errors = epics_signal_r(int, f"{prefix}ProtocolErrors")
        self.device_session = epics_signal_r(int, f"{prefix}DeviceSession")
        self.resends = epics_signal_r(int, f"{prefix}Resends")
        self.status = epics_signal_r(ScanStatus, f"{prefix}Status")
        # A CHAR waveform: messages may exceed the 40 characters of a string record.
        self.status_message = epics_signal_r(str, f"{prefix}StatusMessage")
        self.scan_id = epics_signal_r(int, f"{prefix}ScanId")
        self.connected = epics_signal_r(bool, f"{prefix}Connected")
        self.busy = epics_signal_r(bool, f"{prefix}Busy")
        # Controls; recorded in each run's configuration.
        with self.add_children_as_readables(StandardReadableFormat.CONFIG_SIGNAL):
            self.firmware_version = epics_signal_r(str, f"{prefix}FirmwareVersion")
            self.num_channels = epics_signal_r(int, f"{prefix}NumChannels")
            self.max_points = epics_signal_r(int, f"{prefix}MaxPoints")
            self.mode = epics_signal_rw(ScanMode, f"{prefix}Mode")
            self.start = epics_signal_rw(int, f"{prefix}Start")
            self.step = epics_signal_rw(int, f"{prefix}Step")
            self.npoints = epics_signal_rw(int, f"{prefix}NPoints")
            self.direction = epics_signal_rw(ScanDirection, f"{prefix}Direction")
            self.passes = epics_signal_rw(int, f"{prefix}Passes")
            self.channel_mask = epics_signal_rw(int, f"{prefix}ChannelMask")
            self.encoding = epics_signal_rw(PointEncoding, f"{prefix}Encoding")
        self.positions = epics_signal_rw(Array1D[np.float64], f"{prefix}Positions")
        self.arm = epics_signal_rw(bool, f"{prefix}Arm")
        self.abort = epics_signal_w(bool, f"{prefix}Abort")
        # Points already emitted by collect_pages for the current scan.
        self._collected = 0
        # Channels named by the last describe_collect, so collect emits exactly those keys.
        self._described_channels: list[int] | None = None
        super().__init__(name=name)

    async def pause(self) -> None:
        """Called by the RunEngine when it pauses: the scan is aborted (see
        `FlyScanLogic.pause`); resume flies it again from the plan's checkpoint."""
        await self.flyable_logic.pause()

    async def resume(self) -> None:
        """Called by the RunEngine when it resumes: nothing to do here; the plan flies the scan
        again from its checkpoint (prepare already wrote the configuration)."""

    @property
    def collected_points(self) -> int:
        """Points emitted by `collect_pages` since the last kickoff."""
        return self._collected

    @cached_property
    def flyable_logic(self) -> FlyScanLogic:
        """Prepare/kickoff/complete logic over this device's PVs."""
        return FlyScanLogic(device=self)

    def _key(self, field: str) -> str:
        return f"{self.name}-{field}"

    async def describe_collect(self) -> dict[str, DataKey]:
        """One scalar data key per enabled channel, plus position, timestamp, live time, flags."""
        mask, n_channels = await asyncio.gather(
            self.channel_mask.get_value(), self.num_channels.get_value()
        )
        channels = channels_from_mask(mask, min(n_channels, len(self.channels)))
        self._described_channels = channels
        keys: dict[str, DataKey] = {}
        for n in channels:
            keys[self._key(f"ch{n}")] = DataKey(
                source=self.channels[n].source, dtype="integer", shape=[],
                dtype_numpy="<i8", units="counts",
            )
        keys[self._key("position")] = DataKey(
            source=self.position.source, dtype="integer", shape=[], dtype_numpy="<i8",
            units="encoder counts",
        )
        keys[self._key("timestamp")] = DataKey(
            source=self.timestamp.source, dtype="number", shape=[], dtype_numpy="<f8", units="s"
        )
        keys[self._key("live_time")] = DataKey(
            source=self.live_time.source, dtype="number", shape=[], dtype_numpy="<f8", units="s"
        )
        keys[self._key("flags")] = DataKey(
            source=self.flags.source, dtype="integer", shape=[], dtype_numpy="<i8"
        )
        return keys

    async def collect_pages(self) -> AsyncIterator[PartialEventPage]:
        """One event page holding every point published since the last collect.

        Points are taken only up to the shortest waveform, so a point whose elements have not
        all been published yet waits for the next collect.
        """
        channels = self._described_channels
        if channels is None:
            raise FlyScanError(f"{self.name}: describe_collect must run before collect")
        arrays = await asyncio.gather(
            self.position.get_value(),
            self.timestamp.get_value(),
            self.live_time.get_value(),
            self.flags.get_value(),
            *(self.channels[n].get_value() for n in channels),
        )
        end = min(len(a) for a in arrays)
        # A lost point (NaN) and what follows it wait: complete() reports the loss.
        lost = np.flatnonzero(~np.isfinite(arrays[0][:end]))
        if lost.size:
            end = int(lost[0])
        start = self._collected
        if end <= start:
            return
        position, timestamp, live_time, flags, *counts = (a[start:end] for a in arrays)
        now = time.time()
        data: dict[str, list] = {
            self._key("position"): _as_ints(position, self.position.source),
            self._key("timestamp"): [float(v) for v in timestamp],
            self._key("live_time"): [float(v) for v in live_time],
            self._key("flags"): _as_ints(flags, self.flags.source),
        }
        for n, c in zip(channels, counts, strict=True):
            data[self._key(f"ch{n}")] = _as_ints(c, self.channels[n].source)
        n_points = end - start
        self._collected = end
        yield PartialEventPage(
            data=data,
            timestamps={k: [now] * n_points for k in data},
            time=[now] * n_points,
        )

    @property
    def hints(self) -> Hints:
        """Plot the enabled channels against position."""
        channels = self._described_channels or [0]
        return Hints(fields=[self._key(f"ch{n}") for n in channels])


def _as_ints(values: np.ndarray, source: str) -> list[int]:
    """Waveform elements that carry integers (counts, positions, flags) as Python ints.

    CA has no 64-bit integer type, so the IOC serves them as doubles; a fractional or
    non-finite element means the PV does not hold what the driver should have written.
    """
    if not np.all(np.isfinite(values)) or np.any(values != np.rint(values)):
        raise FlyScanError(f"{source} holds non-integer values where whole counts are expected")
    return [int(v) for v in values]


__all__ = [
    "FlyScanCounter",
    "FlyScanCtx",
    "FlyScanError",
    "FlyScanInfo",
    "FlyScanTimeout",
    "FlyScanLogic",
    "PointEncoding",
    "ScanDirection",
    "ScanMode",
    "ScanStatus",
    "channels_from_mask",
]
