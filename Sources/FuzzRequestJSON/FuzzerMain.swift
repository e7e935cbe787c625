#if FUZZING
  import FuzzSupport

  /// The entry point SwiftPM gives this executable: libFuzzer's driver, over `fuzzOneInput`.
  @_cdecl("fuzz_request_json_main")
  func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzOneInput(data, size) }
  }
#endif
