import ArgumentParser
import Features
import Foundation
import Records

/// `ctrkit records`: TFRecord files <-> protobuf canonical JSON, and statistics.
struct RecordsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "records",
    abstract: "Read, write and inspect TFRecord files of tf.Example / tf.SequenceExample.",
    subcommands: [Cat.self, Write.self, Stat.self, Bench.self])
}

/// Options shared by the commands that read records.
struct ReadOptions: ParsableArguments {
  @Option(help: "Stream compression: auto detects it from the first bytes.")
  var compression: Compression = .auto

  @Flag(help: "The records are tf.SequenceExample (default: tf.Example).")
  var sequence = false

  @Flag(help: "Skip corrupt records (resynchronising after a bad length) and report what was skipped, instead of failing.")
  var skipCorrupt = false

  var readerOptions: ReaderOptions { ReaderOptions(skipCorrupt: skipCorrupt) }
}

func reportSkipped(_ report: SkipReport) {
  guard !report.events.isEmpty else { return }
  for e in report.events { note("ctrkit: warning: \(e)") }
  note("ctrkit: warning: skipped \(report.records) record(s), \(report.bytes) byte(s) in total")
}

extension RecordsCommand {
  /// How `records cat` prints each record.
  enum CatFormat: String, ExpressibleByArgument, CaseIterable {
    case json, csv, tsv
  }

  /// `records cat`: one JSON object per record (protobuf's canonical JSON mapping), or CSV/TSV rows.
  struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print each record as JSON, as Python's json_format.MessageToDict(msg, preserving_proto_field_name=True) gives it, or as CSV/TSV rows.",
      discussion: """
        --format csv|tsv prints one row per tf.Example with the columns of --columns or of a conversion \
        --schema (its kept columns, in order, with their list separators): an absent feature is an empty \
        field, list values are joined by the separator, floats print as their shortest round-trip decimal. \
        On what `ctrkit convert` wrote from TSV, `records cat --format tsv --schema SAME` gives the input back.
        """)

    @Argument(help: "TFRecord files (shell patterns allowed).")
    var files: [String]

    @OptionGroup var read: ReadOptions

    @Option(help: "Output format: json, csv or tsv.")
    var format: CatFormat = .json

    @Option(help: "Comma-separated feature names to print as columns (csv/tsv).")
    var columns: String?

    @Option(help: "A conversion schema (YAML/JSON, or 'criteo') giving the columns and their list separators (csv/tsv).")
    var schema: String?

    @Option(help: "Separator of list values for columns the schema does not give one.")
    var listSeparator: String = ","

    @Flag(help: "Print a header line with the column names first (csv/tsv).")
    var header = false

    func validate() throws {
      if format == .json && (columns != nil || schema != nil || header) {
        throw ValidationError("--columns, --schema and --header are for --format csv or tsv")
      }
      if format != .json && columns == nil && schema == nil {
        throw ValidationError("--format \(format.rawValue) needs --columns a,b,c or --schema FILE")
      }
      if columns != nil && schema != nil { throw ValidationError("--columns and --schema exclude each other") }
      if format != .json && read.sequence { throw ValidationError("--format \(format.rawValue) prints tf.Example records, not tf.SequenceExample") }
      if listSeparator.utf8.count != 1 { throw ValidationError("--list-separator must be one ASCII character") }
    }

    func makeFormatter() throws -> DelimitedExampleFormatter? {
      guard format != .json else { return nil }
      let sep = listSeparator.utf8.first!
      if let schema {
        return DelimitedExampleFormatter(schema: try ConvertSchema.load(path: schema), csv: format == .csv, listSeparator: sep)
      }
      let names = columns!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      if names.contains(where: \.isEmpty) { throw CLIError("--columns: empty column name in '\(columns!)'") }
      return DelimitedExampleFormatter(columns: names, csv: format == .csv, listSeparator: sep)
    }

    func run() throws {
      let out = StandardOutput.shared
      let formatter = try makeFormatter()
      if header, let formatter {
        do { out.write(try formatter.header()) } catch let e as DelimitedExampleFormatter.Unprintable { throw CLIError("\(e)") }
      }
      for path in try expandGlobs(files) {
        let reader = try TFRecordReader(path: path, compression: read.compression, options: read.readerOptions)
        while let r = try reader.next() {
          if let formatter {
            do {
              out.write(try formatter.line(try Example(serialized: r.data)))
            } catch let e as ProtoDecodeError {
              throw RecordsError(.malformedProto, path: path, record: r.index, offset: r.offset, e.message)
            } catch let e as DelimitedExampleFormatter.Unprintable {
              throw RecordsError(.invalidInput, path: path, record: r.index, offset: r.offset, "\(e)")
            }
            continue
          }
          let json: JSONValue
          do {
            json = read.sequence ? try SequenceExample(serialized: r.data).canonicalJSON
              : try Example(serialized: r.data).canonicalJSON
          } catch let e as ProtoDecodeError {
            throw RecordsError(.malformedProto, path: path, record: r.index, offset: r.offset, e.message)
          }
          var w = JSONWriter()
          w.write(json)
          w.output.append(0x0a)
          out.write(w.output)
        }
        out.flush()
        reportSkipped(reader.skipped)
      }
    }
  }

  /// `records write`: the reverse of `cat`.
  struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write a TFRecord file from JSON objects on standard input, one per line (the format `cat` prints).")

    @Option(name: .shortAndLong, help: "The TFRecord file to create (it appears only when complete).")
    var output: String

    @Option(help: "Stream compression of the output.")
    var compression: Compression = .none

    @Flag(help: "Write tf.SequenceExample records (default: tf.Example).")
    var sequence = false

    func run() throws {
      let writer = try TFRecordWriter(path: output, compression: compression == .auto ? .none : compression)
      var lineNumber = 0
      do {
        try forEachLine(of: FileHandle.standardInput) { line in
          lineNumber += 1
          if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { return }
          let payload: [UInt8]
          do {
            let json = try JSONParser.parse(line)
            payload = sequence ? try SequenceExample(canonicalJSON: json).serialized()
              : try Example(canonicalJSON: json).serialized()
          } catch let e as JSONSyntaxError {
            throw CLIError("<stdin>: line \(lineNumber), column \(e.column): invalid JSON: \(e.message)")
          } catch let e as ExampleJSONError {
            throw CLIError("<stdin>: line \(lineNumber): \(e.path): \(e.message)")
          }
          try writer.write(payload)
        }
        try writer.close()
      } catch {
        writer.abandon()
        throw error
      }
      note("ctrkit: wrote \(writer.recordCount) records to \(output)")
    }
  }

  /// `records stat`: a full decode of every record, summarised per feature.
  struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Decode every record fully and report record and byte counts and, per feature, its kind, how many records have it and the min/max number of values.")

    @Argument(help: "TFRecord files (shell patterns allowed).")
    var files: [String]

    @OptionGroup var read: ReadOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
      var stats = RecordStatistics(sequence: read.sequence)
      for path in try expandGlobs(files) {
        let reader = try TFRecordReader(path: path, compression: read.compression, options: read.readerOptions)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
        stats.beginFile(path: path, bytes: size)
        while let r = try reader.next() {
          do {
            try stats.add(r.data)
          } catch let e as ProtoDecodeError {
            throw RecordsError(.malformedProto, path: path, record: r.index, offset: r.offset, e.message)
          }
        }
        stats.skipped.events += reader.skipped.events
      }
      reportSkipped(stats.skipped)
      if json {
        StandardOutput.shared.line(JSONWriter.serialize(stats.json))
      } else {
        StandardOutput.shared.write(stats.table)
      }
    }
  }
}

/// Calls `body` with each line (without its newline) of a file handle.
func forEachLine(of handle: FileHandle, _ body: ([UInt8]) throws -> Void) throws {
  var pending: [UInt8] = []
  while true {
    let data = handle.readData(ofLength: 1 << 20)
    if data.isEmpty { break }
    pending.append(contentsOf: data)
    var start = 0
    while let nl = pending[start...].firstIndex(of: 0x0a) {
      try body(Array(pending[start..<nl]))
      start = nl + 1
    }
    pending.removeFirst(start)
  }
  if !pending.isEmpty { try body(pending) }
}
