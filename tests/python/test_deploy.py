"""The deployment files, checked without a Docker engine or a cluster:
docker-compose.yml parses (`docker-compose config`), the Prometheus config
passes `promtool check config`, every metric the Grafana dashboard queries is
one a real saedictd exports, the Kubernetes manifests use the fields and
cross-references Kubernetes expects, and every saedictd flag named in the
Dockerfile, the compose file and the manifests is a real flag. Tools that are
missing make their test SKIP with a message (the README's packages bring them)."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import numpy as np
import pytest

yaml = pytest.importorskip("yaml", reason="SKIPPED: python3-yaml is not installed")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.dirname(os.environ["SAEDICT_SAEDICTD"]))


def path(*parts):
    return os.path.join(ROOT, *parts)


def binary_flags(binary):
    out = subprocess.run([binary, "--helpfull"], capture_output=True, text=True)
    flags = set(re.findall(r"^\s+--([a-z_0-9]+)", out.stdout + out.stderr, re.M))
    assert "metrics_port" in flags and "listen_address" in flags, out.stdout[:500]
    return flags


def assert_real_flags(args, where, binary=None):
    binary = binary or os.environ["SAEDICT_SAEDICTD"]
    known = binary_flags(binary)
    for a in args:
        m = re.match(r"--([a-z_0-9]+)", a)
        assert m, f"{where}: '{a}' is not a --flag"
        assert m.group(1) in known, f"{where}: {os.path.basename(binary)} has no flag --{m.group(1)}"


def test_compose_config_is_valid():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("SKIPPED: docker-compose is not installed (apt-get install docker-compose)")
    out = subprocess.run([tool, "-f", path("docker-compose.yml"), "config"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert set(config["services"]) >= {"saedictd", "worker", "prometheus", "grafana"}
    for service in config["services"].values():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port['published']}"
            assert str(published).startswith("127.0.0.1:"), f"{port} is not loopback-only"
    assert_real_flags(config["services"]["saedictd"]["command"], "docker-compose.yml")
    worker = config["services"]["worker"]["entrypoint"]
    assert worker[0] == "/usr/local/bin/saedict-worker"
    assert_real_flags(worker[1:], "docker-compose.yml worker", os.environ["SAEDICT_WORKER"])
    port = next(a for a in worker if a.startswith("--port=")).split("=")[1]
    assert f"--workers=worker:{port}" in config["services"]["saedictd"]["command"]
    targets = [t for job in yaml.safe_load(open(path("deploy", "prometheus", "prometheus.yml")))[
        "scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    metrics = next(a for a in worker if a.startswith("--metrics_port=")).split("=")[1]
    assert f"worker:{metrics}" in targets, "Prometheus does not scrape the worker"


def test_dockerfile_entrypoint_flags_exist_and_user_is_not_root():
    text = open(path("deploy", "Dockerfile")).read()
    m = re.search(r"ENTRYPOINT \[(.*?)\]", text, re.S)
    entry = json.loads("[" + m.group(1).replace("\\\n", "") + "]")
    assert entry[0] == "/usr/local/bin/saedictd"
    assert_real_flags(entry[1:], "deploy/Dockerfile")
    assert re.search(r"^USER saedict$", text, re.M)
    assert re.search(r"^FROM debian:bookworm", text, re.M)


def promtool():
    tool = os.path.join(BUILD, "tools", "bin", "promtool")
    return tool if os.path.exists(tool) else shutil.which("promtool")


def test_prometheus_config_passes_promtool():
    tool = promtool()
    if tool is None:
        pytest.skip("SKIPPED: no promtool (deploy/dev.sh build fetches it into build/tools/bin)")
    out = subprocess.run([tool, "check", "config", path("deploy", "prometheus", "prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load(open(path("deploy", "prometheus", "prometheus.yml")))
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert "saedictd:9464" in targets


def dashboard_metric_names():
    dash = json.load(open(path("deploy", "grafana", "dashboards", "saedict.json")))
    names = set()
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "saedict-prometheus"
        for target in panel["targets"]:
            names |= set(re.findall(r"\b(saedict_[a-z_]+)", target["expr"]))
    return names


def test_grafana_provisioning_names_the_dashboard_datasource():
    ds = yaml.safe_load(open(path("deploy", "grafana", "provisioning", "datasources",
                                  "prometheus.yml")))
    assert ds["datasources"][0]["uid"] == "saedict-prometheus"
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(open(path("deploy", "grafana", "provisioning", "dashboards",
                                        "saedict.yml")))
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_dashboard_metric_is_exported(server):
    # Traffic so that the labelled series exist: a load, encodes, an error, an ingest.
    c = server.client
    x = np.random.default_rng(0).standard_normal((6, 64)).astype(np.float32)
    c.encode("demo", x)
    with pytest.raises(Exception):
        c.encode("no-such-dictionary", x)
    c.ingest("demo", "deploy-test", [(i, np.arange(3), x[:3], None) for i in range(2)])
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    exported = set(re.findall(r"^# TYPE (saedict_[a-z_]+) (\w+)", body, re.M))
    series = {name for name, _ in exported}
    for name, kind in exported:
        if kind == "histogram":
            series |= {name + "_bucket", name + "_count", name + "_sum"}
    missing = dashboard_metric_names() - series
    assert not missing, f"the dashboard queries metrics saedictd does not export: {missing}"
    tool = promtool()
    if tool is not None:
        out = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True,
                             text=True)
        assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


# --- Kubernetes -------------------------------------------------------------------------------
# The fields these manifests use, per kind (a subset of the Kubernetes API), and
# what each must contain.
K8S_KINDS = {
    ("v1", "ConfigMap"): {"metadata", "data"},
    ("v1", "Secret"): {"metadata", "type", "stringData"},
    ("v1", "Service"): {"metadata", "spec"},
    ("apps/v1", "StatefulSet"): {"metadata", "spec"},
    ("apps/v1", "Deployment"): {"metadata", "spec"},
}
CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "command", "args", "envFrom", "ports",
                    "readinessProbe", "livenessProbe", "resources", "volumeMounts"}
PROBE_FIELDS = {"grpc", "httpGet", "exec", "initialDelaySeconds", "periodSeconds",
                "failureThreshold", "timeoutSeconds"}


def manifests():
    kustomization = yaml.safe_load(open(path("deploy", "k8s", "kustomization.yaml")))
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all(open(path("deploy", "k8s", name))):
            docs.append((name, doc))
    return docs


def test_manifests_use_known_kinds_and_fields():
    docs = manifests()
    assert {d["kind"] for _, d in docs} == {"ConfigMap", "Secret", "Service", "StatefulSet",
                                            "Deployment"}
    for name, d in docs:
        key = (d["apiVersion"], d["kind"])
        assert key in K8S_KINDS, f"{name}: unknown {key}"
        extra = set(d) - {"apiVersion", "kind"} - K8S_KINDS[key]
        assert not extra, f"{name}: fields {extra} are not used by {key}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"])


def service_named(name):
    return next(d for _, d in manifests() if d["kind"] == "Service" and d["metadata"]["name"] == name)


def test_statefulset_cross_references_resolve():
    docs = {d["kind"]: d for _, d in manifests()}
    sts = docs["StatefulSet"]
    svc = service_named(sts["spec"]["serviceName"])
    spec = sts["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert spec["serviceName"] == svc["metadata"]["name"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert set(container) <= CONTAINER_FIELDS, set(container) - CONTAINER_FIELDS
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in ports, port
    for probe in ("readinessProbe", "livenessProbe"):
        assert set(container[probe]) <= PROBE_FIELDS
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    volumes = {v["name"] for v in pod["volumes"]} | {
        t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes, mount
    secret = next(v for v in pod["volumes"] if "secret" in v)
    assert secret["secret"]["secretName"] == docs["Secret"]["metadata"]["name"]
    assert container["envFrom"][0]["configMapRef"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    # $(VAR) in args must be ConfigMap keys; the flags must be saedictd's.
    for arg in container["args"]:
        for var in re.findall(r"\$\((\w+)\)", arg):
            assert var in docs["ConfigMap"]["data"], f"{arg}: {var} is not in the ConfigMap"
    assert_real_flags(container["args"], "deploy/k8s/statefulset.yaml")
    tokens_mount = next(m for m in container["volumeMounts"] if m["name"] == secret["name"])
    assert f"--auth_tokens_file={tokens_mount['mountPath']}/tokens" in container["args"]
    assert "tokens" in docs["Secret"]["stringData"]


def test_worker_deployment_is_reachable_from_saedictd():
    docs = {d["kind"]: d for _, d in manifests()}
    dep = docs["Deployment"]
    svc = service_named(dep["metadata"]["name"])
    assert svc["spec"]["clusterIP"] == "None", "headless: its name resolves to every pod"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    [container] = dep["spec"]["template"]["spec"]["containers"]
    assert set(container) <= CONTAINER_FIELDS, set(container) - CONTAINER_FIELDS
    assert container["command"] == ["/usr/local/bin/saedict-worker"]
    assert_real_flags(container["args"], "deploy/k8s/worker-deployment.yaml",
                      os.environ["SAEDICT_WORKER"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in ports, port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    grpc_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert docs["ConfigMap"]["data"]["SAEDICT_WORKERS"] == \
        f"{svc['metadata']['name']}:{grpc_port}"
    sts_args = docs["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--workers=$(SAEDICT_WORKERS)" in sts_args


def test_secret_example_is_a_token_file_saedictd_starts_with(tmp_path):
    docs = {d["kind"]: d for _, d in manifests()}
    tokens = tmp_path / "tokens"
    tokens.write_text(docs["Secret"]["stringData"]["tokens"])
    port_file = tmp_path / "port"
    proc = subprocess.Popen([os.environ["SAEDICT_SAEDICTD"], f"--auth_tokens_file={tokens}",
                             "--port=0", f"--port_file={port_file}", "--metrics_port=-1",
                             "--http_port=-1", f"--data_dir={tmp_path / 'var'}", "--demo=false"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "auth on (2 tokens)" in proc.stderr.read()
