# Shared by the end-to-end scripts (sourced): fail MESSAGE ends the test; expect_code WANT CMD...
# runs CMD with its stdout in out.txt and stderr in err.txt (in the current directory) and
# fails, printing both, unless it exits WANT.
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_code() {
  local want=$1; shift
  set +e; "$@" >out.txt 2>err.txt; local got=$?; set -e
  [ "$got" -eq "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $got, expected $want"; }
}
