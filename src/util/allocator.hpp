#pragma once
// Which malloc the process runs on. The release binary links jemalloc (docs/decisions.md,
// "Memory allocator"); sanitizer and fuzz builds keep glibc's, whose calls the sanitizers
// intercept. The start log names it, so an operator sees which one a binary got.

#include <cstddef>
#include <string>

namespace zena::util {

struct allocator_info {
    std::string name;                // "jemalloc" or "glibc"
    std::string version;             // jemalloc's own ("5.3.0-0-g54eaed1..."); glibc's is the system's
    bool background_thread = false;  // jemalloc returns freed pages from a thread of its own
};

allocator_info allocator_in_use();

// What malloc takes for a request of `bytes`, headers aside: jemalloc's size class (nallocx),
// which rounds up to a quarter of the size (a 1,100-byte buffer takes 1,280), or glibc's 16-byte
// granules. For memory budgets that count allocations, not requests.
std::size_t allocation_bytes(std::size_t bytes);

// jemalloc gives freed pages back to the system on a decay timer, but only while some thread
// allocates: an event loop that goes quiet after a large fan-out would keep them. Its background
// thread purges on time instead (Redis turns it on the same way). Left as it is when
// MALLOC_CONF names background_thread, so an operator's choice stands; nothing under glibc.
void start_allocator_background_thread();

}  // namespace zena::util
