import CProtobufC
import Glibc

/// Decoding and encoding of protoc-c messages. This module sits on the protobuf-c C boundary, so
/// raw pointers are allowed here; each is owned and freed as the comments say.
public enum ProtobufC {
  /// Unpacks `bytes` as the message `descriptor` describes; nil when they do not parse. The
  /// caller frees the result with `free(_:)`.
  public static func decode<Message>(
    _ bytes: [UInt8], _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, as _: Message.Type
  ) -> UnsafeMutablePointer<Message>? {
    let unpacked = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<ProtobufCMessage>? in
      // protobuf-c reads nothing for an empty message, but wants a non-null pointer.
      var empty: UInt8 = 0
      return withUnsafePointer(to: &empty) { placeholder in
        protobuf_c_message_unpack(descriptor, nil, buffer.count, buffer.baseAddress ?? placeholder)
      }
    }
    return unpacked.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Message.self) }
  }

  public static func free<Message>(_ message: UnsafeMutablePointer<Message>) {
    protobuf_c_message_free_unpacked(
      UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self), nil)
  }

  /// Packs a message whose first member is its `ProtobufCMessage` base.
  public static func encode<Message>(_ message: UnsafePointer<Message>) -> [UInt8] {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    var out = [UInt8](repeating: 0, count: size)
    if size > 0 {
      out.withUnsafeMutableBufferPointer { _ = protobuf_c_message_pack(base, $0.baseAddress) }
    }
    return out
  }

  public static func encode<Message>(_ message: inout Message) -> [UInt8] {
    withUnsafePointer(to: &message) { encode($0) }
  }
}

/// Owns the C strings and arrays a message under construction points to, and frees them all when
/// it goes away; keep it alive until the message is packed.
public final class CAllocations {
  private var pointers: [UnsafeMutableRawPointer] = []

  public func string(_ text: String) -> UnsafeMutablePointer<CChar> {
    let copy = strdup(text)!
    pointers.append(UnsafeMutableRawPointer(copy))
    return copy
  }

  public func array<Element>(of _: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
    let memory = calloc(max(count, 1), MemoryLayout<Element>.stride)!
    pointers.append(memory)
    return memory.assumingMemoryBound(to: Element.self)
  }

  public func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
    let memory = array(of: UInt8.self, count: bytes.count)
    bytes.withUnsafeBufferPointer { memory.update(from: $0.baseAddress!, count: bytes.count) }
    return ProtobufCBinaryData(len: bytes.count, data: memory)
  }

  public init() {}

  deinit {
    for pointer in pointers { Glibc.free(pointer) }
  }
}
