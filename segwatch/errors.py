"""Errors that carry the field at fault and the reason, for clear rejections."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names the field and says why. The CLI prints it without a traceback."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}
