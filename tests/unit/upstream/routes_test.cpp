#include "upstream/routes.hpp"

#include <gtest/gtest.h>

namespace zena::upstream {
namespace {

TEST(Routes, EachTypeGoesWhereItsItemSays_OthersTakeTheStar) {
    std::string error;
    const auto r = routes::parse("sync.request=webhook+redis, thread.view=redis,typing.start=none,*=webhook", error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->of("sync.request"), k_to_webhook | k_to_redis);
    EXPECT_EQ(r->of("thread.view"), k_to_redis);
    EXPECT_EQ(r->of("typing.start"), 0U);
    EXPECT_EQ(r->of("custom.event"), k_to_webhook);
    EXPECT_EQ(r->used(), k_to_webhook | k_to_redis);
    EXPECT_EQ(r->named_types(), (std::vector<std::string>{"sync.request", "thread.view", "typing.start"}));
}

TEST(Routes, WithoutAStar_UnlistedTypesGoNowhere) {
    std::string error;
    const auto r = routes::parse("thread.view=redis", error);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->of("sync.request"), 0U);
    EXPECT_EQ(r->used(), k_to_redis);
}

TEST(Routes, ToAll_SendsEveryTypeToEveryDestination) {
    const auto r = routes::to_all(k_to_webhook);
    EXPECT_EQ(r.of("anything"), k_to_webhook);
    EXPECT_TRUE(r.named_types().empty());
}

TEST(Routes, MalformedSpecifications_AreRefusedWithAReason) {
    for (const auto* bad : {"sync.request", "=webhook", "sync.request=kafka", "a=webhook,a=redis", "*=none,*=redis",
                            "a=webhook,,b=redis"}) {
        std::string error;
        EXPECT_FALSE(routes::parse(bad, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

}  // namespace
}  // namespace zena::upstream
