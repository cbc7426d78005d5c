"""charaid picks OpenBLAS's kernels from the CPU's flags, before numpy loads, unless told."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from charaid import blas_core
from charaid.blas_core import ENV, choose_openblas_core, cpu_flags, pick_core

AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


@pytest.mark.parametrize(
    ("flags", "core"),
    [
        (AVX512 | {"avx2", "fma", "sse3"}, "SkylakeX"),
        (AVX512 - {"avx512bw"} | {"avx2", "fma"}, "Haswell"),  # Knights Landing: no BW/VL
        ({"avx2", "fma", "avx", "sse4_2"}, "Haswell"),
        ({"avx", "sse4_2"}, None),  # Sandy Bridge: OpenBLAS's own choice stands
        (set(), None),  # no cpuinfo (macOS, Windows)
    ],
)
def test_the_fastest_core_the_flags_allow(flags, core):
    assert pick_core(frozenset(flags)) == core


def test_flags_come_from_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse avx2 fma\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert cpu_flags(info) == {"fpu", "sse", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("before", [None, "", " "])
def test_an_empty_or_missing_value_is_chosen_from_the_flags(monkeypatch, before):
    monkeypatch.setattr(blas_core, "cpu_flags", lambda: frozenset(AVX512))
    environ = {} if before is None else {ENV: before}  # a dict: the real environment is untouched
    assert choose_openblas_core(environ) == "SkylakeX" == environ[ENV]


def test_a_value_the_user_set_is_kept(monkeypatch):
    monkeypatch.setattr(blas_core, "cpu_flags", lambda: frozenset(AVX512))
    environ = {ENV: "Prescott"}
    assert choose_openblas_core(environ) == "Prescott" == environ[ENV]


def test_an_unknown_cpu_is_left_to_openblas(monkeypatch):
    monkeypatch.setattr(blas_core, "cpu_flags", lambda: frozenset({"sse2"}))
    environ: dict = {}
    assert choose_openblas_core(environ) is None and ENV not in environ


def _architecture(env: dict) -> dict:
    """OpenBLAS's kernels and the variable in a fresh `import charaid, numpy` process."""
    code = (
        "import json, os, charaid, numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "arch = [i.get('architecture') for i in threadpool_info() if i['user_api'] == 'blas']\n"
        f"print(json.dumps({{'arch': arch, 'env': os.environ.get('{ENV}')}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_importing_charaid_first_loads_the_chosen_kernels():
    core = pick_core(cpu_flags())
    if core is None:
        pytest.skip("this CPU has neither AVX-512 nor AVX2: OpenBLAS keeps its own choice")
    # only this child's environment says "not set"; the test process's own is left as it is
    got = _architecture({**os.environ, ENV: ""})
    assert got == {"arch": [core], "env": core}
    assert _architecture({**os.environ, ENV: "Prescott"}) == {
        "arch": ["Prescott"],
        "env": "Prescott",
    }


def _numpy_first(env: dict) -> tuple[str, str]:
    """(numpy's OpenBLAS kernels, stderr) of a fresh `import numpy; import charaid` process."""
    code = (
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "arch = [i.get('architecture') for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "import charaid\n"
        "print(arch[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip(), out.stderr


def test_numpy_imported_first_on_generic_kernels_is_told_what_to_do():
    core = pick_core(cpu_flags())
    if core is None:
        pytest.skip("this CPU has neither AVX-512 nor AVX2: nothing better to offer")
    unset = {k: v for k, v in os.environ.items() if k != ENV}  # the child's own environment
    arch, err = _numpy_first(unset)
    if arch != blas_core.GENERIC:
        pytest.skip(f"numpy's OpenBLAS picked {arch} here on its own: nothing to warn of")
    assert "RuntimeWarning" in err and "import charaid before numpy" in err
    assert f"{ENV}={core}" in err
    # the user's own choice: no warning; nor when charaid comes first
    assert _numpy_first({**unset, ENV: blas_core.GENERIC})[1] == ""
    first = [sys.executable, "-c", "import charaid, numpy"]
    assert subprocess.run(first, env=unset, capture_output=True, text=True).stderr == ""
