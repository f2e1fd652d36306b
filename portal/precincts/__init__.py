"""Precincts: the reference CRUD screen."""
