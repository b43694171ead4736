"""Rendering pages: the signed-in user, the language, the navigation, translated texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from kuzet.api.deps import SESSION_COOKIE
from kuzet.services import accounts
from kuzet.store.models import User
from kuzet.web.i18n import LANGUAGE_NAMES, LANGUAGES, for_language, translate, zone_name

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
    from kuzet import capabilities

    items: list[NavItem] = []
    for module in capabilities.page_modules():
        items.extend(getattr(module, "NAV", []))
    return sorted(items, key=lambda i: (i.order, i.key))


def current_user(request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    inst = request.app.state.installation
    return accounts.authenticate_reading(inst.db, token)


def language(request: Request, user: User | None) -> str:
    if user is not None and user.language in LANGUAGES:
        return user.language
    lang = request.cookies.get("kuzet_lang") or request.app.state.installation.settings.default_language
    return lang if lang in LANGUAGES else "ru"


def time_zone(request: Request, user: User | None) -> str:
    """The zone every time on the page is shown in: the user's own, else the installation's (default Asia/Almaty)."""
    own = getattr(user, "timezone", None)
    return own or request.app.state.installation.settings.timezone


def same_origin_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site ("/x?y") as given; anything that could leave the site
    ("//evil", "/\\evil", "https://evil", "javascript:…", control characters that browsers strip) becomes "/".

    ``static/js/api.js: sameOriginPath`` applies the same rule in the browser.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def login_redirect(request: Request) -> RedirectResponse:
    target = same_origin_path(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def boot_data(lang: str, user: User | None, timezone: str = "Asia/Almaty") -> dict:
    """What the page's scripts read into ``window.KUZET`` (from a JSON block, see ``templates/base.html``): the
    language, its texts, the user, and the time zone every time on the page is shown in."""
    return {"lang": lang, "texts": for_language(lang), "timezone": timezone,
            "user": {"id": user.id, "username": user.username, "role": user.role} if user else None}


def page(request: Request, user: User | None, template: str, status_code: int = 200, **context) -> HTMLResponse:
    lang = language(request, user)
    nav = [n for n in nav_items() if user is not None and (n.roles is None or user.role in n.roles)]
    return templates.TemplateResponse(request, template, {
        "user": user, "lang": lang, "languages": LANGUAGE_NAMES, "nav": nav,
        "t": lambda key, **values: translate(key, lang, **values),
        "timezone": time_zone(request, user), "zone": zone_name(time_zone(request, user), lang),
        "boot": boot_data(lang, user, time_zone(request, user)), **context,
    }, status_code=status_code)


def signed_in_page(request: Request, template: str, **context) -> HTMLResponse | RedirectResponse:
    """A page for any signed-in user; the login page (and back here) for anyone else."""
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    return page(request, user, template, **context)


def not_found_page(request: Request, user: User | None) -> HTMLResponse:
    return page(request, user, "not_found.html", status_code=404)
