"""The private MariaDB of the fault tests leaves the shared server alone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .conftest import PrivateMariaDB


def test_installing_a_private_server_keeps_the_temporary_tables_of_others(tmp_path):
    # A server deletes every #sql* file of its tmpdir when it starts, the bootstrap run of
    # mariadb-install-db too: in /tmp, those are the shared server's live temporary tables.
    shared_tmp = Path(tempfile.gettempdir())
    probe = shared_tmp / f"#sql-temptable-ict-probe-{os.getpid()}.MAI"
    probe.write_bytes(b"")
    try:
        PrivateMariaDB(tmp_path).install()
        assert probe.exists(), f"installing a private server deleted {probe}"
    finally:
        probe.unlink(missing_ok=True)
