-- Which Asterisk authorized each call. A server connected to one Asterisk over AMI
-- enforces and reconciles only that Asterisk's live calls: several Asterisk boxes may
-- share one database.

ALTER TABLE calls
  ADD COLUMN asterisk VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Asterisk box whose FastAGI request authorized the call: its address as the FastAGI server saw it; NULL for calls before schema 050'
    AFTER server,
  ADD KEY ix_calls_asterisk_state (asterisk, state);
