import Foundation

/// The inputs a fuzz target replays without libFuzzer: the files named on the command line, and
/// the files in the directories named there, in name order.
public enum FuzzInputs {
  public static func load(_ arguments: some Sequence<String>) throws -> [(path: String, bytes: [UInt8])] {
    var inputs: [(path: String, bytes: [UInt8])] = []
    for argument in arguments {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: argument])
      }
      let paths =
        isDirectory.boolValue
        ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map { "\(argument)/\($0)" }
        : [argument]
      for path in paths {
        inputs.append((path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))))
      }
    }
    return inputs
  }
}
