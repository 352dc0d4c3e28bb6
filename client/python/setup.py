"""Build hook: the gRPC stubs (saedict/v1/saedict_pb2.py, saedict_pb2_grpc.py)
are generated from proto/saedict/v1/saedict.proto before build_py copies the
package, whenever they are absent or older than the .proto. Everything else
is in pyproject.toml.

The .proto is looked for in $SAEDICT_PROTO_DIR, else ../../proto (the
repository); protoc and grpc_python_plugin in $PROTOC / $GRPC_PYTHON_PLUGIN,
else on PATH (Debian: protobuf-compiler, protobuf-compiler-grpc), else
grpcio-tools when installed. Without a .proto, stubs already present are used.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "saedict/v1/saedict.proto"  # relative to the proto root; package saedict.v1
STUBS = ("saedict_pb2.py", "saedict_pb2_grpc.py")
OUT_DIR = os.path.join(HERE, "saedict", "v1")


def proto_root():
    return os.path.abspath(os.environ.get("SAEDICT_PROTO_DIR")
                           or os.path.join(HERE, os.pardir, os.pardir, "proto"))


def protoc_command(root, out):
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    plugin = os.environ.get("GRPC_PYTHON_PLUGIN") or shutil.which("grpc_python_plugin")
    source = os.path.join(root, PROTO)
    if protoc and plugin:
        return [protoc, f"--proto_path={root}", f"--python_out={out}", f"--grpc_out={out}",
                f"--plugin=protoc-gen-grpc={plugin}", source]
    try:
        import grpc_tools
    except ImportError:
        raise SystemExit("saedict: generating the gRPC stubs needs protoc and grpc_python_plugin "
                         "(Debian: apt install protobuf-compiler protobuf-compiler-grpc) or "
                         "grpcio-tools") from None
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    return [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={root}",
            f"--proto_path={include}", f"--python_out={out}", f"--grpc_python_out={out}", source]


def generate_stubs():
    root = proto_root()
    source = os.path.join(root, PROTO)
    targets = [os.path.join(OUT_DIR, name) for name in STUBS]
    if not os.path.isfile(source):
        if all(os.path.isfile(t) for t in targets):
            return  # e.g. an sdist: the stubs were generated when it was made
        raise SystemExit(f"saedict: {source} not found and no generated stubs in {OUT_DIR}; "
                         f"build from the repository or set SAEDICT_PROTO_DIR")
    newest = os.path.getmtime(source)
    if all(os.path.isfile(t) and os.path.getmtime(t) >= newest for t in targets):
        return
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        command = protoc_command(root, tmp)
        print("saedict: " + " ".join(command))
        subprocess.run(command, check=True)
        for name in STUBS:  # a rename each: a concurrent build never sees half a file
            os.replace(os.path.join(tmp, "saedict", "v1", name), os.path.join(OUT_DIR, name))


class BuildPyWithStubs(build_py):
    def run(self):
        generate_stubs()
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})
