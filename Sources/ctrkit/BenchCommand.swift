import ArgumentParser
import Foundation
import Records

extension RecordsCommand {
  /// `records bench`: times framing alone and framing + columnar parse on real files.
  struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Time reading TFRecord files: framing + CRC alone, and framing + full columnar parse.")

    @Argument(help: "TFRecord files (shell patterns allowed).")
    var files: [String]

    @Option(help: "Stream compression: auto detects it from the first bytes.")
    var compression: Compression = .auto

    @Option(help: "Parse spec: 'criteo' (label, I1..I13 int64 default 0, C1..C26 bytes) or 'all' (every feature of the first record, as var-len).")
    var spec: String = "criteo"

    @Option(help: "Parser threads.")
    var threads: Int = defaultThreadCount

    @Option(help: "Records per batch.")
    var batchSize: Int = 1024

    @Option(help: "Repetitions; the median is reported.")
    var runs: Int = 3

    @Flag(help: "Print one JSON object with all timings.")
    var json = false

    func run() throws {
      let paths = try expandGlobs(files)
      let parseSpec = try makeSpec(paths)
      var frameTimes: [Double] = [], parseTimes: [Double] = []
      var records = 0
      var streamBytes: UInt64 = 0
      for _ in 0..<runs {
        var t0 = Date()
        records = 0
        streamBytes = 0
        for p in paths {
          let r = try TFRecordReader(path: p, compression: compression)
          while try r.next() != nil { records += 1 }
          streamBytes += r.streamOffset
        }
        frameTimes.append(Date().timeIntervalSince(t0))
        t0 = Date()
        let reader = ExampleReader(paths: paths, spec: parseSpec, compression: compression, batchSize: batchSize, threads: threads)
        var parsed = 0
        while let b = try reader.next() { parsed += b.count }
        parseTimes.append(Date().timeIntervalSince(t0))
        if parsed != records {
          throw CLIError("the parse pass read \(parsed) records but the framing pass \(records): the files changed during the benchmark?")
        }
      }
      let f = median(frameTimes), p = median(parseTimes)
      let fileBytes = paths.reduce(UInt64(0)) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? UInt64) ?? 0) }
      if json {
        let o: JSONValue = .object([
          ("records", .number(String(records))), ("file_bytes", .number(String(fileBytes))),
          ("stream_bytes", .number(String(streamBytes))), ("threads", .number(String(threads))),
          ("frame_seconds", .array(frameTimes.map { .number(PythonFloatFormat.format($0)) })),
          ("parse_seconds", .array(parseTimes.map { .number(PythonFloatFormat.format($0)) })),
          ("frame_records_per_s", .number(String(Int(Double(records) / f)))),
          ("frame_stream_MB_per_s", .number(PythonFloatFormat.format(Double(streamBytes) / f / 1e6))),
          ("parse_records_per_s", .number(String(Int(Double(records) / p)))),
        ])
        StandardOutput.shared.line(JSONWriter.serialize(o))
      } else {
        StandardOutput.shared.line("records: \(records), file bytes: \(fileBytes), uncompressed stream bytes: \(streamBytes)")
        StandardOutput.shared.line(String(format: "framing + CRC:        %.3f s  %10.0f records/s  %8.1f MB/s (uncompressed stream)", f, Double(records) / f, Double(streamBytes) / f / 1e6))
        StandardOutput.shared.line(String(format: "framing + parse (%d): %.3f s  %10.0f records/s", threads, p, Double(records) / p))
      }
    }

    func makeSpec(_ paths: [String]) throws -> ParseSpec {
      switch spec {
      case "criteo":
        var f: [FeatureSpec] = [.scalar("label", .int64)]
        f += (1...13).map { .scalar("I\($0)", .int64, default: .int64([0])) }
        // Real Criteo rows miss some categoricals: an empty string stands in, as TF needs a default.
        f += (1...26).map { .scalar("C\($0)", .bytes, default: .bytes([[]])) }
        return try ParseSpec(f)
      case "all":
        guard let first = paths.first else { throw CLIError("no input files") }
        let r = try TFRecordReader(path: first, compression: compression)
        guard let rec = try r.next() else { throw CLIError("\(first): no records") }
        let e = try Example(serialized: rec.data)
        return try ParseSpec((e.features?.feature ?? [:]).sorted { $0.key < $1.key }.compactMap { name, f in
          switch f {
          case .int64List: return FeatureSpec(name, .int64)
          case .floatList: return FeatureSpec(name, .float)
          case .bytesList: return FeatureSpec(name, .bytes)
          case .unset: return nil
          }
        })
      default:
        throw CLIError("unknown --spec '\(spec)' (criteo or all)")
      }
    }
  }
}
