"""Pure parsers of AGI script arguments into request values (BadRequest on bad input)."""
