#if !FUZZING
  import Foundation

  /// Without libFuzzer (whose runtime brings its own `main`), the target replays the inputs
  /// named on the command line, files or directories of files, through the same entry point.
  @main
  struct Replay {
    static func main() throws {
      var count = 0
      for argument in CommandLine.arguments.dropFirst() {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
          print("no such file: \(argument)")
          exit(2)
        }
        let paths =
          isDirectory.boolValue
          ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map { "\(argument)/\($0)" }
          : [argument]
        for path in paths {
          let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
          guard let control = bytes.first else { continue }
          let written = bytes.dropFirst().withUnsafeBufferPointer { input in
            FuzzedConnection.run(preface: control & 1 == 1, input: input)
          }
          print("\(path): \(bytes.count) bytes in, \(written) bytes out")
          count += 1
        }
      }
      print("replayed \(count) inputs")
    }
  }
#endif
