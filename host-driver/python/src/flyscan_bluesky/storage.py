"""Where runs are stored: a Tiled catalog, written by the Bluesky Tiled writer
(`bluesky_tiled_plugins.TiledWriter`) and read back through the Tiled client.

Two ways to the same client, chosen by `open_catalog`'s argument:

* **embedded** (a directory): a catalog of its own in that directory — the SQL catalog in
  ``catalog.db`` (SQLite), event tables in ``tables.sqlite`` (SQLite), array files in
  ``data/`` — served by a Tiled app inside this process (no server, no port);
* **a Tiled server** (an ``http://`` or ``https://`` address): e.g. one per facility, its
  catalog on PostgreSQL, shared by many beamlines (see the package README for the commands).

Typical use::

    catalog = open_catalog("out/catalog")            # or "http://tiled.example:8000"
    RE.subscribe(TiledWriter(catalog))
    (uid,) = RE(fly_exafs(...))
    run = catalog[uid]                               # start/stop metadata, run["primary"]
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

#: Environment variable holding the API key of a Tiled server.
API_KEY_ENV = "TILED_API_KEY"


def is_server_address(location: str | os.PathLike[str]) -> bool:
    """True when `location` names a Tiled server rather than a local directory."""
    return str(location).startswith(("http://", "https://"))


def open_catalog(location: str | os.PathLike[str], api_key: str | None = None) -> Any:
    """A writable Tiled client on the catalog at `location`.

    :param location: a directory for the embedded catalog (created with its database files if
        absent), or a Tiled server's address.
    :param api_key: the server's API key (default: ``$TILED_API_KEY``); not used by the
        embedded catalog.
    :raises OSError: if the directory cannot be created.
    :raises RuntimeError: if the embedded catalog database cannot be initialised.
    """
    if is_server_address(location):
        from tiled.client import from_uri

        return from_uri(str(location), api_key=api_key or os.environ.get(API_KEY_ENV))
    return _embedded(Path(location))


def _embedded(directory: Path) -> Any:
    with warnings.catch_warnings():
        # The in-process transport (starlette's test client) warns about its httpx version.
        warnings.simplefilter("ignore", DeprecationWarning)
        from tiled.catalog import from_uri as catalog_from_uri
        from tiled.client import Context, from_context
        from tiled.server.app import build_app

    directory = directory.resolve()
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    db = directory / "catalog.db"
    catalog = catalog_from_uri(
        f"sqlite:///{db}",
        writable_storage=[data, f"sqlite:///{directory / 'tables.sqlite'}"],
        # Creating the schema runs a subprocess (seconds): only for a new catalog.
        init_if_not_exists=not db.exists(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = Context.from_app(build_app(catalog))
    return from_context(context)


def tiled_writer(client: Any) -> Any:
    """The Bluesky Tiled writer on `client`: subscribe it to a RunEngine
    (``RE.subscribe(tiled_writer(client))``) and every run is stored as it is taken."""
    from bluesky_tiled_plugins import TiledWriter

    return TiledWriter(client)


__all__ = ["API_KEY_ENV", "is_server_address", "open_catalog", "tiled_writer"]
