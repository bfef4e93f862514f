#pragma once
// A real redis-server for the Redis engine's contract suites: started once per test binary on a
// free loopback port (redis-server must be on PATH: CI installs it), with nothing saved to
// disk, and stopped (by its pid) when the binary ends. ZENA_TEST_REDIS_URL names one to use
// instead. Not a mock: the engine's scripts run in the real server.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "redis/connection.hpp"

namespace zena::contract {

// A port nothing listens on now (the kernel's choice of a free one).
inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

class redis_server {
public:
    // Starts one (bounded: 10 s to answer PING); endpoint() is then set, or the start failed.
    redis_server() {
        if (const char* url = std::getenv("ZENA_TEST_REDIS_URL")) {
            if (auto e = redis::parse_url(url)) where_ = *e;
            return;
        }
        where_.host = "127.0.0.1";
        where_.port = free_port();
        const auto port = std::to_string(where_.port);
        pid_ = ::fork();
        if (pid_ == 0) {
            // It goes with this process, however that ends (a sanitizer's abort runs no
            // destructor), and holds none of its output pipes (CTest waits for those to close).
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, STDOUT_FILENO);
            ::dup2(null, STDERR_FILENO);
            ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            std::string error;
            if (auto c = redis::connection::open(where_, std::chrono::milliseconds(200), error)) {
                const std::string_view ping[] = {"PING"};
                if (c->command(ping).ok()) {
                    up_ = true;
                    return;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    ~redis_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    bool up() const { return up_ || std::getenv("ZENA_TEST_REDIS_URL") != nullptr; }
    const redis::endpoint& endpoint() const { return where_; }

    // The binary's one server, started on first use.
    static redis_server& shared() {
        static redis_server server;
        return server;
    }

private:
    redis::endpoint where_;
    pid_t pid_ = -1;
    bool up_ = false;
};

}  // namespace zena::contract
