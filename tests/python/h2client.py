"""A raw HTTP/2 client over a socket (the `h2` library), for what a gRPC library will not send:
malformed requests, odd framing, floods."""

import socket
import struct

import h2.config
import h2.connection
import h2.events
import h2.settings


def grpc_frame(message: bytes, compressed: bool = False) -> bytes:
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def parse_frames(body: bytes):
    """Splits a response body into (compressed, message) pairs."""
    out = []
    index = 0
    while index < len(body):
        flag, length = struct.unpack(">BI", body[index:index + 5])
        out.append((flag == 1, body[index + 5:index + 5 + length]))
        index += 5 + length
    assert index == len(body), "response body ends inside a message"
    return out


class Response:
    def __init__(self):
        self.headers = None
        self.trailers = None
        self.data = b""
        self.reset = None
        self.ended = False

    @property
    def all_headers(self):
        merged = dict(self.headers or {})
        merged.update(self.trailers or {})
        return merged

    def status(self):
        """grpc-status from the trailers, or from a Trailers-Only response's headers."""
        return int(self.all_headers["grpc-status"])


class RawClient:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=False, normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.responses = {}
        self.events = []
        self.remote_settings = {}
        self.goaway = None
        self.closed = False
        self._pending = b""
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def grpc_headers(self, path, extra=(), method="POST", content_type="application/grpc", te="trailers"):
        headers = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost")]
        if content_type is not None:
            headers.append(("content-type", content_type))
        if te is not None:
            headers.append(("te", te))
        return headers + list(extra)

    def start(self, path, extra=(), end_stream=False, **kwargs):
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, self.grpc_headers(path, extra, **kwargs), end_stream=end_stream)
        self.responses[stream_id] = Response()
        self.flush()
        return stream_id

    def send(self, stream_id, data: bytes, end_stream=False):
        """Sends DATA within the peer's flow-control windows and frame size, waiting as needed."""
        while len(data) > self.conn.max_outbound_frame_size or len(data) > self.conn.local_flow_control_window(stream_id):
            room = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if room == 0:
                self.read_once()
                continue
            self.conn.send_data(stream_id, data[:room])
            self.flush()
            data = data[room:]
        self.conn.send_data(stream_id, data, end_stream=end_stream)
        self.flush()

    def end(self, stream_id):
        self.conn.end_stream(stream_id)
        self.flush()

    def reset(self, stream_id):
        self.conn.reset_stream(stream_id)
        self.flush()

    def ping(self, payload=b"12345678"):
        self.conn.ping(payload)
        self.flush()

    def _complete_frames(self, data):
        """Splits received bytes into whole frames, so each GOAWAY is seen before what follows it."""
        self._pending += data
        frames = []
        while len(self._pending) >= 9:
            length = int.from_bytes(self._pending[:3], "big")
            if len(self._pending) < 9 + length:
                break
            frames.append(self._pending[:9 + length])
            self._pending = self._pending[9 + length:]
        return frames

    def read_once(self):
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        events = []
        for frame in self._complete_frames(data):
            events.extend(self._handle(self.conn.receive_data(frame)))
        self.flush()
        return events

    def _handle(self, events):
        for event in events:
            self.events.append(event)
            response = self.responses.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                response.headers = dict(event.headers)
            elif isinstance(event, h2.events.TrailersReceived):
                response.trailers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                response.data += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                response.ended = True
            elif isinstance(event, h2.events.StreamReset):
                if response is not None:
                    response.reset = event.error_code
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                for key, value in event.changed_settings.items():
                    self.remote_settings[key] = value.new_value
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
                # h2 treats GOAWAY as the end, but HTTP/2 lets streams below last_stream_id run
                # to completion; keep the state machine open to watch them finish.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return events

    def wait(self, predicate, rounds=1000):
        for _ in range(rounds):
            if predicate():
                return True
            if self.closed:
                return predicate()
            try:
                self.read_once()
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
        return predicate()

    def finish(self, stream_id):
        """Waits until the stream ends or is reset, and returns its response."""
        response = self.responses[stream_id]
        assert self.wait(lambda: response.ended or response.reset is not None), "stream did not end"
        return response

    def call(self, path, message: bytes, extra=(), **kwargs):
        stream_id = self.start(path, extra, **kwargs)
        self.send(stream_id, grpc_frame(message), end_stream=True)
        return self.finish(stream_id)

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()
