import CStandardDescriptors

/// Standard input, output and error, held open: a constructor (standard_descriptors.c) opens
/// /dev/null on those the process started without, before any Swift code runs, in every
/// executable that links this module.
public enum StandardDescriptors {
  /// Whether the process started with a standard output (descriptor 1 open): without one, what
  /// it writes there goes to /dev/null.
  public static var startedWithStandardOutput: Bool {
    standard_descriptors_closed_at_start() & 2 == 0
  }
}
