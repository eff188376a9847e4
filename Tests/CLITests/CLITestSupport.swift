@_exported import TestSupport  // the shared helpers, visible in every file of this target
import Foundation
import XCTest

/// Runs the built `ctrkit` binary as a user would and captures what it prints.
struct CLIResult {
  var status: Int32
  var stdout: String
  var stderr: String
}

enum CLI {
  /// `.build/<config>/ctrkit`, which SwiftPM builds next to the test executable.
  static var binary: URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
      let candidate = dir.appendingPathComponent("ctrkit")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      dir.deleteLastPathComponent()
    }
    return Bundle.main.bundleURL.appendingPathComponent("ctrkit")
  }

  /// Fixtures shared with the Records tests (TensorFlow-written files from ../shared/compat).
  static func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("RecordsTests/Fixtures/\(name)").path
  }

  @discardableResult
  static func run(_ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws -> CLIResult {
    let p = Process()
    p.executableURL = binary
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe(), input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try p.run()
    // Drain both pipes while writing, so a large output cannot block the child.
    let collected = Collected()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { collected.set(out: out.fileHandleForReading.readDataToEndOfFile()); group.leave() }
    group.enter()
    DispatchQueue.global().async { collected.set(err: err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    group.wait()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: collected.out, as: UTF8.self),
                     stderr: String(decoding: collected.err, as: UTF8.self))
  }
}

/// Output gathered by reader threads.
final class Collected: @unchecked Sendable {
  private let lock = NSLock()
  private(set) var out = Data(), err = Data()
  func set(out d: Data) { lock.lock(); out = d; lock.unlock() }
  func set(err d: Data) { lock.lock(); err = d; lock.unlock() }
}

