#pragma once
// Which malloc the process runs on. The release binary links jemalloc (docs/decisions.md,
// "jemalloc"); sanitizer and fuzz builds keep glibc's, whose calls the sanitizers intercept.
// The start log names it, so an operator sees which one a binary got.

#include <string>

namespace zena::util {

struct allocator_info {
    std::string name;     // "jemalloc" or "glibc"
    std::string version;  // jemalloc's own ("5.3.0-0-g54eaed1..."); glibc's is the system's
};

allocator_info allocator_in_use();

}  // namespace zena::util
