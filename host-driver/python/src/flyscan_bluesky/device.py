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
import math
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Self

import numpy as np
from bluesky.protocols import EventPageCollectable, Hints, PartialEventPage
from event_model import DataKey
from ophyd_async.core import (
    Array1D,
    ConfinedModel,
    DeviceVector,
    FlyableLogic,
    StandardFlyable,
    StandardReadable,
    StandardReadableFormat,
    StrictEnum,
    WatchableAsyncStatus,
    WatcherUpdate,
    observe_value,
    wait_for_value,
)
from ophyd_async.epics.core import epics_signal_r, epics_signal_rw, epics_signal_w
from pydantic import Field, field_validator, model_validator

from .exafs import MonoCalibration
from .tail import TailFeed

#: Largest channel count the wire protocol allows (the channel mask is 32 bits).
MAX_CHANNELS = 32

#: Flag bit of the first point of each pass: its bin began at the arm or at the turn-around,
#: not at a preset, so it is partial and kept out of μ(E).
PASS_START = 16

#: Detector roles of the XAS set-up (`$(P)CH<N>:Role`), with their data-key names and XDI
#: column names: incident, transmitted, fluorescence and reference-foil intensities.
ROLES: dict[str, tuple[str, str]] = {
    "I0": ("i0", "i0"),
    "It": ("it", "itrans"),
    "If": ("if", "ifluor"),
    "Iref": ("iref", "irefer"),
}

#: Derived absorption keys: name → (numerator role, denominator role, log?). μ is NaN for
#: partial bins (PASS_START) and where a count is not positive.
MU_KEYS: dict[str, tuple[str, str, bool]] = {
    "mu_trans": ("I0", "It", True),
    "mu_fluor": ("If", "I0", False),
    "mu_ref": ("It", "Iref", True),
}

#: Data keys of the per-point waveforms besides the channels, with their PV names.
_WAVEFORM_KEYS = ("position", "timestamp", "live_time", "flags", "energy", "energy_start",
                  "energy_centre")


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
    TIME = "Time"


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

    Build it with `start_step_count`, `from_positions` or `timed` rather than by hand.
    """

    mode: ScanMode = Field(frozen=True)
    """Start/step/count presets, an explicit list, or points at a fixed period."""
    start: int = Field(default=0, frozen=True)
    """First preset, encoder counts (start/step/count mode)."""
    step: int = Field(default=1, frozen=True)
    """Distance between presets, encoder counts, non-zero (start/step/count mode)."""
    npoints: int = Field(gt=0, frozen=True)
    """Presets per pass (the list length in list mode)."""
    positions: tuple[int, ...] = Field(default=(), frozen=True)
    """Explicit presets, encoder counts (list mode)."""
    period: float = Field(default=0.001, gt=0, frozen=True)
    """Seconds between points (time mode; at least 10 µs, rounded to the device clock)."""
    gate: tuple[int, int] | None = Field(default=None, frozen=True)
    """Time mode: points only while the position is in this window (low, high), encoder
    counts, edges included; None takes every period."""
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
    calibration: MonoCalibration | None = Field(default=None, frozen=True)
    """Monochromator calibration to write to `DSpacing`, `CountsPerDegree`, `AngleOffset`,
    `Crystal` in `prepare` (None: leave the IOC's as they are)."""
    roles: Mapping[int, str] | None = Field(default=None, frozen=True)
    """Role per channel number to write to `CH<N>:Role` in `prepare` (e.g. ``{0: "I0",
    1: "It"}``; "" clears one); None leaves them as they are."""

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, v: Mapping[int, str] | None) -> Mapping[int, str] | None:
        if v is None:
            return v
        for ch, role in v.items():
            if not 0 <= ch < MAX_CHANNELS:
                raise ValueError(f"role for channel {ch}: channels are 0..{MAX_CHANNELS - 1}")
            if len(role) > 39:
                raise ValueError(f"role {role!r} of channel {ch} is longer than 39 characters")
        return dict(v)

    @model_validator(mode="after")
    def _check_consistent(self) -> Self:
        if self.mode is ScanMode.START_STEP_COUNT and self.step == 0:
            raise ValueError("step must not be 0 in start/step/count mode")
        if self.mode is ScanMode.LIST and len(self.positions) != self.npoints:
            raise ValueError(
                f"list mode needs npoints == len(positions), got {self.npoints} "
                f"and {len(self.positions)}"
            )
        if self.mode is not ScanMode.LIST and self.positions:
            raise ValueError("positions are only used in list mode")
        if self.gate is not None and (
            self.mode is not ScanMode.TIME or self.gate[1] <= self.gate[0]
        ):
            raise ValueError(
                f"a gate (low, high) with high > low is for time mode only, got {self.gate}"
            )
        if self.mode is ScanMode.TIME and self.passes != 1:
            raise ValueError("time mode takes one pass")
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

    @classmethod
    def timed(
        cls,
        period: float,
        npoints: int,
        gate: tuple[int, int] | None = None,
        **kwargs: object,
    ) -> FlyScanInfo:
        """A point every `period` seconds wherever the axis is (a quick-EXAFS scan, binned by
        angle afterwards), `npoints` of them; with `gate` = (low, high) only while the position
        is in that window (extra fields by keyword)."""
        return cls(mode=ScanMode.TIME, period=period, npoints=npoints, gate=gate, **kwargs)

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
        elif value.mode is ScanMode.TIME:
            low, high = value.gate or (0, 0)
            writes += [d.period.set(value.period), d.gate_low.set(low), d.gate_high.set(high)]
        else:
            writes += [d.start.set(value.start), d.step.set(value.step)]
        if value.calibration is not None:
            cal = value.calibration
            writes += [
                d.d_spacing.set(cal.d_spacing),
                d.counts_per_degree.set(cal.counts_per_degree),
                d.angle_offset.set(cal.offset_counts),
                d.crystal.set(cal.crystal),
            ]
        for ch, role in (value.roles or {}).items():
            if ch >= len(d.roles):
                raise FlyScanError(
                    f"{d.name}: a role for channel {ch}, but the device has {len(d.roles)}"
                )
            writes.append(d.roles[ch].set(role))
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
        # A new scan starts a new event sequence, clock map and tail feed (subscribed before
        # the arm, so that every later update is this scan's).
        await d._new_scan()  # noqa: SLF001
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
        d.end_live_feed()
        if await d.arm.get_value():
            await d.abort.set(True)


def role_key(role: str) -> str:
    """Data-key name of a role: ``i0``, ``it``, ``if``, ``iref`` for the XAS roles, the role
    lower-cased with non-alphanumerics as ``_`` otherwise, ``""`` for no role."""
    if role in ROLES:
        return ROLES[role][0]
    return re.sub(r"[^0-9a-z]+", "_", role.strip().lower()).strip("_")


def channel_keys(roles: Mapping[int, str]) -> dict[int, str]:
    """Data-key suffix of each channel from its role: the role's key (`role_key`) when only
    one channel has it, ``<role>_ch<N>`` when several do, ``ch<N>`` without a role."""
    base = {n: role_key(r) for n, r in roles.items()}
    taken = [k for k in base.values() if k]
    reserved = set(_WAVEFORM_KEYS) | set(MU_KEYS)
    out = {}
    for n, k in base.items():
        if not k:
            out[n] = f"ch{n}"
        elif taken.count(k) > 1 or k in reserved or re.fullmatch(r"ch\d+", k):
            out[n] = f"{k}_ch{n}"
        else:
            out[n] = k
    return out


def absorption(
    counts: Mapping[str, np.ndarray], flags: np.ndarray
) -> dict[str, np.ndarray]:
    """μ per point from counts by role (``"I0"``, ``"It"``, ``"If"``, ``"Iref"`` → counts):
    ``mu_trans`` = ln(I0/It), ``mu_fluor`` = If/I0, ``mu_ref`` = ln(It/Iref), each where its
    two roles are present. Partial bins (flag `PASS_START`) and non-positive counts give NaN."""
    whole = (np.asarray(flags, dtype=np.int64) & PASS_START) == 0
    out: dict[str, np.ndarray] = {}
    for key, (num, den, log) in MU_KEYS.items():
        if num not in counts or den not in counts:
            continue
        a = np.asarray(counts[num], dtype=np.float64)
        b = np.asarray(counts[den], dtype=np.float64)
        ok = whole & (a > 0) & (b > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ok, a / np.where(ok, b, 1.0), np.nan)
            out[key] = np.log(ratio) if log else ratio
    return out


@dataclass
class _ClockMap:
    """Maps device time to the wall clock for one scan: epoch = device time + offset.

    Every update of `$(P)Tail:Timestamp` (posted each tick with the newest points) gives an
    upper bound of the offset: the IOC's time stamp of the update minus the device time of its
    newest point. The smallest one seen before the first points are emitted is kept for the
    whole scan, so the events' times keep the device's exact spacing; its error is the
    fastest update's latency (one driver tick plus the line, a few ms to tens of ms).
    """

    since: float = 0.0
    best: float = math.inf
    offset: float | None = None
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def sample(self, wall: float, device_times: np.ndarray) -> None:
        if self.offset is not None or wall < self.since or device_times.size == 0:
            return
        newest = float(np.nanmax(device_times)) if np.any(np.isfinite(device_times)) else None
        if newest is None:
            return
        self.best = min(self.best, wall - newest)
        self.samples += 1


class FlyScanCounter(
    StandardFlyable[FlyScanInfo, FlyScanCtx], StandardReadable, EventPageCollectable
):
    """The flyscan counter behind `$(P)…` PVs of the host driver's IOC.

    :param prefix: PV prefix, e.g. ``"FLY:"``.
    :param num_channels: channels the IOC serves (`$(P)CH0` … `$(P)CH<n-1>`).
    :param name: device name.

    Data keys (one event per point): ``<name>-<role>`` per enabled channel (counts; the
    channel's `CH<N>:Role` gives ``i0``, ``it``, ``if``, ``iref``, or ``ch<N>`` without a role,
    see `channel_keys`), ``-position`` (encoder counts at the trigger), ``-energy`` (eV at the
    trigger = the END of the point's bin), ``-energy_start`` (the bin's start = the previous
    trigger) and ``-energy_centre`` (its middle; both NaN for the first point of a pass, whose
    bin began at the arm), ``-timestamp`` (device time at the trigger, s), ``-live_time``,
    ``-flags`` (bit 16 = PASS_START: a partial bin), and μ where the roles allow:
    ``-mu_trans`` = ln(I0/It), ``-mu_fluor`` = If/I0, ``-mu_ref`` = ln(It/Iref) (NaN for partial
    bins). Every reading's time stamp (the events' ``timestamps``) is the point's trigger on
    the wall clock (see `_ClockMap`); bluesky sets the events' own ``time`` when it collects.
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
        self.energy = epics_signal_r(Array1D[np.float64], f"{prefix}Energy")
        self.energy_start = epics_signal_r(Array1D[np.float64], f"{prefix}EnergyStart")
        self.energy_centre = epics_signal_r(Array1D[np.float64], f"{prefix}EnergyCentre")
        # The newest points' device times, posted every tick: maps device time to wall time.
        self.tail_timestamp = epics_signal_r(Array1D[np.float64], f"{prefix}Tail:Timestamp")
        # Scan bookkeeping and health.
        self.num_captured = epics_signal_r(int, f"{prefix}NumCaptured")
        self.num_expected = epics_signal_r(int, f"{prefix}NumExpected")
        # Points in the full waveforms (their final length once the scan has ended).
        self.num_shown = epics_signal_r(int, f"{prefix}NumShown")
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
            # Time mode: the period and the position window.
            self.period = epics_signal_rw(float, f"{prefix}Period")
            self.gate_low = epics_signal_rw(int, f"{prefix}GateLow")
            self.gate_high = epics_signal_rw(int, f"{prefix}GateHigh")
            self.direction = epics_signal_rw(ScanDirection, f"{prefix}Direction")
            self.passes = epics_signal_rw(int, f"{prefix}Passes")
            self.channel_mask = epics_signal_rw(int, f"{prefix}ChannelMask")
            self.encoding = epics_signal_rw(PointEncoding, f"{prefix}Encoding")
            # Monochromator calibration: the driver computes Energy* from it.
            self.d_spacing = epics_signal_rw(float, f"{prefix}DSpacing")
            self.counts_per_degree = epics_signal_rw(float, f"{prefix}CountsPerDegree")
            self.angle_offset = epics_signal_rw(float, f"{prefix}AngleOffset")
            self.crystal = epics_signal_rw(str, f"{prefix}Crystal")
            self.roles = DeviceVector(
                {n: epics_signal_rw(str, f"{prefix}CH{n}:Role") for n in range(num_channels)}
            )
        self.positions = epics_signal_rw(Array1D[np.float64], f"{prefix}Positions")
        self.arm = epics_signal_rw(bool, f"{prefix}Arm")
        self.abort = epics_signal_w(bool, f"{prefix}Abort")
        # Points already emitted by collect_pages for the current scan.
        self._collected = 0
        # Channels named by the last describe_collect, so collect emits exactly those keys.
        self._described_channels: list[int] | None = None
        self._keys: dict[int, str] = {}
        self._roles: dict[int, str] = {}
        self._clock = _ClockMap()
        self._watching_tail = False
        # Live rows from the PV Access group $(P)Tail (None: not available; full waveforms).
        self._tail = TailFeed(f"{prefix}Tail")
        self._tail_live = False
        # Set once complete() has seen the scan end: the next collect is the last.
        self._scan_over = False
        #: Collects that read the full waveforms (no live feed, or it missed points).
        self.full_reads = 0
        super().__init__(name=name)

    async def _new_scan(self) -> None:
        """Called at kickoff, before the arm: a new event sequence, a new device → wall clock
        map fed by the tail's updates from now on, and the tail feed emptied."""
        self._collected = 0
        self._scan_over = False
        self._clock = _ClockMap(since=time.time())
        if not self._watching_tail:
            self.tail_timestamp.subscribe_reading(self._on_tail)
            self._watching_tail = True
        self._tail_live = await self._tail.start()

    def _on_tail(self, reading: dict[str, Any]) -> None:
        for r in reading.values():
            self._clock.sample(float(r["timestamp"]), np.asarray(r["value"], dtype=np.float64))

    async def pause(self) -> None:
        """Called by the RunEngine when it pauses: the scan is aborted (see
        `FlyScanLogic.pause`); resume flies it again from the plan's checkpoint."""
        self.end_live_feed()
        await self.flyable_logic.pause()

    async def resume(self) -> None:
        """Called by the RunEngine when it resumes: nothing to do here; the plan flies the scan
        again from its checkpoint (prepare already wrote the configuration)."""

    @property
    def collected_points(self) -> int:
        """Points emitted by `collect_pages` since the last kickoff."""
        return self._collected

    @property
    def channel_keys(self) -> dict[int, str]:
        """Data key (without the ``<name>-`` prefix) of each channel in the last
        `describe_collect`, by channel number."""
        return dict(self._keys)

    @property
    def channel_roles(self) -> dict[int, str]:
        """Role of each channel in the last `describe_collect` ("" for none)."""
        return dict(self._roles)

    @property
    def clock_offset(self) -> float | None:
        """Wall time (Unix s) minus device time of the current scan, once fixed."""
        return self._clock.offset

    @cached_property
    def flyable_logic(self) -> FlyScanLogic:
        """Prepare/kickoff/complete logic over this device's PVs."""
        return FlyScanLogic(device=self)

    @WatchableAsyncStatus.wrap
    async def complete(self) -> AsyncIterator[WatcherUpdate[int]]:
        """Wait for the scan's end (`FlyScanLogic.on_complete`), reporting the points captured
        so far to watchers — the RunEngine's progress bar."""
        completing = super().complete()
        expected = max(await self.num_expected.get_value(), 0)
        async for captured in observe_value(self.num_captured, done_status=completing):
            target = max(expected, await self.num_expected.get_value())
            yield WatcherUpdate(
                name=self.name, current=captured, initial=0, target=target, unit="points",
                precision=0,
            )
        try:
            await completing
        except BaseException:
            # A failed scan collects what arrived from the full waveforms (final by now).
            self.end_live_feed()
            raise
        finally:
            self._scan_over = True

    def _key(self, field_name: str) -> str:
        return f"{self.name}-{field_name}"

    async def describe_collect(self) -> dict[str, DataKey]:
        """One scalar data key per enabled channel (named by its role), position, energies,
        timestamp, live time, flags, and μ where the roles allow it."""
        mask, n_channels = await asyncio.gather(
            self.channel_mask.get_value(), self.num_channels.get_value()
        )
        channels = channels_from_mask(mask, min(n_channels, len(self.channels)))
        roles = await asyncio.gather(*(self.roles[n].get_value() for n in channels))
        self._described_channels = channels
        self._roles = {n: r.strip() for n, r in zip(channels, roles, strict=True)}
        self._keys = channel_keys(self._roles)
        keys: dict[str, DataKey] = {}
        for n in channels:
            keys[self._key(self._keys[n])] = DataKey(
                source=self.channels[n].source, dtype="integer", shape=[],
                dtype_numpy="<i8", units="counts",
            )
        keys[self._key("position")] = DataKey(
            source=self.position.source, dtype="integer", shape=[], dtype_numpy="<i8",
            units="encoder counts",
        )
        for k, sig in (("energy", self.energy), ("energy_start", self.energy_start),
                       ("energy_centre", self.energy_centre)):
            keys[self._key(k)] = DataKey(
                source=sig.source, dtype="number", shape=[], dtype_numpy="<f8", units="eV"
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
        present = set(self._roles.values())
        for k, (num, den, _) in MU_KEYS.items():
            if num in present and den in present:
                keys[self._key(k)] = DataKey(
                    source=f"derived:{num},{den}", dtype="number", shape=[], dtype_numpy="<f8",
                    units="",
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
        start = self._collected
        if self._tail_live and self._scan_over:
            # The scan ended (seen over CA); its last tail update comes over PV Access and may
            # still be on its way: wait for it, or take the rest from the full waveforms,
            # which are final now.
            final = await self.num_shown.get_value()
            if not await self._tail.wait_for(final, timeout=2.0):
                self._tail.give_up(f"the tail stopped at {self._tail.frontier} of {final}")
        rows = None
        if self._tail_live and not self._tail.has_gap and self._tail.frontier > start:
            rows = self._tail.take(start, self._tail.frontier, channels)
            if rows is None:
                self._tail.give_up(f"the tail does not hold points {start}…{self._tail.frontier}")
        if rows is not None:
            arrays = [
                rows["position"],
                rows["timestamp"],
                rows["live_time"],
                rows["flags"],
                rows["energy"],
                rows["energy_start"],
                rows["energy_centre"],
                *(rows[f"ch{n}"] for n in channels),
            ]
            async for page in self._pages(channels, arrays, start):
                yield page
            self._tail.drop_before(self._collected)
            self._close_tail_when_over()
            return
        if self._tail_live and not self._tail.has_gap:
            # Nothing new in the tail yet.
            return
        # No live feed, or it missed an update: the full waveforms (as far as published).
        self.full_reads += 1
        arrays = await asyncio.gather(
            self.position.get_value(),
            self.timestamp.get_value(),
            self.live_time.get_value(),
            self.flags.get_value(),
            self.energy.get_value(),
            self.energy_start.get_value(),
            self.energy_centre.get_value(),
            *(self.channels[n].get_value() for n in channels),
        )
        end = min(len(a) for a in arrays)
        if end <= start:
            return
        async for page in self._pages(channels, [a[start:end] for a in arrays], start):
            yield page
        if self._tail_live and self._collected >= self._tail.frontier:
            # Caught up past the hole: the tail carries on from here.
            self._tail.resume_at(self._collected)
        self._close_tail_when_over()

    def _close_tail_when_over(self) -> None:
        """After the scan's last collect the subscription ends (the next kickoff opens one)."""
        if self._scan_over:
            self.end_live_feed()

    def end_live_feed(self) -> None:
        """Ends the live feed: collects read the full waveforms until the next kickoff."""
        self._tail.close()
        self._tail_live = False

    async def _pages(
        self, channels: list[int], arrays: list[np.ndarray], start: int
    ) -> AsyncIterator[PartialEventPage]:
        """The page of rows ``start`` … (``arrays`` hold them from ``start`` on)."""
        end = start + min(len(a) for a in arrays)
        # A lost point (NaN) and what follows it wait: complete() reports the loss.
        lost = np.flatnonzero(~np.isfinite(np.asarray(arrays[0], dtype=np.float64)))
        if lost.size:
            end = start + int(lost[0])
        if end <= start:
            return
        n = end - start
        position, timestamp, live_time, flags, energy, e_start, e_centre, *counts = (
            np.asarray(a[:n]) for a in arrays
        )
        offset = await self._fix_clock(timestamp)
        data: dict[str, list] = {
            self._key("position"): _as_ints(position, self.position.source),
            self._key("energy"): [float(v) for v in energy],
            self._key("energy_start"): [float(v) for v in e_start],
            self._key("energy_centre"): [float(v) for v in e_centre],
            self._key("timestamp"): [float(v) for v in timestamp],
            self._key("live_time"): [float(v) for v in live_time],
            self._key("flags"): _as_ints(flags, self.flags.source),
        }
        by_role: dict[str, np.ndarray] = {}
        for n, c in zip(channels, counts, strict=True):
            data[self._key(self._keys[n])] = _as_ints(c, self.channels[n].source)
            by_role.setdefault(self._roles.get(n, ""), c)
        for k, mu in absorption(by_role, flags).items():
            data[self._key(k)] = [float(v) for v in mu]
        wall = [float(t) + offset for t in timestamp]
        self._collected = end
        # The bundler stamps the page's `time` itself; the readings carry the trigger times.
        yield PartialEventPage(data=data, timestamps={k: wall for k in data}, time=wall)

    async def _fix_clock(self, device_times: np.ndarray) -> float:
        """The scan's device → wall offset, fixed at the first collect that has points."""
        clock = self._clock
        if clock.offset is None:
            if clock.samples == 0:
                # No tail update seen yet: the full Timestamp waveform's own time stamp.
                reading = await self.timestamp.read(cached=False)
                clock.sample(
                    float(reading[self.timestamp.name]["timestamp"]), np.asarray(device_times)
                )
            clock.offset = clock.best if math.isfinite(clock.best) else time.time() - float(
                np.nanmax(device_times)
            )
        return clock.offset

    @property
    def hints(self) -> Hints:
        """Plot μ (transmission, fluorescence, reference) when the roles allow it, else the
        enabled channels; plans put ``-energy_centre`` as the plot's x axis."""
        present = set(self._roles.values())
        mu = [self._key(k) for k, (a, b, _) in MU_KEYS.items() if a in present and b in present]
        if mu:
            return Hints(fields=mu)
        channels = self._described_channels or [0]
        return Hints(fields=[self._key(self._keys.get(n, f"ch{n}")) for n in channels])


def _as_ints(values: np.ndarray, source: str) -> list[int]:
    """Waveform elements that carry integers (counts, positions, flags) as Python ints.

    CA has no 64-bit integer type, so the IOC serves them as doubles; a fractional or
    non-finite element means the PV does not hold what the driver should have written.
    """
    if not np.all(np.isfinite(values)) or np.any(values != np.rint(values)):
        raise FlyScanError(f"{source} holds non-integer values where whole counts are expected")
    return [int(v) for v in values]


__all__ = [
    "MU_KEYS",
    "PASS_START",
    "ROLES",
    "absorption",
    "channel_keys",
    "role_key",
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
