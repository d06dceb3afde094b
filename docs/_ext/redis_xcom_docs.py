"""Reference tables generated from the code, so that the docs cannot drift from it.

``{redis-xcom-options}`` renders redis_xcom.provider_info.OPTIONS (the one table of [redis_xcom]
options, which config.py and ``airflow config list`` read too); ``{redis-xcom-cli}`` renders the
``--help`` of the ``redis-xcom`` parser and of each command (``airflow redis-xcom`` shares it).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from redis_xcom.ops.cli import build_parser, subcommands
from redis_xcom.provider_info import OPTIONS, SECTION


def _cell(text: str) -> str:
    """Plain text as one markdown table cell: nothing in it is read as markup."""
    for char in "\\*_<[`|":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


class OptionsTable(SphinxDirective):
    """The [redis_xcom] options: name, type, default, environment variable, meaning."""

    def run(self) -> list[nodes.Node]:
        rows = [
            "| option | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for option in OPTIONS:
            default = "(empty)" if option.default == "" else f"`{option.default}`"
            example = f" Example: `{option.example}`." if option.example else ""
            env = f"AIRFLOW__{SECTION.upper()}__{option.name.upper()}"
            sensitive = " Sensitive: masked by Airflow." if option.sensitive else ""
            rows.append(
                f"| `{option.name}`<br>`{env}` | {option.kind.__name__} | {default} "
                f"| {_cell(option.description)}{example}{sensitive} |"
            )
        container = nodes.container()
        self.state.nested_parse(StringList(rows, source="redis_xcom/provider_info.py"), 0, container)
        for table in container.findall(nodes.table):
            table["classes"].append("redis-xcom-options")  # its column widths: docs/_static/redis-xcom.css
        return list(container.children)


def _help(parser: argparse.ArgumentParser) -> str:
    # argparse wraps at $COLUMNS: fixed, so the page is the same on every machine.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


class CliReference(SphinxDirective):
    """`redis-xcom --help`, then each command's `--help`, from the parser itself."""

    def run(self) -> list[nodes.Node]:
        parser = build_parser()
        out: list[nodes.Node] = [nodes.literal_block(text=_help(parser), language="text")]
        for name, _, sub in subcommands(parser):
            out.append(nodes.rubric(text=f"redis-xcom {name}  (airflow redis-xcom {name})"))
            out.append(nodes.literal_block(text=_help(sub), language="text"))
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("redis-xcom-options", OptionsTable)
    app.add_directive("redis-xcom-cli", CliReference)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
