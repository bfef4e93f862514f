#include "engine/event.hpp"

#include <algorithm>
#include <functional>
#include <random>

#include "engine/broker.hpp"
#include "engine/epoch.hpp"
#include "protocol/envelope.hpp"

namespace zena::engine {

ws::outbound channel_message(const event& e, std::string_view channel, const position& at) {
    // A latest event replaces a queued one of the same kind and key in the same channel only:
    // sync.progress of account a1 on deal:1 says nothing about a1 on deal:2.
    auto key = e.message.latest_key;
    if (e.message.delivery == ws::delivery_class::latest) {
        key ^= std::hash<std::string_view>{}(channel) + 0x9e3779b97f4a7c15ULL + (key << 6U) + (key >> 2U);
    }
    return ws::outbound{protocol::make_channel_frame(e.type, e.payload, channel, at.epoch, at.seq), e.message.delivery,
                        key};
}

std::optional<util::error> unstorable(const std::vector<publication>& batch) {
    const auto refuse = [](std::size_t i, std::string_view why) {
        return util::error{"publication " + std::to_string(i + 1) + " of the batch " + std::string(why) +
                           "; nothing was published"};
    };
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& p = batch[i];
        if (!p.history) continue;
        if (!p.event) return refuse(i, "asks for history but carries no event");
        if (p.event->message.delivery == ws::delivery_class::ephemeral) {
            return refuse(i, "asks for history, but an ephemeral event is never stored");
        }
    }
    return std::nullopt;
}

namespace {
constexpr std::string_view k_epoch_alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::size_t k_epoch_prefix_chars = 8;
}  // namespace

epoch_source::epoch_source() {
    std::random_device device;
    std::uniform_int_distribution<std::size_t> pick(0, k_epoch_alphabet.size() - 1);
    prefix_.reserve(k_epoch_prefix_chars);
    for (std::size_t i = 0; i < k_epoch_prefix_chars; ++i) prefix_ += k_epoch_alphabet[pick(device)];
}

std::string epoch_source::next() {
    std::string digits;
    for (auto n = count_.fetch_add(1, std::memory_order_relaxed) + 1; n != 0; n /= k_epoch_alphabet.size()) {
        digits += k_epoch_alphabet[n % k_epoch_alphabet.size()];
    }
    std::reverse(digits.begin(), digits.end());
    return prefix_ + digits;
}

}  // namespace zena::engine
