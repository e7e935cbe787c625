/// Why the fleet has no upstream for a call.
public enum FleetRefusal: Error, Sendable, Equatable {
  /// No upstream serves the model; `served` lists the models that are.
  case unknownModel(String, served: [String])
}
