import CRecordsSupport

/// An open-addressing hash map from Int64 ids to dense row indices, collision-free by construction.
///
/// Linear probing over a power-of-two table kept at most half full. Every probe compares the full
/// 64-bit key, so two distinct ids never share a row (unlike hashing ids into buckets, which
/// MODELS.md §6.5 warns against when rows are pruned). A slot stores `row + 1`, with 0 meaning
/// empty, so every Int64 value (including 0 and negatives) is a valid id.
struct IdIndex {
  private(set) var keys: UnsafeMutablePointer<Int64>
  private(set) var slots: UnsafeMutablePointer<Int32>
  private(set) var capacity: Int
  private(set) var count = 0

  init(minimumCapacity: Int = 16) {
    var c = 16
    while c < minimumCapacity * 2 { c <<= 1 }
    capacity = c
    keys = .allocate(capacity: c)
    keys.initialize(repeating: 0, count: c)
    slots = .allocate(capacity: c)
    slots.initialize(repeating: 0, count: c)
  }

  func deallocate() {
    keys.deallocate()
    slots.deallocate()
  }

  /// Bytes held by the two arrays.
  var memoryBytes: Int { capacity * (MemoryLayout<Int64>.stride + MemoryLayout<Int32>.stride) }

  @inline(__always)
  static func hash(_ id: Int64) -> Int {
    Int(truncatingIfNeeded: SeededRandom.mix(UInt64(bitPattern: id)))
  }

  /// Starts loading the slot `find(id)` probes first.
  @inline(__always)
  func prefetch(_ id: Int64) {
    let i = IdIndex.hash(id) & (capacity &- 1)
    ctr_prefetch(slots + i)
    ctr_prefetch(keys + i)
  }

  /// The row of `id`, or -1 when absent.
  @inline(__always)
  func find(_ id: Int64) -> Int {
    let mask = capacity &- 1
    var i = IdIndex.hash(id) & mask
    while true {
      let s = slots[i]
      if s == 0 { return -1 }
      if keys[i] == id { return Int(s) &- 1 }
      i = (i &+ 1) & mask
    }
  }

  /// Inserts `id → row`; `id` must be absent.
  mutating func insert(_ id: Int64, row: Int) {
    if (count &+ 1) * 2 > capacity { grow() }
    let mask = capacity &- 1
    var i = IdIndex.hash(id) & mask
    while slots[i] != 0 {
      assert(keys[i] != id, "IdIndex.insert: id \(id) already present")
      i = (i &+ 1) & mask
    }
    keys[i] = id
    slots[i] = Int32(truncatingIfNeeded: row &+ 1)
    count &+= 1
  }

  private mutating func grow() {
    let oldKeys = keys, oldSlots = slots, oldCapacity = capacity
    capacity = oldCapacity * 2
    keys = .allocate(capacity: capacity)
    keys.initialize(repeating: 0, count: capacity)
    slots = .allocate(capacity: capacity)
    slots.initialize(repeating: 0, count: capacity)
    let mask = capacity &- 1
    for j in 0..<oldCapacity where oldSlots[j] != 0 {
      var i = IdIndex.hash(oldKeys[j]) & mask
      while slots[i] != 0 { i = (i &+ 1) & mask }
      keys[i] = oldKeys[j]
      slots[i] = oldSlots[j]
    }
    oldKeys.deallocate()
    oldSlots.deallocate()
  }
}
