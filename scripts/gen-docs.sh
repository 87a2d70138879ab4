#!/usr/bin/env bash
# Regenerates the parts of the docs that come from the code: the property table of
# docs/runtime.md (`streamrun config`) and the operator list of docs/pipelines.md
# (`streamrun operators`). Needs a build.

set -euo pipefail
cd "$(dirname "$0")/.."
cli="${BUILD_DIR:-build}/bin/streamrun"
table=$("$cli" config)
begin='<!-- properties:'
end='<!-- end of properties -->'
awk -v begin="$begin" -v end="$end" -v table="$table" '
  index($0, begin) == 1 { print; print table; skipping = 1; next }
  index($0, end) == 1 { skipping = 0 }
  !skipping { print }
' docs/runtime.md >docs/runtime.md.new
mv docs/runtime.md.new docs/runtime.md
echo "docs/runtime.md: property table regenerated"

# The operator list of docs/pipelines.md, from the registered operator specs.
operators=$("$cli" operators)
awk -v begin='<!-- operators:' -v end='<!-- end of operators -->' -v list="$operators" '
  index($0, begin) == 1 { print; print "```"; print list; print ""; skipping = 1; next }
  index($0, end) == 1 { print "```"; skipping = 0 }
  !skipping { print }
' docs/pipelines.md >docs/pipelines.md.new
mv docs/pipelines.md.new docs/pipelines.md
echo "docs/pipelines.md: operator list regenerated"
