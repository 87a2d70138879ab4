#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <lua.hpp>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <streamrun/dsl/expression.h>

namespace streamrun::dsl {

struct Expression::Compiled {
  std::uint64_t id = 0;  // names it in each thread's Lua state
  std::string source;
  std::vector<std::string> names;
  std::string bytecode;  // lua_dump of the chunk
};

namespace {

constexpr const char* kChunkName = "=expression";
constexpr int kHookEvery = 1000;  // instructions between two checks of the budget
constexpr int kMaxDepth = 100;    // nesting of a table turned into JSON

std::atomic<std::uint64_t> next_id{1};

// The library names an expression may use. Everything that reaches files, processes, other
// chunks (load, require) or the collector is left out.
// pcall and xpcall are left out too: they would catch the step and memory limits, and a loop
// around them would never end.
constexpr const char* kSafeFunctions[] = {"assert", "error",    "ipairs",   "next",
                                          "pairs",  "rawequal", "rawget",   "rawlen",
                                          "select", "tonumber", "tostring", "type"};
// Libraries reach expressions as read-only views, so that no expression can change what
// another (or the next record) sees: `string.upper = nil` fails.
constexpr const char* kSafeLibraries[] = {"math", "string", "table", "utf8"};

// One Lua state per thread: expressions are loaded into it from their bytecode on first use.
class ThreadState {
 public:
  ThreadState() : lua_(lua_newstate(&ThreadState::allocate, this)) {
    if (lua_ == nullptr)
      throw std::bad_alloc();
    open_sandbox();
    lua_sethook(lua_, &ThreadState::count_hook, LUA_MASKCOUNT, kHookEvery);
  }
  ~ThreadState() { lua_close(lua_); }
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;

  static ThreadState& current() {
    thread_local ThreadState state;
    return state;
  }

  lua_State* lua() const noexcept { return lua_; }
  void start_budget() noexcept { hooks_ = 0; }

  // Pushes the function of `compiled`, loading it on first use. Runs in protected mode: a
  // failure is a Lua error.
  void push_function(const Expression::Compiled& compiled) {
    auto it = functions_.find(compiled.id);
    if (it == functions_.end()) {
      if (luaL_loadbufferx(lua_, compiled.bytecode.data(), compiled.bytecode.size(), kChunkName,
                           "b") != LUA_OK)
        lua_error(lua_);
      lua_rawgeti(lua_, LUA_REGISTRYINDEX, environment_);
      lua_setupvalue(lua_, -2, 1);  // the chunk's _ENV: the sandbox
      it = functions_.emplace(compiled.id, luaL_ref(lua_, LUA_REGISTRYINDEX)).first;
    }
    lua_rawgeti(lua_, LUA_REGISTRYINDEX, it->second);
  }

 private:
  // Lua's allocator with a ceiling, so that one expression cannot take the process's memory.
  static void* allocate(void* self, void* block, std::size_t old_size, std::size_t new_size) {
    auto& state = *static_cast<ThreadState*>(self);
    if (block == nullptr)
      old_size = 0;
    if (new_size == 0) {
      std::free(block);
      state.used_ -= old_size;
      return nullptr;
    }
    if (new_size > old_size && state.used_ + (new_size - old_size) > Expression::kMaxMemory)
      return nullptr;  // Lua raises "not enough memory"
    void* grown = std::realloc(block, new_size);
    if (grown != nullptr)
      state.used_ = state.used_ - old_size + new_size;
    return grown;
  }

  static void count_hook(lua_State* lua, lua_Debug*) {
    if (++current().hooks_ > Expression::kMaxInstructions / kHookEvery)
      luaL_error(lua, "ran more than %d instructions (a loop that does not end?)",
                 static_cast<int>(Expression::kMaxInstructions));
  }

  // A global name that is neither a variable nor a library: most likely a field meant as
  // value.<name>.
  static int unknown_global(lua_State* lua) {
    const char* name = lua_tostring(lua, 2);
    return luaL_error(lua, "unknown name '%s' (fields of the record are value.%s)",
                      name != nullptr ? name : "?", name != nullptr ? name : "?");
  }
  static int set_global(lua_State* lua) {
    const char* name = lua_tostring(lua, 2);
    return luaL_error(lua, "cannot set global '%s': use 'local %s = ...'",
                      name != nullptr ? name : "?", name != nullptr ? name : "?");
  }

  static int read_only(lua_State* lua) {
    const char* name = lua_tostring(lua, 2);
    return luaL_error(lua, "cannot change '%s': libraries are read-only",
                      name != nullptr ? name : "?");
  }

  // Pushes a read-only view of the table at `index`: reads go to it, writes fail, and its
  // metatable is hidden.
  void push_read_only_view(int index) {
    index = lua_absindex(lua_, index);
    lua_newtable(lua_);
    lua_newtable(lua_);
    lua_pushvalue(lua_, index);
    lua_setfield(lua_, -2, "__index");
    lua_pushcfunction(lua_, &ThreadState::read_only);
    lua_setfield(lua_, -2, "__newindex");
    lua_pushboolean(lua_, 0);
    lua_setfield(lua_, -2, "__metatable");
    lua_setmetatable(lua_, -2);
  }

  // The environment of every expression: an empty table whose reads go to the safe functions
  // and read-only libraries (unknown names fail) and whose writes fail, so that nothing
  // survives from one record to the next.
  void open_sandbox() {
    luaL_requiref(lua_, "_G", luaopen_base, 1);
    luaL_requiref(lua_, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(lua_, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(lua_, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(lua_, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_settop(lua_, 0);
    lua_newtable(lua_);         // 1: what expressions can read
    lua_pushglobaltable(lua_);  // 2
    for (const char* name : kSafeFunctions) {
      lua_getfield(lua_, 2, name);
      lua_setfield(lua_, 1, name);
    }
    for (const char* name : kSafeLibraries) {
      lua_getfield(lua_, 2, name);
      push_read_only_view(-1);
      lua_setfield(lua_, 1, name);
      lua_pop(lua_, 1);
    }
    lua_pop(lua_, 1);
    lua_newtable(lua_);  // 2: unknown names fail
    lua_pushcfunction(lua_, &ThreadState::unknown_global);
    lua_setfield(lua_, -2, "__index");
    lua_setmetatable(lua_, 1);
    lua_newtable(lua_);  // 2: the environment
    lua_newtable(lua_);  // 3: its metatable
    lua_pushvalue(lua_, 1);
    lua_setfield(lua_, 3, "__index");
    lua_pushcfunction(lua_, &ThreadState::set_global);
    lua_setfield(lua_, 3, "__newindex");
    lua_pushboolean(lua_, 0);
    lua_setfield(lua_, 3, "__metatable");
    lua_setmetatable(lua_, 2);
    environment_ = luaL_ref(lua_, LUA_REGISTRYINDEX);
    lua_settop(lua_, 0);
  }

  lua_State* lua_;
  std::size_t used_ = 0;
  std::int64_t hooks_ = 0;
  int environment_ = LUA_NOREF;
  std::unordered_map<std::uint64_t, int> functions_;
};

// Pushes `value` as a Lua value. Runs inside lua_pcall (a memory error unwinds with longjmp), so
// it keeps no objects with destructors on the way.
void push_json(lua_State* lua, const nlohmann::json& value) {
  luaL_checkstack(lua, 3, "a value nested too deeply");
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      lua_pushnil(lua);
      return;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(lua, value.get<bool>() ? 1 : 0);
      return;
    case nlohmann::json::value_t::number_integer:
      lua_pushinteger(lua, value.get<std::int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned: {
      const auto number = value.get<std::uint64_t>();
      if (number <= static_cast<std::uint64_t>(std::numeric_limits<lua_Integer>::max()))
        lua_pushinteger(lua, static_cast<lua_Integer>(number));
      else
        lua_pushnumber(lua, static_cast<lua_Number>(number));
      return;
    }
    case nlohmann::json::value_t::number_float:
      lua_pushnumber(lua, value.get<double>());
      return;
    case nlohmann::json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      lua_pushlstring(lua, text.data(), text.size());
      return;
    }
    case nlohmann::json::value_t::binary:
      lua_pushnil(lua);
      return;
    case nlohmann::json::value_t::array: {
      const auto& items = value.get_ref<const nlohmann::json::array_t&>();
      lua_createtable(lua, static_cast<int>(items.size()), 0);
      for (std::size_t i = 0; i < items.size(); ++i) {
        push_json(lua, items[i]);
        lua_rawseti(lua, -2, static_cast<lua_Integer>(i + 1));
      }
      return;
    }
    case nlohmann::json::value_t::object: {
      const auto& fields = value.get_ref<const nlohmann::json::object_t&>();
      lua_createtable(lua, 0, static_cast<int>(fields.size()));
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        lua_pushlstring(lua, it->first.data(), it->first.size());
        push_json(lua, it->second);
        lua_rawset(lua, -3);
      }
      return;
    }
  }
}

struct Call {
  const Expression::Compiled* compiled;
  std::span<const nlohmann::json* const> arguments;
};

// The protected part of an evaluation: pushes the function and its arguments and calls it.
int call_protected(lua_State* lua) {
  const auto& call = *static_cast<const Call*>(lua_touserdata(lua, 1));
  lua_pop(lua, 1);
  ThreadState::current().push_function(*call.compiled);
  for (const auto* argument : call.arguments) {
    if (argument == nullptr)
      lua_pushnil(lua);
    else
      push_json(lua, *argument);
  }
  lua_call(lua, static_cast<int>(call.arguments.size()), 1);
  return 1;
}

std::string number_key(lua_State* lua, int index) {
  if (lua_isinteger(lua, index))
    return std::to_string(lua_tointeger(lua, index));
  return nlohmann::json(lua_tonumber(lua, index)).dump();
}

// The Lua value at `index` as JSON; reads only (no Lua allocation), so it may throw.
nlohmann::json to_json(lua_State* lua, int index, int depth) {
  index = lua_absindex(lua, index);
  switch (lua_type(lua, index)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return lua_toboolean(lua, index) != 0;
    case LUA_TNUMBER:
      if (lua_isinteger(lua, index))
        return static_cast<std::int64_t>(lua_tointeger(lua, index));
      if (!std::isfinite(lua_tonumber(lua, index)))
        throw std::invalid_argument("gave a number JSON cannot hold (inf or nan)");
      return lua_tonumber(lua, index);
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* text = lua_tolstring(lua, index, &size);
      return std::string(text, size);
    }
    case LUA_TTABLE: {
      if (depth >= kMaxDepth)
        throw std::invalid_argument(fmt::format(
            "gave a table nested deeper than {} (one that contains itself?)", kMaxDepth));
      if (!lua_checkstack(lua, 3))
        throw std::invalid_argument("gave a table nested too deeply");
      const auto length = static_cast<std::size_t>(lua_rawlen(lua, index));
      std::size_t entries = 0;
      lua_pushnil(lua);
      while (lua_next(lua, index) != 0) {
        ++entries;
        lua_pop(lua, 1);
      }
      if (length > 0 && entries == length) {  // keys 1..n: an array
        nlohmann::json array = nlohmann::json::array();
        for (std::size_t i = 1; i <= length; ++i) {
          lua_rawgeti(lua, index, static_cast<lua_Integer>(i));
          array.push_back(to_json(lua, -1, depth + 1));
          lua_pop(lua, 1);
        }
        return array;
      }
      nlohmann::json object = nlohmann::json::object();
      lua_pushnil(lua);
      while (lua_next(lua, index) != 0) {
        std::string key;
        if (lua_type(lua, -2) == LUA_TSTRING) {
          std::size_t size = 0;
          const char* text = lua_tolstring(lua, -2, &size);
          key.assign(text, size);
        } else if (lua_type(lua, -2) == LUA_TNUMBER) {
          key = number_key(lua, -2);
        } else {
          lua_pop(lua, 2);
          throw std::invalid_argument(fmt::format("gave a table with a {} key (JSON keys are text)",
                                                  luaL_typename(lua, -1)));
        }
        object[key] = to_json(lua, -1, depth + 1);
        lua_pop(lua, 1);
      }
      return object;
    }
    default:
      throw std::invalid_argument(
          fmt::format("gave a {}, which is not a JSON value", luaL_typename(lua, index)));
  }
}

// Lua's message without the chunk name and line ("expression:1: ").
std::string strip_position(std::string message, int* line) {
  const std::string prefix = std::string(kChunkName + 1) + ":";
  if (message.rfind(prefix, 0) == 0) {
    const auto colon = message.find(':', prefix.size());
    if (colon != std::string::npos) {
      int parsed = 0;
      const auto* begin = message.data() + prefix.size();
      if (std::from_chars(begin, message.data() + colon, parsed).ec == std::errc() && line)
        *line = parsed;
      message.erase(0, colon + 1);
      if (!message.empty() && message.front() == ' ')
        message.erase(0, 1);
    }
  }
  return message;
}

// The position of a compile error. Lua names the line and the token it stopped at; of the
// token's places on that line, the first where a prefix of the source fails the same way is it.
ExpressionError locate(const std::string& source, const std::string& lua_message,
                       const std::function<std::optional<std::string>(const std::string&)>& load) {
  ExpressionError error;
  error.message = strip_position(lua_message, &error.line);
  std::vector<std::size_t> starts{0};  // offset of each line
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\n')
      starts.push_back(i + 1);
  }
  error.line = std::clamp(error.line, 1, static_cast<int>(starts.size()));
  const auto start = starts[static_cast<std::size_t>(error.line - 1)];
  const auto end = static_cast<std::size_t>(error.line) < starts.size()
                       ? starts[static_cast<std::size_t>(error.line)] - 1
                       : source.size();
  const auto text = std::string_view(source).substr(start, end - start);
  // Columns count characters, as editors do, not UTF-8 bytes.
  auto characters = [](std::string_view bytes) {
    return static_cast<int>(std::count_if(bytes.begin(), bytes.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
  };
  if (error.message.ends_with("near <eof>")) {
    // Just past the last character of the source (trailing blank lines are not a place).
    const auto last = source.find_last_not_of(" \t\r\n");
    const auto line_start = source.rfind('\n', last == std::string::npos ? 0 : last);
    const auto begin = line_start == std::string::npos ? 0 : line_start + 1;
    error.line = static_cast<int>(std::count(source.begin(), source.begin() + begin, '\n')) + 1;
    error.column = characters(std::string_view(source).substr(
                       begin, last == std::string::npos ? 0 : last + 1 - begin)) +
                   1;
    return error;
  }
  const auto near = error.message.rfind("near '");
  if (near == std::string::npos || !error.message.ends_with("'"))
    return error;
  const auto token = error.message.substr(near + 6, error.message.size() - near - 7);
  std::optional<std::size_t> found;
  for (auto at = text.find(token); at != std::string_view::npos; at = text.find(token, at + 1)) {
    if (!found)
      found = at;  // the first place, unless a prefix says better
    const auto failure = load(source.substr(0, start + at + token.size()));
    if (failure && strip_position(*failure, nullptr) == error.message) {
      found = at;
      break;
    }
  }
  if (found)
    error.column = characters(text.substr(0, *found)) + 1;
  return error;
}

bool looks_like_statements(const std::string& source) {
  static const char* const kStatementWords[] = {"local ", "return", "if ",       "for ",
                                                "while ", "repeat", "function ", "do "};
  const auto first = source.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return false;
  for (const char* word : kStatementWords) {
    if (source.compare(first, std::char_traits<char>::length(word), word) == 0)
      return true;
  }
  return source.find("\n") != std::string::npos && source.find("return") != std::string::npos;
}

int write_chunk(lua_State*, const void* data, std::size_t size, void* out) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
  return 0;
}

}  // namespace

std::variant<Expression, ExpressionError> Expression::compile(const std::string& source,
                                                              std::vector<std::string> names) {
  if (source.find_first_not_of(" \t\r\n") == std::string::npos)
    return ExpressionError{1, 1, "an empty expression"};
  // The names become the chunk's parameters; the prefix stays on the first line so that Lua's
  // line numbers are the source's.
  std::string parameters;
  for (const auto& name : names)
    parameters += (parameters.empty() ? "" : ", ") + name;
  const std::string prologue = names.empty() ? "" : "local " + parameters + " = ...; ";
  std::unique_ptr<lua_State, decltype(&lua_close)> lua(luaL_newstate(), &lua_close);
  if (!lua)
    throw std::bad_alloc();
  auto load = [&](const std::string& chunk) -> std::optional<std::string> {
    lua_settop(lua.get(), 0);
    if (luaL_loadbufferx(lua.get(), chunk.data(), chunk.size(), kChunkName, "t") == LUA_OK)
      return std::nullopt;
    return std::string(lua_tostring(lua.get(), -1));
  };
  const bool statements = looks_like_statements(source);
  auto as_expression = load(prologue + "return " + source);
  if (as_expression) {
    auto as_statements = load(prologue + source);
    if (as_statements) {
      const auto& prefix = statements ? prologue : prologue + "return ";
      return locate(source, statements ? *as_statements : *as_expression,
                    [&](const std::string& part) { return load(prefix + part); });
    }
  }
  auto compiled = std::make_shared<Compiled>();
  compiled->id = next_id++;
  compiled->source = source;
  compiled->names = std::move(names);
  lua_dump(lua.get(), &write_chunk, &compiled->bytecode, /*strip=*/0);
  return Expression(std::move(compiled));
}

nlohmann::json Expression::evaluate(std::span<const nlohmann::json* const> arguments) const {
  auto& state = ThreadState::current();
  lua_State* lua = state.lua();
  const int top = lua_gettop(lua);
  Call call{compiled_.get(), arguments};
  state.start_budget();
  lua_pushcfunction(lua, &call_protected);
  lua_pushlightuserdata(lua, &call);
  if (lua_pcall(lua, 1, 1, 0) != LUA_OK) {
    std::string message = lua_type(lua, -1) == LUA_TSTRING ? lua_tostring(lua, -1) : "an error";
    lua_settop(lua, top);
    lua_gc(lua, LUA_GCCOLLECT);  // after running out of memory, give it back at once
    int line = 0;
    message = strip_position(std::move(message), &line);
    if (message == "not enough memory")
      message = fmt::format("used more than {} MiB of memory", kMaxMemory >> 20);
    else if (line > 0 && compiled_->source.find('\n') != std::string::npos)
      message = fmt::format("line {}: {}", line, message);
    throw std::runtime_error(fmt::format("expression `{}` failed: {}", compiled_->source, message));
  }
  try {
    auto result = to_json(lua, -1, 0);
    lua_settop(lua, top);
    return result;
  } catch (const std::invalid_argument& e) {
    lua_settop(lua, top);
    throw std::runtime_error(fmt::format("expression `{}` {}", compiled_->source, e.what()));
  }
}

bool Expression::test(std::span<const nlohmann::json* const> arguments) const {
  const auto value = evaluate(arguments);
  return !(value.is_null() || (value.is_boolean() && !value.get<bool>()));
}

const std::string& Expression::source() const noexcept {
  return compiled_->source;
}
const std::vector<std::string>& Expression::names() const noexcept {
  return compiled_->names;
}

}  // namespace streamrun::dsl
