import Features
import Records

/// A batch whose ids have been mapped to row slabs: per table, the unique rows the batch
/// touches; per field, the unique index of each id occurrence and where each record's occurrences
/// start. Produced by one `Resolver` (the only writer to table indices) from a `FeatureBatch`, or
/// gathered by a compute worker from an `InMemoryDataset`; consumed by compute workers, which
/// then touch rows only through these stable pointers.
final class ResolvedBatch: @unchecked Sendable {
  let features: FeatureBatch
  /// Per table: slab pointers of the unique rows.
  var unique: [GrowableBuffer<UnsafeMutablePointer<Float>>]
  /// Per field: unique index (in the linear table) of each id occurrence, in record order.
  var linearPositions: [GrowableBuffer<Int32>]
  /// Per field: the same in the factor table (FM fields).
  var factorPositions: [GrowableBuffer<Int32>]
  /// Per field: count + 1 offsets into the position arrays.
  var rowStarts: [GrowableBuffer<Int32>]
  /// Per field: the weight of each occurrence; left empty for unweighted fields (all weights 1).
  var values: [GrowableBuffer<Float>]
  var step: Int64 = 0

  /// Examples in the batch.
  private(set) var count = 0
  /// Labels, example weights and the row-major dense matrix: `features`' buffers after `Resolver`,
  /// this batch's own after a gather from an in-memory dataset.
  private(set) var labels: UnsafePointer<Float>
  private(set) var weights: UnsafePointer<Float>
  private(set) var dense: UnsafePointer<Float>
  var gatheredLabels = GrowableBuffer<Float>(capacity: 1024)
  var gatheredWeights = GrowableBuffer<Float>(capacity: 1024)
  var gatheredDense = GrowableBuffer<Float>(capacity: 1024)
  /// The packed example of each row, for gathered batches (error messages name the record).
  var gatheredHandles = GrowableBuffer<UnsafePointer<UInt32>>(capacity: 1024)
  private(set) var gatheredPaths: PathRegistry?
  /// Set by the trainer: packed examples for the compute worker that takes this batch to
  /// gather (instead of resolving `features`), the shuffle window they came from, and its
  /// segments this batch reads (released once gathered).
  var pendingHandles = GrowableBuffer<UnsafePointer<UInt32>>(capacity: 1024)
  var pendingSegments: [Int32] = []
  var pendingWindow: ShuffleWindow?

  /// Done with the pending examples (gathered, skipped on resume, or none taken): their
  /// segments go back to the shuffle window, which may recycle them.
  func releasePending() {
    pendingHandles.count = 0
    pendingWindow?.release(self)
    pendingWindow = nil
  }

  init(model: CTRModel) {
    features = FeatureBatch(layout: model.layout)
    unique = model.tables.map { _ in GrowableBuffer(capacity: 1024) }
    linearPositions = model.fields.map { _ in GrowableBuffer(capacity: 1024) }
    factorPositions = model.fields.map { _ in GrowableBuffer(capacity: 1024) }
    rowStarts = model.fields.map { _ in GrowableBuffer(capacity: 1025) }
    values = model.fields.map { _ in GrowableBuffer(capacity: 1024) }
    labels = UnsafePointer(gatheredLabels.base)
    weights = UnsafePointer(gatheredWeights.base)
    dense = UnsafePointer(gatheredDense.base)
  }

  deinit {
    for b in unique { b.deallocate() }
    for b in linearPositions { b.deallocate() }
    for b in factorPositions { b.deallocate() }
    for b in rowStarts { b.deallocate() }
    for b in values { b.deallocate() }
    gatheredLabels.deallocate(); gatheredWeights.deallocate(); gatheredDense.deallocate(); gatheredHandles.deallocate()
    pendingHandles.deallocate()
  }

  /// Points the example data at `features` (after resolving it).
  func useFeatures() {
    count = features.count
    labels = features.labels.baseAddress!
    weights = features.weights.baseAddress!
    dense = features.dense.baseAddress!
    gatheredPaths = nil
  }

  /// Points the example data at the gathered buffers.
  func useGathered(paths: PathRegistry) {
    count = gatheredLabels.count
    labels = UnsafePointer(gatheredLabels.base)
    weights = UnsafePointer(gatheredWeights.base)
    dense = UnsafePointer(gatheredDense.base)
    gatheredPaths = paths
  }

  /// Where row r came from: "FILE, record N" (for error messages).
  func describeRecord(_ r: Int) -> String {
    if let gatheredPaths { return gatheredPaths.describe(gatheredHandles.base[r]) }
    let record = features.recordIndices.isEmpty ? r : features.recordIndices[r]
    let path = features.recordPath(r)
    return (path.isEmpty ? "" : path + ", ") + "record \(record)"
  }
}

/// Maps ids to rows, creating rows for new ids when training. Deduplicates per table with a stamp
/// per row, so a batch's repeated ids share one gradient slot and one optimizer step (FTRL and the
/// group-lasso prox are non-linear in g: applying a repeated id twice would be wrong).
final class Resolver: @unchecked Sendable {
  let model: CTRModel
  private var stamps: RowStamps
  /// Stands in for rows of ids never seen in training (evaluation, serving): all zeros.
  private let zeroSlab: UnsafeMutablePointer<Float>

  init(model: CTRModel) {
    self.model = model
    stamps = RowStamps(tables: model.tables.count)
    let widest = model.tables.map { $0.table.rowStride }.max() ?? 1
    zeroSlab = .allocate(capacity: max(widest, 1))
    zeroSlab.initialize(repeating: 0, count: max(widest, 1))
  }

  deinit {
    zeroSlab.deallocate()
    stamps.deallocate()
  }

  /// Resolves `b.features` (already filled). With `create`, new ids get rows (training).
  func resolve(_ b: ResolvedBatch, create: Bool) {
    let stamp = stamps.nextStamp()
    for t in model.tables.indices {
      b.unique[t].count = 0
      stamps.ensureCapacity(t, rows: model.tables[t].table.rowCount)
    }
    let fb = b.features
    let zero = zeroSlab
    for (fi, f) in model.fields.enumerated() {
      var lin = b.linearPositions[fi], fac = b.factorPositions[fi], starts = b.rowStarts[fi], vals = b.values[fi]
      lin.count = 0; fac.count = 0; starts.count = 0; vals.count = 0
      starts.append(0)
      var uniqueLinear = b.unique[f.linearTable]
      let ft = f.factorTable ?? f.linearTable
      var uniqueFactor = b.unique[ft]
      var cl = stamps.cursor(f.linearTable)
      var cf = stamps.cursor(ft)
      // Held once per field and passed down borrowed: no reference counting per id.
      let linearTable = model.tables[f.linearTable].table
      let factorTable = model.tables[ft].table
      let hasFactor = f.factorTable != nil
      let weighted = f.weighted
      defer {
        b.linearPositions[fi] = lin; b.factorPositions[fi] = fac; b.rowStarts[fi] = starts; b.values[fi] = vals
        b.unique[f.linearTable] = uniqueLinear
        if hasFactor { b.unique[ft] = uniqueFactor }
        stamps.store(cl, f.linearTable)
        if hasFactor { stamps.store(cf, ft) }
      }
      @inline(__always)
      func position(_ table: EmbeddingTable, _ c: inout RowStamps.Cursor, _ unique: inout GrowableBuffer<UnsafeMutablePointer<Float>>,
                    _ id: Int64) -> Int32 {
        var row: Int
        if create {
          row = table.lookupRow(id)
        } else {
          row = table.findRow(id)
          if row < 0 {
            // Unseen id: one shared zero row per table and batch.
            if c.missing < 0 {
              c.missing = Int32(unique.count)
              unique.append(zero)
            }
            return c.missing
          }
        }
        if row >= c.capacity { c.grow(rows: table.rowCount) }
        return c.position(row, stamp: stamp, unique: &unique) { table.slab(ofRow: row) }
      }
      @inline(__always)
      func add(_ id: Int64, _ value: Float) {
        lin.append(position(linearTable, &cl, &uniqueLinear, id))
        if hasFactor { fac.append(position(factorTable, &cf, &uniqueFactor, id)) }
        if weighted { vals.append(value) }
      }
      switch f.source {
      case .sparse(let slot):
        let s = fb.sparse(slot)
        let ids = s.ids.baseAddress, weights = s.weights.baseAddress, offsets = s.offsets.baseAddress!
        for r in 0..<fb.count {
          for i in offsets[r]..<offsets[r + 1] { add(ids![i], weighted ? weights![i] : 1) }
          starts.append(Int32(lin.count))
        }
      case .sequence(let slot):
        let s = fb.sequence(slot)
        let m = fb.layout.sequences[slot].maxLength
        for r in 0..<fb.count {
          for i in 0..<Int(s.lengths[r]) { add(s.ids[r * m + i], 1) }
          starts.append(Int32(lin.count))
        }
      }
    }
    b.useFeatures()
  }
}

/// Per-table "seen in this batch" marks: per row, a stamp and the row's unique index, side by
/// side so checking a row costs one cache line. Bumping the stamp clears every mark at once, so
/// deduplication costs one load per id occurrence.
struct RowStamps {
  /// One row's mark.
  struct Mark {
    var stamp: UInt32
    var slot: Int32
  }

  private(set) var marks: [UnsafeMutablePointer<Mark>]
  private(set) var capacities: [Int]
  private var stamp: UInt32 = 0

  init(tables: Int) {
    marks = (0..<tables).map { _ in UnsafeMutablePointer<Mark>.allocate(capacity: 1) }
    capacities = Array(repeating: 0, count: tables)
  }

  /// Frees the marks; the owner calls it once.
  func deallocate() {
    for m in marks { m.deallocate() }
  }

  /// A fresh stamp for the next batch (clearing all marks when the counter wraps).
  mutating func nextStamp() -> UInt32 {
    stamp &+= 1
    if stamp == 0 {
      for t in marks.indices { marks[t].update(repeating: Mark(stamp: 0, slot: 0), count: capacities[t]) }
      stamp = 1
    }
    return stamp
  }

  mutating func ensureCapacity(_ t: Int, rows: Int) {
    if rows <= capacities[t] { return }
    var c = cursor(t)
    c.grow(rows: rows)
    store(c, t)
  }

  /// Table t's marks in raw pointers, so the per-id loop makes no Swift array traffic.
  struct Cursor {
    var marks: UnsafeMutablePointer<Mark>
    var capacity: Int
    /// The unique index of the zero row standing in for unseen ids (-1: none yet).
    var missing: Int32 = -1

    /// The unique index of `row` in this batch, appending its slab when it is new.
    @inline(__always)
    mutating func position(_ row: Int, stamp: UInt32, unique: inout GrowableBuffer<UnsafeMutablePointer<Float>>,
                           slab: () -> UnsafeMutablePointer<Float>) -> Int32 {
      if marks[row].stamp == stamp { return marks[row].slot }
      let u = Int32(unique.count)
      marks[row] = Mark(stamp: stamp, slot: u)
      unique.append(slab())
      return u
    }

    /// Grows the marks to cover `rows` rows.
    mutating func grow(rows: Int) {
      let newCap = max(rows, capacity * 2, 1024)
      let nm = UnsafeMutablePointer<Mark>.allocate(capacity: newCap)
      nm.initialize(repeating: Mark(stamp: 0, slot: 0), count: newCap)
      nm.update(from: marks, count: capacity)
      marks.deallocate()
      marks = nm
      capacity = newCap
    }
  }

  func cursor(_ t: Int) -> Cursor { Cursor(marks: marks[t], capacity: capacities[t]) }

  mutating func store(_ c: Cursor, _ t: Int) {
    marks[t] = c.marks
    capacities[t] = c.capacity
  }
}
