import Features
import Foundation
import Records

/// What a training run is asked to do beyond its experiment config.
public struct TrainOptions: Sendable {
  public var trainPaths: [String] = []
  public var evalPaths: [String] = []
  public var outputDirectory = "model"
  public var logDirectory: String?
  public var epochs: Int?
  public var threads: Int?
  public var resume = false
  /// Keep the training examples in memory (as table rows) after the first epoch: later epochs
  /// skip reading, parsing, transformation and id lookup, and shuffle all examples fully.
  public var inMemory = false
  public var compression: Compression = .auto
  public var skipCorrupt = false
  /// Print a progress line on the terminal.
  public var progress = false
  public init() {}
}

/// One evaluation during training.
public struct EvaluationRecord: Sendable {
  public var step: Int64
  public var epoch: Int
  public var report: MetricReport
}

/// The outcome of a training run.
public struct TrainResult: Sendable {
  public var state: TrainingState
  public var examples: Int64
  public var seconds: Double
  public var trainLoss: Double?
  public var evaluations: [EvaluationRecord] = []
  public var stoppedEarly = false
  public var tables: [(name: String, rows: Int, liveRows: Int, bytes: Int)] = []
  public var memoryBytes = 0
  /// Bytes of the in-memory dataset (with `inMemory`).
  public var inMemoryBytes = 0
  public var skipped = SkipReport()
  /// Per epoch: examples trained and wall seconds, evaluation and checkpoint excluded, so that
  /// epochs after the first from an in-memory cache measure steady-state training speed.
  /// `cpuSeconds` is the process's user + system CPU time in the epoch (all threads), a figure
  /// less sensitive than wall time to other jobs on a shared machine.
  public var epochTimings: [(epoch: Int, examples: Int64, seconds: Double, cpuSeconds: Double)] = []
  public var examplesPerSecond: Double { seconds > 0 ? Double(examples) / seconds : 0 }
}

/// Trains a CTR model from TFRecord shards (or batches cached in memory).
///
/// Threads: the reading pipeline (framing, parsing and transformation on workers); one driver
/// that shuffles, assembles batches and resolves ids to rows (the only writer to the tables'
/// indices); and `threads` compute workers that run forward/backward and update rows through
/// stable pointers without locks (Hogwild; the dense block updates under a lock). With one
/// compute thread the run is deterministic for a seed, and a resumed run matches an
/// uninterrupted one.
public final class Trainer {
  public let experiment: ExperimentConfig
  public let options: TrainOptions
  public let transformer: Transformer
  public let model: CTRModel
  let log: @Sendable (String) -> Void
  private var events: EventFileWriter?

  public init(experiment: ExperimentConfig, options: TrainOptions, log: @escaping @Sendable (String) -> Void = { _ in }) throws {
    self.experiment = experiment
    self.options = options
    self.log = log
    transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    model = try CTRModel(experiment: experiment, layout: transformer.layout)
  }

  var batchSize: Int { experiment.training.batchSize ?? 1024 }
  var epochs: Int { options.epochs ?? experiment.training.epochs ?? 1 }
  var computeThreads: Int { options.threads ?? experiment.training.threads ?? defaultThreadCount }
  var seed: UInt64 { experiment.training.seed ?? 1 }

  // MARK: - Compute workers

  private final class Work: @unchecked Sendable {
    let queue: BlockingQueue<ResolvedBatch?>
    let free: BlockingQueue<ResolvedBatch>
    let done = NSCondition()
    var submitted = 0
    var completed = 0
    var lossSum = 0.0
    var weightSum = 0.0
    var error: Error?
    init(depth: Int) {
      queue = BlockingQueue(capacity: depth)
      free = BlockingQueue()
    }
    func finish(loss: Double, weight: Double, error e: Error?) {
      done.lock()
      completed += 1
      lossSum += loss
      weightSum += weight
      if error == nil, let e { error = e }
      done.broadcast()
      done.unlock()
    }
    /// Waits until every submitted batch is trained; returns (and clears) the loss since the last call.
    func drain() -> (Double, Double, Error?) {
      done.lock()
      defer { done.unlock() }
      while completed < submitted { done.wait() }
      let r = (lossSum, weightSum, error)
      lossSum = 0
      weightSum = 0
      return r
    }
    var firstError: Error? {
      done.lock(); defer { done.unlock() }
      return error
    }
    func takeLoss() -> (Double, Double) {
      done.lock(); defer { done.unlock() }
      let r = (lossSum, weightSum)
      lossSum = 0
      weightSum = 0
      return r
    }
  }

  // MARK: - Training

  /// Runs the whole training: epochs, evaluations, early stopping, checkpoints, event files.
  public func run() throws -> TrainResult {
    // Each compute worker runs whole batches on its own core; an OpenBLAS pool inside their
    // dense layers would put two threads on every core.
    BLAS.setThreads(1)
    let dir = options.outputDirectory
    var state = TrainingState()
    let checkpoint = ModelStore.checkpointPath(dir)
    // Every input must exist before anything is written to the model directory.
    for path in options.trainPaths + options.evalPaths { _ = try FileSource(path: path) }
    if options.trainPaths.isEmpty { throw TrainingError(message: "no training files were given") }
    let resuming = FileManager.default.fileExists(atPath: checkpoint)
    if FileManager.default.fileExists(atPath: checkpoint) {
      guard options.resume else {
        throw TrainingError(message: "\(dir) already holds a trained model (checkpoint.bin); pass --resume to continue it, or choose another --output")
      }
      state = try ModelStore.load(checkpoint, into: model)
      log("resumed from step \(state.step) (epoch \(state.epoch + 1), batch \(state.batchInEpoch))")
      if state.finished {
        // A finished run continues when asked for more than it did (more epochs, a higher
        // max_steps); it stays done when its stopping condition still holds.
        let stoppedEarly = experiment.training.earlyStopping.map { state.evaluationsWithoutImprovement >= $0.patience } ?? false
        let reachedMaxSteps = experiment.training.maxSteps.map { state.step >= Int64($0) } ?? false
        if state.epoch >= epochs || stoppedEarly || reachedMaxSteps {
          log("the run had already finished; nothing to do")
          return TrainResult(state: state, examples: 0, seconds: 0, trainLoss: nil)
        }
        state.finished = false
      }
    }
    // A resumed run rewrites experiment.yaml only once it has succeeded.
    if !resuming { try ModelStore.writeExperiment(experiment, to: dir) }
    events = try EventFileWriter(directory: options.logDirectory ?? dir + "/logs")
    let work = Work(depth: computeThreads * 2 + 1)
    for _ in 0..<(computeThreads * 2 + 2) { work.free.push(ResolvedBatch(model: model)) }
    let layout = PackedLayout(model: model)
    let registry = PathRegistry()
    let workers = (0..<computeThreads).map { i in
      JoinableThread(name: "ctrkit-compute-\(i)") { [model] in
        let compute = ComputeWorker(model: model)
        // Each worker assembles its own batches from packed examples, so no single thread
        // stands between the reader and the compute.
        let gatherer = Gatherer(model: model, layout: layout, paths: registry)
        while let item = work.queue.pop(), let batch = item {
          var loss = 0.0, weight = 0.0
          var failure: Error?
          gatherer.gather(batch.pendingHandles.base, count: batch.pendingHandles.count, into: batch)
          batch.releasePending()
          if work.firstError == nil {
            do { (loss, weight) = try compute.train(batch) } catch { failure = error }
          }
          work.free.push(batch)
          work.finish(loss: loss, weight: weight, error: failure)
        }
      }
    }
    defer {
      for _ in workers { work.queue.push(nil) }
      for w in workers { w.join() }
    }
    // For evaluations (they look ids up without creating rows).
    let resolver = Resolver(model: model)
    // The packer (see `Feeder`) is the only writer to the tables' id indices; it pauses while
    // the driver evaluates or writes a checkpoint.
    let gate = FeederGate()
    var result = TrainResult(state: state, examples: 0, seconds: 0, trainLoss: nil)
    let started = Date()
    var lastLog = Date()
    var examplesSinceLog: Int64 = 0
    var inMemory: InMemoryDataset?
    let logEvery = experiment.training.logEvery ?? 100
    let evalEvery = experiment.training.evalEvery ?? 0
    let checkpointEvery = experiment.training.checkpointEvery ?? 0
    let maxSteps = experiment.training.maxSteps.map(Int64.init)
    var totalLoss = 0.0, totalWeight = 0.0

    func saveCheckpoint() throws {
      _ = work.drain()
      gate.pause()
      defer { gate.resume() }
      try ModelStore.save(model, state: state, to: checkpoint)
    }

    /// Evaluates, records the result, updates early stopping; returns true to stop.
    func evaluate() throws -> Bool {
      let (l, w, err) = work.drain()
      totalLoss += l
      totalWeight += w
      if let err { throw err }
      guard !options.evalPaths.isEmpty else { return false }
      gate.pause()
      defer { gate.resume() }
      let report = try Evaluator(model: model, transformer: transformer).evaluate(
        paths: options.evalPaths, batchSize: batchSize, compression: options.compression,
        options: ReaderOptions(skipCorrupt: options.skipCorrupt), resolver: resolver)
      result.evaluations.append(EvaluationRecord(step: state.step, epoch: state.epoch, report: report))
      var scalars: [(tag: String, value: Float)] = []
      if let auc = report.auc { scalars.append(("eval/auc", Float(auc))) }
      if let ll = report.logLoss { scalars.append(("eval/logloss", Float(ll))) }
      if let ne = report.normalizedEntropy { scalars.append(("eval/normalized_entropy", Float(ne))) }
      if let c = report.calibration { scalars.append(("eval/calibration", Float(c))) }
      if let g = report.gauc { scalars.append(("eval/gauc", Float(g))) }
      try events?.addScalars(scalars, step: state.step)
      log("eval at step \(state.step): " + describe(report))
      // Keep the best model, and stop when it has not improved for `patience` evaluations.
      let stopping = experiment.training.earlyStopping
      let metricName = stopping?.metric ?? "auc"
      guard let value = metricName == "auc" ? report.auc : report.logLoss else { return false }
      let better: Bool
      if let best = state.bestMetric {
        let delta = stopping?.minDelta ?? 0
        better = metricName == "auc" ? value > best + delta : value < best - delta
      } else {
        better = true
      }
      if better {
        state.bestMetric = value
        state.bestStep = state.step
        state.evaluationsWithoutImprovement = 0
        try ModelStore.save(model, state: state, to: ModelStore.bestPath(dir))
      } else {
        state.evaluationsWithoutImprovement += 1
        if let stopping, state.evaluationsWithoutImprovement >= stopping.patience {
          log("early stopping: no \(metricName) improvement in \(stopping.patience) evaluation(s); best \(fmt(state.bestMetric!)) at step \(state.bestStep!)")
          result.stoppedEarly = true
          return true
        }
      }
      return false
    }

    var stop = false
    epochLoop: while state.epoch < epochs && !stop {
      let epochSeed = seed &+ UInt64(state.epoch) &* 0x9E37_79B9
      var paths = options.trainPaths
      let shuffleSize = experiment.training.shuffleBuffer ?? 65_536
      if shuffleSize > 0 {
        var rng = SeededRandom(seed: epochSeed)
        for i in stride(from: paths.count - 1, to: 0, by: -1) { paths.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
      }
      var feeder: Feeder?
      if let inMemory {
        inMemory.shuffle(seed: epochSeed ^ 0xA11E)
      } else {
        // Keep what this epoch trains on when it is a whole epoch (a resumed one starts late).
        let retain = options.inMemory && state.batchInEpoch == 0
        let window = ShuffleWindow(capacity: shuffleSize, seed: epochSeed ^ 0x5151, retain: retain)
        let stream = makeFeatureStream(paths: paths, transformer: transformer, batchSize: batchSize,
                                       threads: max(1, min(computeThreads, 2)), compression: options.compression,
                                       options: ReaderOptions(skipCorrupt: options.skipCorrupt))
        feeder = Feeder(stream: stream, window: window, model: model, layout: layout, paths: registry, gate: gate)
      }
      defer { feeder?.stop() }
      var nextExample = 0
      var batchInEpoch = 0
      let epochStarted = Date()
      let epochCPUStarted = processCPUSeconds()
      let examplesAtEpochStart = result.examples
      while true {
        if let e = work.firstError { throw e }
        guard let out = work.free.pop() else { break }
        if let inMemory {
          let n = min(batchSize, inMemory.count - nextExample)
          if n <= 0 {
            work.free.push(out)
            break
          }
          out.pendingHandles.count = 0
          out.pendingHandles.append(UnsafePointer(inMemory.handles.base!) + nextExample, count: n)
          nextExample += n
        } else if let feeder {
          try feeder.fill()
          feeder.window.take(batchSize, into: out)
          out.pendingWindow = feeder.window
          if out.pendingHandles.count == 0 {
            out.releasePending()
            work.free.push(out)
            break
          }
        }
        if batchInEpoch < state.batchInEpoch {
          // Resuming: this batch was trained before the checkpoint.
          batchInEpoch += 1
          out.releasePending()
          work.free.push(out)
          continue
        }
        let examples = Int64(out.pendingHandles.count)
        batchInEpoch += 1
        state.batchInEpoch = batchInEpoch
        state.step += 1
        state.examples += examples
        result.examples += examples
        examplesSinceLog += examples
        out.step = state.step - 1
        work.done.lock(); work.submitted += 1; work.done.unlock()
        work.queue.push(out)

        if state.step % Int64(logEvery) == 0 {
          let (l, w) = work.takeLoss()
          totalLoss += l
          totalWeight += w
          let now = Date()
          let rate = Double(examplesSinceLog) / max(now.timeIntervalSince(lastLog), 1e-9)
          if w > 0 { try events?.addScalars([("train/logloss", Float(l / w)), ("train/examples_per_second", Float(rate))], step: state.step) }
          if options.progress {
            var line = "epoch \(state.epoch + 1)/\(epochs) step \(state.step)  \(Int(rate)) ex/s"
            if w > 0 { line += "  loss \(fmt(l / w))" }
            if let stream = feeder?.stream, stream.totalBytes > 0 {
              let fraction = Double(stream.bytesRead) / Double(stream.totalBytes)
              let elapsed = Date().timeIntervalSince(started)
              let epochsLeft = Double(epochs - state.epoch) - fraction
              if fraction > 0.01 { line += "  \(Int(100 * fraction))% of epoch  ETA \(formatDuration(elapsed / (Double(state.epoch) + fraction) * epochsLeft))" }
            }
            Progress.show(line)
          }
          lastLog = now
          examplesSinceLog = 0
        }
        if evalEvery > 0 && state.step % Int64(evalEvery) == 0 {
          if try evaluate() { stop = true; break }
        }
        if checkpointEvery > 0 && state.step % Int64(checkpointEvery) == 0 { try saveCheckpoint() }
        if let maxSteps, state.step >= maxSteps { stop = true; break }
      }
      let (epochLoss, epochWeight, epochError) = work.drain()
      if let feeder {
        feeder.stop()
        result.skipped.events += feeder.stream.skipped.events
        if feeder.window.retain && !stop {
          // Every example of the epoch was packed into a retained segment: keep them.
          let dataset = InMemoryDataset(segments: feeder.window.all)
          inMemory = dataset
          result.inMemoryBytes = dataset.memoryBytes
          log("in memory: \(dataset.count) examples, \(dataset.memoryBytes / 1_048_576) MiB")
        }
      }
      if let epochError { throw epochError }
      totalLoss += epochLoss
      totalWeight += epochWeight
      result.epochTimings.append((state.epoch, result.examples - examplesAtEpochStart, Date().timeIntervalSince(epochStarted),
                                  processCPUSeconds() - epochCPUStarted))
      if stop { break epochLoop }
      state.epoch += 1
      state.batchInEpoch = 0
      if evalEvery == 0, try evaluate() { stop = true }
      try saveCheckpoint()
    }
    if options.progress { Progress.finish() }
    let (l, w, err) = work.drain()
    if let err { throw err }
    totalLoss += l
    totalWeight += w
    // Evaluating every N steps can miss the final model: evaluate it too.
    if evalEvery > 0 && !result.stoppedEarly && result.evaluations.last?.step != state.step {
      _ = try evaluate()
    }
    state.finished = true
    try saveCheckpoint()
    if resuming { try ModelStore.writeExperiment(experiment, to: dir) }
    result.state = state
    result.seconds = Date().timeIntervalSince(started)
    result.trainLoss = totalWeight > 0 ? totalLoss / totalWeight : nil
    result.tables = model.tableSummary
    result.memoryBytes = model.memoryBytes
    var finalScalars: [(tag: String, value: Float)] = [("train/examples_per_second", Float(result.examplesPerSecond))]
    if let tl = result.trainLoss { finalScalars.append(("train/logloss", Float(tl))) }
    try events?.addScalars(finalScalars, step: state.step)
    return result
  }
}

/// User + system CPU seconds of this process so far (every thread).
func processCPUSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
  return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Formats a metric for logs.
func fmt(_ v: Double) -> String { String(format: "%.5f", v) }

func formatDuration(_ s: Double) -> String {
  guard s.isFinite else { return "?" }
  let t = Int(s.rounded())
  return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
}

func describe(_ r: MetricReport) -> String {
  var parts = ["\(r.count) examples"]
  if let a = r.auc { parts.append("AUC \(fmt(a))") }
  if let l = r.logLoss { parts.append("logloss \(fmt(l))") }
  if let n = r.normalizedEntropy { parts.append("NE \(fmt(n))") }
  if let c = r.calibration { parts.append("calibration \(fmt(c))") }
  if let g = r.gauc { parts.append("GAUC \(fmt(g)) (\(r.gaucGroupsUsed) groups, \(r.gaucGroupsSkipped) skipped)") }
  return parts.joined(separator: ", ")
}

/// A one-line progress display on a terminal (standard error), silent otherwise.
public enum Progress {
  static let isTerminal = isatty(2) != 0
  public static func show(_ line: String) {
    guard isTerminal else { return }
    FileHandle.standardError.write(("\r\u{1B}[K" + line).data(using: .utf8)!)
  }
  public static func finish() {
    guard isTerminal else { return }
    FileHandle.standardError.write("\n".data(using: .utf8)!)
  }
}
