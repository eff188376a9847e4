import Foundation
import Records

/// A fitted feature config applied while converting (`ctrkit convert --transform FITTED`): the
/// shards then hold the model inputs instead of the raw values.
///
/// Each transformed record is a `tf.Example` with these features (entries sorted by name bytes):
/// - the label under the config's label name: int64_list or float_list (the label's dtype), 1 value;
/// - the example weight under the config's weight name, if one is configured: float_list, 1 value;
/// - the group key under the config's group name, if one is configured: int64_list, 1 value (the
///   int64 value, or FarmHash Fingerprint64 of a string; Int64.min when missing);
/// - per numeric column, its name: float_list of its `shape` normalized values;
/// - per indicator column, its name: float_list of the dense multi-hot (one count or summed
///   weight per bucket);
/// - per id column (bucketized, hash_bucket, vocabulary, identity, crossed), its name:
///   int64_list of the record's ids (possibly empty), and for a column with `weight_feature`
///   also `<name>_weights`: float_list of one weight per id;
/// - per sequence column, its name: int64_list of the kept ids, unpadded, most recent last.
///
/// With `packIds` (`--pack-ids`), the id columns' features are replaced by two: `packed_ids`, an
/// int64_list of every id column's ids back to back (in column order), and `packed_id_lengths`,
/// an int64_list of how many ids each of those columns has in the record. A Criteo record is
/// then under a third of the bytes and two entries instead of forty to parse
/// (`FeatureConfig.packedIds` reads it back).
///
/// Every feature is always written, so every record has the same keys. These are exactly the
/// values the `Transformer` gives training and serving (and `ctrkit features apply` prints),
/// because they are computed by it: see `TransformedExampleEncoder`.
public struct ConvertTransform: Sendable {
  public let transformer: Transformer
  /// The config's path as given (recorded in the manifest).
  public let configPath: String
  /// CRC32C of the config's canonical JSON and the vocabulary files it reads: a rerun with a
  /// changed config converts again.
  public let crc32c: UInt32
  /// The features of each transformed record, in the order they are serialized.
  public let features: [TransformedFeature]
  /// Per feature, where the encoder reads its values.
  let sources: [TransformSource]
  /// The id columns' ids go into `packed_ids` and `packed_id_lengths`.
  public let packIds: Bool
  static let packedIdsName = "packed_ids"
  static let packedIdLengthsName = "packed_id_lengths"

  /// Loads a fitted config (YAML or JSON); relative vocabulary files are found beside it.
  public static func load(path: String, packIds: Bool = false) throws -> ConvertTransform {
    let config = try FeatureConfig.load(path: path)
    let directory = (path as NSString).deletingLastPathComponent
    return try ConvertTransform(config: config, baseDirectory: directory.isEmpty ? "." : directory, configPath: path,
                                packIds: packIds)
  }

  /// Builds the transformer; fails (with its message) when the config still needs fitting, a
  /// vocabulary file cannot be read, two outputs would share a feature name, or ids cannot be
  /// packed (a weighted id column, or none at all).
  public init(config: FeatureConfig, baseDirectory: String = ".", configPath: String, packIds: Bool = false) throws {
    self.packIds = packIds
    do {
      transformer = try Transformer(config: config, baseDirectory: baseDirectory)
    } catch var e as ConfigError {
      if e.file == "<config>" { e.file = configPath }
      throw e
    }
    self.configPath = configPath
    let t = transformer
    var items: [(TransformedFeature, TransformSource)] = []
    let labelType: RawValueType = t.spec.features[t.labelIndex].kind == .int64 ? .int64 : .float
    items.append((TransformedFeature(name: config.label.name, type: labelType, length: 1, holds: .label), .label))
    if let w = config.weight {
      items.append((TransformedFeature(name: w.name, type: .float, length: 1, holds: .weight), .weight))
    }
    if let g = config.group {
      items.append((TransformedFeature(name: g.name, type: .int64, length: 1, holds: .group), .group))
    }
    for slot in t.layout.dense {
      let numeric = config.column(named: slot.column)?.type == .numeric
      items.append((TransformedFeature(name: slot.column, type: .float, length: slot.width,
                                       holds: numeric ? .numeric : .indicator, column: slot.column),
                    .dense(offset: slot.offset, width: slot.width)))
    }
    if packIds {
      if t.layout.sparse.isEmpty {
        throw ConvertError(.arguments, path: configPath, "--pack-ids: the config has no id columns to pack")
      }
      if let weighted = t.layout.sparse.first(where: \.weighted) {
        throw ConvertError(.arguments, path: configPath, field: weighted.column,
                           "--pack-ids: the column has a weight_feature, and packed ids carry no weights; convert without --pack-ids")
      }
      let columns = t.layout.sparse.map(\.column)
      items.append((TransformedFeature(name: Self.packedIdsName, type: .int64, holds: .packedIds, columns: columns), .packedIds))
      items.append((TransformedFeature(name: Self.packedIdLengthsName, type: .int64, length: columns.count,
                                       holds: .packedIdLengths, columns: columns), .packedIdLengths))
    }
    for (i, slot) in t.layout.sparse.enumerated() where !packIds {
      items.append((TransformedFeature(name: slot.column, type: .int64, holds: .ids, column: slot.column), .ids(i)))
      if slot.weighted {
        items.append((TransformedFeature(name: slot.column + "_weights", type: .float, holds: .idWeights, column: slot.column),
                      .idWeights(i)))
      }
    }
    for (i, slot) in t.layout.sequences.enumerated() {
      items.append((TransformedFeature(name: slot.column, type: .int64, holds: .sequence, column: slot.column),
                    .sequence(i, maxLength: slot.maxLength)))
    }
    var seen: [String: TransformedFeature] = [:]
    for (f, _) in items {
      if let other = seen[f.name] {
        throw ConvertError(.arguments, path: configPath, field: f.name,
                           "the transformed records would hold two features named '\(f.name)' (\(other.role) and \(f.role)); rename the column")
      }
      seen[f.name] = f
    }
    // The order libprotobuf-c serializes map entries in, so equal content gives equal bytes.
    items.sort { Array($0.0.name.utf8).lexicographicallyPrecedes(Array($1.0.name.utf8)) }
    features = items.map(\.0)
    sources = items.map(\.1)
    crc32c = try Self.digest(config, baseDirectory: baseDirectory)
  }

  /// The feature config that reads the transformed records back and gives the model exactly
  /// the inputs the fitted config gives from raw ones: the same columns in the same order (so a
  /// model trained on either has the same fields and tables), with ids read as identity
  /// columns, dense outputs as plain numeric columns, and the group key as the int64 it became.
  /// `ctrkit convert --transform` writes it as `features.yaml` beside the manifest.
  public func materializedConfig() throws -> FeatureConfig {
    let config = transformer.config
    let layout = transformer.layout
    let t = transformer
    let labelType: SourceType = t.spec.features[t.labelIndex].kind == .int64 ? .int64 : .float
    var out = FeatureConfig(label: FeatureRef(name: config.label.name, dtype: labelType),
                            weight: config.weight.map { FeatureRef(name: $0.name, dtype: .float) },
                            group: config.group.map { FeatureRef(name: $0.name, dtype: .int64) }, columns: [])
    for c in config.columns {
      if let dense = layout.denseSlot(c.name) {
        var n = ColumnConfig(name: c.name, type: .numeric)
        n.dtype = .float
        n.shape = dense.width
        n.normalizer = Normalizer.none
        out.columns.append(n)
        continue
      }
      let bucketCount: Int64?
      let isSequence = c.type == .sequence
      if isSequence {
        bucketCount = layout.sequences.first { $0.column == c.name }?.bucketCount
      } else {
        bucketCount = layout.sparse.first { $0.column == c.name }?.bucketCount
      }
      // Unbounded ids (fingerprints) lie below Int64.max.
      let buckets = bucketCount ?? Int64.max
      var id = ColumnConfig(name: c.name, type: isSequence ? .sequence : .identity)
      id.dtype = .int64
      id.numBuckets = buckets
      id.embedding = c.embedding
      if isSequence {
        id.idType = .identity
        id.maxLength = c.maxLength
      }
      if c.weightFeature != nil { id.weightFeature = c.name + "_weights" }
      out.columns.append(id)
    }
    if packIds {
      out.packedIds = PackedIds(values: Self.packedIdsName, lengths: Self.packedIdLengthsName, columns: layout.sparse.map(\.column))
    }
    out.fitted = true
    return out
  }

  /// What the manifest records about the transform.
  public var manifestEntry: ConvertTransformEntry {
    ConvertTransformEntry(config: configPath, crc32c: hex8(crc32c), features: features)
  }

  private static func digest(_ config: FeatureConfig, baseDirectory: String) throws -> UInt32 {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var crc = CRC32C.checksum(Array(try encoder.encode(config)))
    for c in config.columns {
      guard let file = c.vocabularyFile else { continue }
      let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
      // The transformer has just read it; a file that vanished since changes the digest.
      let data = FileManager.default.contents(atPath: path) ?? Data()
      crc = data.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
    }
    return crc
  }

  /// Fails up front, rather than rejecting every row, when the converted records cannot feed
  /// the transformer: a feature the config reads with another type than the input column
  /// has, or a feature it needs in every record that the input has no column for.
  func check(layout: ConvertLayout) throws {
    for f in transformer.spec.features {
      var required = false
      if case .fixed(let n) = f.shape, n > 0, f.defaultValue == nil { required = true }
      guard let c = layout.indexByName[f.name], layout.kept[c] else {
        if required {
          let why = layout.indexByName[f.name] == nil ? "the input has no such column" : "the schema drops that column"
          throw ConvertError(.arguments, path: configPath, field: f.name,
                             "the feature config needs this feature in every record, but \(why)")
        }
        continue
      }
      let type = layout.columns[c].type
      if type.valueKind != f.kind {
        throw ConvertError(.arguments, path: configPath, field: f.name,
                           "the feature config reads it as \(RawValueType(f.kind).rawValue), but the input schema types it \(type.rawValue) (set the config's dtype or the schema's type so they agree)")
      }
    }
  }
}

extension RawValueType {
  var valueKind: ValueKind {
    switch self {
    case .int64: return .int64
    case .float: return .float
    case .bytes: return .bytes
    }
  }

  init(_ kind: ValueKind) {
    switch kind {
    case .int64: self = .int64
    case .float: self = .float
    case .bytes: self = .bytes
    }
  }
}

/// One feature of a transformed record, as the manifest lists it.
public struct TransformedFeature: Codable, Sendable, Equatable {
  /// What a transformed feature holds.
  public enum Holds: String, Codable, Sendable {
    case label, weight, group, numeric, indicator, ids
    case idWeights = "id_weights"
    case sequence
    case packedIds = "packed_ids"
    case packedIdLengths = "packed_id_lengths"
  }

  public var name: String
  /// int64 (`int64_list`) or float (`float_list`).
  public var type: RawValueType
  /// Values per record when the count is fixed; nil when it varies (ids, sequences).
  public var length: Int?
  public var holds: Holds
  /// The config column it comes from (nil for the label, weight, group and packed ids).
  public var column: String?
  /// The packed columns, in packing order (packed ids and their lengths only).
  public var columns: [String]?

  public init(name: String, type: RawValueType, length: Int? = nil, holds: Holds, column: String? = nil,
              columns: [String]? = nil) {
    self.name = name
    self.type = type
    self.length = length
    self.holds = holds
    self.column = column
    self.columns = columns
  }

  var role: String {
    switch holds {
    case .label: return "the label"
    case .weight: return "the example weight"
    case .group: return "the group key"
    case .numeric, .indicator, .ids, .sequence: return "column '\(column ?? name)'"
    case .idWeights: return "the id weights of column '\(column ?? name)'"
    case .packedIds: return "the packed ids"
    case .packedIdLengths: return "the packed id lengths"
    }
  }
}

/// The `transform` entry of MANIFEST.json: the shards hold model inputs made with this config.
public struct ConvertTransformEntry: Codable, Sendable, Equatable {
  /// The fitted config's path as given.
  public var config: String
  /// CRC32C (8 hex digits) of the config's canonical JSON and its vocabulary files.
  public var crc32c: String
  /// The features of every transformed record, in serialization order.
  public var features: [TransformedFeature]
}

/// Where a transformed feature's values are read from.
enum TransformSource: Sendable {
  case label, weight, group
  case dense(offset: Int, width: Int)
  case ids(Int)
  case idWeights(Int)
  case sequence(Int, maxLength: Int)
  case packedIds, packedIdLengths
}

/// A `RowEncoder` whose payloads come from a step over many rows at once: the converter stages
/// every row of a chunk, then asks for the staged rows' payloads in order.
protocol StagingRowEncoder: RowEncoder {
  /// Forgets the previous chunk's rows.
  func beginChunk()
  /// Keeps the row (its storage is reused for the next row, so it is copied).
  func stage(_ row: TypedRow) throws(RowRejection)
  /// Appends the payload of staged row `k`, or throws the rejection that sends the row to the
  /// rejects file. Called for k = 0, 1, … in order.
  func payload(_ k: Int, into output: ByteAccumulator) throws(RowRejection)
}

/// The `--transform` encoder: one transformed `tf.Example` per row (layout: `ConvertTransform`).
///
/// It runs the very code training and serving run, so the shards cannot drift from them: each
/// row is encoded as the raw Example a plain conversion writes (`ExampleWireEncoder`), the raw
/// payloads are parsed with the transformer's own `ParseSpec` (`ExampleParser`) in groups of up
/// to 1024 rows, `Transformer.transform` turns each group into a `FeatureBatch`, and each row of
/// the batch is written with `ExampleWireWriter`. A row that fails to parse is rejected alone
/// (the parser rolls it back); a group whose transform fails is transformed again row by row, so
/// only the failing rows are rejected, with the transformer's message. Rows are independent, so
/// the output is the same however rows are grouped or chunked. Buffers are reused from chunk to
/// chunk; one encoder per worker thread.
final class TransformedExampleEncoder: StagingRowEncoder {
  let transform: ConvertTransform
  let transformer: Transformer
  private let rawEncoder: ExampleWireEncoder
  private let parser: ExampleParser
  /// The chunk's raw payloads, back to back; `stagedEnds[k]` is where row k's ends.
  private let staged = ByteAccumulator(capacity: 1 << 20)
  private var stagedEnds: [Int] = []
  private let parsed: ParsedBatch
  private let batch: FeatureBatch
  private let single: ParsedBatch
  private let singleBatch: FeatureBatch
  /// Rows per transform call: few enough that the dense matrix stays within ~4 MB.
  let groupRows: Int
  private var groupStart = 0, groupEnd = 0
  /// Per row of the group, its row in `parsed`, or -1 when it did not parse.
  private var slots: [Int] = []
  private var failures: [Int: RowRejection] = [:]
  /// The group's transform failed: transform its rows one by one.
  private var perRow = false
  private let names: UnsafeMutableRawBufferPointer
  private let nameStarts: [Int]
  private let nameLengths: [Int]
  private let denseWidth: Int
  private let sources: [TransformSource]
  /// A record's packed ids or lengths, gathered across the id columns before writing.
  private var packScratch: [Int64] = []

  init(transform: ConvertTransform, layout: ConvertLayout) {
    self.transform = transform
    transformer = transform.transformer
    rawEncoder = ExampleWireEncoder(layout: layout)
    parser = ExampleParser(spec: transformer.spec)
    parsed = ParsedBatch(spec: transformer.spec)
    single = ParsedBatch(spec: transformer.spec)
    batch = transformer.makeBatch()
    singleBatch = transformer.makeBatch()
    denseWidth = transformer.layout.denseWidth
    sources = transform.sources
    groupRows = max(1, min(1024, (1 << 20) / max(denseWidth, 1)))
    var block: [UInt8] = [], starts: [Int] = [], lengths: [Int] = []
    for f in transform.features {
      starts.append(block.count)
      block += Array(f.name.utf8)
      lengths.append(block.count - starts.last!)
    }
    let nameBlock = UnsafeMutableRawBufferPointer.allocate(byteCount: max(block.count, 1), alignment: 1)
    block.withUnsafeBytes { nameBlock.copyMemory(from: $0) }
    names = nameBlock
    nameStarts = starts
    nameLengths = lengths
  }

  deinit { names.deallocate() }

  func beginChunk() {
    staged.removeAll()
    stagedEnds.removeAll(keepingCapacity: true)
    groupStart = 0
    groupEnd = 0
  }

  func stage(_ row: TypedRow) throws(RowRejection) {
    try rawEncoder.encode(row, into: staged)
    stagedEnds.append(staged.count)
  }

  /// One row alone (tests and callers outside the converter).
  func encode(_ row: TypedRow, into output: ByteAccumulator) throws(RowRejection) {
    beginChunk()
    try stage(row)
    try payload(0, into: output)
  }

  func payload(_ k: Int, into output: ByteAccumulator) throws(RowRejection) {
    if k >= groupEnd || k < groupStart { prepareGroup(from: k) }
    let r = slots[k - groupStart]
    if r < 0 { throw failures[k]! }
    if !perRow {
      write(batch, parsed, r, into: output)
      return
    }
    single.removeAll()
    do {
      try parser.parseOne(rawPayload(k), into: single, path: "", index: k, offset: 0)
      try transformer.transform(single, into: singleBatch)
    } catch {
      throw Self.rejection(error)
    }
    write(singleBatch, single, 0, into: output)
  }

  private func rawPayload(_ k: Int) -> UnsafeRawBufferPointer {
    let start = k == 0 ? 0 : stagedEnds[k - 1]
    return UnsafeRawBufferPointer(rebasing: staged.bytes[start..<stagedEnds[k]])
  }

  private func prepareGroup(from k: Int) {
    groupStart = k
    groupEnd = min(k + groupRows, stagedEnds.count)
    parsed.removeAll()
    slots.removeAll(keepingCapacity: true)
    failures.removeAll(keepingCapacity: true)
    for j in groupStart..<groupEnd {
      do {
        try parser.parseOne(rawPayload(j), into: parsed, path: "", index: j, offset: 0)
        slots.append(parsed.count - 1)
      } catch {
        slots.append(-1)
        failures[j] = Self.rejection(error)
      }
    }
    do {
      try transformer.transform(parsed, into: batch)
      perRow = false
    } catch {
      // Which rows failed is only known row by row (a later column may fail on an earlier row).
      perRow = true
    }
  }

  /// The transformer's or parser's message, without the placeholder path and record index
  /// (the rejects file names the input file and line instead).
  static func rejection(_ error: Error) -> RowRejection {
    switch error {
    case let e as FeatureError:
      var s = "transform: column '\(e.column)'"
      if let f = e.feature, f != e.column { s += " (feature '\(f)')" }
      return RowRejection(s + ": " + e.message)
    case let e as RecordsError:
      return RowRejection("transform: " + (e.field.map { "feature '\($0)' " } ?? "") + e.message)
    default:
      return RowRejection("transform: \(error)")
    }
  }

  /// Writes record `r` of a transformed batch as a `tf.Example`.
  private func write(_ b: FeatureBatch, _ p: ParsedBatch, _ r: Int, into output: ByteAccumulator) {
    var w = ExampleWireWriter(output: output)
    w.begin()
    let base = UnsafeRawPointer(names.baseAddress!)
    for (i, source) in sources.enumerated() {
      let name = UnsafeRawBufferPointer(start: base + nameStarts[i], count: nameLengths[i])
      switch source {
      case .label:
        // From the parsed column rather than the batch's float label: an int64 label stays exact.
        let col = p.column(transformer.labelIndex)
        let at = col.rowOffsets[r]
        if col.kind == .int64 {
          w.int64Feature(name: name, UnsafeBufferPointer(rebasing: col.int64Values[at..<(at + 1)]))
        } else {
          w.floatFeature(name: name, UnsafeBufferPointer(rebasing: col.floatValues[at..<(at + 1)]))
        }
      case .weight:
        w.floatFeature(name: name, UnsafeBufferPointer(rebasing: b.weights[r..<(r + 1)]))
      case .group:
        w.int64Feature(name: name, UnsafeBufferPointer(rebasing: b.groups[r..<(r + 1)]))
      case .dense(let offset, let width):
        let s = r * denseWidth + offset
        w.floatFeature(name: name, UnsafeBufferPointer(rebasing: b.dense[s..<(s + width)]))
      case .ids(let slot):
        let s = b.sparse(slot)
        w.int64Feature(name: name, UnsafeBufferPointer(rebasing: s.ids[s.offsets[r]..<s.offsets[r + 1]]))
      case .idWeights(let slot):
        let s = b.sparse(slot)
        w.floatFeature(name: name, UnsafeBufferPointer(rebasing: s.weights[s.offsets[r]..<s.offsets[r + 1]]))
      case .sequence(let slot, let maxLength):
        let q = b.sequence(slot)
        let s = r * maxLength
        w.int64Feature(name: name, UnsafeBufferPointer(rebasing: q.ids[s..<(s + Int(q.lengths[r]))]))
      case .packedIds, .packedIdLengths:
        packScratch.removeAll(keepingCapacity: true)
        for slot in 0..<b.layout.sparse.count {
          let s = b.sparse(slot)
          let range = s.offsets[r]..<s.offsets[r + 1]
          if case .packedIds = source {
            packScratch.append(contentsOf: s.ids[range])
          } else {
            packScratch.append(Int64(range.count))
          }
        }
        packScratch.withUnsafeBufferPointer { w.int64Feature(name: name, $0) }
      }
    }
    w.end()
  }
}
