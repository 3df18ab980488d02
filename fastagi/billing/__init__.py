"""Pure rules of money: rating, admission, settlement, credit slices (values in, decisions
out; no database, no Asterisk)."""
