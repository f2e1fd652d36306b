"""Precinct returns: entry checked as you type, blind or confirming verification, revisions."""
