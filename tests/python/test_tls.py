"""TLS on the gateway: ALPN h2 with a certificate from files, the right and a wrong CA, mTLS with
and without a client certificate, and a certificate replaced on disk mid-run (new connections get
it, open ones keep working). Certificates are made here with the openssl command."""

import shutil
import subprocess
import time

import grpc
import pytest

from vllmgateway.v1 import chat_pb2, service_pb2_grpc


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=folder)
    return folder / f"{name}.pem"


def make_cert(folder, ca, name, client=False):
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    usage = "extendedKeyUsage=clientAuth" if client else "extendedKeyUsage=serverAuth"
    (folder / f"{name}.ext").write_text(f"{san}\n{usage}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=folder)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=folder)
    return folder / f"{name}.pem", folder / f"{name}.key"


@pytest.fixture
def pki(tmp_path):
    make_ca(tmp_path, "ca-one")
    make_ca(tmp_path, "ca-two")
    make_ca(tmp_path, "client-ca")
    make_cert(tmp_path, "ca-one", "server-one")
    make_cert(tmp_path, "ca-two", "server-two")
    make_cert(tmp_path, "client-ca", "client", client=True)
    make_cert(tmp_path, "ca-two", "stranger", client=True)
    # The files the gateway serves, replaced in place by the rotation test.
    shutil.copy(tmp_path / "server-one.pem", tmp_path / "tls.pem")
    shutil.copy(tmp_path / "server-one.key", tmp_path / "tls.key")
    return tmp_path


def channel(gateway, pki, ca, client=None):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / f"{ca}.pem").read_bytes(),
        private_key=(pki / f"{client}.key").read_bytes() if client else None,
        certificate_chain=(pki / f"{client}.pem").read_bytes() if client else None)
    return grpc.secure_channel(f"localhost:{gateway.port}", credentials,
                               options=[("grpc.use_local_subchannel_pool", 1)])


def call(chan):
    stub = service_pb2_grpc.VLLMServiceStub(chan)
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=3,
                                             messages=[chat_pb2.ChatMessage(role="user", text="tls?")])
    return stub.CreateChatCompletion(request, timeout=5)


def outcome(chan):
    try:
        call(chan)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def start_tls_gateway(start_server, sim, pki, *extra):
    return start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}",
                        "--tls-certificate", str(pki / "tls.pem"), "--tls-key", str(pki / "tls.key"), *extra)


def test_tls_with_the_right_and_a_wrong_ca(start_server, sim, pki):
    gateway = start_tls_gateway(start_server, sim, pki)
    with channel(gateway, pki, "ca-one") as good:
        assert call(good).usage.completion_tokens == 3
    with channel(gateway, pki, "ca-two") as wrong:
        assert outcome(wrong) == "UNAVAILABLE"
    # A cleartext client gets nowhere on a TLS port.
    with grpc.insecure_channel(gateway.address) as cleartext:
        assert outcome(cleartext) == "UNAVAILABLE"
    gateway.assert_alive()


def test_mtls_needs_a_client_certificate_from_its_ca(start_server, sim, pki):
    gateway = start_tls_gateway(start_server, sim, pki, "--tls-client-ca", str(pki / "client-ca.pem"))
    with channel(gateway, pki, "ca-one", client="client") as with_certificate:
        assert outcome(with_certificate) == "OK"
    with channel(gateway, pki, "ca-one") as without:
        assert outcome(without) == "UNAVAILABLE"
    with channel(gateway, pki, "ca-one", client="stranger") as other_ca:
        assert outcome(other_ca) == "UNAVAILABLE"
    gateway.assert_alive()


def test_a_certificate_replaced_on_disk_is_served_to_new_connections(start_server, sim, pki):
    gateway = start_tls_gateway(start_server, sim, pki)
    before = channel(gateway, pki, "ca-one")
    assert outcome(before) == "OK"
    # As cert-manager does: the new pair replaces the old files.
    shutil.copy(pki / "server-two.key", pki / "tls.key")
    shutil.copy(pki / "server-two.pem", pki / "tls.pem")
    deadline = time.monotonic() + 15
    while True:
        with channel(gateway, pki, "ca-two") as fresh:
            if outcome(fresh) == "OK":
                break
        assert time.monotonic() < deadline, "the new certificate was never served"
        time.sleep(0.5)
    assert gateway.wait_for_log("TLS certificate reloaded")
    # The connection opened before the rotation goes on with the old certificate.
    assert outcome(before) == "OK"
    before.close()
    with channel(gateway, pki, "ca-one") as old_trust:
        assert outcome(old_trust) == "UNAVAILABLE"


def test_unusable_tls_files_are_refused_at_start(tmp_path, sim):
    from conftest import BIN_DIR
    (tmp_path / "bad.pem").write_text("not a certificate")
    result = subprocess.run([str(BIN_DIR / "vllm-grpc-gateway"), "--listen", "127.0.0.1:0", "--upstream",
                             f"http://{sim.address}", "--tls-certificate", str(tmp_path / "bad.pem"),
                             "--tls-key", str(tmp_path / "bad.pem")], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "bad.pem: not a PEM certificate chain" in result.stderr, result.stderr


def test_a_client_certificate_is_a_client_key(start_server, sim, pki):
    """With mTLS, a key rule may name its client by the certificate's common name: no bearer key
    needed, and the rule's models and limits apply."""
    import json
    config = pki / "gateway.json"
    config.write_text(json.dumps({
        "upstreams": [{"url": f"http://{sim.address}"}],
        "tls": {"certificate": str(pki / "tls.pem"), "key": str(pki / "tls.key"),
                "client_ca": str(pki / "client-ca.pem")},
        "auth": {"keys": [{"id": "by-certificate", "client_certificate_cn": "client", "models": ["sim-model"]}]}}))
    gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
    with channel(gateway, pki, "ca-one", client="client") as chan:
        assert outcome(chan) == "OK"
        stub = service_pb2_grpc.VLLMServiceStub(chan)
        other = chat_pb2.ChatCompletionRequest(model="other-model", messages=[chat_pb2.ChatMessage(role="user",
                                                                                                     text="x")])
        with pytest.raises(grpc.RpcError) as error:
            stub.CreateChatCompletion(other, timeout=5)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "by-certificate" in error.value.details()


@pytest.mark.parametrize("ca,expected", [("ca-one", "OK"), ("ca-two", "UNAVAILABLE")])
def test_an_https_vllm_with_its_own_ca(start_server, sim, pki, ca, expected):
    """vLLM behind TLS with a private CA (nghttpx terminating TLS in front of the simulator): the
    upstream's ca_file decides whom the gateway trusts."""
    import json
    from conftest import free_port
    port = free_port()
    proxy = subprocess.Popen(["nghttpx", f"-f127.0.0.1,{port}", f"-b127.0.0.1,{sim.port}", "--workers=1",
                              "--no-ocsp", "--errorlog-file=/dev/null", "--accesslog-file=/dev/null",
                              str(pki / "server-one.key"), str(pki / "server-one.pem")])
    try:
        import socket
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nghttpx did not start"
                time.sleep(0.1)
        config = pki / f"upstream-{ca}.json"
        config.write_text(json.dumps({"upstreams": [{"url": f"https://localhost:{port}",
                                                     "ca_file": str(pki / f"{ca}.pem")}]}))
        gateway = start_server("vllm-grpc-gateway", "--listen", "127.0.0.1:{port}", "--config", str(config))
        with grpc.insecure_channel(gateway.address) as chan:
            assert outcome(chan) == expected
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
