import CZlib

/// gzip and deflate (zlib) through the system zlib: the one place this module calls it.
enum Zlib {
  enum Failure: Error, Equatable {
    case corrupt(String)
    case tooLarge(limit: Int)
  }

  /// Compresses `input` as gzip or as a zlib stream (gRPC's "deflate").
  static func compress(_ input: UnsafeRawBufferPointer, gzip: Bool) -> [UInt8] {
    var stream = z_stream()
    let windowBits: Int32 = gzip ? 15 + 16 : 15
    // deflateInit2 is a macro Swift cannot see; its function form takes the version and size.
    let initStatus = deflateInit2_(
      &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    precondition(initStatus == Z_OK, "deflateInit2 failed: \(initStatus)")
    defer { deflateEnd(&stream) }
    let bound = Int(deflateBound(&stream, uLong(input.count)))
    var output = [UInt8](repeating: 0, count: bound)
    let written = output.withUnsafeMutableBufferPointer { out -> Int in
      stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
      stream.avail_in = uInt(input.count)
      stream.next_out = out.baseAddress
      stream.avail_out = uInt(out.count)
      let status = deflate(&stream, Z_FINISH)
      precondition(status == Z_STREAM_END, "deflate with a deflateBound buffer did not finish: \(status)")
      return out.count - Int(stream.avail_out)
    }
    output.removeSubrange(written...)
    return output
  }

  /// Decompresses a gzip or zlib stream (detected from its header), refusing to produce more than
  /// `limit` bytes so a small compressed message cannot expand without bound.
  static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(Failure) -> [UInt8] {
    var stream = z_stream()
    // 15 + 32: accept both the gzip and the zlib header.
    guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw .corrupt("inflateInit2 failed")
    }
    defer { inflateEnd(&stream) }
    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
    stream.avail_in = uInt(input.count)
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      let (status, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
        stream.next_out = out.baseAddress
        stream.avail_out = uInt(out.count)
        let status = inflate(&stream, Z_NO_FLUSH)
        return (status, out.count - Int(stream.avail_out))
      }
      if output.count + produced > limit { throw .tooLarge(limit: limit) }
      output.append(contentsOf: chunk[0..<produced])
      switch status {
      case Z_STREAM_END:
        return output
      case Z_OK:
        continue
      case Z_BUF_ERROR where stream.avail_in == 0:
        throw .corrupt("compressed message is truncated")
      default:
        let reason = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
        throw .corrupt(reason)
      }
    }
  }
}
