"""Validating request data with the models of ``api/schemas.py``.

Views call :func:`parse` instead of letting a framework hook validate, so that a failure
is raised as :class:`refract.core.errors.ValidationFailed` and rendered by the one error
handler in ``api/errors.py`` like every other problem.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from refract.core.errors import FieldError, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, *, what: str = "request") -> M:
    """``data`` validated as ``model``; ``ValidationFailed`` (422) listing every bad field.

    A string holding a NUL character is refused here, whatever the model says: Postgres
    can store it neither in text nor in JSONB, so it would otherwise fail (as a 500) only
    when the job is written.
    """
    unstorable = [
        FieldError(path or "body", f"{path or 'body'} contains a NUL character")
        for path in _nul_paths(data)
    ]
    if unstorable:
        raise ValidationFailed(
            f"{what} is not valid: {unstorable[0].message}", errors=unstorable[:20]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
        if len(errors) > 3:
            detail += f" (and {len(errors) - 3} more)"
        raise ValidationFailed(f"{what} is not valid: {detail}", errors=errors) from exc


def _nul_paths(data: Any, path: str = "") -> list[str]:
    """The dotted paths of the strings (keys included) in ``data`` that hold a NUL."""
    if isinstance(data, str):
        return [path] if "\x00" in data else []
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                found.append(sub.replace("\x00", "\\0"))
            found += _nul_paths(value, sub)
    elif isinstance(data, list | tuple):
        for index, item in enumerate(data):
            found += _nul_paths(item, f"{path}.{index}" if path else str(index))
    return found


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as ``{field, message}`` pairs with dotted field paths."""
    found: list[FieldError] = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = ".".join(str(part) for part in error["loc"])
        # Model-level checks have no location; they name the field in their context.
        field = loc or str(ctx.get("field") or "body")
        found.append(FieldError(field, _message(error, field)))
    return found


def _message(error: Any, field: str) -> str:
    """A client-facing message for one pydantic error."""
    kind = error["type"]
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a known field"
    if kind == "value_error" and "error" in error.get("ctx", {}):
        # Pydantic prefixes "Value error, "; the raised message is what the client needs.
        return str(error["ctx"]["error"])
    return str(error["msg"])
