#include "observability/service_notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace zena::observability {
namespace {

// A datagram socket bound at `path` (or an abstract name for '@...'), as systemd's.
int bound_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    socklen_t length = offsetof(sockaddr_un, sun_path) + path.size() + 1;
    if (path.front() == '@') {
        address.sun_path[0] = '\0';
        length -= 1;
    }
    EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), length), 0) << std::strerror(errno);
    return fd;
}

std::string receive(int fd) {
    char buffer[256];
    const auto n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string{};
}

TEST(ServiceNotify, PathSocket_GetsTheState) {
    const std::string path = ::testing::TempDir() + "zena_notify_" + std::to_string(::getpid());
    std::remove(path.c_str());
    const int fd = bound_socket(path);
    EXPECT_TRUE(notify_service_manager(path, "READY=1\nSTATUS=listening"));
    EXPECT_EQ(receive(fd), "READY=1\nSTATUS=listening");
    ::close(fd);
    std::remove(path.c_str());
}

TEST(ServiceNotify, AbstractSocket_GetsTheState) {
    const std::string name = "@zena_notify_test_" + std::to_string(::getpid());
    const int fd = bound_socket(name);
    EXPECT_TRUE(notify_service_manager(name, "READY=1"));
    EXPECT_EQ(receive(fd), "READY=1");
    ::close(fd);
}

TEST(ServiceNotify, NoOrBadSocket_IsFalse) {
    EXPECT_FALSE(notify_service_manager("", "READY=1"));
    EXPECT_FALSE(notify_service_manager("relative/path", "READY=1"));
    EXPECT_FALSE(notify_service_manager(std::string(200, '/'), "READY=1")) << "longer than sun_path";
    EXPECT_FALSE(notify_service_manager("/nonexistent/zena/notify", "READY=1")) << "nobody listening";
}

}  // namespace
}  // namespace zena::observability
