// Streams a chat answer from vllm-grpc-gateway into the page, over gRPC-Web (base64 text) or
// Connect (JSON), with nothing but fetch and a ReadableStream reader: no generated code, no
// library, no build step. The few protobuf fields it needs are encoded and decoded by hand; their
// numbers are those of proto/vllmgateway/v1/chat.proto.
"use strict";

const METHOD = "/vllmgateway.v1.VLLMService/StreamChatCompletion";
const GRPC_CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/** A call that ended without an answer: a gRPC or Connect status name and its message. */
class CallError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- Protobuf wire format: just what this page sends and reads ----

function writeVarint(value, out) {
  while (value > 0x7f) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
}

function writeBytes(fieldNumber, bytes, out) {
  writeVarint((fieldNumber << 3) | 2, out);
  writeVarint(bytes.length, out);
  for (const byte of bytes) out.push(byte);
}

/** ChatCompletionRequest { model = 1; messages = 2 (ChatMessage { role = 1; text = 2 }); max_tokens = 7 } */
function encodeChatRequest({ model, question, maxTokens }) {
  const utf8 = new TextEncoder();
  const message = [];
  writeBytes(1, utf8.encode("user"), message);
  writeBytes(2, utf8.encode(question), message);
  const request = [];
  if (model) writeBytes(1, utf8.encode(model), request);
  writeBytes(2, message, request);
  if (maxTokens !== undefined) {
    writeVarint((7 << 3) | 0, request);
    writeVarint(maxTokens, request);
  }
  return Uint8Array.from(request);
}

/** Calls visit(fieldNumber, wireType, value) for each field of a message: value is a number for
 * varints and the bytes for length-delimited fields; fixed-width fields are skipped. */
function readFields(bytes, visit) {
  let index = 0;
  const varint = () => {
    // Arithmetic rather than bit operations, which would cut 64-bit varints to 32 bits.
    let value = 0;
    let scale = 1;
    let byte;
    do {
      if (index >= bytes.length) throw new CallError("INTERNAL", "a protobuf message ends inside a varint");
      byte = bytes[index++];
      value += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte & 0x80);
    return value;
  };
  while (index < bytes.length) {
    const key = varint();
    const fieldNumber = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === 0) {
      visit(fieldNumber, wireType, varint());
    } else if (wireType === 2) {
      const length = varint();
      if (index + length > bytes.length) throw new CallError("INTERNAL", "a protobuf field runs past its message");
      visit(fieldNumber, wireType, bytes.subarray(index, index + length));
      index += length;
    } else if (wireType === 1 || wireType === 5) {
      index += wireType === 1 ? 8 : 4;
    } else {
      throw new CallError("INTERNAL", `unexpected protobuf wire type ${wireType}`);
    }
  }
}

/** The text a ChatCompletionChunk adds to the first choice:
 * choices = 5 (ChatChunkChoice { index = 1; delta = 2 (ChatDelta { content = 2 }) }). */
function chunkText(bytes) {
  const utf8 = new TextDecoder();
  let text = "";
  readFields(bytes, (field, wireType, choice) => {
    if (field !== 5 || wireType !== 2) return;
    let index = 0;
    let content = "";
    readFields(choice, (field, wireType, value) => {
      if (field === 1 && wireType === 0) index = value;
      if (field !== 2 || wireType !== 2) return;
      readFields(value, (field, wireType, value) => {
        if (field === 2 && wireType === 2) content += utf8.decode(value);
      });
    });
    if (index === 0) text += content;
  });
  return text;
}

// ---- Framing shared by gRPC-Web and Connect streams ----

/** A flags byte, a 4-byte big-endian length and the payload. */
function envelope(flags, payload) {
  const framed = new Uint8Array(5 + payload.length);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, payload.length);
  framed.set(payload, 5);
  return framed;
}

/** Collects bytes as the network delivers them and hands out whole envelopes. */
class Deframer {
  constructor() {
    this.buffer = new Uint8Array(0);
  }

  push(bytes) {
    const joined = new Uint8Array(this.buffer.length + bytes.length);
    joined.set(this.buffer);
    joined.set(bytes, this.buffer.length);
    this.buffer = joined;
  }

  *envelopes() {
    while (this.buffer.length >= 5) {
      const length = new DataView(this.buffer.buffer, this.buffer.byteOffset).getUint32(1);
      if (this.buffer.length < 5 + length) return;
      yield { flags: this.buffer[0], payload: this.buffer.slice(5, 5 + length) };
      this.buffer = this.buffer.subarray(5 + length);
    }
  }

  /** Throws when the body ended inside an envelope. */
  finish() {
    if (this.buffer.length > 0) throw new CallError("INTERNAL", "the response ends inside a message");
  }
}

/** Reads a response body to its end, calling onBytes with each piece as it arrives. */
async function readBody(response, onBytes) {
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onBytes(value);
    }
  } catch (error) {
    // Stop the download too, so the gateway sees the call cancelled instead of streaming on.
    reader.cancel().catch(() => {});
    throw error;
  }
}

// ---- gRPC-Web, base64 text ----

function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** grpc-web-text bodies are base64, but the gateway encodes each piece of a stream on its own,
 * padding included: so the text is decoded one 4-character group at a time, never as a whole. */
class Base64Groups {
  constructor() {
    this.rest = "";
  }

  decode(text) {
    const pending = this.rest + text.replace(/\s/g, "");
    const whole = pending.length - (pending.length % 4);
    this.rest = pending.slice(whole);
    const bytes = [];
    for (let i = 0; i < whole; i += 4) {
      let binary;
      try {
        binary = atob(pending.slice(i, i + 4));
      } catch {
        throw new CallError("INTERNAL", "the response is not base64");
      }
      for (let j = 0; j < binary.length; j++) bytes.push(binary.charCodeAt(j));
    }
    return Uint8Array.from(bytes);
  }

  finish() {
    if (this.rest) throw new CallError("INTERNAL", "the response ends inside a base64 group");
  }
}

function percentDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The status in a trailers frame: lines of "name:value" separated by CRLF. */
function parseTrailers(payload) {
  const fields = {};
  for (const line of new TextDecoder().decode(payload).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return fields;
}

function grpcStatus(fields) {
  if (fields["grpc-status"] === undefined || fields["grpc-status"] === null) return null;
  return { code: Number(fields["grpc-status"]), message: percentDecode(fields["grpc-message"] ?? "") };
}

async function streamGRPCWebText(target, request, onText) {
  const response = await fetch(target + METHOD, {
    method: "POST",
    headers: { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text", "x-grpc-web": "1" },
    body: toBase64(envelope(0, encodeChatRequest(request))),
  });
  // A call refused before it started carries its status in the headers (Trailers-Only); the
  // gateway exposes grpc-status and grpc-message to pages through CORS.
  let status = grpcStatus({
    "grpc-status": response.headers.get("grpc-status"),
    "grpc-message": response.headers.get("grpc-message"),
  });
  if (status === null && response.status !== 200) {
    throw new CallError(`HTTP ${response.status}`, await response.text());
  }
  const text = new TextDecoder();
  const base64 = new Base64Groups();
  const deframer = new Deframer();
  await readBody(response, (bytes) => {
    deframer.push(base64.decode(text.decode(bytes, { stream: true })));
    for (const { flags, payload } of deframer.envelopes()) {
      if (flags & 0x80) status = grpcStatus(parseTrailers(payload));
      else if (flags & 0x01) throw new CallError("INTERNAL", "a compressed message, though none was asked for");
      else onText(chunkText(payload));
    }
  });
  base64.finish();
  deframer.finish();
  if (status === null) throw new CallError("INTERNAL", "the response ended without a grpc-status");
  if (status.code !== 0) throw new CallError(GRPC_CODES[status.code] ?? `status ${status.code}`, status.message);
}

// ---- Connect, JSON ----

/** What a Connect client makes of an HTTP status when a stream is refused without an end-stream
 * message (connectrpc.com/docs/protocol, "HTTP to Error Code"). */
function connectCodeOfHTTP(status) {
  return { 400: "internal", 401: "unauthenticated", 403: "permission_denied", 404: "unimplemented",
    429: "unavailable", 502: "unavailable", 503: "unavailable", 504: "unavailable" }[status] ?? "unknown";
}

async function streamConnectJSON(target, { model, question, maxTokens }, onText) {
  // The proto3 JSON mapping: lowerCamelCase field names; ChatMessage's text is its `text` member.
  const message = { messages: [{ role: "user", text: question }] };
  if (model) message.model = model;
  if (maxTokens !== undefined) message.maxTokens = maxTokens;
  const response = await fetch(target + METHOD, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
    body: envelope(0, new TextEncoder().encode(JSON.stringify(message))),
  });
  if (response.status !== 200) {
    throw new CallError(connectCodeOfHTTP(response.status), `HTTP ${response.status}: ${await response.text()}`);
  }
  const utf8 = new TextDecoder();
  const deframer = new Deframer();
  let end = null;
  await readBody(response, (bytes) => {
    deframer.push(bytes);
    for (const { flags, payload } of deframer.envelopes()) {
      if (flags & 0x02) {
        end = JSON.parse(utf8.decode(payload));
      } else if (flags & 0x01) {
        throw new CallError("internal", "a compressed message, though none was asked for");
      } else {
        for (const choice of JSON.parse(utf8.decode(payload)).choices ?? []) {
          if ((choice.index ?? 0) === 0) onText(choice.delta?.content ?? "");
        }
      }
    }
  });
  deframer.finish();
  if (end === null) throw new CallError("internal", "the stream ended without its end-stream message");
  if (end.error) throw new CallError(end.error.code ?? "unknown", end.error.message ?? "");
}

// ---- The page ----

const PROTOCOLS = { "grpc-web-text": streamGRPCWebText, "connect-json": streamConnectJSON };

const form = document.getElementById("chat");
const output = document.getElementById("output");
const errorLine = document.getElementById("error");
const send = document.getElementById("send");

document.getElementById("target").value =
  new URLSearchParams(location.search).get("target") ?? "http://localhost:50051";

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = document.getElementById("target").value.replace(/\/+$/, "");
  const maxTokens = document.getElementById("max-tokens").value;
  const request = {
    model: document.getElementById("model").value.trim(),
    question: document.getElementById("question").value,
    maxTokens: maxTokens === "" ? undefined : Number(maxTokens),
  };
  output.textContent = "";
  errorLine.textContent = "";
  errorLine.hidden = true;
  output.dataset.state = "streaming";
  send.disabled = true;
  try {
    await PROTOCOLS[document.getElementById("protocol").value](target, request, (text) => output.append(text));
    output.dataset.state = "done";
  } catch (error) {
    // fetch rejects with a TypeError when the browser got no usable answer: the gateway is down,
    // or it did not allow this page's origin (CORS), which the page is not told apart.
    errorLine.textContent = error instanceof CallError
      ? `${error.status}: ${error.message}`
      : `network error: ${error.message} (is the gateway at ${target} running, with --cors-origin ${location.origin}?)`;
    errorLine.hidden = false;
    output.dataset.state = "error";
  } finally {
    send.disabled = false;
  }
});
