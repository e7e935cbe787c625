import Dispatch

#if canImport(Glibc)
  import Glibc
#endif

/// SIGHUP: reload the configuration file.
enum ReloadSignal {
  /// Runs `reload` on each SIGHUP until the returned source is cancelled.
  static func install(_ reload: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    signal(SIGHUP, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "reload"))
    source.setEventHandler(handler: reload)
    source.resume()
    return source
  }
}
