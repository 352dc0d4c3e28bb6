"""Bearer tokens from the Python client and the CLI against a real saedictd
with --auth_tokens_file: the token= argument and $SAEDICT_TOKEN, the error
codes without or with a too-weak token, and `saedict new-token` lines that
the server takes after SIGHUP."""
import json
import os
import signal
import subprocess
import time

import grpc
import numpy as np
import pytest

from conftest import Server
import saedict
from saedict import Client

CLI = os.environ["SAEDICT_CLI"]


def new_token(role, name):
    out = subprocess.run([CLI, "--json", "new-token", role, name], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.fixture
def secured(tmp_path):
    reader, admin = new_token("read", "dash"), new_token("admin", "ops")
    tokens = tmp_path / "tokens"
    tokens.write_text(reader["tokens_file_line"] + "\n" + admin["tokens_file_line"] + "\n")
    s = Server(tmp_path, extra_flags=[f"--auth_tokens_file={tokens}"], token=admin["token"])
    s.tokens_file, s.reader, s.admin = tokens, reader["token"], admin["token"]
    yield s
    s.stop()


def test_new_token_prints_a_token_and_its_hashed_line():
    t = new_token("write", "nb")
    assert t["token"].startswith("sdt_") and len(t["token"]) > 40
    role, digest, name = t["tokens_file_line"].split()
    assert (role, name) == ("write", "nb") and len(digest) == 64 and t["token"] not in digest
    bad = subprocess.run([CLI, "new-token", "root", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "ROLE 'root' is not read, write or admin" in bad.stderr


def test_python_client_token_roles(secured):
    x = np.zeros((2, 64), np.float32)
    assert [d.id for d in secured.client.list_dictionaries()] == ["demo"]  # admin token
    reader = Client(secured.target, token=secured.reader)
    reader.encode("demo", x)
    with pytest.raises(grpc.RpcError) as denied:
        reader.delete_dictionary("demo")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert isinstance(denied.value, saedict.PermissionDenied)
    assert "DeleteDictionary needs the admin role" in denied.value.details()
    anonymous = Client(secured.target, token="")
    with pytest.raises(grpc.RpcError) as unauthenticated:
        anonymous.list_dictionaries()
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(unauthenticated.value, saedict.Unauthenticated)
    # Streams carry the token too.
    assert len(list(reader.encode_stream("demo", [x, x]))) == 2
    for c in (reader, anonymous):
        c.close()


def test_python_client_reads_saedict_token_from_the_environment(secured, monkeypatch):
    monkeypatch.setenv("SAEDICT_TOKEN", secured.reader)
    c = Client(secured.target)
    assert [d.id for d in c.list_dictionaries()] == ["demo"]
    c.close()


def test_cli_token_flag_environment_and_errors(secured):
    base = [CLI, f"--server={secured.target}"]
    env = {k: v for k, v in os.environ.items() if k != "SAEDICT_TOKEN"}
    no = subprocess.run(base + ["list"], capture_output=True, text=True, env=env)
    assert no.returncode == 1 and "UNAUTHENTICATED" in no.stderr
    ok = subprocess.run(base + [f"--token={secured.reader}", "list"], capture_output=True,
                        text=True, env=env)
    assert ok.returncode == 0 and "demo" in ok.stdout
    weak = subprocess.run(base + ["delete", "demo"], capture_output=True, text=True,
                          env={**env, "SAEDICT_TOKEN": secured.reader})
    assert weak.returncode == 1 and "PERMISSION_DENIED" in weak.stderr


def test_a_new_token_works_after_sighup(secured):
    fresh = new_token("read", "late")
    with open(secured.tokens_file, "a") as f:
        f.write(fresh["tokens_file_line"] + "\n")
    secured.proc.send_signal(signal.SIGHUP)
    c = Client(secured.target, token=fresh["token"])
    for _ in range(100):
        try:
            c.list_dictionaries()
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED
            time.sleep(0.05)
    assert [d.id for d in c.list_dictionaries()] == ["demo"]
    c.close()
