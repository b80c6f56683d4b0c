# PYTHON_ARGCOMPLETE_OK
"""``tactkit`` entry point.

Command groups are discovered: every module in :mod:`tactkit.cli` that defines
``register(subparsers)`` adds its sub-commands. Group modules only build parsers at import;
heavy imports (torch, pybullet, zarr) happen inside the handlers, so ``tactkit --help`` is fast.
A handler is stored as ``func`` on the parsed namespace and returns an exit code.

Errors: bad input (``ValueError``, ``KeyError``, ``FileNotFoundError``, a missing optional
package) prints one ``error:`` line; any other exception prints one line naming its type and
suggests ``--debug``, which shows the traceback instead. Shell completion: with argcomplete
installed, ``eval "$(register-python-argcomplete tactkit)"``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import re
import sys

import tactkit
import tactkit.cli as cli_pkg

#: exit status of a command whose output pipe was closed (128 + SIGPIPE, as coreutils report it)
EXIT_BROKEN_PIPE = 141


def plain(text: str | None) -> str | None:
    """Help text without reStructuredText markup: ````make demo```` -> ``make demo``,
    ``:mod:`tactkit.sim``` -> ``tactkit.sim``."""
    if not text:
        return text
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def _clean_help(parser: argparse.ArgumentParser) -> None:
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help) if isinstance(action.help, str) else action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help)
            for sub in action.choices.values():
                _clean_help(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tactkit",
        description="Visual-tactile robot learning: record, train, control, simulate.",
        epilog="Every command has --help. Shell completion and install extras: docs/install.md.",
    )
    parser.add_argument("--version", action="version", version=f"tactkit {tactkit.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"tactkit.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    _clean_help(parser)
    return parser


def error_message(exc: BaseException) -> str:
    """One line for a person: the message of a bad-input error (a ``KeyError``'s without the
    quotes ``str()`` adds), the type and message of anything else."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"{exc} (an optional package is missing: see the install extras in docs/install.md)"
    if isinstance(exc, (ValueError, FileNotFoundError, ImportError, KeyError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


def _silence_stdout() -> None:
    """After a broken pipe: send what is left for stdout to /dev/null, so that the
    interpreter's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        import argcomplete
    except ImportError:  # completion is optional
        pass
    else:
        argcomplete.autocomplete(parser)
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        level = logging.WARNING - 10 * min(args.verbose, 2)
        logging.basicConfig(level=logging.DEBUG if args.debug else level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        rc = int(func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return rc
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tactkit ... | head`
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if debug:
            raise
        print(f"error: {error_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
