"""docs/wiring.md's pin tables are the boards' pin constraints."""

import os
import re

from flyscan_gateware import boards

WIRING = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "wiring.md")


def table_after(heading):
    with open(WIRING) as f:
        text = f.read()
    rows, started = [], False
    for line in text[text.index(heading):].splitlines():
        if line.startswith("|"):
            started = True
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif started:
            break
    return rows[2:]


def test_ulx3s_table():
    rows = table_after("### Radiona ULX3S")
    have = {}
    for signal, pin, ball in rows:
        if signal.startswith("DET0"):
            names = re.findall(r"G[PN]\d+", pin.split("(")[0])
            balls = ball.split(", ")
            assert len(balls) == 32
            for ch in range(32):
                have[f"det{ch}"] = (boards.ULX3S_PINS[f"det{ch}"], balls[ch])
            assert names[:2] == ["GP4", "GN4"] and names[-2:] == ["GP19", "GN19"]
        else:
            have[signal.lower()] = (pin, ball)
    for sig, pin in boards.ULX3S_PINS.items():
        assert have[sig] == (pin, boards._ulx3s_gpio(pin)), sig


def test_icebreaker_table():
    rows = table_after("### 1BitSquared iCEBreaker")
    have = {r[0].lower(): r[1:] for r in rows}
    for sig, (conn, pin, ball) in boards.ICEBREAKER_PINS.items():
        assert have[sig] == [f"{conn} {pin}", ball], sig


def test_platform_resources_use_those_balls():
    ulx = {r.name: r.ios[0].names[0] for r in boards.Ulx3s25fPlatform.resources
           if r.name in boards.ULX3S_PINS}
    assert ulx == {s: boards._ulx3s_gpio(p) for s, p in boards.ULX3S_PINS.items()}
    ice = {r.name: r.ios[0].names[0] for r in boards.IceBreakerPlatform.resources
           if r.name in boards.ICEBREAKER_PINS}
    assert ice == {s: p[2] for s, p in boards.ICEBREAKER_PINS.items()}
