-- rate_plan_id left empty means the default plan, as its comment says. An admin tool's
-- insert form sends '' for an empty NOT NULL integer field, which strict mode refuses
-- ("Incorrect integer value") before any trigger runs; for a NULL-able field with no
-- default it preselects NULL (Adminer's NULL function, phpMyAdmin's Null box), which the
-- clients triggers turn into the default plan (002 on INSERT, 090 on UPDATE). A stored row
-- always has a plan: the CHECK runs after the triggers.
ALTER TABLE clients
  MODIFY rate_plan_id INT UNSIGNED NULL DEFAULT NULL
    COMMENT 'Rate plan; left empty (NULL) it becomes the default plan',
  ADD CONSTRAINT ck_clients_rate_plan_set CHECK (rate_plan_id IS NOT NULL);
