/// What a service keeps with each call for its own accounting (ServerCall.account): told once
/// when the call has ended for the client, with the status it got (CANCELLED when its stream
/// closed without one), so accounting sees every end. An object the call holds, where a closure
/// for the end was one more allocation a call (callgrind).
public protocol CallAccount: AnyObject {
  func callEnded(_ code: Status.Code)
}
