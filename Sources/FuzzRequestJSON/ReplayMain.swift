#if !FUZZING
  import FuzzSupport

  /// Without libFuzzer, replays the inputs named on the command line through the same entry point.
  @main
  struct Replay {
    static func main() throws {
      let inputs = try FuzzInputs.load(CommandLine.arguments.dropFirst())
      for (path, bytes) in inputs {
        print("\(path): \(bytes.count) bytes in, \(FuzzedRequestTranslation.run(bytes))")
      }
      print("replayed \(inputs.count) inputs")
    }
  }
#endif
