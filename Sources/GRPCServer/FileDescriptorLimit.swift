#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The process's open-file limit. systemd and most shells start services with a soft limit of
/// 1024, far below what a server with thousands of connections (each with an upstream socket)
/// needs; the hard limit is what the administrator allows.
public enum FileDescriptorLimit {
  /// Raises the soft limit to the hard one and returns the limit now in force.
  @discardableResult
  public static func raiseToHardLimit() -> UInt64 {
    var limits = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 0 }
    if limits.rlim_cur < limits.rlim_max {
      var raised = limits
      raised.rlim_cur = limits.rlim_max
      if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
    }
    return UInt64(limits.rlim_cur)
  }
}
