-- A call whose failover ended in no-route says so in its record (issue 22): calls
-- .route_outcome, set by the failover request that found no usable trunk after a trunk
-- failed (every trunk of the route failed, was full or cooling down, or max_tries was
-- used). Before, such a call read settled / CONGESTION (or CHANUNAVAIL) with no reason,
-- and `no-route` was only in the serve log.
-- A column of its own, not review_note or reason: settle and the stale sweep write
-- review_note (and reason is the refusal of a REJECTED attempt, which the campaign
-- triggers copy), so the failover's word would be overwritten or misread. Failover writes
-- it under the call's row lock while the call is live; settle never touches it, so a
-- repeated settle changes nothing.
-- call_rejections (009) is re-created to list these calls too (reason 'no-route', the
-- caller heard the no-route prompt): in the 15x range because it re-creates a view, and
-- the key comes after 132's and 153's keys on calls whatever order they ran in.

ALTER TABLE calls
  ADD COLUMN route_outcome ENUM('no-route') NULL
    COMMENT 'no-route: after a trunk failed, failover found no usable trunk (the caller got the no-route refusal); NULL otherwise'
    AFTER review_note,
  ADD KEY ix_calls_route_outcome (route_outcome);

DROP VIEW IF EXISTS call_rejections;

-- What was refused: rejected attempts, and admitted calls that failover ended in no-route
-- (state settled once their hangup is settled). Two key lookups (state; route_outcome).
CREATE VIEW call_rejections AS
SELECT k.id AS call_id, k.client_code AS client, k.direction, k.number,
       COALESCE(k.reason, k.route_outcome) AS reason,
       k.server, k.channel, k.authorized_at
FROM calls k
WHERE k.state = 'rejected' OR k.route_outcome IS NOT NULL;
