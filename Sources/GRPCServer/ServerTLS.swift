import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS for the server: a certificate chain and key from files, ALPN `h2`, and optionally client
/// certificates checked against a CA (mTLS). The files are read again when they change (as
/// cert-manager rotates them): new connections get the new certificate, open ones keep theirs.
public final class ServerTLS: Sendable {
  public struct Files: Sendable, Equatable {
    public var certificateChain: String
    public var privateKey: String
    /// Clients must present a certificate this CA signed.
    public var clientCA: String?

    public init(certificateChain: String, privateKey: String, clientCA: String? = nil) {
      self.certificateChain = certificateChain
      self.privateKey = privateKey
      self.clientCA = clientCA
    }

    var paths: [String] { [certificateChain, privateKey] + (clientCA.map { [$0] } ?? []) }
  }

  public let files: Files
  private let state: NIOLockedValueBox<(context: NIOSSLContext, stamps: [FileStamp])>

  /// Reads the files now; throws (naming the file) when one cannot be used.
  public init(files: Files) throws {
    self.files = files
    let stamps = files.paths.map(FileStamp.init(path:))
    self.state = NIOLockedValueBox((try Self.makeContext(files), stamps))
  }

  /// The context for a connection accepted now.
  var context: NIOSSLContext { state.withLockedValue { $0.context } }

  /// Reads the files again if any changed since they were read; true when the certificate was
  /// replaced. A set of files that does not load (a rotation half-written) leaves the old one in
  /// use and throws.
  @discardableResult
  public func reloadIfChanged() throws -> Bool {
    let stamps = files.paths.map(FileStamp.init(path:))
    guard stamps != state.withLockedValue({ $0.stamps }) else { return false }
    let context = try Self.makeContext(files)
    state.withLockedValue { $0 = (context, stamps) }
    return true
  }

  private static func makeContext(_ files: Files) throws -> NIOSSLContext {
    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
    } catch {
      throw TLSFileError(path: files.certificateChain, reason: "not a PEM certificate chain (\(error))")
    }
    guard !chain.isEmpty else { throw TLSFileError(path: files.certificateChain, reason: "holds no certificate") }
    let key: NIOSSLPrivateKey
    do {
      key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
    } catch {
      throw TLSFileError(path: files.privateKey, reason: "not a PEM private key (\(error))")
    }
    var configuration: TLSConfiguration
    if let clientCA = files.clientCA {
      guard FileManager.default.isReadableFile(atPath: clientCA) else {
        throw TLSFileError(path: clientCA, reason: "cannot be read")
      }
      configuration = .makeServerConfigurationWithMTLS(
        certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .file(clientCA))
    } else {
      configuration = .makeServerConfiguration(
        certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }
    // http/1.1 second: gRPC-Web and Connect clients may speak it (see HTTP1WebHandler).
    configuration.applicationProtocols = ["h2", "http/1.1"]
    configuration.minimumTLSVersion = .tlsv12
    do {
      return try NIOSSLContext(configuration: configuration)
    } catch {
      throw TLSFileError(
        path: files.certificateChain, reason: "the certificate and key do not make a TLS context (\(error))")
    }
  }
}

/// A TLS file that cannot be used, and why.
public struct TLSFileError: Error, CustomStringConvertible {
  public var path: String
  public var reason: String
  public var description: String { "\(path): \(reason)" }
}

/// When a file last changed, as far as a reload needs to know.
struct FileStamp: Equatable, Sendable {
  var modified: Date?
  var size: Int?

  init(path: String) {
    let attributes = try? FileManager.default.attributesOfItem(atPath: path)
    modified = attributes?[.modificationDate] as? Date
    size = (attributes?[.size] as? NSNumber)?.intValue
  }
}
