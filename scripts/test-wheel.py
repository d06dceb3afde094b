#!/usr/bin/env python3
"""The package as users install it: build the sdist and wheel, install the wheel (not editable) into a
fresh virtualenv with the locked Airflow of constraints.txt, and run it from there.

Checks, each failing with what went wrong:
  * the wheel built from the sdist has the same files, byte for byte, as the one built from the tree;
  * every file of redis_xcom/ that git tracks is in the wheel (modules, templates, demo DAGs, py.typed),
    and the wheel carries the LICENSE;
  * from the fresh virtualenv (run outside the checkout, so nothing is imported from it):
    `redis-xcom demo`, `airflow providers list` and `airflow plugins` (the provider and the plugin),
    `airflow redis-xcom doctor` against a redis-server of its own where Airflow has the provider
    `cli` field (3.2+), and the package data read through importlib.resources.

Usage: scripts/test-wheel.py [--keep]   (make test-wheel; needs uv and redis-server)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA_CHECK = """
import importlib.metadata as metadata
import importlib.resources as resources
import redis_xcom
assert "site-packages" in redis_xcom.__file__, f"imported from {redis_xcom.__file__}, not the wheel"
root = resources.files("redis_xcom")
for name in ("py.typed", "ui/templates/xcoms.html", "ui/templates/error.html",
             "ops/demo_dags/redis_xcom_demo.py"):
    assert root.joinpath(name).is_file(), f"{name} missing from the installed package"
meta = metadata.metadata("redis-xcom")
assert meta["License-Expression"] == "Apache-2.0", meta["License-Expression"]
assert meta["Version"] == redis_xcom.__version__, (meta["Version"], redis_xcom.__version__)
licenses = [f for f in metadata.files("redis-xcom") if f.name == "LICENSE"]
assert licenses and "Apache License" in licenses[0].read_text(), "LICENSE missing from the dist-info"
print("package data ok:", redis_xcom.__version__, redis_xcom.__file__)
"""


def step(text: str) -> None:
    print(f"== {text}", flush=True)


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> str:
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        sys.exit(
            f"FAILED ({done.returncode}): {' '.join(map(str, args))}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done.stdout


def build(out: Path) -> tuple[Path, Path]:
    """The sdist, and the wheel that `python -m build` makes from it (as an installer would)."""
    run(sys.executable, "-m", "build", "--installer", "uv", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def contents(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}


def check_wheel(wheel: Path, direct: Path) -> None:
    from_sdist, from_tree = contents(wheel), contents(direct)
    if from_sdist != from_tree:
        differ = sorted(set(from_sdist.items()) ^ set(from_tree.items()))
        sys.exit(f"FAILED: the sdist builds another wheel than the tree: {differ[:20]}")
    tracked = run("git", "ls-files", "redis_xcom", cwd=ROOT).split()
    missing = [name for name in tracked if name not in from_sdist]
    if missing:
        sys.exit(f"FAILED: files of redis_xcom/ missing from the wheel: {missing}")
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in from_sdist):
        sys.exit("FAILED: the wheel carries no LICENSE")
    print(f"wheel ok: {len(from_sdist)} files, the same from the sdist and from the tree", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHONPATH"))}
    return env | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra}


def has_cli_field(python: Path, env: dict[str, str]) -> bool:
    probe = (
        "from airflow.providers_manager import ProvidersManager as P; "
        "print(hasattr(P, 'cli_command_functions'))"
    )
    return run(python, "-c", probe, env=env).strip().endswith("True")


def doctor(venv: Path, work: Path, env: dict[str, str]) -> None:
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory-policy", "noeviction", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline:
                sys.exit("FAILED: redis-server did not start")
            time.sleep(0.05)
        out = run(
            venv / "bin" / "airflow", "redis-xcom", "doctor",
            env=env | {"AIRFLOW__CORE__XCOM_BACKEND": "redis_xcom.ExclusiveRedisXCom",
                       "AIRFLOW__REDIS_XCOM__URL": f"redis://127.0.0.1:{port}/0"},
            cwd=work,
        )  # fmt: skip
        for check in ("ok      connect", "ok      write", "ok      xcom_backend"):
            if check not in out:
                sys.exit(f"FAILED: `airflow redis-xcom doctor` did not report {check!r}:\n{out}")
        print(out, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    started = time.monotonic()
    keep = "--keep" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="redis-xcom-wheel-"))
    try:
        step("build the sdist and the wheel from it; and a wheel from the tree")
        sdist, wheel = build(work / "dist")
        run(sys.executable, "-m", "build", "--installer", "uv", "--wheel", "--outdir", work / "direct", ROOT)
        check_wheel(wheel, next((work / "direct").glob("*.whl")))
        run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)

        step("a fresh virtualenv with the wheel and the locked Airflow (constraints.txt)")
        venv = work / "venv"
        run(sys.executable, "-m", "uv", "venv", "--python", sys.executable, venv)
        python = venv / "bin" / "python"
        run(
            sys.executable,
            "-m",
            "uv",
            "pip",
            "install",
            "--python",
            python,
            "-c",
            ROOT / "constraints.txt",
            f"{wheel}[demo]",
        )
        env = airflow_env(work / "airflow-home")

        step("the package data, imported from the installed wheel")
        print(run(python, "-c", PACKAGE_DATA_CHECK, env=env, cwd=work), flush=True)

        step("redis-xcom demo")
        print(run(venv / "bin" / "redis-xcom", "demo", "--embedded", env=env, cwd=work)[-1500:], flush=True)

        step("airflow providers list; airflow plugins")
        providers = run(venv / "bin" / "airflow", "providers", "list", env=env, cwd=work)
        if "redis-xcom" not in providers:
            sys.exit(f"FAILED: redis-xcom missing from `airflow providers list`:\n{providers}")
        plugins = run(venv / "bin" / "airflow", "plugins", env=env, cwd=work)
        if "redis_xcom" not in plugins:
            sys.exit(f"FAILED: the redis_xcom plugin missing from `airflow plugins`:\n{plugins}")
        print("provider and plugin listed", flush=True)

        if has_cli_field(python, env):
            step("airflow redis-xcom doctor")
            doctor(venv, work, env)
        else:
            print(
                "this Airflow has no provider `cli` field (3.2+): airflow redis-xcom not checked", flush=True
            )
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"test-wheel: everything passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
