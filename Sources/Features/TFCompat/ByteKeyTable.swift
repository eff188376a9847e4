import CRecordsSupport

/// An immutable open-addressing set of byte strings, indexed by `keyHash`, so a lookup from a raw
/// buffer neither allocates nor builds a String. On keys of up to 16 bytes `keyHash` is two loads
/// and two multiplies, cheaper than a FarmHash fingerprint; a vocabulary computes the fingerprint
/// (which picks the OOV bucket, as TensorFlow does) only for a key that is not in the table.
///
/// Each slot is 32 bytes and holds the key's hash, index, length and first 16 bytes, so a probe
/// of a key of up to 16 bytes (Criteo's 8-hex-digit values, most ids) reads one cache line;
/// longer keys compare the rest from an arena. Vocabularies of hundreds of thousands of keys do
/// not fit in cache, so that one line is usually a miss: `prefetch(hash:)` lets a batch of
/// lookups overlap them.
@usableFromInline
final class ByteKeyTable: @unchecked Sendable {
  @usableFromInline
  struct Slot {
    @usableFromInline var hash: UInt64
    /// Key index, or -1 for an empty slot.
    @usableFromInline var index: Int32
    @usableFromInline var length: UInt32
    /// The key's first 16 bytes, zero-padded.
    @usableFromInline var prefix: (UInt64, UInt64)
  }

  @usableFromInline let slots: UnsafeMutablePointer<Slot>
  @usableFromInline let mask: Int
  /// Every key's bytes, back to back; key i is `arena[starts[i] ..< starts[i + 1]]`.
  @usableFromInline let arena: UnsafeMutablePointer<UInt8>
  @usableFromInline let starts: UnsafeMutablePointer<Int>
  @usableFromInline let count: Int
  /// Where `Slot.prefix` starts within a slot.
  @usableFromInline let prefixOffset = MemoryLayout<Slot>.offset(of: \Slot.prefix)!

  private init(count: Int, capacity: Int, arenaBytes: Int) {
    self.count = count
    mask = capacity - 1
    slots = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Slot>.stride, alignment: 64)
      .bindMemory(to: Slot.self, capacity: capacity)
    slots.initialize(repeating: Slot(hash: 0, index: -1, length: 0, prefix: (0, 0)), count: capacity)
    arena = .allocate(capacity: max(arenaBytes, 1))
    starts = .allocate(capacity: count + 1)
  }

  deinit {
    UnsafeMutableRawPointer(slots).deallocate()
    arena.deallocate()
    starts.deallocate()
  }

  /// Builds the table, or returns the positions of the first repeated key.
  static func build(_ keys: [[UInt8]]) -> Result<ByteKeyTable, DuplicateKey> {
    // At most ~70% full, so probes stay short and always reach an empty slot.
    var capacity = 8
    while capacity * 7 < keys.count * 10 { capacity *= 2 }
    let table = ByteKeyTable(count: keys.count, capacity: capacity, arenaBytes: keys.reduce(0) { $0 + $1.count })
    var offset = 0
    table.starts[0] = 0
    for (i, key) in keys.enumerated() {
      key.withUnsafeBytes { k in
        if k.count > 0 { (table.arena + offset).update(from: k.bindMemory(to: UInt8.self).baseAddress!, count: k.count) }
      }
      offset += key.count
      table.starts[i + 1] = offset
    }
    for (i, key) in keys.enumerated() {
      let found: Int? = key.withUnsafeBytes { k in
        let h = keyHash(k)
        if let other = table.index(of: k, hash: h) { return other }
        var slot = Int(truncatingIfNeeded: h) & table.mask
        while table.slots[slot].index >= 0 { slot = (slot + 1) & table.mask }
        table.slots[slot] = Slot(hash: h, index: Int32(i), length: UInt32(k.count), prefix: prefix(of: k))
        return nil
      }
      if let found { return .failure(DuplicateKey(first: found, second: i)) }
    }
    return .success(table)
  }

  struct DuplicateKey: Error {
    var first: Int
    var second: Int
  }

  /// The first 16 bytes of `key`, zero-padded.
  @usableFromInline @inline(__always)
  static func prefix(of key: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
    var p: (UInt64, UInt64) = (0, 0)
    withUnsafeMutableBytes(of: &p) { dst in
      let n = min(key.count, 16)
      if n > 0 { dst.baseAddress!.copyMemory(from: key.baseAddress!, byteCount: n) }
    }
    return p
  }

  /// The table's hash of a key: the key's bytes in two words (overlapping loads cover 1–16 bytes
  /// exactly), mixed with its length; keys over 16 bytes take FarmHash. Distinct keys of up to 16
  /// bytes and the same length give distinct word pairs, and the probe compares the bytes anyway.
  @inlinable @inline(__always)
  static func keyHash(_ key: UnsafeRawBufferPointer) -> UInt64 {
    let n = key.count
    guard n > 0, let p = key.baseAddress else { return 0x9E37_79B9_7F4A_7C15 }
    let a: UInt64, b: UInt64
    if n >= 8 {
      if n > 16 { return FarmHash.fingerprint64(key) }
      a = p.loadUnaligned(as: UInt64.self)
      b = p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
    } else if n >= 4 {
      a = UInt64(p.loadUnaligned(as: UInt32.self))
      b = UInt64(p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
    } else {
      a = UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: n &>> 1, as: UInt8.self)) &<< 8
        | UInt64(p.load(fromByteOffset: n &- 1, as: UInt8.self)) &<< 16
      b = 0
    }
    // Two multiply-xorshift rounds (SplitMix64's constants): the slot takes the low bits.
    var h = (a ^ UInt64(truncatingIfNeeded: n) &<< 56) &* 0xBF58_476D_1CE4_E5B9
    h ^= (b ^ (h &>> 29)) &* 0x94D0_49BB_1331_11EB
    return h ^ (h &>> 32)
  }

  /// Starts loading the slot a key of this hash probes first.
  @inlinable @inline(__always)
  func prefetch(hash h: UInt64) {
    ctr_prefetch(slots + (Int(truncatingIfNeeded: h) & mask))
  }

  /// The index of `key`, whose `keyHash` the caller has already computed, or nil.
  @inlinable @inline(__always)
  func index(of key: UnsafeRawBufferPointer, hash h: UInt64) -> Int? {
    var slot = Int(truncatingIfNeeded: h) & mask
    while true {
      let s = slots + slot
      let i = Int(s.pointee.index)
      if i < 0 { return nil }
      if s.pointee.hash == h && Int(s.pointee.length) == key.count {
        let n = key.count
        if n == 0 { return i }
        if prefixEqual(s, key.baseAddress!, n) && (n <= 16 || bytesEqual(arena + starts[i] + 16, key.baseAddress! + 16, n - 16)) {
          return i
        }
      }
      slot = (slot + 1) & mask
    }
  }
}

extension ByteKeyTable {
  /// Whether the first min(n, 16) bytes of a key of length n equal slot s's prefix: two
  /// overlapping loads on each side cover 4...16 bytes without a loop (the byte loop cost more
  /// than the rest of a lookup's compare).
  @inlinable @inline(__always)
  func prefixEqual(_ s: UnsafeMutablePointer<Slot>, _ key: UnsafeRawPointer, _ n: Int) -> Bool {
    let p = UnsafeRawPointer(s) + prefixOffset
    if n >= 8 {
      let last = min(n, 16) &- 8
      return p.loadUnaligned(as: UInt64.self) == key.loadUnaligned(as: UInt64.self)
        && p.loadUnaligned(fromByteOffset: last, as: UInt64.self) == key.loadUnaligned(fromByteOffset: last, as: UInt64.self)
    }
    if n >= 4 {
      return p.loadUnaligned(as: UInt32.self) == key.loadUnaligned(as: UInt32.self)
        && p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self) == key.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
    }
    return bytesEqual(p, key, n)
  }
}

/// Whether n bytes are equal, a word at a time (vocabulary keys are mostly short, and this keeps
/// the inlinable lookup free of a libc import).
@inlinable @inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
    i += 8
  }
  while i < n {
    if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
    i += 1
  }
  return true
}
