import Foundation
import XCTest
@testable import Features
import Records

/// Real data read in place from `../shared/data` beside the repository (CI has `../shared`
/// beside its clone). Never copied into the repository; a missing file fails the test.
enum ConvertSharedData {
  struct Missing: Error, CustomStringConvertible {
    var path: String
    var description: String {
      "real test data not found at \(path): these tests read ../shared/data beside the repository root in place (CI checks ../shared out beside its clone)"
    }
  }

  static var root: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("shared/data")
  }

  static func path(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let p = root.appendingPathComponent(relative).standardizedFileURL.path
    guard FileManager.default.fileExists(atPath: p) else {
      let e = Missing(path: p)
      XCTFail(e.description, file: file, line: line)
      throw e
    }
    return p
  }
}



enum ConvertTest {
  /// Runs a conversion with small chunks (so even small inputs cross chunk boundaries).
  @discardableResult
  static func run(_ inputs: [String], _ format: InputFormat, into output: String, schema: ConvertSchema? = nil,
                  chunkBytes: Int = 4096, threads: Int = 2,
                  _ configure: (inout ConvertOptions) -> Void = { _ in }) throws -> ConvertResult {
    var o = ConvertOptions(inputs: inputs, format: format, output: output)
    o.schema = schema
    o.chunkBytes = chunkBytes
    o.threads = threads
    configure(&o)
    return try ConvertJob(options: o).run()
  }

  /// Shard paths of a finished conversion, in shard order.
  static func shardPaths(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("part-") }.sorted().map { dir + "/" + $0 }
  }

  /// Every record payload of every shard, in shard order.
  static func payloads(_ dir: String) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    for p in try shardPaths(dir) {
      let r = try TFRecordReader(path: p)
      while let rec = try r.next() { out.append(Array(rec.data)) }
    }
    return out
  }

  static func examples(_ dir: String) throws -> [Example] {
    try payloads(dir).map { try Example(serialized: $0) }
  }

  /// The examples printed back as delimited text, as `records cat --format` does.
  static func text(_ examples: [Example], _ formatter: DelimitedExampleFormatter) throws -> String {
    var out: [UInt8] = []
    for e in examples { out += try formatter.line(e) }
    return String(decoding: out, as: UTF8.self)
  }

  /// All files of a directory with their bytes (hidden ones included).
  static func files(_ dir: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
      out[name] = FileManager.default.contents(atPath: dir + "/" + name)
    }
    return out
  }

  /// The lines of a text file without the trailing empty one.
  static func lines(_ path: String) throws -> [String] {
    var lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    return lines
  }

  static func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }
}
