#include "observability/service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace zena::observability {

bool notify_service_manager(std::string_view socket_path, std::string_view state) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    // A path needs room for its terminating NUL; an abstract name ('@' for the leading NUL) does not.
    if (socket_path.size() < 2 || socket_path.size() >= sizeof address.sun_path) return false;
    if (socket_path.front() != '/' && socket_path.front() != '@') return false;
    std::memcpy(address.sun_path, socket_path.data(), socket_path.size());
    if (socket_path.front() == '@') address.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size() +
                                               (socket_path.front() == '@' ? 0 : 1));
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&address), length);  // NOLINT: the C socket API
    ::close(fd);
    return sent == static_cast<ssize_t>(state.size());
}

bool notify_service_manager(std::string_view state) {
    // Read when the server is ready, before any thread that could change the environment.
    const char* path = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe)
    if (path == nullptr) return false;
    return notify_service_manager(path, state);
}

}  // namespace zena::observability
