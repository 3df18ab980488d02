-- First-install data: the default rate plan (no rates yet: load a deck into it) and the
-- operator's own reseller account.

INSERT INTO rate_plans (name, description, is_default)
  VALUES ('default', 'Default plan: clients created without a plan get this one', 1);

INSERT INTO clients (code, name, channel_limit, status, notes)
  VALUES ('master', 'master', 50, 'active', 'The operator''s own reseller account');
