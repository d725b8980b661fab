"""Full chain: simulator → firmware → host driver → IOC → this device and the RunEngine.

Run only when the chain is up; these tests read:

* ``FLYSCAN_PREFIX``: PV prefix of the driver's IOC (e.g. ``FLY:``);
* ``EPICS_CA_ADDR_LIST``: where that IOC is (e.g. ``127.0.0.1:5070``);
* ``FLYSCAN_TRUTH``: the simulator's ground truth, JSON lines with keys index, position,
  timestamp, live_time, flags, counts (one line per point; a new scan restarts at index 0);
* optional ``FLYSCAN_CLOCK_HZ``: device clock rate, when the truth's timestamp and live_time
  are in ticks rather than seconds (a ``clock_hz`` key in the truth lines does the same);
* optional ``FLYSCAN_CHAIN_START``/``_STEP``/``_NPOINTS``: presets the simulated axis passes
  (default 1000, 50, 200); ``FLYSCAN_CHAIN_POSITIONS``: a JSON file with the preset list
  (list mode); ``FLYSCAN_CHAIN_DIRECTION``: POSITIVE, NEGATIVE, EITHER or BIDIRECTIONAL.

The simulator is expected to move its axis through the presets once the scan is armed.
Every point of every RunEngine event is compared with the ground truth.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import init_devices
from ophyd_async.epics.core import epics_signal_r

from conftest import ORIGINAL_ENV
from flyscan_bluesky import FlyScanCounter, FlyScanInfo, ScanDirection, fly_counter
from truth import compare_with_truth, load_truth

pytestmark = pytest.mark.chain

TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def chain() -> dict[str, str]:
    missing = [k for k, v in ORIGINAL_ENV.items() if not v]
    if missing:
        pytest.skip(
            f"full-chain test needs {', '.join(missing)} (the host driver, its IOC and the "
            "simulator running); see test_chain.py"
        )
    return {k: str(v) for k, v in ORIGINAL_ENV.items()}


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r} is not an integer") from None


def _clock_hz(truth_path: Path) -> float | None:
    raw = os.environ.get("FLYSCAN_CLOCK_HZ")
    if raw:
        return float(raw)
    with truth_path.open(encoding="utf-8") as f:
        first = f.readline()
    return float(json.loads(first)["clock_hz"]) if first and "clock_hz" in first else None


def last_scan(path: Path, tmp_path: Path) -> list[dict]:
    """The last scan of a truth file that may hold several (each restarts at index 0)."""
    # The simulator ends its file with one {"summary": {...}} line.
    lines = [
        ln
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.strip() and "summary" not in json.loads(ln)
    ]
    starts = [i for i, ln in enumerate(lines) if json.loads(ln).get("index") == 0]
    if not starts:
        raise AssertionError(f"{path} holds no point with index 0")
    part = tmp_path / "last_scan.jsonl"
    part.write_text("\n".join(lines[starts[-1] :]) + "\n", encoding="utf-8")
    return load_truth(part)


@pytest.fixture(scope="module")
def counter(RE, chain):
    prefix = chain["FLYSCAN_PREFIX"]
    probe = epics_signal_r(int, f"{prefix}NumChannels", name="probe")
    call_in_bluesky_event_loop(probe.connect(timeout=10))
    n = call_in_bluesky_event_loop(probe.get_value())
    with init_devices():
        dev = FlyScanCounter(prefix, num_channels=n, name="counter")
    return dev


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    """The simulator writes its truth when it exits (``--exit-when-done``), just after the scan."""
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise AssertionError(f"no ground truth at {path} {timeout_s:.0f} s after the scan")
        time.sleep(0.1)


def _run_and_compare(RE, docs, counter, info, chain, tmp_path):
    RE(fly_counter(counter, info, flush_period=0.2))
    truth_path = Path(chain["FLYSCAN_TRUTH"])
    _wait_for(truth_path)
    truth = last_scan(truth_path, tmp_path)
    data = docs.stream_data("primary")
    assert len(truth) == info.expected_points, "truth file does not hold the whole scan"
    problems = compare_with_truth(data, truth, "counter", info.channels, _clock_hz(truth_path))
    assert problems == [], f"{len(problems)} differences, first: {problems[:10]}"
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_chain_start_step_count(RE, docs, counter, chain, tmp_path):
    n = call_in_bluesky_event_loop(counter.num_channels.get_value())
    info = FlyScanInfo.start_step_count(
        _int_env("FLYSCAN_CHAIN_START", 1000),
        _int_env("FLYSCAN_CHAIN_STEP", 50),
        _int_env("FLYSCAN_CHAIN_NPOINTS", 200),
        direction=ScanDirection[os.environ.get("FLYSCAN_CHAIN_DIRECTION", "EITHER")],
        channel_mask=(1 << n) - 1,
        timeout=TIMEOUT_S,
    )
    _run_and_compare(RE, docs, counter, info, chain, tmp_path)


def test_chain_list_mode(RE, docs, counter, chain, tmp_path):
    listed = os.environ.get("FLYSCAN_CHAIN_POSITIONS")
    if listed:
        # The scenario's own list (an EXAFS k-grid), the presets the simulated axis passes.
        positions = [int(p) for p in json.loads(Path(listed).read_text(encoding="utf-8"))]
    else:
        start = _int_env("FLYSCAN_CHAIN_START", 1000)
        step = _int_env("FLYSCAN_CHAIN_STEP", 50)
        npoints = _int_env("FLYSCAN_CHAIN_NPOINTS", 200)
        # Uneven spacing (as in an EXAFS grid) within the range of the start/step/count scan.
        positions = [start + step * i + (step // 3 if i % 3 == 1 else 0) for i in range(npoints)]
    n = call_in_bluesky_event_loop(counter.num_channels.get_value())
    info = FlyScanInfo.from_positions(
        positions,
        direction=ScanDirection[os.environ.get("FLYSCAN_CHAIN_DIRECTION", "EITHER")],
        channel_mask=(1 << n) - 1,
        timeout=TIMEOUT_S,
    )
    _run_and_compare(RE, docs, counter, info, chain, tmp_path)
