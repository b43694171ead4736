"""Every error leaves the API as ``{"error": {"code": "...", "message": "...", "key": "...", "params": {...}}}``.

``code`` is stable, for programs; ``message`` is for people, in the language the request asks for (``Accept-Language``:
the console sends the user's; English when none of ru, kk, en is asked for); ``key`` and ``params`` name the message
itself (a catalogue key and the values filling it), so a client can show it in a language of its own. Messages are
written in English where they are raised; their translations are ``api_error.<name>`` entries of the console's
catalogue whose English text is the message's pattern (``{camera} not found``), so one entry translates every message
of that shape. A message without a translation has the key of its code (``api_error.code.invalid``) and keeps its
English words (``params.detail``) after a translated lead-in ("Неверные данные: …"); tests/test_console_errors.py
holds the messages the console's forms can meet to having translations. Values a message names from the code are
translated too: a noun in ``{what}`` by its ``api_noun.<noun>`` entry (``params.what_key`` names it for clients), a
right or role by its label, and a message wrapped in ``{cause}`` by its own entry.

Validation errors (422 from the request's shape) are one problem per field: ``key`` is ``api_validation``
and ``params.problems`` lists ``{"key": "api_validation.<what>", "params": {"field": …, …}}``; each
field is named by its label (``label.field.<name>``) in the reader's language.
"""

from __future__ import annotations

import functools
import logging
import re
import types
import typing
from typing import Any

import annotated_types
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("kuzet.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "invalid", 429: "too_many_requests", 500: "internal",
          503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers


def not_found(what: str = "not found") -> ApiError:
    """What a user may not see is answered exactly like what does not exist."""
    return ApiError(404, what, "not_found")


def error_body(code: str, message: str, key: str | None = None, params: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "key": key or f"api_error.code.{code}",
                      "params": params if params is not None else {}}}


# --- messages in the reader's language ----------------------------------------------------------------------------

def request_language(request: Request | None) -> str:
    """The first of ru, kk, en that ``Accept-Language`` asks for (by weight); English when none is."""
    header = request.headers.get("accept-language", "") if request is not None else ""
    asked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        asked.append((-weight, index, tag.strip().lower().split("-")[0]))
    for _weight, _index, lang in sorted(asked):
        if lang in ("ru", "kk", "en"):
            return lang
    return "en"


@functools.cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    """(English pattern, catalogue key) of every translated API message; those with more fixed words first."""
    from kuzet.web.i18n import catalogue

    found = []
    for key, entry in catalogue().items():
        english = entry.get("en") if key.startswith("api_error.") else None
        if isinstance(english, str):
            parts = re.split(r"\{(\w+)\}", english)
            regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
            found.append((re.compile(regex, re.DOTALL), key, len("".join(parts[::2]))))
    return [(pattern, key) for pattern, key, _length in sorted(found, key=lambda p: -p[2])]


def explain(code: str, message: str) -> tuple[str, dict[str, Any]]:
    """The catalogue key of ``message`` and the values filling it (``api_error.code.<code>`` and ``detail`` when no
    entry's pattern matches)."""
    for pattern, key in _patterns():
        match = pattern.fullmatch(message or "")
        if match:
            params = match.groupdict()
            if "what" in params and (named := noun_key(params["what"])):
                params["what_key"] = named  # a client translates the noun itself: the whole sentence in its language
            return key, params
    return f"api_error.code.{code}", ({"detail": message} if message else {})


def localise(code: str, message: str, lang: str) -> str:
    """``message`` in ``lang``: its ``api_error`` translation, else the code's lead-in and the English words."""
    if lang == "en" or not message:
        return message
    from kuzet.web.i18n import catalogue, translate

    key, params = explain(code, message)
    if key != f"api_error.code.{code}" or "detail" not in params:
        if "field" in params:  # a field's name (``cell``, ``valid_to``) as the reader calls it
            params["field"] = field_label(params["field"], lang)
        if "what" in params:
            named = noun(params["what"], lang)
            if named is None and key == "api_error.what_not_found":
                return translate(f"api_error.code.{code}", lang)  # «Не найдено», not half a sentence in English
            params["what"] = named if named is not None else params["what"]
        for name, group in _VALUE_LABELS.items():
            if name in params and f"label.{group}.{params[name]}" in catalogue():
                params[name] = translate(f"label.{group}.{params[name]}", lang)
        if "known" in params:  # the values a field accepts, by their names in the language
            params["known"] = value_names(params["known"], lang)
        if "cause" in params:  # a message wrapping another one ("part keys: …"): that one in the language too
            cause = localise(code, params["cause"], lang)
            params["cause"] = cause[:1].lower() + cause[1:] if cause[1:2].islower() else cause
        return translate(key, lang, **_quoted(params, translate(key, lang)))
    if key not in catalogue():
        return message
    general = translate(key, lang)
    return general if code == "not_found" else f"{general}: {message}"


def _quoted(params: dict[str, Any], template: str) -> dict[str, Any]:
    """A value the code quoted Python's way (``{kind!r}`` → ``'x'``) in the language's quotes: bare where the
    translation already puts it in «», else in «» (never «'x'»)."""
    out = {}
    for name, value in params.items():
        if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1] if f"«{{{name}}}»" in template else f"«{value[1:-1]}»"
        out[name] = value
    return out


# Values from the code that a message names (``{right}``, ``{role}``), by the label group that translates them.
_VALUE_LABELS = {"right": "right", "role": "role"}


def noun(what: str, lang: str) -> str | None:
    """The noun a message names (``camera``, ``routing agreement``, ``place 12 (Central)``) in ``lang``: its
    ``api_noun.<noun>`` entry, with the number or name that follows kept; ``None`` when the noun has no entry."""
    from kuzet.web.i18n import translate

    key = noun_key(what)
    if key is None:
        return None
    return " ".join([translate(key, lang), *what.split(" ")[len(key.split(".", 1)[1].split("_")):]])


def noun_key(what: str) -> str | None:
    """The catalogue key of the noun ``what`` begins with (``api_noun.camera`` for ``camera 12``), if it has one."""
    from kuzet.web.i18n import catalogue

    words = what.split(" ")
    return next((key for cut in range(len(words), 0, -1)
                 if (key := "api_noun." + "_".join(words[:cut])) in catalogue()), None)


def localised(request: Request | None, code: str, message: str, status: int, headers: dict | None = None
              ) -> JSONResponse:
    key, params = explain(code, message)
    return JSONResponse(error_body(code, localise(code, message, request_language(request)), key, params),
                        status_code=status, headers=headers)


def rejected_rows(request: Request, message: str, rows: list[tuple[int, str]]) -> JSONResponse:
    """422 for an import refused whole: the general message and each bad row's (line, message), every message in the
    reader's language with its key and values."""
    from kuzet.web.i18n import translate, translate_n

    lang = request_language(request)
    shown = message
    if lang != "en":
        listed = "; ".join(translate("api_import.row_line", lang, line=line, message=localise("invalid", text, lang))
                           for line, text in rows[:20])
        shown = translate_n("api_import.rows_rejected", len(rows), lang, rows=listed)
    body = error_body("import_rejected", shown, "api_import.rows_rejected", {"n": len(rows)})
    body["error"]["rows"] = [{"line": line, "message": localise("invalid", text, lang),
                              **dict(zip(("key", "params"), explain("invalid", text), strict=True))}
                             for line, text in rows]
    return JSONResponse(body, status_code=422)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return localised(request, exc.code, exc.message, exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return localised(request, _CODES.get(exc.status_code, "error"), message, exc.status_code,
                         getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(request, exc.errors())
        lang = request_language(request)
        message = validation_message(request, exc.errors()) if lang == "en" else validation_text(problems, lang)
        return JSONResponse(error_body("invalid", message, "api_validation", {"problems": problems}),
                            status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # The last line of defence (routes check what they can first): nothing was written, say so plainly.
        log.info("refused by the database: %s", type(exc.orig).__name__)
        return localised(request, "conflict", "the change conflicts with existing data or refers to an object that "
                                              "does not exist; nothing was changed", 409)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        log.info("value refused by the database: %s", type(exc.orig).__name__)
        return localised(request, "invalid", "a value does not fit the database (too long or out of range); nothing "
                                             "was changed", 422)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # Handled here (not by the catch-all below, which Starlette re-raises to the server's own log), so an outage
        # of the database is one short line per request, not two tracebacks.
        from kuzet.store.db import unavailable

        if unavailable(exc):
            log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else type(exc).__name__)
            return localised(request, "unavailable", "the database is not reachable right now; try again shortly",
                             503, {"Retry-After": "2"})
        log.exception("database error", exc_info=exc)
        return localised(request, "internal", "internal error", 500)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # Date arithmetic on a time near year 1 or 9999, a number beyond what a computation takes.
        log.info("input out of range: %s", exc)
        return localised(request, "invalid", "a date or number is out of the range this request can use", 422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return localised(request, "internal", "internal error", 500)


# --- validation messages: each field by name, with the range or the values it accepts ---------------------------------

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}
_LOCATIONS = ("body", "query", "path", "header", "cookie")


def validation_message(request: Request, errors: typing.Sequence[Any]) -> str:
    """``camera_id: must be within 1..2147483647 (got 99999999999)``; ``rights.0: Input should be 'view_live', …
    (got ' manage')``: every problem of the request, naming its field."""
    problems = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        name = ".".join(str(p) for p in loc if p not in _LOCATIONS)
        message = str(err.get("msg"))
        if err.get("type") in _RANGE_ERRORS:
            bounds = _bounds(request, loc)
            if bounds:
                message = f"must be {bounds}"
        given = err.get("input")
        if given is None and err.get("type") not in ("missing", "json_invalid"):
            message = "may not be null"
        if err.get("type") not in ("missing", "json_invalid") and isinstance(given, str | int | float | bool) and (
                len(repr(given)) <= 40):
            message += f" (got {given!r})"
        problems.append(f"{name}: {message}" if name else message)
    return "; ".join(problems)


# pydantic's error types, by the catalogue entry that says them (api_error.validation.<entry>); the values each one
# needs come from the error's ``ctx``.
_VALIDATION_KEYS = {
    "missing": "missing", "missing_argument": "missing", "json_invalid": "json_invalid",
    "string_too_short": "string_too_short", "string_too_long": "string_too_long", "too_short": "too_short",
    "too_long": "too_long", "string_type": "string_type", "string_pattern_mismatch": "pattern",
    "int_parsing": "int_parsing", "int_type": "int_parsing", "int_from_float": "int_parsing",
    "float_parsing": "float_parsing", "float_type": "float_parsing", "decimal_parsing": "float_parsing",
    "bool_parsing": "bool_parsing", "bool_type": "bool_parsing", "finite_number": "finite_number",
    "greater_than": "greater_than", "greater_than_equal": "greater_than_equal", "less_than": "less_than",
    "less_than_equal": "less_than_equal", "enum": "enum", "literal_error": "enum",
    "date_parsing": "date_parsing", "date_type": "date_parsing", "date_from_datetime_parsing": "date_parsing",
    "date_from_datetime_inexact": "date_parsing", "datetime_parsing": "datetime_parsing",
    "datetime_type": "datetime_parsing", "datetime_from_date_parsing": "datetime_parsing",
    "time_parsing": "time_parsing", "time_type": "time_parsing", "timezone_aware": "datetime_parsing",
    "list_type": "list_type", "tuple_type": "list_type", "set_type": "list_type", "dict_type": "dict_type",
    "model_type": "dict_type", "model_attributes_type": "dict_type", "extra_forbidden": "extra_forbidden",
    "url_parsing": "url_parsing", "url_type": "url_parsing", "url_scheme": "url_parsing", "uuid_parsing": "invalid",
    "value_error": "value_error", "assertion_error": "value_error", "null": "null", "within": "within",
}
_SIGNS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
_CTX = {"min_length": "min", "max_length": "max", "ge": "min", "gt": "min", "le": "max", "lt": "max",
        "expected": "expected", "pattern": "pattern"}


def validation_problems(request: Request, errors: typing.Sequence[Any]) -> list[dict[str, Any]]:
    """Each problem of the request as ``{"key": "api_validation.<what>", "params": {"field": …, …}}``."""
    problems = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        kind = str(err.get("type"))
        params: dict[str, Any] = {"field": ".".join(str(p) for p in loc if p not in _LOCATIONS)}
        ctx = err.get("ctx") or {}
        for name, to in _CTX.items():
            if name in ctx:
                params[to] = _number(ctx[name]) if isinstance(ctx[name], int | float) else str(ctx[name])
        what = _VALIDATION_KEYS.get(kind, "invalid")
        if kind in _RANGE_ERRORS:
            low, high = _range(request, loc)
            if low and high and low[0] == ">=" and high[0] == "<=":
                what, params["min"], params["max"] = "within", low[1], high[1]
            elif low and high:
                what = "bounds"
                params.update(min_op=_SIGNS[low[0]], min=low[1], max_op=_SIGNS[high[0]], max=high[1])
            elif low or high:
                bound = low or high
                what = {">=": "greater_than_equal", ">": "greater_than", "<=": "less_than_equal",
                        "<": "less_than"}[bound[0]]
                params["min" if low else "max"] = bound[1]
        if "expected" in params:  # "'auto', 'exact' or 'greedy'" → "auto, exact, greedy"
            params["expected"] = ", ".join(re.findall(r"'([^']*)'", params["expected"])) or params["expected"]
        if kind == "value_error" and "error" in ctx:
            params["detail"] = str(ctx["error"])
        given = err.get("input")
        if given is None and kind not in ("missing", "json_invalid", "missing_argument"):
            what = "null"
        elif kind not in ("missing", "json_invalid") and isinstance(given, str | int | float | bool) and (
                len(repr(given)) <= 40):
            params["got"] = str(given)
        problems.append({"key": f"api_validation.{what}", "params": params})
    return problems


def field_label(field: str, lang: str) -> str:
    """A field's path (``rights.0``, ``zones.1.name``) as the reader calls it: its label, and a list item's number."""
    from kuzet.web.i18n import catalogue, translate

    named = []
    for part in field.split("."):
        if part.isdigit():
            named.append(f"№{int(part) + 1}")
        elif part:
            named.append(translate(f"label.field.{part}", lang) if f"label.field.{part}" in catalogue() else part)
    return " ".join(named)


@functools.cache
def _label_groups() -> dict[str, set[str]]:
    from kuzet.web.i18n import catalogue

    groups: dict[str, set[str]] = {}
    for key in catalogue():
        if key.startswith("label.") and key.count(".") >= 2:
            _label, group, value = key.split(".", 2)
            groups.setdefault(group, set()).add(value)
    return groups


def value_names(values: str, lang: str) -> str:
    """"region, district, …" (the values a field accepts) by their names in ``lang``, from the label group that
    names them all (``label.place_kind.*``); as given when no group does."""
    from kuzet.web.i18n import translate

    items = [v.strip() for v in values.split(",") if v.strip()]
    group = next((g for g, named in _label_groups().items() if items and set(items) <= named), None)
    if group is None:
        return values
    return ", ".join(f"«{translate(f'label.{group}.{v}', lang)}»" for v in items)


def validation_text(problems: list[dict[str, Any]], lang: str) -> str:
    """The problems in ``lang``: «Широта: допустимо от −90 до 90 (получено 91); …»."""
    from kuzet.web.i18n import catalogue, translate

    texts = []
    for problem in problems:
        params = dict(problem["params"])
        key = problem["key"] if problem["key"] in catalogue() else "api_validation.invalid"
        if "detail" in params:
            code_key, found = explain("invalid", params["detail"])
            params["detail"] = (translate(code_key, lang, **found) if code_key != "api_error.code.invalid"
                                else params["detail"])
        if "expected" in params:
            params["expected"] = value_names(params["expected"], lang)
        text = translate(key, lang, **{k: v for k, v in params.items() if k not in ("field", "got")})
        if "got" in params:
            text += translate("api_validation.got", lang, got=params["got"])
        label = field_label(params.get("field", ""), lang)
        texts.append(f"{label}: {text}" if label else text)
    return "; ".join(texts)


def _range(request: Request, loc: tuple) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    try:
        annotation, info = _field_at(request.scope.get("route"), loc)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None, None
    if annotation is None:
        return None, None
    low: tuple[str, str] | None = None
    high: tuple[str, str] | None = None
    for item in _metadata(annotation, info):
        if isinstance(item, annotated_types.Ge):
            low = (">=", _number(item.ge))
        elif isinstance(item, annotated_types.Gt):
            low = (">", _number(item.gt))
        elif isinstance(item, annotated_types.Le):
            high = ("<=", _number(item.le))
        elif isinstance(item, annotated_types.Lt):
            high = ("<", _number(item.lt))
    return low, high


def _bounds(request: Request, loc: tuple) -> str | None:
    """The declared range of the field at ``loc`` (``within 1..2147483647``, ``> 0 and <= 5000``), if found."""
    low, high = _range(request, loc)
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f"within {low[1]}..{high[1]}"
    return " and ".join(f"{b[0]} {b[1]}" for b in (low, high) if b) or None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _field_at(route: Any, loc: tuple) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of the parameter or body field that ``loc`` points at."""
    where, rest = loc[0], list(loc[1:])
    dependant = route.dependant
    if where != "body":
        for field in _params(dependant, where):
            if field.alias == rest[0]:
                return _walk(field.field_info.annotation, field.field_info, rest[1:])
        return None, None
    bodies = dependant.body_params
    if len(bodies) == 1 and (not rest or rest[0] != bodies[0].alias or not getattr(
            bodies[0].field_info, "embed", False)):
        return _walk(bodies[0].field_info.annotation, bodies[0].field_info, rest)
    for field in bodies:
        if rest and field.alias == rest[0]:
            return _walk(field.field_info.annotation, field.field_info, rest[1:])
    return None, None


def _params(dependant: Any, where: str) -> typing.Iterator[Any]:
    yield from getattr(dependant, f"{where}_params", [])
    for sub in dependant.dependencies:
        yield from _params(sub, where)


def _walk(annotation: Any, info: Any, path: list) -> tuple[Any, Any]:
    for part in path:
        annotation = _strip_optional(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation, info = (args[0] if args else None), None
        else:
            fields = getattr(annotation, "model_fields", None)
            if not fields or part not in fields:
                return None, None
            info = fields[part]
            annotation = info.annotation
    return annotation, info


def _strip_optional(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _metadata(annotation: Any, info: Any) -> list[Any]:
    found = list(getattr(info, "metadata", None) or [])
    pending = [annotation]
    while pending:
        current = pending.pop()
        if typing.get_origin(current) is typing.Annotated:
            base, *extra = typing.get_args(current)
            for item in extra:
                found.extend(getattr(item, "metadata", None) or [item])
            pending.append(base)
        elif typing.get_origin(current) in (typing.Union, types.UnionType):
            pending.extend(typing.get_args(current))
    return found
