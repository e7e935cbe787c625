import CAllocationCache
import CNGHTTP2

/// The allocator nghttp2 sessions use.
enum NGHTTP2Memory {
  /// nghttp2's allocations through a per-thread cache of freed blocks: a session allocates and
  /// frees about eight small objects a unary call, which with many streams in flight mostly
  /// missed glibc's own small cache. nghttp2 copies this into the session.
  static var cached: nghttp2_mem {
    nghttp2_mem(
      mem_user_data: nil, malloc: allocation_cache_malloc, free: allocation_cache_free,
      calloc: allocation_cache_calloc, realloc: allocation_cache_realloc)
  }
}
