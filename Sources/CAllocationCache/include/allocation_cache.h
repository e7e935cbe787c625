#ifndef ALLOCATION_CACHE_H
#define ALLOCATION_CACHE_H

#include <stddef.h>

// malloc and free with a small per-thread cache of freed blocks by size, for a C library that
// allocates and frees the same few small objects for every request (nghttp2's streams, queued
// frames and header copies). The signatures are nghttp2_mem's; the user data is unused.
//
// A block may be freed on any thread: the cache is the freeing thread's, and its blocks are plain
// malloc blocks, so any thread may reuse or free them.

void *allocation_cache_malloc(size_t size, void *unused);
void allocation_cache_free(void *pointer, void *unused);
void *allocation_cache_calloc(size_t count, size_t size, void *unused);
void *allocation_cache_realloc(void *pointer, size_t size, void *unused);

// For tests: the blocks this thread's cache holds; a block's usable size; emptying this
// thread's cache.
size_t allocation_cache_cached_blocks(void);
size_t allocation_cache_block_size(void *pointer);
void allocation_cache_empty(void);

#endif
