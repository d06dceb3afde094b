"""The provider registration: one table of options, published to Airflow and read by config.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redis_xcom.config import Settings, parse_option
from redis_xcom.errors import ConfigError
from redis_xcom.provider_info import OPTIONS, get_provider_info


def test_settings_and_the_table_name_the_same_options_with_the_same_defaults() -> None:
    by_field = {f.name: f for f in dataclasses.fields(Settings)}
    assert list(by_field) == [option.name for option in OPTIONS]
    for option in OPTIONS:
        assert by_field[option.name].default == option.default, option.name
        assert by_field[option.name].type == option.kind.__name__, option.name


def test_provider_info_describes_every_option_with_passwords_sensitive() -> None:
    info = get_provider_info()
    assert info["package-name"] == "redis-xcom"
    options = info["config"]["redis_xcom"]["options"]
    assert set(options) == {option.name for option in OPTIONS}
    assert options["ttl"] == {**options["ttl"], "type": "integer", "default": "604800"}
    assert options["sentinel_password"]["sensitive"] and options["url"]["sensitive"]
    assert all(entry["description"] for entry in options.values())


@pytest.mark.parametrize(("raw", "expected"), [("True", True), ("false", False), ("1", True), ("off", False)])
def test_boolean_options_parse_like_airflow_booleans(raw: str, expected: bool) -> None:
    assert parse_option("ssl_check_hostname", raw) is expected


def test_a_bad_boolean_names_the_option_and_a_bad_secret_is_not_echoed() -> None:
    with pytest.raises(ConfigError, match="ssl_check_hostname must be bool"):
        parse_option("ssl_check_hostname", "maybe")
    with pytest.raises(ConfigError, match="wait_replicas must be int"):
        parse_option("wait_replicas", "one")


def _airflow(home: Path, *args: str) -> str:
    return _python(home, "-m", "airflow", *args)


def _python(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.e2e
def test_airflow_lists_the_provider_and_its_config(tmp_path: Path) -> None:
    listing = _airflow(tmp_path, "providers", "list", "--output", "json")
    # Airflow 3.0 logs to stdout before the JSON: the listing is the line that is one JSON array.
    providers = json.loads(next(line for line in listing.splitlines() if line.startswith("[{")))
    ours = [p for p in providers if p["package_name"] == "redis-xcom"]
    assert ours, f"redis-xcom missing from `airflow providers list`: {[p['package_name'] for p in providers]}"
    listed = _airflow(tmp_path, "config", "list", "--section", "redis_xcom", "--include-descriptions")
    for option in OPTIONS:
        assert f"{option.name} =" in listed, option.name
        assert option.description[:40] in listed, option.name
    # The defaults come from the provider's table, with nothing in airflow.cfg: read as
    # `airflow config get-value` reads them (Airflow's conf), both in one interpreter.
    read = (
        "from airflow.configuration import conf; "
        "print(conf.get('redis_xcom', 'ttl'), conf.get('redis_xcom', 'key_prefix'))"
    )
    # (the values are the last line: Airflow 3.0 logs to stdout first)
    assert _python(tmp_path, "-c", read).splitlines()[-1] == "604800 xcom"
