import XCTest
@testable import Records

final class EventFileWriterTests: XCTestCase {
  func testEventFilesHoldAVersionEventThenScalarsTensorBoardCanRead() throws {
    let dir = ScratchDirectory()
    let writer = try EventFileWriter(directory: dir.path + "/logs")
    XCTAssertTrue((writer.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents."))
    try writer.addScalars([("train/loss", 0.5), ("train/auc", 0.75)], step: 100)
    try writer.addScalars([("train/loss", 0.25)], step: 200)
    let events = try EventFileWriter.read(path: writer.path)
    XCTAssertEqual(events.count, 3)
    XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
    XCTAssertEqual(events[1].step, 100)
    XCTAssertEqual(events[1].scalars, ["train/loss": 0.5, "train/auc": 0.75])
    XCTAssertEqual(events[2].scalars, ["train/loss": 0.25])
    XCTAssertGreaterThan(events[2].wallTime, 1.7e9)
    if let keep = ProcessInfo.processInfo.environment["CTRKIT_KEEP_EVENT_FILE"] {
      try FileManager.default.copyItem(atPath: writer.path, toPath: keep)
    }
  }
}
