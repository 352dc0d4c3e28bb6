"""Installing the Python client the ways the README gives, offline with
Debian's pip / setuptools / wheel: `pip install --prefix` from a clean copy of
the source (no stubs: the build hook generates them from the .proto),
`pip wheel`, stubs regenerated when the .proto is newer, and a clear error
without a .proto or stubs. Each installed copy is imported in a fresh
interpreter whose path holds only the install, and talks to a saedictd."""
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
STUBS = ("saedict_pb2.py", "saedict_pb2_grpc.py")

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SAEDICT_NO_PIP")),
    reason=f"SKIPPED: {os.environ.get('SAEDICT_NO_PIP')}; the install paths were not tested")


def clean_clone(tmp_path):
    """client/python as a fresh clone has it (no build/, egg-info or stubs), and the .proto."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "client/python", clone / "client/python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "*_pb2.py",
                                                  "*_pb2_grpc.py", "__pycache__"))
    (clone / "proto/saedict/v1").mkdir(parents=True)
    shutil.copy(REPO / "proto/saedict/v1/saedict.proto", clone / "proto/saedict/v1")
    return clone / "client/python"


def pip(*args):
    # Without PYTHONPATH: pip would take the copy this suite runs on for an
    # installed saedict and uninstall it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pip", *args, "--no-build-isolation",
                           "--no-index", "--no-deps"], capture_output=True, text=True,
                          env={**env, "PIP_ROOT_USER_ACTION": "ignore"})


def run_with(site, code, server=None):
    """`code` in a fresh interpreter with only `site` on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    if server is not None:
        env["SAEDICT_TARGET"] = server.target
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=site, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


CHECK = """
import os, numpy as np, saedict, saedict.v1.saedict_pb2 as pb
print(saedict.__file__); print(pb.__file__)
c = saedict.connect(os.environ["SAEDICT_TARGET"])
print(c.encode("demo", np.ones((2, 64), np.float32)).nnz)
"""


def test_pip_install_prefix_from_a_clean_clone(tmp_path, server):
    source = clean_clone(tmp_path)
    assert not list(source.glob("saedict/v1/*_pb2*.py"))
    prefix = tmp_path / "prefix"
    proc = pip("install", "--prefix", str(prefix), str(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (init,) = [p for p in prefix.glob("**/saedict/__init__.py")
               if p.parent.parent.name in ("site-packages", "dist-packages")]
    site = init.parent.parent
    for name in STUBS:
        assert (site / "saedict/v1" / name).is_file()
    module, stubs, nnz = run_with(site, CHECK, server).split()
    assert pathlib.Path(module).resolve() == init.resolve()
    assert pathlib.Path(stubs).resolve().is_relative_to(site.resolve())
    assert nnz == "32"
    assert not (source / "saedict" / "v1" / "tmp").exists()


def test_pip_wheel_and_stale_stubs(tmp_path, server):
    source = clean_clone(tmp_path)
    dist = tmp_path / "dist"
    proc = pip("wheel", "-w", str(dist), str(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("saedict-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"saedict/__init__.py", "saedict/client.py", "saedict/py.typed",
            "saedict/v1/saedict_pb2.py", "saedict/v1/saedict_pb2_grpc.py"} <= set(names)
    assert not [n for n in names if "examples" in n or n.endswith(".proto")]

    # Stubs older than the .proto are made again; fresh ones are kept.
    stub = source / "saedict/v1/saedict_pb2.py"
    proto = source.parent.parent / "proto/saedict/v1/saedict.proto"
    os.utime(stub, (1, 1))
    assert pip("wheel", "-w", str(dist), str(source)).returncode == 0
    assert stub.stat().st_mtime >= proto.stat().st_mtime
    kept = stub.stat().st_mtime_ns
    assert pip("wheel", "-w", str(dist), str(source)).returncode == 0
    assert stub.stat().st_mtime_ns == kept

    site = tmp_path / "site"
    proc = pip("install", "--target", str(site), str(wheel))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_with(site, CHECK, server).split()[2] == "32"


def test_a_build_without_proto_or_stubs_says_what_is_missing(tmp_path):
    source = clean_clone(tmp_path)
    shutil.rmtree(source.parent.parent / "proto")
    proc = pip("wheel", "-w", str(tmp_path / "dist"), str(source))
    assert proc.returncode != 0
    assert "saedict.proto not found and no generated stubs" in proc.stdout + proc.stderr


def test_the_cmake_wheel_is_the_one_installed():
    wheel = os.environ.get("SAEDICT_WHEEL")
    if not wheel:
        pytest.skip("SKIPPED: not run from run_installed.py with the CMake build's wheel")
    assert pathlib.Path(wheel).name.startswith("saedict-") and pathlib.Path(wheel).is_file()
    import saedict
    assert pathlib.Path(saedict.__file__).resolve().is_relative_to(
        pathlib.Path(os.environ["SAEDICT_SITE"]).resolve())
