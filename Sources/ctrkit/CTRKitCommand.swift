import ArgumentParser
import CTR
import Features
import Foundation
import Records

/// The `ctrkit` command line: thin argument parsing over the libraries.
@main
struct CTRKitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ctrkit",
    abstract: "Click-through-rate modelling: TFRecord I/O, feature columns, training and serving.",
    version: "0.1.0",
    subcommands: [RecordsCommand.self, ConvertCommand.self, SynthCommand.self, AnalyzeCommand.self, FeaturesCommand.self,
                  TrainCommand.self, EvalCommand.self])

  /// The message of an error meant for the user (our libraries' errors all describe themselves
  /// with the file, record or line, and field), or nil for argument-parser control flow.
  static func userMessage(_ error: Error) -> String? {
    switch error {
    case let e as RecordsError: return e.description
    case let e as ConfigError: return e.description
    case let e as FeatureError: return e.description
    case let e as CTRError: return e.description
    case let e as TrainingError: return e.description
    case let e as ConvertError: return e.description
    case let e as TFCompatError: return e.description
    case let e as CLIError: return e.message
    default: return nil
    }
  }

  /// Runs the command, printing errors as one line on standard error with a non-zero exit.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      StandardOutput.shared.flush()
      if let message = userMessage(error) { fail(message) }
      exit(withError: error)
    }
    StandardOutput.shared.flush()
  }

  static func fail(_ message: String) -> Never {
    FileHandle.standardError.write(("ctrkit: error: " + message + "\n").data(using: .utf8)!)
    Foundation.exit(1)
  }
}

/// An error for the user, printed as is.
struct CLIError: Error, CustomStringConvertible {
  var message: String
  init(_ message: String) { self.message = message }
  var description: String { message }
}

extension Compression: ExpressibleByArgument {}

/// Buffered standard output (print() flushes per line, which is slow for millions of lines).
final class StandardOutput: @unchecked Sendable {
  static let shared = StandardOutput()
  private var buffer: [UInt8] = []

  init() { buffer.reserveCapacity(1 << 16) }

  func write(_ bytes: [UInt8]) {
    buffer.append(contentsOf: bytes)
    if buffer.count >= 1 << 16 { flush() }
  }

  func write(_ s: String) { write(Array(s.utf8)) }

  func line(_ s: String) {
    buffer.append(contentsOf: s.utf8)
    buffer.append(0x0a)
    if buffer.count >= 1 << 16 { flush() }
  }

  func flush() {
    guard !buffer.isEmpty else { return }
    buffer.withUnsafeBytes { b in
      var off = 0
      while off < b.count {
        let n = Foundation.write(1, b.baseAddress! + off, b.count - off)
        if n <= 0 { if errno == EINTR { continue }; Foundation.exit(errno == EPIPE ? 0 : 1) }
        off += n
      }
    }
    buffer.removeAll(keepingCapacity: true)
  }
}

/// The median (the mean of the two middle values for an even count).
func median(_ values: [Double]) -> Double {
  let v = values.sorted()
  guard !v.isEmpty else { return .nan }
  return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}

/// Prints a message on standard error (progress, warnings) without touching standard output.
func note(_ s: String) {
  FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}
