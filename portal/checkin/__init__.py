"""The check-in desk: find the voter, issue the ballot, watch precinct turnout move."""
