import Foundation
import XCTest
@testable import Features
import Records

/// `convert --transform`: the shards hold exactly the model inputs the Transformer computes from
/// the raw shards, whatever the threads and chunking; bad rows are rejects; bad configs fail early.
final class ConvertTransformTests: XCTestCase {
  /// Criteo's 40 columns plus a weight, a user id, weighted tags and a behaviour history.
  static let schema = ConvertSchema(
    columns: ConvertSchema.criteo.columns + [
      ConvertColumn("w", .float), ConvertColumn("user", .int64),
      ConvertColumn("tags", .bytes, separator: ","), ConvertColumn("tag_w", .float, separator: ","),
      ConvertColumn("hist", .int64, separator: "^"),
    ], label: "label", header: false)

  /// A config touching every kind of output: normalizers, fitted and given buckets, hashes,
  /// vocabularies with OOV buckets and an indicator, crosses of raw values and of ids, an
  /// identity with a default, weighted ids and a sequence.
  static let config = """
    label: label
    weight: w
    group: {name: user, dtype: int64}
    columns:
      - {name: I1, type: numeric, dtype: int64, normalizer: zscore}
      - {name: I2, type: numeric, dtype: int64, normalizer: criteo}
      - {name: I3, type: numeric, dtype: int64, normalizer: minmax, default: 0}
      - {name: I4, type: numeric, dtype: int64, normalizer: log1p}
      - {name: I5, type: bucketized, dtype: int64, quantiles: 10}
      - {name: I6b, source: I6, type: bucketized, dtype: int64, boundaries: [0, 1, 5, 20]}
      - {name: I7id, source: I7, type: identity, num_buckets: 10, default_value: 0}
      - {name: C1, type: hash_bucket, hash_bucket_size: 1000}
      - {name: C2, type: vocabulary, top_k: 30, num_oov_buckets: 4}
      - {name: C3, type: vocabulary, top_k: 8, output: indicator}
      - {name: C4, type: hash_bucket, hash_bucket_size: 0}
      - {name: C5, type: hash_bucket, hash_bucket_size: 100}
      - {name: C1_x_C2, type: crossed, keys: [C1, C2], hash_bucket_size: 10000}
      - {name: I5_x_C5, type: crossed, keys: [I5, C5], hash_bucket_size: 500}
      - {name: tags, type: vocabulary, vocabulary: [a, b, c, d], num_oov_buckets: 1, weight_feature: tag_w}
      - {name: hist, type: sequence, dtype: int64, id_type: identity, num_buckets: 50, max_length: 4}
    """

  /// Seeded Criteo-like rows: skewed counts and Zipf-like categories, fields missing at random.
  static func generate(rows: Int, seed: UInt64) -> String {
    var rng = SplitMix64(seed: seed)
    func u() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    var out = ""
    for _ in 0..<rows {
      var f: [String] = [u() < 0.22 ? "1" : "0"]
      for k in 0..<13 {
        if u() < 0.2 { f.append(""); continue }
        let v = u() < 0.3 ? 0 : Int(exp(u() * Double(3 + k % 5)))
        f.append(k == 1 && u() < 0.05 ? "-1" : String(v))
      }
      for k in 0..<26 {
        if u() < 0.1 { f.append(""); continue }
        let rank = Int(exp(u() * log(Double([50, 200, 12, 5000][k % 4]))))
        f.append(String(format: "%08x", UInt32(truncatingIfNeeded: CriteoSynth.mix(UInt64(k << 32 | rank)))))
      }
      f.append(u() < 0.05 ? "" : String(format: "%.2f", 0.5 + 1.5 * u()))
      f.append(String(Int(u() * 200)))
      let n = Int(u() * 5)
      f.append((0..<n).map { _ in ["a", "b", "c", "d", "e"][Int(u() * 5)] }.joined(separator: ","))
      f.append((0..<n).map { _ in String(format: "%.1f", u() * 3) }.joined(separator: ","))
      f.append((0..<Int(u() * 8)).map { _ in String(Int(u() * 50)) }.joined(separator: "^"))
      out += f.joined(separator: "\t") + "\n"
    }
    return out
  }

  /// What the transformed record of batch row r must hold: the batch's content, as
  /// `ctrkit features apply` prints it (label from the record, so an int64 label stays exact).
  static func expected(_ config: FeatureConfig, _ parsed: ParsedBatch, _ b: FeatureBatch, _ r: Int) -> Example {
    var m: [String: Feature] = [:]
    let label = parsed.column(named: config.label.name)!
    let at = label.rowOffsets[r]
    m[config.label.name] = label.kind == .int64 ? .int64List([label.int64Values[at]]) : .floatList([label.floatValues[at]])
    if let w = config.weight { m[w.name] = .floatList([b.weights[r]]) }
    if let g = config.group { m[g.name] = .int64List([b.groups[r]]) }
    let row = b.denseRow(r)
    for s in b.layout.dense { m[s.column] = .floatList(Array(row[s.offset..<(s.offset + s.width)])) }
    for (i, s) in b.layout.sparse.enumerated() {
      let sp = b.sparse(i)
      let range = sp.offsets[r]..<sp.offsets[r + 1]
      m[s.column] = .int64List(Array(sp.ids[range]))
      if s.weighted { m[s.column + "_weights"] = .floatList(Array(sp.weights[range])) }
    }
    for (i, s) in b.layout.sequences.enumerated() {
      let q = b.sequence(i)
      m[s.column] = .int64List(Array(q.ids[(r * s.maxLength)..<(r * s.maxLength + Int(q.lengths[r]))]))
    }
    return Example(m)
  }

  /// The reference: the library Transformer run over the raw shards, record by record.
  static func reference(_ transform: ConvertTransform, config: FeatureConfig, rawShards: [String]) throws -> [Example] {
    let t = transform.transformer
    let reader = ExampleReader(paths: rawShards, spec: t.spec, batchSize: 100, threads: 1)
    defer { reader.shutdown() }
    let batch = t.makeBatch()
    var out: [Example] = []
    while let parsed = try reader.next() {
      try t.transform(parsed, into: batch)
      for r in 0..<batch.count { out.append(expected(config, parsed, batch, r)) }
    }
    return out
  }

  /// Raw conversion, fit, and the fitted transform of the generated data.
  func fitted(_ dir: ScratchDirectory, rows: Int) throws -> (input: String, raw: String, config: FeatureConfig, ConvertTransform) {
    let input = dir.write("in.tsv", Self.generate(rows: rows, seed: 11))
    let raw = dir.file("raw")
    try ConvertTest.run([input], .tsv, into: raw, schema: Self.schema) { $0.sharding = .shards(2) }
    var options = AnalyzerOptions()
    options.threads = 1
    let (config, _) = try Analyzer.fit(config: try loadConfig(Self.config), paths: try ConvertTest.shardPaths(raw), options: options)
    return (input, raw, config, try ConvertTransform(config: config, configPath: "fitted.yaml"))
  }

  func testTransformedShardsHoldExactlyWhatTheTransformerMakesOfTheRawShards() throws {
    let dir = ScratchDirectory()
    let (input, raw, config, transform) = try fitted(dir, rows: 2500)
    XCTAssertEqual(config.column(named: "I5")?.boundaries?.isEmpty, false, "the analyzer fitted the quantiles")
    XCTAssertNotNil(config.column(named: "C2")?.vocabulary)
    let reference = try Self.reference(transform, config: config, rawShards: try ConvertTest.shardPaths(raw))
    XCTAssertEqual(reference.count, 2500)

    // Small chunks (rows in many chunks) and one big chunk (rows in groups of 1024 within it).
    for chunkBytes in [4096, 1 << 20] {
      let out = dir.file("t\(chunkBytes)")
      let r = try ConvertTest.run([input], .tsv, into: out, schema: Self.schema, chunkBytes: chunkBytes) {
        $0.transform = transform
        $0.sharding = .shards(3)
      }
      XCTAssertEqual(r.manifest.records, 2500)
      XCTAssertEqual(r.manifest.rejectedRows, 0)
      let payloads = try ConvertTest.payloads(out)
      XCTAssertEqual(payloads.count, reference.count)
      for (i, (payload, want)) in zip(payloads, reference).enumerated() {
        // Byte equality: same content, and the entries in libprotobuf-c's order.
        if payload != want.serialized() {
          XCTAssertEqual(try Example(serialized: payload), want, "record \(i), chunk bytes \(chunkBytes)")
          XCTFail("record \(i) differs in its bytes")
          break
        }
      }
    }
    // Every record has every feature, with the documented types.
    let first = try Example(serialized: try ConvertTest.payloads(dir.file("t4096"))[0]).features!.feature
    XCTAssertEqual(Set(first.keys), Set(transform.features.map(\.name)))
    XCTAssertEqual(transform.features.map(\.name), ["C1", "C1_x_C2", "C2", "C3", "C4", "C5", "I1", "I2", "I3", "I4", "I5",
                                                    "I5_x_C5", "I6b", "I7id", "hist", "label", "tags", "tags_weights", "user", "w"])
    for f in transform.features {
      switch (f.type, first[f.name]) {
      case (.int64, .int64List?), (.float, .floatList?): break
      default: XCTFail("\(f.name) is not \(f.type)")
      }
      if let n = f.length, case .floatList(let v)? = first[f.name] { XCTAssertEqual(v.count, n, f.name) }
    }
    XCTAssertEqual(transform.features.first { $0.name == "C3" }?.holds, .indicator)
    XCTAssertEqual(transform.features.first { $0.name == "I1" }?.holds, .numeric)
    XCTAssertEqual(transform.features.first { $0.name == "tags_weights" }?.holds, .idWeights)
  }

  func testOutputIsTheSameForAnyThreadCount() throws {
    let dir = ScratchDirectory()
    let (input, _, _, transform) = try fitted(dir, rows: 1500)
    var outputs: [[String: Data]] = []
    for threads in [1, 3] {
      let out = dir.file("t\(threads)")
      try ConvertTest.run([input], .tsv, into: out, schema: Self.schema, chunkBytes: 8192, threads: threads) {
        $0.transform = transform
        $0.sharding = .maxBytes(64 << 10)
      }
      outputs.append(try ConvertTest.files(out))
    }
    XCTAssertGreaterThan(outputs[0].keys.filter { $0.hasPrefix("part-") }.count, 1)
    XCTAssertEqual(outputs[0], outputs[1], "shards, rejects and manifest are byte-identical")
  }

  // MARK: Rejects

  let rejectSchema = ConvertSchema(columns: [
    ConvertColumn("label", .int64), ConvertColumn("slot", .int64), ConvertColumn("n", .float, separator: ";"),
  ], header: true)  // no `label:`: a row may lack it, and then the transform's parse rejects it

  let rejectConfig = """
    label: label
    columns:
      - {name: slot_id, source: slot, type: identity, num_buckets: 10}
      - {name: n, type: numeric, shape: 2}
    """

  let rejectText = """
    label,slot,n
    1,3,0.5;1
    0,12,1;2
    1,4,1;2;3
    1,x,1;2
    ,5,1;1
    0,5,2;2

    """

  func testRowsTheTransformerRejectsGoToTheRejectsFileWithTheirLines() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.csv", rejectText)
    let transform = try ConvertTransform(config: try loadConfig(rejectConfig), configPath: "c.yaml")
    // One chunk (parse and transform rejects interleave in one block) and many small ones.
    for chunkBytes in [64, 1 << 20] {
      let out = dir.file("out\(chunkBytes)")
      let r = try ConvertTest.run([input], .csv, into: out, schema: rejectSchema, chunkBytes: chunkBytes) {
        $0.transform = transform
        $0.maxErrors = 4
      }
      XCTAssertEqual(r.manifest.records, 2)
      XCTAssertEqual(r.manifest.rejectedRows, 4)
      XCTAssertEqual(try ConvertTest.lines(out + "/rejects.tsv"), [
        "file\tline\treason\trow",
        "\(input)\t3\ttransform: column 'slot_id' (feature 'slot'): value 12 is outside [0, 10) and the column has no default_value\t0,12,1;2",
        "\(input)\t4\ttransform: column 'n': has 3 values but the column's shape is 2\t1,4,1;2;3",
        "\(input)\t5\tcolumn 'slot': 'x' is not an int64\t1,x,1;2",
        "\(input)\t6\ttransform: feature 'label' is required (fixed length, no default) but missing\t,5,1;1",
      ], "chunk bytes \(chunkBytes)")
      // The rows around the rejected ones are transformed as usual.
      XCTAssertEqual(try ConvertTest.examples(out), [
        Example(["label": .int64List([1]), "slot_id": .int64List([3]), "n": .floatList([0.5, 1])]),
        Example(["label": .int64List([0]), "slot_id": .int64List([5]), "n": .floatList([2, 2])]),
      ])
    }
    // They count toward --max-errors; the first by line is reported.
    XCTAssertThrowsError(try ConvertTest.run([input], .csv, into: dir.file("strict"), schema: rejectSchema, chunkBytes: 1 << 20) {
      $0.transform = transform
      $0.maxErrors = 3
    }) { e in
      guard let error = e as? ConvertError else { return XCTFail("\(e)") }
      XCTAssertEqual(error.kind, .tooManyRejects)
      XCTAssertEqual(error.line, 3)
      XCTAssertTrue(error.message.hasPrefix("transform: column 'slot_id'"), error.message)
    }
  }

  func testTheSingleRowEncoderMatchesTheChunkPath() throws {
    let transform = try ConvertTransform(config: try loadConfig(rejectConfig), configPath: "c.yaml")
    let layout = try ConvertLayout(schema: rejectSchema, format: .csv)
    let parser = DelimitedRowParser(layout: layout)
    let encoder = TransformedExampleEncoder(transform: transform, layout: layout)
    let out = ByteAccumulator()
    let text = Array("0,7,1;-2".utf8)
    try text.withUnsafeBufferPointer { try parser.parse($0.baseAddress!, start: 0, end: text.count) }
    try encoder.encode(parser.row, into: out)
    XCTAssertEqual(try Example(serialized: Array(out.bytes)),
                   Example(["label": .int64List([0]), "slot_id": .int64List([7]), "n": .floatList([1, -2])]))
  }

  // MARK: Configs that cannot work fail before any row

  func testAConfigThatNeedsFittingFailsWithTheTransformersMessage() throws {
    XCTAssertThrowsError(try ConvertTransform(config: try loadConfig(Self.config), configPath: "unfitted.yaml")) { e in
      XCTAssertTrue("\(e)".hasPrefix("unfitted.yaml: I1: "), "\(e)")
      XCTAssertTrue("\(e)".contains("has not been fitted: run `ctrkit analyze`"), "\(e)")
    }
  }

  func testTypesThatDisagreeWithTheSchemaAndMissingLabelsFailBeforeAnyOutput() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.tsv", "1\t5\n")
    let schema = ConvertSchema(columns: [ConvertColumn("label", .int64), ConvertColumn("I1", .int64)], label: "label", header: false)
    func attempt(_ yaml: String) -> ConvertError? {
      do {
        let transform = try ConvertTransform(config: try loadConfig(yaml), configPath: "c.yaml")
        try ConvertTest.run([input], .tsv, into: dir.file("out"), schema: schema) { $0.transform = transform }
      } catch let e as ConvertError {
        return e
      } catch {
        XCTFail("\(error)")
      }
      return nil
    }
    let float = attempt("label: label\ncolumns:\n  - {name: I1, type: numeric}\n")
    XCTAssertEqual(float?.kind, .arguments)
    XCTAssertEqual(float?.description,
                   "c.yaml: column 'I1': the feature config reads it as float, but the input schema types it int64 (set the config's dtype or the schema's type so they agree)")
    let label = attempt("label: click\ncolumns:\n  - {name: I1, type: numeric, dtype: int64}\n")
    XCTAssertEqual(label?.description, "c.yaml: column 'click': the feature config needs this feature in every record, but the input has no such column")
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("out")), "nothing was written")
    // Two outputs with one name: the group key and a column.
    XCTAssertThrowsError(try ConvertTransform(config: try loadConfig("""
      label: label
      group: {name: I1, dtype: int64}
      columns:
        - {name: I1, type: hash_bucket, dtype: int64, hash_bucket_size: 10}
      """), configPath: "c.yaml")) { e in
      XCTAssertEqual("\(e)", "c.yaml: column 'I1': the transformed records would hold two features named 'I1' (the group key and column 'I1'); rename the column")
    }
  }

  // MARK: Manifest and reruns

  func testTheManifestRecordsTheTransformAndRerunsNoticeAChangedConfig() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.csv", "label,slot,n\n1,3,0.5;1\n0,5,2;2\n")
    let out = dir.file("out")
    let a = try ConvertTransform(config: try loadConfig(rejectConfig), configPath: "a.yaml")
    let r = try ConvertTest.run([input], .csv, into: out, schema: rejectSchema) { $0.transform = a }
    let entry = try XCTUnwrap(r.manifest.transform)
    XCTAssertEqual(entry.config, "a.yaml")
    XCTAssertEqual(entry.crc32c.count, 8)
    XCTAssertEqual(entry.features, [
      TransformedFeature(name: "label", type: .int64, length: 1, holds: .label),
      TransformedFeature(name: "n", type: .float, length: 2, holds: .numeric, column: "n"),
      TransformedFeature(name: "slot_id", type: .int64, holds: .ids, column: "slot_id"),
    ])
    XCTAssertEqual(try ConvertManifest.read(path: out + "/MANIFEST.json"), r.manifest)
    let json = String(decoding: try r.manifest.encoded(), as: UTF8.self)
    XCTAssertTrue(json.contains("\"transform\" : {"), json)

    // The same config under another path: nothing to do.
    let moved = try ConvertTransform(config: try loadConfig(rejectConfig), configPath: "elsewhere/a.yaml")
    XCTAssertTrue(try ConvertTest.run([input], .csv, into: out, schema: rejectSchema) { $0.transform = moved }.upToDate)
    // Another config, or none: the output is not what this run would write.
    let b = try ConvertTransform(config: try loadConfig(rejectConfig.replacingOccurrences(of: "num_buckets: 10", with: "num_buckets: 11")),
                                 configPath: "a.yaml")
    XCTAssertNotEqual(b.crc32c, a.crc32c)
    XCTAssertThrowsError(try ConvertTest.run([input], .csv, into: out, schema: rejectSchema) { $0.transform = b }) {
      XCTAssertTrue("\($0)".contains("it was transformed with another feature config"), "\($0)")
    }
    XCTAssertThrowsError(try ConvertTest.run([input], .csv, into: out, schema: rejectSchema)) {
      XCTAssertTrue("\($0)".contains("it holds transformed records"), "\($0)")
    }
    let raw = try ConvertTest.run([input], .csv, into: out, schema: rejectSchema) { $0.overwrite = true }
    XCTAssertNil(raw.manifest.transform)
    XCTAssertFalse(String(decoding: try raw.manifest.encoded(), as: UTF8.self).contains("transform"),
                   "a raw conversion's manifest is unchanged")
  }
}
