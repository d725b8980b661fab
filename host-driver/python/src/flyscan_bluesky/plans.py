"""Bluesky plans for fly scans with the flyscan counter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import numpy.typing as npt
from bluesky.protocols import Flyable, Preparable
from bluesky.utils import MsgGenerator
from ophyd_async.core import FlyMotorInfo

from .device import FlyScanCounter, FlyScanError, FlyScanInfo, ScanDirection, ScanMode
from .exafs import MonoCalibration, bragg_angle_deg, exafs_energy_grid

#: Name of the event stream the counter's points go to.
STREAM = "primary"

#: Seconds per point assumed when nothing says how fast the axis moves (a slow EXAFS dwell).
DEFAULT_POINT_TIME = 1.0

#: What one point's counts and energies mean (recorded in every run's start document).
BINS = {
    "counts": "pulses from the previous trigger (bin start) to this point's trigger (bin end)",
    "energy": "energy at the trigger: the END of the bin, eV",
    "energy_start": "energy at the bin's start (the previous trigger), eV",
    "energy_centre": "energy at the middle of the bin, eV: the abscissa of mu(E)",
    "partial": (
        "the first point of each pass (flag PASS_START = 16) integrates from the arm or the "
        "turn-around, not from a preset: energy_start/energy_centre and mu are NaN there"
    ),
}


def default_timeout(info: FlyScanInfo, duration: float | None = None) -> float:
    """How long `complete` waits when the plan is given no timeout: twice the scan's expected
    duration (`duration` if the axis move time is known, else `DEFAULT_POINT_TIME` per point)
    plus a minute for arming and list upload."""
    if duration is None:
        # A timed scan without a window takes a period a point; with one, the periods outside
        # it take time too (how much depends on the motion): allow the general figure.
        per_point = (
            info.period
            if info.mode is ScanMode.TIME and info.gate is None
            else max(DEFAULT_POINT_TIME, info.period if info.mode is ScanMode.TIME else 0.0)
        )
        duration = info.expected_points * per_point
    return 2.0 * duration + 60.0


def fly_counter(
    counter: FlyScanCounter,
    info: FlyScanInfo,
    *,
    motor: Any | None = None,
    motor_info: FlyMotorInfo | None = None,
    flush_period: float = 0.5,
    md: Mapping[str, Any] | None = None,
) -> MsgGenerator[None]:
    """One fly scan of `counter` as a run: prepare, kickoff, collect while completing.

    If `motor` (a `Preparable` + `Flyable`, e.g. an ophyd-async `Motor`) is given with its
    `motor_info`, it is prepared alongside the counter and kicked off once the counter is
    armed, so no preset is passed before the counter listens; otherwise the axis is assumed to
    be driven by something else.

    Without a timeout in `info`, `complete` waits `default_timeout` (from the motor's move
    time, when given). Pausing the RunEngine aborts the scan; resuming flies it again from the
    start: the stream is declared again (a second descriptor) and the events after it are the
    repeated scan (set `RE.record_interruptions = True` to have the pause recorded too).

    :raises FlyScanError: (inside the plan) as soon as the scan fails or loses points (after
        collecting what arrived), when it ends Aborted, or when fewer points are collected than
        the scan was prepared for.
    """
    if (motor is None) != (motor_info is None):
        raise ValueError("give both motor and motor_info, or neither")
    if motor is not None and not (isinstance(motor, Preparable) and isinstance(motor, Flyable)):
        raise TypeError(f"{motor!r} must be Preparable and Flyable to fly the axis")
    flyers = [counter] if motor is None else [counter, motor]
    if info.timeout is None:
        move = None if motor_info is None else float(motor_info.time_for_move)
        info = info.model_copy(update={"timeout": default_timeout(info, move)})
    _md = {
        "plan_name": "fly_counter",
        "detectors": [counter.name],
        "motors": [] if motor is None else [motor.name],
        "num_points": info.expected_points,
        "fly_scan": info.model_dump(mode="json", exclude={"positions"}),
        # Bin semantics of every point, for readers of the stored run.
        "bins": BINS,
        "hints": {"dimensions": [([f"{counter.name}-energy_centre"], STREAM)]},
    }
    _md.update(md or {})

    @bpp.stage_decorator(flyers)
    @bpp.run_decorator(md=_md)
    def inner() -> MsgGenerator[None]:
        # A pause rewinds to here: the device was aborted, the scan is flown again.
        yield from bps.checkpoint()
        yield from bps.prepare(counter, info, group="prepare")
        if motor is not None:
            yield from bps.prepare(motor, motor_info, group="prepare")
        yield from bps.wait(group="prepare")
        yield from bps.declare_stream(counter, name=STREAM, collect=True)
        # Arm first: the counter must listen before the axis crosses the first preset.
        yield from bps.kickoff(counter, wait=True)
        if motor is not None:
            yield from bps.kickoff(motor, wait=True)
        try:
            yield from bps.collect_while_completing(
                flyers, [counter], flush_period=flush_period, stream_name=STREAM
            )
        except Exception:
            # The scan failed: keep what arrived, then report.
            yield from bps.collect(counter, name=STREAM)
            raise
        if counter.collected_points != info.expected_points:
            raise FlyScanError(
                f"{counter.name}: collected {counter.collected_points} points, "
                f"scan was prepared for {info.expected_points}"
            )

    return (yield from inner())


def fly_exafs(
    counter: FlyScanCounter,
    mono: MonoCalibration,
    e0: float,
    *,
    energies: npt.ArrayLike | None = None,
    grid: Mapping[str, float] | None = None,
    channel_mask: int = 1,
    roles: Mapping[int, str] | None = None,
    element: str | None = None,
    edge: str | None = None,
    motor: Any | None = None,
    duration: float | None = None,
    timeout: float | None = None,
    flush_period: float = 0.5,
    md: Mapping[str, Any] | None = None,
) -> MsgGenerator[None]:
    """Fly an EXAFS scan: the counter latches one point at each energy of the grid.

    Builds the energy grid (`exafs_energy_grid(e0, **grid)` unless `energies` is given),
    converts it to monochromator encoder counts with `mono`, writes that calibration (and the
    channel `roles`, if given) to the IOC so its `Energy` waveforms use it, arms the counter in
    list mode with the direction the encoder moves in, and (if `motor` is given) flies the Bragg
    axis (in degrees) through the grid in `duration` seconds.

    The start document records the element, edge, E0, crystal, d-spacing, calibration, roles,
    grid, energies and presets; the live plot shows μ against the bins' centre energy.

    :param counter: the flyscan counter.
    :param mono: crystal d-spacing and encoder calibration of the monochromator.
    :param e0: edge energy, eV.
    :param energies: explicit energies (eV, strictly monotonic) instead of a generated grid.
    :param grid: keyword arguments for `exafs_energy_grid` (pre_start, xanes_step, kmax, …).
    :param channel_mask: enabled counter channels, bit N = channel N (`$(P)CH<N>`).
    :param roles: role per channel to write to `CH<N>:Role` (``{0: "I0", 1: "It", 2: "If",
        3: "Iref"}``); None keeps the IOC's.
    :param element: absorbing element for the metadata (e.g. ``"Cu"``).
    :param edge: absorption edge for the metadata (e.g. ``"K"``).
    :param motor: optional Bragg-axis flyer (ophyd-async `Motor` in degrees).
    :param duration: seconds for the motor to cross the grid (required with `motor`).
    :param timeout: longest wait for the scan to end, seconds (None: `default_timeout`, from
        `duration` when given).
    :param flush_period: seconds between live collects while the scan runs.
    :param md: extra start-document metadata.

    Example (Cu K edge on a Si(111) monochromator, 10 000 counts per degree)::

        from bluesky import RunEngine
        from ophyd_async.core import init_devices
        from flyscan_bluesky import FlyScanCounter, MonoCalibration, fly_exafs

        RE = RunEngine()
        with init_devices():
            counter = FlyScanCounter("FLY:", num_channels=8)
        mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=10_000)
        RE(fly_exafs(counter, mono, e0=8979.0, grid={"kmax": 12.0}, channel_mask=0b111))
    """
    e = exafs_energy_grid(e0, **(grid or {})) if energies is None else np.asarray(energies, float)
    positions = mono.position_list(e)
    direction = ScanDirection.POSITIVE if positions[-1] > positions[0] else ScanDirection.NEGATIVE
    info = FlyScanInfo.from_positions(
        positions, direction=direction, channel_mask=channel_mask, timeout=timeout,
        calibration=mono, roles=roles,
    )
    if timeout is None:
        info = info.model_copy(update={"timeout": default_timeout(info, duration)})
    motor_info = None
    if motor is not None:
        if duration is None or not duration > 0:
            raise ValueError("flying the mono motor needs duration > 0 s")
        theta = bragg_angle_deg(e[[0, -1]], mono.d_spacing)
        motor_info = FlyMotorInfo(
            start_position=float(theta[0]), end_position=float(theta[1]), time_for_move=duration
        )
    _md: dict[str, Any] = {
        "plan_name": "fly_exafs",
        "e0": float(e0),
        "crystal": mono.crystal,
        "d_spacing": mono.d_spacing,
        "counts_per_degree": mono.counts_per_degree,
        "offset_counts": mono.offset_counts,
        "grid": {k: float(v) for k, v in (grid or {}).items()} if energies is None else None,
        "energies": [float(v) for v in e],
        "positions": positions,
    }
    if element is not None:
        _md["element"] = element
    if edge is not None:
        _md["edge"] = edge
    if roles is None:
        # Record the roles the IOC has for the enabled channels.
        enabled = [n for n in range(len(counter.roles)) if channel_mask >> n & 1]
        roles = {}
        for n in enabled:
            roles[n] = yield from bps.rd(counter.roles[n])
        _md["roles"] = {str(ch): r for ch, r in roles.items()}
    else:
        _md["roles"] = {str(ch): r for ch, r in roles.items()}
    _md.update(md or {})
    return (
        yield from fly_counter(
            counter, info, motor=motor, motor_info=motor_info, flush_period=flush_period, md=_md
        )
    )
