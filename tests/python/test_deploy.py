"""deploy/: the Kubernetes manifests against Kubernetes' own schemas (strict, so an unknown field
fails) and against what the gateway really does: the Deployment's arguments and the ConfigMap's
file, with the Secret's keys where the Deployment mounts them, start the real gateway, which
answers the probes as the kubelet asks them. The systemd unit goes through systemd-analyze, and
the Dockerfile's runtime stage is checked against the libraries the executable links. Nothing
here needs a cluster, a container runtime or the network."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes_validate.utils import all_versions

from conftest import BIN_DIR, ROOT, ServerProcess, free_port
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "vllm-grpc-gateway.service"
# The oldest Kubernetes the manifests promise (still supported by the big clouds in 2026) and the
# newest this kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
# What terminationGracePeriodSeconds keeps beyond the preStop pause and the gateway's own drain:
# flushing the access log and the trace spans, and the kubelet's own delays.
DRAIN_MARGIN_SECONDS = 5


def manifests():
    found = []
    for path in sorted(KUBERNETES.glob("*.y*ml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def one(kind, name=None):
    matches = [d for _, d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_spec():
    return one("Deployment")["spec"]["template"]["spec"]


def gateway_container():
    (container,) = pod_spec()["containers"]
    return container


def flag(args, name):
    """The value of `--name VALUE` or `--name=VALUE` in a command line."""
    for index, arg in enumerate(args):
        if arg == name:
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def gateway_service():
    return one("Service", "vllm-grpc-gateway")


def headless_service():
    (service,) = [d for _, d in manifests() if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"]
    return service


def config_text():
    return one("ConfigMap")["data"]["gateway.yaml"]


def mount_of(volume_kind):
    """Where the Deployment mounts its volume of `volume_kind` (configMap, secret), and the volume."""
    (volume,) = [v for v in pod_spec()["volumes"] if volume_kind in v]
    (mount,) = [m for m in gateway_container()["volumeMounts"] if m["name"] == volume["name"]]
    return mount["mountPath"], volume


# --- the schemas -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes_in_strict_mode(version):
    assert any(v == version or v.startswith(version + ".") for v in all_versions()), \
        f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes {version}"
    documents = manifests()
    assert len(documents) >= 7
    for filename, document in documents:
        # SchemaNotFoundError (an unknown kind or apiVersion) fails here as well, unlike the CLI's warning.
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{filename}: {document['kind']}/{document['metadata']['name']} is not valid for "
                        f"Kubernetes {version}: {path}: {error.message}")


def test_strict_validation_does_refuse_an_unknown_field():
    """Proof that the check above has teeth: a misspelt field in the Deployment is refused."""
    deployment = json.loads(json.dumps(one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["servce"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    deployment = json.loads(json.dumps(one("Deployment")))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_the_issue_s_objects_are_all_there():
    kinds = sorted(d["kind"] for _, d in manifests())
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
                     "Service", "Service"]


# --- what the manifests say --------------------------------------------------------------------

def test_probes_are_grpc_health_checks_on_the_gateway_s_grpc_port():
    container = gateway_container()
    listen_port = port_of(flag(container["args"], "--listen"))
    (grpc_port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "grpc"]
    assert grpc_port == listen_port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert container[probe]["grpc"]["port"] == listen_port, probe
    assert container["livenessProbe"]["grpc"].get("service", "") == ""
    assert container["readinessProbe"]["grpc"]["service"] == "vllmgateway.v1.VLLMService"
    # The startup probe gives a slow start time before the liveness probe may restart the pod.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 10


def test_the_service_speaks_h2c_to_the_pods_grpc_port():
    service, container = gateway_service(), gateway_container()
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"].get("clusterIP") != "None"
    assert service["spec"]["selector"].items() <= labels.items()
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert ports["grpc"]["targetPort"] in named and named[ports["grpc"]["targetPort"]] == 50051
    assert named[ports["metrics"]["targetPort"]] == 9090


def test_the_headless_service_is_the_upstream_the_configuration_names():
    service = headless_service()
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"], "a headless Service without a selector lists no pods"
    config = yaml.safe_load(config_text())
    (upstream,) = config["upstreams"]
    url = re.fullmatch(r"http://([^:/]+):(\d+)/?", upstream["url"])
    assert url, f"the gateway expands only an http:// host name into one upstream per address: {upstream['url']}"
    host, port = url.group(1), int(url.group(2))
    # The Service's name, or its name in a namespace (name.namespace[.svc.cluster.local]).
    assert host.split(".")[0] == service["metadata"]["name"]
    assert port in [p["port"] for p in service["spec"]["ports"]]


def test_the_autoscaler_and_the_disruption_budget_take_the_deployment():
    deployment, autoscaler, budget = one("Deployment"), one("HorizontalPodAutoscaler"), one("PodDisruptionBudget")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment",
                                                                      deployment["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] >= 2 and autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]
    # The autoscaler owns the count: a `replicas` in the Deployment would reset it at each apply.
    assert "replicas" not in deployment["spec"]
    # Utilization targets are shares of the requests: without a CPU request the HPA cannot scale.
    assert gateway_container()["resources"]["requests"]["cpu"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A drain must be able to evict a pod even at the autoscaler's minimum.
    if "minAvailable" in budget["spec"]:
        assert budget["spec"]["minAvailable"] < autoscaler["spec"]["minReplicas"]
    else:
        assert budget["spec"]["maxUnavailable"] >= 1


def test_the_configuration_comes_from_the_configmap_and_the_keys_from_the_secret():
    container, secret = gateway_container(), one("Secret")
    config_dir, config_volume = mount_of("configMap")
    assert config_volume["configMap"]["name"] == one("ConfigMap")["metadata"]["name"]
    assert flag(container["args"], "--config") == f"{config_dir}/gateway.yaml"
    keys_dir, keys_volume = mount_of("secret")
    assert keys_volume["secret"]["secretName"] == secret["metadata"]["name"]
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    mounted = {item["path"]: item["key"] for item in keys_volume["secret"].get("items", [])}
    config = yaml.safe_load(config_text())
    key_files = [k["key_file"] for k in config["auth"]["keys"] if "key_file" in k]
    assert key_files, "client keys should come from the Secret's files"
    for key_file in key_files:
        folder, name = key_file.rsplit("/", 1)
        assert folder == keys_dir and mounted.get(name) in secret_keys, key_file
    # Every env.NAME of the file is a variable the container gets from the Secret.
    env = {e["name"]: e for e in container.get("env", [])}
    for name in re.findall(r"env\.([A-Za-z_][A-Za-z0-9_]*)", config_text()):
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"] and reference["key"] in secret_keys
    # The probes carry no key: health must stay open.
    assert not config["auth"].get("protect_health_and_reflection", False)
    # No real key is committed.
    assert all(value == "" for value in secret.get("stringData", {}).values()) and not secret.get("data")


def test_termination_grace_covers_the_pre_stop_pause_and_the_gateway_s_drain():
    spec, container = pod_spec(), gateway_container()
    drain = float(flag(container["args"], "--shutdown-grace-period"))
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] in ("/bin/sleep", "sleep")
    pause = float(command[1])
    assert spec["terminationGracePeriodSeconds"] >= pause + drain + DRAIN_MARGIN_SECONDS


def test_the_pod_runs_unprivileged_as_the_image_s_user():
    spec, container = pod_spec(), gateway_container()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == dockerfile_user() != 0
    assert spec["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]


def test_prometheus_scrapes_the_metrics_port():
    template, container = one("Deployment")["spec"]["template"], gateway_container()
    annotations = template["metadata"]["annotations"]
    metrics_port = port_of(flag(container["args"], "--metrics-listen"))
    assert metrics_port == 9090
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert {"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"} in container["ports"]


# --- the real gateway, as the Deployment starts it --------------------------------------------

TEST_KEYS = {"vllm-api-key": "sk-vllm-from-the-secret", "search-team": "sk-search-team-123",
             "batch-jobs": "sk-batch-jobs-456"}


def pod_like(tmp_path, sim_address, secret_values):
    """The pod's files and process, here: the Secret's items written where the Deployment mounts
    them (under tmp_path), the ConfigMap's file with only the upstream's URL and that folder
    changed, and the container's arguments and environment with local ports."""
    keys_dir, keys_volume = mount_of("secret")
    local_keys = tmp_path / "keys"
    local_keys.mkdir()
    local_keys.chmod(0o755)
    fs_group = pod_spec()["securityContext"]["fsGroup"]
    for item in keys_volume["secret"]["items"]:
        key = local_keys / item["path"]
        key.write_text(secret_values[item["key"]])
        # As the kubelet leaves a Secret's files: the volume's mode, the pod's fsGroup as group.
        key.chmod(keys_volume["secret"]["defaultMode"])
        if os.geteuid() == 0:
            os.chown(key, 0, fs_group)
    upstream_url = yaml.safe_load(config_text())["upstreams"][0]["url"]
    text = config_text()
    assert text.count(upstream_url) == 1
    text = text.replace(upstream_url, f"http://{sim_address}").replace(keys_dir + "/", f"{local_keys}/")
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    config.chmod(0o644)  # a ConfigMap volume's default mode
    container = gateway_container()
    args = list(container["args"])
    metrics_port = free_port()
    replacements = {"--config": str(config), "--listen": "127.0.0.1:{port}",
                    "--metrics-listen": f"127.0.0.1:{metrics_port}"}
    for index, arg in enumerate(args[:-1]):
        if arg in replacements:
            args[index + 1] = replacements[arg]
    env = {}
    for variable in container.get("env", []):
        reference = variable["valueFrom"]["secretKeyRef"]
        env[variable["name"]] = secret_values[reference["key"]]
    return args, env, metrics_port


def health(address, service):
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def chat(stub, key=None):
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=4,
                                             messages=[chat_pb2.ChatMessage(role="user", text="hello pod")])
    metadata = [("authorization", f"Bearer {key}")] if key else None
    return stub.CreateChatCompletion(request, metadata=metadata, timeout=10)


def test_the_gateway_starts_as_the_deployment_starts_it_and_answers_the_probes(sim, tmp_path):
    args, env, metrics_port = pod_like(tmp_path, sim.address, TEST_KEYS)
    gateway = ServerProcess("vllm-grpc-gateway", args, tmp_path / "gateway.log", env=env)
    try:
        container = gateway_container()
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            service = container[probe]["grpc"].get("service", "")
            assert health(gateway.address, service) == health_pb2.HealthCheckResponse.SERVING, probe
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
            assert b"vllm_grpc_gateway_" in page.read()
        with grpc.insecure_channel(gateway.address) as channel:
            stub = service_pb2_grpc.VLLMServiceStub(channel)
            with pytest.raises(grpc.RpcError) as error:
                chat(stub)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            deadline = time.monotonic() + 10
            while True:  # the fleet reads the upstream's models at start
                try:
                    assert chat(stub, TEST_KEYS["search-team"]).model == "sim-model"
                    break
                except grpc.RpcError as failure:
                    if failure.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert chat(stub, TEST_KEYS["batch-jobs"]).model == "sim-model"
        # The vLLM key went from the Secret, through the environment, to vLLM.
        assert dict(sim.stats()["last_headers"])["authorization"] == f"Bearer {TEST_KEYS['vllm-api-key']}"
        # SIGTERM, as the kubelet sends it after the preStop pause: the gateway drains and exits 0
        # well within what terminationGracePeriodSeconds leaves it.
        started = time.monotonic()
        gateway.signal(signal.SIGTERM)
        assert gateway.process.wait(timeout=30) == 0, gateway.log()
        assert time.monotonic() - started < float(flag(container["args"], "--shutdown-grace-period"))
    finally:
        gateway.stop()


def test_the_gateway_serves_as_the_pod_s_non_root_user(sim):
    """The pod runs as runAsUser/runAsGroup with no capability at all: so does the gateway here."""
    if os.geteuid() != 0:
        pytest.skip("only root can start the gateway as the pod's user (runAsUser) here")
    context = pod_spec()["securityContext"]
    folder = Path(tempfile.mkdtemp(prefix="vllm-gateway-pod-"))
    folder.chmod(0o755)  # pytest's own tmp_path is root's alone

    def become_the_pod_s_user():
        os.setgroups([context["fsGroup"]])
        os.setgid(context["runAsGroup"])
        os.setuid(context["runAsUser"])

    try:
        args, env, _ = pod_like(folder, sim.address, TEST_KEYS)
        # The build may sit in a home the pod's user cannot enter (/root on a new machine): run a
        # copy, as the image does from its own /usr/local/bin.
        binary = folder / "vllm-grpc-gateway"
        shutil.copy2(BIN_DIR / "vllm-grpc-gateway", binary)
        binary.chmod(0o755)
        gateway = ServerProcess(str(binary), args, folder / "gateway.log", env=env,
                                preexec_fn=become_the_pod_s_user)
        try:
            service = gateway_container()["readinessProbe"]["grpc"]["service"]
            assert health(gateway.address, service) == health_pb2.HealthCheckResponse.SERVING
            with grpc.insecure_channel(gateway.address) as channel:
                stub = service_pb2_grpc.VLLMServiceStub(channel)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        assert chat(stub, TEST_KEYS["search-team"]).model == "sim-model"
                        break
                    except grpc.RpcError as failure:
                        if failure.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
        finally:
            gateway.stop()
    finally:
        shutil.rmtree(folder)


def test_the_secret_as_committed_keeps_the_gateway_from_starting(sim, tmp_path):
    """Its values are empty: a Secret applied without filling them in fails loudly, naming the key,
    instead of starting a gateway that anyone may call."""
    committed = dict(one("Secret")["stringData"])
    args, env, _ = pod_like(tmp_path, sim.address, committed)
    port = free_port()
    command = [str(BIN_DIR / "vllm-grpc-gateway")] + [a.format(port=port) for a in args]
    result = subprocess.run(command, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "$.auth.keys[0].key_file" in result.stderr and "is empty" in result.stderr, result.stderr


# --- systemd -----------------------------------------------------------------------------------

def unit_entries():
    """(section, key, value) for each line of the unit: systemd allows a key more than once."""
    entries, section = [], None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_value(key, section="Service"):
    values = [v for s, k, v in unit_entries() if s == section and k == key]
    assert values, f"{key}= is missing from [{section}]"
    return values[-1]


def test_the_unit_is_hardened_and_waits_for_the_drain():
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "DynamicUser": "yes",
                       "CapabilityBoundingSet": "", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                       "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
                       "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
                       "KillSignal": "SIGTERM"}.items():
        assert unit_value(key) == value, key
    assert set(unit_value("RestrictAddressFamilies").split()) <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    filters = [v for s, k, v in unit_entries() if k == "SystemCallFilter"]
    assert "@system-service" in filters and "~@privileged" in filters
    # The gateway raises its soft open-file limit itself: @resources (setrlimit) must stay allowed.
    assert not any("@resources" in f and f.startswith("~") for f in filters)
    command = shlex.split(unit_value("ExecStart"))
    drain = float(flag(command, "--shutdown-grace-period"))
    assert float(unit_value("TimeoutStopSec")) >= drain + DRAIN_MARGIN_SECONDS
    assert "-HUP" in unit_value("ExecReload") and "$MAINPID" in unit_value("ExecReload")


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's package systemd has it)")
    # verify checks that ExecStart's program exists: here it is the build's, not /usr/local/bin's.
    command = shlex.split(unit_value("ExecStart"))
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(command[0], str(BIN_DIR / "vllm-grpc-gateway")))
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    # The exposure score systemd gives the unit: under 2 is its best band, "OK".
    result = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score and float(score.group(1)) < 2.0, result.stdout[-2000:]


def test_the_unit_s_command_line_starts_the_gateway(sim, start_server, tmp_path):
    args, env, _ = pod_like(tmp_path, sim.address, TEST_KEYS)
    config = flag(args, "--config")
    command = shlex.split(unit_value("ExecStart"))[1:]
    replacements = {"--config": config, "--listen": "127.0.0.1:{port}", "--metrics-listen": f"127.0.0.1:{free_port()}"}
    for index, arg in enumerate(command[:-1]):
        if arg in replacements:
            command[index + 1] = replacements[arg]
    gateway = start_server("vllm-grpc-gateway", *command, env=env)
    assert health(gateway.address, "") == health_pb2.HealthCheckResponse.SERVING


# --- the Dockerfile ----------------------------------------------------------------------------

def dockerfile_stages():
    """The Dockerfile as (global ARG defaults, stages); a stage is its FROM line's image and name,
    and its instructions as (INSTRUCTION, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    arguments, stages = {}, []
    for keyword, rest in instructions:
        if keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), m.group(0)), words[0])
            stages.append({"image": image, "name": words[2] if len(words) > 2 else None, "steps": []})
        elif not stages and keyword == "ARG":
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif stages:
            stages[-1]["steps"].append((keyword, rest))
    return arguments, stages


def dockerfile_user():
    _, stages = dockerfile_stages()
    users = [rest for keyword, rest in stages[-1]["steps"] if keyword == "USER"]
    return int(users[-1].split(":")[0])


def runtime_packages():
    _, stages = dockerfile_stages()
    packages = []
    for keyword, rest in stages[-1]["steps"]:
        if keyword == "RUN" and "apt-get install" in rest:
            install = rest.split("apt-get install", 1)[1].split("&&")[0]
            packages += [word for word in install.split() if not word.startswith("-")]
    return packages


def test_the_dockerfile_builds_in_one_stage_and_runs_slim_as_a_non_root_user():
    _, stages = dockerfile_stages()
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert re.search(r"(^|/)swift:[\w.-]*bookworm", build["image"]), build["image"]
    assert re.search(r"(^|/)debian:bookworm-slim$", runtime["image"]), runtime["image"]
    builds = [rest for keyword, rest in build["steps"] if keyword == "RUN" and "swift build" in rest]
    assert builds and all("--static-swift-stdlib" in b and "-c release" in b for b in builds)
    # Built with the flags and profile every release build here gets, from the files copied in.
    assert all("$(tools/release-flags)" in b for b in builds)
    copied = [source for keyword, rest in build["steps"] if keyword == "COPY" for source in rest.split()[:-1]]
    assert {"tools/release-flags", "tools/llvm-profdata", "tools/pgo"} <= set(copied)
    copies = [rest for keyword, rest in runtime["steps"] if keyword == "COPY"]
    assert any(c.startswith(f"--from={build['name']} ") and "vllm-grpc-gateway" in c for c in copies)
    # Kubernetes' probes do the health checking; a HEALTHCHECK would be a second prober.
    assert all(keyword != "HEALTHCHECK" for stage in stages for keyword, _ in stage["steps"])
    # Non-root from the last USER on, and numeric so runAsNonRoot can check it.
    keywords = [keyword for keyword, _ in runtime["steps"]]
    assert "USER" in keywords and dockerfile_user() != 0
    assert "RUN" not in keywords[keywords.index("USER"):]
    assert runtime_packages() and not [p for p in runtime_packages() if p.endswith("-dev")]
    entrypoint = json.loads(dict(runtime["steps"])["ENTRYPOINT"])
    assert entrypoint[0].endswith("/vllm-grpc-gateway")
    exposed = {int(p) for keyword, rest in runtime["steps"] if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {p["containerPort"] for p in gateway_container()["ports"]}


def package_of(library_path):
    """The Debian package that holds a shared library (Debian 12's /lib is /usr/lib)."""
    path = Path(library_path)
    candidates = [path, Path("/usr" + str(path)) if not str(path).startswith("/usr/") else path, path.resolve()]
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", str(candidate)], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0].strip()
    raise AssertionError(f"no Debian package holds {library_path}")


def test_the_runtime_stage_installs_exactly_the_libraries_the_gateway_links():
    """ldd on the build's executable: each Swift runtime library must be one that
    --static-swift-stdlib links statically (so the image needs none), and every other library's
    package must be installed by the runtime stage, or be glibc, which every Debian image has.
    The static runtime's own link flags (static-stdlib-args.lnk) count too."""
    if shutil.which("dpkg") is None or shutil.which("ldd") is None:
        pytest.skip("dpkg and ldd are needed to map the executable's libraries to Debian packages")
    release = ROOT / ".build" / "release" / "vllm-grpc-gateway"
    executable = release if release.exists() else BIN_DIR / "vllm-grpc-gateway"
    output = subprocess.run(["ldd", str(executable)], capture_output=True, text=True, check=True).stdout
    libraries = dict(re.findall(r"^\s*(\S+) => (/\S+)", output, re.MULTILINE))
    swift_static, needed = None, set()
    for name, path in libraries.items():
        if "/lib/swift/linux/" in path:
            swift_static = Path(path).parent.parent.parent / "swift_static" / "linux"
            assert (swift_static / name.replace(".so", ".a")).exists(), f"{name} has no static counterpart"
        else:
            needed.add(package_of(path))
    assert swift_static is not None, "the executable links no Swift runtime: is it a Swift build?"
    link_flags = (swift_static / "static-stdlib-args.lnk").read_text().split()
    cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for flag_ in link_flags:
        if flag_.startswith("-l") and not (swift_static / f"lib{flag_[2:]}.a").exists():
            found = re.search(rf"^\s*lib{re.escape(flag_[2:])}\.so(\.\d+)* \(libc6[^)]*\) => (\S+)", cache,
                              re.MULTILINE)
            assert found, f"the static Swift runtime links {flag_}, which ldconfig does not know"
            needed.add(package_of(found.group(2)))
    installed = set(runtime_packages())
    assert needed - {"libc6"} <= installed, f"the runtime stage lacks {sorted(needed - {'libc6'} - installed)}"
    # Nothing else, but the CA certificates https:// upstreams and OTLP collectors are checked with.
    assert installed - needed <= {"ca-certificates"}, f"not linked: {sorted(installed - needed - {'ca-certificates'})}"
