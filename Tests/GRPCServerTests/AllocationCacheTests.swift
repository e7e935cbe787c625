import CAllocationCache
import Glibc
import Testing

/// The per-thread cache nghttp2 allocates through. Each test runs on one thread from start to
/// end (no suspension point), so it sees one cache, which it empties first and last.
@Suite struct AllocationCacheTests {
  @Test func aFreedBlockServesTheNextRequestItFits() throws {
    allocation_cache_empty()
    defer { allocation_cache_empty() }
    let block = try #require(allocation_cache_malloc(100, nil))
    // glibc may hand out a larger chunk than asked for: the block's own size says its class.
    let size = allocation_cache_block_size(block)
    #expect(size >= 100)
    allocation_cache_free(block, nil)
    #expect(allocation_cache_cached_blocks() == 1)
    let again = try #require(allocation_cache_malloc(size, nil))
    #expect(again == block)
    #expect(allocation_cache_cached_blocks() == 0)
    allocation_cache_free(again, nil)
  }

  /// Mixed sizes freed and asked for again in a random order: every block handed out holds what
  /// was asked, and blocks in use never overlap (each keeps the pattern written into it).
  @Test func neverHandsOutABlockSmallerThanTheRequest() throws {
    allocation_cache_empty()
    defer { allocation_cache_empty() }
    var generator = SystemRandomNumberGenerator()
    var live: [(pointer: UnsafeMutableRawPointer, size: Int, pattern: UInt8)] = []
    for step in 0..<20_000 {
      if live.count > 200 || (!live.isEmpty && Bool.random(using: &generator)) {
        let (pointer, size, pattern) = live.remove(at: Int.random(in: 0..<live.count, using: &generator))
        let bytes = UnsafeRawBufferPointer(start: pointer, count: size)
        #expect(bytes.allSatisfy { $0 == pattern })
        allocation_cache_free(pointer, nil)
      } else {
        let size = Int.random(in: 0...1_200, using: &generator)
        let pointer = try #require(allocation_cache_malloc(size, nil))
        #expect(allocation_cache_block_size(pointer) >= size)
        let pattern = UInt8(truncatingIfNeeded: step)
        pointer.initializeMemory(as: UInt8.self, repeating: pattern, count: size)
        live.append((pointer, size, pattern))
      }
    }
    #expect(allocation_cache_cached_blocks() > 0)
    for (pointer, _, _) in live { allocation_cache_free(pointer, nil) }
  }

  @Test func largeBlocksGoBackToMalloc() throws {
    allocation_cache_empty()
    let large = try #require(allocation_cache_malloc(4096, nil))
    allocation_cache_free(large, nil)
    #expect(allocation_cache_cached_blocks() == 0)
    allocation_cache_free(nil, nil)
    #expect(allocation_cache_cached_blocks() == 0)
  }

  @Test func callocZeroesAReusedBlock() throws {
    allocation_cache_empty()
    defer { allocation_cache_empty() }
    let block = try #require(allocation_cache_malloc(64, nil))
    let size = allocation_cache_block_size(block)
    block.initializeMemory(as: UInt8.self, repeating: 0xAB, count: size)
    allocation_cache_free(block, nil)
    let zeroed = try #require(allocation_cache_calloc(1, size, nil))
    #expect(zeroed == block)
    #expect(UnsafeRawBufferPointer(start: zeroed, count: size).allSatisfy { $0 == 0 })
    allocation_cache_free(zeroed, nil)
    #expect(allocation_cache_calloc(Int.max, 16, nil) == nil)
  }

  @Test func reallocKeepsTheContents() throws {
    allocation_cache_empty()
    defer { allocation_cache_empty() }
    let block = try #require(allocation_cache_malloc(32, nil))
    block.initializeMemory(as: UInt8.self, repeating: 7, count: 32)
    let grown = try #require(allocation_cache_realloc(block, 2000, nil))
    #expect(UnsafeRawBufferPointer(start: grown, count: 32).allSatisfy { $0 == 7 })
    allocation_cache_free(grown, nil)
  }

  @Test func aThreadKeepsAtMostAQuarterMebibyte() throws {
    allocation_cache_empty()
    defer { allocation_cache_empty() }
    var blocks: [UnsafeMutableRawPointer] = []
    for _ in 0..<1000 { blocks.append(try #require(allocation_cache_malloc(1000, nil))) }
    let chunk = blocks.map { allocation_cache_block_size($0) + 8 }.min()!
    for block in blocks { allocation_cache_free(block, nil) }
    let kept = allocation_cache_cached_blocks()
    #expect(kept > 0)
    #expect(kept <= 256 * 1024 / chunk)
  }
}
