#pragma once
// Epochs for new channel lives (engine::position): a random prefix drawn once per source (8
// characters of [0-9a-z]) and a counter in base 36, so unique per channel life in this process,
// different after a restart and, with overwhelming odds, from another node's. Never holds ':',
// the separator of "<epoch>:<seq>".
//
// Threading: next() from any thread (an atomic counter, no lock).

#include <atomic>
#include <cstdint>
#include <string>

namespace zena::engine {

class epoch_source {
public:
    epoch_source();
    std::string next();

private:
    std::string prefix_;
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace zena::engine
