"""Contests and their candidates, edited within the election page."""
