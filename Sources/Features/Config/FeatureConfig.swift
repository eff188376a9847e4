import Records

/// What a column computes, in `tf.feature_column`'s words.
public enum ColumnType: String, Codable, Sendable, CaseIterable {
  /// `numeric_column`: dense float values, optionally normalised.
  case numeric
  /// `bucketized_column`: bucket ids from boundaries (given, or fitted as quantiles).
  case bucketized
  /// `categorical_column_with_hash_bucket`: FarmHash Fingerprint64 % buckets.
  case hashBucket = "hash_bucket"
  /// `categorical_column_with_vocabulary_list/_file` (or a vocabulary fitted by the analyzer).
  case vocabulary
  /// `categorical_column_with_identity`: the integer value is the id.
  case identity
  /// `crossed_column`: FingerprintCat64 over the keys' values (or ids), % buckets.
  case crossed
  /// `sequence_categorical_column_with_*`: an ordered behaviour history, padded, most recent kept.
  case sequence
}

/// The type of a raw feature in the records (which `tf.train.Feature` list holds it).
public enum SourceType: String, Codable, Sendable {
  case string, int64, float

  public var valueKind: ValueKind {
    switch self {
    case .string: return .bytes
    case .int64: return .int64
    case .float: return .float
    }
  }
}

/// How a numeric column is normalised, with statistics fitted by the analyzer where needed.
public enum Normalizer: String, Codable, Sendable {
  case none
  /// (v − mean) / std.
  case zscore
  /// log(1 + max(v, 0)).
  case log1p
  /// (v − min) / (max − min), clipped to [0, 1].
  case minmax
  /// The Criteo competition transform: log(v)² for v > 2, v otherwise.
  case criteo
}

/// How the model consumes a categorical column's ids.
public enum ColumnOutput: String, Codable, Sendable {
  /// Sparse ids (CSR per batch), looked up in an embedding table or a linear weight table.
  case ids
  /// `indicator_column`: a multi-hot count (or summed weights) vector in the dense matrix.
  case indicator
}

/// `embedding_column` / `shared_embeddings` settings for a categorical column.
public struct EmbeddingConfig: Codable, Sendable, Equatable {
  public var dimension: Int
  public var combiner: EmbeddingCombiner?
  /// Columns naming the same `shared` table share one embedding (they must have equal bucket counts).
  public var shared: String?
  public var maxNorm: Float?

  enum CodingKeys: String, CodingKey {
    case dimension, combiner, shared
    case maxNorm = "max_norm"
  }

  public init(dimension: Int, combiner: EmbeddingCombiner? = nil, shared: String? = nil, maxNorm: Float? = nil) {
    self.dimension = dimension
    self.combiner = combiner
    self.shared = shared
    self.maxNorm = maxNorm
  }
}

/// Numeric statistics the analyzer fits (and normalizers read).
public struct NumericStatistics: Codable, Sendable, Equatable {
  public var count: Int
  public var missing: Int
  public var mean: Double
  public var std: Double
  public var min: Double
  public var max: Double

  public init(count: Int, missing: Int, mean: Double, std: Double, min: Double, max: Double) {
    self.count = count
    self.missing = missing
    self.mean = mean
    self.std = std
    self.min = min
    self.max = max
  }
}

/// One feature column. A flat record of optional settings keeps the YAML short; which settings
/// a column type accepts and requires is checked by `FeatureConfig.validate()`.
public struct ColumnConfig: Codable, Sendable, Equatable {
  public var name: String
  public var type: ColumnType
  /// The raw feature key in the records (default: `name`).
  public var source: String?
  /// The raw feature's type in the records.
  public var dtype: SourceType?

  // numeric / bucketized
  public var shape: Int?
  public var `default`: Double?
  public var normalizer: Normalizer?
  public var boundaries: [Float]?
  /// Fit this many buckets' boundaries (quantiles) with the analyzer.
  public var quantiles: Int?

  // hash_bucket / crossed / sequence hashing
  /// 0 keeps the whole fingerprint (% Int64.max, as cross_hashed does with 0 buckets): no collisions.
  public var hashBucketSize: Int64?

  // vocabulary
  public var vocabulary: [String]?
  public var vocabularyFile: String?
  public var vocabularySize: Int?
  public var topK: Int?
  public var minCount: Int?
  public var numOOVBuckets: Int?
  public var defaultValue: Int64?
  /// Counts of the fitted vocabulary's entries (written by the analyzer, for inspection).
  public var frequencies: [Int]?

  // identity
  public var numBuckets: Int64?

  // crossed
  public var keys: [String]?
  public var hashKey: UInt64?

  // weighted categorical
  public var weightFeature: String?

  // sequence
  public var maxLength: Int?
  /// How a sequence's ids are computed: hash_bucket, vocabulary or identity.
  public var idType: ColumnType?

  // model consumption
  public var output: ColumnOutput?
  public var embedding: EmbeddingConfig?

  // fitted
  public var statistics: NumericStatistics?

  enum CodingKeys: String, CodingKey, CaseIterable {
    case name, type, source, dtype, shape, `default`, normalizer, boundaries, quantiles
    case hashBucketSize = "hash_bucket_size"
    case vocabulary
    case vocabularyFile = "vocabulary_file"
    case vocabularySize = "vocabulary_size"
    case topK = "top_k"
    case minCount = "min_count"
    case numOOVBuckets = "num_oov_buckets"
    case defaultValue = "default_value"
    case frequencies
    case numBuckets = "num_buckets"
    case keys
    case hashKey = "hash_key"
    case weightFeature = "weight_feature"
    case maxLength = "max_length"
    case idType = "id_type"
    case output, embedding, statistics
  }

  public init(name: String, type: ColumnType) {
    self.name = name
    self.type = type
  }

  /// The raw feature this column reads.
  public var sourceName: String { source ?? name }
}

/// A raw feature named by the config (label, weight, group): `name` or `{name: ..., dtype: ...}`.
public struct FeatureRef: Codable, Sendable, Equatable {
  public var name: String
  public var dtype: SourceType?

  public init(name: String, dtype: SourceType? = nil) {
    self.name = name
    self.dtype = dtype
  }

  enum CodingKeys: String, CodingKey { case name, dtype }

  public init(from decoder: Decoder) throws {
    if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
      self.name = name
      dtype = nil
      return
    }
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decode(String.self, forKey: .name)
    dtype = try c.decodeIfPresent(SourceType.self, forKey: .dtype)
  }
}

/// A feature config: the single description of the inputs that drives analysis, training,
/// evaluation, export and serving, so the transformation cannot drift between them.
public struct FeatureConfig: Codable, Sendable, Equatable {
  /// The label feature (dtype int64 by default; float labels are allowed).
  public var label: FeatureRef
  /// Float feature holding each example's weight (default 1).
  public var weight: FeatureRef?
  /// Feature whose value groups examples for per-group metrics (GAUC), e.g. a user id
  /// (dtype string by default).
  public var group: FeatureRef?
  public var columns: [ColumnConfig]
  /// Set by the analyzer: every statistic, vocabulary and boundary is inline, so the config is
  /// self-contained for serving.
  public var fitted: Bool?
  /// Identity columns whose ids all records carry in one packed list (shards written by
  /// `ctrkit convert --transform --pack-ids`) instead of one feature per column.
  public var packedIds: PackedIds?

  enum CodingKeys: String, CodingKey {
    case label, weight, group, columns, fitted
    case packedIds = "packed_ids"
  }

  public init(label: FeatureRef, weight: FeatureRef? = nil, group: FeatureRef? = nil, columns: [ColumnConfig]) {
    self.label = label
    self.weight = weight
    self.group = group
    self.columns = columns
  }

  public func column(named name: String) -> ColumnConfig? { columns.first { $0.name == name } }
}

/// The packed layout of identity ids: in every record, `values` (an int64 list) holds the ids of
/// `columns` back to back, and `lengths` (an int64 list, one count per column) says how many
/// belong to each, in order. One entry per record instead of one per column makes a record a
/// fraction of the bytes to read and parse; TensorFlow reads it as
/// `tf.io.RaggedFeature(tf.int64, value_key=values, partitions=[RaggedFeature.RowLengths(lengths)])`.
public struct PackedIds: Codable, Sendable, Equatable {
  /// The int64 feature holding every packed column's ids.
  public var values: String
  /// The int64 feature holding each column's id count, one per entry of `columns`.
  public var lengths: String
  /// The identity columns whose ids are packed, in packing order.
  public var columns: [String]

  public init(values: String, lengths: String, columns: [String]) {
    self.values = values
    self.lengths = lengths
    self.columns = columns
  }
}
