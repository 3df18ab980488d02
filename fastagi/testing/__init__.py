"""Asterisk's side, imitated: fakes for tests, the benchmarks and `ictcontact simulate`.
Nothing in the product's call path imports this package."""
