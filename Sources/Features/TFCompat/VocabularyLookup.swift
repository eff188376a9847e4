import Foundation

/// categorical_column_with_vocabulary_list/_file semantics (vocab first, then OOV buckets).
///
/// A key in the vocabulary gets its 0-based position. A key outside it gets
/// `vocabularySize + to_hash_bucket_fast(key, numOOVBuckets)` when there are OOV buckets, and
/// `defaultValue` otherwise (TensorFlow's `IdTableWithHashBuckets` over a static hash table).
/// Keras `StringLookup`/`IntegerLookup` order ids the other way round (OOV first); this is not
/// that. Dropping dense `''` / `-1` cells is the caller's job (`DenseIgnoreValue`), done before
/// the lookup as TensorFlow does.
public struct VocabularyLookup: Sendable {
  /// The key type a vocabulary was built from; a lookup must use the same type, as TensorFlow's
  /// table does.
  public enum KeyKind: String, Sendable { case string, int64 }

  @usableFromInline enum Keys: Sendable {
    case strings(ByteKeyTable)
    case int64s([Int64: Int64])
  }

  @usableFromInline let keys: Keys
  /// `num_oov_buckets`: OOV ids are `vocabularySize ..< vocabularySize + numOOVBuckets`.
  public let numOOVBuckets: Int
  /// `default_value`, the id of an OOV key when there are no OOV buckets.
  public let defaultValue: Int64

  /// - Throws: `TFCompatError` if the vocabulary is empty or repeats a key, if `numOOVBuckets`
  ///   is negative, or if both OOV buckets and a non-default `defaultValue` are given (they are
  ///   mutually exclusive in TensorFlow).
  public init(strings: [String], numOOVBuckets: Int = 0, defaultValue: Int64 = -1) throws {
    try Self.validate(count: strings.count, numOOVBuckets: numOOVBuckets, defaultValue: defaultValue)
    switch ByteKeyTable.build(strings.map { Array($0.utf8) }) {
    case .success(let table):
      keys = .strings(table)
      vocabularySize = table.count
    case .failure(let d):
      throw TFCompatError(.invalidVocabulary,
        "vocabulary key \(strings[d.second].debugDescription) appears at positions \(d.first) and \(d.second)")
    }
    self.numOOVBuckets = numOOVBuckets
    self.defaultValue = defaultValue
  }

  /// An int64 vocabulary (`categorical_column_with_vocabulary_list` with int keys).
  public init(int64s: [Int64], numOOVBuckets: Int = 0, defaultValue: Int64 = -1) throws {
    try Self.validate(count: int64s.count, numOOVBuckets: numOOVBuckets, defaultValue: defaultValue)
    var table: [Int64: Int64] = [:]
    table.reserveCapacity(int64s.count)
    for (i, key) in int64s.enumerated() {
      if let first = table.updateValue(Int64(i), forKey: key) {
        throw TFCompatError(.invalidVocabulary, "vocabulary key \(key) appears at positions \(first) and \(i)")
      }
    }
    keys = .int64s(table)
    vocabularySize = int64s.count
    self.numOOVBuckets = numOOVBuckets
    self.defaultValue = defaultValue
  }

  private static func validate(count: Int, numOOVBuckets: Int, defaultValue: Int64) throws {
    guard count > 0 else { throw TFCompatError(.invalidVocabulary, "vocabulary must not be empty") }
    guard numOOVBuckets >= 0 else {
      throw TFCompatError(.invalidOOVOptions, "num_oov_buckets must be >= 0, got \(numOOVBuckets)")
    }
    if numOOVBuckets > 0 && defaultValue != -1 {
      throw TFCompatError(.invalidOOVOptions,
        "num_oov_buckets (\(numOOVBuckets)) and default_value (\(defaultValue)) are mutually exclusive")
    }
  }

  /// TF reads the first vocabulary_size lines.
  ///
  /// Lines end at `\n`, a trailing `\r` is removed (TensorFlow's `InputBuffer::ReadLine`), and a
  /// last line without a newline still counts. Nothing else is trimmed: a line of spaces is a key.
  /// - Parameter vocabularySize: how many lines to read; nil reads them all.
  /// - Throws: `TFCompatError.vocabularyFile` naming the path if the file cannot be read, a line
  ///   read is not UTF-8, `vocabularySize` is below 1, or the file has fewer lines than asked for.
  public static func readVocabularyFile(path: String, vocabularySize: Int? = nil) throws -> [String] {
    if let vocabularySize, vocabularySize < 1 {
      throw TFCompatError(.vocabularyFile, "\(path): vocabulary_size must be >= 1, got \(vocabularySize)")
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw TFCompatError(.vocabularyFile, "\(path): cannot read: \(error.localizedDescription)")
    }
    let limit = vocabularySize ?? Int.max
    let lines = try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [String] in
      var lines: [String] = []
      var start = 0
      while start < raw.count && lines.count < limit {
        let newline = raw[start...].firstIndex(of: UInt8(ascii: "\n"))
        var end = newline ?? raw.count
        if end > start && raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard let line = String(bytes: UnsafeRawBufferPointer(rebasing: raw[start..<end]), encoding: .utf8) else {
          throw TFCompatError(.vocabularyFile, "\(path): line \(lines.count + 1) is not valid UTF-8")
        }
        lines.append(line)
        start = (newline ?? raw.count) + 1
      }
      return lines
    }
    if let vocabularySize, lines.count < vocabularySize {
      throw TFCompatError(.vocabularyFile,
        "\(path): vocabulary_size is \(vocabularySize) but the file has only \(lines.count) lines")
    }
    return lines
  }

  /// Whether keys are strings or int64s.
  public var keyKind: KeyKind {
    switch keys {
    case .strings: return .string
    case .int64s: return .int64
    }
  }

  /// How many keys the vocabulary holds (ids 0 ..< vocabularySize).
  public let vocabularySize: Int

  /// vocabularySize + numOOVBuckets: the id range an embedding or indicator must cover
  /// (`defaultValue` lies outside it unless the caller chose otherwise).
  public var bucketCount: Int { vocabularySize + numOOVBuckets }

  /// OOV: vocab + hashBucketFast(key, K), or defaultValue.
  /// - Precondition: the vocabulary holds strings.
  @inlinable
  public func id(_ bytes: UnsafeRawBufferPointer) -> Int64 {
    guard case .strings(let table) = keys else {
      preconditionFailure("an int64 vocabulary was asked to look up a string key")
    }
    return id(bytes, hash: ByteKeyTable.keyHash(bytes), in: table)
  }

  /// The id of a string key whose `keyHash` the caller computed ahead (to prefetch its slot), in
  /// `table`, this vocabulary's keys; the FarmHash fingerprint (for the OOV bucket) only on a miss.
  @inlinable @inline(__always)
  func id(_ bytes: UnsafeRawBufferPointer, hash: UInt64, in table: ByteKeyTable) -> Int64 {
    if let i = table.index(of: bytes, hash: hash) { return Int64(i) }
    return oovID(fingerprint: FarmHash.fingerprint64(bytes))
  }

  /// The id of a string key (its UTF-8 bytes).
  @inlinable
  public func id(_ string: String) -> Int64 {
    var copy = string
    return copy.withUTF8 { id(UnsafeRawBufferPointer($0)) }
  }

  /// int64 OOV key is stringified in decimal first.
  /// - Precondition: the vocabulary holds int64 keys.
  @inlinable
  public func id(_ value: Int64) -> Int64 {
    guard case .int64s(let table) = keys else {
      preconditionFailure("a string vocabulary was asked to look up an int64 key")
    }
    if let i = table[value] { return i }
    if numOOVBuckets == 0 { return defaultValue }
    return TFHash.withDecimal(value) { oovID(fingerprint: FarmHash.fingerprint64($0)) }
  }

  @inlinable @inline(__always)
  func oovID(fingerprint fp: UInt64) -> Int64 {
    if numOOVBuckets == 0 { return defaultValue }
    return Int64(vocabularySize) + Int64(bitPattern: fp % UInt64(numOOVBuckets))
  }
}
