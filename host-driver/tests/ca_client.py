"""Independent Channel Access clients for the flyscan host-driver tests.

get PV...                 pyepics (libca): JSON {pv: value}; arrays as lists (NaN as null)
monitor PV SECONDS        pyepics monitor: JSON list of array lengths seen, in order
monitor_values PV SECONDS pyepics monitor: JSON list of scalar values seen, in order
monitor_times PV SECONDS  pyepics monitor: JSON list of [value, unix time received]
put_as HOST PV VALUE      caproto client reporting host name HOST: JSON {access, before, after}
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
    elif cmd in ("monitor", "monitor_values", "monitor_times"):
        epics = pyepics()
        pv, seconds = sys.argv[2], float(sys.argv[3])
        seen = []
        def cb(value=None, **kw):
            if cmd == "monitor":
                seen.append(len(value) if hasattr(value, "__len__") else 1)
            elif cmd == "monitor_times":
                seen.append([clean(value), time.time()])
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
        before = p.read(timeout=5.0).data.tolist()[0]
        access = str(p.access_rights)
        err = None
        try:
            p.write([value], wait=True, timeout=5.0)
        except Exception as e:  # refused writes raise or are ignored, depending on the server
            err = type(e).__name__
        after = p.read(timeout=5.0).data.tolist()[0]
        print(json.dumps({"access": access, "before": before, "after": after, "error": err}))
        ctx.disconnect()
    else:
        sys.exit("unknown command " + cmd)

if __name__ == "__main__":
    main()
