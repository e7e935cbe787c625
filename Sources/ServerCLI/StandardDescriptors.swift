import CStandardDescriptors

/// Standard input, output and error, held open (see standard_descriptors.h: a constructor opens
/// /dev/null on those the process started without, before any Swift code runs).
public enum StandardDescriptors {
  /// Opens /dev/null on each of descriptors 0, 1 and 2 that is closed now.
  public static func openClosedOnes() {
    standard_descriptors_open_closed()
  }

  /// Whether the process started with a standard output (descriptor 1 open): without one, what
  /// it writes there goes to /dev/null.
  public static var startedWithStandardOutput: Bool {
    standard_descriptors_closed_at_start() & 2 == 0
  }
}
