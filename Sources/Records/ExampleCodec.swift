import CProtobufC
import CTensorFlowProto
#if canImport(Glibc)
import Glibc
#endif

/// Raised when libprotobuf-c cannot unpack a payload.
public struct ProtoDecodeError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { message }
}

// MARK: - Decoding through libprotobuf-c

extension Feature {
  init(_ f: UnsafePointer<Tensorflow__Feature>) {
    switch f.pointee.kind_case {
    case TENSORFLOW__FEATURE__KIND_BYTES_LIST:
      let l = f.pointee.bytes_list!.pointee
      self = .bytesList((0..<l.n_value).map { i in
        let b = l.value[i]
        return b.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: b.data, count: b.len))
      })
    case TENSORFLOW__FEATURE__KIND_FLOAT_LIST:
      let l = f.pointee.float_list!.pointee
      self = .floatList(l.n_value == 0 ? [] : Array(UnsafeBufferPointer(start: l.value, count: l.n_value)))
    case TENSORFLOW__FEATURE__KIND_INT64_LIST:
      let l = f.pointee.int64_list!.pointee
      self = .int64List(l.n_value == 0 ? [] : Array(UnsafeBufferPointer(start: l.value, count: l.n_value)))
    default:
      self = .unset
    }
  }
}

extension Features {
  init(_ f: UnsafePointer<Tensorflow__Features>) {
    var map: [String: Feature] = [:]
    map.reserveCapacity(f.pointee.n_feature)
    for i in 0..<f.pointee.n_feature {
      let entry = f.pointee.feature[i]!.pointee
      let key = entry.key.map { String(cString: $0) } ?? ""
      // A missing value in a map entry is the default Feature: no kind.
      map[key] = entry.value.map { Feature(UnsafePointer($0)) } ?? .unset  // later entries win, as in TensorFlow
    }
    feature = map
  }
}

/// libprotobuf-c 1.4 rejects one form of valid protobuf: a map entry whose Feature occurs again
/// while neither the occurrences so far nor the new one set a kind (`12 00 12 00`; its merge of
/// two messages with no oneof case set fails). TensorFlow reads such an entry as it reads one
/// occurrence. When libprotobuf-c refuses a payload, the decoders retry once on a copy without the
/// occurrences that set no kind (all but the first, if none sets one), which merge to the same
/// Feature. Each dropped occurrence is one libprotobuf-c unpacks by itself as a Feature, with its
/// tag and length as libprotobuf-c reads them, so the retry accepts nothing libprotobuf-c would
/// reject for another reason.
enum KindlessFeatureMerges {
  /// A field of a message: where it starts, where its length-delimited body starts and ends.
  struct Field {
    var number: UInt64
    var wireType: UInt64
    var start: Int
    var bodyStart: Int
    var end: Int
  }

  /// The fields of `b[range]`, reading tags and lengths of at most 5 bytes as libprotobuf-c does;
  /// nil if they do not parse.
  static func fields(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Field]? {
    var i = range.lowerBound, out: [Field] = []
    func varint(limit: Int) -> UInt64? {
      var v: UInt64 = 0, shift: UInt64 = 0, n = 0
      while i < range.upperBound && n < limit {
        let x = b[i]
        i += 1
        n += 1
        v |= UInt64(x & 0x7F) << shift
        if x < 0x80 { return v }
        shift += 7
      }
      return nil
    }
    while i < range.upperBound {
      let start = i
      guard let tag = varint(limit: 5) else { return nil }
      switch tag & 7 {
      case 0: guard varint(limit: 10) != nil else { return nil }
      case 1: i += 8
      case 5: i += 4
      case 2:
        guard let n = varint(limit: 5), n <= UInt64(range.upperBound - i) else { return nil }
        out.append(Field(number: tag >> 3, wireType: 2, start: start, bodyStart: i, end: i + Int(n)))
        i += Int(n)
        continue
      default: return nil
      }
      guard i <= range.upperBound else { return nil }
      out.append(Field(number: tag >> 3, wireType: tag & 7, start: start, bodyStart: i, end: i))
    }
    return out
  }

  /// `b[range]` with the length-delimited fields numbered `number` replaced by `rewrite` of their
  /// body (nil: kept as they are); nil when nothing changed or the fields do not parse.
  static func rewriting(_ b: UnsafeRawBufferPointer, _ range: Range<Int>, field number: UInt64,
                        _ rewrite: (Range<Int>) -> [UInt8]?) -> [UInt8]? {
    guard let fields = fields(b, range) else { return nil }
    var out: [UInt8] = [], changed = false
    out.reserveCapacity(range.count)
    for f in fields {
      if f.number == number && f.wireType == 2, let body = rewrite(f.bodyStart..<f.end) {
        // The tag as it was, then the new length.
        var tagEnd = f.start
        while b[tagEnd] >= 0x80 { tagEnd += 1 }
        out.append(contentsOf: b[f.start...tagEnd])
        var n = body.count
        while n >= 0x80 { out.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
        out.append(UInt8(n))
        out.append(contentsOf: body)
        changed = true
      } else {
        out.append(contentsOf: b[f.start..<f.end])
      }
    }
    return changed ? out : nil
  }

  /// A `Features` message without the kindless occurrences of its entries' values, or nil.
  static func features(_ b: UnsafeRawBufferPointer, _ range: Range<Int>) -> [UInt8]? {
    rewriting(b, range, field: 1) { entry in
      guard let fields = fields(b, entry) else { return nil }
      // Per field: nil for the key and unknown fields, else whether that value occurrence sets a kind.
      var setsKind: [Bool?] = []
      for f in fields {
        guard f.number == 2 && f.wireType == 2 else {
          setsKind.append(nil)
          continue
        }
        let body = UnsafeRawBufferPointer(rebasing: b[f.bodyStart..<f.end])
        guard let feature = tensorflow__feature__unpack(nil, body.count, body.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
          return nil
        }
        setsKind.append(feature.pointee.kind_case != TENSORFLOW__FEATURE__KIND__NOT_SET)
        tensorflow__feature__free_unpacked(feature, nil)
      }
      // Keep every occurrence that sets a kind; if none does, the first.
      let anyKind = setsKind.contains(true)
      var out: [UInt8] = [], dropped = false, keptKindless = false
      for (f, kind) in zip(fields, setsKind) {
        if kind == false {
          if anyKind || keptKindless {
            dropped = true
            continue
          }
          keptKindless = true
        }
        out.append(contentsOf: b[f.start..<f.end])
      }
      return dropped ? out : nil
    }
  }

  /// A `tf.Example` (its field 1 is `features`) or a `tf.SequenceExample` (field 1 is `context`),
  /// rewritten, or nil.
  static func message(_ b: UnsafeRawBufferPointer) -> [UInt8]? {
    rewriting(b, 0..<b.count, field: 1) { features(b, $0) }
  }
}

extension Example {
  /// Decodes a serialized `tf.Example` with libprotobuf-c (accepts packed, unpacked and
  /// repeated-chunk lists, keeping every value); see `KindlessFeatureMerges` for the one retry.
  public init(serialized bytes: UnsafeRawBufferPointer) throws {
    func unpack(_ b: UnsafeRawBufferPointer) -> Features?? {
      guard let msg = tensorflow__example__unpack(nil, b.count, b.baseAddress?.assumingMemoryBound(to: UInt8.self)) else { return nil }
      defer { tensorflow__example__free_unpacked(msg, nil) }
      return .some(msg.pointee.features.map { Features(UnsafePointer($0)) })
    }
    if let f = unpack(bytes) ?? KindlessFeatureMerges.message(bytes).flatMap({ $0.withUnsafeBytes(unpack) }) {
      features = f
    } else {
      throw ProtoDecodeError(message: "not a valid tf.Example protobuf (libprotobuf-c could not unpack \(bytes.count) bytes)")
    }
  }

  public init(serialized bytes: [UInt8]) throws {
    self = try bytes.withUnsafeBytes { try Example(serialized: $0) }
  }

  /// Encodes with libprotobuf-c: map entries sorted by key, one packed chunk per numeric list.
  /// libprotobuf-c keeps names as C strings, so a name is written up to its first NUL; the JSON
  /// reader (`records write`) refuses such names.
  public func serialized() -> [UInt8] {
    let arena = CArena()
    let msg = arena.new(Tensorflow__Example.self, tensorflow__example__init)
    msg.pointee.features = features.map { $0.makeC(arena) }
    let size = tensorflow__example__get_packed_size(msg)
    return [UInt8](unsafeUninitializedCapacity: size) { buf, n in
      n = tensorflow__example__pack(msg, buf.baseAddress)
    }
  }
}

extension SequenceExample {
  /// Decodes a serialized `tf.SequenceExample` with libprotobuf-c.
  public init(serialized bytes: UnsafeRawBufferPointer) throws {
    func unpack(_ b: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Tensorflow__SequenceExample>? {
      tensorflow__sequence_example__unpack(nil, b.count, b.baseAddress?.assumingMemoryBound(to: UInt8.self))
    }
    guard let msg = unpack(bytes) ?? KindlessFeatureMerges.message(bytes).flatMap({ $0.withUnsafeBytes(unpack) }) else {
      throw ProtoDecodeError(message: "not a valid tf.SequenceExample protobuf (libprotobuf-c could not unpack \(bytes.count) bytes)")
    }
    defer { tensorflow__sequence_example__free_unpacked(msg, nil) }
    context = msg.pointee.context.map { Features(UnsafePointer($0)) }
    featureLists = msg.pointee.feature_lists.map { lists in
      var map: [String: FeatureList] = [:]
      for i in 0..<lists.pointee.n_feature_list {
        let entry = lists.pointee.feature_list[i]!.pointee
        let key = entry.key.map { String(cString: $0) } ?? ""
        var list = FeatureList()
        if let v = entry.value {
          list.feature = (0..<v.pointee.n_feature).map { Feature(UnsafePointer(v.pointee.feature[$0]!)) }
        }
        map[key] = list
      }
      return FeatureLists(map)
    }
  }

  public init(serialized bytes: [UInt8]) throws {
    self = try bytes.withUnsafeBytes { try SequenceExample(serialized: $0) }
  }

  /// Encodes with libprotobuf-c, map entries sorted by key (names up to a NUL, as above).
  public func serialized() -> [UInt8] {
    let arena = CArena()
    let msg = arena.new(Tensorflow__SequenceExample.self, tensorflow__sequence_example__init)
    msg.pointee.context = context.map { $0.makeC(arena) }
    if let featureLists {
      let lists = arena.new(Tensorflow__FeatureLists.self, tensorflow__feature_lists__init)
      let keys = featureLists.featureList.keys.sorted()
      let entries = arena.array(UnsafeMutablePointer<Tensorflow__FeatureLists__FeatureListEntry>?.self, keys.count)
      for (i, key) in keys.enumerated() {
        let entry = arena.new(Tensorflow__FeatureLists__FeatureListEntry.self, tensorflow__feature_lists__feature_list_entry__init)
        entry.pointee.key = arena.cString(key)
        let list = arena.new(Tensorflow__FeatureList.self, tensorflow__feature_list__init)
        let steps = featureLists.featureList[key]!.feature
        let ptrs = arena.array(UnsafeMutablePointer<Tensorflow__Feature>?.self, steps.count)
        for (j, f) in steps.enumerated() { ptrs[j] = f.makeC(arena) }
        list.pointee.n_feature = steps.count
        list.pointee.feature = ptrs
        entry.pointee.value = list
        entries[i] = entry
      }
      lists.pointee.n_feature_list = keys.count
      lists.pointee.feature_list = entries
      msg.pointee.feature_lists = lists
    }
    let size = tensorflow__sequence_example__get_packed_size(msg)
    return [UInt8](unsafeUninitializedCapacity: size) { buf, n in
      n = tensorflow__sequence_example__pack(msg, buf.baseAddress)
    }
  }
}

// MARK: - Building libprotobuf-c messages

extension Features {
  func makeC(_ arena: CArena) -> UnsafeMutablePointer<Tensorflow__Features> {
    let msg = arena.new(Tensorflow__Features.self, tensorflow__features__init)
    let keys = feature.keys.sorted()
    let entries = arena.array(UnsafeMutablePointer<Tensorflow__Features__FeatureEntry>?.self, keys.count)
    for (i, key) in keys.enumerated() {
      let entry = arena.new(Tensorflow__Features__FeatureEntry.self, tensorflow__features__feature_entry__init)
      entry.pointee.key = arena.cString(key)
      entry.pointee.value = feature[key]!.makeC(arena)
      entries[i] = entry
    }
    msg.pointee.n_feature = keys.count
    msg.pointee.feature = entries
    return msg
  }
}

extension Feature {
  func makeC(_ arena: CArena) -> UnsafeMutablePointer<Tensorflow__Feature> {
    let msg = arena.new(Tensorflow__Feature.self, tensorflow__feature__init)
    switch self {
    case .bytesList(let values):
      let list = arena.new(Tensorflow__BytesList.self, tensorflow__bytes_list__init)
      let items = arena.array(ProtobufCBinaryData.self, values.count)
      for (i, v) in values.enumerated() {
        items[i] = ProtobufCBinaryData(len: v.count, data: arena.copy(v))
      }
      list.pointee.n_value = values.count
      list.pointee.value = items
      msg.pointee.kind_case = TENSORFLOW__FEATURE__KIND_BYTES_LIST
      msg.pointee.bytes_list = list
    case .floatList(let values):
      let list = arena.new(Tensorflow__FloatList.self, tensorflow__float_list__init)
      list.pointee.n_value = values.count
      list.pointee.value = arena.copy(values)
      msg.pointee.kind_case = TENSORFLOW__FEATURE__KIND_FLOAT_LIST
      msg.pointee.float_list = list
    case .int64List(let values):
      let list = arena.new(Tensorflow__Int64List.self, tensorflow__int64_list__init)
      list.pointee.n_value = values.count
      list.pointee.value = arena.copy(values)
      msg.pointee.kind_case = TENSORFLOW__FEATURE__KIND_INT64_LIST
      msg.pointee.int64_list = list
    case .unset:
      break
    }
    return msg
  }
}

/// Owns the C memory of a message being packed; everything is freed together.
final class CArena {
  private var blocks: [UnsafeMutableRawPointer] = []

  deinit { for b in blocks { free(b) } }

  private func raw(_ bytes: Int) -> UnsafeMutableRawPointer {
    let p = calloc(1, max(bytes, 1))!
    blocks.append(p)
    return p
  }

  func new<T>(_ type: T.Type, _ initializer: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
    let p = raw(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
    initializer(p)
    return p
  }

  func array<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
    raw(MemoryLayout<T>.stride * count).bindMemory(to: T.self, capacity: max(count, 1))
  }

  func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
    let p = array(T.self, values.count)
    values.withUnsafeBufferPointer { src in
      if let base = src.baseAddress { p.initialize(from: base, count: values.count) }
    }
    return p
  }

  func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
    let utf8 = Array(s.utf8)
    let p = array(CChar.self, utf8.count + 1)
    for (i, b) in utf8.enumerated() { p[i] = CChar(bitPattern: b) }
    p[utf8.count] = 0
    return p
  }
}
