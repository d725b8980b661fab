"""Plays the host driver against a real softIoc so the device and plans can be tested alone.

Run as a separate process (its own libca context), like the real driver:

    python driver_standin.py PREFIX SCENARIO TRUTH_PATH [N_CHANNELS]

It publishes Connected/NumChannels/FirmwareVersion, prints ``READY`` once every PV is
connected, then on each Arm=1: reads the scan configuration, computes deterministic points,
writes them as ground truth (JSON lines, the simulator's format) to TRUTH_PATH, and publishes
them in a few growing chunks. Scenarios:

* ``ok``: every point, Status Done;
* ``lost``: three points never published, LostPoints = 3, Status Done;
* ``error``: half the points, then Status Error with a message;
* ``hang``: half the points, then waits for Abort (Status Aborted);
* ``disconnected``: Connected = 0 (an Arm is answered with Status Error).
"""

from __future__ import annotations

import json
import queue
import sys
import time

import epicscorelibs.path.pyepics  # noqa: F401  (points pyepics at the venv's libca)
import epics

CHUNKS = 4
LOST = 3


def make_points(positions: list[int], mask: int, passes: int, n_channels: int) -> list[dict]:
    """Deterministic points: counts depend on channel and index, so a mix-up shows."""
    points = []
    forward = positions
    for p in range(passes):
        seq = forward if p % 2 == 0 else forward[::-1]
        for pos in seq:
            i = len(points)
            flags = 0x10 if (pos == seq[0] and p > 0) else 0
            counts = [
                1000 * (ch + 1) + 7 * i + (i * i) % 13
                for ch in range(n_channels)
                if mask >> ch & 1
            ]
            points.append(
                {
                    "index": i,
                    "position": int(pos),
                    "timestamp": 0.25 + 0.002 * i,
                    "live_time": 0.0015 + 1e-6 * (i % 5),
                    "flags": flags,
                    "counts": counts,
                }
            )
    return points


class Driver:
    def __init__(self, prefix: str, scenario: str, truth_path: str, n_channels: int) -> None:
        self.p = prefix
        self.n_channels = n_channels
        self.waveforms = ["Position", "Timestamp", "LiveTime", "Flags"] + [
            f"CH{n}" for n in range(n_channels)
        ]
        self.scenario = scenario
        self.truth_path = truth_path
        self.events: queue.Queue[str] = queue.Queue()
        self.pvs = {}
        names = self.waveforms + [
            "NumCaptured", "NumExpected", "LostPoints", "QuadErrors", "PositionJumps",
            "LinkErrors", "Resends", "Status", "StatusMessage", "FirmwareVersion",
            "NumChannels", "ScanId", "Connected", "Mode", "Start", "Step", "NPoints",
            "Positions", "Direction", "Passes", "ChannelMask", "Encoding", "Arm", "Busy", "Abort",
            "ArmTrig", "AbortTrig", "MaxPoints",
        ]
        # Like the driver, watch the *Trig calcs: they post on every write, even a repeated 1.
        for n in names:
            self.pvs[n] = epics.PV(prefix + n, auto_monitor=n in ("ArmTrig", "AbortTrig"))
        for n, pv in self.pvs.items():
            if not pv.wait_for_connection(timeout=10):
                raise SystemExit(f"stand-in: {prefix}{n} did not connect")
        # Callbacks run on a CA thread: only queue the event, the main loop does the puts.
        for pv, event in (("ArmTrig", "arm"), ("AbortTrig", "abort")):
            self.pvs[pv].add_callback(lambda value=None, e=event, **_: value and self.events.put(e))

    def put(self, name: str, value, wait: bool = True) -> None:
        self.pvs[name].put(value, wait=wait)

    def get(self, name: str):
        return self.pvs[name].get(use_monitor=False)

    def start(self) -> None:
        self.put("Connected", 0 if self.scenario == "disconnected" else 1)
        self.put("NumChannels", self.n_channels)
        self.put("MaxPoints", 100_000)
        self.put("FirmwareVersion", "standin-1.0")
        self.put("Status", 0)
        self.put("Arm", 0)
        self.put("Busy", 0)
        self.put("StatusMessage", "")
        print("READY", flush=True)

    def finish(self, status: int, message: str) -> None:
        # The driver's order: message, Arm reset, Busy, Status last (a client that sees Arm
        # drop may still read the previous Status for a moment).
        self.put("StatusMessage", message)
        self.put("Arm", 0)
        self.put("Abort", 0)
        self.put("Busy", 0)
        time.sleep(0.05)
        self.put("Status", status)

    def run_scan(self) -> None:
        if self.scenario == "disconnected":
            self.finish(5, "no link to the firmware")
            return
        mode = int(self.get("Mode"))
        npoints = int(self.get("NPoints"))
        passes = int(self.get("Passes"))
        mask = int(self.get("ChannelMask"))
        if mode == 1:
            positions = [int(v) for v in self.get("Positions")[:npoints]]
        else:
            start, step = int(self.get("Start")), int(self.get("Step"))
            positions = [start + i * step for i in range(npoints)]
        points = make_points(positions, mask, passes, self.n_channels)
        published = list(points)
        if self.scenario == "lost":
            del published[len(points) // 2 : len(points) // 2 + LOST]
        if self.scenario in ("error", "hang"):
            published = published[: len(points) // 2]
        with open(self.truth_path, "w", encoding="utf-8") as f:
            for pt in points:
                f.write(json.dumps(pt) + "\n")
        self.put("ScanId", int(self.get("ScanId")) + 1)
        self.put("NumExpected", len(points))
        self.put("NumCaptured", 0)
        self.put("LostPoints", 0)
        self.put("StatusMessage", "")
        for n in self.waveforms:
            self.put(n, [])
        self.put("Busy", 1)
        self.put("Status", 0)
        self.put("StatusMessage", "configuring")
        # Configure and list upload take a while; kickoff must wait for Armed.
        time.sleep(0.1)
        self.put("Status", 1)
        self.put("Status", 2)
        channels = [ch for ch in range(self.n_channels) if mask >> ch & 1]
        step = max(1, -(-len(published) // CHUNKS))
        for end in range(step, len(published) + step, step):
            part = published[:end]
            self.put("Position", [pt["position"] for pt in part])
            self.put("Timestamp", [pt["timestamp"] for pt in part])
            self.put("LiveTime", [pt["live_time"] for pt in part])
            self.put("Flags", [pt["flags"] for pt in part])
            for k, ch in enumerate(channels):
                self.put(f"CH{ch}", [pt["counts"][k] for pt in part])
            self.put("NumCaptured", len(part))
            time.sleep(0.02)
        if self.scenario == "lost":
            self.put("LostPoints", LOST)
            self.finish(3, f"{LOST} points lost on the link")
        elif self.scenario == "error":
            self.finish(5, "firmware reported an encoder fault")
        elif self.scenario == "hang":
            while self.events.get() != "abort":
                pass
            self.finish(4, "aborted by user")
        else:
            self.finish(3, "")

    def serve(self) -> None:
        self.start()
        while True:
            event = self.events.get()
            if event == "arm":
                self.run_scan()
            elif event == "abort" and self.get("Arm"):
                self.finish(4, "aborted by user")


def main() -> None:
    if len(sys.argv) not in (4, 5):
        raise SystemExit("usage: driver_standin.py PREFIX SCENARIO TRUTH_PATH [N_CHANNELS]")
    n_channels = int(sys.argv[4]) if len(sys.argv) == 5 else 8
    Driver(*sys.argv[1:4], n_channels).serve()


if __name__ == "__main__":
    main()
