"""``airflow redis-xcom <command>``: the provider info's ``cli`` field (read by Airflow 3.2 and later).

The commands are built from the ``redis-xcom`` console script's own argparse parser, so both take
the same arguments, help and defaults; Airflow runs them through :func:`redis_xcom.ops.cli.run`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from redis_xcom.ops.cli import build_parser, run, subcommands

GROUP = "redis-xcom"


def _escape(text: str | None) -> str:
    """Airflow renders help with rich: [redis_xcom] would be read as markup and vanish."""
    return (text or "").replace("[", "\\[")


def _arg_kwargs(action: argparse.Action) -> dict[str, Any]:
    """What Airflow's Arg passes to add_argument to recreate this argparse action."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        kind = "store_true" if isinstance(action, argparse._StoreTrueAction) else "store_false"
        return {"action": kind, "help": _escape(action.help), "dest": action.dest}
    if type(action) is not argparse._StoreAction:
        raise AssertionError(f"argument {action.option_strings} of a kind Airflow's Arg cannot express")
    kwargs: dict[str, Any] = {"help": _escape(action.help), "dest": action.dest, "default": action.default}
    for name in ("type", "metavar", "choices", "nargs"):
        if getattr(action, name) is not None:
            kwargs[name] = getattr(action, name)
    if action.required:
        kwargs["required"] = True
    return kwargs


def _runner(command: str) -> Any:
    def run_command(args: argparse.Namespace) -> None:
        args.command = command
        code = run(args)
        if code:
            sys.exit(code)

    run_command.__name__ = f"redis_xcom_{command}"
    return run_command


def get_cli_commands() -> list[Any]:
    """The ``redis-xcom`` group of Airflow's CLI, one action per command of the console script."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    commands = [
        ActionCommand(
            name=name,
            help=_escape(help_),
            description=_escape(sub.description),
            func=_runner(name),
            args=[
                Arg(tuple(action.option_strings), **_arg_kwargs(action))
                for action in sub._actions
                if action.option_strings and not isinstance(action, argparse._HelpAction)
            ],
        )
        for name, help_, sub in subcommands(build_parser())
    ]
    return [
        GroupCommand(
            name=GROUP,
            help="redis-xcom: demo, doctor, stats, clear and gc (the redis-xcom command's own)",
            subcommands=commands,
        )
    ]
