// Map shapes (key and value sizes) are cached per fd, so a fold-in sweep of
// 10k entries does not double its syscalls asking the kernel again. A cached
// fd could be closed and reused by another map, so every place that closes a
// map fd forgets the cache.
#pragma once

namespace tally {

void ForgetMapShapes();

}  // namespace tally
