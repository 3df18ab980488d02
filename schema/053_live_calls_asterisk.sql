-- The live_calls view shows which Asterisk each live call runs on (schema 050).

CREATE OR REPLACE VIEW live_calls AS
SELECT k.id AS call_id, c.code AS client, k.direction, k.number, k.prefix, k.rate_per_min,
       k.max_seconds, k.reserved, k.emergency, k.server, k.asterisk, k.channel, k.uniqueid,
       k.authorized_at, k.expires_at
FROM calls k JOIN clients c ON c.id = k.client_id
WHERE k.state = 'live';
