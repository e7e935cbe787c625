/// When a learnt shape (a reply's or a request's) misfits, whether to learn from the misfit: the
/// next one is learnt from, then at most one in every so many (doubling up to 64 as misfits go
/// on), so that messages taking turns between two shapes, or a kind whose messages never have
/// one, cost the learner's walk only now and then.
struct LearningBackoff {
  /// Misfits to translate the general way before learning from one.
  private var misfitsToSkip = 0
  private var nextSkip = 0
  /// False for a shape fixed at the start.
  var learns = true

  mutating func shouldLearn() -> Bool {
    guard learns else { return false }
    if misfitsToSkip > 0 {
      misfitsToSkip -= 1
      return false
    }
    misfitsToSkip = nextSkip
    nextSkip = min(nextSkip * 2 + 1, 63)
    return true
  }
}
