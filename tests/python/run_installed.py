"""Runs pytest against the saedict package installed the way a user installs
it: `pip install --no-build-isolation --no-index --no-deps --target TMP WHEEL`
(the wheel the CMake build made), with PYTHONPATH holding only TMP, so
`import saedict` finds the installed copy and nothing of the source or
build tree. SAEDICT_SITE tells the tests where it went.

Without pip, setuptools or wheel (or without the wheel) it says so and runs
the tests against the package staged in <build>/python instead (--fallback);
the tests that need pip then skip, naming what is missing.

  run_installed.py --wheel WHEEL --fallback DIR -- PYTEST_ARGS...
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def pip_missing():
    for check in (["-c", "import setuptools, wheel"], ["-m", "pip", "--version"]):
        if subprocess.run([sys.executable, *check], capture_output=True).returncode != 0:
            return ("python3-pip, python3-setuptools or python3-wheel is not installed "
                    "(apt install python3-pip python3-setuptools python3-wheel)")
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", default="")
    parser.add_argument("--fallback", required=True)
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    env = dict(os.environ)
    missing = pip_missing()
    if not missing and not (args.wheel and os.path.isfile(args.wheel)):
        missing = f"the wheel {args.wheel or '(none configured)'} was not built"
    tmp = tempfile.mkdtemp(prefix="saedict-installed-")
    try:
        if missing:
            print(f"NOTE: {missing}; testing the package staged in {args.fallback} instead of "
                  f"an installed copy", flush=True)
            env["PYTHONPATH"] = args.fallback
            env["SAEDICT_NO_PIP"] = missing
        else:
            site = os.path.join(tmp, "site")
            pip_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                            "--no-build-isolation", "--no-index", "--no-deps", "--target", site,
                            args.wheel], check=True,
                           env={**pip_env, "PIP_ROOT_USER_ACTION": "ignore"})
            env["PYTHONPATH"] = site
            env["SAEDICT_SITE"] = site
            env["SAEDICT_WHEEL"] = args.wheel
        return subprocess.run([sys.executable, *pytest_args], env=env).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
