import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Streams TFRecord shards through a per-chunk job run on `threads` workers (parsing, and
/// whatever follows it), framing on one more thread, with memory bounded by fixed pools.
///
/// Outputs come in file order (shards in the order given, records in file order); one output
/// covers up to `batchSize` records of one file. The output returned by `next()` stays valid
/// until the following call, when it goes back to the pool.
public final class RecordPipeline<Output: AnyObject>: @unchecked Sendable {
  /// Per worker: turns a chunk of raw records into an output (reusing the output's buffers).
  public typealias Job = @Sendable (RecordChunk, Output) throws -> Void

  public let paths: [String]
  public let batchSize: Int
  private let work: BlockingQueue<RecordChunk?>
  private let freeChunks: BlockingQueue<RecordChunk>
  private let freeOutputs: BlockingQueue<Output>
  private let results = NSCondition()
  private var ready: [Int: Result<Output, Error>] = [:]
  private var finalSequence: Int?
  private var nextSequence = 0
  private var lent: Output?
  private var runningThreads: [JoinableThread] = []
  private let workerCount: Int
  private let cancelled = ManagedAtomicFlag()
  private var skipReport = SkipReport()
  private let progressLock = NSLock()
  private var bytesDone: UInt64 = 0
  /// Total size of the input files (compressed bytes), for progress and ETA.
  public let totalBytes: UInt64
  /// Records handed out so far.
  public private(set) var recordsRead = 0

  /// - Parameters:
  ///   - threads: workers running `makeJob()`'s job (the framer is one more thread).
  ///   - makeOutput: creates the pooled outputs.
  ///   - makeJob: called once per worker, so each can own scratch state (a parser, say).
  public init(paths: [String], compression: Compression = .auto, batchSize: Int = 1024, threads: Int = defaultThreadCount,
              options: ReaderOptions = ReaderOptions(), makeOutput: () -> Output, makeJob: () -> Job) {
    self.paths = paths
    self.batchSize = max(1, batchSize)
    totalBytes = paths.reduce(0) { total, p in
      var st = stat()
      return total + (stat(p, &st) == 0 ? UInt64(st.st_size) : 0)
    }
    let workers = max(1, threads)
    workerCount = workers
    let depth = workers * 2 + 2
    work = BlockingQueue(capacity: depth)
    freeChunks = BlockingQueue()
    freeOutputs = BlockingQueue()
    for _ in 0..<(depth + workers) { freeChunks.push(RecordChunk(capacity: self.batchSize * 1024)) }
    for _ in 0..<(workers + 3) { freeOutputs.push(makeOutput()) }

    runningThreads.append(JoinableThread(name: "ctrkit-framer") { [self] in frame(compression: compression, options: options) })
    for i in 0..<workers {
      let job = makeJob()
      runningThreads.append(JoinableThread(name: "ctrkit-worker-\(i)") { [self] in workLoop(job) })
    }
  }

  deinit { shutdown() }

  /// Stops the threads; pending outputs are dropped.
  public func shutdown() {
    cancelled.set()
    work.close()
    freeChunks.close()
    freeOutputs.close()
    results.lock(); results.broadcast(); results.unlock()
    for t in runningThreads { t.join() }
    runningThreads.removeAll()
  }

  /// What `skipCorrupt` skipped so far.
  public var skipped: SkipReport {
    progressLock.lock(); defer { progressLock.unlock() }
    return skipReport
  }

  /// Input bytes (compressed, as on disk) the framer has consumed.
  public var bytesRead: UInt64 {
    progressLock.lock(); defer { progressLock.unlock() }
    return bytesDone
  }

  private func deliver(_ seq: Int, _ r: Result<Output, Error>) {
    results.lock()
    ready[seq] = r
    results.broadcast()
    results.unlock()
  }

  private func frame(compression: Compression, options: ReaderOptions) {
    var seq = 0
    var finishedBytes: UInt64 = 0
    defer {
      results.lock()
      finalSequence = min(finalSequence ?? seq, seq)  // an error seen by `next()` may have ended the stream earlier
      results.broadcast()
      results.unlock()
      for _ in 0..<workerCount { work.push(nil) }
    }
    for path in paths {
      if cancelled.isSet { return }
      let reader: TFRecordReader
      do {
        reader = try TFRecordReader(path: path, compression: compression, options: options)
      } catch {
        deliver(seq, .failure(error))
        seq += 1
        return
      }
      while !cancelled.isSet {
        guard let chunk = freeChunks.pop() else { return }
        chunk.removeAll()
        var failure: Error?
        var more = true
        do {
          more = try reader.fill(chunk, maxRecords: batchSize)
        } catch {
          failure = error
        }
        progressLock.lock()
        bytesDone = finishedBytes + reader.fileOffset
        progressLock.unlock()
        if chunk.count > 0 {
          chunk.sequence = seq
          seq += 1
          if !work.push(chunk) { return }
        } else {
          freeChunks.push(chunk)
        }
        if let failure {
          deliver(seq, .failure(failure))
          seq += 1
          return
        }
        if !more || chunk.count < batchSize { break }
      }
      progressLock.lock()
      finishedBytes += reader.diskSize ?? reader.fileOffset
      bytesDone = finishedBytes
      skipReport.events += reader.skipped.events
      progressLock.unlock()
    }
  }

  private func workLoop(_ job: Job) {
    // Take an output before a chunk: chunks leave the queue in order, so the worker holding the
    // oldest chunk always has an output to fill, and ordered delivery cannot deadlock.
    while let output = freeOutputs.pop() {
      guard let item = work.pop(), let chunk = item else {
        freeOutputs.push(output)
        return
      }
      do {
        try job(chunk, output)
        deliver(chunk.sequence, .success(output))
      } catch {
        freeOutputs.push(output)
        deliver(chunk.sequence, .failure(error))
      }
      freeChunks.push(chunk)
    }
  }

  /// The next output in order, or nil after the last file.
  public func next() throws -> Output? {
    if let lent {
      freeOutputs.push(lent)
      self.lent = nil
    }
    results.lock()
    defer { results.unlock() }
    while true {
      if let finalSequence, nextSequence >= finalSequence { return nil }
      if let r = ready.removeValue(forKey: nextSequence) {
        nextSequence += 1
        switch r {
        case .success(let output):
          lent = output
          return output
        case .failure(let error):
          finalSequence = nextSequence  // nothing after an error
          throw error
        }
      }
      if cancelled.isSet { return nil }
      results.wait()
    }
  }

  /// Counts records handed out (callers that know their output's size report it).
  public func noteRecords(_ n: Int) { recordsRead += n }
}

/// Streams TFRecord shards of `tf.Example`s as columnar batches: a `RecordPipeline` whose workers
/// run `ExampleParser`. The batch returned by `next()` stays valid until the following call.
public final class ExampleReader: @unchecked Sendable {
  public let spec: ParseSpec
  let pipeline: RecordPipeline<ParsedBatch>

  /// - Parameters:
  ///   - threads: parser threads (the framer is one more thread, mostly waiting on I/O or inflate).
  ///   - options: framing strictness, e.g. `skipCorrupt`.
  public init(paths: [String], spec: ParseSpec, compression: Compression = .auto, batchSize: Int = 1024,
              threads: Int = defaultThreadCount, options: ReaderOptions = ReaderOptions()) {
    self.spec = spec
    pipeline = RecordPipeline(paths: paths, compression: compression, batchSize: batchSize, threads: threads,
                              options: options, makeOutput: { ParsedBatch(spec: spec) }) {
      let parser = ExampleParser(spec: spec)
      return { chunk, batch in try parser.parse(chunk, into: batch) }
    }
  }

  public var paths: [String] { pipeline.paths }
  public var skipped: SkipReport { pipeline.skipped }
  public var recordsRead: Int { pipeline.recordsRead }
  public func shutdown() { pipeline.shutdown() }

  /// The next batch in order, or nil at the end of the last file.
  public func next() throws -> ParsedBatch? {
    let b = try pipeline.next()
    if let b { pipeline.noteRecords(b.count) }
    return b
  }
}

/// A set-once flag readable from any thread.
final class ManagedAtomicFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var value = false
  func set() { lock.lock(); value = true; lock.unlock() }
  var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// Parses TFRecord shards on `threads` workers and hands every batch to `body` on the worker
/// that parsed it, for order-insensitive work (statistics, analysis). Chunk i belongs to
/// partition i % partitions, and a partition's chunks all go to one worker, in order: state kept
/// per partition is the same whatever the thread count and timing.
public enum ParallelExampleScan {
  /// Returns what `skipCorrupt` skipped; rethrows the first error (from reading, parsing or `body`).
  @discardableResult
  public static func run(paths: [String], spec: ParseSpec, compression: Compression = .auto, batchSize: Int = 1024,
                         threads: Int = defaultThreadCount, partitions: Int? = nil, options: ReaderOptions = ReaderOptions(),
                         body: @escaping @Sendable (_ partition: Int, _ batch: ParsedBatch) throws -> Void) throws -> SkipReport {
    let workers = max(1, threads)
    let parts = max(1, partitions ?? workers)
    let queues = (0..<workers).map { _ in BlockingQueue<RecordChunk?>(capacity: 2) }
    let freeChunks = BlockingQueue<RecordChunk>()
    for _ in 0..<(workers * 3 + 1) { freeChunks.push(RecordChunk(capacity: batchSize * 1024)) }
    let failure = FirstError()
    let skipped = LockedValue(SkipReport())
    var threadsRunning: [JoinableThread] = []
    threadsRunning.append(JoinableThread(name: "ctrkit-scan-framer") {
      var seq = 0
      defer { for q in queues { q.push(nil) } }
      for path in paths {
        if failure.isSet { return }
        do {
          let reader = try TFRecordReader(path: path, compression: compression, options: options)
          while !failure.isSet {
            guard let chunk = freeChunks.pop() else { return }
            chunk.removeAll()
            let more = try reader.fill(chunk, maxRecords: batchSize)
            if chunk.count == 0 { freeChunks.push(chunk); break }
            chunk.sequence = seq
            queues[(seq % parts) % workers].push(chunk)
            seq += 1
            if !more || chunk.count < batchSize { break }
          }
          skipped.update { $0.events += reader.skipped.events }
        } catch {
          failure.record(error)
          return
        }
      }
    })
    for w in 0..<workers {
      threadsRunning.append(JoinableThread(name: "ctrkit-scan-\(w)") {
        let parser = ExampleParser(spec: spec)
        let batch = ParsedBatch(spec: spec)
        while let item = queues[w].pop(), let chunk = item {
          if !failure.isSet {
            do {
              try parser.parse(chunk, into: batch)
              try body(chunk.sequence % parts, batch)
            } catch {
              failure.record(error)
            }
          }
          freeChunks.push(chunk)
        }
      })
    }
    for t in threadsRunning { t.join() }
    if let e = failure.error { throw e }
    return skipped.value
  }
}

/// The first error reported by any thread.
final class FirstError: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Error?
  private var flag = false
  func record(_ e: Error) { lock.lock(); if stored == nil { stored = e; flag = true }; lock.unlock() }
  var error: Error? { lock.lock(); defer { lock.unlock() }; return stored }
  var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

/// A value shared between threads behind a lock.
public final class LockedValue<T>: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: T
  public init(_ value: T) { stored = value }
  public var value: T { lock.lock(); defer { lock.unlock() }; return stored }
  public func update<R>(_ body: (inout T) throws -> R) rethrows -> R {
    lock.lock(); defer { lock.unlock() }
    return try body(&stored)
  }
}
