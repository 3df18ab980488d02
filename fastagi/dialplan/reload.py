"""Ask Asterisk to reload its dialplan: `asterisk -rx` on the same host, or AMI.

Both raise ReloadError with one readable line when Asterisk did not confirm the reload.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

from fastagi.ami import DEFAULT_PORT

log = logging.getLogger(__name__)

RX_COMMAND = "dialplan reload"


class ReloadError(RuntimeError):
    pass


def reload_rx(asterisk_bin: str = "asterisk", timeout_s: float = 30.0,
              run=subprocess.run) -> str:
    """`asterisk -rx "dialplan reload"` (needs the asterisk group on the Asterisk host)."""
    try:
        done = run([asterisk_bin, "-rx", RX_COMMAND], capture_output=True, text=True,
                   timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReloadError(f"{asterisk_bin} -rx failed: {exc}") from exc
    output = (done.stdout or "") + (done.stderr or "")
    # Not connected: exit status 1 and "Unable to connect to remote asterisk".
    if done.returncode != 0 or "Unable to connect" in output or "No such command" in output:
        raise ReloadError(f"{asterisk_bin} -rx '{RX_COMMAND}' failed "
                          f"(exit {done.returncode}): {output.strip()[:200]}")
    return output.strip()


@dataclass(frozen=True)
class AmiTarget:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str = "ictcontact-sync"
    secret: str = ""


def reload_ami(target: AmiTarget, manager_factory=None) -> str:
    """AMI `Reload` of pbx_config. The AMI user needs write=system (or config): the
    `ictcontact-sync` user of asterisk-conf/manager.conf."""
    if manager_factory is None:
        from asterisk.manager import Manager  # pyst2; imported only when used
        manager_factory = Manager
    manager = manager_factory()
    try:
        manager.connect(target.host, target.port)
        manager.login(target.username, target.secret)
        reply = manager.send_action({"Action": "Reload", "Module": "pbx_config"})
        response = reply.get_header("Response", "") if reply is not None else ""
        if response != "Success":
            message = reply.get_header("Message", "") if reply is not None else "no reply"
            raise ReloadError(f"AMI Reload of pbx_config refused: {response} {message}".strip())
        return response
    except ReloadError:
        raise
    except Exception as exc:  # pyst2 raises its own errors and socket errors
        raise ReloadError(f"AMI at {target.host}:{target.port}: "
                          f"{exc.__class__.__name__}: {exc}") from exc
    finally:
        try:
            if manager.connected():
                manager.logoff()
            manager.close()
        except Exception:  # closing a half-open session must not hide the real error
            log.debug("closing the AMI session failed", exc_info=True)
