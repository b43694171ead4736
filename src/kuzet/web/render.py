"""Rendering pages: the signed-in user, the language, the navigation, translated texts."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from kuzet.api.deps import SESSION_COOKIE
from kuzet.services import accounts
from kuzet.store.models import User
from kuzet.web.i18n import LANGUAGE_NAMES, LANGUAGES, for_language, translate

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class NavItem:
    """An entry of the top navigation: shown to the listed roles (all signed-in users if None)."""

    key: str  # i18n key of its label
    href: str
    roles: frozenset[str] | None = None
    order: int = 50


def nav_items() -> list[NavItem]:
    from kuzet.web import pages

    items: list[NavItem] = []
    for info in pkgutil.iter_modules(pages.__path__):
        items.extend(getattr(importlib.import_module(f"kuzet.web.pages.{info.name}"), "NAV", []))
    return sorted(items, key=lambda i: i.order)


def current_user(request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    inst = request.app.state.installation
    with inst.db.session() as session:
        return accounts.authenticate(session, token)


def language(request: Request, user: User | None) -> str:
    if user is not None and user.language in LANGUAGES:
        return user.language
    lang = request.cookies.get("kuzet_lang") or request.app.state.installation.settings.default_language
    return lang if lang in LANGUAGES else "ru"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def page(request: Request, user: User | None, template: str, status_code: int = 200, **context) -> HTMLResponse:
    lang = language(request, user)
    nav = [n for n in nav_items() if user is not None and (n.roles is None or user.role in n.roles)]
    return templates.TemplateResponse(request, template, {
        "user": user, "lang": lang, "languages": LANGUAGE_NAMES, "nav": nav,
        "t": lambda key: translate(key, lang), "texts": for_language(lang), **context,
    }, status_code=status_code)


def signed_in_page(request: Request, template: str, **context) -> HTMLResponse | RedirectResponse:
    """A page for any signed-in user; the login page (and back here) for anyone else."""
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    return page(request, user, template, **context)


def not_found_page(request: Request, user: User | None) -> HTMLResponse:
    return page(request, user, "not_found.html", status_code=404)
