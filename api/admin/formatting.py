"""How the dashboard's templates show numbers, times and money, and what every template
gets (the CSRF token, who is logged in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request, url_for

from api.admin.blueprint import bp
from api.admin.session import csrf_token
from api.principal import current_principal
from api.services import services
from refract.core.errors import Unauthorized

# Shown for a value not known (yet): an en dash, as a table cell reads it.
DASH = "\N{EN DASH}"


@bp.app_template_filter("usd")
def usd(value: float | None) -> str:
    """Dollars with enough digits to tell a cheap job from a free one."""
    if not value:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


@bp.app_template_filter("secs")
def secs(value: float | None) -> str:
    """Seconds, short: ``0.84 s``, ``12.3 s``, ``3 min 5 s``; a dash when unknown."""
    if value is None:
        return DASH
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest} s"


@bp.app_template_filter("clock")
def clock(value: str | datetime | None) -> str:
    """A time of day in UTC (``14:03:27``) from a datetime or its ISO form."""
    if value is None:
        return DASH
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%H:%M:%S")


@bp.app_template_filter("count")
def count(value: int | None) -> str:
    """A count with thousands separators; a dash when unknown."""
    return DASH if value is None else f"{value:,}"


@bp.app_template_filter("image_urls")
def image_urls(value: Any) -> list[str]:
    """Every ``image_url`` in a feature's result, however deep (signed already)."""
    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value.get("image_url"), str):
            found.append(value["image_url"])
        for key, item in value.items():
            if key != "image_url":
                found.extend(image_urls(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(image_urls(item))
    return found


def page_url(cursor: str) -> str:
    """The jobs page with the current filters, from ``cursor`` on."""
    args: dict[str, Any] = {**request.args.to_dict(), "cursor": cursor}
    return url_for("admin.jobs", **args)


@bp.context_processor
def dashboard_globals() -> dict[str, Any]:
    """The CSRF token for forms, the operator's name, and the Flower link."""
    try:
        who = current_principal().name
    except Unauthorized:  # the login page: nobody yet
        who = None
    return {
        "csrf_token": csrf_token,
        "operator": who,
        "auth_off": services().settings.auth == "off",
        "flower_url": services().settings.flower_url,
        "page_url": page_url,
    }
