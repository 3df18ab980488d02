"""`ictcontact serve` run as a real subprocess, for tests that need whole server processes."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time

PYTHON = sys.executable
ICTCONTACT = os.path.join(os.path.dirname(sys.executable), "ictcontact")  # the console script


def run_ictcontact(*args: str, env: dict[str, str] | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed `ictcontact` console script to its end, with no ICTCONTACT_*
    settings but those in `env` (a process that keeps running fails by timeout)."""
    return subprocess.run([ICTCONTACT, *args], env=environ(**(env or {})),
                          capture_output=True, text=True, timeout=timeout)


def serve_command(*options: str) -> list[str]:
    return [PYTHON, "-m", "fastagi", "--log-level", "INFO", "serve", *options]


def environ(**extra: str) -> dict[str, str]:
    env = {k: val for k, val in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull  # never read /etc/ictcontact here
    env.update(extra)
    return env


class LoggedProcess:
    """A running `ictcontact` subprocess whose stderr (the log) is read by a thread
    (select() on a buffered pipe would miss lines already buffered)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.log.append(line)
            if match := re.search(pattern, line):
                return match
            if line == "":
                break
        raise AssertionError(f"no {pattern!r} in:\n{''.join(self.log)}")

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        self.process.wait(timeout=timeout)
        self.reader.join(timeout)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return self.process.returncode, "".join(self.log)


class Server(LoggedProcess):
    """A running `ictcontact serve` subprocess and the port it listens on."""

    def __init__(self, url: str, *options: str, env: dict[str, str] | None = None) -> None:
        super().__init__(serve_command(*options),
                         environ(ICTCONTACT_DB=url, ICTCONTACT_LISTEN="tcp:0:interface=127.0.0.1",
                                 **(env or {})))
        self.port = int(self.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))


def dialer_command(*options: str) -> list[str]:
    return [PYTHON, "-m", "fastagi", "--log-level", "INFO", "dialer", *options]


class DialerProcess(LoggedProcess):
    """A running `ictcontact dialer` subprocess (call `wait_for` from a thread when the
    test's reactor must keep running)."""

    def __init__(self, url: str, ami_port: int, name: str, *options: str,
                 secret: str = "s3cret") -> None:
        super().__init__(dialer_command("--ami", f"127.0.0.1:{ami_port}", "--name", name,
                                        *options),
                         environ(ICTCONTACT_DB=url, ICTCONTACT_AMI_SECRET=secret))
