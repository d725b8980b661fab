"""The counter device and plans against a real flyscan-ioc (the IOC with the host driver
inside) whose driver talks to a scripted device (`sim scripted`): every point it sends is
known, and its faults come on demand (lost points, a restart, a stalled scan, no device)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import FailedStatus, RunEngineInterrupted
from ophyd_async.core import init_devices, wait_for_value
from ophyd_async.epics.motor import Motor

from flyscan_bluesky import (
    FlyScanCounter,
    FlyScanError,
    FlyScanInfo,
    FlyScanTimeout,
    SI311_D_SPACING,
    MonoCalibration,
    ScanDirection,
    exafs_energy_grid,
    fly_counter,
    fly_exafs,
)
from truth import compare_with_truth, load_last_scan

GRID = {"pre_start": -50.0, "pre_step": 10.0, "xanes_step": 2.0, "xanes_end": 30.0,
        "k_step": 0.5, "kmax": 8.0}


@pytest.fixture
def counter(RE, ioc):
    with init_devices():
        dev = FlyScanCounter(ioc, num_channels=8, name="counter")
    return dev


def _error_chain(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _fly_error(excinfo: pytest.ExceptionInfo) -> FlyScanError:
    errs = [e for e in _error_chain(excinfo.value) if isinstance(e, FlyScanError)]
    assert errs, f"no FlyScanError in the failure chain: {_error_chain(excinfo.value)!r}"
    return errs[0]


@pytest.fixture
def no_roles(RE, counter):
    """Clears the channel roles after the test (the IOC keeps them for the later tests)."""
    yield

    async def clear() -> None:
        for n in range(len(counter.roles)):
            await counter.roles[n].set("")

    call_in_bluesky_event_loop(clear())


def test_fly_exafs_documents_match_the_device_points(RE, docs, counter, device, no_roles):
    truth_path = device("ok")
    mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=20_000.0, offset_counts=1000)
    roles = {0: "I0", 1: "It", 3: "If"}
    t0 = time.time()
    RE(fly_exafs(counter, mono, e0=8979.0, grid=GRID, channel_mask=0b1011, roles=roles,
                 element="Cu", edge="K", flush_period=0.05))
    t1 = time.time()
    # Live rows came from the PV Access tail group: no collect re-read the full waveforms.
    assert counter.full_reads == 0, counter._tail.gap_reason  # noqa: SLF001

    energies = exafs_energy_grid(8979.0, **GRID)
    positions = mono.position_list(energies)
    truth, clock = load_last_scan(truth_path)
    # The device reports the presets it received: the list reached it intact.
    assert [p["position"] for p in truth] == positions
    data = docs.stream_data("primary")
    # Roles name the channels' keys; μ follows from them.
    assert counter.channel_keys == {0: "i0", 1: "it", 3: "if"}
    assert sorted(data) == sorted(
        ["counter-i0", "counter-it", "counter-if", "counter-position", "counter-timestamp",
         "counter-live_time", "counter-flags", "counter-energy", "counter-energy_start",
         "counter-energy_centre", "counter-mu_trans", "counter-mu_fluor"]
    )
    assert compare_with_truth(data, truth, "counter", [0, 1, 3], clock, counter.channel_keys) == []
    # The IOC computed the energies from the calibration the plan wrote: the grid's energies,
    # to one count's worth, and exactly Bragg's law at the presets.
    e_end = np.asarray(data["counter-energy"])
    assert np.allclose(e_end, mono.counts_to_energy(positions), rtol=0, atol=1e-6)
    per_count = np.abs(mono.counts_to_energy(np.asarray(positions) + 1) - e_end)
    assert np.all(np.abs(e_end - energies) <= per_count)
    # Bin semantics: the first point's bin began at the arm (partial): no start, no centre, no μ.
    flags = np.asarray(data["counter-flags"])
    assert flags[0] & 16 and not np.any(flags[1:] & 16)
    e_start, e_centre = (np.asarray(data[k]) for k in ("counter-energy_start",
                                                          "counter-energy_centre"))
    assert np.isnan(e_start[0]) and np.isnan(e_centre[0])
    assert np.allclose(e_start[1:], e_end[:-1], atol=1e-6)
    mid = mono.counts_to_energy((np.asarray(positions[1:]) + np.asarray(positions[:-1])) / 2)
    assert np.allclose(e_centre[1:], mid, atol=1e-6)
    i0, it, fl = (np.asarray(data[f"counter-{k}"], dtype=float) for k in ("i0", "it", "if"))
    mu_t, mu_f = np.asarray(data["counter-mu_trans"]), np.asarray(data["counter-mu_fluor"])
    assert np.isnan(mu_t[0]) and np.isnan(mu_f[0])
    ok = (i0[1:] > 0) & (it[1:] > 0)
    assert np.allclose(mu_t[1:][ok], np.log(i0[1:][ok] / it[1:][ok]))
    assert np.allclose(mu_f[1:][i0[1:] > 0], (fl[1:] / i0[1:])[i0[1:] > 0])
    # Every point's reading time stamps are its trigger on the wall clock, spaced as the
    # device's timestamps (bluesky sets the event's own `time` at collection). The scripted
    # device's clock runs faster than the wall clock, so only the spacing and the rough place
    # are checked here; test_chain.py checks the place against the simulator's real-time clock.
    events = docs.stream_events("primary")
    times = np.asarray([e["timestamps"]["counter-i0"] for e in events])
    assert all(len(set(e["timestamps"].values())) == 1 for e in events)
    assert np.all(np.abs(times - t0) < 5.0)
    dev = np.asarray(data["counter-timestamp"])
    assert np.allclose(np.diff(times), np.diff(dev), atol=1e-6)
    (start,) = docs.of("start")
    assert start["plan_name"] == "fly_exafs" and start["positions"] == positions
    assert (start["element"], start["edge"], start["crystal"]) == ("Cu", "K", "Si(111)")
    assert start["d_spacing"] == mono.d_spacing and start["roles"] == {"0": "I0", "1": "It",
                                                                       "3": "If"}
    assert start["hints"]["dimensions"] == [(["counter-energy_centre"], "primary")]
    (desc,) = docs.of("descriptor")
    assert desc["data_keys"]["counter-if"]["source"].endswith(":CH3")
    assert desc["hints"]["counter"]["fields"] == ["counter-mu_trans", "counter-mu_fluor"]
    config = desc["configuration"]["counter"]["data"]
    assert config["counter-mode"] == "List"
    assert config["counter-d_spacing"] == pytest.approx(mono.d_spacing)
    assert config["counter-crystal"] == "Si(111)"
    assert config["counter-roles-3"] == "If"
    # Energies rise while θ falls: with positive counts/degree the encoder runs down.
    assert config["counter-direction"] == "Negative"
    (stop,) = docs.of("stop")
    assert stop["exit_status"] == "success"
    assert stop["num_events"]["primary"] == len(positions)


def test_start_step_count_bidirectional(RE, docs, counter, device):
    truth_path = device("ok")
    info = FlyScanInfo.start_step_count(
        -500, 25, 40, direction=ScanDirection.BIDIRECTIONAL, passes=2, channel_mask=0b100
    )
    RE(fly_counter(counter, info, flush_period=0.05))
    truth, clock = load_last_scan(truth_path)
    expected = [-500 + 25 * i for i in range(40)]
    assert [p["position"] for p in truth] == expected * 2
    data = docs.stream_data()
    assert "counter-ch0" not in data and "counter-ch2" in data
    assert compare_with_truth(data, truth, "counter", [2], clock) == []
    assert docs.of("stop")[0]["num_events"]["primary"] == 80


def test_lost_points_fail_the_plan_with_what_arrived_collected(RE, docs, counter, device):
    device("lost")
    info = FlyScanInfo.start_step_count(0, 10, 50, channel_mask=1)
    with pytest.raises(FailedStatus) as excinfo:
        RE(fly_counter(counter, info, flush_period=0.05))
    err = str(_fly_error(excinfo))
    # The fourth batch of 10 points never came.
    assert "lost 10 points" in err, err
    (stop,) = docs.of("stop")
    assert stop["exit_status"] == "fail"
    # What did arrive was collected before the plan failed (NaN where lost).
    assert stop["num_events"].get("primary", 0) >= 30


def test_a_device_restart_fails_the_plan_within_5_s(RE, docs, counter, device):
    """A restart half way through a list scan: the plan raises at once, naming it."""
    device("restart")
    mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=20_000.0, offset_counts=1000)
    t0 = time.monotonic()
    with pytest.raises(FailedStatus) as excinfo:
        RE(fly_exafs(counter, mono, e0=8979.0, grid=GRID, channel_mask=1, flush_period=0.05))
    took = time.monotonic() - t0
    msg = str(_fly_error(excinfo))
    assert "restarted" in msg, msg
    assert took < 5.0, f"the plan raised after {took:.1f} s"


def test_prepare_refuses_without_a_device(RE, counter, device):
    device("none")
    info = FlyScanInfo.start_step_count(0, 10, 5)
    with pytest.raises(FailedStatus) as excinfo:
        RE(fly_counter(counter, info))
    assert "not connected" in str(_fly_error(excinfo))


def test_timeout_aborts_the_scan(RE, docs, counter, device):
    """A scan that never ends times out; unstaging then writes Abort and the driver stops."""
    device("stall")
    info = FlyScanInfo.start_step_count(0, 10, 50, timeout=1.0)
    with pytest.raises(FailedStatus) as excinfo:
        RE(fly_counter(counter, info, flush_period=0.05))
    timeouts = [e for e in _error_chain(excinfo.value) if isinstance(e, FlyScanTimeout)]
    assert timeouts and "did not end within 1.0 s (25 of 50 points captured)" in str(timeouts[0])

    async def status_after():
        await wait_for_value(counter.arm, False, timeout=10)
        await wait_for_value(counter.status, lambda v: v.value == "Aborted", timeout=10)
        return await counter.status.get_value(), await counter.status_message.get_value()

    status, message = call_in_bluesky_event_loop(status_after())
    assert status.value == "Aborted" and "aborted" in message


def test_fly_exafs_flies_the_mono_motor(RE, docs, counter, device):
    truth_path = device("ok")
    with init_devices(mock=True):
        bragg = Motor("MONO:BRAGG", name="bragg")
    mono = MonoCalibration.for_crystal("Si(311)", counts_per_degree=-5_000.0, offset_counts=0)
    energies = np.linspace(9000.0, 9300.0, 31)
    RE(fly_exafs(counter, mono, e0=8979.0, energies=energies, motor=bragg, duration=5.0,
                 flush_period=0.05))
    truth, _ = load_last_scan(truth_path)
    assert [p["position"] for p in truth] == mono.position_list(energies)
    start = docs.of("start")[0]
    assert start["motors"] == ["bragg"]
    theta_end = float(np.degrees(np.arcsin(12398.419843 / 9300.0 / (2 * SI311_D_SPACING))))
    # The mock motor went to the run-down end past the last energy's angle (θ falls).
    final = call_in_bluesky_event_loop(bragg.user_readback.get_value())
    assert final <= theta_end


def test_kickoff_returns_once_the_device_is_armed(RE, counter, device):
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp

    device("ok")
    seen = {}

    @bpp.run_decorator()
    def plan():
        yield from bps.stage(counter)
        yield from bps.prepare(counter, FlyScanInfo.start_step_count(0, 10, 20), wait=True)
        yield from bps.kickoff(counter, wait=True)
        seen["status"] = (yield from bps.rd(counter.status)).value
        yield from bps.complete(counter, wait=True)
        yield from bps.unstage(counter)

    RE(plan())
    assert seen["status"] in ("Armed", "Scanning", "Done")


def test_prepare_refuses_while_another_scan_runs(RE, counter, device):
    device("stall")

    async def put(signal, value):
        await signal.set(value)

    call_in_bluesky_event_loop(put(counter.arm, True))
    try:
        with pytest.raises(FailedStatus) as excinfo:
            RE(fly_counter(counter, FlyScanInfo.start_step_count(0, 10, 50)))
        assert "already armed or running" in str(_fly_error(excinfo))
    finally:
        call_in_bluesky_event_loop(put(counter.abort, True))
        call_in_bluesky_event_loop(wait_for_value(counter.arm, False, timeout=10))


def test_pause_aborts_the_device_and_resume_flies_the_scan_again(RE, docs, counter, device):
    """RunEngine pause: the device aborts cleanly; resume arms the scan again (no "already
    armed"); the run records the interruption and ends with the whole scan."""
    truth_path = device("slow")
    info = FlyScanInfo.start_step_count(0, 10, 100, channel_mask=1)
    timer = threading.Timer(0.8, RE.request_pause)
    timer.start()
    with pytest.raises(RunEngineInterrupted):
        RE(fly_counter(counter, info, flush_period=0.05))
    timer.cancel()
    assert RE.state == "paused"

    async def after_pause():
        await wait_for_value(counter.arm, False, timeout=10)
        return await counter.status.get_value()

    assert call_in_bluesky_event_loop(after_pause()).value == "Aborted"
    RE.resume()
    (stop,) = docs.of("stop")
    assert stop["exit_status"] == "success"
    truth, clock = load_last_scan(truth_path)
    data = docs.stream_data("primary", as_emitted=True)
    # The events after the interruption are the whole scan, flown again.
    tail = {k: v[-100:] for k, v in data.items()}
    assert compare_with_truth(tail, truth, "counter", [0], clock) == []
    # The stream was declared again at the replay: its second descriptor starts the new pass.
    assert [d["name"] for d in docs.of("descriptor")].count("primary") == 2


def test_a_timed_scan_with_a_window(RE, docs, counter, device):
    """Time mode end to end through the IOC: the period and the window reach the device in its
    clock's ticks, and every point comes back as the device sent it."""
    truth_path = device("ok")
    info = FlyScanInfo.timed(0.002, 40, gate=(-100, 300), channel_mask=0b11)
    RE(fly_counter(counter, info, flush_period=0.05))
    truth, clock = load_last_scan(truth_path)
    assert len(truth) == 40 and clock
    data = docs.stream_data("primary")
    assert data["counter-position"] == [p["position"] for p in truth]
    assert all(-100 <= p <= 300 for p in data["counter-position"])
    assert data["counter-timestamp"] == pytest.approx([p["timestamp"] / clock for p in truth])
    # The device's clock (1 MHz) turned the 2 ms period into 2 000 ticks: points a period apart.
    assert np.allclose(np.diff(data["counter-timestamp"]), 0.002)
    (stop,) = docs.of("stop")
    assert stop["exit_status"] == "success"
    assert counter.full_reads == 0
