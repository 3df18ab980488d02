"""What Asterisk itself needs from the product's database: its ODBC login and privileges."""
