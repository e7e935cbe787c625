"""The browser example in examples/web, in headless Chromium driven by selenium: served over HTTP
like any page, it streams a chat answer from the gateway over gRPC-Web (base64 text) and over
Connect (JSON), shows the status of a failed call, and gets nothing from a gateway that does not
allow its origin (CORS)."""

import functools
import http.server
import shutil
import threading

import grpc
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ROOT, ServerProcess, Simulator
from vllmgateway.v1 import chat_pb2, service_pb2_grpc

PAGE = ROOT / "examples" / "web"
QUESTION = "Why is the sky blue?"
MAX_TOKENS = 24
PROTOCOLS = ["grpc-web-text", "connect-json"]
NOT_FOUND_MESSAGE = "The model `no-such-model` does not exist. Valid aliases: sim-model."


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class PageServer:
    """examples/web over HTTP on a free port, as `python3 -m http.server` serves it."""

    def __init__(self):
        handler = functools.partial(_QuietHandler, directory=str(PAGE))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, gateway):
        return f"{self.origin}/index.html?target=http://{gateway.address}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def page():
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_page():
    """The same page from another origin, one the gateway was not told to allow."""
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def paced_sim(tmp_path_factory):
    """vllm-sim generating 40 tokens a second, so that the page has time to show an answer grow."""
    server = Simulator("vllm-sim", ["--port", "{port}", "--tokens-per-second", "40"],
                       tmp_path_factory.mktemp("paced-sim") / "sim.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web_gateway(paced_sim, page, tmp_path_factory):
    """The gateway allowing the page's origin, and no other."""
    server = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream",
                                                 f"http://{paced_sim.address}", "--cors-origin", page.origin,
                                                 "--log-level", "debug"],
                           tmp_path_factory.mktemp("web-gateway") / "gateway.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "chromium and chromium-driver are missing: run tools/install-deps"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800"):
        options.add_argument(argument)
    # The console, where Chromium says why it blocked a request.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    yield driver
    driver.quit()


# Records what #output held after each change, and when, so a test can tell an answer that grew
# as it arrived from one written all at once.
RECORD_CHANGES = """
const output = document.getElementById("output");
window.changes = [];
new MutationObserver(() => window.changes.push([performance.now(), output.textContent]))
    .observe(output, {childList: true, characterData: true, subtree: true});
"""


def ask(browser, url, protocol, model="sim-model", question=QUESTION, max_tokens=MAX_TOKENS):
    """Fills in the page's form, sends it, and waits for the answer or an error."""
    browser.get(url)
    browser.get_log("browser")  # drops the console of earlier pages
    browser.execute_script(RECORD_CHANGES)
    for element_id, value in (("model", model), ("max-tokens", str(max_tokens)), ("question", question)):
        field = browser.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)
    Select(browser.find_element(By.ID, "protocol")).select_by_value(protocol)
    browser.find_element(By.ID, "send").click()
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 30).until(lambda _: output.get_attribute("data-state") in ("done", "error"))
    return (output.get_attribute("data-state"), browser.execute_script("return document.getElementById('output').textContent"),
            browser.find_element(By.ID, "error").text)


def grpc_answer(gateway, question=QUESTION, max_tokens=MAX_TOKENS):
    """What a gRPC client gets for the request the page sends."""
    request = chat_pb2.ChatCompletionRequest(model="sim-model", max_tokens=max_tokens,
                                             messages=[chat_pb2.ChatMessage(role="user", text=question)])
    with grpc.insecure_channel(gateway.address) as channel:
        return service_pb2_grpc.VLLMServiceStub(channel).CreateChatCompletion(request, timeout=30) \
            .choices[0].message.content


def screenshot(browser, tmp_path, name):
    path = tmp_path / name
    assert browser.save_screenshot(str(path))
    (ROOT / ".build").mkdir(exist_ok=True)
    shutil.copy(path, ROOT / ".build" / name)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_page_streams_an_answer(browser, page, web_gateway, paced_sim, tmp_path, protocol):
    state, text, error = ask(browser, page.url(web_gateway), protocol)
    screenshot(browser, tmp_path, f"web-chat-{protocol}.png")
    assert (state, error) == ("done", "")
    # The request the page encoded by hand reached vLLM whole.
    sent = paced_sim.stats()["last_request"]
    assert sent["model"] == "sim-model" and sent["max_tokens"] == MAX_TOKENS
    assert sent["messages"] == [{"role": "user", "content": QUESTION}]
    assert text == grpc_answer(web_gateway)
    # 24 tokens at 40 a second: the answer grew in steps over half a second, not all at the end.
    changes = [(at, seen) for at, seen in browser.execute_script("return window.changes") if seen]
    assert all(text.startswith(seen) for _, seen in changes)
    assert len({seen for _, seen in changes}) >= 5, changes
    assert changes[-1][0] - changes[0][0] > 300, changes


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_page_shows_the_status_of_a_failed_call(browser, page, web_gateway, protocol):
    state, text, error = ask(browser, page.url(web_gateway), protocol, model="no-such-model")
    # Each protocol's own name for the status.
    status = {"grpc-web-text": "NOT_FOUND", "connect-json": "not_found"}[protocol]
    assert (state, text, error) == ("error", "", f"{status}: {NOT_FOUND_MESSAGE}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_page_from_an_origin_not_allowed_gets_no_answer(browser, other_page, web_gateway, paced_sim, tmp_path,
                                                        protocol):
    before = paced_sim.stats()["by_path"].get("/v1/chat/completions", 0)
    state, text, error = ask(browser, other_page.url(web_gateway), protocol)
    screenshot(browser, tmp_path, f"web-chat-{protocol}-cors-refused.png")
    assert (state, text) == ("error", "")
    assert error.startswith("network error: Failed to fetch"), error
    assert f"--cors-origin {other_page.origin}" in error
    console = " ".join(entry["message"] for entry in browser.get_log("browser"))
    assert f"from origin '{other_page.origin}' has been blocked by CORS policy" in console, console
    # The preflight was refused, so the call itself never reached vLLM.
    assert paced_sim.stats()["by_path"].get("/v1/chat/completions", 0) == before
