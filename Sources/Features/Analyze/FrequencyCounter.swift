import CRecordsSupport
import Foundation
import Records

/// Counts byte strings (feature values) for vocabulary fitting: exact while at most
/// `maxTracked` distinct values have been seen; beyond that, the Misra–Gries summary — every value
/// whose frequency exceeds n/(maxTracked/2) is kept and each count is an underestimate by at most
/// `maxUndercount`. Mergeable across threads (the bounds add up).
///
/// A probe-table slot holds the value's fingerprint, its count, length and first 8 bytes, so
/// counting a value of up to 8 bytes (Criteo's hex ids, most numbers) touches one random cache
/// line; longer values compare the rest from an arena of value bytes appended in arrival order.
/// `add(column:)` hashes a whole batch column first and prefetches the slots, so the misses of a
/// table too big for cache overlap.
public final class FrequencyCounter: @unchecked Sendable {
  /// A probe-table slot (32 bytes).
  struct Slot {
    var fingerprint: UInt64
    var count: Int64
    /// Entry index + 1 (0 = empty).
    var entry: Int32
    var length: UInt32
    /// The value's first 8 bytes, zero-padded.
    var prefix: UInt64
  }

  public let maxTracked: Int
  private var slots: UnsafeMutablePointer<Slot>
  private var slotCount: Int
  private var entries = 0
  private var offsets = GrowableBuffer<Int>(capacity: 1024)
  private var arena = GrowableBuffer<UInt8>(capacity: 1 << 16)
  public private(set) var total: Int64 = 0
  /// Upper bound on how much any reported count is below its true value (0 while exact).
  public private(set) var maxUndercount: Int64 = 0

  public init(maxTracked: Int = 1_000_000) {
    self.maxTracked = max(maxTracked, 16)
    slotCount = 1024
    slots = Self.allocateSlots(slotCount)
    offsets.append(0)
  }

  deinit {
    UnsafeMutableRawPointer(slots).deallocate()
    offsets.deallocate(); arena.deallocate()
  }

  private static func allocateSlots(_ n: Int) -> UnsafeMutablePointer<Slot> {
    let p = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Slot>.stride, alignment: 64)
      .bindMemory(to: Slot.self, capacity: n)
    p.initialize(repeating: Slot(fingerprint: 0, count: 0, entry: 0, length: 0, prefix: 0), count: n)
    return p
  }

  public var distinct: Int { entries }
  public var isExact: Bool { maxUndercount == 0 }

  /// Counts one value.
  public func add(_ bytes: UnsafeRawBufferPointer, count: Int64 = 1) {
    add(bytes, fingerprint: FarmHash.fingerprint64(bytes), count: count)
  }

  /// Counts an int64 value by its decimal form (how vocabularies store int64 keys).
  public func add(int64 v: Int64, count: Int64 = 1) {
    TFHash.withDecimal(v) { add($0, count: count) }
  }

  /// Counts every bytes value of a parsed column (all records of its batch).
  public func add(column col: ParsedColumn) {
    let n = col.bytesOffsets.count - 1
    if n <= 0 { return }
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { fps in
      for i in 0..<n {
        let fp = FarmHash.fingerprint64(col.bytes(i))
        fps[i] = fp
        ctr_prefetch(slots + Self.home(fp, slotCount - 1))
      }
      for i in 0..<n { add(col.bytes(i), fingerprint: fps[i], count: 1) }
    }
  }

  @inline(__always)
  private static func home(_ fp: UInt64, _ mask: Int) -> Int { Int(truncatingIfNeeded: fp ^ (fp >> 29)) & mask }

  @inline(__always)
  private static func prefix(_ v: UnsafeRawBufferPointer) -> UInt64 {
    var p: UInt64 = 0
    let n = min(v.count, 8)
    if n > 0 { withUnsafeMutableBytes(of: &p) { $0.baseAddress!.copyMemory(from: v.baseAddress!, byteCount: n) } }
    return p
  }

  @inline(__always)
  private func bytes(of e: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: arena.base + offsets.base[e], count: offsets.base[e + 1] - offsets.base[e])
  }

  func add(_ value: UnsafeRawBufferPointer, fingerprint fp: UInt64, count: Int64) {
    total &+= count
    let mask = slotCount - 1
    let head = Self.prefix(value)
    var i = Self.home(fp, mask)
    while true {
      let slot = slots + i
      if slot.pointee.entry == 0 { break }
      if slot.pointee.fingerprint == fp && Int(slot.pointee.length) == value.count && slot.pointee.prefix == head {
        let e = Int(slot.pointee.entry) - 1
        if value.count <= 8 || memcmp(arena.base + offsets.base[e] + 8, value.baseAddress! + 8, value.count - 8) == 0 {
          slot.pointee.count &+= count
          return
        }
      }
      i = (i + 1) & mask
    }
    if let base = value.baseAddress, value.count > 0 { arena.append(raw: base, count: value.count) }
    offsets.append(arena.count)
    entries += 1
    slots[i] = Slot(fingerprint: fp, count: count, entry: Int32(entries), length: UInt32(value.count), prefix: head)
    if entries * 2 > slotCount { rebuildSlots(slotCount * 2) }
    if entries > maxTracked { prune() }
  }

  /// Rehashes the occupied slots into a table of `size` slots.
  private func rebuildSlots(_ size: Int) {
    let old = slots, oldCount = slotCount
    slotCount = size
    slots = Self.allocateSlots(size)
    for j in 0..<oldCount where old[j].entry != 0 { place(old[j]) }
    UnsafeMutableRawPointer(old).deallocate()
  }

  /// Puts a slot at the first free position from its home (linear probing).
  private func place(_ s: Slot) {
    let mask = slotCount - 1
    var i = Self.home(s.fingerprint, mask)
    while slots[i].entry != 0 { i = (i + 1) & mask }
    slots[i] = s
  }

  /// Misra–Gries step: subtract the median count from every entry and drop those left at zero,
  /// which at least halves the table and bounds every count's error by the total subtracted.
  private func prune() {
    var sorted: [Int64] = []
    sorted.reserveCapacity(entries)
    for j in 0..<slotCount where slots[j].entry != 0 { sorted.append(slots[j].count) }
    sorted.sort()
    let cut = sorted[sorted.count / 2]
    maxUndercount += cut
    // Survivors keep their arrival order in the new arena.
    var survivors: [Slot] = []
    for j in 0..<slotCount where slots[j].entry != 0 && slots[j].count > cut { survivors.append(slots[j]) }
    survivors.sort { $0.entry < $1.entry }
    var newOffsets = GrowableBuffer<Int>(capacity: survivors.count + 16)
    var newArena = GrowableBuffer<UInt8>(capacity: arena.count / 2 + 1024)
    newOffsets.append(0)
    UnsafeMutableRawPointer(slots).deallocate()
    slots = Self.allocateSlots(slotCount)
    for (k, var s) in survivors.enumerated() {
      let b = bytes(of: Int(s.entry) - 1)
      if let base = b.baseAddress, b.count > 0 { newArena.append(raw: base, count: b.count) }
      newOffsets.append(newArena.count)
      s.count -= cut
      s.entry = Int32(k + 1)
      place(s)
    }
    offsets.deallocate(); arena.deallocate()
    offsets = newOffsets
    arena = newArena
    entries = survivors.count
  }

  /// (entry, count) of every tracked value, in arrival order.
  private func entryCounts() -> [(entry: Int, count: Int64, fingerprint: UInt64)] {
    var out: [(entry: Int, count: Int64, fingerprint: UInt64)] = []
    out.reserveCapacity(entries)
    for j in 0..<slotCount where slots[j].entry != 0 { out.append((Int(slots[j].entry) - 1, slots[j].count, slots[j].fingerprint)) }
    out.sort { $0.entry < $1.entry }
    return out
  }

  /// Adds another counter's counts (in its arrival order, so a merge is deterministic).
  public func merge(_ other: FrequencyCounter) {
    let t = total
    for (e, c, fp) in other.entryCounts() { add(other.bytes(of: e), fingerprint: fp, count: c) }
    total = t + other.total
    maxUndercount += other.maxUndercount
  }

  /// The `k` most frequent values with at least `minCount` occurrences, most frequent first,
  /// ties broken by the bytes (so the result does not depend on arrival order).
  public func top(_ k: Int?, minCount: Int64 = 1) -> [(value: [UInt8], count: Int64)] {
    // No arrival-order sort first: the order below is total (the values are distinct).
    var chosen: [(entry: Int, count: Int64)] = []
    for j in 0..<slotCount where slots[j].entry != 0 && slots[j].count >= minCount {
      chosen.append((Int(slots[j].entry) - 1, slots[j].count))
    }
    chosen.sort { a, b in
      if a.count != b.count { return a.count > b.count }
      let x = bytes(of: a.entry), y = bytes(of: b.entry)
      let c = x.count == 0 || y.count == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, min(x.count, y.count))
      return c != 0 ? c < 0 : x.count < y.count
    }
    if let k, chosen.count > k { chosen.removeLast(chosen.count - k) }
    return chosen.map { (Array(bytes(of: $0.entry)), $0.count) }
  }
}

/// Count, mean, standard deviation, min and max, mergeable (Welford's update, Chan's merge).
public struct NumericAccumulator: Sendable {
  public private(set) var count = 0
  public private(set) var missing = 0
  var mean = 0.0
  var m2 = 0.0
  public private(set) var min = Double.infinity
  public private(set) var max = -Double.infinity

  public init() {}

  public mutating func add(_ v: Double) {
    guard !v.isNaN else { missing += 1; return }
    count += 1
    let d = v - mean
    mean += d / Double(count)
    m2 += d * (v - mean)
    if v < min { min = v }
    if v > max { max = v }
  }

  public mutating func addMissing(_ n: Int = 1) { missing += n }

  public mutating func merge(_ o: NumericAccumulator) {
    guard o.count > 0 else { missing += o.missing; return }
    guard count > 0 else { let m = missing; self = o; missing += m; return }
    let n = Double(count + o.count)
    let d = o.mean - mean
    mean += d * Double(o.count) / n
    m2 += o.m2 + d * d * Double(count) * Double(o.count) / n
    count += o.count
    missing += o.missing
    min = Swift.min(min, o.min)
    max = Swift.max(max, o.max)
  }

  public var statistics: NumericStatistics {
    NumericStatistics(count: count, missing: missing, mean: count > 0 ? mean : 0,
                      std: count > 0 ? (m2 / Double(count)).squareRoot() : 0,
                      min: count > 0 ? min : 0, max: count > 0 ? max : 0)
  }
}
