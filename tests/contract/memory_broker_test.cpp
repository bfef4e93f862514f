#include "engine/memory/memory_broker.hpp"

#include <gtest/gtest.h>

#include "contract/broker_contract.hpp"
#include "engine/memory/memory_history.hpp"

namespace zena::contract {
namespace {

// The memory engine: its broker appends to its own history.
struct memory_broker_factory {
    static broker_under_test make(hub::hub_set& hubs) {
        auto history = std::make_shared<engine::memory_history>();
        auto broker = std::shared_ptr<engine::broker>(new engine::memory_broker(hubs, *history),
                                                      [history](engine::broker* b) { delete b; });
        return {history, std::move(broker)};
    }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, BrokerContract, memory_broker_factory);

}  // namespace
}  // namespace zena::contract
