"""Does an installed vendor SDK accept the calls a driver makes?

Each driver keeps, next to its code, a table of every SDK symbol it touches
(:class:`SdkCall`: module, dotted attribute, how many positional arguments and which
keywords it passes, or that it only reads / writes the attribute). :func:`check_calls`
resolves each entry in the installed SDK and asks the SDK's *own* signature whether it
accepts the call as the driver makes it. Most SDKs are pybind11 extensions, whose
signatures ``inspect`` cannot read; for those the signature lines pybind11 writes into each
docstring are parsed (every overload; ``argN`` parameters are positional-only, as pybind11
makes unnamed arguments). The tests also run each driver against a recording fake of its SDK
and require every recorded call to appear in the table, so the table cannot drift from the
code.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

POSITIONAL_ONLY, POSITIONAL, KEYWORD_ONLY, VAR_POSITIONAL, VAR_KEYWORD = range(5)


@dataclass(frozen=True)
class SdkCall:
    """One use of an SDK symbol by a driver.

    ``positional`` is the number of positional arguments the driver passes (not counting
    ``self``); ``None`` means the driver does not call the symbol but reads it (``write``:
    assigns it, e.g. a settable property).
    """

    module: str
    attribute: str  # dotted path inside the module: "Robot.move", "Mode.IDLE"
    positional: int | None = None
    keywords: tuple[str, ...] = ()
    write: bool = False

    def describe(self) -> str:
        if self.positional is None:
            return f"{self.module}.{self.attribute}" + (" (assigned)" if self.write else "")
        args = ["_"] * self.positional + [f"{k}=_" for k in self.keywords]
        return f"{self.module}.{self.attribute}({', '.join(args)})"


@dataclass(frozen=True)
class Param:
    name: str
    kind: int
    has_default: bool


def _split_top_level(text: str) -> list[str]:
    """Split ``text`` on commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>" and not (ch == ">" and i > 0 and text[i - 1] == "-"):
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _parse_params(text: str) -> list[Param]:
    params: list[Param] = []
    kind = POSITIONAL
    for raw in _split_top_level(text):
        if raw == "/":
            params = [Param(p.name, POSITIONAL_ONLY, p.has_default) for p in params]
            continue
        if raw == "*":
            kind = KEYWORD_ONLY
            continue
        if raw.startswith("**"):
            params.append(Param(raw[2:].split(":")[0].strip(), VAR_KEYWORD, False))
            continue
        if raw.startswith("*"):
            params.append(Param(raw[1:].split(":")[0].strip(), VAR_POSITIONAL, False))
            kind = KEYWORD_ONLY
            continue
        name = re.split(r"[:=]", raw, maxsplit=1)[0].strip()
        has_default = re.search(r"(?<![=!<>])=(?!=)", raw) is not None
        this_kind = POSITIONAL_ONLY if re.fullmatch(r"arg\d+", name) else kind
        params.append(Param(name, this_kind, has_default))
    return params


def docstring_signatures(obj: Any, name: str) -> list[list[Param]]:
    """Every signature pybind11 wrote for ``name`` in ``obj.__doc__`` (one per overload)."""
    doc = getattr(obj, "__doc__", None) or ""
    found: list[list[Param]] = []
    pattern = re.compile(rf"^\s*(?:\d+\.\s+)?{re.escape(name)}\((.*)\)\s*(?:->.*)?$")
    for line in doc.splitlines():
        m = pattern.match(line)
        if m:
            found.append(_parse_params(m.group(1)))
    overloads = [p for p in found if not _is_generic(p)]
    return overloads or found


def _is_generic(params: list[Param]) -> bool:
    """pybind11's first line of an overloaded function: ``name(*args, **kwargs)``."""
    return [p.kind for p in params] == [VAR_POSITIONAL, VAR_KEYWORD]


def _inspect_signature(obj: Any) -> list[Param] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD: POSITIONAL,
        inspect.Parameter.KEYWORD_ONLY: KEYWORD_ONLY,
        inspect.Parameter.VAR_POSITIONAL: VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD: VAR_KEYWORD,
    }
    params = [Param(p.name, kinds[p.kind], p.default is not inspect.Parameter.empty) for p in sig.parameters.values()]
    return None if _is_generic(params) else params


def binds(params: list[Param], positional: int, keywords: Iterable[str]) -> str | None:
    """None if a call with ``positional`` arguments and ``keywords`` binds to ``params``,
    else why not."""
    slots = [p for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL)]
    var_pos = any(p.kind == VAR_POSITIONAL for p in params)
    var_kw = any(p.kind == VAR_KEYWORD for p in params)
    if positional > len(slots) and not var_pos:
        return f"takes at most {len(slots)} positional arguments, the driver passes {positional}"
    filled = {p.name for p in slots[:positional]}
    for kw in keywords:
        match = next((p for p in params if p.name == kw), None)
        if match is None or match.kind in (POSITIONAL_ONLY, VAR_POSITIONAL, VAR_KEYWORD):
            if not var_kw:
                return f"has no keyword argument {kw!r}"
            continue
        if kw in filled:
            return f"got {kw!r} both positionally and as a keyword"
        filled.add(kw)
    missing = [p.name for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL, KEYWORD_ONLY)
               and not p.has_default and p.name not in filled]
    if missing:
        return f"requires {', '.join(missing)}, which the driver does not pass"
    return None


def resolve(module: ModuleType, attribute: str) -> tuple[Any, Any]:
    """(owner, value) of a dotted ``attribute`` in ``module``; AttributeError names the gap."""
    owner: Any = module
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise AttributeError(f"{getattr(value, '__name__', type(value).__name__)} has no attribute {part!r}")
        owner, value = value, getattr(value, part)
    return owner, value


def _signatures(owner: Any, value: Any, name: str) -> tuple[list[list[Param]], bool]:
    """(signatures, whether the first parameter is ``self``) of a callable or a class."""
    if inspect.isclass(value):
        init = value.__init__
        sigs = docstring_signatures(init, "__init__")
        if sigs:
            return sigs, True
        params = _inspect_signature(value)
        return ([params] if params is not None else []), False
    params = _inspect_signature(value)
    if params is not None:
        # a plain function looked up on its class still has ``self`` first
        return [params], inspect.isclass(owner) and inspect.isfunction(value)
    sigs = docstring_signatures(value, name)
    return sigs, bool(sigs and sigs[0] and sigs[0][0].name == "self")


def check_call(module: ModuleType, call: SdkCall) -> str | None:
    """None if ``module`` provides ``call`` as the driver makes it, else the problem."""
    try:
        owner, value = resolve(module, call.attribute)
    except AttributeError as exc:
        return f"{call.describe()}: {exc}"
    if call.positional is None:
        if call.write:
            prop = inspect.getattr_static(owner, call.attribute.rsplit(".", 1)[-1], None)
            if isinstance(prop, property) and prop.fset is None:
                return f"{call.describe()}: read-only property"
        return None
    if not callable(value):
        return f"{call.describe()}: not callable ({type(value).__name__})"
    name = call.attribute.rsplit(".", 1)[-1]
    sigs, has_self = _signatures(owner, value, name)
    if not sigs:
        return f"{call.describe()}: no readable signature"
    reasons = []
    for params in sigs:
        why = binds(params, call.positional + (1 if has_self else 0), call.keywords)
        if why is None:
            return None
        reasons.append(why)
    return f"{call.describe()}: the SDK's signature {'; '.join(sorted(set(reasons)))}"


def check_calls(calls: Iterable[SdkCall], modules: Mapping[str, ModuleType]) -> list[str]:
    """Every problem with ``calls`` against the given SDK ``modules`` (empty: all accepted)."""
    problems = []
    for call in calls:
        if call.module not in modules:
            problems.append(f"{call.describe()}: module {call.module!r} not given")
            continue
        why = check_call(modules[call.module], call)
        if why:
            problems.append(why)
    return problems
