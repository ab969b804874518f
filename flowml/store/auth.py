"""Users, API tokens and per-resource permissions for ``flowml server --auth``.

Passwords are stored as scrypt hashes (``scrypt$n$r$p$salt$hash``); tokens only as sha256.
Permission levels: NO_PERMISSIONS < READ < EDIT < MANAGE; no row means NO_PERMISSIONS (deny).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowml.exceptions import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from flowml.store.tables import (
    AuthTokenRow,
    AuthUserRow,
    ExperimentPermissionRow,
    RegisteredModelPermissionRow,
    table_of,
)
from flowml.store.tracking import now_ms

__all__ = [
    "PERMISSIONS",
    "User",
    "create_token",
    "create_user",
    "delete_permission",
    "delete_user",
    "get_permission",
    "get_user",
    "hash_password",
    "level",
    "permitted_experiment_ids",
    "permitted_model_names",
    "rename_model_permissions",
    "set_permission",
    "update_admin",
    "update_password",
    "user_count",
    "user_for_token",
    "verify_password",
]

PERMISSIONS = ("NO_PERMISSIONS", "READ", "EDIT", "MANAGE")
_SCRYPT = (2**14, 8, 1)

_USERS = table_of(AuthUserRow)
_TOKENS = table_of(AuthTokenRow)
_EXP = table_of(ExperimentPermissionRow)
_MODEL = table_of(RegisteredModelPermissionRow)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    is_admin: bool


def level(permission: str) -> int:
    try:
        return PERMISSIONS.index(permission)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid permission {permission!r}; expected one of {', '.join(PERMISSIONS)}"
        ) from None


def hash_password(password: str) -> str:
    if not password or len(password) < 8:
        raise InvalidParameterValue("Passwords must have at least 8 characters")
    n, r, p = _SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p)
    enc = base64.b64encode
    return f"scrypt${n}${r}${p}${enc(salt).decode()}${enc(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def _user(row: AuthUserRow) -> User:
    assert row.id is not None
    return User(row.id, row.username, row.is_admin)


def _user_row(session: Session, username: str) -> AuthUserRow:
    row = session.execute(
        select(AuthUserRow).where(AuthUserRow.username == username)  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if row is None:
        raise ResourceDoesNotExist(f"User with username={username} not found")
    return row


def user_count(session: Session) -> int:
    return len(session.execute(select(_USERS.c.id).limit(1)).all())


def create_user(session: Session, username: str, password: str, is_admin: bool = False) -> User:
    if not username or len(username) > 255:
        raise InvalidParameterValue("Username must be 1-255 characters")
    row = AuthUserRow(
        username=username, password_hash=hash_password(password), is_admin=is_admin, created_time=now_ms()
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ResourceAlreadyExists(f"User '{username}' already exists.") from exc
    return _user(row)


def get_user(session: Session, username: str) -> User:
    return _user(_user_row(session, username))


def authenticate(session: Session, username: str, password: str) -> User | None:
    row = session.execute(
        select(AuthUserRow).where(AuthUserRow.username == username)  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if row is None:
        hash_password("x" * 8)  # same work whether or not the user exists
        return None
    return _user(row) if verify_password(password, row.password_hash) else None


def update_password(session: Session, username: str, password: str) -> None:
    _user_row(session, username).password_hash = hash_password(password)


def update_admin(session: Session, username: str, is_admin: bool) -> None:
    _user_row(session, username).is_admin = is_admin


def delete_user(session: Session, username: str) -> None:
    session.delete(_user_row(session, username))


def create_token(session: Session, username: str, name: str) -> str:
    """A new random API token for ``username``; returned once, stored only as its sha256."""
    user = _user_row(session, username)
    token = "flowml_" + secrets.token_urlsafe(32)
    session.execute(
        insert(_TOKENS).values(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            user_id=user.id,
            name=name,
            created_time=now_ms(),
        )
    )
    return token


def user_for_token(session: Session, token: str) -> User | None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = session.execute(
        select(_USERS.c.id, _USERS.c.username, _USERS.c.is_admin)
        .join(_TOKENS, _TOKENS.c.user_id == _USERS.c.id)
        .where(_TOKENS.c.token_hash == digest)
    ).first()
    return User(row[0], row[1], row[2]) if row else None


def _table(kind: str):  # type: ignore[no-untyped-def]
    if kind == "experiment":
        return _EXP, _EXP.c.experiment_id
    if kind == "registered_model":
        return _MODEL, _MODEL.c.name
    raise InvalidParameterValue(f"Unknown permission resource {kind!r}")


def _key(kind: str, resource: str) -> object:
    return int(resource) if kind == "experiment" else resource


def get_permission(session: Session, kind: str, resource: str, user_id: int) -> str:
    table, column = _table(kind)
    value = session.execute(
        select(table.c.permission).where(column == _key(kind, resource), table.c.user_id == user_id)
    ).scalar()
    return str(value) if value else "NO_PERMISSIONS"


def set_permission(session: Session, kind: str, resource: str, user_id: int, permission: str) -> None:
    level(permission)
    table, column = _table(kind)
    key = _key(kind, resource)
    done = session.execute(
        update(table).where(column == key, table.c.user_id == user_id).values(permission=permission)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(insert(table).values({column.key: key, "user_id": user_id, "permission": permission}))


def delete_permission(session: Session, kind: str, resource: str, user_id: int) -> None:
    table, column = _table(kind)
    done = session.execute(delete(table).where(column == _key(kind, resource), table.c.user_id == user_id))
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise ResourceDoesNotExist(f"No {kind} permission for {resource} and this user")


def _at_least(permission: str) -> list[str]:
    return list(PERMISSIONS[level(permission) :])


def permitted_experiment_ids(session: Session, user_id: int, permission: str = "READ") -> list[str]:
    rows = session.execute(
        select(_EXP.c.experiment_id).where(
            _EXP.c.user_id == user_id, _EXP.c.permission.in_(_at_least(permission))
        )
    )
    return [str(r[0]) for r in rows]


def permitted_model_names(session: Session, user_id: int, permission: str = "READ") -> list[str]:
    rows = session.execute(
        select(_MODEL.c.name).where(
            _MODEL.c.user_id == user_id, _MODEL.c.permission.in_(_at_least(permission))
        )
    )
    return [str(r[0]) for r in rows]


def rename_model_permissions(session: Session, name: str, new_name: str) -> None:
    session.execute(update(_MODEL).where(_MODEL.c.name == name).values(name=new_name))
