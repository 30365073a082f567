#!/usr/bin/env bash
# Runs every command of the walk-through in docs/porting.md -- the ```sh blocks that follow a
# "<!-- walkthrough -->" line -- in order, in one bash (set -euo pipefail), from the repository root.
#
#   tools/porting_walkthrough.sh            # run them (needs MNIST: CAFFE_LIKE_DATA=folder holding mnist/)
#   tools/porting_walkthrough.sh --print    # print the script instead
#   tools/porting_walkthrough.sh --help
#
# Exit status: the commands' (0 when every one succeeded); 2 when the document has no such blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
script=$(awk '
  /<!-- walkthrough -->/ { want = 1; next }
  want && /^```sh/ { inside = 1; next }
  inside && /^```/ { inside = 0; want = 0; print ""; next }
  inside { print }
' docs/porting.md)
if [ -z "$script" ]; then
  echo "porting_walkthrough.sh: no walkthrough blocks found in docs/porting.md" >&2
  exit 2
fi
if [ "${1:-}" = "--print" ]; then
  printf '%s\n' "$script"
  exit 0
fi
exec bash -euo pipefail -c "$script"
