import Foundation
import Records

/// A data problem found while transforming: names the column, the feature, the file and record.
public struct FeatureError: Error, CustomStringConvertible, Sendable {
  public var column: String
  public var feature: String?
  public var path: String
  public var record: Int?
  public var message: String

  public var description: String {
    var s = path
    if let record { s += ": record \(record)" }
    s += ": column '\(column)'"
    if let feature, feature != column { s += " (feature '\(feature)')" }
    return s + ": " + message
  }
}

/// Turns parsed records into model inputs exactly as the fitted feature config says, with
/// TensorFlow's id semantics. One transformer serves training, evaluation and serving, so the
/// three cannot disagree. `transform` keeps no state between calls and may run on many threads.
public final class Transformer: @unchecked Sendable {
  public let config: FeatureConfig
  /// The raw features to parse from each record.
  public let spec: ParseSpec
  public let layout: FeatureLayout
  let plans: [ColumnPlan]
  let labelIndex: Int
  let labelIsInt: Bool
  let weightIndex: Int?
  let groupIndex: Int?
  /// Packed ids (`packed_ids`): the spec indices of the values and lengths features, and the
  /// packed columns' plans in packing order.
  let packedValuesIndex: Int
  let packedLengthsIndex: Int
  let packedPlans: [ColumnPlan]
  /// Per packed column, its num_buckets (ids at or above it take the identity rules' slow path).
  let packedBuckets: UnsafeMutablePointer<Int64>

  /// Builds the transformer; fails if the config still needs fitting (quantiles, top_k,
  /// statistics for zscore/minmax) or a vocabulary file cannot be read.
  /// - Parameter baseDirectory: where relative vocabulary files are found (the config's folder).
  public init(config: FeatureConfig, baseDirectory: String = ".") throws {
    self.config = config
    var features: [FeatureSpec] = []
    var index: [String: Int] = [:]
    func source(_ name: String, _ kind: ValueKind, column: String) throws -> Int {
      if let i = index[name] {
        if features[i].kind != kind {
          throw ConfigError(file: "<config>", key: column, "feature '\(name)' is read as \(features[i].kind.rawValue) elsewhere but as \(kind.rawValue) here")
        }
        return i
      }
      features.append(FeatureSpec(name, kind))
      index[name] = features.count - 1
      return features.count - 1
    }
    let labelKind = (config.label.dtype ?? .int64).valueKind
    features.append(.scalar(config.label.name, labelKind))
    index[config.label.name] = 0
    labelIndex = 0
    labelIsInt = labelKind == .int64
    if let w = config.weight {
      features.append(.scalar(w.name, .float, default: .float([1])))
      index[w.name] = features.count - 1
      weightIndex = features.count - 1
    } else {
      weightIndex = nil
    }
    groupIndex = try config.group.map { try source($0.name, ($0.dtype ?? .string).valueKind, column: "group") }
    let packedColumns = config.packedIds.map { Dictionary(uniqueKeysWithValues: $0.columns.enumerated().map { ($1, $0) }) } ?? [:]
    if let packed = config.packedIds {
      packedValuesIndex = try source(packed.values, .int64, column: "packed_ids")
      // Fixed length and no default: a record without its lengths is an error naming it.
      features.append(FeatureSpec(packed.lengths, .int64, shape: .fixed(packed.columns.count)))
      index[packed.lengths] = features.count - 1
      packedLengthsIndex = features.count - 1
    } else {
      packedValuesIndex = -1
      packedLengthsIndex = -1
    }
    var packedPlans = [ColumnPlan?](repeating: nil, count: packedColumns.count)

    var dense: [FeatureLayout.DenseSlot] = []
    var sparse: [FeatureLayout.SparseSlot] = []
    var sequences: [FeatureLayout.SequenceSlot] = []
    var denseWidth = 0
    var plans: [ColumnPlan] = []
    let columnsByName = Dictionary(config.columns.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for c in config.columns {
      if c.sourceName == config.label.name && c.type != .crossed {
        throw ConfigError(file: "<config>", key: c.name, "the label feature '\(c.sourceName)' cannot also be a column's input")
      }
      let plan = ColumnPlan(column: c)
      if let k = packedColumns[c.name] {
        plan.packedSegment = k
        packedPlans[k] = plan
      } else if c.type != .crossed {
        plan.source = try source(c.sourceName, c.resolvedDType.valueKind, column: c.name)
      }
      if let wf = c.weightFeature { plan.weightSource = try source(wf, .float, column: c.name) }
      try plan.compile(baseDirectory: baseDirectory)
      if c.type == .crossed {
        // TensorFlow's cross kernel receives the sparse inputs (column ids) before the dense ones
        // (raw features parsed as FixedLen), so that is the order the fingerprints are folded in.
        var rawParts: [CrossInput] = []
        defer { plan.crossParts += rawParts }
        for key in c.keys ?? [] {
          if let other = columnsByName[key], [.bucketized, .identity, .vocabulary].contains(other.type) {
            let sub = ColumnPlan(column: other)
            sub.source = try source(other.sourceName, other.resolvedDType.valueKind, column: c.name)
            try sub.compile(baseDirectory: baseDirectory)
            plan.crossParts.append(.ids(sub))
          } else {
            let dtype = config.columns.first { $0.sourceName == key && $0.type != .crossed }?.resolvedDType ?? .string
            let s = try source(key, dtype.valueKind, column: c.name)
            rawParts.append(dtype == .int64 ? .rawInt64(s) : .rawBytes(s))
          }
        }
      }
      switch c.type {
      case .numeric:
        plan.denseOffset = denseWidth
        dense.append(.init(column: c.name, offset: denseWidth, width: plan.shape))
        denseWidth += plan.shape
      case .sequence:
        plan.slot = sequences.count
        sequences.append(.init(column: c.name, maxLength: c.maxLength ?? 1, bucketCount: plan.bucketCount, embedding: c.embedding))
      default:
        if c.output == .indicator {
          guard let n = plan.bucketCount, n <= 100_000 else {
            throw ConfigError(file: "<config>", key: c.name, "an indicator needs a known, modest number of buckets")
          }
          plan.denseOffset = denseWidth
          dense.append(.init(column: c.name, offset: denseWidth, width: Int(n)))
          denseWidth += Int(n)
        } else {
          plan.slot = sparse.count
          sparse.append(.init(column: c.name, bucketCount: plan.bucketCount, weighted: c.weightFeature != nil, embedding: c.embedding))
        }
      }
      plans.append(plan)
    }
    // Shared embeddings need equal bucket counts (TensorFlow's rule), now that vocabularies are known.
    var sharedCounts: [String: (Int64?, String)] = [:]
    for s in sparse + sequences.map({ FeatureLayout.SparseSlot(column: $0.column, bucketCount: $0.bucketCount, weighted: false, embedding: $0.embedding) }) {
      guard let table = s.embedding?.shared else { continue }
      if let (n, other) = sharedCounts[table], n != s.bucketCount {
        throw ConfigError(file: "<config>", key: s.column, "shares embedding '\(table)' with '\(other)' but has \(s.bucketCount.map(String.init) ?? "unbounded") buckets instead of \(n.map(String.init) ?? "unbounded")")
      }
      sharedCounts[table] = (s.bucketCount, s.column)
    }
    self.plans = plans
    self.packedPlans = packedPlans.compactMap { $0 }
    packedBuckets = .allocate(capacity: max(self.packedPlans.count, 1))
    for (k, plan) in self.packedPlans.enumerated() { packedBuckets[k] = plan.column.numBuckets ?? 0 }
    spec = try ParseSpec(features)
    layout = FeatureLayout(dense: dense, denseWidth: denseWidth, sparse: sparse, sequences: sequences,
                           hasWeights: config.weight != nil, hasGroups: config.group != nil)
  }

  deinit { packedBuckets.deallocate() }

  /// A batch shaped for this transformer's output (reuse it across calls).
  public func makeBatch() -> FeatureBatch { FeatureBatch(layout: layout) }

  /// Transforms every record of `parsed` (which must come from `spec`) into `batch`.
  public func transform(_ parsed: ParsedBatch, into batch: FeatureBatch) throws {
    precondition(parsed.spec == spec, "the parsed batch was not parsed with this transformer's spec")
    let n = parsed.count
    batch.reset(count: n)
    batch.path = parsed.path
    batch.recordIndices.append(contentsOf: parsed.recordIndices)
    let label = parsed.column(labelIndex)
    for r in 0..<n {
      let i = label.rowOffsets[r]
      batch.labelStore.append(labelIsInt ? Float(label.int64Values[i]) : label.floatValues[i])
    }
    if let w = weightIndex {
      let col = parsed.column(w)
      for r in 0..<n { batch.weightStore.append(col.floatValues[col.rowOffsets[r]]) }
    } else {
      batch.weightStore.fill(1, count: n)
    }
    if let g = groupIndex {
      let col = parsed.column(g)
      for r in 0..<n {
        let range = col.row(r)
        if range.isEmpty { batch.groupStore.append(.min); continue }
        batch.groupStore.append(col.kind == .int64 ? col.int64Values[range.lowerBound]
                                  : Int64(bitPattern: FarmHash.fingerprint64(col.bytes(range.lowerBound))))
      }
    }
    if !packedPlans.isEmpty { try runPacked(parsed, batch) }
    for plan in plans where plan.packedSegment < 0 {
      do {
        try plan.run(parsed, batch)
      } catch {
        let e = error  // typed throws: always a PlanFailure
        throw FeatureError(column: plan.column.name, feature: plan.column.type == .crossed ? nil : plan.column.sourceName,
                           path: parsed.path, record: parsed.recordIndices.isEmpty ? e.row : parsed.recordIndices[e.row], message: e.message)
      }
    }
  }
}

extension Transformer {
  /// Hands each record's packed ids to their identity columns, segment by segment as
  /// `packed_ids.lengths` says, with the identity rules of `ColumnPlan.id(int64:row:)`: -1 is
  /// missing, an id outside [0, num_buckets) takes the default or fails. One pass over the
  /// records fills every packed column.
  func runPacked(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws {
    let values = parsed.column(packedValuesIndex), lengths = parsed.column(packedLengthsIndex)
    let n = parsed.count, segments = packedPlans.count
    let names = config.packedIds!
    func failure(_ r: Int, _ k: Int, feature: String, _ message: String) -> FeatureError {
      FeatureError(column: packedPlans[k].column.name, feature: feature, path: parsed.path,
                   record: parsed.recordIndices.isEmpty ? r : parsed.recordIndices[r], message: message)
    }
    guard n > 0, let lens = lengths.int64Values.baseAddress else { return }
    let ids = values.int64Values.baseAddress
    let starts = values.rowOffsets.baseAddress!
    try withUnsafeTemporaryAllocation(of: Int.self, capacity: segments * 2) { counters in
      // First the lengths: each record's counts must cover exactly its ids; and each column's
      // total, so its output can be reserved once.
      let totals = counters.baseAddress!, written = totals + segments
      totals.initialize(repeating: 0, count: segments)
      for r in 0..<n {
        var left = starts[r + 1] - starts[r]
        for k in 0..<segments {
          let count = lens[r &* segments &+ k]
          guard count >= 0 && count <= left else {
            throw failure(r, k, feature: names.lengths,
                          "says \(count) ids, but '\(names.values)' has \(left) left for this and the later columns")
          }
          left -= Int(count)
          totals[k] &+= Int(count)
        }
        guard left == 0 else {
          throw failure(r, segments - 1, feature: names.values,
                        "has \(starts[r + 1] - starts[r]) ids, but '\(names.lengths)' accounts for \(starts[r + 1] - starts[r] - left)")
        }
      }
      try withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Int64>.self, capacity: segments) { out in
        try withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Int>.self, capacity: segments) { offsets in
          for k in 0..<segments {
            let slot = packedPlans[k].slot
            batch.sparseIds[slot].reserve(totals[k])
            batch.sparseOffsets[slot].reserve(n)
            out[k] = batch.sparseIds[slot].base
            offsets[k] = batch.sparseOffsets[slot].base + batch.sparseOffsets[slot].count
            written[k] = batch.sparseIds[slot].count
          }
          // Then a transpose, in blocks of records that stay in L1 while each column's ids are
          // copied out of them, so the reads stay in cache and every column's writes run in order.
          let block = 16
          try withUnsafeTemporaryAllocation(of: Int.self, capacity: block) { cursorBuffer in
            let cursor = cursorBuffer.baseAddress!
            var r0 = 0
            while r0 < n {
              let r1 = min(r0 &+ block, n)
              for r in r0..<r1 { cursor[r &- r0] = starts[r] }
              for k in 0..<segments {
                var w = written[k]
                let o = out[k], off = offsets[k], buckets = packedBuckets[k]
                // `while` loops, and one in-range id (the common case) before anything else:
                // a range's checks, and the plan's reference count, cost more than the id.
                var r = r0
                while r < r1 {
                  var p = cursor[r &- r0]
                  let end = p &+ Int(lens[r &* segments &+ k])
                  if end == p &+ 1, case let v = ids.unsafelyUnwrapped[p], v >= 0 && v < buckets {
                    o[w] = v
                    w &+= 1
                    p = end
                  }
                  while p < end {
                    do throws(PlanFailure) {
                      if let id = try packedPlans[k].identityId(ids.unsafelyUnwrapped[p], buckets: buckets, row: r) {
                        o[w] = id
                        w &+= 1
                      }
                    } catch {
                      throw failure(r, k, feature: names.values, error.message)
                    }
                    p &+= 1
                  }
                  cursor[r &- r0] = p
                  off[r] = w
                  r &+= 1
                }
                written[k] = w
              }
              r0 = r1
            }
          }
          for k in 0..<segments {
            let slot = packedPlans[k].slot
            batch.sparseIds[slot].count = written[k]
            batch.sparseOffsets[slot].count += n
          }
        }
      }
    }
  }
}

/// A failure inside a column plan, located by the batch row.
struct PlanFailure: Error {
  let row: Int
  let message: String
}

/// One input of a cross.
enum CrossInput {
  case rawBytes(Int)
  case rawInt64(Int)
  case ids(ColumnPlan)
}

/// A column compiled for fast execution: everything a hot loop needs, resolved once. A class, so
/// cross inputs can refer to other plans without copying them in hot loops.
final class ColumnPlan: @unchecked Sendable {
  let column: ColumnConfig
  var source = -1
  var weightSource: Int?
  var shape = 1
  var denseOffset = -1
  var slot = -1
  var bucketizer: Bucketizer?
  var vocabulary: VocabularyLookup?
  var crossParts: [CrossInput] = []
  var bucketCount: Int64?
  // numeric normalisation: y = (x - shift) * scale, or a nonlinear transform
  var normalizer: Normalizer = .none
  var shift: Double = 0
  var scale: Double = 1
  var missingBucket = false
  /// The column's segment in the packed ids (`packed_ids`), or -1 when it reads its own feature.
  var packedSegment = -1

  init(column: ColumnConfig) { self.column = column }

  func compile(baseDirectory: String) throws {
    let c = column
    shape = c.shape ?? 1
    func unfitted(_ what: String) -> ConfigError {
      ConfigError(file: "<config>", key: c.name, "\(what) has not been fitted: run `ctrkit analyze` and use the fitted config")
    }
    switch c.type {
    case .numeric:
      normalizer = c.normalizer ?? .none
      switch normalizer {
      case .zscore:
        guard let s = c.statistics else { throw unfitted("the z-score normalizer's mean and std") }
        shift = s.mean
        scale = s.std > 0 ? 1 / s.std : 1
      case .minmax:
        guard let s = c.statistics else { throw unfitted("the min-max normalizer's range") }
        shift = s.min
        scale = s.max > s.min ? 1 / (s.max - s.min) : 1
      default: break
      }
    case .bucketized:
      guard let b = c.boundaries else { throw unfitted("the quantile boundaries") }
      bucketizer = try Bucketizer(boundaries: b)
      missingBucket = c.default == nil
      bucketCount = Int64(b.count + 1 + (missingBucket ? 1 : 0)) * Int64(shape)
    case .hashBucket, .crossed:
      bucketCount = c.hashBucketSize.flatMap { $0 > 0 ? $0 : nil }
    case .identity:
      bucketCount = c.numBuckets
    case .vocabulary:
      try compileVocabulary(baseDirectory: baseDirectory, unfitted)
    case .sequence:
      switch c.sequenceIdType {
      case .identity: bucketCount = c.numBuckets
      case .vocabulary: try compileVocabulary(baseDirectory: baseDirectory, unfitted)
      default: bucketCount = c.hashBucketSize.flatMap { $0 > 0 ? $0 : nil }
      }
    }
  }

  private func compileVocabulary(baseDirectory: String, _ unfitted: (String) -> ConfigError) throws {
    let c = column
    var words: [String]
    if let v = c.vocabulary {
      words = v
    } else if let file = c.vocabularyFile {
      let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
      do {
        words = try VocabularyLookup.readVocabularyFile(path: path, vocabularySize: c.vocabularySize)
      } catch {
        throw ConfigError(file: path, key: c.name, "cannot read the vocabulary file: \(error)")
      }
    } else {
      throw unfitted("the vocabulary (top_k/min_count)")
    }
    let oov = c.numOOVBuckets ?? 0
    let def = c.defaultValue ?? -1
    if c.resolvedDType == .int64 {
      let ints = try words.map { w -> Int64 in
        guard let v = Int64(w) else { throw ConfigError(file: "<config>", key: c.name, "vocabulary entry '\(w)' is not an int64") }
        return v
      }
      vocabulary = try VocabularyLookup(int64s: ints, numOOVBuckets: oov, defaultValue: def)
    } else {
      vocabulary = try VocabularyLookup(strings: words, numOOVBuckets: oov, defaultValue: def)
    }
    bucketCount = Int64(words.count + oov)
  }

  // MARK: - Ids of one value

  /// The id of a string value (hash or vocabulary), or a negative number when TF prunes it.
  @inline(__always)
  func id(bytes: UnsafeRawBufferPointer) -> Int64 {
    if let vocabulary { return vocabulary.id(bytes) }
    let n = column.hashBucketSize ?? 0
    if n == 0 { return Int64(FarmHash.fingerprint64(bytes) % UInt64(Int64.max)) }
    return TFHash.hashBucketFast(bytes, buckets: n)
  }

  /// The id of an int64 value for hash, vocabulary and identity semantics.
  @inline(__always)
  func id(int64 v: Int64, row: Int) throws(PlanFailure) -> Int64 {
    let kind = column.type == .sequence ? column.sequenceIdType : column.type
    switch kind {
    case .identity:
      let n = column.numBuckets ?? 0
      if v >= 0 && v < n { return v }
      if let d = column.defaultValue { return d }
      throw PlanFailure(row: row, message: "value \(v) is outside [0, \(n)) and the column has no default_value")
    case .vocabulary:
      return vocabulary!.id(v)
    default:
      let n = column.hashBucketSize ?? 0
      if n == 0 {
        return TFHash.withDecimal(v) { Int64(FarmHash.fingerprint64($0) % UInt64(Int64.max)) }
      }
      return TFHash.hashBucket(int64: v, buckets: n)
    }
  }

  /// The id an int64 value of an identity column gives, by the general path's rules with the
  /// common case first: in [0, n) it is itself; -1 (missing) and a negative result (a pruned
  /// default) give nil; anything else goes through `id(int64:row:)` (the default, or an error).
  @inline(__always)
  func identityId(_ v: Int64, buckets n: Int64, row: Int) throws(PlanFailure) -> Int64? {
    if v >= 0 && v < n { return v }
    if v == -1 { return nil }
    let id = try id(int64: v, row: row)
    return id >= 0 ? id : nil
  }

  /// A bucket id for value j of a row; `value` nil means missing.
  @inline(__always)
  func bucketId(_ value: Double?, isInt: Bool, rawInt: Int64, dimension j: Int) -> Int64 {
    let b = bucketizer!
    let width = b.boundaries.count + 1 + (missingBucket ? 1 : 0)
    guard let value else { return Int64(b.boundaries.count + 1 + j * width) }
    let bucket = isInt ? b.bucket(rawInt) : b.bucket(Float(value))
    return Int64(bucket + j * width)
  }

  /// All ids of row r (for the column's own output and for crosses), appended to `out`.
  func rowIds(_ parsed: ParsedBatch, _ r: Int, _ out: inout [Int64]) throws(PlanFailure) {
    let col = parsed.column(source)
    let range = col.row(r)
    switch column.type {
    case .bucketized:
      if range.isEmpty {
        if let d = column.default {
          for j in 0..<shape { out.append(bucketId(d, isInt: false, rawInt: 0, dimension: j)) }
        } else {
          for j in 0..<shape { out.append(bucketId(nil, isInt: false, rawInt: 0, dimension: j)) }
        }
        return
      }
      if range.count != shape { throw PlanFailure(row: r, message: "has \(range.count) values but the column's shape is \(shape)") }
      for (j, i) in range.enumerated() {
        if col.kind == .int64 {
          out.append(bucketId(Double(col.int64Values[i]), isInt: true, rawInt: col.int64Values[i], dimension: j))
        } else {
          out.append(bucketId(Double(col.floatValues[i]), isInt: false, rawInt: 0, dimension: j))
        }
      }
    default:
      if col.kind == .bytes {
        for i in range where col.bytes(i).count > 0 { out.append(id(bytes: col.bytes(i))) }
      } else {
        for i in range where col.int64Values[i] != -1 { out.append(try id(int64: col.int64Values[i], row: r)) }
      }
    }
  }

  // MARK: - Running over a batch

  func run(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws(PlanFailure) {
    switch column.type {
    case .numeric: try runNumeric(parsed, batch)
    case .crossed: try runCrossed(parsed, batch)
    case .sequence: try runSequence(parsed, batch)
    default: try runCategorical(parsed, batch)
    }
  }

  @inline(__always)
  func normalize(_ x: Double) -> Float {
    switch normalizer {
    case .none: return Float(x)
    case .zscore, .minmax:
      let y = (x - shift) * scale
      return Float(normalizer == .minmax ? min(max(y, 0), 1) : y)
    case .log1p: return Float(Foundation.log1p(max(x, 0)))
    case .criteo:
      if x > 2 { let l = Foundation.log(x); return Float(l * l) }
      return Float(x)
    }
  }

  private func runNumeric(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws(PlanFailure) {
    let col = parsed.column(source)
    let width = batch.layout.denseWidth
    let out = batch.denseStore.base
    let fallback = normalize(column.default ?? 0)
    let isInt = col.kind == .int64
    let rows = col.rowOffsets, ints = col.int64Values, floats = col.floatValues
    for r in 0..<parsed.count {
      let lo = rows[r], hi = rows[r + 1]
      let base = out + r * width + denseOffset
      if hi - lo == shape {
        if isInt {
          for j in 0..<shape { base[j] = normalize(Double(ints[lo + j])) }
        } else {
          for j in 0..<shape { base[j] = normalize(Double(floats[lo + j])) }
        }
      } else if hi == lo && (col.present[r] == 0 || column.default != nil) {
        for j in 0..<shape { base[j] = fallback }  // missing: the default
      } else if hi == lo {
        throw PlanFailure(row: r, message: "has an empty list (present but no value) and no default")
      } else {
        throw PlanFailure(row: r, message: "has \(hi - lo) values but the column's shape is \(shape)")
      }
    }
  }

  private func runCategorical(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws(PlanFailure) {
    let col = parsed.column(source)
    let weights = weightSource.map { parsed.column($0) }
    if denseOffset >= 0 { return try runIndicator(parsed, batch, col, weights) }
    var outIds = batch.sparseIds[slot]
    var outWeights = batch.sparseWeights[slot]
    var offsets = batch.sparseOffsets[slot]
    defer {
      // The buffers are plain structs over manual memory: write the grown ones back.
      batch.sparseIds[slot] = outIds
      batch.sparseWeights[slot] = outWeights
      batch.sparseOffsets[slot] = offsets
    }
    if column.type == .bucketized, shape == 1, weights == nil, let b = bucketizer {
      // One value per record (Criteo's counts): its bucket, or the default's, or the missing
      // bucket, computed exactly as `rowIds` does without its per-row scratch list.
      let absent = column.default.map { Int64(b.bucket(Float($0))) } ?? Int64(b.boundaries.count + 1)
      let rows = col.rowOffsets
      var out = ReservedIds(&outIds, &offsets, values: parsed.count, rows: parsed.count)
      defer { out.commit(&outIds, &offsets) }
      for r in 0..<parsed.count {
        let lo = rows[r], hi = rows[r + 1]
        if lo == hi {
          out.append(absent)
        } else if hi - lo != 1 {
          throw PlanFailure(row: r, message: "has \(hi - lo) values but the column's shape is 1")
        } else {
          out.append(Int64(col.kind == .int64 ? b.bucket(col.int64Values[lo]) : b.bucket(col.floatValues[lo])))
        }
        out.closeRow()
      }
      return
    }
    let direct = column.type == .hashBucket || column.type == .vocabulary || column.type == .identity
    if direct, weights == nil, col.kind == .bytes, let vocabulary, case .strings(let table) = vocabulary.keys {
      // A string vocabulary: hash every value of the batch first and prefetch its slot, so the
      // table's cache misses overlap instead of stalling one lookup at a time.
      // Raw pointers and `while` loops, with room for one id per value reserved up front: through
      // the buffers' append and `col.bytes(i)` the loops cost more than the lookups.
      let rows = col.rowOffsets.baseAddress!, starts = col.bytesOffsets.baseAddress!
      // Without bytes (every value empty) any address does: no value is read through it.
      let data = col.bytesData.baseAddress.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(starts)
      let first = rows[0], values = rows[parsed.count] &- first
      var out = ReservedIds(&outIds, &offsets, values: values, rows: parsed.count)
      defer { out.commit(&outIds, &offsets) }
      @inline(__always)
      func value(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: data + starts[i], count: starts[i &+ 1] &- starts[i])
      }
      withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(values, 1)) { buffer in
        let hashes = buffer.baseAddress! - first
        var i = first
        while i < first &+ values {
          let b = value(i)
          if b.count > 0 {
            let h = ByteKeyTable.keyHash(b)
            hashes[i] = h
            table.prefetch(hash: h)
          }
          i &+= 1
        }
        i = first
        var r = 0
        while r < parsed.count {
          let hi = rows[r &+ 1]
          while i < hi {
            let b = value(i)
            // TensorFlow drops '' as missing; a negative id (default -1) is pruned.
            if b.count > 0 {
              let id = vocabulary.id(b, hash: hashes[i], in: table)
              if id >= 0 { out.append(id) }
            }
            i &+= 1
          }
          out.closeRow()
          r &+= 1
        }
      }
      return
    }
    if column.type == .identity, weights == nil, col.kind == .int64 {
      // Ids that are already ids (shards written by `convert --transform`): one pass over the
      // values with `identityId`, the general loop's rules with the in-range case first, written
      // through `ReservedIds` (through the buffers' append it cost 37 instructions per id).
      let n = column.numBuckets ?? 0
      let values = col.int64Values.baseAddress, rows = col.rowOffsets.baseAddress!
      var out = ReservedIds(&outIds, &offsets, values: rows[parsed.count] - rows[0], rows: parsed.count)
      defer { out.commit(&outIds, &offsets) }
      // `while` loops, and an in-range id written before anything else is tested: a range's
      // checks and the optional result cost more than the id.
      var i = rows[0], r = 0
      let count = parsed.count
      while r < count {
        let hi = rows[r &+ 1]
        if hi == i &+ 1, case let v = values.unsafelyUnwrapped[i], v >= 0 && v < n {
          // One in-range id (every row, on transformed shards).
          out.append(v)
          i = hi
        }
        while i < hi {
          if let id = try identityId(values.unsafelyUnwrapped[i], buckets: n, row: r) { out.append(id) }
          i &+= 1
        }
        out.closeRow()
        r &+= 1
      }
      return
    }
    var scratch: [Int64] = []
    for r in 0..<parsed.count {
      let range = col.row(r)
      var w = 0..<0
      if let weights {
        w = weights.row(r)
        if w.count != range.count {
          throw PlanFailure(row: r, message: "has \(range.count) ids but its weight feature '\(column.weightFeature!)' has \(w.count) values")
        }
      }
      if direct {
        // TensorFlow's feature columns drop '' and -1 (the dense "ignore values") as missing;
        // negative ids (a vocabulary's default -1) are pruned, as TF's lookups do.
        for (k, i) in range.enumerated() {
          let id: Int64
          if col.kind == .bytes {
            let b = col.bytes(i)
            if b.count == 0 { continue }
            id = self.id(bytes: b)
          } else {
            let v = col.int64Values[i]
            if v == -1 { continue }
            id = try self.id(int64: v, row: r)
          }
          if id < 0 { continue }
          outIds.append(id)
          if let weights { outWeights.append(weights.floatValues[w.lowerBound + k]) }
        }
      } else {
        scratch.removeAll(keepingCapacity: true)
        try rowIds(parsed, r, &scratch)
        for id in scratch where id >= 0 { outIds.append(id) }
      }
      offsets.append(outIds.count)
    }
  }

  private func runIndicator(_ parsed: ParsedBatch, _ batch: FeatureBatch, _ col: ParsedColumn, _ weights: ParsedColumn?) throws(PlanFailure) {
    var ids: [Int64] = []
    for r in 0..<parsed.count {
      ids.removeAll(keepingCapacity: true)
      try rowIds(parsed, r, &ids)
      let w = weights?.row(r) ?? 0..<0
      if weights != nil && w.count != ids.count {
        throw PlanFailure(row: r, message: "has \(ids.count) ids but its weight feature '\(column.weightFeature!)' has \(w.count) values")
      }
      let base = batch.denseStore.base + r * batch.layout.denseWidth + denseOffset
      for (k, id) in ids.enumerated() where id >= 0 {
        base[Int(id)] += weights == nil ? 1 : weights!.floatValues[w.lowerBound + k]
      }
    }
  }

  private func runSequence(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws(PlanFailure) {
    let col = parsed.column(source)
    let maxLength = batch.layout.sequences[slot].maxLength
    let out = batch.sequenceIds[slot].base
    let lengths = batch.sequenceLengths[slot].base
    var ids: [Int64] = []
    for r in 0..<parsed.count {
      ids.removeAll(keepingCapacity: true)
      let range = col.row(r)
      if col.kind == .bytes { for i in range { ids.append(id(bytes: col.bytes(i))) } }
      else { for i in range { ids.append(try id(int64: col.int64Values[i], row: r)) } }
      ids.removeAll { $0 < 0 }
      // Histories list the most recent item last; truncation keeps the most recent.
      let kept = ids.suffix(maxLength)
      for (k, id) in kept.enumerated() { out[r * maxLength + k] = id }
      lengths[r] = Int32(kept.count)
    }
  }

  private func runCrossed(_ parsed: ParsedBatch, _ batch: FeatureBatch) throws(PlanFailure) {
    let buckets = column.hashBucketSize ?? 0
    let hashKey = column.hashKey.flatMap { $0 == 0 ? nil : $0 } ?? TFHash.defaultCrossHashKey
    let indicator = denseOffset >= 0
    let parts = crossParts.count
    // Resolved once per batch: what each part reads.
    var rawColumns: [ParsedColumn?] = []
    var subPlans: [ColumnPlan?] = []
    for part in crossParts {
      switch part {
      case .rawBytes(let s), .rawInt64(let s): rawColumns.append(parsed.column(s)); subPlans.append(nil)
      case .ids(let sub): rawColumns.append(nil); subPlans.append(sub)
      }
    }
    // Per part, the row's values: fingerprints for strings, raw int64 values or ids otherwise.
    var partValues: [[UInt64]] = Array(repeating: [], count: parts)
    var idScratch: [Int64] = []
    var counters = [Int](repeating: 0, count: parts)
    // An indicator writes the dense matrix; only an id column has sparse buffers to fill.
    var outIds = indicator ? GrowableBuffer<Int64>(capacity: 4) : batch.sparseIds[slot]
    var offsets = indicator ? GrowableBuffer<Int>(capacity: 4) : batch.sparseOffsets[slot]
    defer {
      if indicator {
        outIds.deallocate()
        offsets.deallocate()
      } else {
        batch.sparseIds[slot] = outIds
        batch.sparseOffsets[slot] = offsets
      }
    }
    for r in 0..<parsed.count {
      var empty = false
      for p in 0..<parts {
        partValues[p].removeAll(keepingCapacity: true)
        if let col = rawColumns[p] {
          // A raw key is not a categorical column: TensorFlow hashes its '' rather than dropping it.
          if col.kind == .bytes {
            for i in col.row(r) { partValues[p].append(FarmHash.fingerprint64(col.bytes(i))) }
          } else {
            for i in col.row(r) { partValues[p].append(UInt64(bitPattern: col.int64Values[i])) }
          }
        } else {
          idScratch.removeAll(keepingCapacity: true)
          try subPlans[p]!.rowIds(parsed, r, &idScratch)
          for id in idScratch where id >= 0 { partValues[p].append(UInt64(bitPattern: id)) }
        }
        if partValues[p].isEmpty { empty = true }
      }
      if !empty {
        // The Cartesian product in TensorFlow's order: the last input varies fastest.
        for p in 0..<parts { counters[p] = 0 }
        outer: while true {
          var h = hashKey
          for p in 0..<parts { h = TFHash.fingerprintCat64(h, partValues[p][counters[p]]) }
          let id = TFHash.crossFinish(h, buckets: buckets)
          if indicator {
            batch.denseStore.base[r * batch.layout.denseWidth + denseOffset + Int(id)] += 1
          } else {
            outIds.append(id)
          }
          var p = parts - 1
          while p >= 0 {
            counters[p] += 1
            if counters[p] < partValues[p].count { continue outer }
            counters[p] = 0
            p -= 1
          }
          break
        }
      }
      if !indicator { offsets.append(outIds.count) }
    }
  }
}

/// A column's ids and row offsets written through raw pointers into room reserved up front (at
/// most one id per value), so the per-value loops keep their counts in registers: through the
/// buffers' `append` they cost more than the ids. `commit` writes the counts back.
struct ReservedIds {
  let ids: UnsafeMutablePointer<Int64>
  let offsets: UnsafeMutablePointer<Int>
  var idCount: Int
  var offsetCount: Int

  init(_ outIds: inout GrowableBuffer<Int64>, _ outOffsets: inout GrowableBuffer<Int>, values: Int, rows: Int) {
    outIds.reserve(values)
    outOffsets.reserve(rows)
    ids = outIds.base
    offsets = outOffsets.base
    idCount = outIds.count
    offsetCount = outOffsets.count
  }

  @inline(__always)
  mutating func append(_ id: Int64) {
    ids[idCount] = id
    idCount &+= 1
  }

  /// Ends the current row at the ids written so far.
  @inline(__always)
  mutating func closeRow() {
    offsets[offsetCount] = idCount
    offsetCount &+= 1
  }

  func commit(_ outIds: inout GrowableBuffer<Int64>, _ outOffsets: inout GrowableBuffer<Int>) {
    outIds.count = idCount
    outOffsets.count = offsetCount
  }
}
