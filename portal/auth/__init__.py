"""Sign-in, sign-out, roles, and the user of each request."""
