"""Who is listening: the login page and form, logging out, the password change (``/account``: it ends every other
session), and ``/api/library/me`` for the page's script. Forms carry the session's CSRF token (``FormCsrfDep``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from musicindex.errors import MusicIndexError
from musicindex.web import sessions
from musicindex.web.deps import FormCsrfDep, IndexDep, PageUserDep, ViewerDep
from musicindex.web.render import PAGE, page
from musicindex.web.responses import Json

router = APIRouter(default_response_class=Json, tags=["library"])
NO_ACCOUNTS = "This server has no accounts"


def safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site only."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/api/library/me", summary="Who the page acts for, and whether the server has accounts")
def me(v: ViewerDep) -> Any:
    user = v.user
    return {
        "accounts": v.accounts,
        "logged_in": v.logged_in,
        "user": None if user is None else {"id": user.id, "name": user.name, "local": user.is_system},
    }


@router.get("/login", **PAGE)
def login_page(request: Request, next: str = Query("/", max_length=2000)) -> Response:
    return page(request, "login.html", next=safe_next(next), error=None, login_name="")


@router.post("/login", **PAGE)
def login(
    index: IndexDep,
    request: Request,
    _: FormCsrfDep,
    v: ViewerDep,
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    next: str = Form("/", max_length=2000),
) -> Response:
    if not v.accounts:
        problem = f"{NO_ACCOUNTS}: the page is yours without logging in (`musicindex user add NAME` creates one)."
        return page(request, "login.html", status_code=400, next=safe_next(next), login_name=name, error=problem)
    user = index.users.authenticate_password(name, password)
    if user is None:
        problem = "Wrong name or password."
        return page(request, "login.html", status_code=401, next=safe_next(next), login_name=name, error=problem)
    response = RedirectResponse(safe_next(next), status_code=303)
    sessions.start(request, response, user)
    return response


@router.post("/logout", **PAGE)
def logout(request: Request, _: FormCsrfDep, v: ViewerDep) -> Response:
    response = RedirectResponse("/login" if v.accounts else "/", status_code=303)
    sessions.start(request, response, None)
    return response


@router.get("/account", **PAGE)
def account(request: Request, _: PageUserDep, changed: bool = Query(False)) -> Response:
    return page(request, "account.html", error=None, done=changed)


@router.post("/account", **PAGE)
def change_password(
    index: IndexDep,
    request: Request,
    _: FormCsrfDep,
    __: PageUserDep,
    v: ViewerDep,
    current: str = Form("", max_length=1024),
    new: str = Form("", max_length=1024),
    repeat: str = Form("", max_length=1024),
) -> Response:
    if not v.logged_in:
        none = f"{NO_ACCOUNTS}: there is no password to change."
        return page(request, "account.html", status_code=400, done=False, error=none)
    problem: str | None = None
    if index.users.authenticate_password(v.user.name, current) is None:
        problem = "The current password is wrong."
    elif new != repeat:
        problem = "The new password and its repetition differ."
    if problem is None:
        try:
            index.users.set_password(v.user.name, new)
        except MusicIndexError as exc:
            problem = str(exc)
    if problem is not None:
        return page(request, "account.html", status_code=422, error=problem, done=False)
    response = RedirectResponse("/account?changed=1", status_code=303)
    sessions.start(request, response, v.user)  # the epoch moved: this browser stays in, every other session ends
    return response
