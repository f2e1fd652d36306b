"""Staff accounts and roles (admins only)."""
