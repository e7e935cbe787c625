/// The calls open on one connection, in no particular order. Each call keeps its place in the
/// list, so a call is added and removed in constant time without hashing: a dictionary by
/// stream ID hashed the ID three times a call (about 450 instructions a unary call, callgrind).
/// Calls are found by stream through nghttp2's stream user data, not here.
struct OpenCalls {
  private(set) var all: [ServerCall] = []

  var count: Int { all.count }
  var isEmpty: Bool { all.isEmpty }

  mutating func add(_ call: ServerCall) {
    call.openCallsIndex = all.count
    all.append(call)
  }

  /// Takes `call` out, if it is here; the last call moves to its place.
  mutating func remove(_ call: ServerCall) -> Bool {
    let index = call.openCallsIndex
    guard index >= 0, index < all.count, all[index] === call else { return false }
    let last = all.removeLast()
    if index < all.count {
      all[index] = last
      last.openCallsIndex = index
    }
    call.openCallsIndex = -1
    return true
  }

  /// Takes every call out.
  mutating func removeAll() -> [ServerCall] {
    let taken = all
    all = []
    for call in taken { call.openCallsIndex = -1 }
    return taken
  }
}
