"""A throwaway PostgreSQL cluster from the machine's own PostgreSQL (Debian's `postgresql`
package), one for the test session: initdb and pg_ctl as the `postgres` user, in a temporary
folder, on a free loopback port; stopped and deleted after the session."""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto_assets_tests.processes import free_port

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "going-to-production.md"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PASSWORD = "a-throwaway-cluster's-password"


@dataclass(frozen=True)
class PostgresCluster:
    bin_dir: Path
    socket_dir: Path
    port: int

    def as_postgres(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Runs ``command`` as the `postgres` OS user (as the guide's database-host steps do),
        pointed at this cluster."""
        env = {
            **os.environ,
            "PATH": f"{self.bin_dir}:{os.environ['PATH']}",
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "DAGSTER_PG_PASSWORD": PASSWORD,
        }
        return subprocess.run(
            [*_as_postgres_user(), *command],
            env=env,
            cwd=self.socket_dir,
            check=True,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def dagster_env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.prod.yaml reads, for this cluster."""
        return {
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": PASSWORD,
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_PORT": str(self.port),
        }


def guide_block(first_line: str) -> str:
    """The bash block of docs/going-to-production.md that starts with ``first_line``: tests run
    the guide's own commands."""
    for block in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/going-to-production.md has no bash block starting {first_line!r}")


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One cluster a session; each test makes the databases it needs."""
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")))
    if not candidates:
        pytest.skip(f"PostgreSQL is not installed (no {PG_BIN_GLOB}): apt-get install postgresql")
    bin_dir = candidates[-1]
    folder = Path(tempfile.mkdtemp(prefix="crypto-assets-pg-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(folder, postgres.pw_uid, postgres.pw_gid)
    cluster = PostgresCluster(bin_dir, folder, free_port())
    data = folder / "data"
    run = [*_as_postgres_user()]
    subprocess.run(
        [*run, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
         "--auth-local=trust", "--auth-host=scram-sha-256"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    options = (
        f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        [*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
         str(folder / "server.log"), "-w", "start"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    try:
        yield cluster
    finally:
        subprocess.run(
            [*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)
