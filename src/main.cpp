// zena-realtime: parse the command line, then run the server or one of the small commands.

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
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

// "zena-realtime 0.1.0 (git v0.1.0-12-gabc1234)": the CMake project version, and where the tree
// stood when CMake configured it (git describe), if it was a git checkout.
std::string version_text() {
    std::string text = "zena-realtime " ZENA_VERSION;
    if (std::string_view{ZENA_GIT_DESCRIBE}.empty()) return text;
    return text + " (git " ZENA_GIT_DESCRIBE ")";
}

// `zena-realtime check-config [--config FILE] [options]`: loads the configuration as the server
// would (file, environment, flags) and the catalog it names, and reports every problem at once.
// Exit 0 with a short summary when the server would start with it, 2 otherwise. Nothing is
// written (a dev-mode secret is not generated) and nothing is listened on.
int check_config_command(const std::vector<std::string>& args) {
    auto loaded = config::load(args, config::process_env);
    if (loaded.help) {
        std::printf("usage: zena-realtime check-config [--config FILE] [options]\n");
        return 0;
    }
    auto errors = loaded.errors;
    const auto catalog = app::load_catalog(loaded.values);
    if (!catalog) errors.push_back(catalog.message());
    if (!errors.empty()) {
        (void)std::fprintf(stderr, "zena-realtime: %zu configuration error%s:\n", errors.size(),
                           errors.size() == 1 ? "" : "s");
        for (const auto& e : errors) (void)std::fprintf(stderr, "  - %s\n", e.c_str());
        return 2;
    }
    const auto& s = loaded.values;
    std::printf("configuration OK\n");
    std::printf("  mode: %s\n",
                loaded.dev_mode ? "dev (a secret and an API key are generated at start)" : "production");
    std::printf("  listen: %s:%lld%s\n", s.host.c_str(), static_cast<long long>(s.port),
                s.tls_cert_file.empty() ? "" : " (TLS)");
    std::printf("  auth: %s\n", !s.jwks_url.text.empty() ? "JWKS URL"
                                : !s.jwks_file.empty()   ? "JWKS file"
                                : !s.jwt_secret.empty()  ? s.jwt_algorithm.text.c_str()
                                                         : "dev secret");
    std::printf("  redis: %s\n", s.redis_url.value ? "configured" : "none");
    std::printf("  trusted proxies: %s\n", s.trusted_proxies.text.empty() ? "none" : s.trusted_proxies.text.c_str());
    std::printf("  catalog: %s\n", s.catalog_path.empty() ? "built in" : s.catalog_path.c_str());
    std::printf("  log: %s, %s\n", s.log_level.c_str(), s.log_format.c_str());
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
        if (args[0] == "check-config") return check_config_command({args.begin() + 1, args.end()});
        if (args[0] == "--version" || args[0] == "version") {
            std::printf("%s\n", version_text().c_str());
            return 0;
        }
    }
    auto loaded = config::load(args, config::process_env);
    if (loaded.help) {
        std::printf("%s", config::help_text().c_str());
        return 0;
    }
    if (!loaded.status) return fail(loaded.status.message());
    observability::init_logging(loaded.values.log_level, loaded.values.log_format == "json"
                                                             ? observability::log_format::json
                                                             : observability::log_format::text);
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
