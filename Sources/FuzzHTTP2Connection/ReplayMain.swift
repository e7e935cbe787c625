#if !FUZZING
  import FuzzSupport

  /// Without libFuzzer (whose runtime brings its own `main`), the target replays the inputs
  /// named on the command line, files or directories of files, through the same entry point.
  @main
  struct Replay {
    static func main() throws {
      let inputs = try FuzzInputs.load(CommandLine.arguments.dropFirst())
      for (path, bytes) in inputs {
        guard let control = bytes.first else { continue }
        let written = bytes.dropFirst().withUnsafeBufferPointer { input in
          FuzzedConnection.run(preface: control & 1 == 1, sniffing: control & 2 == 2, input: input)
        }
        print("\(path): \(bytes.count) bytes in, \(written) bytes out")
      }
      print("replayed \(inputs.count) inputs")
    }
  }
#endif
