#pragma once

#include <streamrun/dsl/registry.h>

namespace streamrun::operators {

// Registers every built-in operator (from, to, filter, map, key_by, count, join, left_join,
// reserve, route) with `registry`.
// Throws std::logic_error when one of their names is taken already.
void register_builtin_operators(dsl::Registry& registry);

}  // namespace streamrun::operators
