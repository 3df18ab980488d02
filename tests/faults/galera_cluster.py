"""A private 3-node MariaDB Galera cluster on 127.0.0.1 for the Galera fault tests.

Each node is a PrivateMariaDB (tests/faults/conftest.py) with its own datadir, client
port, group-communication port, IST and SST ports, all on loopback, all free ports picked
at start; never the shared 3306 instance.

Forming the cluster avoids a full state transfer (SST): node 1 is installed and
bootstrapped once, shut down cleanly, and its datadir copied to nodes 2 and 3, which then
join the re-bootstrapped node 1 with an incremental transfer (IST) of a few events. A
node killed by a test rejoins the same way when it is started again, or by a full SST
(mariabackup) when its position is lost. Needs Debian's `galera-4`, `mariadb-backup` and
`socat` (scripts/setup-local.sh installs them).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from .conftest import PrivateMariaDB, free_port

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
NEEDS = {  # what must exist -> the Debian package that has it
    PROVIDER: "galera-4",
    "mariadb-backup": "mariadb-backup",
    "socat": "socat",
}
CLUSTER_NAME = "ict-test"
EVENT = re.compile(r"\[(warning|error)\]|suspect|view\(|non-primary|flow.control|synced|"
                   r"donor|joined|evict|partition", re.IGNORECASE)


def missing_packages() -> list[str]:
    found = []
    for path, package in NEEDS.items():
        if not (Path(path).exists() if path.startswith("/") else shutil.which(path)):
            found.append(package)
    return found


class GaleraNode(PrivateMariaDB):
    """One node; ready when it is Synced with a primary component."""

    # The node settings the product needs (docs/galera.md), and a small footprint. The
    # buffer pool keeps its default: mariabackup (SST) refuses --innodb-buffer-pool-size.
    GALERA_OPTIONS = (
        "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
        "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}",
        f"--wsrep-cluster-name={CLUSTER_NAME}",
        "--wsrep-sst-method=mariabackup", "--wsrep-sst-auth=root:",
    )

    def __init__(self, base: Path, number: int) -> None:
        super().__init__(base)
        self.number = number
        self.name = f"node{number}"
        self.gcomm_port = free_port()
        self.ist_port = free_port()
        self.sst_port = free_port()
        self.peers: list[str] = []     # gcomm addresses of every node, set by the cluster
        self.bootstrap = False

    @property
    def gcomm_address(self) -> str:
        return f"127.0.0.1:{self.gcomm_port}"

    def server_options(self) -> tuple[str, ...]:
        keep = tuple(o for o in self.SERVER_OPTIONS
                     if not o.startswith("--innodb-buffer-pool-size"))
        provider = ";".join((
            f"gmcast.listen_addr=tcp://{self.gcomm_address}",
            f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=64M",
            # A node that vanished is evicted after 3 s, not the default 5-15 s, so a test
            # that kills one sees the others go on quickly.
            "evs.suspect_timeout=PT3S", "evs.inactive_timeout=PT5S",
            "evs.keepalive_period=PT0.5S", "evs.inactive_check_period=PT0.5S",
        ))
        options = (*keep, *self.GALERA_OPTIONS,
                   f"--wsrep-cluster-address=gcomm://{','.join(self.peers)}",
                   f"--wsrep-node-address={self.gcomm_address}",
                   f"--wsrep-node-name={self.name}",
                   f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
                   f"--wsrep-provider-options={provider}")
        return (*options, "--wsrep-new-cluster") if self.bootstrap else options

    def is_ready(self, cursor) -> bool:
        cursor.execute("SHOW STATUS WHERE Variable_name IN "
                       "('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_ready')")
        status = dict(cursor.fetchall())
        return (status.get("wsrep_local_state_comment") == "Synced"
                and status.get("wsrep_cluster_status") == "Primary"
                and status.get("wsrep_ready") == "ON")

    def url(self, database: str = "") -> str:
        return f"{self.server_url}/{database}"

    def log_size(self) -> int:
        path = self.base / "mariadbd.log"
        return path.stat().st_size if path.exists() else 0

    def cluster_events(self, since: int) -> str:
        """What this node logged after byte `since` about its membership and health (view
        changes, suspicions, flow control, warnings, errors): to show when a test fails."""
        path = self.base / "mariadbd.log"
        if not path.exists():
            return ""
        with open(path, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return "".join(f"{self.name}: {line[:300]}\n" for line in text.splitlines()
                       if EVENT.search(line))


class GaleraCluster:
    """Three GaleraNodes under `base`; `form()` starts them, `terminate()` kills them."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        self.nodes = [GaleraNode(base / f"node{n}", n) for n in range(1, size + 1)]
        peers = [node.gcomm_address for node in self.nodes]
        for node in self.nodes:
            node.base.mkdir(parents=True, exist_ok=True)
            node.peers = peers
        self.formed_in_s = 0.0

    def form(self, timeout: float = 300) -> float:
        """Start the cluster; returns the seconds it took. Raises RuntimeError (with the
        node's log) when a node does not reach Synced."""
        started = time.monotonic()
        first, *others = self.nodes
        first.install()
        first.bootstrap = True
        try:
            first.start()
            first.stop()                      # clean shutdown: a saved position
            for node in others:
                shutil.copytree(first.datadir, node.datadir, symlinks=True)
                (node.datadir / "gvwstate.dat").unlink(missing_ok=True)
            first.start()
        finally:
            first.bootstrap = False
        # One joiner at a time: a node joining while another is still joining may pick it
        # as donor and need a full SST from it (seen in CI: "Broken pipe", never Synced).
        for node in others:
            node.start_process()
            node.wait_ready(timeout)
        self.formed_in_s = time.monotonic() - started
        return self.formed_in_s

    def ensure_running(self, timeout: float = 180) -> None:
        """Restart any node a test stopped, and wait until every node is Synced."""
        for node in self.nodes:
            if not node.running:
                node.start_process()
        for node in self.nodes:
            node.wait_ready(timeout)

    def terminate(self) -> None:
        for node in self.nodes:
            node.terminate()
