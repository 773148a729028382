"""Checked strings for config fields: `Annotated[str, Check(fn)]` runs `fn` after msgspec's type check.

Each check returns the value to keep (possibly normalised, e.g. an IDNA-encoded host) or raises
ValueError with a message for the user. Messages never repeat a value that may hold a credential
(a URL with user:password@, a header value). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from string import Formatter
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import msgspec

Loc = tuple[str | int, ...]
S = TypeVar("S", bound=msgspec.Struct)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TAG_FIELDS = ("key", "path", "dirname", "basename", "stem", "ext", "bucket")
"""Placeholders a tag template may use, e.g. "{dirname}" or "obj:{key}"."""

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP token (RFC 9110): header names and methods."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PATH_UNSAFE = re.compile(r"[\x00-\x20\x7f?#\\]")


@dataclass(frozen=True, slots=True)
class Check:
    """Marks an annotated field with a check the config loader runs on its value."""

    run: Callable[[str], str]


def host_name(value: str) -> str:
    """A DNS name or IPv4 address as a browser sends it in Host; non-ASCII names are IDNA-encoded."""
    if not value or any(c in value for c in "/ \\@?#") or "://" in value:
        raise ValueError(f"{_show(value)} is not a host name (write www.example.com, no scheme)")
    if value.startswith("*"):
        raise ValueError(f"{_show(value)}: wildcard hosts cannot be purged; name each host")
    if ":" in value:
        raise ValueError(f"{_show(value)}: a host takes no port (a cache node's port goes in its endpoint)")
    if not value.isascii():
        value = _idna(value)
    if len(value) > 253 or not _HOST.fullmatch(value):
        raise ValueError(f"{_show(value)} is not a valid host name (letters, digits, '-' and '.' only)")
    return value


def _idna(value: str) -> str:
    import idna  # httpx's own IDNA 2008 codec: the name is then exactly what goes on the wire

    try:
        return idna.encode(value, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValueError(f"{_show(value)} is not a valid international host name ({error})") from None


def endpoint_url(value: str) -> str:
    """An http(s) URL with a host, optionally a port and path; no credentials, query or fragment."""
    if _CONTROL.search(value) or " " in value:
        raise ValueError("a URL cannot contain spaces or control characters")
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if url.username is not None or url.password is not None:
        raise ValueError("must not contain user:password@ (send credentials as headers or secrets)")
    if not url.hostname:
        raise ValueError("has no host")
    if url.query or url.fragment or "?" in value or "#" in value:
        raise ValueError("must not have a query (?…) or fragment (#…)")
    return value


def api_base(value: str) -> str:
    """An endpoint URL that credentials may be sent to: https, or http only to this machine."""
    url = urlsplit(endpoint_url(value))
    if url.scheme != "https" and url.hostname not in LOOPBACK:
        raise ValueError("must be an https:// URL (credentials are sent to it); http only to localhost")
    return value


def http_token(value: str) -> str:
    """A header name or method: letters, digits and !#$%&'*+-.^_`|~ only."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{_show(value)} is not a valid HTTP header name or method")
    return value


def header_value(value: str) -> str:
    """Printable ASCII with no surrounding whitespace (the value itself is never shown)."""
    if not value.isascii() or _CONTROL.search(value):
        raise ValueError("a header value must be printable ASCII, without control characters")
    if value != value.strip():
        raise ValueError("a header value must not start or end with whitespace")
    return value


def url_path(value: str) -> str:
    """A rooted URL path prefix, stored without its trailing '/'."""
    if not value:
        return value
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if _PATH_UNSAFE.search(value) or not value.isascii():
        raise ValueError("must be a plain URL path: no spaces, '?', '#', '\\', control or non-ASCII characters")
    if any(segment in (".", "..") for segment in value.split("/")):
        raise ValueError("must not contain '.' or '..' segments")
    return value.rstrip("/")


def tag_template(value: str) -> str:
    """Literal text and {field} placeholders of TAG_FIELDS only: no attributes, indexes or format specs."""
    try:
        parts = list(Formatter().parse(value))
    except ValueError:
        parts = [("", "", "!", None)]  # an unmatched brace: reported below
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TAG_FIELDS or spec or conversion:
            raise ValueError(f"tag {_show(value)} uses an unknown placeholder; use {{{'}, {'.join(TAG_FIELDS)}}}")
    return value


def _show(value: str) -> str:
    """A value for a message: quoted, control characters escaped, cut at 80 characters."""
    return repr(value[:80] + ("…" if len(value) > 80 else ""))


Host = Annotated[str, Check(host_name)]
EndpointUrl = Annotated[str, Check(endpoint_url)]
ApiBase = Annotated[str, Check(api_base)]
HttpToken = Annotated[str, Check(http_token)]
HeaderValue = Annotated[str, Check(header_value)]
UrlPath = Annotated[str, Check(url_path)]
TagTemplate = Annotated[str, Check(tag_template)]


class Checker:
    """Converts raw YAML data to a typed value (msgspec Structs, lists, dicts, scalars), collecting
    every problem with its location instead of stopping at the first (msgspec's own convert does)."""

    INVALID: Any = object()

    def __init__(self) -> None:
        self.problems: list[tuple[Loc, str]] = []

    def value(self, raw: Any, tp: Any, at: Loc) -> Any:
        """`raw` as `tp`, or INVALID after recording why not."""
        by_origin = self._BY_ORIGIN.get(get_origin(tp))
        if by_origin is not None:
            return by_origin(self, raw, tp, at)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self.struct(raw, tp, at)
        return self._run(getattr(tp, "from_config", None) or _constrained(tp), raw, at)

    def struct(self, raw: Any, cls: type[S], at: Loc, also_known: Iterable[str] = ()) -> S:
        """A Struct from a mapping: unknown and missing fields reported, then its __post_init__ run."""
        if not isinstance(raw, dict):
            return self._invalid(at, f"expected a mapping, got {_kind(raw)}")  # type: ignore[no-any-return]
        fields = _fields(cls)
        before = len(self.problems)
        for key in raw:
            if key not in fields:
                known = ", ".join(sorted({*fields, *also_known}))
                self._invalid((*at, key), f"unknown field (known: {known})")
        values: dict[str, Any] = {}
        for name, info in fields.items():
            if name in raw:
                values[info.name] = self.value(raw[name], info.type, (*at, name))
            elif info.required:
                self._invalid((*at, name), "required")
        if len(self.problems) > before:
            return self.INVALID  # type: ignore[no-any-return]
        return self._run(lambda _: cls(**values), raw, at)  # type: ignore[no-any-return]

    def _literal(self, raw: Any, tp: Any, at: Loc) -> Any:
        if isinstance(raw, str) and raw in get_args(tp):
            return raw
        return self._invalid(at, f"expected one of {', '.join(map(repr, get_args(tp)))}")

    def _annotated(self, raw: Any, tp: Any, at: Loc) -> Any:
        inner, *extras = get_args(tp)
        value = self.value(raw, inner, at)
        for extra in extras:
            if value is self.INVALID:
                break
            if isinstance(extra, msgspec.Meta):
                shallow = _SHALLOW.get(get_origin(inner), inner)  # items were checked: only the constraint
                value = self._run(_constrained(Annotated[shallow, extra]), value, at)
            elif isinstance(extra, Check):
                value = self._run(extra.run, value, at)
        return value

    def _union(self, raw: Any, tp: Any, at: Loc) -> Any:
        options = get_args(tp)
        if raw is None and type(None) in options:
            return None
        rest = [o for o in options if o is not type(None)]
        if len(rest) == 1:
            return self.value(raw, rest[0], at)
        return self._run(lambda value: msgspec.convert(value, Union[tuple(rest)]), raw, at)  # noqa: UP007

    def _list(self, raw: Any, tp: Any, at: Loc) -> Any:
        (item,) = get_args(tp)
        if not isinstance(raw, list):
            return self._invalid(at, f"expected a list, got {_kind(raw)}")
        values = [self.value(x, item, (*at, i)) for i, x in enumerate(raw)]
        return self.INVALID if any(v is self.INVALID for v in values) else values

    def _dict(self, raw: Any, tp: Any, at: Loc) -> Any:
        key_type, value_type = get_args(tp)
        if not isinstance(raw, dict):
            return self._invalid(at, f"expected a mapping, got {_kind(raw)}")
        values = {}
        for key, value in raw.items():
            here = (*at, key if isinstance(key, str | int) else repr(key))
            values[self.value(key, key_type, here)] = self.value(value, value_type, here)
        return self.INVALID if self.INVALID in values or self.INVALID in values.values() else values

    def _run(self, convert: Callable[[Any], Any], raw: Any, at: Loc) -> Any:
        try:
            return convert(raw)
        except (msgspec.ValidationError, ValueError, TypeError) as error:
            return self._invalid(at, humane(str(error)))

    def _invalid(self, at: Loc, message: str) -> Any:
        self.problems.append((at, message))
        return self.INVALID

    _BY_ORIGIN: ClassVar[dict[Any, Callable[[Checker, Any, Any, Loc], Any]]] = {
        Annotated: _annotated,
        Union: _union,
        UnionType: _union,
        Literal: _literal,
        list: _list,
        dict: _dict,
    }


@cache
def _fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A Struct's fields by their name in the config. Kept: msgspec evaluates every annotation again
    at each call (~0.3 ms a route), which made a config of 200 routes take 50 ms longer to load."""
    return {f.encode_name: f for f in msgspec.structs.fields(cls)}


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def humane(message: str) -> str:
    """msgspec's "Expected `int` >= 1, got `str`" as "expected an integer >= 1, got a string"."""
    message = message.partition(" - at `$")[0]
    message = re.sub(r"`(\w+)`", lambda m: _TYPE_WORDS.get(m.group(1), m.group(1)), message)
    message = re.sub(r" of length >= (\d+)", r" with at least \1 item(s)", message)
    message = re.sub(r" of length <= (\d+)", r" with at most \1 item(s)", message)
    return message[:1].lower() + message[1:]


_SHALLOW: dict[Any, Any] = {list: list[Any], dict: dict[Any, Any]}


def _constrained(tp: Any) -> Callable[[Any], Any]:
    return lambda value: msgspec.convert(value, tp)


def _kind(raw: Any) -> str:
    if raw is None:
        return "nothing"
    name = "object" if isinstance(raw, dict) else "array" if isinstance(raw, list) else type(raw).__name__
    return _TYPE_WORDS.get(name, name)
