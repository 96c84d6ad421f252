"""Who may use the service: the clients of a ``--keys`` file, each known by the SHA-256 of its key.

A keys file has one client a line, ``NAME KEY`` or ``NAME sha256:HEX`` (the key's hash, so the file need not
hold the key itself); blank lines and lines starting with ``#`` are skipped. Only hashes are kept in memory
and in the job store (a job belongs to its client's NAME). Without a keys file every caller is the one
client :data:`ANONYMOUS`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from ..errors import InvalidInputError

ANONYMOUS = "anonymous"
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
#: A key shorter than this is refused: a guessable key is no key.
MIN_KEY_LENGTH = 16


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Keys:
    """Client names by key hash."""

    clients: tuple[tuple[str, str], ...]  # (name, SHA-256 hex of the key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keys:
        try:
            lines = open(path, encoding="utf-8").read().splitlines()  # noqa: SIM115 - read at once
        except OSError as exc:
            raise InvalidInputError(f"cannot read the keys file {path}: {exc.strerror or exc}") from None
        clients: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            clients.append(_client(text, f"{path}, line {number}"))
        names = [name for name, _ in clients]
        hashes = [digest for _, digest in clients]
        for what, values in (("name", names), ("key", hashes)):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                shown = repeated[0] if what == "name" else "(not shown)"
                raise InvalidInputError(f"the keys file {path} gives one {what} twice: {shown}")
        if not clients:
            raise InvalidInputError(f"the keys file {path} names no client: write one 'NAME KEY' a line")
        return cls(tuple(clients))

    def client(self, key: str) -> str | None:
        """The name of the client holding ``key``, or None (every hash is compared, in constant time each)."""
        digest = key_hash(key)
        found = None
        for name, known in self.clients:
            if hmac.compare_digest(digest, known):
                found = name
        return found


def _client(text: str, where: str) -> tuple[str, str]:
    parts = text.split()
    if len(parts) != 2:
        raise InvalidInputError(f"{where}: write 'NAME KEY' or 'NAME sha256:HEX', got {len(parts)} words")
    name, key = parts
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"{where}: a client name is 1 to 64 letters, digits, '_', '.', '@' or '-', got {name!r}"
        )
    hashed = _HASHED.fullmatch(key)
    if hashed:
        return name, hashed.group(1).lower()
    if key.startswith("sha256:"):
        raise InvalidInputError(f"{where}: a stored hash is sha256: and 64 hexadecimal digits")
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidInputError(f"{where}: the key of {name!r} is shorter than {MIN_KEY_LENGTH} characters")
    return name, key_hash(key)


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None
