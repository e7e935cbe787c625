/// What the canonical JSON codec knows of a protobuf enum: its values' names and numbers.
/// A class, like `MessageSchema`: looked up per enum value and passed around without copying
/// its tables.
public final class EnumSchema: Sendable {
  public let fullName: String
  /// In declaration order; with `allow_alias` several names share a number.
  public let values: [(name: String, number: Int32)]
  private let nameByNumber: [Int32: String]
  private let numberByName: [String: Int32]

  public init(fullName: String, values: [(name: String, number: Int32)]) {
    self.fullName = fullName
    self.values = values
    var names: [Int32: String] = [:]
    var numbers: [String: Int32] = [:]
    for value in values {
      // The first name declared for a number is the one printed, as protoc's runtimes do.
      if names[value.number] == nil { names[value.number] = value.name }
      numbers[value.name] = value.number
    }
    nameByNumber = names
    numberByName = numbers
  }

  /// The name JSON prints for `number`; nil for a number the enum does not declare (proto3
  /// enums are open: such a number is kept and printed as an integer).
  public func name(of number: Int32) -> String? { nameByNumber[number] }

  public func number(named name: String) -> Int32? { numberByName[name] }
}
