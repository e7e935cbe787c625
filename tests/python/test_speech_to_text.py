"""Speech to text through the gateway against vllm-sim: the request becomes one multipart form,
replies arrive typed, streams relay the deltas and then the usage, and large files go up in
chunks with UploadTranscription."""

import grpc
import pytest

from vllmgateway.v1 import audio_pb2

AUDIO = bytes(range(256)) * 250  # 64 000 bytes: two seconds at 32 kB/s in the simulator's arithmetic


def transcription(**fields):
    fields.setdefault("file", AUDIO)
    return audio_pb2.TranscriptionRequest(model="sim-model", **fields)


def test_transcription_json_and_the_form_vllm_receives(vllm, sim):
    reply = vllm.CreateTranscription(transcription(filename="talk.wav", language="en", prompt="hello", temperature=0.0,
                                                   timestamp_granularities=["segment", "word"]), timeout=10)
    assert reply.text and reply.usage.type == "duration" and reply.usage.seconds == 2
    form = sim.stats()["last_request"]
    assert form["filename"] == "talk.wav" and form["file_bytes"] == len(AUDIO)
    assert form["model"] == "sim-model" and form["language"] == "en" and form["prompt"] == "hello"
    assert form["temperature"] in ("0.0", "0")
    assert form["timestamp_granularities[]"] in ("segment", "word")
    assert "stream" not in form


def test_verbose_json_is_typed(vllm):
    reply = vllm.CreateTranscription(transcription(response_format="verbose_json"), timeout=10)
    assert reply.language == "en" and reply.duration == 2.0
    [segment] = reply.segments
    assert segment.end == 2.0 and segment.text == reply.text and list(segment.tokens) == [1, 2]


def test_text_format_still_arrives_as_text(vllm):
    reply = vllm.CreateTranscription(transcription(response_format="text"), timeout=10)
    assert reply.text


@pytest.mark.parametrize("fmt,first_lines", [
    ("srt", "1\n00:00:00,000 --> 00:00:02,000\n"),
    ("vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n")])
def test_srt_and_vtt_which_vllm_refuses_are_written_by_the_gateway(vllm, sim, fmt, first_lines):
    plain = vllm.CreateTranscription(transcription(), timeout=10)
    reply = vllm.CreateTranscription(transcription(response_format=fmt), timeout=10)
    assert sim.stats()["last_request"]["response_format"] == "verbose_json"
    assert reply.response_format == fmt
    assert reply.text.startswith(first_lines)
    assert plain.text in reply.text
    assert len(reply.segments) == 1


def test_unknown_format_is_invalid_argument_with_vllms_message(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.CreateTranscription(transcription(response_format="xml"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "json" in error.value.details()


def test_missing_audio_is_invalid_argument(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.CreateTranscription(audio_pb2.TranscriptionRequest(model="sim-model"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_streaming_transcription_relays_deltas_then_usage(vllm, sim):
    unary = vllm.CreateTranscription(transcription(), timeout=10)
    chunks = list(vllm.StreamTranscription(transcription(), timeout=10))
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text.strip() == unary.text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    form = sim.stats()["last_request"]
    assert form["stream"] == "true" and form["stream_include_usage"] == "true"


def test_translation_unary_and_streaming(vllm, sim):
    reply = vllm.CreateTranslation(transcription(), timeout=10)
    assert reply.text
    chunks = list(vllm.StreamTranslation(transcription(), timeout=10))
    assert chunks[0].object == "translation.chunk" and chunks[0].id.startswith("translate-")
    assert sim.stats()["by_path"]["/v1/audio/translations"] >= 2


def test_upload_in_chunks_equals_one_request(vllm, sim):
    whole = vllm.CreateTranscription(transcription(), timeout=10)

    def messages():
        yield audio_pb2.TranscriptionUpload(parameters=audio_pb2.TranscriptionRequest(
            model="sim-model", filename="big.wav", file=AUDIO[:1000]))
        for start in range(1000, len(AUDIO), 7000):
            yield audio_pb2.TranscriptionUpload(audio_chunk=AUDIO[start:start + 7000])

    uploaded = vllm.UploadTranscription(messages(), timeout=10)
    assert uploaded.text == whole.text
    form = sim.stats()["last_request"]
    assert form["file_bytes"] == len(AUDIO) and form["filename"] == "big.wav"


def test_upload_without_parameters_first_is_refused(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.UploadTranscription(iter([audio_pb2.TranscriptionUpload(audio_chunk=b"abc")]), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_upload_larger_than_the_limit_is_resource_exhausted(vllm):
    def messages():
        yield audio_pb2.TranscriptionUpload(parameters=audio_pb2.TranscriptionRequest(model="sim-model"))
        chunk = b"\0" * (3 * 1024 * 1024)
        for _ in range(12):
            yield audio_pb2.TranscriptionUpload(audio_chunk=chunk)

    with pytest.raises(grpc.RpcError) as error:
        vllm.UploadTranscription(messages(), timeout=20)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
