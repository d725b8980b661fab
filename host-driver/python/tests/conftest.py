"""Fixtures: a private flyscan-ioc (the IOC with the host driver inside, shipped st.cmd), the
scripted device its driver talks to (replaced by each test that needs one, as a device
restart), a RunEngine whose documents are schema-validated, and the environment of the
full-chain tests.

Channel Access reads its address list once per process, so it is set here at import time:
the private IOC's port first, then whatever list the full-chain run was given.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from epics_support import (
    ca_tool,
    free_port,
    start_flyscan_ioc,
    start_scripted_device,
    stop_group,
)

#: Environment as the test run was started, before this file adds the private IOC.
ORIGINAL_ENV = {
    k: os.environ.get(k) for k in ("FLYSCAN_PREFIX", "EPICS_CA_ADDR_LIST", "FLYSCAN_TRUTH")
}

IOC_PORT = free_port()
_addr = f"127.0.0.1:{IOC_PORT}"
if ORIGINAL_ENV["EPICS_CA_ADDR_LIST"]:
    _addr += " " + ORIGINAL_ENV["EPICS_CA_ADDR_LIST"]
os.environ["EPICS_CA_ADDR_LIST"] = _addr
os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
os.environ.setdefault("EPICS_CA_MAX_ARRAY_BYTES", "10000000")
# PV Access (the device follows the IOC's Tail group): the private IOC's ports, loopback only.
PVA_PORTS = (free_port(), free_port())
os.environ["EPICS_PVA_ADDR_LIST"] = "127.0.0.1"
os.environ["EPICS_PVA_AUTO_ADDR_LIST"] = "NO"
os.environ["EPICS_PVA_BROADCAST_PORT"] = str(PVA_PORTS[1])

#: PV prefix of the private IOC: unique per run, never clashing with a full-chain IOC.
TEST_PREFIX = f"PYT{os.getpid()}:"


def caget(pv: str) -> str:
    """`caget -t` through the C client (independent of the code under test); numbers in
    full (`-f 0`)."""
    env = dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{IOC_PORT}")
    out = subprocess.run(
        [ca_tool("caget"), "-t", "-f", "0", "-w", "2", pv], env=env, capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def wait_until(what: str, cond, timeout: float = 20.0) -> None:
    """Polls `cond` until it holds, or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Bench:
    """The private IOC and the device behind its serial port."""

    def __init__(self, prefix: str, link: Path, tmp: Path) -> None:
        self.prefix = prefix
        self.link = link
        self.tmp = tmp
        self.device: subprocess.Popen | None = None

    def stop_device(self) -> None:
        if self.device is not None:
            stop_group(self.device)
            self.device = None

    def start_device(self, behaviour: str, truth: Path) -> None:
        """A new device (a new session) with `behaviour`; returns once the IOC is on it."""
        before = caget(f"{self.prefix}DeviceSession")
        self.stop_device()
        self.device = start_scripted_device(self.link, behaviour, truth)
        wait_until(
            "the IOC on the new device",
            lambda: caget(f"{self.prefix}Connected") == "Connected"
            and caget(f"{self.prefix}DeviceSession") not in ("", before),
        )


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory):
    """flyscan-ioc with the shipped st.cmd (8 channels) under `TEST_PREFIX`."""
    tmp = tmp_path_factory.mktemp("ioc")
    link = tmp / "ttyFLY"
    proc = start_flyscan_ioc(
        TEST_PREFIX, link, IOC_PORT, tmp / "settings", tmp / "ioc.log", pva_ports=PVA_PORTS
    )
    b = Bench(TEST_PREFIX, link, tmp)
    try:
        wait_until("the IOC", lambda: caget(f"{TEST_PREFIX}Status") != "")
        yield b
    finally:
        b.stop_device()
        stop_group(proc)


@pytest.fixture
def ioc(bench: Bench) -> str:
    """The private IOC's prefix."""
    return bench.prefix


@pytest.fixture
def device(bench: Bench, tmp_path: Path):
    """Factory: a new scripted device with a behaviour (ok, lost, restart, stall, slow, or
    none: no device at all); returns the truth file path."""

    def start(behaviour: str) -> Path:
        truth = tmp_path / f"truth-{behaviour}.jsonl"
        if behaviour == "none":
            bench.stop_device()
            wait_until(
                "Disconnected",
                lambda: caget(f"{bench.prefix}Connected") == "Disconnected",
            )
        else:
            bench.start_device(behaviour, truth)
        return truth

    yield start


class DocCollector:
    """Validates every document against the event-model schemas and keeps them."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        from event_model import DocumentNames, schema_validators

        schema_validators[DocumentNames(name)].validate(doc)
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        """Documents of one kind, in order."""
        return [d for n, d in self.docs if n == name]

    def stream_events(self, stream: str = "primary") -> list[dict]:
        """Events of a stream (from events and event pages), in emission order."""
        from event_model import unpack_event_page

        descs = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        events: list[dict] = []
        for name, doc in self.docs:
            if doc.get("descriptor") not in descs:
                continue
            if name == "event":
                events.append(doc)
            elif name == "event_page":
                events += list(unpack_event_page(doc))
        return events

    def stream_data(self, stream: str = "primary", as_emitted: bool = False) -> dict[str, list]:
        """Per-key point values of a stream, from its events and event pages, by `seq_num`
        (or in emission order: after a pause the replayed events reuse their numbers)."""
        events = self.stream_events(stream)
        if not as_emitted:
            events.sort(key=lambda e: e["seq_num"])
        out: dict[str, list] = defaultdict(list)
        for e in events:
            for k, v in e["data"].items():
                out[k].append(v)
        return dict(out)


@pytest.fixture(scope="session")
def RE():
    """A RunEngine (one bluesky event loop for all tests)."""
    from bluesky.run_engine import RunEngine

    engine = RunEngine({}, call_returns_result=True)
    yield engine
    if engine.state != "idle":
        engine.halt()
    engine.loop.call_soon_threadsafe(engine.loop.stop)


@pytest.fixture
def docs(RE):
    """Schema-validated documents of the runs of one test."""
    collector = DocCollector()
    token = RE.subscribe(collector)
    yield collector
    RE.unsubscribe(token)
