"""Ground truth (JSON lines, one point per line) and its comparison with collected documents."""

from __future__ import annotations

import json
import math
from pathlib import Path

TRUTH_KEYS = {"index", "position", "timestamp", "live_time", "flags", "counts"}


def load_truth(path: Path) -> list[dict]:
    """Points of a ground-truth file, sorted by index.

    :raises ValueError: on a malformed line, a missing key, or indices that are not 0..n-1.
    """
    points = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            pt = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not JSON: {e}") from e
        missing = TRUTH_KEYS - set(pt)
        if missing:
            raise ValueError(f"{path}:{lineno}: missing keys {sorted(missing)}")
        points.append(pt)
    points.sort(key=lambda p: p["index"])
    if [p["index"] for p in points] != list(range(len(points))):
        raise ValueError(f"{path}: indices are not 0..{len(points) - 1}")
    return points


def load_last_scan(path: Path) -> tuple[list[dict], float | None]:
    """The points of the last scan in a truth file that holds several (each line carries its
    `scan_id`), and the device clock of its ticks (`clock_hz`, if the lines give it)."""
    lines = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: no points")
    last = lines[-1].get("scan_id")
    points = [p for p in lines if p.get("scan_id") == last]
    points.sort(key=lambda p: p["index"])
    if [p["index"] for p in points] != list(range(len(points))):
        raise ValueError(f"{path}: indices of scan {last} are not 0..{len(points) - 1}")
    clock = points[0].get("clock_hz")
    return points, (float(clock) if clock else None)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def compare_with_truth(
    data: dict[str, list],
    truth: list[dict],
    name: str,
    channels: list[int],
    clock_hz: float | None = None,
    keys: dict[int, str] | None = None,
) -> list[str]:
    """Every difference between collected `data` (key → per-point values) and `truth`.

    Truth `counts` hold the enabled channels in channel order (the wire format), or all
    channels (then indexed by the 0-based channel number). Truth `timestamp`/`live_time` are
    seconds, or device ticks when `clock_hz` is given; timestamps are compared relative to the
    first point, because the published time base may start at the scan, not at power-up.
    Channel N's data key is ``<name>-<keys[N]>`` (the device's `channel_keys`, from the roles),
    ``<name>-ch<N>`` when `keys` is None.
    """
    scale = 1.0 / clock_hz if clock_hz else 1.0
    problems: list[str] = []
    n = len(data[f"{name}-position"])
    if n != len(truth):
        problems.append(f"collected {n} points, truth has {len(truth)}")
    t0_doc = data[f"{name}-timestamp"][0] if n else 0.0
    t0_truth = truth[0]["timestamp"] * scale if truth else 0.0
    for i, pt in enumerate(truth[:n]):
        got = {
            "position": data[f"{name}-position"][i],
            "flags": data[f"{name}-flags"][i],
            "live_time": data[f"{name}-live_time"][i],
            "timestamp": data[f"{name}-timestamp"][i] - t0_doc,
        }
        if got["position"] != pt["position"]:
            problems.append(f"point {i}: position {got['position']} != {pt['position']}")
        if got["flags"] != pt["flags"]:
            problems.append(f"point {i}: flags {got['flags']} != {pt['flags']}")
        if not _close(got["live_time"], pt["live_time"] * scale):
            problems.append(f"point {i}: live_time {got['live_time']} != {pt['live_time'] * scale}")
        if not _close(got["timestamp"], pt["timestamp"] * scale - t0_truth):
            problems.append(
                f"point {i}: timestamp (from first) {got['timestamp']} != "
                f"{pt['timestamp'] * scale - t0_truth}"
            )
        counts = pt["counts"]
        for k, ch in enumerate(channels):
            if len(counts) == len(channels):
                want = counts[k]
            elif ch < len(counts):
                want = counts[ch]
            else:
                problems.append(f"point {i}: truth has {len(counts)} counts, no channel {ch}")
                continue
            key = keys[ch] if keys is not None else f"ch{ch}"
            have = data[f"{name}-{key}"][i]
            if have != want:
                problems.append(f"point {i}: ch{ch} {have} != {want}")
    return problems
