# Reshapes a tool's --help (cxxopts' layout) into what help2man parses. The words stay the binary's
# own; only the layout changes:
# - "Usage:" and the indented line under it become "Usage: PROG ..." ("A  |  B" becomes an "or:" line);
# - an "Options:" heading before the option groups, each group ("Sockets options:") a subsection;
# - after the options: each paragraph goes back to DESCRIPTION, except the "Exit status:" one (the
#   EXIT STATUS section) and the lines under "Examples:" (commands, help2man's EXAMPLES section; a
#   trailing "# comment" goes on a line of its own above the command);
# - an indented list there ("  NAME  text", continued further in) becomes tagged paragraphs, and a
#   heading's double quotes become single ones (help2man puts it inside .SS "...").
BEGIN { state = "head"; para_start = 1 }
state == "head" && /^Usage:$/ { state = "usage"; next }
state == "head" { print; next }
state == "usage" && /^ +[^ ]/ {
  sub(/^ +/, "")
  n = split($0, alt, / +\| +/)
  print "Usage: " alt[1]
  for (i = 2; i <= n; i++) print "   or: " alt[i]
  next
}
state == "usage" && /^$/ { state = "gap"; print; next }
/^ [^ ].* options:$/ {
  if (state != "groups") { print "Options:"; print "" }
  state = "groups"
  sub(/^ /, ""); sub(/ options:$/, ":")
  print
  next
}
state == "groups" && /^[^ ]/ { state = "tail" }
state != "tail" { print; next }
/^$/ { para_start = 1; print; next }
para_start {
  para_start = 0
  examples = 0
  if (sub(/^Exit status: */, "")) {
    print "*Exit status*"; print ""
  } else if (/^Examples:$/) {
    examples = 1; print; next
  } else if (/^[^ ]/) {
    print "*Description*"; print ""
  }
}
examples && /^ +[^ ]/ {
  sub(/^ +/, "")
  if ((at = index($0, "  #")) > 0) {
    comment = substr($0, at + 2)
    $0 = substr($0, 1, at - 1)
    sub(/ +$/, "")
    print "    " comment
  }
  print "  $ " $0
  next
}
/^[^ ].*:$/ { gsub(/"/, "'"); print; next }
/^  [^ ]/ {
  tag = $1
  text = substr($0, index($0, tag) + length(tag))
  sub(/^ +/, "", text)
  print "  " tag
  if (text != "") printf "%20s%s\n", "", text
  next
}
/^   +[^ ]/ { sub(/^ +/, ""); printf "%20s%s\n", "", $0; next }
{ print }
