"""Independent Channel Access clients for the flyscan host-driver tests.

get PV...                 pyepics (libca): JSON {pv: value}; arrays as lists (NaN as null)
monitor PV SECONDS        pyepics monitor: JSON list of array lengths seen, in order
monitor_values PV SECONDS pyepics monitor: JSON list of scalar values seen, in order
monitor_times PV SECONDS  pyepics monitor: JSON list of [value, unix time received]
monitor_arrays PV SECONDS pyepics monitor: JSON list of the arrays seen, in order
put_as HOST PV VALUE      caproto client reporting host name HOST: JSON {access, before, after}
put_range PV N            pyepics put of 0, 1, ... N-1 to an array PV
race PREFIX N SEED        N times: write a random valid configuration and at once Arm (no pause),
                          wait for Arm back at 0; JSON list of the configurations written
"""
import json
import math
import sys
import time

def clean(v):
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list):
        return [None if isinstance(x, float) and math.isnan(x) else x for x in v]
    if isinstance(v, float) and math.isnan(v):
        return None
    return v

def pyepics():
    import epicscorelibs.path.pyepics  # noqa: F401  (points pyepics at the bundled libca)
    import epics
    return epics

def main():
    cmd = sys.argv[1]
    if cmd == "get":
        epics = pyepics()
        out = {}
        for pv in sys.argv[2:]:
            v = epics.caget(pv, count=None, use_monitor=False, timeout=5.0, as_string=pv.endswith("FirmwareVersion"))
            out[pv] = clean(v)
        print(json.dumps(out))
    elif cmd in ("monitor", "monitor_values", "monitor_times", "monitor_arrays"):
        epics = pyepics()
        pv, seconds = sys.argv[2], float(sys.argv[3])
        seen = []
        def cb(value=None, **kw):
            if cmd == "monitor":
                seen.append(len(value) if hasattr(value, "__len__") else 1)
            elif cmd == "monitor_times":
                seen.append([clean(value), time.time()])
            elif cmd == "monitor_arrays":
                seen.append(clean(value))
            else:
                seen.append(clean(value))
        p = epics.PV(pv, callback=cb, auto_monitor=True, form="native")
        p.wait_for_connection(timeout=5.0)
        print("READY", flush=True)
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(0.01)
        p.clear_callbacks()
        print(json.dumps(seen))
    elif cmd == "put_as":
        from caproto.threading.client import Context
        host, pv, value = sys.argv[2], sys.argv[3], float(sys.argv[4])
        ctx = Context(host_name=host)
        (p,) = ctx.get_pvs(pv, timeout=5.0)
        p.wait_for_connection(timeout=5.0)
        def first(r):
            d = r.data.tolist()
            return d[0] if len(d) else None
        before = first(p.read(timeout=5.0))
        access = str(p.access_rights)
        err = None
        try:
            p.write([value], wait=True, timeout=5.0)
        except Exception as e:  # refused writes raise or are ignored, depending on the server
            err = type(e).__name__
        after = first(p.read(timeout=5.0))
        print(json.dumps({"access": access, "before": before, "after": after, "error": err}))
        ctx.disconnect()
    elif cmd == "put_range":
        epics = pyepics()
        pv, n = sys.argv[2], int(sys.argv[3])
        if not epics.caput(pv, [float(i) for i in range(n)], wait=True, timeout=10.0):
            sys.exit("put failed")
    elif cmd == "race":
        import random
        epics = pyepics()
        prefix, n, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        rng = random.Random(seed)
        names = ["Mode", "Start", "Step", "NPoints", "ChannelMask", "Direction", "Encoding", "Arm"]
        pvs = {k: epics.PV(prefix + k) for k in names}
        for p in pvs.values():
            p.wait_for_connection(timeout=5.0)
        written = []
        for _ in range(n):
            step = rng.choice([1, 2, 3, 5, 17, 50]) * rng.choice([1, -1])
            cfg = {
                "Mode": 0,
                "Start": float(rng.randint(-1000, 1000)),
                "Step": float(step),
                "NPoints": float(rng.randint(1, 25)),
                "ChannelMask": float(rng.randint(1, 15)),
                # The direction follows the step's sign, or "either" (2).
                "Direction": float(rng.choice([0 if step > 0 else 1, 2])),
                "Encoding": float(rng.randint(0, 1)),
            }
            for k, v in cfg.items():
                pvs[k].put(v, wait=False)
            # The configuration puts are not waited for; the Arm put returns once the record
            # has processed (the driver has it). Arm goes back to 0 when the scan has ended.
            pvs["Arm"].put(1, wait=True, timeout=10.0)
            deadline = time.time() + 10.0
            while pvs["Arm"].get(use_monitor=False) != 0:
                if time.time() > deadline:
                    sys.exit("Arm did not return to 0")
                time.sleep(0.002)
            written.append(cfg)
        print(json.dumps(written))
    else:
        sys.exit("unknown command " + cmd)

if __name__ == "__main__":
    main()
