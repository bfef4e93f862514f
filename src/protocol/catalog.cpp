#include "protocol/catalog.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

#include "protocol/json_reader.hpp"

namespace zena::protocol {

using ws::delivery_class;
namespace {

using kind = field_type::kind;
using named_types = std::map<std::string, std::shared_ptr<const field_type>, std::less<>>;

bool valid_event_name(std::string_view name) {
    return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == ':' || c == '-';
    });
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) return false;
    return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(pos), s.begin() + static_cast<std::ptrdiff_t>(pos + n),
                       [](char c) { return c >= '0' && c <= '9'; });
}

// ISO-8601 as JSON carries dates: YYYY-MM-DD, optionally Thh:mm[:ss[.fff…]] and Z or ±hh:mm.
bool is_iso8601(std::string_view s) {
    if (!digits(s, 0, 4) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' || !digits(s, 8, 2)) {
        return false;
    }
    const int month = (s[5] - '0') * 10 + (s[6] - '0');
    const int day = (s[8] - '0') * 10 + (s[9] - '0');
    if (month < 1 || month > 12 || day < 1 || day > 31) return false;
    if (s.size() == 10) return true;
    std::size_t i = 10;
    if (s[i] != 'T' || !digits(s, i + 1, 2) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2)) {
        return false;
    }
    const int hour = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    const int minute = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
    if (hour > 23 || minute > 59) return false;
    i += 6;
    if (i < s.size() && s[i] == ':') {
        if (!digits(s, i + 1, 2) || (s[i + 1] - '0') * 10 + (s[i + 2] - '0') > 60) return false;
        i += 3;
        if (i < s.size() && s[i] == '.') {
            const auto start = ++i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
            if (i == start) return false;
        }
    }
    if (i == s.size()) return true;
    if (s[i] == 'Z') return i + 1 == s.size();
    if (s[i] == '+' || s[i] == '-') {
        return i + 6 == s.size() && digits(s, i + 1, 2) && s[i + 3] == ':' && digits(s, i + 4, 2);
    }
    return false;
}

class loader {
public:
    std::string error;

    // A map of field name -> type expression, as an object type.
    std::shared_ptr<const field_type> object_of(simdjson::dom::object fields, const std::string& where) {
        auto type = std::make_shared<field_type>();
        type->k = kind::object;
        for (const auto [key, value] : fields) {
            const std::string name{key};
            bool optional = false;
            auto field = expression(value, where + "." + name, optional);
            if (!field) return nullptr;
            type->fields.push_back({name, std::move(field), optional});
        }
        return type;
    }

    // One field's type: "string", "date?", "TypeName", {"enum": [...]}, {"array": expr},
    // {"object": {...}}; {"optional": true} beside the object forms.
    std::shared_ptr<const field_type> expression(simdjson::dom::element value, const std::string& where,
                                                 bool& optional) {
        std::string_view text;
        if (value.get_string().get(text) == simdjson::SUCCESS) {
            if (text.ends_with('?')) {
                optional = true;
                text.remove_suffix(1);
            }
            auto type = std::make_shared<field_type>();
            if (text == "string") {
                type->k = kind::string;
            } else if (text == "number") {
                type->k = kind::number;
            } else if (text == "boolean") {
                type->k = kind::boolean;
            } else if (text == "date") {
                type->k = kind::date;
            } else if (const auto it = named_.find(text); it != named_.end()) {
                return it->second;
            } else {
                return fail(where + ": unknown type '" + std::string{text} + "'");
            }
            return type;
        }
        simdjson::dom::object form;
        if (value.get_object().get(form) != simdjson::SUCCESS) {
            return fail(where + ": a field type is a string or an object");
        }
        bool flag = false;
        if (form["optional"].get_bool().get(flag) == simdjson::SUCCESS) optional = flag;
        simdjson::dom::array values;
        simdjson::dom::element inner;
        simdjson::dom::object fields;
        if (form["enum"].get_array().get(values) == simdjson::SUCCESS) {
            auto type = std::make_shared<field_type>();
            type->k = kind::enumeration;
            for (auto v : values) {
                std::string_view s;
                if (v.get_string().get(s) != simdjson::SUCCESS) return fail(where + ": enum values are strings");
                type->values.emplace_back(s);
            }
            if (type->values.empty()) return fail(where + ": enum needs at least one value");
            return type;
        }
        if (form["array"].get(inner) == simdjson::SUCCESS) {
            bool ignored = false;
            auto element = expression(inner, where + "[]", ignored);
            if (!element) return nullptr;
            auto type = std::make_shared<field_type>();
            type->k = kind::array;
            type->element = std::move(element);
            return type;
        }
        if (form["object"].get_object().get(fields) == simdjson::SUCCESS) return object_of(fields, where);
        return fail(where + ": expected {\"enum\": [...]}, {\"array\": type} or {\"object\": {...}}");
    }

    bool types(simdjson::dom::object section) {
        for (const auto [key, value] : section) {
            simdjson::dom::object fields;
            if (value.get_object().get(fields) != simdjson::SUCCESS) {
                fail("types." + std::string{key} + ": a named type is an object of fields");
                return false;
            }
            auto type = object_of(fields, "types." + std::string{key});
            if (!type) return false;
            auto named = std::make_shared<field_type>(*type);
            named->name = std::string{key};
            named_.emplace(std::string{key}, std::move(named));
        }
        return true;
    }

    bool events(simdjson::dom::object section, const std::string& side,
                std::map<std::string, event_spec, std::less<>>& out) {
        for (const auto [key, value] : section) {
            const std::string type{key};
            const std::string where = side + "." + type;
            if (!valid_event_name(type))
                return fail_bool(where + ": event names are 1-128 of letters, digits, . _ : -");
            simdjson::dom::object spec;
            if (value.get_object().get(spec) != simdjson::SUCCESS) return fail_bool(where + ": expected an object");
            event_spec event;
            event.type = type;
            simdjson::dom::object payload;
            if (spec["payload"].get_object().get(payload) != simdjson::SUCCESS) {
                return fail_bool(where + ".payload: required, an object of fields");
            }
            event.payload = object_of(payload, where + ".payload");
            if (!event.payload) return false;
            bool protocol = false;
            if (spec["protocol"].get_bool().get(protocol) == simdjson::SUCCESS) event.protocol = protocol;
            bool notify_offline = false;
            if (spec["notifyOffline"].get_bool().get(notify_offline) == simdjson::SUCCESS) {
                event.notify_offline = notify_offline;
            }
            if (!delivery(spec, event, where)) return false;
            out.emplace(type, std::move(event));
        }
        return true;
    }

private:
    bool delivery(simdjson::dom::object spec, event_spec& event, const std::string& where) {
        simdjson::dom::element value;
        if (spec["delivery"].get(value) != simdjson::SUCCESS) return true;  // ordered
        std::string_view cls;
        simdjson::dom::object form;
        if (value.get_object().get(form) == simdjson::SUCCESS) {
            if (form["class"].get_string().get(cls) != simdjson::SUCCESS) {
                return fail_bool(where + ".delivery.class: required");
            }
            std::string_view key;
            if (form["key"].get_string().get(key) == simdjson::SUCCESS) event.delivery_key = std::string{key};
        } else if (value.get_string().get(cls) != simdjson::SUCCESS) {
            return fail_bool(where + ".delivery: a class name or {\"class\", \"key\"}");
        }
        if (cls == "ordered") {
            event.delivery = delivery_class::ordered;
        } else if (cls == "ephemeral") {
            event.delivery = delivery_class::ephemeral;
        } else if (cls == "latest") {
            event.delivery = delivery_class::latest;
            const auto& fields = event.payload->fields;
            const auto it =
                std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.name == event.delivery_key; });
            if (it == fields.end() || it->optional || it->type->k != kind::string) {
                return fail_bool(where + ".delivery.key: latest needs the name of a required string field");
            }
        } else {
            return fail_bool(where + ".delivery: ordered, latest or ephemeral, got '" + std::string{cls} + "'");
        }
        return true;
    }

    std::shared_ptr<const field_type> fail(std::string message) {
        if (error.empty()) error = std::move(message);
        return nullptr;
    }
    bool fail_bool(std::string message) {
        fail(std::move(message));
        return false;
    }

    named_types named_;
};

std::optional<validation_error> check(const field_type& type, simdjson::dom::element value, const std::string& path) {
    const auto wrong = [&](std::string message) { return validation_error{path, std::move(message)}; };
    switch (type.k) {
        case kind::string:
            if (!value.is_string()) return wrong("must be a string");
            return std::nullopt;
        case kind::number:
            if (!value.is_number()) return wrong("must be a number");
            return std::nullopt;
        case kind::boolean:
            if (!value.is_bool()) return wrong("must be a boolean");
            return std::nullopt;
        case kind::date: {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS || !is_iso8601(s)) {
                return wrong("must be an ISO-8601 date string");
            }
            return std::nullopt;
        }
        case kind::enumeration: {
            std::string_view s;
            if (value.get_string().get(s) != simdjson::SUCCESS ||
                std::find(type.values.begin(), type.values.end(), s) == type.values.end()) {
                std::string list;
                for (const auto& v : type.values) list += (list.empty() ? "" : ", ") + v;
                return wrong("must be one of " + list);
            }
            return std::nullopt;
        }
        case kind::array: {
            simdjson::dom::array items;
            if (value.get_array().get(items) != simdjson::SUCCESS) return wrong("must be an array");
            std::size_t index = 0;
            for (auto item : items) {
                if (auto e = check(*type.element, item, path + "[" + std::to_string(index) + "]")) return e;
                ++index;
            }
            return std::nullopt;
        }
        case kind::object: {
            simdjson::dom::object object;
            if (value.get_object().get(object) != simdjson::SUCCESS) {
                return wrong(type.name.empty() ? "must be an object" : "must be a " + type.name + " object");
            }
            for (const auto [key, ignored] : object) {
                const std::string_view name = key;  // clang 14 cannot capture a structured binding
                const auto known =
                    std::any_of(type.fields.begin(), type.fields.end(), [&](const auto& f) { return f.name == name; });
                if (!known) return validation_error{path + "." + std::string{name}, "is not in the catalog"};
            }
            for (const auto& f : type.fields) {
                simdjson::dom::element member;
                const bool present = object[f.name].get(member) == simdjson::SUCCESS && !member.is_null();
                if (!present) {
                    if (f.optional) continue;
                    return validation_error{path + "." + f.name, "is required"};
                }
                if (auto e = check(*f.type, member, path + "." + f.name)) return e;
            }
            return std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<catalog> catalog::parse(std::string_view json, std::string& error) {
    simdjson::dom::parser parser;  // not the thread's: the catalog outlives any one parse
    simdjson::dom::object root;
    if (parser.parse(json.data(), json.size()).get_object().get(root) != simdjson::SUCCESS) {
        error = "the catalog is not a JSON object";
        return std::nullopt;
    }
    loader load;
    catalog result;
    simdjson::dom::object section;
    if (root["types"].get_object().get(section) == simdjson::SUCCESS && !load.types(section)) {
        error = load.error;
        return std::nullopt;
    }
    for (const auto& [name, target] : {std::pair{"server", &result.server_}, std::pair{"client", &result.client_}}) {
        if (root[name].get_object().get(section) != simdjson::SUCCESS) {
            error = std::string{"the catalog needs a \""} + name + "\" object of events";
            return std::nullopt;
        }
        if (!load.events(section, name, *target)) {
            error = load.error;
            return std::nullopt;
        }
    }
    return result;
}

std::optional<catalog> catalog::load_file(const std::string& path, std::string& error) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        error = "cannot read catalog " + path;
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto result = parse(text.str(), error);
    if (!result) error = "catalog " + path + ": " + error;
    return result;
}

const event_spec* catalog::server_event(std::string_view type) const {
    const auto it = server_.find(type);
    return it == server_.end() ? nullptr : &it->second;
}

const event_spec* catalog::client_event(std::string_view type) const {
    const auto it = client_.find(type);
    return it == client_.end() ? nullptr : &it->second;
}

std::optional<validation_error> catalog::validate(const event_spec& spec, simdjson::dom::element payload) {
    return check(*spec.payload, payload, "payload");
}

std::optional<validation_error> catalog::validate_absent(const event_spec& spec) {
    for (const auto& f : spec.payload->fields) {
        if (!f.optional) return validation_error{"payload." + f.name, "is required"};
    }
    return std::nullopt;
}

std::uint64_t latest_key_of(std::string_view type, std::string_view key_value) {
    std::string joined;
    joined.reserve(type.size() + key_value.size() + 1);
    joined.append(type).append(1, '\0').append(key_value);
    return std::hash<std::string>{}(joined);
}

}  // namespace zena::protocol
