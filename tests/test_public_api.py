"""The public face: `ocnb.__all__`, each name's signature (pinned in a snapshot, so a change to
the API is a visible change to this file's fixture), and a docstring for every public member."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import ocnb

SNAPSHOT = Path(__file__).parent / "fixtures" / "public-api.json"
UPDATE = "OCNB_UPDATE_API"  # set it to write the snapshot after a deliberate change


def _members(cls: type) -> dict[str, Any]:
    """A class's own public members and those of its ocnb bases (not the standard library's)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("ocnb"):
            found.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
    return dict(sorted(found.items()))


def _signature(obj: Any) -> str:
    if isinstance(obj, property | staticmethod | classmethod):
        obj = obj.fget if isinstance(obj, property) else obj.__func__
        if obj is None:
            return "property"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return type(obj).__name__
    return str(signature.replace(parameters=[_plain(p) for p in signature.parameters.values()]))


def _plain(parameter: inspect.Parameter) -> inspect.Parameter:
    """A default shown by its type where its repr is a value of this machine (`os.environ`)."""
    default = parameter.default
    if default is parameter.empty or len(repr(default)) <= 60:
        return parameter
    return parameter.replace(default=_Shown(type(default).__name__))


class _Shown:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.text}>"


def public_api() -> dict[str, Any]:
    api: dict[str, Any] = {}
    for name in sorted(ocnb.__all__):
        obj = getattr(ocnb, name)
        if inspect.isclass(obj):
            members = {
                member: ("property" if isinstance(value, property) else _signature(value))
                for member, value in _members(obj).items()
                if callable(value) or isinstance(value, property | staticmethod | classmethod)
            }
            api[name] = {"class": _signature(obj), "members": members}
        elif callable(obj):
            api[name] = _signature(obj)
        else:
            api[name] = type(obj).__name__
    return api


def test_the_public_api_is_the_pinned_one() -> None:
    api = public_api()
    if os.environ.get(UPDATE):
        SNAPSHOT.write_text(json.dumps(api, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    changed = sorted(k for k in api.keys() | pinned.keys() if api.get(k) != pinned.get(k))
    assert not changed, f"the public API changed in {changed}: if meant, rerun with {UPDATE}=1"


def test_every_public_name_is_exported_from_where_it_lives() -> None:
    for name in ocnb.__all__:
        obj = getattr(ocnb, name)
        assert not inspect.ismodule(obj), f"ocnb.{name} is a module, not a name"
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("ocnb."), name
            assert obj.__name__ == name, f"ocnb.{name} is {obj.__name__}"


def test_every_public_member_says_what_it_is() -> None:
    undocumented = []
    for name in ocnb.__all__:
        obj = getattr(ocnb, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        if not inspect.getdoc(obj):
            undocumented.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for member, value in _members(obj).items():
                target = value.fget if isinstance(value, property) else value
                if callable(target) and not (target.__doc__ or "").strip():
                    undocumented.append(f"{name}.{member}")
    assert not undocumented, f"no docstring: {undocumented}"
