"""Where a job's video comes from: a path under ``--root``, an upload, a URL under an allowed prefix, a data URL.

Nothing else is read or fetched. Paths are confined as the web app's (:func:`garvideo.paths.resolve_under_root`:
``..``, absolute paths and symbolic links out are refused), at submission and again when the job runs.
Uploads (multipart, or a ``data:`` URL) are streamed to the job's upload folder under ``--state`` and
refused past the size limit; a URL is fetched when its job runs, into the same kind of folder, only when
it (and every redirect) lies under one of the operator's ``--allow-url`` prefixes. Every file lands
atomically: an upload is complete or absent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import shutil
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..files import atomic_path
from ..inputs import regular_file_problem
from ..paths import resolve_under_root, safe_file_name
from .store import JobStore

WHERE = "the server's --root folder"
_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)
CHUNK = 1 << 20


class UploadTooLargeError(InvalidInputError):
    """An upload over the server's limit."""


@dataclass(frozen=True)
class Upload:
    """An upload written to its folder: the store's video record, and the SHA-256 of its bytes."""

    video: dict[str, Any]
    sha256: str


@dataclass(frozen=True)
class VideoSources:
    """What this server may read: ``root`` (None: no paths), URL prefixes, and the largest upload."""

    root: Path | None
    allowed_urls: tuple[str, ...] = ()
    max_upload_mb: float = 2048.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    def from_text(self, text: str, store: JobStore) -> tuple[dict[str, Any], str]:
        """The store's record of a request's ``"video"`` (a path, a URL or a data URL), and a fingerprint of it."""
        if text.startswith("data:"):
            upload = self.save_data_url(text, store)
            return upload.video, upload.sha256
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", text):
            url = check_url(text, self.allowed_urls)
            upload_id, _ = store.new_upload_folder()
            return {"source": "url", "name": url, "url": url, "upload": upload_id}, url
        if self.root is None:
            raise InvalidInputError(
                f"this server reads no paths ({text!r}): upload the video, or start the server with --root FOLDER"
            )
        path = resolve_under_root(self.root, text, WHERE)
        problem = regular_file_problem(path)
        if problem is not None:  # a folder of frames too: its files could lead anywhere
            raise InvalidInputError(f"{text!r} under {WHERE} cannot be read as a video: {problem}")
        return {"source": "root", "name": text.strip(), "path": str(path)}, text.strip()

    def local_path(self, video: dict[str, Any], store: JobStore) -> Path:
        """The file to read for a stored video record (a URL is fetched now, once)."""
        if video["source"] == "root":
            if self.root is None:
                raise InvalidInputError(f"this server reads no paths: {video['name']!r} cannot be read")
            return resolve_under_root(self.root, video["name"], WHERE)  # again: the folder may have changed
        folder = store.uploads_root / video["upload"]
        if video["source"] == "url":
            return self._fetched(video["url"], folder)
        return folder / video["file"]

    def save_data_url(self, text: str, store: JobStore) -> Upload:
        match = _DATA_URL.match(text)
        if match is None or not match.group("b64"):
            raise InvalidInputError("a data: URL video must be base64: data:video/mp4;base64,...")
        encoded = text[match.end() :]
        if len(encoded) * 3 // 4 > self.max_upload_bytes:
            raise UploadTooLargeError(self.too_large())
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError("the data: URL video is not valid base64") from None
        upload_id, folder = store.new_upload_folder()
        name = "video" + _suffix(match.group("type"))
        with atomic_path(folder / name) as partial:
            partial.write_bytes(data)
        return Upload(_upload_record(upload_id, name, name), hashlib.sha256(data).hexdigest())

    async def read_multipart(
        self, chunks: AsyncIterator[bytes], content_type: str, store: JobStore
    ) -> tuple[bytes | None, Upload | None]:
        """The parts of a multipart body: ``request`` (the JSON) and ``video`` (streamed to a new upload folder,
        refused past the size limit). Any other part is refused."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise InvalidInputError("a multipart body needs a boundary in its Content-Type")
        parts = _Parts(self, store)
        parser = MultipartParser(boundary, parts.callbacks())
        try:
            async for chunk in chunks:
                parser.write(chunk)
                parts.raise_problem()
            parser.finalize()
            parts.raise_problem()
            return parts.finish()
        except BaseException:
            parts.abandon()
            raise

    def too_large(self) -> str:
        return f"the upload is larger than this server's limit of {self.max_upload_mb:g} MB"

    def _fetched(self, url: str, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if done:
            return done[0]  # fetched by an earlier run of the job
        return fetch_url(url, self.allowed_urls, folder, self.max_upload_bytes, self.too_large())


def _upload_record(upload_id: str, file_name: str, shown: str) -> dict[str, Any]:
    return {"source": "upload", "name": shown, "upload": upload_id, "file": file_name}


def _suffix(media_type: str | None) -> str:
    subtype = (media_type or "").split("/")[-1].lower()
    return {"quicktime": ".mov", "x-matroska": ".mkv", "x-msvideo": ".avi"}.get(subtype, f".{subtype or 'mp4'}")


def check_url(url: str, allowed: tuple[str, ...]) -> str:
    """``url`` when it lies under one of the ``allowed`` prefixes; one error line otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInputError(f"only http and https URLs are fetched, not {parts.scheme}:")
    if parts.username is not None or parts.password is not None or "\\" in url:
        raise InvalidInputError("a video URL may not carry a user name, a password or backslashes")
    segments = urllib.parse.unquote(parts.path).split("/")
    if ".." in segments or "." in segments:
        raise InvalidInputError(f"the video URL {url!r} has '.' or '..' in its path: give the plain URL")
    if not any(_under(url, prefix) for prefix in allowed):
        if not allowed:
            raise InvalidInputError("this server fetches no URLs (its operator allows none with --allow-url)")
        raise InvalidInputError(f"this server fetches only URLs under {', '.join(allowed)}, not {url}")
    return url


def _under(url: str, prefix: str) -> bool:
    """Whether ``url`` starts with ``prefix`` at a boundary (``https://a.org`` does not allow ``https://a.org.evil``)."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    return prefix.endswith("/") or rest == "" or rest[0] in "/?#"


def fetch_url(
    url: str, allowed: tuple[str, ...], folder: Path, max_bytes: int, too_large: str, max_redirects: int = 5
) -> Path:
    """Download ``url`` into ``folder`` (atomically, at most ``max_bytes``), following redirects that stay allowed."""
    import httpx

    try:
        return _fetch(httpx, url, allowed, folder, max_bytes, too_large, max_redirects)
    except httpx.HTTPError as exc:
        raise InvalidInputError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None


def _fetch(
    httpx: Any, url: str, allowed: tuple[str, ...], folder: Path, max_bytes: int, too_large: str, max_redirects: int
) -> Path:
    with httpx.Client(follow_redirects=False, timeout=60) as client:
        for _ in range(max_redirects + 1):
            with client.stream("GET", url) as response:
                if response.is_redirect:
                    url = check_url(urllib.parse.urljoin(url, response.headers.get("location", "")), allowed)
                    continue
                if response.status_code != 200:
                    raise InvalidInputError(f"fetching {url} gave HTTP {response.status_code}")
                name = safe_file_name(urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]))
                target = folder / name
                size = 0
                with atomic_path(target) as partial, open(partial, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise UploadTooLargeError(
                                f"{url} is larger than this server's limit of {max_bytes >> 20} MB"
                            )
                        out.write(chunk)
                return target
    raise InvalidInputError(f"fetching {url} was redirected more than {max_redirects} times")


class _Parts:
    """The callbacks of python-multipart's streaming parser: the JSON part kept, the video written to disk."""

    MAX_REQUEST_BYTES = 64 << 20  # the JSON part (masks as RLE can be large)

    def __init__(self, sources: VideoSources, store: JobStore) -> None:
        self.sources, self.store = sources, store
        self.request: bytearray | None = None
        self.headers: dict[bytes, bytes] = {}
        self.field = b""
        self.value = b""
        self.target: str | None = None  # the part being read: "request" or "video"
        self.video: tuple[str, str, Path, Any, Any] | None = None  # upload id, shown name, folder, stack, file
        self.size = 0
        self.digest = hashlib.sha256()
        self.problem: BaseException | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: setattr(self, "field", self.field + data[start:end]),
            "on_header_value": lambda data, start, end: setattr(self, "value", self.value + data[start:end]),
            "on_header_end": self._header,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
        }

    def _begin(self) -> None:
        self.headers, self.target = {}, None

    def _header(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if self.problem is None and name not in ("request", "video"):
            self.problem = InvalidInputError(f"unknown part {name!r}: send the parts 'request' (JSON) and 'video'")
        elif (name == "request" and self.request is not None) or (name == "video" and self.video is not None):
            self.problem = self.problem or InvalidInputError(f"the part {name!r} is given twice")
        elif name == "request":
            self.request = bytearray()
        elif self.problem is None:
            shown = params.get(b"filename", b"video").decode("utf-8", "replace")
            upload_id, folder = self.store.new_upload_folder()
            stack = contextlib.ExitStack()
            partial = stack.enter_context(atomic_path(folder / safe_file_name(shown)))
            self.video = (upload_id, shown, folder, stack, stack.enter_context(open(partial, "wb")))
        self.target = name if self.problem is None else None

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.target == "request" and self.request is not None:
            self.request += data[start:end]
            if len(self.request) > self.MAX_REQUEST_BYTES:
                self.problem, self.target = InvalidInputError("the 'request' part is too large"), None
        elif self.target == "video" and self.video is not None:
            self.size += end - start
            if self.size > self.sources.max_upload_bytes:
                self.problem, self.target = UploadTooLargeError(self.sources.too_large()), None
                return
            self.digest.update(data[start:end])
            self.video[4].write(data[start:end])

    def raise_problem(self) -> None:
        if self.problem is not None:
            raise self.problem

    def finish(self) -> tuple[bytes | None, Upload | None]:
        if self.video is None:
            return (bytes(self.request) if self.request is not None else None), None
        upload_id, shown, folder, stack, _ = self.video
        if self.size == 0:
            raise InvalidInputError("the uploaded video is empty")
        stack.close()  # the file is complete: it gets its name now
        file_name = safe_file_name(shown)
        record = _upload_record(upload_id, file_name, os.path.basename(shown.replace("\\", "/")) or file_name)
        return (bytes(self.request) if self.request is not None else None), Upload(record, self.digest.hexdigest())

    def abandon(self) -> None:
        if self.video is not None:
            _, _, folder, stack, _ = self.video
            with contextlib.suppress(BaseException):
                stack.__exit__(InvalidInputError, InvalidInputError("abandoned"), None)
            shutil.rmtree(folder, ignore_errors=True)
