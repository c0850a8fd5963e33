"""The stream's filter: what it shows, read from a query string or a form."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from tidings import models
from tidings.errors import BadRequest
from tidings.ui.pages import PREFIX

PAGE_SIZE = 50
FILTERS = ("eventName", "platform", "label", "txKey", "txState", "since", "until")

Model = TypeVar("Model", bound=BaseModel)

#: Epoch milliseconds have 13 digits; query parameters longer than this are not numbers we
#: take (Python refuses to parse integers of over 4,300 digits at all).
MAX_DIGITS = 16


def whole_number(value: str) -> int | None:
    """A query parameter as a non-negative integer, or None if it is not one."""
    return int(value) if value.isdigit() and len(value) <= MAX_DIGITS else None


def parse_time(name: str, value: str) -> int:
    """Epoch milliseconds, or an ISO date and time (UTC unless it says otherwise)."""
    if value.isdigit():
        number = whole_number(value)
        if number is None:
            raise BadRequest(f"{name}: epoch ms have at most {MAX_DIGITS} digits")
        return number
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: give a time like 2025-01-31T12:00 (UTC), or epoch ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def validated(model: type[Model], fields: Mapping[str, Any]) -> Model:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise BadRequest("; ".join(problems)) from None


class Filter:
    """The stream's filter as given (for forms and links) and parsed (for the store)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.raw = {name: params.get(name, "").strip() for name in FILTERS}
        self.page = whole_number(params.get("page", "")) or 1

    @property
    def active(self) -> dict[str, str]:
        return {name: value for name, value in self.raw.items() if value}

    def link(self, path: str = "", **changes: str | int) -> str:
        """A URL with this filter, changed; "" drops a field."""
        fields = {**self.active, **changes}
        query = urlencode({name: value for name, value in fields.items() if value != ""})
        return f"{PREFIX}{path}?{query}" if query else f"{PREFIX}{path}"

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = dict(self.active)
        for name in ("since", "until"):
            if name in fields:
                fields[name] = parse_time(name, fields[name])
        return fields

    def query(self, **changes: Any) -> models.QueryRequest:
        fields = {"page": self.page, "pageSize": PAGE_SIZE, "newestFirst": True}
        return validated(models.QueryRequest, {**fields, **self.fields(), **changes})

    @property
    def live(self) -> bool:
        """Whether new events belong on this page: the first, with no end to its time range."""
        return self.page == 1 and not self.raw["until"]
