"""Incidents and complaints on election day: a report form and a live feed for supervisors."""
