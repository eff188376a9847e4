#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRecordsSupport
import Features
import Foundation
import Records

// Training examples between the reader and the compute workers, resolved to table rows and
// packed one after another. One thread (the packer) maps a transformed batch's ids to rows,
// creating rows for new ids, and writes each example as a run of 32-bit words:
//
//   [occurrences n][label][weight][record index lo][record index hi][file]
//   n × [field, linear row, factor row (only when a factor table is shared between fields)]
//   n × value (only when a column is weighted)
//   dense inputs (layout.denseWidth floats)
//
// An example is then just a pointer to its first word (a "handle"). Shuffling moves handles;
// a compute worker gathers a batch from its handles (deduplicating rows per table) and trains.
// The same records serve the streaming shuffle window and the in-memory dataset.

/// The shape of a model's packed examples.
struct PackedLayout: Sendable {
  static let headerWords = 6
  let fieldCount: Int
  let tableCount: Int
  let denseWidth: Int
  /// Words per occurrence: field, linear row, and the factor row when the model has factors.
  let entryWidth: Int
  let storesValues: Bool
  let linearTable: [Int]
  let factorTable: [Int]
  let weighted: [Bool]
  /// Per field: its linear and factor tables belong to it alone, so both see the same ids in
  /// the same order and give every id the same row: one row number (and one deduplication)
  /// serves both.
  let lockstep: [Bool]

  init(model: CTRModel) {
    fieldCount = model.fields.count
    tableCount = model.tables.count
    denseWidth = model.layout.denseWidth
    linearTable = model.fields.map { $0.linearTable }
    factorTable = model.fields.map { $0.factorTable ?? -1 }
    weighted = model.fields.map { $0.weighted }
    var users = [Int](repeating: 0, count: model.tables.count)
    for f in model.fields {
      users[f.linearTable] += 1
      if let t = f.factorTable { users[t] += 1 }
    }
    lockstep = model.fields.map { f in f.factorTable.map { users[$0] == 1 && users[f.linearTable] == 1 } ?? false }
    entryWidth = zip(factorTable, lockstep).contains { $0 >= 0 && !$1 } ? 3 : 2
    storesValues = model.fields.contains { $0.weighted }
  }

  /// Words of an example with n occurrences.
  @inline(__always)
  func words(occurrences n: Int) -> Int {
    Self.headerWords + n * entryWidth + (storesValues ? n : 0) + denseWidth
  }
}

/// File names of the examples' provenance, shared by the packer (which adds) and error messages.
final class PathRegistry: @unchecked Sendable {
  private let lock = NSLock()
  private var paths: [String] = []
  private var index: [String: UInt32] = [:]

  func id(_ path: String) -> UInt32 {
    lock.lock(); defer { lock.unlock() }
    if let i = index[path] { return i }
    paths.append(path)
    index[path] = UInt32(paths.count - 1)
    return UInt32(paths.count - 1)
  }

  func path(_ id: UInt32) -> String {
    lock.lock(); defer { lock.unlock() }
    return Int(id) < paths.count ? paths[Int(id)] : ""
  }

  /// "FILE, record N" of a packed example.
  func describe(_ handle: UnsafePointer<UInt32>) -> String {
    let record = Int64(bitPattern: UInt64(handle[3]) | UInt64(handle[4]) << 32)
    let p = path(handle[5])
    return (p.isEmpty ? "" : p + ", ") + "record \(record)"
  }
}

/// A block of packed examples: the packer fills it from one transformed batch, then it is only
/// read. Handles point into `words`, which never moves once the segment is filled.
final class ExampleSegment: @unchecked Sendable {
  private(set) var words = LargeBuffer<UInt32>()
  private(set) var handles = LargeBuffer<UnsafePointer<UInt32>>()
  /// The segment's index in its shuffle window (which keeps the segment's counters).
  let number: Int32

  init(number: Int32) { self.number = number }

  deinit {
    words.deallocate()
    handles.deallocate()
  }

  var count: Int { handles.count }
  var bytes: Int { words.bytes + handles.bytes }

  /// Empties the segment for reuse (its handles become invalid).
  func reset() {
    words.removeAll()
    handles.removeAll()
  }

  /// Packs a transformed batch, creating rows for new ids (the caller is the only thread that
  /// touches the tables' id indices).
  func pack(_ fb: FeatureBatch, model: CTRModel, layout: PackedLayout, paths: PathRegistry) {
    let n = fb.count
    let W = layout.entryWidth
    // The files of this batch's rows, mapped to registry ids once per batch.
    let batchPaths = fb.recordPaths
    let batchPathIds = batchPaths.map { paths.id($0) }
    let defaultPath = paths.id(fb.path)
    var occurrences = [Int](repeating: 0, count: n)
    for f in model.fields {
      switch f.source {
      case .sparse(let slot):
        let offs = fb.sparse(slot).offsets
        for r in 0..<n { occurrences[r] &+= offs[r &+ 1] &- offs[r] }
      case .sequence(let slot):
        let lengths = fb.sequence(slot).lengths
        for r in 0..<n { occurrences[r] += Int(lengths[r]) }
      }
    }
    var total = 0
    for r in 0..<n { total += layout.words(occurrences: occurrences[r]) }
    let start = words.count
    words.extend(by: total)
    let base = words.base!
    // Header and dense part of every example, and where each one's occurrences go (raw
    // memory: the occurrence loop below writes them once per id).
    let cursor = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
    let valueCursor = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
    defer {
      cursor.deallocate()
      valueCursor.deallocate()
    }
    var at = start
    for r in 0..<n {
      let h = base + at
      let k = occurrences[r]
      h[0] = UInt32(k)
      h[1] = fb.labels[r].bitPattern
      h[2] = fb.weights[r].bitPattern
      let record = UInt64(bitPattern: Int64(fb.recordIndices.isEmpty ? r : fb.recordIndices[r]))
      h[3] = UInt32(truncatingIfNeeded: record)
      h[4] = UInt32(truncatingIfNeeded: record >> 32)
      let pi = fb.recordPathIndex(r)
      h[5] = pi >= 0 && Int(pi) < batchPathIds.count ? batchPathIds[Int(pi)] : defaultPath
      // `words` was grown once above and does not move while the segment lives.
      handles.append(UnsafePointer(h))
      cursor[r] = at + PackedLayout.headerWords
      valueCursor[r] = at + PackedLayout.headerWords + k * W
      let denseAt = valueCursor[r] + (layout.storesValues ? k : 0)
      if layout.denseWidth > 0 {
        let src = fb.dense.baseAddress! + r * layout.denseWidth
        for j in 0..<layout.denseWidth { base[denseAt + j] = src[j].bitPattern }
      }
      at += layout.words(occurrences: k)
    }
    // Occurrences, field by field (each example's stay in field order).
    for (fi, f) in model.fields.enumerated() {
      let linear = model.tables[f.linearTable].table
      let factor = f.factorTable.map { model.tables[$0].table }
      let weighted = f.weighted
      let lockstep = layout.lockstep[fi]
      let storesValues = layout.storesValues
      let direct = linear.directMap
      @inline(__always)
      func put(_ r: Int, _ id: Int64, _ value: Float) {
        let e = base + cursor[r]
        e[0] = UInt32(fi)
        // The direct map first (one load), else the table's lookup, which creates new rows.
        var row = direct.covers(id) ? direct.row(id) : -1
        if row < 0 { row = linear.lookupRow(id) }
        e[1] = UInt32(row)
        // Creates the factor row too; in lockstep it must be the same row.
        let factorRow = factor.map { $0.lookupRow(id) } ?? -1
        if lockstep {
          precondition(factorRow == row, "\(f.name): linear row \(row) and factor row \(factorRow) of id \(id) differ")
        }
        if W == 3 { e[2] = factorRow >= 0 ? UInt32(factorRow) : UInt32.max }
        cursor[r] &+= W
        if storesValues {
          base[valueCursor[r]] = (weighted ? value : 1).bitPattern
          valueCursor[r] &+= 1
        }
      }
      switch f.source {
      case .sparse(let slot):
        let s = fb.sparse(slot)
        let ids = s.ids.baseAddress, weights = s.weights.baseAddress, offs = s.offsets
        let total = offs[n]
        let ahead = 16
        @inline(__always)
        func prefetch(_ id: Int64) {
          if direct.covers(id) { direct.prefetch(id) } else { linear.prefetchLookup(id) }
          if !lockstep { factor?.prefetchLookup(id) }
        }
        for i in 0..<min(ahead, total) { prefetch(ids![i]) }
        let factorDirect = factor?.directMap
        if direct.limit > 0, let ids, W == 2, !storesValues, factor == nil || (lockstep && factorDirect != nil) {
          // The common case (one row per id, no values, no separate factor row), with its
          // conditions settled once: the general loop re-tests each of them at every id.
          // A known id costs one load per table; a lockstep field's factor row must be the
          // same row, and any other case (a new id, an id outside the map) takes `put`.
          // (`while` loops: a range's checks cost as much as an id here.)
          var i = offs[0]
          for r in 0..<n {
            let end = offs[r &+ 1]
            while i < end {
              if i &+ ahead < total { prefetch(ids[i &+ ahead]) }
              let id = ids[i]
              i &+= 1
              if direct.covers(id) {
                let row = direct.row(id)
                // (The factor map is checked on its own bounds: it need not cover what the linear one does.)
                if row >= 0 && (factorDirect == nil || (factorDirect.unsafelyUnwrapped.covers(id) && factorDirect.unsafelyUnwrapped.row(id) == row)) {
                  let e = base + cursor[r]
                  e[0] = UInt32(fi)
                  e[1] = UInt32(truncatingIfNeeded: row)
                  cursor[r] &+= 2
                  continue
                }
              }
              put(r, id, 1)
            }
          }
          continue
        }
        for r in 0..<n {
          for i in offs[r]..<offs[r + 1] {
            if i &+ ahead < total { prefetch(ids![i &+ ahead]) }
            put(r, ids![i], weighted ? weights![i] : 1)
          }
        }
      case .sequence(let slot):
        let s = fb.sequence(slot)
        let m = fb.layout.sequences[slot].maxLength
        for r in 0..<n {
          for i in 0..<Int(s.lengths[r]) { put(r, s.ids[r * m + i], 1) }
        }
      }
    }
  }
}

/// TensorFlow's `shuffle(buffer_size)` over packed examples: each batch draws its examples
/// uniformly from a window of up to `capacity` examples that refills from the input, seeded so a
/// run (and a resumed run) sees the same order. With capacity 0 examples keep file order.
/// A segment is recycled once all its examples were taken and every batch that took some has
/// been gathered (compute workers report that through `release`).
///
/// Segments are named by their index in `all`, and their counters live in flat arrays here: the
/// per-example loop of `take` then makes no reference counting and no search.
final class ShuffleWindow: @unchecked Sendable {
  /// A waiting example: its packed words and the index of its segment.
  private struct Entry {
    var handle: UnsafePointer<UInt32>
    var segment: Int32
  }

  let capacity: Int
  private var rng: SeededRandom
  private let lock = NSLock()
  private var entries: [Entry] = []
  private var fifoHead = 0
  private var free: [Int32] = []
  /// Every segment made by this window (for the in-memory dataset), indexed by segment number.
  private(set) var all: [ExampleSegment] = []
  /// Per segment: examples not yet taken, batches holding examples not yet gathered, and the
  /// last `take` that drew from it (so a batch lists each segment once).
  private var untaken: [Int] = []
  private var pendingBatches: [Int] = []
  private var lastTake: [UInt64] = []
  private var takeCount: UInt64 = 0
  /// Keep every segment (building the in-memory dataset).
  let retain: Bool

  init(capacity: Int, seed: UInt64, retain: Bool) {
    self.capacity = capacity
    rng = SeededRandom(seed: seed)
    self.retain = retain
  }

  /// A segment to pack into: a recycled one, or a new one.
  func obtainSegment() -> ExampleSegment {
    lock.lock(); defer { lock.unlock() }
    if let i = free.popLast() {
      let s = all[Int(i)]
      s.reset()
      return s
    }
    let s = ExampleSegment(number: Int32(all.count))
    all.append(s)
    untaken.append(0)
    pendingBatches.append(0)
    lastTake.append(0)
    return s
  }

  var count: Int { entries.count - fifoHead }
  var isFull: Bool { count >= max(capacity, 1) }

  /// Adds a packed segment's examples.
  func add(_ segment: ExampleSegment) {
    let n = segment.count
    let number = segment.number
    // No reserveCapacity: `append` grows the window by doubling, where reserving exactly
    // `count + n` made nearly every add reallocate and copy the whole window (64 copies of 1 MB
    // per 250k examples with the shipped configs).
    for i in 0..<n { entries.append(Entry(handle: segment.handles[i], segment: number)) }
    lock.lock()
    untaken[Int(number)] += n
    lock.unlock()
  }

  /// Moves up to `n` examples into `b` (their handles, to gather on a worker).
  func take(_ n: Int, into b: ResolvedBatch) {
    b.pendingHandles.count = 0
    b.pendingHandles.reserve(n)
    b.pendingSegments.removeAll(keepingCapacity: true)
    let k = min(n, count)
    lock.lock()
    defer { lock.unlock() }
    takeCount &+= 1
    let stamp = takeCount
    let out = b.pendingHandles.base
    var segments = b.pendingSegments
    b.pendingSegments = []
    untaken.withUnsafeMutableBufferPointer { untaken in
      pendingBatches.withUnsafeMutableBufferPointer { pendingBatches in
        lastTake.withUnsafeMutableBufferPointer { lastTake in
          entries.withUnsafeMutableBufferPointer { entries in
            @inline(__always)
            func took(_ j: Int, _ e: Entry) {
              out[j] = e.handle
              let s = Int(e.segment)
              untaken[s] &-= 1
              if lastTake[s] != stamp {
                lastTake[s] = stamp
                segments.append(e.segment)
                pendingBatches[s] &+= 1
              }
            }
            if capacity == 0 {
              for j in 0..<k { took(j, entries[fifoHead + j]) }
            } else {
              var last = entries.count
              for j in 0..<k {
                let i = Int(rng.next() % UInt64(last))
                took(j, entries[i])
                last -= 1
                entries[i] = entries[last]
              }
            }
          }
        }
      }
    }
    b.pendingSegments = segments
    b.pendingHandles.count = k
    if capacity == 0 {
      fifoHead += k
      if fifoHead > 4096 && fifoHead * 2 > entries.count {
        entries.removeFirst(fifoHead)
        fifoHead = 0
      }
    } else {
      entries.removeLast(k)
    }
  }

  /// A worker has gathered `b`: its segments may now be recycled.
  func release(_ b: ResolvedBatch) {
    lock.lock()
    defer { lock.unlock() }
    for number in b.pendingSegments {
      let s = Int(number)
      pendingBatches[s] -= 1
      if untaken[s] == 0 && pendingBatches[s] == 0 && !retain { free.append(number) }
    }
    b.pendingSegments.removeAll(keepingCapacity: true)
  }
}

/// The training examples kept in memory after the first epoch (`--in-memory`): the packed
/// segments of that epoch, and a handle per example. Later epochs skip reading, parsing,
/// transformation and id lookup, and shuffle all examples fully (a fresh permutation of the
/// handles per epoch), like PyTorch training from in-memory tensors. Rows stay valid because
/// in-memory epochs create none: every id got its row when it was packed.
final class InMemoryDataset: @unchecked Sendable {
  let segments: [ExampleSegment]
  private(set) var handles = LargeBuffer<UnsafePointer<UInt32>>()

  init(segments: [ExampleSegment]) {
    self.segments = segments
    for s in segments { handles.append(s.handles.base!, count: s.count) }
  }

  deinit { handles.deallocate() }

  var count: Int { handles.count }
  var memoryBytes: Int { segments.reduce(handles.bytes) { $0 + $1.bytes } }

  /// Shuffles the handles for an epoch (Fisher–Yates, seeded); batches are then consecutive
  /// slices of them.
  func shuffle(seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    guard count > 1, let p = handles.base else { return }
    // Start from packing order, so the order depends on the seed alone.
    var k = 0
    for s in segments {
      p.advanced(by: k).update(from: s.handles.base!, count: s.count)
      k += s.count
    }
    for i in stride(from: count - 1, to: 0, by: -1) {
      let j = Int(rng.next() % UInt64(i + 1))
      let t = p[i]
      p[i] = p[j]
      p[j] = t
    }
  }
}

/// Per compute worker: deduplication marks and raw pointers for `gather`.
final class Gatherer {
  let layout: PackedLayout
  let paths: PathRegistry
  private var stamps: RowStamps
  private let counts: UnsafeMutablePointer<Int32>
  private let uniqueCounts: UnsafeMutablePointer<Int32>
  private let linOut: UnsafeMutablePointer<UnsafeMutablePointer<Int32>>
  private let facOut: UnsafeMutablePointer<UnsafeMutablePointer<Int32>?>
  private let valOut: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
  private let startsOut: UnsafeMutablePointer<UnsafeMutablePointer<Int32>>
  private let uniqueOut: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<Float>>>
  private let marksOf: UnsafeMutablePointer<UnsafeMutablePointer<RowStamps.Mark>>
  private let capacityOf: UnsafeMutablePointer<Int>
  private let locatorOf: UnsafeMutablePointer<SlabLocator>
  private let rowStrideOf: UnsafeMutablePointer<Int>
  private let linTableOf: UnsafeMutablePointer<Int32>
  private let facTableOf: UnsafeMutablePointer<Int32>
  private let lockstepOf: UnsafeMutablePointer<Bool>
  /// Per field: occurrences per example (the largest batch average so far, rounded up), to size
  /// the outputs of the next batch.
  private let maxPerExample: UnsafeMutablePointer<Int>
  private let fieldCapacity: UnsafeMutablePointer<Int>
  private let uniqueCapacity: UnsafeMutablePointer<Int>

  init(model: CTRModel, layout: PackedLayout, paths: PathRegistry) {
    self.layout = layout
    self.paths = paths
    let f = max(layout.fieldCount, 1), t = max(layout.tableCount, 1)
    stamps = RowStamps(tables: layout.tableCount)
    counts = .allocate(capacity: f)
    uniqueCounts = .allocate(capacity: t)
    linOut = .allocate(capacity: f)
    facOut = .allocate(capacity: f)
    valOut = .allocate(capacity: f)
    startsOut = .allocate(capacity: f)
    uniqueOut = .allocate(capacity: t)
    marksOf = .allocate(capacity: t)
    capacityOf = .allocate(capacity: t)
    locatorOf = .allocate(capacity: t)
    rowStrideOf = .allocate(capacity: t)
    linTableOf = .allocate(capacity: f)
    facTableOf = .allocate(capacity: f)
    lockstepOf = .allocate(capacity: f)
    maxPerExample = .allocate(capacity: f)
    fieldCapacity = .allocate(capacity: f)
    uniqueCapacity = .allocate(capacity: t)
    for fi in 0..<layout.fieldCount {
      linTableOf[fi] = Int32(layout.linearTable[fi])
      facTableOf[fi] = Int32(layout.factorTable[fi])
      lockstepOf[fi] = layout.lockstep[fi]
      maxPerExample[fi] = 0
    }
    for t in 0..<layout.tableCount {
      (locatorOf + t).initialize(to: model.tables[t].table.locator)
      rowStrideOf[t] = model.tables[t].table.rowStride
    }
    syncMarks()
  }

  deinit {
    stamps.deallocate()
    counts.deallocate(); uniqueCounts.deallocate(); linOut.deallocate(); facOut.deallocate(); valOut.deallocate()
    startsOut.deallocate(); uniqueOut.deallocate(); marksOf.deallocate(); capacityOf.deallocate()
    locatorOf.deallocate(); rowStrideOf.deallocate(); linTableOf.deallocate(); facTableOf.deallocate()
    lockstepOf.deallocate(); maxPerExample.deallocate(); fieldCapacity.deallocate(); uniqueCapacity.deallocate()
  }

  /// Grows field fi's outputs to hold `capacity` occurrences (keeping what was written).
  @inline(never)
  private func reserveField(_ fi: Int, _ capacity: Int, _ b: ResolvedBatch) {
    let have = Int(counts[fi])
    var cap = Int.max
    /// One of the field's outputs, holding what was written, grown to `capacity`.
    func grow<T>(_ buffer: inout GrowableBuffer<T>) -> UnsafeMutablePointer<T> {
      buffer.count = have
      buffer.reserve(capacity - have)
      cap = min(cap, buffer.capacity)
      return buffer.base
    }
    linOut[fi] = grow(&b.linearPositions[fi])
    facOut[fi] = layout.factorTable[fi] >= 0 ? grow(&b.factorPositions[fi]) : nil
    valOut[fi] = layout.weighted[fi] ? grow(&b.values[fi]) : nil
    fieldCapacity[fi] = cap
  }

  @inline(never)
  private func growUnique(_ t: Int, _ b: ResolvedBatch) {
    b.unique[t].count = Int(uniqueCounts[t])
    b.unique[t].reserve(b.unique[t].count + 1)
    uniqueOut[t] = b.unique[t].base
    uniqueCapacity[t] = b.unique[t].capacity
  }

  private func syncMarks() {
    for t in 0..<layout.tableCount {
      marksOf[t] = stamps.marks[t]
      capacityOf[t] = stamps.capacities[t]
    }
  }

  /// Fills `b` with the examples of `handles[0..<n]`: labels, weights, dense rows, and per
  /// field the deduplicated row positions, as `Resolver` would from the same examples' ids.
  func gather(_ handles: UnsafePointer<UnsafePointer<UInt32>>, count n: Int, into b: ResolvedBatch) {
    let L = layout
    let F = L.fieldCount, T = L.tableCount, width = L.denseWidth, W = L.entryWidth
    let H = PackedLayout.headerWords
    let stamp = stamps.nextStamp()
    // Outputs start at the size the last batches needed and grow on demand (rarely).
    for fi in 0..<F {
      // The largest occurrences per example seen so far (a batch's total over its size,
      // rounded up: an estimate, which growth on demand backs).
      let guess = n * max(maxPerExample[fi], 1)
      b.linearPositions[fi].count = 0
      b.factorPositions[fi].count = 0
      b.values[fi].count = 0
      b.rowStarts[fi].count = 0
      b.rowStarts[fi].reserve(n + 1)
      startsOut[fi] = b.rowStarts[fi].base
      startsOut[fi][0] = 0
      counts[fi] = 0
      fieldCapacity[fi] = 0
      reserveField(fi, guess, b)
    }
    for t in 0..<T {
      b.unique[t].count = 0
      b.unique[t].reserve(n)
      uniqueOut[t] = b.unique[t].base
      uniqueCapacity[t] = b.unique[t].capacity
      uniqueCounts[t] = 0
    }
    b.gatheredLabels.count = 0; b.gatheredLabels.reserve(n)
    b.gatheredWeights.count = 0; b.gatheredWeights.reserve(n)
    b.gatheredHandles.count = 0; b.gatheredHandles.reserve(n)
    b.gatheredDense.count = 0; b.gatheredDense.reserve(n * width)
    // No values and no separate factor rows (logistic regression, FM with a factor table per
    // field): the occurrence loop then skips its tests for those, which were a fifth of its
    // instructions (a flag set once is cheaper than loading two optionals per occurrence).
    let simple = W == 2 && !L.storesValues && (0..<F).allSatisfy { facTableOf[$0] < 0 || lockstepOf[$0] }
    let labelsOut = b.gatheredLabels.base, weightsOut = b.gatheredWeights.base
    let handlesOut = b.gatheredHandles.base, denseOut = b.gatheredDense.base

    @inline(__always)
    func position(_ t: Int, _ row: Int) -> Int32 {
      if row >= capacityOf[t] {
        // A row created after this worker last looked (streaming epochs create rows as they go).
        stamps.ensureCapacity(t, rows: row + 1)
        syncMarks()
      }
      let m = marksOf[t] + row
      if m.pointee.stamp == stamp { return m.pointee.slot }
      let u = uniqueCounts[t]
      if Int(u) == uniqueCapacity[t] { growUnique(t, b) }
      m.pointee = RowStamps.Mark(stamp: stamp, slot: u)
      addUnique(t, row, u)
      return u
    }

    /// Appends row's slab to table t's unique rows at index u, and starts loading it: the
    /// forward pass reads it soon, and it is rarely in cache.
    @inline(__always)
    func addUnique(_ t: Int, _ row: Int, _ u: Int32) {
      let slab = locatorOf[t].slab(row)
      uniqueOut[t][Int(u)] = slab
      var line = 0
      repeat { ctr_prefetch(slab + line); line += 16 } while line < rowStrideOf[t]
      uniqueCounts[t] = u &+ 1
    }

    /// A lockstep field's row in both its tables: one mark (the linear table's), and the factor
    /// table's unique rows kept index for index with the linear table's.
    @inline(__always)
    func pairPosition(_ lt: Int, _ ft: Int, _ row: Int) -> Int32 {
      let before = uniqueCounts[lt]
      let u = position(lt, row)
      if u == before {
        if Int(u) == uniqueCapacity[ft] { growUnique(ft, b) }
        addUnique(ft, row, u)
      }
      return u
    }

    // Examples are random, so their words are not in cache: prefetch in stages, the first line
    // 8 examples ahead, the rest 4 ahead, the rows' marks 2 ahead.
    @inline(__always)
    func prefetchRest(_ r: Int) {
      let h = handles[r]
      let end = L.words(occurrences: Int(h[0]))
      var p = 16
      while p < end { ctr_prefetch(h + p); p += 16 }
    }
    @inline(__always)
    func prefetchMarks(_ r: Int) {
      let h = handles[r]
      for j in 0..<Int(h[0]) {
        let e = h + H + j * W
        let fi = Int(e[0])
        let lt = Int(linTableOf[fi]), row = Int(e[1])
        if row < capacityOf[lt] { ctr_prefetch(marksOf[lt] + row) }
        if W == 3, facTableOf[fi] >= 0, !lockstepOf[fi] {
          let ft = Int(facTableOf[fi]), frow = Int(e[2])
          if frow < capacityOf[ft] { ctr_prefetch(marksOf[ft] + frow) }
        }
      }
    }
    for r in 0..<min(n, 8) { ctr_prefetch(handles[r]) }
    for r in 0..<min(n, 4) { prefetchRest(r) }
    for r in 0..<min(n, 2) { prefetchMarks(r) }

    for r in 0..<n {
      if r + 8 < n { ctr_prefetch(handles[r + 8]) }
      if r + 4 < n { prefetchRest(r + 4) }
      if r + 2 < n { prefetchMarks(r + 2) }
      let h = handles[r]
      let k = Int(h[0])
      labelsOut[r] = Float(bitPattern: h[1])
      weightsOut[r] = Float(bitPattern: h[2])
      handlesOut[r] = h
      let entries = h + H
      let values = entries + k * W
      if width > 0 {
        let dense = UnsafeRawPointer(values + (L.storesValues ? k : 0)).assumingMemoryBound(to: Float.self)
        (denseOut + r * width).update(from: dense, count: width)
      }
      for j in 0..<k {
        let entry = entries + j &* W
        let fi = Int(entry[0])
        let c = Int(counts[fi])
        if c == fieldCapacity[fi] { reserveField(fi, 2 * c + 16, b) }
        if lockstepOf[fi] {
          let u = pairPosition(Int(linTableOf[fi]), Int(facTableOf[fi]), Int(entry[1]))
          linOut[fi][c] = u
          facOut[fi].unsafelyUnwrapped[c] = u
        } else {
          linOut[fi][c] = position(Int(linTableOf[fi]), Int(entry[1]))
          if !simple, let fo = facOut[fi] { fo[c] = position(Int(facTableOf[fi]), Int(entry[2])) }
        }
        if !simple, let vo = valOut[fi] { vo[c] = Float(bitPattern: values[j]) }
        counts[fi] = Int32(truncatingIfNeeded: c &+ 1)
      }
      for fi in 0..<F { startsOut[fi][r &+ 1] = counts[fi] }
    }
    for fi in 0..<F {
      let c = Int(counts[fi])
      if n > 0 { maxPerExample[fi] = max(maxPerExample[fi], (c + n - 1) / n) }
      b.linearPositions[fi].count = c
      if facOut[fi] != nil { b.factorPositions[fi].count = c }
      if valOut[fi] != nil { b.values[fi].count = c }
      b.rowStarts[fi].count = n + 1
    }
    for t in 0..<T { b.unique[t].count = Int(uniqueCounts[t]) }
    b.gatheredLabels.count = n
    b.gatheredWeights.count = n
    b.gatheredHandles.count = n
    b.gatheredDense.count = n * width
    b.useGathered(paths: paths)
  }
}
