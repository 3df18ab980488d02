"""The privileges Asterisk's database account needs, in one table.

`ictcontact asterisk grants` writes them (the statements: fastagi.store.asterisk_access) and
`ictcontact asterisk check` verifies them from this same table, so the documented grants, the shipped configuration and the check can
never disagree. Asterisk reads the realtime views and writes only registrations and CDRs.
"""

from __future__ import annotations

# object -> privileges (what res_config_odbc / cdr_adaptive_odbc do with it)
ASTERISK_NEEDS: dict[str, tuple[str, ...]] = {
    "ps_endpoints": ("SELECT",),                              # PJSIP realtime, read per request
    "ps_auths": ("SELECT",),
    "ps_aors": ("SELECT",),
    "ps_contacts": ("SELECT", "INSERT", "UPDATE", "DELETE"),  # registrations
    "cdr": ("SELECT", "INSERT"),                              # cdr_adaptive_odbc (reads columns)
    "ast_queues": ("SELECT",),                                # app_queue realtime queues
    "ast_queue_members": ("SELECT",),                         # and their members
}
