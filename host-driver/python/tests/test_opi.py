"""The operator screen names only PVs the shipped database serves, and has the needed parts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from epics_support import HOST_DRIVER, db_loads, expand_macros, record_names

BOB = HOST_DRIVER / "opi" / "flyscan.bob"
PV_TAGS = {"pv_name", "x_pv", "y_pv", "err_pv", "trigger_pv"}
_FORMULA_PV = re.compile(r"`([^`]+)`")


def screen_pvs(root: ET.Element) -> set[str]:
    """Every PV name the display uses (widget PVs, plot traces, actions, formula operands)."""
    names: set[str] = set()
    for el in root.iter():
        text = (el.text or "").strip()
        if el.tag in PV_TAGS and text:
            if text.startswith("="):
                names.update(_FORMULA_PV.findall(text))
            else:
                names.add(text)
    return names


def record_of(pv: str) -> str:
    """Record part of a PV name (drops `.FIELD` and the `$` long-string modifier)."""
    return pv.split(".", 1)[0]


@pytest.fixture(scope="module")
def bob() -> ET.Element:
    return ET.parse(BOB).getroot()


def test_every_screen_pv_is_a_record_of_the_database(bob):
    # The screen shows 8 channels: the database must serve them when loaded for 8.
    records = record_names(db_loads("FLY:", n_channels=8, npts=1000))
    pvs = {expand_macros(p, {"P": "FLY:"}) for p in screen_pvs(bob)}
    assert pvs, "the screen names no PVs"
    missing = sorted(p for p in pvs if record_of(p) not in records)
    assert missing == [], f"screen PVs with no record in host-driver/db: {missing}"


def test_screen_has_controls_progress_and_channel_plots(bob):
    pvs = screen_pvs(bob)
    for name in ["Mode", "Start", "Step", "NPoints", "Direction", "ChannelMask", "Arm", "Abort",
                 "Status", "StatusMessage", "NumCaptured", "NumExpected", "LostPoints",
                 "ProtocolErrors"]:
        assert f"$(P){name}" in pvs, f"screen lacks $(P){name}"
    writes = {a.findtext("pv_name") for a in bob.iter("action") if a.get("type") == "write_pv"}
    assert {"$(P)Arm", "$(P)Abort"} <= writes
    traces = [(t.findtext("x_pv"), t.findtext("y_pv")) for t in bob.iter("trace")]
    # Live plots of the whole scan from the preview (every k-th point), never whole arrays.
    assert sorted(y for _, y in traces) == sorted(f"$(P)CH{n}:Preview" for n in range(8))
    assert all(x == "$(P)Preview:Position" for x, _ in traces)
    assert bob.find("macros/P") is not None, "the display must default its P macro"
