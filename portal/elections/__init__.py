"""Elections: the list, the election page, and the lifecycle draft -> open -> closed -> certified."""
