"""Request bodies: JSON read and validated by hand, after the caller has been authenticated
(FastAPI would parse a declared body before running any dependency, answering 400 to a caller
who should get 401). Every failure is a 400 naming the field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from app.authn.verify import MAX_TOKEN_LENGTH
from app.core.errors import BadRequest
from app.iam.names import MAX_DESCRIPTION_LENGTH
from app.iam.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

MAX_BODY_BYTES = 64 * 1024
MAX_PUBLIC_KEY_LENGTH = 16 * 1024

M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LoginBody(_Body):
    uid: str
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    token: str | None = Field(default=None, max_length=MAX_TOKEN_LENGTH)


class UserBody(_Body):
    """PUT (create) and PATCH (update) of a user: a person has a password (or none), a service
    account a public key."""

    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH
    )
    public_key: str | None = Field(default=None, max_length=MAX_PUBLIC_KEY_LENGTH)


class DescriptionBody(_Body):
    """Groups and ACLs."""

    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


async def read_body(request: Request, model: type[M]) -> M:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"body: larger than {MAX_BODY_BYTES} bytes", parameter="body")
    try:
        return model.model_validate_json(bytes(raw) if raw.strip() else b"{}")
    except ValidationError as exc:
        raise BadRequest(_describe(exc), parameter="body") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        if error["type"] == "json_invalid":
            return "body: malformed JSON"
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
