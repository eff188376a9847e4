import Foundation

// Helpers every test target needs, in one place (each target used to carry its own copy).

/// SplitMix64: a small seeded generator so property tests are reproducible.
public struct SplitMix64: RandomNumberGenerator {
  public var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A uniform float in low..<high.
  public mutating func float(_ low: Float, _ high: Float) -> Float { Float.random(in: low..<high, using: &self) }
  /// `n` uniform floats in low..<high.
  public mutating func floats(_ n: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] { (0..<n).map { _ in float(low, high) } }
}

/// A scratch directory for one test, removed when the test lets go of it.
public final class ScratchDirectory {
  public let path: String
  public init() {
    path = NSTemporaryDirectory() + "ctrkit-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  public func file(_ name: String) -> String { path + "/" + name }

  /// Writes `text` to `name` and returns the path.
  @discardableResult
  public func write(_ name: String, _ text: String) -> String {
    try! text.write(toFile: file(name), atomically: true, encoding: .utf8)
    return file(name)
  }

  /// Writes `bytes` to `name` and returns the path.
  @discardableResult
  public func write(_ name: String, bytes: [UInt8]) -> String {
    try! Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    return file(name)
  }
}
