"""The ``pactum`` command as a user meets it: a real subprocess, help everywhere, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.connector.test_config import GOOD


def pactum(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "connector.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=60)


@pytest.mark.parametrize("path", [[], ["policies"], ["identity"], ["authority"], ["connector"],
                                  ["connector", "config"], ["connector", "audit"], ["demo"]])
def test_help_at_every_level(path: list[str]) -> None:
    result = pactum(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_root_help_shows_examples() -> None:
    assert "Examples" in pactum("--help").stdout


def test_config_check_good(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GOOD)
    result = pactum("connector", "config", "check", str(tmp_path / "c.toml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "Supplier EU" in result.stdout


def test_config_check_json_prints_only_json(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GOOD)
    result = pactum("connector", "config", "check", "--json", str(tmp_path / "c.toml"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["participant"]["name"] == "Supplier EU"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (GOOD.replace('protocol = "127.0.0.1:9181"', 'protocol = "nowhere"'), {}, "listen.protocol = 'nowhere'"),
        (GOOD, {"PACTUM_STORAGE__URL": "oracle://x"}, "storage.url = 'oracle://x'"),
        (GOOD.replace("[participant]\n", "[participant]\nfavourite_colour = 'red'\n"), {},
         "participant.favourite_colour: unknown key"),
    ],
)
def test_config_check_bad_prints_one_line_and_exits_1(tmp_path: Path, text: str, env: dict[str, str],
                                                      expected: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    result = pactum("connector", "config", "check", str(tmp_path / "c.toml"), env=env)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = pactum("--debug", "connector", "config", "check", str(tmp_path / "missing.toml"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = pactum("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_usage_error_inside_a_mounted_sub_cli_is_a_usage_error() -> None:
    result = pactum("policies", "eval")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
    assert "internal error" not in result.stderr
