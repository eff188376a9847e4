import Yams
import Records

extension ColumnType {
  /// Whether the column produces categorical ids (and so may feed embeddings or crosses).
  public var isCategorical: Bool { self != .numeric }
}

/// Which settings each column type accepts; anything else set on a column is an error, so a
/// setting that would be silently ignored is reported instead.
private let allowedSettings: [ColumnType: Set<String>] = {
  let common: Set<String> = ["name", "type", "source", "dtype"]
  let consumption: Set<String> = ["output", "embedding", "weight_feature"]
  return [
    .numeric: common.union(["shape", "default", "normalizer", "statistics"]),
    .bucketized: common.union(["shape", "default", "boundaries", "quantiles", "output", "embedding", "statistics"]),
    .hashBucket: common.union(consumption).union(["hash_bucket_size"]),
    .vocabulary: common.union(consumption).union(["vocabulary", "vocabulary_file", "vocabulary_size", "top_k",
                                                  "min_count", "num_oov_buckets", "default_value", "frequencies"]),
    .identity: common.union(consumption).union(["num_buckets", "default_value"]),
    .crossed: ["name", "type", "keys", "hash_bucket_size", "hash_key", "output", "embedding"],
    .sequence: common.union(["id_type", "max_length", "hash_bucket_size", "vocabulary", "vocabulary_file",
                             "vocabulary_size", "top_k", "min_count", "num_oov_buckets", "default_value",
                             "frequencies", "num_buckets", "embedding"]),
  ]
}()

extension ColumnConfig {
  /// The source dtype with TensorFlow's defaults filled in.
  public var resolvedDType: SourceType {
    if let dtype { return dtype }
    switch type {
    case .numeric, .bucketized: return .float
    case .identity: return .int64
    case .sequence: return idType == .identity ? .int64 : .string
    default: return .string
    }
  }

  /// The id type of a sequence column (hash_bucket unless set).
  public var sequenceIdType: ColumnType { idType ?? .hashBucket }

  /// How many distinct ids the column can emit, when that is known before seeing data.
  public var bucketCount: Int64? {
    switch type {
    case .numeric: return nil
    case .bucketized:
      guard let b = boundaries else { return nil }
      // One extra id for a missing value when no default is given (see Transformer).
      return Int64(b.count + 1 + (`default` == nil ? 1 : 0)) * Int64(shape ?? 1)
    case .hashBucket, .crossed: return hashBucketSize.flatMap { $0 > 0 ? $0 : nil }
    case .identity: return numBuckets
    case .vocabulary:
      guard let v = vocabulary else { return nil }
      return Int64(v.count + (numOOVBuckets ?? 0))
    case .sequence:
      switch sequenceIdType {
      case .identity: return numBuckets
      case .vocabulary: return vocabulary.map { Int64($0.count + (numOOVBuckets ?? 0)) }
      default: return hashBucketSize.flatMap { $0 > 0 ? $0 : nil }
      }
    }
  }
}

extension FeatureConfig {
  /// Loads and validates a feature config from a YAML or JSON file.
  public static func load(path: String) throws -> FeatureConfig {
    let doc = try ConfigDocument(path: path)
    return try load(doc, at: [])
  }

  /// Decodes and validates the feature config found at `path` inside a document (an experiment
  /// config nests it under `features`).
  public static func load(_ doc: ConfigDocument, at base: [ConfigPath]) throws -> FeatureConfig {
    try checkKeys(doc, base)
    // Fitted configs inline vocabularies of up to millions of entries; Yams' Codable decoding
    // copies nodes per element, so those lists are read from the text (`FlowLists`) or straight
    // from the node tree, and the rest (small) goes through Codable.
    let (slim, lists) = try extractLargeLists(doc, base)
    var config: FeatureConfig
    do {
      config = try YAMLDecoder().decode(FeatureConfig.self, from: slim)
    } catch is DecodingError {
      config = try doc.decode(FeatureConfig.self, at: base)  // re-decode the original for a located error
    }
    for (i, l) in lists {
      if let v = l.vocabulary { config.columns[i].vocabulary = v }
      if let f = l.frequencies { config.columns[i].frequencies = f }
      if let b = l.boundaries { config.columns[i].boundaries = b }
    }
    try config.validate(doc, base)
    return config
  }

  struct LargeLists {
    var vocabulary: [String]?
    var frequencies: [Int]?
    var boundaries: [Float]?
  }

  /// The feature-config node without the columns' vocabulary/frequencies/boundaries lists, and
  /// those lists decoded directly (errors located as usual).
  static func extractLargeLists(_ doc: ConfigDocument, _ base: [ConfigPath]) throws -> (Node, [Int: LargeLists]) {
    guard let root = doc.node(at: base), var mapping = root.mapping,
          let columns = mapping["columns"]?.sequence else { return (doc.node(at: base) ?? .mapping(.init([])), [:]) }
    var lists: [Int: LargeLists] = [:]
    var slimColumns: [Node] = []
    for (i, column) in columns.enumerated() {
      guard let cm = column.mapping else { slimColumns.append(column); continue }
      var l = LargeLists()
      var kept: [(Node, Node)] = []
      for (k, v) in cm {
        let path = base + [.key("columns"), .index(i), .key(k.string ?? "")]
        switch k.string {
        case "vocabulary":
          if case .strings(let values)? = doc.listRead(v) {
            l.vocabulary = values
            continue
          }
          guard let seq = v.sequence else { throw doc.error(path, "expected a list of strings") }
          l.vocabulary = try seq.enumerated().map { j, n in
            guard case .scalar(let s) = n else { throw doc.error(path + [.index(j)], "expected a string") }
            return s.string
          }
        case "frequencies":
          if case .integers(let values)? = doc.listRead(v) {
            l.frequencies = values
            continue
          }
          guard let seq = v.sequence else { throw doc.error(path, "expected a list of integers") }
          l.frequencies = try seq.enumerated().map { j, n in
            guard let x = n.scalar.flatMap({ Int($0.string) }) else { throw doc.error(path + [.index(j)], "expected an integer") }
            return x
          }
        case "boundaries":
          if case .numbers(let values)? = doc.listRead(v) {
            l.boundaries = values
            continue
          }
          guard let seq = v.sequence else { throw doc.error(path, "expected a list of numbers") }
          l.boundaries = try seq.enumerated().map { j, n in
            guard let x = n.scalar.flatMap({ Float($0.string) }) else { throw doc.error(path + [.index(j)], "expected a number") }
            return x
          }
        default:
          kept.append((k, v))
        }
      }
      if l.vocabulary != nil || l.frequencies != nil || l.boundaries != nil { lists[i] = l }
      slimColumns.append(.mapping(Node.Mapping(kept, cm.tag, cm.style, cm.mark)))
    }
    mapping["columns"] = .sequence(Node.Sequence(slimColumns, columns.tag, columns.style, columns.mark))
    return (.mapping(mapping), lists)
  }

  static func checkKeys(_ doc: ConfigDocument, _ base: [ConfigPath]) throws {
    guard doc.node(at: base)?.mapping != nil else { throw doc.error(base, "expected a mapping with 'label' and 'columns'") }
    try doc.checkKeys(at: base, allowed: ["label", "weight", "group", "columns", "fitted", "packed_ids"])
    for ref in ["label", "weight", "group"] where doc.node(at: base + [.key(ref)])?.mapping != nil {
      try doc.checkKeys(at: base + [.key(ref)], allowed: ["name", "dtype"])
    }
    if doc.node(at: base + [.key("packed_ids")])?.mapping != nil {
      try doc.checkKeys(at: base + [.key("packed_ids")], allowed: ["values", "lengths", "columns"])
    }
    guard let columns = doc.node(at: base + [.key("columns")])?.sequence else { return }
    for i in 0..<columns.count {
      let path = base + [.key("columns"), .index(i)]
      let typeName = doc.node(at: path + [.key("type")])?.string
      let allowed = typeName.flatMap(ColumnType.init(rawValue:)).flatMap { allowedSettings[$0] }
        ?? Set(ColumnConfig.CodingKeys.allCases.map(\.stringValue))
      if let mapping = doc.node(at: path)?.mapping {
        for key in mapping.keys {
          guard let k = key.string, !allowed.contains(k) else { continue }
          if ColumnConfig.CodingKeys(stringValue: k) != nil, let typeName {
            throw doc.error(path + [.key(k)], "'\(k)' does not apply to a \(typeName) column")
          }
        }
      }
      try doc.checkKeys(at: path, allowed: allowed.sorted())
      if doc.node(at: path + [.key("embedding")])?.mapping != nil {
        try doc.checkKeys(at: path + [.key("embedding")], allowed: ["dimension", "combiner", "shared", "max_norm"])
      }
      if doc.node(at: path + [.key("statistics")])?.mapping != nil {
        try doc.checkKeys(at: path + [.key("statistics")], allowed: ["count", "missing", "mean", "std", "min", "max"])
      }
    }
  }

  /// Semantic checks; each error names the column's key and line.
  func validate(_ doc: ConfigDocument, _ base: [ConfigPath]) throws {
    func fail(_ i: Int?, _ key: String?, _ message: String) -> ConfigError {
      var p = base
      if let i { p += [.key("columns"), .index(i)] }
      if let key { p.append(.key(key)) }
      return doc.error(p, message)
    }
    if columns.isEmpty { throw doc.error(base + [.key("columns")], "at least one column is required") }
    var names: [String: Int] = [:]
    var sourceTypes: [String: (SourceType, Int)] = [:]
    if label.dtype == .string { throw doc.error(base + [.key("label")], "the label must be int64 or float") }
    if weight?.dtype == .string || weight?.dtype == .int64 {
      throw doc.error(base + [.key("weight")], "the weight must be a float feature")
    }
    for (i, c) in columns.enumerated() {
      if c.name.isEmpty { throw fail(i, "name", "a column name cannot be empty") }
      if let other = names[c.name] { throw fail(i, "name", "'\(c.name)' is also the name of columns[\(other)]") }
      names[c.name] = i
      if c.type != .crossed {
        let dtype = c.resolvedDType
        if let (t, j) = sourceTypes[c.sourceName], t != dtype {
          throw fail(i, "dtype", "feature '\(c.sourceName)' is \(dtype.rawValue) here but \(t.rawValue) in columns[\(j)]")
        }
        sourceTypes[c.sourceName] = (dtype, i)
      }
      try validateColumn(c, i, fail)
    }
    // Crossed keys: a bucketized/identity/vocabulary column contributes its ids; anything else
    // names a raw feature, as a string key does in tf.feature_column.crossed_column.
    for (i, c) in columns.enumerated() where c.type == .crossed {
      for key in c.keys ?? [] {
        if let j = names[key], columns[j].type == .crossed {
          throw fail(i, "keys", "'\(key)' is a crossed column; list its keys instead (crosses are flattened)")
        }
        if let j = names[key], columns[j].type == .sequence {
          throw fail(i, "keys", "'\(key)' is a sequence column, which cannot be crossed")
        }
        if names[key] == nil && sourceTypes[key] == nil {
          throw fail(i, "keys", "'\(key)' is neither a column nor a feature read by one (declare it, e.g. as a hash_bucket column)")
        }
      }
    }
    if let packed = packedIds { try validatePacked(packed, names, doc, base) }
    // Shared embeddings: one table, so one dimension.
    var shared: [String: (Int, Int)] = [:]
    for (i, c) in columns.enumerated() {
      guard let e = c.embedding, let table = e.shared else { continue }
      if let (dim, j) = shared[table], dim != e.dimension {
        throw fail(i, "embedding", "shared table '\(table)' has dimension \(dim) in columns[\(j)] but \(e.dimension) here")
      }
      shared[table] = (e.dimension, i)
    }
  }

  /// Packed ids feed plain identity columns only: the column's own feature is not read, and
  /// each column is packed once.
  private func validatePacked(_ packed: PackedIds, _ names: [String: Int], _ doc: ConfigDocument, _ base: [ConfigPath]) throws {
    let path = base + [.key("packed_ids")]
    if packed.columns.isEmpty { throw doc.error(path + [.key("columns")], "at least one column is required") }
    if packed.values == packed.lengths {
      throw doc.error(path + [.key("lengths")], "the lengths need their own feature, not '\(packed.values)' again")
    }
    let raw = [label.name, weight?.name, group?.name].compactMap { $0 }
    for (key, feature) in [("values", packed.values), ("lengths", packed.lengths)] {
      if raw.contains(feature) || columns.contains(where: { $0.type != .crossed && $0.sourceName == feature && !packed.columns.contains($0.name) }) {
        throw doc.error(path + [.key(key)], "feature '\(feature)' is already read by the config; packed ids need a feature of their own")
      }
    }
    var seen = Set<String>()
    for (k, name) in packed.columns.enumerated() {
      let at = path + [.key("columns"), .index(k)]
      guard let i = names[name] else { throw doc.error(at, "'\(name)' is not a column of this config") }
      let c = columns[i]
      guard c.type == .identity else {
        throw doc.error(at, "'\(name)' is a \(c.type.rawValue) column; only identity columns read packed ids")
      }
      if c.source != nil || c.dtype.map({ $0 != .int64 }) == true || c.weightFeature != nil {
        throw doc.error(at, "'\(name)' reads its ids from '\(packed.values)', so it cannot also set source, a non-int64 dtype or weight_feature")
      }
      if c.output == .indicator {
        throw doc.error(at, "'\(name)' is an indicator; packed ids feed id outputs (embeddings and linear weights) only")
      }
      if !seen.insert(name).inserted { throw doc.error(at, "'\(name)' is packed twice") }
    }
    for c in columns where c.type == .crossed {
      if let key = c.keys?.first(where: { seen.contains($0) }) {
        throw doc.error(path + [.key("columns")], "'\(key)' is a key of crossed column '\(c.name)', which reads features, not packed ids")
      }
    }
  }

  private func validateColumn(_ c: ColumnConfig, _ i: Int, _ fail: (Int?, String?, String) -> ConfigError) throws {
    func positive<T: BinaryInteger>(_ v: T?, _ key: String, required: Bool = false, zeroOK: Bool = false) throws {
      guard let v else {
        if required { throw fail(i, nil, "a \(c.type.rawValue) column needs '\(key)'") }
        return
      }
      if v < 0 || (v == 0 && !zeroOK) { throw fail(i, key, "must be \(zeroOK ? "zero or more" : "positive"), not \(v)") }
    }
    try positive(c.shape, "shape")
    if let e = c.embedding {
      try positive(e.dimension, "embedding")
      if let m = e.maxNorm, !(m > 0) { throw fail(i, "embedding", "max_norm must be positive") }
      if c.output == .indicator { throw fail(i, "embedding", "an indicator column has no embedding") }
    }
    if c.weightFeature != nil && (c.dtype == .float) { throw fail(i, "weight_feature", "weighted columns need categorical ids") }
    switch c.type {
    case .numeric:
      if c.resolvedDType == .string { throw fail(i, "dtype", "a numeric column reads int64 or float features") }
    case .bucketized:
      if c.resolvedDType == .string { throw fail(i, "dtype", "a bucketized column reads int64 or float features") }
      switch (c.boundaries, c.quantiles) {
      case (nil, nil): throw fail(i, nil, "a bucketized column needs 'boundaries' or 'quantiles' (fitted by ctrkit analyze)")
      case (let b?, _):
        if b.isEmpty { throw fail(i, "boundaries", "at least one boundary is required") }
        if zip(b, b.dropFirst()).contains(where: { !($0 < $1) }) {
          throw fail(i, "boundaries", "boundaries must be strictly increasing")
        }
        if b.contains(where: { !$0.isFinite }) { throw fail(i, "boundaries", "boundaries must be finite") }
      case (nil, let q?):
        if q < 2 { throw fail(i, "quantiles", "at least 2 buckets are needed, not \(q)") }
      }
    case .hashBucket:
      try positive(c.hashBucketSize, "hash_bucket_size", required: true, zeroOK: true)
      if c.resolvedDType == .float { throw fail(i, "dtype", "a hash_bucket column reads string or int64 features") }
    case .vocabulary, .sequence:
      if c.type == .sequence {
        try positive(c.maxLength, "max_length", required: true)
        if c.resolvedDType == .float { throw fail(i, "dtype", "a sequence column reads string or int64 ids") }
        if c.sequenceIdType == .identity {
          try positive(c.numBuckets, "num_buckets", required: true)
          return
        }
        if c.sequenceIdType == .hashBucket {
          try positive(c.hashBucketSize, "hash_bucket_size", required: true, zeroOK: true)
          return
        }
        if c.sequenceIdType != .vocabulary { throw fail(i, "id_type", "must be hash_bucket, vocabulary or identity") }
      }
      if c.resolvedDType == .float { throw fail(i, "dtype", "a vocabulary column reads string or int64 features") }
      let sources = [c.vocabulary != nil, c.vocabularyFile != nil, c.topK != nil || c.minCount != nil].filter { $0 }.count
      if sources == 0 { throw fail(i, nil, "a vocabulary needs 'vocabulary', 'vocabulary_file', or 'top_k'/'min_count' (fitted by ctrkit analyze)") }
      if c.vocabulary == nil && c.vocabularyFile != nil && (c.topK != nil || c.minCount != nil) {
        throw fail(i, "vocabulary_file", "give either a vocabulary file or top_k/min_count, not both")
      }
      if c.vocabulary != nil && c.vocabularyFile != nil { throw fail(i, "vocabulary_file", "give either 'vocabulary' or 'vocabulary_file', not both") }
      try positive(c.topK, "top_k")
      try positive(c.minCount, "min_count")
      try positive(c.numOOVBuckets, "num_oov_buckets", zeroOK: true)
      try positive(c.vocabularySize, "vocabulary_size")
      if (c.numOOVBuckets ?? 0) > 0 && c.defaultValue != nil && c.defaultValue != -1 {
        throw fail(i, "default_value", "default_value and num_oov_buckets are mutually exclusive (as in TensorFlow)")
      }
      if let v = c.vocabulary, Set(v).count != v.count {
        let dup = Dictionary(grouping: v, by: { $0 }).first { $0.value.count > 1 }!.key
        throw fail(i, "vocabulary", "'\(dup)' appears more than once")
      }
    case .identity:
      try positive(c.numBuckets, "num_buckets", required: true)
      if c.resolvedDType != .int64 { throw fail(i, "dtype", "an identity column reads int64 features") }
      if let d = c.defaultValue, let n = c.numBuckets, d < 0 || d >= n {
        throw fail(i, "default_value", "must be in [0, \(n)), not \(d)")
      }
    case .crossed:
      guard let keys = c.keys, keys.count >= 2 else { throw fail(i, "keys", "a crossed column needs at least two keys") }
      try positive(c.hashBucketSize, "hash_bucket_size", required: true, zeroOK: true)
      if Set(keys).count != keys.count { throw fail(i, "keys", "a key is listed twice") }
    }
    if c.output == .indicator {
      guard let n = c.bucketCount ?? (c.type == .vocabulary && c.topK != nil ? Int64(c.topK! + (c.numOOVBuckets ?? 0)) : nil) else {
        throw fail(i, "output", "an indicator needs a known number of buckets (hash_bucket_size 0 has none)")
      }
      if n > 100_000 { throw fail(i, "output", "an indicator of \(n) buckets is too wide for a dense input; use ids with an embedding") }
    }
  }
}
