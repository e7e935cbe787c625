/// The google.protobuf messages whose canonical JSON is not an object of their fields.
/// (Empty is not among them: its JSON is `{}`, as for any message with nothing set.)
enum WellKnownType: Sendable {
  case any, timestamp, duration, fieldMask, structure, value, listValue
  /// DoubleValue, Int64Value, StringValue, ...: JSON holds their `value` bare.
  case wrapper

  static let nullValueName = "google.protobuf.NullValue"
  static let anyName = "google.protobuf.Any"

  init?(fullName: String) {
    guard fullName.hasPrefix("google.protobuf.") else { return nil }
    switch fullName.dropFirst("google.protobuf.".count) {
    case "Any": self = .any
    case "Timestamp": self = .timestamp
    case "Duration": self = .duration
    case "FieldMask": self = .fieldMask
    case "Struct": self = .structure
    case "Value": self = .value
    case "ListValue": self = .listValue
    case "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue",
      "StringValue", "BytesValue":
      self = .wrapper
    default: return nil
    }
  }
}
