"""Emergency numbers: always allowed and never billed by `authorize`, routed straight to
the emergency trunk by the generated dialplan, never dialled by a campaign.

They match WHOLE dialled numbers (a leading + ignored), never as prefixes: a prefix match
would make 112xxxx toll calls free. The default is written here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Iterable

DEFAULT_NUMBERS: tuple[str, ...] = ("911", "112", "999")
NUMBER = re.compile(r"[0-9]{2,10}")


def parse_numbers(value: str | Iterable[str]) -> tuple[str, ...]:
    """'911,112,999' (or a sequence) -> ('911', '112', '999'), duplicates dropped.
    Raises ValueError unless there is at least one and each is 2-10 digits."""
    items = value.split(",") if isinstance(value, str) else list(value)
    numbers = tuple(dict.fromkeys(n.strip() for n in items if n.strip()))
    if not numbers or not all(NUMBER.fullmatch(n) for n in numbers):
        raise ValueError(f"emergency numbers must be 2-10 digits each, not {value!r}")
    return numbers


def is_emergency(number: str, numbers: tuple[str, ...]) -> bool:
    """Whether the dialled `number` is one of `numbers`, as a whole."""
    return number.lstrip("+") in numbers
