"""Who a lab belongs to, and since when: labs are shared by everyone on a machine.

Lab commands run as root, so the uid says nothing about who typed them. The owner is
the user who invoked `lsr lab up`: `SUDO_USER` under sudo (also in a `sudo -s` or
`sudo -i` root shell), else the login name of the terminal (`logname`: a `su -` root
shell), else the name of the uid. It guards against accidents between students, not
against root, who can set `SUDO_USER` to anything.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import time
from typing import Any

from lsr.core.topology import MAX_LAB_NAME, NAME_RE


def invoking_user() -> dict[str, Any]:
    """{"user": name, "uid": uid or None} of the person behind this process."""
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        uid = os.environ.get("SUDO_UID", "")
        return {"user": sudo, "uid": int(uid) if uid.isdigit() else _uid_of(sudo)}
    try:
        login = os.getlogin()  # the terminal's login name: no terminal (cron, CI) raises
    except OSError:
        login = ""
    if login:
        return {"user": login, "uid": _uid_of(login)}
    uid = os.getuid()
    try:
        return {"user": pwd.getpwuid(uid).pw_name, "uid": uid}
    except KeyError:
        return {"user": str(uid), "uid": uid}


def _uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def owner_of(state: dict[str, Any]) -> str | None:
    """The user a lab's state records as its owner (None: a lab from before owners)."""
    o = state.get("owner")
    return o.get("user") if isinstance(o, dict) else None


def is_mine(state: dict[str, Any], me: dict[str, Any] | None = None) -> bool:
    """The lab is the invoking user's, or records no owner (nobody to protect it for)."""
    owner = owner_of(state)
    return owner is None or owner == (me or invoking_user())["user"]


def since(created: float | None, now: float | None = None) -> str:
    """`since 14:03:12, 00:05:10 ago`; the date too when it was not today."""
    from lsr.render import hms

    if not created:
        return "since an unknown time"
    now = time.time() if now is None else now
    fmt = "%H:%M:%S" if time.localtime(created)[:3] == time.localtime(now)[:3] else "%Y-%m-%d %H:%M"
    return f"since {time.strftime(fmt, time.localtime(created))}, {hms(now - created)} ago"


def whose(state: dict[str, Any], me: dict[str, Any] | None = None) -> str:
    """`yours`, `alice's` or `owner unknown`, for messages."""
    owner = owner_of(state)
    if owner is None:
        return "owner unknown"
    return "yours" if owner == (me or invoking_user())["user"] else f"{owner}'s"


def taken(lab: str, state: dict[str, Any], building_pid: int | None) -> str:
    """Why `lab up` cannot have the name `lab`, in one line: whose lab it is and since when,
    and what to do. `lsr lab down` is suggested only for the invoking user's own lab (or one
    that records no owner): never a way to destroy someone else's."""
    me = invoking_user()
    who, mine = whose(state, me), owner_of(state) == me["user"]
    when = since(state.get("created"))
    other = "choose another name with --name"
    alt = personal_name(lab, me)
    if not mine and alt and alt != lab:
        other += f", e.g. --name {alt}"
    if building_pid is not None:
        head = f"lab '{lab}' is being built by another 'lsr lab up' ({who}, pid {building_pid}, {when})"
        return f"{head}; 'lsr lab down {lab}' stops it, or {other}" if mine else f"{head}: {other}"
    head = f"lab '{lab}' is already up ({who}, {when})"
    if mine:
        return f"{head}: lsr lab down {lab} first, or {other}"
    if owner_of(state) is None:
        return f"{head}: {other} (or lsr lab down {lab} if it is yours)"
    return f"{head}: {other}"


def refuse_down(lab: str, state: dict[str, Any]) -> str | None:
    """The one line `lsr lab down` refuses with when the lab is someone else's, else None."""
    if is_mine(state):
        return None
    return (f"lab '{lab}' belongs to {owner_of(state)} (up {since(state.get('created'))}): "
            f"not taken down; lsr lab down {lab} --force takes down someone else's lab")


def user_suffix(me: dict[str, Any] | None = None) -> str:
    """A lab-name-safe token for the invoking user: the user name if it is one (lowercase
    letters, digits, '-', starting with a letter), else `u<uid>`, else a short hash."""
    me = me or invoking_user()
    name = str(me["user"])
    if NAME_RE.fullmatch(name):
        return name
    if me.get("uid") is not None:
        return f"u{me['uid']}"
    return "u" + hashlib.sha1(name.encode()).hexdigest()[:6]


def personal_name(base: str, me: dict[str, Any] | None = None) -> str | None:
    """`<base>-<user>` if that is a valid lab name (at most MAX_LAB_NAME characters), else
    `<base>-u<uid>` or `<base>-u<hash of the name>` if one is, else None."""
    me = me or invoking_user()
    uid = [f"u{me['uid']}"] if me.get("uid") is not None else []
    for suffix in [user_suffix(me), *uid, "u" + hashlib.sha1(str(me["user"]).encode()).hexdigest()[:6]]:
        name = f"{base}-{suffix}"
        if NAME_RE.fullmatch(name) and len(name) <= MAX_LAB_NAME:
            return name
    return None
