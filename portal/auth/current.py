from flask_login import current_user

from portal.models import User


def current_actor() -> User:
    """The signed-in user as a model instance (for the data layer and the audit trail)."""
    return current_user._get_current_object()
