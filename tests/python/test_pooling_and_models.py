"""Embeddings, rerank, score and the model list through the gateway, against vllm-sim."""

import base64
import struct

import grpc
import pytest

from conftest import ServerProcess, Simulator, http_json
from vllmgateway.v1 import common_pb2, embeddings_pb2, models_pb2, rerank_pb2, service_pb2_grpc


def direct_embeddings(sim, body):
    return http_json(f"http://{sim.address}/v1/embeddings", body)


def test_embeddings_arrive_as_packed_floats_equal_to_vllms(vllm, sim):
    reply = vllm.CreateEmbedding(embeddings_pb2.EmbeddingRequest(model="sim-model", input_text="hello world"), timeout=10)
    # The gateway asked vLLM for base64, whatever the client said.
    assert sim.stats()["last_request"]["encoding_format"] == "base64"
    direct = direct_embeddings(sim, {"model": "sim-model", "input": "hello world"})
    [item] = reply.data
    assert len(item.embedding) == 384 == len(direct["data"][0]["embedding"])
    assert list(item.embedding) == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)
    assert reply.usage.prompt_tokens == direct["usage"]["prompt_tokens"]


def test_embeddings_packed_floats_are_smaller_than_json(vllm, sim):
    request = embeddings_pb2.EmbeddingRequest(input_texts=common_pb2.StringList(values=[f"text {i}" for i in range(16)]))
    reply = vllm.CreateEmbedding(request, timeout=10)
    assert [d.index for d in reply.data] == list(range(16))
    direct = direct_embeddings(sim, {"input": [f"text {i}" for i in range(16)]})
    import json
    assert len(json.dumps(direct, separators=(",", ":"))) >= 2 * len(reply.SerializeToString())


@pytest.mark.parametrize("field,value,expected", [
    ("input_text", "one", "one"),
    ("input_texts", common_pb2.StringList(values=["a", "b"]), ["a", "b"]),
    ("input_token_ids", common_pb2.TokenIds(values=[1, 2, 3]), [1, 2, 3]),
    ("input_token_id_lists", common_pb2.TokenIdsList(values=[common_pb2.TokenIds(values=[1]), common_pb2.TokenIds(values=[2, 3])]),
     [[1], [2, 3]]),
])
def test_embedding_input_shapes(vllm, sim, field, value, expected):
    reply = vllm.CreateEmbedding(embeddings_pb2.EmbeddingRequest(**{field: value}), timeout=10)
    assert len(reply.data) == (len(expected) if isinstance(expected, list) and field != "input_token_ids" else 1)
    assert sim.stats()["last_request"]["input"] == expected


def test_embedding_dimensions_on_a_plain_model_is_invalid_argument(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.CreateEmbedding(embeddings_pb2.EmbeddingRequest(input_text="x", dimensions=8), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "matryoshka" in error.value.details()


def test_rerank_sorted_with_documents_and_top_n(vllm):
    documents = ["cats purr", "dogs bark", "stars shine", "fish swim"]
    reply = vllm.Rerank(rerank_pb2.RerankRequest(model="sim-model", query="pets", documents=documents), timeout=10)
    scores = [r.relevance_score for r in reply.results]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4
    assert {r.document.text for r in reply.results} == set(documents)
    assert all(documents[r.index] == r.document.text for r in reply.results)
    top = vllm.Rerank(rerank_pb2.RerankRequest(query="pets", documents=documents, top_n=2), timeout=10)
    assert [r.index for r in top.results] == [r.index for r in reply.results[:2]]


def test_rerank_without_documents_when_asked(vllm, sim):
    reply = vllm.Rerank(rerank_pb2.RerankRequest(query="q", documents=["a", "b"], return_documents=False), timeout=10)
    assert sim.stats()["last_request"]["return_documents"] is False
    assert all(not r.HasField("document") for r in reply.results)


def test_rerank_falls_back_to_slash_rerank_and_remembers(tmp_path):
    sim = Simulator("vllm-sim", ["--port", "{port}", "--no-v1-rerank"], tmp_path / "sim.log")
    gateway = ServerProcess("vllm-grpc-gateway", ["--listen", "127.0.0.1:{port}", "--upstream", f"http://{sim.address}"],
                            tmp_path / "gateway.log")
    channel = grpc.insecure_channel(gateway.address)
    try:
        vllm = service_pb2_grpc.VLLMServiceStub(channel)
        for _ in range(3):
            reply = vllm.Rerank(rerank_pb2.RerankRequest(query="q", documents=["a", "b"]), timeout=10)
            assert len(reply.results) == 2
        paths = sim.stats()["by_path"]
        assert paths["/v1/rerank"] == 1 and paths["/rerank"] == 3
    finally:
        channel.close()
        gateway.stop()
        sim.stop()


def test_rerank_unknown_model(vllm):
    with pytest.raises(grpc.RpcError) as error:
        vllm.Rerank(rerank_pb2.RerankRequest(model="nope", query="q", documents=["a"]), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_score(vllm):
    reply = vllm.Score(rerank_pb2.ScoreRequest(text_1_single="query", text_2_list=common_pb2.StringList(values=["a", "b", "c"])),
                       timeout=10)
    assert [d.index for d in reply.data] == [0, 1, 2] and all(d.object == "score" for d in reply.data)


def test_list_models_has_every_field(vllm, sim):
    reply = vllm.ListModels(models_pb2.ListModelsRequest(), timeout=10)
    [model] = reply.data
    assert (model.id, model.object, model.owned_by) == ("sim-model", "model", "vllm")
    assert model.created > 0 and model.root == "/models/sim-model" and model.max_model_len == 4096
    assert model.permission[0]["object"] == "model_permission"
    assert not model.HasField("parent")
