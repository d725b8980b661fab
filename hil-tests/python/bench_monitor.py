"""Channel Access monitors for the end-to-end benchmark (`e2e-bench`), run in the project venv.

    bench_monitor.py tail PREFIX OUT_DIR TIMEOUT_S
    bench_monitor.py full PREFIX OUT_DIR TIMEOUT_S FULL_PV...

Two roles, run as two processes so that a client busy with megabyte waveforms does not delay
the timestamps of the latency measurement. Both subscribe (pyepics, libca) to `PREFIX Status`,
print READY once connected (and Status's first value arrived), and record with the wall time of
each callback (the bench keeps only the callbacks after its arm, so a pre-scan value that may or
may not come — libca sends no first update for an empty array — does not matter):

* tail: for every `Tail:Index` update, the runs of point indices it carried ([t, first, n]);
  stops once Status has ended (Done/Aborted/Error) and the tail reached `NumShown` points;
* full: per waveform, every update's [t, elements, bytes] (bytes = len × item size of the
  native type it carried); stops once Status has ended and every waveform has reached the
  final length `NumShown`. Then it reads
  every waveform once more (a plain get) into OUT_DIR/<PV without prefix>.f64 (little-endian
  float64), so the bench can check the scan against the ground truth without text.

Each writes OUT_DIR/<role>.json; after TIMEOUT_S it stops anyway and says what it missed.
"""
import json
import sys
import threading
import time

import epicscorelibs.path.pyepics  # noqa: F401  (points pyepics at the bundled libca)
import epics
import numpy as np

ENDED = ("Done", "Aborted", "Error")


def main():
    role, prefix, out_dir, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    full_names = sys.argv[5:] if role == "full" else []
    lock = threading.Lock()
    tail = []
    tail_max = [-1]
    status = []
    full = {n: [] for n in full_names}
    length = {n: 0 for n in full_names}

    def on_tail(value=None, **kw):
        t = time.time()
        a = np.asarray(value, dtype=np.int64).ravel()
        if a.size == 0:
            return
        # Runs of consecutive indices: [first, n] each.
        cut = np.nonzero(np.diff(a) != 1)[0] + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [a.size]))
        with lock:
            for s, e in zip(starts, ends):
                tail.append([t, int(a[s]), int(e - s)])
            tail_max[0] = max(tail_max[0], int(a.max()))

    def on_status(char_value=None, **kw):
        with lock:
            status.append([time.time(), char_value])

    def on_full(pvname=None, value=None, **kw):
        t = time.time()
        n = int(np.size(value))
        item = np.asarray(value).itemsize if n else 0
        with lock:
            full[pvname].append([t, n, n * item])
            length[pvname] = n

    pvs = [epics.PV(prefix + "Status", callback=on_status, auto_monitor=True, form="ctrl")]
    if role == "tail":
        pvs.append(epics.PV(prefix + "Tail:Index", callback=on_tail, auto_monitor=True, form="native"))
    for n in full_names:
        pvs.append(epics.PV(n, callback=on_full, auto_monitor=True, form="native"))
    for p in pvs:
        if not p.wait_for_connection(timeout=10.0):
            sys.exit(f"cannot connect {p.pvname}")
    # Status is a scalar: its first callback always comes. Forget it (and any pre-scan
    # lengths): the end is a Status change after this point.
    deadline = time.time() + 10.0
    while time.time() < deadline:
        with lock:
            if status:
                break
        time.sleep(0.01)
    with lock:
        status.clear()
        tail_max[0] = -1
        for n in length:
            length[n] = 0
    print("READY", flush=True)
    shown = epics.PV(prefix + "NumShown")
    end = time.time() + timeout
    final = None
    complete = False
    while time.time() < end:
        with lock:
            ended = any(s[1] in ENDED for s in status)
        if ended:
            if final is None:
                final = int(shown.get(use_monitor=False, timeout=5.0) or 0)
            with lock:
                if role == "tail":
                    complete = tail_max[0] + 1 >= final
                else:
                    complete = all(v >= final for v in length.values())
            if complete:
                break
        time.sleep(0.005)
    for p in pvs:
        p.clear_callbacks()
    with lock:
        if not complete:
            lens = {k[len(prefix):]: v for k, v in length.items()}
            print(f"timed out: status {status}, final length {final}, tail up to {tail_max[0]}, "
                  f"full lengths {lens}", file=sys.stderr, flush=True)
        with open(f"{out_dir}/{role}.json", "w") as f:
            json.dump({"tail": tail, "status": status, "full": full, "final_len": final}, f)
    n = final or 0
    for name in full_names:
        v = epics.caget(name, count=n, use_monitor=False, timeout=30.0) if n else []
        if v is None:
            sys.exit(f"no value for {name}")
        np.asarray(v, dtype="<f8").tofile(f"{out_dir}/{name[len(prefix):]}.f64")


if __name__ == "__main__":
    main()
