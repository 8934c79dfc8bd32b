# Per-target compile options: warnings, -Werror and sanitizers. Never global flags.
function(zrelay_target_options target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(ZRELAY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(ZRELAY_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${ZRELAY_SANITIZE} -fno-omit-frame-pointer)
    # PUBLIC: whoever links the static library, installed or not, needs the sanitizer runtime.
    target_link_options(${target} PUBLIC -fsanitize=${ZRELAY_SANITIZE})
    # GCC 12's -Wmaybe-uninitialized misfires inside <regex> (used by cxxopts) once the
    # sanitizers' instrumentation changes what it inlines; the warning is noise there.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()
