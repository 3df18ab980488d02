"""Low-balance, suspension and reactivation alerts: the notifier that sends the outbox
(schema/135) by e-mail and signed webhook. docs/alerts.md says how to set it up."""
