import Foundation

/// A host name's addresses, as the system resolver gives them (every A and AAAA record: a
/// Kubernetes headless Service lists one per ready pod). Blocking: call it off the event loops.
enum AddressResolver {
  static func addresses(of host: String) -> [String] {
    // Foundation's Host asks getaddrinfo afresh for each new instance.
    var seen = Set<String>()
    return Host(name: host).addresses.filter { seen.insert($0).inserted }
  }
}
