// zena-realtime: parse the command line, then run the server or one of the small commands.

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "app/app.hpp"
#include "auth/jwt.hpp"
#include "config/config.hpp"
#include "config/dev_credentials.hpp"
#include "observability/log.hpp"
#include "protocol/catalog.hpp"
#include "protocol/close_codes_json.hpp"
#include "util/text.hpp"

namespace {

using namespace zena;

int fail(const std::string& message) {
    (void)std::fprintf(stderr, "zena-realtime: %s\n", message.c_str());
    return 2;
}

// `zena-realtime token --user ID [--ttl SECONDS] [--channels A,B:*] [--channel C] [server options]`
// --channels: the connection token's `channels` claim (grants); --channel: a channel token for C.
int token_command(std::vector<std::string> args) {
    std::string user;
    long long ttl = 3600;
    auth::jwt_mint_options claims;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if ((args[i] == "--channels" || args[i] == "--channel") && i + 1 < args.size()) {
            if (args[i] == "--channel") {
                claims.channel = args[++i];
            } else {
                util::for_each_item(args[++i], ',', [&](std::string_view item) {
                    if (!item.empty()) claims.channels.emplace_back(item);
                    return true;
                });
            }
        } else if ((args[i] == "--user" || args[i] == "--ttl") && i + 1 < args.size()) {
            if (args[i] == "--user") {
                user = args[++i];
            } else {
                try {
                    ttl = std::stoll(args[++i]);
                } catch (const std::exception&) {
                    return fail("--ttl needs a number of seconds");
                }
            }
        } else {
            rest.push_back(args[i]);
        }
    }
    if (user.empty()) return fail("token needs --user ID");
    if (ttl <= 0) return fail("--ttl must be positive");
    auto loaded = config::load(rest, config::process_env);
    if (!loaded.status) return fail(loaded.status.message());
    if (loaded.dev_mode) {
        if (auto applied = config::apply_dev_credentials(loaded.values); !applied) return fail(applied.message());
    }
    const auto& s = loaded.values;
    std::printf(
        "%s\n",
        auth::mint_jwt(app::jwt_settings_of(s), user, std::chrono::seconds(ttl), auth::unix_now(), claims).c_str());
    return 0;
}

// `zena-realtime catalog [options]`: prints the catalog in effect (catalog.path, else the one
// compiled in) after checking it. Only the catalog options matter here; a server that could not
// start for other reasons (no secret, say) still has a catalog to show.
int catalog_command(const std::vector<std::string>& args) {
    const auto loaded = config::load(args, config::process_env);
    if (auto catalog = app::load_catalog(loaded.values); !catalog) return fail(catalog.message());
    if (loaded.values.catalog_path.empty()) {
        const auto text = protocol::builtin_catalog_json();
        std::printf("%.*s", static_cast<int>(text.size()), text.data());
        return 0;
    }
    std::ifstream in{loaded.values.catalog_path, std::ios::binary};
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    std::printf("%s", text.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty()) {
        if (args[0] == "token") return token_command({args.begin() + 1, args.end()});
        if (args[0] == "codes") {
            std::printf("%s\n", protocol::close_codes_json().c_str());
            return 0;
        }
        if (args[0] == "catalog") return catalog_command({args.begin() + 1, args.end()});
        if (args[0] == "config-docs") {
            std::printf("%s", config::markdown_reference().c_str());
            return 0;
        }
        if (args[0] == "--version") {
            std::printf("zena-realtime 0.1.0\n");
            return 0;
        }
    }
    auto loaded = config::load(args, config::process_env);
    if (loaded.help) {
        std::printf("%s", config::help_text().c_str());
        return 0;
    }
    if (!loaded.status) return fail(loaded.status.message());
    observability::init_logging(loaded.values.log_level);
    if (loaded.dev_mode) {
        bool created = false;
        if (auto applied = config::apply_dev_credentials(loaded.values, &created); !applied) {
            return fail(applied.message());
        }
        spdlog::warn("dev mode: credentials {} {}", created ? "generated in" : "read from",
                     loaded.values.dev_state_file);
    }
    const auto catalog = app::load_catalog(loaded.values);
    if (!catalog) return fail(catalog.message());
    return app::run(loaded.values, *catalog, loaded.dev_mode);
}
