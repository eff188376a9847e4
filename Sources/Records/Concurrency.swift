import Foundation

/// A bounded FIFO shared between threads; `pop` blocks until an item arrives or the queue closes.
public final class BlockingQueue<T>: @unchecked Sendable {
  private let cond = NSCondition()
  // Popped slots are set to nil at once, so the queue never keeps a popped item alive.
  private var items: [T?] = []
  private var head = 0
  private let capacity: Int
  private var closed = false

  public init(capacity: Int = .max) { self.capacity = capacity }

  /// Blocks while full; returns false if the queue was closed.
  @discardableResult
  public func push(_ item: T) -> Bool {
    cond.lock()
    defer { cond.unlock() }
    while items.count - head >= capacity && !closed { cond.wait() }
    if closed { return false }
    items.append(item)
    cond.broadcast()
    return true
  }

  /// Blocks while empty; nil once closed and drained.
  public func pop() -> T? {
    cond.lock()
    defer { cond.unlock() }
    while head == items.count && !closed { cond.wait() }
    if head == items.count { return nil }
    let item = items[head]
    items[head] = nil
    head += 1
    if head > 1024 && head * 2 > items.count {
      items.removeFirst(head)
      head = 0
    }
    cond.broadcast()
    return item!
  }

  /// Wakes every waiter; later pushes fail and pops drain what is left.
  public func close() {
    cond.lock()
    closed = true
    cond.broadcast()
    cond.unlock()
  }
}

/// Runs a closure on a new thread that can be joined (Foundation's Thread cannot).
public final class JoinableThread: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private var joined = false

  public init(name: String, stackSize: Int = 8 << 20, _ body: @escaping @Sendable () -> Void) {
    let t = Thread { [done] in
      body()
      done.signal()
    }
    t.name = name
    t.stackSize = stackSize
    t.start()
  }

  public func join() {
    if joined { return }
    done.wait()
    joined = true
  }
}

/// Runs `body(i)` for every i in 0..<count on up to `threads` threads, each taking the next index
/// when it finishes one (so items of uneven cost balance themselves); returns when all are done.
public func parallelForEach(_ count: Int, threads: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
  let next = LockedValue(0)
  let workers = (0..<max(1, min(threads, count))).map { _ in
    JoinableThread(name: name) {
      while true {
        let i = next.update { v -> Int in v += 1; return v - 1 }
        if i >= count { return }
        body(i)
      }
    }
  }
  for w in workers { w.join() }
}

/// How many threads to use by default: the cores this process may run on.
public var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
