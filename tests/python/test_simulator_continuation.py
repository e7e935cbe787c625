"""vllm-sim answers a continuation as vLLM at temperature 0 would: a chat request whose final
assistant message is the start of the answer (continue_final_message, add_generation_prompt
false), or a completions prompt that ends with the start of its own answer, gets the rest of the
same answer. A fault placed at a point of the generation is not met again by a continuation that
starts beyond it. This is what mid-stream failover to another replica rests on."""

import http.client
import json
import re

from conftest import http_json

QUESTION = [{"role": "user", "content": "Tell me a long story about foxes"}]


def tokens(text):
    """The simulator's tokens: each starts with a space, a full stop or a comma."""
    return re.findall(r"[ .,][^ .,]*", text)


def stream_text(sim, path, body):
    """The text of a streamed answer, read raw, whether it ended with [DONE], and its error events."""
    host, port = sim.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", path, json.dumps({**body, "stream": True}), {"content-type": "application/json"})
    response = connection.getresponse()
    try:
        raw = response.read()
    except http.client.IncompleteRead as cut:  # a dropped connection
        raw = cut.partial
    text, done, errors = "", False, []
    for line in raw.decode().split("\n"):
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        if "error" in event:
            errors.append(event["error"])
            continue
        for choice in event.get("choices", []):
            text += choice.get("delta", {}).get("content") or choice.get("text") or ""
    return text, done, errors


def test_chat_continues_the_final_assistant_message(sim):
    whole = http_json(f"http://{sim.address}/v1/chat/completions", {"messages": QUESTION, "max_tokens": 12})
    answer = whole["choices"][0]["message"]["content"]
    for cut in (1, 5, 11):
        partial = "".join(tokens(answer)[:cut])
        rest = http_json(f"http://{sim.address}/v1/chat/completions", {
            "messages": QUESTION + [{"role": "assistant", "content": partial}], "max_tokens": 12 - cut,
            "continue_final_message": True, "add_generation_prompt": False})
        assert partial + rest["choices"][0]["message"]["content"] == answer
        # The prompt holds the tokens it continues after; together the two count the same.
        assert rest["usage"]["prompt_tokens"] == whole["usage"]["prompt_tokens"] + cut
        assert rest["usage"]["completion_tokens"] == 12 - cut


def test_a_final_assistant_message_that_is_not_the_answer_is_a_new_prompt(sim):
    whole = http_json(f"http://{sim.address}/v1/chat/completions", {"messages": QUESTION, "max_tokens": 6})
    other = http_json(f"http://{sim.address}/v1/chat/completions", {
        "messages": QUESTION + [{"role": "assistant", "content": " something else entirely"}], "max_tokens": 6,
        "continue_final_message": True, "add_generation_prompt": False})
    assert other["choices"][0]["message"]["content"] != whole["choices"][0]["message"]["content"]


def test_completions_continue_a_prompt_that_ends_with_its_own_answer(sim):
    prompt = "Once upon a time"
    whole = http_json(f"http://{sim.address}/v1/completions", {"prompt": prompt, "max_tokens": 10})
    answer = whole["choices"][0]["text"]
    partial = "".join(tokens(answer)[:4])
    rest = http_json(f"http://{sim.address}/v1/completions", {"prompt": prompt + partial, "max_tokens": 6})
    assert partial + rest["choices"][0]["text"] == answer
    assert rest["usage"]["prompt_tokens"] == whole["usage"]["prompt_tokens"] + 4


def test_a_streamed_continuation_passes_the_fault_the_first_replica_met(sim):
    fault = {"vllm_sim": {"fault": "drop", "after": 5}}
    whole, done, _ = stream_text(sim, "/v1/chat/completions", {"messages": QUESTION, "max_tokens": 12})
    assert done
    cut_short, done, _ = stream_text(sim, "/v1/chat/completions", {"messages": QUESTION, "max_tokens": 12, **fault})
    assert not done and whole.startswith(cut_short) and len(tokens(cut_short)) == 4
    rest, done, errors = stream_text(sim, "/v1/chat/completions", {
        "messages": QUESTION + [{"role": "assistant", "content": cut_short}], "max_tokens": 8,
        "continue_final_message": True, "add_generation_prompt": False, **fault})
    assert done and not errors
    assert cut_short + rest == whole
