"""The periodic work `ictcontact serve` runs beside the FastAGI server: the stale-call
sweep, and with AMI the enforcement, reconciliation and slice extension jobs."""
