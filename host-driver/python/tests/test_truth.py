"""The ground-truth comparison used by the device and full-chain tests finds each kind of error."""

from __future__ import annotations

import copy
import json

import pytest

from truth import compare_with_truth, load_truth

CLOCK = 1_000_000.0


def _truth() -> list[dict]:
    return [
        {"index": i, "position": 100 + 10 * i, "timestamp": 5_000_000 + 2000 * i,
         "live_time": 1500 + i, "flags": i % 2, "counts": [i, 10 * i, 100 * i]}
        for i in range(5)
    ]


def _data(truth: list[dict], channels: list[int]) -> dict[str, list]:
    """What the documents hold for `truth` (ticks → seconds; published time starts at 7 s)."""
    data = {
        "c-position": [p["position"] for p in truth],
        "c-flags": [p["flags"] for p in truth],
        "c-live_time": [p["live_time"] / CLOCK for p in truth],
        "c-timestamp": [7.0 + (p["timestamp"] - truth[0]["timestamp"]) / CLOCK for p in truth],
    }
    for k, ch in enumerate(channels):
        data[f"c-ch{ch}"] = [p["counts"][k] for p in truth]
    return data


def test_identical_data_has_no_problems():
    truth = _truth()
    assert compare_with_truth(_data(truth, [0, 1, 2]), truth, "c", [0, 1, 2], CLOCK) == []


@pytest.mark.parametrize(
    ("key", "index", "delta", "needle"),
    [
        ("c-position", 2, 1, "point 2: position"),
        ("c-flags", 4, 8, "point 4: flags"),
        ("c-live_time", 1, 1e-6, "point 1: live_time"),
        ("c-timestamp", 3, 1e-6, "point 3: timestamp"),
        ("c-ch1", 0, 1, "point 0: ch1"),
    ],
)
def test_each_kind_of_difference_is_reported(key, index, delta, needle):
    truth = _truth()
    data = _data(truth, [0, 1, 2])
    data[key][index] += delta
    problems = compare_with_truth(data, truth, "c", [0, 1, 2], CLOCK)
    assert len(problems) == 1 and problems[0].startswith(needle)


def test_missing_points_and_full_width_counts():
    truth = _truth()
    data = _data(truth, [0, 1, 2])
    # Only channel 2 enabled, truth listing every channel: indexed by channel number.
    only2 = {k: v for k, v in data.items() if k != "c-ch0" and k != "c-ch1"}
    assert compare_with_truth(only2, truth, "c", [2], CLOCK) == []
    short = {k: v[:-1] for k, v in data.items()}
    problems = compare_with_truth(short, truth, "c", [0, 1, 2], CLOCK)
    assert problems == ["collected 4 points, truth has 5"]


def test_load_truth_checks_indices(tmp_path):
    path = tmp_path / "t.jsonl"
    pts = _truth()
    path.write_text("".join(json.dumps(p) + "\n" for p in reversed(pts)))
    assert load_truth(path) == pts
    gap = copy.deepcopy(pts)
    del gap[2]
    path.write_text("".join(json.dumps(p) + "\n" for p in gap))
    with pytest.raises(ValueError, match="indices"):
        load_truth(path)
    path.write_text('{"index": 0}\n')
    with pytest.raises(ValueError, match="missing keys"):
        load_truth(path)
