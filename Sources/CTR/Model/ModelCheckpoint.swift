import Features
import Foundation
import Records

/// Where training stands, saved with the parameters so a run resumes exactly where it stopped.
public struct TrainingState: Codable, Sendable, Equatable {
  public var step: Int64 = 0
  public var epoch = 0
  /// Batches of the current epoch already trained (a resumed run replays and skips them).
  public var batchInEpoch = 0
  public var examples: Int64 = 0
  public var bestMetric: Double?
  public var bestStep: Int64?
  public var evaluationsWithoutImprovement = 0
  public var finished = false

  enum CodingKeys: String, CodingKey {
    case step, epoch, examples, finished
    case batchInEpoch = "batch_in_epoch"
    case bestMetric = "best_metric"
    case bestStep = "best_step"
    case evaluationsWithoutImprovement = "evaluations_without_improvement"
  }

  public init() {}
}

/// The experiment as saved in a model directory: features inline (fitted), so the directory is
/// all evaluation and serving need.
struct SavedExperiment: Codable {
  var features: FeatureConfig
  var model: ModelConfig
  var optimizers: OptimizerConfigs
  var training: TrainingConfig
}

/// A saved experiment without its features, which `FeatureConfig.load` reads (decoding them
/// again through Codable would walk every vocabulary entry a second time).
struct SavedSettings: Decodable {
  var model: ModelConfig
  var optimizers: OptimizerConfigs
  var training: TrainingConfig
}

/// Reads and writes model directories: `experiment.yaml`, `checkpoint.bin` (latest) and
/// `best.bin` (best evaluation), each written under a temporary name and renamed.
///
/// Checkpoint layout: "CTRKMDL1", u32 header length, header (JSON: TrainingState and table
/// names), then per table u64 length + EmbeddingTable checkpoint, then the dense block's values
/// and optimizer state (f32 bit patterns), then a CRC32C of every byte before it.
public enum ModelStore {
  static let magic: [UInt8] = Array("CTRKMDL1".utf8)

  public static func experimentPath(_ dir: String) -> String { dir + "/experiment.yaml" }
  public static func checkpointPath(_ dir: String) -> String { dir + "/checkpoint.bin" }
  public static func bestPath(_ dir: String) -> String { dir + "/best.bin" }

  /// Writes `experiment.yaml` for the model directory.
  public static func writeExperiment(_ e: ExperimentConfig, to dir: String) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let (features, restoreLists) = e.features.withoutLongLists()
    let saved = SavedExperiment(features: features, model: e.model, optimizers: e.optimizers, training: e.training)
    let body = try YAMLWriter.yaml(saved) { tree in
      guard case .object(var top) = tree, let k = top.firstIndex(where: { $0.0 == "features" }) else { return tree }
      top[k].1 = restoreLists(top[k].1)
      return .object(top)
    }
    let text = "# Written by ctrkit train: the experiment with its fitted features inline.\n" + body
    try writeFileAtomically(Array(text.utf8), to: experimentPath(dir))
  }

  /// Reads a model directory's experiment.
  public static func readExperiment(_ dir: String) throws -> ExperimentConfig {
    let path = experimentPath(dir)
    guard FileManager.default.fileExists(atPath: path) else {
      throw CTRError(.corruptCheckpoint, dir, "is not a model directory (no experiment.yaml)")
    }
    let doc = try ConfigDocument(path: path)
    let features = try FeatureConfig.load(doc, at: [.key("features")])
    let saved = try doc.decode(SavedSettings.self)
    return ExperimentConfig(features: features, model: saved.model, optimizers: saved.optimizers, training: saved.training,
                            baseDirectory: dir)
  }

  /// The JSON header at the front of a checkpoint: training state and the layout to check on load.
  private struct Header: Codable {
    var state: TrainingState
    var tables: [String]
    var denseCount: Int
    var denseStateWidth: Int
    var adamStep: Int64?
  }

  /// Serialises the model's parameters and optimizer state with `state`.
  public static func encode(_ model: CTRModel, state: TrainingState) throws -> [UInt8] {
    var out = magic
    let header = Header(state: state, tables: model.tables.map(\.name), denseCount: model.dense.count,
                        denseStateWidth: model.dense.stateWidth, adamStep: model.dense.adam?.step)
    let json = try JSONEncoder().encode(header)
    appendLE(&out, UInt32(json.count))
    out.append(contentsOf: json)
    for t in model.tables {
      let bytes = t.table.checkpoint()
      appendLE(&out, UInt64(bytes.count))
      out.append(contentsOf: bytes)
    }
    let d = model.dense
    for i in 0..<d.count { appendLE(&out, d.values.data[i].bitPattern) }
    if let adam = d.adam {
      let mv = adam.moments(of: d.parameter)
      for i in 0..<d.count { appendLE(&out, (mv?.m.data[i] ?? 0).bitPattern) }
      for i in 0..<d.count { appendLE(&out, (mv?.v.data[i] ?? 0).bitPattern) }
    } else {
      for i in 0..<d.stateWidth { appendLE(&out, d.state[i].bitPattern) }
    }
    let crc = out.withUnsafeBytes { CRC32C.checksum($0) }
    appendLE(&out, crc)
    return out
  }

  /// Writes a checkpoint atomically (fsync, then rename).
  public static func save(_ model: CTRModel, state: TrainingState, to path: String) throws {
    let bytes = try encode(model, state: state)
    let sink = try AtomicFileSink(path: path, sync: true)
    try bytes.withUnsafeBytes { try sink.write($0) }
    try sink.finish()
  }

  /// Loads a checkpoint into a freshly built model of the same experiment.
  public static func load(_ path: String, into model: CTRModel) throws -> TrainingState {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw CTRError(.corruptCheckpoint, path, "cannot read the checkpoint")
    }
    let bytes = Array(data)
    func corrupt(_ offset: Int, _ message: String) -> CTRError { CTRError(.corruptCheckpoint, path, offset: offset, message) }
    guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw corrupt(0, "not a CTRKit model checkpoint") }
    let body = bytes.count - 4
    let stored = bytes[body...].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    let actual = bytes[..<body].withUnsafeBytes { CRC32C.checksum($0) }
    guard stored == actual else { throw corrupt(body, "checksum mismatch: the checkpoint is damaged or truncated") }
    var offset = 8
    func u32() throws -> UInt32 {
      guard offset + 4 <= body else { throw corrupt(offset, "truncated") }
      defer { offset += 4 }
      return bytes[offset..<(offset + 4)].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    func u64() throws -> UInt64 {
      guard offset + 8 <= body else { throw corrupt(offset, "truncated") }
      defer { offset += 8 }
      return bytes[offset..<(offset + 8)].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    let headerLength = Int(try u32())
    guard offset + headerLength <= body else { throw corrupt(offset, "truncated header") }
    let header = try JSONDecoder().decode(Header.self, from: Data(bytes[offset..<(offset + headerLength)]))
    offset += headerLength
    guard header.tables == model.tables.map(\.name), header.denseCount == model.dense.count,
          header.denseStateWidth == model.dense.stateWidth else {
      throw CTRError(.incompatibleCheckpoint, path, "the checkpoint was written by a different model (tables \(header.tables))")
    }
    for t in model.tables {
      let n = Int(try u64())
      guard offset + n <= body else { throw corrupt(offset, "truncated table \(t.name)") }
      let restored = try EmbeddingTable(checkpoint: Array(bytes[offset..<(offset + n)]), optimizer: t.optimizer,
                                        directIdLimit: t.table.directLimit)
      try t.table.replaceContents(with: restored)
      offset += n
    }
    let d = model.dense
    func floats(_ count: Int, into p: UnsafeMutablePointer<Float>) throws {
      for i in 0..<count { p[i] = Float(bitPattern: try u32()) }
    }
    try floats(d.count, into: d.values.data)
    if let adam = d.adam {
      let m = UnsafeMutablePointer<Float>.allocate(capacity: d.count), v = UnsafeMutablePointer<Float>.allocate(capacity: d.count)
      defer { m.deallocate(); v.deallocate() }
      try floats(d.count, into: m)
      try floats(d.count, into: v)
      if let step = header.adamStep, step > 0 { adam.restore(step: step, parameter: d.parameter, m: m, v: v) }
    } else {
      try floats(d.stateWidth, into: d.state)
    }
    d.restoreSteps(header.state.step)
    guard offset == body else { throw corrupt(offset, "\(body - offset) unexpected bytes before the checksum") }
    return header.state
  }

  static func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
  }
}
