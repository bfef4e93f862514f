#include "util/allocator.hpp"

#include <cstddef>

// jemalloc's control interface, declared weak: null unless jemalloc is linked in, so that this
// file needs neither its header nor the library.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen)
    __attribute__((weak));

namespace zena::util {

allocator_info allocator_in_use() {
    if (mallctl == nullptr) return {"glibc", ""};
    const char* version = nullptr;
    std::size_t size = sizeof version;
    if (mallctl("version", static_cast<void*>(&version), &size, nullptr, 0) != 0 || version == nullptr) {
        return {"jemalloc", ""};
    }
    return {"jemalloc", version};
}

}  // namespace zena::util
