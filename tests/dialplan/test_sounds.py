"""Every prompt the shipped dialplan plays exists in Asterisk's core English sounds.

A missing file makes Playback log a warning and go on: the caller hears silence. The list
of the core set (tests/dialplan/core-sounds-en.txt) is Debian's asterisk-core-sounds-en-gsm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastagi.dialplan.check import inner_apps, split_top

CORE_SOUNDS_FILE = Path(__file__).with_name("core-sounds-en.txt")
# Applications whose FIRST argument is a '&'-list of sound files.
PLAYS_FIRST_ARG = {"Playback", "Background", "BackGround", "ControlPlayback"}
# Applications whose SECOND argument is a '&'-list of sound files: Read(var,files,...).
PLAYS_SECOND_ARG = {"Read"}


def core_sounds() -> set[str]:
    lines = CORE_SOUNDS_FILE.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def played_files(plan) -> dict[str, list[str]]:
    """sound name -> the steps (path:line) that play it."""
    played: dict[str, list[str]] = {}
    for step in plan.steps():
        for app, args in inner_apps(step):
            parts = split_top(args, ",")
            if app in PLAYS_FIRST_ARG:
                files = parts[0]
            elif app in PLAYS_SECOND_ARG and len(parts) > 1:
                files = parts[1]
            else:
                continue
            for name in files.split("&"):
                played.setdefault(name.strip(), []).append(f"{step.path}:{step.line}")
    return played


def test_the_core_sound_list_is_the_real_package_list():
    sounds = core_sounds()
    assert len(sounds) > 500
    # Names seen on a real Asterisk 22 with Debian's package, and two that are NOT in it.
    assert {"please-try-call-later", "im-sorry", "cannot-complete-as-dialed", "ss-noservice",
            "all-circuits-busy-now", "agent-loginok", "agent-pass", "beep", "digits/1"} <= sounds
    assert not {"cannot-complete-temp-error", "pls-try-call-later"} & sounds


def test_every_prompt_the_dialplan_plays_is_a_core_sound(plan):
    played = played_files(plan)
    assert played, "the dialplan plays no prompt at all: the scanner is broken"
    # A variable (a campaign's own recording, checked by the dialer) is not a core prompt.
    missing = {name: where for name, where in played.items()
               if name not in core_sounds() and "${" not in name}
    assert missing == {}


@pytest.mark.parametrize("step", [
    "exten => s,1,Playback(cannot-complete-temp-error,noanswer)",
    "exten => s,1,ExecIf($[1]?Playback(im-sorry&pls-try-call-later))",
    "exten => s,1,Read(PIN,agent-pass&no-such-prompt,4)",
])
def test_the_scanner_finds_a_missing_prompt(step):
    from fastagi.dialplan.confparse import dialplan_from_texts
    plan = dialplan_from_texts(("x.conf", f"[ctx]\n{step}\n"))
    assert set(played_files(plan)) - core_sounds()
