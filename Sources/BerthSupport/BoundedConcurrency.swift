/// Work over a list with at most a given number of items in flight (e.g. `berth admin migrate`'s blob copies).
public enum BoundedConcurrency {
    /// Runs `work` on every element, at most `concurrency` at a time, and hands each result to `completed` in
    /// the caller's task, in the order they finish (so `completed` may mutate the caller's state). The first
    /// error cancels the work in flight and is thrown; what completed before it stays done.
    public static func forEach<Element: Sendable, Result: Sendable>(
        _ elements: [Element], concurrency: Int,
        _ work: @escaping @Sendable (Element) async throws -> Result,
        completed: (Element, Result) throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var next = 0
            func startNext() {
                guard next < elements.count else { return }
                let index = next
                next += 1
                group.addTask { (index, try await work(elements[index])) }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            while let (index, result) = try await group.next() {
                try completed(elements[index], result)
                startNext()
            }
        }
    }
}
