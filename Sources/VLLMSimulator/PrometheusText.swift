import Foundation

/// Prometheus text exposition as vLLM's /metrics prints it through prometheus_client: HELP and
/// TYPE lines per family, labels sorted by name, values in Go's float format ("0.0", "2.5e+07"),
/// and for every counter `name_total` followed by a `name_created` gauge family.
struct PrometheusText {
  private(set) var text = ""

  /// A gauge family: one sample per label set.
  mutating func gauge(_ name: String, help: String, _ samples: [([(String, String)], Double)]) {
    family(name, type: "gauge", help: help, samples)
  }

  /// A counter family: `name_total` samples, then their creation times as `name_created`.
  mutating func counter(
    _ name: String, help: String, _ samples: [(labels: [(String, String)], value: Double, created: Double)]
  ) {
    family(name + "_total", type: "counter", help: help, samples.map { ($0.labels, $0.value) })
    family(name + "_created", type: "gauge", help: help, samples.map { ($0.labels, $0.created) })
  }

  private mutating func family(_ name: String, type: String, help: String, _ samples: [([(String, String)], Double)]) {
    text += "# HELP \(name) \(escape(help, quotes: false))\n# TYPE \(name) \(type)\n"
    for (labels, value) in samples {
      text += name
      if !labels.isEmpty {
        let pairs = labels.sorted { $0.0 < $1.0 }.map { "\($0.0)=\"\(escape($0.1, quotes: true))\"" }
        text += "{" + pairs.joined(separator: ",") + "}"
      }
      text += " " + Self.goString(value) + "\n"
    }
  }

  private func escape(_ value: String, quotes: Bool) -> String {
    var escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    if quotes { escaped = escaped.replacingOccurrences(of: "\"", with: "\\\"") }
    return escaped
  }

  /// prometheus_client's floatToGoString: Python's shortest repr, switched to an exponent once
  /// there are more than 6 digits before the point, as Go does.
  static func goString(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    // Swift's description is the shortest repr too ("0.0", "0.25"), up to 2^53 where they part.
    var text = "\(value)"
    guard value > 0, let dot = text.firstIndex(of: "."), !text.contains("e") else { return text }
    let integerDigits = text.distance(from: text.startIndex, to: dot)
    guard integerDigits > 6 else { return text }
    text.remove(at: dot)
    var mantissa = String(text.prefix(1)) + "." + String(text.dropFirst())
    while mantissa.hasSuffix("0") || mantissa.hasSuffix(".") { mantissa.removeLast() }
    return "\(mantissa)e+0\(integerDigits - 1)"
  }
}
