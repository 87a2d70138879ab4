#include <streamrun/operators/builtin.h>

#include "common.h"

namespace streamrun::operators {

void register_builtin_operators(dsl::Registry& registry) {
  for (auto spec :
       {detail::from_spec(), detail::to_spec(), detail::filter_spec(), detail::map_spec(),
        detail::key_by_spec(), detail::count_spec(), detail::join_spec(), detail::left_join_spec(),
        detail::reserve_spec(), detail::route_spec(), detail::sum_spec(), detail::reduce_spec(),
        detail::aggregate_spec(), detail::dedupe_spec(), detail::call_spec()}) {
    registry.add(std::move(spec));
  }
}

}  // namespace streamrun::operators
