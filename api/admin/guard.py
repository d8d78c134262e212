"""What every dashboard request must pass: an admin caller, and CSRF on every change."""

from __future__ import annotations

from flask import request

from api.admin.blueprint import bp
from api.admin.session import check_csrf
from api.auth import PUBLIC_ENDPOINTS
from api.principal import current_principal
from refract.core.errors import Forbidden


@bp.before_request
def admins_only() -> None:
    """403 for a client key; the login page and assets are open to everyone."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        check_csrf()  # the login form is a change too (it starts a session)
        return
    if not current_principal().is_admin:
        raise Forbidden("the dashboard is for admin keys")
    check_csrf()
