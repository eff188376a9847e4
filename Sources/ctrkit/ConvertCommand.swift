import ArgumentParser
import Features
import Foundation
import Records

extension InputFormat: ExpressibleByArgument {}
extension DeflateEngine: ExpressibleByArgument {}

/// `ctrkit convert`: feature-store exports (CSV / TSV / JSON Lines) to sharded TFRecord.
struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert CSV / TSV / JSON Lines exports into sharded TFRecord files of tf.Example, with MANIFEST.json.",
    discussion: """
      Columns are typed by --schema (YAML or JSON: columns in file order with name, type int64|float|bytes, \
      optional separator for list columns and drop: true; label; header; delimiter; quote) or inferred from \
      the header line and the first 1000 rows (the choice is printed). --format criteo is the Criteo layout: \
      no header, label, I1..I13 int64, C1..C26 bytes. An empty field is an absent feature.
      Inputs may be gzip, zlib or zstd compressed (detected). Output is deterministic: the same input and \
      options give byte-identical shards whatever --threads is.
      Shards are written under a hidden temporary name and renamed when complete; MANIFEST.json is written \
      last and marks a finished job. Rerunning the same command on an unchanged input does nothing; after \
      a crash it removes what the interrupted run left and converts again. Rows that cannot be converted go \
      to rejects.tsv (file, line, reason, row); more than --max-errors of them fail the job and remove its shards.
      --transform <fitted-config> writes the model inputs of a fitted feature config (from ctrkit analyze) instead of \
      the raw values, computed by the same transformer training and serving use (what ctrkit features apply \
      prints). Each record is a tf.Example with: the label under the config's label name (int64 or float, \
      as configured); the weight under its name, if configured (float); the group key under its name, if \
      configured (int64: the value, or Fingerprint64 of a string; -2^63 when missing); per numeric column its \
      name: float_list of its normalized values; per indicator column its name: float_list of the multi-hot \
      vector; per id column (bucketized, hash_bucket, vocabulary, identity, crossed) its name: int64_list of \
      the ids, and <name>_weights: float_list for a column with weight_feature; per sequence column its name: \
      int64_list of the kept ids, unpadded, most recent last. Every record has every feature. MANIFEST.json \
      gains a "transform" entry (config path, CRC32C of the config, the feature list). A row the transformer \
      rejects (say an identity value out of range without a default) goes to rejects.tsv with its line and \
      the transformer's message; a config that still needs fitting, or whose feature types disagree with \
      the schema, fails before any row is converted. --shard-key still hashes the raw value.
      --pack-ids (with --transform) replaces the id columns' features by two: packed_ids, an int64_list of \
      every id column's ids back to back in column order, and packed_id_lengths, an int64_list of each \
      column's id count. Records become a fraction of the bytes to read and parse; the features.yaml \
      written beside the shards reads them back (its packed_ids section), and TensorFlow reads them with \
      tf.io.RaggedFeature(tf.int64, value_key="packed_ids", partitions=[RowLengths("packed_id_lengths")]).
      """)

  @Option(name: .long, parsing: .upToNextOption, help: "Input files (shell patterns allowed).")
  var input: [String]

  @Option(help: "Input format: csv, tsv, jsonl or criteo.")
  var format: InputFormat

  @Option(name: .shortAndLong, help: "Output directory (created if missing).")
  var output: String

  @Option(help: "Schema file (YAML or JSON), or 'criteo'. Without it the schema is inferred.")
  var schema: String?

  @Option(help: "Write exactly N shards of equal row counts, rows in input order (counts the rows first).")
  var shards: Int?

  @Option(help: "Start a new shard before one would pass this many uncompressed TFRecord bytes (suffixes K, M, G; default 256M).")
  var shardSize: String?

  @Option(help: "Put all rows with the same value of this column in one shard (CRC32C of the value, modulo --shards).")
  var shardKey: String?

  @Option(help: "Output compression: gzip, zlib, zstd or none.")
  var compression: Compression = .gzip

  @Option(help: "Deflate implementation for gzip/zlib: isal (levels 0-3) or zlib (levels 0-9).")
  var deflateEngine: DeflateEngine = .isal

  @Option(help: "Compression level (default: isal 1, zlib 6, zstd 3).")
  var compressionLevel: Int32?

  @Option(help: ArgumentHelp("Write the model inputs of this fitted feature config (YAML or JSON) instead of the raw values.", valueName: "fitted-config"))
  var transform: String?

  @Flag(help: "With --transform: pack every id column's ids into one packed_ids feature (with packed_id_lengths).")
  var packIds = false

  @Option(help: "Rejected rows tolerated before the job fails.")
  var maxErrors: Int = 0

  @Option(help: "Worker threads (the output does not depend on it).")
  var threads: Int = defaultThreadCount

  @Flag(help: "Replace a finished conversion of other inputs or arguments in the output directory.")
  var overwrite = false

  @Flag(help: "Print the summary as one JSON object.")
  var json = false

  func validate() throws {
    if shards != nil && shardSize != nil { throw ValidationError("--shards and --shard-size exclude each other") }
    if shardKey != nil && shards == nil { throw ValidationError("--shard-key needs --shards N") }
    if compression == .auto { throw ValidationError("--compression auto is for reading; choose gzip, zlib, zstd or none") }
    if packIds && transform == nil { throw ValidationError("--pack-ids needs --transform (it packs the transformed ids)") }
  }

  func run() throws {
    var options = ConvertOptions(inputs: try expandGlobs(input), format: format, output: output)
    if let schema {
      options.schema = try ConvertSchema.load(path: schema)
      options.schemaPath = schema
    }
    if let shardKey, let shards {
      options.sharding = .key(column: shardKey, shards: shards)
    } else if let shards {
      options.sharding = .shards(shards)
    } else if let shardSize {
      options.sharding = .maxBytes(try parseByteSize(shardSize, option: "--shard-size"))
    }
    options.compression = compression
    options.engine = deflateEngine
    options.level = compressionLevel
    options.maxErrors = maxErrors
    options.threads = threads
    options.overwrite = overwrite
    if let transform { options.transform = try ConvertTransform.load(path: transform, packIds: packIds) }
    if let stall = ProcessInfo.processInfo.environment["CTRKIT_TEST_STALL_AFTER_SHARDS"], let n = Int(stall) {
      options.testStallAfterShards = n
    }

    let meter = ProgressMeter()
    let result = try ConvertJob(options: options).run(schemaResolved: { _, report in
      guard let report else { return }
      note("ctrkit: inferred the schema from the header and \(report.sampledRows) rows of \(report.path) (pass --schema to set it):")
      for line in report.lines { note(line) }
    }, progress: { meter.update($0) })
    meter.finish()
    let m = result.manifest
    let outputBytes = m.shards.reduce(UInt64(0)) { $0 + $1.bytes }
    let mbps = result.seconds > 0 ? Double(result.inputBytes) / 1e6 / result.seconds : 0
    if json {
      let o: JSONValue = .object([
        ("up_to_date", .bool(result.upToDate)),
        ("rows", .number(String(m.records))),
        ("rejected_rows", .number(String(m.rejectedRows))),
        ("shards", .number(String(m.shards.count))),
        ("input_bytes", .number(String(result.inputBytes))),
        ("output_bytes", .number(String(outputBytes))),
        ("seconds", .number(String(format: "%.3f", result.seconds))),
        ("input_mb_per_s", .number(String(format: "%.1f", mbps))),
        ("counting_pass", .bool(result.countingPass)),
        ("transformed", .bool(m.transform != nil)),
        ("output", .string(output)),
      ])
      StandardOutput.shared.line(JSONWriter.serialize(o))
      return
    }
    let out = StandardOutput.shared
    if result.upToDate {
      out.line("\(output) is up to date: its MANIFEST.json matches these inputs and arguments; nothing to do (\(m.records) rows in \(m.shards.count) shards)")
      return
    }
    let files = m.inputs.count == 1 ? "1 file" : "\(m.inputs.count) files"
    out.line("converted \(m.records) rows from \(files) (\(megabytes(result.inputBytes))) in \(String(format: "%.2f", result.seconds)) s: \(String(format: "%.1f", mbps)) MB/s of input")
    var codec = compression.rawValue
    if let e = m.arguments.deflateEngine, let l = m.arguments.compressionLevel { codec += ", \(e.rawValue) level \(l)" }
    else if let l = m.arguments.compressionLevel { codec += " level \(l)" }
    let content = m.transform.map { "transformed with \($0.config), " } ?? ""
    out.line("wrote \(m.shards.count) shard(s) (\(content)\(codec), \(megabytes(outputBytes))) and \(ConvertManifest.fileName) to \(output)")
    out.line("rejected \(m.rejectedRows) row(s) (\(output)/\(m.rejectsFile))")
    for (name, n) in m.floatValuesRounded.sorted(by: { $0.key < $1.key }) {
      note("ctrkit: note: \(n) value(s) of float column '\(name)' have more digits than float32 keeps and were rounded")
    }
  }
}

func megabytes(_ b: UInt64) -> String { String(format: "%.1f MB", Double(b) / 1e6) }

/// `256M`, `1G`, `65536`: bytes, with binary K/M/G suffixes.
func parseByteSize(_ text: String, option: String) throws -> UInt64 {
  var digits = text.uppercased()
  var unit: UInt64 = 1
  if digits.hasSuffix("B") { digits.removeLast() }
  switch digits.last {
  case "K": unit = 1 << 10; digits.removeLast()
  case "M": unit = 1 << 20; digits.removeLast()
  case "G": unit = 1 << 30; digits.removeLast()
  default: break
  }
  guard let n = UInt64(digits), n > 0 else { throw CLIError("\(option): '\(text)' is not a size such as 268435456, 256M or 1G") }
  return n * unit
}

/// Progress on standard error, only when it is a terminal: rows, MB/s, percent, ETA.
final class ProgressMeter {
  private let enabled = isatty(2) != 0
  private let started = Date()
  private var last = Date.distantPast
  private var shown = false

  func update(_ p: ConvertProgress) {
    guard enabled else { return }
    let now = Date()
    guard now.timeIntervalSince(last) >= 0.5 else { return }
    last = now
    let elapsed = now.timeIntervalSince(started)
    let fraction = p.inputBytesTotal > 0 ? Double(p.inputBytesDone) / Double(p.inputBytesTotal) : 0
    let rate = elapsed > 0 ? Double(p.inputBytesDone) / 1e6 / elapsed : 0
    let eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
    let text = String(format: "\r%12d rows  %7.1f MB/s  %5.1f%%  ETA %5.0f s  %d shard(s) done  %d rejected ",
                      p.rows, rate, fraction * 100, eta, p.shardsFinished, p.rejected)
    FileHandle.standardError.write(text.data(using: .utf8)!)
    shown = true
  }

  func finish() {
    if shown { FileHandle.standardError.write("\n".data(using: .utf8)!) }
  }
}
