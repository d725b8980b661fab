"""Fixtures: a private softIoc with the counter's database, the driver stand-in, a RunEngine
whose documents are schema-validated, and the environment of the full-chain tests.

Channel Access reads its address list once per process, so it is set here at import time:
the private IOC's port first, then whatever list the full-chain run was given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from epics_support import TESTS, db_loads, free_port, start_soft_ioc, stop_group, wait_for_line

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

#: PV prefix of the private IOC: unique per run, never clashing with a full-chain IOC.
TEST_PREFIX = f"PYT{os.getpid()}:"


@pytest.fixture(scope="session")
def ioc(tmp_path_factory: pytest.TempPathFactory):
    """softIoc serving the shipped database (8 channels) under `TEST_PREFIX`; yields the prefix."""
    log = tmp_path_factory.mktemp("ioc") / "softIoc.log"
    proc = start_soft_ioc(db_loads(TEST_PREFIX, n_channels=8, npts=20_000), IOC_PORT, log)
    try:
        yield TEST_PREFIX
    finally:
        stop_group(proc)


@pytest.fixture
def standin(ioc: str, tmp_path: Path):
    """Factory: start the driver stand-in with a scenario; returns the truth file path."""
    procs: list[subprocess.Popen] = []

    def start(scenario: str) -> Path:
        truth = tmp_path / f"truth-{scenario}.jsonl"
        env = dict(os.environ, EPICS_CA_ADDR_LIST=f"127.0.0.1:{IOC_PORT}")
        proc = subprocess.Popen(
            [sys.executable, str(TESTS / "driver_standin.py"), ioc, scenario, str(truth)],
            env=env,
            stdout=subprocess.PIPE,
        )
        procs.append(proc)
        wait_for_line(proc, "READY", "driver stand-in")
        return truth

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


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

    def stream_data(self, stream: str = "primary") -> dict[str, list]:
        """Per-key point values of a stream, from its events and event pages."""
        from event_model import unpack_event_page

        descs = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        out: dict[str, list] = defaultdict(list)
        events = [e for e in self.of("event") if e["descriptor"] in descs]
        for page in self.of("event_page"):
            if page["descriptor"] in descs:
                events += list(unpack_event_page(page))
        events.sort(key=lambda e: e["seq_num"])
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
