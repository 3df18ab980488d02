"""Every SQL statement of the product: one function per unit of work, `fn(engine, ...)`,
run on the database threads (`services.db.run`), each one `with engine.begin()`, results
as frozen dataclasses. Nothing outside store/ and db/ writes SQL (tests/layout checks it)."""
