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


def test_fly_exafs_documents_match_the_device_points(RE, docs, counter, device):
    truth_path = device("ok")
    mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=20_000.0, offset_counts=1000)
    RE(fly_exafs(counter, mono, e0=8979.0, grid=GRID, channel_mask=0b1011, flush_period=0.05))

    energies = exafs_energy_grid(8979.0, **GRID)
    positions = mono.position_list(energies)
    truth, clock = load_last_scan(truth_path)
    # The device reports the presets it received: the list reached it intact.
    assert [p["position"] for p in truth] == positions
    data = docs.stream_data("primary")
    assert sorted(data) == sorted(
        ["counter-ch0", "counter-ch1", "counter-ch3", "counter-position", "counter-timestamp",
         "counter-live_time", "counter-flags"]
    )
    assert compare_with_truth(data, truth, "counter", [0, 1, 3], clock) == []
    (start,) = docs.of("start")
    assert start["plan_name"] == "fly_exafs" and start["positions"] == positions
    (desc,) = docs.of("descriptor")
    assert desc["data_keys"]["counter-ch3"]["source"].endswith(":CH3")
    assert desc["configuration"]["counter"]["data"]["counter-mode"] == "List"
    # Energies rise while θ falls: with positive counts/degree the encoder runs down.
    assert desc["configuration"]["counter"]["data"]["counter-direction"] == "Negative"
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
    theta_end = float(np.degrees(np.arcsin(12.39842 / 9.3 / (2 * 1.6375))))
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
