# Build options. Every option is declared here, once.
set(STREAMRUN_SANITIZE "" CACHE STRING "Sanitizer to build with: address, undefined, thread (empty = none)")
set_property(CACHE STREAMRUN_SANITIZE PROPERTY STRINGS "" address undefined thread)
option(STREAMRUN_WERROR "Treat compiler warnings as errors" OFF)
option(STREAMRUN_FUZZ "Build the libFuzzer targets of tests/fuzz/ (Clang; docs/fuzzing.md)" OFF)
# A fuzzing build needs neither the test suite nor the benchmarks (defaults only).
if(STREAMRUN_FUZZ)
  set(_streamrun_build_extras OFF)
else()
  set(_streamrun_build_extras ON)
endif()
option(STREAMRUN_BUILD_TESTS "Build the test suite" ${_streamrun_build_extras})
option(STREAMRUN_BUILD_BENCH "Build the benchmarks under bench/" ${_streamrun_build_extras})

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

# Fuzzing (scripts/fuzz.sh): everything is compiled with libFuzzer's coverage instrumentation
# plus ASan and UBSan (UB aborts, so that libFuzzer sees it as a crash); only the fuzz targets
# themselves link libFuzzer (-fsanitize=fuzzer, in tests/fuzz/CMakeLists.txt). Assertions stay
# on (-UNDEBUG), and libstdc++'s checks too.
set(STREAMRUN_FUZZ_ENABLED OFF)
if(STREAMRUN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(WARNING "STREAMRUN_FUZZ needs Clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: "
                    "no fuzz target is built. Configure with CC=clang CXX=clang++ "
                    "(scripts/fuzz.sh does).")
  elseif(STREAMRUN_SANITIZE)
    message(FATAL_ERROR "STREAMRUN_FUZZ brings its own sanitizers (address, undefined); "
                        "leave STREAMRUN_SANITIZE empty")
  else()
    set(STREAMRUN_FUZZ_ENABLED ON)
    set(_fuzz_flags -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer)
    add_compile_options(${_fuzz_flags} -UNDEBUG -D_GLIBCXX_ASSERTIONS)
    add_link_options(${_fuzz_flags})
  endif()
endif()
