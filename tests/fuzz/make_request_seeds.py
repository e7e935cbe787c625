"""Writes the seed corpus for fuzz-request-json: realistic request messages of every VLLMService
method that sends vLLM a body, serialized by the official protobuf runtime from stubs generated
here (as tests/python/conftest.py does), each after the selector byte that picks the method.
Run with the project's venv: .venv/bin/python tests/fuzz/make_request_seeds.py [OUT_DIR]. Inputs that
once failed (deep_struct_nesting, ...) sit beside these in the corpus; this script leaves them be."""

import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "request-corpus"

# The selector byte: the index in FuzzedRequestTranslation.methods (Sources/FuzzRequestJSON).
METHODS = ["CreateChatCompletion", "StreamChatCompletion", "CreateCompletion", "StreamCompletion",
           "CreateResponse", "StreamResponse", "CreateResponse via chat", "StreamResponse via chat",
           "CreateEmbedding", "Score", "Rerank", "CreateTranscription", "StreamTranscription",
           "CreateTranslation", "StreamTranslation"]


def generate_stubs(out):
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    own = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={out}"] + own) != 0:
        raise RuntimeError("grpc_tools.protoc failed on proto/")
    sys.path.insert(0, str(out))


def struct_of(value):
    from google.protobuf import struct_pb2

    s = struct_pb2.Struct()
    s.update(value)
    return s


def seeds():
    from vllmgateway.v1 import audio_pb2, chat_pb2, common_pb2, completions_pb2, embeddings_pb2
    from vllmgateway.v1 import rerank_pb2, responses_pb2

    weather = chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(
        name="get_weather", description="The weather in a city", strict=True,
        parameters=struct_of({"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"], "additionalProperties": False})))
    chat = chat_pb2.ChatCompletionRequest(
        model="vllm/Qwen/Qwen2.5-0.5B-Instruct", temperature=0.7, top_p=0.95, max_completion_tokens=64, seed=42,
        messages=[chat_pb2.ChatMessage(role="system", text="You are terse."),
                  chat_pb2.ChatMessage(role="user", text="Say hi in Fran\u00e7ais \U0001f600, then \"quote\"\n")],
        logit_bias={"50256": -100.0, "13": 2.5}, stop_strings=common_pb2.StringList(values=["\n\n", "END"]))
    yield "chat_basic", 0, chat
    yield "chat_stream", 1, chat
    yield "chat_tools", 0, chat_pb2.ChatCompletionRequest(
        model="m", tools=[weather], tool_choice_named=chat_pb2.NamedToolChoice(
            type="function", function=chat_pb2.FunctionName(name="get_weather")),
        parallel_tool_calls=False,
        messages=[chat_pb2.ChatMessage(role="user", text="Weather in Paris?"),
                  chat_pb2.ChatMessage(role="assistant", tool_calls=[chat_pb2.ToolCall(
                      id="chatcmpl-tool-1", type="function",
                      function=chat_pb2.FunctionCall(name="get_weather", arguments='{"city": "Paris"}'))]),
                  chat_pb2.ChatMessage(role="tool", tool_call_id="chatcmpl-tool-1", text="18C, sunny")])
    yield "chat_multimodal", 1, chat_pb2.ChatCompletionRequest(
        model="vllm/llava", stream_options=common_pb2.StreamOptions(include_usage=False, continuous_usage_stats=True),
        messages=[chat_pb2.ChatMessage(role="user", parts=chat_pb2.ContentPartList(values=[
            chat_pb2.ContentPart(text=chat_pb2.TextPart(text="What is in these?")),
            chat_pb2.ContentPart(image_url=chat_pb2.ImageUrlPart(
                image_url=chat_pb2.ImageUrl(url="data:image/png;base64,iVBORw0KGgo=", detail="low"))),
            chat_pb2.ContentPart(input_audio=chat_pb2.InputAudioPart(
                input_audio=chat_pb2.InputAudio(data="UklGRg==", format="wav"))),
            chat_pb2.ContentPart(video_url=chat_pb2.VideoUrlPart(video_url=chat_pb2.MediaUrl(url="https://x/v.mp4"))),
            chat_pb2.ContentPart(file=chat_pb2.FilePart(file=struct_of({"file_id": "file-1"})))]))])
    yield "chat_vllm_params", 0, chat_pb2.ChatCompletionRequest(
        model="m", messages=[chat_pb2.ChatMessage(role="user", text="x", extra_body=struct_of({"weight": 1}))],
        top_k=-1, min_p=0.05, repetition_penalty=1.1, stop_token_ids=[2, 32000], bad_words=["darn"],
        allowed_token_ids=[1, 2, 3], documents=[struct_of({"title": "t", "text": "d"})],
        chat_template_kwargs=struct_of({"enable_thinking": False}), priority=-3, request_id="req-1",
        response_format=common_pb2.ResponseFormat(type="json_schema", json_schema=common_pb2.JsonSchema(
            name="answer", schema=struct_of({"type": "object", "properties": {"a": {"type": "number"}}}))),
        structured_outputs=common_pb2.StructuredOutputs(choice=["yes", "no"], backend="xgrammar"),
        vllm_xargs=struct_of({"k": [1, 2.5, "s", None, True, {"n": []}]}),
        extra_body=struct_of({"guided_decoding_backend": "outlines", "nested": {"a": {"b": {"c": [[[]]]}}}}))

    completion = completions_pb2.CompletionRequest(
        model="vllm/facebook/opt-125m", prompt_text="Once upon a time", max_tokens=16, temperature=0.0,
        logprobs=2, echo=True, stop_string=".", suffix=" The end.", logit_bias={"1": 1.5})
    yield "completion_text", 2, completion
    yield "completion_stream", 3, completion
    yield "completion_token_lists", 2, completions_pb2.CompletionRequest(
        model="m", prompt_token_id_lists=common_pb2.TokenIdsList(values=[
            common_pb2.TokenIds(values=[1, 2, 3]), common_pb2.TokenIds(values=[-1, 2147483647])]),
        best_of=2, n=2, use_beam_search=True, length_penalty=0.5)
    yield "completion_texts", 3, completions_pb2.CompletionRequest(
        prompt_texts=common_pb2.StringList(values=["a", "", "\u00e9\u0000\x7f"]), stream_options=common_pb2.StreamOptions(
            include_usage=True), stop_strings=common_pb2.StringList(values=["x"]))

    response = responses_pb2.ResponseRequest(
        model="vllm/Qwen/Qwen2.5-0.5B-Instruct", instructions="Be brief.", max_output_tokens=32, temperature=0.2,
        input_items=responses_pb2.ResponseItemList(values=[
            responses_pb2.ResponseItem(message=responses_pb2.ResponseMessage(role="user", text="What is 2+2?")),
            responses_pb2.ResponseItem(message=responses_pb2.ResponseMessage(
                role="assistant", parts=responses_pb2.ResponseContentList(values=[
                    responses_pb2.ResponseContent(output_text=responses_pb2.ResponseText(text="4"))]))),
            responses_pb2.ResponseItem(function_call=responses_pb2.ResponseFunctionCall(
                call_id="call_1", name="add", arguments='{"a":2,"b":2}')),
            responses_pb2.ResponseItem(function_call_output=responses_pb2.ResponseFunctionCallOutput(
                call_id="call_1", output="4")),
            responses_pb2.ResponseItem(other=struct_of({"type": "item_reference", "id": "msg_1"}))]),
        tools=[struct_of({"type": "function", "name": "add", "parameters": {"type": "object"}})],
        tool_choice_object=struct_of({"type": "function", "name": "add"}), top_logprobs=2,
        text=struct_of({"format": {"type": "json_schema", "name": "sum", "schema": {"type": "object"}}}),
        reasoning=struct_of({"effort": "low"}), metadata={"user": "u1", "k\u00e9y": "v"}, include=["reasoning.encrypted_content"])
    for selector in (4, 5, 6, 7):
        yield f"response_items_{selector}", selector, response
    simple = responses_pb2.ResponseRequest(model="m", input_text="Hello", tool_choice_mode="auto", store=False,
                                           extra_body=struct_of({"top_k": 5}))
    yield "response_text", 4, simple
    yield "response_text_via_chat", 7, simple

    yield "embedding_texts", 8, embeddings_pb2.EmbeddingRequest(
        model="vllm/intfloat/e5-small", input_texts=common_pb2.StringList(values=["hello", "world"]), dimensions=256,
        normalize=True, encoding_format="float", truncate_prompt_tokens=-1)
    yield "embedding_messages", 8, embeddings_pb2.EmbeddingRequest(
        model="m", messages=[chat_pb2.ChatMessage(role="user", text="embed me")],
        input_token_ids=common_pb2.TokenIds(values=[101, 2023, 102]))
    yield "score_pairs", 9, rerank_pb2.ScoreRequest(
        model="vllm/BAAI/bge-reranker-base", text_1_single="What is the capital of France?",
        text_2_list=common_pb2.StringList(values=["Paris is the capital.", "Berlin is in Germany."]))
    yield "score_lists", 9, rerank_pb2.ScoreRequest(
        model="m", text_1_list=common_pb2.StringList(values=["a", "b"]),
        text_2_list=common_pb2.StringList(values=["c", "d"]), truncate_prompt_tokens=128)
    yield "rerank", 10, rerank_pb2.RerankRequest(
        model="vllm/BAAI/bge-reranker-base", query="capital of France",
        documents=["Paris", "Berlin", "\u6771\u4eac"], top_n=2, return_documents=False,
        extra_body=struct_of({"return_documents": True}))

    riff = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) \
        + b"data" + struct.pack("<I", 0)
    transcription = audio_pb2.TranscriptionRequest(
        model="vllm/openai/whisper-tiny", file=riff, filename='clip "1".wav', language="en",
        prompt="Earlier: hello\r\n", response_format="verbose_json", temperature=0.0,
        timestamp_granularities=["segment", "word"], seed=-7, extra_form_fields={"vad_filter": "true"})
    yield "transcription", 11, transcription
    yield "transcription_stream", 12, audio_pb2.TranscriptionRequest(
        model="m", file=riff, stream_include_usage=False, stream_continuous_usage_stats=True, top_k=5)
    yield "translation", 13, audio_pb2.TranscriptionRequest(
        model="vllm/openai/whisper-tiny", file=riff, response_format="srt", to_language="en")
    yield "translation_stream", 14, audio_pb2.TranscriptionRequest(file=riff, language="de", min_p=0.1)


def main():
    with tempfile.TemporaryDirectory() as stubs:
        generate_stubs(stubs)
        OUT.mkdir(parents=True, exist_ok=True)
        count = 0
        for name, selector, message in seeds():
            assert 0 <= selector < len(METHODS)
            (OUT / name).write_bytes(bytes([selector]) + message.SerializeToString())
            count += 1
    print(f"wrote {count} seeds to {OUT}")


if __name__ == "__main__":
    main()
