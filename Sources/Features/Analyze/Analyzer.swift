import Foundation
import Records

/// Settings for one analysis pass.
public struct AnalyzerOptions: Sendable {
  public var threads = defaultThreadCount
  public var batchSize = 1024
  public var compression: Compression = .auto
  public var reader = ReaderOptions()
  /// Distinct values tracked exactly per vocabulary column and thread before Misra–Gries pruning
  /// starts (exact counts merge to the same result in any order; pruned ones are approximate).
  public var maxTrackedValues = 1_000_000
  /// KLL sketch size; the rank error bound is `QuantileSketch.errorBound(k:)`.
  public var sketchK = 400
  /// Logical partitions of the data, each with its own sketches and statistics merged in order at
  /// the end: fixed, so results do not depend on the thread count.
  public var partitions = 8
  public init() {}
}

/// What the analyzer saw and decided, per column (printed by `ctrkit analyze`).
public struct AnalysisReport: Sendable {
  /// One column's fitted result in words.
  public struct ColumnNote: Sendable {
    public var column: String
    public var note: String
  }

  public var records = 0
  public var skipped = SkipReport()
  public var notes: [ColumnNote] = []
}

/// One streaming pass over TFRecord shards that fits what the config leaves open: vocabularies
/// (top-k / min count, with frequencies), quantile boundaries (KLL), and numeric statistics. Each
/// worker keeps its own accumulators (chunks go to workers deterministically) and they are merged
/// in partition order, so the result depends neither on timing nor on the thread count.
public enum Analyzer {
  /// Returns the fitted, self-contained config and a report.
  public static func fit(config: FeatureConfig, paths: [String], options: AnalyzerOptions = AnalyzerOptions(),
                         baseDirectory: String = ".") throws -> (FeatureConfig, AnalysisReport) {
    var tasks: [AnalysisTask] = []
    var specFeatures: [FeatureSpec] = []
    var specIndex: [String: Int] = [:]
    func source(_ c: ColumnConfig) throws -> Int {
      let kind = c.resolvedDType.valueKind
      if let i = specIndex[c.sourceName] {
        guard specFeatures[i].kind == kind else {
          throw ConfigError(file: "<config>", key: c.name, "feature '\(c.sourceName)' is read with two different dtypes")
        }
        return i
      }
      specFeatures.append(FeatureSpec(c.sourceName, kind))
      specIndex[c.sourceName] = specFeatures.count - 1
      return specFeatures.count - 1
    }
    for (i, c) in config.columns.enumerated() {
      switch c.type {
      case .numeric:
        tasks.append(AnalysisTask(column: i, source: try source(c), kind: .statistics))
      case .bucketized:
        tasks.append(AnalysisTask(column: i, source: try source(c), kind: c.boundaries == nil ? .quantiles : .statistics))
      case .vocabulary:
        if c.vocabulary == nil && c.vocabularyFile == nil { tasks.append(AnalysisTask(column: i, source: try source(c), kind: .vocabulary)) }
      case .sequence:
        if c.sequenceIdType == .vocabulary && c.vocabulary == nil && c.vocabularyFile == nil {
          tasks.append(AnalysisTask(column: i, source: try source(c), kind: .vocabulary))
        }
      default:
        break
      }
    }
    var fitted = config
    var report = AnalysisReport()
    // File vocabularies are inlined, so the fitted config needs nothing beside it.
    for (i, c) in config.columns.enumerated() where c.vocabulary == nil {
      guard let file = c.vocabularyFile else { continue }
      let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
      fitted.columns[i].vocabulary = try VocabularyLookup.readVocabularyFile(path: path, vocabularySize: c.vocabularySize)
      fitted.columns[i].vocabularyFile = nil
      fitted.columns[i].vocabularySize = nil
      report.notes.append(.init(column: c.name, note: "inlined \(fitted.columns[i].vocabulary!.count) entries from \(file)"))
    }
    let workers = max(1, options.threads)
    let partitions = max(1, options.partitions)
    let accumulators = (0..<partitions).map { _ in Accumulators(tasks: tasks, options: options) }
    let counters = (0..<workers).map { _ in VocabularyCounters(tasks: tasks, options: options) }
    let spec = try ParseSpec(specFeatures)
    let records = LockedValue(0)
    if !tasks.isEmpty {
      report.skipped = try ParallelExampleScan.run(paths: paths, spec: spec, compression: options.compression,
                                                   batchSize: options.batchSize, threads: workers, partitions: partitions,
                                                   options: options.reader) { partition, batch in
        accumulators[partition].add(batch)
        counters[partition % workers].add(batch)  // a partition always runs on the same worker
        records.update { $0 += batch.count }
      }
    } else {
      // Nothing to fit, but still read the data once so a bad file is reported now, not at training.
      report.skipped = try ParallelExampleScan.run(paths: paths, spec: try ParseSpec([]), compression: options.compression,
                                                   batchSize: options.batchSize, threads: workers,
                                                   options: options.reader) { _, batch in records.update { $0 += batch.count } }
    }
    report.records = records.value
    let merged = accumulators[0]
    for a in accumulators.dropFirst() { merged.merge(a) }
    let vocab = counters[0]
    vocab.merge(Array(counters.dropFirst()), threads: workers)
    let tops = vocab.top(columns: config.columns, tasks: tasks, threads: workers)
    for (t, task) in tasks.enumerated() {
      let c = config.columns[task.column]
      switch task.kind {
      case .statistics:
        let s = merged.numeric[t].statistics
        fitted.columns[task.column].statistics = s
        report.notes.append(.init(column: c.name, note: "\(s.count) values, \(s.missing) records missing; mean \(fmt(s.mean)), std \(fmt(s.std)), range [\(fmt(s.min)), \(fmt(s.max))]"))
      case .quantiles:
        let sketch = merged.sketches[t]
        let b = sketch.boundaries(buckets: c.quantiles ?? 2)
        if b.isEmpty {
          throw ConfigError(file: "<config>", key: c.name, "cannot fit quantiles: the data has no values for '\(c.sourceName)' or only one distinct value")
        }
        fitted.columns[task.column].boundaries = b
        fitted.columns[task.column].statistics = merged.numeric[t].statistics
        report.notes.append(.init(column: c.name, note: "\(b.count + 1) buckets from \(sketch.count) values (asked for \(c.quantiles ?? 2); ties merge buckets); rank error ≤ \(fmt(100 * QuantileSketch.errorBound(k: sketch.k)))% with 99% confidence"))
      case .vocabulary:
        let counter = vocab.counters[t]!
        let top = tops[t]
        var words: [String] = []
        var counts: [Int] = []
        var invalid = 0
        for (bytes, n) in top {
          guard let s = String(validating: bytes, as: UTF8.self) else { invalid += 1; continue }
          words.append(s)
          counts.append(Int(n))
        }
        if words.isEmpty {
          throw ConfigError(file: "<config>", key: c.name, "the fitted vocabulary is empty: no value of '\(c.sourceName)' reaches min_count \(c.minCount ?? 1)")
        }
        fitted.columns[task.column].vocabulary = words
        fitted.columns[task.column].frequencies = counts
        var note = "kept \(words.count) of \(counter.distinct) distinct values (top_k \(c.topK.map(String.init) ?? "all"), min_count \(c.minCount ?? 1)) from \(counter.total) occurrences"
        if !counter.isExact { note += "; more than \(options.maxTrackedValues) distinct values: counts are approximate, each low by at most \(counter.maxUndercount)" }
        if invalid > 0 { note += "; \(invalid) values that are not valid UTF-8 were left out" }
        report.notes.append(.init(column: c.name, note: note))
      }
    }
    fitted.fitted = true
    return (fitted, report)
  }

  static func fmt(_ v: Double) -> String { String(format: "%.6g", v) }
}

struct AnalysisTask {
  enum Kind { case statistics, quantiles, vocabulary }
  let column: Int
  let source: Int
  let kind: Kind
}

/// One partition's running statistics and quantile sketches.
final class Accumulators: @unchecked Sendable {
  let tasks: [AnalysisTask]
  var numeric: [NumericAccumulator]
  var sketches: [QuantileSketch]

  init(tasks: [AnalysisTask], options: AnalyzerOptions) {
    self.tasks = tasks
    numeric = tasks.map { _ in NumericAccumulator() }
    sketches = tasks.map { _ in QuantileSketch(k: options.sketchK) }
  }

  func add(_ batch: ParsedBatch) {
    // Through buffer pointers: per value, the arrays' uniqueness and bounds checks cost as much
    // as the update itself.
    numeric.withUnsafeMutableBufferPointer { numeric in
      sketches.withUnsafeMutableBufferPointer { sketches in
        for (t, task) in tasks.enumerated() where task.kind != .vocabulary {
          let col = batch.column(task.source)
          let sketch = task.kind == .quantiles
          let offsets = col.rowOffsets
          let missing = (0..<batch.count).reduce(0) { $0 + (offsets[$1] == offsets[$1 + 1] ? 1 : 0) }
          if missing > 0 { numeric[t].addMissing(missing) }
          let values = offsets[0]..<offsets[batch.count]
          if col.kind == .int64 {
            for i in values {
              let v = Double(col.int64Values[i])
              numeric[t].add(v)
              if sketch { sketches[t].insert(v) }
            }
          } else {
            for i in values {
              let v = Double(col.floatValues[i])
              numeric[t].add(v)
              if sketch { sketches[t].insert(v) }
            }
          }
        }
      }
    }
  }

  func merge(_ o: Accumulators) {
    for t in tasks.indices {
      numeric[t].merge(o.numeric[t])
      sketches[t].merge(o.sketches[t])
    }
  }
}

/// One worker's value counts for the vocabularies being fitted.
final class VocabularyCounters: @unchecked Sendable {
  let tasks: [AnalysisTask]
  let counters: [FrequencyCounter?]

  init(tasks: [AnalysisTask], options: AnalyzerOptions) {
    self.tasks = tasks
    counters = tasks.map { $0.kind == .vocabulary ? FrequencyCounter(maxTracked: options.maxTrackedValues) : nil }
  }

  func add(_ batch: ParsedBatch) {
    for (t, task) in tasks.enumerated() {
      guard let counter = counters[t] else { continue }
      let col = batch.column(task.source)
      if col.kind == .bytes {
        counter.add(column: col)
      } else {
        for v in col.int64Values { counter.add(int64: v) }
      }
    }
  }

  /// Each vocabulary column's kept values (top-k / min count), ranked on `threads` threads: the
  /// ranking sorts every distinct value, which would otherwise run serially after the scan.
  func top(columns: [ColumnConfig], tasks: [AnalysisTask], threads: Int) -> [[(value: [UInt8], count: Int64)]] {
    let ranked = counters.indices.filter { counters[$0] != nil }
    let results = LockedValue([[(value: [UInt8], count: Int64)]](repeating: [], count: counters.count))
    parallelForEach(ranked.count, threads: threads, name: "ctrkit-rank") { [self] k in
      let t = ranked[k]
      let c = columns[tasks[t].column]
      let top = counters[t]!.top(c.topK, minCount: Int64(c.minCount ?? 1))
      results.update { $0[t] = top }
    }
    return results.value
  }

  /// Merges other workers' counts into these, one column per thread at a time.
  func merge(_ others: [VocabularyCounters], threads: Int) {
    let columns = counters.indices.filter { counters[$0] != nil }
    parallelForEach(columns.count, threads: threads, name: "ctrkit-merge") { [self] k in
      let t = columns[k]
      for o in others { counters[t]!.merge(o.counters[t]!) }
    }
  }
}
