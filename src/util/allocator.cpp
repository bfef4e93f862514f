#include "util/allocator.hpp"

#include <cstddef>
#include <cstdlib>
#include <string_view>

// jemalloc's control interface and size-class query, declared weak: null unless jemalloc is
// linked in, so that this file needs neither its header nor the library.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen)
    __attribute__((weak));
extern "C" std::size_t nallocx(std::size_t size, int flags) __attribute__((weak));

namespace zena::util {

allocator_info allocator_in_use() {
    if (mallctl == nullptr) return {"glibc", "", false};
    allocator_info info{"jemalloc", "", false};
    const char* version = nullptr;
    std::size_t size = sizeof version;
    if (mallctl("version", static_cast<void*>(&version), &size, nullptr, 0) == 0 && version != nullptr) {
        info.version = version;
    }
    bool on = false;
    size = sizeof on;
    if (mallctl("background_thread", &on, &size, nullptr, 0) == 0) info.background_thread = on;
    return info;
}

void start_allocator_background_thread() {
    if (mallctl == nullptr) return;
    const char* conf = std::getenv("MALLOC_CONF");  // NOLINT(concurrency-mt-unsafe): read at start
    if (conf != nullptr && std::string_view{conf}.find("background_thread") != std::string_view::npos) return;
    bool on = true;
    (void)mallctl("background_thread", nullptr, nullptr, &on, sizeof on);
}

std::size_t allocation_bytes(std::size_t bytes) {
    if (bytes == 0) return 0;
    if (nallocx != nullptr) return nallocx(bytes, 0);
    constexpr std::size_t granule = 16;
    return (bytes + granule - 1) / granule * granule;
}

}  // namespace zena::util
