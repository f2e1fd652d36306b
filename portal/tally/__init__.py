"""The tally: per contest, votes, percentages, leader, precincts reporting, turnout."""
