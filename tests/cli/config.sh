#!/usr/bin/env bash
# zrelay --config and --print-config from the command line: the packaged example file is valid as
# shipped and with every key uncommented; --print-config's output is read back to the same output;
# the command line wins over the file; each bad file is exit status 2 with FILE:LINE: KEY.
source "$(dirname "$0")/lib.sh"

cd "$TEST_TMP" || fail "cannot enter $TEST_TMP"
example=$(cd "$(dirname "$0")/../../packaging" && pwd)/zrelay.toml
[[ -f $example ]] || fail "no packaged example at $example"

expect_status 0 "$ZRELAY" --config "$example" --print-config
grep -q -x 'journal = "/var/lib/zrelay/journal"' "$TEST_TMP/last.out" ||
  fail "the example's journal is not in --print-config: $(cat "$TEST_TMP/last.out")"
# Every key the example shows commented out is a real key with a valid value (but the key files,
# which are not here).
sed -E '/^# ?(curve-key|allow-keys|upstream-server-key) = /!s/^# ?([a-z-]+ = )/\1/; s/ +# .*$//' "$example" >uncommented.toml
expect_status 0 "$ZRELAY" --config uncommented.toml --print-config
for key in $("$ZRELAY" --print-config | sed -nE 's/^#? ?([a-z-]+)( =| \(not set\)).*/\1/p'); do
  grep -q -E "^#? ?$key( |$)" "$example" || fail "the packaged example does not mention '$key'"
done

# What --print-config prints, --config reads back to the same settings.
expect_status 0 "$ZRELAY" --config uncommented.toml --hwm 77 --spin 5 --print-config
grep -v '^# zrelay configuration in effect' "$TEST_TMP/last.out" >printed.toml
grep -q -x 'hwm = 77' printed.toml || fail "--hwm on the command line did not win: $(grep hwm printed.toml)"
expect_status 0 "$ZRELAY" --config printed.toml --print-config
diff <(grep -v '^# zrelay configuration in effect' "$TEST_TMP/last.out") printed.toml >/dev/null ||
  fail "--print-config of its own output differs: $(diff <(grep -v '^# zrelay' "$TEST_TMP/last.out") printed.toml)"

# Bad files: exit 2, one line naming file, line and key.
bad() {
  local text=$1 want=$2
  printf '%b' "$text" >bad.toml
  expect_status 2 "$ZRELAY" --config bad.toml
  expect_stderr_contains "zrelay: error: $want"
  expect_stderr_one_line
}
bad 'hwm = 1000\nhwmm = 5\n' "bad.toml:2: unknown key 'hwmm' (did you mean 'hwm'?)"
bad 'hwm = "lots"\n' "bad.toml:1: hwm must be an integer (hwm = 1000), not a string"
bad '\n\nhwm = 0\n' "bad.toml:3: hwm must be a whole number from 1 to 10000000, not '0'"
bad 'verbose = "yes"\n' "bad.toml:1: verbose must be true or false, not a string"
bad 'journal-fsync = "off"\n' 'bad.toml:1: journal-fsync needs a journal (journal = "DIR" in the file, or --journal DIR)'
bad '[sockets]\npub-bind = "x"\n' "bad.toml:1: 'sockets' is a table"
bad 'hwm = 1\nhwm = 2\n' "bad.toml:2: not valid TOML: "
bad 'pub-bind = "localhost:5559"\n' "bad.toml:1: pub-bind: "
bad '\xef\xbb\xbfhwm = 1\n' "bad.toml:1: the file starts with a UTF-8 byte order mark"
bad 'journal = "/var/lib/z\xc3\xa9"\n' "bad.toml:1: a non-ASCII character outside a comment line"
expect_status 2 "$ZRELAY" --config /dev/zero
expect_stderr_contains "cannot read config file '/dev/zero': not a regular file"
# What --print-config writes of a non-ASCII path is what --config reads back.
expect_status 0 "$ZRELAY" --journal "$TEST_TMP/j"$'\xc3\xa9' --print-config
grep -q -F 'journal = "'"$TEST_TMP"'/j\u00e9"' "$TEST_TMP/last.out" || fail "print-config wrote: $(grep '^journal' "$TEST_TMP/last.out")"
cp "$TEST_TMP/last.out" nonascii.toml
expect_status 0 "$ZRELAY" --config nonascii.toml --print-config
expect_status 2 "$ZRELAY" --config missing.toml
expect_stderr_contains "cannot read config file 'missing.toml': No such file or directory"
# The command line's value stands in for the file's bad one.
printf 'hwm = 0\n' >bad.toml
expect_status 0 "$ZRELAY" --config bad.toml --hwm 10 --print-config
pass "the example is valid, --print-config reads back, bad files name file, line and key"
