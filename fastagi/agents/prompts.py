"""The sounds the agent login and logout scripts play: core Asterisk English sounds only
(Debian asterisk-core-sounds-en-gsm 1.6.1; the words each one says are in the comments).
"""

from __future__ import annotations

from fastagi.agents import rules

AGENT_USER = "agent-user"            # "Agent login. Please enter your agent number followed by the pound key."
AGENT_PASS = "agent-pass"            # "Please enter your password followed by the pound key."
AGENT_INCORRECT = "agent-incorrect"  # "Login incorrect. Please enter your agent number followed by the pound key."
AGENT_LOGIN_OK = "agent-loginok"     # "Agent logged in."
AGENT_LOGGED_OFF = "agent-loggedoff" # "Agent logged off."
NO_SERVICE = "ss-noservice"          # "The number you have dialed is not in service..."
IM_SORRY = "im-sorry"                # "I'm sorry."
TRY_LATER = "please-try-call-later"  # "Please try your call again later."
ERROR_BEEP = "beeperr"               # an error beep
GOODBYE = "goodbye"                  # "Goodbye!"

# What the caller hears when a login or logout is refused for good (retryable refusals
# are answered by the next prompt instead: AGENT_INCORRECT or AGENT_USER).
REFUSAL_SOUNDS: dict[str, tuple[str, ...]] = {
    rules.UNKNOWN_CLIENT: (NO_SERVICE,),
    rules.CLIENT_SUSPENDED: (NO_SERVICE,),
    rules.FOREIGN_EXTENSION: (NO_SERVICE,),
    rules.EXTENSION_DISABLED: (NO_SERVICE,),
    rules.AGENT_DISABLED: (IM_SORRY, GOODBYE),
    rules.LOCKED: (IM_SORRY, TRY_LATER),
    # the tries of one call are used up:
    rules.UNKNOWN_AGENT: (IM_SORRY, GOODBYE),
    rules.WRONG_PIN: (IM_SORRY, GOODBYE),
    rules.NO_INPUT: (GOODBYE,),
    rules.NOT_LOGGED_IN: (ERROR_BEEP, GOODBYE),
}

ALL = (AGENT_USER, AGENT_PASS, AGENT_INCORRECT, AGENT_LOGIN_OK, AGENT_LOGGED_OFF, NO_SERVICE,
       IM_SORRY, TRY_LATER, ERROR_BEEP, GOODBYE)


def refusal_sounds(reason: str) -> tuple[str, ...]:
    return REFUSAL_SOUNDS.get(reason, (IM_SORRY, GOODBYE))
