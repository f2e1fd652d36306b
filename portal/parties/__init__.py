"""Parties: name, abbreviation and the colour of their tally bars."""
