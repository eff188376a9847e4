/// Why a payload failed to parse, before the caller adds the file, record and offset.
enum ParseFailure: Error {
  case malformed(String, at: Int)
  case feature(Int, String)
}

/// Maps feature-name bytes to spec indices without building Strings (flat memory: the hot
/// loop must not retain or release anything).
final class KeyTable {
  private let slots: UnsafeMutablePointer<Int32>
  private let mask: Int
  private let nameBytes: UnsafeMutablePointer<UInt8>
  private let nameStart: UnsafeMutablePointer<Int>  // count + 1 offsets

  init(_ names: [String]) {
    var size = 16
    while size < names.count * 4 { size *= 2 }
    mask = size - 1
    slots = .allocate(capacity: size)
    slots.initialize(repeating: -1, count: size)
    let all = names.flatMap { Array($0.utf8) }
    // 8 spare zero bytes, so a short name can be compared as one 8-byte word.
    nameBytes = .allocate(capacity: all.count + 8)
    nameBytes.initialize(from: all, count: all.count)
    (nameBytes + all.count).initialize(repeating: 0, count: 8)
    nameStart = .allocate(capacity: names.count + 1)
    var off = 0
    for (i, n) in names.enumerated() {
      nameStart[i] = off
      off += n.utf8.count
    }
    nameStart[names.count] = off
    for i in 0..<names.count {
      var h = Self.hash(UnsafeRawPointer(nameBytes + nameStart[i]), nameStart[i + 1] - nameStart[i]) & mask
      while slots[h] >= 0 { h = (h + 1) & mask }
      slots[h] = Int32(i)
    }
  }

  deinit {
    slots.deallocate()
    nameBytes.deallocate()
    nameStart.deallocate()
  }

  /// A cheap hash of the length and the first, middle and last bytes: enough to spread
  /// feature names, and a collision only costs a probe.
  @inline(__always)
  static func hash(_ p: UnsafeRawPointer, _ n: Int) -> Int {
    if n == 0 { return 0 }
    let b = p.assumingMemoryBound(to: UInt8.self)
    var h = UInt32(truncatingIfNeeded: n) &* 0x27D4_EB2F
    h ^= UInt32(b[0]) &* 0x9E37_79B1
    h ^= UInt32(b[n >> 1]) &* 0x85EB_CA77
    h ^= UInt32(b[n &- 1]) &* 0xC2B2_AE3D
    return Int(h ^ (h >> 15))
  }

  /// Whether spec column i is named by the n bytes at `p`. A name of up to 8 bytes is compared
  /// as one word when 8 bytes from `p` are readable (before `limit`): most feature names are
  /// short, and the byte loop's branches cost more.
  @inline(__always)
  func matches(_ i: Int, _ p: UnsafePointer<UInt8>, _ n: Int, limit: UnsafePointer<UInt8>) -> Bool {
    let s = nameStart[i]
    guard nameStart[i + 1] &- s == n else { return false }
    if n <= 8 && limit - p >= 8 {
      let a = UnsafeRawPointer(nameBytes + s).loadUnaligned(as: UInt64.self)
      let b = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
      let mask: UInt64 = n == 8 ? ~0 : (1 &<< UInt64(8 &* n)) &- 1
      return (a ^ b) & mask.littleEndian == 0
    }
    return memcmpEqual(nameBytes + s, p, n)
  }

  /// The spec index of the name, or -1.
  @inline(__always)
  func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
    var h = Self.hash(UnsafeRawPointer(p), n) & mask
    while true {
      let i = Int(slots[h])
      if i < 0 { return -1 }
      let s = nameStart[i]
      if nameStart[i + 1] - s == n && memcmpEqual(nameBytes + s, p, n) { return i }
      h = (h + 1) & mask
    }
  }
}

/// `end - start` without the overflow check (both point into one buffer).
@inline(__always)
func bytesBetween(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Int {
  Int(bitPattern: end) &- Int(bitPattern: start)
}

@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
  var i = 0
  while i < n {
    if a[i] != b[i] { return false }
    i &+= 1
  }
  return true
}

/// What the hot loop needs to know about a column, in flat memory.
struct ColumnInfo {
  /// Proto field number of the column's kind: 1 bytes, 2 float, 3 int64.
  var kindTag: UInt8
  /// The fixed value count, or -1 for var-len.
  var fixed: Int
  /// The first bytes of this column's map entry as every serializer writes it, little-endian:
  /// `0A klen key 12` (key tag, key length, key, value tag), under `headMask`. One 8-byte
  /// compare then confirms a predicted column, its key length and the value's tag. A key too
  /// long to fit (more than 5 bytes) has mask 0: no head, the name is compared in full.
  var head: UInt64 = 0
  var headMask: UInt64 = 0
  /// The four bytes after the key in a canonical entry, `12 flen kind-tag llen`, little-endian,
  /// with both lengths zero: or'ed with the lengths an entry's size implies, one 4-byte compare
  /// checks the value's layout and kind.
  var valueHead: UInt32
  /// The whole header of a canonical single-chunk entry, from the entry's tag to the list's
  /// length, `0A E 0A klen key 12 F kind-tag B 0A N` (h = klen + 10 bytes, at most 16): every
  /// length follows from the entry's length E, as F = E - (klen+4), B = E - (klen+6) and
  /// N = E - (klen+8), the size of the list's one packed chunk or bytes value. The expected
  /// 16 bytes are `E * ones + base` as two little-endian words (`ones` has a 1 in E's lane and
  /// in each derived length's; no lane borrows once E >= klen + 8), compared under the mask
  /// `sigMaskHigh` for bytes 8..<h (bytes 0..<8 are always header). One compare then checks
  /// the key, every tag and every length of the entry.
  var sigOnesLow: UInt64 = 0, sigOnesHigh: UInt64 = 0
  var sigBaseLow: UInt64 = 0, sigBaseHigh: UInt64 = 0
  var sigMaskHigh: UInt64 = 0
  /// klen + 8: the smallest E (a list of size 0); E - sigMin is the list's size N.
  var sigMin = 0x100
  /// The largest N whose E is still a one-byte length (0x7F - sigMin); a column with a key of
  /// more than 6 bytes, or the sentinel, has sigMin 0x100 and never matches.
  var sigSpan: UInt = 0

  init(kindTag: UInt8, fixed: Int, name: String) {
    self.kindTag = kindTag
    self.fixed = fixed
    valueHead = 0x12 | UInt32(kindTag << 3 | 2) << 16
    let key = Array(name.utf8)
    if key.count <= 6 {
      let k = key.count
      var fixedBytes = [UInt8](repeating: 0, count: 16), ones = fixedBytes, subtract = fixedBytes
      for (i, b) in ([0x0A, 0, 0x0A, UInt8(k)] + key + [0x12, 0, kindTag << 3 | 2, 0, 0x0A, 0]).enumerated() {
        fixedBytes[i] = b
      }
      ones[1] = 1
      for (lane, less) in [(k + 5, k + 4), (k + 7, k + 6), (k + 9, k + 8)] {
        ones[lane] = 1
        subtract[lane] = UInt8(less)
      }
      func word(_ b: [UInt8], _ from: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[from + $1]) << UInt64(8 * $1) }
      }
      sigOnesLow = word(ones, 0)
      sigOnesHigh = word(ones, 8)
      sigBaseLow = word(fixedBytes, 0) &- word(subtract, 0)
      sigBaseHigh = word(fixedBytes, 8) &- word(subtract, 8)
      sigMaskHigh = k == 6 ? ~0 : (1 << UInt64(8 * (k + 2))) - 1  // header bytes 8..<k + 10
      sigMin = k + 8
      sigSpan = UInt(0x7F - (k + 8))
    }
    if key.count <= 5 {
      let bytes: [UInt8] = [0x0A, UInt8(key.count)] + key + [0x12]
      head = 0
      for (i, b) in bytes.enumerated() { head |= UInt64(b) << UInt64(8 * i) }
      headMask = bytes.count == 8 ? ~0 : (1 << UInt64(8 * bytes.count)) - 1
    }
  }
}

/// Parses serialized `tf.Example`s straight into columns (like `tf.io.parse_example`) without
/// building per-record objects. It keeps every value of packed, unpacked and multi-chunk lists,
/// applies protobuf's merge rules (a repeated key: the last entry wins; a oneof switching kind:
/// the earlier values are dropped), and validates the structure of skipped features, so it
/// agrees with a full libprotobuf-c decode. One parser per thread.
public final class ExampleParser: @unchecked Sendable {
  public let spec: ParseSpec
  let keys: KeyTable
  /// Per column; `info[-1]` is a sentinel with no head, for "no predicted column" (-1).
  private let info: UnsafeMutablePointer<ColumnInfo>
  private let columnCount: Int
  /// Per column whose entry took the general path: `stamp << 8 | kind` when the record has the
  /// feature (kind is the field number in effect, 0 = unset); an older stamp means the record
  /// has not mentioned it. The canonical path sets only the column's `touched` byte (the cheaper
  /// mark for the common case), and the general path clears that byte when it takes a column over.
  private let state: UnsafeMutablePointer<UInt64>
  @exclusivity(unchecked) private var stamp: UInt64 = 0
  /// successor[c + 1]: the column whose entry followed column c's last time (successor[0]: the
  /// first entry). Writers emit keys in the same order record after record, so one comparison
  /// usually replaces a hash lookup, even when some features are missing.
  private let successor: UnsafeMutablePointer<Int32>
  @exclusivity(unchecked) private var previousColumn = -1
  /// The column seen after c before successor[c + 1] took its place: when a feature comes and
  /// goes from record to record, its neighbour has two successors, and both stay one compare away.
  private let alternateSuccessor: UnsafeMutablePointer<Int32>
  /// The record being parsed, as a row of every column. Columns' `rows.count` and
  /// `present.count` are brought up to date only when a parse call returns (`syncRowCounts`), so
  /// closing a record costs nothing per column that the record had.
  @exclusivity(unchecked) private var row = 0
  /// Byte c is 1 when column c was filled by the canonical entry path in this record, with its
  /// row closed (its `state` is then stale). A byte, not a bit: testing and setting it per entry
  /// is one instruction each, where a bit took a shift, a mask and a word address; closing the
  /// record still reads 8 columns per word. `touchedWords` words hold the columns (none for an
  /// empty spec), the padding bytes unused; at least one word is allocated.
  private let touched: UnsafeMutablePointer<UInt8>
  private let touchedWords: Int
  /// Whether this record took any other path for a spec column (a repeated key, another kind,
  /// a non-canonical layout, a shape to check): then `finishRecord` examines every column.
  @exclusivity(unchecked) private var irregular = false
  /// Per column, the default values bit-cast to UInt64 (int64 and float columns), so filling a
  /// missing feature touches no Swift arrays.
  private let defaultBits: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>

  public init(spec: ParseSpec) {
    self.spec = spec
    keys = KeyTable(spec.features.map(\.name))
    columnCount = spec.features.count
    let n = max(spec.features.count, 1)
    info = .allocate(capacity: n + 1) + 1
    (info - 1).initialize(to: ColumnInfo(kindTag: 0, fixed: -1, name: "a name too long for a head"))
    successor = .allocate(capacity: n + 1)
    successor.initialize(repeating: -1, count: n + 1)
    alternateSuccessor = .allocate(capacity: n + 1)
    alternateSuccessor.initialize(repeating: -1, count: n + 1)
    touchedWords = (spec.features.count + 7) / 8
    touched = .allocate(capacity: max(touchedWords, 1) * 8)
    touched.initialize(repeating: 0, count: max(touchedWords, 1) * 8)
    defaultBits = .allocate(capacity: n)
    defaultBits.initialize(repeating: nil, count: n)
    for (i, f) in spec.features.enumerated() {
      var fixed = -1
      if case .fixed(let k) = f.shape { fixed = k }
      (info + i).initialize(to: ColumnInfo(kindTag: Self.fieldNumber(f.kind), fixed: fixed, name: f.name))
      if fixed > 0, let d = f.defaultValue {
        var bits: [UInt64] = []
        switch d {
        case .int64(let v): bits = (0..<fixed).map { UInt64(bitPattern: v.count == 1 ? v[0] : v[$0]) }
        case .float(let v): bits = (0..<fixed).map { UInt64((v.count == 1 ? v[0] : v[$0]).bitPattern) }
        case .bytes: continue
        }
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: fixed)
        p.initialize(from: bits, count: fixed)
        defaultBits[i] = p
      }
    }
    state = .allocate(capacity: n)
    state.initialize(repeating: 0, count: n)
  }

  deinit {
    state.deallocate()
    (info - 1).deallocate()
    successor.deallocate()
    alternateSuccessor.deallocate()
    touched.deallocate()
    for i in 0..<max(columnCount, 1) { defaultBits[i]?.deallocate() }
    defaultBits.deallocate()
  }

  static func fieldNumber(_ k: ValueKind) -> UInt8 {
    switch k {
    case .bytes: return 1
    case .float: return 2
    case .int64: return 3
    }
  }

  static func kindName(_ field: UInt8) -> String {
    switch field {
    case 1: return "bytes_list"
    case 2: return "float_list"
    default: return "int64_list"
    }
  }

  /// Parses every record of `chunk` into `batch` (which is cleared first).
  public func parse(_ chunk: RecordChunk, into batch: ParsedBatch) throws {
    batch.reset()
    batch.path = chunk.path
    batch.sequence = chunk.sequence
    let cols = batch.storage
    reserveRows(chunk.count, cols)
    beginRows(cols)
    defer { syncRowCounts(cols) }
    try chunk.withRecords { records, indices, offsets in
      // The per-record loop touches only flat memory; the batch's bookkeeping is done once.
      var parsed = 0
      defer {
        batch.count += parsed
        batch.recordIndices.append(contentsOf: indices[0..<parsed])
        batch.recordOffsets.append(contentsOf: offsets[0..<parsed])
      }
      while parsed < records.count {
        do throws(ParseFailure) {
          try parseRecord(records[parsed], cols)
        } catch {
          throw recordError(error, cols, path: chunk.path, index: indices[parsed], offset: offsets[parsed])
        }
        parsed &+= 1
      }
    }
  }

  /// Parses standalone payloads (tests, serving requests).
  public func parse(_ records: [[UInt8]], into batch: ParsedBatch, path: String = "<memory>") throws {
    batch.reset()
    batch.path = path
    reserveRows(records.count, batch.storage)
    for (i, r) in records.enumerated() {
      try r.withUnsafeBytes { try parseOne($0, into: batch, path: path, index: i, offset: 0) }
    }
  }

  /// Appends one record to `batch`.
  public func parseOne(_ record: UnsafeRawBufferPointer, into batch: ParsedBatch, path: String, index: Int, offset: UInt64) throws {
    ensureRowCapacity(batch.storage)
    beginRows(batch.storage)
    defer { syncRowCounts(batch.storage) }
    do {
      try parseRecord(record, batch.storage)
    } catch {
      throw recordError(error, batch.storage, path: path, index: index, offset: offset)
    }
    batch.count += 1
    batch.recordIndices.append(index)
    batch.recordOffsets.append(offset)
  }

  /// Undoes a half-parsed record (so the batch stays consistent) and names the record.
  @inline(never)
  private func recordError(_ f: ParseFailure, _ cols: UnsafeMutablePointer<ColumnStorage>, path: String, index: Int, offset: UInt64) -> RecordsError {
    for c in 0..<columnCount {
      let s = cols + c
      s.pointee.truncate(tag: info[c].kindTag, to: s.pointee.rows.base[row])
    }
    switch f {
    case .malformed(let why, let at):
      return RecordsError(.malformedProto, path: path, record: index, offset: offset,
                          "not a valid tf.Example: \(why) at payload byte \(at)")
    case .feature(let c, let why):
      return RecordsError(.invalidInput, path: path, record: index, offset: offset, field: spec.features[c].name, why)
    }
  }

  // MARK: - Wire reading

  typealias Ptr = UnsafePointer<UInt8>

  @inline(__always)
  private func varint(_ p: inout Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) -> UInt64 {
    guard p < end else { throw .malformed("truncated varint", at: p - origin) }
    var b = p.pointee
    p += 1
    if b < 0x80 { return UInt64(b) }
    var result = UInt64(b & 0x7f)
    var shift: UInt64 = 7
    while true {
      guard p < end else { throw .malformed("truncated varint", at: p - origin) }
      b = p.pointee
      p += 1
      result |= UInt64(b & 0x7f) << shift
      if b < 0x80 { return result }
      shift += 7
      if shift >= 70 { throw .malformed("varint longer than 10 bytes", at: p - origin) }
    }
  }

  /// A field's tag. libprotobuf-c reads at most 5 bytes of it and rejects a longer one, even one
  /// whose extra bytes are zero continuations, so the columnar parse does too.
  @inline(__always)
  private func tag(_ p: inout Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) -> UInt64 {
    if p < end && p.pointee < 0x80 {
      let t = UInt64(p.pointee)
      p += 1
      return t
    }
    return try longTag(&p, end, origin)
  }

  /// A tag of two bytes or more, out of line: inlined at all nine tag reads, it cost the hot loop
  /// registers (parseFeatures: 665M instructions on 100k records instead of 610M).
  @inline(never)
  private func longTag(_ p: inout Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) -> UInt64 {
    let start = p
    let t = try varint(&p, end, origin)
    guard p - start <= 5 else { throw .malformed("field tag longer than 5 bytes", at: start - origin) }
    return t
  }

  /// A length prefix: at most 5 bytes (as libprotobuf-c reads it), within the enclosing message.
  @inline(__always)
  private func length(_ p: inout Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) -> Int {
    if p < end && p.pointee < 0x80 {
      let n = Int(p.pointee)
      p += 1
      guard n <= end - p else { throw .malformed("length \(n) runs past the end of its message", at: p - origin) }
      return n
    }
    let start = p
    let n = try varint(&p, end, origin)
    guard p - start <= 5 else { throw .malformed("length prefix longer than 5 bytes", at: start - origin) }
    guard n <= UInt64(end - p) else { throw .malformed("length \(n) runs past the end of its message", at: p - origin) }
    return Int(n)
  }

  private func skip(_ tag: UInt64, _ p: inout Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) {
    if tag >> 3 == 0 { throw .malformed("field number 0", at: p - origin) }
    switch tag & 7 {
    case 0: _ = try varint(&p, end, origin)
    case 1:
      guard end - p >= 8 else { throw .malformed("truncated fixed64", at: p - origin) }
      p += 8
    case 2: p += try length(&p, end, origin)
    case 5:
      guard end - p >= 4 else { throw .malformed("truncated fixed32", at: p - origin) }
      p += 4
    default: throw .malformed("unsupported wire type \(tag & 7)", at: p - origin)
    }
  }

  // MARK: - Messages

  private func parseRecord(_ record: UnsafeRawBufferPointer, _ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    stamp &+= 1
    previousColumn = -1
    irregular = false
    UnsafeMutableRawPointer(touched).withMemoryRebound(to: UInt64.self, capacity: touchedWords) {
      var w = 0
      while w < touchedWords { $0[w] = 0; w &+= 1 }
    }
    if stamp >= 1 << 55 {
      state.update(repeating: 0, count: max(columnCount, 1))
      stamp = 1
    }
    let origin = record.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? Ptr(bitPattern: 1)!
    var p = origin
    let end = origin + record.count
    while p < end {
      let tag = try tag(&p, end, origin)
      if tag == 0x0A {
        let n = try length(&p, end, origin)
        try parseFeatures(p, p + n, origin, cols)
        p += n
      } else if tag >> 3 == 1 {
        throw .malformed("Example.features has wire type \(tag & 7)", at: p - origin)
      } else {
        try skip(tag, &p, end, origin)
      }
    }
    try finishRecord(cols)
  }

  private func parseFeatures(_ start: Ptr, _ end: Ptr, _ origin: Ptr, _ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    // The record's row, in a register: as a property it was loaded three times per entry, since
    // the stores into the columns might, as far as the compiler knows, have changed it.
    let thisRow = row
    var p = start
    while p < end {
      // First tier: a run of entries whose header the predicted column confirms in one compare.
      // Not in an irregular record, whose general-path values the run would have to look for.
      if !irregular {
        p = parsePredictedRun(p, end, cols, thisRow)
        if p >= end { break }
      }
      if p.pointee == 0x0A {
        let guess = Int(successor[previousColumn &+ 1])
        // Second tier, for what the first did not take (a longer key, a two-byte entry length,
        // a list of several values, an empty list, a column predicted by neither guess, a
        // repeated key): the layout every serializer writes for short features,
        // `0A klen key 12 flen kind-tag llen list`, the Feature's and the list's lengths one
        // byte, below 0x80 (a byte of 0x80 or more begins a longer varint). After the key come
        // `rest` bytes, so flen = rest - 2 and llen = rest - 4, and rest in 4...0x81 keeps both
        // below 0x80. Anything else breaks out (having consumed nothing) to the general path.
        // Written out here rather than as a method, which the compiler would not inline: the
        // call cost a tenth of an entry's instructions.
        var q = p + 1
        let entryLen = try length(&q, end, origin)
        let entryEnd = q + entryLen
        p = entryEnd
        // The column the entry fills and its list body (`0A ...`, the Feature's kind field's
        // contents).
        let c: Int, list: Ptr
        canonical: do {
          let v: Ptr
          // (A guess of -1 meets the sentinel's mask of 0.)
          if entryLen >= 8 && info[guess].headMask != 0
            && (UInt64(littleEndian: UnsafeRawPointer(q).loadUnaligned(as: UInt64.self)) ^ info[guess].head) & info[guess].headMask == 0 {
            // The predicted column's head matched: key, key length and value tag at once. One
            // more compare checks both lengths and the kind; anything else is the general path's.
            let keyLen = Int(q[1])
            v = q + (2 &+ keyLen)
            let rest = entryLen &- keyLen &- 2
            let lengths = UInt32(truncatingIfNeeded: rest &- 2) &<< 8 | UInt32(truncatingIfNeeded: rest &- 4) &<< 24
            guard UInt(bitPattern: rest &- 4) <= 0x7D
              && UInt32(littleEndian: UnsafeRawPointer(v).loadUnaligned(as: UInt32.self)) == info[guess].valueHead | lengths
            else { break canonical }
            previousColumn = guess
            c = guess
          } else {
            guard entryLen >= 6 && q.pointee == 0x0A && q[1] < 0x80 else { break canonical }
            let keyLen = Int(q[1])
            guard keyLen &+ 6 <= entryLen else { break canonical }
            v = q + (2 &+ keyLen)
            let rest = entryLen &- keyLen &- 2
            guard rest <= 0x81 && v.pointee == 0x12 && Int(v[1]) == rest &- 2 && Int(v[3]) == rest &- 4 else { break canonical }
            let named = column(named: q + 2, keyLen, limit: entryEnd)
            if named < 0 {
              try parseFeature(v + 2, entryEnd, origin, column: -1, cols)
              continue
            }
            guard v[2] == info[named].kindTag &<< 3 | 2 else {
              beginEntry(named, cols)
              try parseFeature(v + 2, entryEnd, origin, column: named, cols)
              continue
            }
            c = named
          }
          list = v + 4
          let want = info[c].kindTag
          let col = cols + c
          let start = openEntry(c, col, thisRow)
          let count: Int
          switch want {
          case 1:
            try appendBytesList(list, entryEnd, origin, col)
            count = col.pointee.bytesStarts.count &- 1
          case 3:
            if list != entryEnd { try appendInt64List(list, entryEnd, origin, col) }
            count = col.pointee.int64s.count
          default:
            if list != entryEnd { try appendList(want, list, entryEnd, origin, col) }
            count = col.pointee.floats.count
          }
          closeEntry(c, col, thisRow, start: start, count: count)
          continue
        }
        try parseEntry(q, entryEnd, origin, cols)
        continue
      }
      let tag = try tag(&p, end, origin)
      if tag >> 3 == 1 {
        throw .malformed("Features.feature has wire type \(tag & 7)", at: p - origin)
      }
      try skip(tag, &p, end, origin)
    }
  }

  /// The first tier of `parseFeatures`: from `start`, the entries that every serializer writes
  /// for a one-value feature of the column predicted next, `0A E 0A klen key 12 F kind B 0A N
  /// value` with every length one byte. The whole header is checked in one masked compare of its
  /// 16 bytes (ColumnInfo's `sig` words): for keys of up to 6 bytes it is at most 16 bytes long,
  /// and each of its lengths follows from E, so its expected value is `E * ones + base`. The
  /// value is a bytes value of N bytes, a single varint of up to 8 bytes, or floats.
  /// Returns where it stopped: `end`, or the first entry it does not take, nothing of it
  /// consumed (another layout, another column, a list of several values, a key the record
  /// repeats). Called only while the record is regular: then no column is stamped in `state`,
  /// and `touched` alone tells a repeated key. A function of its own, so the compiler keeps more
  /// of the loop's state in registers than it did beside the general path's calls in
  /// `parseFeatures`.
  @inline(never)
  private func parsePredictedRun(_ start: Ptr, _ end: Ptr, _ cols: UnsafeMutablePointer<ColumnStorage>, _ thisRow: Int) -> Ptr {
    let successor = self.successor, info = self.info, touched = self.touched
    var prev = previousColumn
    var p = start
    defer { previousColumn = prev }
    while bytesBetween(p, end) >= 16 && p.pointee == 0x0A {
      let e = Int(p[1])
      guard e <= bytesBetween(p, end) &- 2 else { break }
      var guess = Int(successor[prev &+ 1])
      if !Self.confirms(info + guess, p, e) {
        guess = confirmAlternate(prev, p, e)
        if guess < 0 { break }
      }
      guard touched[guess] == 0 else { break }
      let sig = info + guess
      // The value: N bytes ending with the entry.
      let size = e &- sig.pointee.sigMin
      let entryEnd = p + (e &+ 2)
      let value = p + (sig.pointee.sigMin &+ 2)
      let col = cols + guess
      let count: Int
      switch sig.pointee.kindTag {
      case 1:
        appendBytesValue(value, size, readable: end, col)
        count = col.pointee.bytesStarts.count &- 1
      case 3:
        if size == 1 && value.pointee < 0x80 {
          col.pointee.int64s.append(Int64(value.pointee))  // most ids and counts: one byte
        } else {
          guard let v = Self.singleVarint(endingAt: entryEnd, size) else { return p }
          col.pointee.int64s.append(Int64(bitPattern: v))
        }
        count = col.pointee.int64s.count
      default:
        guard size & 3 == 0 else { return p }  // malformed: the general path reports it
        appendPackedFloats(value, size, col)
        count = col.pointee.floats.count
      }
      closeEntry(guess, col, thisRow, start: col.pointee.rows.base[thisRow], count: count)
      prev = guess
      p = entryEnd
    }
    return p
  }

  /// A packed chunk of n / 4 floats (n a multiple of 4), copied as bytes: floats are
  /// little-endian IEEE 754 on the wire, as in memory on every platform we build for.
  @inline(__always)
  private func appendPackedFloats(_ src: Ptr, _ n: Int, _ col: UnsafeMutablePointer<ColumnStorage>) {
    col.pointee.floats.reserve(n &>> 2)
    UnsafeMutableRawPointer(col.pointee.floats.base + col.pointee.floats.count).copyMemory(from: src, byteCount: n)
    col.pointee.floats.count &+= n &>> 2
  }

  /// Whether the entry at p, of length e (at least 16 bytes readable), is the column's of `sig`
  /// in the canonical one-list layout: the header's 16 bytes against `E * ones + base`. The
  /// sentinel column (-1) never matches.
  @inline(__always)
  static func confirms(_ sig: UnsafePointer<ColumnInfo>, _ p: Ptr, _ e: Int) -> Bool {
    let x = UInt64(truncatingIfNeeded: e)
    let low = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
    let high = UInt64(littleEndian: UnsafeRawPointer(p + 8).loadUnaligned(as: UInt64.self))
    return UInt(bitPattern: e &- sig.pointee.sigMin) <= sig.pointee.sigSpan
      && (low ^ (x &* sig.pointee.sigOnesLow &+ sig.pointee.sigBaseLow))
        | ((high ^ (x &* sig.pointee.sigOnesHigh &+ sig.pointee.sigBaseHigh)) & sig.pointee.sigMaskHigh) == 0
  }

  /// The first tier's second guess, when the column predicted after `prev` is not the entry's:
  /// a feature that comes and goes from record to record gives its neighbour two successors.
  /// The one that matches becomes the first guess; -1 when neither does. Out of line, so the
  /// run's common path keeps its registers.
  @inline(never)
  private func confirmAlternate(_ prev: Int, _ p: Ptr, _ e: Int) -> Int {
    let alternate = Int(alternateSuccessor[prev &+ 1])
    guard Self.confirms(info + alternate, p, e) else { return -1 }
    alternateSuccessor[prev &+ 1] = successor[prev &+ 1]
    successor[prev &+ 1] = Int32(alternate)
    return alternate
  }

  /// The value of a packed chunk of n bytes that ends at `end` and holds exactly one varint, or
  /// nil (no value, more than one, or more than 8 bytes). The chunk is the top bytes of the word
  /// that ends with it, decoded at once, without a loop over the bytes; the caller guarantees
  /// that the 8 bytes before `end` are readable (an entry's header comes before its chunk).
  @inline(__always)
  static func singleVarint(endingAt end: Ptr, _ n: Int) -> UInt64? {
    guard UInt(bitPattern: n &- 1) <= 7 else { return nil }
    let drop = UInt64(truncatingIfNeeded: 8 &* (8 &- n))
    let word = UInt64(littleEndian: UnsafeRawPointer(end - 8).loadUnaligned(as: UInt64.self)) &>> drop
    // Only the last byte lacks the continuation bit.
    let continuations: UInt64 = 0x8080_8080_8080_8080 &>> drop
    guard word & continuations == continuations &>> 8 else { return nil }
    return joinSevenBitGroups(word & (0x7F7F_7F7F_7F7F_7F7F &>> drop))
  }

  /// A canonical entry for column c begins in row `thisRow`: returns the column's value count
  /// at the row's start. If the record filled the column before (by either path, which makes the
  /// record irregular), the last entry wins and the earlier values go.
  @inline(__always)
  private func openEntry(_ c: Int, _ col: UnsafeMutablePointer<ColumnStorage>, _ thisRow: Int) -> Int {
    let start = col.pointee.rows.base[thisRow]
    if touched[c] != 0 || (irregular && state[c] >> 8 == stamp) {
      col.pointee.truncate(tag: info[c].kindTag, to: start)
      irregular = true
    }
    return start
  }

  /// Closes column c's row after a canonical entry, while it is in cache. A wrong fixed count
  /// is left for finishRecord to report, since a later entry with the same key may still
  /// replace it.
  @inline(__always)
  private func closeEntry(_ c: Int, _ col: UnsafeMutablePointer<ColumnStorage>, _ thisRow: Int, start: Int, count: Int) {
    let fixed = info[c].fixed
    if fixed >= 0 && count &- start != fixed { irregular = true }
    col.pointee.rows.base[thisRow &+ 1] = count
    col.pointee.present.base[thisRow] = 1
    touched[c] = 1
  }

  /// The value of up to eight 7-bit varint groups, one per byte (high bits clear), least
  /// significant first: neighbours are joined pairwise in three steps instead of byte by byte.
  @inline(__always)
  static func joinSevenBitGroups(_ groups: UInt64) -> UInt64 {
    var x = groups
    x = x & 0x007F_007F_007F_007F | (x & 0x7F00_7F00_7F00_7F00) &>> 1
    x = x & 0x0000_3FFF_0000_3FFF | (x & 0x3FFF_0000_3FFF_0000) &>> 2
    return x & 0x0000_0000_0FFF_FFFF | (x & 0x0FFF_FFFF_0000_0000) &>> 4
  }

  /// A BytesList body; values of up to 127 bytes are copied without a call.
  @inline(__always)
  private func appendBytesList(_ start: Ptr, _ end: Ptr, _ origin: Ptr, _ col: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    var p = start
    while p < end {
      let left = bytesBetween(p, end)
      if p.pointee == 0x0A && left >= 2 && p[1] < 0x80 && Int(p[1]) <= left &- 2 {
        let n = Int(p[1])
        appendBytesValue(p + 2, n, readable: end, col)
        p += 2 &+ n
        continue
      }
      // Anything unusual (long values, unknown fields): the general loop from here on.
      return try appendList(1, p, end, origin, col)
    }
  }

  /// One bytes value of n bytes at `src`. Up to 8 bytes move as one unaligned word when 8 are
  /// readable (before `readable`); the extra bytes land in reserved, unused capacity.
  @inline(__always)
  private func appendBytesValue(_ src: Ptr, _ n: Int, readable: Ptr, _ col: UnsafeMutablePointer<ColumnStorage>) {
    col.pointee.bytes.reserve(n &+ 8)
    let dst = UnsafeMutableRawPointer(col.pointee.bytes.base + col.pointee.bytes.count)
    if n <= 8 && bytesBetween(src, readable) >= 8 {
      dst.storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: UInt64.self), as: UInt64.self)
    } else {
      dst.copyMemory(from: src, byteCount: n)
    }
    col.pointee.bytes.count &+= n
    col.pointee.bytesStarts.append(col.pointee.bytes.count)
  }

  /// An Int64List body (from a canonical entry, so at least 6 header bytes of the record come
  /// before it); a single packed chunk holding one varint is the common case.
  @inline(__always)
  private func appendInt64List(_ start: Ptr, _ end: Ptr, _ origin: Ptr, _ col: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    let n = end - start - 2
    if UInt(bitPattern: n &- 1) <= 7 && start.pointee == 0x0A && Int(start[1]) == n && bytesBetween(origin, start) >= 6,
      let v = Self.singleVarint(endingAt: end, n) {
      col.pointee.int64s.append(Int64(bitPattern: v))
      return
    }
    // Several values, a 9- or 10-byte value, several chunks, unknown fields, malformed bytes.
    try appendList(3, start, end, origin, col)
  }

  private func parseEntry(_ start: Ptr, _ end: Ptr, _ origin: Ptr, _ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    // Fast path: what every serializer writes, key then one value.
    if end - start >= 2 && start.pointee == 0x0A && start[1] < 0x80 {
      let keyLen = Int(start[1])
      let v = start + 2 + keyLen
      if keyLen <= end - start - 2 && v < end && v.pointee == 0x12 {
        var p = v + 1
        let n = try length(&p, end, origin)
        if p + n == end {
          let c = column(named: start + 2, keyLen, limit: end)
          if c >= 0 { beginEntry(c, cols) }
          try parseFeature(p, end, origin, column: c, cols)
          return
        }
      }
    }
    // General path: fields in any order, repeated keys (the last wins) and values (they merge).
    var keyStart = start, keyLen = 0
    var p = start
    while p < end {
      let tag = try tag(&p, end, origin)
      switch tag {
      case 0x0A:
        keyLen = try length(&p, end, origin)
        keyStart = p
        p += keyLen
      case 0x12:
        p += try length(&p, end, origin)
      default:
        if tag >> 3 == 1 || tag >> 3 == 2 { throw .malformed("map entry field has wire type \(tag & 7)", at: p - origin) }
        try skip(tag, &p, end, origin)
      }
    }
    let c = column(named: keyStart, keyLen, limit: end)
    if c >= 0 { beginEntry(c, cols) }
    p = start
    while p < end {
      let tag = try tag(&p, end, origin)
      if tag == 0x12 {
        let n = try length(&p, end, origin)
        try parseFeature(p, p + n, origin, column: c, cols)
        p += n
      } else {
        try skip(tag, &p, end, origin)
      }
    }
  }

  /// The spec column of a key, or -1: first the predictions from the previous records. `limit`
  /// ends the readable bytes after the key (the entry's end), for the one-word name compare.
  @inline(__always)
  private func column(named key: Ptr, _ n: Int, limit: Ptr) -> Int {
    let slot = previousColumn &+ 1
    let guess = Int(successor[slot])
    if guess >= 0 && keys.matches(guess, key, n, limit: limit) {
      previousColumn = guess
      return guess
    }
    let alternate = Int(alternateSuccessor[slot])
    if alternate >= 0 && keys.matches(alternate, key, n, limit: limit) { return swapSuccessors(slot, alternate, guess) }
    return lookupColumn(key, n, slot)
  }

  /// The alternate prediction was right: it becomes the first guess for next time.
  @inline(__always)
  private func swapSuccessors(_ slot: Int, _ alternate: Int, _ guess: Int) -> Int {
    successor[slot] = Int32(alternate)
    alternateSuccessor[slot] = Int32(guess)
    previousColumn = alternate
    return alternate
  }

  private func lookupColumn(_ key: Ptr, _ n: Int, _ slot: Int) -> Int {
    let c = keys.lookup(key, n)
    if c >= 0 {
      alternateSuccessor[slot] = successor[slot]
      successor[slot] = Int32(c)
      previousColumn = c
    }
    return c
  }

  /// A map entry for column c starts: if the key appeared before in this record, protobuf's
  /// map semantics say the last entry wins, so the earlier values go.
  @inline(__always)
  private func beginEntry(_ c: Int, _ cols: UnsafeMutablePointer<ColumnStorage>) {
    irregular = true
    if state[c] >> 8 == stamp || touched[c] != 0 {
      let col = cols + c
      col.pointee.truncate(tag: info[c].kindTag, to: col.pointee.rows.base[row])
      touched[c] = 0  // from here on `state` describes the column
    }
    state[c] = stamp &<< 8
  }

  /// A `Feature` message. Several messages for one entry merge: the same kind appends, a
  /// different kind replaces (oneof).
  private func parseFeature(_ start: Ptr, _ end: Ptr, _ origin: Ptr, column c: Int, _ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    var p = start
    while p < end {
      let tag = try tag(&p, end, origin)
      let field = tag >> 3
      if (1...3).contains(field) {
        guard tag & 7 == 2 else { throw .malformed("Feature kind field has wire type \(tag & 7)", at: p - origin) }
        let n = try length(&p, end, origin)
        let k = UInt8(field)
        if c >= 0 {
          irregular = true
          let col = cols + c
          let want = info[c].kindTag
          let cur = UInt8(truncatingIfNeeded: state[c])
          if cur != k {
            if cur == want {
              col.pointee.truncate(tag: want, to: col.pointee.rows.base[row])
            }
            state[c] = stamp &<< 8 | UInt64(k)
          }
          if k == want {
            try appendList(k, p, p + n, origin, col)
          } else {
            try validateList(k, p, p + n, origin)
          }
        } else {
          try validateList(k, p, p + n, origin)
        }
        p += n
      } else {
        try skip(tag, &p, end, origin)
      }
    }
  }

  private func appendList(_ k: UInt8, _ start: Ptr, _ end: Ptr, _ origin: Ptr, _ col: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    var p = start
    switch k {
    case 3:  // Int64List
      while p < end {
        let tag = try tag(&p, end, origin)
        if tag == 0x0A {
          let n = try length(&p, end, origin)
          let e = p + n
          col.pointee.int64s.reserve(n)  // at most one value per byte
          var out = col.pointee.int64s.base + col.pointee.int64s.count
          let first = out
          while p < e {
            let b = p.pointee
            if b < 0x80 {
              out.pointee = Int64(b)
              p += 1
            } else {
              out.pointee = Int64(bitPattern: try varint(&p, e, origin))
            }
            out += 1
          }
          col.pointee.int64s.count += out - first
        } else if tag == 0x08 {
          col.pointee.int64s.append(Int64(bitPattern: try varint(&p, end, origin)))
        } else if tag >> 3 == 1 {
          throw .malformed("Int64List.value has wire type \(tag & 7)", at: p - origin)
        } else {
          try skip(tag, &p, end, origin)
        }
      }
    case 2:  // FloatList
      while p < end {
        let tag = try tag(&p, end, origin)
        if tag == 0x0A {
          let n = try length(&p, end, origin)
          guard n % 4 == 0 else { throw .malformed("packed float list of \(n) bytes", at: p - origin) }
          appendPackedFloats(p, n, col)
          p += n
        } else if tag == 0x0D {
          guard end - p >= 4 else { throw .malformed("truncated fixed32", at: p - origin) }
          col.pointee.floats.append(Float(bitPattern: UInt32(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt32.self))))
          p += 4
        } else if tag >> 3 == 1 {
          throw .malformed("FloatList.value has wire type \(tag & 7)", at: p - origin)
        } else {
          try skip(tag, &p, end, origin)
        }
      }
    default:  // BytesList
      while p < end {
        let tag = try tag(&p, end, origin)
        if tag == 0x0A {
          let n = try length(&p, end, origin)
          col.pointee.bytes.append(raw: p, count: n)
          col.pointee.bytesStarts.append(col.pointee.bytes.count)
          p += n
        } else if tag >> 3 == 1 {
          throw .malformed("BytesList.value has wire type \(tag & 7)", at: p - origin)
        } else {
          try skip(tag, &p, end, origin)
        }
      }
    }
  }

  private func validateList(_ k: UInt8, _ start: Ptr, _ end: Ptr, _ origin: Ptr) throws(ParseFailure) {
    var p = start
    while p < end {
      let tag = try tag(&p, end, origin)
      if tag >> 3 == 1 {
        switch (k, tag & 7) {
        case (3, 2):
          let n = try length(&p, end, origin)
          let e = p + n
          while p < e { _ = try varint(&p, e, origin) }
        case (3, 0): _ = try varint(&p, end, origin)
        case (2, 2):
          let n = try length(&p, end, origin)
          guard n % 4 == 0 else { throw .malformed("packed float list of \(n) bytes", at: p - origin) }
          p += n
        case (2, 5):
          guard end - p >= 4 else { throw .malformed("truncated fixed32", at: p - origin) }
          p += 4
        case (1, 2): p += try length(&p, end, origin)
        default: throw .malformed("\(Self.kindName(k)).value has wire type \(tag & 7)", at: p - origin)
        }
      } else {
        try skip(tag, &p, end, origin)
      }
    }
  }

  /// Closes the record: a regular record (every spec column it had came through the canonical
  /// entry path, which closed that column's row) only needs its missing columns visited; any
  /// other record gets every column examined, with the shape and kind checks.
  /// `rows` and `present` have room for this record (reserved per chunk).
  @inline(__always)
  private func finishRecord(_ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    if irregular {
      try finishIrregularRecord(cols)
    } else {
      var w = 0
      while w < touchedWords {
        let valid: UInt64 = w == touchedWords &- 1 && columnCount & 7 != 0 ? (1 &<< UInt64(8 &* (columnCount & 7))) &- 1 : ~0
        let bytes = UInt64(littleEndian: UnsafeRawPointer(touched + w &* 8).load(as: UInt64.self))
        // A 1 in the low bit of each byte whose column the record lacks.
        var missing = ~bytes & 0x0101_0101_0101_0101 & valid
        while missing != 0 {
          let c = w &<< 3 | missing.trailingZeroBitCount &>> 3
          try closeMissing(c, cols + c)
          missing &= missing &- 1
        }
        w &+= 1
      }
    }
    row &+= 1
  }

  private func finishIrregularRecord(_ cols: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    let current = stamp
    for c in 0..<columnCount {
      let col = cols + c
      let want = info[c].kindTag
      // A column closed by the canonical path (its last entry) has its touched byte, not a state.
      let st = touched[c] != 0 ? current &<< 8 | UInt64(want) : state[c]
      if st == current &<< 8 | UInt64(want) {
        let count = col.pointee.valueCount(tag: want)
        let fixed = info[c].fixed
        let have = count &- col.pointee.rows.base[row]
        if fixed >= 0 && have != fixed {
          throw .feature(c, "has \(have) value\(have == 1 ? "" : "s") but the spec's fixed shape needs \(fixed)")
        }
        col.pointee.rows.base[row &+ 1] = count
        col.pointee.present.base[row] = 1
      } else {
        if st >> 8 == current && UInt8(truncatingIfNeeded: st) != 0 {
          throw .feature(c, "the data has \(Self.kindName(UInt8(truncatingIfNeeded: st))) but the spec expects \(Self.kindName(want))")
        }
        try closeMissing(c, col)
      }
    }
  }

  /// Closes column c's row for a record without the feature: its default values, if any.
  @inline(__always)
  private func closeMissing(_ c: Int, _ col: UnsafeMutablePointer<ColumnStorage>) throws(ParseFailure) {
    let want = info[c].kindTag
    let fixed = info[c].fixed
    if fixed > 0 {
      if let bits = defaultBits[c] {
        if want == 3 {
          for i in 0..<fixed { col.pointee.int64s.append(Int64(bitPattern: bits[i])) }
        } else {
          for i in 0..<fixed { col.pointee.floats.append(Float(bitPattern: UInt32(truncatingIfNeeded: bits[i]))) }
        }
      } else {
        guard let d = spec.features[c].defaultValue else {
          throw .feature(c, "is required (fixed length, no default) but missing")
        }
        appendDefault(d, fixed, col)
      }
    }
    col.pointee.rows.base[row &+ 1] = col.pointee.valueCount(tag: want)
    col.pointee.present.base[row] = 0
  }

  /// Takes the current row from the columns (they agree: every record closes every column).
  @inline(__always)
  private func beginRows(_ cols: UnsafeMutablePointer<ColumnStorage>) {
    row = columnCount > 0 ? cols.pointee.rows.count &- 1 : 0
  }

  /// Gives every column the row counts `row` implies, after a parse call.
  private func syncRowCounts(_ cols: UnsafeMutablePointer<ColumnStorage>) {
    for c in 0..<columnCount {
      cols[c].rows.count = row &+ 1
      cols[c].present.count = row
    }
  }

  /// Room for at least one more record (single-record callers; chunks reserve up front).
  private func ensureRowCapacity(_ cols: UnsafeMutablePointer<ColumnStorage>) {
    guard columnCount > 0 else { return }
    let rows = cols.pointee.rows, present = cols.pointee.present
    if rows.capacity == rows.count || present.capacity == present.count { reserveRows(64, cols) }
  }

  /// Makes room in every column's row offsets and presence flags for `records` more records.
  private func reserveRows(_ records: Int, _ cols: UnsafeMutablePointer<ColumnStorage>) {
    for c in 0..<columnCount {
      let col = cols + c
      col.pointee.rows.reserve(records)
      col.pointee.present.reserve(records)
    }
  }

  private func appendDefault(_ d: DefaultValues, _ n: Int, _ col: UnsafeMutablePointer<ColumnStorage>) {
    switch d {
    case .int64(let v):
      for i in 0..<n { col.pointee.int64s.append(v.count == 1 ? v[0] : v[i]) }
    case .float(let v):
      for i in 0..<n { col.pointee.floats.append(v.count == 1 ? v[0] : v[i]) }
    case .bytes(let v):
      for i in 0..<n {
        let b = v.count == 1 ? v[0] : v[i]
        b.withUnsafeBytes { if let base = $0.baseAddress { col.pointee.bytes.append(raw: base, count: b.count) } }
        col.pointee.bytesStarts.append(col.pointee.bytes.count)
      }
    }
  }
}
