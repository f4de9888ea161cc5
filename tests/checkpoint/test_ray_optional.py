"""Ray is optional: without it `peftfix keys --ray` and `peftfix.ray` say how to install it, and nothing else in
peftfix imports it. `--ray`'s optional ADDRESS is told apart from the adapters that may follow it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peftfix.cli.keys import split_ray_address

from .ckpt_cases import CASES_BY_NAME

# Run peftfix where `import ray` fails, as it does where the extra is not installed.
WITHOUT_RAY = "import sys; sys.modules['ray'] = None\n"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_keys_ray_without_ray_installed_is_a_usage_error_saying_how_to_install(checkpoints):
    adapter = checkpoints.adapter_path(CASES_BY_NAME["llama-qv"])
    code = WITHOUT_RAY + f"from peftfix.cli import main; sys.argv = ['peftfix', 'keys', '--ray', {adapter!r}]; main()"
    result = _python(code)
    assert result.returncode == 2, result.stderr
    assert "pip install 'peftfix[ray]'" in result.stderr and "Traceback" not in result.stderr


def test_the_api_without_ray_raises_ray_not_installed():
    code = WITHOUT_RAY + (
        "from peftfix.ray import RayNotInstalled, check_fleet\n"
        "try:\n    check_fleet(['a'], 'b')\nexcept RayNotInstalled as error:\n    print('raised:', error)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised:") and "pip install 'peftfix[ray]'" in result.stdout


def test_keys_without_ray_never_imports_it(checkpoints):
    case = CASES_BY_NAME["orig-mod"]
    code = WITHOUT_RAY + (
        "from peftfix.cli import main\n"
        f"sys.argv = ['peftfix', 'keys', '--no-cache', {checkpoints.adapter_path(case)!r}, "
        f"'--base', {checkpoints.base_path(case)!r}]\nmain()"
    )
    result = _python(code)
    assert result.returncode == 1, result.stderr
    assert "PK001" in result.stdout


@pytest.mark.parametrize(
    ("value", "address", "adapters"),
    [
        ("", None, []),
        ("auto", "auto", []),
        ("local", "local", []),
        ("ray://head.example:10001", "ray://head.example:10001", []),
        ("10.0.0.5:6379", "10.0.0.5:6379", []),
        ("head-node.internal:6379", "head-node.internal:6379", []),
        ("[::1]:6379", "[::1]:6379", []),
        ("out/adapter", None, ["out/adapter"]),
        ("s3://runs/adapter", None, ["s3://runs/adapter"]),
        ("org/name", None, ["org/name"]),
        ("adapter", None, ["adapter"]),
    ],
)
def test_ray_takes_the_next_argument_only_when_it_reads_as_an_address(value, address, adapters):
    assert split_ray_address(value) == (address, adapters)
