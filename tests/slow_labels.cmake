# Read by ctest after the discovered unit tests: those tagged [slow] get the label slow as well.
foreach(t IN LISTS zrelay_slow_unit_tests)
  set_tests_properties("${t}" PROPERTIES LABELS "unit;slow")
endforeach()
