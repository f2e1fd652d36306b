"""The signed-in user\x27s own account: password, sessions, two-factor sign-in."""
