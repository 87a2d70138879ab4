# Build options. Every option is declared here, once.
set(STREAMRUN_SANITIZE "" CACHE STRING "Sanitizer to build with: address, undefined, thread (empty = none)")
set_property(CACHE STREAMRUN_SANITIZE PROPERTY STRINGS "" address undefined thread)
option(STREAMRUN_WERROR "Treat compiler warnings as errors" OFF)
option(STREAMRUN_BUILD_TESTS "Build the test suite" ON)
option(STREAMRUN_BUILD_BENCH "Build the benchmarks under bench/" ON)

# Flags every streamrun target gets, through streamrun_apply_common_options().
add_library(streamrun_build_flags INTERFACE)
target_compile_options(streamrun_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                       -Wnon-virtual-dtor -Wno-missing-field-initializers)
if(STREAMRUN_WERROR)
  target_compile_options(streamrun_build_flags INTERFACE -Werror)
endif()

if(STREAMRUN_SANITIZE)
  if(STREAMRUN_SANITIZE STREQUAL "address")
    set(_san_flags -fsanitize=address -fno-omit-frame-pointer)
  elseif(STREAMRUN_SANITIZE STREQUAL "undefined")
    set(_san_flags -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  elseif(STREAMRUN_SANITIZE STREQUAL "thread")
    # Plus cmake/StreamrunTsan.cmake (below): C11-thread shim, fiber annotations, suppressions.
    set(_san_flags -fsanitize=thread)
  else()
    message(FATAL_ERROR "STREAMRUN_SANITIZE must be address, undefined or thread, got '${STREAMRUN_SANITIZE}'")
  endif()
  # Applied globally so that gtest/benchmark objects built here agree with ours.
  add_compile_options(${_san_flags})
  add_link_options(${_san_flags})
endif()
if(STREAMRUN_SANITIZE STREQUAL "thread")
  include(StreamrunTsan)
endif()
