-- calls.trunk_id (issue 22 routing): the trunk of the attempt that carried (or last
-- tried) the call, set by call_attempts' AFTER INSERT trigger (115). NULL: no trunk route
-- (a dial template, an emergency number, an inbound call, a call before routing).
-- Numbered after 150 because 132 adds a key to calls: run after it on every database, the
-- table's keys and foreign keys come out in the same order whatever order 115 and 132 ran in.

ALTER TABLE calls
  ADD COLUMN trunk_id INT UNSIGNED NULL
    COMMENT 'Trunk of the attempt that carried (or last tried) the call; NULL: no trunk route (dial template, emergency, inbound)'
    AFTER asterisk,
  ADD KEY ix_calls_trunk (trunk_id),
  ADD CONSTRAINT fk_calls_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id);
