// A per-thread cache of freed small blocks in front of glibc's malloc, for nghttp2.
//
// Why: nghttp2 allocates and frees about eight small objects a unary call. With many streams in
// flight they outnumber glibc's per-thread cache (seven blocks a size), so most go through
// malloc's slower paths. Here a freed block waits in a list for its size until the next request
// of that size.
//
// No header is added to a block: glibc's malloc_usable_size says which list a freed block
// belongs to, so blocks cost exactly what malloc's do (a stream's memory is counted). Blocks in
// the list for a size class are at least that class's size, which covers every request the class
// takes. Elsewhere than glibc, and under AddressSanitizer (so it still sees every free), the
// functions are malloc's own.

#include "allocation_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOCATION_CACHE_OFF 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
#define ALLOCATION_CACHE_OFF 1
#endif

#ifndef ALLOCATION_CACHE_OFF

#include <malloc.h>
#include <pthread.h>

// glibc's chunks are multiples of 16 bytes with 8 of them its own: a chunk of 16 * k bytes
// gives 16 * k - 8 usable. Classes by k, up to blocks of 1,016 usable bytes.
enum { CLASS_COUNT = 65, LARGEST_CACHED = 16 * (CLASS_COUNT - 1) - 8 };
// What one thread may keep: enough for a few hundred streams' objects, small beside them.
enum { MAXIMUM_CACHED_BYTES = 256 * 1024 };

typedef struct FreeBlock {
  struct FreeBlock *next;
} FreeBlock;

typedef struct {
  FreeBlock *lists[CLASS_COUNT];
  size_t cachedBytes;
  size_t cachedBlocks;
  int isRegistered;
  int isExiting;
} ThreadCache;

static __thread ThreadCache threadCache;
static pthread_key_t exitKey;
static pthread_once_t exitKeyOnce = PTHREAD_ONCE_INIT;

static void emptyCache(ThreadCache *owner) {
  for (int k = 0; k < CLASS_COUNT; k++) {
    FreeBlock *block = owner->lists[k];
    while (block) {
      FreeBlock *next = block->next;
      free(block);
      block = next;
    }
    owner->lists[k] = NULL;
  }
  owner->cachedBytes = 0;
  owner->cachedBlocks = 0;
}

// A thread that ends gives its blocks back; what it frees after that goes to free().
static void releaseThreadCache(void *cache) {
  ThreadCache *owner = cache;
  owner->isExiting = 1;
  emptyCache(owner);
}

static void makeExitKey(void) { pthread_key_create(&exitKey, releaseThreadCache); }

// The class whose blocks can hold `size` bytes: glibc's chunk size for it, in 16s.
static inline size_t classForRequest(size_t size) { return size < 24 ? 2 : (size + 8 + 15) >> 4; }

void *allocation_cache_malloc(size_t size, void *unused) {
  (void)unused;
  if (size <= LARGEST_CACHED) {
    ThreadCache *cache = &threadCache;
    size_t k = classForRequest(size);
    FreeBlock *block = cache->lists[k];
    if (block) {
      cache->lists[k] = block->next;
      cache->cachedBytes -= k << 4;
      cache->cachedBlocks -= 1;
      return block;
    }
  }
  return malloc(size);
}

void allocation_cache_free(void *pointer, void *unused) {
  (void)unused;
  if (!pointer) return;
  ThreadCache *cache = &threadCache;
  size_t usable = malloc_usable_size(pointer);
  size_t k = (usable + 8) >> 4;
  if (usable > LARGEST_CACHED || cache->isExiting || cache->cachedBytes + (k << 4) > MAXIMUM_CACHED_BYTES) {
    free(pointer);
    return;
  }
  if (!cache->isRegistered) {
    pthread_once(&exitKeyOnce, makeExitKey);
    pthread_setspecific(exitKey, cache);
    cache->isRegistered = 1;
  }
  FreeBlock *block = pointer;
  block->next = cache->lists[k];
  cache->lists[k] = block;
  cache->cachedBytes += k << 4;
  cache->cachedBlocks += 1;
}

void *allocation_cache_calloc(size_t count, size_t size, void *unused) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  void *pointer = allocation_cache_malloc(count * size, unused);
  if (pointer) memset(pointer, 0, count * size);
  return pointer;
}

// Cached blocks are malloc's own, so realloc takes any of them.
void *allocation_cache_realloc(void *pointer, size_t size, void *unused) {
  (void)unused;
  return realloc(pointer, size);
}

size_t allocation_cache_cached_blocks(void) { return threadCache.cachedBlocks; }

size_t allocation_cache_block_size(void *pointer) { return malloc_usable_size(pointer); }

void allocation_cache_empty(void) { emptyCache(&threadCache); }

#else

void *allocation_cache_malloc(size_t size, void *unused) {
  (void)unused;
  return malloc(size);
}

void allocation_cache_free(void *pointer, void *unused) {
  (void)unused;
  free(pointer);
}

void *allocation_cache_calloc(size_t count, size_t size, void *unused) {
  (void)unused;
  return calloc(count, size);
}

void *allocation_cache_realloc(void *pointer, size_t size, void *unused) {
  (void)unused;
  return realloc(pointer, size);
}

size_t allocation_cache_cached_blocks(void) { return 0; }

size_t allocation_cache_block_size(void *pointer) {
  (void)pointer;
  return 0;
}

void allocation_cache_empty(void) {}

#endif
